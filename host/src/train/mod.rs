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

pub mod cache;
pub mod optim;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand_core::{RngCore, SeedableRng};
use rayon::prelude::*;

use crate::data::{sample, Images};
use crate::model::network::{Loss, Network, Target};
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
        if !(self.fraction > 0.0 && self.fraction <= 1.0) {
            return Err(TrainError::Config(format!(
                "fraction {} is not in (0, 1]",
                self.fraction
            )));
        }
        self.fit_options().validate()
    }

    /// The run `heist demo` and the attacks train when given no model: `arch` on the whole
    /// training set, Adam at lr 1e-3, batch 128.
    pub fn adam(arch: Architecture, epochs: usize, seed: u64) -> Self {
        TrainConfig {
            arch,
            epochs,
            batch_size: 128,
            lr: 1e-3,
            optimizer: OptimizerKind::Adam,
            momentum: 0.0,
            clip_norm: None,
            fraction: 1.0,
            seed,
        }
    }

    /// The optimisation settings of this run.
    pub fn fit_options(&self) -> FitOptions {
        FitOptions {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            optimizer: self.optimizer,
            momentum: self.momentum,
            clip_norm: self.clip_norm,
        }
    }
}

/// How [`fit`] optimises: the settings every model trained here shares, the paper's
/// targets and attack models alike.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FitOptions {
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

impl FitOptions {
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

/// Loss and accuracy of one epoch, as seen during training.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EpochStats {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean loss over the epoch's examples.
    pub loss: f64,
    /// Fraction of the epoch's examples predicted correctly (before each step); 0 for
    /// regression targets.
    pub accuracy: f64,
}

/// A trained model (by default a [`Model`]; the bare parameters for [`train_network`])
/// and how it was trained.
#[derive(Clone, Debug)]
pub struct Trained<M = Model> {
    /// The model.
    pub model: M,
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
pub fn stream_rng(seed: u64, stream: u64) -> rand_chacha::ChaCha20Rng {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// The training-set indices a run with `fraction` and `seed` trains on, increasing:
/// `round(fraction * train_len)` of them (at least 1) drawn without replacement from
/// stream 1 of `seed`, or every index when that is all of them. A pure function, so a
/// cached model's members can be drawn again without training.
pub fn member_indices(train_len: usize, fraction: f64, seed: u64) -> Vec<usize> {
    let n_members = ((fraction * train_len as f64).round() as usize).clamp(1, train_len.max(1));
    if n_members >= train_len {
        (0..train_len).collect()
    } else {
        sample::sample_indices(&mut stream_rng(seed, 1), train_len, n_members)
    }
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
    train_with(train, config, None, progress)
}

/// [`train`] with an input hook (see [`fit_with`]), e.g. adversarial training.
///
/// # Errors
/// As [`train`].
pub fn train_with(
    train: &Images,
    config: &TrainConfig,
    perturb: Option<Perturb<'_>>,
    progress: impl FnMut(usize, usize, &EpochStats),
) -> Result<Trained, TrainError> {
    let w = train_network(train, config, &config.arch.network(), perturb, progress)?;
    let model = Model::new(config.arch, w.model).map_err(|e| TrainError::Config(e.to_string()))?;
    Ok(Trained {
        model,
        members: w.members,
        history: w.history,
        seconds: w.seconds,
    })
}

/// [`train_with`] for any network `net` with the parameter layout of `config.arch`'s (the
/// same initial weights, members and shuffles), e.g. a twin with other activations.
///
/// # Errors
/// As [`train`]; a network whose parameter count differs from the architecture's.
pub fn train_network(
    train: &Images,
    config: &TrainConfig,
    net: &Network,
    perturb: Option<Perturb<'_>>,
    mut progress: impl FnMut(usize, usize, &EpochStats),
) -> Result<Trained<Vec<f32>>, TrainError> {
    config.validate()?;
    if train.is_empty() {
        return Err(TrainError::Config("no training images".to_owned()));
    }
    let mut params = init_params(config.arch, &mut stream_rng(config.seed, 0));
    let members = member_indices(train.len(), config.fraction, config.seed);
    let mut shuffle_rng = stream_rng(config.seed, 2);
    let start = Instant::now();
    let input = |i: usize, x: &mut Vec<f32>| train.push_scaled(i, x);
    let history = fit_with(
        net,
        &mut params,
        &members,
        &input,
        Targets::Labels(&train.labels),
        &config.fit_options(),
        perturb,
        &mut shuffle_rng,
        &mut progress,
    )?;
    Ok(Trained {
        model: params,
        members,
        history,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// What [`fit`] trains a network to output for example `i`.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a> {
    /// `labels[i]`, with softmax cross-entropy.
    Labels(&'a [u8]),
    /// `values[i * outputs..(i + 1) * outputs]` for a network of `outputs` outputs, with a
    /// regression loss.
    Values(&'a [f32], Loss),
}

/// Trains `params` of `net` in place on the examples `examples` (indices passed to `input`,
/// which appends example `i`'s input to its vector, and into `targets`): `options.epochs`
/// passes, each over a fresh shuffle of `examples` drawn from `shuffle_rng`, one optimiser
/// step per mini-batch on the mean loss. Calls `progress(done, total, stats)` after every
/// mini-batch with running epoch figures and returns each epoch's.
///
/// Deterministic: a mini-batch is cut into chunks of [`CHUNK`] examples whose gradients
/// rayon computes and which are summed in chunk order, so the result does not depend on
/// the number of threads.
///
/// # Errors
/// [`TrainError::Config`] for bad options, no examples or targets that do not fit the
/// network; [`TrainError::Diverged`] on a non-finite loss.
#[allow(clippy::too_many_arguments)]
pub fn fit<R: RngCore>(
    net: &Network,
    params: &mut [f32],
    examples: &[usize],
    input: &(dyn Fn(usize, &mut Vec<f32>) + Sync),
    targets: Targets<'_>,
    options: &FitOptions,
    shuffle_rng: &mut R,
    progress: impl FnMut(usize, usize, &EpochStats),
) -> Result<Vec<EpochStats>, TrainError> {
    fit_with(
        net,
        params,
        examples,
        input,
        targets,
        options,
        None,
        shuffle_rng,
        progress,
    )
}

/// A hook that rewrites a chunk's inputs before its gradient is taken: called with the
/// epoch (1-based), the weights of the moment, the chunk's example indices and their
/// inputs (laid one after another), which it may change in place. Adversarial training
/// replaces them by attacks on the current weights.
pub type Perturb<'a> = &'a (dyn Fn(usize, &[f32], &[usize], &mut [f32]) + Sync);

/// [`fit`] with an optional input hook `perturb`, applied to every chunk of every
/// mini-batch before its loss and gradient are computed (the loss and accuracy reported
/// are then those on the rewritten inputs).
///
/// # Errors
/// As [`fit`].
#[allow(clippy::too_many_arguments)]
pub fn fit_with<R: RngCore>(
    net: &Network,
    params: &mut [f32],
    examples: &[usize],
    input: &(dyn Fn(usize, &mut Vec<f32>) + Sync),
    targets: Targets<'_>,
    options: &FitOptions,
    perturb: Option<Perturb<'_>>,
    shuffle_rng: &mut R,
    mut progress: impl FnMut(usize, usize, &EpochStats),
) -> Result<Vec<EpochStats>, TrainError> {
    options.validate()?;
    if examples.is_empty() {
        return Err(TrainError::Config("no training examples".to_owned()));
    }
    let outputs = net.output_len();
    let available = match targets {
        Targets::Labels(labels) => labels.len(),
        Targets::Values(values, _) => values.len() / outputs,
    };
    if let Some(&i) = examples.iter().find(|&&i| i >= available) {
        return Err(TrainError::Config(format!(
            "example {i} has no target ({available} targets)"
        )));
    }
    if params.len() != net.param_count() {
        return Err(TrainError::Config(format!(
            "{} parameters for a network of {}",
            params.len(),
            net.param_count()
        )));
    }
    let mut opt = Optimizer::new(
        options.optimizer,
        params.len(),
        options.lr,
        options.momentum,
    );
    let batches = examples.len().div_ceil(options.batch_size);
    let mut history = Vec::with_capacity(options.epochs);
    let mut order = examples.to_vec();
    for epoch in 1..=options.epochs {
        sample::shuffle(shuffle_rng, &mut order);
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0, 0);
        for (b, batch) in order.chunks(options.batch_size).enumerate() {
            let scale = 1.0 / batch.len() as f32;
            let weights: &[f32] = params;
            let parts: Vec<(Vec<f32>, f64, usize)> = batch
                .par_chunks(CHUNK)
                .map(|idx| {
                    let mut x = Vec::with_capacity(idx.len() * net.input_len());
                    for &i in idx {
                        input(i, &mut x);
                    }
                    if let Some(perturb) = perturb {
                        perturb(epoch, weights, idx, &mut x);
                    }
                    let mut g = vec![0.0f32; weights.len()];
                    let (l, c) = match targets {
                        Targets::Labels(labels) => {
                            let labels: Vec<u8> = idx.iter().map(|&i| labels[i]).collect();
                            net.loss_grad(weights, &x, &labels, scale, &mut g, None)
                        }
                        Targets::Values(values, loss) => {
                            let mut t = Vec::with_capacity(idx.len() * outputs);
                            for &i in idx {
                                t.extend_from_slice(&values[i * outputs..(i + 1) * outputs]);
                            }
                            let target = Target::Values(&t, loss);
                            net.target_grad(weights, &x, target, scale, &mut g, None)
                        }
                    };
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
            if let Some(bound) = options.clip_norm {
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
