//! Single-thread cost of the OPRF's curve operations (k256), to put the PSI figures in
//! proportion: `cargo run --release -p tacit-psi --example oprf_ops`.

use k256::elliptic_curve::ops::LinearCombination;
use k256::elliptic_curve::Field;
use k256::{ProjectivePoint, Scalar};
use tacit_psi::oprf;

fn time<R>(what: &str, count: usize, mut f: impl FnMut(usize) -> R) {
    let start = std::time::Instant::now();
    for i in 0..count {
        std::hint::black_box(f(i));
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / count as f64;
    println!("{what:<28} {us:8.2} us");
}

fn main() {
    let count = 4000;
    let mut rng = rand::thread_rng();
    let s: Vec<Scalar> = (0..count).map(|_| Scalar::random(&mut rng)).collect();
    let p: Vec<ProjectivePoint> = s.iter().map(|k| ProjectivePoint::GENERATOR * k).collect();
    let items: Vec<Vec<u8>> = (0..count).map(|i| format!("str:item-{i}").into_bytes()).collect();
    time("hash_to_curve", count, |i| oprf::hash_to_curve(&items[i % count]));
    time("variable-base scalar mul", count, |i| p[i] * s[(i + 1) % count]);
    time("2-term lincomb", count, |i| ProjectivePoint::lincomb(&p[i], &s[i], &p[(i + 1) % count], &s[(i + 2) % count]));
    let enc = oprf::encode_points(&p);
    time("encode (affine, compressed)", count, |i| oprf::encode_points(&p[i..i + 1]));
    time("decode (compressed)", count, |i| oprf::decode_points(&enc[i * 33..(i + 1) * 33], "x"));
    time("scalar invert", count, |i| s[i].invert());
}
