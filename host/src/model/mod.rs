//! Models: the paper's two square-activation networks, their weights in safetensors files,
//! and plaintext `f32` inference ([`Model::scores`], [`Model::predict`]).
//!
//! # Architectures (paper Tables 1 and 2)
//! Inputs are 28x28 grey images, pixels scaled to [0, 1], one channel.
//!
//! | [`Architecture`] | layers | parameters |
//! |---|---|---|
//! | `mnist` | Conv2d(1→5, 5x5, stride 2, same, bias) → square → flatten (980) → Dense 100 (bias) → square → Dense 10 (bias) | 130 + 98,100 + 1,010 = 99,240 |
//! | `fashion` | Conv2d(1→5, 5x5, stride 2, same, bias) → flatten (980) → Dense 128 (bias) → square → Dense 10 (**no bias**) | 130 + 125,568 + 1,280 = 126,978 |
//!
//! The Fashion-MNIST output layer has no bias because the paper's Table 2 counts 1,280
//! parameters for it (128 x 10); heist follows the table. "Same" padding is TensorFlow's
//! (one row/column before, two after for this geometry); see [`network`].
//!
//! # File format
//! A safetensors file (<https://github.com/huggingface/safetensors>) holding little-endian
//! `F32` tensors named and laid out as PyTorch does:
//!
//! | name | shape |
//! |---|---|
//! | `conv.weight` | `[5, 1, 5, 5]` (out, in, kh, kw) |
//! | `conv.bias` | `[5]` |
//! | `fc1.weight` | `[100, 980]` or `[128, 980]` (out, in; the 980 inputs in (C, H, W) order) |
//! | `fc1.bias` | `[100]` or `[128]` |
//! | `fc2.weight` | `[10, 100]` or `[10, 128]` |
//! | `fc2.bias` | `[10]` (MNIST only) |
//!
//! The header's `__metadata__` holds strings ([`ModelInfo`]): `format` = `heist-model`,
//! `format_version`, `architecture`, and when known `dataset`, `dataset_checksum`,
//! `data_source`, `seed`, `members_file`, `train_accuracy`, `test_accuracy`, `epochs`,
//! `train_config` (JSON), `heist_version`. Loading checks the set of names, every dtype and shape
//! against the architecture (from the caller, else the metadata, else inferred from the
//! shapes) and that every value is finite; anything else is rejected. A file written by
//! PyTorch with these names (`safetensors.torch.save_file(model.state_dict(), path)`) loads
//! unchanged. `docs/model-format.md` shows how to load one in PyTorch or NumPy.

pub mod eval;
pub mod network;
pub mod real;

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use crate::data::{Dataset, Images, CLASSES, IMAGE_PIXELS, IMAGE_SIDE};
use network::{Conv2d, Dense, LayerSpec, Network, Padding, Shape};

/// The largest model file accepted, in bytes.
pub const MAX_MODEL_BYTES: u64 = 64 << 20;

/// The value of the `format` metadata key.
pub const FORMAT: &str = "heist-model";

/// The value of the `format_version` metadata key written by this version.
pub const FORMAT_VERSION: &str = "1";

/// Examples per chunk of parallel inference.
pub(crate) const INFER_CHUNK: usize = 64;

/// One of the paper's networks.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// Paper Table 1: conv → square → dense 100 → square → dense 10.
    Mnist,
    /// Paper Table 2: conv → dense 128 → square → dense 10 (no output bias).
    Fashion,
}

impl Architecture {
    /// Both architectures.
    pub const ALL: [Architecture; 2] = [Architecture::Mnist, Architecture::Fashion];

    /// The paper's architecture for a data set.
    pub fn for_dataset(d: Dataset) -> Self {
        match d {
            Dataset::Mnist => Architecture::Mnist,
            Dataset::Fashion => Architecture::Fashion,
        }
    }

    /// The name stored in metadata.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Mnist => "mnist",
            Architecture::Fashion => "fashion",
        }
    }

    /// Parses a metadata name.
    pub fn from_name(s: &str) -> Option<Self> {
        Architecture::ALL.into_iter().find(|a| a.name() == s)
    }

    /// The layer list.
    pub fn layers(self) -> Vec<LayerSpec> {
        let conv = LayerSpec::Conv2d(Conv2d {
            in_channels: 1,
            out_channels: 5,
            kernel: 5,
            stride: 2,
            padding: Padding::Same,
            bias: true,
        });
        let flat = 5 * 14 * 14;
        match self {
            Architecture::Mnist => vec![
                conv,
                LayerSpec::Square,
                LayerSpec::Flatten,
                LayerSpec::Dense(Dense {
                    inputs: flat,
                    outputs: 100,
                    bias: true,
                }),
                LayerSpec::Square,
                LayerSpec::Dense(Dense {
                    inputs: 100,
                    outputs: CLASSES,
                    bias: true,
                }),
            ],
            Architecture::Fashion => vec![
                conv,
                LayerSpec::Flatten,
                LayerSpec::Dense(Dense {
                    inputs: flat,
                    outputs: 128,
                    bias: true,
                }),
                LayerSpec::Square,
                LayerSpec::Dense(Dense {
                    inputs: 128,
                    outputs: CLASSES,
                    bias: false,
                }),
            ],
        }
    }

    /// The planned network.
    pub fn network(self) -> Network {
        Network::new(Shape::chw(1, IMAGE_SIDE, IMAGE_SIDE), &self.layers())
            .unwrap_or_else(|e| unreachable!("built-in architecture {self:?} is invalid: {e}"))
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a model file was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_MODEL_BYTES`].
    #[error("{file}: {size} bytes is more than the {MAX_MODEL_BYTES} accepted for a model")]
    TooLarge {
        /// The file.
        file: String,
        /// Its size.
        size: u64,
    },
    /// The bytes are not a safetensors file.
    #[error("{file}: not a valid safetensors file: {source}")]
    Format {
        /// The file.
        file: String,
        /// The parser's error.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// The metadata names an unknown architecture or another format.
    #[error("{file}: metadata key {key:?} has unsupported value {value:?}")]
    Metadata {
        /// The file.
        file: String,
        /// The key.
        key: &'static str,
        /// The value found.
        value: String,
    },
    /// The architecture given by the caller differs from the file's metadata.
    #[error("{file}: the file says architecture {found:?} but {wanted} was asked for")]
    ArchitectureConflict {
        /// The file.
        file: String,
        /// Asked for.
        wanted: Architecture,
        /// Found in the metadata.
        found: String,
    },
    /// No architecture has exactly these tensors.
    #[error("{file}: tensors {found:?} match no known architecture (mnist: {mnist:?}; fashion: {fashion:?})")]
    UnknownShapes {
        /// The file.
        file: String,
        /// Name and shape of each tensor found.
        found: Vec<(String, Vec<usize>)>,
        /// What `mnist` expects.
        mnist: Vec<(String, Vec<usize>)>,
        /// What `fashion` expects.
        fashion: Vec<(String, Vec<usize>)>,
    },
    /// A tensor is missing, unexpected, of the wrong type or shape.
    #[error("{file}: tensor {name:?}: {problem} (architecture {arch})")]
    Tensor {
        /// The file.
        file: String,
        /// The tensor.
        name: String,
        /// What is wrong.
        problem: String,
        /// The architecture checked against.
        arch: Architecture,
    },
    /// The parameter vector has the wrong length for the architecture.
    #[error("{len} parameters given, architecture {arch} has {expected}")]
    ParamCount {
        /// Given.
        len: usize,
        /// Expected.
        expected: usize,
        /// The architecture.
        arch: Architecture,
    },
}

/// The string metadata stored in a model file. Unknown keys are kept verbatim.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ModelInfo(pub std::collections::BTreeMap<String, String>);

impl ModelInfo {
    /// A value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Sets a value.
    pub fn set(&mut self, key: &str, value: impl ToString) {
        self.0.insert(key.to_owned(), value.to_string());
    }
}

/// A network of a known architecture with `f32` weights and metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    arch: Architecture,
    network: Network,
    params: Vec<f32>,
    /// Metadata written to and read from the file.
    pub info: ModelInfo,
}

impl Model {
    /// A model of `arch` with the given flat parameter vector (layout: [`Network::tensors`]).
    ///
    /// # Errors
    /// [`ModelError::ParamCount`] if the length is wrong.
    pub fn new(arch: Architecture, params: Vec<f32>) -> Result<Self, ModelError> {
        let network = arch.network();
        if params.len() != network.param_count() {
            return Err(ModelError::ParamCount {
                len: params.len(),
                expected: network.param_count(),
                arch,
            });
        }
        let mut info = ModelInfo::default();
        info.set("format", FORMAT);
        info.set("format_version", FORMAT_VERSION);
        info.set("architecture", arch.name());
        info.set("heist_version", env!("CARGO_PKG_VERSION"));
        Ok(Model {
            arch,
            network,
            params,
            info,
        })
    }

    /// The architecture.
    pub fn architecture(&self) -> Architecture {
        self.arch
    }

    /// The planned network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The flat parameter vector.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// The named tensor's values and shape, e.g. `"fc1.weight"`.
    pub fn tensor(&self, name: &str) -> Option<(&[f32], Vec<usize>)> {
        self.network
            .tensors()
            .into_iter()
            .find(|t| t.name == name)
            .map(|t| (&self.params[t.range], t.shape))
    }

    /// Raw scores (no softmax), `n x 10`, for `n` images of 784 pixels scaled to [0, 1]
    /// laid one after another. Runs on all cores.
    ///
    /// # Panics
    /// If `images.len()` is not a multiple of 784.
    pub fn scores(&self, images: &[f32]) -> Vec<f32> {
        assert_eq!(
            images.len() % IMAGE_PIXELS,
            0,
            "image buffer length {} is not a multiple of {IMAGE_PIXELS}",
            images.len()
        );
        images
            .par_chunks(INFER_CHUNK * IMAGE_PIXELS)
            .flat_map_iter(|chunk| {
                self.network
                    .forward(&self.params, chunk, chunk.len() / IMAGE_PIXELS)
            })
            .collect()
    }

    /// A vector–Jacobian product for `n` images (784 pixels each, in [0, 1], laid one after
    /// another): `cotangent(i, z)` receives image `i`'s raw scores `z` and returns `∂L/∂z`
    /// for the caller's function `L` of the scores; the result holds the scores (`n x 10`)
    /// and `∂L/∂x` (`n x 784`). No parameter gradient is formed. Runs on all cores, in
    /// chunks of 64 images, so the result does not depend on the thread count.
    ///
    /// # Panics
    /// If `images.len()` is not a multiple of 784, or `cotangent` returns other than 10
    /// values.
    pub fn vjp(
        &self,
        images: &[f32],
        cotangent: &(dyn Fn(usize, &[f32]) -> Vec<f32> + Sync),
    ) -> (Vec<f32>, Vec<f32>) {
        assert_eq!(
            images.len() % IMAGE_PIXELS,
            0,
            "image buffer length {} is not a multiple of {IMAGE_PIXELS}",
            images.len()
        );
        let mut scores = vec![0.0; images.len() / IMAGE_PIXELS * CLASSES];
        let mut grads = vec![0.0; images.len()];
        images
            .par_chunks(INFER_CHUNK * IMAGE_PIXELS)
            .zip(scores.par_chunks_mut(INFER_CHUNK * CLASSES))
            .zip(grads.par_chunks_mut(INFER_CHUNK * IMAGE_PIXELS))
            .enumerate()
            .for_each(|(c, ((chunk, z_out), g_out))| {
                let first = c * INFER_CHUNK;
                let (z, g) =
                    self.network
                        .vjp(&self.params, chunk, chunk.len() / IMAGE_PIXELS, |i, z| {
                            cotangent(first + i, z)
                        });
                z_out.copy_from_slice(&z);
                g_out.copy_from_slice(&g);
            });
        (scores, grads)
    }

    /// The predicted class (arg-max of the scores) of each image.
    ///
    /// # Panics
    /// As [`Model::scores`].
    pub fn predict(&self, images: &[f32]) -> Vec<usize> {
        self.scores(images)
            .chunks_exact(self.network.output_len())
            .map(|z| network::argmax(z).0)
            .collect()
    }

    /// Scores for labelled images (scaled to [0, 1] here).
    pub fn scores_images(&self, images: &Images) -> Vec<f32> {
        self.scores(&scaled(images))
    }

    /// Fraction of `images` whose label is predicted, in [0, 1] (0 for no image).
    pub fn accuracy(&self, images: &Images) -> f64 {
        let predicted = self.predict(&scaled(images));
        let correct = predicted
            .iter()
            .zip(&images.labels)
            .filter(|(&p, &l)| p == usize::from(l))
            .count();
        fraction(correct, images.len())
    }

    /// The gradient of the softmax cross-entropy loss with respect to each input pixel, for
    /// `n` images (784 values each, scaled to [0, 1]) and their labels: what a white-box
    /// attacker computes. Returns `n x 784` values.
    ///
    /// # Panics
    /// If the lengths disagree or a label is not below 10.
    pub fn input_gradient(&self, images: &[f32], labels: &[u8]) -> Vec<f32> {
        let mut grad = vec![0.0; self.network.param_count()];
        let mut out = vec![0.0; images.len()];
        self.network
            .loss_grad(&self.params, images, labels, 1.0, &mut grad, Some(&mut out));
        out
    }

    /// The same network as a [`heist_core::nn::Model`] (weights widened exactly to `f64`),
    /// the input of the fixed-point, quantised and encrypted evaluators.
    ///
    /// # Errors
    /// Whatever [`heist_core::nn::Model`] rejects (nothing, for a model built here).
    pub fn to_core(&self) -> Result<heist_core::nn::Model, heist_core::nn::ModelError> {
        let t = |name: &str| -> Vec<f64> {
            self.tensor(name)
                .map(|(v, _)| v.iter().map(|&x| f64::from(x)).collect())
                .unwrap_or_default()
        };
        match self.arch {
            Architecture::Mnist => heist_core::nn::Model::mnist(heist_core::nn::MnistWeights {
                conv_weight: t("conv.weight"),
                conv_bias: t("conv.bias"),
                dense1_weight: t("fc1.weight"),
                dense1_bias: t("fc1.bias"),
                dense2_weight: t("fc2.weight"),
                dense2_bias: t("fc2.bias"),
            }),
            Architecture::Fashion => {
                heist_core::nn::Model::fashion_mnist(heist_core::nn::FashionMnistWeights {
                    conv_weight: t("conv.weight"),
                    conv_bias: t("conv.bias"),
                    dense1_weight: t("fc1.weight"),
                    dense1_bias: t("fc1.bias"),
                    dense2_weight: t("fc2.weight"),
                })
            }
        }
    }

    /// Serialises to safetensors bytes with the metadata.
    ///
    /// # Errors
    /// Only if the safetensors writer fails.
    pub fn to_bytes(&self) -> Result<Vec<u8>, safetensors::SafeTensorError> {
        let tensors = self.network.tensors();
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
            .into_iter()
            .map(|t| {
                let data = self.params[t.range]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect();
                (t.name, t.shape, data)
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(name, shape, data)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                    .map(|v| (name.clone(), v))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let meta: HashMap<String, String> = self.info.0.clone().into_iter().collect();
        safetensors::serialize(views, &Some(meta))
    }

    /// Writes the model to a safetensors file, atomically (a temporary file renamed over it).
    ///
    /// # Errors
    /// [`ModelError::Io`] or [`ModelError::Format`].
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let file = path.display().to_string();
        let bytes = self.to_bytes().map_err(|source| ModelError::Format {
            file: file.clone(),
            source,
        })?;
        // Written beside the target and renamed over it, so that a reader (or a cache
        // lookup after an interrupted run) sees the old file or the new one, never a part.
        // Named by process and a counter: concurrent writers never share a temporary file.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut partial = path.as_os_str().to_owned();
        partial.push(format!(".partial-{}-{n}", std::process::id()));
        let partial = std::path::PathBuf::from(partial);
        std::fs::write(&partial, bytes)
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(|source| {
                let _ = std::fs::remove_file(&partial);
                ModelError::Io { file, source }
            })
    }

    /// Reads and validates a safetensors model file; `arch` overrides what the metadata says
    /// or the shapes imply (a conflict with the metadata is an error).
    ///
    /// # Errors
    /// Any [`ModelError`].
    pub fn load(path: &Path, arch: Option<Architecture>) -> Result<Self, ModelError> {
        let file = path.display().to_string();
        let io = |source| ModelError::Io {
            file: file.clone(),
            source,
        };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > MAX_MODEL_BYTES {
            return Err(ModelError::TooLarge { file, size });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Model::from_bytes(&bytes, &file, arch)
    }

    /// Parses and validates safetensors bytes; `file` names them in errors.
    ///
    /// # Errors
    /// Any [`ModelError`].
    pub fn from_bytes(
        bytes: &[u8],
        file: &str,
        arch: Option<Architecture>,
    ) -> Result<Self, ModelError> {
        let format = |source| ModelError::Format {
            file: file.to_owned(),
            source,
        };
        let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(format)?;
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(format)?;
        let meta: std::collections::BTreeMap<String, String> = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let bad_meta = |key: &'static str, value: &str| ModelError::Metadata {
            file: file.to_owned(),
            key,
            value: value.to_owned(),
        };
        if let Some(f) = meta.get("format").filter(|f| f.as_str() != FORMAT) {
            return Err(bad_meta("format", f));
        }
        if let Some(v) = meta
            .get("format_version")
            .filter(|v| v.as_str() != FORMAT_VERSION)
        {
            return Err(bad_meta("format_version", v));
        }
        let from_meta = match meta.get("architecture") {
            Some(name) => {
                Some(Architecture::from_name(name).ok_or_else(|| bad_meta("architecture", name))?)
            }
            None => None,
        };
        let mut found: Vec<(String, Vec<usize>)> = st
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, v.shape().to_vec()))
            .collect();
        found.sort();
        let expected = |a: Architecture| -> Vec<(String, Vec<usize>)> {
            let mut v: Vec<_> = a
                .network()
                .tensors()
                .into_iter()
                .map(|t| (t.name, t.shape))
                .collect();
            v.sort();
            v
        };
        let arch = match (arch, from_meta) {
            (Some(w), Some(m)) if w != m => {
                return Err(ModelError::ArchitectureConflict {
                    file: file.to_owned(),
                    wanted: w,
                    found: m.name().to_owned(),
                })
            }
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => Architecture::ALL
                .into_iter()
                .find(|&a| expected(a) == found)
                .ok_or_else(|| ModelError::UnknownShapes {
                    file: file.to_owned(),
                    found: found.clone(),
                    mnist: expected(Architecture::Mnist),
                    fashion: expected(Architecture::Fashion),
                })?,
        };
        let network = arch.network();
        let problem = |name: &str, problem: String| ModelError::Tensor {
            file: file.to_owned(),
            name: name.to_owned(),
            problem,
            arch,
        };
        let wanted = network.tensors();
        if let Some((name, _)) = found
            .iter()
            .find(|(n, _)| !wanted.iter().any(|t| &t.name == n))
        {
            return Err(problem(name, "unexpected for this architecture".to_owned()));
        }
        let mut params = vec![0.0f32; network.param_count()];
        for t in &wanted {
            let view = st
                .tensor(&t.name)
                .map_err(|_| problem(&t.name, "missing".to_owned()))?;
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(problem(
                    &t.name,
                    format!("dtype {:?}, expected F32", view.dtype()),
                ));
            }
            if view.shape() != t.shape.as_slice() {
                return Err(problem(
                    &t.name,
                    format!("shape {:?}, expected {:?}", view.shape(), t.shape),
                ));
            }
            let dst = &mut params[t.range.clone()];
            for (i, (d, c)) in dst.iter_mut().zip(view.data().chunks_exact(4)).enumerate() {
                *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                if !d.is_finite() {
                    return Err(problem(&t.name, format!("element {i} is {d}, not finite")));
                }
            }
        }
        let mut model = Model::new(arch, params)?;
        for (k, v) in meta {
            model.info.0.insert(k, v);
        }
        model.info.set("architecture", arch.name());
        Ok(model)
    }
}

/// All images of `images` with pixels scaled to [0, 1], one after another.
pub fn scaled(images: &Images) -> Vec<f32> {
    images
        .pixels
        .iter()
        .map(|&p| f32::from(p) / 255.0)
        .collect()
}

/// `num / den` as a fraction in [0, 1], 0 when `den == 0`.
pub fn fraction(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}
