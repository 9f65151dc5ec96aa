//! The Groth16 prover for BN254 as explicit steps, matching ark-groth16 0.6's
//! `LibsnarkReduction` + `create_proof_with_assignment` bit for bit (same `r`, `s` give the
//! same proof), so proofs verify with `ark_groth16::Groth16::<Bn254>::verify`.
//!
//! The steps, on the full assignment `z = [1, instance..., witness...]`:
//!
//! 1. [`abc_evaluations`]: `A·z`, `B·z`, `C·z` row by row, padded to the evaluation domain,
//!    plus the reduction's *instance copy rows*: `a[m + i] = z[i]` for `i < num_instance`
//!    (`m` = number of constraints; `b`, `c` are zero there). **Linear** in `z`.
//! 2. [`to_coset_evaluations`]: iFFT on the domain, then FFT on the coset
//!    `F::GENERATOR · domain` (generator 5 for BN254 `Fr`). **Linear**.
//! 3. [`pointwise_ab_minus_c`]: `a_i · b_i − c_i` on the coset. The **only non-linear step**.
//! 4. [`h_from_coset_product`]: multiply by `1 / Z(g)` (the vanishing polynomial is the constant
//!    `g^n − 1` on the coset), coset iFFT → the `n` coefficients of `h`. **Linear**.
//! 5. MSMs, each **linear** in its scalars ([`msm_a`], [`msm_b_g2`], [`msm_b_g1`],
//!    [`msm_c_parts`]), and [`finish_c`], linear in `(c_parts, r, s, r·s)` once `A` and `B1` are
//!    public.
//!
//! [`prove_single`] chains them. A collaborative prover runs the same functions on shares:
//! every step except 3 commutes with linear secret sharing. Two things to respect there:
//!
//! * `z[0]` is the constant one, and the MSMs add the constants `alpha`, `beta` once. With
//!   Shamir shares that is right as is (each party uses `1` as its share of the constant and
//!   adds the constant points; Lagrange weights sum to one). With additive shares exactly one
//!   party may hold `z[0] = 1` and add the constants; the others use `z[0] = 0` and subtract
//!   them (or the caller handles constants separately).
//! * The domain is `GeneralEvaluationDomain::new(num_constraints + num_instance)` — the instance
//!   copy rows count — and the coset offset is `Fr::GENERATOR`; the proving key's `h_query`
//!   (length `n − 1`) was generated for exactly that domain, and the top coefficient of `h`
//!   (zero for a satisfying witness) is dropped as ark-groth16 drops it.

use ark_bn254::{Bn254, Fr, G1Projective, G2Projective};
use ark_ec::{CurveGroup, VariableBaseMSM};
use ark_ff::{FftField, Field, One, PrimeField, Zero};
use ark_groth16::{Groth16, Proof, ProvingKey, VerifyingKey};
use ark_poly::{EvaluationDomain, GeneralEvaluationDomain};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, ConstraintSystemRef, LinearCombination, Matrix, OptimizationGoal,
    SynthesisError, SynthesisMode, Variable, R1CS_PREDICATE_LABEL,
};
use ark_snark::SNARK;
use ark_std::rand::{CryptoRng, RngCore};
use rayon::prelude::*;

/// The evaluation domain type ark-groth16 uses.
pub type Domain = GeneralEvaluationDomain<Fr>;

/// Failures of the QAP reduction and the prover steps.
#[derive(Debug, thiserror::Error)]
pub enum QapError {
    /// Constraint synthesis failed.
    #[error("constraint synthesis: {0}")]
    Synthesis(#[from] SynthesisError),
    /// The constraint system uses a predicate other than R1CS, which Groth16 cannot prove.
    #[error("constraint system uses predicate {label:?} with {constraints} constraints; only R1CS is supported")]
    UnsupportedPredicate {
        /// The predicate label.
        label: String,
        /// Its number of constraints.
        constraints: usize,
    },
    /// The constraint system was built without matrices.
    #[error("constraint system does not construct matrices")]
    NoMatrices,
    /// A matrix entry names a variable outside the assignment.
    #[error("matrix {matrix} row {row} names variable {index}, but there are {num_variables} variables")]
    IndexOutOfRange {
        /// `"A"`, `"B"` or `"C"`.
        matrix: &'static str,
        /// The row.
        row: usize,
        /// The column named.
        index: usize,
        /// Number of variables (columns).
        num_variables: usize,
    },
    /// Two inputs that must agree in length do not.
    #[error("{what}: expected length {expected}, got {got}")]
    LengthMismatch {
        /// What was being checked.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// No evaluation domain of the needed size exists for BN254 `Fr`.
    #[error("no evaluation domain for {0} points")]
    DomainTooLarge(usize),
    /// The single prover's assignment does not start with the constant one.
    #[error("assignment must start with the constant 1")]
    NotConstantOne,
    /// The assignment does not satisfy a constraint (see [`check_satisfied`]).
    #[error("constraint {0} is not satisfied")]
    Unsatisfied(usize),
    /// The verifying key or proving key does not fit the circuit or inputs.
    #[error("key does not fit: {0}")]
    KeyShape(String),
}

/// Result of this module.
pub type Result<T, E = QapError> = std::result::Result<T, E>;

/// The three R1CS matrices of a circuit with its variable counts.
///
/// Column `0` is the constant one, columns `1..num_instance_variables` the public inputs, the
/// rest the witness, exactly as `ark_relations` numbers them. Every entry is checked to lie in
/// range when the value is built, and all rows of the three matrices exist.
#[derive(Clone, Debug, PartialEq)]
pub struct R1csMatrices {
    num_instance_variables: usize,
    num_witness_variables: usize,
    abc: [Matrix<Fr>; 3],
}

impl R1csMatrices {
    /// Checks and wraps matrices. `num_instance_variables` counts the constant one.
    pub fn new(
        num_instance_variables: usize,
        num_witness_variables: usize,
        a: Matrix<Fr>,
        b: Matrix<Fr>,
        c: Matrix<Fr>,
    ) -> Result<Self> {
        if num_instance_variables == 0 {
            return Err(QapError::LengthMismatch { what: "instance variables (incl. the one)", expected: 1, got: 0 });
        }
        let num_variables =
            num_instance_variables.checked_add(num_witness_variables).ok_or(QapError::DomainTooLarge(usize::MAX))?;
        for (what, m) in [("rows of B", &b), ("rows of C", &c)] {
            if m.len() != a.len() {
                return Err(QapError::LengthMismatch { what, expected: a.len(), got: m.len() });
            }
        }
        for (name, m) in [("A", &a), ("B", &b), ("C", &c)] {
            for (row, terms) in m.iter().enumerate() {
                if let Some(&(_, index)) = terms.iter().find(|(_, i)| *i >= num_variables) {
                    return Err(QapError::IndexOutOfRange { matrix: name, row, index, num_variables });
                }
            }
        }
        Ok(Self { num_instance_variables, num_witness_variables, abc: [a, b, c] })
    }

    /// The matrices of a constraint system that was synthesized with matrices (setup mode or
    /// prove mode with `construct_matrices`). Finalizes `cs` first (inlines linear
    /// combinations, as ark-groth16 does), so call it after synthesis is complete. Fails when
    /// the system has constraints under a predicate other than R1CS.
    pub fn from_cs(cs: &ConstraintSystemRef<Fr>) -> Result<Self> {
        if cs.is_none() {
            return Err(QapError::Synthesis(SynthesisError::MissingCS));
        }
        if !cs.should_construct_matrices() {
            return Err(QapError::NoMatrices);
        }
        cs.finalize();
        for (label, constraints) in cs.get_all_predicates_num_constraints() {
            if label != R1CS_PREDICATE_LABEL && constraints > 0 {
                return Err(QapError::UnsupportedPredicate { label, constraints });
            }
        }
        let mut all = cs.to_matrices()?;
        let r1cs = all.remove(R1CS_PREDICATE_LABEL).ok_or(SynthesisError::PredicateNotFound)?;
        let got = r1cs.len();
        let [a, b, c]: [Matrix<Fr>; 3] =
            r1cs.try_into().map_err(|_| QapError::LengthMismatch { what: "R1CS matrices", expected: 3, got })?;
        if a.len() != cs.num_constraints() {
            return Err(QapError::LengthMismatch { what: "rows of A", expected: cs.num_constraints(), got: a.len() });
        }
        Self::new(cs.num_instance_variables(), cs.num_witness_variables(), a, b, c)
    }

    /// Number of constraints (rows).
    pub fn num_constraints(&self) -> usize {
        self.a().len()
    }
    /// Number of instance variables, counting the constant one.
    pub fn num_instance_variables(&self) -> usize {
        self.num_instance_variables
    }
    /// Number of public inputs (instance variables without the constant one).
    pub fn num_public_inputs(&self) -> usize {
        self.num_instance_variables - 1
    }
    /// Number of witness variables.
    pub fn num_witness_variables(&self) -> usize {
        self.num_witness_variables
    }
    /// Length of a full assignment `[1, instance..., witness...]`.
    pub fn num_variables(&self) -> usize {
        self.num_instance_variables + self.num_witness_variables
    }
    /// `A`.
    pub fn a(&self) -> &Matrix<Fr> {
        let [a, _, _] = &self.abc;
        a
    }
    /// `B`.
    pub fn b(&self) -> &Matrix<Fr> {
        let [_, b, _] = &self.abc;
        b
    }
    /// `C`.
    pub fn c(&self) -> &Matrix<Fr> {
        let [_, _, c] = &self.abc;
        c
    }
    /// `[A, B, C]`, the slice ark-groth16's `*_from_matrices` functions take.
    pub fn ark_matrices(&self) -> &[Matrix<Fr>] {
        &self.abc
    }
    /// Number of points the reduction needs: constraints plus instance copy rows.
    pub fn qap_points(&self) -> usize {
        self.num_constraints() + self.num_instance_variables
    }
    /// The evaluation domain ark-groth16 uses for this circuit (size: next power of two of
    /// [`Self::qap_points`]).
    pub fn domain(&self) -> Result<Domain> {
        Domain::new(self.qap_points()).ok_or(QapError::DomainTooLarge(self.qap_points()))
    }

    /// The public inputs inside a full assignment (without the leading one).
    pub fn public_inputs<'z>(&self, z: &'z [Fr]) -> Result<&'z [Fr]> {
        self.check_assignment_len(z)?;
        z.get(1..self.num_instance_variables).ok_or(QapError::LengthMismatch {
            what: "assignment",
            expected: self.num_variables(),
            got: z.len(),
        })
    }

    fn check_assignment_len(&self, z: &[Fr]) -> Result<()> {
        if z.len() != self.num_variables() {
            return Err(QapError::LengthMismatch { what: "assignment", expected: self.num_variables(), got: z.len() });
        }
        Ok(())
    }

    /// Checks that `pk` was generated for these matrices' shape (query lengths, domain).
    pub fn check_proving_key(&self, pk: &ProvingKey<Bn254>) -> Result<()> {
        let n = self.num_variables();
        let domain = self.domain()?;
        let checks = [
            ("a_query", pk.a_query.len(), n),
            ("b_g1_query", pk.b_g1_query.len(), n),
            ("b_g2_query", pk.b_g2_query.len(), n),
            ("l_query", pk.l_query.len(), self.num_witness_variables),
            ("h_query", pk.h_query.len(), domain.size() - 1),
            ("gamma_abc_g1", pk.vk.gamma_abc_g1.len(), self.num_instance_variables),
        ];
        for (name, got, expected) in checks {
            if got != expected {
                return Err(QapError::KeyShape(format!("{name} has {got} points, circuit needs {expected}")));
            }
        }
        Ok(())
    }
}

/// A [`ConstraintSynthesizer`] that replays [`R1csMatrices`] (and optionally an assignment):
/// allocates the same instance and witness variables and enforces each row. Synthesizing it
/// yields the same matrices, so ark-groth16's setup and prover can run on a circuit that is
/// only known as matrices.
#[derive(Clone, Copy, Debug)]
pub struct MatrixCircuit<'a> {
    /// The matrices.
    pub matrices: &'a R1csMatrices,
    /// The full assignment `[1, instance..., witness...]`, for proving; `None` for setup.
    pub assignment: Option<&'a [Fr]>,
}

impl ConstraintSynthesizer<Fr> for MatrixCircuit<'_> {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> ark_relations::gr1cs::Result<()> {
        let m = self.matrices;
        if let Some(z) = self.assignment {
            if z.len() != m.num_variables() {
                return Err(SynthesisError::Unsatisfiable);
            }
        }
        let value = |i: usize| -> ark_relations::gr1cs::Result<Fr> {
            self.assignment.and_then(|z| z.get(i).copied()).ok_or(SynthesisError::AssignmentMissing)
        };
        let mut vars = Vec::with_capacity(m.num_variables());
        vars.push(Variable::One);
        for i in 1..m.num_instance_variables() {
            vars.push(cs.new_input_variable(|| value(i))?);
        }
        for j in 0..m.num_witness_variables() {
            vars.push(cs.new_witness_variable(|| value(m.num_instance_variables() + j))?);
        }
        let lc = |row: &[(Fr, usize)]| -> ark_relations::gr1cs::Result<LinearCombination<Fr>> {
            let mut out = LinearCombination::new();
            for &(coeff, index) in row {
                let var = *vars.get(index).ok_or(SynthesisError::Unsatisfiable)?;
                out.push((coeff, var));
            }
            Ok(out)
        };
        for ((a, b), c) in m.a().iter().zip(m.b()).zip(m.c()) {
            let (a, b, c) = (lc(a)?, lc(b)?, lc(c)?);
            cs.enforce_r1cs_constraint(|| a, || b, || c)?;
        }
        Ok(())
    }
}

fn new_cs(mode: SynthesisMode) -> ConstraintSystemRef<Fr> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    // Same settings as ark-groth16's generator and prover, so the matrices agree.
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(mode);
    cs
}

/// Synthesizes `circuit` in setup mode (no values) and returns its matrices, as ark-groth16's
/// generator sees them.
pub fn matrices_for_setup<C: ConstraintSynthesizer<Fr>>(circuit: C) -> Result<R1csMatrices> {
    let cs = new_cs(SynthesisMode::Setup);
    circuit.generate_constraints(cs.clone())?;
    R1csMatrices::from_cs(&cs)
}

/// Synthesizes `circuit` with values, as ark-groth16's prover does, and returns its matrices
/// and the full assignment `[1, instance..., witness...]`.
pub fn synthesize_for_proving<C: ConstraintSynthesizer<Fr>>(circuit: C) -> Result<(R1csMatrices, Vec<Fr>)> {
    let cs = new_cs(SynthesisMode::Prove { construct_matrices: true, generate_lc_assignments: false });
    circuit.generate_constraints(cs.clone())?;
    let matrices = R1csMatrices::from_cs(&cs)?;
    let mut z = cs.instance_assignment()?;
    z.extend(cs.witness_assignment()?);
    matrices.check_assignment_len(&z)?;
    Ok((matrices, z))
}

/// `Σ coeff · z[index]` over one row; `Err(index)` for an index outside `z`.
fn row_value(row: &[(Fr, usize)], z: &[Fr]) -> Result<Fr, usize> {
    row.iter().try_fold(Fr::zero(), |acc, &(coeff, index)| {
        let v = *z.get(index).ok_or(index)?;
        Ok(if coeff.is_one() { acc + v } else { acc + v * coeff })
    })
}

fn matrix_times(m: &Matrix<Fr>, z: &[Fr], out: &mut [Fr], matrix: &'static str) -> Result<()> {
    out.par_iter_mut().zip(m.par_iter()).enumerate().try_for_each(|(row, (o, terms))| {
        *o = row_value(terms, z).map_err(|index| QapError::IndexOutOfRange {
            matrix,
            row,
            index,
            num_variables: z.len(),
        })?;
        Ok(())
    })
}

/// Step 1 (linear): evaluations of `A·z`, `B·z`, `C·z` on the domain, each of length
/// `domain.size()`: rows `0..m` are the constraints, rows `m..m+num_instance` of `a` hold the
/// instance copy `z[0..num_instance]` (ark-groth16's reduction appends these so the instance
/// polynomials are linearly independent), everything else is zero.
pub fn abc_evaluations(matrices: &R1csMatrices, z: &[Fr]) -> Result<(Vec<Fr>, Vec<Fr>, Vec<Fr>)> {
    matrices.check_assignment_len(z)?;
    let n = matrices.domain()?.size();
    let m = matrices.num_constraints();
    let nv = matrices.num_variables();
    let mut a = vec![Fr::zero(); n];
    let mut b = vec![Fr::zero(); n];
    let mut c = vec![Fr::zero(); n];
    let (a_rows, a_copy) = a.split_at_mut(m);
    let b_rows = b.get_mut(..m).ok_or(QapError::DomainTooLarge(m))?;
    let c_rows = c.get_mut(..m).ok_or(QapError::DomainTooLarge(m))?;
    matrix_times(matrices.a(), z, a_rows, "A")?;
    matrix_times(matrices.b(), z, b_rows, "B")?;
    matrix_times(matrices.c(), z, c_rows, "C")?;
    let instance = z.get(..matrices.num_instance_variables()).ok_or(QapError::LengthMismatch {
        what: "assignment",
        expected: nv,
        got: z.len(),
    })?;
    a_copy.get_mut(..instance.len()).ok_or(QapError::DomainTooLarge(matrices.qap_points()))?.copy_from_slice(instance);
    Ok((a, b, c))
}

/// Checks `a_i · b_i = c_i` for every constraint of a full assignment; reports the first
/// failing row. Not a prover step (it is not linear); a cheap guard for the single prover.
pub fn check_satisfied(matrices: &R1csMatrices, z: &[Fr]) -> Result<()> {
    let (a, b, c) = abc_evaluations(matrices, z)?;
    match a.iter().zip(&b).zip(&c).take(matrices.num_constraints()).position(|((a, b), c)| *a * b != *c) {
        Some(row) => Err(QapError::Unsatisfied(row)),
        None => Ok(()),
    }
}

fn coset(domain: &Domain) -> Result<Domain> {
    domain.get_coset(Fr::GENERATOR).ok_or(QapError::DomainTooLarge(domain.size()))
}

fn check_domain_len(domain: &Domain, v: &[Fr], what: &'static str) -> Result<()> {
    if v.len() != domain.size() {
        return Err(QapError::LengthMismatch { what, expected: domain.size(), got: v.len() });
    }
    Ok(())
}

/// Step 2 (linear): evaluations on the domain → evaluations on the coset `GENERATOR · domain`
/// (iFFT, then coset FFT). `v.len()` must equal `domain.size()`.
pub fn to_coset_evaluations(domain: &Domain, mut v: Vec<Fr>) -> Result<Vec<Fr>> {
    check_domain_len(domain, &v, "domain evaluations")?;
    let coset = coset(domain)?;
    domain.ifft_in_place(&mut v);
    coset.fft_in_place(&mut v);
    Ok(v)
}

/// Step 3 (the one non-linear step): `a_i · b_i − c_i` pointwise on the coset.
pub fn pointwise_ab_minus_c(a: &[Fr], b: &[Fr], c: &[Fr]) -> Result<Vec<Fr>> {
    if a.len() != b.len() || a.len() != c.len() {
        return Err(QapError::LengthMismatch {
            what: "coset evaluations",
            expected: a.len(),
            got: b.len().max(c.len()),
        });
    }
    Ok(a.par_iter().zip(b).zip(c).map(|((a, b), c)| *a * b - c).collect())
}

/// Step 4 (linear): from `a·b − c` on the coset to the coefficients of
/// `h = (a·b − c) / Z`: multiply by `1/Z(g) = 1/(g^n − 1)`, then coset iFFT. Returns
/// `domain.size()` coefficients; the last is zero for a satisfying assignment and is not used
/// by [`msm_c_parts`] (the key has `n − 1` `h_query` points).
pub fn h_from_coset_product(domain: &Domain, mut ab_minus_c_on_coset: Vec<Fr>) -> Result<Vec<Fr>> {
    check_domain_len(domain, &ab_minus_c_on_coset, "coset evaluations")?;
    let coset = coset(domain)?;
    let z_inv =
        domain.evaluate_vanishing_polynomial(Fr::GENERATOR).inverse().ok_or(QapError::DomainTooLarge(domain.size()))?;
    ab_minus_c_on_coset.par_iter_mut().for_each(|v| *v *= z_inv);
    coset.ifft_in_place(&mut ab_minus_c_on_coset);
    Ok(ab_minus_c_on_coset)
}

/// Steps 1–4 for a single prover: the coefficients of `h` (length `domain.size()`).
/// Equals ark-groth16's `LibsnarkReduction::witness_map_from_matrices`.
pub fn compute_h(matrices: &R1csMatrices, z: &[Fr]) -> Result<Vec<Fr>> {
    let domain = matrices.domain()?;
    let (a, b, c) = abc_evaluations(matrices, z)?;
    let a = to_coset_evaluations(&domain, a)?;
    let b = to_coset_evaluations(&domain, b)?;
    let c = to_coset_evaluations(&domain, c)?;
    let p = pointwise_ab_minus_c(&a, &b, &c)?;
    drop((a, b, c));
    h_from_coset_product(&domain, p)
}

fn bigints(v: &[Fr]) -> Vec<<Fr as PrimeField>::BigInt> {
    v.par_iter().map(|s| s.into_bigint()).collect()
}

fn check_query(what: &'static str, query_len: usize, z: &[Fr]) -> Result<()> {
    if query_len != z.len() {
        return Err(QapError::LengthMismatch { what, expected: query_len, got: z.len() });
    }
    Ok(())
}

/// `A = alpha + Σ z_i · a_query_i + r · delta` in G1 (`z` is the full assignment, `z[0]` the
/// one). Linear in `(z, r)` apart from the constant `alpha`.
pub fn msm_a(pk: &ProvingKey<Bn254>, z: &[Fr], r: Fr) -> Result<G1Projective> {
    check_query("assignment vs a_query", pk.a_query.len(), z)?;
    let acc = G1Projective::msm_bigint(&pk.a_query, &bigints(z));
    Ok(acc + pk.vk.alpha_g1 + pk.delta_g1 * r)
}

/// `B = beta + Σ z_i · b_g2_query_i + s · delta` in G2. Linear in `(z, s)` apart from `beta`.
pub fn msm_b_g2(pk: &ProvingKey<Bn254>, z: &[Fr], s: Fr) -> Result<G2Projective> {
    check_query("assignment vs b_g2_query", pk.b_g2_query.len(), z)?;
    let acc = G2Projective::msm_bigint(&pk.b_g2_query, &bigints(z));
    Ok(acc + pk.vk.beta_g2 + pk.vk.delta_g2 * s)
}

/// `B1 = beta + Σ z_i · b_g1_query_i + s · delta` in G1 (used only inside `C`). Linear in
/// `(z, s)` apart from `beta`.
pub fn msm_b_g1(pk: &ProvingKey<Bn254>, z: &[Fr], s: Fr) -> Result<G1Projective> {
    check_query("assignment vs b_g1_query", pk.b_g1_query.len(), z)?;
    let acc = G1Projective::msm_bigint(&pk.b_g1_query, &bigints(z));
    Ok(acc + pk.beta_g1 + pk.delta_g1 * s)
}

/// The part of `C` that is linear in the witness: `Σ witness_j · l_query_j + Σ h_k · h_query_k`
/// (`z` is the full assignment; its witness part is `z[num_instance..]`; `h` has
/// `domain.size()` coefficients, of which the first `h_query.len() = n − 1` are used).
pub fn msm_c_parts(pk: &ProvingKey<Bn254>, z: &[Fr], h: &[Fr]) -> Result<G1Projective> {
    let num_instance = pk.vk.gamma_abc_g1.len();
    let witness = z.get(num_instance..).ok_or(QapError::LengthMismatch {
        what: "assignment vs gamma_abc_g1",
        expected: num_instance,
        got: z.len(),
    })?;
    check_query("witness vs l_query", pk.l_query.len(), witness)?;
    if h.len() != pk.h_query.len() + 1 {
        return Err(QapError::LengthMismatch { what: "h vs h_query", expected: pk.h_query.len() + 1, got: h.len() });
    }
    let h_used = h.get(..pk.h_query.len()).unwrap_or(h);
    let l_acc = G1Projective::msm_bigint(&pk.l_query, &bigints(witness));
    let h_acc = G1Projective::msm_bigint(&pk.h_query, &bigints(h_used));
    Ok(l_acc + h_acc)
}

/// `C = c_parts + s · A + r · B1 − rs · delta`, where `rs = r · s`. Linear in
/// `(c_parts, r, s, rs)` for public `A` and `B1`: a collaborative prover opens `A` and `B1`,
/// and supplies shares of `c_parts`, `r`, `s` and of the product `rs`.
pub fn finish_c(
    pk: &ProvingKey<Bn254>,
    c_parts: G1Projective,
    a: G1Projective,
    b_g1: G1Projective,
    r: Fr,
    s: Fr,
    rs: Fr,
) -> G1Projective {
    c_parts + a * s + b_g1 * r - pk.delta_g1 * rs
}

/// The single prover, built from the steps above. `z = [1, instance..., witness...]`; `r`, `s`
/// are the zero-knowledge blinders (use [`prove_single_random`] to sample them). Identical
/// output to ark-groth16's `create_proof_with_reduction_and_matrices` for the same `r`, `s`.
/// Does not check that `z` satisfies the constraints (an unsatisfying `z` gives a proof that
/// does not verify); call [`check_satisfied`] first for a clear error.
pub fn prove_single(pk: &ProvingKey<Bn254>, matrices: &R1csMatrices, z: &[Fr], r: Fr, s: Fr) -> Result<Proof<Bn254>> {
    matrices.check_proving_key(pk)?;
    matrices.check_assignment_len(z)?;
    if z.first() != Some(&Fr::one()) {
        return Err(QapError::NotConstantOne);
    }
    let h = compute_h(matrices, z)?;
    let a = msm_a(pk, z, r)?;
    let b2 = msm_b_g2(pk, z, s)?;
    let b1 = msm_b_g1(pk, z, s)?;
    let c_parts = msm_c_parts(pk, z, &h)?;
    let c = finish_c(pk, c_parts, a, b1, r, s, r * s);
    Ok(Proof { a: a.into_affine(), b: b2.into_affine(), c: c.into_affine() })
}

/// [`prove_single`] with fresh uniformly random `r`, `s`.
pub fn prove_single_random<R: RngCore + CryptoRng>(
    pk: &ProvingKey<Bn254>,
    matrices: &R1csMatrices,
    z: &[Fr],
    rng: &mut R,
) -> Result<Proof<Bn254>> {
    use ark_std::UniformRand;
    let r = Fr::rand(rng);
    let s = Fr::rand(rng);
    prove_single(pk, matrices, z, r, s)
}

/// Baseline: ark-groth16's own prover (`Groth16::prove`), synthesis included. Note that
/// ark-groth16 `debug_assert!`s satisfaction, so in builds with debug assertions an
/// unsatisfied circuit panics inside ark; [`prove_single`] has no such assertion.
pub fn prove_ark<C: ConstraintSynthesizer<Fr>, R: RngCore + CryptoRng>(
    pk: &ProvingKey<Bn254>,
    circuit: C,
    rng: &mut R,
) -> Result<Proof<Bn254>> {
    Ok(Groth16::<Bn254>::prove(pk, circuit, rng)?)
}

/// Verifies a proof, first checking that the number of public inputs matches the key
/// (ark-groth16's verifier silently ignores surplus or missing inputs beyond the shorter of
/// the two lists).
pub fn verify_proof(vk: &VerifyingKey<Bn254>, public_inputs: &[Fr], proof: &Proof<Bn254>) -> Result<bool> {
    if vk.gamma_abc_g1.len() != public_inputs.len() + 1 {
        return Err(QapError::KeyShape(format!(
            "verifying key takes {} public inputs, got {}",
            vk.gamma_abc_g1.len().saturating_sub(1),
            public_inputs.len()
        )));
    }
    Ok(Groth16::<Bn254>::verify(vk, public_inputs, proof)?)
}
