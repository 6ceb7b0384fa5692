//! Signals: a model's scores on the member and non-member records, collected once.
//!
//! Querying the encrypted service is the expensive part of membership inference, so each
//! target answers the records once, through its [`Oracle`]; every attack then runs offline
//! on the stored [`Signals`]. The insider's shadow models are its own plaintext models and
//! are scored directly ([`Signals::of_model`]).
//!
//! The per-record statistics the attacks use, all computed in `f64` from the raw scores `z`
//! of a record with label `y`:
//! * [`hinge`]: `z_y − max_{y'≠y} z_{y'}`, LiRA's statistic on raw scores;
//! * [`logit_confidence`]: `log p_y − log Σ_{y'≠y} p_{y'}` for `p = softmax(z)`, LiRA's
//!   statistic on probabilities, computed stably as `z_y − logsumexp_{y'≠y} z_{y'}`;
//! * [`cross_entropy`]: `logsumexp(z) − z_y`, the loss Yeom et al.'s attack thresholds.

use crate::data::{Images, CLASSES, IMAGE_PIXELS};
use crate::model::Model;
use crate::oracle::{Image, ImageError, Oracle, Scores};

use super::lira::median;
use super::Features;

/// Scores of one model on a list of records, with the records' labels and membership.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Signals {
    /// The raw scores of each record, in record order.
    pub scores: Vec<Scores>,
    /// Each record's label.
    pub labels: Vec<u8>,
    /// Whether each record is a member of the model's training set.
    pub member: Vec<bool>,
}

/// Why signals could not be collected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    /// Not one membership flag per record.
    #[error("{records} records but {flags} membership flags")]
    LengthMismatch {
        /// Records.
        records: usize,
        /// Flags.
        flags: usize,
    },
    /// A record is not a valid image.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The oracle failed.
    #[error("oracle: {0}")]
    Oracle(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The oracle answered a different number of score vectors.
    #[error("{asked} records asked, {answered} score vectors answered")]
    Answers {
        /// Records asked.
        asked: usize,
        /// Answers.
        answered: usize,
    },
}

/// The records of `images` as oracle [`Image`]s (pixels scaled to `[0, 1]`).
///
/// # Errors
/// [`ImageError`] (never for images read from IDX bytes).
pub fn to_images(images: &Images) -> Result<Vec<Image>, ImageError> {
    let mut pixels = Vec::with_capacity(IMAGE_PIXELS);
    (0..images.len())
        .map(|i| {
            pixels.clear();
            images.push_scaled(i, &mut pixels);
            Image::new(&pixels)
        })
        .collect()
}

impl Signals {
    /// Queries `oracle` once with every record of `records` (one query of all of them) and
    /// keeps the answers with the labels and `member`.
    ///
    /// # Errors
    /// [`SignalError`] on a length mismatch, an oracle failure or a short answer.
    pub fn collect<O: Oracle>(
        oracle: &mut O,
        records: &Images,
        member: Vec<bool>,
    ) -> Result<Self, SignalError> {
        check_lengths(records, &member)?;
        let images = to_images(records)?;
        let scores = oracle
            .query(&images)
            .map_err(|e| SignalError::Oracle(Box::new(e)))?;
        if scores.len() != images.len() {
            return Err(SignalError::Answers {
                asked: images.len(),
                answered: scores.len(),
            });
        }
        Ok(Signals {
            scores,
            labels: records.labels.clone(),
            member,
        })
    }

    /// The plaintext scores of `model` on `records` (the insider's own shadow models).
    ///
    /// # Errors
    /// [`SignalError::LengthMismatch`].
    pub fn of_model(
        model: &Model,
        records: &Images,
        member: Vec<bool>,
    ) -> Result<Self, SignalError> {
        check_lengths(records, &member)?;
        let scores = model
            .scores_images(records)
            .chunks_exact(CLASSES)
            .map(|chunk| {
                let mut s = [0.0; CLASSES];
                s.copy_from_slice(chunk);
                s
            })
            .collect();
        Ok(Signals {
            scores,
            labels: records.labels.clone(),
            member,
        })
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Record `i`'s feature vector: its raw scores or their softmax.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn features(&self, i: usize, features: Features) -> Scores {
        match features {
            Features::Raw => self.scores[i],
            Features::Softmax => softmax(&self.scores[i]),
        }
    }

    /// Record `i`'s LiRA statistic: [`hinge`] on raw scores, [`logit_confidence`] on
    /// softmax.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn statistic(&self, i: usize, features: Features) -> f64 {
        let (z, y) = (&self.scores[i], usize::from(self.labels[i]));
        match features {
            Features::Raw => hinge(z, y),
            Features::Softmax => logit_confidence(z, y),
        }
    }

    /// Record `i`'s softmax cross-entropy loss.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn loss(&self, i: usize) -> f64 {
        cross_entropy(&self.scores[i], usize::from(self.labels[i]))
    }

    /// Whether each record's arg-max score is its label.
    pub fn correct(&self) -> Vec<bool> {
        self.scores
            .iter()
            .zip(&self.labels)
            .map(|(z, &y)| crate::oracle::predicted_class(z) == usize::from(y))
            .collect()
    }

    /// Fraction of records whose arg-max score is their label, among members (`true`) or
    /// non-members (`false`); 0 when there is none.
    pub fn accuracy(&self, members: bool) -> f64 {
        let (mut right, mut all) = (0usize, 0usize);
        for (c, &m) in self.correct().into_iter().zip(&self.member) {
            if m == members {
                all += 1;
                right += usize::from(c);
            }
        }
        crate::model::fraction(right, all)
    }

    /// How far these scores are from `reference`'s on the same records, relative to the
    /// size of `reference`'s: the median over records of `max_j |z_j − r_j|`, divided by
    /// the median over records of `max_j |r_j|` (0 when both are 0). An encrypted service
    /// running the model of `reference` stays within its precision (CKKS) or its
    /// quantisation (BFV) of it; another model is off by the size of the scores.
    ///
    /// # Errors
    /// [`SignalError::Answers`] when the record counts differ.
    pub fn deviation(&self, reference: &Signals) -> Result<f64, SignalError> {
        if self.len() != reference.len() {
            return Err(SignalError::Answers {
                asked: reference.len(),
                answered: self.len(),
            });
        }
        let max_abs = |v: &mut dyn Iterator<Item = f32>| v.map(f32::abs).fold(0.0f32, f32::max);
        let mut distance: Vec<f64> = self
            .scores
            .iter()
            .zip(&reference.scores)
            .map(|(z, r)| f64::from(max_abs(&mut z.iter().zip(r).map(|(a, b)| a - b))))
            .collect();
        let mut size: Vec<f64> = reference
            .scores
            .iter()
            .map(|r| f64::from(max_abs(&mut r.iter().copied())))
            .collect();
        if self.is_empty() {
            return Ok(0.0);
        }
        let (d, s) = (median(&mut distance), median(&mut size));
        Ok(if d == 0.0 { 0.0 } else { d / s })
    }
}

fn check_lengths(records: &Images, member: &[bool]) -> Result<(), SignalError> {
    if records.len() == member.len() {
        Ok(())
    } else {
        Err(SignalError::LengthMismatch {
            records: records.len(),
            flags: member.len(),
        })
    }
}

/// `log Σ exp(z_j)` over the classes `j` kept by `keep`, stably (−∞ if none is kept).
fn logsumexp(z: &Scores, keep: impl Fn(usize) -> bool) -> f64 {
    let max = (0..CLASSES)
        .filter(|&j| keep(j))
        .map(|j| f64::from(z[j]))
        .fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = (0..CLASSES)
        .filter(|&j| keep(j))
        .map(|j| (f64::from(z[j]) - max).exp())
        .sum();
    max + sum.ln()
}

/// The softmax of `z`, computed in `f64` with the maximum subtracted.
pub fn softmax(z: &Scores) -> Scores {
    let lse = logsumexp(z, |_| true);
    z.map(|v| (f64::from(v) - lse).exp() as f32)
}

/// `z_y − max_{y'≠y} z_{y'}`.
///
/// # Panics
/// If `y >= CLASSES`.
pub fn hinge(z: &Scores, y: usize) -> f64 {
    let other = (0..CLASSES)
        .filter(|&j| j != y)
        .map(|j| f64::from(z[j]))
        .fold(f64::NEG_INFINITY, f64::max);
    f64::from(z[y]) - other
}

/// `log(p_y / (1 − p_y))` for `p = softmax(z)`, as `z_y − logsumexp_{y'≠y} z_{y'}`.
///
/// # Panics
/// If `y >= CLASSES`.
pub fn logit_confidence(z: &Scores, y: usize) -> f64 {
    f64::from(z[y]) - logsumexp(z, |j| j != y)
}

/// The softmax cross-entropy `logsumexp(z) − z_y`.
///
/// # Panics
/// If `y >= CLASSES`.
pub fn cross_entropy(z: &Scores, y: usize) -> f64 {
    logsumexp(z, |_| true) - f64::from(z[y])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_by_hand() {
        let mut z = [0.0f32; CLASSES];
        z[2] = 3.0;
        z[5] = 1.0;
        assert_eq!(hinge(&z, 2), 2.0);
        assert_eq!(hinge(&z, 5), -2.0);
        // logsumexp over the nine others of label 2: ln(8 + e).
        let expected = 3.0 - (8.0 + 1f64.exp()).ln();
        assert!((logit_confidence(&z, 2) - expected).abs() < 1e-12);
        let p = softmax(&z);
        let py = f64::from(p[2]);
        assert!(((py / (1.0 - py)).ln() - expected).abs() < 1e-6);
        let total = 9.0 + 3f64.exp();
        let total = total - 1.0 + 1f64.exp();
        assert!((cross_entropy(&z, 2) - (total.ln() - 3.0)).abs() < 1e-12);
        assert!((p.iter().map(|&v| f64::from(v)).sum::<f64>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn deviation_is_relative_to_the_reference_scores() {
        let signals = |scores: Vec<Scores>| Signals {
            labels: vec![0; scores.len()],
            member: vec![false; scores.len()],
            scores,
        };
        let mut a = [0.0f32; CLASSES];
        a[0] = 4.0;
        let mut b = a;
        b[3] = -8.0;
        let reference = signals(vec![a, b, a]);
        assert_eq!(reference.deviation(&reference).ok(), Some(0.0));
        // Record distances 0.5, 0.5, 2 (median 0.5); sizes 4, 8, 4 (median 4).
        let (mut a2, mut b2, mut c2) = (a, b, a);
        a2[1] += 0.5;
        b2[3] -= 0.5;
        c2[9] = 2.0;
        let answers = signals(vec![a2, b2, c2]);
        let d = answers.deviation(&reference).expect("same records");
        assert!((d - 0.125).abs() < 1e-12, "{d}");
        assert!(signals(vec![a]).deviation(&reference).is_err());
    }

    #[test]
    fn huge_scores_stay_finite() {
        let mut z = [0.0f32; CLASSES];
        z[0] = 1e30;
        z[1] = -1e30;
        assert!(logit_confidence(&z, 0).is_finite());
        assert!(cross_entropy(&z, 1).is_finite());
        assert!(softmax(&z).iter().all(|v| v.is_finite()));
    }
}
