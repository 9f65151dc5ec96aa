//! Risk queries hosted by three nodes in one process over loopback QUIC: three institutions,
//! each a client with its own certificate, join an approved template at every node with their
//! shares; the release matches the oracle within its declared noise bounds, every node and
//! institution sees the same outcome, the nodes' collaborative proof of it verifies against
//! the published commitments, and the querier's budget, kept in each node's store, refuses a
//! second run, also after the nodes restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use tacit_node::api::{new_job_id, JobSpec};
use tacit_node::client::Client;
use tacit_node::config::NodeConfig;
use tacit_node::store::JobState;
use tacit_risk::{sim, CellStatus, InstitutionInput, Outcome};

const T: Duration = Duration::from_secs(120);

async fn run(clients: &[Arc<Client>], spec: &JobSpec, inputs: &[InstitutionInput]) -> (Outcome, serde_json::Value) {
    let job = new_job_id();
    let tasks: Vec<_> = clients
        .iter()
        .zip(inputs)
        .map(|(client, input)| {
            let (client, job, spec, input) = (client.clone(), job.clone(), spec.clone(), input.clone());
            tokio::spawn(async move { client.join_risk(&job, &spec, &input, T).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    assert!(outcomes.iter().all(|o| *o == outcomes[0]), "institutions got different outcomes");
    let mut result = serde_json::Value::Null;
    // Institutions get the outcome first; the nodes then prove it.
    for node in clients[0].nodes() {
        let view = common::settled(&clients[0], node, &job, T).await;
        assert_eq!(view.state, JobState::Done, "{view:?}");
        result = view.result.unwrap();
        let at_node: Outcome = serde_json::from_value(result["outcome"].clone()).unwrap();
        assert_eq!(at_node, outcomes[0]);
    }
    (outcomes.swap_remove(0), result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn institutions_run_a_risk_query_on_the_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let (configs, _) = common::setup_with(dir.path(), 3, 1, 0, 10_000, 3, None);
    let mut nodes = Vec::new();
    for c in &configs {
        nodes.push(tacit_node::daemon::start(NodeConfig::load(c).unwrap()).await.unwrap());
    }
    let clients: Vec<Arc<Client>> =
        (1..=3).map(|k| Arc::new(Client::load(&dir.path().join(format!("institution-{k}.toml"))).unwrap())).collect();
    // Epsilon 1.0 per run against the nodes' default budget of 1.0: one run.
    let template = sim::demo_template(3, 12, sim::demo_weighted_score(5_000.0)).unwrap();
    let inputs: Vec<InstitutionInput> = (0..3)
        .map(|i| {
            let csv = sim::synthetic_csv(i, 80, &template, 7);
            tacit_risk::aggregate_csv(&sim::institution_name(i), &csv, &template).unwrap()
        })
        .collect();
    let (oracle, _) = tacit_risk::query::oracle(&template, &inputs).unwrap();
    // The proving key, made once and copied to every node.
    let shape = tacit_risk::proof::Shape::from_template(&template).unwrap();
    let keys = tacit_risk::proof::setup(&shape).await.unwrap();
    let pk = tacit_prover::keys::proving_key_to_bytes(&keys.pk).unwrap();
    let hash = tacit_node::risk::proving_key_hash(&pk);
    for i in 1..=3 {
        let keys_dir = dir.path().join(format!("data-{i}")).join("risk-keys");
        std::fs::create_dir_all(&keys_dir).unwrap();
        std::fs::write(keys_dir.join(format!("{hash}.pk")), &pk).unwrap();
    }
    let commitments: Vec<_> = inputs.iter().map(|i| i.commitment().unwrap()).collect();
    let signed = sim::approve_all(template.clone()).unwrap();
    let spec = JobSpec::RiskQuery {
        template: Box::new(signed),
        institutions: clients.iter().map(|c| c.fingerprint()).collect(),
        commitments: Some(commitments.iter().map(tacit_psi::committed::to_hex).collect()),
        proving_key: Some(hash),
    };

    let (Outcome::Released(release), result) = run(&clients, &spec, &inputs).await else { panic!("refused") };
    let proof: tacit_prover::snarkjs::SnarkjsProof = serde_json::from_value(result["proof"].clone()).unwrap();
    let proof = tacit_prover::snarkjs::proof_from_snarkjs(&proof).unwrap();
    assert!(tacit_risk::proof::verify_release(&template, &commitments, &release, &keys.pvk, &proof).unwrap());
    // The proof is bound to the commitments: another institution's input does not verify.
    let mut other = commitments.clone();
    other[0] = inputs[1].commitment().unwrap();
    assert!(!tacit_risk::proof::verify_release(&template, &other, &release, &keys.pvk, &proof).unwrap());
    assert_eq!(release.cells.len(), oracle.len());
    assert!(release.released() > 0 && release.suppressed() > 0, "the demo data has both");
    for (cell, exact) in release.cells.iter().zip(&oracle) {
        match (&cell.status, exact) {
            (CellStatus::Released, Some(figures)) => {
                for (name, value) in figures {
                    let bound = release.noise_bounds.get(name.as_str()).copied().unwrap_or(0.0) + 1.0;
                    let got = cell.figures[name.as_str()];
                    assert!((got - value).abs() <= bound, "{}: {name} {got} vs {value} (bound {bound})", cell.key);
                }
            }
            (CellStatus::Suppressed { .. }, None) => {}
            other => panic!("{}: {other:?}", cell.key),
        }
    }

    // The budget is spent: the same template is refused, also after the nodes restart.
    let (refused, _) = run(&clients, &spec, &inputs).await;
    assert!(matches!(&refused, Outcome::Refused { reason } if reason.contains("budget")), "{refused:?}");
    for node in nodes.drain(..) {
        node.shutdown().await;
    }
    for c in &configs {
        nodes.push(tacit_node::daemon::start(NodeConfig::load(c).unwrap()).await.unwrap());
    }
    let (refused, _) = run(&clients, &spec, &inputs).await;
    assert!(matches!(refused, Outcome::Refused { .. }), "{refused:?}");

    // A template not approved by every institution is refused before anything is held.
    let JobSpec::RiskQuery { mut template, institutions, .. } = spec else { panic!() };
    template.approvals.pop();
    let unapproved = JobSpec::RiskQuery { template, institutions, commitments: None, proving_key: None };
    let err = clients[0].join_risk(&new_job_id(), &unapproved, &inputs[0], T).await.unwrap_err().to_string();
    assert!(err.contains("approv"), "{err}");
    for node in nodes {
        node.shutdown().await;
    }
}
