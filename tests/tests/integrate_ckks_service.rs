//! The CKKS codec/evaluator pair of the service: an in-process encrypted service answers
//! like the plaintext model (same arg-max, every score within the plan's stated bound), and
//! corrupted payloads, contexts and batches are refused with errors, never panics.
//!
//! The plan is compiled at an insecure small ring degree so the suite stays fast; the pair
//! is the same code the secure parameters run.

use heist::model::{Architecture, Model};
use heist::oracle::{predicted_class, Oracle};
use heist::service::{
    BatchCodec, BatchConfig, BatchEvaluator, CkksCodec, CkksEvaluator, CodecError, InProcessService,
};
use heist::train::init_params;
use heist_core::nn::Rounding;
use heist_he::nn::{CkksPlan, PlanConfig};
use heist_tests::{mnist_test_images, seeded_rng};

/// Ring degree of the test plan: 512 slots.
const N: usize = 1024;
/// Test images classified.
const IMAGES: usize = 12;

fn model() -> Model {
    let mut rng = seeded_rng("integrate-model", 11);
    let arch = Architecture::Mnist;
    Model::new(arch, init_params(arch, &mut rng)).unwrap()
}

fn plan(model: &Model) -> CkksPlan {
    let core = model.to_core().unwrap();
    CkksPlan::new_insecure_for_tests(core.network(), &PlanConfig::default(), N).unwrap()
}

#[test]
fn encrypted_service_answers_like_the_plaintext_model() {
    let model = model();
    let core = model.to_core().unwrap();
    let plan = plan(&model);
    let bound = plan.predicted_error()
        + core
            .network()
            .error_bound(1.0, &Rounding::f64_arithmetic(core.network()))
            .unwrap();
    let mut rng = seeded_rng("integrate-service", 12);
    let codec = CkksCodec::new(plan.clone(), &mut rng).unwrap();
    let evaluator = CkksEvaluator::new(plan).unwrap();
    let service = InProcessService::start(codec, evaluator, &BatchConfig::default()).unwrap();
    let mut client = service.client();
    let images = mnist_test_images(IMAGES);
    let scores = client.query(&images).unwrap();
    assert_eq!(scores.len(), IMAGES);
    assert_eq!(client.queries(), IMAGES as u64);
    let plain = heist::oracle::Classifier::scores_batch(&model, &images);
    let mut worst = 0.0f64;
    for ((image, got), want) in images.iter().zip(&scores).zip(&plain) {
        let pixels: Vec<f64> = image.pixels().iter().map(|&p| f64::from(p)).collect();
        let exact = core.infer(&pixels).unwrap();
        for (&g, &e) in got.iter().zip(&exact) {
            // The score travels as f32: half an ulp of rounding on top of the plan's bound.
            let tolerance = bound + e.abs() * f64::from(f32::EPSILON);
            let error = (f64::from(g) - e).abs();
            worst = worst.max(error);
            assert!(
                error <= tolerance,
                "score {g} vs exact {e}: error {error:e} > {tolerance:e}"
            );
        }
        assert_eq!(predicted_class(got), predicted_class(want));
    }
    eprintln!("largest score error {worst:e}, stated bound {bound:e}");
}

/// Rebuilds a payload (the documented layout) from the first `count` items of `payload`.
fn first_items(payload: &[u8], count: usize) -> Vec<u8> {
    let mut out = (count as u32).to_le_bytes().to_vec();
    let mut offset = 4;
    for _ in 0..count {
        let len = u32::from_le_bytes(payload[offset..offset + 4].try_into().unwrap()) as usize;
        out.extend_from_slice(&payload[offset..offset + 4 + len]);
        offset += 4 + len;
    }
    out
}

fn assert_refused<T>(what: &str, result: Result<T, CodecError>) {
    match result {
        Err(e) => eprintln!("{what}: refused: {e}"),
        Ok(_) => panic!("{what}: accepted"),
    }
}

#[test]
fn corrupted_payloads_are_refused() {
    let model = model();
    let plan = plan(&model);
    let mut rng = seeded_rng("integrate-corrupt", 13);
    let mut codec = CkksCodec::new(plan.clone(), &mut rng).unwrap();
    let evaluator = CkksEvaluator::new(plan).unwrap();
    let session = evaluator
        .open_session(&codec.evaluation_context().unwrap())
        .unwrap();
    let images = mnist_test_images(IMAGES);
    let payload = codec.encrypt_batch(&images[..2]).unwrap();

    // Batches the codec cannot hold.
    assert_refused("empty batch", codec.encrypt_batch(&[]));
    let too_many = vec![images[0].clone(); codec.slots() + 1];
    assert_refused("oversized batch", codec.encrypt_batch(&too_many));

    // Evaluation contexts: garbage, truncated, a key of other parameters.
    let context = codec.evaluation_context().unwrap();
    assert_refused("garbage context", evaluator.open_session(&[7; 64]));
    assert_refused(
        "truncated context",
        evaluator.open_session(&context[..context.len() / 2]),
    );
    let other_plan = CkksPlan::new_insecure_for_tests(
        model.to_core().unwrap().network(),
        &PlanConfig::default(),
        2 * N,
    )
    .unwrap();
    let other = CkksCodec::new(other_plan, &mut rng).unwrap();
    assert_refused(
        "context of other parameters",
        evaluator.open_session(&other.evaluation_context().unwrap()),
    );

    // Input payloads for the compute server (decoding fails before any evaluation).
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty payload", Vec::new()),
        ("count only", payload[..4].to_vec()),
        ("truncated", payload[..payload.len() - 1].to_vec()),
        ("trailing byte", [payload.as_slice(), &[0]].concat()),
        ("too few ciphertexts", first_items(&payload, 783)),
    ];
    let mut huge_count = payload.clone();
    huge_count[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    cases.push(("huge count", huge_count));
    let mut huge_len = payload.clone();
    huge_len[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    cases.push(("huge length", huge_len));
    // Byte flips in the first ciphertext's magic, version, fingerprint, level and scale
    // (the ciphertext starts at byte 8: 20 header bytes, then level u32 and scale f64).
    for at in [8, 12, 16, 20, 30, 38] {
        let mut flipped = payload.clone();
        flipped[at] ^= 0xa5;
        cases.push(("flipped byte", flipped));
    }
    for (what, bytes) in &cases {
        assert_refused(what, evaluator.evaluate(&session, bytes));
    }

    // Score payloads for the trusted party: the evaluated batch is accepted; 10 ciphertexts
    // of the right parameters off the plan's output level and scale (inputs), and anything
    // else, refused.
    let reply = evaluator.evaluate(&session, &payload).unwrap();
    assert!(codec.decrypt_batch(&reply, 2).is_ok());
    let scores_like = first_items(&payload, 10);
    assert_refused("inputs as scores", codec.decrypt_batch(&scores_like, 2));
    assert_refused("784 ciphertexts", codec.decrypt_batch(&payload, 2));
    assert_refused(
        "truncated scores",
        codec.decrypt_batch(&scores_like[..scores_like.len() - 3], 2),
    );
    assert_refused(
        "more images than slots",
        codec.decrypt_batch(&scores_like, codec.slots() + 1),
    );
    for at in [8, 12, 16, 20, 30] {
        let mut flipped = reply.clone();
        flipped[at] ^= 0xa5;
        assert_refused("flipped score byte", codec.decrypt_batch(&flipped, 2));
    }
}
