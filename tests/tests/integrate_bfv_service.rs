//! The BFV codec/evaluator pair of the service: in process and over TCP, the encrypted
//! service answers exactly the plaintext integer model's scores (`QuantizedModel::infer`,
//! dequantised), the codec recovers its integer scores bit for bit, and malformed or
//! foreign payloads, contexts and batches are refused with errors, never panics.
//!
//! The plan is compiled at an insecure small ring degree so the suite stays fast; the pair
//! is the same code the secure parameters run.

use std::net::TcpListener;
use std::time::Duration;

use heist::data::{load, Dataset};
use heist::inference::{compare_with, Service};
use heist::model::{Architecture, Model};
use heist::oracle::{Image, Oracle, Scores, CLASSES};
use heist::service::bfv::quantize;
use heist::service::message::ErrorCode;
use heist::service::{
    BatchCodec, BatchConfig, BatchEvaluator, BfvCodec, BfvEvaluator, CkksCodec, ClientConfig,
    CodecError, ComputeServer, InProcessService, NetError, PeerConfig, Scheme, ServerConfig,
    SetupError, TcpClient, TrustedServer,
};
use heist::train::init_params;
use heist_core::nn::QuantizedModel;
use heist_he::nn::{BfvPlan, CkksPlan, PlanConfig};
use heist_tests::{mnist_test_images, seeded_rng};

/// Ring degree of the test plan: 256 slots.
const N: usize = 256;
/// Test images classified.
const IMAGES: usize = 12;

fn model() -> Model {
    let mut rng = seeded_rng("integrate-bfv-model", 21);
    let arch = Architecture::Mnist;
    Model::new(arch, init_params(arch, &mut rng)).unwrap()
}

fn test_plan(quant: &QuantizedModel, n: usize) -> BfvPlan {
    BfvPlan::new_insecure_for_tests(quant, n).unwrap()
}

fn pixels(image: &Image) -> Vec<f64> {
    image.pixels().iter().map(|&p| f64::from(p)).collect()
}

/// The plaintext integer model's scores, dequantised and sent as `f32`, as bits.
fn integer_scores(quant: &QuantizedModel, images: &[Image]) -> Vec<[u32; CLASSES]> {
    images
        .iter()
        .map(|image| {
            let scores = quant.infer_real(&pixels(image)).unwrap();
            assert_eq!(scores.len(), CLASSES);
            std::array::from_fn(|class| (scores[class] as f32).to_bits())
        })
        .collect()
}

fn bits(scores: &[Scores]) -> Vec<[u32; CLASSES]> {
    scores.iter().map(|s| s.map(f32::to_bits)).collect()
}

#[test]
fn in_process_service_answers_the_integer_model_exactly() {
    let model = model();
    let quant = quantize(&model).unwrap();
    let plan = test_plan(&quant, N);
    eprintln!(
        "N {}, plaintext primes {:?}, chain {} primes",
        plan.n(),
        plan.plain_moduli(),
        plan.params()[0].he().chain().len()
    );
    let mut rng = seeded_rng("integrate-bfv-inproc", 22);
    let codec = BfvCodec::new(quant.clone(), plan.clone(), &mut rng).unwrap();
    assert_eq!(codec.slots(), N);
    let evaluator = BfvEvaluator::new(plan).unwrap();
    let service = InProcessService::start(codec, evaluator, &BatchConfig::default()).unwrap();
    let mut client = service.client();
    let images = mnist_test_images(IMAGES);
    let scores = client.query(&images).unwrap();
    assert_eq!(client.queries(), IMAGES as u64);
    assert_eq!(bits(&scores), integer_scores(&quant, &images));
}

/// `images` encrypted by `codec` and evaluated by `evaluator` in a session opened with the
/// codec's context: the honest reply.
fn evaluated(codec: &mut BfvCodec, evaluator: &BfvEvaluator, images: &[Image]) -> Vec<u8> {
    let session = evaluator
        .open_session(&codec.evaluation_context().unwrap())
        .unwrap();
    evaluator
        .evaluate(&session, &codec.encrypt_batch(images).unwrap())
        .unwrap()
}

#[test]
fn codec_recovers_the_integer_scores_bit_for_bit() {
    let model = model();
    let quant = quantize(&model).unwrap();
    let plan = test_plan(&quant, N);
    let mut rng = seeded_rng("integrate-bfv-codec", 23);
    let mut codec = BfvCodec::new(quant.clone(), plan.clone(), &mut rng).unwrap();
    let images = mnist_test_images(IMAGES);
    let evaluated = evaluated(&mut codec, &BfvEvaluator::new(plan).unwrap(), &images);
    let got = codec.decrypt_integer(&evaluated, IMAGES).unwrap();
    assert_eq!(got.len(), IMAGES);
    for (image, row) in images.iter().zip(&got) {
        let want = quant
            .infer(&quant.quantize_input(&pixels(image)).unwrap())
            .unwrap();
        assert_eq!(row, &want);
    }
    let scores = codec.decrypt_batch(&evaluated, IMAGES).unwrap();
    assert_eq!(bits(&scores), integer_scores(&quant, &images));
}

/// An in-process BFV service of `model` at the test degree, reported against `integer`.
fn report_service(model: &Model, integer: QuantizedModel, seed: u64) -> Service {
    let quant = quantize(model).unwrap();
    let plan = test_plan(&quant, N);
    let mut rng = seeded_rng("integrate-bfv-report", seed);
    let codec = BfvCodec::new(quant, plan.clone(), &mut rng).unwrap();
    let evaluator = BfvEvaluator::new(plan).unwrap();
    Service {
        scheme: Scheme::Bfv,
        service: InProcessService::start(codec, evaluator, &BatchConfig::default()).unwrap(),
        slots: N,
        ring_degree: N,
        setup_seconds: 0.0,
        integer: Some(integer),
    }
}

#[test]
fn eval_report_states_exact_agreement_with_the_integer_model() {
    let model = model();
    let quant = quantize(&model).unwrap();
    let test = load(Dataset::Mnist, None, true)
        .unwrap()
        .test
        .truncated(IMAGES);
    let c = compare_with(&model, &report_service(&model, quant, 27), &test).unwrap();
    assert_eq!(c.images, IMAGES);
    assert_eq!(c.scheme, "bfv");
    let integer = c
        .integer
        .expect("a BFV report compares with the integer model");
    assert_eq!(integer.integer_scores_identical, 1.0);
    assert_eq!(integer.integer_agreement, 1.0);
    assert_eq!(integer.integer_accuracy, c.encrypted_accuracy);

    // Against the integer model of other weights, the scores are not identical.
    let mut rng = seeded_rng("integrate-bfv-other-model", 26);
    let other = Model::new(
        Architecture::Mnist,
        init_params(Architecture::Mnist, &mut rng),
    )
    .unwrap();
    let c = compare_with(
        &model,
        &report_service(&model, quantize(&other).unwrap(), 28),
        &test,
    )
    .unwrap();
    let integer = c
        .integer
        .expect("a BFV report compares with the integer model");
    assert_eq!(integer.integer_scores_identical, 0.0);
}

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("an ephemeral port on loopback")
}

fn server_config() -> ServerConfig {
    ServerConfig {
        max_connections: 4,
        max_payload: 256 << 20,
        idle_timeout: Duration::from_secs(60),
        frame_timeout: Duration::from_secs(60),
        write_timeout: Duration::from_secs(60),
        setup_timeout: Duration::from_secs(60),
    }
}

fn peer_config() -> PeerConfig {
    PeerConfig {
        connect_timeout: Duration::from_secs(5),
        reply_timeout: Duration::from_secs(120),
        frame_timeout: Duration::from_secs(60),
        write_timeout: Duration::from_secs(60),
        max_payload: 256 << 20,
    }
}

#[test]
fn tcp_service_answers_the_integer_model_exactly() {
    let model = model();
    let quant = quantize(&model).unwrap();
    let plan = test_plan(&quant, N);
    let compute = ComputeServer::start(
        listener(),
        BfvEvaluator::new(plan.clone()).unwrap(),
        server_config(),
    )
    .expect("compute server starts");
    let mut rng = seeded_rng("integrate-bfv-tcp", 24);
    let codec = BfvCodec::new(quant.clone(), plan, &mut rng).unwrap();
    let batch = BatchConfig {
        window: Duration::from_millis(5),
        queue: 16,
    };
    let trusted = TrustedServer::start(
        listener(),
        codec,
        &compute.local_addr().to_string(),
        peer_config(),
        &batch,
        server_config(),
    )
    .expect("trusted party starts");
    let config = ClientConfig {
        peer: peer_config(),
        images_per_frame: 256,
    };
    let mut client = TcpClient::connect(&trusted.local_addr().to_string(), config).unwrap();
    let images = mnist_test_images(IMAGES);
    let scores = client.query(&images).unwrap();
    assert_eq!(bits(&scores), integer_scores(&quant, &images));

    // A CKKS trusted party is refused by the BFV compute server at setup: its setup is
    // larger than any this server's plan accepts, so the header alone refuses it, before
    // a payload byte is read, and the reply says which scheme the server runs. (A setup
    // that fits but names another scheme is refused as `SchemeMismatch`: service_tcp.rs.)
    let ckks_plan = CkksPlan::new_insecure_for_tests(
        model.to_core().unwrap().network(),
        &PlanConfig::default(),
        1024,
    )
    .unwrap();
    let ckks = CkksCodec::new(ckks_plan, &mut rng).unwrap();
    match TrustedServer::start(
        listener(),
        ckks,
        &compute.local_addr().to_string(),
        peer_config(),
        &batch,
        server_config(),
    ) {
        Err(SetupError::Net(NetError::Remote(reply))) => {
            assert_eq!(reply.code, ErrorCode::BadFrame, "{}", reply.message);
            assert!(
                reply.message.starts_with("payload of ")
                    && reply.message.ends_with(
                        "the largest setup this compute server's bfv plan accepts \
                         (is the trusted party running another scheme or model?)"
                    ),
                "{}",
                reply.message
            );
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("started with mismatched schemes"),
    }
}

/// Rebuilds a payload (the documented layout) from the items `range` of `payload`.
fn items(payload: &[u8], range: std::ops::Range<usize>) -> Vec<u8> {
    let mut out = (range.len() as u32).to_le_bytes().to_vec();
    let mut offset = 4;
    for index in 0..range.end {
        let len = u32::from_le_bytes(payload[offset..offset + 4].try_into().unwrap()) as usize;
        if range.contains(&index) {
            out.extend_from_slice(&payload[offset..offset + 4 + len]);
        }
        offset += 4 + len;
    }
    out
}

/// Concatenates the item lists of payloads.
fn concat(payloads: &[Vec<u8>]) -> Vec<u8> {
    let count: u32 = payloads
        .iter()
        .map(|p| u32::from_le_bytes(p[..4].try_into().unwrap()))
        .sum();
    let mut out = count.to_le_bytes().to_vec();
    for p in payloads {
        out.extend_from_slice(&p[4..]);
    }
    out
}

/// Bytes of the first ciphertext of a payload that no decoder may accept flipped.
const FLIPS: [usize; 7] = [8, 12, 14, 16, 24, 35, 43];

fn assert_refused<T>(what: &str, result: Result<T, CodecError>) {
    match result {
        Err(e) => eprintln!("{what}: refused: {e}"),
        Ok(_) => panic!("{what}: accepted"),
    }
}

#[test]
fn malformed_and_foreign_payloads_are_refused() {
    let model = model();
    let quant = quantize(&model).unwrap();
    let plan = test_plan(&quant, N);
    let primes = plan.params().len();
    assert!(
        primes >= 2,
        "the test swaps primes: needs two, has {primes}"
    );
    let (inputs, outputs) = (plan.input_len(), plan.output_len());
    let mut rng = seeded_rng("integrate-bfv-corrupt", 25);
    let mut codec = BfvCodec::new(quant.clone(), plan.clone(), &mut rng).unwrap();
    let evaluator = BfvEvaluator::new(plan.clone()).unwrap();
    let session = evaluator
        .open_session(&codec.evaluation_context().unwrap())
        .unwrap();
    let images = mnist_test_images(IMAGES);
    let payload = codec.encrypt_batch(&images[..2]).unwrap();

    // Batches the codec cannot hold; a plan of another model.
    assert_refused("empty batch", codec.encrypt_batch(&[]));
    let too_many = vec![images[0].clone(); codec.slots() + 1];
    assert_refused("oversized batch", codec.encrypt_batch(&too_many));
    let mut other_rng = seeded_rng("integrate-bfv-other-model", 26);
    let other_model = Model::new(
        Architecture::Mnist,
        init_params(Architecture::Mnist, &mut other_rng),
    )
    .unwrap();
    let other_quant = quantize(&other_model).unwrap();
    assert_ne!(
        other_quant.min_plaintext_modulus(),
        quant.min_plaintext_modulus()
    );
    assert_refused(
        "plan of another model",
        BfvCodec::new(other_quant, plan.clone(), &mut rng),
    );

    // Evaluation contexts: garbage, truncated, a key of other parameters, a CKKS key.
    let context = codec.evaluation_context().unwrap();
    assert_refused("garbage context", evaluator.open_session(&[7; 64]));
    assert_refused("empty context", evaluator.open_session(&[]));
    assert_refused(
        "truncated context",
        evaluator.open_session(&context[..context.len() / 2]),
    );
    let mut other = BfvCodec::new(quant.clone(), test_plan(&quant, 2 * N), &mut rng).unwrap();
    assert_refused(
        "context of other parameters",
        evaluator.open_session(&other.evaluation_context().unwrap()),
    );
    let ckks_plan = CkksPlan::new_insecure_for_tests(
        model.to_core().unwrap().network(),
        &PlanConfig::default(),
        1024,
    )
    .unwrap();
    let mut ckks = CkksCodec::new(ckks_plan, &mut rng).unwrap();
    assert_refused(
        "CKKS context",
        evaluator.open_session(&ckks.evaluation_context().unwrap()),
    );

    // Input payloads for the compute server (decoding fails before any evaluation).
    let prime = |j: usize| items(&payload, j * inputs..(j + 1) * inputs);
    let mut swapped: Vec<Vec<u8>> = (0..primes).map(prime).collect();
    swapped.swap(0, 1);
    let other_batch = other.encrypt_batch(&images[..2]).unwrap();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty payload", Vec::new()),
        ("count only", payload[..4].to_vec()),
        ("truncated", payload[..payload.len() - 1].to_vec()),
        ("trailing byte", [payload.as_slice(), &[0]].concat()),
        ("one prime only", prime(0)),
        (
            "one ciphertext short",
            items(&payload, 0..primes * inputs - 1),
        ),
        ("primes swapped", concat(&swapped)),
        ("a batch of other parameters", other_batch),
        (
            "a CKKS batch",
            ckks.encrypt_batch(&images[..2]).expect("CKKS batch"),
        ),
    ];
    let mut huge_count = payload.clone();
    huge_count[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    cases.push(("huge count", huge_count));
    let mut huge_len = payload.clone();
    huge_len[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    cases.push(("huge length", huge_len));
    // Byte flips in the first ciphertext's magic, version, kind, fingerprint, length, the
    // sign of its noise bound and the top byte of its first residue (the ciphertext starts
    // at byte 8, its body at byte 28).
    for at in FLIPS {
        let mut flipped = payload.clone();
        flipped[at] ^= 0xa5;
        cases.push(("flipped byte", flipped));
    }
    for (what, bytes) in &cases {
        assert_refused(what, evaluator.evaluate(&session, bytes));
    }

    // Score payloads for the trusted party: the right number of ciphertexts of each prime
    // decrypt, anything else is refused.
    let scores_like = concat(
        &(0..primes)
            .map(|j| items(&payload, j * inputs..j * inputs + outputs))
            .collect::<Vec<_>>(),
    );
    assert_eq!(codec.decrypt_integer(&scores_like, 2).unwrap().len(), 2);
    assert_refused("the input batch", codec.decrypt_batch(&payload, 2));
    assert_refused(
        "truncated scores",
        codec.decrypt_batch(&scores_like[..scores_like.len() - 3], 2),
    );
    assert_refused(
        "more images than slots",
        codec.decrypt_batch(&scores_like, codec.slots() + 1),
    );
    let mut swapped: Vec<Vec<u8>> = (0..primes)
        .map(|j| items(&payload, j * inputs..j * inputs + outputs))
        .collect();
    swapped.swap(0, 1);
    assert_refused(
        "score primes swapped",
        codec.decrypt_batch(&concat(&swapped), 2),
    );
    for at in FLIPS {
        let mut flipped = scores_like.clone();
        flipped[at] ^= 0xa5;
        assert_refused("flipped score byte", codec.decrypt_batch(&flipped, 2));
    }
    assert_eq!(codec.scheme(), Scheme::Bfv);
}

/// `reply` with the plaintext whose slot `slot` holds `value` (the others 0) added to
/// score `class` of plaintext prime `prime`: a trivial encryption, no noise added.
fn shifted(
    plan: &BfvPlan,
    reply: &[u8],
    (prime, class): (usize, usize),
    slot: usize,
    value: u64,
) -> Vec<u8> {
    use heist_he::bfv::{scale_plain, BatchEncoder, Ciphertext};
    let params = &plan.params()[prime];
    let total = plan.params().len() * CLASSES;
    let index = prime * CLASSES + class;
    let item = items(reply, index..index + 1);
    let ct = Ciphertext::decode(params, &item[8..]).unwrap();
    let encoder = BatchEncoder::new(plan.n(), params.plain_modulus().value()).unwrap();
    let mut slots = vec![0u64; plan.n()];
    slots[slot] = value;
    let mut c0 = ct.c0().clone();
    c0.add_assign(
        &scale_plain(params, &encoder.encode_u64(&slots).unwrap()).unwrap(),
        params.he().basis(),
    );
    let bytes = Ciphertext::new(params, c0, ct.c1().clone())
        .unwrap()
        .encode();
    let mut crafted = 1u32.to_le_bytes().to_vec();
    crafted.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    crafted.extend_from_slice(&bytes);
    concat(&[
        items(reply, 0..index),
        crafted,
        items(reply, index + 1..total),
    ])
}

/// The trusted party releases a reply only if an honest evaluation can give it: every used
/// slot's scores within the bounds calibrated on other images, every unused slot's exactly
/// those of a blank image. A reply one unit off in an unused slot, or a used slot shifted
/// by half the plaintext modulus, is refused as a whole; the honest reply and one off by a
/// unit in a used slot (what the check cannot tell from an honest score) are released.
#[test]
fn the_trusted_party_releases_only_replies_an_honest_evaluation_gives() {
    let model = model();
    let quant = quantize(&model).unwrap();
    let plan = test_plan(&quant, N);
    let mut rng = seeded_rng("integrate-bfv-checks", 24);
    let images = mnist_test_images(IMAGES + 32);
    let (batch, calibration) = images.split_at(IMAGES);
    let mut codec = BfvCodec::new(quant.clone(), plan.clone(), &mut rng)
        .unwrap()
        .with_calibration(calibration)
        .unwrap();
    let bounds = codec.score_bounds().unwrap();
    assert!(matches!(
        BfvCodec::new(quant.clone(), plan.clone(), &mut rng)
            .unwrap()
            .with_calibration(&[]),
        Err(CodecError::Context { .. })
    ));
    let worst = quant.dequantize(&[quant.max_abs_bound() as i128])[0];
    assert!(bounds.iter().all(|&b| b > 0.0 && b < worst), "{bounds:?}");
    let evaluator = BfvEvaluator::new(plan.clone()).unwrap();
    let reply = evaluated(&mut codec, &evaluator, batch);
    let honest = codec.decrypt_batch(&reply, IMAGES).unwrap();
    assert_eq!(bits(&honest), integer_scores(&quant, batch));
    let refused = |codec: &mut BfvCodec, payload: &[u8]| match codec.decrypt_batch(payload, IMAGES)
    {
        Err(CodecError::Backend { error, .. }) => error.to_string(),
        other => panic!("released: {other:?}"),
    };
    // One unit more in the integer score of a slot: one more in the slot of every prime.
    let unit = |reply: &[u8], slot: usize| {
        (0..plan.params().len()).fold(reply.to_vec(), |r, prime| {
            shifted(&plan, &r, (prime, 3), slot, 1)
        })
    };
    let unused = refused(&mut codec, &unit(&reply, IMAGES + 5));
    assert!(unused.contains("unused slot"), "{unused}");
    let half = plan.plain_moduli()[0] / 2;
    let beyond = refused(&mut codec, &shifted(&plan, &reply, (0, 3), 2, half));
    assert!(beyond.contains("beyond the plan's bound"), "{beyond}");
    let off = unit(&reply, 2);
    assert!(codec.decrypt_batch(&off, IMAGES).is_ok());
    assert_eq!(
        codec.decrypt_integer(&off, IMAGES).unwrap()[2][3],
        codec.decrypt_integer(&reply, IMAGES).unwrap()[2][3] + 1
    );
    // Without the checks the trusted party releases the shifted score.
    let mut unchecked = BfvCodec::new(quant, plan.clone(), &mut rng)
        .unwrap()
        .without_reply_checks();
    assert!(unchecked.score_bounds().is_none());
    let reply = evaluated(&mut unchecked, &evaluator, batch);
    assert!(unchecked
        .decrypt_batch(&shifted(&plan, &reply, (0, 3), 2, half), IMAGES)
        .is_ok());
}
