//! The seed corpora of the `bfv_payload` and `ckks_payload` fuzz targets: generated here
//! from a seeded run, committed under `fuzz/corpus/<target>/`, and replayed with the
//! expected outcome of every file for both entry points each target fuzzes: the compute
//! server's `BatchEvaluator::evaluate` accepts exactly the `batch-ok-*` files, the trusted
//! party's `BatchCodec::decrypt_batch` exactly the `reply-ok-*` files; everything else is
//! refused with an error. `HEIST_WRITE_CORPUS=1` rewrites the committed files.

use std::path::PathBuf;

use heist::oracle::Image;
use heist::service::{
    BatchCodec, BatchEvaluator, BfvCodec, BfvEvaluator, CkksCodec, CkksEvaluator,
};
use heist_core::nn::{Dense, Layer, Model, QuantConfig, QuantizedModel, Shape};
use heist_he::nn::{BfvPlan, CkksPlan, PlanConfig};
use rand_chacha::rand_core::SeedableRng;

/// The fuzz targets' model (kept in step with `fuzz/fuzz_targets/*_payload.rs`): dense
/// 784 → 10 with weights `±(i mod 7)/8`.
fn model() -> Model {
    let weight = (0..7840)
        .map(|i| f64::from(i % 7) / 8.0 * if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let dense = Dense {
        in_features: 784,
        out_features: 10,
        weight,
        bias: Some(vec![0.25; 10]),
    };
    Model::new(Shape::Flat(784), vec![Layer::Dense(dense)]).unwrap()
}

/// The BFV target's pair: the model quantised at 8 bits, at ring degree 16.
fn bfv_pair() -> (BfvCodec, BfvEvaluator) {
    let quant = QuantizedModel::new(&model(), &QuantConfig::pixels(8)).unwrap();
    let plan = BfvPlan::new_insecure_for_tests(&quant, 16).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let codec = BfvCodec::new(quant, plan.clone(), &mut rng).unwrap();
    (codec, BfvEvaluator::new(plan).unwrap())
}

/// The CKKS target's pair: the default plan configuration at ring degree 16.
fn ckks_pair() -> (CkksCodec, CkksEvaluator) {
    let plan =
        CkksPlan::new_insecure_for_tests(model().network(), &PlanConfig::default(), 16).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let codec = CkksCodec::new(plan.clone(), &mut rng).unwrap();
    (codec, CkksEvaluator::new(plan).unwrap())
}

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// A batch of one image and its reply; for each, the payload truncated, with its count
/// raised, and with a byte of its first ciphertext's header flipped (the bad variants of
/// the 150 kB batch keep only its first kilobyte: they are refused before that); and the
/// empty payload.
fn corpus<C: BatchCodec, E: BatchEvaluator>(
    (mut codec, evaluator): (C, E),
) -> Vec<(String, Vec<u8>)> {
    let session = evaluator
        .open_session(&codec.evaluation_context().unwrap())
        .unwrap();
    let pixels: Vec<f32> = (0..784).map(|i| (i % 256) as f32 / 255.0).collect();
    let image = Image::new(&pixels).unwrap();
    let batch = codec.encrypt_batch(&[image]).unwrap();
    let reply = evaluator.evaluate(&session, &batch).unwrap();
    let mut out = vec![("both-bad-empty".to_string(), Vec::new())];
    for (kind, bytes) in [("batch", batch), ("reply", reply)] {
        let keep = bytes.len().min(1024);
        out.push((
            format!("{kind}-bad-truncated"),
            bytes[..keep.min(bytes.len() - 1)].to_vec(),
        ));
        let mut count = bytes[..keep].to_vec();
        count[0] = count[0].wrapping_add(1);
        out.push((format!("{kind}-bad-count"), count));
        // Bytes 0..4 count, 4..8 the first length, then the first ciphertext's header.
        let mut header = bytes[..keep].to_vec();
        header[8 + 6] ^= 0x40;
        out.push((format!("{kind}-bad-header"), header));
        out.push((format!("{kind}-ok-valid"), bytes));
    }
    out
}

/// Writes (with `HEIST_WRITE_CORPUS`) and replays the corpus of `target`, made by a pair
/// from `pair`.
fn replay<C: BatchCodec, E: BatchEvaluator>(target: &str, pair: impl Fn() -> (C, E)) {
    let generated = corpus(pair());
    let dir = corpus_dir(target);
    if std::env::var_os("HEIST_WRITE_CORPUS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &generated {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    let (mut codec, evaluator) = pair();
    let session = evaluator
        .open_session(&codec.evaluation_context().unwrap())
        .unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("corpus directory exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in &names {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let evaluated = evaluator.evaluate(&session, &bytes);
        assert_eq!(
            evaluated.is_ok(),
            name.starts_with("batch-ok-"),
            "{name}: evaluate gave {:?}",
            evaluated.as_ref().err()
        );
        if let Ok(reply) = evaluated {
            assert!(codec.decrypt_batch(&reply, 1).is_ok(), "{name}");
        }
        let decrypted = codec.decrypt_batch(&bytes, 1);
        assert_eq!(
            decrypted.is_ok(),
            name.starts_with("reply-ok-"),
            "{name}: decrypt gave {:?}",
            decrypted.as_ref().err()
        );
    }
    assert_eq!(
        names.len(),
        generated.len(),
        "committed corpus differs from the generated one"
    );
    for (name, bytes) in &generated {
        assert_eq!(&std::fs::read(dir.join(name)).unwrap(), bytes, "{name}");
    }
}

#[test]
fn bfv_payload_corpus_replays_with_expected_outcomes() {
    replay("bfv_payload", bfv_pair);
}

#[test]
fn ckks_payload_corpus_replays_with_expected_outcomes() {
    replay("ckks_payload", ckks_pair);
}
