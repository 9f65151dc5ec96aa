//! A malicious party over the in-memory transport: every cheat aborts the honest parties
//! before any output is revealed, naming the cheater wherever the protocol can identify it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use crate::common;

use std::sync::Arc;

use ark_bn254::Fr;
use common::{add_to_element, network_with_cheater, Cheater, KIND_BROADCAST};
use tacit_mpc_engine::simulate::run_engines;
use tacit_mpc_engine::{Check, Culprit, Engine, MpcError, PartyId, Security, SessionId, Shares};

type E = Engine<Fr, Cheater>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn pid(i: u16) -> PartyId {
    PartyId::new(i).unwrap()
}

/// Parties 1 and 2 input a vector each, the product is computed, and every party opens it.
/// `before_open` runs at the cheater just before the opening (to arm it there).
async fn product_job(mut e: E, cheater: Arc<Cheater>, cheat_at: &'static str) -> Result<Vec<Fr>, MpcError> {
    let me = e.id();
    let is_cheater = me == cheater.as_ref().id_of();
    // Large batches take the king-based degree reduction, small ones the all-to-all one.
    let (cheat_at, len) = match cheat_at.strip_suffix("-large") {
        Some(base) => (base, 5000u64),
        None => (cheat_at, 8u64),
    };
    let xs: Vec<Fr> = (1..=len).map(Fr::from).collect();
    let ys: Vec<Fr> = (11..=len + 10).map(Fr::from).collect();
    let x = e.input(pid(1), (me == pid(1)).then_some(&xs[..]), len as usize).await?;
    let y = e.input(pid(2), (me == pid(2)).then_some(&ys[..]), len as usize).await?;
    let z = match cheat_at {
        "multiplication" => {
            if is_cheater {
                cheater.arm();
            }
            let z = e.mul(&x, &y).await?;
            if is_cheater {
                cheater.disarm();
            }
            z
        }
        "additive" => {
            if is_cheater {
                e.inject_product_error_for_tests(Fr::from(5u64));
            }
            e.mul(&x, &y).await?
        }
        "bit-dealing" => {
            if is_cheater {
                cheater.arm();
            }
            let bits = e.take_bits(len as usize).await?;
            if is_cheater {
                cheater.disarm();
            }
            bits.into_shares()
        }
        "triple-generation" => {
            if is_cheater {
                cheater.arm();
            }
            let triples = e.triples(len as usize).await?;
            if is_cheater {
                cheater.disarm();
            }
            e.mul_beaver(&x, &y, triples).await?
        }
        "triple-share" => {
            let mut triples = e.triples(len as usize).await?;
            if is_cheater {
                triples.tamper_for_tests(Fr::from(1u64));
            }
            e.mul_beaver(&x, &y, triples).await?
        }
        _ => e.mul(&x, &y).await?,
    };
    if cheat_at == "opening" {
        e.verify().await?;
        if is_cheater {
            cheater.arm();
        }
    }
    e.open(&z).await
}

trait IdOf {
    fn id_of(&self) -> PartyId;
}
impl IdOf for Cheater {
    fn id_of(&self) -> PartyId {
        tacit_mpc_engine::Transport::id(self)
    }
}

/// Runs the job with `cheater` applying `rule`; returns the honest parties' results.
fn run(
    n: usize,
    t: usize,
    cheater_id: usize,
    cheat_at: &'static str,
    rule: Box<common::Rule>,
) -> Vec<(PartyId, Result<Vec<Fr>, MpcError>)> {
    let (transports, cheater) = network_with_cheater(n, cheater_id, rule);
    let results = runtime().block_on(run_engines::<Fr, _, _, _, _>(
        transports,
        t,
        Security::Malicious,
        SessionId::random(),
        move |e| product_job(e, cheater.clone(), cheat_at),
    ));
    results
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i + 1 != cheater_id)
        .map(|(i, r)| (PartyId::from_index(i).unwrap(), r))
        .collect()
}

fn add_one_to_first_element(_to: PartyId, kind: u8, msg: &mut [u8]) -> bool {
    if kind == KIND_BROADCAST {
        add_to_element(msg, 0, Fr::from(1u64));
        true
    } else {
        false
    }
}

#[test]
fn honest_run_opens_the_product() {
    for (i, r) in run(3, 1, 3, "none", Box::new(|_, _, _| false)) {
        let v = r.unwrap_or_else(|e| panic!("{i}: {e}"));
        assert_eq!(v[0], Fr::from(11u64));
        assert_eq!(v[7], Fr::from(8u64 * 18));
    }
}

#[test]
fn wrong_share_in_opening_aborts_and_is_named_where_identifiable() {
    // n = 3, t = 1: detected, but three shares cannot say whose is wrong.
    for (i, r) in run(3, 1, 3, "opening", Box::new(add_one_to_first_element)) {
        match r {
            Err(MpcError::Cheating { check: Check::OpeningConsistency, .. }) => {}
            other => panic!("{i} should abort on the opening, got {other:?}"),
        }
    }
    // n = 4 and 5, t = 1: error correction names the cheater.
    for n in [4, 5] {
        for (i, r) in run(n, 1, 2, "opening", Box::new(add_one_to_first_element)) {
            match r {
                Err(MpcError::Cheating { check: Check::OpeningConsistency, culprit: Culprit::Party(p) }) => {
                    assert_eq!(p, pid(2), "{i} blames the cheater")
                }
                other => panic!("{i} should name P2, got {other:?}"),
            }
        }
    }
}

/// Every honest party aborted (having caught the cheat with one of `checks`, or told by a
/// peer that did); nobody blamed an honest party with certainty; some honest party caught it
/// itself; with `must_name`, some honest party named the cheater.
fn assert_aborted(
    results: Vec<(PartyId, Result<Vec<Fr>, MpcError>)>,
    cheater: PartyId,
    checks: &[Check],
    must_name: bool,
) {
    let mut named = false;
    let mut caught = false;
    for (i, r) in results {
        match r {
            Err(MpcError::Cheating { check, culprit }) => {
                assert!(checks.contains(&check), "{i}: unexpected check {check:?}");
                caught = true;
                match culprit {
                    Culprit::Party(p) => {
                        assert_eq!(p, cheater, "{i} must not blame an honest party");
                        named = true;
                    }
                    Culprit::OneOf(ps) => assert!(ps.contains(&cheater), "{i}: suspects {ps:?}"),
                    Culprit::Unknown => {}
                }
            }
            Err(MpcError::PeerAborted { .. }) => {}
            other => panic!("{i} should abort, got {other:?}"),
        }
    }
    assert!(caught, "an honest party caught the cheat");
    assert!(named || !must_name, "some honest party names the cheater");
}

#[test]
fn error_added_to_a_product_is_caught_before_output() {
    // n = 3: only the batched verification can see it.
    assert_aborted(
        run(3, 1, 3, "multiplication", Box::new(add_one_to_first_element)),
        pid(3),
        &[Check::Multiplication, Check::OpeningConsistency],
        false,
    );
    // n = 5, t = 1: the degree-2t opening has redundancy, so it is caught there and named.
    assert_aborted(
        run(5, 1, 3, "multiplication", Box::new(add_one_to_first_element)),
        pid(3),
        &[Check::OpeningConsistency],
        true,
    );
    // n = 5, t = 2: no redundancy again.
    assert_aborted(
        run(5, 2, 3, "multiplication", Box::new(add_one_to_first_element)),
        pid(3),
        &[Check::Multiplication, Check::OpeningConsistency],
        false,
    );
}

#[test]
fn consistent_additive_attack_is_caught_by_the_verification() {
    for (n, t) in [(3, 1), (5, 2), (7, 3)] {
        assert_aborted(run(n, t, 2, "additive", Box::new(|_, _, _| false)), pid(2), &[Check::Multiplication], false);
    }
}

#[test]
fn cheating_in_king_based_degree_reduction_is_caught() {
    // A consistent additive error in a large batch.
    assert_aborted(run(3, 1, 2, "additive-large", Box::new(|_, _, _| false)), pid(2), &[Check::Multiplication], false);
    // The cheater, as king of its block, sends P1 a different block than the others.
    let rule = |to: PartyId, kind: u8, msg: &mut [u8]| {
        if kind == KIND_BROADCAST && to == pid(1) {
            add_to_element(msg, 3, Fr::from(1u64));
            true
        } else {
            false
        }
    };
    assert_aborted(run(3, 1, 3, "multiplication-large", Box::new(rule)), pid(3), &[Check::BroadcastAgreement], true);
    // With redundancy (n = 5, t = 1) a king names a wrong share sent to it.
    let to_kings = |_to: PartyId, kind: u8, msg: &mut [u8]| {
        if kind == 3 {
            add_to_element(msg, 0, Fr::from(1u64));
            true
        } else {
            false
        }
    };
    assert_aborted(
        run(5, 1, 4, "multiplication-large", Box::new(to_kings)),
        pid(4),
        &[Check::OpeningConsistency],
        true,
    );
}

#[test]
fn dealing_a_non_bit_is_caught_before_output() {
    // Dealer P1 shifts the shares it deals by one: the dealt value is then 1 or 2.
    let rule = |_to: PartyId, kind: u8, msg: &mut [u8]| {
        if kind == common::KIND_DEAL {
            for i in 0..8 {
                add_to_element(msg, i, Fr::from(1u64));
            }
            true
        } else {
            false
        }
    };
    assert_aborted(
        run(3, 1, 1, "bit-dealing", Box::new(rule)),
        pid(1),
        &[Check::Multiplication, Check::OpeningConsistency],
        false,
    );
}

#[test]
fn corrupted_triple_is_caught_before_output() {
    // The cheater adds an error while the triples are generated: c != a*b.
    assert_aborted(
        run(3, 1, 3, "triple-generation", Box::new(add_one_to_first_element)),
        pid(3),
        &[Check::Multiplication, Check::OpeningConsistency],
        false,
    );
    // The cheater uses a triple whose c share it changed itself: its output share is off.
    assert_aborted(
        run(3, 1, 3, "triple-share", Box::new(|_, _, _| false)),
        pid(3),
        &[Check::OpeningConsistency],
        false,
    );
    assert_aborted(run(4, 1, 3, "triple-share", Box::new(|_, _, _| false)), pid(3), &[Check::OpeningConsistency], true);
}

#[test]
fn equivocation_is_caught_and_named() {
    // The cheater sends P1 a different degree-reduction message than everyone else.
    let rule = |to: PartyId, kind: u8, msg: &mut [u8]| {
        if kind == KIND_BROADCAST && to == pid(1) {
            add_to_element(msg, 0, Fr::from(1u64));
            true
        } else {
            false
        }
    };
    assert_aborted(run(3, 1, 3, "multiplication", Box::new(rule)), pid(3), &[Check::BroadcastAgreement], true);
    assert_aborted(run(5, 2, 3, "multiplication", Box::new(rule)), pid(3), &[Check::BroadcastAgreement], true);
    // With redundancy P1 already sees inconsistent shares and names the cheater.
    assert_aborted(
        run(5, 1, 3, "multiplication", Box::new(rule)),
        pid(3),
        &[Check::BroadcastAgreement, Check::OpeningConsistency],
        true,
    );
}

#[test]
fn aborted_session_stays_aborted() {
    let results = runtime().block_on(tacit_mpc_engine::simulate::run_in_memory::<Fr, _, _, _>(
        3,
        1,
        Security::Malicious,
        |mut e| async move {
            let x = Shares::<Fr>::zeros(2);
            let y = Shares::<Fr>::zeros(3);
            assert!(matches!(e.mul(&x, &y).await, Err(MpcError::Usage(_))));
            Ok(matches!(e.mul(&x, &x).await, Err(MpcError::Aborted)))
        },
    ));
    for r in results {
        assert!(r.unwrap());
    }
}

#[test]
fn malformed_messages_are_protocol_errors_naming_the_sender() {
    type Mangle = fn(&mut [u8]);
    let cases: [(&str, Mangle); 4] = [
        ("element above the modulus", |m| {
            if let Some(e) = m.get_mut(9..41) {
                e.fill(0xff);
            }
        }),
        ("wrong element count", |m| {
            if let Some(c) = m.get_mut(5..9) {
                c.copy_from_slice(&7u32.to_le_bytes());
            }
        }),
        ("wrong step", |m| {
            if let Some(c) = m.get_mut(1..5) {
                c.copy_from_slice(&999u32.to_le_bytes());
            }
        }),
        ("wrong kind", |m| {
            if let Some(k) = m.first_mut() {
                *k = 9;
            }
        }),
    ];
    for (what, mangle) in cases {
        let rule = move |_to: PartyId, kind: u8, msg: &mut [u8]| {
            if kind == KIND_BROADCAST {
                mangle(msg);
                true
            } else {
                false
            }
        };
        for (i, r) in run(3, 1, 3, "multiplication", Box::new(rule)) {
            match r {
                Err(MpcError::Protocol { peer, .. }) => assert_eq!(peer, pid(3), "{what}: {i} blames the sender"),
                Err(MpcError::PeerAborted { .. }) => {}
                other => panic!("{what}: {i} should fail with a protocol error, got {other:?}"),
            }
        }
    }
}
