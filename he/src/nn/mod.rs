//! Encrypted inference of square-activation networks on SIMD batches (CryptoNets packing).
//!
//! One image per slot: a batch of `N/2` images arrives as one ciphertext per input
//! position (784 for MNIST), and the scores leave as one ciphertext per class. The weights
//! are the same for every image, so a linear layer is a sum of ciphertexts times integer
//! constants and a square is a ciphertext product with relinearisation.
//!
//! # CKKS schedule
//!
//! [`CkksPlan`] compiles a [`heist_core::nn::Network`]`<f64>`:
//!
//! - every linear map gets integer weights `w_q = round(w · 2^k)` of
//!   [`PlanConfig::weight_bits`] signed bits; it is evaluated as an integer
//!   multiply-accumulate on the residues (evaluation form throughout) with the bias added
//!   at the new scale `Δ 2^k`; no level is consumed;
//! - every square is `square_relin` followed by one rescale, by a prime of about
//!   `Δ² / 2^p` so the scale returns to about `2^p`.
//!
//! A network with `d` squares thus uses a chain of `d + 1` primes. The plan searches the
//! input scale `2^p_in` and `p`, derives every prime size from the worst-case magnitudes
//! (interval bounds over inputs in `[-input_max_abs, input_max_abs]`, so no value can
//! wrap around the modulus) and keeps the chain with the smallest predicted score error, at
//! the smallest secure ring degree where such a chain fits (and meets
//! [`PlanConfig::max_score_error`] if set). The weight width is searched too unless fixed
//! by [`PlanConfig::weight_bits`]. The predicted error follows the rules of
//! [`crate::ckks`] (fresh, key-switching and rescaling noise as high-probability bounds,
//! everything else by the triangle inequality) and includes the rounding of the weights,
//! so it bounds the distance of each decrypted score to the exact real-valued network. It
//! is a worst case over all inputs in range (magnitudes by the triangle inequality, which
//! the squares amplify), so it is far above the errors observed on real inputs.
//!
//! # BFV schedule
//!
//! [`BfvPlan`] compiles the integer network of a
//! [`heist_core::nn::QuantizedModel`] and reproduces [`QuantizedModel::infer`] bit for bit:
//! several plaintext primes recombined by CRT when the worst-case magnitude exceeds one,
//! and a chain sized by worst-case noise bounds (see [`BfvPlan`] for both). A
//! linear map is the same integer multiply-accumulate on the residues; a square followed
//! by a linear map is fused with it: the products are not relinearised, the map is
//! applied to their three parts, and only its outputs are relinearised (for the MNIST
//! network, 110 key switches instead of 1,080), with the products made and consumed
//! a group at a time so they never all exist at once.
//!
//! [`QuantizedModel::infer`]: heist_core::nn::QuantizedModel::infer
//!
//! # Roles
//!
//! [`CkksClient`] and [`BfvClient`] hold the secret key: they encrypt a batch and decrypt
//! the scores. [`CkksServer`] and [`BfvServer`] hold the plan and the relinearisation key
//! only.
//!
//! # Parallelism
//!
//! The work is split into independent jobs run by an [`Executor`]: linear layers per
//! (polynomial, limb, block of 64 coefficients), squares and relinearisations per chunk
//! of ciphertexts, encryption per input position. [`Sequential`] runs them in order; a host with threads
//! supplies its own executor.

mod bfv;
mod ckks;
mod kernel;
mod layout;
mod plan;

pub use bfv::{BfvClient, BfvPlan, BfvServer, MAX_PLAIN_PRIMES};
pub use ckks::{CkksClient, CkksServer, NoiseSample};
#[cfg(feature = "fuzzing")]
pub use kernel::{linear_kernels, linear_schoolbook};
pub use plan::{Calibration, CkksPlan, PlanConfig};

use alloc::vec::Vec;
use core::fmt;

use heist_core::nn::EvalError;

use crate::bfv::BfvError;
use crate::ckks::CkksError;
use crate::params::ParamsError;

/// Runs independent jobs `f(0), …, f(jobs - 1)` and returns their results in order.
pub trait Executor {
    /// Runs every job; the order of execution is free, the order of results is not.
    fn map<T: Send, F: Fn(usize) -> T + Sync>(&self, jobs: usize, f: F) -> Vec<T>;

    /// Runs `f(i, &mut items[i])` for every item; the order of execution is free. The
    /// default runs them in order on the calling thread.
    fn for_each_mut<T: Send, F: Fn(usize, &mut T) + Sync>(&self, items: &mut [T], f: F) {
        for (i, item) in items.iter_mut().enumerate() {
            f(i, item);
        }
    }
}

/// Runs jobs one after another on the calling thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sequential;

impl Executor for Sequential {
    fn map<T: Send, F: Fn(usize) -> T + Sync>(&self, jobs: usize, f: F) -> Vec<T> {
        (0..jobs).map(f).collect()
    }
}

/// Checks a batch before encryption: 1 to `max` images of `len` values each, every value
/// accepted by `in_range`.
///
/// # Errors
/// [`NnError::BatchSize`], [`NnError::InputLength`], [`NnError::InputRange`] (the first
/// offending image and position).
pub(crate) fn check_batch<T>(
    images: &[&[T]],
    max: usize,
    len: usize,
    in_range: impl Fn(&T) -> bool,
) -> Result<(), NnError> {
    if images.is_empty() || images.len() > max {
        return Err(NnError::BatchSize {
            given: images.len(),
            max,
        });
    }
    for (image, values) in images.iter().enumerate() {
        if values.len() != len {
            return Err(NnError::InputLength {
                expected: len,
                found: values.len(),
            });
        }
        if let Some(index) = values.iter().position(|v| !in_range(v)) {
            return Err(NnError::InputRange { image, index });
        }
    }
    Ok(())
}

/// `count` 32-byte seeds drawn from `rng`, one per encryption job (each job expands its own
/// ChaCha20 stream, so the jobs may run in any order and on any thread). They decide the
/// encryption randomness, so they are wiped when dropped.
pub(crate) fn job_seeds<R: rand_core::RngCore + rand_core::CryptoRng>(
    rng: &mut R,
    count: usize,
) -> zeroize::Zeroizing<Vec<[u8; 32]>> {
    (0..count)
        .map(|_| {
            let mut s = [0u8; 32];
            rng.fill_bytes(&mut s);
            s
        })
        .collect::<Vec<_>>()
        .into()
}

/// An error of encrypted inference.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum NnError {
    /// A [`PlanConfig`] field is out of range.
    Config,
    /// A weight sum or index of operation `op` is too large for the kernel.
    TooLarge {
        /// The operation of the network.
        op: usize,
        /// The offending value.
        value: u64,
    },
    /// A bias of operation `op` is not finite.
    NotFinite {
        /// The operation of the network.
        op: usize,
    },
    /// No secure parameters meet the error target.
    NoParameters {
        /// The target.
        max_score_error: f64,
    },
    /// A wrong number of inputs or ciphertexts.
    InputLength {
        /// Number expected.
        expected: usize,
        /// Number given.
        found: usize,
    },
    /// Too many (or no) images for one batch.
    BatchSize {
        /// Images given.
        given: usize,
        /// Slots available.
        max: usize,
    },
    /// An input value is outside the range the plan's bounds assume.
    InputRange {
        /// The image.
        image: usize,
        /// The input position.
        index: usize,
    },
    /// An input ciphertext is not at the plan's top level and input scale.
    InputLevel {
        /// Its level.
        level: usize,
        /// Its scale.
        scale: f64,
    },
    /// No secure BFV parameters evaluate the integer model exactly.
    NoExactParameters {
        /// `log2(2B + 1)`: the plaintext bits the model's worst case needs.
        plaintext_bits: f64,
    },
    /// An input ciphertext carries more noise than the plan assumes.
    InputNoise {
        /// Its tracked noise bound.
        bound: f64,
        /// That of a fresh secret-key encryption.
        max: f64,
    },
    /// A decrypted BFV score ciphertext carries more noise than the plan's worst case
    /// allows an honest evaluation: it was not computed by the plan.
    ReplyNoise {
        /// The plaintext prime's index.
        prime: usize,
        /// The class (score) of the ciphertext.
        class: usize,
        /// Its measured noise budget, in bits.
        budget: f64,
        /// The least budget the plan guarantees an honest score.
        guaranteed: f64,
    },
    /// A calibration input could not be evaluated.
    Calibration(EvalError),
    /// A CKKS operation failed.
    Ckks(CkksError),
    /// A BFV operation failed.
    Bfv(BfvError),
    /// Parameter generation failed.
    Params(ParamsError),
}

impl fmt::Display for NnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config => write!(
                f,
                "plan configuration out of range (weight bits in [2, 24], positive finite input range and error target)"
            ),
            Self::TooLarge { op, value } => write!(f, "operation {op}: {value} is too large for the kernel"),
            Self::NotFinite { op } => write!(f, "operation {op}: a bias is not finite"),
            Self::NoParameters { max_score_error } => write!(
                f,
                "no secure parameters predict a score error within {max_score_error:e}"
            ),
            Self::InputLength { expected, found } => write!(f, "{found} values or ciphertexts, expected {expected}"),
            Self::BatchSize { given, max } => write!(f, "{given} images for a batch of 1 to {max}"),
            Self::InputRange { image, index } => write!(f, "image {image}: input {index} is outside the plan's range"),
            Self::InputLevel { level, scale } => write!(
                f,
                "input ciphertext at level {level}, scale {scale:e} is not a fresh input of the plan"
            ),
            Self::NoExactParameters { plaintext_bits } => write!(
                f,
                "no secure BFV parameters evaluate the model exactly ({plaintext_bits:.1} plaintext bits needed, at most {MAX_PLAIN_PRIMES} primes)"
            ),
            Self::InputNoise { bound, max } => write!(
                f,
                "input ciphertext with noise bound {bound:e}, above the {max:e} of a fresh encryption the plan assumes"
            ),
            Self::ReplyNoise { prime, class, budget, guaranteed } => write!(
                f,
                "score {class} of prime {prime} has a noise budget of {budget:.1} bits, below the {guaranteed:.1} bits the plan guarantees an honest evaluation"
            ),
            Self::Calibration(e) => write!(f, "calibration input: {e}"),
            Self::Ckks(e) => write!(f, "CKKS: {e}"),
            Self::Bfv(e) => write!(f, "BFV: {e}"),
            Self::Params(e) => write!(f, "parameters: {e}"),
        }
    }
}

impl core::error::Error for NnError {}

impl From<CkksError> for NnError {
    fn from(e: CkksError) -> Self {
        Self::Ckks(e)
    }
}

impl From<BfvError> for NnError {
    fn from(e: BfvError) -> Self {
        Self::Bfv(e)
    }
}

impl From<ParamsError> for NnError {
    fn from(e: ParamsError) -> Self {
        Self::Params(e)
    }
}
