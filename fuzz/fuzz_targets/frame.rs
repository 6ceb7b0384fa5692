//! Fuzzes the service's frame decoder and every payload decoder behind it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = heist::service::decode_untrusted(data) {
        // A decoded frame re-encodes to exactly the bytes it was decoded from.
        let bytes = decoded
            .frame
            .encode()
            .expect("a decoded payload fits a u32 length");
        assert_eq!(Some(bytes.as_slice()), data.get(..decoded.used));
    }
});
