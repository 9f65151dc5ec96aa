//! The engine over real QUIC sockets on loopback: 3 and 5 parties multiply a batch, with
//! malicious security, and open the right products.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use ark_bn254::Fr;
use ark_ff::UniformRand;
use rand::SeedableRng;
use tacit_mpc_engine::simulate::{local_quic_cluster, run_engines};
use tacit_mpc_engine::transport::quic::QuicOptions;
use tacit_mpc_engine::{PartyId, Security, SessionId};

async fn multiply_over_quic(n: usize, t: usize, len: usize) {
    let transports = local_quic_cluster(n, QuicOptions::default()).await.unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(n as u64);
    let xs: Vec<Fr> = (0..len).map(|_| Fr::rand(&mut rng)).collect();
    let ys: Vec<Fr> = (0..len).map(|_| Fr::rand(&mut rng)).collect();
    let expected: Vec<Fr> = xs.iter().zip(&ys).map(|(x, y)| *x * y).collect();
    let results =
        run_engines::<Fr, _, _, _, _>(transports.clone(), t, Security::Malicious, SessionId::random(), move |mut e| {
            let (xs, ys) = (xs.clone(), ys.clone());
            async move {
                let p1 = PartyId::new(1).unwrap();
                let p2 = PartyId::new(2).unwrap();
                let x = e.input(p1, (e.id() == p1).then_some(&xs[..]), xs.len()).await?;
                let y = e.input(p2, (e.id() == p2).then_some(&ys[..]), ys.len()).await?;
                let z = e.mul(&x, &y).await?;
                e.open(&z).await
            }
        })
        .await;
    for r in results {
        assert_eq!(r.unwrap(), expected);
    }
    for t in transports {
        t.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_parties_multiply_over_quic() {
    multiply_over_quic(3, 1, 70_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_parties_multiply_over_quic() {
    multiply_over_quic(5, 2, 20_000).await;
    multiply_over_quic(5, 1, 1_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_share_connections() {
    let transports = local_quic_cluster(3, QuicOptions::default()).await.unwrap();
    let mut jobs = Vec::new();
    for s in 0..4u64 {
        let transports = transports.clone();
        jobs.push(tokio::spawn(async move {
            run_engines::<Fr, _, _, _, _>(
                transports,
                1,
                Security::Malicious,
                SessionId::derive("concurrent", s),
                move |mut e| async move {
                    let v = Fr::from(s + 2);
                    let x = e.input(PartyId::new(1).unwrap(), Some(&[v][..]).filter(|_| e.id().get() == 1), 1).await?;
                    let sq = e.mul(&x, &x).await?;
                    e.open(&sq).await
                },
            )
            .await
        }));
    }
    for (s, job) in jobs.into_iter().enumerate() {
        for r in job.await.unwrap() {
            assert_eq!(r.unwrap(), vec![Fr::from((s as u64 + 2) * (s as u64 + 2))]);
        }
    }
    for t in transports {
        t.shutdown().await;
    }
}
