//! A UDP relay that delays (and optionally drops) datagrams in both directions: a stand-in for
//! `tc netem` where the kernel lacks it (`tacit-node relay`, used by `scripts/netns.sh`). One
//! relay serves one dialling peer: datagrams from the last source seen on `listen` go to `to`
//! after `delay`, and the answers come back to that source after `delay` again (so the round
//! trip grows by twice the delay). Order is kept (a constant delay through a FIFO).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;

use crate::error::{NodeError, Result};

/// Datagrams queued per direction at most (further ones are dropped, like a full queue).
const QUEUE: usize = 16_384;

fn io(e: std::io::Error) -> NodeError {
    NodeError::Other(format!("relay: {e}"))
}

async fn pump(rx: &mut mpsc::Receiver<(Instant, Vec<u8>)>, out: &UdpSocket, dest: &Mutex<Option<SocketAddr>>) {
    while let Some((at, bytes)) = rx.recv().await {
        tokio::time::sleep_until(at).await;
        let to = *dest.lock().await;
        if let Some(to) = to {
            let _ = out.send_to(&bytes, to).await;
        }
    }
}

/// Runs the relay until the process ends.
pub async fn run(listen: SocketAddr, to: SocketAddr, delay: Duration, loss_percent: f64) -> Result<()> {
    let front = Arc::new(UdpSocket::bind(listen).await.map_err(io)?);
    let local: SocketAddr =
        if to.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let back = Arc::new(UdpSocket::bind(local).await.map_err(io)?);
    let client: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
    let server = Arc::new(Mutex::new(Some(to)));
    let (up_tx, mut up_rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    let (down_tx, mut down_rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    let keep = move || loss_percent <= 0.0 || rand::random::<f64>() * 100.0 >= loss_percent;
    {
        let back = back.clone();
        let server = server.clone();
        tokio::spawn(async move { pump(&mut up_rx, &back, &server).await });
    }
    {
        let front = front.clone();
        let client = client.clone();
        tokio::spawn(async move { pump(&mut down_rx, &front, &client).await });
    }
    {
        let back = back.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            while let Ok((k, from)) = back.recv_from(&mut buf).await {
                if from != to || !keep() {
                    continue;
                }
                let _ = down_tx.try_send((Instant::now() + delay, buf.get(..k).unwrap_or_default().to_vec()));
            }
        });
    }
    let mut buf = vec![0u8; 65_536];
    loop {
        let (k, from) = front.recv_from(&mut buf).await.map_err(io)?;
        *client.lock().await = Some(from);
        if keep() {
            let _ = up_tx.try_send((Instant::now() + delay, buf.get(..k).unwrap_or_default().to_vec()));
        }
    }
}
