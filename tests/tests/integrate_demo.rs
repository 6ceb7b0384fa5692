//! The model cache of `heist demo`: the key changes with the training data and with every
//! hyper-parameter, and only with them.

use std::path::Path;

use heist::data::{load, Dataset};
use heist::model::Architecture;
use heist::train::cache::cache_path;
use heist::train::optim::OptimizerKind;
use heist::train::TrainConfig;

fn config() -> TrainConfig {
    TrainConfig {
        arch: Architecture::Mnist,
        epochs: 20,
        batch_size: 128,
        lr: 1e-3,
        optimizer: OptimizerKind::Adam,
        momentum: 0.0,
        clip_norm: None,
        fraction: 1.0,
        seed: 0,
    }
}

#[test]
fn cache_key_follows_data_and_hyper_parameters() {
    let data = load(Dataset::Mnist, None, true).unwrap();
    let dir = Path::new("cache");
    let base = cache_path(dir, &data.train, &config()).unwrap();
    assert_eq!(base, cache_path(dir, &data.train, &config()).unwrap());
    assert!(base.starts_with(dir));

    let variants = [
        TrainConfig {
            seed: 1,
            ..config()
        },
        TrainConfig {
            epochs: 21,
            ..config()
        },
        TrainConfig {
            lr: 2e-3,
            ..config()
        },
        TrainConfig {
            optimizer: OptimizerKind::Sgd,
            ..config()
        },
        TrainConfig {
            arch: Architecture::Fashion,
            ..config()
        },
    ];
    for variant in &variants {
        assert_ne!(base, cache_path(dir, &data.train, variant).unwrap());
    }
    let fewer = data.train.truncated(data.train.len() - 1);
    assert_ne!(base, cache_path(dir, &fewer, &config()).unwrap());
}
