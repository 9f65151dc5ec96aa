#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use tacit_node::api::JobSpec;
use tacit_node::config::Timeouts;
use tacit_node::init::InitOptions;
use tacit_signer::curve::keccak;
use tacit_signer::eth::{Intent, IntentKind};
use tacit_signer::k256::ecdsa::SigningKey;
use tacit_signer::policy::{approve, Policy};

pub const DEST: [u8; 20] = [0xdd; 20];

fn free(port: u16) -> bool {
    let a = (Ipv4Addr::LOCALHOST, port);
    UdpSocket::bind(a).is_ok() && TcpListener::bind(a).is_ok()
}

/// A base port whose mesh, API and metrics ports are free for `n` parties.
pub fn base_port(n: usize) -> u16 {
    loop {
        let base: u16 = 20_000 + (rand::random::<u16>() % 30_000);
        if (0..n as u16).all(|i| [0u16, 100, 200].iter().all(|off| free(base + off + i))) {
            return base;
        }
    }
}

pub fn setup(dir: &Path, n: usize, t: usize, pool: usize, recv_ms: u64) -> (Vec<PathBuf>, PathBuf) {
    let timeouts = Timeouts { recv_ms, connect_ms: 5_000, job_ms: 20_000, proposal_wait_ms: 2_000, shutdown_ms: 5_000 };
    tacit_node::init::init(
        dir,
        &InitOptions {
            parties: n,
            threshold: t,
            base_port: base_port(n),
            hosts: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            pool,
            timeouts,
        },
    )
    .unwrap()
}

pub fn approver() -> SigningKey {
    SigningKey::from_slice(&[7u8; 32]).unwrap()
}

pub fn policy() -> Policy {
    Policy {
        approvers: vec![tacit_signer::curve::address_of_key(approver().verifying_key())],
        threshold: 1,
        chains: vec![1],
        destinations: vec![DEST],
        daily_limit: u128::MAX / 4,
        change_threshold: 1,
        change_delay_s: 3600,
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A signing job for `key_id` (hex) with one approval.
pub fn sign_spec(key_id_hex: &str, nonce: u64, signers: Vec<u16>) -> JobSpec {
    let mut key_id = [0u8; 16];
    hex::decode_to_slice(key_id_hex, &mut key_id).unwrap();
    let intent = Intent {
        key_id,
        kind: IntentKind::Transaction,
        chain_id: 1,
        to: DEST,
        value: 1000,
        data_hash: keccak(&[]),
        data: Vec::new(),
        nonce,
        max_priority_fee_per_gas: 1_000_000_000,
        max_fee_per_gas: 30_000_000_000,
        gas_limit: 21_000,
        expiry: now() + 600,
        request_id: rand::random(),
    };
    let approvals = vec![approve(&approver(), &intent.digest()).unwrap()];
    JobSpec::SignerSign { intent, approvals, signers, presig_id: None }
}
