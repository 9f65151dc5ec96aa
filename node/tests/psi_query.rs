//! PSI queries hosted by three nodes in one process over loopback QUIC: three institutions,
//! each a separate client with its own certificate, join at every node over channels of the
//! job API and get exactly the oracle's answer; committed queries check the published
//! commitments; clients not listed in a query cannot join it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use tacit_node::api::{new_job_id, JobSpec};
use tacit_node::client::Client;
use tacit_node::config::NodeConfig;
use tacit_node::store::JobState;
use tacit_psi::{oracle, Input, InputSet, Item, Mode, PsiOutput};

const T: Duration = Duration::from_secs(60);

fn sets() -> Vec<InputSet> {
    let item = |s: String| Item::parse(&s).unwrap();
    // 12 items in all three sets, 5 in two of them, the rest in one.
    (0..3)
        .map(|c| {
            let mut pairs: Vec<(Item, u64)> = (0..12).map(|i| (item(format!("all-{i}")), 10 + c as u64)).collect();
            pairs.extend((0..5).filter(|_| c < 2).map(|i| (item(format!("pair-{i}")), 1)));
            pairs.extend((0..7).map(|i| (item(format!("own-{c}-{i}")), 2)));
            InputSet::from_pairs(pairs).unwrap()
        })
        .collect()
}

/// Every institution joins `spec` at every node and runs its side; outputs in order.
async fn run_query(clients: &[Arc<Client>], spec: &JobSpec, inputs: Vec<Input>) -> Vec<PsiOutput> {
    run_query_as(clients, spec, inputs, &new_job_id()).await
}

async fn run_query_as(clients: &[Arc<Client>], spec: &JobSpec, inputs: Vec<Input>, job: &str) -> Vec<PsiOutput> {
    let JobSpec::PsiQuery { mode, .. } = spec else { panic!() };
    // The institutions are separate programs: each runs as its own task.
    let tasks: Vec<_> = clients
        .iter()
        .zip(inputs)
        .enumerate()
        .map(|(index, (client, input))| {
            let (client, job, spec, mode) = (client.clone(), job.to_string(), spec.clone(), *mode);
            tokio::spawn(async move {
                let links = client.join_psi(&job, &spec, T).await.unwrap();
                tacit_psi::run_institution(index, &input, 1, mode, links).await.unwrap()
            })
        })
        .collect();
    let mut outputs = Vec::new();
    for task in tasks {
        outputs.push(task.await.unwrap());
    }
    // The job's public result at every node: mode and institutions only.
    for node in clients[0].nodes() {
        let view = common::settled(&clients[0], node, job, T).await;
        assert_eq!(view.state, JobState::Done, "{view:?}");
        let result = view.result.unwrap();
        assert_eq!(result["mode"], mode.name());
        assert_eq!(result["institutions"], 3);
        assert!(result.get("intersection_size").is_none() && result.get("histogram").is_none());
    }
    outputs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn institutions_run_queries_on_the_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let (configs, client_path) = common::setup_with(dir.path(), 3, 1, 0, 10_000, 3, None);
    let mut nodes = Vec::new();
    for c in &configs {
        nodes.push(tacit_node::daemon::start(NodeConfig::load(c).unwrap()).await.unwrap());
    }
    let clients: Vec<Arc<Client>> =
        (1..=3).map(|k| Arc::new(Client::load(&dir.path().join(format!("institution-{k}.toml"))).unwrap())).collect();
    let institutions: Vec<_> = clients.iter().map(|c| c.fingerprint()).collect();
    let sets = sets();
    let plain = || sets.iter().cloned().map(Input::Plain).collect::<Vec<_>>();

    for mode in [Mode::Set, Mode::SetAtLeast { min_sets: 2 }, Mode::Sum { min_size: 5 }] {
        let spec = JobSpec::PsiQuery { mode, institutions: institutions.clone(), commitments: None, proof_keys: None };
        let outputs = run_query(&clients, &spec, plain()).await;
        assert_eq!(outputs, oracle(&sets, mode), "{mode:?}");
    }

    // Committed cardinality: the nodes check each input against its published commitment.
    let (openings, commitments): (Vec<_>, Vec<_>) =
        sets.iter().map(|s| tacit_psi::CommittedInput::commit(s.clone()).unwrap()).unzip();
    let hex: Vec<String> = commitments.iter().map(tacit_psi::committed::to_hex).collect();
    let spec = JobSpec::PsiQuery {
        mode: Mode::Cardinality,
        institutions: institutions.clone(),
        commitments: Some(hex),
        proof_keys: None,
    };
    let outputs = run_query(&clients, &spec, openings.into_iter().map(Input::Committed).collect()).await;
    assert_eq!(outputs, vec![PsiOutput::Cardinality(12); 3]);

    // An institution that leaves after joining fails the query at every node, naming it; the
    // same query joined again runs.
    let spec = JobSpec::PsiQuery {
        mode: Mode::Cardinality,
        institutions: institutions.clone(),
        commitments: None,
        proof_keys: None,
    };
    let job = new_job_id();
    let stayers: Vec<_> = (0..2)
        .map(|index| {
            let (client, job, spec, input) =
                (clients[index].clone(), job.clone(), spec.clone(), plain()[index].clone());
            tokio::spawn(async move {
                let links = client.join_psi(&job, &spec, T).await.unwrap();
                tacit_psi::run_institution(index, &input, 1, Mode::Cardinality, links).await
            })
        })
        .collect();
    drop(clients[2].join_psi(&job, &spec, T).await.unwrap());
    for task in stayers {
        assert!(task.await.unwrap().is_err());
    }
    for node in clients[0].nodes() {
        let view = common::settled(&clients[0], node, &job, T).await;
        assert_eq!(view.state, JobState::Failed);
        let error = view.error.unwrap();
        assert!(error.contains("institution 2"), "{error}");
    }
    let retried = run_query_as(&clients, &spec, plain(), &job).await;
    assert_eq!(retried, vec![PsiOutput::Cardinality(12); 3]);

    // A client not listed in the query cannot join it, even one authorised for every job;
    // nor can a listed institution join with a plain request, or submit the query as a job.
    let spec = JobSpec::PsiQuery {
        mode: Mode::Cardinality,
        institutions: institutions.clone(),
        commitments: None,
        proof_keys: None,
    };
    let operator = Client::load(&client_path).unwrap();
    let refused = operator.join_psi(&new_job_id(), &spec, T).await.unwrap_err().to_string();
    assert!(refused.contains("not authorised"), "{refused}");
    for (_, answer) in clients[0].submit(&new_job_id(), &spec, T).await {
        assert!(answer.unwrap_err().to_string().contains("institutions join"));
    }
    // A malformed query is refused before anything is held.
    let bad = JobSpec::PsiQuery {
        mode: Mode::Set,
        institutions: vec![institutions[0]; 2],
        commitments: None,
        proof_keys: None,
    };
    let refused = clients[0].join_psi(&new_job_id(), &bad, T).await.unwrap_err().to_string();
    assert!(refused.contains("listed twice"), "{refused}");

    // One institution can hold only so many waiting joins at a node (each keeps a channel).
    let mut held = Vec::new();
    for _ in 0..tacit_node::lobby::MAX_WAITING_PER_INSTITUTION {
        held.push(clients[0].join_psi(&new_job_id(), &spec, T).await.unwrap());
    }
    let refused = clients[0].join_psi(&new_job_id(), &spec, T).await.unwrap_err().to_string();
    assert!(refused.contains("already waiting"), "{refused}");
    drop(held);

    for node in nodes {
        node.shutdown().await;
    }
}

/// Proven queries on the nodes: the keys named by the query, each node reading them from
/// its data folder; every institution checks the proof against its own commitment. A query
/// naming keys the nodes do not hold fails at the nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proven_queries_on_the_nodes() {
    use tacit_psi::proven::{shape_for, ProofKeys};
    let dir = tempfile::tempdir().unwrap();
    let (configs, _) = common::setup_with(dir.path(), 3, 1, 0, 10_000, 3, None);
    let sets = sets();
    let rows = sets.iter().map(InputSet::len).max().unwrap();
    let modes = [Mode::Cardinality, Mode::Sum { min_size: 12 }];
    // Keys per mode, made once and copied to every node's data folder.
    let mut keys = Vec::new();
    for mode in modes {
        let made = ProofKeys::generate(shape_for(3, rows, mode).unwrap(), &mut rand::rngs::OsRng).unwrap();
        let id = made.id().unwrap();
        for i in 1..=3 {
            made.write(&dir.path().join(format!("data-{i}")).join(tacit_node::psi::KEYS_FOLDER).join(&id)).unwrap();
        }
        keys.push((made, id));
    }
    let mut nodes = Vec::new();
    for c in &configs {
        nodes.push(tacit_node::daemon::start(NodeConfig::load(c).unwrap()).await.unwrap());
    }
    let clients: Vec<Arc<Client>> =
        (1..=3).map(|k| Arc::new(Client::load(&dir.path().join(format!("institution-{k}.toml"))).unwrap())).collect();
    let institutions: Vec<_> = clients.iter().map(|c| c.fingerprint()).collect();

    let run = |spec: JobSpec, job: String, keys: ProofKeys| {
        let keys = keys.institution_keys();
        let JobSpec::PsiQuery { mode, .. } = spec else { panic!() };
        let tasks: Vec<_> = (0..3)
            .map(|index| {
                let (client, job, spec, keys, input) =
                    (clients[index].clone(), job.clone(), spec.clone(), keys.clone(), sets[index].clone());
                tokio::spawn(async move {
                    let links = client.join_psi(&job, &spec, T).await.unwrap();
                    tacit_psi::run_institution_proven(index, &input, 1, mode, links, &keys).await
                })
            })
            .collect();
        async move {
            let mut outputs = Vec::new();
            for task in tasks {
                outputs.push(task.await.unwrap());
            }
            outputs
        }
    };
    for (mode, (keys, id)) in modes.into_iter().zip(&keys) {
        let spec = JobSpec::PsiQuery {
            mode,
            institutions: institutions.clone(),
            commitments: None,
            proof_keys: Some(id.clone()),
        };
        let job = new_job_id();
        let results = run(spec, job.clone(), keys.clone()).await;
        let expected = oracle(&sets, mode);
        let mut proofs = Vec::new();
        for (result, expected) in results.into_iter().zip(expected) {
            let (output, proof) = result.unwrap();
            assert_eq!(output, expected, "{mode:?}");
            proofs.push(proof);
        }
        // One proof, which every institution checked against its own commitment.
        assert!(proofs.iter().all(|p| *p == proofs[0]));
        for node in clients[0].nodes() {
            let view = common::settled(&clients[0], node, &job, T).await;
            assert_eq!(view.state, JobState::Done, "{view:?}");
            assert_eq!(view.result.unwrap()["proof_keys"], id.as_str());
        }
    }

    // Keys the nodes do not hold: the query fails at every node, saying so.
    let (cardinality_keys, _) = &keys[0];
    let spec = JobSpec::PsiQuery {
        mode: Mode::Cardinality,
        institutions: institutions.clone(),
        commitments: None,
        proof_keys: Some("ab".repeat(32)),
    };
    let job = new_job_id();
    for result in run(spec, job.clone(), cardinality_keys.clone()).await {
        assert!(result.is_err());
    }
    for node in clients[0].nodes() {
        let view = common::settled(&clients[0], node, &job, T).await;
        assert_eq!(view.state, JobState::Failed);
        let error = view.error.unwrap();
        assert!(error.contains("psi keys"), "{error}");
    }
    // A proven query is cardinality or sum, and not also a committed one.
    let bad = JobSpec::PsiQuery {
        mode: Mode::Set,
        institutions: institutions.clone(),
        commitments: None,
        proof_keys: Some("ab".repeat(32)),
    };
    let refused = clients[0].join_psi(&new_job_id(), &bad, T).await.unwrap_err().to_string();
    assert!(refused.contains("a proven query"), "{refused}");

    for node in nodes {
        node.shutdown().await;
    }
}
