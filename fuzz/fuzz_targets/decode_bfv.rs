//! Fuzzes the BFV parameter, plaintext and ciphertext decoders (full and seed-compressed)
//! for a small fuzzing parameter set: any bytes decode or fail with an error, never panic;
//! what decodes re-encodes to the same bytes.
#![no_main]

use heist_core::primes::ntt_primes;
use heist_he::bfv::{BfvParams, Ciphertext, Plaintext};
use libfuzzer_sys::fuzz_target;

fn params() -> Option<BfvParams> {
    let chain = ntt_primes(30, 32, 2, &[65537]).ok()?;
    let special = ntt_primes(40, 32, 1, &[65537]).ok()?[0];
    BfvParams::new_insecure_for_tests(16, &chain, special, 65537).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(params) = params() else {
        return;
    };
    if let Ok(p) = BfvParams::decode_insecure_for_tests(data) {
        assert_eq!(p.encode(), data);
    }
    if let Ok(p) = Plaintext::decode(&params, data) {
        assert_eq!(p.encode(&params), data);
    }
    if let Ok(c) = Ciphertext::decode(&params, data) {
        let again = c.encode_seeded().unwrap_or_else(|| c.encode());
        assert_eq!(again, data);
    }
});
