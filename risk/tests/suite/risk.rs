//! Risk queries: every template against the plaintext oracle, the release policy (cohort,
//! budget), noise statistics, approvals, input errors, overflow, a cheating node, and QUIC.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;

use ark_bn254::Fr;
use tacit_mpc_engine::simulate::run_in_memory;
use tacit_mpc_engine::transport::memory::MemoryTransport;
use tacit_mpc_engine::{MpcError, Security};
use tacit_risk::noise::{self, DiscreteLaplace};
use tacit_risk::sim::{approve_all, demo_template, demo_weighted_score, run_nodes, synthetic_csv};
use tacit_risk::{
    aggregate_csv, query, CellStatus, InstitutionInput, Ledger, Outcome, Query, Release, RiskError, RunOptions,
    ScoreRelease, SignedTemplate,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn memory(n: usize) -> Vec<Arc<MemoryTransport>> {
    MemoryTransport::network(n).into_iter().map(Arc::new).collect()
}

fn inputs_for(signed: &SignedTemplate, rows: usize, seed: u64) -> Vec<InstitutionInput> {
    signed
        .template
        .institutions
        .iter()
        .enumerate()
        .map(|(i, inst)| {
            let csv = synthetic_csv(i, rows, &signed.template, seed);
            aggregate_csv(&inst.name, &csv, &signed.template).unwrap()
        })
        .collect()
}

fn ledgers(n: usize, budget: f64) -> Vec<Ledger> {
    (0..n).map(|_| Ledger::in_memory(budget)).collect()
}

/// Runs on 3 in-memory nodes; all nodes must return the same outcome, which is returned.
fn run(signed: &SignedTemplate, inputs: &[InstitutionInput], options: RunOptions) -> (Outcome, Vec<Ledger>) {
    let rt = runtime();
    let results = rt.block_on(run_nodes(memory(3), 1, signed, inputs, ledgers(3, 10.0), options, None)).unwrap();
    let mut outs = Vec::new();
    let mut ls = Vec::new();
    for r in results {
        let (o, l) = r.unwrap();
        outs.push(o);
        ls.push(l);
    }
    assert!(outs.iter().all(|o| *o == outs[0]), "nodes disagree");
    (outs.remove(0), ls)
}

fn released(o: Outcome) -> Release {
    match o {
        Outcome::Released(r) => r,
        Outcome::Refused { reason } => panic!("refused: {reason}"),
    }
}

/// Every template, exact mode (no noise), against the oracle within the documented error.
#[test]
fn every_template_matches_the_oracle() {
    let ulp = 2f64.powi(-8);
    let queries = vec![
        (Query::Sum { column: "exposure".into() }, 0.0),
        (Query::Mean { column: "exposure".into() }, 0.0),
        (Query::Variance { column: "days_past_due".into() }, 0.0),
        (demo_weighted_score(5.0e6), ulp),
        (Query::Herfindahl { column: "exposure".into(), sensitivity: 0.01 }, 0.0),
        (Query::TopK { column: "exposure".into(), k: 3 }, 0.0),
    ];
    for (query, tol) in queries {
        let template = demo_template(4, 10, query.clone()).unwrap();
        let signed = approve_all(template).unwrap();
        let inputs = inputs_for(&signed, 300, 11);
        let (outcome, _) = run(&signed, &inputs, RunOptions { exact_for_tests: true });
        let release = released(outcome);
        let (cells, summary) = query::oracle(&signed.template, &inputs).unwrap();
        assert!(release.suppressed() >= 1 && release.released() >= 5, "{query:?}: {release:?}");
        for (cell, want) in release.cells.iter().zip(&cells) {
            match want {
                None => assert!(matches!(cell.status, CellStatus::Suppressed { .. }) && cell.figures.is_empty()),
                Some(want) => {
                    assert_eq!(cell.status, CellStatus::Released);
                    assert_eq!(cell.figures.len(), want.len(), "{query:?}: {cell:?} vs {want:?}");
                    for (name, v) in want {
                        let got = cell.figures[name];
                        let scale = v.abs().max(1.0);
                        assert!((got - v).abs() <= tol + 1e-9 * scale, "{query:?} {name}: {got} vs {v}");
                    }
                }
            }
        }
        match &query {
            Query::Herfindahl { .. } => {
                let got = release.summary["herfindahl"].as_f64().unwrap();
                let want = summary["herfindahl"].as_f64().unwrap();
                // Two truncations per key and the rounding of 1/T: below 3 units per key.
                let keys = release.released() as f64;
                assert!((got - want).abs() <= 3.0 * keys * ulp, "hhi {got} vs {want}");
                assert!((release.summary["total"].as_f64().unwrap() - summary["total"].as_f64().unwrap()).abs() < 1e-6);
            }
            Query::TopK { .. } => assert_eq!(release.summary["top_k"], summary["top_k"]),
            _ => {}
        }
    }
}

/// The weighted score's flag-only release opens only the flag.
#[test]
fn flag_only_release_hides_the_score() {
    let mut query = demo_weighted_score(4.0e6);
    if let Query::WeightedScore { release, .. } = &mut query {
        *release = ScoreRelease::FlagOnly;
    }
    let signed = approve_all(demo_template(3, 6, query).unwrap()).unwrap();
    let inputs = inputs_for(&signed, 300, 5);
    let (outcome, ledgers) = run(&signed, &inputs, RunOptions::default());
    let release = released(outcome);
    for cell in release.cells.iter().filter(|c| c.status == CellStatus::Released) {
        assert_eq!(cell.figures.keys().collect::<Vec<_>>(), vec!["flag"]);
    }
    assert_eq!(release.epsilon_spent, 1.0);
    assert!(ledgers.iter().all(|l| l.spent("regulator") == 1.0));
}

/// Noisy figures stay within the declared bound of the exact ones, and the ledger is charged
/// on every node.
#[test]
fn noisy_release_within_declared_bounds() {
    let signed = approve_all(demo_template(4, 10, Query::Sum { column: "exposure".into() }).unwrap()).unwrap();
    let inputs = inputs_for(&signed, 300, 3);
    let (outcome, ledgers) = run(&signed, &inputs, RunOptions::default());
    let release = released(outcome);
    let (cells, _) = query::oracle(&signed.template, &inputs).unwrap();
    let bound_sum = release.noise_bounds["sum"];
    let bound_count = release.noise_bounds["count"];
    let mut differs = false;
    for (cell, want) in release.cells.iter().zip(&cells) {
        if let Some(want) = want {
            assert!((cell.figures["sum"] - want["sum"]).abs() <= bound_sum);
            assert!((cell.figures["count"] - want["count"]).abs() <= bound_count);
            differs |= cell.figures["sum"] != want["sum"];
        }
    }
    assert!(differs, "noise was added");
    assert!(ledgers.iter().all(|l| (l.spent("regulator") - 1.0).abs() < 1e-12));
}

/// Below the minimum cohort every key is suppressed with its reason, nothing is computed
/// or opened beyond the pass bits, and no budget is spent.
#[test]
fn small_cohort_is_suppressed_without_opening() {
    let mut template = demo_template(3, 4, Query::Sum { column: "exposure".into() }).unwrap();
    template.min_rows = 1_000;
    let signed = approve_all(template).unwrap();
    let inputs = inputs_for(&signed, 40, 9);
    let (outcome, ledgers) = run(&signed, &inputs, RunOptions::default());
    let release = released(outcome);
    assert_eq!(release.released(), 0);
    for cell in &release.cells {
        assert!(cell.figures.is_empty());
        match &cell.status {
            CellStatus::Suppressed { reason, .. } => assert!(reason.contains("fewer than 1000 rows"), "{reason}"),
            CellStatus::Released => panic!("released"),
        }
    }
    assert_eq!(release.epsilon_spent, 0.0);
    assert!(release.noise_bounds.is_empty());
    assert!(ledgers.iter().all(|l| l.spent("regulator") == 0.0));

    // A key fed by one institution only: suppressed for contributors.
    let mut template = demo_template(3, 4, Query::Sum { column: "exposure".into() }).unwrap();
    template.keys.push("lonely".into());
    let signed = approve_all(template).unwrap();
    let mut inputs = inputs_for(&signed, 60, 9);
    let csv = "key,exposure,shortfall,days_past_due\n".to_string() + &"lonely,5,0,0\n".repeat(20);
    let mut extra = aggregate_csv("inst-1", &csv, &signed.template).unwrap();
    for (a, b) in extra.counts.iter_mut().zip(&inputs[0].counts) {
        *a += b;
    }
    for (va, vb) in extra.aggregates.iter_mut().zip(&inputs[0].aggregates) {
        for (a, b) in va.iter_mut().zip(vb) {
            *a += b;
        }
    }
    inputs[0] = extra;
    // Only institution 1 has rows for it.
    for input in &mut inputs[1..] {
        input.counts[4] = 0;
        for a in &mut input.aggregates {
            a[4] = 0;
        }
    }
    let (outcome, _) = run(&signed, &inputs, RunOptions::default());
    let release = released(outcome);
    let lonely = release.cells.iter().find(|c| c.key == "lonely").unwrap();
    assert!(
        matches!(&lonely.status, CellStatus::Suppressed { reason, .. } if reason.contains("contributing institutions")),
        "{lonely:?}"
    );
}

/// A querier over budget is refused on every node, also when only one node's ledger says so.
#[test]
fn exhausted_budget_is_refused_on_every_node() {
    let rt = runtime();
    let signed = approve_all(demo_template(3, 4, Query::Sum { column: "exposure".into() }).unwrap()).unwrap();
    let inputs = inputs_for(&signed, 100, 1);
    let dir = std::env::temp_dir().join(format!("tacit-risk-ledger-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let open = |i: usize| Ledger::open(dir.join(format!("node-{i}.json")), 1.5).unwrap();
    // First query: 1.0 of 1.5 spent.
    let first = rt
        .block_on(run_nodes(memory(3), 1, &signed, &inputs, (0..3).map(open).collect(), RunOptions::default(), None))
        .unwrap();
    for r in first {
        assert!(matches!(r.unwrap().0, Outcome::Released(_)));
    }
    // Persisted: reopening sees the charge; the second query is refused everywhere.
    let second = rt
        .block_on(run_nodes(memory(3), 1, &signed, &inputs, (0..3).map(open).collect(), RunOptions::default(), None))
        .unwrap();
    for r in second {
        let (outcome, ledger) = r.unwrap();
        assert!(matches!(&outcome, Outcome::Refused { reason } if reason.contains("budget")), "{outcome:?}");
        assert!((ledger.spent("regulator") - 1.0).abs() < 1e-12);
    }
    // Fresh ledgers except node 2's, which is exhausted: every node refuses.
    let mut ls = ledgers(3, 10.0);
    ls[1] = Ledger::in_memory(0.5);
    let third = rt.block_on(run_nodes(memory(3), 1, &signed, &inputs, ls, RunOptions::default(), None)).unwrap();
    for r in third {
        let (outcome, ledger) = r.unwrap();
        assert!(matches!(&outcome, Outcome::Refused { reason } if reason.contains("budget")), "{outcome:?}");
        assert_eq!(ledger.spent("regulator"), 0.0);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Discrete Laplace samples drawn inside the MPC: mean and variance within bounds.
#[test]
fn noise_distribution_is_discrete_laplace() {
    let rt = runtime();
    let dist = DiscreteLaplace::new(3.0).unwrap();
    let count = 3000;
    let results = rt.block_on(run_in_memory::<Fr, _, _, _>(3, 1, Security::Malicious, move |mut e| async move {
        let s = noise::sample(&mut e, &vec![dist; count]).await.map_err(|e| MpcError::Usage(e.to_string()))?;
        e.open(&s).await
    }));
    let opened = results.into_iter().next().unwrap().unwrap();
    let xs: Vec<f64> = opened.iter().map(|v| tacit_mpc_engine::field::to_i128(v).unwrap() as f64).collect();
    assert!(xs.iter().all(|x| x.abs() <= dist.bound() as f64));
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let want = dist.variance();
    // Mean: 6 standard errors. Variance: the discrete Laplace's kurtosis is 6, so the
    // standard error of the sample variance is about sqrt(5/n) * var; allow 6 of them.
    assert!(mean.abs() < 6.0 * (want / n).sqrt(), "mean {mean}");
    assert!((var - want).abs() < 6.0 * (5.0 / n).sqrt() * want, "variance {var} vs {want}");
    // Symmetric and centred: zero is the mode.
    let zeros = xs.iter().filter(|x| **x == 0.0).count() as f64 / n;
    let q = (-1.0f64 / 3.0).exp();
    assert!((zeros - (1.0 - q) / (1.0 + q)).abs() < 0.05, "P(0) = {zeros}");
}

/// A node that cheats in a multiplication is caught before anything opens, on every node.
#[test]
fn cheating_node_is_detected() {
    let rt = runtime();
    let signed = approve_all(demo_template(3, 4, demo_weighted_score(1.0e6)).unwrap()).unwrap();
    let inputs = inputs_for(&signed, 100, 2);
    let results = rt
        .block_on(run_nodes(
            memory(3),
            1,
            &signed,
            &inputs,
            ledgers(3, 10.0),
            RunOptions::default(),
            Some((1, Fr::from(7u64))),
        ))
        .unwrap();
    for r in results {
        match r {
            Err(RiskError::Mpc(e)) | Err(RiskError::Fixed(tacit_mpc_engine::fixed::FixedError::Mpc(e))) => {
                // Every node aborts on the batched multiplication check, before any opening of
                // a figure (n = 3, t = 1 cannot attribute this check to a party).
                assert!(e.to_string().contains("multiplication verification"), "{e}");
            }
            other => panic!("expected detection, got {other:?}"),
        }
    }
}

/// A template not signed by every institution is refused before anything runs.
#[test]
fn unapproved_templates_are_refused() {
    let signed = approve_all(demo_template(3, 4, Query::Sum { column: "exposure".into() }).unwrap()).unwrap();
    let mut missing = signed.clone();
    missing.approvals.pop();
    assert!(matches!(missing.verify(), Err(RiskError::Unapproved { institution, .. }) if institution == "inst-3"));
    let mut altered = signed.clone();
    altered.template.epsilon = 5.0;
    assert!(matches!(altered.verify(), Err(RiskError::Unapproved { institution, .. }) if institution == "inst-1"));
    let mut forged = signed.clone();
    forged.approvals[1] = signed.template.approve("inst-2", &tacit_risk::sim::demo_signing_key(0).unwrap()).unwrap();
    assert!(matches!(forged.verify(), Err(RiskError::Unapproved { institution, .. }) if institution == "inst-2"));
    assert!(signed.verify().is_ok());
}

/// Malformed rows and out-of-range values are reported with their line numbers.
#[test]
fn input_errors_name_their_line() {
    let template = demo_template(3, 4, Query::Sum { column: "exposure".into() }).unwrap();
    let header = "key,exposure,shortfall,days_past_due\n";
    let cases = [
        (format!("{header}cp-0000,1,2,3\ncp-0001,1,2\n"), 3, "fields"),
        (format!("{header}cp-0000,abc,2,3\n"), 2, "not a number"),
        (format!("{header}cp-0000,1,2,3\n\ncp-0001,1,2,400\n"), 4, "outside"),
        (format!("{header}cp-9999,1,2,3\n"), 2, "not in the template"),
        ("key,exposure\ncp-0000,1\n".to_string(), 1, "missing column"),
        (format!("{header}cp-0000,-5,0,0\n"), 2, "outside"),
    ];
    for (csv, line, what) in cases {
        match aggregate_csv("inst-1", &csv, &template) {
            Err(RiskError::Input { line: l, reason }) => {
                assert_eq!(l, line, "{reason}");
                assert!(reason.contains(what), "{reason}");
            }
            other => panic!("expected an input error, got {other:?}"),
        }
    }
    let ok = aggregate_csv("inst-1", &format!("{header}\"cp-0001\",1.5,0,2\ncp-0001,2.5,0,0\n"), &template).unwrap();
    assert_eq!(ok.counts[1], 2);
    assert_eq!(ok.aggregates[0][1], 4 * 256);
}

/// An institution that submits an out-of-range aggregate makes the query fail with an
/// overflow, before anything opens.
#[test]
fn overflowing_input_is_an_error() {
    let signed = approve_all(demo_template(3, 4, Query::Sum { column: "exposure".into() }).unwrap()).unwrap();
    let mut inputs = inputs_for(&signed, 50, 4);
    inputs[2].aggregates[0][1] = 1i128 << 45;
    let rt = runtime();
    let results =
        rt.block_on(run_nodes(memory(3), 1, &signed, &inputs, ledgers(3, 10.0), RunOptions::default(), None)).unwrap();
    for r in results {
        match r {
            Err(RiskError::Fixed(e)) => {
                assert!(e.to_string().contains("overflow") && e.to_string().contains("aggregate across institutions"))
            }
            other => panic!("expected overflow, got {other:?}"),
        }
    }
    // A row count of 2^64 - 1 is out of range too.
    let mut inputs = inputs_for(&signed, 50, 4);
    inputs[1].counts[0] = u64::MAX;
    let results =
        rt.block_on(run_nodes(memory(3), 1, &signed, &inputs, ledgers(3, 10.0), RunOptions::default(), None)).unwrap();
    for r in results {
        match r {
            Err(RiskError::Fixed(e)) => assert!(e.to_string().contains("row total"), "{e}"),
            other => panic!("expected overflow, got {other:?}"),
        }
    }
}

/// The weighted score with noise over real QUIC on loopback.
#[test]
fn weighted_score_over_quic() {
    let rt = runtime();
    let signed = approve_all(demo_template(3, 8, demo_weighted_score(5.0e6)).unwrap()).unwrap();
    let inputs = inputs_for(&signed, 500, 8);
    let results = rt.block_on(async {
        let transports = tacit_mpc_engine::simulate::local_quic_cluster(3, Default::default()).await.unwrap();
        let r = run_nodes(transports.clone(), 1, &signed, &inputs, ledgers(3, 10.0), RunOptions::default(), None)
            .await
            .unwrap();
        for t in &transports {
            t.shutdown().await;
        }
        r
    });
    let (cells, _) = query::oracle(&signed.template, &inputs).unwrap();
    let mut first: Option<Outcome> = None;
    for r in results {
        let (outcome, _) = r.unwrap();
        if let Some(f) = &first {
            assert_eq!(*f, outcome);
        }
        first = Some(outcome);
    }
    let release = released(first.unwrap());
    let bound = release.noise_bounds["score"] + 2f64.powi(-8);
    for (cell, want) in release.cells.iter().zip(&cells) {
        if let Some(want) = want {
            assert!((cell.figures["score"] - want["score"]).abs() <= bound);
        }
    }
}
