//! Projected gradient descent under L∞ (Madry et al., "Towards Deep Learning Models
//! Resistant to Adversarial Attacks", ICLR 2018) and the basic iterative method (Kurakin,
//! Goodfellow and Bengio, "Adversarial Examples in the Physical World", 2017), as ART's
//! `ProjectedGradientDescent` and `BasicIterativeMethod`:
//!
//! `x₀ = x` (BIM) or `x + U(−eps, eps)` clipped to `[0, 1]` (PGD's random start);
//! `x_{t+1} = Π_{B∞(x, eps) ∩ [0,1]}(x_t + step · sign(∇ CE(f(x_t), y)))` for `iters` steps,
//! with no early stop. With several restarts, an image keeps the first restart's result
//! until a later restart finds one the twin misclassifies (ART keeps "the most successful").

use rand_core::{RngCore, SeedableRng};

use super::{check_count, check_labels, check_range, project, AttackError, ConfigError};
use crate::oracle::{predicted_class, GradientOracle, Image};

/// PGD's and BIM's settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PgdConfig {
    /// The L∞ budget, in `(0, 1]`.
    pub eps: f32,
    /// The step size, in `(0, 1]` (ART's `eps_step`).
    pub step: f32,
    /// Steps per restart, at least 1 (ART's `max_iter`).
    pub iters: usize,
    /// Start from a uniform random point of the ball (PGD) or from the image (BIM).
    pub random_start: bool,
    /// Restarts, at least 1 (ART's `num_random_init`, 1 when 0).
    pub restarts: usize,
    /// Seed of the random starts.
    pub seed: u64,
}

impl PgdConfig {
    /// ART's `BasicIterativeMethod` at this budget, step and step count.
    pub fn bim(eps: f32, step: f32, iters: usize) -> Self {
        Self {
            eps,
            step,
            iters,
            random_start: false,
            restarts: 1,
            seed: 0,
        }
    }

    /// Checks every setting.
    ///
    /// # Errors
    /// The first setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("eps", f64::from(self.eps), 0.0, 1.0, true, "in (0, 1]")?;
        check_range("step", f64::from(self.step), 0.0, 1.0, true, "in (0, 1]")?;
        check_count("iters", self.iters)?;
        check_count("restarts", self.restarts)
    }
}

/// A uniform draw from `[-eps, eps]` for each pixel, from a ChaCha20 stream.
fn random_start(
    clean: &Image,
    eps: f32,
    rng: &mut impl RngCore,
) -> Result<Image, super::ImageError> {
    let moved: Vec<f32> = clean
        .pixels()
        .iter()
        .map(|&c| {
            // 24 random bits → a uniform value in [0, 1).
            let u = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
            c + eps * (2.0 * u - 1.0)
        })
        .collect();
    project(clean, &moved, eps)
}

/// The PGD (or BIM) images of `images` against `labels`, gradients from `twin`.
///
/// # Errors
/// An invalid configuration or labels; the oracle's failures.
pub fn pgd<O: GradientOracle>(
    twin: &mut O,
    images: &[Image],
    labels: &[u8],
    config: &PgdConfig,
) -> Result<Vec<Image>, AttackError<O::Error>> {
    config.validate()?;
    check_labels(images, labels)?;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(config.seed);
    let mut best: Option<(Vec<Image>, Vec<bool>)> = None;
    for _ in 0..config.restarts {
        let mut x = if config.random_start {
            images
                .iter()
                .map(|c| random_start(c, config.eps, &mut rng))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            images.to_vec()
        };
        x = twin
            .signed_steps(images, &x, labels, config.step, config.eps, config.iters)
            .map_err(AttackError::Oracle)?;
        let fooled: Vec<bool> = twin
            .query(&x)
            .map_err(AttackError::Oracle)?
            .iter()
            .zip(labels)
            .map(|(z, &l)| predicted_class(z) != usize::from(l))
            .collect();
        best = Some(match best {
            None => (x, fooled),
            Some((mut kept, mut kept_fooled)) => {
                for i in 0..kept.len() {
                    if fooled[i] && !kept_fooled[i] {
                        kept[i] = x[i].clone();
                        kept_fooled[i] = true;
                    }
                }
                (kept, kept_fooled)
            }
        });
    }
    Ok(best.map(|(x, _)| x).unwrap_or_default())
}
