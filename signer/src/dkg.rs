//! Distributed key generation, refresh and reshare: Feldman VSS with commit-then-reveal and a
//! complaint round. Every dealer first broadcasts a hash of its coefficient commitments, deals
//! shares privately, then reveals the commitments; a reveal that differs from the hash (an
//! attempt to bias the key after seeing others) names the dealer. A receiver whose share fails
//! the Feldman check complains; the dealer must publish that share, and a published share that
//! also fails names the dealer. Refresh deals zero-constant polynomials; reshare deals
//! Lagrange-weighted old shares so a replacement node receives a share of the same key.

use std::sync::Arc;

use ark_ff::{UniformRand, Zero};
use bytes::Bytes;
use tacit_mpc_engine::shamir::lagrange_coefficients;
use tacit_mpc_engine::{Engine, PartyId, SessionId, Transport, WireField};
use zeroize::Zeroizing;

use crate::curve::{generator, point_from_bytes, point_len, point_to_bytes, Point, Scalar};
use crate::error::{Result, SignerError};
use crate::keys::{KeyPublic, KeyShare};

/// Faults a test party injects into its own messages.
#[doc(hidden)]
#[derive(Clone, Debug, Default)]
pub struct DkgFaults {
    /// Deal this party a share off the committed polynomial (and publish it if challenged).
    pub bad_share_to: Option<PartyId>,
    /// Reveal commitments other than those committed to (a biased reveal).
    pub biased_reveal: bool,
    /// Never reveal (a late reveal): stop after the deal.
    pub withhold_reveal: bool,
    /// Send deals bound to another session (a replayed message).
    pub replay_from: Option<SessionId>,
}

enum Mode<'a> {
    Fresh,
    Refresh(&'a KeyShare),
    Reshare { public: &'a KeyPublic, share: Option<&'a KeyShare>, replaced: PartyId },
}

/// Runs a fresh DKG among all parties of the engine's session.
pub async fn dkg<T: Transport>(
    engine: &mut Engine<Scalar, T>,
    transport: &Arc<T>,
    session: SessionId,
    faults: &DkgFaults,
) -> Result<KeyShare> {
    run(engine, transport, session, Mode::Fresh, faults).await
}

/// New shares of the same key (epoch + 1): every party adds a sharing of zero.
pub async fn refresh<T: Transport>(
    engine: &mut Engine<Scalar, T>,
    transport: &Arc<T>,
    session: SessionId,
    share: &KeyShare,
    faults: &DkgFaults,
) -> Result<KeyShare> {
    run(engine, transport, session, Mode::Refresh(share), faults).await
}

/// Reshares the key so that party `replaced` (a new node holding only `public`) gets a share:
/// every other party deals its Lagrange-weighted share. All shares are new (epoch + 1).
pub async fn reshare<T: Transport>(
    engine: &mut Engine<Scalar, T>,
    transport: &Arc<T>,
    session: SessionId,
    public: &KeyPublic,
    share: Option<&KeyShare>,
    replaced: PartyId,
    faults: &DkgFaults,
) -> Result<KeyShare> {
    run(engine, transport, session, Mode::Reshare { public, share, replaced }, faults).await
}

fn commit_hash(session: &SessionId, dealer: PartyId, commitments: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("tacit signer vss commitment v1");
    h.update(&session.0);
    h.update(&dealer.get().to_be_bytes());
    h.update(commitments);
    *h.finalize().as_bytes()
}

fn deal_tag(session: &SessionId, from: PartyId, to: PartyId) -> [u8; 16] {
    let mut h = blake3::Hasher::new_derive_key("tacit signer vss deal v1");
    h.update(&session.0);
    h.update(&from.get().to_be_bytes());
    h.update(&to.get().to_be_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

fn eval(coeffs: &[Scalar], x: Scalar) -> Scalar {
    coeffs.iter().rev().fold(Scalar::zero(), |acc, c| acc * x + c)
}

/// Σ_k C_k · x^k.
fn eval_exp(commitments: &[Point], x: Scalar) -> Point {
    commitments.iter().rev().fold(Point::zero(), |acc, c| acc * x + c)
}

fn x_of(p: PartyId) -> Scalar {
    Scalar::from(u64::from(p.get()))
}

async fn cheat<T: Transport>(engine: &mut Engine<Scalar, T>, party: PartyId, reason: String) -> SignerError {
    let err = SignerError::Cheater { party, reason: reason.clone() };
    let _ = engine.abort_with(tacit_mpc_engine::MpcError::Protocol { peer: party, reason }).await;
    err
}

async fn run<T: Transport>(
    engine: &mut Engine<Scalar, T>,
    transport: &Arc<T>,
    session: SessionId,
    mode: Mode<'_>,
    faults: &DkgFaults,
) -> Result<KeyShare> {
    let me = engine.id();
    let n = engine.n();
    let t = engine.t();
    let parties: Vec<PartyId> = PartyId::all(n).collect();

    // Each dealer's required constant term, in the exponent (None: any).
    let (constant, expected): (Option<Scalar>, Vec<Option<Point>>) = match &mode {
        Mode::Fresh => (None, vec![None; n]),
        Mode::Refresh(share) => {
            check_params(&share.public, n, t)?;
            (Some(Scalar::zero()), vec![Some(Point::zero()); n])
        }
        Mode::Reshare { public, share, replaced } => {
            check_params(public, n, t)?;
            let holders: Vec<PartyId> = parties.iter().copied().filter(|p| p != replaced).collect();
            let xs: Vec<Scalar> = holders.iter().map(|p| x_of(*p)).collect();
            let lambdas = lagrange_coefficients(&xs, Scalar::zero());
            let mut expected = vec![Some(Point::zero()); n];
            let mut mine = Some(Scalar::zero());
            for (p, l) in holders.iter().zip(&lambdas) {
                if let Some(slot) = expected.get_mut(p.index()) {
                    *slot = Some(public.public_share(*p)? * l);
                }
                if *p == me {
                    let s = share.ok_or_else(|| SignerError::Invalid("a holder must bring its share".into()))?;
                    if s.public.epoch != public.epoch {
                        return Err(SignerError::StaleEpoch { got: s.public.epoch, current: public.epoch });
                    }
                    mine = Some(s.expose_share() * l);
                }
            }
            (mine, expected)
        }
    };

    // Round 1: commit to the coefficient commitments.
    let mut coeffs: Zeroizing<Vec<Scalar>> = {
        let mut rng = rand::thread_rng();
        Zeroizing::new((0..=t).map(|_| Scalar::rand(&mut rng)).collect())
    };
    if let (Some(c), Some(a0)) = (constant, coeffs.first_mut()) {
        *a0 = c;
    }
    let commitments: Vec<Point> = coeffs.iter().map(|a| generator() * a).collect();
    let mut commit_bytes: Vec<u8> = commitments.iter().flat_map(point_to_bytes).collect();
    let hashes = engine.broadcast_bytes(&commit_hash(&session, me, &commit_bytes), 32).await?;

    // Round 2: private deals.
    let deal_session = session.child("vss-deal", 0);
    let tag_session = faults.replay_from.map_or(deal_session, |s| s.child("vss-deal", 0));
    for p in parties.iter().filter(|p| **p != me) {
        let mut y = eval(&coeffs, x_of(*p));
        if faults.bad_share_to == Some(*p) {
            y += Scalar::from(1u64);
        }
        let mut msg = deal_tag(&tag_session, me, *p).to_vec();
        let mut w = [0u8; 32];
        y.write_wire(&mut w);
        msg.extend_from_slice(&w);
        transport.send(deal_session, *p, Bytes::from(msg)).await.map_err(tacit_mpc_engine::MpcError::from)?;
    }
    let mut received = Zeroizing::new(vec![Scalar::zero(); n]);
    if let Some(slot) = received.get_mut(me.index()) {
        *slot = eval(&coeffs, x_of(me));
    }
    for p in parties.iter().filter(|p| **p != me) {
        let msg = transport.recv(deal_session, *p).await.map_err(tacit_mpc_engine::MpcError::from)?;
        let ok_tag = msg.get(..16) == Some(deal_tag(&deal_session, *p, me).as_slice());
        let value = msg.get(16..).and_then(Scalar::read_wire);
        match (ok_tag, value) {
            (true, Some(v)) => {
                if let Some(slot) = received.get_mut(p.index()) {
                    *slot = v;
                }
            }
            (false, _) => return Err(cheat(engine, *p, "sent a deal bound to another session (replay)".into()).await),
            (true, None) => return Err(cheat(engine, *p, "sent a malformed deal".into()).await),
        }
    }
    transport.close_session(deal_session);

    // Round 3: reveal.
    if faults.withhold_reveal {
        return Err(SignerError::Invalid("withheld the reveal (test fault)".into()));
    }
    if faults.biased_reveal {
        let shift = generator() * Scalar::from(7u64);
        if let Some(c0) = commitments.first() {
            let biased = point_to_bytes(&(*c0 + shift));
            if let Some(slot) = commit_bytes.get_mut(..biased.len()) {
                slot.copy_from_slice(&biased);
            }
        }
    }
    let plen = point_len();
    let reveals = engine.broadcast_bytes(&commit_bytes, plen * (t + 1)).await?;
    engine.verify().await?;
    let mut all_commitments: Vec<Vec<Point>> = Vec::with_capacity(n);
    for p in &parties {
        let hash = hashes.get(p.index()).map(Vec::as_slice).unwrap_or_default();
        let reveal = reveals.get(p.index()).map(Vec::as_slice).unwrap_or_default();
        if commit_hash(&session, *p, reveal).as_slice() != hash {
            return Err(cheat(
                engine,
                *p,
                "revealed commitments that differ from its committed hash (biased or late reveal)".into(),
            )
            .await);
        }
        let points: Option<Vec<Point>> = reveal.chunks(plen).map(point_from_bytes).collect();
        let points = match points {
            Some(ps) if ps.len() == t + 1 => ps,
            _ => return Err(cheat(engine, *p, "revealed malformed commitments".into()).await),
        };
        if let Some(Some(want)) = expected.get(p.index()) {
            if points.first() != Some(want) {
                return Err(cheat(engine, *p, "dealt a constant term other than the one required".into()).await);
            }
        }
        all_commitments.push(points);
    }

    // Round 4: complaints.
    let my_x = x_of(me);
    let complaints: Vec<u8> = parties
        .iter()
        .map(|p| {
            let c = all_commitments.get(p.index()).map(Vec::as_slice).unwrap_or_default();
            let y = received.get(p.index()).copied().unwrap_or_default();
            u8::from(generator() * y != eval_exp(c, my_x))
        })
        .collect();
    let all_complaints = engine.broadcast_bytes(&complaints, n).await?;
    engine.verify().await?;
    let accused: Vec<(PartyId, PartyId)> = parties
        .iter()
        .flat_map(|c| {
            let row = all_complaints.get(c.index()).cloned().unwrap_or_default();
            parties.iter().filter(move |d| row.get(d.index()) == Some(&1)).map(move |d| (*d, *c))
        })
        .collect();
    if !accused.is_empty() {
        // Each accused dealer publishes the disputed shares, in complainer order.
        let mut answer = Vec::new();
        for (d, c) in &accused {
            if *d == me {
                let mut y = eval(&coeffs, x_of(*c));
                if faults.bad_share_to == Some(*c) {
                    y += Scalar::from(1u64);
                }
                let mut w = [0u8; 32];
                y.write_wire(&mut w);
                answer.extend_from_slice(&w);
            }
        }
        let answers = engine.broadcast_bytes(&answer, 32 * n).await?;
        engine.verify().await?;
        let mut cursor = vec![0usize; n];
        for (d, c) in &accused {
            let at = cursor.get(d.index()).copied().unwrap_or_default();
            if let Some(slot) = cursor.get_mut(d.index()) {
                *slot += 32;
            }
            let y = answers.get(d.index()).and_then(|a| a.get(at..at + 32)).and_then(Scalar::read_wire);
            let commits = all_commitments.get(d.index()).map(Vec::as_slice).unwrap_or_default();
            match y {
                Some(y) if generator() * y == eval_exp(commits, x_of(*c)) => {
                    if *c == me {
                        if let Some(slot) = received.get_mut(d.index()) {
                            *slot = y;
                        }
                    }
                }
                _ => {
                    return Err(cheat(
                        engine,
                        *d,
                        format!("dealt {c} a share that fails VSS verification, and could not publish a valid one"),
                    )
                    .await)
                }
            }
        }
    }

    // Outputs.
    let share: Scalar = received.iter().sum();
    let sum_constants: Point = all_commitments.iter().filter_map(|c| c.first()).sum();
    let deltas: Vec<Point> =
        parties.iter().map(|p| all_commitments.iter().map(|c| eval_exp(c, x_of(*p))).sum()).collect();
    drop(coeffs);
    drop(received);

    let public = match &mode {
        Mode::Fresh => {
            if sum_constants.is_zero() {
                return Err(SignerError::Invalid("degenerate key".into()));
            }
            let mut h = blake3::Hasher::new_derive_key("tacit signer key id v1");
            h.update(&point_to_bytes(&sum_constants));
            let mut key_id = [0u8; 16];
            key_id.copy_from_slice(&h.finalize().as_bytes()[..16]);
            KeyPublic { key_id, epoch: 0, n, t, public_key: sum_constants, public_shares: deltas }
        }
        Mode::Refresh(old) => {
            let mut share_total = share;
            share_total += old.expose_share();
            let public = KeyPublic {
                epoch: old.public.epoch + 1,
                public_shares: old.public.public_shares.iter().zip(&deltas).map(|(a, b)| *a + b).collect(),
                ..old.public.clone()
            };
            let out = KeyShare::new(public, me, share_total);
            out.check()?;
            return Ok(out);
        }
        Mode::Reshare { public, .. } => {
            if sum_constants != public.public_key {
                return Err(SignerError::Invalid("reshared key differs from the public key".into()));
            }
            KeyPublic { epoch: public.epoch + 1, public_shares: deltas, ..(*public).clone() }
        }
    };
    let out = KeyShare::new(public, me, share);
    out.check()?;
    Ok(out)
}

fn check_params(public: &KeyPublic, n: usize, t: usize) -> Result<()> {
    if public.n != n || public.t != t {
        return Err(SignerError::Invalid(format!(
            "key is {}-of-{}, the session is {}-of-{n}",
            public.t + 1,
            public.n,
            t + 1
        )));
    }
    Ok(())
}
