//! A flood of large frames before setup: the compute server must not buffer them.
//!
//! In a test binary of its own, because it reads the process's peak resident memory
//! (`VmHWM`), which tests running beside it would disturb.

#[expect(dead_code, reason = "this suite needs no recording codec")]
mod service_support;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use heist::oracle::Oracle;
use heist::service::frame::{Header, Kind};
use heist::service::{
    BatchConfig, ClientConfig, ComputeServer, PeerConfig, PlaintextCodec, PlaintextEvaluator,
    ServerConfig, TcpClient, TrustedServer,
};
use heist_tests::seeded_rng;
use service_support::{linear_classifier, random_image};

/// Connections in the flood: the compute server's whole connection limit.
const FLOODERS: usize = 16;
/// The payload length each flooder announces.
const ANNOUNCED: usize = 900 << 20;
/// The payload bytes each flooder sends before giving up.
const SENT: usize = 48 << 20;
/// How much the peak resident memory may grow.
const ALLOWED_GROWTH: u64 = 64 << 20;

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("an ephemeral port on loopback")
}

fn peer_config() -> PeerConfig {
    PeerConfig {
        connect_timeout: Duration::from_secs(5),
        reply_timeout: Duration::from_secs(60),
        frame_timeout: Duration::from_secs(30),
        write_timeout: Duration::from_secs(30),
        max_payload: 1 << 20,
    }
}

/// The process's peak resident memory in bytes (`VmHWM` of `/proc/self/status`).
fn peak_resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmHWM line in kB");
    kib << 10
}

/// Announces `ANNOUNCED` bytes of `kind` before any setup, then sends up to `SENT` of
/// them; the server may close the connection at any point.
fn flood(addr: SocketAddr, kind: Kind, request_id: u64) {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return;
    };
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let header = Header::new(kind, request_id, ANNOUNCED).expect("fits a u32");
    if stream.write_all(&header.encode()).is_err() {
        return;
    }
    let chunk = vec![0x5au8; 1 << 20];
    for _ in 0..SENT / chunk.len() {
        if stream.write_all(&chunk).is_err() {
            return;
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_pre_setup_flood_is_not_buffered_and_the_next_client_is_served() {
    let mut rng = seeded_rng("service_flood::model", 0);
    let classifier = linear_classifier(&mut rng);
    let compute = ComputeServer::start(
        listener(),
        PlaintextEvaluator::new(classifier.clone()),
        ServerConfig::compute(),
    )
    .expect("compute server starts");
    let compute_addr = compute.local_addr();
    let batch = BatchConfig {
        window: Duration::from_millis(5),
        queue: 64,
    };
    let trusted = TrustedServer::start(
        listener(),
        PlaintextCodec::new(16).expect("valid slots"),
        &compute_addr.to_string(),
        peer_config(),
        &batch,
        ServerConfig::trusted(),
    )
    .expect("trusted party starts");
    let client_config = ClientConfig {
        peer: peer_config(),
        images_per_frame: 16,
    };
    let images: Vec<_> = (0..8).map(|_| random_image(&mut rng)).collect();
    let expected: Vec<_> = images.iter().map(&classifier).collect();

    let before = peak_resident();
    let flooders: Vec<_> = (0..FLOODERS)
        .map(|i| {
            // Half announce a setup far beyond the evaluation context, half a batch
            // before any setup.
            let kind = if i % 2 == 0 {
                Kind::Setup
            } else {
                Kind::Evaluate
            };
            thread::spawn(move || flood(compute_addr, kind, i as u64))
        })
        .collect();
    for flooder in flooders {
        flooder.join().expect("a flooder thread");
    }
    let growth = peak_resident().saturating_sub(before);
    assert!(
        growth <= ALLOWED_GROWTH,
        "{FLOODERS} pre-setup connections announcing {ANNOUNCED} bytes and sending {SENT} each \
         raised the peak resident memory by {growth} bytes (allowed {ALLOWED_GROWTH})"
    );

    let mut client =
        TcpClient::connect(&trusted.local_addr().to_string(), client_config).expect("connects");
    let scores = client.query(&images).expect("the next client is served");
    assert_eq!(scores, expected);
}
