//! An institution's table: CSV with a header, first column the key, then numeric columns.
//! Parsing reports malformed rows and out-of-range values with their line numbers; the
//! table is then aggregated per key of the template's key universe, in fixed point, which
//! is what the institution secret-shares (nodes never learn which keys it has rows for).

use std::collections::HashMap;

use crate::template::Template;
use crate::RiskError;

/// The per-key figures an institution submits: row counts, then one vector per template
/// aggregate (raw fixed-point integers), all indexed like `template.keys`.
#[derive(Clone, PartialEq, Eq)]
pub struct InstitutionInput {
    /// Institution name.
    pub institution: String,
    /// Rows per key.
    pub counts: Vec<u64>,
    /// `aggregates[a][key]`: raw fixed-point sums.
    pub aggregates: Vec<Vec<i128>>,
    /// Random salt of the commitment to the input (secret; shared with the values).
    pub salt: ark_bn254::Fr,
}

impl InstitutionInput {
    /// The commitment the institution publishes before the query (see
    /// [`crate::proof::commit_values`]).
    pub fn commitment(&self) -> Result<ark_bn254::Fr, RiskError> {
        crate::proof::commit_values(self.salt, &crate::proof::committed_values(self))
    }
}

/// A fresh random salt.
pub fn random_salt() -> ark_bn254::Fr {
    use ark_ff::PrimeField;
    let mut bytes: [u8; 32] = rand::random();
    let salt = ark_bn254::Fr::from_le_bytes_mod_order(&bytes);
    bytes.fill(0);
    salt
}

impl std::fmt::Debug for InstitutionInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InstitutionInput({}, <redacted>)", self.institution)
    }
}

fn split_line(line: &str) -> Vec<String> {
    // Fields separated by commas; a field may be double-quoted (with "" for a quote).
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (',', false) => out.push(std::mem::take(&mut field).trim().to_string()),
            _ => field.push(c),
        }
    }
    out.push(field.trim().to_string());
    out
}

/// Parses `text` against the template and aggregates it. Errors name the line (1-based,
/// the header is line 1).
pub fn aggregate_csv(institution: &str, text: &str, template: &Template) -> Result<InstitutionInput, RiskError> {
    let fp = template.fixed;
    let bad = |line: usize, reason: String| RiskError::Input { line, reason };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l)).filter(|(_, l)| !l.trim().is_empty());
    let (header_line, header) = lines.next().ok_or_else(|| bad(1, "empty file: a header is required".into()))?;
    let header = split_line(header);
    if header.first().map(String::as_str) != Some("key") {
        return Err(bad(header_line, "the first column must be `key`".into()));
    }
    // For each template column, its index in the file.
    let mut positions = Vec::with_capacity(template.columns.len());
    for c in &template.columns {
        let pos = header
            .iter()
            .position(|h| *h == c.name)
            .ok_or_else(|| bad(header_line, format!("missing column {:?}", c.name)))?;
        positions.push(pos);
    }
    let key_index: HashMap<&str, usize> = template.keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
    let aggregates = template.aggregates()?;
    let nkeys = template.keys.len();
    let mut counts = vec![0u64; nkeys];
    let mut sums = vec![vec![0i128; nkeys]; aggregates.len()];
    let scale = f64::from(fp.f).exp2();
    for (line, text) in lines {
        let fields = split_line(text);
        if fields.len() != header.len() {
            return Err(bad(line, format!("{} fields, the header has {}", fields.len(), header.len())));
        }
        let key = fields.first().map(String::as_str).unwrap_or_default();
        let &k = key_index.get(key).ok_or_else(|| bad(line, format!("key {key:?} is not in the template")))?;
        let mut values = Vec::with_capacity(positions.len());
        for (c, pos) in template.columns.iter().zip(&positions) {
            let raw = fields.get(*pos).map(String::as_str).unwrap_or_default();
            let v: f64 = raw.parse().map_err(|_| bad(line, format!("column {:?}: {raw:?} is not a number", c.name)))?;
            if !v.is_finite() || v < c.min || v > c.max {
                return Err(bad(line, format!("column {:?}: {v} outside [{}, {}]", c.name, c.min, c.max)));
            }
            values.push(v);
        }
        if let Some(count) = counts.get_mut(k) {
            *count += 1;
        }
        for (a, sum) in aggregates.iter().zip(sums.iter_mut()) {
            let v = values.get(a.column).copied().unwrap_or_default();
            let raw = if a.squared { (v * v * scale).round() } else { (v * scale).round() } as i128;
            if let Some(s) = sum.get_mut(k) {
                *s += raw;
                if !fp.fits(*s) {
                    return Err(bad(
                        line,
                        format!("the running sum for key {key:?} overflows the {}-bit format", fp.k),
                    ));
                }
            }
        }
    }
    Ok(InstitutionInput { institution: institution.to_string(), counts, aggregates: sums, salt: random_salt() })
}
