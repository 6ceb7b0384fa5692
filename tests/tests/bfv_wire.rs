//! The seed corpus of the `decode_bfv` fuzz target: generated here from a seeded run,
//! committed under `fuzz/seeds/decode_bfv/`, and replayed with the expected outcome of
//! every file (`valid-*` decodes and re-encodes to the same bytes, `invalid-*` fails with
//! an error). `HEIST_WRITE_CORPUS=1` rewrites the committed files.

use std::path::PathBuf;

use heist_core::primes::ntt_primes;
use heist_he::bfv::{encrypt_pk, encrypt_sk, BatchEncoder, BfvParams, Ciphertext, Plaintext};
use heist_he::keys::{PublicKey, SecretKey};
use heist_tests::seeded_rng;

const T: u64 = 65537;
const TARGET: &str = "decode_bfv";

/// The fuzz target's parameter set (kept in step with `fuzz/fuzz_targets/decode_bfv.rs`).
fn fuzz_params() -> BfvParams {
    let chain = ntt_primes(30, 32, 2, &[T]).unwrap();
    let special = ntt_primes(40, 32, 1, &[T]).unwrap()[0];
    BfvParams::new_insecure_for_tests(16, &chain, special, T).unwrap()
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(TARGET)
}

/// Valid objects and, for each, a truncated copy and one with its kind byte flipped.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let params = fuzz_params();
    let mut rng = seeded_rng("bfv-corpus", 11);
    let sk = SecretKey::generate(params.he(), &mut rng);
    let pk = PublicKey::generate(params.he(), &sk, &mut rng);
    let enc = BatchEncoder::new(params.n(), T).unwrap();
    let values: Vec<u64> = (0..params.n() as u64).map(|i| i * 4099 % T).collect();
    let pt = enc.encode_u64(&values).unwrap();
    let ct_pk = encrypt_pk(&params, &pk, &pt, &mut rng).unwrap();
    let ct_sk = encrypt_sk(&params, &sk, &pt, &mut rng).unwrap();
    let objects = [
        ("params", params.encode()),
        ("plaintext", pt.encode(&params)),
        ("ciphertext", ct_pk.encode()),
        ("ciphertext-seeded", ct_sk.encode_seeded().unwrap()),
    ];
    let mut out = Vec::new();
    for (name, bytes) in objects {
        out.push((
            format!("invalid-{name}-truncated"),
            bytes[..bytes.len() - 1].to_vec(),
        ));
        let mut flipped = bytes.clone();
        flipped[6] ^= 0x40;
        out.push((format!("invalid-{name}-kind"), flipped));
        out.push((format!("valid-{name}"), bytes));
    }
    out
}

/// Decodes `bytes` as any BFV object and re-encodes it; `None` when every decoder refuses.
fn round_trip(params: &BfvParams, bytes: &[u8]) -> Option<Vec<u8>> {
    if let Ok(p) = BfvParams::decode_insecure_for_tests(bytes) {
        return Some(p.encode());
    }
    if let Ok(p) = Plaintext::decode(params, bytes) {
        return Some(p.encode(params));
    }
    Ciphertext::decode(params, bytes)
        .ok()
        .map(|c| c.encode_seeded().unwrap_or_else(|| c.encode()))
}

#[test]
fn bfv_seed_corpus_replays_with_expected_outcomes() {
    let generated = corpus();
    if std::env::var_os("HEIST_WRITE_CORPUS").is_some() {
        std::fs::create_dir_all(corpus_dir()).unwrap();
        for (name, bytes) in &generated {
            std::fs::write(corpus_dir().join(name), bytes).unwrap();
        }
    }
    let params = fuzz_params();
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in &names {
        let bytes = std::fs::read(corpus_dir().join(name)).unwrap();
        let decoded = round_trip(&params, &bytes);
        if name.starts_with("valid-") {
            assert_eq!(
                decoded.as_deref(),
                Some(&bytes[..]),
                "{name} should round-trip"
            );
        } else if name.starts_with("invalid-") {
            assert!(decoded.is_none(), "{name} should be refused");
        } else {
            panic!("corpus file {name} is named neither valid-* nor invalid-*");
        }
    }
    assert_eq!(
        names.len(),
        generated.len(),
        "committed corpus differs from the generated one"
    );
    for (name, bytes) in &generated {
        assert_eq!(
            &std::fs::read(corpus_dir().join(name)).unwrap(),
            bytes,
            "{name}"
        );
    }
}
