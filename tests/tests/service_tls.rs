//! Mutual TLS on the client ↔ trusted-party link, on loopback: encrypted (CKKS) queries
//! go through end to end, a client whose certificate the CA did not sign is refused, and a
//! relay in the middle without the CA's certificates gets failed handshakes: the client gets
//! an error, never a class, and the relay never sees an image.
//!
//! The CKKS plan uses an insecure small ring degree so the suite stays fast; the TLS and
//! service code is what a deployment runs.

use std::net::TcpListener;
use std::sync::atomic::Ordering;

use heist::attack::adversarial::fgsm::FgsmConfig;
use heist::attack::adversarial::mitm::{ManInTheMiddle, Rewrite};
use heist::model::{Architecture, Model};
use heist::oracle::{predicted_class, Classifier, Image, Oracle, Scores};
use heist::service::relay::{Relay, RelayTls, Transparent};
use heist::service::{
    BatchConfig, CkksCodec, CkksEvaluator, ClientConfig, ClientLink, ComputeServer,
    DevCertificates, NetError, PeerConfig, ServerConfig, TcpClient, TlsClient, TrustedServer,
};
use heist::train::init_params;
use heist_he::nn::{CkksPlan, PlanConfig};
use heist_tests::{mnist_test_images, seeded_rng};

/// Ring degree of the test plan (insecure, for speed).
const N: usize = 1024;

fn model() -> Model {
    let mut rng = seeded_rng("tls-model", 21);
    let arch = Architecture::Mnist;
    Model::new(arch, init_params(arch, &mut rng)).expect("model")
}

fn loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("loopback port")
}

/// A CKKS compute server and a trusted party on loopback whose client link runs mutual
/// TLS with `certs`.
fn service(model: &Model, certs: &DevCertificates) -> (ComputeServer, TrustedServer) {
    let core = model.to_core().expect("core network");
    let plan =
        CkksPlan::new_insecure_for_tests(core.network(), &PlanConfig::default(), N).expect("plan");
    let compute = ComputeServer::start(
        loopback(),
        CkksEvaluator::new(plan.clone()).expect("evaluator"),
        ServerConfig::compute(),
    )
    .expect("compute server");
    let tls = certs
        .server_identity()
        .and_then(|id| id.server())
        .expect("server TLS");
    let trusted = TrustedServer::start_secured(
        loopback(),
        CkksCodec::new(plan, &mut seeded_rng("tls-codec", 22)).expect("codec"),
        &compute.local_addr().to_string(),
        PeerConfig {
            max_payload: ServerConfig::compute().max_payload,
            ..ClientConfig::default().peer
        },
        &BatchConfig::default(),
        ServerConfig::trusted(),
        ClientLink {
            key: None,
            tls: Some(tls),
        },
    )
    .expect("trusted party");
    (compute, trusted)
}

fn client_tls(certs: &DevCertificates) -> TlsClient {
    certs
        .client_identity()
        .and_then(|id| id.client())
        .expect("client TLS")
}

/// Queries `addr` with `images` over TLS as `tls`.
fn query(addr: &str, tls: &TlsClient, images: &[Image]) -> Result<Vec<Scores>, NetError> {
    TcpClient::new(addr, ClientConfig::default())
        .with_tls(tls)
        .expect("an address with a host")
        .query(images)
}

fn classes(scores: &[Scores]) -> Vec<usize> {
    scores.iter().map(predicted_class).collect()
}

#[test]
fn mutual_tls_carries_encrypted_queries_end_to_end() {
    let model = model();
    let certs = DevCertificates::generate(&[]).expect("certificates");
    let (_compute, trusted) = service(&model, &certs);
    let images = mnist_test_images(12);
    let tls = client_tls(&certs);
    for addr in [
        trusted.local_addr().to_string(),
        format!("localhost:{}", trusted.local_addr().port()),
    ] {
        let mut client = TcpClient::new(&addr, ClientConfig::default())
            .with_tls(&tls)
            .expect("an address with a host");
        client.ensure_connected().expect("handshake");
        // Two queries on one connection: the TLS stream carries frame after frame.
        let first = client.query(&images[..5]).expect("answered over TLS");
        let second = client.query(&images[5..]).expect("answered over TLS");
        let got: Vec<usize> = classes(&first)
            .into_iter()
            .chain(classes(&second))
            .collect();
        assert_eq!(got, classes(&model.scores_batch(&images)), "{addr}");
        assert_eq!(client.queries(), images.len() as u64);
    }
    // A plain TCP client is never served: its frames are not a TLS handshake.
    let plain = TcpClient::new(&trusted.local_addr().to_string(), ClientConfig::default())
        .query(&images[..1]);
    assert!(plain.is_err(), "a plain client got {plain:?}");
}

#[test]
fn clients_without_a_certificate_the_ca_signed_are_refused() {
    let model = model();
    let certs = DevCertificates::generate(&[]).expect("certificates");
    let rogue = DevCertificates::generate(&[]).expect("certificates");
    let (_compute, trusted) = service(&model, &certs);
    let addr = trusted.local_addr().to_string();
    let images = mnist_test_images(2);
    // A client certificate from another CA (the client itself trusts the right CA).
    let outsider = heist::service::Identity::from_pem(
        rogue.client_cert.as_bytes(),
        rogue.client_key.as_bytes(),
        certs.ca.as_bytes(),
    )
    .and_then(|id| id.client())
    .expect("client TLS");
    let refused = query(&addr, &outsider, &images);
    assert!(
        matches!(
            refused,
            Err(NetError::Receive(_) | NetError::Send(_) | NetError::Handshake { .. })
        ),
        "{refused:?}"
    );
    // A server certificate offered as a client certificate (right CA, wrong purpose).
    let wrong_purpose = heist::service::Identity::from_pem(
        certs.server_cert.as_bytes(),
        certs.server_key.as_bytes(),
        certs.ca.as_bytes(),
    )
    .and_then(|id| id.client())
    .expect("client TLS");
    assert!(query(&addr, &wrong_purpose, &images).is_err());
    // A client that trusts another CA refuses the trusted party itself.
    let misled = query(&addr, &client_tls(&rogue), &images);
    assert!(
        matches!(misled, Err(NetError::Handshake { .. })),
        "{misled:?}"
    );
    // The service still serves a client with the right certificate afterwards.
    let served = query(&addr, &client_tls(&certs), &images).expect("served");
    assert_eq!(classes(&served), classes(&model.scores_batch(&images)));
}

#[test]
fn a_tampering_relay_gets_handshake_failures_never_a_class() {
    let model = model();
    let certs = DevCertificates::generate(&[]).expect("certificates");
    let rogue = DevCertificates::generate(&[]).expect("certificates");
    let (_compute, trusted) = service(&model, &certs);
    let upstream = trusted.local_addr().to_string();
    let images = mnist_test_images(4);
    let tls = client_tls(&certs);
    let relay = |hook: ManInTheMiddle, relay_tls: RelayTls| {
        Relay::start_secured(
            loopback(),
            upstream.clone(),
            ServerConfig::trusted(),
            ClientConfig::default().peer,
            hook,
            relay_tls,
        )
        .expect("relay")
    };
    let fgsm = || ManInTheMiddle::new(Rewrite::Fgsm(model.clone(), FgsmConfig { eps: 0.3 }), 1024);
    // A relay with certificates of its own CA on both sides.
    let hook = fgsm();
    let rewritten = hook.rewritten();
    let forged = relay(
        hook,
        RelayTls {
            listen: Some(
                rogue
                    .server_identity()
                    .and_then(|id| id.server())
                    .expect("TLS"),
            ),
            upstream: Some(client_tls(&rogue)),
        },
    );
    let through = query(&forged.local_addr().to_string(), &tls, &images);
    assert!(
        matches!(through, Err(NetError::Handshake { .. })),
        "{through:?}"
    );
    // A relay that speaks no TLS, only frames.
    let hook = fgsm();
    let rewritten_plain = hook.rewritten();
    let framer = relay(hook, RelayTls::default());
    let through = query(&framer.local_addr().to_string(), &tls, &images);
    assert!(
        matches!(through, Err(NetError::Handshake { .. })),
        "{through:?}"
    );
    // Neither relay ever held an image to rewrite.
    assert_eq!(rewritten.load(Ordering::Relaxed), 0);
    assert_eq!(rewritten_plain.load(Ordering::Relaxed), 0);
    // The relay's own connection to the trusted party, with its own CA's client
    // certificate, is refused too: it cannot even ask the service for scores.
    let hook = fgsm();
    let counted = hook.rewritten();
    let open_side = relay(
        hook,
        RelayTls {
            listen: None,
            upstream: Some(client_tls(&rogue)),
        },
    );
    let through =
        TcpClient::new(&open_side.local_addr().to_string(), ClientConfig::default()).query(&images);
    assert!(through.is_err(), "{through:?}");
    // It rewrote the images (the client spoke plain TCP to it), but nothing came back.
    assert_eq!(counted.load(Ordering::Relaxed), images.len() as u64);
    // A transparent relay without the CA's certificates fails the same way.
    let transparent = Relay::start(
        loopback(),
        upstream.clone(),
        ServerConfig::trusted(),
        ClientConfig::default().peer,
        Transparent,
    )
    .expect("relay");
    assert!(query(&transparent.local_addr().to_string(), &tls, &images).is_err());
    // Without the relay, the same client is served.
    let direct = query(&upstream, &tls, &images).expect("served");
    assert_eq!(classes(&direct), classes(&model.scores_batch(&images)));
}
