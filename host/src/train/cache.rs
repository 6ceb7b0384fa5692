//! The model cache: a trained model is stored under a key of everything that decides it
//! (the training images and labels, the architecture, every hyper-parameter, the seed), so
//! that a second run with the same inputs reuses it instead of training again.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::{train, TrainConfig};
use crate::data::Images;
use crate::model::Model;

/// The cache file of a model trained with `config` on `train`: a SHA-256 of the training
/// images and labels, the architecture, every hyper-parameter (seed included) and the
/// crate version (a new version may train differently).
///
/// # Errors
/// When the configuration cannot be serialised.
pub fn cache_path(dir: &Path, train: &Images, config: &TrainConfig) -> anyhow::Result<PathBuf> {
    let mut h = Sha256::new();
    h.update(Sha256::digest(&train.pixels));
    h.update(Sha256::digest(&train.labels));
    h.update(serde_json::to_vec(config)?);
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    let key = crate::data::hex(&h.finalize());
    Ok(dir.join(format!(
        "{}-{}.safetensors",
        config.arch.name(),
        key.get(..16).unwrap_or(&key)
    )))
}

/// The model cached at `path` if it loads, otherwise one trained now with `config` on
/// `train` and saved to `path` (in `dir`); `true` when the cached one is reused. A cache
/// file that does not load (corrupted, truncated, of another architecture) is reported on
/// stderr and replaced.
///
/// # Errors
/// When training fails or the model cannot be saved.
pub fn cached_or_trained(
    path: &Path,
    dir: &Path,
    train_set: &Images,
    config: &TrainConfig,
) -> anyhow::Result<(Model, bool)> {
    if path.exists() {
        match Model::load(path, Some(config.arch)) {
            Ok(model) => {
                eprintln!("reusing the cached model {}", path.display());
                return Ok((model, true));
            }
            Err(e) => eprintln!(
                "warning: the cached model {} does not load ({e:#}); training a new one",
                path.display()
            ),
        }
    }
    eprintln!(
        "training {} on {} images for {} epochs",
        config.arch,
        train_set.len(),
        config.epochs
    );
    let trained = train(train_set, config, |_, _, _| {}).map_err(anyhow::Error::from)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    trained
        .model
        .save(path)
        .with_context(|| format!("saving {}", path.display()))?;
    eprintln!(
        "trained in {:.1} s, saved to {}",
        trained.seconds,
        path.display()
    );
    Ok((trained.model, false))
}
