//! The likelihood-ratio attack (LiRA; Carlini, Chien, Nasr, Song, Terzis, Tramèr, "Membership
//! Inference Attacks From First Principles", IEEE S&P 2022, arXiv 2112.03570) and the loss
//! threshold attack (Yeom, Giacomelli, Fredrikson, Jha, CSF 2018).
//!
//! **Shadows.** The population is the challenge records followed by the insider's records.
//! For every population record, `N/2` of the `N` shadow models are drawn uniformly to
//! train on it, so each record is IN for exactly half of the models (the reference code's
//! `keep = order < N/2`). Each shadow model is a pure function of (its record indices, its
//! seed) and trains on rayon's pool; it then scores the challenge records.
//!
//! **Statistic.** One query per record (the reference code also averages over image
//! augmentations; heist does not augment). On raw scores the hinge `z_y − max_{y'≠y} z_{y'}`;
//! on probabilities the logit `log p_y − log(1 − p_y)` ([`super::signals`]).
//!
//! **Scores** (higher = member), per challenge record with IN statistics `a` and OUT
//! statistics `b` from the shadows and the target's statistic `t`:
//! * the Gaussian "means" are medians, as in the reference code; the standard deviations are
//!   population ones (`np.std`), plus `1e-30` as there;
//! * online: `log N(t; μ_in, σ_in²) − log N(t; μ_out, σ_out²)`;
//! * offline: the one-sided test `Λ = Pr[Z < t]` for `Z ~ N(μ_out, σ_out²)` (the paper's
//!   `1 − Pr[Z > t]`), ranked by `(t − μ_out)/σ_out`, which orders records the same way
//!   without the normal CDF saturating at 1;
//! * global variance: one σ_in and one σ_out for all records, the root mean square of every
//!   statistic's distance to its own record's median. (The reference code's `np.std(dat_in)`
//!   over the whole matrix also counts the spread between records' means; heist pools the
//!   within-record spread, which is what a shared variance means.)
//!
//! **Loss attack**: the score is `−ℓ(f(x), y)` with `ℓ` the softmax cross-entropy of the
//! target's scores; the ROC sweeps the threshold τ.

use rayon::prelude::*;

use crate::data::{sample, Images};
use crate::train::{self, TrainConfig, TrainError};

use super::signals::{SignalError, Signals};
use super::{derive_seed, Features};

/// Why LiRA failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiraError {
    /// The number of shadow models is not a positive even number.
    #[error("LiRA needs an even number of shadow models, at least 2 (got {0})")]
    Models(usize),
    /// The target's signals are not on the shadows' challenge records.
    #[error("the target has signals on {target} records, the shadows on {shadows}")]
    Records {
        /// Target records.
        target: usize,
        /// Shadow challenge records.
        shadows: usize,
    },
    /// Training a shadow failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// Scoring failed.
    #[error(transparent)]
    Signals(#[from] SignalError),
}

/// LiRA's shadow models, kept as their signals on the challenge records.
#[derive(Clone, Debug, PartialEq)]
pub struct LiraShadows {
    /// For each shadow model, its scores on the challenge records; `member` says which
    /// of them it trained on.
    pub signals: Vec<Signals>,
    /// Records each shadow trained on (challenge and insider).
    pub train_sizes: Vec<usize>,
}

/// Trains `models` shadow models on random halves of `challenge` ∪ `insider` (see the
/// module docs); `shadow` is the target's training configuration (its `fraction` is set to
/// 1 and its seed replaced by one derived from `seed` per model).
///
/// # Errors
/// [`LiraError::Models`] for an odd or zero count; a training failure.
pub fn train_shadows(
    challenge: &Images,
    insider: &Images,
    models: usize,
    shadow: &TrainConfig,
    seed: u64,
) -> Result<LiraShadows, LiraError> {
    if models < 2 || !models.is_multiple_of(2) {
        return Err(LiraError::Models(models));
    }
    let mut population = challenge.clone();
    population.pixels.extend_from_slice(&insider.pixels);
    population.labels.extend_from_slice(&insider.labels);
    let mut rng: rand_chacha::ChaCha20Rng =
        rand_core::SeedableRng::seed_from_u64(derive_seed(seed, 10, models as u64));
    let chosen: Vec<Vec<usize>> = (0..population.len())
        .map(|_| sample::sample_indices(&mut rng, models, models / 2))
        .collect();
    let mut keep = vec![vec![false; population.len()]; models];
    for (record, models_in) in chosen.iter().enumerate() {
        for &m in models_in {
            keep[m][record] = true;
        }
    }
    let results = keep
        .par_iter()
        .enumerate()
        .map(|(m, keep)| {
            let indices: Vec<usize> = (0..population.len()).filter(|&i| keep[i]).collect();
            let config = TrainConfig {
                fraction: 1.0,
                seed: derive_seed(seed, 11, m as u64),
                ..shadow.clone()
            };
            let trained = train::train(&population.select(&indices), &config, |_, _, _| {})?;
            let member = keep[..challenge.len()].to_vec();
            let signals = Signals::of_model(&trained.model, challenge, member)?;
            Ok((signals, indices.len()))
        })
        .collect::<Result<Vec<_>, LiraError>>()?;
    let (signals, train_sizes) = results.into_iter().unzip();
    Ok(LiraShadows {
        signals,
        train_sizes,
    })
}

/// LiRA's four scores for each challenge record (higher = member).
#[derive(Clone, Debug, PartialEq)]
pub struct LiraScores {
    /// Online, per-record variances.
    pub online: Vec<f64>,
    /// Online, global variances.
    pub online_global: Vec<f64>,
    /// Offline, per-record variance.
    pub offline: Vec<f64>,
    /// Offline, global variance.
    pub offline_global: Vec<f64>,
}

/// The median of a non-empty list (the mean of the two middle values for an even length;
/// NaN for an empty one).
pub(super) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Population standard deviation.
fn std_dev(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// `log N(x; mu, sigma²)`.
fn log_normal(x: f64, mu: f64, sigma: f64) -> f64 {
    let z = (x - mu) / sigma;
    -0.5 * z * z - sigma.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
}

/// Per-record IN/OUT Gaussians of one side.
struct Side {
    medians: Vec<f64>,
    stds: Vec<f64>,
    global: f64,
}

fn side(values: Vec<Vec<f64>>) -> Side {
    let (mut sq, mut count) = (0.0, 0usize);
    let mut medians = Vec::with_capacity(values.len());
    let mut stds = Vec::with_capacity(values.len());
    for mut v in values {
        let m = median(&mut v);
        sq += v.iter().map(|x| (x - m).powi(2)).sum::<f64>();
        count += v.len();
        stds.push(std_dev(&v) + 1e-30);
        medians.push(m);
    }
    Side {
        medians,
        stds,
        global: (sq / count.max(1) as f64).sqrt() + 1e-30,
    }
}

/// LiRA's scores of the target's records, from the target's `signals` and the shadows'.
///
/// # Errors
/// [`LiraError::Records`] when the target's records are not the shadows' challenge records.
pub fn scores(
    shadows: &LiraShadows,
    target: &Signals,
    features: Features,
) -> Result<LiraScores, LiraError> {
    for s in &shadows.signals {
        if s.len() != target.len() {
            return Err(LiraError::Records {
                target: target.len(),
                shadows: s.len(),
            });
        }
    }
    let n = target.len();
    let mut ins = vec![Vec::new(); n];
    let mut outs = vec![Vec::new(); n];
    for s in &shadows.signals {
        for i in 0..n {
            let stat = s.statistic(i, features);
            if s.member[i] {
                ins[i].push(stat);
            } else {
                outs[i].push(stat);
            }
        }
    }
    let (ins, outs) = (side(ins), side(outs));
    let mut out = LiraScores {
        online: Vec::with_capacity(n),
        online_global: Vec::with_capacity(n),
        offline: Vec::with_capacity(n),
        offline_global: Vec::with_capacity(n),
    };
    for i in 0..n {
        let t = target.statistic(i, features);
        let (mi, mo) = (ins.medians[i], outs.medians[i]);
        out.online
            .push(log_normal(t, mi, ins.stds[i]) - log_normal(t, mo, outs.stds[i]));
        out.online_global
            .push(log_normal(t, mi, ins.global) - log_normal(t, mo, outs.global));
        out.offline.push((t - mo) / outs.stds[i]);
        out.offline_global.push((t - mo) / outs.global);
    }
    Ok(out)
}

/// The loss attack's scores: the negated softmax cross-entropy of each record.
pub fn loss_scores(target: &Signals) -> Vec<f64> {
    (0..target.len()).map(|i| -target.loss(i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_deviations() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!((std_dev(&[1.0, 3.0]) - 1.0).abs() < 1e-12);
        let s = side(vec![vec![0.0, 2.0], vec![10.0, 14.0]]);
        assert_eq!(s.medians, vec![1.0, 12.0]);
        // Distances to the medians: 1, 1, 2, 2 -> sqrt(10 / 4).
        assert!((s.global - 2.5f64.sqrt()).abs() < 1e-12);
        assert!((log_normal(0.0, 0.0, 1.0) + 0.918_938_533_204_672_7).abs() < 1e-12);
    }
}
