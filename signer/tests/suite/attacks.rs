//! Each attack ends in an abort naming the cheater (or a refusal naming the violated rule),
//! never in a signature for an unapproved intent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use crate::common;

use common::cheater::{network_with_cheater, KIND_BYTES};
use common::*;
use tacit_mpc_engine::{PartyId, SessionId};
use tacit_signer::cluster::{self, honest, KeyOp};
use tacit_signer::dkg::DkgFaults;
use tacit_signer::policy::approve;
use tacit_signer::presign::PresignFaults;
use tacit_signer::sign::{SignFaults, SignOutput};
use tacit_signer::{PolicyViolation, SignerError};

fn dkg_with(faults: DkgFaults, cheater: PartyId) -> Vec<tacit_signer::Result<tacit_signer::keys::KeyPublic>> {
    runtime().block_on(async {
        let c = Cluster::new(memory(3), 1);
        let f = move |p: PartyId| if p == cheater { faults.clone() } else { DkgFaults::default() };
        cluster::key_op(KeyOp::Dkg, &c.transports, &c.nodes, 1, SessionId::random(), NOW, &f).await
    })
}

#[test]
fn wrong_vss_share_names_the_dealer() {
    let r = dkg_with(DkgFaults { bad_share_to: Some(pid(1)), ..Default::default() }, pid(3));
    assert_named(&r, pid(3));
}

#[test]
fn biased_reveal_names_the_dealer() {
    let r = dkg_with(DkgFaults { biased_reveal: true, ..Default::default() }, pid(2));
    assert_named(&r, pid(2));
}

#[test]
fn late_reveal_names_the_dealer() {
    let r = dkg_with(DkgFaults { withhold_reveal: true, ..Default::default() }, pid(3));
    assert_named(&r, pid(3));
}

#[test]
fn replayed_deal_from_another_session_names_the_sender() {
    let r = dkg_with(DkgFaults { replay_from: Some(SessionId::random()), ..Default::default() }, pid(2));
    assert_named(&r, pid(2));
}

#[test]
fn equivocating_broadcast_names_the_sender() {
    // P3 sends P1 a different commitment hash than it sends P2.
    let rule = |to: PartyId, kind: u8, msg: &mut [u8]| {
        if kind == KIND_BYTES && to == pid(1) && msg.len() == 9 + 32 {
            msg[20] ^= 1;
            true
        } else {
            false
        }
    };
    let r = runtime().block_on(async {
        let c = Cluster::new(network_with_cheater(3, 3, Box::new(rule)), 1);
        cluster::key_op(KeyOp::Dkg, &c.transports, &c.nodes, 1, SessionId::random(), NOW, &honest).await
    });
    assert_named(&r, pid(3));
}

#[test]
fn inconsistent_presign_points_are_caught() {
    runtime().block_on(async {
        let mut c = Cluster::new(memory(3), 1);
        c.dkg().await;
        let s = [pid(1), pid(2)];
        // A bad (k⁻¹)_i·R is pinned to its sender (the value at 0 is known).
        let f = |p: PartyId| PresignFaults { bad_check_point: p == pid(3), ..Default::default() };
        let r = cluster::presign(&c.transports, &c.nodes, 1, SessionId::random(), 3, &s, NOW, &f).await;
        assert_named(&r, pid(3));
        // A nonce point (a dealer's part of R) off the polynomial it deals: with n = t + 2 too,
        // the receivers' complaints are settled in public and name the dealer.
        let f = |p: PartyId| PresignFaults { bad_nonce_point: p == pid(2), ..Default::default() };
        let r = cluster::presign(&c.transports, &c.nodes, 1, SessionId::random(), 3, &s, NOW, &f).await;
        assert!(r.iter().all(|x| x.is_err()));
        assert_named(&r, pid(2));
        assert!(c.nodes[0].presig_ids().unwrap().is_empty(), "nothing is kept from an aborted batch");
        // A false complaint about a valid deal names the complainer.
        let f =
            |p: PartyId| PresignFaults { false_complaint_about: (p == pid(3)).then(|| pid(1)), ..Default::default() };
        let r = cluster::presign(&c.transports, &c.nodes, 1, SessionId::random(), 3, &s, NOW, &f).await;
        assert_named(&r, pid(3));
        assert!(c.nodes[0].presig_ids().unwrap().is_empty(), "nothing is kept from an aborted batch");
        // The cluster still presigns and signs afterwards.
        let ids = c.presign(2, &s).await;
        let req = c.request(c.intent(1, 1), ids[0], &s);
        let out = cluster::first_ok(cluster::sign(&c.transports, &c.nodes, &req, NOW, &honest).await).unwrap();
        assert_eq!(out[0], out[1]);
    });
    runtime().block_on(async {
        // With n = 4, t = 1 a bad k_i·G is pinned to its sender.
        let mut c = Cluster::new(memory(4), 1);
        c.dkg().await;
        let f = |p: PartyId| PresignFaults { bad_nonce_point: p == pid(4), ..Default::default() };
        let r = cluster::presign(&c.transports, &c.nodes, 1, SessionId::random(), 2, &[pid(1), pid(2)], NOW, &f).await;
        assert_named(&r, pid(4));
    });
}

fn sign_attack(faults: SignFaults) -> Vec<tacit_signer::Result<SignOutput>> {
    runtime().block_on(async {
        let (c, s, ids) = Cluster::with_presigs(1).await;
        let req = c.request(c.intent(ETH, 0), ids[0], &s);
        let f = move |p: PartyId| if p == pid(2) { faults.clone() } else { SignFaults::default() };
        cluster::sign(&c.transports, &c.nodes, &req, NOW, &f).await
    })
}

fn assert_first_names(r: &[tacit_signer::Result<SignOutput>], culprit: PartyId) {
    match &r[0] {
        Err(e) => assert_eq!(e.identified(), Some(culprit), "{e}"),
        Ok(_) => panic!("the honest signer produced a signature"),
    }
}

#[test]
fn bad_signature_shares_name_the_signer() {
    assert_first_names(&sign_attack(SignFaults { wrong_share: true, ..Default::default() }), pid(2));
    assert_first_names(&sign_attack(SignFaults { negated_share: true, ..Default::default() }), pid(2));
    assert_first_names(&sign_attack(SignFaults { malformed_share: true, ..Default::default() }), pid(2));
    assert_first_names(
        &sign_attack(SignFaults { replay_from: Some(SessionId::random()), ..Default::default() }),
        pid(2),
    );
}

#[test]
fn presignature_with_another_signer_set_is_refused() {
    runtime().block_on(async {
        let mut c = Cluster::new(memory(3), 1);
        c.dkg().await;
        let ids = c.presign(1, &[pid(1), pid(2)]).await;
        let req = c.request(c.intent(ETH, 0), ids[0], &[pid(1), pid(3)]);
        let r = cluster::sign(&c.transports, &c.nodes, &req, NOW, &honest).await;
        assert!(r.iter().all(|x| x.is_err()));
        assert!(matches!(&r[0], Err(SignerError::PresignatureMismatch { node, .. }) if *node == pid(1)), "{r:?}");
        // It was not burned by the refusal: the right set can still use it.
        let req = c.request(c.intent(ETH, 0), ids[0], &[pid(1), pid(2)]);
        let r = cluster::sign(&c.transports, &c.nodes, &req, NOW, &honest).await;
        assert!(r.iter().all(|x| x.is_ok()));
    });
}

#[test]
fn presignature_reuse_after_snapshot_restore_is_refused() {
    runtime().block_on(async {
        let (mut c, s, ids) = Cluster::with_presigs(1).await;
        let snap = c.snapshot(0);
        let req = c.request(c.intent(ETH, 0), ids[0], &s);
        let r = cluster::sign(&c.transports, &c.nodes, &req, NOW, &honest).await;
        assert!(r.iter().all(|x| x.is_ok()));
        // Node 1 comes back from the old snapshot and is asked to sign something else.
        c.restore(0, &snap);
        let req = c.request(c.intent(2 * ETH, 1), ids[0], &s);
        let r = cluster::sign(&c.transports, &c.nodes, &req, NOW, &honest).await;
        assert!(
            matches!(&r[0], Err(SignerError::PresignatureBurned { refused_by, .. }) if *refused_by == pid(2)),
            "{r:?}"
        );
        assert!(matches!(&r[1], Err(SignerError::PresignatureBurned { refused_by, .. }) if *refused_by == pid(2)));
    });
}

fn policy_case(
    edit: impl Fn(&Cluster<tacit_mpc_engine::transport::memory::MemoryTransport>, &mut tacit_signer::SignRequest),
) -> Vec<tacit_signer::Result<SignOutput>> {
    runtime().block_on(async {
        let (c, s, ids) = Cluster::with_presigs(1).await;
        let mut req = c.request(c.intent(ETH, 0), ids[0], &s);
        edit(&c, &mut req);
        cluster::sign(&c.transports, &c.nodes, &req, NOW, &honest).await
    })
}

fn assert_policy(r: &[tacit_signer::Result<SignOutput>], want: impl Fn(&PolicyViolation) -> bool) {
    for x in r {
        match x {
            Err(SignerError::Policy(v)) => assert!(want(v), "{v}"),
            other => panic!("expected a policy rejection, got {other:?}"),
        }
    }
}

#[test]
fn approvals_are_enforced_by_every_signer() {
    // Missing: one approval of two.
    let r = policy_case(|_, req| {
        req.approvals.truncate(1);
    });
    assert_policy(&r, |v| matches!(v, PolicyViolation::NotEnoughApprovals { got: 1, need: 2 }));
    // Forged: the signature is not the named approver's.
    let r = policy_case(|_, req| {
        let stranger = tacit_signer::k256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap();
        let mut a = approve(&stranger, &req.intent.digest()).unwrap();
        a.approver = req.approvals[1].approver;
        req.approvals[1] = a;
    });
    assert_policy(&r, |v| matches!(v, PolicyViolation::ForgedApproval { .. }));
    // Not an approver.
    let r = policy_case(|_, req| {
        let stranger = tacit_signer::k256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap();
        req.approvals[1] = approve(&stranger, &req.intent.digest()).unwrap();
    });
    assert_policy(&r, |v| matches!(v, PolicyViolation::UnknownApprover { .. }));
    // The same approver twice.
    let r = policy_case(|_, req| {
        req.approvals[1] = req.approvals[0].clone();
    });
    assert_policy(&r, |v| matches!(v, PolicyViolation::DuplicateApproval { .. }));
    // The intent differs from what the approvers signed.
    let r = policy_case(|_, req| {
        req.intent.value = 9 * ETH;
    });
    assert_policy(&r, |v| matches!(v, PolicyViolation::ForgedApproval { .. }));
    // Expired.
    let r = policy_case(|c, req| {
        let mut i = req.intent.clone();
        i.expiry = NOW - 1;
        *req = c.request(i, req.presig_id, &[pid(1), pid(2)]);
    });
    assert_policy(&r, |v| matches!(v, PolicyViolation::Expired { .. }));
    // Destination off the allowlist.
    let r = policy_case(|c, req| {
        let mut i = req.intent.clone();
        i.to = [0x66; 20];
        *req = c.request(i, req.presig_id, &[pid(1), pid(2)]);
    });
    assert_policy(&r, |v| matches!(v, PolicyViolation::DestinationNotAllowed { .. }));
    // Chain off the allowlist.
    let r = policy_case(|c, req| {
        let mut i = req.intent.clone();
        i.chain_id = 56;
        *req = c.request(i, req.presig_id, &[pid(1), pid(2)]);
    });
    assert_policy(&r, |v| matches!(v, PolicyViolation::ChainNotAllowed { chain_id: 56 }));
}

#[test]
fn reused_request_and_spend_limit_are_refused() {
    runtime().block_on(async {
        let (c, s, ids) = Cluster::with_presigs(4).await;
        let intent = c.intent(6 * ETH, 0);
        let req = c.request(intent.clone(), ids[0], &s);
        assert!(cluster::sign(&c.transports, &c.nodes, &req, NOW, &honest).await.iter().all(|x| x.is_ok()));
        // Same request id again, with a fresh presignature.
        let req = c.request(intent, ids[1], &s);
        let r = cluster::sign(&c.transports, &c.nodes, &req, NOW, &honest).await;
        assert_policy(&r, |v| matches!(v, PolicyViolation::RequestReused { .. }));
        // 6 + 6 ETH within 24 hours is over the 10 ETH limit.
        let req = c.request(c.intent(6 * ETH, 1), ids[2], &s);
        let r = cluster::sign(&c.transports, &c.nodes, &req, NOW + 60, &honest).await;
        assert_policy(&r, |v| matches!(v, PolicyViolation::SpendLimit { .. }));
        // A day later the window has rolled.
        let mut i = c.intent(6 * ETH, 1);
        i.expiry = NOW + 2 * 86_400;
        let req = c.request(i, ids[3], &s);
        let r = cluster::sign(&c.transports, &c.nodes, &req, NOW + 86_401, &honest).await;
        assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
    });
}

/// Node 1 alone starts signing `req` and burns, while node 2 is down. Its round-1 message
/// stays queued at node 2, as a late message would: the retry, under a fresh attempt session,
/// does not read it.
async fn cut_off_after_the_burn(
    c: &Cluster<tacit_mpc_engine::transport::memory::MemoryTransport>,
    req: &tacit_signer::SignRequest,
) {
    let alone = tacit_signer::sign::sign(&c.nodes[0], &*c.transports[0], req, NOW, SessionId::random()).await;
    assert!(matches!(alone, Err(SignerError::Mpc(_))), "{alone:?}");
}

#[test]
fn a_signing_cut_off_after_the_burn_is_retried_to_one_signature() {
    runtime().block_on(async {
        let (mut c, s, _) = Cluster::with_presigs(3).await;
        let intent = c.intent(6 * ETH, 0);
        // The proposer's choice is durable: every retry of the request proposes the same one,
        // and another request gets another.
        let chosen = c.nodes[0].choose_presig(&intent, &s, NOW).unwrap().unwrap();
        let req = c.request(intent.clone(), chosen, &s);
        let other = c.intent(ETH, 1);
        let other_chosen = c.nodes[0].choose_presig(&other, &s, NOW).unwrap().unwrap();
        assert_ne!(other_chosen, chosen);
        // The request reserved for one presignature is refused with any other.
        let third = c.nodes[0].presigs_for(&s).unwrap().into_iter().find(|p| ![chosen, other_chosen].contains(p));
        let spend = tacit_signer::store::Spend { request_id: other.request_id, value: 0, limit: 10 * ETH, now: NOW };
        let r = c.nodes[0].store().burn(pid(1), &third.unwrap(), &other.digest(), &spend);
        assert!(matches!(r, Err(SignerError::PresignatureMismatch { node, .. }) if node == pid(1)), "{r:?}");

        cut_off_after_the_burn(&c, &req).await;
        assert_eq!(c.nodes[0].store().retained_count().unwrap(), 1);
        // Node 1 restarts; the request is still bound to the same presignature.
        c.reopen(0);
        assert_eq!(c.nodes[0].choose_presig(&intent, &s, NOW).unwrap(), Some(chosen));
        // Neither another intent under the same request id nor another request gets the
        // retained presignature: node 1 refuses before any share leaves it.
        let mut altered = intent.clone();
        altered.value = 7 * ETH;
        for wrong in [c.request(altered, chosen, &s), c.request(c.intent(ETH, 2), chosen, &s)] {
            let r = tacit_signer::sign::sign(&c.nodes[0], &*c.transports[0], &wrong, NOW, SessionId::random()).await;
            assert!(
                matches!(&r, Err(SignerError::PresignatureBurned { refused_by, .. }) if *refused_by == pid(1)),
                "{r:?}"
            );
        }
        assert!(matches!(
            c.nodes[0].store().burn(
                pid(1),
                &other_chosen,
                &req.intent.digest(),
                &tacit_signer::store::Spend { request_id: intent.request_id, value: 0, limit: 10 * ETH, now: NOW }
            ),
            Err(SignerError::Policy(PolicyViolation::RequestReused { .. }))
        ));

        // The retry: node 1 sends the same share again, node 2 burns now; one signature.
        let r = cluster::sign(&c.transports, &c.nodes, &req, NOW, &honest).await;
        let out = cluster::first_ok(r).unwrap();
        assert_eq!(out[0], out[1]);
        for n in &c.nodes[..2] {
            assert_eq!(n.store().retained_count().unwrap(), 0);
            assert_eq!(n.store().spent_since(NOW).unwrap(), 6 * ETH, "the spend is counted once");
        }
        // Done: the request id is spent for good, the retained share gone with it.
        assert!(matches!(
            c.nodes[0].choose_presig(&intent, &s, NOW),
            Err(SignerError::Policy(PolicyViolation::RequestReused { .. }))
        ));
        let r = cluster::sign(&c.transports, &c.nodes, &req, NOW, &honest).await;
        assert!(r.iter().all(|x| x.is_err()), "{r:?}");
    });
}

#[test]
fn a_request_the_policy_refuses_keeps_no_presignature_reserved() {
    runtime().block_on(async {
        let (c, s, _) = Cluster::with_presigs(1).await;
        let only = c.nodes[0].presigs_for(&s).unwrap()[0];
        // 11 ETH is over the 10 ETH daily limit; an unapproved request is refused too.
        let big = c.request(c.intent(11 * ETH, 0), only, &s);
        let mut unapproved = c.request(c.intent(ETH, 1), only, &s);
        unapproved.approvals.clear();
        for req in [big, unapproved] {
            assert_eq!(c.nodes[0].choose_presig(&req.intent, &s, NOW).unwrap(), Some(only));
            assert!(c.nodes[0].store().reserved_presigs(NOW).unwrap().contains(&only));
            let r = cluster::sign(&c.transports, &c.nodes, &req, NOW, &honest).await;
            assert!(r.iter().all(|x| matches!(x, Err(SignerError::Policy(_)))), "{r:?}");
            assert!(c.nodes[0].store().reserved_presigs(NOW).unwrap().is_empty());
        }
        // The pool's one presignature goes to the next acceptable request, then none is left.
        let ok = c.intent(ETH, 2);
        assert_eq!(c.nodes[0].choose_presig(&ok, &s, NOW).unwrap(), Some(only));
        assert_eq!(c.nodes[0].choose_presig(&c.intent(ETH, 3), &s, NOW).unwrap(), None);
        assert!(c.nodes[0].available_presigs(&s, NOW).unwrap().is_empty(), "the pool level leaves it out");
        assert_eq!(c.nodes[0].available_presigs(&s, ok.expiry + 1).unwrap(), vec![only]);
        // Past its intent's expiry a reservation lapses.
        assert_eq!(c.nodes[0].choose_presig(&c.intent(ETH, 4), &s, ok.expiry + 1).unwrap(), Some(only));
        let r = cluster::sign(&c.transports, &c.nodes, &c.request(ok, only, &s), NOW, &honest).await;
        assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
    });
}

#[test]
fn an_unconfirmed_batch_is_signed_with_but_never_proposed() {
    runtime().block_on(async {
        let (c, s, ids) = Cluster::with_presigs(2).await;
        // Both presignatures stored again as one unconfirmed batch (as a node job stores a
        // batch before every node has said it stored its part).
        let batch = SessionId::random();
        for n in &c.nodes[..2] {
            let records: Vec<_> = ids.iter().map(|id| (*id, n.store().get_presig(id).unwrap().unwrap())).collect();
            n.store().put_presigs(&records, Some(&batch.0)).unwrap();
            assert_eq!(n.store().unconfirmed_ids().unwrap().len(), 2);
        }
        assert!(c.nodes[0].presigs_for(&s).unwrap().is_empty(), "unconfirmed ones are not in the pool");
        assert_eq!(c.nodes[0].choose_presig(&c.intent(ETH, 0), &s, NOW).unwrap(), None);
        // A member signs with one when the proposer names it (its choice shows every node held it).
        let req = c.request(c.intent(ETH, 1), ids[0], &s);
        let r = cluster::sign(&c.transports, &c.nodes, &req, NOW, &honest).await;
        assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
        assert!(!c.nodes[0].store().unconfirmed_ids().unwrap().contains(&ids[0]), "the burn drops the mark");
        // Another batch's confirmation changes nothing; its own makes the rest proposable.
        assert_eq!(c.nodes[0].confirm_presigs(&SessionId::random()).unwrap(), 0);
        assert_eq!(c.nodes[0].confirm_presigs(&batch).unwrap(), 1);
        assert_eq!(c.nodes[0].presigs_for(&s).unwrap(), vec![ids[1]]);
        assert_eq!(c.nodes[0].choose_presig(&c.intent(ETH, 2), &s, NOW).unwrap(), Some(ids[1]));
        // A reshare or refresh drops unconfirmed ones with the rest.
        c.nodes[1].store().replace_share(&c.nodes[1].key_share().unwrap().expose_bytes()).unwrap();
        assert!(c.nodes[1].store().unconfirmed_ids().unwrap().is_empty());
    });
}

#[test]
fn old_epoch_shares_are_refused() {
    runtime().block_on(async {
        let mut c = Cluster::new(memory(3), 1);
        c.dkg().await;
        let old = c.nodes[0].key_share().unwrap();
        let ids = c.presign(1, &[pid(1), pid(2)]).await;
        let r = cluster::key_op(KeyOp::Refresh, &c.transports, &c.nodes, 1, SessionId::random(), NOW, &honest).await;
        cluster::first_ok(r).unwrap();
        assert!(matches!(c.nodes[0].install_share(&old, "refresh", &[], NOW), Err(SignerError::StaleEpoch { .. })));
        // Presignatures of the old epoch are gone.
        let req = c.request(c.intent(ETH, 0), ids[0], &[pid(1), pid(2)]);
        let r = cluster::sign(&c.transports, &c.nodes, &req, NOW, &honest).await;
        assert!(r.iter().all(|x| x.is_err()));
        // A refresh dealer that slips in a non-zero constant is named.
        let f = |p: PartyId| DkgFaults { biased_reveal: p == pid(1), ..Default::default() };
        let r = cluster::key_op(KeyOp::Refresh, &c.transports, &c.nodes, 1, SessionId::random(), NOW, &f).await;
        assert_named(&r, pid(1));
    });
}

#[test]
fn offline_signer_times_out_and_is_audited() {
    runtime().block_on(async {
        let (c, s, ids) = Cluster::with_presigs(1).await;
        let req = c.request(c.intent(ETH, 0), ids[0], &s);
        // P2 never shows up.
        let r = tacit_signer::sign::sign(&c.nodes[0], &*c.transports[0], &req, NOW, SessionId::random()).await;
        let e = r.unwrap_err();
        assert_eq!(e.identified(), Some(pid(2)), "{e}");
        let log = std::fs::read_to_string(c.nodes[0].audit_file().unwrap()).unwrap();
        let last: tacit_signer::audit::AuditEntry = serde_json::from_str(log.lines().last().unwrap()).unwrap();
        assert_eq!(last.record.status, Some(tacit_signer::audit::AuditStatus::Timeout));
        assert_eq!(last.record.signers, vec![1, 2]);
    });
}
