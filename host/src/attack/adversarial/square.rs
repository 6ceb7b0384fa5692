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
//! * All the unfinished images' candidates of one round go to the oracle in one query, so
//!   one encrypted batch carries many images' candidates.
//!
//! **Filling the batch (`batch`).** An encrypted batch costs the same whether one slot or
//! all of them carry an image, and in an iteration only the images not yet fooled propose a
//! candidate: late iterations pay a whole batch for a few images. With `batch = B > 0`, a
//! query speculates: each unfinished image proposes the candidates of its next
//! `k = max(1, ⌊B / unfinished⌋)` iterations (never beyond `iters`), all drawn from its
//! current point, with each iteration's own window size. That is what the sequential attack
//! would propose as long as no candidate is accepted; so the first candidate (in iteration
//! order) that lowers the margin is accepted, the image moves on to the iteration after it,
//! and the candidates after it, drawn from a point the sequential attack would have left,
//! are discarded. The iterations are therefore distributed exactly as ART's; the discarded
//! candidates are queries all the same, and counted as such. With `batch = 0` each query
//! carries one candidate per unfinished image: ART's Square Attack, one query per iteration.

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
    /// Candidates per query across all unfinished images (see the module documentation);
    /// 0 for one candidate per unfinished image per round, as ART does.
    pub batch: usize,
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
    /// Oracle queries spent on each image (the first one included, speculative candidates
    /// too).
    pub queries: Vec<u64>,
    /// Iterations each image ran, at most `iters` (`iters` for an image not fooled): the
    /// queries ART's sequential attack would have spent after the first.
    pub iterations: Vec<usize>,
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
    let mut results = square_budgets(oracle, images, labels, &[config.eps], config)?;
    Ok(results.remove(0))
}

/// Runs the Square Attack of `config` on `images` (labels `labels`) at each L∞ budget of
/// `budgets` (`config.eps` is not used), all budgets in lockstep: each query carries every
/// budget's candidates, so an accuracy-against-ε sweep fills the encrypted batches that
/// one budget alone would leave mostly empty (`config.batch` counts the candidates of all
/// budgets together). One result per budget, in order; the attack at each budget is the
/// one `square` runs, drawn from one random stream shared by all of them.
///
/// # Errors
/// An invalid configuration, budget or labels; the oracle's failures.
pub fn square_budgets<O: Oracle>(
    oracle: &mut O,
    images: &[Image],
    labels: &[u8],
    budgets: &[f32],
    config: &SquareConfig,
) -> Result<Vec<SquareResult>, AttackError<O::Error>> {
    for &eps in budgets {
        SquareConfig { eps, ..*config }.validate()?;
    }
    check_labels(images, labels)?;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(config.seed);
    let side = IMAGE_SIDE;
    // Attack `a` is image `a % n` at budget `budgets[a / n]`.
    let n = images.len();
    let total = n * budgets.len();
    let clean = |a: usize| &images[a % n];
    let label = |a: usize| usize::from(labels[a % n]);
    let eps = |a: usize| budgets[a / n];
    let mut current: Vec<Image> = (0..total)
        .map(|a| {
            let stripes: Vec<f32> = (0..side).map(|_| signed(&mut rng, eps(a))).collect();
            let x: Vec<f32> = clean(a)
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
        .enumerate()
        .map(|(a, z)| margin(z, label(a)).0)
        .collect();
    let mut queries = vec![1u64; total];
    // Iterations each attack has run (ART's count), below `iters` while it is unfinished.
    let mut done = vec![0usize; total];
    loop {
        let active: Vec<usize> = (0..total)
            .filter(|&a| margins[a] > 0.0 && done[a] < config.iters)
            .collect();
        if active.is_empty() {
            break;
        }
        let k = (config.batch / active.len()).max(1);
        // Attack `active[i]` proposes its next `counts[i]` iterations' candidates.
        let counts: Vec<usize> = active
            .iter()
            .map(|&a| k.min(config.iters - done[a]))
            .collect();
        let mut candidates = Vec::new();
        for (&a, &count) in active.iter().zip(&counts) {
            for j in 0..count {
                let p = p_at(config.p_init, done[a] + j, config.iters);
                candidates.push(propose(&mut rng, clean(a), &current[a], p, eps(a))?);
            }
        }
        let scores = oracle.query(&candidates).map_err(AttackError::Oracle)?;
        let mut proposed = candidates.into_iter().zip(scores);
        for (&a, &count) in active.iter().zip(&counts) {
            queries[a] += count as u64;
            let start = done[a];
            done[a] += count;
            let mut accepted = false;
            for (j, (candidate, z)) in proposed.by_ref().take(count).enumerate() {
                let m = margin(&z, label(a)).0;
                if !accepted && m < margins[a] {
                    // The first acceptance, at iteration `start + j`; the candidates after
                    // it are void.
                    accepted = true;
                    margins[a] = m;
                    current[a] = candidate;
                    done[a] = start + j + 1;
                }
            }
        }
    }
    let mut current = current.into_iter();
    Ok((0..budgets.len())
        .map(|b| {
            let range = b * n..(b + 1) * n;
            SquareResult {
                images: current.by_ref().take(n).collect(),
                queries: queries[range.clone()].to_vec(),
                iterations: done[range.clone()].to_vec(),
                fooled: margins[range].iter().map(|&m| m <= 0.0).collect(),
            }
        })
        .collect())
}

/// One candidate: `now` with a random window of side `max(round(√(p · 784)), 1)` set to
/// `clean ± eps` (clipped to the box), the sign redrawn until the window changes the image
/// (the authors' loop), at most 16 times: a window flat at the box edge may never change.
fn propose(
    rng: &mut impl RngCore,
    clean: &Image,
    now: &Image,
    p: f64,
    eps: f32,
) -> Result<Image, crate::oracle::ImageError> {
    let side = IMAGE_SIDE;
    let s = ((p * IMAGE_PIXELS as f64).sqrt().round() as usize).clamp(1, side - 1);
    let (clean, now) = (clean.pixels(), now.pixels());
    let (top, left) = (below(rng, side - s + 1), below(rng, side - s + 1));
    let mut x = *now;
    for _ in 0..16 {
        let delta = signed(rng, eps);
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
}
