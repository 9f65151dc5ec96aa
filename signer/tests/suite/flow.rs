//! The whole life of a key over the in-memory transport: DKG, policy, presign, sign (EIP-1559
//! and EIP-712), recovery with k256 and with ecrecover on revm, refresh, reshare to a
//! replacement node, all keeping the address.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use crate::common;

use common::*;
use revm::primitives::Address;
use tacit_contracts::{LocalChain, Outcome};
use tacit_mpc_engine::SessionId;
use tacit_signer::cluster::{self, honest, KeyOp};
use tacit_signer::curve::{keccak, EcdsaSignature};
use tacit_signer::eth::{word_u128, IntentKind};
use tacit_signer::sign::SignOutput;

fn ecrecover_on_revm(hash: &[u8; 32], sig: &EcdsaSignature) -> [u8; 20] {
    let mut chain = LocalChain::new();
    let mut input = hash.to_vec();
    input.extend(word_u128(27 + u128::from(sig.v)));
    input.extend(sig.r);
    input.extend(sig.s);
    let result = chain.call(Address::with_last_byte(1), input).unwrap();
    match result.outcome {
        Outcome::Success(out) => out[12..32].try_into().unwrap(),
        other => panic!("ecrecover failed: {other:?}"),
    }
}

fn check(out: &[tacit_signer::Result<SignOutput>], address: [u8; 20]) -> SignOutput {
    let first = out[0].as_ref().unwrap().clone();
    for o in out {
        assert_eq!(o.as_ref().unwrap(), &first, "signers agree");
    }
    let sig = first.signature;
    assert_eq!(sig.recover(&first.prehash).unwrap(), address, "k256 recovers the DKG address");
    assert_eq!(ecrecover_on_revm(&first.prehash, &sig), address, "ecrecover on revm recovers the DKG address");
    // Low s.
    assert!(sig.s[0] < 0x80);
    first
}

#[test]
fn dkg_presign_sign_refresh_reshare() {
    runtime().block_on(async {
        let mut c = Cluster::new(memory(3), 1);
        let public = c.dkg().await;
        let address = public.address().unwrap();
        for n in &c.nodes {
            let share = n.key_share().unwrap();
            share.check().unwrap();
            assert_eq!(share.public.epoch, 0);
            assert!(format!("{share:?}").contains("<redacted>"));
        }

        let s12 = [pid(1), pid(2)];
        let ids = c.presign(4, &s12).await;
        assert_eq!(ids.len(), 4);
        assert!(c.nodes[2].presig_ids().unwrap().is_empty(), "a node outside the set keeps nothing");

        // EIP-1559 transfer.
        let req = c.request(c.intent(ETH, 0), ids[0], &s12);
        let out = cluster::sign(&c.transports, &c.nodes, &req, NOW, &honest).await;
        let o = check(&out, address);
        let raw = o.raw_tx.unwrap();
        assert_eq!(raw[0], 2);
        assert_eq!(o.tx_hash.unwrap(), keccak(&raw));

        // EIP-712 message.
        let mut intent = c.intent(0, 0);
        intent.kind = IntentKind::TypedData;
        intent.to = [0xcc; 20];
        intent.data_hash = [7u8; 32];
        let req = c.request(intent, ids[1], &s12);
        let out = cluster::sign(&c.transports, &c.nodes, &req, NOW, &honest).await;
        let o = check(&out, address);
        assert_eq!(o.prehash, [7u8; 32]);

        // Refresh: same key, epoch 1; old presignatures are gone.
        let r = cluster::key_op(KeyOp::Refresh, &c.transports, &c.nodes, 1, SessionId::random(), NOW, &honest).await;
        let pubs = cluster::first_ok(r).unwrap();
        assert_eq!(pubs[0].epoch, 1);
        assert_eq!(pubs[0].address().unwrap(), address);
        assert!(c.nodes[0].presig_ids().unwrap().is_empty());
        let s23 = [pid(2), pid(3)];
        let ids = c.presign(2, &s23).await;
        let req = c.request(c.intent(ETH, 1), ids[0], &s23);
        let out = cluster::sign(&c.transports, &c.nodes, &req, NOW + 10, &honest).await;
        check(&out, address);

        // Node 3 is replaced by a new node with an empty store.
        let public = c.nodes[0].key_public().unwrap();
        std::fs::remove_file(tacit_signer::node::store_path(c.dir.path(), pid(3))).ok();
        std::fs::remove_file(tacit_signer::node::audit_path(c.dir.path(), pid(3))).ok();
        c.reopen(2);
        c.nodes[2].set_public(&public).unwrap();
        c.nodes[2].init_policy(&policy(&c.approvers)).unwrap();
        assert!(c.nodes[2].key_share().is_err());
        let r = cluster::key_op(KeyOp::Reshare(pid(3)), &c.transports, &c.nodes, 1, SessionId::random(), NOW, &honest)
            .await;
        let pubs = cluster::first_ok(r).unwrap();
        assert_eq!(pubs[0].epoch, 2);
        assert_eq!(pubs[2].address().unwrap(), address);
        let s13 = [pid(1), pid(3)];
        let ids = c.presign(1, &s13).await;
        let req = c.request(c.intent(ETH, 2), ids[0], &s13);
        let out = cluster::sign(&c.transports, &c.nodes, &req, NOW + 20, &honest).await;
        check(&out, address);

        // Every audit log verifies.
        for n in &c.nodes {
            let report = tacit_signer::audit::verify_file(&n.audit_file().unwrap(), None).unwrap().unwrap();
            assert!(report.entries >= 2);
        }
    });
}

#[test]
fn over_loopback_quic() {
    runtime().block_on(async {
        let transports =
            tacit_mpc_engine::simulate::local_quic_cluster(3, Default::default()).await.expect("quic cluster");
        let mut c = Cluster::new(transports.clone(), 1);
        let public = c.dkg().await;
        let address = public.address().unwrap();
        let s13 = [pid(1), pid(3)];
        let ids = c.presign(8, &s13).await;
        for (i, id) in ids.iter().take(2).enumerate() {
            let req = c.request(c.intent(ETH, i as u64), *id, &s13);
            let out = cluster::sign(&c.transports, &c.nodes, &req, NOW, &honest).await;
            check(&out, address);
        }
        for t in transports {
            t.shutdown().await;
        }
    });
}
