//! The Square Attack under L∞ (Andriushchenko, Croce, Flammarion and Hein, "Square Attack:
//! a query-efficient black-box adversarial attack via random search", ECCV 2020), as ART's
//! `SquareAttack` with `norm=inf`: score-based, no gradients, no weights; every query goes
//! to the oracle (by default the encrypted service).
//!
//! * Start: `x = clip(x₀ + eps · s)` with `s ∈ {−1, 1}` drawn per column (vertical stripes).
//! * Loss: the margin `z_y − max_{j≠y} z_j` of the returned raw scores; an image is done
//!   once its margin is ≤ 0 (misclassified).
//! * Each iteration, for each image not yet done: a random square window of side
//!   `max(round(√(p · 784)), 1)` gets a fresh perturbation `±eps` (redrawn if it would not
//!   change the image), and the candidate replaces the current image if its margin is
//!   lower. `p` starts at `p_init` and halves at the fractions 0.001, 0.005, 0.02, 0.05,
//!   0.1, 0.2, 0.4, 0.6, 0.8 of `iters` (the authors' schedule).
//! * All the unfinished images' candidates of one iteration go to the oracle in one query,
//!   so one encrypted batch carries many images' candidates.

use rand_core::{RngCore, SeedableRng};

use super::{check_count, check_labels, check_range, margin, AttackError, ConfigError};
use crate::oracle::{Image, Oracle, IMAGE_PIXELS, IMAGE_SIDE};

/// The Square Attack's settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SquareConfig {
    /// The L∞ budget, in `(0, 1]`.
    pub eps: f32,
    /// Iterations, at least 1 (ART's `max_iter`).
    pub iters: usize,
    /// The initial fraction of pixels a window covers, in `(0, 1]` (ART's `p_init`).
    pub p_init: f64,
    /// Seed of every random draw.
    pub seed: u64,
}

impl SquareConfig {
    /// Checks every setting.
    ///
    /// # Errors
    /// The first setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("eps", f64::from(self.eps), 0.0, 1.0, true, "in (0, 1]")?;
        check_count("square-iters", self.iters)?;
        check_range("square-p-init", self.p_init, 0.0, 1.0, true, "in (0, 1]")
    }
}

/// What the Square Attack found.
#[derive(Debug, Clone)]
pub struct SquareResult {
    /// The final image of each attack (misclassified or not).
    pub images: Vec<Image>,
    /// Oracle queries spent on each image (the first one included).
    pub queries: Vec<u64>,
    /// Whether the oracle misclassified the image at the end.
    pub fooled: Vec<bool>,
}

/// The authors' schedule of `p` at iteration `it` of `iters`.
fn p_at(p_init: f64, it: usize, iters: usize) -> f64 {
    let scaled = (it as f64 / iters as f64 * 10_000.0) as usize;
    let halvings = match scaled {
        0..=10 => 0,
        11..=50 => 1,
        51..=200 => 2,
        201..=500 => 3,
        501..=1000 => 4,
        1001..=2000 => 5,
        2001..=4000 => 6,
        4001..=6000 => 7,
        6001..=8000 => 8,
        _ => 9,
    };
    p_init / f64::from(1u32 << halvings)
}

/// A uniform index below `n`.
fn below(rng: &mut impl RngCore, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

/// ±eps with equal probability.
fn signed(rng: &mut impl RngCore, eps: f32) -> f32 {
    if rng.next_u32() & 1 == 0 {
        -eps
    } else {
        eps
    }
}

/// Runs the Square Attack on `images` (labels `labels`) through `oracle`.
///
/// # Errors
/// An invalid configuration or labels; the oracle's failures.
pub fn square<O: Oracle>(
    oracle: &mut O,
    images: &[Image],
    labels: &[u8],
    config: &SquareConfig,
) -> Result<SquareResult, AttackError<O::Error>> {
    config.validate()?;
    check_labels(images, labels)?;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(config.seed);
    let eps = config.eps;
    let side = IMAGE_SIDE;
    let mut current: Vec<Image> = images
        .iter()
        .map(|clean| {
            let stripes: Vec<f32> = (0..side).map(|_| signed(&mut rng, eps)).collect();
            let x: Vec<f32> = clean
                .pixels()
                .iter()
                .enumerate()
                .map(|(k, &c)| (c + stripes[k % side]).clamp(0.0, 1.0))
                .collect();
            Image::new(&x)
        })
        .collect::<Result<_, _>>()?;
    let mut margins: Vec<f32> = oracle
        .query(&current)
        .map_err(AttackError::Oracle)?
        .iter()
        .zip(labels)
        .map(|(z, &y)| margin(z, usize::from(y)).0)
        .collect();
    let mut queries = vec![1u64; images.len()];
    for it in 0..config.iters {
        let active: Vec<usize> = (0..images.len()).filter(|&i| margins[i] > 0.0).collect();
        if active.is_empty() {
            break;
        }
        let p = p_at(config.p_init, it, config.iters);
        let s = ((p * IMAGE_PIXELS as f64).sqrt().round() as usize).clamp(1, side - 1);
        let candidates = active
            .iter()
            .map(|&i| {
                let clean = images[i].pixels();
                let now = current[i].pixels();
                let (top, left) = (below(&mut rng, side - s + 1), below(&mut rng, side - s + 1));
                let mut x = *now;
                // Redraw the window's sign until it changes the image (the authors' loop),
                // at most a few times: a window flat at the box edge may never change.
                for _ in 0..16 {
                    let delta = signed(&mut rng, eps);
                    let mut changed = false;
                    for r in top..top + s {
                        for c in left..left + s {
                            let k = r * side + c;
                            x[k] = (clean[k] + delta).clamp(0.0, 1.0);
                            changed |= (x[k] - now[k]).abs() > 1e-7;
                        }
                    }
                    if changed {
                        break;
                    }
                }
                Image::new(&x)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let scores = oracle.query(&candidates).map_err(AttackError::Oracle)?;
        for ((&i, candidate), z) in active.iter().zip(candidates).zip(&scores) {
            queries[i] += 1;
            let m = margin(z, usize::from(labels[i])).0;
            if m < margins[i] {
                margins[i] = m;
                current[i] = candidate;
            }
        }
    }
    Ok(SquareResult {
        images: current,
        queries,
        fooled: margins.iter().map(|&m| m <= 0.0).collect(),
    })
}
