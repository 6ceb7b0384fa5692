//! Fuzzes the encrypted batch payloads of the service, BFV and CKKS, at small fuzzing
//! plans (`heist_tests::payloads`): the compute server's decoder and evaluator
//! (`BatchEvaluator::evaluate`, untrusted bytes from the trusted party) and the trusted
//! party's decoder of replies (`BatchCodec::decrypt_batch`, untrusted bytes from the
//! compute server). Any bytes are answered or refused with an error, never a panic; a
//! batch a server accepts yields a reply its trusted party decrypts.
#![no_main]

use std::sync::{Mutex, OnceLock};

use heist::service::{BfvCodec, BfvEvaluator, CkksCodec, CkksEvaluator};
use heist_tests::payloads::{bfv_pair, ckks_pair, Fixture};
use libfuzzer_sys::fuzz_target;

fn run<C: heist::service::BatchCodec, E: heist::service::BatchEvaluator>(
    fixture: &Option<Mutex<Fixture<C, E>>>,
    data: &[u8],
) {
    let Some(Ok(mut guard)) = fixture.as_ref().map(Mutex::lock) else {
        return;
    };
    if let Err(violation) = guard.run(data) {
        panic!("{violation}");
    }
}

fuzz_target!(|data: &[u8]| {
    static BFV: OnceLock<Option<Mutex<Fixture<BfvCodec, BfvEvaluator>>>> = OnceLock::new();
    static CKKS: OnceLock<Option<Mutex<Fixture<CkksCodec, CkksEvaluator>>>> = OnceLock::new();
    run(
        BFV.get_or_init(|| Fixture::new(bfv_pair()).map(Mutex::new)),
        data,
    );
    run(
        CKKS.get_or_init(|| Fixture::new(ckks_pair()).map(Mutex::new)),
        data,
    );
});
