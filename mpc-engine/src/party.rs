//! Party and session identifiers.

use std::fmt;

/// A party's id, `1..=n`. It is also the party's Shamir evaluation point.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartyId(u16);

/// Largest cluster the engine supports.
pub const MAX_PARTIES: usize = 16;

impl PartyId {
    /// A party id; `None` for 0 or anything above [`MAX_PARTIES`].
    pub fn new(id: u16) -> Option<Self> {
        (1..=MAX_PARTIES as u16).contains(&id).then_some(Self(id))
    }

    /// The id as a number, `1..=n`.
    pub fn get(self) -> u16 {
        self.0
    }

    /// Zero-based index, `0..n`.
    pub fn index(self) -> usize {
        usize::from(self.0) - 1
    }

    /// The party with zero-based index `i`.
    pub fn from_index(i: usize) -> Option<Self> {
        u16::try_from(i + 1).ok().and_then(Self::new)
    }

    /// All parties of an `n`-party cluster, in order.
    pub fn all(n: usize) -> impl Iterator<Item = PartyId> {
        (0..n.min(MAX_PARTIES)).filter_map(Self::from_index)
    }
}

impl fmt::Debug for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}", self.0)
    }
}

impl fmt::Display for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}", self.0)
    }
}

/// Identifies one protocol run. Every message carries it, so concurrent sessions can share
/// connections; within a session, messages between two parties arrive in the order sent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub [u8; 16]);

impl SessionId {
    /// A session id derived from a label and a counter (both parties must agree on them).
    pub fn derive(label: &str, counter: u64) -> Self {
        let mut h = blake3::Hasher::new_derive_key("tacit session id v1");
        h.update(label.as_bytes());
        h.update(&counter.to_le_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.finalize().as_bytes()[..16]);
        Self(out)
    }

    /// A fresh random session id.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// A sub-session of this one (e.g. the k-th step of a composite protocol).
    pub fn child(&self, label: &str, counter: u64) -> Self {
        let mut h = blake3::Hasher::new_derive_key("tacit child session id v1");
        h.update(&self.0);
        h.update(label.as_bytes());
        h.update(&counter.to_le_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.finalize().as_bytes()[..16]);
        Self(out)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session:{}", hex::encode(&self.0[..6]))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
