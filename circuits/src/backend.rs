//! The `Backend` trait every computation is written against.
//!
//! A computation is an `async fn` generic over `B: Backend`. Run with `Plain` it computes
//! values (the test oracle); with `R1cs` it emits constraints; with `Mpc` it computes on
//! secret shares and records the share of every allocated witness variable in exactly the
//! order `R1cs` allocates them, which is the shared full assignment the collaborative prover
//! needs.
//!
//! Rules every backend follows, so that the three agree:
//! - Linear operations (`constant`, `add`, `sub`, `scale`, `add_constant`, `sum`) allocate
//!   nothing and cost nothing.
//! - Allocating operations allocate witness variables in call order, and within one call in
//!   the order documented on the method. `Mpc` records shares in the same order.
//! - Operations take slices: one call is one batch (one communication round per layer in
//!   `Mpc`); gadgets batch independent work into single calls.

use std::future::Future;

use ark_ff::PrimeField;
use tacit_mpc_engine::PartyId;

/// Circuit failures.
#[derive(Debug, thiserror::Error)]
pub enum CircuitError {
    /// The MPC engine failed (network, or a detected cheat naming its culprit).
    #[error(transparent)]
    Mpc(#[from] tacit_mpc_engine::MpcError),
    /// Constraint synthesis failed.
    #[error("constraint synthesis: {0}")]
    Synthesis(String),
    /// A value broke a documented precondition (e.g. not below `2^bits`), or an asserted
    /// relation does not hold, in a backend that can tell (`Plain`, `R1cs` with values).
    #[error("unsatisfied: {0}")]
    Unsatisfied(String),
    /// The caller misused the API (mismatched lengths, missing values).
    #[error("invalid request: {0}")]
    Usage(String),
}

/// Result of circuit operations.
pub type Result<T, E = CircuitError> = std::result::Result<T, E>;

/// Derives the challenge from the full assignment's instance part so far, `[1, instance...]`
/// (public values, and the committed groups' values), e.g. by committing to the groups with
/// the proving key's commitment keys and hashing (`tacit_prover::committed`).
#[derive(Clone)]
pub struct ChallengeDeriver<F>(std::sync::Arc<DeriveFn<F>>);

type DeriveFn<F> = dyn Fn(&[F]) -> Result<F> + Send + Sync;

impl<F> ChallengeDeriver<F> {
    /// Wraps a derivation.
    pub fn new(derive: impl Fn(&[F]) -> Result<F> + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(derive))
    }

    /// Derives the challenge for `[1, instance...]`.
    pub fn derive(&self, instance_with_one: &[F]) -> Result<F> {
        (self.0)(instance_with_one)
    }
}

impl<F> std::fmt::Debug for ChallengeDeriver<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChallengeDeriver")
    }
}

/// One interpretation of circuit operations.
pub trait Backend: Send {
    /// The field.
    type F: PrimeField;
    /// A value of the computation: a field element (`Plain`), a linear combination of
    /// variables with its value when known (`R1cs`), or this party's share (`Mpc`).
    type Value: Clone + Send + Sync + std::fmt::Debug;

    /// A public constant.
    fn constant(&self, c: Self::F) -> Self::Value;
    /// `a + b`.
    fn add(&self, a: &Self::Value, b: &Self::Value) -> Self::Value;
    /// `a - b`.
    fn sub(&self, a: &Self::Value, b: &Self::Value) -> Self::Value;
    /// `c * a` for a public `c`.
    fn scale(&self, a: &Self::Value, c: Self::F) -> Self::Value;
    /// `a + c` for a public `c`.
    fn add_constant(&self, a: &Self::Value, c: Self::F) -> Self::Value;
    /// Sum of `values` (zero when empty).
    fn sum(&self, values: &[Self::Value]) -> Self::Value {
        values.iter().fold(self.constant(<Self::F as ark_ff::Zero>::zero()), |acc, v| self.add(&acc, v))
    }

    /// `len` private inputs of `owner` (`values` is `Some` at the owner, or everywhere in
    /// single-party backends). Allocates one witness variable per input, in order.
    fn private_inputs(
        &mut self,
        owner: PartyId,
        values: Option<&[Self::F]>,
        len: usize,
    ) -> impl Future<Output = Result<Vec<Self::Value>>> + Send;

    /// Public inputs known to everyone (instance variables; no witness allocated).
    fn public_inputs(&mut self, values: &[Self::F]) -> Result<Vec<Self::Value>>;

    /// Witness values every party knows but that are not instance variables (e.g. on-chain
    /// data folded into one public digest). Allocates one witness variable per value, in
    /// order. `Mpc` holds them in the clear, so operations among them cost no communication;
    /// `R1cs` in setup mode ignores the values.
    fn known_inputs(&mut self, values: &[Self::F]) -> Result<Vec<Self::Value>>;

    /// `len` inputs dealt from outside the computation, e.g. a client's Shamir sharing:
    /// `values` are the values in single-party backends (`None` in `R1cs` setup mode) and
    /// this party's shares in `Mpc`. Allocates one witness variable per input, in order. The
    /// caller must have checked that the sharings are consistent before using them.
    fn dealt_inputs(&mut self, values: Option<&[Self::F]>, len: usize) -> Result<Vec<Self::Value>>;

    /// `len` values committed outside the circuit, as one group: the proof carries a Pedersen
    /// commitment to them (see `tacit_prover::committed`), so they are fixed before
    /// [`Backend::challenge`] is drawn, and a group may have been committed by its owner
    /// before the proof exists. `values` as in [`Backend::dealt_inputs`]. `R1cs` allocates
    /// one *instance* variable per value, contiguously, and records the group; `Mpc` records
    /// this party's shares as instance values. The last value should be a uniformly random
    /// blinder used nowhere else, so that the commitment hides the others. Not allowed after
    /// the challenge.
    fn committed_inputs(&mut self, values: Option<&[Self::F]>, len: usize) -> Result<Vec<Self::Value>> {
        let _ = (values, len);
        Err(CircuitError::Usage("committed inputs are not supported by this backend".into()))
    }

    /// [`Backend::committed_inputs`] whose values every party knows in the clear (e.g. data
    /// the parties opened), though the commitment still hides them from everyone else (its
    /// blinder is known to the parties only). `Mpc` holds them as known values, so
    /// operations among them need no communication; the other backends treat them as
    /// committed inputs.
    fn committed_known_inputs(&mut self, values: Option<&[Self::F]>, len: usize) -> Result<Vec<Self::Value>> {
        self.committed_inputs(values, len)
    }

    /// The challenge: a public value derived from every public input and committed group so
    /// far (in `R1cs` and `Mpc` by the deriver the backend was built with, from the groups'
    /// commitments; in `Plain` by hashing the values). Allocates one instance variable, the
    /// last: no public input, output or committed group may follow it.
    fn challenge(&mut self) -> impl Future<Output = Result<Self::Value>> + Send {
        async { Err(CircuitError::Usage("challenges are not supported by this backend".into())) }
    }

    /// Quotients `num_i / den_i`. Allocates one witness variable per pair, in order, each
    /// with the constraint `q_i * den_i = num_i`; every `den_i` must be nonzero.
    fn div(
        &mut self,
        num: &[Self::Value],
        den: &[Self::Value],
    ) -> impl Future<Output = Result<Vec<Self::Value>>> + Send {
        let _ = (num, den);
        async { Err(CircuitError::Usage("division is not supported by this backend".into())) }
    }

    /// Element-wise products. Allocates one witness variable per pair, in order, each with
    /// the constraint `a_i * b_i = c_i`.
    fn mul(&mut self, a: &[Self::Value], b: &[Self::Value]) -> impl Future<Output = Result<Vec<Self::Value>>> + Send;

    /// Fifth powers (the Poseidon S-box). Allocates exactly what three `mul` calls would:
    /// `x²` for every value, then `x⁴`, then `x⁵`, with constraints `x·x = x²`,
    /// `x²·x² = x⁴`, `x⁴·x = x⁵`. `Mpc` can compute all three in one round
    /// (`Mpc::one_round_sbox`).
    fn pow5(&mut self, x: &[Self::Value]) -> impl Future<Output = Result<Vec<Self::Value>>> + Send {
        async move {
            let x2 = self.mul(x, x).await?;
            let x4 = self.mul(&x2, &x2).await?;
            self.mul(&x4, x).await
        }
    }

    /// Announces `per_group` fifth powers for each of `groups` that holds a secret value, so
    /// `Mpc` prepares their randomness for all of them at once (three rounds); a no-op in
    /// the other backends.
    fn prepare_pow5(
        &mut self,
        groups: &[Vec<Self::Value>],
        per_group: usize,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (groups, per_group);
        async { Ok(()) }
    }

    /// Bits of each value, least significant first; every value must be below `2^bits`
    /// (`bits <= 80`). Allocates `bits` witness variables per value, value by value, each
    /// constrained boolean (`b * (1 - b) = 0`), plus one linear constraint per value that
    /// the bits recompose it.
    fn to_bits(&mut self, a: &[Self::Value], bits: u32) -> impl Future<Output = Result<Vec<Vec<Self::Value>>>> + Send;

    /// `[a_i == 0]` for each value. Allocates per value, value by value, two witness
    /// variables: the flag `z`, then a hint `h`, with constraints `a * h = 1 - z` and
    /// `a * z = 0` (`h` is `a^-1` when `a != 0`, and `1` when `a == 0`).
    fn is_zero(&mut self, a: &[Self::Value]) -> impl Future<Output = Result<Vec<Self::Value>>> + Send;

    /// Constrains every value to be a bit (`x * x = x`; no allocation). `Plain` and `R1cs`
    /// with values fail at once if one is not; `Mpc` checks one random combination of the
    /// constraints (an inner product) before anything opens.
    fn assert_bits(&mut self, a: &[Self::Value]) -> impl Future<Output = Result<()>> + Send;

    /// Reveals, for each value, only whether it is zero, so that the computation can branch
    /// on it publicly (e.g. leave out a bidder whose dealing does not open its commitment).
    /// Allocates and constrains nothing: what the caller relies on must be constrained
    /// afterwards, typically with the flags as known inputs. `Mpc` opens each value times a
    /// fresh random mask (after verifying every pending multiplication), so a nonzero value
    /// opens as noise; `R1cs` in setup mode answers `true`.
    fn reveal_is_zero(&mut self, a: &[Self::Value]) -> impl Future<Output = Result<Vec<bool>>> + Send;

    /// Constrains every value to be zero (linear constraints; no allocation). `Plain` and
    /// `R1cs` with values fail at once if one is not; `Mpc` checks before anything opens.
    fn assert_zero(&mut self, a: &[Self::Value]) -> Result<()>;

    /// Makes values public outputs: `R1cs` allocates one instance variable per value
    /// constrained equal to it; `Mpc` opens them (after verification); `Plain` returns them.
    fn reveal(&mut self, a: &[Self::Value]) -> impl Future<Output = Result<Vec<Self::F>>> + Send;
}
