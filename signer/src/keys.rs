//! Key material: the public description of a key, one node's share, and presignatures. Secret
//! fields zeroize on drop, print `<redacted>` and serialise only through explicit calls.

use ark_ff::Zero;
use tacit_mpc_engine::{PartyId, WireField};
use zeroize::{Zeroize, Zeroizing};

use crate::curve::{address_of, point_from_bytes, point_len, point_to_bytes, Point, Scalar};
use crate::error::{Result, SignerError};

/// The public description of a shared key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPublic {
    /// Key id.
    pub key_id: [u8; 16],
    /// Epoch (bumped by every refresh or reshare).
    pub epoch: u64,
    /// Parties.
    pub n: usize,
    /// Threshold (any t+1 sign).
    pub t: usize,
    /// Public key.
    pub public_key: Point,
    /// Each party's share times G, by party index (Feldman verification of reshares).
    pub public_shares: Vec<Point>,
}

impl KeyPublic {
    /// The EVM address.
    pub fn address(&self) -> Result<[u8; 20]> {
        address_of(&self.public_key)
    }

    /// Public share of `p`.
    pub fn public_share(&self, p: PartyId) -> Result<Point> {
        self.public_shares.get(p.index()).copied().ok_or_else(|| SignerError::Invalid(format!("no party {p}")))
    }

    /// Binary encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(&self.key_id);
        w.extend_from_slice(&self.epoch.to_be_bytes());
        w.extend_from_slice(&(self.n as u16).to_be_bytes());
        w.extend_from_slice(&(self.t as u16).to_be_bytes());
        w.extend(point_to_bytes(&self.public_key));
        for p in &self.public_shares {
            w.extend(point_to_bytes(p));
        }
        w
    }

    /// Decodes [`KeyPublic::to_bytes`], validating every point.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader(bytes);
        let key_id = r.array::<16>()?;
        let epoch = u64::from_be_bytes(r.array::<8>()?);
        let n = usize::from(u16::from_be_bytes(r.array::<2>()?));
        let t = usize::from(u16::from_be_bytes(r.array::<2>()?));
        let public_key = r.point()?;
        let mut public_shares = Vec::with_capacity(n);
        for _ in 0..n {
            public_shares.push(r.point()?);
        }
        r.end()?;
        Ok(Self { key_id, epoch, n, t, public_key, public_shares })
    }
}

/// One node's share of a key.
pub struct KeyShare {
    /// The key.
    pub public: KeyPublic,
    /// This node.
    pub me: PartyId,
    share: Scalar,
}

impl std::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyShare")
            .field("public", &self.public)
            .field("me", &self.me)
            .field("share", &"<redacted>")
            .finish()
    }
}

impl Drop for KeyShare {
    fn drop(&mut self) {
        self.share.zeroize();
    }
}

impl KeyShare {
    /// A share (consumes the secret).
    pub fn new(public: KeyPublic, me: PartyId, share: Scalar) -> Self {
        Self { public, me, share }
    }

    /// The secret share (explicit exposure).
    pub fn expose_share(&self) -> Scalar {
        self.share
    }

    /// Checks the share against the public share of this node.
    pub fn check(&self) -> Result<()> {
        if crate::curve::generator() * self.share == self.public.public_share(self.me)? {
            Ok(())
        } else {
            Err(SignerError::Invalid("key share does not match its public share".into()))
        }
    }

    /// Binary encoding, secret included (for the encrypted store only).
    pub fn expose_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Zeroizing::new(self.public.to_bytes());
        w.extend_from_slice(&self.me.get().to_be_bytes());
        let mut s = [0u8; 32];
        self.share.write_wire(&mut s);
        w.extend_from_slice(&s);
        s.zeroize();
        w
    }

    /// Decodes [`KeyShare::expose_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let split = bytes.len().checked_sub(34).ok_or_else(|| SignerError::Invalid("short key share".into()))?;
        let (pubpart, rest) = bytes.split_at(split);
        let public = KeyPublic::from_bytes(pubpart)?;
        let mut r = Reader(rest);
        let me = PartyId::new(u16::from_be_bytes(r.array::<2>()?))
            .ok_or_else(|| SignerError::Invalid("bad party id".into()))?;
        let mut s = r.array::<32>()?;
        let share = Scalar::read_wire(&s).ok_or_else(|| SignerError::Invalid("non-canonical share".into()));
        s.zeroize();
        Ok(Self { public, me, share: share? })
    }
}

/// One node's part of a presignature: bound to one key epoch, one signer set, one use.
pub struct Presignature {
    /// Id.
    pub id: [u8; 32],
    /// Key.
    pub key_id: [u8; 16],
    /// Key epoch it was made under.
    pub epoch: u64,
    /// The only signer set it may be used with (t+1 parties, ascending).
    pub signers: Vec<PartyId>,
    /// R = k·G.
    pub big_r: Point,
    /// r = x(R) mod n.
    pub r: Scalar,
    /// Share of k⁻¹.
    w: Scalar,
    /// Share of k⁻¹·x.
    v: Scalar,
    /// For each signer (in `signers` order), (k⁻¹)_j·R and (k⁻¹x)_j·R: checks its signature share.
    pub checks: Vec<(Point, Point)>,
}

impl std::fmt::Debug for Presignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presignature")
            .field("id", &hex::encode(&self.id[..8]))
            .field("epoch", &self.epoch)
            .field("signers", &self.signers)
            .field("shares", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Drop for Presignature {
    fn drop(&mut self) {
        self.w.zeroize();
        self.v.zeroize();
    }
}

impl Presignature {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: [u8; 32],
        key_id: [u8; 16],
        epoch: u64,
        signers: Vec<PartyId>,
        big_r: Point,
        r: Scalar,
        w: Scalar,
        v: Scalar,
        checks: Vec<(Point, Point)>,
    ) -> Self {
        Self { id, key_id, epoch, signers, big_r, r, w, v, checks }
    }

    /// This node's signature share for message scalar `m`: s_i = m·(k⁻¹)_i + r·(k⁻¹x)_i.
    /// Consumes the presignature: it is used once.
    pub fn into_signature_share(self, m: Scalar) -> Scalar {
        m * self.w + self.r * self.v
    }

    /// Tests only: a copy that can be used twice (to show that peers refuse reuse).
    #[doc(hidden)]
    pub fn duplicate_for_tests(&self) -> Self {
        Self { signers: self.signers.clone(), checks: self.checks.clone(), ..*self }
    }

    /// Binary encoding, secrets included (for the encrypted store only).
    pub fn expose_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Zeroizing::new(Vec::new());
        w.extend_from_slice(&self.id);
        w.extend_from_slice(&self.key_id);
        w.extend_from_slice(&self.epoch.to_be_bytes());
        w.push(self.signers.len() as u8);
        for s in &self.signers {
            w.extend_from_slice(&s.get().to_be_bytes());
        }
        w.extend(point_to_bytes(&self.big_r));
        for x in [&self.r, &self.w, &self.v] {
            let mut b = [0u8; 32];
            x.write_wire(&mut b);
            w.extend_from_slice(&b);
            b.zeroize();
        }
        for (a, b) in &self.checks {
            w.extend(point_to_bytes(a));
            w.extend(point_to_bytes(b));
        }
        w
    }

    /// Decodes [`Presignature::expose_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader(bytes);
        let id = r.array::<32>()?;
        let key_id = r.array::<16>()?;
        let epoch = u64::from_be_bytes(r.array::<8>()?);
        let [count] = r.array::<1>()?;
        let mut signers = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            signers.push(
                PartyId::new(u16::from_be_bytes(r.array::<2>()?))
                    .ok_or_else(|| SignerError::Invalid("bad party id".into()))?,
            );
        }
        let big_r = r.point()?;
        let rr = r.scalar()?;
        let w = r.scalar()?;
        let v = r.scalar()?;
        let mut checks = Vec::with_capacity(signers.len());
        for _ in 0..count {
            checks.push((r.point()?, r.point()?));
        }
        r.end()?;
        if rr.is_zero() {
            return Err(SignerError::Invalid("presignature with r = 0".into()));
        }
        Ok(Self { id, key_id, epoch, signers, big_r, r: rr, w, v, checks })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, len: usize) -> Result<&[u8]> {
        let (a, b) = self.0.split_at_checked(len).ok_or_else(|| SignerError::Invalid("truncated record".into()))?;
        self.0 = b;
        Ok(a)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let b = self.take(N)?;
        <[u8; N]>::try_from(b).map_err(|_| SignerError::Invalid("truncated record".into()))
    }

    fn point(&mut self) -> Result<Point> {
        let b = self.take(point_len())?;
        point_from_bytes(b).ok_or_else(|| SignerError::Invalid("invalid point".into()))
    }

    fn scalar(&mut self) -> Result<Scalar> {
        let b = self.take(32)?;
        Scalar::read_wire(b).ok_or_else(|| SignerError::Invalid("non-canonical scalar".into()))
    }

    fn end(&self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(SignerError::Invalid("trailing bytes".into()))
        }
    }
}
