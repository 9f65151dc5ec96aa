//! `tacit prove ...`: collaborative Groth16 benchmarks and snarkjs export.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use ark_bn254::{Bn254, Fr};
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, ProvingKey};
use ark_snark::SNARK;
use cpu_time::ProcessTime;
use tacit_circuits::mpc::{Mpc, SharedAssignment};
use tacit_circuits::sample::poseidon_batch;
use tacit_circuits::{Backend, R1cs};
use tacit_mpc_engine::simulate::run_engines;
use tacit_mpc_engine::{Engine, MpcError, PartyId, Security, SessionId, Transport};
use tacit_prover::collaborative::{self, ProductMode};
use tacit_prover::qap::{prove_single, R1csMatrices};

/// Constraints per Poseidon hash of two inputs in the sample circuit.
const CONSTRAINTS_PER_HASH: usize = 243;

/// Keys and matrices of the sample circuit with `hashes` hashes over `parties` inputs.
fn setup(
    parties: usize,
    hashes: usize,
) -> anyhow::Result<(ProvingKey<Bn254>, PreparedVerifyingKey<Bn254>, R1csMatrices)> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let mut r1cs = R1cs::<Fr>::new_setup();
    rt.block_on(poseidon_batch(&mut r1cs, parties, hashes, None))?;
    let cs = r1cs.constraint_system()?;
    let (pk, matrices) = tacit_prover::keys::setup_from_cs(&cs, &mut rand::thread_rng())?;
    let pvk = Groth16::<Bn254>::process_vk(&pk.vk)?;
    Ok((pk, pvk, matrices))
}

fn secret_of(id: PartyId) -> Fr {
    Fr::from(1_000_003u64 * u64::from(id.get()) + 17)
}

/// One party's figures of a collaborative run.
#[derive(Clone, Copy, Debug, Default)]
struct PartyRun {
    witness_s: f64,
    witness_rounds: u64,
    witness_bytes: u64,
    prove_s: f64,
    prove_rounds: u64,
    prove_bytes: u64,
}

type Keys = Arc<(ProvingKey<Bn254>, PreparedVerifyingKey<Bn254>, R1csMatrices)>;

/// One party's figures, revealed outputs and proof.
type PartyResult = (PartyRun, Vec<Fr>, Proof<Bn254>);

/// Phase 1 at one party: MPC witness generation. Returns the revealed outputs, the shared
/// assignment and the engine, for phase 2.
async fn witness_phase<T: Transport>(
    engine: Engine<Fr, T>,
    parties: usize,
    hashes: usize,
) -> Result<(PartyRun, Vec<Fr>, SharedAssignment<Fr>, Engine<Fr, T>), MpcError> {
    let id = engine.id();
    let start = Instant::now();
    let (bytes0, rounds0) = (engine.stats().transport.bytes_sent, engine.stats().rounds);
    let mut b = Mpc::new(engine);
    let outputs = poseidon_batch(&mut b, parties, hashes, Some((id, secret_of(id)))).await.map_err(mpc_error)?;
    let (assignment, engine) = b.finish().await.map_err(mpc_error)?;
    let run = PartyRun {
        witness_s: start.elapsed().as_secs_f64(),
        witness_rounds: engine.stats().rounds - rounds0,
        witness_bytes: engine.stats().transport.bytes_sent - bytes0,
        ..PartyRun::default()
    };
    Ok((run, outputs, assignment, engine))
}

fn mpc_error(e: tacit_circuits::CircuitError) -> MpcError {
    match e {
        tacit_circuits::CircuitError::Mpc(e) => e,
        other => MpcError::Usage(other.to_string()),
    }
}

/// Phase 2 at one party: the collaborative proof.
async fn prove_phase<T: Transport>(
    mut engine: Engine<Fr, T>,
    mut run: PartyRun,
    assignment: SharedAssignment<Fr>,
    keys: Keys,
    mode: ProductMode,
) -> Result<(PartyRun, Proof<Bn254>), MpcError> {
    let start = Instant::now();
    let (bytes0, rounds0) = (engine.stats().transport.bytes_sent, engine.stats().rounds);
    let (pk, pvk, matrices) = &*keys;
    let proof =
        collaborative::prove_with(&mut engine, pk, pvk, matrices, &assignment.instance, &assignment.witness, mode)
            .await
            .map_err(|e| match e {
                collaborative::CollaborativeError::Mpc(e) => e,
                other => MpcError::Usage(other.to_string()),
            })?;
    run.prove_s = start.elapsed().as_secs_f64();
    run.prove_rounds = engine.stats().rounds - rounds0;
    run.prove_bytes = engine.stats().transport.bytes_sent - bytes0;
    Ok((run, proof))
}

/// Both phases for every party of a loopback QUIC cluster; the process CPU time of phase 2
/// alone is returned beside the per-party figures.
fn collaborative_run(
    rt: &tokio::runtime::Runtime,
    parties: usize,
    threshold: usize,
    hashes: usize,
    mode: ProductMode,
    keys: &Keys,
) -> anyhow::Result<(Vec<PartyResult>, f64)> {
    let transports = rt.block_on(crate::cluster::local_quic_cluster(parties))?;
    let phase1 = rt.block_on(run_engines::<Fr, _, _, _, _>(
        transports.clone(),
        threshold,
        Security::Malicious,
        SessionId::random(),
        move |e| witness_phase(e, parties, hashes),
    ));
    let mut phase1_ok = Vec::with_capacity(phase1.len());
    for r in phase1 {
        phase1_ok.push(r.context("MPC witness generation failed")?);
    }
    let cpu = ProcessTime::now();
    let results = rt.block_on(async {
        let tasks: Vec<_> = phase1_ok
            .into_iter()
            .map(|(run, outputs, assignment, engine)| {
                let keys = keys.clone();
                tokio::spawn(async move {
                    prove_phase(engine, run, assignment, keys, mode).await.map(|(r, p)| (r, outputs, p))
                })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            out.push(task.await);
        }
        out
    });
    let prove_cpu = cpu.elapsed().as_secs_f64();
    rt.block_on(async {
        for t in &transports {
            t.shutdown().await;
        }
    });
    let mut runs = Vec::with_capacity(results.len());
    for r in results {
        runs.push(r.context("party task")?.context("collaborative proof failed")?);
    }
    Ok((runs, prove_cpu))
}

pub fn bench(
    constraints: usize,
    parties: usize,
    threshold: usize,
    mode: ProductMode,
    json: bool,
) -> anyhow::Result<()> {
    let hashes = constraints.div_ceil(CONSTRAINTS_PER_HASH).max(1);
    let bar = crate::bench::spinner(&format!("setup of {hashes} Poseidon hashes"), json);
    let keys = Arc::new(setup(parties, hashes)?);
    let actual_constraints = keys.2.num_constraints();

    // Single prover: the witness in the clear, then the same pipeline on one machine.
    if let Some(bar) = &bar {
        bar.set_message("single prover");
    }
    let rt = crate::bench::runtime()?;
    let mut plain = R1cs::<Fr>::new_prove();
    let all_secrets: Vec<(PartyId, Fr)> = PartyId::all(parties).map(|p| (p, secret_of(p))).collect();
    rt.block_on(async {
        // Prove mode needs every input: give each party's secret when its turn comes.
        single_party_witness(&mut plain, parties, hashes, &all_secrets).await
    })?;
    let z = plain.full_assignment()?;
    let cpu = ProcessTime::now();
    let wall = Instant::now();
    let single = prove_single(&keys.0, &keys.2, &z, Fr::from(3u64), Fr::from(5u64))?;
    let single_prover_s = wall.elapsed().as_secs_f64();
    let single_cpu_s = cpu.elapsed().as_secs_f64();
    anyhow::ensure!(
        Groth16::<Bn254>::verify_proof(&keys.1, &single, plain.instance_assignment().unwrap_or_default())?,
        "single proof does not verify"
    );

    if let Some(bar) = &bar {
        bar.set_message(format!("collaborative proof, {parties} parties over QUIC"));
    }
    let (results, prove_cpu) = collaborative_run(&rt, parties, threshold, hashes, mode, &keys)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut runs = Vec::new();
    for (run, outputs, proof) in results {
        anyhow::ensure!(
            Groth16::<Bn254>::verify_proof(&keys.1, &proof, &outputs)?,
            "collaborative proof does not verify"
        );
        runs.push(run);
    }
    let n = runs.len().max(1) as f64;
    let max = |f: fn(&PartyRun) -> f64| runs.iter().map(f).fold(0.0, f64::max);
    let collaborative_s = max(|r| r.prove_s);
    let witness_s = max(|r| r.witness_s);
    // All parties share this process: CPU per party is the process's CPU over the proving
    // phase divided by the parties.
    let cpu_s_per_party = prove_cpu / n;
    let ratio = cpu_s_per_party / single_cpu_s.max(f64::MIN_POSITIVE);
    let bytes_sent_per_party = runs.iter().map(|r| r.prove_bytes).sum::<u64>() / runs.len().max(1) as u64;
    let rounds = runs.iter().map(|r| r.prove_rounds).max().unwrap_or(0);
    let witness_bytes = runs.iter().map(|r| r.witness_bytes).sum::<u64>() / runs.len().max(1) as u64;
    let witness_rounds = runs.iter().map(|r| r.witness_rounds).max().unwrap_or(0);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "constraints": actual_constraints,
                "single_prover_s": single_prover_s,
                "collaborative_s": collaborative_s,
                "cpu_s_per_party": cpu_s_per_party,
                "ratio": ratio,
                "bytes_sent_per_party": bytes_sent_per_party,
                "rounds": rounds,
                "witness_s": witness_s,
                "witness_rounds": witness_rounds,
                "witness_bytes_per_party": witness_bytes,
                "hashes": hashes,
                "product": format!("{mode:?}").to_lowercase(),
            })
        );
        return Ok(());
    }
    println!("circuit                 {hashes} Poseidon hashes over {parties} parties' inputs, {actual_constraints} constraints");
    println!("single prover           {single_prover_s:.3} s wall, {single_cpu_s:.3} s CPU");
    println!(
        "MPC witness generation  {witness_s:.3} s, {witness_rounds} rounds, {witness_bytes} bytes/party (malicious)"
    );
    println!(
        "collaborative proof     {collaborative_s:.3} s wall, {rounds} rounds, {bytes_sent_per_party} bytes/party"
    );
    println!("CPU per party           {cpu_s_per_party:.3} s (process CPU of the proving phase / {parties} parties)");
    println!("CPU ratio               {ratio:.3} (collaborative per party / single prover; goal <= 1.10)");
    Ok(())
}

/// The sample circuit in prove mode with every party's input known (single prover).
async fn single_party_witness(
    r1cs: &mut R1cs<Fr>,
    parties: usize,
    hashes: usize,
    secrets: &[(PartyId, Fr)],
) -> anyhow::Result<()> {
    let mut all = AllInputs { inner: r1cs, secrets };
    poseidon_batch(&mut all, parties, hashes, None).await?;
    Ok(())
}

/// An R1cs backend that supplies each party's input itself: the single prover knows them all.
struct AllInputs<'a> {
    inner: &'a mut R1cs<Fr>,
    secrets: &'a [(PartyId, Fr)],
}

impl Backend for AllInputs<'_> {
    type F = Fr;
    type Value = <R1cs<Fr> as Backend>::Value;

    fn constant(&self, c: Fr) -> Self::Value {
        self.inner.constant(c)
    }
    fn add(&self, a: &Self::Value, b: &Self::Value) -> Self::Value {
        self.inner.add(a, b)
    }
    fn sub(&self, a: &Self::Value, b: &Self::Value) -> Self::Value {
        self.inner.sub(a, b)
    }
    fn scale(&self, a: &Self::Value, c: Fr) -> Self::Value {
        self.inner.scale(a, c)
    }
    fn add_constant(&self, a: &Self::Value, c: Fr) -> Self::Value {
        self.inner.add_constant(a, c)
    }
    async fn private_inputs(
        &mut self,
        owner: PartyId,
        _values: Option<&[Fr]>,
        len: usize,
    ) -> tacit_circuits::Result<Vec<Self::Value>> {
        let value: Vec<Fr> = self.secrets.iter().filter(|(p, _)| *p == owner).map(|(_, v)| *v).take(len).collect();
        self.inner.private_inputs(owner, Some(&value), len).await
    }
    fn public_inputs(&mut self, values: &[Fr]) -> tacit_circuits::Result<Vec<Self::Value>> {
        self.inner.public_inputs(values)
    }
    fn known_inputs(&mut self, values: &[Fr]) -> tacit_circuits::Result<Vec<Self::Value>> {
        self.inner.known_inputs(values)
    }
    fn dealt_inputs(&mut self, values: Option<&[Fr]>, len: usize) -> tacit_circuits::Result<Vec<Self::Value>> {
        self.inner.dealt_inputs(values, len)
    }
    async fn mul(&mut self, a: &[Self::Value], b: &[Self::Value]) -> tacit_circuits::Result<Vec<Self::Value>> {
        self.inner.mul(a, b).await
    }
    async fn to_bits(&mut self, a: &[Self::Value], bits: u32) -> tacit_circuits::Result<Vec<Vec<Self::Value>>> {
        self.inner.to_bits(a, bits).await
    }
    async fn is_zero(&mut self, a: &[Self::Value]) -> tacit_circuits::Result<Vec<Self::Value>> {
        self.inner.is_zero(a).await
    }
    fn assert_zero(&mut self, a: &[Self::Value]) -> tacit_circuits::Result<()> {
        self.inner.assert_zero(a)
    }
    async fn assert_bits(&mut self, a: &[Self::Value]) -> tacit_circuits::Result<()> {
        self.inner.assert_bits(a).await
    }
    async fn reveal_is_zero(&mut self, a: &[Self::Value]) -> tacit_circuits::Result<Vec<bool>> {
        self.inner.reveal_is_zero(a).await
    }
    async fn reveal(&mut self, a: &[Self::Value]) -> tacit_circuits::Result<Vec<Fr>> {
        self.inner.reveal(a).await
    }
}

/// Makes a collaborative proof of the sample circuit (3 parties, loopback QUIC) and writes the
/// snarkjs files `verification_key.json`, `proof.json`, `public.json`, and `calldata.txt`.
pub fn export(out: &Path, parties: usize, threshold: usize, hashes: usize) -> anyhow::Result<()> {
    let keys = Arc::new(setup(parties, hashes)?);
    let rt = crate::bench::runtime()?;
    let (results, _) = collaborative_run(&rt, parties, threshold, hashes, ProductMode::default(), &keys)?;
    let (_, public, proof) = results.into_iter().next().context("no party")?;
    std::fs::create_dir_all(out)?;
    tacit_prover::snarkjs::write_verification_key_json(&keys.0.vk, out.join("verification_key.json"))?;
    tacit_prover::snarkjs::write_proof_json(&proof, out.join("proof.json"))?;
    tacit_prover::snarkjs::write_public_json(&public, out.join("public.json"))?;
    let calldata = tacit_prover::snarkjs::solidity_calldata(&proof, &public);
    std::fs::write(out.join("calldata.txt"), format!("{calldata}\n"))?;
    println!(
        "collaborative proof of {hashes} Poseidon hashes over {parties} parties' inputs written to {}",
        out.display()
    );
    for f in ["verification_key.json", "proof.json", "public.json", "calldata.txt"] {
        println!("  {}", out.join(f).display());
    }
    Ok(())
}

/// `tacit verifier export`: a key-specific Solidity verifier.
pub fn export_verifier(vk_path: &Path, out: &Path, name: &str) -> anyhow::Result<()> {
    let vk = if vk_path.extension().is_some_and(|e| e == "json") {
        tacit_prover::snarkjs::read_verification_key_json(vk_path)?
    } else {
        tacit_prover::keys::read_verifying_key(vk_path)?
    };
    let source = tacit_contracts::export_verifier_solidity(&vk, name)?;
    std::fs::write(out, source).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "verifier {name} for {} public inputs written to {}",
        vk.gamma_abc_g1.len().saturating_sub(1),
        out.display()
    );
    Ok(())
}
