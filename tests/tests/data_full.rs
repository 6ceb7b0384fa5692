//! Checks on the canonical data sets, run when `HEIST_DATA_DIR` names a directory holding
//! `mnist/` and `fashion-mnist/`; skipped with a notice otherwise.

use std::path::PathBuf;

use heist::data::{self, subset, Dataset};
use heist::model::Architecture;
use heist::train::{self, optim::OptimizerKind, TrainConfig};

fn data_root() -> Option<PathBuf> {
    let root = std::env::var_os(data::DATA_DIR_ENV).filter(|v| !v.is_empty());
    if root.is_none() {
        eprintln!(
            "SKIPPED: {} is not set; the canonical data are not available",
            data::DATA_DIR_ENV
        );
    }
    root.map(PathBuf::from)
}

#[test]
fn canonical_files_verify_and_have_the_known_first_labels() {
    let Some(root) = data_root() else { return };
    let first = [
        (Dataset::Mnist, [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]),
        (Dataset::Fashion, [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]),
    ];
    for (d, labels) in first {
        let data = data::load(d, Some(&root), false).expect("canonical data verify");
        assert!(!data.source.is_subset());
        assert_eq!(data.train.len(), 60_000);
        assert_eq!(data.test.len(), 10_000);
        assert_eq!(data.train.labels[..10], labels);
        // The embedded subset is exactly the documented draw from these files.
        let m = subset::Manifest::embedded(d).expect("manifest");
        let emb = subset::load(d).expect("embedded");
        assert_eq!(
            data.train.select(&m.train_indices),
            emb.train,
            "{d} train subset"
        );
        assert_eq!(
            data.test.select(&m.test_indices),
            emb.test,
            "{d} test subset"
        );
    }
}

#[test]
fn one_epoch_on_full_mnist_reaches_95_percent() {
    let Some(root) = data_root() else { return };
    let data = data::load(Dataset::Mnist, Some(&root), false).expect("canonical data");
    let cfg = TrainConfig {
        arch: Architecture::Mnist,
        epochs: 1,
        batch_size: 128,
        lr: 1e-3,
        optimizer: OptimizerKind::Adam,
        momentum: 0.0,
        clip_norm: None,
        fraction: 1.0,
        seed: 0,
    };
    let t = train::train(&data.train, &cfg, |_, _, _| {}).expect("trains");
    let acc = t.model.accuracy(&data.test);
    eprintln!(
        "full MNIST, 1 epoch: test accuracy {acc:.4} in {:.1} s",
        t.seconds
    );
    assert!(acc >= 0.95, "test accuracy {acc}");
}
