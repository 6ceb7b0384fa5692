//! Accuracy of a model on a data set's test images (what `heist eval` reports).
//!
//! Evaluation goes through the [`Scorer`] trait (images in, scores out). The plaintext
//! model is one scorer ([`Plain`]); another way of computing scores (an encrypted service,
//! for instance) is another implementation, and [`evaluate`] reports its accuracy under its
//! own [`Scorer::label`] (`<label>_accuracy` in JSON) beside the plaintext one.

use std::time::Instant;

use crate::data::{Images, CLASSES};

use super::{fraction, network::argmax, scaled, Model};

/// Something that computes scores for a batch of images.
pub trait Scorer {
    /// A short name used in output keys (`plain` gives `plain_accuracy`).
    fn label(&self) -> &'static str;

    /// Scores, `n x 10`, for `n` images of 784 pixels in [0, 1].
    ///
    /// # Errors
    /// Whatever prevents the scores from being computed.
    fn scores(&mut self, images: &[f32]) -> anyhow::Result<Vec<f32>>;
}

/// Plaintext `f32` inference on a loaded model.
#[derive(Debug, Clone, Copy)]
pub struct Plain<'a>(pub &'a Model);

impl Scorer for Plain<'_> {
    fn label(&self) -> &'static str {
        "plain"
    }

    fn scores(&mut self, images: &[f32]) -> anyhow::Result<Vec<f32>> {
        Ok(self.0.scores(images))
    }
}

/// One scorer's results on a set of images.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// The scorer's label.
    pub label: &'static str,
    /// Predicted class per image.
    pub predictions: Vec<usize>,
    /// Images whose label was predicted.
    pub correct: usize,
    /// `correct / images`.
    pub accuracy: f64,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Runs `scorer` on `images` and counts correct predictions.
///
/// # Errors
/// The scorer's error, or if it returns the wrong number of scores.
pub fn evaluate(scorer: &mut dyn Scorer, images: &Images) -> anyhow::Result<Evaluation> {
    let start = Instant::now();
    let scores = scorer.scores(&scaled(images))?;
    anyhow::ensure!(
        scores.len() == images.len() * CLASSES,
        "{} scorer returned {} scores for {} images",
        scorer.label(),
        scores.len(),
        images.len()
    );
    let predictions: Vec<usize> = scores.chunks_exact(CLASSES).map(|z| argmax(z).0).collect();
    let correct = predictions
        .iter()
        .zip(&images.labels)
        .filter(|(&p, &l)| p == usize::from(l))
        .count();
    Ok(Evaluation {
        label: scorer.label(),
        accuracy: fraction(correct, images.len()),
        correct,
        predictions,
        seconds: start.elapsed().as_secs_f64(),
    })
}
