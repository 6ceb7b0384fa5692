//! The service over TCP on 127.0.0.1 (ephemeral ports): many concurrent clients amid a
//! stream of garbage, connection limits, timeouts, reconnection and setup failures.
//! Every loop is bounded and every read has a timeout, so the suite stops by itself.

mod service_support;

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use heist::oracle::{Image, Oracle, Scores, CLASSES};
use heist::service::frame::{Frame, Kind, ReadError, MAGIC, VERSION};
use heist::service::message::{self, ErrorCode, ErrorReply, Setup};
use heist::service::{
    BatchConfig, ClientConfig, ComputeServer, NetError, PeerConfig, PlaintextCodec,
    PlaintextEvaluator, Scheme, ServerConfig, SetupError, TcpClient, TrustedServer,
};
use heist_tests::seeded_rng;
use rand_core::RngCore;
use service_support::{linear_classifier, random_image, Recording};

const CLIENTS: u64 = 32;
const QUERIES: u64 = 64;

fn server_config(max_connections: usize, idle: Duration, frame: Duration) -> ServerConfig {
    ServerConfig {
        max_connections,
        max_payload: 1 << 20,
        idle_timeout: idle,
        frame_timeout: frame,
        write_timeout: Duration::from_secs(10),
        setup_timeout: idle.max(frame),
    }
}

fn peer_config() -> PeerConfig {
    PeerConfig {
        connect_timeout: Duration::from_secs(5),
        reply_timeout: Duration::from_secs(30),
        frame_timeout: Duration::from_secs(10),
        write_timeout: Duration::from_secs(10),
        max_payload: 1 << 20,
    }
}

fn client_config() -> ClientConfig {
    ClientConfig {
        peer: peer_config(),
        images_per_frame: 256,
    }
}

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("an ephemeral port on loopback")
}

type Reference = Box<dyn Fn(&Image) -> Scores + Send + Sync>;

/// A compute server and a trusted party in front of it, with the plaintext pair.
fn start(
    seed: u64,
    slots: usize,
    trusted: ServerConfig,
    compute: ServerConfig,
) -> (ComputeServer, TrustedServer, Reference) {
    let mut rng = seeded_rng("service_tcp::model", seed);
    let classifier = linear_classifier(&mut rng);
    let compute = ComputeServer::start(
        listener(),
        PlaintextEvaluator::new(classifier.clone()),
        compute,
    )
    .expect("compute server starts");
    let batch = BatchConfig {
        window: Duration::from_millis(5),
        queue: 64,
    };
    let trusted = TrustedServer::start(
        listener(),
        PlaintextCodec::new(slots).expect("valid slots"),
        &compute.local_addr().to_string(),
        peer_config(),
        &batch,
        trusted,
    )
    .expect("trusted party starts");
    (compute, trusted, Box::new(classifier))
}

fn bits(scores: &[Scores]) -> Vec<[u32; CLASSES]> {
    scores.iter().map(|s| s.map(f32::to_bits)).collect()
}

/// What a raw connection saw after sending something.
#[derive(Debug, PartialEq)]
enum Seen {
    /// An `Error` frame with this code.
    Refused(ErrorCode),
    /// A frame of another kind.
    Answered(Kind),
    /// The server closed the connection without a reply.
    Closed,
    /// The connection was reset (the server closed it with our bytes unread).
    Reset,
}

fn raw(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream
}

fn next_seen(stream: &mut TcpStream) -> Seen {
    match Frame::read_from(stream, 1 << 20) {
        Ok(frame) if frame.kind == Kind::Error => Seen::Refused(
            ErrorReply::decode(&frame.payload)
                .expect("a valid error payload")
                .code,
        ),
        Ok(frame) => Seen::Answered(frame.kind),
        Err(ReadError::Closed) => Seen::Closed,
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => Seen::Reset,
        Err(other) => panic!("the server neither answered nor closed: {other}"),
    }
}

fn header(kind: u8, version: u16, magic: [u8; 4], len: u32) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&[kind, 0]);
    out.extend_from_slice(&9u64.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out
}

fn frame_bytes(kind: Kind, payload: &[u8]) -> Vec<u8> {
    Frame {
        kind,
        request_id: 42,
        payload: payload.to_vec(),
    }
    .encode()
    .expect("small payload")
}

/// Sends `bytes` on a new connection; returns what came back, then what came after it.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> (Seen, Seen) {
    let mut stream = raw(addr);
    stream.write_all(bytes).expect("sent");
    let first = next_seen(&mut stream);
    let second = next_seen(&mut stream);
    (first, second)
}

/// One round of garbage at both servers; every case checks what it must get back.
fn garbage_round(
    trusted: SocketAddr,
    compute: SocketAddr,
    rng: &mut impl RngCore,
    reference: &Reference,
) {
    let refused_and_closed = |code| (Seen::Refused(code), Seen::Closed);
    // Random bytes, exactly one header long, not starting with the magic.
    let mut random = [0u8; 20];
    rng.fill_bytes(&mut random);
    random[0] = b'h';
    assert_eq!(
        exchange(trusted, &random),
        refused_and_closed(ErrorCode::BadFrame)
    );
    assert_eq!(
        exchange(compute, &random),
        refused_and_closed(ErrorCode::BadFrame)
    );
    // Wrong magic, wrong version, unknown kind, oversized length prefix.
    for bytes in [
        header(1, VERSION, *b"HEIZ", 0),
        header(1, VERSION + 1, MAGIC, 0),
        header(200, VERSION, MAGIC, 0),
        header(1, VERSION, MAGIC, u32::MAX),
        header(1, VERSION, MAGIC, (1 << 20) + 1),
    ] {
        assert_eq!(
            exchange(trusted, &bytes),
            refused_and_closed(ErrorCode::BadFrame)
        );
    }
    assert_eq!(
        exchange(compute, &header(5, VERSION, MAGIC, u32::MAX)),
        refused_and_closed(ErrorCode::BadFrame)
    );
    // A long run of random bytes: refused or reset, never served, never hung.
    let mut long = vec![0u8; 3000];
    rng.fill_bytes(&mut long);
    long[0] = b'h';
    let (first, _) = exchange(trusted, &long);
    assert!(
        matches!(first, Seen::Refused(ErrorCode::BadFrame) | Seen::Reset),
        "{first:?}"
    );
    // A truncated frame, then the client hangs up: closed without a reply.
    let image = random_image(rng);
    let query = frame_bytes(
        Kind::Query,
        &message::encode_images(std::slice::from_ref(&image)).expect("one"),
    );
    let mut stream = raw(trusted);
    stream.write_all(&query[..query.len() / 2]).expect("sent");
    stream.shutdown(Shutdown::Write).expect("half-closed");
    assert_eq!(next_seen(&mut stream), Seen::Closed);
    // A truncated frame left hanging: closed after the frame timeout.
    let mut stream = raw(trusted);
    stream.write_all(&query[..30]).expect("sent");
    assert_eq!(next_seen(&mut stream), Seen::Closed);
    // A bad payload (pixel 2.0) is refused, and the connection goes on serving.
    let mut bad = message::encode_images(std::slice::from_ref(&image)).expect("one");
    bad[4..8].copy_from_slice(&2.0f32.to_le_bytes());
    let mut stream = raw(trusted);
    stream
        .write_all(&frame_bytes(Kind::Query, &bad))
        .expect("sent");
    assert_eq!(next_seen(&mut stream), Seen::Refused(ErrorCode::BadPayload));
    stream
        .write_all(&frame_bytes(Kind::Evaluate, &[1, 2, 3]))
        .expect("sent");
    assert_eq!(
        next_seen(&mut stream),
        Seen::Refused(ErrorCode::UnexpectedKind)
    );
    stream.write_all(&query).expect("sent");
    let answer = Frame::read_from(&mut stream, 1 << 20).expect("scores");
    assert_eq!((answer.kind, answer.request_id), (Kind::Scores, 42));
    let scores = message::decode_scores(&answer.payload, 1).expect("one score vector");
    assert_eq!(bits(&scores), bits(&[reference(&image)]));
    // A client that sends a query and disconnects before the answer.
    let mut stream = raw(trusted);
    stream.write_all(&query).expect("sent");
    drop(stream);
    // The compute server: a first frame that is not Setup, a Setup for another scheme, a
    // bad batch after a good Setup (refused, connection kept).
    let setup = |scheme, context: &[u8]| {
        frame_bytes(
            Kind::Setup,
            &Setup {
                scheme,
                context: context.to_vec(),
            }
            .encode(),
        )
    };
    assert_eq!(
        exchange(compute, &frame_bytes(Kind::Evaluate, &[0; 8])),
        refused_and_closed(ErrorCode::UnexpectedKind)
    );
    assert_eq!(
        exchange(compute, &setup(Scheme::Ckks, b"keys")),
        refused_and_closed(ErrorCode::SchemeMismatch)
    );
    assert_eq!(
        exchange(compute, &setup(Scheme::Plain, &[1, 2])),
        refused_and_closed(ErrorCode::BadPayload)
    );
    let mut stream = raw(compute);
    stream
        .write_all(&setup(Scheme::Plain, &16u32.to_le_bytes()))
        .expect("sent");
    assert_eq!(next_seen(&mut stream), Seen::Answered(Kind::SetupOk));
    stream
        .write_all(&frame_bytes(Kind::Evaluate, &[7; 13]))
        .expect("sent");
    assert_eq!(next_seen(&mut stream), Seen::Refused(ErrorCode::BadPayload));
}

#[test]
fn concurrent_clients_amid_garbage_lose_nothing() {
    let (compute, trusted, reference) = start(
        10,
        16,
        server_config(48, Duration::from_secs(30), Duration::from_millis(300)),
        server_config(8, Duration::from_secs(30), Duration::from_millis(300)),
    );
    let trusted_addr = trusted.local_addr();
    let compute_addr = compute.local_addr();
    let reference = std::sync::Arc::new(reference);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let reference = std::sync::Arc::clone(&reference);
            thread::spawn(move || {
                let mut rng = seeded_rng("service_tcp::client", 1000 + client);
                let mut oracle = TcpClient::new(&trusted_addr.to_string(), client_config());
                let (mut answered, mut mismatched) = (0u64, 0u64);
                for _ in 0..QUERIES {
                    let count = 1 + (rng.next_u32() % 3) as usize;
                    let images: Vec<Image> = (0..count).map(|_| random_image(&mut rng)).collect();
                    let scores = oracle.query(&images).expect("every query is answered");
                    let expected: Vec<Scores> = images.iter().map(|i| reference(i)).collect();
                    answered += 1;
                    if bits(&scores) != bits(&expected) {
                        mismatched += 1;
                    }
                }
                (answered, mismatched, oracle.queries())
            })
        })
        .collect();
    let garbage = {
        let reference = std::sync::Arc::clone(&reference);
        thread::spawn(move || {
            let mut rng = seeded_rng("service_tcp::garbage", 11);
            for _ in 0..4 {
                garbage_round(trusted_addr, compute_addr, &mut rng, &reference);
            }
        })
    };
    let mut totals = (0, 0);
    for client in clients {
        let (answered, mismatched, queries) = client.join().expect("client thread");
        assert!(queries >= QUERIES);
        totals.0 += answered;
        totals.1 += mismatched;
    }
    garbage.join().expect("garbage thread");
    assert_eq!(totals, (CLIENTS * QUERIES, 0), "(answered, mismatched)");
    // Still serving after all that.
    let mut rng = seeded_rng("service_tcp::after", 12);
    let image = random_image(&mut rng);
    let mut oracle =
        TcpClient::connect(&trusted_addr.to_string(), client_config()).expect("connects");
    let scores = oracle
        .query(std::slice::from_ref(&image))
        .expect("answered");
    assert_eq!(bits(&scores), bits(&[reference(&image)]));
    drop(trusted);
    drop(compute);
}

#[test]
fn the_connection_limit_is_enforced_and_freed() {
    let (_compute, trusted, _) = start(
        20,
        4,
        server_config(2, Duration::from_secs(30), Duration::from_secs(5)),
        server_config(4, Duration::from_secs(30), Duration::from_secs(5)),
    );
    let addr = trusted.local_addr();
    let first = raw(addr);
    let _second = raw(addr);
    let mut third = raw(addr);
    assert_eq!(next_seen(&mut third), Seen::Refused(ErrorCode::Overloaded));
    assert_eq!(next_seen(&mut third), Seen::Closed);
    drop(first);
    let mut rng = seeded_rng("service_tcp::limit", 21);
    let image = random_image(&mut rng);
    // The freed slot is taken back once the server has seen the hang-up (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(10);
    let answered = loop {
        let mut client = TcpClient::new(&addr.to_string(), client_config());
        match client.query(std::slice::from_ref(&image)) {
            Ok(scores) => break scores,
            // Refused: with the Overloaded reply, or (when the refusal raced the request and
            // the server reset the connection) without it.
            Err(NetError::Remote(reply))
                if reply.code == ErrorCode::Overloaded && Instant::now() < deadline =>
            {
                thread::sleep(Duration::from_millis(20));
            }
            Err(NetError::Send(_) | NetError::Receive(ReadError::Io(_) | ReadError::Closed))
                if Instant::now() < deadline =>
            {
                thread::sleep(Duration::from_millis(20));
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    };
    assert_eq!(answered.len(), 1);
}

#[test]
fn idle_and_trickling_connections_are_closed() {
    let (_compute, trusted, _) = start(
        30,
        4,
        server_config(8, Duration::from_millis(200), Duration::from_millis(200)),
        server_config(4, Duration::from_secs(30), Duration::from_secs(5)),
    );
    let addr = trusted.local_addr();
    let mut idle = raw(addr);
    assert_eq!(next_seen(&mut idle), Seen::Closed);
    // One byte every 100 ms: each read is within the idle timeout, the frame is not.
    let mut trickle = raw(addr);
    let bytes = header(1, VERSION, MAGIC, 8);
    let mut closed = false;
    for byte in bytes.iter().chain(&[0u8; 8]) {
        if trickle.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert!(closed || next_seen(&mut trickle) == Seen::Closed);
}

#[test]
fn dropped_connections_are_reopened_for_the_next_query() {
    let (_compute, trusted, reference) = start(
        40,
        4,
        server_config(8, Duration::from_millis(200), Duration::from_secs(5)),
        server_config(4, Duration::from_millis(200), Duration::from_secs(5)),
    );
    let mut rng = seeded_rng("service_tcp::reconnect", 41);
    let mut client =
        TcpClient::connect(&trusted.local_addr().to_string(), client_config()).expect("connects");
    for _ in 0..3 {
        let image = random_image(&mut rng);
        let scores = client
            .query(std::slice::from_ref(&image))
            .expect("answered");
        assert_eq!(bits(&scores), bits(&[reference(&image)]));
        // Both servers close idle connections after 200 ms: the client's and the link's.
        thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn setup_failures_are_reported_before_serving() {
    // Nothing listens on a port we just released.
    let free = listener().local_addr().expect("address");
    let codec = PlaintextCodec::new(4).expect("valid slots");
    match TrustedServer::start(
        listener(),
        codec,
        &free.to_string(),
        peer_config(),
        &BatchConfig::default(),
        server_config(4, Duration::from_secs(5), Duration::from_secs(5)),
    ) {
        Err(SetupError::Net(NetError::Connect { addr, .. })) => assert_eq!(addr, free.to_string()),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("started without a compute server"),
    }
    let (compute, _trusted, _) = start(
        50,
        4,
        server_config(4, Duration::from_secs(5), Duration::from_secs(5)),
        server_config(4, Duration::from_secs(5), Duration::from_secs(5)),
    );
    let (mut codec, _) = Recording::new(4);
    codec.scheme = Scheme::Bfv;
    match TrustedServer::start(
        listener(),
        codec,
        &compute.local_addr().to_string(),
        peer_config(),
        &BatchConfig::default(),
        server_config(4, Duration::from_secs(5), Duration::from_secs(5)),
    ) {
        Err(SetupError::Net(NetError::Remote(reply))) => {
            assert_eq!(reply.code, ErrorCode::SchemeMismatch);
            assert_eq!(
                reply.message,
                "this compute server runs plain, the trusted party bfv"
            );
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("started with mismatched schemes"),
    }
}

#[test]
fn a_lost_compute_server_fails_queries_without_hanging() {
    let (compute, trusted, reference) = start(
        60,
        4,
        server_config(4, Duration::from_secs(5), Duration::from_secs(5)),
        server_config(4, Duration::from_secs(5), Duration::from_secs(5)),
    );
    let mut rng = seeded_rng("service_tcp::lost", 61);
    let mut client =
        TcpClient::connect(&trusted.local_addr().to_string(), client_config()).expect("connects");
    let image = random_image(&mut rng);
    assert_eq!(
        bits(
            &client
                .query(std::slice::from_ref(&image))
                .expect("answered")
        ),
        bits(&[reference(&image)])
    );
    drop(compute);
    match client.query(std::slice::from_ref(&image)) {
        Err(NetError::Remote(reply)) => assert_eq!(reply.code, ErrorCode::Unavailable),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
