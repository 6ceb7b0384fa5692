//! `heist eval`: accuracy of a model file on a data set's test images.
//!
//! Evaluation goes through the [`Scorer`] trait (images in, scores out). The plaintext
//! model is one scorer ([`Plain`]); another way of computing scores (an encrypted service,
//! for instance) is another implementation, and [`evaluate`] reports its accuracy under its
//! own [`Scorer::label`] (`<label>_accuracy` in JSON) beside the plaintext one.

use std::path::PathBuf;
use std::time::Instant;

use crate::data::{DataOptions, Images, CLASSES};
use crate::exit::{CliError, CliResult};

use super::{fraction, network::argmax, scaled, Architecture, Model};

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

/// Evaluate a model file on a data set's test images.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    heist eval --model mnist.safetensors --dataset mnist\n  \
    heist eval --model fashion.safetensors --dataset fashion --limit 1000 --json eval.json")]
pub struct EvalArgs {
    /// The model file (safetensors).
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// Architecture, when the file's metadata does not say and its shapes should not decide.
    #[arg(long, value_enum)]
    arch: Option<Architecture>,
    #[command(flatten)]
    data: DataOptions,
    /// Evaluate only the first K test images.
    #[arg(long, value_name = "K")]
    limit: Option<usize>,
    /// Also write the results as JSON to this file (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Also classify the images through the in-process three-party service with real
    /// encryption, and report both accuracies and their agreement.
    #[arg(long)]
    encrypted: bool,
    /// The scheme of `--encrypted`.
    #[arg(long, value_enum, default_value = "ckks", requires = "encrypted")]
    scheme: crate::service::Scheme,
}

/// Runs `heist eval`.
///
/// # Errors
/// Bad input (exit 2) for an invalid model or data, failure (exit 1) otherwise.
pub fn run(args: EvalArgs) -> CliResult {
    let model = Model::load(&args.model, args.arch).map_err(CliError::bad_input)?;
    let data = args.data.load().map_err(CliError::bad_input)?;
    let images = match args.limit {
        Some(k) => data.test.truncated(k),
        None => data.test.clone(),
    };
    if args.encrypted {
        return crate::encrypted::eval_encrypted(
            &model,
            &data,
            &images,
            args.scheme,
            args.json.as_deref(),
        );
    }
    let plain = evaluate(&mut Plain(&model), &images)?;
    if let Some(n) = data.source.notice() {
        println!("{n}");
    }
    println!(
        "{} ({}): model {} ({}), {} test images: {} accuracy {:.4} ({}/{}) in {:.2} s",
        data.dataset,
        data.source.label(),
        args.model.display(),
        model.architecture(),
        images.len(),
        plain.label,
        plain.accuracy,
        plain.correct,
        images.len(),
        plain.seconds
    );
    if let Some(path) = &args.json {
        let mut out = serde_json::json!({
            "dataset": data.dataset,
            "data_source": data.source.label(),
            "model": args.model,
            "architecture": model.architecture(),
            "images": images.len(),
        });
        if let Some(obj) = out.as_object_mut() {
            obj.insert(format!("{}_accuracy", plain.label), plain.accuracy.into());
            obj.insert(format!("{}_seconds", plain.label), plain.seconds.into());
        }
        crate::exit::write_json(path, &out)?;
    }
    Ok(())
}
