//! The IDX reader: the fuzz seed corpus replayed on stable, known errors, round trips and
//! arbitrary bytes.

use std::path::PathBuf;

use heist::data::idx::{self, IdxError};
use proptest::prelude::*;

/// Output limit used for untrusted test inputs, as in the fuzz target.
const LIMIT: usize = 1 << 20;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/idx")
}

/// What the fuzz target checks of every input: decoding never panics, and what decodes has
/// consistent dimensions and re-encodes to itself.
fn check_property(bytes: &[u8]) -> Result<idx::IdxArray, IdxError> {
    let decoded = idx::decode(bytes, "input", LIMIT);
    if let Ok(a) = &decoded {
        let count: u64 = a.dims.iter().map(|&d| u64::from(d)).product();
        assert_eq!(Some(count), u64::try_from(a.data.len()).ok());
        let again = idx::encode(&a.dims, &a.data);
        assert_eq!(idx::decode(&again, "again", LIMIT).ok().as_ref(), Some(a));
    }
    decoded
}

#[test]
fn seed_corpus_replays_with_expected_outcomes() {
    let mut entries: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("fuzz/seeds/idx exists")
        .map(|e| e.expect("readable entry").path())
        .collect();
    entries.sort();
    let (mut valid, mut invalid) = (0, 0);
    for path in &entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let bytes = std::fs::read(path).expect("readable corpus file");
        let result = check_property(&bytes);
        if name.starts_with("valid-") {
            assert!(result.is_ok(), "{name}: {result:?}");
            valid += 1;
        } else if name.starts_with("invalid-") {
            assert!(result.is_err(), "{name} decoded: {result:?}");
            invalid += 1;
        } else {
            panic!("corpus file {name} is named neither valid-* nor invalid-*");
        }
    }
    assert!(
        valid >= 3 && invalid >= 8,
        "corpus too small: {valid} valid, {invalid} invalid"
    );
}

fn header(rank: u8, dims: &[u32]) -> Vec<u8> {
    let mut v = vec![0, 0, idx::TYPE_U8, rank];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v
}

#[test]
fn each_violation_has_its_error_naming_the_file() {
    type Case = (Vec<u8>, fn(&IdxError) -> bool);
    let cases: Vec<Case> = vec![
        (vec![0, 0, 8], |e| {
            matches!(
                e,
                IdxError::TooShort {
                    len: 3,
                    needed: 4,
                    ..
                }
            )
        }),
        (vec![0, 1, 8, 1, 0, 0, 0, 0], |e| {
            matches!(e, IdxError::BadMagic { magic: [0, 1], .. })
        }),
        (vec![0, 0, 0x0b, 1, 0, 0, 0, 0], |e| {
            matches!(e, IdxError::UnsupportedType { code: 0x0b, .. })
        }),
        (vec![0, 0, 8, 0], |e| {
            matches!(e, IdxError::BadRank { rank: 0, .. })
        }),
        (vec![0, 0, 8, 5], |e| {
            matches!(e, IdxError::BadRank { rank: 5, .. })
        }),
        (vec![0, 0, 8, 2, 0, 0, 0, 1], |e| {
            matches!(e, IdxError::TooShort { needed: 12, .. })
        }),
        (header(3, &[u32::MAX, u32::MAX, 2]), |e| {
            matches!(e, IdxError::DeclaredTooLarge { .. })
        }),
        ([header(1, &[3]), vec![1, 2]].concat(), |e| {
            matches!(
                e,
                IdxError::LengthMismatch {
                    expected: 3,
                    actual: 2,
                    ..
                }
            )
        }),
        ([header(1, &[3]), vec![1, 2, 3, 4]].concat(), |e| {
            matches!(
                e,
                IdxError::LengthMismatch {
                    expected: 3,
                    actual: 4,
                    ..
                }
            )
        }),
    ];
    for (bytes, is_expected) in cases {
        let err = idx::decode(&bytes, "some/file-idx1-ubyte", LIMIT).expect_err("must fail");
        assert!(is_expected(&err), "{bytes:02x?}: unexpected {err:?}");
        assert!(
            err.to_string().starts_with("some/file-idx1-ubyte: "),
            "message does not name the file: {err}"
        );
    }
}

#[test]
fn gzip_is_detected_and_bounded() {
    let raw = idx::encode(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    let gz = heist::data::subset::gzip(&raw).expect("gzip");
    assert_eq!(
        idx::decode(&gz, "a.gz", LIMIT).expect("decodes"),
        idx::decode(&raw, "a", LIMIT).expect("decodes")
    );
    // Exactly at the limit passes, one byte over fails.
    assert!(idx::decompress(gz.clone(), "a.gz", raw.len()).is_ok());
    let over = idx::decompress(gz, "a.gz", raw.len() - 1).expect_err("over the limit");
    assert!(
        matches!(over, IdxError::TooLarge { limit, .. } if limit == raw.len() - 1),
        "{over:?}"
    );
    // A small file that inflates past the limit is cut off, not allocated.
    let bomb = heist::data::subset::gzip(&vec![0u8; 4 * LIMIT]).expect("gzip");
    assert!(bomb.len() < LIMIT / 64);
    let err = idx::decode(&bomb, "bomb.gz", LIMIT).expect_err("bomb rejected");
    assert!(matches!(err, IdxError::TooLarge { .. }), "{err:?}");
    // A raw input over the limit is rejected too.
    let err = idx::decompress(vec![0; 11], "raw", 10).expect_err("raw over the limit");
    assert!(
        matches!(err, IdxError::TooLarge { limit: 10, .. }),
        "{err:?}"
    );
}

#[test]
fn corrupt_gzip_is_a_gzip_error() {
    let raw = idx::encode(&[4], &[1, 2, 3, 4]);
    let mut gz = heist::data::subset::gzip(&raw).expect("gzip");
    let n = gz.len();
    gz[n - 5] ^= 0xff; // inside the CRC/length trailer
    let err = idx::decode(&gz, "c.gz", LIMIT).expect_err("corrupt");
    assert!(matches!(err, IdxError::Gzip { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("c.gz: corrupt gzip stream"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(heist_tests::seeded_config(256))]

    #[test]
    fn encode_decode_round_trips(dims in prop::collection::vec(0u32..6, 1..=4), fill in any::<u8>()) {
        let n: u32 = dims.iter().product();
        let data: Vec<u8> = (0..n).map(|i| fill.wrapping_add(i as u8)).collect();
        let bytes = idx::encode(&dims, &data);
        let a = idx::decode(&bytes, "p", LIMIT).expect("valid");
        prop_assert_eq!(&a.dims, &dims);
        prop_assert_eq!(&a.data, &data);
        // Every strict prefix and every one-byte extension is rejected.
        for cut in 0..bytes.len() {
            prop_assert!(idx::decode(&bytes[..cut], "p", LIMIT).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(idx::decode(&longer, "p", LIMIT).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = check_property(&bytes);
    }

    #[test]
    fn arbitrary_headers_never_panic(rank in 0u8..8, dims in prop::collection::vec(any::<u32>(), 0..8), tail in prop::collection::vec(any::<u8>(), 0..32)) {
        let mut bytes = vec![0, 0, idx::TYPE_U8, rank];
        for d in dims {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend(tail);
        let _ = check_property(&bytes);
    }
}
