//! The cggmp24 baseline: one full interactive threshold ECDSA signing (cggmp24's signing
//! protocol from key shares to a verified signature: its presigning and online rounds), 2 of
//! 3, all parties in this process over round-based's simulated network.
//!
//! The key shares are a test fixture made once with cggmp24's trusted dealer
//! (`data/cggmp24-2of3-test-shares.json`, compiled in; its Paillier primes take minutes to
//! generate): insecure test material, never a real key.

use std::time::Instant;

use cggmp24::security_level::SecurityLevel128;
use cggmp24::supported_curves::Secp256k1;
use rand::rngs::OsRng;

type CgShare = cggmp24::KeyShare<Secp256k1, SecurityLevel128>;

const SHARES: &[u8] = include_bytes!("../data/cggmp24-2of3-test-shares.json");

/// Version of the baseline crate (as pinned in `benches/Cargo.toml`).
pub const CGGMP24_VERSION: &str = "0.7.0-alpha.3";

/// Loaded key shares and a runtime.
pub struct Cggmp24 {
    rt: tokio::runtime::Runtime,
    shares: Vec<CgShare>,
    counter: u64,
}

impl std::fmt::Debug for Cggmp24 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cggmp24").field("shares", &self.shares.len()).finish_non_exhaustive()
    }
}

impl Cggmp24 {
    /// Loads the fixture shares; a two-worker runtime like the nodes use.
    pub fn new() -> Result<Self, String> {
        let shares: Vec<CgShare> =
            serde_json::from_slice(SHARES).map_err(|e| format!("cggmp24 fixture shares: {e}"))?;
        if shares.len() < 2 {
            return Err("cggmp24 fixture: fewer than two shares".into());
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        Ok(Self { rt, shares, counter: 0 })
    }

    /// One full interactive signing by parties 0 and 1 (threshold 2 of 3), verified against
    /// the shared public key.
    pub fn sign(&mut self) -> Result<(), String> {
        self.counter += 1;
        let eid_bytes = format!("tacit-bench-{}", self.counter);
        let parties: [u16; 2] = [0, 1];
        let data = cggmp24::DataToSign::digest::<sha2::Sha256>(b"tacit bench");
        let signers = self.shares.get(..2).ok_or("cggmp24 fixture: fewer than two shares")?;
        let out = self.rt.block_on(round_based::sim::async_env::run_with_setup(signers.iter(), |i, party, share| {
            let eid = cggmp24::ExecutionId::new(eid_bytes.as_bytes());
            let parties = &parties;
            async move { cggmp24::signing(eid, i, parties, share).sign(&mut OsRng, party, &data).await }
        }));
        let sigs = out.into_iter().collect::<Result<Vec<_>, _>>().map_err(|e| format!("cggmp24 signing: {e}"))?;
        let first = sigs.first().ok_or("cggmp24 signing: no signature")?;
        let public = &signers.first().ok_or("cggmp24 fixture: no share")?.core.shared_public_key;
        first.verify(public, &data).map_err(|e| format!("cggmp24 signature does not verify: {e:?}"))
    }

    /// Milliseconds of each of `runs` signings.
    pub fn time(&mut self, runs: usize) -> Result<Vec<f64>, String> {
        let mut out = Vec::with_capacity(runs);
        for _ in 0..runs {
            let s = Instant::now();
            self.sign()?;
            out.push(s.elapsed().as_secs_f64() * 1e3);
        }
        Ok(out)
    }
}
