//! `cargo run --release -p tacit-psi --example keys_load -- [DIR]`: how long a node takes to
//! read the proof keys of `cardinality` at 3 x 2^12 rows (made in DIR first if missing): with
//! every check (a node's first load), without the subgroup checks, and from the uncompressed
//! checked copy a node keeps after its first load (`tacit_node::proving::CheckedKey`).

use std::time::Instant;

use tacit_psi::proven::ProofKeys;
use tacit_psi::statement::{Shape, StatementMode};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/keys-3x4096".into()));
    if !dir.join("shape.json").exists() {
        let started = Instant::now();
        let shape = Shape { institutions: 3, rows: 4096, mode: StatementMode::Cardinality, limb_bits: 16 };
        ProofKeys::generate(shape, &mut rand::rngs::OsRng)?.write(&dir)?;
        println!("keys made and written in {:.2} s", started.elapsed().as_secs_f64());
    }
    let timed = |what: &str, read: &dyn Fn() -> Result<ProofKeys, Box<dyn std::error::Error>>| {
        let started = Instant::now();
        let cpu = cpu_seconds();
        let keys = read();
        println!("{what}: {:.2} s ({:.1} s CPU)", started.elapsed().as_secs_f64(), cpu_seconds() - cpu);
        keys
    };
    let keys = timed("validated (a node's first load)", &|| Ok(ProofKeys::read(&dir, false)?))?;
    timed("without subgroup checks", &|| Ok(ProofKeys::read(&dir, true)?))?;
    let copy = tacit_prover::keys::proving_key_to_checked_bytes(&keys.keys.pk)?;
    timed("from the checked copy (later loads)", &|| {
        Ok(ProofKeys::read_with(&dir, |_| {
            let mut hasher = blake3::Hasher::new();
            hasher.update_rayon(&copy);
            let _ = hasher.finalize();
            tacit_prover::keys::proving_key_from_checked_bytes(&copy).map_err(|e| e.to_string())
        })?)
    })?;
    println!("checked copy: {:.1} MB", copy.len() as f64 / 1e6);
    Ok(())
}

/// CPU seconds this process used so far (user + system).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
