//! Fuzzes the encrypted batch payloads of the service, BFV and CKKS, at small fuzzing
//! plans (`heist_tests::payloads`): the compute server's decoder and evaluator
//! (`BatchEvaluator::evaluate`, untrusted bytes from the trusted party) and the trusted
//! party's decoder of replies (`BatchCodec::decrypt_batch`, untrusted bytes from the
//! compute server). Any bytes are answered or refused with an error, never a panic; a
//! batch a server accepts yields a reply its trusted party decrypts.
#![no_main]

use std::sync::{Mutex, OnceLock};

use heist::service::{BatchCodec, BatchEvaluator};
use heist_tests::payloads::{bfv_pair, ckks_pair};
use libfuzzer_sys::fuzz_target;

/// A codec, its evaluator and the compute side's session, built once.
struct Fixture<C: BatchCodec, E: BatchEvaluator> {
    codec: C,
    evaluator: E,
    session: E::Session,
}

impl<C: BatchCodec, E: BatchEvaluator> Fixture<C, E> {
    fn new((codec, evaluator): (C, E)) -> Option<Mutex<Self>> {
        let session = evaluator
            .open_session(&codec.evaluation_context().ok()?)
            .ok()?;
        Some(Mutex::new(Self {
            codec,
            evaluator,
            session,
        }))
    }

    fn run(fixture: &Option<Mutex<Self>>, data: &[u8]) {
        let Some(Ok(mut guard)) = fixture.as_ref().map(Mutex::lock) else {
            return;
        };
        let f = &mut *guard;
        if let Ok(reply) = f.evaluator.evaluate(&f.session, data) {
            assert!(f.codec.decrypt_batch(&reply, 1).is_ok());
        }
        let _ = f.codec.decrypt_batch(data, 1);
    }
}

fuzz_target!(|data: &[u8]| {
    static BFV: OnceLock<
        Option<Mutex<Fixture<heist::service::BfvCodec, heist::service::BfvEvaluator>>>,
    > = OnceLock::new();
    static CKKS: OnceLock<
        Option<Mutex<Fixture<heist::service::CkksCodec, heist::service::CkksEvaluator>>>,
    > = OnceLock::new();
    Fixture::run(BFV.get_or_init(|| Fixture::new(bfv_pair())), data);
    Fixture::run(CKKS.get_or_init(|| Fixture::new(ckks_pair())), data);
});
