//! Fuzzes the parameter decoders (common and CKKS): any bytes decode or fail with an error,
//! never panic; what decodes re-encodes to the same bytes.
#![no_main]

use heist_he::ckks::CkksParams;
use heist_he::params::HeParams;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = HeParams::decode_insecure_for_tests(data) {
        assert_eq!(p.encode(), data);
    }
    if let Ok(p) = CkksParams::decode_insecure_for_tests(data) {
        assert_eq!(p.encode(), data);
    }
});
