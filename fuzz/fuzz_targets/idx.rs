//! Fuzzes the IDX reader: any bytes, raw or gzip, must decode or fail with an error, never
//! panic, and never allocate past the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Output limit for the fuzzer: small, so gzip bombs are cut off quickly.
const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(array) = heist::data::idx::decode(data, "fuzz-input", LIMIT) {
        let count: u64 = array.dims.iter().map(|&d| u64::from(d)).product();
        assert_eq!(Some(count), u64::try_from(array.data.len()).ok());
        // What decodes re-encodes to the same raw bytes.
        let again = heist::data::idx::encode(&array.dims, &array.data);
        assert_eq!(
            heist::data::idx::decode(&again, "re-encoded", LIMIT).ok(),
            Some(array)
        );
    }
});
