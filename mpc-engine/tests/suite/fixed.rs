//! Fixed point (k, f): encoding, range checks (overflow is an error), multiplication and
//! scaling with probabilistic truncation, within the documented error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use ark_bn254::Fr;
use rand::{Rng, SeedableRng};
use tacit_mpc_engine::fixed::{FixedError, FixedPoint};
use tacit_mpc_engine::simulate::run_in_memory;
use tacit_mpc_engine::{MpcError, PartyId, Security};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn encoding_round_trips_and_refuses_overflow() {
    let fp = FixedPoint::new(32, 16).unwrap();
    for x in [0.0, 1.5, -1.5, 12345.678, -32768.0, 32767.99] {
        let e: Fr = fp.encode(x).unwrap();
        let back = fp.decode(&e).unwrap();
        assert!((back - x).abs() <= fp.resolution() / 2.0, "{x} -> {back}");
    }
    assert!(matches!(fp.encode::<Fr>(32768.0), Err(FixedError::Overflow { .. })));
    assert!(matches!(fp.encode::<Fr>(-32768.1), Err(FixedError::Overflow { .. })));
    assert!(matches!(fp.encode::<Fr>(f64::NAN), Err(FixedError::Overflow { .. })));
    assert!(fp.decode(&Fr::from(1u64 << 40)).is_err());
    assert!(FixedPoint::new(65, 16).is_err());
    assert!(FixedPoint::new(16, 16).is_err());
}

/// Range check accepts in-range values and refuses an out-of-range one (either sign).
#[test]
fn range_check_detects_overflow() {
    let rt = runtime();
    let fp = FixedPoint::new(24, 8).unwrap();
    for (values, ok) in [
        (vec![0i128, 5, -5, fp.max_raw(), fp.min_raw()], true),
        (vec![1, 2, fp.max_raw() + 1], false),
        (vec![fp.min_raw() - 1, 0], false),
        (vec![1i128 << 60], false),
    ] {
        let results = rt.block_on(run_in_memory::<Fr, _, _, _>(3, 1, Security::Malicious, move |mut e| {
            let values = values.clone();
            async move {
                let p1 = PartyId::new(1).unwrap();
                let mine: Vec<Fr> = values.iter().map(|v| tacit_mpc_engine::field::from_i128(*v)).collect();
                let x = e.input(p1, (e.id() == p1).then_some(&mine[..]), mine.len()).await?;
                Ok(e.fx_check_range(&x, fp.k, "inputs").await.map_err(|e| e.to_string()))
            }
        }));
        for r in results {
            let verdict = r.unwrap();
            assert_eq!(verdict.is_ok(), ok, "{verdict:?}");
            if !ok {
                assert!(verdict.unwrap_err().contains("overflow"));
            }
        }
    }
}

/// fx_mul and fx_scale against f64, within one unit of the result per truncation plus the
/// encoding errors carried through; and the rounding is unbiased on average.
#[test]
fn mul_and_scale_within_documented_error() {
    let rt = runtime();
    let fp = FixedPoint::new(40, 16).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let len = 400;
    let xs: Vec<f64> = (0..len).map(|_| rng.gen_range(-3000.0..3000.0)).collect();
    let ys: Vec<f64> = (0..len).map(|_| rng.gen_range(-50.0..50.0)).collect();
    let c = -2.3456;
    let c_raw = fp.to_raw(c).unwrap();
    let (xs2, ys2) = (xs.clone(), ys.clone());
    let results = rt.block_on(run_in_memory::<Fr, _, _, _>(3, 1, Security::Malicious, move |mut e| {
        let (xs, ys) = (xs2.clone(), ys2.clone());
        async move {
            let (p1, p2) = (PartyId::new(1).unwrap(), PartyId::new(2).unwrap());
            let ex: Vec<Fr> = xs.iter().map(|v| fp.encode(*v).unwrap()).collect();
            let ey: Vec<Fr> = ys.iter().map(|v| fp.encode(*v).unwrap()).collect();
            let x = e.input(p1, (e.id() == p1).then_some(&ex[..]), len).await?;
            let y = e.input(p2, (e.id() == p2).then_some(&ey[..]), len).await?;
            let prod = e.fx_mul(&x, &y, fp).await.map_err(|e| MpcError::Usage(e.to_string()))?;
            let scaled = e.fx_scale(&x, c_raw, fp).await.map_err(|e| MpcError::Usage(e.to_string()))?;
            e.fx_check_range(&prod, fp.k, "products").await.map_err(|e| MpcError::Usage(e.to_string()))?;
            let opened = e.open(&tacit_mpc_engine::Shares::concat(&[&prod, &scaled])).await?;
            Ok(opened)
        }
    }));
    let opened = results.into_iter().next().unwrap().unwrap();
    let ulp = fp.resolution();
    let mut bias = 0.0;
    for i in 0..len {
        let xq = fp.from_raw(fp.to_raw(xs[i]).unwrap());
        let yq = fp.from_raw(fp.to_raw(ys[i]).unwrap());
        let want = xq * yq;
        let got = fp.decode(&opened[i]).unwrap();
        assert!((got - want).abs() < ulp, "product {i}: {got} vs {want}");
        bias += got - want;
        let want_s = xq * fp.from_raw(c_raw);
        let got_s = fp.decode(&opened[len + i]).unwrap();
        assert!((got_s - want_s).abs() < ulp, "scaled {i}: {got_s} vs {want_s}");
    }
    // Rounding is unbiased: the mean error of 400 products is far below half a unit.
    assert!((bias / len as f64).abs() < ulp / 4.0, "mean error {}", bias / len as f64);
}

#[test]
fn too_wide_products_are_refused() {
    let rt = runtime();
    let fp = FixedPoint::new(64, 16).unwrap();
    let results = rt.block_on(run_in_memory::<Fr, _, _, _>(3, 1, Security::SemiHonest, move |mut e| async move {
        let x = tacit_mpc_engine::Shares::zeros(2);
        Ok(matches!(e.fx_mul(&x, &x, fp).await, Err(FixedError::Params(_))))
    }));
    for r in results {
        assert!(r.unwrap());
    }
}

/// Several groups in one batch: the error names the first group that does not fit; an
/// unsigned group refuses negative values.
#[test]
fn grouped_range_checks_name_the_failing_group() {
    use tacit_mpc_engine::fixed::RangeGroup;
    let rt = runtime();
    for (signed_vals, unsigned_vals, want) in [
        (vec![-5i128, 100], vec![0i128, 7, (1 << 16) - 1], None),
        (vec![-5, 100], vec![3, -1], Some("counts")),
        (vec![1 << 23, 0], vec![1], Some("values")),
        (vec![0, 0], vec![1 << 16], Some("counts")),
    ] {
        let results = rt.block_on(run_in_memory::<Fr, _, _, _>(3, 1, Security::Malicious, move |mut e| {
            let (sv, uv) = (signed_vals.clone(), unsigned_vals.clone());
            async move {
                let p1 = PartyId::new(1).unwrap();
                let enc =
                    |v: &[i128]| -> Vec<Fr> { v.iter().map(|x| tacit_mpc_engine::field::from_i128(*x)).collect() };
                let (a, b) = (enc(&sv), enc(&uv));
                let x = e.input(p1, (e.id() == p1).then_some(&a[..]), a.len()).await?;
                let y = e.input(p1, (e.id() == p1).then_some(&b[..]), b.len()).await?;
                let groups = [RangeGroup::signed(&x, 24, "values"), RangeGroup::unsigned(&y, 16, "counts")];
                Ok(e.fx_check_ranges(&groups).await.map_err(|e| e.to_string()))
            }
        }));
        for r in results {
            match (r.unwrap(), want) {
                (Ok(()), None) => {}
                (Err(msg), Some(name)) => assert!(msg.contains(name) && msg.contains("overflow"), "{msg}"),
                (got, want) => panic!("{got:?} where {want:?} was expected"),
            }
        }
    }
}
