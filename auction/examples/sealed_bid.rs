//! An operator and three bidders with the SDK: create a Vickrey auction (three nodes on
//! loopback QUIC, an embedded EVM), bid, close, run the nodes, settle on chain.
//!
//! `cargo run --release -p tacit-auction --example sealed_bid`

use tacit_auction::bidder::{BidSecret, BidderKey};
use tacit_auction::local::{LocalAuction, LocalAuctionConfig};
use tacit_auction::AuctionError;

fn main() -> Result<(), AuctionError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| AuctionError::Params(e.to_string()))?;
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("tacit-sealed-bid-{}", std::process::id()));
        // Operator: setup, contracts, nodes.
        let auction = LocalAuction::create(LocalAuctionConfig::new("vickrey".parse()?, 4, &dir)).await?;
        // Bidders: commit on chain, deal shares to the nodes.
        let mut rng = rand::thread_rng();
        for amount in [120, 300, 250] {
            let key = BidderKey::random(&mut rng);
            let index = auction.bid(&key, &BidSecret::new(amount, &mut rng)).await?;
            println!("bidder {index} ({}) is in", key.address());
        }
        // Operator: close, run the nodes, settle.
        auction.close()?;
        let run = auction.run().await?;
        let receipt = auction.settle(&run)?;
        println!(
            "winner {:?} pays {} (MPC {:.2} s, proof {:.2} s, settlement {} gas)",
            run.outcome.winners, run.outcome.price, run.mpc_s, run.prove_s, receipt.execution_gas
        );
        auction.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
}
