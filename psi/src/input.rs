//! Institution inputs: CSV parsing and item normalisation.
//!
//! Format: one item per line, optionally followed by `,` and a value (a non-negative
//! integer below 2^64, e.g. an exposure in the smallest currency unit). Empty lines and lines
//! starting with `#` are skipped; a first line `item` or `item,value` (any case) is a header.
//! Surrounding whitespace and one pair of surrounding double quotes are removed from each
//! field.
//!
//! Normalisation: a field that looks like an EVM address (`0x` + 40 hex digits) is an
//! address: compared case-insensitively; when it has mixed-case hex letters its EIP-55
//! checksum must be right, otherwise the line is rejected. Every other item is taken as its
//! UTF-8 bytes, exactly (case-sensitive). A line that is not valid UTF-8, has an empty item,
//! more than two fields, or a value that is not an integer in `0..2^64` is rejected with its
//! line number (1-based).
//!
//! Duplicates: an item appearing more than once in one input is kept once; its values are
//! added (an overflow past 2^64 - 1 is an error naming the line). [`InputSet::duplicates`]
//! counts the merged lines.

use std::collections::HashMap;

use sha3::{Digest, Keccak256};
use zeroize::Zeroize;

/// A rejected input line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct InputError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// A normalised item: the canonical bytes every institution derives for the same
/// identifier (`addr:` + 20 bytes for an address, `str:` + UTF-8 otherwise).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Item(Vec<u8>);

impl Item {
    /// Normalises one field (see the module documentation).
    pub fn parse(field: &str) -> Result<Self, String> {
        let field = field.trim();
        if field.is_empty() {
            return Err("empty item".into());
        }
        if let Some(address) = parse_address(field)? {
            let mut bytes = b"addr:".to_vec();
            bytes.extend_from_slice(&address);
            return Ok(Self(bytes));
        }
        let mut bytes = b"str:".to_vec();
        bytes.extend_from_slice(field.as_bytes());
        Ok(Self(bytes))
    }

    /// An EVM address item.
    pub fn from_address(address: &[u8; 20]) -> Self {
        let mut bytes = b"addr:".to_vec();
        bytes.extend_from_slice(address);
        Self(bytes)
    }

    /// The canonical bytes (the OPRF input).
    pub fn canonical(&self) -> &[u8] {
        &self.0
    }

    /// Human-readable form: lowercase `0x…` for addresses, the string otherwise.
    pub fn display(&self) -> String {
        if let Some(addr) = self.0.strip_prefix(b"addr:") {
            return format!("0x{}", hex::encode(addr));
        }
        String::from_utf8_lossy(self.0.strip_prefix(b"str:").unwrap_or(&self.0)).into_owned()
    }
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Item(<redacted>)")
    }
}

impl Drop for Item {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// `Some(address)` when `s` is `0x` + 40 hex digits; an error when it is mixed case with a
/// wrong EIP-55 checksum.
fn parse_address(s: &str) -> Result<Option<[u8; 20]>, String> {
    let Some(body) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) else {
        return Ok(None);
    };
    if body.len() != 40 || !body.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let mut out = [0u8; 20];
    hex::decode_to_slice(body, &mut out).map_err(|e| format!("address: {e}"))?;
    let has_upper = body.bytes().any(|b| b.is_ascii_uppercase());
    let has_lower = body.bytes().any(|b| b.is_ascii_lowercase());
    if has_upper && has_lower && eip55(&out) != body {
        return Err(format!("{s} fails its EIP-55 checksum (expected 0x{})", eip55(&out)));
    }
    Ok(Some(out))
}

/// The EIP-55 mixed-case hex of an address (without `0x`).
pub fn eip55(address: &[u8; 20]) -> String {
    let lower = hex::encode(address);
    let hash = Keccak256::digest(lower.as_bytes());
    lower
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let nibble = hash.get(i / 2).map_or(0, |b| if i % 2 == 0 { b >> 4 } else { b & 0x0f });
            if c.is_ascii_alphabetic() && nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// One institution's deduplicated input.
#[derive(Clone, Default)]
pub struct InputSet {
    items: Vec<Item>,
    values: Vec<u64>,
    duplicates: usize,
}

impl std::fmt::Debug for InputSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InputSet({} items, {} duplicates merged, <redacted>)", self.items.len(), self.duplicates)
    }
}

impl Drop for InputSet {
    fn drop(&mut self) {
        self.values.zeroize();
    }
}

impl InputSet {
    /// Builds a set from `(item, value)` pairs, merging duplicates (values added).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Item, u64)>) -> Result<Self, InputError> {
        let mut set = Self::default();
        let mut index: HashMap<Item, usize> = HashMap::new();
        for (line, (item, value)) in pairs.into_iter().enumerate() {
            set.push(&mut index, item, value, line + 1)?;
        }
        Ok(set)
    }

    fn push(
        &mut self,
        index: &mut HashMap<Item, usize>,
        item: Item,
        value: u64,
        line: usize,
    ) -> Result<(), InputError> {
        if let Some(&i) = index.get(&item) {
            let slot = self.values.get_mut(i).ok_or_else(|| InputError { line, reason: "internal index".into() })?;
            *slot = slot
                .checked_add(value)
                .ok_or_else(|| InputError { line, reason: "values of a duplicated item overflow 2^64".into() })?;
            self.duplicates += 1;
        } else {
            index.insert(item.clone(), self.items.len());
            self.items.push(item);
            self.values.push(value);
        }
        Ok(())
    }

    /// Parses CSV bytes (see the module documentation).
    pub fn parse_csv(bytes: &[u8]) -> Result<Self, InputError> {
        let mut set = Self::default();
        let mut index: HashMap<Item, usize> = HashMap::new();
        let mut seen_content = false;
        for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            let line = i + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let text =
                std::str::from_utf8(raw).map_err(|e| InputError { line, reason: format!("not valid UTF-8: {e}") })?;
            let text = text.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = text.split(',').map(unquote).collect();
            if !seen_content {
                seen_content = true;
                let lower: Vec<String> = fields.iter().map(|f| f.to_ascii_lowercase()).collect();
                if lower == ["item"] || lower == ["item", "value"] {
                    continue;
                }
            }
            let (item, value) = match fields.as_slice() {
                [item] => (*item, 0),
                [item, value] => {
                    let v = value.parse::<u64>().map_err(|_| InputError {
                        line,
                        reason: format!("value {value:?} is not an integer in 0..2^64"),
                    })?;
                    (*item, v)
                }
                _ => {
                    return Err(InputError { line, reason: format!("{} fields; expected item[,value]", fields.len()) })
                }
            };
            let item = Item::parse(item).map_err(|reason| InputError { line, reason })?;
            set.push(&mut index, item, value, line)?;
        }
        Ok(set)
    }

    /// Reads and parses a CSV file.
    pub fn read_csv(path: &std::path::Path) -> Result<Self, InputError> {
        let bytes =
            std::fs::read(path).map_err(|e| InputError { line: 0, reason: format!("{}: {e}", path.display()) })?;
        Self::parse_csv(&bytes)
    }

    /// Distinct items.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Value of each item (0 where the line had none), in item order.
    pub fn values(&self) -> &[u64] {
        &self.values
    }

    /// Number of distinct items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Input lines merged into an earlier occurrence of the same item.
    pub fn duplicates(&self) -> usize {
        self.duplicates
    }
}

fn unquote(field: &str) -> &str {
    let f = field.trim();
    f.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip55_known_vectors() {
        // From EIP-55.
        for s in [
            "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "fB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "dbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "D1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            let mut a = [0u8; 20];
            hex::decode_to_slice(s, &mut a).unwrap_or_default();
            assert_eq!(eip55(&a), s);
        }
    }

    #[test]
    fn normalises_addresses_and_reports_lines() {
        let csv = b"item,value\n0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed,5\n0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED,7\n\n# c\nalice,1\n\"bob\"\n";
        let set = InputSet::parse_csv(csv).unwrap_or_default();
        assert_eq!(set.len(), 3);
        assert_eq!(set.duplicates(), 1);
        assert_eq!(set.values(), &[12, 1, 0]);
        assert_eq!(
            set.items().first().map(Item::display).as_deref(),
            Some("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")
        );
        let bad = InputSet::parse_csv(b"a\n0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD\n").err();
        assert_eq!(bad.map(|e| e.line), Some(2));
        assert_eq!(InputSet::parse_csv(b"a\nb,x\n").err().map(|e| e.line), Some(2));
        assert_eq!(InputSet::parse_csv(b"a\nb,1,2\n").err().map(|e| e.line), Some(2));
        assert_eq!(InputSet::parse_csv(b"a\n\xff\n").err().map(|e| e.line), Some(2));
        assert_eq!(InputSet::parse_csv(b"a\n ,3\n").err().map(|e| e.line), Some(2));
        assert_eq!(InputSet::parse_csv(b"a,18446744073709551615\na,1\n").err().map(|e| e.line), Some(2));
        // Strings are case-sensitive; addresses are not.
        assert_eq!(InputSet::parse_csv(b"Alice\nalice\n").map(|s| s.len()).ok(), Some(2));
    }
}
