//! Fuzzes the CKKS batch payloads of the service at a small fuzzing plan: the compute
//! server's decoder and evaluator (`BatchEvaluator::evaluate`, untrusted bytes from the
//! trusted party) and the trusted party's decoder of replies (`BatchCodec::decrypt_batch`,
//! untrusted bytes from the compute server). Any bytes are answered or refused with an
//! error, never a panic; a batch the server accepts yields a reply the trusted party
//! decrypts.
#![no_main]

use heist::service::{BatchCodec, BatchEvaluator, CkksCodec, CkksEvaluator};
use heist_core::nn::{Dense, Layer, Model, Shape};
use heist_he::nn::{CkksPlan, PlanConfig};
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use rand_chacha::rand_core::SeedableRng;

/// Dense 784 → 10 with weights `±(i mod 7)/8`, the default plan configuration at ring
/// degree 16 (kept in step with `tests/tests/he_payload.rs`).
fn pair() -> Option<(CkksCodec, CkksEvaluator)> {
    let weight = (0..7840)
        .map(|i| f64::from(i % 7) / 8.0 * if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let dense = Dense {
        in_features: 784,
        out_features: 10,
        weight,
        bias: Some(vec![0.25; 10]),
    };
    let model = Model::new(Shape::Flat(784), vec![Layer::Dense(dense)]).ok()?;
    let plan =
        CkksPlan::new_insecure_for_tests(model.network(), &PlanConfig::default(), 16).ok()?;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let codec = CkksCodec::new(plan.clone(), &mut rng).ok()?;
    Some((codec, CkksEvaluator::new(plan).ok()?))
}

/// The pair and the compute side's session, built once.
type Fixture = (CkksCodec, CkksEvaluator, heist_he::nn::CkksServer);

fn fixture() -> Option<&'static Mutex<Fixture>> {
    static FIXTURE: OnceLock<Option<Mutex<Fixture>>> = OnceLock::new();
    FIXTURE
        .get_or_init(|| {
            let (codec, evaluator) = pair()?;
            let session = evaluator
                .open_session(&codec.evaluation_context().ok()?)
                .ok()?;
            Some(Mutex::new((codec, evaluator, session)))
        })
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some(fixture) = fixture() else {
        return;
    };
    let Ok(mut guard) = fixture.lock() else {
        return;
    };
    let (codec, evaluator, session) = &mut *guard;
    if let Ok(reply) = evaluator.evaluate(session, data) {
        assert!(codec.decrypt_batch(&reply, 1).is_ok());
    }
    let _ = codec.decrypt_batch(data, 1);
});
