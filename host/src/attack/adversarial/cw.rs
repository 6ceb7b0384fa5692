//! Carlini and Wagner's L2 attack ("Towards Evaluating the Robustness of Neural Networks",
//! IEEE S&P 2017), untargeted, batched over images:
//!
//! * box by the change of variables `x' = (tanh w + 1) / 2`, started at
//!   `w = artanh((2x − 1) · 0.999999)` (ART's `original_to_tanh`);
//! * loss `‖x' − x‖₂² + c · max(z_y − max_{j≠y} z_j + κ, 0)` on the raw scores `z`;
//! * `iters` steps per value of `c`, by one of two optimisers ([`CwOptimizer`]):
//!   - **Adam** (β = 0.9, 0.999), as Carlini and Wagner's own code does; `c` then follows
//!     the textbook binary search: after a success `c ← (c_low + c) / 2` (and `c` becomes
//!     the upper bound); after a failure with no success yet `c ← 2c`; after a failure once
//!     an upper bound exists, `c` moves halfway to it;
//!   - **ART's line search** (`CarliniL2Method.generate`, line for line): the step is the
//!     negative gradient of `‖x' − x‖₂² + c (z_y − z_j)` (the margin term whether or not the
//!     hinge is active, scaled by `(1 − tanh² w) / (2 · 0.999999)` as ART scales it); a
//!     per-image learning rate is halved (at most `max_halving` trials) until a trial
//!     lowers the loss, or doubled (at most `max_doubling`) while it keeps lowering it, and
//!     the best trial is taken. `c` follows ART's update as its code computes it: after a
//!     success `c ← (c_low + c) / 2`; after a failure `c ← 2c` while no success was seen,
//!     else `c ← c + (c − c_low) / 2`; and after a failure `c_low` becomes the **new** `c`
//!     (ART assigns `c_old = c_current`, an alias, before updating `c_current` in place).
//!     Success and the loss of an image whose line search found no better trial keep the
//!     values of its last trial, as in ART;
//! * `binary_steps` values of `c` per image, from `initial_const`; an image stops once `c`
//!   reaches 10¹¹ (ART's cap);
//! * the result is, per image, the adversarial point of smallest L2 distance found at any
//!   step (the twin classifies it as another class with margin at least κ), or the clean
//!   image when none was found (as ART returns it).
//!
//! C&W has no L∞ budget: report it unbounded, and projected onto `‖x' − x‖∞ ≤ eps`.

use rayon::prelude::*;

use super::{check_count, check_labels, check_range, margin, AttackError, ConfigError};
use crate::oracle::{predicted_class, GradientOracle, Image, CLASSES, IMAGE_PIXELS};

/// The largest `c` the binary search reaches (ART's cap).
const MAX_CONST: f64 = 1e11;

/// ART's `_tanh_smoother`: keeps `artanh` finite at pixels 0 and 1.
const TANH_SMOOTHER: f64 = 0.999_999;

/// How C&W minimises its loss for one value of `c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum CwOptimizer {
    /// Adam, as Carlini and Wagner's own code.
    Adam,
    /// IBM ART's line search, which halves or doubles a per-image learning rate.
    LineSearch,
}

/// C&W's settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CwConfig {
    /// Values of `c` tried per image, at least 1 (ART's `binary_search_steps`).
    pub binary_steps: usize,
    /// Steps per value of `c`, at least 1 (ART's `max_iter`).
    pub iters: usize,
    /// The (initial) learning rate, in `(0, 10]`.
    pub lr: f64,
    /// The first `c`, in `(0, 1e11]` (ART's `initial_const`).
    pub initial_const: f64,
    /// The margin κ ≥ 0 an adversarial point must clear (ART's `confidence`).
    pub confidence: f64,
    /// The optimiser.
    pub optimizer: CwOptimizer,
    /// Line search: the most halvings of the learning rate per step, at least 1 (ART's
    /// `max_halving`). Unused by Adam.
    pub max_halving: usize,
    /// Line search: the most doublings of the learning rate per step (ART's
    /// `max_doubling`). Unused by Adam.
    pub max_doubling: usize,
}

impl CwConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// The first setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_count("cw-steps", self.binary_steps)?;
        check_count("cw-iters", self.iters)?;
        check_count("cw-halving", self.max_halving)?;
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
    let clean: Vec<f64> = images
        .iter()
        .flat_map(|im| im.pixels().map(f64::from))
        .collect();
    let start: Vec<f64> = clean
        .iter()
        .map(|&x| ((2.0 * x - 1.0) * TANH_SMOOTHER).atanh())
        .collect();
    match config.optimizer {
        CwOptimizer::Adam => adam(twin, images, labels, config, &clean, &start),
        CwOptimizer::LineSearch => line_search(twin, images, labels, config, &clean, &start),
    }
}

/// `x' = (tanh w + 1) / 2`, in `[0, 1]` (ART's `tanh_to_original` on the box `[0, 1]`).
fn to_box(w: f64) -> f64 {
    (w.tanh() + 1.0) / 2.0
}

/// Pixels (`IMAGE_PIXELS` per image, each in `[0, 1]`) as images.
fn as_images<E: std::error::Error + 'static>(pixels: &[f64]) -> Result<Vec<Image>, AttackError<E>> {
    Ok(pixels
        .par_chunks_exact(IMAGE_PIXELS)
        .map(|p| Image::new(&p.iter().map(|&v| v as f32).collect::<Vec<_>>()))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Squared L2 distance between two pixel slices.
fn squared_l2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// C&W with Adam.
fn adam<O: GradientOracle>(
    twin: &mut O,
    images: &[Image],
    labels: &[u8],
    config: &CwConfig,
    clean: &[f64],
    start: &[f64],
) -> Result<CwResult, AttackError<O::Error>> {
    let n = images.len();
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
        let mut w = start.to_vec();
        let (mut m1, mut m2) = (vec![0.0f64; w.len()], vec![0.0f64; w.len()]);
        let mut success = vec![false; n];
        let consts: Vec<f32> = search.iter().map(|s| s.c as f32).collect();
        for t in 1..=config.iters {
            let x: Vec<f64> = w.par_iter().map(|&v| to_box(v)).collect();
            let query = as_images(&x)?;
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
            let l2s: Vec<f64> = x
                .par_chunks_exact(IMAGE_PIXELS)
                .zip(clean.par_chunks_exact(IMAGE_PIXELS))
                .map(|(x, x0)| squared_l2(x, x0))
                .collect();
            for (i, &l2) in l2s.iter().enumerate() {
                let y = usize::from(labels[i]);
                let (m, _) = margin(&scores[i], y);
                if predicted_class(&scores[i]) != y && m + kappa <= 0.0 {
                    success[i] = true;
                    if l2 < search[i].best_l2 {
                        search[i].best_l2 = l2;
                        best[i] = query[i].clone();
                        found[i] = true;
                    }
                }
            }
            // ∂loss/∂w = (2 (x' − x) + c ∂margin/∂x') · (1 − tanh² w) / 2, then Adam.
            let (b1, b2) = (0.9f64, 0.999f64);
            let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
            w.par_chunks_exact_mut(IMAGE_PIXELS)
                .zip(m1.par_chunks_exact_mut(IMAGE_PIXELS))
                .zip(m2.par_chunks_exact_mut(IMAGE_PIXELS))
                .zip(x.par_chunks_exact(IMAGE_PIXELS))
                .zip(clean.par_chunks_exact(IMAGE_PIXELS))
                .zip(&grads)
                .for_each(|(((((w, m1), m2), x), x0), g)| {
                    let pixels = w.iter_mut().zip(m1).zip(m2).zip(x).zip(x0).zip(g.iter());
                    for (((((w, m1), m2), x), x0), &g_margin) in pixels {
                        let th = w.tanh();
                        let g = (2.0 * (x - x0) + f64::from(g_margin)) * (1.0 - th * th) / 2.0;
                        *m1 = b1 * *m1 + (1.0 - b1) * g;
                        *m2 = b2 * *m2 + (1.0 - b2) * g * g;
                        *w -= config.lr * (*m1 / c1) / ((*m2 / c2).sqrt() + 1e-8);
                    }
                });
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

/// One image of ART's line-search C&W, for the current value of `c`.
struct Lane {
    /// The current point in tanh space.
    w: Vec<f64>,
    /// The current point: the clean image before the first step, then `to_box(w)`.
    x: Vec<f64>,
    /// Squared L2 distance of the last evaluated point (a trial's, when the line search
    /// found no better one, as in ART).
    l2: f64,
    /// Loss of the last evaluated point (likewise).
    loss: f64,
    /// The per-image learning rate.
    lr: f64,
    /// ART's `attack_success`: `loss − l2 ≤ 0`, i.e. the hinge is zero.
    success: bool,
}

/// Squared L2 distance to the clean image and loss of each candidate `(image, pixels)`, at
/// that image's `c`; one batched query.
fn evaluate<O: GradientOracle>(
    twin: &mut O,
    labels: &[u8],
    clean: &[f64],
    c: &[f64],
    kappa: f64,
    points: &[(usize, Vec<f64>)],
) -> Result<Vec<(f64, f64)>, AttackError<O::Error>> {
    let pixels: Vec<f64> = points.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let scores = twin
        .query(&as_images(&pixels)?)
        .map_err(AttackError::Oracle)?;
    Ok(points
        .par_iter()
        .zip(scores)
        .map(|((i, p), z)| {
            let l2 = squared_l2(p, &clean[i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS]);
            let (m, _) = margin(&z, usize::from(labels[*i]));
            let loss = c[*i] * (f64::from(m) + kappa).max(0.0) + l2;
            (l2, loss)
        })
        .collect())
}

/// Evaluates the trial points `w + lr · direction` of the lanes `todo` (indices into
/// `active`) and stores their distance and loss in the lanes (not the point itself).
#[allow(clippy::too_many_arguments)]
fn try_steps<O: GradientOracle>(
    twin: &mut O,
    labels: &[u8],
    clean: &[f64],
    c: &[f64],
    kappa: f64,
    lanes: &mut [Lane],
    active: &[usize],
    directions: &[Vec<f64>],
    todo: &[usize],
) -> Result<(), AttackError<O::Error>> {
    let points: Vec<(usize, Vec<f64>)> = todo
        .par_iter()
        .map(|&k| {
            let lane = &lanes[active[k]];
            let x = lane
                .w
                .iter()
                .zip(&directions[k])
                .map(|(w, d)| to_box(w + lane.lr * d))
                .collect();
            (active[k], x)
        })
        .collect();
    for ((i, _), (l2, loss)) in points
        .iter()
        .zip(evaluate(twin, labels, clean, c, kappa, &points)?)
    {
        lanes[*i].l2 = l2;
        lanes[*i].loss = loss;
    }
    Ok(())
}

/// C&W with ART's line search and ART's update of `c` (see the module's documentation).
fn line_search<O: GradientOracle>(
    twin: &mut O,
    images: &[Image],
    labels: &[u8],
    config: &CwConfig,
    clean: &[f64],
    start: &[f64],
) -> Result<CwResult, AttackError<O::Error>> {
    let n = images.len();
    let kappa = config.confidence;
    let range = |i: usize| i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS;
    let mut c = vec![config.initial_const; n];
    let mut c_low = vec![0.0f64; n];
    let mut c_double = vec![true; n];
    let mut best_l2 = vec![f64::INFINITY; n];
    let mut best = images.to_vec();
    let mut found = vec![false; n];
    let mut keep_best = |lanes: &[Lane]| -> Result<(), AttackError<O::Error>> {
        for (i, lane) in lanes.iter().enumerate() {
            if lane.success && lane.l2 < best_l2[i] {
                best_l2[i] = lane.l2;
                best[i] = Image::new(&lane.x.iter().map(|&v| v as f32).collect::<Vec<_>>())?;
                found[i] = true;
            }
        }
        Ok(())
    };
    for _ in 0..config.binary_steps {
        if c.iter().all(|&c| c >= MAX_CONST) {
            break;
        }
        let points: Vec<(usize, Vec<f64>)> =
            (0..n).map(|i| (i, clean[range(i)].to_vec())).collect();
        let mut lanes: Vec<Lane> = evaluate(twin, labels, clean, &c, kappa, &points)?
            .into_iter()
            .zip(points)
            .map(|((l2, loss), (i, x))| Lane {
                w: start[range(i)].to_vec(),
                x,
                l2,
                loss,
                lr: config.lr,
                success: loss - l2 <= 0.0,
            })
            .collect();
        let mut overall: Vec<bool> = lanes.iter().map(|l| l.success).collect();
        for _ in 0..config.iters {
            keep_best(&lanes)?;
            let active: Vec<usize> = (0..n)
                .filter(|&i| c[i] < MAX_CONST && lanes[i].lr > 0.0)
                .collect();
            if active.is_empty() {
                break;
            }
            // The gradient of ‖x' − x‖² + c (z_y − z_j) in tanh space, negated.
            let query = as_images(
                &active
                    .iter()
                    .flat_map(|&i| lanes[i].x.iter().copied())
                    .collect::<Vec<_>>(),
            )?;
            let consts: Vec<f32> = active.iter().map(|&i| c[i] as f32).collect();
            let (_, grads) = twin
                .vjp(&query, &|k, z| {
                    let y = usize::from(labels[active[k]]);
                    let (_, j) = margin(z, y);
                    let mut d = [0.0; CLASSES];
                    d[y] = consts[k];
                    d[j] = -consts[k];
                    d
                })
                .map_err(AttackError::Oracle)?;
            let directions: Vec<Vec<f64>> = active
                .par_iter()
                .zip(&grads)
                .map(|(&i, g)| {
                    let lane = &lanes[i];
                    lane.w
                        .iter()
                        .zip(&lane.x)
                        .zip(&clean[range(i)])
                        .zip(g.iter())
                        .map(|(((w, x), x0), g)| {
                            let th = w.tanh();
                            -(f64::from(*g) + 2.0 * (x - x0)) * (1.0 - th * th)
                                / (2.0 * TANH_SMOOTHER)
                        })
                        .collect()
                })
                .collect();
            // Halve the learning rate until a trial lowers the loss.
            let prev: Vec<f64> = active.iter().map(|&i| lanes[i].loss).collect();
            let mut best_loss = prev.clone();
            let mut best_lr = vec![0.0f64; active.len()];
            let mut halving = vec![0usize; active.len()];
            let mut steps = |lanes: &mut [Lane], todo: &[usize]| {
                try_steps(
                    twin,
                    labels,
                    clean,
                    &c,
                    kappa,
                    lanes,
                    &active,
                    &directions,
                    todo,
                )
            };
            for _ in 0..config.max_halving {
                let todo: Vec<usize> = (0..active.len())
                    .filter(|&k| lanes[active[k]].loss >= prev[k])
                    .collect();
                if todo.is_empty() {
                    break;
                }
                steps(&mut lanes, &todo)?;
                for &k in &todo {
                    let lane = &mut lanes[active[k]];
                    if lane.loss < best_loss[k] {
                        best_lr[k] = lane.lr;
                        best_loss[k] = lane.loss;
                    }
                    lane.lr /= 2.0;
                    halving[k] += 1;
                }
            }
            for &i in &active {
                lanes[i].lr *= 2.0;
            }
            // Where the first trial already lowered the loss, double while it keeps falling.
            for _ in 0..config.max_doubling {
                let todo: Vec<usize> = (0..active.len())
                    .filter(|&k| halving[k] == 1 && lanes[active[k]].loss <= best_loss[k])
                    .collect();
                if todo.is_empty() {
                    break;
                }
                for &k in &todo {
                    lanes[active[k]].lr *= 2.0;
                }
                steps(&mut lanes, &todo)?;
                for &k in &todo {
                    let lane = &lanes[active[k]];
                    if lane.loss < best_loss[k] {
                        best_lr[k] = lane.lr;
                        best_loss[k] = lane.loss;
                    }
                }
            }
            for (k, &i) in active.iter().enumerate() {
                if halving[k] == 1 {
                    lanes[i].lr /= 2.0;
                }
            }
            // Take the best trial.
            let mut trial = vec![None; n];
            for (k, &i) in active.iter().enumerate() {
                trial[i] = (best_lr[k] > 0.0).then_some(k);
            }
            let moved: Vec<(usize, Vec<f64>)> = lanes
                .par_iter_mut()
                .zip(&trial)
                .enumerate()
                .filter_map(|(i, (lane, &k))| {
                    let k = k?;
                    for (w, d) in lane.w.iter_mut().zip(&directions[k]) {
                        *w += best_lr[k] * d;
                    }
                    Some((i, lane.w.iter().map(|&w| to_box(w)).collect()))
                })
                .collect();
            if !moved.is_empty() {
                let evaluated = evaluate(twin, labels, clean, &c, kappa, &moved)?;
                for ((i, x), (l2, loss)) in moved.into_iter().zip(evaluated) {
                    let lane = &mut lanes[i];
                    (lane.x, lane.l2, lane.loss) = (x, l2, loss);
                }
                for (lane, overall) in lanes.iter_mut().zip(&mut overall) {
                    lane.success = lane.loss - lane.l2 <= 0.0;
                    *overall |= lane.success;
                }
            }
        }
        keep_best(&lanes)?;
        for i in 0..n {
            if overall[i] {
                c_double[i] = false;
                c[i] = (c_low[i] + c[i]) / 2.0;
            } else {
                if c_double[i] {
                    c[i] *= 2.0;
                } else {
                    c[i] += (c[i] - c_low[i]) / 2.0;
                }
                c_low[i] = c[i];
            }
        }
    }
    Ok(CwResult {
        images: best,
        found,
    })
}
