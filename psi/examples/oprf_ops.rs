//! Cost of the OPRF's curve operations (k256 and libsecp256k1), to put the PSI figures in proportion, and of
//! the batched DLEQ proofs that name a cheating node:
//! `cargo run --release -p tacit-psi --example oprf_ops [BATCH]` (run with
//! `RAYON_NUM_THREADS=1` for single-thread figures of the batch steps).

use k256::elliptic_curve::ops::LinearCombination;
use k256::elliptic_curve::Field;
use k256::{ProjectivePoint, Scalar};
use rayon::prelude::*;
use tacit_psi::oprf;

fn time<R>(what: &str, count: usize, mut f: impl FnMut(usize) -> R) {
    let start = std::time::Instant::now();
    for i in 0..count {
        std::hint::black_box(f(i));
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / count as f64;
    println!("{what:<44} {us:8.2} us");
}

/// Median of three runs of `f` over a batch of `len` items, per item.
fn per_item<R>(what: &str, len: usize, mut f: impl FnMut() -> R) {
    let mut runs: Vec<f64> = (0..3)
        .map(|_| {
            let start = std::time::Instant::now();
            std::hint::black_box(f());
            start.elapsed().as_secs_f64() * 1e6 / len as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    println!("{what:<44} {:8.2} us per item", runs.get(1).copied().unwrap_or_default());
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count = 4000;
    let mut rng = rand::thread_rng();
    let s: Vec<Scalar> = (0..count).map(|_| Scalar::random(&mut rng)).collect();
    let p: Vec<ProjectivePoint> = s.iter().map(|k| ProjectivePoint::GENERATOR * k).collect();
    let items: Vec<Vec<u8>> = (0..count).map(|i| format!("str:item-{i}").into_bytes()).collect();
    time("hash_to_curve", count, |i| oprf::hash_to_curve(&items[i % count]));
    time("variable-base scalar mul", count, |i| p[i] * s[(i + 1) % count]);
    time("fixed-base scalar mul (k256 table)", count, |i| {
        <ProjectivePoint as k256::elliptic_curve::ops::MulByGenerator>::mul_by_generator(&s[i])
    });
    // libsecp256k1, which the node's answers and the client's blinding use.
    let secp = secp256k1::Secp256k1::new();
    let keys =
        s.iter().map(|k| secp256k1::SecretKey::from_byte_array(k.to_bytes().into())).collect::<Result<Vec<_>, _>>()?;
    let pubs: Vec<secp256k1::PublicKey> =
        keys.iter().map(|k| secp256k1::PublicKey::from_secret_key(&secp, k)).collect();
    let tweaks: Vec<secp256k1::Scalar> = keys.iter().map(|k| secp256k1::Scalar::from(*k)).collect();
    time("variable-base scalar mul (libsecp256k1)", count, |i| pubs[i].mul_tweak(&secp, &tweaks[(i + 1) % count]));
    time("fixed-base scalar mul (libsecp256k1)", count, |i| secp256k1::PublicKey::from_secret_key(&secp, &keys[i]));
    time("2-term lincomb", count, |i| ProjectivePoint::lincomb(&p[i], &s[i], &p[(i + 1) % count], &s[(i + 2) % count]));
    let enc = oprf::encode_points(&p);
    time("encode (affine, uncompressed)", count, |i| oprf::encode_points(&p[i..i + 1]));
    let w = oprf::POINT_BYTES;
    time("decode (uncompressed)", count, |i| oprf::decode_points(&enc[i * w..(i + 1) * w], "x"));
    time("scalar invert", count, |i| s[i].invert());

    // One node's answer to a batch, without and with the batch proof, and the client's
    // verification of one node's proof (done only when the answers are inconsistent).
    let batch: usize = std::env::args().nth(1).map_or(Ok(4096), |a| a.parse())?;
    let batch_items: Vec<Vec<u8>> = (0..batch).map(|i| format!("str:batch-{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = batch_items.iter().map(Vec::as_slice).collect();
    let (blinded, _blinding) = oprf::blind(&refs)?;
    let key = Scalar::random(&mut rng);
    println!("batch of {batch} items, {} rayon threads:", rayon::current_num_threads());
    per_item("node: answers only (decode, k_i·B, encode)", batch, || {
        let points = oprf::decode_points(&blinded, "client").unwrap_or_default();
        let answers: Vec<ProjectivePoint> = points.par_iter().map(|b| *b * key).collect();
        oprf::encode_points(&answers)
    });
    per_item("node: answers + K_i + batch DLEQ proof", batch, || oprf::evaluate(&key, &blinded, "client"));
    let answer = oprf::evaluate(&key, &blinded, "client")?;
    let node = tacit_mpc_engine::PartyId::new(1).ok_or("no node 1")?;
    let responses = vec![answer];
    per_item("client: verify one node's batch proof", batch, || oprf::failing_proofs(&[node], &responses, &blinded));
    // The client's side of a whole batch with 3 nodes at threshold 1 (2 answer).
    let shares = [key, key + key, key + key + key];
    let table: Vec<ProjectivePoint> = shares.iter().map(|s| ProjectivePoint::GENERATOR * s).collect();
    let answering = oprf::answering_nodes(0, 3, 1);
    let lambda = oprf::lagrange_at_zero(&answering);
    let answers: Vec<Vec<u8>> = answering
        .iter()
        .zip(&lambda)
        .map(|(p, l)| oprf::evaluate(&(shares[p.index()] * l), &blinded, "client"))
        .collect::<Result<_, _>>()?;
    per_item("client: hash to curve, one by one", batch, || {
        refs.par_iter().map(|item| oprf::hash_to_curve(item)).collect::<Vec<_>>()
    });
    per_item("client: hash to curve, batched inversions", batch, || oprf::hash_to_curve_batch(&refs));
    per_item("client: blind (hash to curve, H + rho·G)", batch, || oprf::blind(&refs));
    per_item("client: finalize (2 proofs, unblind, tags)", batch, || {
        oprf::finalize(&table, &answering, &answers, &_blinding, &blinded)
    });
    Ok(())
}
