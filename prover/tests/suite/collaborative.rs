//! Collaborative Groth16 over a witness shared by three parties: the proof verifies with
//! plain ark-groth16; a corrupted share aborts and never yields an invalid proof.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::Arc;

use ark_bn254::{Bn254, Fr};
use ark_groth16::{Groth16, PreparedVerifyingKey, ProvingKey};
use ark_snark::SNARK;
use tacit_circuits::gadgets::commitment::{commit, commitment};
use tacit_circuits::mpc::Mpc;
use tacit_circuits::{Backend, R1cs};
use tacit_mpc_engine::simulate::run_engines;
use tacit_mpc_engine::transport::memory::MemoryTransport;
use tacit_mpc_engine::{Check, Engine, MpcError, PartyId, Security, SessionId, Transport};
use tacit_prover::collaborative::{prove_with, CollaborativeError, ProductMode};
use tacit_prover::qap::R1csMatrices;

/// Each of the three parties inputs (value, salt); the circuit reveals every commitment
/// Poseidon(value, salt) and the sum of the values.
async fn circuit<B: Backend<F = Fr>>(b: &mut B, mine: Option<(PartyId, [Fr; 2])>) -> tacit_circuits::Result<Vec<Fr>> {
    let mut values = Vec::new();
    let mut salts = Vec::new();
    for id in 1..=3u16 {
        let owner = PartyId::new(id).unwrap();
        let given = mine.filter(|(p, _)| *p == owner).map(|(_, v)| v);
        let pair = b.private_inputs(owner, given.as_ref().map(|v| &v[..]), 2).await?;
        values.push(pair[0].clone());
        salts.push(pair[1].clone());
    }
    let commitments = commit(b, &values, &salts).await?;
    let total = b.sum(&values);
    let mut outputs = commitments;
    outputs.push(total);
    b.reveal(&outputs).await
}

fn inputs(id: u16) -> [Fr; 2] {
    [Fr::from(100 * id as u64 + 7), Fr::from(9_000 + id as u64)]
}

fn keys() -> (ProvingKey<Bn254>, PreparedVerifyingKey<Bn254>, R1csMatrices) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    // Setup mode: the same circuit without values.
    let mut setup = R1cs::<Fr>::new_setup();
    rt.block_on(circuit(&mut setup, None)).unwrap();
    let cs = setup.constraint_system().unwrap();
    let mut rng = rand::thread_rng();
    let (pk, matrices) = tacit_prover::keys::setup_from_cs(&cs, &mut rng).unwrap();
    let pvk = Groth16::<Bn254>::process_vk(&pk.vk).unwrap();
    (pk, pvk, matrices)
}

/// A party's revealed outputs and proof.
type PartyOutput = (Vec<Fr>, ark_groth16::Proof<Bn254>);

async fn party<T: Transport>(
    engine: Engine<Fr, T>,
    pk: Arc<ProvingKey<Bn254>>,
    pvk: Arc<PreparedVerifyingKey<Bn254>>,
    matrices: Arc<R1csMatrices>,
) -> Result<PartyOutput, MpcError> {
    party_with(engine, pk, pvk, matrices, ProductMode::default()).await
}

async fn party_with<T: Transport>(
    engine: Engine<Fr, T>,
    pk: Arc<ProvingKey<Bn254>>,
    pvk: Arc<PreparedVerifyingKey<Bn254>>,
    matrices: Arc<R1csMatrices>,
    mode: ProductMode,
) -> Result<PartyOutput, MpcError> {
    let id = engine.id();
    let mut b = Mpc::new(engine);
    let outputs = circuit(&mut b, Some((id, inputs(id.get())))).await.map_err(|e| match e {
        tacit_circuits::CircuitError::Mpc(e) => e,
        other => MpcError::Usage(other.to_string()),
    })?;
    let (assignment, mut engine) = b.finish().await.map_err(|e| MpcError::Usage(e.to_string()))?;
    let proof = prove_with(&mut engine, &pk, &pvk, &matrices, &assignment.instance, &assignment.witness, mode)
        .await
        .map_err(|e| match e {
            CollaborativeError::Mpc(e) => e,
            other => MpcError::Usage(other.to_string()),
        })?;
    Ok((outputs, proof))
}

#[test]
fn three_party_proof_verifies_with_ark_groth16() {
    let (pk, pvk, matrices) = keys();
    let (pk, pvk, matrices) = (Arc::new(pk), Arc::new(pvk), Arc::new(matrices));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let transports: Vec<Arc<MemoryTransport>> = MemoryTransport::network(3).into_iter().map(Arc::new).collect();
    let results =
        rt.block_on(run_engines::<Fr, _, _, _, _>(transports, 1, Security::Malicious, SessionId::random(), {
            let (pk, pvk, matrices) = (pk.clone(), pvk.clone(), matrices.clone());
            move |e| party(e, pk.clone(), pvk.clone(), matrices.clone())
        }));
    let expected: Vec<Fr> = (1..=3u16)
        .map(|id| commitment(inputs(id)[0], inputs(id)[1]).unwrap())
        .chain(std::iter::once((1..=3u16).map(|id| inputs(id)[0]).sum()))
        .collect();
    let mut proofs = Vec::new();
    for r in results {
        let (outputs, proof) = r.unwrap();
        assert_eq!(outputs, expected);
        assert!(Groth16::<Bn254>::verify_proof(&pvk, &proof, &outputs).unwrap());
        proofs.push(proof);
    }
    assert!(proofs.iter().all(|p| *p == proofs[0]), "every party holds the same proof");
    // The proof is bound to the revealed values: other public inputs fail.
    let mut wrong = expected.clone();
    wrong[3] += Fr::from(1u64);
    assert!(!Groth16::<Bn254>::verify_proof(&pvk, &proofs[0], &wrong).unwrap());
}

#[test]
fn local_product_and_five_parties_prove() {
    let (pk, pvk, matrices) = keys();
    let (pk, pvk, matrices) = (Arc::new(pk), Arc::new(pvk), Arc::new(matrices));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // (parties, threshold, mode): with t = 2 of 5, B and C come from the first three and
    // two parties only check; in local mode C has degree 2t and needs every party.
    for (n, t, mode) in [(3, 1, ProductMode::Local), (5, 2, ProductMode::Batched)] {
        let transports: Vec<Arc<MemoryTransport>> = MemoryTransport::network(n).into_iter().map(Arc::new).collect();
        let results =
            rt.block_on(run_engines::<Fr, _, _, _, _>(transports, t, Security::Malicious, SessionId::random(), {
                let (pk, pvk, matrices) = (pk.clone(), pvk.clone(), matrices.clone());
                move |e| party_with(e, pk.clone(), pvk.clone(), matrices.clone(), mode)
            }));
        for r in results {
            let (outputs, proof) = r.unwrap();
            assert!(Groth16::<Bn254>::verify_proof(&pvk, &proof, &outputs).unwrap(), "{n} parties, {mode:?}");
        }
    }
}

/// What a corrupting party does to the group-element shares it broadcasts.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Corruption {
    /// Flips a bit of every such message (malformed points).
    Flip,
    /// Adds the generator to its share of `A` (a valid but wrong point).
    ShiftA,
    /// Adds the generator to its share of `B` (G2).
    ShiftB,
    /// Adds the generator to its share of `C`.
    ShiftC,
}

/// A transport whose party `who` corrupts the group-element shares it broadcasts, to every
/// peer alike. The first opaque round carries `A ‖ B1 ‖ B` (B from the first t+1 parties),
/// the second `C` (from the first t+1 parties).
struct Corrupting {
    inner: MemoryTransport,
    who: u16,
    how: Corruption,
    /// The steps of opaque rounds seen so far, in order (header bytes 1..5 hold the step).
    steps: std::sync::Mutex<Vec<[u8; 4]>>,
}

impl std::fmt::Debug for Corrupting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Corrupting")
    }
}

fn shifted<P: ark_ec::CurveGroup>(bytes: &mut [u8]) {
    use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
    let point = P::Affine::deserialize_compressed(&*bytes).unwrap();
    let mut out = Vec::new();
    (P::from(point) + P::generator()).into_affine().serialize_compressed(&mut out).unwrap();
    bytes.copy_from_slice(&out);
}

impl Transport for Corrupting {
    fn id(&self) -> PartyId {
        self.inner.id()
    }
    fn n_parties(&self) -> usize {
        self.inner.n_parties()
    }
    async fn send(
        &self,
        s: SessionId,
        to: PartyId,
        payload: bytes::Bytes,
    ) -> Result<(), tacit_mpc_engine::TransportError> {
        // Kind 6 carries opaque payloads: here, the shares of A, B1, B and C.
        let payload = if self.inner.id().get() == self.who && payload.first() == Some(&6) && payload.len() > 9 {
            let mut m = payload.to_vec();
            let step: [u8; 4] = m[1..5].try_into().unwrap();
            let round = {
                let mut steps = self.steps.lock().unwrap();
                if !steps.contains(&step) {
                    steps.push(step);
                }
                steps.iter().position(|s| *s == step).unwrap()
            };
            match (self.how, round) {
                (Corruption::Flip, _) => *m.last_mut().unwrap() ^= 1,
                (Corruption::ShiftA, 0) => shifted::<ark_bn254::G1Projective>(&mut m[9..41]),
                (Corruption::ShiftB, 0) => shifted::<ark_bn254::G2Projective>(&mut m[73..137]),
                (Corruption::ShiftC, 1) => shifted::<ark_bn254::G1Projective>(&mut m[9..41]),
                _ => {}
            }
            bytes::Bytes::from(m)
        } else {
            payload
        };
        self.inner.send(s, to, payload).await
    }
    async fn recv(&self, s: SessionId, from: PartyId) -> Result<bytes::Bytes, tacit_mpc_engine::TransportError> {
        self.inner.recv(s, from).await
    }
    fn close_session(&self, s: SessionId) {
        self.inner.close_session(s)
    }
    fn stats(&self) -> tacit_mpc_engine::TransportStats {
        self.inner.stats()
    }
}

/// Runs the three parties with party `who` corrupting its group-element shares.
fn run_with_corrupting(who: u16, how: Corruption) -> Vec<Result<PartyOutput, MpcError>> {
    let (pk, pvk, matrices) = keys();
    let (pk, pvk, matrices) = (Arc::new(pk), Arc::new(pvk), Arc::new(matrices));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let transports: Vec<Arc<Corrupting>> = MemoryTransport::network_with_timeout(3, std::time::Duration::from_secs(5))
        .into_iter()
        .map(|inner| Arc::new(Corrupting { inner, who, how, steps: Default::default() }))
        .collect();
    rt.block_on(run_engines::<Fr, _, _, _, _>(transports, 1, Security::Malicious, SessionId::random(), move |e| {
        party(e, pk.clone(), pvk.clone(), matrices.clone())
    }))
}

/// Every honest party aborts naming `who`.
fn assert_named(results: Vec<Result<PartyOutput, MpcError>>, who: u16) {
    for (i, r) in results.into_iter().enumerate().filter(|(i, _)| *i + 1 != who as usize) {
        match r {
            Err(MpcError::Cheating { culprit: tacit_mpc_engine::Culprit::Party(p), .. }) => {
                assert_eq!(p.get(), who, "P{} names the cheater", i + 1)
            }
            Ok(_) => panic!("P{} returned a proof despite a wrong share", i + 1),
            Err(other) => panic!("P{}: expected P{who} named, got {other:?}", i + 1),
        }
    }
}

#[test]
fn corrupted_share_aborts_without_a_proof() {
    let results = run_with_corrupting(3, Corruption::Flip);
    for (i, r) in results.into_iter().enumerate().take(2) {
        match r {
            Err(MpcError::Cheating { check, .. }) => {
                assert!(
                    matches!(check, Check::OpeningConsistency | Check::OutputVerification | Check::BroadcastAgreement),
                    "P{}: {check:?}",
                    i + 1
                )
            }
            Err(MpcError::Protocol { peer, .. }) => assert_eq!(peer.get(), 3),
            Err(MpcError::PeerAborted { .. }) => {}
            Ok(_) => panic!("P{} returned a proof despite a corrupted share", i + 1),
            Err(other) => panic!("P{}: unexpected {other:?}", i + 1),
        }
    }
}

#[test]
fn wrong_share_of_a_is_named() {
    // P3 checks A without reconstructing it; P1 is one of the reconstructing parties.
    assert_named(run_with_corrupting(3, Corruption::ShiftA), 3);
    assert_named(run_with_corrupting(1, Corruption::ShiftA), 1);
}

#[test]
fn wrong_share_of_b_or_c_is_named() {
    // B and C are reconstructed from P1 and P2 only: a wrong share there fails the proof,
    // then P3's shares single the sender out.
    assert_named(run_with_corrupting(1, Corruption::ShiftB), 1);
    assert_named(run_with_corrupting(2, Corruption::ShiftC), 2);
}
