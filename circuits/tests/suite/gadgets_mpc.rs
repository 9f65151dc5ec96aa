//! Every gadget on the Mpc backend, in one session: the opened outputs equal Plain's, and the
//! opened shared witness equals Plain's witness and satisfies the setup-mode R1cs system.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use crate::common;

use ark_bn254::Fr;
use tacit_circuits::gadgets::{
    argmax, argmax_one_hot, commit, is_equal, is_zero, less_than, max, poseidon_hash, range_check, select, sums,
    top_two, top_two_one_hot,
};
use tacit_circuits::mpc::Mpc;
use tacit_circuits::{Backend, Plain, R1cs};
use tacit_mpc_engine::simulate::run_in_memory;
use tacit_mpc_engine::{PartyId, Security};

const INPUTS: [u64; 8] = [5, 9, 9, 2, 7, 1, 0, 1];

/// Every gadget once, on 8 private inputs of party 1 (all below 2^4); reveals everything.
async fn all_gadgets<B: Backend<F = Fr>>(b: &mut B, values: Option<&[Fr]>) -> Vec<Fr> {
    let p1 = PartyId::new(1).unwrap();
    let x = b.private_inputs(p1, values, INPUTS.len()).await.unwrap();
    range_check(b, &x, 4).await.unwrap();
    let mut out = poseidon_hash(b, &[x[..3].to_vec(), x[3..6].to_vec()]).await.unwrap();
    out.extend(commit(b, &x[..2], &x[2..4]).await.unwrap());
    out.extend(less_than(b, &x[..4], &x[4..], 4).await.unwrap());
    out.extend(is_equal(b, &x[..4], &x[4..]).await.unwrap());
    out.extend(is_zero(b, &x).await.unwrap());
    out.extend(select(b, &x[6..8], &x[..2], &x[2..4]).await.unwrap());
    out.extend(sums(b, &[x.clone(), x[..3].to_vec()]));
    let vectors = [x.clone(), x[..3].to_vec(), x[5..6].to_vec()];
    out.extend(max(b, &vectors, 4).await.unwrap());
    out.extend(argmax(b, &vectors, 4).await.unwrap().into_iter().flat_map(|(m, i)| [m, i]));
    out.extend(top_two(b, &vectors, 4).await.unwrap().into_iter().flat_map(|t| [t.max, t.argmax, t.second]));
    out.extend(
        argmax_one_hot(b, &vectors, 4).await.unwrap().into_iter().flat_map(|t| std::iter::once(t.max).chain(t.one_hot)),
    );
    out.extend(
        top_two_one_hot(b, &vectors, 4)
            .await
            .unwrap()
            .into_iter()
            .flat_map(|t| std::iter::once(t.max).chain(t.one_hot).chain(t.second)),
    );
    // Inputs 5..8 are 1, 0, 1: bits.
    b.assert_bits(&x[5..]).await.unwrap();
    let zero_flags = b.reveal_is_zero(&x).await.unwrap();
    // Flags enter the circuit as known inputs (a constant would change the system's shape).
    let flags: Vec<Fr> = zero_flags.into_iter().map(|z| Fr::from(u64::from(z))).collect();
    out.extend(b.known_inputs(&flags).unwrap());
    b.reveal(&out).await.unwrap()
}

#[test]
fn gadgets_on_shares_match_plain() {
    let inputs: Vec<Fr> = INPUTS.iter().map(|v| Fr::from(*v)).collect();
    let mut plain = Plain::new();
    let expected = common::block_on(all_gadgets(&mut plain, Some(&inputs)));
    let mut setup = R1cs::new_setup();
    common::block_on(all_gadgets(&mut setup, None));

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // Both ways of computing the Poseidon S-box give the same witness.
    for one_round_sbox in [false, true] {
        let inputs = inputs.clone();
        let results = runtime.block_on(run_in_memory::<Fr, _, _, _>(3, 1, Security::Malicious, move |e| {
            let inputs = inputs.clone();
            async move {
                let mut b = Mpc::new(e).one_round_sbox(one_round_sbox);
                let p1 = PartyId::new(1).unwrap();
                let me = b.engine().id();
                let out = all_gadgets(&mut b, (me == p1).then_some(&inputs[..])).await;
                let (assignment, mut engine) = b.finish().await.unwrap();
                let witness = engine.open(&assignment.witness).await?;
                Ok((out, assignment.instance, witness))
            }
        }));
        for r in results {
            let (out, instance, witness) = r.unwrap();
            assert_eq!(out, expected, "opened outputs equal Plain's");
            assert_eq!(instance, plain.instance());
            assert_eq!(witness, plain.witness(), "shared witness in R1cs allocation order");
            assert_eq!(setup.first_unsatisfied(&instance, &witness).unwrap(), None);
            let cs = setup.constraint_system_with(&instance, &witness).unwrap();
            assert!(cs.is_satisfied().unwrap());
        }
    }
}
