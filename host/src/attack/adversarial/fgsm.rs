//! The fast gradient sign method (Goodfellow, Shlens and Szegedy, "Explaining and
//! Harnessing Adversarial Examples", ICLR 2015), as ART's `FastGradientMethod` with
//! `norm=inf`, `num_random_init=0`, `minimal=False`: one step
//! `x' = clip(x + eps · sign(∇ₓ CE(f(x), y)), 0, 1)`, with `sign(0) = 0`.

use super::{check_labels, check_range, AttackError, ConfigError};
use crate::oracle::{GradientOracle, Image};

/// FGSM's one setting.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FgsmConfig {
    /// The L∞ budget, in `(0, 1]` (ART's `eps`; the paper's 0.3).
    pub eps: f32,
}

impl FgsmConfig {
    /// Checks the budget.
    ///
    /// # Errors
    /// `eps` outside `(0, 1]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("eps", f64::from(self.eps), 0.0, 1.0, true, "in (0, 1]")
    }
}

/// The FGSM images of `images` against `labels`, gradients from `twin`.
///
/// # Errors
/// An invalid configuration or labels; the oracle's failures.
pub fn fgsm<O: GradientOracle>(
    twin: &mut O,
    images: &[Image],
    labels: &[u8],
    config: &FgsmConfig,
) -> Result<Vec<Image>, AttackError<O::Error>> {
    config.validate()?;
    check_labels(images, labels)?;
    twin.signed_steps(images, images, labels, config.eps, config.eps, 1)
        .map_err(AttackError::Oracle)
}
