//! Every online operation against plaintext, for both fields, both security modes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use ark_ff::{PrimeField, UniformRand};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use tacit_mpc_engine::field::{from_i128, to_i128};
use tacit_mpc_engine::simulate::run_in_memory;
use tacit_mpc_engine::{PartyId, Security, Shamir, Shares, WireField};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn share_reconstruct<F: WireField>(n: usize, t: usize, seed: u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let shamir = Shamir::<F>::new(n, t).unwrap();
    let secret = F::rand(&mut rng);
    let shares = shamir.share(secret, t, &mut rng);
    assert_eq!(shamir.reconstruct_checked(&shares, t), Some(secret));
    // any t+1 parties reconstruct
    let set: Vec<PartyId> = PartyId::all(n).skip(n - t - 1).collect();
    let lambda = shamir.lagrange_at_zero(&set);
    let value: F = set.iter().zip(lambda.iter()).map(|(p, l)| shares[p.index()] * l).sum();
    assert_eq!(value, secret);
    // a changed share is detected
    let mut bad = shares.clone();
    bad[n - 1] += F::one();
    assert_eq!(shamir.reconstruct_checked(&bad, t), None);
    if n > 3 * t {
        assert_eq!(shamir.identify_bad_shares(&bad, t), Some(vec![PartyId::new(n as u16).unwrap()]));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn shamir_share_reconstruct(t in 1usize..=7, extra in 0usize..=2, seed in any::<u64>()) {
        let n = (2 * t + 1 + extra).min(16);
        share_reconstruct::<ark_bn254::Fr>(n, t, seed);
        share_reconstruct::<ark_secp256k1::Fr>(n, t, seed);
    }
}

#[test]
fn parameters_are_checked() {
    assert!(Shamir::<ark_bn254::Fr>::new(4, 2).is_err());
    assert!(Shamir::<ark_bn254::Fr>::new(17, 1).is_err());
    assert!(Shamir::<ark_bn254::Fr>::new(16, 7).is_ok());
}

/// Inputs from parties 1 and 2, every op, outputs opened; compared with plaintext.
fn all_ops<F: WireField>(n: usize, t: usize, security: Security, seed: u64) {
    const K: u32 = 20;
    let len = 24;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let xs: Vec<u64> = (0..len).map(|i| if i % 5 == 0 { 7 } else { rng.gen_range(0..1u64 << K) }).collect();
    let ys: Vec<u64> = (0..len).map(|i| if i % 5 == 0 { 7 } else { rng.gen_range(0..1u64 << K) }).collect();
    let signed: Vec<i64> = (0..len).map(|_| rng.gen_range(-(1i64 << 30)..(1i64 << 30))).collect();
    let fx: Vec<F> = xs.iter().map(|v| F::from(*v)).collect();
    let fy: Vec<F> = ys.iter().map(|v| F::from(*v)).collect();
    let fs: Vec<F> = signed.iter().map(|v| from_i128(i128::from(*v))).collect();
    let results = runtime().block_on(run_in_memory::<F, _, _, _>(n, t, security, move |mut e| {
        let (fx, fy, fs) = (fx.clone(), fy.clone(), fs.clone());
        async move {
            let p1 = PartyId::new(1).unwrap();
            let p2 = PartyId::new(2).unwrap();
            let me = e.id();
            let x = e.input(p1, (me == p1).then_some(&fx[..]), fx.len()).await?;
            let y = e.input(p2, (me == p2).then_some(&fy[..]), fy.len()).await?;
            let s = e.input(p1, (me == p1).then_some(&fs[..]), fs.len()).await?;
            let prod = e.mul(&x, &y).await?;
            let ip = e.inner_products(&[(&x, &y), (&y, &y)]).await?;
            let triples = e.triples(x.len()).await?;
            let beaver = e.mul_beaver(&x, &y, triples).await?;
            let lt = e.less_than(&x, &y, K).await?;
            let eq = e.equal(&x, &y, K).await?;
            let bits = e.bit_decompose(&x, K).await?;
            let trunc = e.truncate(&s, 32, 8).await?;
            let rbits = e.take_bits(64).await?.into_shares();
            let lin = x.add(&y).scale(F::from(3u64)).sub(&x).add_scalar(F::from(5u64));
            // Fifth powers, partly from a prepared pool and partly prepared on the spot.
            e.prepare_pow5(len / 2).await?;
            let [x2, x4, x5] = e.pow5(&s).await?;
            let powers = Shares::concat(&[&x2, &x4, &x5]);
            let mut out = Vec::new();
            for v in [&prod, &ip, &beaver, &lt, &eq, &trunc, &rbits, &lin, &powers] {
                out.push(e.open(v).await?);
            }
            let all_bits = Shares::concat(&bits.iter().collect::<Vec<_>>());
            out.push(e.open(&all_bits).await?);
            Ok(out)
        }
    }));
    let outputs: Vec<Vec<Vec<F>>> = results.into_iter().map(|r| r.expect("party failed")).collect();
    for o in &outputs {
        assert_eq!(o, &outputs[0], "all parties open the same values");
    }
    let o = &outputs[0];
    let f = |v: u64| F::from(v);
    for i in 0..len {
        assert_eq!(o[0][i], f(xs[i]) * f(ys[i]), "mul");
        assert_eq!(o[2][i], f(xs[i]) * f(ys[i]), "beaver mul");
        assert_eq!(o[3][i], f(u64::from(xs[i] < ys[i])), "less than at {i}: {} {}", xs[i], ys[i]);
        assert_eq!(o[4][i], f(u64::from(xs[i] == ys[i])), "equal");
        let got = to_i128(&o[5][i]).unwrap();
        let exact = i128::from(signed[i]) >> 8;
        assert!(got == exact || got == exact + 1, "truncation {} -> {got}, expected about {exact}", signed[i]);
        assert_eq!(o[7][i], (f(xs[i]) + f(ys[i])) * f(3) - f(xs[i]) + f(5), "linear");
        let v: F = from_i128(i128::from(signed[i]));
        assert_eq!((o[8][i], o[8][len + i], o[8][2 * len + i]), (v.pow([2]), v.pow([4]), v.pow([5])), "pow5");
        for b in 0..K as usize {
            assert_eq!(o[9][b * len + i], f((xs[i] >> b) & 1), "bit {b} of {}", xs[i]);
        }
    }
    let ip_xy: F = (0..len).map(|i| f(xs[i]) * f(ys[i])).sum();
    let ip_yy: F = (0..len).map(|i| f(ys[i]) * f(ys[i])).sum();
    assert_eq!(o[1], vec![ip_xy, ip_yy]);
    assert!(o[6].iter().all(|b| b.is_zero() || b.is_one()), "random bits are bits");
    assert!(o[6].iter().any(|b| b.is_one()) && o[6].iter().any(|b| b.is_zero()), "64 random bits are not constant");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3))]
    #[test]
    fn ops_match_plaintext_bn254(seed in any::<u64>()) {
        all_ops::<ark_bn254::Fr>(3, 1, Security::Malicious, seed);
        all_ops::<ark_bn254::Fr>(3, 1, Security::SemiHonest, seed);
    }

    #[test]
    fn ops_match_plaintext_secp256k1(seed in any::<u64>()) {
        all_ops::<ark_secp256k1::Fr>(3, 1, Security::Malicious, seed);
        all_ops::<ark_secp256k1::Fr>(3, 1, Security::SemiHonest, seed);
    }
}

#[test]
fn ops_with_redundant_parties() {
    // n > 2t + 1 exercises the dealt-degree checks and error correction.
    all_ops::<ark_bn254::Fr>(5, 1, Security::Malicious, 7);
    all_ops::<ark_bn254::Fr>(5, 2, Security::Malicious, 8);
}

#[test]
fn large_batch_multiplication() {
    // Above the rayon threshold and the message chunk size.
    let len = (1 << 15) + 17;
    let results = runtime().block_on(run_in_memory::<ark_bn254::Fr, _, _, _>(
        3,
        1,
        Security::Malicious,
        move |mut e| async move {
            let p1 = PartyId::new(1).unwrap();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
            let xs: Vec<ark_bn254::Fr> = (0..len).map(|_| ark_bn254::Fr::rand(&mut rng)).collect();
            let x = e.input(p1, (e.id() == p1).then_some(&xs[..]), len).await?;
            let sq = e.mul(&x, &x).await?;
            let opened = e.open(&sq).await?;
            Ok((xs, opened))
        },
    ));
    for r in results {
        let (xs, opened) = r.unwrap();
        assert!(xs.iter().zip(&opened).all(|(x, o)| *x * x == *o));
    }
}

#[test]
fn secrets_print_redacted() {
    let s = Shares::from_raw(vec![ark_bn254::Fr::from(42u64)]);
    let printed = format!("{s:?}");
    assert!(printed.contains("<redacted>") && !printed.contains("42"));
    assert_eq!(ark_bn254::Fr::MODULUS_BIT_SIZE, 254);
}

#[test]
fn byte_broadcasts_arrive_and_are_capped() {
    let results =
        runtime().block_on(run_in_memory::<ark_bn254::Fr, _, _, _>(3, 1, Security::Malicious, |mut e| async move {
            let mine = vec![e.id().get() as u8; e.id().get() as usize * 10];
            let all = e.broadcast_bytes(&mine, 100).await?;
            let capped = e.broadcast_bytes(&mine, 15).await;
            Ok((all, capped.is_err()))
        }));
    for (i, r) in results.into_iter().enumerate() {
        let (all, capped) = r.unwrap();
        for (j, payload) in all.iter().enumerate() {
            assert_eq!(payload, &vec![j as u8 + 1; (j + 1) * 10]);
        }
        // Every party receives a payload over the 15-byte cap (20 or 30 bytes) and refuses it.
        assert!(capped, "party {} accepted an oversized payload", i + 1);
    }
}
