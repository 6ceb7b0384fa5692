//! Fuzzes the CKKS plaintext and ciphertext decoders (full and seed-compressed) for the
//! small fuzzing parameter set: any bytes decode or fail with an error, never panic; what
//! decodes re-encodes to the same bytes.
#![no_main]

use heist_he::ckks::{Ciphertext, CkksParams, Plaintext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(params) = CkksParams::for_depth_insecure_for_tests(16, 1, 30, 40) else {
        return;
    };
    if let Ok(p) = Plaintext::decode(&params, data) {
        assert_eq!(p.encode(), data);
    }
    if let Ok(c) = Ciphertext::decode(&params, data) {
        assert_eq!(c.encode(), data);
    }
});
