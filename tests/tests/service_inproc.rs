//! The service in one process: batching (full batches, the window, queries spanning
//! batches), answers routed to the right client, failure isolation, the plaintext codec
//! pair's contracts, and the oracles.

mod service_support;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use heist::oracle::{
    predicted_class, Image, ImageError, Oracle, PlainOracle, Scores, CLASSES, IMAGE_PIXELS,
};
use heist::service::message::{self, PayloadError};
use heist::service::{
    BatchCodec, BatchConfig, BatchEvaluator, BatchFailure, CodecError, InProcessService, LinkError,
    PlaintextCodec, PlaintextEvaluator, PlaintextSession, Scheme, ServiceError, SetupError,
};
use heist_tests::seeded_rng;
use rand_core::RngCore;
use service_support::{linear_classifier, random_image, Recording};

/// A plaintext evaluator that fails every batch holding an image whose first pixel is 1.
struct Poisoned<E>(E);

#[derive(Debug)]
struct PoisonedBatch;

impl std::fmt::Display for PoisonedBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("poisoned batch")
    }
}

impl std::error::Error for PoisonedBatch {}

impl<E: BatchEvaluator<Session = PlaintextSession>> BatchEvaluator for Poisoned<E> {
    type Session = PlaintextSession;
    fn scheme(&self) -> Scheme {
        self.0.scheme()
    }
    fn open_session(&self, context: &[u8]) -> Result<PlaintextSession, CodecError> {
        self.0.open_session(context)
    }
    fn max_context_len(&self) -> usize {
        self.0.max_context_len()
    }
    fn max_batch_len(&self, session: &PlaintextSession) -> usize {
        self.0.max_batch_len(session)
    }
    fn evaluate(&self, session: &PlaintextSession, payload: &[u8]) -> Result<Vec<u8>, CodecError> {
        let images = message::decode_images(payload, usize::MAX)?;
        if images.iter().any(|image| image.pixels()[0] == 1.0) {
            return Err(CodecError::Backend {
                scheme: Scheme::Plain,
                error: Box::new(PoisonedBatch),
            });
        }
        self.0.evaluate(session, payload)
    }
}

fn poison(image: &Image) -> Image {
    let mut pixels = *image.pixels();
    pixels[0] = 1.0;
    Image::new(&pixels).expect("in range")
}

fn config(window: Duration) -> BatchConfig {
    BatchConfig {
        window,
        ..BatchConfig::default()
    }
}

fn bits(scores: &[Scores]) -> Vec<[u32; CLASSES]> {
    scores.iter().map(|s| s.map(f32::to_bits)).collect()
}

#[test]
fn concurrent_clients_each_get_their_own_scores() {
    let mut rng = seeded_rng("service_inproc::concurrent", 2);
    let classifier = linear_classifier(&mut rng);
    let (codec, batches) = Recording::new(8);
    let service = InProcessService::start(
        codec,
        PlaintextEvaluator::new(classifier.clone()),
        &config(Duration::from_millis(2)),
    )
    .expect("starts");
    let workers: Vec<_> = (0..8u64)
        .map(|worker| {
            let mut client = service.client();
            let classifier = classifier.clone();
            let mut rng = seeded_rng("service_inproc::concurrent::worker", 100 + worker);
            thread::spawn(move || {
                let mut sent = 0;
                for query in 0..20 {
                    let count = 1 + (rng.next_u32() % 5) as usize;
                    let images: Vec<Image> = (0..count).map(|_| random_image(&mut rng)).collect();
                    let answer = client.query(&images).expect("answered");
                    let expected: Vec<Scores> = images.iter().map(&classifier).collect();
                    assert_eq!(
                        bits(&answer),
                        bits(&expected),
                        "worker {worker} query {query}"
                    );
                    sent += count as u64;
                }
                assert_eq!(client.queries(), sent);
                sent
            })
        })
        .collect();
    let sent: u64 = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    drop(service);
    let batches = batches.lock().expect("not poisoned");
    assert_eq!(batches.iter().sum::<usize>() as u64, sent);
    assert!(batches.iter().all(|&n| (1..=8).contains(&n)), "{batches:?}");
}

#[test]
fn a_query_larger_than_a_batch_spans_batches_in_order() {
    let mut rng = seeded_rng("service_inproc::span", 3);
    let classifier = linear_classifier(&mut rng);
    let (codec, batches) = Recording::new(4);
    let service = InProcessService::start(
        codec,
        PlaintextEvaluator::new(classifier.clone()),
        &config(Duration::from_millis(1)),
    )
    .expect("starts");
    let images: Vec<Image> = (0..10).map(|_| random_image(&mut rng)).collect();
    let answer = service.client().query(&images).expect("answered");
    let expected: Vec<Scores> = images.iter().map(&classifier).collect();
    assert_eq!(bits(&answer), bits(&expected));
    drop(service);
    assert_eq!(*batches.lock().expect("not poisoned"), vec![4, 4, 2]);
}

#[test]
fn a_full_batch_is_sent_without_waiting_for_the_window() {
    let mut rng = seeded_rng("service_inproc::full", 4);
    let classifier = linear_classifier(&mut rng);
    let (codec, batches) = Recording::new(8);
    let window = Duration::from_secs(120);
    let service =
        InProcessService::start(codec, PlaintextEvaluator::new(classifier), &config(window))
            .expect("starts");
    let barrier = Arc::new(Barrier::new(8));
    let started = Instant::now();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let mut client = service.client();
            let image = random_image(&mut rng);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                client.query(&[image]).expect("answered")
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client");
    }
    // Had the batch waited for its window, this would be 120 s.
    assert!(started.elapsed() < window / 2, "{:?}", started.elapsed());
    drop(service);
    assert_eq!(*batches.lock().expect("not poisoned"), vec![8]);
}

#[test]
fn a_lone_query_is_sent_when_the_window_expires() {
    let mut rng = seeded_rng("service_inproc::window", 5);
    let classifier = linear_classifier(&mut rng);
    let (codec, batches) = Recording::new(64);
    let window = Duration::from_millis(50);
    let service =
        InProcessService::start(codec, PlaintextEvaluator::new(classifier), &config(window))
            .expect("starts");
    let started = Instant::now();
    service
        .client()
        .query(&[random_image(&mut rng)])
        .expect("answered");
    assert!(started.elapsed() >= window, "{:?}", started.elapsed());
    drop(service);
    assert_eq!(*batches.lock().expect("not poisoned"), vec![1]);
}

#[test]
fn a_failed_batch_fails_its_queries_and_nothing_else() {
    let mut rng = seeded_rng("service_inproc::failure", 6);
    let classifier = linear_classifier(&mut rng);
    let (codec, _) = Recording::new(4);
    let service = InProcessService::start(
        codec,
        Poisoned(PlaintextEvaluator::new(classifier.clone())),
        &config(Duration::from_millis(1)),
    )
    .expect("starts");
    let mut client = service.client();
    let good: Vec<Image> = (0..3).map(|_| random_image(&mut rng)).collect();
    let expected: Vec<Scores> = good.iter().map(&classifier).collect();
    assert_eq!(
        bits(&client.query(&good).expect("answered")),
        bits(&expected)
    );
    // Six images span two batches; the second is poisoned, so the whole query fails.
    let mut spanning: Vec<Image> = (0..6).map(|_| random_image(&mut rng)).collect();
    spanning[5] = poison(&spanning[5]);
    match client.query(&spanning) {
        Err(ServiceError::Batch(failure)) => match &*failure {
            BatchFailure::Compute(LinkError::Evaluation(CodecError::Backend { error, .. })) => {
                assert_eq!(error.to_string(), "poisoned batch");
            }
            other => panic!("unexpected failure {other:?}"),
        },
        other => panic!("expected a batch failure, got {other:?}"),
    }
    assert_eq!(
        bits(&client.query(&good).expect("answered")),
        bits(&expected)
    );
    assert_eq!(client.queries(), 12);
}

#[test]
fn a_scheme_mismatch_or_a_bad_context_refuses_to_start() {
    let mut rng = seeded_rng("service_inproc::setup", 7);
    let classifier = linear_classifier(&mut rng);
    let (mut codec, _) = Recording::new(4);
    codec.scheme = Scheme::Ckks;
    match InProcessService::start(
        codec,
        PlaintextEvaluator::new(classifier.clone()),
        &BatchConfig::default(),
    ) {
        Err(SetupError::SchemeMismatch { trusted, compute }) => {
            assert_eq!((trusted, compute), (Scheme::Ckks, Scheme::Plain));
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("started with mismatched schemes"),
    }
    let (mut codec, _) = Recording::new(4);
    codec.context = Some(vec![0; 4]);
    match InProcessService::start(
        codec,
        PlaintextEvaluator::new(classifier),
        &BatchConfig::default(),
    ) {
        Err(SetupError::Codec(CodecError::Context { reason })) => {
            assert_eq!(reason, "invalid slot count 0");
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("started with a zero-slot context"),
    }
}

#[test]
fn the_service_and_the_plain_model_agree_and_count_queries() {
    let mut rng = seeded_rng("service_inproc::oracles", 8);
    let classifier = linear_classifier(&mut rng);
    let service = InProcessService::start(
        PlaintextCodec::new(16).expect("valid slots"),
        PlaintextEvaluator::new(classifier.clone()),
        &config(Duration::from_millis(1)),
    )
    .expect("starts");
    let mut served = service.client();
    let mut plain = PlainOracle::new(classifier);
    let images: Vec<Image> = (0..20).map(|_| random_image(&mut rng)).collect();
    let a = served.query(&images).expect("answered");
    let b = plain.query(&images).expect("infallible");
    assert_eq!(bits(&a), bits(&b));
    assert_eq!((served.queries(), plain.queries()), (20, 20));
    assert_eq!(served.query(&[]).expect("empty"), Vec::<Scores>::new());
    assert_eq!(served.queries(), 20);
    // Each client counts its own queries.
    assert_eq!(service.client().queries(), 0);
}

#[test]
fn plaintext_codec_and_evaluator_check_their_inputs() {
    let mut rng = seeded_rng("service_inproc::codec", 9);
    let classifier = linear_classifier(&mut rng);
    assert!(matches!(
        PlaintextCodec::new(0),
        Err(CodecError::InvalidSlots { slots: 0 })
    ));
    let mut codec = PlaintextCodec::new(4).expect("valid slots");
    assert_eq!(
        codec.evaluation_context().expect("context"),
        4u32.to_le_bytes()
    );
    let images: Vec<Image> = (0..5).map(|_| random_image(&mut rng)).collect();
    assert!(matches!(
        codec.encrypt_batch(&images),
        Err(CodecError::BatchSize { count: 5, slots: 4 })
    ));
    assert!(matches!(
        codec.encrypt_batch(&[]),
        Err(CodecError::BatchSize { count: 0, slots: 4 })
    ));
    let evaluator = PlaintextEvaluator::new(classifier.clone());
    assert!(matches!(
        evaluator.open_session(&[1, 0, 0]),
        Err(CodecError::Context { reason }) if reason == "expected a 4-byte slot count, got 3 bytes"
    ));
    let session = evaluator
        .open_session(&codec.evaluation_context().expect("context"))
        .expect("session");
    let payload = codec.encrypt_batch(&images[..3]).expect("fits");
    let evaluated = evaluator.evaluate(&session, &payload).expect("evaluates");
    let expected: Vec<Scores> = images[..3].iter().map(&classifier).collect();
    assert_eq!(
        bits(&codec.decrypt_batch(&evaluated, 3).expect("decrypts")),
        bits(&expected)
    );
    assert!(matches!(
        codec.decrypt_batch(&evaluated, 2),
        Err(CodecError::CountMismatch {
            expected: 2,
            found: 3
        })
    ));
    // A batch wider than the session's slots is refused by the evaluator.
    let wide = message::encode_images(&images).expect("five images");
    assert!(matches!(
        evaluator.evaluate(&session, &wide),
        Err(CodecError::Payload(PayloadError::TooMany {
            count: 5,
            max: 4
        }))
    ));
}

#[test]
fn images_are_checked_and_classes_are_the_arg_max() {
    assert_eq!(
        Image::new(&[0.5; 10]),
        Err(ImageError::WrongLength {
            expected: IMAGE_PIXELS,
            found: 10
        })
    );
    let mut pixels = vec![0.25; IMAGE_PIXELS];
    pixels[783] = 1.0000001;
    assert_eq!(
        Image::new(&pixels),
        Err(ImageError::PixelOutOfRange {
            index: 783,
            value: 1.0000001
        })
    );
    pixels[783] = 1.0;
    assert_eq!(Image::new(&pixels).map(|i| i.pixels()[783]), Ok(1.0));
    let mut scores = [0.0; CLASSES];
    scores[3] = 2.0;
    scores[7] = 2.0;
    assert_eq!(predicted_class(&scores), 3);
    scores[0] = f32::NAN;
    assert_eq!(predicted_class(&scores), 3);
    assert_eq!(predicted_class(&[f32::NAN; CLASSES]), 0);
    scores[9] = f32::INFINITY;
    assert_eq!(predicted_class(&scores), 9);
}
