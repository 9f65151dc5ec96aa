//! Shared test harness: runs one computation with `Plain`, `R1cs` in prove mode and `R1cs` in
//! setup mode, and checks that they agree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, dead_code)]

use std::future::Future;

use ark_bn254::Fr;
use ark_ff::One;
use tacit_circuits::{Backend, Plain, R1cs, Result};
use tacit_mpc_engine::PartyId;

pub fn block_on<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

pub fn fr(v: u64) -> Fr {
    Fr::from(v)
}

pub fn p1() -> PartyId {
    PartyId::new(1).unwrap()
}

/// A computation over private inputs, returning values to reveal.
#[allow(async_fn_in_trait)]
pub trait Circuit {
    async fn run<B: Backend<F = Fr>>(&self, b: &mut B, inputs: Vec<B::Value>) -> Result<Vec<B::Value>>;
}

/// What [`check`] found.
#[derive(Debug)]
pub struct Checked {
    /// The revealed outputs (Plain's, equal to R1cs's).
    pub outputs: Vec<Fr>,
    /// The Plain backend after the run (counts, witness).
    pub plain: Plain<Fr>,
    /// The prove-mode system.
    pub r1cs: R1cs<Fr>,
    /// Witness indices whose value can change (by +1) without breaking a constraint.
    pub free_witnesses: Vec<usize>,
}

async fn run_on<B: Backend<F = Fr>, C: Circuit>(b: &mut B, c: &C, values: Option<&[Fr]>, len: usize) -> Vec<Fr> {
    let inputs = b.private_inputs(p1(), values, len).await.unwrap();
    let outputs = c.run(b, inputs).await.unwrap();
    b.reveal(&outputs).await.unwrap()
}

/// Runs `c` on `inputs` three ways and checks: R1cs (prove) reveals Plain's outputs and has
/// Plain's witness and instance; its own check and ark-relations both find it satisfied;
/// setup mode emits the very same constraints and variables; changing any revealed output is
/// rejected; changing a witness value is rejected (the indices for which it is not are
/// returned, for the caller to judge).
pub fn check<C: Circuit>(c: &C, inputs: &[Fr]) -> Checked {
    block_on(async {
        let mut plain = Plain::new();
        let outputs = run_on(&mut plain, c, Some(inputs), inputs.len()).await;

        let mut r1cs = R1cs::new_prove();
        let r_outputs = run_on(&mut r1cs, c, Some(inputs), inputs.len()).await;
        assert_eq!(r_outputs, outputs, "R1cs and Plain reveal the same");
        let witness = r1cs.witness_assignment().unwrap().to_vec();
        let instance = r1cs.instance_assignment().unwrap().to_vec();
        assert_eq!(witness, plain.witness(), "same witness in the same order");
        assert_eq!(instance, plain.instance(), "same instance");
        assert_eq!(instance, outputs);
        assert!(r1cs.is_satisfied().unwrap());
        let cs = r1cs.constraint_system().unwrap();
        assert!(cs.is_satisfied().unwrap(), "ark-relations: satisfied");
        assert_eq!(cs.num_constraints(), r1cs.num_constraints());
        assert_eq!(cs.num_witness_variables(), r1cs.num_witness());
        assert_eq!(cs.num_instance_variables(), r1cs.num_instance() + 1);
        let full = r1cs.full_assignment().unwrap();
        assert_eq!(full.len(), 1 + instance.len() + witness.len());
        assert_eq!(full[0], Fr::one());

        let mut setup = R1cs::new_setup();
        let s_outputs = run_on(&mut setup, c, None, inputs.len()).await;
        assert_eq!(s_outputs.len(), outputs.len());
        assert_eq!(setup.num_constraints(), r1cs.num_constraints());
        assert_eq!(setup.num_witness(), r1cs.num_witness());
        assert_eq!(setup.num_instance(), r1cs.num_instance());
        assert_eq!(setup.constraints(), r1cs.constraints(), "constraints do not depend on values");
        assert!(setup.witness_assignment().is_none());
        let setup_cs = setup.constraint_system().unwrap();
        assert_eq!(setup_cs.num_constraints(), r1cs.num_constraints());
        assert_eq!(setup_cs.num_witness_variables(), r1cs.num_witness());
        // A wrong opened witness checked against the setup-mode system.
        assert_eq!(setup.first_unsatisfied(&instance, &witness).unwrap(), None);

        for j in 0..instance.len() {
            let mut bad = instance.clone();
            bad[j] += Fr::one();
            assert!(r1cs.first_unsatisfied(&bad, &witness).unwrap().is_some(), "wrong output {j} rejected");
        }
        let mut free_witnesses = Vec::new();
        for i in 0..witness.len() {
            let mut bad = witness.clone();
            bad[i] += Fr::one();
            if r1cs.first_unsatisfied(&instance, &bad).unwrap().is_none() {
                free_witnesses.push(i);
            }
        }
        // ark-relations agrees on one tampered, constrained witness value.
        if let Some(i) = (0..witness.len()).find(|i| !free_witnesses.contains(i)) {
            let mut bad = witness.clone();
            bad[i] += Fr::one();
            let cs = r1cs.constraint_system_with(&instance, &bad).unwrap();
            assert!(!cs.is_satisfied().unwrap(), "ark-relations rejects wrong witness {i}");
            let cs = setup.constraint_system_with(&instance, &bad).unwrap();
            assert!(!cs.is_satisfied().unwrap(), "ark-relations (setup-mode system) rejects wrong witness {i}");
        }

        Checked { outputs, plain, r1cs, free_witnesses }
    })
}
