//! Adversarial training (Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep
//! Learning Models Resistant to Adversarial Attacks", ICLR 2018): every mini-batch is
//! replaced by its PGD images under the current weights before the gradient step, so the
//! network minimises the worst-case loss in the L∞ ball of radius `eps`.
//!
//! * **Inner maximisation**: PGD as [`super::pgd`] defines it (uniform random start in the
//!   ball, `steps` signed-gradient steps of size `step`, each projected onto the ball and
//!   the box `[0, 1]`), on the cross-entropy at the true labels, with the weights of the
//!   moment. Madry et al. used 40 steps of 0.01 at ε = 0.3 for MNIST; fewer, larger steps
//!   (the step ≥ 2.5 ε / steps rule) keep the cost of an epoch at `steps + 1` passes.
//! * **Outer minimisation**: [`crate::train::fit_with`], the trainer every model of heist
//!   uses, with the perturbation as its input hook; the optimiser settings are the
//!   caller's.
//! * **Stability**: square activations make the loss a polynomial of degree 4 (MNIST) in
//!   the input, so the adversarial loss of a fresh network is huge and its gradient blows
//!   up. Two measures keep training finite: a budget ramp (the budget grows linearly from
//!   `eps / warmup` to `eps` over the first `warmup` epochs, as in the curricula of later
//!   work) and the trainer's global gradient-norm clip.
//! * **Determinism**: a chunk's random start comes from a ChaCha20 stream keyed by the
//!   seed, the epoch and the chunk's first example, so the result does not depend on the
//!   number of threads.

use rand_core::RngCore;

use super::experiment::random_signs;
use super::fgsm::{fgsm, FgsmConfig};
use super::pgd::{pgd, PgdConfig};
use super::{check_count, check_labels, check_range, AttackError, ConfigError};
use crate::model::network::{LayerSpec, Network, Shape};
use crate::model::Architecture;
use crate::oracle::{
    predicted_class, signed_steps_chunk, Differentiable, Image, Oracle, PlainOracle,
    PlainOracleError, CLASSES, IMAGE_SIDE,
};
use crate::train::{stream_rng, TrainError};

/// The inner PGD of adversarial training.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct AdversarialConfig {
    /// The L∞ budget, in `(0, 1]`.
    pub eps: f32,
    /// PGD steps per mini-batch, at least 1.
    pub steps: usize,
    /// PGD step size, in `(0, 1]`.
    pub step: f32,
    /// Epochs over which the budget ramps up linearly to `eps` (0: full budget from the
    /// start).
    pub warmup: usize,
    /// Seed of the random starts.
    pub seed: u64,
}

impl AdversarialConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// The first setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("adv-eps", f64::from(self.eps), 0.0, 1.0, true, "in (0, 1]")?;
        check_count("adv-steps", self.steps)?;
        check_range(
            "adv-step",
            f64::from(self.step),
            0.0,
            1.0,
            true,
            "in (0, 1]",
        )
    }

    /// Checks that `net` is a classifier of [`CLASSES`] outputs.
    ///
    /// # Errors
    /// [`TrainError::Config`] otherwise.
    pub fn check_network(net: &Network) -> Result<(), TrainError> {
        if net.output_len() == CLASSES {
            Ok(())
        } else {
            Err(TrainError::Config(format!(
                "adversarial training needs {CLASSES} outputs, the network has {}",
                net.output_len()
            )))
        }
    }

    /// The budget used in `epoch` (1-based).
    pub fn eps_at(&self, epoch: usize) -> f32 {
        if epoch >= self.warmup {
            self.eps
        } else {
            self.eps * epoch as f32 / self.warmup as f32
        }
    }
}

/// Replaces the `labels.len()` inputs in `x` (row-major, `net.input_len()` values each, in
/// `[0, 1]`) by their PGD images at budget `eps` under `weights`.
pub fn pgd_inputs(
    net: &Network,
    weights: &[f32],
    x: &mut [f32],
    labels: &[u8],
    eps: f32,
    config: &AdversarialConfig,
    rng: &mut impl RngCore,
) {
    let clean = x.to_vec();
    let project = |v: f32, c: f32| v.clamp(c - eps, c + eps).clamp(0.0, 1.0);
    for (v, &c) in x.iter_mut().zip(&clean) {
        // 24 random bits → a uniform value in [0, 1).
        let u = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
        *v = project(c + eps * (2.0 * u - 1.0), c);
    }
    signed_steps_chunk(
        net,
        weights,
        x,
        &clean,
        labels,
        config.step,
        eps,
        config.steps,
    );
}

/// The input hook of [`crate::train::fit_with`] and [`crate::train::train_with`] that
/// makes training adversarial: each chunk of a mini-batch (example indices into `labels`)
/// is replaced by its PGD images under the weights of the moment, at the budget of the
/// epoch. `net` must have [`CLASSES`] outputs (check with [`AdversarialConfig::check_network`]).
pub fn madry_hook<'a>(
    net: &'a Network,
    labels: &'a [u8],
    config: &'a AdversarialConfig,
) -> impl Fn(usize, &[f32], &[usize], &mut [f32]) + Sync + 'a {
    move |epoch, weights, idx, x| {
        let chunk_labels: Vec<u8> = idx.iter().map(|&i| labels[i]).collect();
        let key = (epoch as u64) << 32 | idx.first().map_or(0, |&i| i as u64);
        let mut rng = stream_rng(config.seed, (1 << 63) | key);
        pgd_inputs(
            net,
            weights,
            x,
            &chunk_labels,
            config.eps_at(epoch),
            config,
            &mut rng,
        );
    }
}

/// The twin of `arch` with every square activation replaced by ReLU: the same layers,
/// shapes and parameter layout, so [`crate::train::train_network`] trains it from the same
/// initial weights. The encrypted service cannot run it; it is the fair plaintext
/// comparison for the square networks (Madry et al.'s networks use ReLU).
pub fn relu_twin(arch: Architecture) -> Network {
    let layers: Vec<LayerSpec> = arch
        .layers()
        .into_iter()
        .map(|l| match l {
            LayerSpec::Square => LayerSpec::Relu,
            other => other,
        })
        .collect();
    Network::new(Shape::chw(1, IMAGE_SIDE, IMAGE_SIDE), &layers)
        .unwrap_or_else(|e| unreachable!("the ReLU twin of {arch:?} is invalid: {e}"))
}

/// Plaintext accuracy of a classifier against the true labels, clean and under white-box
/// attacks with its own gradients.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Robustness {
    /// Images.
    pub images: usize,
    /// Clean accuracy.
    pub clean: f64,
    /// Under random ±ε per pixel (the baseline).
    pub noise: f64,
    /// Under FGSM.
    pub fgsm: f64,
    /// Under BIM.
    pub bim: f64,
    /// Under PGD.
    pub pgd: f64,
}

/// Measures [`Robustness`] of `classifier` on `images` and `labels` under the given FGSM,
/// BIM and PGD, and random signs at FGSM's budget (seed: PGD's).
///
/// # Errors
/// Invalid settings or labels.
pub fn robustness<C: Differentiable>(
    classifier: C,
    images: &[Image],
    labels: &[u8],
    fgsm_config: &FgsmConfig,
    bim: &PgdConfig,
    pgd_config: &PgdConfig,
) -> Result<Robustness, AttackError<PlainOracleError>> {
    check_labels(images, labels)?;
    let mut twin = PlainOracle::new(classifier);
    let accuracy =
        |twin: &mut PlainOracle<C>, x: &[Image]| -> Result<f64, AttackError<PlainOracleError>> {
            let scores = twin.query(x).map_err(AttackError::Oracle)?;
            let hits = scores
                .iter()
                .zip(labels)
                .filter(|(z, &y)| predicted_class(z) == usize::from(y))
                .count();
            Ok(crate::model::fraction(hits, x.len()))
        };
    let noisy = random_signs(images, fgsm_config.eps, pgd_config.seed)?;
    let f = fgsm(&mut twin, images, labels, fgsm_config)?;
    let b = pgd(&mut twin, images, labels, bim)?;
    let p = pgd(&mut twin, images, labels, pgd_config)?;
    Ok(Robustness {
        images: images.len(),
        clean: accuracy(&mut twin, images)?,
        noise: accuracy(&mut twin, &noisy)?,
        fgsm: accuracy(&mut twin, &f)?,
        bim: accuracy(&mut twin, &b)?,
        pgd: accuracy(&mut twin, &p)?,
    })
}
