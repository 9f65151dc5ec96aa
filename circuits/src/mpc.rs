//! The `Mpc` backend: computes on secret shares with the engine, and records the share of
//! every allocated witness variable in the order `R1cs` allocates them.

use ark_ff::{BigInteger, PrimeField};
use tacit_mpc_engine::{Engine, PartyId, Shares, Transport, WireField};
use zeroize::Zeroizing;

use crate::backend::{Backend, CircuitError, Result};

/// This party's share of one circuit value, or the value itself when every party knows it
/// (constants, public and known inputs, and what is computed from them alone): a value known
/// to all is its own Shamir sharing (the constant polynomial), so it mixes with shares freely
/// and operations among known values need no communication.
#[derive(Clone, PartialEq, Eq)]
pub struct Share<F: PrimeField> {
    value: F,
    known: bool,
}

impl<F: PrimeField> Share<F> {
    fn secret(value: F) -> Self {
        Self { value, known: false }
    }

    fn known(value: F) -> Self {
        Self { value, known: true }
    }

    /// This party's raw share (the value itself when [`Share::is_known`]). Handle with care:
    /// it is secret.
    pub fn expose(&self) -> F {
        self.value
    }

    /// Whether every party knows this value in the clear.
    pub fn is_known(&self) -> bool {
        self.known
    }
}

impl<F: PrimeField> Drop for Share<F> {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

impl<F: PrimeField> std::fmt::Debug for Share<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Share(<redacted>)")
    }
}

/// The shared full assignment a computation produced: public values and this party's
/// shares of every witness variable, each in allocation order.
pub struct SharedAssignment<F: PrimeField> {
    /// Instance values in allocation order: public inputs, revealed outputs and the
    /// challenge, and this party's shares of committed values (`Backend::committed_inputs`).
    pub instance: Vec<F>,
    /// This party's shares of the witness variables, in allocation order.
    pub witness: Shares<F>,
}

impl<F: PrimeField> std::fmt::Debug for SharedAssignment<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedAssignment")
            .field("instance", &self.instance.len())
            .field("witness", &self.witness)
            .finish()
    }
}

/// Derives the challenge on shares: given the engine and this party's `[1, instance...]`
/// (public values and shares of the committed groups), it must return the same public value
/// at every party, e.g. by opening the groups' commitments computed on shares and hashing
/// them (`tacit_prover::collaborative::commitment_challenge`).
pub type MpcChallenge<F, T> = Box<
    dyn for<'a> FnMut(
            &'a mut Engine<F, T>,
            &'a [F],
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<F>> + Send + 'a>>
        + Send,
>;

/// Computes on shares. Wraps one engine session.
pub struct Mpc<F: WireField, T: Transport> {
    engine: Engine<F, T>,
    /// How the challenge is derived, if the computation draws one.
    deriver: Option<MpcChallenge<F, T>>,
    /// Whether the challenge was drawn (no instance variable may follow it).
    challenged: bool,
    instance: Vec<F>,
    witness: Zeroizing<Vec<F>>,
    /// Values asserted zero, checked together before anything opens.
    zero_claims: Zeroizing<Vec<F>>,
    /// Whether `pow5` takes one round (see [`Mpc::one_round_sbox`]).
    one_round_sbox: bool,
}

impl<F: WireField, T: Transport> std::fmt::Debug for Mpc<F, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpc").field("engine", &self.engine).field("witness", &self.witness.len()).finish()
    }
}

fn raw<F: PrimeField>(values: &[Share<F>]) -> Shares<F> {
    Shares::from_raw(values.iter().map(Share::expose).collect())
}

fn wrap<F: PrimeField>(shares: Shares<F>) -> Vec<Share<F>> {
    shares.into_exposed().into_iter().map(Share::secret).collect()
}

impl<F: WireField, T: Transport> Mpc<F, T> {
    /// A backend over an engine session.
    pub fn new(engine: Engine<F, T>) -> Self {
        Self {
            engine,
            deriver: None,
            challenged: false,
            instance: Vec::new(),
            witness: Zeroizing::new(Vec::new()),
            zero_claims: Zeroizing::new(Vec::new()),
            one_round_sbox: false,
        }
    }

    /// Fifth powers (the Poseidon S-box) in one round each, after three rounds that prepare
    /// the randomness of a whole hash batch ([`Engine::pow5`]), instead of three rounds of
    /// multiplications. It costs a third more multiplications (the powers of the masks) and
    /// one checked opening, so it pays where rounds are dear (WAN latency) and loses where
    /// the parties are CPU-bound (all on one machine): off by default.
    pub fn one_round_sbox(mut self, on: bool) -> Self {
        self.one_round_sbox = on;
        self
    }

    /// Sets how the challenge is derived (required if the computation draws one).
    pub fn with_challenge(mut self, deriver: MpcChallenge<F, T>) -> Self {
        self.deriver = Some(deriver);
        self
    }

    fn extend_instance(&mut self, values: impl IntoIterator<Item = F>) -> Result<()> {
        if self.challenged {
            return Err(CircuitError::Usage("no instance variable may follow the challenge".into()));
        }
        self.instance.extend(values);
        Ok(())
    }

    /// The engine (for statistics, or operations outside the circuit).
    pub fn engine(&mut self) -> &mut Engine<F, T> {
        &mut self.engine
    }

    /// Witness variables allocated so far.
    pub fn witness_len(&self) -> usize {
        self.witness.len()
    }

    /// Verifies everything computed so far (multiplications, agreement, zero assertions) and
    /// returns the shared full assignment with the engine.
    pub async fn finish(mut self) -> Result<(SharedAssignment<F>, Engine<F, T>)> {
        self.check_zero_claims().await?;
        self.engine.verify().await?;
        let Self { engine, instance, mut witness, .. } = self;
        let witness = Shares::from_raw(std::mem::take(&mut *witness));
        Ok((SharedAssignment { instance, witness }, engine))
    }

    /// Settles the values asserted zero so far, as [`Self::finish`] does, keeping the
    /// backend: a party that finds a claim unsatisfied can still run a check that says why
    /// (e.g. which dealer's inputs do not fit).
    pub async fn settle_zero_claims(&mut self) -> Result<()> {
        self.check_zero_claims().await
    }

    /// Gives up the run and returns the engine (the witness so far is wiped).
    pub fn into_engine(self) -> Engine<F, T> {
        self.engine
    }

    fn record(&mut self, values: &[Share<F>]) {
        self.witness.extend(values.iter().map(Share::expose));
    }

    /// Opens a random combination of every value asserted zero, times a random mask: zero if
    /// all are zero; otherwise the run aborts having revealed only noise.
    async fn check_zero_claims(&mut self) -> Result<()> {
        if self.zero_claims.is_empty() {
            return Ok(());
        }
        let claims = Zeroizing::new(std::mem::take(&mut *self.zero_claims));
        let alpha = self.engine.coin().await?;
        let mut power = alpha;
        let mut combined = F::zero();
        for c in claims.iter() {
            combined += *c * power;
            power *= alpha;
        }
        // Masked by a random factor: zero stays zero, anything else opens as noise and says
        // nothing about the values involved.
        let mask = self.engine.take_randoms(1).await?.into_shares();
        let masked = self.engine.mul(&Shares::from_raw(vec![combined]), &mask).await?;
        let opened = self.engine.open(&masked).await?;
        match opened.first() {
            Some(v) if ark_ff::Zero::is_zero(v) => Ok(()),
            _ => Err(CircuitError::Unsatisfied("a value asserted zero is not zero".into())),
        }
    }

    fn same_len(a: &[Share<F>], b: &[Share<F>]) -> Result<()> {
        if a.len() == b.len() {
            Ok(())
        } else {
            Err(CircuitError::Usage(format!("operands of lengths {} and {}", a.len(), b.len())))
        }
    }
}

impl<F: WireField, T: Transport> Backend for Mpc<F, T> {
    type F = F;
    type Value = Share<F>;

    fn constant(&self, c: F) -> Share<F> {
        Share::known(c)
    }

    fn add(&self, a: &Share<F>, b: &Share<F>) -> Share<F> {
        Share { value: a.value + b.value, known: a.known && b.known }
    }

    fn sub(&self, a: &Share<F>, b: &Share<F>) -> Share<F> {
        Share { value: a.value - b.value, known: a.known && b.known }
    }

    fn scale(&self, a: &Share<F>, c: F) -> Share<F> {
        Share { value: a.value * c, known: a.known }
    }

    fn add_constant(&self, a: &Share<F>, c: F) -> Share<F> {
        // Every party adds the constant: Shamir sharings of a constant are the constant.
        Share { value: a.value + c, known: a.known }
    }

    async fn private_inputs(&mut self, owner: PartyId, values: Option<&[F]>, len: usize) -> Result<Vec<Share<F>>> {
        let shares = wrap(self.engine.input(owner, values, len).await?);
        self.record(&shares);
        Ok(shares)
    }

    fn public_inputs(&mut self, values: &[F]) -> Result<Vec<Share<F>>> {
        self.extend_instance(values.iter().copied())?;
        Ok(values.iter().map(|v| Share::known(*v)).collect())
    }

    fn known_inputs(&mut self, values: &[F]) -> Result<Vec<Share<F>>> {
        let known: Vec<Share<F>> = values.iter().map(|v| Share::known(*v)).collect();
        self.record(&known);
        Ok(known)
    }

    fn dealt_inputs(&mut self, values: Option<&[F]>, len: usize) -> Result<Vec<Share<F>>> {
        let values =
            values.ok_or_else(|| CircuitError::Usage("Mpc needs this party's shares of dealt inputs".into()))?;
        if values.len() != len {
            return Err(CircuitError::Usage(format!("dealt_inputs: {} shares for {len} inputs", values.len())));
        }
        let shares: Vec<Share<F>> = values.iter().map(|v| Share::secret(*v)).collect();
        self.record(&shares);
        Ok(shares)
    }

    fn committed_inputs(&mut self, values: Option<&[F]>, len: usize) -> Result<Vec<Share<F>>> {
        let values =
            values.ok_or_else(|| CircuitError::Usage("Mpc needs this party's shares of committed inputs".into()))?;
        if values.len() != len {
            return Err(CircuitError::Usage(format!("committed_inputs: {} shares for {len} inputs", values.len())));
        }
        self.extend_instance(values.iter().copied())?;
        Ok(values.iter().map(|v| Share::secret(*v)).collect())
    }

    fn committed_known_inputs(&mut self, values: Option<&[F]>, len: usize) -> Result<Vec<Share<F>>> {
        let values =
            values.ok_or_else(|| CircuitError::Usage("Mpc needs the values of known committed inputs".into()))?;
        if values.len() != len {
            return Err(CircuitError::Usage(format!("committed_known_inputs: {} values for {len}", values.len())));
        }
        self.extend_instance(values.iter().copied())?;
        Ok(values.iter().map(|v| Share::known(*v)).collect())
    }

    async fn challenge(&mut self) -> Result<Share<F>> {
        if self.challenged {
            return Err(CircuitError::Usage("the challenge was already drawn".into()));
        }
        let mut deriver =
            self.deriver.take().ok_or_else(|| CircuitError::Usage("Mpc needs a challenge deriver".into()))?;
        let prefix: Zeroizing<Vec<F>> =
            Zeroizing::new(std::iter::once(F::one()).chain(self.instance.iter().copied()).collect());
        let challenge = deriver(&mut self.engine, &prefix).await?;
        self.extend_instance([challenge])?;
        self.challenged = true;
        Ok(Share::known(challenge))
    }

    /// Known divisors invert locally; secret ones by a masked inversion: `den·ρ` is opened
    /// for a fresh random `ρ` (uniform, so it says nothing but "nonzero") and
    /// `1/den = ρ · (den·ρ)^-1`. Two multiplication rounds and one opening for the batch.
    async fn div(&mut self, num: &[Share<F>], den: &[Share<F>]) -> Result<Vec<Share<F>>> {
        Self::same_len(num, den)?;
        let secret: Vec<Share<F>> = den.iter().filter(|d| !d.known).cloned().collect();
        let mut secret_inverses = if secret.is_empty() {
            Vec::new()
        } else {
            let masks = self.engine.take_randoms(secret.len()).await?.into_shares();
            let masked = self.engine.mul(&raw(&secret), &masks).await?;
            let opened = self.engine.open(&masked).await?;
            let masks = masks.into_exposed();
            opened
                .iter()
                .zip(masks.iter())
                .map(|(o, m)| {
                    o.inverse()
                        .map(|inv| Share::secret(*m * inv))
                        .ok_or_else(|| CircuitError::Unsatisfied("a secret divisor is zero".into()))
                })
                .collect::<Result<Vec<_>>>()?
        }
        .into_iter();
        let mut inverses = Vec::with_capacity(den.len());
        for (i, d) in den.iter().enumerate() {
            inverses.push(if d.known {
                Share::known(
                    d.value.inverse().ok_or_else(|| CircuitError::Unsatisfied(format!("divisor {i} is zero")))?,
                )
            } else {
                secret_inverses.next().ok_or_else(|| CircuitError::Synthesis("too few inverses".into()))?
            });
        }
        // `mul` records the quotients, which are exactly the allocated witness variables.
        self.mul(num, &inverses).await
    }

    async fn mul(&mut self, a: &[Share<F>], b: &[Share<F>]) -> Result<Vec<Share<F>>> {
        Self::same_len(a, b)?;
        // Products with a known factor are local; only secret-by-secret pairs go to the engine.
        let (x, y): (Vec<Share<F>>, Vec<Share<F>>) =
            a.iter().zip(b).filter(|(x, y)| !(x.known || y.known)).map(|(x, y)| (x.clone(), y.clone())).unzip();
        let engine_products = if x.is_empty() { Vec::new() } else { wrap(self.engine.mul(&raw(&x), &raw(&y)).await?) };
        let mut from_engine = engine_products.into_iter();
        let mut products = Vec::with_capacity(a.len());
        for (x, y) in a.iter().zip(b) {
            let product = if x.known || y.known {
                Share { value: x.value * y.value, known: x.known && y.known }
            } else {
                from_engine.next().ok_or_else(|| CircuitError::Synthesis("engine returned too few products".into()))?
            };
            products.push(product);
        }
        self.record(&products);
        Ok(products)
    }

    async fn pow5(&mut self, x: &[Share<F>]) -> Result<Vec<Share<F>>> {
        if !self.one_round_sbox {
            let x2 = self.mul(x, x).await?;
            let x4 = self.mul(&x2, &x2).await?;
            return self.mul(&x4, x).await;
        }
        let secret: Vec<F> = x.iter().filter(|v| !v.known).map(|v| v.value).collect();
        let [s2, s4, s5] = if secret.is_empty() {
            std::array::from_fn(|_| Shares::from_raw(Vec::new()))
        } else {
            self.engine.pow5(&Shares::from_raw(secret)).await?
        };
        let (s2, s4, s5) = (s2.expose_shares(), s4.expose_shares(), s5.expose_shares());
        let mut next_secret = 0usize;
        let (mut x2, mut x4, mut x5) =
            (Vec::with_capacity(x.len()), Vec::with_capacity(x.len()), Vec::with_capacity(x.len()));
        for v in x {
            if v.known {
                let sq = v.value.square();
                let fourth = sq.square();
                x2.push(Share::known(sq));
                x4.push(Share::known(fourth));
                x5.push(Share::known(fourth * v.value));
            } else {
                let at = |p: &[F]| p.get(next_secret).copied().unwrap_or_default();
                x2.push(Share::secret(at(s2)));
                x4.push(Share::secret(at(s4)));
                x5.push(Share::secret(at(s5)));
                next_secret += 1;
            }
        }
        self.record(&x2);
        self.record(&x4);
        self.record(&x5);
        Ok(x5)
    }

    async fn prepare_pow5(&mut self, groups: &[Vec<Share<F>>], per_group: usize) -> Result<()> {
        if !self.one_round_sbox {
            return Ok(());
        }
        let secret_groups = groups.iter().filter(|g| g.iter().any(|v| !v.known)).count();
        Ok(self.engine.prepare_pow5(secret_groups * per_group).await?)
    }

    async fn to_bits(&mut self, a: &[Share<F>], bits: u32) -> Result<Vec<Vec<Share<F>>>> {
        let secret: Vec<Share<F>> = a.iter().filter(|v| !v.known).cloned().collect();
        let by_position =
            if secret.is_empty() { Vec::new() } else { self.engine.bit_decompose(&raw(&secret), bits).await? };
        let mut next_secret = 0usize;
        let mut per_value: Vec<Vec<Share<F>>> = Vec::with_capacity(a.len());
        for value in a {
            if value.known {
                let decomposed = crate::plain::small_bits(value.value, bits)?;
                per_value.push(decomposed.into_iter().map(|bit| Share::known(F::from(bit))).collect());
            } else {
                let i = next_secret;
                next_secret += 1;
                per_value.push(
                    by_position
                        .iter()
                        .map(|bit| Share::secret(bit.expose_shares().get(i).copied().unwrap_or_default()))
                        .collect(),
                );
            }
        }
        for bits in &per_value {
            self.record(bits);
        }
        // The decomposition is only right for values below 2^bits (a party could input a
        // larger one): the recomposition is asserted like the R1cs constraint, and checked
        // before anything opens, so an out-of-range value aborts instead of steering outputs.
        for (value, bits) in a.iter().zip(&per_value).filter(|(v, _)| !v.known) {
            let mut weight = F::one();
            let mut recomposed = F::zero();
            for bit in bits {
                recomposed += bit.expose() * weight;
                weight.double_in_place();
            }
            self.zero_claims.push(recomposed - value.expose());
        }
        Ok(per_value)
    }

    async fn is_zero(&mut self, a: &[Share<F>]) -> Result<Vec<Share<F>>> {
        if a.iter().all(|v| v.known) {
            let mut flags = Vec::with_capacity(a.len());
            for v in a {
                let (z, h) = crate::plain::is_zero_witness(v.value);
                let (z, h) = (Share::known(z), Share::known(h));
                self.record(&[z.clone(), h]);
                flags.push(z);
            }
            return Ok(flags);
        }
        // h = a^(p-2) is a^-1 for a != 0 and 0 for a == 0 (right-to-left square and
        // multiply: one round per exponent bit, whatever the batch size). Then
        // z = 1 - a*h, and the recorded hint is h + z, which is 1 when a == 0.
        let len = a.len();
        let mut exponent = F::MODULUS;
        exponent.sub_with_borrow(&F::BigInt::from(2u64));
        let bits = exponent.to_bits_le();
        let last = bits.iter().rposition(|b| *b).unwrap_or(0);
        let mut power = raw(a);
        let mut result: Option<Shares<F>> = None;
        for (i, bit) in bits.iter().enumerate().take(last + 1) {
            let square_needed = i < last;
            match (bit, &result, square_needed) {
                (true, Some(r), true) => {
                    let both =
                        self.engine.mul(&Shares::concat(&[r, &power]), &Shares::concat(&[&power, &power])).await?;
                    result = Some(both.slice(0..len));
                    power = both.slice(len..2 * len);
                }
                (true, Some(r), false) => {
                    result = Some(self.engine.mul(r, &power).await?);
                }
                (true, None, _) => {
                    result = Some(power.clone());
                    if square_needed {
                        power = self.engine.mul(&power, &power).await?;
                    }
                }
                (false, _, true) => power = self.engine.mul(&power, &power).await?,
                (false, _, false) => {}
            }
        }
        let h = result.unwrap_or_else(|| Shares::zeros(len));
        let ah = self.engine.mul(&raw(a), &h).await?;
        let z = ah.rsub_scalar(F::one());
        let hint = h.add(&z);
        let (z, hint) = (wrap(z), wrap(hint));
        for (zi, hi) in z.iter().zip(&hint) {
            self.record(std::slice::from_ref(zi));
            self.record(std::slice::from_ref(hi));
        }
        Ok(z)
    }

    fn assert_zero(&mut self, a: &[Share<F>]) -> Result<()> {
        for v in a {
            if v.known {
                // Every party sees it: fail at once, like `Plain`.
                if !v.value.is_zero() {
                    return Err(CircuitError::Unsatisfied("a known value asserted zero is not zero".into()));
                }
            } else {
                self.zero_claims.push(v.value);
            }
        }
        Ok(())
    }

    async fn assert_bits(&mut self, a: &[Share<F>]) -> Result<()> {
        if a.iter().any(|v| v.known && v.value.square() != v.value) {
            // Every party sees it: fail at once, like `Plain`.
            return Err(CircuitError::Unsatisfied("a known value asserted a bit is not a bit".into()));
        }
        let secret: Vec<F> = a.iter().filter(|v| !v.known).map(|v| v.value).collect();
        if secret.is_empty() {
            return Ok(());
        }
        // sum_k gamma^k x_k (x_k - 1) for a coin gamma drawn after the values: zero for bits,
        // and zero for anything else only with probability len / |F|.
        let gamma = self.engine.coin().await?;
        let mut power = gamma;
        let mut weighted = Vec::with_capacity(secret.len());
        let mut shifted = Vec::with_capacity(secret.len());
        for x in &secret {
            weighted.push(*x * power);
            shifted.push(*x - F::one());
            power *= gamma;
        }
        let (left, right) = (Shares::from_raw(weighted), Shares::from_raw(shifted));
        let combined = self.engine.inner_products(&[(&left, &right)]).await?;
        self.zero_claims.extend_from_slice(combined.expose_shares());
        Ok(())
    }

    async fn reveal_is_zero(&mut self, a: &[Share<F>]) -> Result<Vec<bool>> {
        let secret: Vec<F> = a.iter().filter(|v| !v.known).map(|v| v.value).collect();
        let opened = if secret.is_empty() {
            Vec::new()
        } else {
            // Masked by fresh random factors: zero stays zero, anything else opens as noise.
            let mask = self.engine.take_randoms(secret.len()).await?.into_shares();
            let masked = self.engine.mul(&Shares::from_raw(secret), &mask).await?;
            self.engine.open(&masked).await?
        };
        let mut opened = opened.into_iter();
        a.iter()
            .map(|v| {
                if v.known {
                    Ok(v.value.is_zero())
                } else {
                    opened
                        .next()
                        .map(|o| o.is_zero())
                        .ok_or_else(|| CircuitError::Synthesis("the engine opened too few values".into()))
                }
            })
            .collect()
    }

    async fn reveal(&mut self, a: &[Share<F>]) -> Result<Vec<F>> {
        if a.iter().all(|v| v.known) {
            // Nothing secret opens: no round, and no need to settle the zero claims yet.
            let values: Vec<F> = a.iter().map(Share::expose).collect();
            self.extend_instance(values.iter().copied())?;
            return Ok(values);
        }
        if self.challenged {
            return Err(CircuitError::Usage("no instance variable may follow the challenge".into()));
        }
        self.check_zero_claims().await?;
        let values = self.engine.open(&raw(a)).await?;
        self.extend_instance(values.iter().copied())?;
        Ok(values)
    }
}
