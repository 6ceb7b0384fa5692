//! The inverse generator of the paper's Algorithm 1: a network `G` trained on the
//! attacker's own queries (auxiliary images in, the service's scores out) to map scores
//! back to images, minimising `|G(f(x)) - x|²` (Adam on the mean squared error per pixel).
//!
//! # Input preparation
//! The released scores are prepared ([`InputPrep`]), either kept raw or turned into
//! log-probabilities `z - logsumexp(z)` (log-softmax), as Yang et al. (CCS 2019) feed their
//! inversion model. Each of the ten prepared features is then standardised with the mean
//! and standard deviation it has over the auxiliary queries (the attacker's own data), so
//! that the raw scores of a square-activation network, whose scale is arbitrary, do not
//! set the learning dynamics.
//!
//! # Generators
//! * [`GeneratorKind::Mlp`]: 10 → 256 → ReLU → 512 → ReLU → 784 → sigmoid.
//! * [`GeneratorKind::Deconv`]: 10 → 1,568 → ReLU, viewed as 32 x 7 x 7 → upsample x2 →
//!   conv 3x3 (16) → ReLU → upsample x2 → conv 3x3 (1) → sigmoid: an upsample + convolution
//!   decoder (Odena et al., "Deconvolution and checkerboard artifacts", 2016) to 28 x 28.
//!
//! Both are built from the host's one layer set and trained by its one trainer
//! ([`crate::train::fit`]), seeded, so a seed gives the same generator bit for bit.

use crate::data::{CLASSES, IMAGE_PIXELS, IMAGE_SIDE};
use crate::model::network::{Conv2d, Dense, LayerSpec, Loss, Network, Padding, Shape};
use crate::oracle::{Image, Scores};
use crate::train::optim::OptimizerKind;
use crate::train::{fit, init_network, stream_rng, EpochStats, FitOptions, Targets};

use super::ReconstructionError;

/// How released scores are turned into the generator's input.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum InputPrep {
    /// The scores as released.
    Raw,
    /// `z - logsumexp(z)`: log-probabilities of the softmax of the scores.
    LogSoftmax,
}

/// The generator's architecture.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum GeneratorKind {
    /// A multilayer perceptron.
    Mlp,
    /// Upsampling and convolutions.
    Deconv,
}

impl GeneratorKind {
    /// The layer list and the input shape.
    pub fn network(self) -> Network {
        let dense = |inputs, outputs| {
            LayerSpec::Dense(Dense {
                inputs,
                outputs,
                bias: true,
            })
        };
        let conv = |in_channels, out_channels| {
            LayerSpec::Conv2d(Conv2d {
                in_channels,
                out_channels,
                kernel: 3,
                stride: 1,
                padding: Padding::Same,
                bias: true,
            })
        };
        let quarter = IMAGE_SIDE / 4;
        let (input, layers) = match self {
            GeneratorKind::Mlp => (
                Shape::chw(CLASSES, 1, 1),
                vec![
                    dense(CLASSES, 256),
                    LayerSpec::Relu,
                    dense(256, 512),
                    LayerSpec::Relu,
                    dense(512, IMAGE_PIXELS),
                    LayerSpec::Sigmoid,
                ],
            ),
            GeneratorKind::Deconv => (
                Shape::chw(CLASSES, 1, 1),
                vec![
                    dense(CLASSES, 32 * quarter * quarter),
                    LayerSpec::Relu,
                    LayerSpec::Reshape(Shape::chw(32, quarter, quarter)),
                    LayerSpec::Upsample { factor: 2 },
                    conv(32, 16),
                    LayerSpec::Relu,
                    LayerSpec::Upsample { factor: 2 },
                    conv(16, 1),
                    LayerSpec::Sigmoid,
                ],
            ),
        };
        Network::new(input, &layers)
            .unwrap_or_else(|e| unreachable!("built-in generator {self:?} is invalid: {e}"))
    }
}

/// How the generator is built and trained.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct GeneratorConfig {
    /// Architecture.
    pub kind: GeneratorKind,
    /// Input preparation.
    pub prep: InputPrep,
    /// Optimisation (MSE loss).
    pub fit: FitOptions,
    /// Seed of the initial weights (stream 0) and the shuffles (stream 1).
    pub seed: u64,
}

impl GeneratorConfig {
    /// The defaults: Adam at lr 1e-3, batch 64, 30 epochs.
    pub fn new(kind: GeneratorKind, prep: InputPrep, seed: u64) -> Self {
        Self {
            kind,
            prep,
            fit: FitOptions {
                epochs: 30,
                batch_size: 64,
                lr: 1e-3,
                optimizer: OptimizerKind::Adam,
                momentum: 0.0,
                clip_norm: None,
            },
            seed,
        }
    }
}

/// The prepared, not yet standardised features of one score vector.
pub fn prepare(prep: InputPrep, scores: &Scores) -> [f64; CLASSES] {
    let z = scores.map(f64::from);
    match prep {
        InputPrep::Raw => z,
        InputPrep::LogSoftmax => {
            let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
            z.map(|v| v - lse)
        }
    }
}

/// A trained inverse generator: scores in, an image in [0, 1] out.
#[derive(Clone, Debug)]
pub struct InverseGenerator {
    config: GeneratorConfig,
    network: Network,
    params: Vec<f32>,
    mean: [f64; CLASSES],
    std: [f64; CLASSES],
}

impl InverseGenerator {
    /// Trains a generator on the auxiliary pairs (`aux_images[i]`, `aux_scores[i]`); returns
    /// it with its per-epoch losses.
    ///
    /// # Errors
    /// [`ReconstructionError::Config`] for mismatched or empty pairs and bad options,
    /// [`ReconstructionError::Train`] on divergence, non-finite scores as
    /// [`ReconstructionError::NonFiniteScores`].
    pub fn train(
        aux_images: &[Image],
        aux_scores: &[Scores],
        config: &GeneratorConfig,
    ) -> Result<(Self, Vec<EpochStats>), ReconstructionError> {
        if aux_images.len() != aux_scores.len() {
            return Err(ReconstructionError::Config(format!(
                "{} auxiliary images but {} score vectors",
                aux_images.len(),
                aux_scores.len()
            )));
        }
        if aux_images.is_empty() {
            return Err(ReconstructionError::Config(
                "no auxiliary images".to_owned(),
            ));
        }
        let prepared: Vec<[f64; CLASSES]> =
            aux_scores.iter().map(|s| prepare(config.prep, s)).collect();
        if let Some(index) = prepared
            .iter()
            .position(|f| f.iter().any(|v| !v.is_finite()))
        {
            return Err(ReconstructionError::NonFiniteScores { index });
        }
        let n = prepared.len() as f64;
        let mut mean = [0.0; CLASSES];
        let mut std = [0.0; CLASSES];
        for k in 0..CLASSES {
            mean[k] = prepared.iter().map(|f| f[k]).sum::<f64>() / n;
            let var = prepared
                .iter()
                .map(|f| (f[k] - mean[k]).powi(2))
                .sum::<f64>()
                / n;
            // A constant feature (e.g. top-1 releases) is only centred.
            std[k] = if var > 1e-24 { var.sqrt() } else { 1.0 };
        }
        let network = config.kind.network();
        let mut params = init_network(&network, &mut stream_rng(config.seed, 0));
        let mut generator = Self {
            config: *config,
            network,
            params: Vec::new(),
            mean,
            std,
        };
        let inputs: Vec<f32> = prepared
            .iter()
            .flat_map(|f| generator.standardise(f))
            .collect();
        let targets: Vec<f32> = aux_images.iter().flat_map(|i| *i.pixels()).collect();
        let examples: Vec<usize> = (0..aux_images.len()).collect();
        let input = |i: usize, x: &mut Vec<f32>| {
            x.extend_from_slice(&inputs[i * CLASSES..(i + 1) * CLASSES]);
        };
        let history = fit(
            &generator.network,
            &mut params,
            &examples,
            &input,
            Targets::Values(&targets, Loss::Mse),
            &config.fit,
            &mut stream_rng(config.seed, 1),
            |_, _, _| {},
        )?;
        generator.params = params;
        Ok((generator, history))
    }

    fn standardise(&self, prepared: &[f64; CLASSES]) -> [f32; CLASSES] {
        let mut out = [0.0; CLASSES];
        for (k, o) in out.iter_mut().enumerate() {
            *o = ((prepared[k] - self.mean[k]) / self.std[k]) as f32;
        }
        out
    }

    /// The generator's input for `scores`: prepared and standardised.
    pub fn features(&self, scores: &Scores) -> [f32; CLASSES] {
        self.standardise(&prepare(self.config.prep, scores))
    }

    /// The configuration it was trained with.
    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// `G(scores)` for each score vector.
    ///
    /// # Errors
    /// [`ReconstructionError::NonFiniteScores`] when a score vector prepares to a
    /// non-finite value.
    pub fn reconstruct(&self, scores: &[Scores]) -> Result<Vec<Image>, ReconstructionError> {
        let mut x = Vec::with_capacity(scores.len() * CLASSES);
        for (index, s) in scores.iter().enumerate() {
            let f = self.features(s);
            if f.iter().any(|v| !v.is_finite()) {
                return Err(ReconstructionError::NonFiniteScores { index });
            }
            x.extend_from_slice(&f);
        }
        self.network
            .forward(&self.params, &x, scores.len())
            .chunks_exact(IMAGE_PIXELS)
            .enumerate()
            .map(|(i, p)| {
                to_image(p).map_err(|e| match e {
                    ReconstructionError::NonFiniteOutput { index } => {
                        ReconstructionError::NonFiniteOutput {
                            index: i * IMAGE_PIXELS + index,
                        }
                    }
                    other => other,
                })
            })
            .collect()
    }
}

/// An image from network outputs meant to be in [0, 1] (a sigmoid's, which rounding may
/// put exactly on an end): clamped, NaN refused.
fn to_image(pixels: &[f32]) -> Result<Image, ReconstructionError> {
    if let Some(index) = pixels.iter().position(|p| p.is_nan()) {
        return Err(ReconstructionError::NonFiniteOutput { index });
    }
    let clamped: Vec<f32> = pixels.iter().map(|p| p.clamp(0.0, 1.0)).collect();
    Image::new(&clamped).map_err(|e| ReconstructionError::Config(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_generators_map_ten_features_to_one_image() {
        for kind in [GeneratorKind::Mlp, GeneratorKind::Deconv] {
            let net = kind.network();
            assert_eq!(net.input_len(), CLASSES, "{kind:?}");
            assert_eq!(net.output_len(), IMAGE_PIXELS, "{kind:?}");
        }
    }

    #[test]
    fn log_softmax_gives_log_probabilities_whatever_the_shift() {
        let scores: Scores = [3.0, -1.0, 0.5, 10.0, 2.0, 0.0, -4.0, 7.5, 1.0, 2.5];
        let shifted = scores.map(|s| s + 1000.0);
        let a = prepare(InputPrep::LogSoftmax, &scores);
        let b = prepare(InputPrep::LogSoftmax, &shifted);
        let total: f64 = a.iter().map(|v| v.exp()).sum();
        assert!((total - 1.0).abs() < 1e-12);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-9);
        }
        assert_eq!(prepare(InputPrep::Raw, &scores), scores.map(f64::from));
    }
}
