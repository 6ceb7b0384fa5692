//! Encoding of every common and CKKS object: round trips, typed errors for corrupted,
//! truncated, oversized, foreign and wrong-kind bytes, and the replay of the `decode_*` fuzz
//! targets' seed corpora (regenerated with `HEIST_WRITE_CORPUS=1`).

use std::path::PathBuf;

use heist_he::ckks::{
    encrypt_pk, encrypt_sk, Ciphertext, CkksParams, Encoder, Evaluator, Plaintext,
};
use heist_he::galois::rotation_element;
use heist_he::keys::{GaloisKeys, PublicKey, RelinKey, SecretKey};
use heist_he::params::HeParams;
use heist_he::wire::{Kind, WireError, HEADER_SIZE, MAX_BODY};
use heist_tests::seeded_rng;

/// The parameter set of the `decode_keys` and `decode_ckks` fuzz targets.
fn fuzz_params() -> CkksParams {
    CkksParams::for_depth_insecure_for_tests(16, 1, 30, 40).unwrap()
}

struct Objects {
    params: Vec<u8>,
    ckks_params: Vec<u8>,
    /// Wiped on drop: `SecretKey::encode` returns a `Zeroizing` buffer.
    sk: zeroize::Zeroizing<Vec<u8>>,
    pk: Vec<u8>,
    rlk: Vec<u8>,
    gk: Vec<u8>,
    pt: Vec<u8>,
    ct: Vec<u8>,
    ct_seeded: Vec<u8>,
}

fn objects(params: &CkksParams, seed: u64) -> Objects {
    let mut rng = seeded_rng("wire", seed);
    let he = params.he();
    let sk = SecretKey::generate(he, &mut rng);
    let pk = PublicKey::generate(he, &sk, &mut rng);
    let rlk = RelinKey::generate(he, &sk, &mut rng);
    let gk = GaloisKeys::generate(
        he,
        &sk,
        &[rotation_element(he.n(), 1), 2 * he.n() as u64 - 1],
        &mut rng,
    )
    .unwrap();
    let enc = Encoder::new(params);
    let vals: Vec<f64> = (0..params.slots()).map(|i| i as f64 / 8.0 - 0.5).collect();
    let pt = enc.encode(&vals, params.scale(), he.max_level()).unwrap();
    let ct = encrypt_pk(params, &pk, &pt, &mut rng).unwrap();
    let ct_seeded = encrypt_sk(params, &sk, &pt, &mut rng).unwrap();
    assert!(ct_seeded.is_seeded() && !ct.is_seeded());
    Objects {
        params: he.encode(),
        ckks_params: params.encode(),
        sk: sk.encode(),
        pk: pk.encode(),
        rlk: rlk.encode(),
        gk: gk.encode(),
        pt: pt.encode(),
        ct: ct.encode(),
        ct_seeded: ct_seeded.encode(),
    }
}

#[test]
fn round_trips_are_identity() {
    let params = CkksParams::for_depth_insecure_for_tests(64, 2, 30, 40).unwrap();
    let he = params.he();
    let o = objects(&params, 1);
    assert_eq!(
        HeParams::decode_insecure_for_tests(&o.params)
            .unwrap()
            .encode(),
        o.params
    );
    let p2 = CkksParams::decode_insecure_for_tests(&o.ckks_params).unwrap();
    assert_eq!(p2.encode(), o.ckks_params);
    assert_eq!(p2.he().fingerprint(), he.fingerprint());
    assert_eq!(SecretKey::decode(he, &o.sk).unwrap().encode(), o.sk);
    assert_eq!(PublicKey::decode(he, &o.pk).unwrap().encode(), o.pk);
    assert_eq!(RelinKey::decode(he, &o.rlk).unwrap().encode(), o.rlk);
    assert_eq!(GaloisKeys::decode(he, &o.gk).unwrap().encode(), o.gk);
    assert_eq!(Plaintext::decode(&params, &o.pt).unwrap().encode(), o.pt);
    assert_eq!(Ciphertext::decode(&params, &o.ct).unwrap().encode(), o.ct);
    let seeded = Ciphertext::decode(&params, &o.ct_seeded).unwrap();
    assert_eq!(seeded.encode(), o.ct_seeded);
    // Seed compression halves the ciphertext (up to the header, metadata and seed).
    assert_eq!(
        o.ct.len() - o.ct_seeded.len(),
        2 * 64 * 3 * 8 - (64 * 3 * 8 + 32)
    );
    // A decoded seeded ciphertext still decrypts correctly after an operation.
    let ev = Evaluator::new(&params);
    let sum = ev
        .add(&seeded, &Ciphertext::decode(&params, &o.ct).unwrap())
        .unwrap();
    assert!(!sum.is_seeded());
    // Secure parameters decode with the default decoder; insecure ones do not.
    let secure = CkksParams::default_for(4096).unwrap();
    assert_eq!(
        CkksParams::decode(&secure.encode()).unwrap().encode(),
        secure.encode()
    );
    assert!(matches!(
        CkksParams::decode(&o.ckks_params),
        Err(WireError::BadValue {
            what: "security level code",
            value: 0
        })
    ));
    assert!(matches!(
        HeParams::decode(&o.params),
        Err(WireError::BadValue { value: 0, .. })
    ));
}

#[test]
fn malformed_bytes_give_typed_errors() {
    let params = fuzz_params();
    let he = params.he();
    let o = objects(&params, 2);
    // Truncation anywhere.
    for cut in [0, 3, HEADER_SIZE - 1, HEADER_SIZE, o.ct.len() - 1] {
        assert!(
            matches!(
                Ciphertext::decode(&params, &o.ct[..cut]),
                Err(WireError::Truncated { .. })
            ),
            "cut at {cut}"
        );
    }
    // Trailing bytes.
    let mut long = o.pk.clone();
    long.push(0);
    assert_eq!(
        PublicKey::decode(he, &long),
        Err(WireError::TrailingBytes { count: 1 })
    );
    // Magic, version, kind.
    let mut bad = o.sk.clone();
    bad[0] = b'X';
    assert!(matches!(
        SecretKey::decode(he, &bad),
        Err(WireError::BadMagic { .. })
    ));
    let mut bad = o.sk.clone();
    bad[4] = 9;
    assert_eq!(
        SecretKey::decode(he, &bad).unwrap_err(),
        WireError::BadVersion { found: 9 }
    );
    assert_eq!(
        SecretKey::decode(he, &o.pk).unwrap_err(),
        WireError::WrongKind {
            expected: Kind::SecretKey.code(),
            found: Kind::PublicKey.code()
        }
    );
    assert!(matches!(
        Plaintext::decode(&params, &o.ct),
        Err(WireError::WrongKind { .. })
    ));
    assert!(matches!(
        RelinKey::decode(he, &o.gk),
        Err(WireError::WrongKind { .. })
    ));
    assert!(matches!(
        GaloisKeys::decode(he, &o.rlk),
        Err(WireError::WrongKind { .. })
    ));
    // Foreign parameters.
    let other = CkksParams::for_depth_insecure_for_tests(16, 1, 31, 40).unwrap();
    assert!(matches!(
        Ciphertext::decode(&other, &o.ct),
        Err(WireError::ForeignParams { .. })
    ));
    // A header whose fingerprint disagrees with the parameters it carries.
    let mut bad = o.params.clone();
    bad[8] ^= 1;
    assert!(matches!(
        HeParams::decode_insecure_for_tests(&bad),
        Err(WireError::ForeignParams { .. })
    ));
    // A declared length that disagrees with the level (level field changed to 2 of 2).
    let mut bad = o.ct.clone();
    bad[HEADER_SIZE] = 1;
    let max = he.max_level() as u8;
    bad[HEADER_SIZE] = max + 1;
    assert!(matches!(
        Ciphertext::decode(&params, &bad),
        Err(WireError::TooLarge { what: "level", .. })
    ));
    bad[HEADER_SIZE] = 0;
    assert!(matches!(
        Ciphertext::decode(&params, &bad),
        Err(WireError::TooLarge { what: "level", .. })
    ));
    bad[HEADER_SIZE] = 1;
    assert!(matches!(
        Ciphertext::decode(&params, &bad),
        Err(WireError::BadLength { .. })
    ));
    // Oversized declared body.
    let mut bad = o.pt.clone();
    bad[16..20].copy_from_slice(&(MAX_BODY as u32 + 1).to_le_bytes());
    assert!(matches!(
        Plaintext::decode(&params, &bad),
        Err(WireError::TooLarge { .. })
    ));
    // A residue not below its prime.
    let mut bad = o.pk.clone();
    bad[HEADER_SIZE..HEADER_SIZE + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        PublicKey::decode(he, &bad),
        Err(WireError::ResidueOutOfRange {
            limb: 0,
            value: u64::MAX,
            ..
        })
    ));
    // A NaN scale and a negative bound.
    let mut bad = o.pt.clone();
    bad[HEADER_SIZE + 4..HEADER_SIZE + 12].copy_from_slice(&f64::NAN.to_bits().to_le_bytes());
    assert!(matches!(
        Plaintext::decode(&params, &bad),
        Err(WireError::BadValue { what: "scale", .. })
    ));
    let mut bad = o.pt.clone();
    bad[HEADER_SIZE + 12..HEADER_SIZE + 20].copy_from_slice(&(-1.0f64).to_bits().to_le_bytes());
    assert!(matches!(
        Plaintext::decode(&params, &bad),
        Err(WireError::BadValue { what: "bound", .. })
    ));
    // Galois keys: too many, and a bad element.
    let mut bad = o.gk.clone();
    bad[HEADER_SIZE..HEADER_SIZE + 4].copy_from_slice(&1000u32.to_le_bytes());
    assert!(matches!(
        GaloisKeys::decode(he, &bad),
        Err(WireError::TooLarge { .. })
    ));
    let mut bad = o.gk.clone();
    bad[HEADER_SIZE + 4..HEADER_SIZE + 12].copy_from_slice(&4u64.to_le_bytes());
    assert!(matches!(
        GaloisKeys::decode(he, &bad),
        Err(WireError::BadValue { value: 4, .. })
    ));
    // Parameters: chain too long, bad security code, invalid primes.
    let mut bad = o.params.clone();
    bad[HEADER_SIZE + 5..HEADER_SIZE + 9].copy_from_slice(&100u32.to_le_bytes());
    assert!(matches!(
        HeParams::decode_insecure_for_tests(&bad),
        Err(WireError::TooLarge { value: 100, .. })
    ));
    let mut bad = o.params.clone();
    bad[HEADER_SIZE + 4] = 7;
    assert!(matches!(
        HeParams::decode_insecure_for_tests(&bad),
        Err(WireError::BadValue { value: 7, .. })
    ));
    let mut bad = o.params.clone();
    bad[HEADER_SIZE + 9..HEADER_SIZE + 17].copy_from_slice(&15u64.to_le_bytes());
    assert!(matches!(
        HeParams::decode_insecure_for_tests(&bad),
        Err(WireError::Params(_))
    ));
    // Every error has a message naming its values.
    let e = WireError::ResidueOutOfRange {
        limb: 1,
        value: 99,
        prime: 97,
    };
    assert_eq!(
        e.to_string(),
        "residue 99 in limb 1 is not below its prime 97"
    );
}

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target)
}

/// The seed corpora: valid objects and corrupted variants, per target.
fn corpus() -> Vec<(&'static str, String, Vec<u8>)> {
    let params = fuzz_params();
    let o = objects(&params, 3);
    let mut out = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: &[u8]| {
        out.push((target, format!("valid-{name}"), bytes.to_vec()));
        out.push((
            target,
            format!("invalid-{name}-truncated"),
            bytes[..bytes.len() - 1].to_vec(),
        ));
        let mut flipped = bytes.to_vec();
        flipped[6] ^= 0x40;
        out.push((target, format!("invalid-{name}-kind"), flipped));
    };
    add("decode_params", "params", &o.params);
    add("decode_params", "ckks-params", &o.ckks_params);
    add("decode_keys", "secret-key", &o.sk);
    add("decode_keys", "public-key", &o.pk);
    add("decode_keys", "relin-key", &o.rlk);
    add("decode_keys", "galois-keys", &o.gk);
    add("decode_ckks", "plaintext", &o.pt);
    add("decode_ckks", "ciphertext", &o.ct);
    add("decode_ckks", "ciphertext-seeded", &o.ct_seeded);
    out
}

fn decodes(target: &str, bytes: &[u8]) -> bool {
    let params = fuzz_params();
    let he = params.he();
    match target {
        "decode_params" => {
            HeParams::decode_insecure_for_tests(bytes).is_ok()
                || CkksParams::decode_insecure_for_tests(bytes).is_ok()
        }
        "decode_keys" => {
            SecretKey::decode(he, bytes).is_ok()
                || PublicKey::decode(he, bytes).is_ok()
                || RelinKey::decode(he, bytes).is_ok()
                || GaloisKeys::decode(he, bytes).is_ok()
        }
        "decode_ckks" => {
            Plaintext::decode(&params, bytes).is_ok() || Ciphertext::decode(&params, bytes).is_ok()
        }
        other => panic!("unknown fuzz target {other}"),
    }
}

#[test]
fn seed_corpora_replay_with_expected_outcomes() {
    let generated = corpus();
    if std::env::var_os("HEIST_WRITE_CORPUS").is_some() {
        for (target, name, bytes) in &generated {
            std::fs::create_dir_all(corpus_dir(target)).unwrap();
            std::fs::write(corpus_dir(target).join(name), bytes).unwrap();
        }
    }
    let mut count = 0;
    for target in ["decode_params", "decode_keys", "decode_ckks"] {
        let mut entries: Vec<_> = std::fs::read_dir(corpus_dir(target))
            .expect("corpus directory exists")
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            if name.starts_with("valid-") {
                assert!(decodes(target, &bytes), "{target}/{name} should decode");
            } else if name.starts_with("invalid-") {
                assert!(!decodes(target, &bytes), "{target}/{name} should fail");
            } else {
                panic!("corpus file {name} is named neither valid-* nor invalid-*");
            }
            count += 1;
        }
    }
    assert_eq!(
        count,
        generated.len(),
        "committed corpus differs from the generated one"
    );
    // The committed files are exactly what the generator produces now.
    for (target, name, bytes) in &generated {
        assert_eq!(
            &std::fs::read(corpus_dir(target).join(name)).unwrap(),
            bytes,
            "{target}/{name}"
        );
    }
}
