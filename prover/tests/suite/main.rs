//! Tests of keys, the explicit prover, the snarkjs/EVM formats and the collaborative prover
//! (one binary; see the workspace README's *Layout of tests*).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ark_bn254::{Bn254, Fr};
use ark_groth16::ProvingKey;
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, LinearCombination, SynthesisError, Variable};
use ark_std::rand::{rngs::StdRng, SeedableRng};

use tacit_prover::keys;
use tacit_prover::qap::R1csMatrices;

mod collaborative;
mod committed;
mod formats;
mod prover;

pub(crate) fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A scratch directory removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tacit-prover-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Public `x`, `y`; witness `w` with `w² + y = x`, plus a constraint over nested symbolic
/// linear combinations (exercises LC inlining): `(w + y + w) · 1 = 2w + y`.
#[derive(Clone, Copy)]
pub(crate) struct Toy {
    pub(crate) w: Option<Fr>,
    pub(crate) y: Option<Fr>,
    pub(crate) x: Option<Fr>,
}

impl Toy {
    pub(crate) fn new(w: u64, y: u64) -> Self {
        let (w, y) = (Fr::from(w), Fr::from(y));
        Self { w: Some(w), y: Some(y), x: Some(w * w + y) }
    }
    pub(crate) fn blank() -> Self {
        Self { w: None, y: None, x: None }
    }
}

impl ConstraintSynthesizer<Fr> for Toy {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> ark_relations::gr1cs::Result<()> {
        let x = cs.new_input_variable(|| self.x.ok_or(SynthesisError::AssignmentMissing))?;
        let y = cs.new_input_variable(|| self.y.ok_or(SynthesisError::AssignmentMissing))?;
        let w = cs.new_witness_variable(|| self.w.ok_or(SynthesisError::AssignmentMissing))?;
        let t = cs.new_witness_variable(|| self.w.map(|w| w * w).ok_or(SynthesisError::AssignmentMissing))?;
        let u = cs.new_witness_variable(|| {
            self.w.zip(self.y).map(|(w, y)| w + w + y).ok_or(SynthesisError::AssignmentMissing)
        })?;
        cs.enforce_r1cs_constraint(|| w.into(), || w.into(), || t.into())?;
        cs.enforce_r1cs_constraint(|| LinearCombination::from(t) + y, || Variable::One.into(), || x.into())?;
        let s1 = cs.new_lc(|| LinearCombination::from(w) + y)?;
        let s2 = cs.new_lc(|| LinearCombination::from(s1) + w)?;
        cs.enforce_r1cs_constraint(|| s2.into(), || Variable::One.into(), || u.into())?;
        Ok(())
    }
}

/// `x_{i+1} = x_i² + i` for `i < n`, public `x_0` and `x_n`: `n + 1` constraints.
#[derive(Clone)]
pub(crate) struct Chain {
    pub(crate) n: usize,
    pub(crate) x0: Option<Fr>,
}

impl Chain {
    pub(crate) fn output(&self) -> Option<Fr> {
        let mut x = self.x0?;
        for i in 0..self.n {
            x = x * x + Fr::from(i as u64);
        }
        Some(x)
    }
}

impl ConstraintSynthesizer<Fr> for Chain {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> ark_relations::gr1cs::Result<()> {
        let out_value = self.output();
        let x0 = cs.new_input_variable(|| self.x0.ok_or(SynthesisError::AssignmentMissing))?;
        let out = cs.new_input_variable(|| out_value.ok_or(SynthesisError::AssignmentMissing))?;
        let mut x = x0;
        let mut value = self.x0;
        for i in 0..self.n {
            let k = Fr::from(i as u64);
            let next_value = value.map(|v| v * v + k);
            let next = cs.new_witness_variable(|| next_value.ok_or(SynthesisError::AssignmentMissing))?;
            cs.enforce_r1cs_constraint(
                || x.into(),
                || x.into(),
                || LinearCombination::from(next) - (k, Variable::One),
            )?;
            x = next;
            value = next_value;
        }
        cs.enforce_r1cs_constraint(|| x.into(), || Variable::One.into(), || out.into())?;
        Ok(())
    }
}

pub(crate) fn setup_toy() -> (ProvingKey<Bn254>, R1csMatrices) {
    keys::setup(Toy::blank(), &mut rng(1)).unwrap()
}

pub(crate) fn setup_chain(n: usize) -> (ProvingKey<Bn254>, R1csMatrices) {
    keys::setup(Chain { n, x0: None }, &mut rng(2)).unwrap()
}

pub(crate) fn write_read_vk(pk: &ProvingKey<Bn254>, dir: &Path) -> ark_groth16::VerifyingKey<Bn254> {
    let path = dir.join("vk.bin");
    keys::write_verifying_key(&pk.vk, &path).unwrap();
    keys::read_verifying_key(&path).unwrap()
}

/// A point on the G2 curve that is not in the prime-order subgroup (the G2 cofactor is large,
/// so the first point found from a small x almost surely is one).
pub(crate) fn g2_outside_subgroup() -> ark_bn254::G2Affine {
    use ark_bn254::{Fq, Fq2, G2Affine};
    (1u64..)
        .filter_map(|i| G2Affine::get_point_from_x_unchecked(Fq2::new(Fq::from(i), Fq::from(0u64)), false))
        .find(|p| p.is_on_curve() && !p.is_in_correct_subgroup_assuming_on_curve())
        .unwrap()
}
