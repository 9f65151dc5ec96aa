//! Preprocessing that outlives its session: a batch of double sharings, random sharings and
//! random bits generated and verified in one session, exported, and loaded into a later session
//! of the same cluster (same parties, threshold, field and security mode).
//!
//! Malicious security is that of in-session preprocessing: a batch leaves its session only
//! after the session's verification passed (dealt degrees where `n > 2t + 1`, the bit claims
//! `b (b - 1) = 0` and the XOR products, broadcast agreement), which is exactly what the
//! engine checks for material it makes and uses itself. Products computed with loaded double
//! sharings are verified in the loading session like any other. Loading checks that every
//! party loaded the same batches in the same order (one broadcast of the batch ids), since
//! shares only fit together then. Using a batch once is the caller's duty: the engine never
//! hands out a loaded item twice within a session, and a durable store must burn a batch
//! before it is loaded (see the node's preprocessing pool).

use zeroize::Zeroizing;

use crate::engine::{Engine, Security};
use crate::error::{MpcError, Result};
use crate::field::{decode_into, encode_into, WireField};
use crate::party::PartyId;
use crate::shares::{DoubleShares, RandomBits, RandomShares};
use crate::transport::Transport;

/// Format tag at the start of every encoded batch.
const FORMAT: &[u8; 8] = b"tacitpb1";
/// Most items of one kind in a batch (a bound on what a decode may allocate).
pub const MAX_BATCH_ITEMS: usize = 1 << 20;
/// Most batches one session loads.
pub const MAX_LOADED_BATCHES: usize = 4096;
/// Header: format, id, n, t, party, security, field fingerprint, three counts.
const HEADER_LEN: usize = 8 + 32 + 2 + 2 + 2 + 1 + 32 + 3 * 8;

/// How many items of each kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrepCounts {
    /// Double sharings (one per multiplication).
    pub doubles: usize,
    /// Random degree-`t` sharings (input masks, coins, verification masks).
    pub randoms: usize,
    /// Shared random bits (comparison and truncation masks).
    pub bits: usize,
}

impl PrepCounts {
    /// Item-wise sum.
    pub fn plus(self, other: Self) -> Self {
        Self {
            doubles: self.doubles.saturating_add(other.doubles),
            randoms: self.randoms.saturating_add(other.randoms),
            bits: self.bits.saturating_add(other.bits),
        }
    }
}

/// The kinds of pooled preprocessing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PrepKind {
    Doubles,
    Randoms,
    Bits,
}

/// Counts, across the sessions it is attached to, the preprocessing taken from the pools and
/// the part generated on demand because the pools ran short: what a job consumes, to size the
/// batches a later run of it loads. Counting only; it changes nothing the engine does.
#[derive(Debug, Default)]
pub struct PrepMeter {
    taken: [std::sync::atomic::AtomicU64; 3],
    generated: [std::sync::atomic::AtomicU64; 3],
}

/// A [`PrepMeter`] reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrepReading {
    /// Items used.
    pub taken: PrepCounts,
    /// Items generated on demand (pools short).
    pub generated: PrepCounts,
}

impl PrepMeter {
    fn slot(kind: PrepKind) -> usize {
        match kind {
            PrepKind::Doubles => 0,
            PrepKind::Randoms => 1,
            PrepKind::Bits => 2,
        }
    }

    fn counts(cells: &[std::sync::atomic::AtomicU64; 3]) -> PrepCounts {
        let get = |i: usize| {
            cells.get(i).map_or(0, |c| usize::try_from(c.load(std::sync::atomic::Ordering::Relaxed)).unwrap_or(0))
        };
        PrepCounts { doubles: get(0), randoms: get(1), bits: get(2) }
    }

    /// What was counted so far.
    pub fn reading(&self) -> PrepReading {
        PrepReading { taken: Self::counts(&self.taken), generated: Self::counts(&self.generated) }
    }
}

/// A batch's name, chosen by the caller; the same at every party.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(pub [u8; 32]);

/// Why an encoded batch was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    /// Not an encoded batch (wrong tag or too short).
    #[error("not a preprocessing batch (bad format tag or truncated header)")]
    Format,
    /// Made over another field.
    #[error("the batch was made over another field")]
    Field,
    /// A count above [`MAX_BATCH_ITEMS`].
    #[error("the batch claims {count} {kind}, more than {MAX_BATCH_ITEMS}")]
    TooLarge {
        /// Item kind.
        kind: &'static str,
        /// Claimed count.
        count: u64,
    },
    /// The body does not have the length its header announces.
    #[error("the batch body has {got} bytes, its header announces {want}")]
    Length {
        /// Bytes present.
        got: usize,
        /// Bytes announced.
        want: usize,
    },
    /// An element is not a canonical field element.
    #[error("{kind} element {index} is not a field element")]
    Element {
        /// Item kind.
        kind: &'static str,
        /// Its position.
        index: usize,
    },
    /// The header names no party, or a party outside the cluster it names.
    #[error("the batch header names party {party} of {n} with threshold {t}")]
    Parties {
        /// Claimed party.
        party: u16,
        /// Claimed parties.
        n: u16,
        /// Claimed threshold.
        t: u16,
    },
    /// Unknown security mode.
    #[error("unknown security mode {0}")]
    Security(u8),
}

/// One party's shares of a verified preprocessing batch. Secret: zeroized on drop, printed
/// `<redacted>`, encoded only through [`PrepBatch::expose_bytes`], never cloned.
pub struct PrepBatch<F: WireField> {
    id: BatchId,
    n: u16,
    t: u16,
    party: PartyId,
    security: Security,
    doubles: DoubleShares<F>,
    randoms: RandomShares<F>,
    bits: RandomBits<F>,
}

impl<F: WireField> std::fmt::Debug for PrepBatch<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrepBatch")
            .field("id", &hex::encode(self.id.0))
            .field("party", &self.party)
            .field("counts", &self.counts())
            .field("shares", &"<redacted>")
            .finish()
    }
}

/// Identifies the field: its modulus and wire width.
fn field_fingerprint<F: WireField>() -> [u8; 32] {
    use ark_ff::BigInteger;
    let mut h = blake3::Hasher::new_derive_key("tacit preprocessing batch field v1");
    h.update(&F::MODULUS.to_bytes_le());
    h.update(&(F::WIRE_BYTES as u64).to_le_bytes());
    *h.finalize().as_bytes()
}

fn security_byte(s: Security) -> u8 {
    match s {
        Security::SemiHonest => 0,
        Security::Malicious => 1,
    }
}

/// Reads `count` elements of `kind` from the front of `body`.
fn take_elements<F: WireField>(body: &mut &[u8], count: usize, kind: &'static str) -> Result<Vec<F>, BatchError> {
    let len = count * F::WIRE_BYTES;
    let (head, rest) = body.split_at_checked(len).ok_or(BatchError::Length { got: body.len(), want: len })?;
    let mut out = Vec::with_capacity(count);
    decode_into(head, &mut out).map_err(|index| BatchError::Element { kind, index })?;
    *body = rest;
    Ok(out)
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    bytes.get(at..at + 2).and_then(|b| b.try_into().ok()).map(u16::from_le_bytes)
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
}

impl<F: WireField> PrepBatch<F> {
    /// Its name.
    pub fn id(&self) -> BatchId {
        self.id
    }

    /// The party whose shares these are.
    pub fn party(&self) -> PartyId {
        self.party
    }

    /// Items held.
    pub fn counts(&self) -> PrepCounts {
        PrepCounts { doubles: self.doubles.len(), randoms: self.randoms.len(), bits: self.bits.len() }
    }

    /// The encoding (header, then raw limbs of every share). Secret: keep it sealed.
    pub fn expose_bytes(&self) -> Zeroizing<Vec<u8>> {
        let c = self.counts();
        let w = F::WIRE_BYTES;
        let body = (2 * c.doubles + c.randoms + c.bits) * w;
        let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + body));
        out.extend_from_slice(FORMAT);
        out.extend_from_slice(&self.id.0);
        out.extend_from_slice(&self.n.to_le_bytes());
        out.extend_from_slice(&self.t.to_le_bytes());
        out.extend_from_slice(&self.party.get().to_le_bytes());
        out.push(security_byte(self.security));
        out.extend_from_slice(&field_fingerprint::<F>());
        for count in [c.doubles, c.randoms, c.bits] {
            out.extend_from_slice(&(count as u64).to_le_bytes());
        }
        for values in [&self.doubles.r_t, &self.doubles.r_2t, &self.randoms.r, &self.bits.bits] {
            let start = out.len();
            out.resize(start + values.len() * w, 0);
            if let Some(dest) = out.get_mut(start..) {
                encode_into(values, dest);
            }
        }
        out
    }

    /// Decodes a batch, checking the format, the field, the counts against
    /// [`MAX_BATCH_ITEMS`], the exact length and every element. Whether the batch fits a
    /// session (parties, threshold, mode) is checked when it is loaded.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BatchError> {
        let header = bytes.get(..HEADER_LEN).ok_or(BatchError::Format)?;
        if header.get(..8) != Some(FORMAT.as_slice()) {
            return Err(BatchError::Format);
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(header.get(8..40).ok_or(BatchError::Format)?);
        let n = read_u16(header, 40).ok_or(BatchError::Format)?;
        let t = read_u16(header, 42).ok_or(BatchError::Format)?;
        let party_raw = read_u16(header, 44).ok_or(BatchError::Format)?;
        let security = match header.get(46).copied() {
            Some(0) => Security::SemiHonest,
            Some(1) => Security::Malicious,
            Some(other) => return Err(BatchError::Security(other)),
            None => return Err(BatchError::Format),
        };
        if header.get(47..79) != Some(field_fingerprint::<F>().as_slice()) {
            return Err(BatchError::Field);
        }
        let party = PartyId::new(party_raw)
            .filter(|p| p.index() < usize::from(n) && usize::from(n) > 2 * usize::from(t))
            .ok_or(BatchError::Parties { party: party_raw, n, t })?;
        let mut counts = [0usize; 3];
        for (k, (slot, kind)) in counts.iter_mut().zip(["double sharings", "random sharings", "bits"]).enumerate() {
            let raw = read_u64(header, 79 + 8 * k).ok_or(BatchError::Format)?;
            *slot = usize::try_from(raw)
                .ok()
                .filter(|c| *c <= MAX_BATCH_ITEMS)
                .ok_or(BatchError::TooLarge { kind, count: raw })?;
        }
        let [doubles, randoms, bits] = counts;
        let mut body = bytes.get(HEADER_LEN..).unwrap_or_default();
        let want = (2 * doubles + randoms + bits) * F::WIRE_BYTES;
        if body.len() != want {
            return Err(BatchError::Length { got: body.len(), want });
        }
        let r_t = take_elements(&mut body, doubles, "double sharing (degree t)")?;
        let r_2t = take_elements(&mut body, doubles, "double sharing (degree 2t)")?;
        let r = take_elements(&mut body, randoms, "random sharing")?;
        let b = take_elements(&mut body, bits, "bit")?;
        Ok(Self {
            id: BatchId(id),
            n,
            t,
            party,
            security,
            doubles: DoubleShares { r_t, r_2t },
            randoms: RandomShares { r },
            bits: RandomBits { bits: b },
        })
    }
}

impl<F: WireField, T: Transport> Engine<F, T> {
    /// Generates `counts` items of preprocessing, runs the session's verification over them
    /// (and anything else pending), and hands them out as one batch named `id`. Nothing leaves
    /// the session unverified: on a failed check the session aborts and no batch is returned.
    pub async fn export_preprocessing(&mut self, id: BatchId, counts: PrepCounts) -> Result<PrepBatch<F>> {
        self.ensure_live()?;
        let r = async {
            for (count, kind) in
                [(counts.doubles, "double sharings"), (counts.randoms, "randoms"), (counts.bits, "bits")]
            {
                if count > MAX_BATCH_ITEMS {
                    return Err(MpcError::Usage(format!("{count} {kind} in one batch (at most {MAX_BATCH_ITEMS})")));
                }
            }
            let mut doubles =
                if counts.doubles > 0 { self.generate_doubles(counts.doubles).await? } else { DoubleShares::default() };
            let mut randoms =
                if counts.randoms > 0 { self.generate_randoms(counts.randoms).await? } else { RandomShares::default() };
            let mut bits = if counts.bits > 0 { self.generate_bits(counts.bits).await? } else { RandomBits::default() };
            self.verify().await?;
            let short = || MpcError::Usage("preprocessing came out short".into());
            let out_doubles = doubles.take(counts.doubles).ok_or_else(short)?;
            let out_randoms = randoms.take(counts.randoms).ok_or_else(short)?;
            let out_bits = bits.take(counts.bits).ok_or_else(short)?;
            // The rounding surplus is verified too: the session keeps it.
            self.doubles.append(doubles);
            self.randoms.append(randoms);
            self.bits.append(bits);
            Ok(PrepBatch {
                id,
                n: u16::try_from(self.n()).map_err(|_| short())?,
                t: u16::try_from(self.t()).map_err(|_| short())?,
                party: self.id(),
                security: self.security(),
                doubles: out_doubles,
                randoms: out_randoms,
                bits: out_bits,
            })
        }
        .await;
        self.guard(r).await
    }

    /// Loads batches exported by earlier sessions of this cluster into this session's pools
    /// (consumed before anything is generated). Refused, aborting the session, when a batch is
    /// another party's, from another cluster shape, semi-honest while this session is
    /// malicious, or named twice, or when any party loaded other batches (that party is
    /// named). Returns the items loaded.
    pub async fn load_preprocessing(&mut self, batches: Vec<PrepBatch<F>>) -> Result<PrepCounts> {
        self.ensure_live()?;
        let r = async {
            if batches.len() > MAX_LOADED_BATCHES {
                return Err(MpcError::Usage(format!("{} batches (at most {MAX_LOADED_BATCHES})", batches.len())));
            }
            let mut names: Vec<u8> = Vec::with_capacity(batches.len() * 32);
            for (k, b) in batches.iter().enumerate() {
                let name = hex::encode(b.id.0);
                if usize::from(b.n) != self.n() || usize::from(b.t) != self.t() {
                    return Err(MpcError::Usage(format!(
                        "preprocessing batch {name} was made by {} parties with threshold {}, this session has {} and {}",
                        b.n,
                        b.t,
                        self.n(),
                        self.t()
                    )));
                }
                if b.party != self.id() {
                    return Err(MpcError::Usage(format!(
                        "preprocessing batch {name} holds {}'s shares, not {}'s",
                        b.party,
                        self.id()
                    )));
                }
                if self.malicious() && b.security != Security::Malicious {
                    return Err(MpcError::Usage(format!(
                        "preprocessing batch {name} was made semi-honestly (unverified) for a malicious session"
                    )));
                }
                if batches.iter().take(k).any(|other| other.id == b.id) {
                    return Err(MpcError::Usage(format!("preprocessing batch {name} is named twice")));
                }
                if b.doubles.r_t.len() != b.doubles.r_2t.len() {
                    return Err(MpcError::Usage(format!("preprocessing batch {name} has unpaired double sharings")));
                }
                names.extend_from_slice(&b.id.0);
                for c in [b.counts().doubles, b.counts().randoms, b.counts().bits] {
                    names.extend_from_slice(&(c as u64).to_le_bytes());
                }
            }
            // Shares fit together only if every party loads the same batches in the same order.
            let all = self.net.broadcast_bytes(&names, MAX_LOADED_BATCHES * (32 + 3 * 8)).await?;
            let me = self.id();
            for (i, theirs) in all.iter().enumerate() {
                let Some(peer) = PartyId::from_index(i) else { continue };
                if peer != me && *theirs != names {
                    return Err(MpcError::Protocol {
                        peer,
                        reason: "loaded other preprocessing batches than this party".into(),
                    });
                }
            }
            let mut loaded = PrepCounts::default();
            for mut b in batches {
                loaded = loaded.plus(b.counts());
                self.doubles.append(std::mem::take(&mut b.doubles));
                self.randoms.append(std::mem::take(&mut b.randoms));
                self.bits.append(std::mem::take(&mut b.bits));
            }
            Ok(loaded)
        }
        .await;
        self.guard(r).await
    }

    /// Counts this session's use of preprocessing on `meter` from now on.
    pub fn set_prep_meter(&mut self, meter: std::sync::Arc<PrepMeter>) {
        self.meter = Some(meter);
    }

    pub(crate) fn meter_taken(&self, kind: PrepKind, count: usize) {
        if let Some(cell) = self.meter.as_ref().and_then(|m| m.taken.get(PrepMeter::slot(kind))) {
            cell.fetch_add(count as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub(crate) fn meter_generated(&self, kind: PrepKind, count: usize) {
        if let Some(cell) = self.meter.as_ref().and_then(|m| m.generated.get(PrepMeter::slot(kind))) {
            cell.fetch_add(count as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Items in this session's pools now (loaded or generated, not yet used).
    pub fn preprocessing_levels(&self) -> PrepCounts {
        PrepCounts { doubles: self.doubles.len(), randoms: self.randoms.len(), bits: self.bits.len() }
    }
}
