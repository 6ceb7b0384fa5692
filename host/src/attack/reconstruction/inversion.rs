//! A second, different method: model inversion per class from queries only, after
//! Fredrikson, Jha and Ristenpart, "Model inversion attacks that exploit confidence
//! information and basic countermeasures", CCS 2015 (ART's `MIFace` is their white-box
//! form; here the gradient is estimated from queries).
//!
//! For each class `c`, gradient ascent on `J(x) = log softmax(f(x))_c` over images `x` in
//! [0, 1]^784, starting from the prior `m` (the mean auxiliary image), with a pull back
//! towards `m` (the mean-image prior). The gradient of `J` is estimated by antithetic
//! Gaussian smoothing (Nesterov and Spokoiny 2017): with `q` directions `u_i ~ N(0, I)`,
//! `g = Σ_i (J(x + μ u_i) - J(x - μ u_i)) u_i / (2 μ q)`, which costs `2q` queries per class
//! and iteration; the ten classes go to the oracle in one call per iteration. Each step is
//! `x ← clamp(x + η g / rms(g) - η λ (x - m), 0, 1)`: a step of root-mean-square `η` per
//! pixel along the estimated gradient. A class stops once the oracle's softmax gives it
//! probability at least `threshold` (ART's default 0.99), or after `iterations`.

use rand_core::RngCore;

use crate::data::{CLASSES, IMAGE_PIXELS};
use crate::oracle::{Image, Oracle, Scores};
use crate::train::stream_rng;

use super::generator::{prepare, InputPrep};
use super::ReconstructionError;

/// The inversion's settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct InversionConfig {
    /// Iterations at most, per class.
    pub iterations: usize,
    /// Random directions `q` per iteration (each costs two queries).
    pub directions: usize,
    /// Smoothing radius `μ`, in pixel units.
    pub smoothing: f32,
    /// Root-mean-square step per pixel `η`.
    pub step: f32,
    /// Pull towards the prior `λ`, per step.
    pub prior: f32,
    /// Stop a class at this softmax probability.
    pub threshold: f64,
    /// Seed of the directions.
    pub seed: u64,
}

impl InversionConfig {
    /// 100 iterations of 20 directions (4,000 queries per class at most), μ 0.05, η 0.02,
    /// λ 0.01, threshold 0.99.
    pub fn new(seed: u64) -> Self {
        Self {
            iterations: 100,
            directions: 20,
            smoothing: 0.05,
            step: 0.02,
            prior: 0.01,
            threshold: 0.99,
            seed,
        }
    }

    fn validate(&self) -> Result<(), ReconstructionError> {
        let positive = |v: f32| v.is_finite() && v > 0.0;
        if self.iterations == 0
            || self.directions == 0
            || !positive(self.smoothing)
            || !positive(self.step)
            || !(self.prior.is_finite() && self.prior >= 0.0)
            || !(self.threshold > 0.0 && self.threshold <= 1.0)
        {
            return Err(ReconstructionError::Config(format!(
                "model inversion settings out of range: {self:?}"
            )));
        }
        Ok(())
    }
}

/// One image per class and what it cost.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Inversion {
    /// The inverted image of each class, in class order.
    #[serde(skip)]
    pub images: Vec<Image>,
    /// Iterations each class ran.
    pub iterations: Vec<usize>,
    /// The oracle's softmax probability of each class for its image, at the last query.
    pub confidence: Vec<f64>,
    /// Images submitted to the oracle.
    pub queries: u64,
}

/// A standard normal value (Box-Muller) from two 24-bit uniforms.
fn normal(rng: &mut impl RngCore) -> f32 {
    let unit = |r: &mut dyn RngCore| (f64::from(r.next_u32() >> 8) + 0.5) / f64::from(1u32 << 24);
    let (u, v) = (unit(rng), unit(rng));
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

fn clamped(pixels: &[f32]) -> Result<Image, ReconstructionError> {
    let p: Vec<f32> = pixels.iter().map(|v| v.clamp(0.0, 1.0)).collect();
    Image::new(&p).map_err(|e| ReconstructionError::Config(e.to_string()))
}

/// The log-probability of `class` under the softmax of `scores`.
fn objective(scores: &Scores, class: usize) -> f64 {
    prepare(InputPrep::LogSoftmax, scores)[class]
}

/// Inverts every class through `oracle`, starting from `prior`.
///
/// # Errors
/// Bad settings, oracle failures, non-finite answers.
pub fn invert<O: Oracle>(
    oracle: &mut O,
    prior: &Image,
    config: &InversionConfig,
) -> Result<Inversion, ReconstructionError> {
    config.validate()?;
    let before = oracle.queries();
    let mut rng = stream_rng(config.seed, 3);
    let m = prior.pixels();
    let mut x: Vec<[f32; IMAGE_PIXELS]> = vec![*m; CLASSES];
    let mut iterations = vec![0usize; CLASSES];
    let mut confidence = vec![0.0f64; CLASSES];
    let mut active: Vec<bool> = vec![true; CLASSES];
    let q = config.directions;
    let mut ask = |images: &[Image]| -> Result<Vec<Scores>, ReconstructionError> {
        let s = oracle
            .query(images)
            .map_err(|e| ReconstructionError::Oracle(Box::new(e)))?;
        if s.len() != images.len() {
            return Err(ReconstructionError::Config(
                "the oracle answered the wrong number of score vectors".to_owned(),
            ));
        }
        Ok(s)
    };
    for _ in 0..config.iterations {
        let classes: Vec<usize> = (0..CLASSES).filter(|&c| active[c]).collect();
        if classes.is_empty() {
            break;
        }
        // Per active class: the current image, then q pairs x ± μ u_i.
        let mut directions: Vec<Vec<[f32; IMAGE_PIXELS]>> = Vec::with_capacity(classes.len());
        let mut batch = Vec::with_capacity(classes.len() * (2 * q + 1));
        for &c in &classes {
            batch.push(clamped(&x[c])?);
            let mut us = Vec::with_capacity(q);
            for _ in 0..q {
                let mut u = [0.0f32; IMAGE_PIXELS];
                u.iter_mut().for_each(|v| *v = normal(&mut rng));
                for sign in [1.0f32, -1.0] {
                    let probe: Vec<f32> = x[c]
                        .iter()
                        .zip(&u)
                        .map(|(a, b)| a + sign * config.smoothing * b)
                        .collect();
                    batch.push(clamped(&probe)?);
                }
                us.push(u);
            }
            directions.push(us);
        }
        let scores = ask(&batch)?;
        for (k, (&c, us)) in classes.iter().zip(&directions).enumerate() {
            let base = &scores[k * (2 * q + 1)..(k + 1) * (2 * q + 1)];
            let j0 = objective(&base[0], c);
            if !j0.is_finite() {
                return Err(ReconstructionError::NonFiniteScores { index: k });
            }
            confidence[c] = j0.exp();
            if confidence[c] >= config.threshold {
                active[c] = false;
                continue;
            }
            iterations[c] += 1;
            let mut g = [0.0f64; IMAGE_PIXELS];
            for (i, u) in us.iter().enumerate() {
                let diff = objective(&base[1 + 2 * i], c) - objective(&base[2 + 2 * i], c);
                let w = diff / (2.0 * f64::from(config.smoothing) * q as f64);
                for (gv, &uv) in g.iter_mut().zip(u) {
                    *gv += w * f64::from(uv);
                }
            }
            let rms = (g.iter().map(|v| v * v).sum::<f64>() / IMAGE_PIXELS as f64).sqrt();
            if !(rms.is_finite() && rms > 0.0) {
                continue;
            }
            for ((xv, &gv), &mv) in x[c].iter_mut().zip(&g).zip(m.iter()) {
                let next =
                    *xv + config.step * (gv / rms) as f32 - config.step * config.prior * (*xv - mv);
                *xv = next.clamp(0.0, 1.0);
            }
        }
    }
    let images = x
        .iter()
        .map(|p| clamped(p))
        .collect::<Result<Vec<_>, _>>()?;
    // The final confidence of classes that ran out of iterations.
    let last = ask(&images)?;
    for (c, s) in last.iter().enumerate() {
        confidence[c] = objective(s, c).exp();
    }
    Ok(Inversion {
        images,
        iterations,
        confidence,
        queries: oracle.queries().saturating_sub(before),
    })
}
