//! Fuzzes the key decoders (secret, public, relinearisation, Galois) for the small fuzzing
//! parameter set: any bytes decode or fail with an error, never panic; what decodes
//! re-encodes to the same bytes.
#![no_main]

use heist_he::ckks::CkksParams;
use heist_he::keys::{GaloisKeys, PublicKey, RelinKey, SecretKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(params) = CkksParams::for_depth_insecure_for_tests(16, 1, 30, 40) else {
        return;
    };
    let he = params.he();
    if let Ok(k) = SecretKey::decode(he, data) {
        assert_eq!(k.encode().as_slice(), data);
    }
    if let Ok(k) = PublicKey::decode(he, data) {
        assert_eq!(k.encode(), data);
    }
    if let Ok(k) = RelinKey::decode(he, data) {
        assert_eq!(k.encode(), data);
    }
    if let Ok(k) = GaloisKeys::decode(he, data) {
        assert_eq!(k.encode(), data);
    }
});
