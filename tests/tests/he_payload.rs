//! The seed corpus of the `he_payload` fuzz target: generated here from a seeded run,
//! committed under `fuzz/seeds/he_payload/`, and replayed with the expected outcome of
//! every file for the four entry points the target fuzzes: the BFV and CKKS compute
//! servers' `BatchEvaluator::evaluate` accept exactly the `<scheme>-batch-ok-*` files of
//! their scheme, the trusted parties' `BatchCodec::decrypt_batch` exactly the
//! `<scheme>-reply-ok-*` files; everything else, the other scheme's valid payloads
//! included, is refused with an error. `HEIST_WRITE_CORPUS=1` rewrites the committed files.

use std::path::PathBuf;

use heist::oracle::Image;
use heist::service::{BatchCodec, BatchEvaluator};
use heist_tests::payloads::{bfv_pair, ckks_pair, Fixture};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/he_payload")
}

/// Inputs the fuzz target once failed on, kept as they were found.
fn regressions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/he_payload")
}

/// For `scheme`: a batch of one image and its reply; for each, the payload truncated,
/// with its count raised, and with a byte of its first ciphertext's header flipped (the
/// bad variants keep at most the first kilobyte: they are refused before that).
fn corpus<C: BatchCodec, E: BatchEvaluator>(
    scheme: &str,
    (mut codec, evaluator): (C, E),
) -> Vec<(String, Vec<u8>)> {
    let session = evaluator
        .open_session(&codec.evaluation_context().unwrap())
        .unwrap();
    let pixels: Vec<f32> = (0..784).map(|i| (i % 256) as f32 / 255.0).collect();
    let image = Image::new(&pixels).unwrap();
    let batch = codec.encrypt_batch(&[image]).unwrap();
    let reply = evaluator.evaluate(&session, &batch).unwrap();
    let mut out = Vec::new();
    for (kind, bytes) in [("batch", batch), ("reply", reply)] {
        let keep = bytes.len().min(1024);
        out.push((
            format!("{scheme}-{kind}-bad-truncated"),
            bytes[..keep.min(bytes.len() - 1)].to_vec(),
        ));
        let mut count = bytes[..keep].to_vec();
        count[0] = count[0].wrapping_add(1);
        out.push((format!("{scheme}-{kind}-bad-count"), count));
        // Bytes 0..4 count, 4..8 the first length, then the first ciphertext's header.
        let mut header = bytes[..keep].to_vec();
        header[8 + 6] ^= 0x40;
        out.push((format!("{scheme}-{kind}-bad-header"), header));
        out.push((format!("{scheme}-{kind}-ok-valid"), bytes));
    }
    out
}

/// Every committed file through `scheme`'s pair, against the outcome its name states.
fn check<C: BatchCodec, E: BatchEvaluator>(
    scheme: &str,
    (mut codec, evaluator): (C, E),
    files: &[(String, Vec<u8>)],
) {
    let session = evaluator
        .open_session(&codec.evaluation_context().unwrap())
        .unwrap();
    for (name, bytes) in files {
        let evaluated = evaluator.evaluate(&session, bytes);
        assert_eq!(
            evaluated.is_ok(),
            name.starts_with(&format!("{scheme}-batch-ok-")),
            "{scheme} evaluates {name}: {:?}",
            evaluated.as_ref().err()
        );
        if let Ok(reply) = evaluated {
            assert!(codec.decrypt_batch(&reply, 1).is_ok(), "{name}");
        }
        let decrypted = codec.decrypt_batch(bytes, 1);
        assert_eq!(
            decrypted.is_ok(),
            name.starts_with(&format!("{scheme}-reply-ok-")),
            "{scheme} decrypts {name}: {:?}",
            decrypted.as_ref().err()
        );
    }
}

#[test]
fn payload_corpus_replays_with_expected_outcomes() {
    let mut generated = vec![("empty".to_string(), Vec::new())];
    generated.extend(corpus("bfv", bfv_pair()));
    generated.extend(corpus("ckks", ckks_pair()));
    if std::env::var_os("HEIST_WRITE_CORPUS").is_some() {
        std::fs::create_dir_all(corpus_dir()).unwrap();
        for (name, bytes) in &generated {
            std::fs::write(corpus_dir().join(name), bytes).unwrap();
        }
    }
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory exists")
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    generated.sort();
    assert_eq!(
        files, generated,
        "committed corpus differs from the generated one"
    );
    check("bfv", bfv_pair(), &files);
    check("ckks", ckks_pair(), &files);
}

/// Every committed finding of the `he_payload` target through the fixture the target runs
/// (`heist_tests::payloads::Fixture::run`): the invariant it once broke now holds.
/// `ckks-infinite-message-bound` is a batch at the plan's level and scale whose claimed
/// bounds made the compute server's tracked bounds overflow to infinity, so that the
/// trusted party refused the reply; the compute server now refuses bounds above the
/// plan's and tracks the plan's own. `ckks-accepted-batch-decrypts-out-of-bound` is a
/// batch with well-formed metadata whose ciphertext coefficients the fuzzer changed: it
/// decrypts to values far beyond the plan's range, which no server can see (the content of
/// a ciphertext is hidden from it), so the trusted party's refusal of the scores
/// (`HeBatchError::IllFormed` or `OutOfBound`) is the right answer and the invariant
/// allows it; refusals of the wire format still break it.
#[test]
fn fuzz_findings_replay_without_violating_the_invariant() {
    let mut files: Vec<_> = std::fs::read_dir(regressions_dir())
        .expect("regressions directory exists")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut bfv = Fixture::new(bfv_pair()).expect("BFV fixture");
    let mut ckks = Fixture::new(ckks_pair()).expect("CKKS fixture");
    for path in files {
        let data = std::fs::read(&path).unwrap();
        assert_eq!(bfv.run(&data), Ok(()), "{}", path.display());
        assert_eq!(ckks.run(&data), Ok(()), "{}", path.display());
    }
}
