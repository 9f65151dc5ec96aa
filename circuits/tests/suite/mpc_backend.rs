//! The Mpc backend on its own: results against plaintext, and the recorded witness order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use ark_bn254::Fr;
use ark_ff::Field;
use tacit_circuits::mpc::Mpc;
use tacit_circuits::Backend;
use tacit_mpc_engine::simulate::run_in_memory;
use tacit_mpc_engine::{PartyId, Security};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn operations_and_witness_order() {
    let inputs: Vec<Fr> = [0u64, 5, 0, 7].into_iter().map(Fr::from).collect();
    let results = runtime().block_on(run_in_memory::<Fr, _, _, _>(3, 1, Security::Malicious, move |e| {
        let inputs = inputs.clone();
        async move {
            let mut b = Mpc::new(e);
            let p1 = PartyId::new(1).unwrap();
            let me = b.engine().id();
            let x = b.private_inputs(p1, (me == p1).then_some(&inputs[..]), 4).await.unwrap();
            let sq = b.mul(&x, &x).await.unwrap();
            let bits = b.to_bits(&x[1..2], 3).await.unwrap();
            assert_eq!((bits.len(), bits[0].len()), (1, 3));
            let zero = b.is_zero(&x).await.unwrap();
            let diff = b.sub(&sq[1], &b.constant(Fr::from(25u64)));
            b.assert_zero(&[diff]).unwrap();
            let out = b.reveal(&zero).await.unwrap();
            let (assignment, mut engine) = b.finish().await.unwrap();
            let witness = engine.open(&assignment.witness).await?;
            Ok((out, assignment.instance, witness))
        }
    }));
    for r in results {
        let (out, instance, witness) = r.unwrap();
        let f = |v: u64| Fr::from(v);
        assert_eq!(out, vec![f(1), f(0), f(1), f(0)]);
        assert_eq!(instance, out, "revealed values are instance variables");
        // inputs (4), squares (4), bits of 5 (3), then (flag, hint) per value.
        let inv5 = f(5).inverse().unwrap();
        let inv7 = f(7).inverse().unwrap();
        let expected = vec![
            f(0),
            f(5),
            f(0),
            f(7),
            f(0),
            f(25),
            f(0),
            f(49),
            f(1),
            f(0),
            f(1),
            f(1),
            f(1),
            f(0),
            inv5,
            f(1),
            f(1),
            f(0),
            inv7,
        ];
        assert_eq!(witness, expected);
    }
}

#[test]
fn false_zero_assertion_aborts_before_reveal() {
    let results = runtime().block_on(run_in_memory::<Fr, _, _, _>(3, 1, Security::Malicious, |e| async move {
        let mut b = Mpc::new(e);
        let p1 = PartyId::new(1).unwrap();
        let me = b.engine().id();
        let x = b.private_inputs(p1, (me == p1).then_some(&[Fr::from(3u64)][..]), 1).await.unwrap();
        b.assert_zero(&x).unwrap();
        Ok(b.reveal(&x).await.is_err())
    }));
    for r in results {
        assert!(r.unwrap(), "reveal refuses after a false assertion");
    }
}

#[test]
fn out_of_range_input_aborts_before_any_output() {
    // A party inputs 2^20 where the circuit decomposes into 16 bits.
    let results = runtime().block_on(run_in_memory::<Fr, _, _, _>(3, 1, Security::Malicious, |e| async move {
        let mut b = Mpc::new(e);
        let p1 = PartyId::new(1).unwrap();
        let me = b.engine().id();
        let x = b.private_inputs(p1, (me == p1).then_some(&[Fr::from(1u64 << 20)][..]), 1).await.unwrap();
        let bits = b.to_bits(&x, 16).await.unwrap();
        Ok(b.reveal(&bits[0]).await.is_err())
    }));
    for r in results {
        assert!(r.unwrap(), "an out-of-range decomposition must not be revealed");
    }
}

#[test]
fn a_non_bit_asserted_a_bit_aborts_before_reveal() {
    // Values 1, 0, 2: the last is not a bit; reveal must refuse, whatever the coin.
    let results = runtime().block_on(run_in_memory::<Fr, _, _, _>(3, 1, Security::Malicious, |e| async move {
        let mut b = Mpc::new(e);
        let p1 = PartyId::new(1).unwrap();
        let me = b.engine().id();
        let values = [Fr::from(1u64), Fr::from(0u64), Fr::from(2u64)];
        let x = b.private_inputs(p1, (me == p1).then_some(&values[..]), 3).await.unwrap();
        b.assert_bits(&x).await.unwrap();
        Ok(b.reveal(&x[..1]).await.is_err())
    }));
    for r in results {
        assert!(r.unwrap(), "reveal refuses after a false bit assertion");
    }
}

#[test]
fn reveal_is_zero_opens_only_the_flags() {
    let results = runtime().block_on(run_in_memory::<Fr, _, _, _>(3, 1, Security::Malicious, |e| async move {
        let mut b = Mpc::new(e);
        let p1 = PartyId::new(1).unwrap();
        let me = b.engine().id();
        let values = [Fr::from(0u64), Fr::from(12345u64), Fr::from(0u64)];
        let x = b.private_inputs(p1, (me == p1).then_some(&values[..]), 3).await.unwrap();
        let known = b.known_inputs(&[Fr::from(0u64), Fr::from(4u64)]).unwrap();
        let all: Vec<_> = x.iter().chain(&known).cloned().collect();
        let flags = b.reveal_is_zero(&all).await.unwrap();
        // Nothing is recorded: the witness is the three inputs and the two known values.
        let (assignment, _) = b.finish().await.unwrap();
        Ok((flags, assignment.witness.len()))
    }));
    for r in results {
        assert_eq!(r.unwrap(), (vec![true, false, true, true, false], 5));
    }
}
