//! The OPRF key's Feldman-verifiable DKG, run by the nodes alone (all in this process over
//! memory transports): honest runs share one key consistent with the public key shares, and
//! a cheating dealer is named.

use std::sync::Arc;

use ark_ec::PrimeGroup;
use tacit_mpc_engine::testing::{network_with_cheater, Rule, HEADER, KIND_BYTES};
use tacit_mpc_engine::transport::memory::MemoryTransport;
use tacit_mpc_engine::{Check, Culprit, MpcError, PartyId, Security, SessionId, Shamir, Transport};
use tacit_psi::protocol::{oprf_key, Cheat, NodeConfig};
use tacit_psi::{Mode, PsiError};
use tacit_signer::keys::KeyShare;

type Point = ark_secp256k1::Projective;

/// Bytes of one coefficient commitment as the DKG broadcasts it (SEC1 uncompressed).
const COMMITMENT_BYTES: usize = 65;

fn config(t: usize, session: SessionId, cheat: Option<Cheat>) -> NodeConfig {
    NodeConfig { t, security: Security::Malicious, session, mode: Mode::Set, commitments: None, proof: None, cheat }
}

/// Runs the key generation on every node; `cheater` (1-based) commits `cheat`.
async fn keygen<T: Transport>(
    transports: Vec<Arc<T>>,
    t: usize,
    cheater: Option<(u16, Cheat)>,
) -> Vec<Result<KeyShare, PsiError>> {
    let session = SessionId::random();
    let tasks: Vec<_> = transports
        .into_iter()
        .map(|transport| {
            let cheat = cheater.and_then(|(who, c)| (transport.id().get() == who).then_some(c));
            tokio::spawn(async move { oprf_key(&transport, &config(t, session, cheat)).await })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.unwrap_or_else(|e| panic!("{e}")));
    }
    out
}

fn memory(n: usize) -> Vec<Arc<MemoryTransport>> {
    MemoryTransport::network(n).into_iter().map(Arc::new).collect()
}

fn pid(i: u16) -> PartyId {
    PartyId::new(i).unwrap_or_else(|| unreachable!())
}

/// With `n = 3, t = 1` and `n = 5, t = 2`: every node ends with the same public key `K` and
/// table `K_i`; the shares lie on one degree-`t` polynomial (any `t + 1` give the same key,
/// checked on all `n`), the key is `log_G K`, and each share is `log_G K_i`. Two runs give
/// different keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_dkg_shares_one_key_consistent_with_the_public_shares() {
    for (n, t) in [(3usize, 1usize), (5, 2)] {
        let mut keys = Vec::new();
        for _ in 0..2 {
            let shares: Vec<KeyShare> = keygen(memory(n), t, None)
                .await
                .into_iter()
                .map(|r| r.unwrap_or_else(|e| panic!("n = {n}: {e}")))
                .collect();
            let public = shares.first().map(|s| s.public.clone()).unwrap_or_else(|| unreachable!());
            assert_eq!((public.n, public.t, public.public_shares.len()), (n, t, n));
            for (i, share) in shares.iter().enumerate() {
                assert_eq!(share.public, public, "n = {n}: node {} holds another public key", i + 1);
                assert_eq!(share.me, pid(i as u16 + 1));
                assert_eq!(Some(&(Point::generator() * share.expose_share())), public.public_shares.get(i));
            }
            let shamir = Shamir::<ark_secp256k1::Fr>::new(n, t).unwrap_or_else(|e| panic!("{e:?}"));
            let by_party: Vec<Vec<ark_secp256k1::Fr>> = shares.iter().map(|s| vec![s.expose_share()]).collect();
            let key = shamir
                .reconstruct_batch(&by_party, t, true)
                .unwrap_or_else(|i| panic!("n = {n}: shares off one degree-{t} polynomial at {i}"));
            let key = key.first().copied().unwrap_or_default();
            assert_eq!(Point::generator() * key, public.public_key, "n = {n}");
            assert!(!keys.contains(&public.public_key), "n = {n}: the key must be fresh per run");
            keys.push(public.public_key);
        }
    }
}

/// A dealer that deals one node a share off its committed polynomial (and, challenged,
/// publishes that same share) is named by every honest node, with 3 nodes and with 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dealer_dealing_a_bad_share_is_named() {
    for (n, t, dealer) in [(3usize, 1usize, 3u16), (5, 2, 2)] {
        let results = keygen(memory(n), t, Some((dealer, Cheat::KeyDeal))).await;
        for (i, r) in results.iter().enumerate() {
            if i + 1 == usize::from(dealer) {
                assert!(r.is_err(), "n = {n}: the cheating dealer must not finish");
                continue;
            }
            match r {
                Err(PsiError::Dealer { dealer: d, .. }) => assert_eq!(*d, pid(dealer), "n = {n}"),
                other => panic!("n = {n}, node {}: {other:?}", i + 1),
            }
        }
    }
}

/// Node 3 reveals to node 1 other coefficient commitments than it reveals to node 2: the
/// engine's agreement check (digests of every broadcast, exchanged by all) aborts the key
/// generation, and an honest node names node 3 with certainty; no node names anyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dealer_sending_different_commitments_is_named() {
    let t = 1;
    let reveal_len = HEADER + COMMITMENT_BYTES * (t + 1);
    let rule: Box<Rule> = Box::new(move |to: PartyId, kind: u8, msg: &mut [u8]| {
        if kind != KIND_BYTES || to != pid(1) || msg.len() != reveal_len {
            return false;
        }
        // One byte of the constant term's commitment F_{3,0} flipped.
        if let Some(b) = msg.get_mut(HEADER + COMMITMENT_BYTES - 1) {
            *b ^= 1;
        }
        true
    });
    let (transports, cheater) = network_with_cheater(3, 3, rule);
    cheater.unwrap_or_else(|| unreachable!()).arm();
    let results = keygen(transports, t, None).await;
    assert!(results.iter().all(Result::is_err), "{results:?}");
    let named = |r: &Result<KeyShare, PsiError>| match r {
        Err(PsiError::Mpc(MpcError::Cheating { check: Check::BroadcastAgreement, culprit: Culprit::Party(p) })) => {
            Some(*p)
        }
        Err(PsiError::Dealer { dealer, .. }) => Some(*dealer),
        _ => None,
    };
    let honest: Vec<Option<PartyId>> = results.iter().take(2).map(named).collect();
    assert!(honest.contains(&Some(pid(3))), "{results:?}");
    assert!(honest.iter().flatten().all(|p| *p == pid(3)), "{results:?}");
}
