//! The measured curve the default release policy is chosen from: for each candidate
//! policy, whether the CKKS adversaries recover the key through the service (the active
//! one amplifying its crafted pair as far as the plan's score bounds let it, which the
//! well-formedness check refuses, and adaptive: scaled to pass the check and averaged over
//! budgets of batches), and what the policy costs the service in accuracy and in
//! agreement with plaintext.
//!
//! The attacks run through a fresh in-process service per policy, as
//! [`super::active::ckks`] and [`super::passive::ckks`]. The accuracy is measured once on
//! honestly evaluated encrypted batches: their scores, decrypted and checked by the
//! trusted party's codec ([`CkksCodec::decrypt_checked`]), are released under each policy
//! by the same [`ReleasePolicy::apply`] the codec runs, so every policy sees the same
//! decryptions.

use heist_he::nn::CkksPlan;
use rand_core::{CryptoRng, RngCore};

use super::{active, passive, AttackError, Outcome};
use crate::model::network::argmax;
use crate::oracle::Image;
use crate::service::{BatchCodec, BatchEvaluator, CkksCodec, CkksEvaluator, ReleasePolicy};

/// One policy of the sweep: the adversaries' outcomes and the service's accuracy.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SweepPoint {
    /// The policy.
    pub release: String,
    /// The deviation of the noise it adds to every released score (0: none).
    pub sigma: f64,
    /// The rounding step `2^-bits` (0: no rounding).
    pub step: f64,
    /// The active adversary, amplifying.
    pub active: Outcome,
    /// The adaptive active adversary, one outcome per budget of batches.
    pub adaptive: Vec<Outcome>,
    /// The passive adversary.
    pub passive: Outcome,
    /// Accuracy of the released scores on the test images.
    pub accuracy: f64,
    /// Fraction of test images whose released arg-max is the plaintext model's.
    pub agreement: f64,
}

/// Honestly evaluated test scores, decrypted and checked, before any release.
#[derive(Clone, Debug)]
pub struct HonestScores {
    rows: Vec<Vec<f64>>,
    labels: Vec<u8>,
    plain: Vec<usize>,
    noise: f64,
    batches: usize,
    worst_ratio: f64,
}

impl HonestScores {
    /// Encrypts `images` batch by batch under a fresh codec of `plan` (whose noise
    /// estimate is measured on `setup`), evaluates them honestly, and keeps the checked
    /// decryptions; `labels` are the images' classes and `plain` the plaintext model's.
    ///
    /// # Errors
    /// Codec failures; [`AttackError::Codec`] for `labels` or `plain` of another length.
    pub fn measure<R: RngCore + CryptoRng>(
        plan: &CkksPlan,
        setup: &[Image],
        images: &[Image],
        labels: &[u8],
        plain: &[usize],
        rng: &mut R,
    ) -> Result<Self, AttackError> {
        if labels.len() != images.len() || plain.len() != images.len() {
            return Err(AttackError::Codec(crate::service::CodecError::Context {
                reason: format!(
                    "{} images, {} labels, {} plaintext classes",
                    images.len(),
                    labels.len(),
                    plain.len()
                ),
            }));
        }
        let mut codec = CkksCodec::new(plan.clone(), rng)?.with_measured_noise(setup)?;
        let evaluator = CkksEvaluator::new(plan.clone())?;
        let session = evaluator.open_session(&codec.evaluation_context()?)?;
        let (mut rows, mut batches, mut worst_ratio) = (Vec::with_capacity(images.len()), 0, 0.0);
        for batch in images.chunks(plan.batch()) {
            let reply = evaluator.evaluate(&session, &codec.encrypt_batch(batch)?)?;
            let (scores, ratio) = codec.decrypt_measured(&reply, batch.len())?;
            rows.extend(scores);
            batches += 1;
            worst_ratio = f64::max(worst_ratio, ratio);
        }
        Ok(Self {
            rows,
            labels: labels.to_vec(),
            plain: plain.to_vec(),
            noise: codec.noise().value(),
            batches,
            worst_ratio,
        })
    }

    /// The trusted party's measured noise estimate.
    pub fn noise(&self) -> f64 {
        self.noise
    }

    /// The honest batches decrypted, and the largest deviation of their decryptions from
    /// well-formed scores over the noise estimate (the well-formedness check refuses
    /// above [`crate::service::ckks::WELL_FORMED_FACTOR`]).
    pub fn well_formedness(&self) -> (usize, f64) {
        (self.batches, self.worst_ratio)
    }

    /// Accuracy and agreement with plaintext of the scores released under `release`.
    pub fn score<R: RngCore + ?Sized>(&self, release: ReleasePolicy, rng: &mut R) -> (f64, f64) {
        let mut rows = self.rows.clone();
        release.apply(&mut rows, self.noise, rng);
        let count = rows.len().max(1) as f64;
        let (mut correct, mut agree) = (0usize, 0usize);
        for ((row, &label), &plain) in rows.iter().zip(&self.labels).zip(&self.plain) {
            // Every decrypted row holds the plan's CLASSES scores.
            let class = argmax(row).0;
            correct += usize::from(class == usize::from(label));
            agree += usize::from(class == plain);
        }
        (correct as f64 / count, agree as f64 / count)
    }
}

/// Runs the adversaries against a service under each of `policies` (the adaptive one
/// for each of `budgets` batches) and scores the policy on `honest`: one [`SweepPoint`]
/// per policy, in order.
///
/// # Errors
/// As [`active::ckks`], [`active::ckks_adaptive`] and [`passive::ckks`].
pub fn sweep<R: RngCore + CryptoRng>(
    plan: &CkksPlan,
    policies: &[ReleasePolicy],
    budgets: &[usize],
    (filler, victim): (&[Image], &[Image]),
    honest: &HonestScores,
    rng: &mut R,
) -> Result<Vec<SweepPoint>, AttackError> {
    policies
        .iter()
        .map(|&release| {
            let active = active::ckks(plan, release, true, filler, victim, rng)?;
            let adaptive = active::ckks_adaptive(plan, release, budgets, filler, victim, rng)?;
            let passive = passive::ckks(plan, release, filler, victim, rng)?;
            let (accuracy, agreement) = honest.score(release, rng);
            Ok(SweepPoint {
                release: release.to_string(),
                sigma: release.sigma(honest.noise),
                step: match release {
                    ReleasePolicy::Rounded { bits } => f64::powi(2.0, -(bits as i32)),
                    _ => 0.0,
                },
                active,
                adaptive,
                passive,
                accuracy,
                agreement,
            })
        })
        .collect()
}
