//! Attack 1 (paper §5.2, Table 4): adversarial examples made by whoever sits on the
//! client ↔ trusted-party link, before encryption. HE protects the image only after the
//! trusted party encrypts it, so the service faithfully classifies whatever arrives.
//!
//! White-box attacks ([`fgsm`], [`pgd`] (BIM is PGD without a random start), [`cw`]) take
//! their gradients from the plaintext twin of the deployed model through a
//! [`GradientOracle`](crate::oracle::GradientOracle); the black-box [`square`] attack
//! needs no weights and queries the service itself, and [`transfer`] attacks a surrogate
//! trained on the service's labels. [`training`] is the countermeasure: Madry et al.'s
//! adversarial training. Definitions follow IBM ART 1.20 (`FastGradientMethod`,
//! `ProjectedGradientDescent`, `BasicIterativeMethod`, `CarliniL2Method`, `SquareAttack`);
//! each module states where it departs from ART. Pixels are in `[0, 1]` throughout;
//! `eps` bounds the L∞ distance to the clean image.

pub mod cw;
pub mod experiment;
pub mod fgsm;
pub mod mitm;
pub mod pgd;
pub mod square;
pub mod training;
pub mod transfer;

use crate::oracle::{predicted_class, Image, ImageError, Oracle, Scores, CLASSES};

/// A configuration value outside its valid range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{what} must be {expected}, got {value}")]
pub struct ConfigError {
    /// The setting (its flag name).
    pub what: &'static str,
    /// The valid range, in words.
    pub expected: &'static str,
    /// The value given.
    pub value: f64,
}

/// Checks that `value` is finite and in `[lo, hi]` (or `(lo, hi]` when `open_lo`).
pub(crate) fn check_range(
    what: &'static str,
    value: f64,
    lo: f64,
    hi: f64,
    open_lo: bool,
    expected: &'static str,
) -> Result<(), ConfigError> {
    let above = if open_lo { value > lo } else { value >= lo };
    if value.is_finite() && above && value <= hi {
        Ok(())
    } else {
        Err(ConfigError {
            what,
            expected,
            value,
        })
    }
}

/// Checks that a count is at least one.
pub(crate) fn check_count(what: &'static str, value: usize) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError {
            what,
            expected: "at least 1",
            value: 0.0,
        })
    } else {
        Ok(())
    }
}

/// Why an attack stopped.
#[derive(Debug, thiserror::Error)]
pub enum AttackError<E: std::error::Error + 'static> {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Not one label per image, or a label that is not a class.
    #[error("{0}")]
    Labels(String),
    /// The oracle failed.
    #[error("oracle: {0}")]
    Oracle(#[source] E),
    /// A step produced pixels that are not an image (non-finite gradients).
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// Which labels an attack moves away from: ART's `y` (the true labels) or `y=None` (the
/// model's own predictions, which avoids label leaking).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Labels {
    /// The data set's labels.
    True,
    /// The twin model's predicted classes on the clean images.
    Predicted,
}

/// Checks one label per image, each a class.
pub(crate) fn check_labels<E: std::error::Error>(
    images: &[Image],
    labels: &[u8],
) -> Result<(), AttackError<E>> {
    if images.len() != labels.len() {
        return Err(AttackError::Labels(format!(
            "{} images but {} labels",
            images.len(),
            labels.len()
        )));
    }
    match labels.iter().position(|&l| usize::from(l) >= CLASSES) {
        Some(i) => Err(AttackError::Labels(format!(
            "label {} of image {i} is not below {CLASSES}",
            labels[i]
        ))),
        None => Ok(()),
    }
}

/// Projects `x` onto the L∞ ball of radius `eps` around `clean`, intersected with the box
/// `[0, 1]` (ART's `projection` followed by `np.clip`), and makes an [`Image`] of it.
///
/// # Errors
/// If `x` holds a non-finite value.
pub fn project(clean: &Image, x: &[f32], eps: f32) -> Result<Image, ImageError> {
    let projected: Vec<f32> = clean
        .pixels()
        .iter()
        .zip(x)
        .map(|(&c, &v)| v.clamp(c - eps, c + eps).clamp(0.0, 1.0))
        .collect();
    Image::new(&projected)
}

/// The labels an attack of this kind moves away from: `labels` for [`Labels::True`], the
/// classes `twin` predicts on `images` for [`Labels::Predicted`].
///
/// # Errors
/// The oracle's.
pub fn attack_labels<O: Oracle>(
    twin: &mut O,
    images: &[Image],
    labels: &[u8],
    which: Labels,
) -> Result<Vec<u8>, O::Error> {
    Ok(match which {
        Labels::True => labels.to_vec(),
        Labels::Predicted => twin
            .query(images)?
            .iter()
            .map(|z| predicted_class(z) as u8)
            .collect(),
    })
}

/// C&W's and Square's margin `z_y − max_{j≠y} z_j` (negative when the image is
/// misclassified) and the runner-up class `j`.
pub fn margin(scores: &Scores, label: usize) -> (f32, usize) {
    let (mut other, mut best) = (usize::from(label == 0), f32::NEG_INFINITY);
    for (j, &z) in scores.iter().enumerate() {
        if j != label && z > best {
            best = z;
            other = j;
        }
    }
    (scores[label] - best, other)
}

/// L2 and L∞ distances between two images.
pub fn distances(a: &Image, b: &Image) -> (f32, f32) {
    let (mut l2, mut linf) = (0.0f32, 0.0f32);
    for (&x, &y) in a.pixels().iter().zip(b.pixels().iter()) {
        let d = (x - y).abs();
        l2 += d * d;
        linf = linf.max(d);
    }
    (l2.sqrt(), linf)
}
