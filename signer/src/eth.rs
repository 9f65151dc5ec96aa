//! Ethereum encodings: a minimal RLP encoder, EIP-155 and EIP-1559 transactions, EIP-712
//! hashing, and the canonical signing intent approvers sign.

use serde::{Deserialize, Serialize};

use crate::curve::{keccak, keccak_parts, EcdsaSignature};

// ----- RLP ---------------------------------------------------------------------------------

/// An RLP item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rlp {
    /// A byte string.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Rlp>),
}

impl Rlp {
    /// An unsigned integer (big endian, no leading zeros; zero is the empty string).
    pub fn uint(v: u128) -> Self {
        let b = v.to_be_bytes();
        let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
        Self::Bytes(b.get(first..).unwrap_or_default().to_vec())
    }

    /// A 32-byte big-endian integer with leading zeros stripped (r, s).
    pub fn uint_bytes(v: &[u8]) -> Self {
        let first = v.iter().position(|x| *x != 0).unwrap_or(v.len());
        Self::Bytes(v.get(first..).unwrap_or_default().to_vec())
    }

    /// The encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Self::Bytes(b) => {
                if let [single] = b.as_slice() {
                    if *single < 0x80 {
                        out.push(*single);
                        return;
                    }
                }
                length_prefix(out, b.len(), 0x80);
                out.extend_from_slice(b);
            }
            Self::List(items) => {
                let mut payload = Vec::new();
                for i in items {
                    i.encode_into(&mut payload);
                }
                length_prefix(out, payload.len(), 0xc0);
                out.extend_from_slice(&payload);
            }
        }
    }
}

fn length_prefix(out: &mut Vec<u8>, len: usize, base: u8) {
    if len <= 55 {
        out.push(base + len as u8);
    } else {
        let b = (len as u64).to_be_bytes();
        let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
        let len_bytes = b.get(first..).unwrap_or_default();
        out.push(base + 55 + len_bytes.len() as u8);
        out.extend_from_slice(len_bytes);
    }
}

// ----- transactions -----------------------------------------------------------------------

/// A legacy transaction signed with EIP-155 replay protection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyTx {
    /// Nonce.
    pub nonce: u64,
    /// Gas price (wei).
    pub gas_price: u128,
    /// Gas limit.
    pub gas_limit: u64,
    /// Destination.
    pub to: [u8; 20],
    /// Value (wei).
    pub value: u128,
    /// Call data.
    pub data: Vec<u8>,
    /// Chain id.
    pub chain_id: u64,
}

impl LegacyTx {
    fn fields(&self) -> Vec<Rlp> {
        vec![
            Rlp::uint(self.nonce.into()),
            Rlp::uint(self.gas_price),
            Rlp::uint(self.gas_limit.into()),
            Rlp::Bytes(self.to.to_vec()),
            Rlp::uint(self.value),
            Rlp::Bytes(self.data.clone()),
        ]
    }

    /// The EIP-155 signing payload.
    pub fn signing_payload(&self) -> Vec<u8> {
        let mut f = self.fields();
        f.extend([Rlp::uint(self.chain_id.into()), Rlp::uint(0), Rlp::uint(0)]);
        Rlp::List(f).encode()
    }

    /// The hash that is signed.
    pub fn signing_hash(&self) -> [u8; 32] {
        keccak(&self.signing_payload())
    }

    /// The signed transaction (v = recovery id + 35 + 2 * chain id).
    pub fn encode_signed(&self, sig: &EcdsaSignature) -> Vec<u8> {
        let mut f = self.fields();
        let v = u128::from(sig.v & 1) + 35 + 2 * u128::from(self.chain_id);
        f.extend([Rlp::uint(v), Rlp::uint_bytes(&sig.r), Rlp::uint_bytes(&sig.s)]);
        Rlp::List(f).encode()
    }
}

/// An EIP-1559 (type 2) transaction with an empty access list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eip1559Tx {
    /// Chain id.
    pub chain_id: u64,
    /// Nonce.
    pub nonce: u64,
    /// Max priority fee per gas (wei).
    pub max_priority_fee_per_gas: u128,
    /// Max fee per gas (wei).
    pub max_fee_per_gas: u128,
    /// Gas limit.
    pub gas_limit: u64,
    /// Destination.
    pub to: [u8; 20],
    /// Value (wei).
    pub value: u128,
    /// Call data.
    pub data: Vec<u8>,
}

impl Eip1559Tx {
    fn fields(&self) -> Vec<Rlp> {
        vec![
            Rlp::uint(self.chain_id.into()),
            Rlp::uint(self.nonce.into()),
            Rlp::uint(self.max_priority_fee_per_gas),
            Rlp::uint(self.max_fee_per_gas),
            Rlp::uint(self.gas_limit.into()),
            Rlp::Bytes(self.to.to_vec()),
            Rlp::uint(self.value),
            Rlp::Bytes(self.data.clone()),
            Rlp::List(Vec::new()),
        ]
    }

    /// The hash that is signed: keccak(0x02 || rlp(fields)).
    pub fn signing_hash(&self) -> [u8; 32] {
        keccak_parts(&[&[2u8], &Rlp::List(self.fields()).encode()])
    }

    /// The signed raw transaction, 0x02 || rlp(fields, y_parity, r, s).
    pub fn encode_signed(&self, sig: &EcdsaSignature) -> Vec<u8> {
        let mut f = self.fields();
        f.extend([Rlp::uint(u128::from(sig.v & 1)), Rlp::uint_bytes(&sig.r), Rlp::uint_bytes(&sig.s)]);
        let mut out = vec![2u8];
        out.extend(Rlp::List(f).encode());
        out
    }
}

// ----- EIP-712 -----------------------------------------------------------------------------

/// A 32-byte ABI word of an unsigned integer.
pub fn word_u128(v: u128) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[16..].copy_from_slice(&v.to_be_bytes());
    w
}

/// A 32-byte ABI word of an address.
pub fn word_address(a: &[u8; 20]) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a);
    w
}

/// `hashStruct`: keccak(typeHash || encodeData) where `encoded` are the 32-byte words of the
/// members (strings and bytes already hashed, nested structs already `hashStruct`ed).
pub fn hash_struct(type_string: &str, encoded: &[[u8; 32]]) -> [u8; 32] {
    let type_hash = keccak(type_string.as_bytes());
    let mut parts: Vec<&[u8]> = vec![&type_hash];
    parts.extend(encoded.iter().map(|w| w.as_slice()));
    keccak_parts(&parts)
}

/// The EIP-712 domain (name, version, chain id, optional verifying contract).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eip712Domain {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Chain id.
    pub chain_id: u64,
    /// Verifying contract.
    pub verifying_contract: Option<[u8; 20]>,
}

impl Eip712Domain {
    /// The domain separator.
    pub fn separator(&self) -> [u8; 32] {
        let mut words =
            vec![keccak(self.name.as_bytes()), keccak(self.version.as_bytes()), word_u128(self.chain_id.into())];
        match &self.verifying_contract {
            Some(c) => {
                words.push(word_address(c));
                hash_struct(
                    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)",
                    &words,
                )
            }
            None => hash_struct("EIP712Domain(string name,string version,uint256 chainId)", &words),
        }
    }
}

/// The EIP-712 digest keccak(0x19 0x01 || domainSeparator || hashStruct(message)).
pub fn typed_data_digest(domain_separator: &[u8; 32], struct_hash: &[u8; 32]) -> [u8; 32] {
    keccak_parts(&[&[0x19, 0x01], domain_separator, struct_hash])
}

// ----- the signing intent -------------------------------------------------------------------

/// What a request asks the key to sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentKind {
    /// An EIP-1559 transaction built from the intent's fields.
    Transaction = 0,
    /// An EIP-712 digest, given as the intent's data hash (value must be 0; `to` is the
    /// verifying contract, checked against the allowlist).
    TypedData = 1,
}

/// The canonical intent: an EIP-712 struct approvers sign and every signer node checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// Key this intent is for (its key id).
    #[serde(with = "hex_array")]
    pub key_id: [u8; 16],
    /// Kind.
    pub kind: IntentKind,
    /// Chain id.
    pub chain_id: u64,
    /// Destination (or verifying contract).
    #[serde(with = "hex_array")]
    pub to: [u8; 20],
    /// Value (wei).
    pub value: u128,
    /// keccak of the call data (transactions), or the EIP-712 digest (typed data).
    #[serde(with = "hex_array")]
    pub data_hash: [u8; 32],
    /// Call data (transactions; its keccak must equal `data_hash`).
    #[serde(with = "hex_vec", default)]
    pub data: Vec<u8>,
    /// Account nonce.
    pub nonce: u64,
    /// Max priority fee per gas.
    pub max_priority_fee_per_gas: u128,
    /// Max fee per gas.
    pub max_fee_per_gas: u128,
    /// Gas limit.
    pub gas_limit: u64,
    /// Unix seconds after which no node signs.
    pub expiry: u64,
    /// Single-use request id.
    #[serde(with = "hex_array")]
    pub request_id: [u8; 32],
}

/// The EIP-712 type of [`Intent`].
pub const INTENT_TYPE: &str = "SigningIntent(bytes16 keyId,uint8 kind,uint256 chainId,address to,uint256 value,bytes32 dataHash,uint256 nonce,uint256 maxPriorityFeePerGas,uint256 maxFeePerGas,uint256 gasLimit,uint64 expiry,bytes32 requestId)";

impl Intent {
    /// A plain ether transfer on mainnet (`chain_id` 1): no call data, 21,000 gas, 1 gwei tip,
    /// 30 gwei fee cap, a fresh request id, expiring at `expiry` (the demos' and drills'
    /// transfer).
    pub fn simple_transfer(key_id: [u8; 16], to: [u8; 20], value: u128, nonce: u64, expiry: u64) -> Self {
        Self {
            key_id,
            kind: IntentKind::Transaction,
            chain_id: 1,
            to,
            value,
            data_hash: keccak(&[]),
            data: Vec::new(),
            nonce,
            max_priority_fee_per_gas: 1_000_000_000,
            max_fee_per_gas: 30_000_000_000,
            gas_limit: 21_000,
            expiry,
            request_id: rand::random(),
        }
    }

    /// The EIP-712 domain approvals are made under.
    pub fn domain(&self) -> Eip712Domain {
        Eip712Domain {
            name: "Tacit Signer".into(),
            version: "1".into(),
            chain_id: self.chain_id,
            verifying_contract: None,
        }
    }

    /// hashStruct of the intent.
    pub fn struct_hash(&self) -> [u8; 32] {
        let mut key_id = [0u8; 32];
        key_id[..16].copy_from_slice(&self.key_id);
        hash_struct(
            INTENT_TYPE,
            &[
                key_id,
                word_u128(self.kind as u128),
                word_u128(self.chain_id.into()),
                word_address(&self.to),
                word_u128(self.value),
                self.data_hash,
                word_u128(self.nonce.into()),
                word_u128(self.max_priority_fee_per_gas),
                word_u128(self.max_fee_per_gas),
                word_u128(self.gas_limit.into()),
                word_u128(self.expiry.into()),
                self.request_id,
            ],
        )
    }

    /// The digest approvers sign.
    pub fn digest(&self) -> [u8; 32] {
        typed_data_digest(&self.domain().separator(), &self.struct_hash())
    }

    /// The transaction of a [`IntentKind::Transaction`] intent.
    pub fn transaction(&self) -> Eip1559Tx {
        Eip1559Tx {
            chain_id: self.chain_id,
            nonce: self.nonce,
            max_priority_fee_per_gas: self.max_priority_fee_per_gas,
            max_fee_per_gas: self.max_fee_per_gas,
            gas_limit: self.gas_limit,
            to: self.to,
            value: self.value,
            data: self.data.clone(),
        }
    }

    /// The 32-byte hash the key signs for this intent.
    pub fn message_hash(&self) -> [u8; 32] {
        match self.kind {
            IntentKind::Transaction => self.transaction().signing_hash(),
            IntentKind::TypedData => self.data_hash,
        }
    }
}

pub(crate) mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        crate::curve::parse_hex::<N>(&s).map_err(serde::de::Error::custom)
    }
}

pub(crate) mod hex_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(serde::de::Error::custom)
    }
}
