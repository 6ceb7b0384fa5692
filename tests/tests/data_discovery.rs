//! Finding, verifying and loading data sets; the embedded subset.

use std::path::{Path, PathBuf};

use heist::data::{
    self, idx, subset, DataError, Dataset, FileKind, FileSpec, Origin, Splits, CLASSES,
    IMAGE_PIXELS,
};

/// A fresh, empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heist-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// The four raw IDX files of `images` (train = test here) and their specs.
fn write_fixture(dir: &Path, gz: bool) -> [FileSpec; 4] {
    let emb = subset::load(Dataset::Mnist).expect("embedded subset");
    let small = emb.train.truncated(5);
    let raw = [
        idx::encode(&[5, 28, 28], &small.pixels),
        idx::encode(&[5], &small.labels),
        idx::encode(&[5, 28, 28], &small.pixels),
        idx::encode(&[5], &small.labels),
    ];
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut specs = Vec::new();
    for (bytes, kind) in raw.iter().zip(FileKind::ALL) {
        let (name, body) = if gz {
            (
                format!("{}.gz", kind.base_name()),
                subset::gzip(bytes).expect("gzip"),
            )
        } else {
            (kind.base_name().to_owned(), bytes.clone())
        };
        std::fs::write(dir.join(name), body).expect("write fixture");
        let sha: &'static str = Box::leak(data::sha256_hex(bytes).into_boxed_str());
        specs.push(FileSpec { kind, sha256: sha });
    }
    specs.try_into().expect("four specs")
}

#[test]
fn embedded_subset_has_its_documented_size_and_valid_labels() {
    for d in Dataset::ALL {
        let data = data::load(d, None, true).expect("embedded subset loads");
        assert_eq!(data.source, data::DataSource::EmbeddedSubset);
        assert_eq!(data.source.label(), "embedded-subset");
        assert!(data
            .source
            .notice()
            .is_some_and(|n| n.contains("EMBEDDED SUBSET")));
        assert_eq!(data.train.len(), subset::TRAIN_SIZE);
        assert_eq!(data.test.len(), subset::TEST_SIZE);
        assert_eq!(data.train.pixels.len(), subset::TRAIN_SIZE * IMAGE_PIXELS);
        assert!(data.train.labels.iter().all(|&l| usize::from(l) < CLASSES));
        // All ten classes occur in a uniform draw of this size.
        for c in 0..CLASSES as u8 {
            assert!(data.test.labels.contains(&c), "{d}: class {c} absent");
        }
        let m = subset::Manifest::embedded(d).expect("manifest parses");
        assert_eq!(m.dataset, d);
        assert_eq!(m.seed, subset::SUBSET_SEED);
        assert_eq!(m.source_checksum, d.checksum());
        // The manifest's indices are what the documented draw gives.
        let (train, test) = subset::draw(d, 60_000, 10_000);
        assert_eq!(m.train_indices, train);
        assert_eq!(m.test_indices, test);
    }
}

#[test]
fn explicit_directory_is_the_only_candidate() {
    let c = data::candidates(Dataset::Fashion, Some(Path::new("/some/root")));
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].dir, Path::new("/some/root/fashion-mnist"));
    assert_eq!(c[0].origin, Origin::Flag);
    let implicit = data::candidates(Dataset::Mnist, None);
    match std::env::var_os(data::DATA_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(root) => {
            assert_eq!(implicit.len(), 1);
            assert_eq!(implicit[0].origin, Origin::Env);
            assert_eq!(implicit[0].dir, PathBuf::from(root).join("mnist"));
        }
        None => {
            let origins: Vec<_> = implicit.iter().map(|c| c.origin).collect();
            assert_eq!(origins, [Origin::Local, Origin::System]);
            assert_eq!(implicit[0].dir, Path::new("data/mnist"));
            assert_eq!(implicit[1].dir, Path::new("/usr/share/datasets/mnist"));
        }
    }
}

/// A test-only load reads neither training file: a corrupt one goes unnoticed there and is
/// refused by a full load; a missing one is refused by both.
#[test]
fn a_test_only_load_reads_no_training_file() {
    let dir = scratch("test-only").join("mnist");
    let specs = write_fixture(&dir, false);
    std::fs::write(dir.join(FileKind::ALL[0].base_name()), b"not an idx file").expect("write");
    let (train, test) =
        data::load_dir(&dir, Origin::Flag, &specs, Splits::TestOnly).expect("test files verify");
    assert_eq!((train.len(), test.len()), (0, 5));
    let err = data::load_dir(&dir, Origin::Flag, &specs, Splits::Both).expect_err("corrupt");
    assert!(matches!(err, DataError::Checksum { .. }), "{err}");
    std::fs::remove_file(dir.join(FileKind::ALL[1].base_name())).expect("remove");
    let err = data::load_dir(&dir, Origin::Flag, &specs, Splits::TestOnly).expect_err("missing");
    assert!(matches!(err, DataError::Missing { .. }), "{err}");
}

#[test]
fn raw_and_gzip_directories_load_and_verify() {
    for gz in [false, true] {
        let root = scratch(&format!("load-{gz}"));
        let dir = root.join("mnist");
        let specs = write_fixture(&dir, gz);
        assert!(data::is_complete(&dir));
        let (train, test) =
            data::load_dir(&dir, Origin::Flag, &specs, Splits::Both).expect("fixture loads");
        assert_eq!(train.len(), 5);
        assert_eq!(test, train);
        // The canonical checksums reject these files, naming the first one.
        let err = data::load(Dataset::Mnist, Some(&root), false).expect_err("not canonical");
        match err {
            DataError::Checksum { file, expected, .. } => {
                assert!(file.contains("train-images-idx3-ubyte"), "{file}");
                assert_eq!(expected, Dataset::Mnist.files()[0].sha256);
            }
            other => panic!("expected a checksum error, got {other:?}"),
        }
        std::fs::remove_dir_all(&root).expect("cleanup");
    }
}

#[test]
fn an_explicit_directory_missing_a_file_is_an_error_not_a_fallback() {
    let root = scratch("missing");
    let dir = root.join("mnist");
    write_fixture(&dir, true);
    std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte.gz")).expect("remove");
    assert!(!data::is_complete(&dir));
    let err = data::load(Dataset::Mnist, Some(&root), false).expect_err("incomplete");
    assert!(
        matches!(
            &err,
            DataError::Missing {
                name: "t10k-labels-idx1-ubyte",
                origin: Origin::Flag,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("given by --data-dir"), "{err}");
    std::fs::remove_dir_all(&root).expect("cleanup");
}

#[test]
fn mismatched_counts_and_bad_labels_are_rejected() {
    let images = idx::parse(idx::encode(&[2, 28, 28], &[0; 2 * IMAGE_PIXELS]), "i").expect("ok");
    let labels = idx::parse(idx::encode(&[3], &[1, 2, 3]), "l").expect("ok");
    let err = data::Images::from_idx(images.clone(), "i", labels, "l").expect_err("counts");
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                images: 2,
                labels: 3
            }
        ),
        "{err:?}"
    );
    let labels = idx::parse(idx::encode(&[2], &[1, 10]), "l").expect("ok");
    let err = data::Images::from_idx(images.clone(), "i", labels, "l").expect_err("label 10");
    assert!(
        matches!(
            err,
            DataError::BadLabel {
                index: 1,
                label: 10,
                ..
            }
        ),
        "{err:?}"
    );
    let wrong = idx::parse(idx::encode(&[2, 27, 29], &[0; 2 * 27 * 29]), "w").expect("ok");
    let labels = idx::parse(idx::encode(&[2], &[1, 2]), "l").expect("ok");
    let err = data::Images::from_idx(wrong, "w", labels, "l").expect_err("shape");
    assert!(matches!(err, DataError::Shape { .. }), "{err:?}");
}

#[test]
fn checksum_constants_identify_the_data_sets() {
    for d in Dataset::ALL {
        let sums: Vec<_> = d.files().iter().map(|f| f.sha256).collect();
        assert!(sums
            .iter()
            .all(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())));
        let kinds: Vec<_> = d.files().iter().map(|f| f.kind).collect();
        assert_eq!(kinds, FileKind::ALL);
    }
    assert_ne!(Dataset::Mnist.checksum(), Dataset::Fashion.checksum());
    // The well-known SHA-256 of the empty string pins the hex encoding.
    assert_eq!(
        data::sha256_hex(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}
