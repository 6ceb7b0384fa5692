//! Carlini and Wagner's L2 attack ("Towards Evaluating the Robustness of Neural Networks",
//! IEEE S&P 2017), untargeted, batched over images:
//!
//! * box by the change of variables `x' = (tanh w + 1) / 2`, started at
//!   `w = artanh((2x − 1) · 0.999999)` (ART's `original_to_tanh`);
//! * loss `‖x' − x‖₂² + c · max(z_y − max_{j≠y} z_j + κ, 0)` on the raw scores `z`;
//! * `iters` Adam steps (β = 0.9, 0.999) per value of `c`, as Carlini and Wagner's own code
//!   does. ART replaces Adam by a line search that halves or doubles the learning rate; this
//!   is the one departure from ART here, and the reason the default learning rate and step
//!   count differ from ART's;
//! * `binary_steps` values of `c` per image, from `initial_const`, by ART's rule: after a
//!   success `c ← (c_low + c) / 2` (and `c` becomes the upper bound); after a failure with no
//!   success yet `c ← 2c`; after a failure once an upper bound exists, `c` moves halfway
//!   to it. `c` is capped at 10¹¹;
//! * the result is, per image, the adversarial point of smallest L2 distance found at any
//!   step (the twin classifies it as another class with margin at least κ), or the clean
//!   image when none was found (as ART returns it).
//!
//! C&W has no L∞ budget: report it unbounded, and projected onto `‖x' − x‖∞ ≤ eps`.

use super::{check_count, check_labels, check_range, margin, AttackError, ConfigError};
use crate::oracle::{predicted_class, GradientOracle, Image, CLASSES, IMAGE_PIXELS};

/// The largest `c` the binary search reaches (ART's cap).
const MAX_CONST: f64 = 1e11;

/// C&W's settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CwConfig {
    /// Values of `c` tried per image, at least 1 (ART's `binary_search_steps`).
    pub binary_steps: usize,
    /// Adam steps per value of `c`, at least 1 (ART's `max_iter`).
    pub iters: usize,
    /// Adam's learning rate, in `(0, 10]`.
    pub lr: f64,
    /// The first `c`, in `(0, 1e11]` (ART's `initial_const`).
    pub initial_const: f64,
    /// The margin κ ≥ 0 an adversarial point must clear (ART's `confidence`).
    pub confidence: f64,
}

impl CwConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// The first setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_count("cw-steps", self.binary_steps)?;
        check_count("cw-iters", self.iters)?;
        check_range("cw-lr", self.lr, 0.0, 10.0, true, "in (0, 10]")?;
        check_range(
            "cw-const",
            self.initial_const,
            0.0,
            MAX_CONST,
            true,
            "in (0, 1e11]",
        )?;
        check_range(
            "cw-confidence",
            self.confidence,
            0.0,
            1e6,
            false,
            "in [0, 1e6]",
        )
    }
}

/// What C&W found for each image.
#[derive(Debug, Clone)]
pub struct CwResult {
    /// The adversarial image of smallest L2 distance, or the clean image when none.
    pub images: Vec<Image>,
    /// Whether an adversarial point was found.
    pub found: Vec<bool>,
}

/// Per-image state of the binary search.
struct Search {
    c: f64,
    low: f64,
    high: Option<f64>,
    best_l2: f64,
}

/// The C&W L2 images of `images` against `labels`, gradients from `twin`.
///
/// # Errors
/// An invalid configuration or labels; the oracle's failures.
pub fn cw<O: GradientOracle>(
    twin: &mut O,
    images: &[Image],
    labels: &[u8],
    config: &CwConfig,
) -> Result<CwResult, AttackError<O::Error>> {
    config.validate()?;
    check_labels(images, labels)?;
    let n = images.len();
    let clean: Vec<f64> = images
        .iter()
        .flat_map(|im| im.pixels().map(f64::from))
        .collect();
    let start: Vec<f64> = clean
        .iter()
        .map(|&x| ((2.0 * x - 1.0) * 0.999_999).atanh())
        .collect();
    let mut search: Vec<Search> = (0..n)
        .map(|_| Search {
            c: config.initial_const,
            low: 0.0,
            high: None,
            best_l2: f64::INFINITY,
        })
        .collect();
    let mut best = images.to_vec();
    let mut found = vec![false; n];
    let kappa = config.confidence as f32;
    for _ in 0..config.binary_steps {
        let mut w = start.clone();
        let (mut m1, mut m2) = (vec![0.0f64; w.len()], vec![0.0f64; w.len()]);
        let mut success = vec![false; n];
        let consts: Vec<f32> = search.iter().map(|s| s.c as f32).collect();
        for t in 1..=config.iters {
            let x: Vec<f64> = w.iter().map(|&v| (v.tanh() + 1.0) / 2.0).collect();
            let query = x
                .chunks_exact(IMAGE_PIXELS)
                .map(|p| Image::new(&p.iter().map(|&v| v as f32).collect::<Vec<_>>()))
                .collect::<Result<Vec<_>, _>>()?;
            let (scores, grads) = twin
                .vjp(&query, &|i, z| {
                    let y = usize::from(labels[i]);
                    let (m, j) = margin(z, y);
                    let mut d = [0.0; CLASSES];
                    if m + kappa > 0.0 {
                        d[y] = consts[i];
                        d[j] = -consts[i];
                    }
                    d
                })
                .map_err(AttackError::Oracle)?;
            for i in 0..n {
                let y = usize::from(labels[i]);
                let range = i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS;
                let l2: f64 = x[range.clone()]
                    .iter()
                    .zip(&clean[range.clone()])
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                let (m, _) = margin(&scores[i], y);
                if predicted_class(&scores[i]) != y && m + kappa <= 0.0 {
                    success[i] = true;
                    if l2 < search[i].best_l2 {
                        search[i].best_l2 = l2;
                        best[i] = query[i].clone();
                        found[i] = true;
                    }
                }
                // ∂loss/∂w = (2 (x' − x) + c ∂margin/∂x') · (1 − tanh² w) / 2, then Adam.
                let (b1, b2) = (0.9f64, 0.999f64);
                let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
                for (k, &g_margin) in range.clone().zip(grads[i].iter()) {
                    let th = w[k].tanh();
                    let g = (2.0 * (x[k] - clean[k]) + f64::from(g_margin)) * (1.0 - th * th) / 2.0;
                    m1[k] = b1 * m1[k] + (1.0 - b1) * g;
                    m2[k] = b2 * m2[k] + (1.0 - b2) * g * g;
                    w[k] -= config.lr * (m1[k] / c1) / ((m2[k] / c2).sqrt() + 1e-8);
                }
            }
        }
        for (s, ok) in search.iter_mut().zip(success) {
            if ok {
                s.high = Some(s.c);
                s.c = (s.low + s.c) / 2.0;
            } else {
                s.low = s.c;
                s.c = match s.high {
                    Some(high) => (s.c + high) / 2.0,
                    None => (s.c * 2.0).min(MAX_CONST),
                };
            }
        }
    }
    Ok(CwResult {
        images: best,
        found,
    })
}
