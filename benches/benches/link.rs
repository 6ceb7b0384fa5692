//! The cost of protecting the client ↔ trusted-party link: a `Query` of 1, 16 and 256 images
//! (the client's default frame) and its `Scores` reply, encoded and decoded
//! * plain;
//! * authenticated with HMAC-SHA256 (`heist::service::auth`: sealing and opening both);
//! * through mutual TLS 1.3 (`heist::service::tls`, rustls with ring): the client encrypts
//!   the request into records, the trusted party decrypts it, and the same for the reply, on
//!   an established connection driven in memory (no socket, so only the cryptography and
//!   record handling are timed);
//!
//! and the cost of one mutual TLS handshake (paid once per connection, not per request).
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use heist::oracle::{Image, IMAGE_PIXELS};
use heist::service::auth::{
    open_query, open_scores, seal_query, seal_scores, LinkKey, ReplayGuard,
};
use heist::service::message;
use heist::service::DevCertificates;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

/// Sends `data` from `from` to `to` as TLS records through an in-memory wire; returns the
/// plaintext `to` decrypted.
fn send(from: &mut Connection, to: &mut Connection, data: &[u8], wire: &mut Vec<u8>) -> Vec<u8> {
    from.writer().write_all(data).expect("buffered");
    wire.clear();
    while from.wants_write() {
        from.write_tls(wire).expect("into memory");
    }
    let mut got = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 1 << 16];
    let mut rest = wire.as_slice();
    while !rest.is_empty() {
        to.read_tls(&mut rest).expect("from memory");
        to.process_new_packets().expect("authentic records");
        loop {
            match to.reader().read(&mut buf) {
                Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("reading plaintext: {e}"),
            }
        }
    }
    got
}

/// Moves every pending handshake record from `from` to `to`.
fn flight(from: &mut Connection, to: &mut Connection, wire: &mut Vec<u8>) {
    wire.clear();
    while from.wants_write() {
        from.write_tls(wire).expect("into memory");
    }
    let mut rest = wire.as_slice();
    while !rest.is_empty() {
        to.read_tls(&mut rest).expect("from memory");
        to.process_new_packets().expect("handshake");
    }
}

/// A client and a server connection that have completed their mutual TLS handshake.
fn handshake(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> (Connection, Connection) {
    let name = ServerName::try_from("localhost").expect("a DNS name");
    let mut c =
        Connection::Client(ClientConnection::new(Arc::clone(client), name).expect("client"));
    let mut s = Connection::Server(ServerConnection::new(Arc::clone(server)).expect("server"));
    for conn in [&mut c, &mut s] {
        conn.set_buffer_limit(None);
    }
    let mut wire = Vec::new();
    while c.is_handshaking() || s.is_handshaking() || c.wants_write() || s.wants_write() {
        flight(&mut c, &mut s, &mut wire);
        flight(&mut s, &mut c, &mut wire);
    }
    (c, s)
}

fn link(c: &mut Criterion) {
    let key = LinkKey::new(&[0x5a; 32]).expect("a 32-byte key");
    let certs = DevCertificates::generate(&[]).expect("test certificates");
    let server_tls = certs
        .server_identity()
        .and_then(|id| id.server())
        .expect("server TLS")
        .rustls_config();
    let client_tls = certs
        .client_identity()
        .and_then(|id| id.client())
        .expect("client TLS")
        .rustls_config();
    let mut group = c.benchmark_group("client link");
    group.bench_function("tls handshake", |b| {
        b.iter(|| handshake(&client_tls, &server_tls));
    });
    for n in [1usize, 16, 256] {
        let images: Vec<Image> = (0..n)
            .map(|i| {
                let pixels: Vec<f32> = (0..IMAGE_PIXELS)
                    .map(|k| ((i * 31 + k * 7) % 256) as f32 / 255.0)
                    .collect();
                Image::new(&pixels).expect("pixels in [0, 1]")
            })
            .collect();
        let scores = vec![[0.25f32; 10]; n];
        let query = message::encode_images(&images).expect("encodes");
        group.throughput(Throughput::Bytes(query.len() as u64));
        group.bench_with_input(BenchmarkId::new("plain request", n), &n, |b, _| {
            b.iter(|| {
                let q = message::encode_images(&images).expect("encodes");
                let back = message::decode_images(&q, n).expect("decodes");
                let r = message::encode_scores(&scores).expect("encodes");
                (back, message::decode_scores(&r, n).expect("decodes"))
            });
        });
        let mut counter = 0u128;
        let guard = ReplayGuard::default();
        group.bench_with_input(BenchmarkId::new("authenticated request", n), &n, |b, _| {
            b.iter(|| {
                counter += 1;
                let nonce = counter.to_le_bytes();
                let q = message::encode_images(&images).expect("encodes");
                let sealed = seal_query(&key, &nonce, &q);
                let (nonce, inner) = open_query(&key, &sealed, &guard).expect("authentic");
                let back = message::decode_images(inner, n).expect("decodes");
                let r = seal_scores(
                    &key,
                    &nonce,
                    &message::encode_scores(&scores).expect("encodes"),
                );
                let inner = open_scores(&key, &nonce, &r).expect("authentic");
                (back, message::decode_scores(inner, n).expect("decodes"))
            });
        });
        let (mut client, mut server) = handshake(&client_tls, &server_tls);
        let mut wire = Vec::new();
        group.bench_with_input(BenchmarkId::new("tls request", n), &n, |b, _| {
            b.iter(|| {
                let q = message::encode_images(&images).expect("encodes");
                let at_server = send(&mut client, &mut server, &q, &mut wire);
                let back = message::decode_images(&at_server, n).expect("decodes");
                let r = message::encode_scores(&scores).expect("encodes");
                let at_client = send(&mut server, &mut client, &r, &mut wire);
                (
                    back,
                    message::decode_scores(&at_client, n).expect("decodes"),
                )
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(20);
    targets = link
}
criterion_main!(benches);
