//! The transfer attack (Papernot, McDaniel, Goodfellow, Jha, Celik and Swami, "Practical
//! Black-Box Attacks against Machine Learning", AsiaCCS 2017, without their Jacobian data
//! augmentation): no weights and no gradients of the target, only its answers.
//!
//! 1. **Labels from the service.** The auxiliary images (disjoint from the images attacked;
//!    `heist attack adversarial` takes the first `--transfer-aux` images of the training
//!    split) go to the oracle, by default the encrypted service, in one query that the
//!    trusted party packs into as few encrypted batches as its slots allow. The attacker
//!    keeps the arg-max class of each answer. Labels rather than scores: a label is what
//!    any deployment releases (it survives the top-1 release policy), and the square
//!    networks' raw scores are unnormalised polynomials whose scale says little.
//! 2. **Surrogate.** The target's architecture (public in the paper's setting; its weights
//!    are not), freshly initialised from `seed`, trained by [`crate::train::fit`] on those
//!    images and labels with the target's own optimiser settings (softmax cross-entropy,
//!    Adam at lr 1e-3, batch 128) for `epochs` passes.
//! 3. **Attack.** BIM or PGD ([`super::pgd`]) under L∞ ≤ eps with the surrogate's
//!    gradients; the caller classifies the resulting images through the oracle.

use super::pgd::{pgd, PgdConfig};
use super::{check_count, AttackError, ConfigError};
use crate::model::{Architecture, Model};
use crate::oracle::{predicted_class, Image, Oracle, PlainOracle, PlainOracleError};
use crate::train::{fit, init_params, stream_rng, Targets, TrainConfig, TrainError};

/// The transfer attack's settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TransferConfig {
    /// Auxiliary images labelled through the oracle, at least 1.
    pub aux: usize,
    /// Passes of surrogate training over them, at least 1.
    pub epochs: usize,
    /// The attack run on the surrogate (its `eps` is the budget).
    pub attack: PgdConfig,
    /// Seed of the surrogate's initial weights and shuffles.
    pub seed: u64,
}

impl TransferConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// The first setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_count("transfer-aux", self.aux)?;
        check_count("transfer-epochs", self.epochs)?;
        self.attack.validate()
    }
}

/// Why the transfer attack stopped.
#[derive(Debug, thiserror::Error)]
pub enum TransferError<E: std::error::Error + 'static> {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Fewer auxiliary images than the configuration asks for.
    #[error("{given} auxiliary images given, {wanted} asked for")]
    TooFewAuxiliary {
        /// Images given.
        given: usize,
        /// `aux` of the configuration.
        wanted: usize,
    },
    /// The oracle failed labelling the auxiliary images.
    #[error("oracle: {0}")]
    Oracle(#[source] E),
    /// Surrogate training failed.
    #[error("surrogate training: {0}")]
    Train(#[from] TrainError),
    /// The attack on the surrogate failed.
    #[error("attack on the surrogate: {0}")]
    Attack(#[from] AttackError<PlainOracleError>),
}

/// A surrogate trained on the oracle's answers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Surrogate {
    /// The surrogate network.
    #[serde(skip)]
    pub model: Model,
    /// Auxiliary images labelled.
    pub aux: usize,
    /// Oracle queries spent on the labels (one per auxiliary image).
    pub label_queries: u64,
    /// Fraction of the auxiliary images on which the trained surrogate predicts the
    /// oracle's label.
    pub aux_agreement: f64,
}

/// Labels the first `config.aux` images of `aux` through `oracle` (arg-max of its
/// answers) and trains a surrogate of architecture `arch` on them.
///
/// # Errors
/// An invalid configuration, too few images, the oracle's failures, or divergence.
pub fn train_surrogate<O: Oracle>(
    oracle: &mut O,
    arch: Architecture,
    aux: &[Image],
    config: &TransferConfig,
) -> Result<Surrogate, TransferError<O::Error>> {
    config.validate()?;
    if aux.len() < config.aux {
        return Err(TransferError::TooFewAuxiliary {
            given: aux.len(),
            wanted: config.aux,
        });
    }
    let aux = &aux[..config.aux];
    let before = oracle.queries();
    let labels: Vec<u8> = oracle
        .query(aux)
        .map_err(TransferError::Oracle)?
        .iter()
        .map(|z| predicted_class(z) as u8)
        .collect();
    let label_queries = oracle.queries() - before;
    let net = arch.network();
    let mut params = init_params(arch, &mut stream_rng(config.seed, 0));
    let examples: Vec<usize> = (0..aux.len()).collect();
    let input = |i: usize, x: &mut Vec<f32>| x.extend_from_slice(aux[i].pixels());
    fit(
        &net,
        &mut params,
        &examples,
        &input,
        Targets::Labels(&labels),
        &TrainConfig::adam(arch, config.epochs, config.seed).fit_options(),
        &mut stream_rng(config.seed, 2),
        |_, _, _| {},
    )?;
    let model = Model::new(arch, params).map_err(|e| TrainError::Config(e.to_string()))?;
    let agree = model
        .predict(&crate::oracle::flat_pixels(aux))
        .iter()
        .zip(&labels)
        .filter(|(&p, &l)| p == usize::from(l))
        .count();
    Ok(Surrogate {
        model,
        aux: aux.len(),
        label_queries,
        aux_agreement: crate::model::fraction(agree, aux.len()),
    })
}

/// The transfer images of `images` against `labels`: `attack` with the surrogate's
/// gradients.
///
/// # Errors
/// An invalid configuration or labels.
pub fn transfer(
    surrogate: &Surrogate,
    images: &[Image],
    labels: &[u8],
    attack: &PgdConfig,
) -> Result<Vec<Image>, AttackError<PlainOracleError>> {
    pgd(
        &mut PlainOracle::new(surrogate.model.clone()),
        images,
        labels,
        attack,
    )
}
