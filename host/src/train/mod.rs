//! Training the paper's networks in `f32` (what `heist train` runs).
//!
//! * **Initialisation**: Glorot (Xavier) uniform weights, `U(-l, l)` with
//!   `l = sqrt(6 / (fan_in + fan_out))` (Keras's default; for a convolution the fans are
//!   `in * k * k` and `out * k * k`), zero biases.
//! * **Loss**: softmax cross-entropy on the raw scores, averaged over the mini-batch.
//! * **Optimiser**: Adam (lr 1e-3 by default) or SGD ([`optim`]).
//! * **Square activations** make the loss a high-degree polynomial of the weights, so a bad
//!   step can blow up. Glorot initialisation with pixels in [0, 1] keeps the activations
//!   near unit scale; with Adam at lr 1e-3 that keeps both paper networks stable. An
//!   optional global-norm clip (`--clip-norm`) rescales a mini-batch gradient whose L2 norm
//!   exceeds the bound (SGD with momentum 0.9 at lr 0.02 diverges in its first epoch on
//!   the embedded MNIST subset without it and trains with `--clip-norm 1`; a test pins
//!   both). A non-finite loss stops training with an error.
//! * **Parallelism and reproducibility**: a mini-batch is cut into chunks of [`CHUNK`]
//!   examples (a constant, not the thread count); rayon computes each chunk's gradient, and
//!   the chunk gradients are summed in chunk order. Every random draw comes from a ChaCha20
//!   generator seeded by `--seed` (stream 0: initial weights; 1: the member subset;
//!   2: the shuffles), so the same seed gives the same weights bit for bit, whatever the
//!   number of threads.
//! * **Membership experiments**: `--fraction F` trains on `round(F * n)` training images
//!   drawn without replacement; their indices go to `<out>.members.json`.
//! * **One loop for every network**: [`fit`] trains any [`Network`] on any [`Examples`]
//!   (images, or the score vectors the membership attack models learn from, [`Vectors`]);
//!   [`train`] is `fit` for the paper's networks.

pub mod cache;
pub mod optim;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand_core::{RngCore, SeedableRng};
use rayon::prelude::*;

use crate::data::{sample, Images};
use crate::model::network::Network;
use crate::model::{fraction, Architecture, Model};
use optim::{Optimizer, OptimizerKind};

/// Examples per chunk of a mini-batch; gradients are reduced chunk by chunk in order.
pub const CHUNK: usize = 32;

/// Hyper-parameters of a training run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TrainConfig {
    /// The network.
    pub arch: Architecture,
    /// Passes over the training members.
    pub epochs: usize,
    /// Examples per mini-batch.
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f32,
    /// Optimiser.
    pub optimizer: OptimizerKind,
    /// SGD momentum (ignored by Adam).
    pub momentum: f32,
    /// Global L2-norm bound on a mini-batch gradient, if any.
    pub clip_norm: Option<f32>,
    /// Fraction of the training set to train on, in (0, 1].
    pub fraction: f64,
    /// Seed of every random draw.
    pub seed: u64,
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A hyper-parameter is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The loss became NaN or infinite.
    #[error("training diverged at epoch {epoch}, batch {batch}: loss {loss} (try --clip-norm or a smaller --lr)")]
    Diverged {
        /// Epoch (1-based).
        epoch: usize,
        /// Mini-batch within the epoch (0-based).
        batch: usize,
        /// The loss.
        loss: f64,
    },
}

impl TrainConfig {
    /// Checks the ranges of the hyper-parameters.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming the first bad value.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |s: String| Err(TrainError::Config(s));
        if !(self.fraction > 0.0 && self.fraction <= 1.0) {
            return bad(format!("fraction {} is not in (0, 1]", self.fraction));
        }
        self.schedule().validate()
    }

    /// Adam at lr 1e-3 on all the data, no clipping: `heist train`'s defaults for `arch`
    /// with these epochs, batch size and seed.
    pub fn adam(arch: Architecture, epochs: usize, batch_size: usize, seed: u64) -> Self {
        Self {
            arch,
            epochs,
            batch_size,
            lr: 1e-3,
            optimizer: OptimizerKind::Adam,
            momentum: 0.0,
            clip_norm: None,
            fraction: 1.0,
            seed,
        }
    }

    /// The loop settings of this run.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            optimizer: self.optimizer,
            momentum: self.momentum,
            clip_norm: self.clip_norm,
        }
    }
}
/// The loop settings of a training run: everything but the network, the data and the seed.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Schedule {
    /// Passes over the examples.
    pub epochs: usize,
    /// Examples per mini-batch.
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f32,
    /// Optimiser.
    pub optimizer: OptimizerKind,
    /// SGD momentum (ignored by Adam).
    pub momentum: f32,
    /// Global L2-norm bound on a mini-batch gradient, if any.
    pub clip_norm: Option<f32>,
}

impl Schedule {
    /// Checks the ranges of the settings.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming the first bad value.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |s: String| Err(TrainError::Config(s));
        if self.batch_size == 0 {
            return bad("batch size 0".to_owned());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("learning rate {} is not positive", self.lr));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(format!("momentum {} is not in [0, 1)", self.momentum));
        }
        if let Some(c) = self.clip_norm.filter(|c| !(c.is_finite() && *c > 0.0)) {
            return bad(format!("clip norm {c} is not positive"));
        }
        Ok(())
    }
}

/// Labelled examples a network can train on.
pub trait Examples: Sync {
    /// Appends example `i`'s input values (the network's input length of them).
    fn push_input(&self, i: usize, out: &mut Vec<f32>);
    /// Example `i`'s label, below the network's output length.
    fn label(&self, i: usize) -> u8;
}

impl Examples for Images {
    /// The pixels scaled to [0, 1].
    fn push_input(&self, i: usize, out: &mut Vec<f32>) {
        self.push_scaled(i, out);
    }

    fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }
}

/// Labelled feature vectors of one width, one after another.
#[derive(Clone, Debug, PartialEq)]
pub struct Vectors {
    width: usize,
    values: Vec<f32>,
    labels: Vec<u8>,
}

impl Vectors {
    /// `labels.len()` vectors of `width` values each, laid one after another in `values`.
    ///
    /// # Errors
    /// [`TrainError::Config`] when the lengths disagree or a value is not finite.
    pub fn new(width: usize, values: Vec<f32>, labels: Vec<u8>) -> Result<Self, TrainError> {
        if Some(values.len()) != width.checked_mul(labels.len()) {
            return Err(TrainError::Config(format!(
                "{} values are not {} vectors of {width}",
                values.len(),
                labels.len()
            )));
        }
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(TrainError::Config(format!(
                "feature value {v} is not finite"
            )));
        }
        Ok(Self {
            width,
            values,
            labels,
        })
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no vector.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

impl Examples for Vectors {
    fn push_input(&self, i: usize, out: &mut Vec<f32>) {
        out.extend_from_slice(&self.values[i * self.width..(i + 1) * self.width]);
    }

    fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }
}

/// Loss and accuracy of one epoch, as seen during training.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EpochStats {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean loss over the epoch's examples.
    pub loss: f64,
    /// Fraction of the epoch's examples predicted correctly (before each step).
    pub accuracy: f64,
}

/// A trained model and how it was trained.
#[derive(Clone, Debug)]
pub struct Trained {
    /// The model.
    pub model: Model,
    /// Indices of the training images used, increasing.
    pub members: Vec<usize>,
    /// Per-epoch statistics.
    pub history: Vec<EpochStats>,
    /// Wall time of the training loop in seconds.
    pub seconds: f64,
}

/// Glorot-uniform weights and zero biases for `arch`, from `rng`.
pub fn init_params<R: RngCore>(arch: Architecture, rng: &mut R) -> Vec<f32> {
    init_network(&arch.network(), rng)
}

/// Glorot-uniform weights and zero biases for any network, from `rng`.
pub fn init_network<R: RngCore>(net: &Network, rng: &mut R) -> Vec<f32> {
    let mut params = vec![0.0f32; net.param_count()];
    for t in net.tensors() {
        if let Some((fan_in, fan_out)) = t.fans {
            let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
            for p in &mut params[t.range] {
                // 24 random bits give a uniform f64 in [0, 1) exactly representable in f32.
                let u = f64::from(rng.next_u32() >> 8) / f64::from(1u32 << 24);
                *p = ((2.0 * u - 1.0) * limit) as f32;
            }
        }
    }
    params
}

/// The ChaCha20 generator for stream `stream` of `seed`.
fn stream_rng(seed: u64, stream: u64) -> rand_chacha::ChaCha20Rng {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Trains `config.arch` on (a fraction of) `train`, calling `progress(done, total, loss,
/// accuracy)` after every mini-batch with running epoch figures.
///
/// # Errors
/// [`TrainError`] on a bad configuration or divergence.
pub fn train(
    train: &Images,
    config: &TrainConfig,
    progress: impl FnMut(usize, usize, &EpochStats),
) -> Result<Trained, TrainError> {
    config.validate()?;
    if train.is_empty() {
        return Err(TrainError::Config("no training images".to_owned()));
    }
    let net = config.arch.network();
    let mut params = init_params(config.arch, &mut stream_rng(config.seed, 0));
    let n_members = ((config.fraction * train.len() as f64).round() as usize).clamp(1, train.len());
    let members = if n_members == train.len() {
        (0..train.len()).collect()
    } else {
        sample::sample_indices(&mut stream_rng(config.seed, 1), train.len(), n_members)
    };
    let start = Instant::now();
    let history = fit(
        &net,
        &mut params,
        train,
        &members,
        &config.schedule(),
        &mut stream_rng(config.seed, 2),
        progress,
    )?;
    let seconds = start.elapsed().as_secs_f64();
    let model = Model::new(config.arch, params).map_err(|e| TrainError::Config(e.to_string()))?;
    Ok(Trained {
        model,
        members,
        history,
        seconds,
    })
}

/// The training loop: fits `params` of `net` to the examples at `indices` of `examples`
/// with `schedule`, shuffling the indices each epoch with `shuffle_rng`, and calls
/// `progress(done, total, stats)` after every mini-batch with running epoch figures.
/// Returns the statistics of each epoch. [`train`] runs it for the paper's networks; the
/// membership attack models run it on score vectors ([`Vectors`]).
///
/// # Errors
/// [`TrainError::Config`] for a bad schedule or no example, [`TrainError::Diverged`] when
/// a loss is not finite.
///
/// # Panics
/// If `params` does not fit `net`, an index is out of range, or an example does not have
/// the network's input length or a label below its output length.
pub fn fit<E: Examples + ?Sized>(
    net: &Network,
    params: &mut [f32],
    examples: &E,
    indices: &[usize],
    schedule: &Schedule,
    shuffle_rng: &mut impl RngCore,
    mut progress: impl FnMut(usize, usize, &EpochStats),
) -> Result<Vec<EpochStats>, TrainError> {
    schedule.validate()?;
    if indices.is_empty() {
        return Err(TrainError::Config("no training examples".to_owned()));
    }
    let mut opt = Optimizer::new(
        schedule.optimizer,
        params.len(),
        schedule.lr,
        schedule.momentum,
    );
    let batches = indices.len().div_ceil(schedule.batch_size);
    let mut history = Vec::with_capacity(schedule.epochs);
    let mut order = indices.to_vec();
    for epoch in 1..=schedule.epochs {
        sample::shuffle(shuffle_rng, &mut order);
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0, 0);
        for (b, batch) in order.chunks(schedule.batch_size).enumerate() {
            let scale = 1.0 / batch.len() as f32;
            let current: &[f32] = params;
            let parts: Vec<(Vec<f32>, f64, usize)> = batch
                .par_chunks(CHUNK)
                .map(|idx| {
                    let mut x = Vec::with_capacity(idx.len() * net.input_len());
                    for &i in idx {
                        examples.push_input(i, &mut x);
                    }
                    let labels: Vec<u8> = idx.iter().map(|&i| examples.label(i)).collect();
                    let mut g = vec![0.0f32; current.len()];
                    let (l, c) = net.loss_grad(current, &x, &labels, scale, &mut g, None);
                    (g, l, c)
                })
                .collect();
            let mut parts = parts.into_iter();
            let (mut grad, mut batch_loss, mut batch_correct) = parts
                .next()
                .unwrap_or_else(|| (vec![0.0; params.len()], 0.0, 0));
            for (g, l, c) in parts {
                for (a, v) in grad.iter_mut().zip(&g) {
                    *a += v;
                }
                batch_loss += l;
                batch_correct += c;
            }
            if !batch_loss.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    batch: b,
                    loss: batch_loss,
                });
            }
            if let Some(bound) = schedule.clip_norm {
                let norm = grad
                    .iter()
                    .map(|&g| f64::from(g) * f64::from(g))
                    .sum::<f64>()
                    .sqrt();
                if norm > f64::from(bound) {
                    let k = (f64::from(bound) / norm) as f32;
                    grad.iter_mut().for_each(|g| *g *= k);
                }
            }
            opt.step(params, &grad);
            loss_sum += batch_loss;
            correct += batch_correct;
            seen += batch.len();
            let stats = EpochStats {
                epoch,
                loss: loss_sum / seen as f64,
                accuracy: fraction(correct, seen),
            };
            progress(b + 1, batches, &stats);
            if b + 1 == batches {
                history.push(stats);
            }
        }
    }
    Ok(history)
}

/// The file the member indices of a model at `model` are written to.
pub fn members_path(model: &Path) -> PathBuf {
    let mut s = model.as_os_str().to_owned();
    s.push(".members.json");
    PathBuf::from(s)
}

/// The member file: which training images a model saw.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Members {
    /// Data set.
    pub dataset: crate::data::Dataset,
    /// `canonical` or `embedded-subset`: which training set the indices refer to.
    pub data_source: String,
    /// Size of that training set.
    pub train_size: usize,
    /// Fraction asked for.
    pub fraction: f64,
    /// Seed of the draw.
    pub seed: u64,
    /// Indices into the training set, increasing.
    pub members: Vec<usize>,
}
