//! The `R1cs` backend: emits rank-1 constraints over ark-relations variables.
//!
//! ark-relations' `ConstraintSystemRef` is an `Rc<RefCell<_>>` and not `Send`, while a
//! [`Backend`] is, so `R1cs` records its constraints itself, as ark-relations
//! [`LinearCombination`]s over ark-relations [`Variable`]s numbered exactly as a fresh
//! `ConstraintSystem` numbers them (instance `1..`, witness `0..`). It replays them into a
//! `ConstraintSystem` on demand ([`R1cs::constraint_system`], or through its
//! [`ConstraintSynthesizer`] implementation, which is what ark-groth16 takes).
//!
//! Two modes: *setup* ([`R1cs::new_setup`]) records structure only, every value is `None`;
//! *prove* ([`R1cs::new_prove`]) also computes every value and records the full assignment
//! `[1, instance..., witness...]` ([`R1cs::full_assignment`]). The constraints a computation
//! emits never depend on values, so both modes give identical constraints.
//!
//! Linear operations build linear combinations and allocate nothing; every linear
//! combination is kept sorted by variable with no zero coefficients, so it stays as small as
//! the computation allows.

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use ark_ff::PrimeField;
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, ConstraintSystemRef, LinearCombination, SynthesisError, SynthesisMode,
    Variable,
};
use tacit_mpc_engine::PartyId;

use crate::backend::{Backend, ChallengeDeriver, CircuitError, Result};
use crate::plain::{check_bits, check_same_len, is_zero_witness, small_bits};

/// A circuit value: a linear combination of variables, with its value in prove mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LcValue<F: PrimeField> {
    lc: LinearCombination<F>,
    value: Option<F>,
}

impl<F: PrimeField> LcValue<F> {
    /// The linear combination (sorted by variable, no zero coefficients).
    pub fn lc(&self) -> &LinearCombination<F> {
        &self.lc
    }

    /// The value: `Some` in prove mode, `None` in setup mode.
    pub fn value(&self) -> Option<F> {
        self.value
    }

    fn new(lc: LinearCombination<F>, value: Option<F>) -> Self {
        Self { lc, value }
    }

    fn variable(var: Variable, value: Option<F>) -> Self {
        Self { lc: LinearCombination::from(var), value }
    }
}

/// One constraint `<a, z> * <b, z> = <c, z>` over the full assignment `z`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint<F: PrimeField> {
    /// Left factor.
    pub a: LinearCombination<F>,
    /// Right factor.
    pub b: LinearCombination<F>,
    /// Product.
    pub c: LinearCombination<F>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Setup,
    Prove,
}

/// Emits constraints (and, in prove mode, the assignment).
#[derive(Clone, Debug)]
pub struct R1cs<F: PrimeField> {
    mode: Mode,
    /// Instance variables allocated, without the constant one.
    num_instance: usize,
    num_witness: usize,
    /// Prove mode only.
    instance: Vec<F>,
    /// Prove mode only.
    witness: Vec<F>,
    constraints: Vec<Constraint<F>>,
    /// Committed groups, as index ranges of the full assignment.
    groups: Vec<std::ops::Range<usize>>,
    /// The challenge's index in the full assignment, once drawn.
    challenge_index: Option<usize>,
    /// Prove mode: how the challenge is derived.
    deriver: Option<ChallengeDeriver<F>>,
}

/// Drops zero coefficients (ark-relations' own arithmetic keeps them).
fn pruned<F: PrimeField>(mut lc: LinearCombination<F>) -> LinearCombination<F> {
    lc.0.retain(|(c, v)| !c.is_zero() && !v.is_zero());
    lc
}

fn lc_constant<F: PrimeField>(c: F) -> LinearCombination<F> {
    LinearCombination::from((c, Variable::One))
}

fn synthesis(e: SynthesisError) -> CircuitError {
    CircuitError::Synthesis(e.to_string())
}

impl<F: PrimeField> R1cs<F> {
    fn with_mode(mode: Mode) -> Self {
        Self {
            mode,
            num_instance: 0,
            num_witness: 0,
            instance: Vec::new(),
            witness: Vec::new(),
            constraints: Vec::new(),
            groups: Vec::new(),
            challenge_index: None,
            deriver: None,
        }
    }

    /// Sets how the challenge is derived in prove mode (required there if the computation
    /// draws one; setup mode leaves its value unknown).
    pub fn with_challenge(mut self, deriver: ChallengeDeriver<F>) -> Self {
        self.deriver = Some(deriver);
        self
    }

    /// The committed groups so far, as index ranges of the full assignment
    /// `[1, instance..., witness...]` (what `tacit_prover::committed::CommitLayout` takes).
    pub fn committed_groups(&self) -> &[std::ops::Range<usize>] {
        &self.groups
    }

    /// The challenge's index in the full assignment, once drawn.
    pub fn challenge_index(&self) -> Option<usize> {
        self.challenge_index
    }

    /// Setup mode: structure only, no values (for key generation).
    pub fn new_setup() -> Self {
        Self::with_mode(Mode::Setup)
    }

    /// Prove mode: structure and every value (all inputs must be given).
    pub fn new_prove() -> Self {
        Self::with_mode(Mode::Prove)
    }

    /// Whether this is setup mode.
    pub fn is_setup(&self) -> bool {
        self.mode == Mode::Setup
    }

    /// Number of constraints emitted.
    pub fn num_constraints(&self) -> usize {
        self.constraints.len()
    }

    /// Number of instance variables, without the constant one.
    pub fn num_instance(&self) -> usize {
        self.num_instance
    }

    /// Number of witness variables.
    pub fn num_witness(&self) -> usize {
        self.num_witness
    }

    /// The constraints, in emission order.
    pub fn constraints(&self) -> &[Constraint<F>] {
        &self.constraints
    }

    /// Instance values (public inputs and revealed outputs in allocation order, without the
    /// constant one); `None` in setup mode.
    pub fn instance_assignment(&self) -> Option<&[F]> {
        (self.mode == Mode::Prove).then_some(self.instance.as_slice())
    }

    /// Witness values in allocation order; `None` in setup mode.
    pub fn witness_assignment(&self) -> Option<&[F]> {
        (self.mode == Mode::Prove).then_some(self.witness.as_slice())
    }

    /// The full assignment `[1, instance..., witness...]` (prove mode).
    pub fn full_assignment(&self) -> Result<Vec<F>> {
        match self.mode {
            Mode::Setup => Err(CircuitError::Usage("setup mode has no assignment".into())),
            Mode::Prove => Ok(std::iter::once(F::one())
                .chain(self.instance.iter().copied())
                .chain(self.witness.iter().copied())
                .collect()),
        }
    }

    /// Index of the first constraint the given assignment breaks, or `None` if it satisfies
    /// them all. `instance` is without the constant one. Fails on length mismatches.
    pub fn first_unsatisfied(&self, instance: &[F], witness: &[F]) -> Result<Option<usize>> {
        check_same_len("instance assignment", instance.len(), self.num_instance)?;
        check_same_len("witness assignment", witness.len(), self.num_witness)?;
        let z: Vec<F> =
            std::iter::once(F::one()).chain(instance.iter().copied()).chain(witness.iter().copied()).collect();
        let offset = 1 + self.num_instance;
        let eval = |lc: &LinearCombination<F>| -> Result<F> {
            lc.iter().try_fold(F::zero(), |acc, (coeff, var)| {
                let value = var
                    .get_variable_index(offset)
                    .and_then(|i| z.get(i))
                    .ok_or_else(|| CircuitError::Synthesis(format!("unknown variable {var:?}")))?;
                Ok(acc + *coeff * value)
            })
        };
        for (i, con) in self.constraints.iter().enumerate() {
            if eval(&con.a)? * eval(&con.b)? != eval(&con.c)? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// Whether this (prove-mode) system's own assignment satisfies every constraint.
    pub fn is_satisfied(&self) -> Result<bool> {
        match self.mode {
            Mode::Setup => Err(CircuitError::Usage("setup mode has no assignment".into())),
            Mode::Prove => Ok(self.first_unsatisfied(&self.instance, &self.witness)?.is_none()),
        }
    }

    /// A fresh ark-relations constraint system holding these constraints: in setup mode
    /// without an assignment, in prove mode with this system's own assignment.
    pub fn constraint_system(&self) -> Result<ConstraintSystemRef<F>> {
        let cs = ConstraintSystem::<F>::new_ref();
        match self.mode {
            Mode::Setup => {
                cs.set_mode(SynthesisMode::Setup);
                self.replay(&cs, None)?;
            }
            Mode::Prove => self.replay(&cs, Some((&self.instance, &self.witness)))?,
        }
        Ok(cs)
    }

    /// A fresh ark-relations constraint system (prove mode) holding these constraints with
    /// the given assignment, e.g. a witness opened from an `Mpc` run, or a tampered one.
    /// `instance` is without the constant one.
    pub fn constraint_system_with(&self, instance: &[F], witness: &[F]) -> Result<ConstraintSystemRef<F>> {
        check_same_len("instance assignment", instance.len(), self.num_instance)?;
        check_same_len("witness assignment", witness.len(), self.num_witness)?;
        let cs = ConstraintSystem::<F>::new_ref();
        self.replay(&cs, Some((instance, witness)))?;
        Ok(cs)
    }

    /// Allocates this system's variables and enforces its constraints in `cs`, which must be
    /// fresh (no variables yet) so the variable numbering agrees. With `assignment`
    /// `None`, values are reported missing (fine in setup mode).
    fn replay(&self, cs: &ConstraintSystemRef<F>, assignment: Option<(&[F], &[F])>) -> Result<()> {
        self.replay_inner(cs, assignment).map_err(synthesis)
    }

    fn replay_inner(
        &self,
        cs: &ConstraintSystemRef<F>,
        assignment: Option<(&[F], &[F])>,
    ) -> std::result::Result<(), SynthesisError> {
        if cs.num_instance_variables() != 1 || cs.num_witness_variables() != 0 {
            return Err(SynthesisError::Unsatisfiable);
        }
        let (instance, witness) = match assignment {
            Some((i, w)) => (Some(i), Some(w)),
            None => (None, None),
        };
        for i in 0..self.num_instance {
            let var = cs.new_input_variable(|| {
                instance.and_then(|v| v.get(i)).copied().ok_or(SynthesisError::AssignmentMissing)
            })?;
            if var != Variable::instance(i + 1) {
                return Err(SynthesisError::Unsatisfiable);
            }
        }
        for i in 0..self.num_witness {
            let var = cs.new_witness_variable(|| {
                witness.and_then(|v| v.get(i)).copied().ok_or(SynthesisError::AssignmentMissing)
            })?;
            if var != Variable::witness(i) {
                return Err(SynthesisError::Unsatisfiable);
            }
        }
        for con in &self.constraints {
            cs.enforce_r1cs_constraint(|| con.a.clone(), || con.b.clone(), || con.c.clone())?;
        }
        Ok(())
    }

    fn enforce(&mut self, a: LinearCombination<F>, b: LinearCombination<F>, c: LinearCombination<F>) {
        self.constraints.push(Constraint { a, b, c });
    }

    /// In prove mode the value, which must be known; in setup mode `None`.
    fn need(&self, value: Option<F>) -> Result<Option<F>> {
        match self.mode {
            Mode::Setup => Ok(None),
            Mode::Prove => {
                value.map(Some).ok_or_else(|| CircuitError::Synthesis("a value is missing in prove mode".into()))
            }
        }
    }

    fn alloc_witness(&mut self, value: Option<F>) -> Result<LcValue<F>> {
        let value = self.need(value)?;
        if let Some(v) = value {
            self.witness.push(v);
        }
        let var = Variable::witness(self.num_witness);
        self.num_witness += 1;
        Ok(LcValue::variable(var, value))
    }

    fn alloc_instance(&mut self, value: Option<F>) -> Result<LcValue<F>> {
        if self.challenge_index.is_some() {
            return Err(CircuitError::Usage("no instance variable may follow the challenge".into()));
        }
        let value = self.need(value)?;
        if let Some(v) = value {
            self.instance.push(v);
        }
        self.num_instance += 1;
        let var = Variable::instance(self.num_instance);
        Ok(LcValue::variable(var, value))
    }
}

impl<F: PrimeField> Backend for R1cs<F> {
    type F = F;
    type Value = LcValue<F>;

    fn constant(&self, c: F) -> LcValue<F> {
        LcValue::new(lc_constant(c), Some(c))
    }

    fn add(&self, a: &LcValue<F>, b: &LcValue<F>) -> LcValue<F> {
        LcValue::new(pruned(&a.lc + &b.lc), a.value.zip(b.value).map(|(x, y)| x + y))
    }

    fn sub(&self, a: &LcValue<F>, b: &LcValue<F>) -> LcValue<F> {
        LcValue::new(pruned(&a.lc - &b.lc), a.value.zip(b.value).map(|(x, y)| x - y))
    }

    fn scale(&self, a: &LcValue<F>, c: F) -> LcValue<F> {
        let lc = if c.is_zero() { LinearCombination::zero() } else { &a.lc * c };
        LcValue::new(lc, a.value.map(|x| x * c))
    }

    fn add_constant(&self, a: &LcValue<F>, c: F) -> LcValue<F> {
        LcValue::new(pruned(&a.lc + &lc_constant(c)), a.value.map(|x| x + c))
    }

    /// Concatenates and compacts once, instead of merging pairwise.
    fn sum(&self, values: &[LcValue<F>]) -> LcValue<F> {
        let mut lc = LinearCombination(values.iter().flat_map(|v| v.lc.iter().copied()).collect());
        lc.compactify();
        let value = values.iter().try_fold(F::zero(), |acc, v| v.value.map(|x| acc + x));
        LcValue::new(pruned(lc), value)
    }

    async fn private_inputs(&mut self, _owner: PartyId, values: Option<&[F]>, len: usize) -> Result<Vec<LcValue<F>>> {
        match values {
            Some(values) => check_same_len("private_inputs", values.len(), len)?,
            None if self.mode == Mode::Prove => {
                return Err(CircuitError::Usage("R1cs in prove mode needs the values of private inputs".into()))
            }
            None => {}
        }
        (0..len).map(|i| self.alloc_witness(values.and_then(|v| v.get(i)).copied())).collect()
    }

    fn public_inputs(&mut self, values: &[F]) -> Result<Vec<LcValue<F>>> {
        values.iter().map(|v| self.alloc_instance(Some(*v))).collect()
    }

    fn known_inputs(&mut self, values: &[F]) -> Result<Vec<LcValue<F>>> {
        let setup = self.mode == Mode::Setup;
        values.iter().map(|v| self.alloc_witness((!setup).then_some(*v))).collect()
    }

    fn dealt_inputs(&mut self, values: Option<&[F]>, len: usize) -> Result<Vec<LcValue<F>>> {
        match values {
            Some(values) => check_same_len("dealt_inputs", values.len(), len)?,
            None if self.mode == Mode::Prove => {
                return Err(CircuitError::Usage("R1cs in prove mode needs the values of dealt inputs".into()))
            }
            None => {}
        }
        (0..len).map(|i| self.alloc_witness(values.and_then(|v| v.get(i)).copied())).collect()
    }

    fn committed_inputs(&mut self, values: Option<&[F]>, len: usize) -> Result<Vec<LcValue<F>>> {
        if let Some(v) = values {
            check_same_len("committed_inputs", v.len(), len)?;
        }
        let start = 1 + self.num_instance;
        let out = (0..len)
            .map(|i| self.alloc_instance(values.and_then(|v| v.get(i).copied())))
            .collect::<Result<Vec<_>>>()?;
        if len > 0 {
            self.groups.push(start..start + len);
        }
        Ok(out)
    }

    async fn challenge(&mut self) -> Result<LcValue<F>> {
        let value = match self.mode {
            Mode::Setup => None,
            Mode::Prove => {
                let deriver = self
                    .deriver
                    .clone()
                    .ok_or_else(|| CircuitError::Usage("R1cs in prove mode needs a challenge deriver".into()))?;
                let prefix: Vec<F> = std::iter::once(F::one()).chain(self.instance.iter().copied()).collect();
                Some(deriver.derive(&prefix)?)
            }
        };
        let var = self.alloc_instance(value)?;
        self.challenge_index = Some(self.num_instance);
        Ok(var)
    }

    async fn div(&mut self, num: &[LcValue<F>], den: &[LcValue<F>]) -> Result<Vec<LcValue<F>>> {
        check_same_len("div", num.len(), den.len())?;
        let mut out = Vec::with_capacity(num.len());
        for (i, (n, d)) in num.iter().zip(den).enumerate() {
            let value = match (self.need(n.value)?, self.need(d.value)?) {
                (Some(n), Some(d)) => {
                    Some(n * d.inverse().ok_or_else(|| CircuitError::Unsatisfied(format!("divisor {i} is zero")))?)
                }
                _ => None,
            };
            let q = self.alloc_witness(value)?;
            // q * den = num
            self.enforce(q.lc.clone(), d.lc.clone(), n.lc.clone());
            out.push(q);
        }
        Ok(out)
    }

    async fn mul(&mut self, a: &[LcValue<F>], b: &[LcValue<F>]) -> Result<Vec<LcValue<F>>> {
        check_same_len("mul", a.len(), b.len())?;
        let mut out = Vec::with_capacity(a.len());
        for (x, y) in a.iter().zip(b) {
            let c = self.alloc_witness(x.value.zip(y.value).map(|(x, y)| x * y))?;
            self.enforce(x.lc.clone(), y.lc.clone(), c.lc.clone());
            out.push(c);
        }
        Ok(out)
    }

    async fn to_bits(&mut self, a: &[LcValue<F>], bits: u32) -> Result<Vec<Vec<LcValue<F>>>> {
        check_bits(bits)?;
        let mut out = Vec::with_capacity(a.len());
        for x in a {
            let values: Vec<Option<F>> = match self.need(x.value)? {
                Some(v) => small_bits(v, bits)?.into_iter().map(|b| Some(F::from(b))).collect(),
                None => vec![None; bits as usize],
            };
            let mut decomposed = Vec::with_capacity(values.len());
            let mut recomposed = Vec::with_capacity(values.len());
            let mut power = F::one();
            for value in values {
                let bit = self.alloc_witness(value)?;
                // b * (1 - b) = 0
                let one_minus = pruned(&lc_constant(F::one()) - &bit.lc);
                self.enforce(bit.lc.clone(), one_minus, LinearCombination::zero());
                recomposed.extend(bit.lc.iter().map(|(c, v)| (*c * power, *v)));
                power.double_in_place();
                decomposed.push(bit);
            }
            // (sum 2^i b_i) * 1 = a
            let mut recomposed = LinearCombination(recomposed);
            recomposed.compactify();
            self.enforce(pruned(recomposed), lc_constant(F::one()), x.lc.clone());
            out.push(decomposed);
        }
        Ok(out)
    }

    async fn is_zero(&mut self, a: &[LcValue<F>]) -> Result<Vec<LcValue<F>>> {
        let mut out = Vec::with_capacity(a.len());
        for x in a {
            let (z, h) = match self.need(x.value)? {
                Some(v) => {
                    let (z, h) = is_zero_witness(v);
                    (Some(z), Some(h))
                }
                None => (None, None),
            };
            let z = self.alloc_witness(z)?;
            let h = self.alloc_witness(h)?;
            // a * h = 1 - z
            self.enforce(x.lc.clone(), h.lc.clone(), pruned(&lc_constant(F::one()) - &z.lc));
            // a * z = 0
            self.enforce(x.lc.clone(), z.lc.clone(), LinearCombination::zero());
            out.push(z);
        }
        Ok(out)
    }

    fn assert_zero(&mut self, a: &[LcValue<F>]) -> Result<()> {
        for (i, x) in a.iter().enumerate() {
            if let Some(v) = self.need(x.value)? {
                if !v.is_zero() {
                    return Err(CircuitError::Unsatisfied(format!("asserted-zero value {i} is not zero")));
                }
            }
        }
        for x in a {
            self.enforce(x.lc.clone(), lc_constant(F::one()), LinearCombination::zero());
        }
        Ok(())
    }

    async fn assert_bits(&mut self, a: &[LcValue<F>]) -> Result<()> {
        for (i, x) in a.iter().enumerate() {
            if let Some(v) = self.need(x.value)? {
                if v.square() != v {
                    return Err(CircuitError::Unsatisfied(format!("asserted bit {i} is not a bit")));
                }
            }
        }
        for x in a {
            // x * x = x
            self.enforce(x.lc.clone(), x.lc.clone(), x.lc.clone());
        }
        Ok(())
    }

    async fn reveal_is_zero(&mut self, a: &[LcValue<F>]) -> Result<Vec<bool>> {
        a.iter().map(|x| Ok(self.need(x.value)?.is_none_or(|v| v.is_zero()))).collect()
    }

    /// In setup mode the outputs are unknown and returned as zeros.
    async fn reveal(&mut self, a: &[LcValue<F>]) -> Result<Vec<F>> {
        let mut out = Vec::with_capacity(a.len());
        for x in a {
            let public = self.alloc_instance(x.value)?;
            // a * 1 = public
            self.enforce(x.lc.clone(), lc_constant(F::one()), public.lc);
            out.push(public.value.unwrap_or_else(F::zero));
        }
        Ok(out)
    }
}

impl<F: PrimeField> ConstraintSynthesizer<F> for &R1cs<F> {
    /// Replays the recorded system into `cs` (which must be fresh). In prove mode `cs` gets
    /// this system's assignment; synthesizing a setup-mode `R1cs` into a prove-mode `cs`
    /// fails with `AssignmentMissing`.
    fn generate_constraints(self, cs: ConstraintSystemRef<F>) -> std::result::Result<(), SynthesisError> {
        match self.mode {
            Mode::Setup => self.replay_inner(&cs, None),
            Mode::Prove => self.replay_inner(&cs, Some((&self.instance, &self.witness))),
        }
    }
}
