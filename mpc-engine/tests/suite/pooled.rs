//! Preprocessing exported from one session and loaded into a later one: the later session's
//! products are right and verified, a party that loads other batches is named, and bad
//! batches (another party's, another mode, corrupt bytes) are refused without a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

// The shared harness re-exports more than this file uses.
#[allow(unused_imports)]
use crate::common;

use std::sync::Arc;

use ark_bn254::Fr;
use tacit_mpc_engine::simulate::run_engines;
use tacit_mpc_engine::transport::memory::MemoryTransport;
use tacit_mpc_engine::{
    BatchError, BatchId, Check, MpcError, PartyId, PrepBatch, PrepCounts, Security, SessionId, Transport,
};

const COUNTS: PrepCounts = PrepCounts { doubles: 300, randoms: 200, bits: 64 };

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn network(n: usize) -> Vec<Arc<MemoryTransport>> {
    MemoryTransport::network(n).into_iter().map(Arc::new).collect()
}

fn pid(i: u16) -> PartyId {
    PartyId::new(i).unwrap()
}

/// Every party's encoded batches `ids`, exported by one session over `net`.
async fn export(net: &[Arc<MemoryTransport>], security: Security, ids: &'static [u8]) -> Vec<Vec<Vec<u8>>> {
    let out = run_engines::<Fr, _, _, _, _>(net.to_vec(), 1, security, SessionId::random(), |mut e| async move {
        let mut encoded = Vec::new();
        for id in ids {
            let batch = e.export_preprocessing(BatchId([*id; 32]), COUNTS).await?;
            assert_eq!(batch.counts(), COUNTS);
            assert!(format!("{batch:?}").contains("<redacted>"));
            encoded.push(batch.expose_bytes().to_vec());
        }
        Ok(encoded)
    })
    .await;
    out.into_iter().map(Result::unwrap).collect()
}

/// Loads `batches[party]` at each party, then multiplies inputs and opens the products.
async fn use_batches(net: &[Arc<MemoryTransport>], batches: Vec<Vec<Vec<u8>>>) -> Vec<Result<Vec<Fr>, MpcError>> {
    let batches = Arc::new(std::sync::Mutex::new(batches));
    run_engines::<Fr, _, _, _, _>(net.to_vec(), 1, Security::Malicious, SessionId::random(), move |mut e| {
        let mine: Vec<PrepBatch<Fr>> = std::mem::take(&mut batches.lock().unwrap()[e.id().index()])
            .iter()
            .map(|b| PrepBatch::from_bytes(b).unwrap())
            .collect();
        async move {
            let meter = Arc::new(tacit_mpc_engine::PrepMeter::default());
            e.set_prep_meter(meter.clone());
            let loaded = e.load_preprocessing(mine).await?;
            assert_eq!(e.preprocessing_levels(), loaded);
            let me = e.id();
            let xs: Vec<Fr> = (1..=50u64).map(Fr::from).collect();
            let ys: Vec<Fr> = (101..=150u64).map(Fr::from).collect();
            let x = e.input(pid(1), (me == pid(1)).then_some(&xs[..]), 50).await?;
            let y = e.input(pid(2), (me == pid(2)).then_some(&ys[..]), 50).await?;
            let z = e.mul(&x, &y).await?;
            let opened = e.open(&z).await?;
            // Everything the job used came from the loaded pools.
            let left = e.preprocessing_levels();
            assert!(left.doubles < loaded.doubles && left.randoms < loaded.randoms, "{left:?} of {loaded:?}");
            let reading = meter.reading();
            assert_eq!(reading.generated, PrepCounts::default());
            assert_eq!(reading.taken.doubles, loaded.doubles - left.doubles);
            Ok(opened)
        }
    })
    .await
}

#[test]
fn loaded_batches_feed_a_later_session() {
    runtime().block_on(async {
        let net = network(3);
        let batches = export(&net, Security::Malicious, &[1, 2]).await;
        let out = use_batches(&net, batches).await;
        let want: Vec<Fr> = (1..=50u64).map(|i| Fr::from(i * (i + 100))).collect();
        for r in out {
            assert_eq!(r.unwrap(), want);
        }
    });
}

#[test]
fn a_batch_dealt_by_a_cheater_never_leaves_its_session() {
    // P1 shifts the shares it deals (bits and double sharings): the session's verification
    // fails, so no honest party gets a batch to store.
    let rule = |_to: PartyId, kind: u8, msg: &mut [u8]| {
        if kind == common::KIND_DEAL {
            for i in 0..8 {
                common::add_to_element(msg, i, Fr::from(1u64));
            }
            true
        } else {
            false
        }
    };
    let (transports, cheater) = common::network_with_cheater(3, 1, Box::new(rule));
    cheater.arm();
    let out = runtime().block_on(run_engines::<Fr, _, _, _, _>(
        transports,
        1,
        Security::Malicious,
        SessionId::random(),
        |mut e| async move {
            e.export_preprocessing(BatchId([6; 32]), PrepCounts { doubles: 0, randoms: 0, bits: 64 }).await
        },
    ));
    for (i, r) in out.into_iter().enumerate().skip(1) {
        match r {
            Err(MpcError::Cheating { check: Check::Multiplication | Check::OpeningConsistency, .. })
            | Err(MpcError::PeerAborted { .. }) => {}
            other => panic!("P{}: expected an abort, got {other:?}", i + 1),
        }
    }
    assert_eq!(cheater.id(), pid(1));
}

#[test]
fn a_party_loading_other_batches_is_named() {
    runtime().block_on(async {
        let net = network(3);
        let mut batches = export(&net, Security::Malicious, &[1, 2]).await;
        // Party 3 loads only the second batch.
        batches[2].remove(0);
        let out = use_batches(&net, batches).await;
        for r in out.iter().take(2) {
            match r {
                Err(MpcError::Protocol { peer, .. }) => assert_eq!(*peer, pid(3)),
                other => panic!("expected party 3 named, got {other:?}"),
            }
        }
        assert!(out[2].is_err());
    });
}

#[test]
fn unfit_batches_are_refused() {
    runtime().block_on(async {
        let net = network(3);
        // A semi-honest (unverified) batch in a malicious session.
        let semi = export(&net, Security::SemiHonest, &[3]).await;
        let out = use_batches(&net, semi).await;
        for r in out {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("semi-honestly"), "{e}");
        }
        // Another party's shares.
        let mut swapped = export(&net, Security::Malicious, &[4]).await;
        swapped.swap(0, 1);
        let out = use_batches(&net, swapped).await;
        let e = out[0].as_ref().unwrap_err().to_string();
        assert!(e.contains("holds P2's shares"), "{e}");
    });
}

#[test]
fn corrupt_encodings_are_refused_without_panic() {
    let net = network(3);
    let good = runtime().block_on(export(&net, Security::Malicious, &[5])).remove(0).remove(0);
    assert!(PrepBatch::<Fr>::from_bytes(&good).is_ok());
    // Wrong field.
    assert_eq!(PrepBatch::<ark_secp256k1::Fr>::from_bytes(&good).unwrap_err(), BatchError::Field);
    // Truncated anywhere, a flipped tag, a huge count, a non-canonical element.
    for cut in [0, 7, 50, 110, good.len() - 1] {
        assert!(PrepBatch::<Fr>::from_bytes(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut tag = good.clone();
    tag[0] ^= 1;
    assert_eq!(PrepBatch::<Fr>::from_bytes(&tag).unwrap_err(), BatchError::Format);
    let mut huge = good.clone();
    huge[79..87].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(PrepBatch::<Fr>::from_bytes(&huge).unwrap_err(), BatchError::TooLarge { .. }));
    let mut element = good.clone();
    let last = element.len() - 32;
    element[last..].fill(0xff);
    assert!(matches!(PrepBatch::<Fr>::from_bytes(&element).unwrap_err(), BatchError::Element { kind: "bit", .. }));
    let mut party = good.clone();
    party[44..46].copy_from_slice(&9u16.to_le_bytes());
    assert!(matches!(PrepBatch::<Fr>::from_bytes(&party).unwrap_err(), BatchError::Parties { party: 9, .. }));
    // Random corruption never panics.
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    for _ in 0..2000 {
        let mut b = good.clone();
        for _ in 0..rng.gen_range(1..4) {
            let i = rng.gen_range(0..b.len().min(200));
            b[i] = rng.gen();
        }
        let _ = PrepBatch::<Fr>::from_bytes(&b);
    }
}
