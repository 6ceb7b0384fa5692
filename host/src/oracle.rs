//! What an attack may touch: an [`Oracle`] answers queries with scores and counts them.
//!
//! The same attack runs unchanged against the plaintext model ([`PlainOracle`]), the
//! in-process service ([`crate::service::InProcessClient`]) and the service over TCP
//! ([`crate::service::TcpClient`]). Black-box attacks are generic over [`Oracle`]; white-box
//! attacks over [`GradientOracle`], so the compiler shows which attacks see the model.
//!
//! [`Released`] wraps any oracle and hands back only what a [`Release`] policy lets out
//! (rounded scores, or the top-1 label): the countermeasure the attacks are measured against.

use rayon::prelude::*;

use crate::model::network::{Layout, Network};
use crate::model::Model;

pub use crate::data::{CLASSES, IMAGE_PIXELS, IMAGE_SIDE};

/// The raw output of the network for one image: one score per class, no softmax
/// (the encrypted network cannot divide, so the service returns raw scores).
pub type Scores = [f32; CLASSES];

/// A 28×28 greyscale image, row-major, every pixel a finite value in `[0, 1]`.
///
/// The range is checked when the image is built, so every holder of an `Image` can rely on it.
#[derive(Clone, Debug, PartialEq)]
pub struct Image(Box<[f32; IMAGE_PIXELS]>);

/// Why a slice of pixels is not an [`Image`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The slice does not hold exactly [`IMAGE_PIXELS`] values.
    #[error("an image has {expected} pixels, got {found}")]
    WrongLength {
        /// [`IMAGE_PIXELS`].
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A pixel is not a finite value in `[0, 1]`.
    #[error("pixel {index} is {value}, outside [0, 1]")]
    PixelOutOfRange {
        /// Row-major index of the pixel.
        index: usize,
        /// Its value.
        value: f32,
    },
}

impl Image {
    /// Builds an image from `IMAGE_PIXELS` row-major values.
    ///
    /// # Ranges
    /// Every value must be finite and in `[0, 1]`; otherwise [`ImageError::PixelOutOfRange`]
    /// names the first offending pixel.
    pub fn new(pixels: &[f32]) -> Result<Self, ImageError> {
        let array: &[f32; IMAGE_PIXELS] =
            pixels.try_into().map_err(|_| ImageError::WrongLength {
                expected: IMAGE_PIXELS,
                found: pixels.len(),
            })?;
        if let Some((index, &value)) = array
            .iter()
            .enumerate()
            .find(|(_, v)| !(0.0..=1.0).contains(*v))
        {
            return Err(ImageError::PixelOutOfRange { index, value });
        }
        Ok(Self(Box::new(*array)))
    }

    /// The pixels, row-major, each in `[0, 1]`.
    pub fn pixels(&self) -> &[f32; IMAGE_PIXELS] {
        &self.0
    }
}

/// The index of the highest score; the first one on ties. NaN scores are never chosen;
/// if every score is NaN the answer is 0.
pub fn predicted_class(scores: &Scores) -> usize {
    let (class, _) =
        scores
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |(best, top), (class, &score)| {
                if score > top {
                    (class, score)
                } else {
                    (best, top)
                }
            });
    class
}

/// A plaintext classifier: a function from an image to its scores.
///
/// Implemented by [`Model`] and by every `Fn(&Image) -> Scores`, so the service can be
/// built around any model.
pub trait Classifier {
    /// The scores of one image.
    fn scores(&self, image: &Image) -> Scores;

    /// The scores of each image, in order; by default one [`Classifier::scores`] call each.
    fn scores_batch(&self, images: &[Image]) -> Vec<Scores> {
        images.iter().map(|image| self.scores(image)).collect()
    }
}

impl<F: Fn(&Image) -> Scores> Classifier for F {
    fn scores(&self, image: &Image) -> Scores {
        self(image)
    }
}

impl Classifier for Model {
    fn scores(&self, image: &Image) -> Scores {
        first(self.scores_batch(std::slice::from_ref(image)))
    }

    /// One batched forward pass over all the images.
    fn scores_batch(&self, images: &[Image]) -> Vec<Scores> {
        split_scores(&Model::scores(self, &flat_pixels(images)))
    }
}

/// The first score vector of a batch (zeros for an empty one).
fn first(batch: Vec<Scores>) -> Scores {
    batch.into_iter().next().unwrap_or([0.0; CLASSES])
}

/// The pixels of `images`, one image after another.
pub fn flat_pixels(images: &[Image]) -> Vec<f32> {
    let mut flat = vec![0.0; images.len() * IMAGE_PIXELS];
    flat.par_chunks_exact_mut(IMAGE_PIXELS)
        .zip(images)
        .for_each(|(out, image)| out.copy_from_slice(image.pixels()));
    flat
}

/// Consecutive score vectors of [`CLASSES`] values each (a trailing partial vector is
/// dropped).
pub fn split_scores(flat: &[f32]) -> Vec<Scores> {
    flat.chunks_exact(CLASSES)
        .map(|chunk| {
            let mut scores = [0.0; CLASSES];
            scores.copy_from_slice(chunk);
            scores
        })
        .collect()
}

/// Query access to a classifier: images in, raw scores out, every image counted.
///
/// This is all a black-box attacker (paper attacks 2 and 3) gets.
pub trait Oracle {
    /// Why a query failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The scores of each image, in order. An empty slice answers an empty vector and
    /// counts nothing.
    fn query(&mut self, images: &[Image]) -> Result<Vec<Scores>, Self::Error>;

    /// Images submitted through this oracle so far, answered or not.
    fn queries(&self) -> u64;
}

/// The gradient of a scalar function of one image's scores with respect to its pixels.
pub type PixelGradient = Box<[f32; IMAGE_PIXELS]>;

/// The function that maps one image's scores to `∂L/∂scores` (its index in the batch is the
/// first argument), for a [`GradientOracle::vjp`].
pub type Cotangent<'a> = &'a (dyn Fn(usize, &Scores) -> Scores + Sync);

/// Query access plus gradients: what a white-box evasion attack (FGSM, BIM, PGD, C&W)
/// needs. Gradients come from the plaintext twin of the deployed model.
pub trait GradientOracle: Oracle {
    /// A vector–Jacobian product: for each image, its scores `z`, and the gradient with
    /// respect to its pixels of `L(z)` for the function `L` whose gradient `∂L/∂z`
    /// `cotangent(i, z)` returns for image `i`. Any differentiable function of the scores
    /// (a loss, C&W's margin, one class's score) goes through this one call; no parameter
    /// gradient is formed. Counts one query per image.
    fn vjp(
        &mut self,
        images: &[Image],
        cotangent: Cotangent<'_>,
    ) -> Result<(Vec<Scores>, Vec<PixelGradient>), Self::Error>;

    /// For each image, the gradient with respect to its pixels of the softmax
    /// cross-entropy loss of its scores against its label (`labels[i]` for `images[i]`,
    /// each below [`CLASSES`]). Counts one query per image.
    fn loss_gradient(
        &mut self,
        images: &[Image],
        labels: &[u8],
    ) -> Result<Vec<PixelGradient>, Self::Error>;

    /// `iters` signed-gradient steps of size `step` from `start` on the softmax
    /// cross-entropy at `labels` (one per image, each below [`CLASSES`]), each projected
    /// onto the L∞ ball of radius `eps` around the image's `clean` one and onto the box
    /// ([`signed_pixel`]): the loop of BIM and PGD, and with one step FGSM. Counts one query
    /// per image per step.
    ///
    /// The provided method takes one [`GradientOracle::vjp`] per step over all images; an
    /// oracle that holds the model may run the steps chunk by chunk while each chunk is in
    /// cache, with the same result bit for bit.
    ///
    /// # Panics
    /// If the slices' lengths differ, a label is not below [`CLASSES`], or `eps` is
    /// negative or NaN.
    fn signed_steps(
        &mut self,
        clean: &[Image],
        start: &[Image],
        labels: &[u8],
        step: f32,
        eps: f32,
        iters: usize,
    ) -> Result<Vec<Image>, Self::Error> {
        assert!(clean.len() == start.len() && start.len() == labels.len());
        let mut x = start.to_vec();
        for _ in 0..iters {
            let (_, grads) = self.vjp(&x, &|i, z| {
                cross_entropy_cotangent(z, usize::from(labels[i]))
            })?;
            x = clean
                .par_iter()
                .zip(&x)
                .zip(&grads)
                .map(|((c, v), g)| {
                    let moved: Vec<f32> = (v.pixels().iter().zip(g.iter()))
                        .zip(c.pixels())
                        .map(|((&v, &d), &c)| signed_pixel(v, d, c, step, eps))
                        .collect();
                    Image::new(&moved).expect("a signed step stays in the box")
                })
                .collect();
        }
        Ok(x)
    }
}

/// ART's `np.sign`: −1, 0 or 1 (sign(0) = 0, NaN → 0).
pub fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// One pixel's signed-gradient step: `v + step · sign(d)`, clipped to `[c − eps, c + eps]`
/// around its clean value `c`, then to `[0, 1]` (ART's order). For finite `v`, `c` and
/// `step` and `eps ≥ 0` the result is a finite value in `[0, 1]`. Written with `max` and
/// `min`, which equal `clamp` on such values and, unlike it, compile to vector
/// instructions.
#[allow(
    clippy::manual_clamp,
    reason = "clamp checks its bounds on every call, which keeps the loop scalar"
)]
pub fn signed_pixel(v: f32, d: f32, c: f32, step: f32, eps: f32) -> f32 {
    (v + step * sign(d))
        .max(c - eps)
        .min(c + eps)
        .max(0.0)
        .min(1.0)
}

/// [`GradientOracle::signed_steps`] on one chunk: `iters` signed steps of size `step` on
/// the softmax cross-entropy at `labels` through `network` with `params`, for the
/// `labels.len()` images laid one after another in `x` (the start, overwritten with the
/// result), each projected around its clean image in `clean` ([`signed_pixel`]). The
/// chunk stays batch-innermost ([`Layout::BatchInner`]) through all the steps, so only
/// the first and the last transpose it.
///
/// # Panics
/// If `x` or `clean` does not hold `labels.len()` inputs of `network`, `network` does not
/// have [`CLASSES`] outputs, or a label is not below [`CLASSES`].
#[allow(clippy::too_many_arguments)]
pub fn signed_steps_chunk(
    network: &Network,
    params: &[f32],
    x: &mut [f32],
    clean: &[f32],
    labels: &[u8],
    step: f32,
    eps: f32,
    iters: usize,
) {
    let (n, len) = (labels.len(), network.input_len());
    assert_eq!(
        network.output_len(),
        CLASSES,
        "a classifier of {CLASSES} classes"
    );
    assert_eq!(clean.len(), x.len(), "one clean input per input");
    let inner = |v: Vec<f32>| Layout::Examples.convert(Layout::BatchInner, v, len, n);
    let (mut xt, clean) = (inner(x.to_vec()), inner(clean.to_vec()));
    for _ in 0..iters {
        let (_, grad) = network.vjp_laid_out(params, &xt, Layout::BatchInner, n, |i, z| {
            let mut scores = [0.0; CLASSES];
            scores.copy_from_slice(z);
            cross_entropy_cotangent(&scores, usize::from(labels[i])).to_vec()
        });
        for ((v, &d), &c) in xt.iter_mut().zip(&grad).zip(&clean) {
            *v = signed_pixel(*v, d, c, step, eps);
        }
    }
    x.copy_from_slice(&Layout::BatchInner.convert(Layout::Examples, xt, len, n));
}

/// `∂/∂z` of the softmax cross-entropy `logsumexp(z) − z[label]`: `softmax(z) − e_label`,
/// computed with the maximum subtracted so that no exponential overflows.
///
/// # Panics
/// If `label` is not below [`CLASSES`].
pub fn cross_entropy_cotangent(scores: &Scores, label: usize) -> Scores {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut out = scores.map(|z| (z - max).exp());
    let sum: f32 = out.iter().sum();
    for v in &mut out {
        *v /= sum;
    }
    out[label] -= 1.0;
    out
}

/// Why a [`PlainOracle`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlainOracleError {
    /// Not one label per image.
    #[error("{images} images but {labels} labels")]
    LengthMismatch {
        /// Images given.
        images: usize,
        /// Labels given.
        labels: usize,
    },
    /// A label is not a class.
    #[error("label {label} of image {index} is not below {CLASSES}")]
    LabelOutOfRange {
        /// The image's index.
        index: usize,
        /// Its label.
        label: u8,
    },
}

/// The plaintext model as an [`Oracle`]: no service, no encryption; the reference every
/// other oracle is compared with.
#[derive(Debug)]
pub struct PlainOracle<C> {
    classifier: C,
    queries: u64,
}

impl<C: Classifier> PlainOracle<C> {
    /// Wraps a classifier; the query count starts at zero.
    pub fn new(classifier: C) -> Self {
        Self {
            classifier,
            queries: 0,
        }
    }
}

impl<C: Classifier> Oracle for PlainOracle<C> {
    type Error = PlainOracleError;

    /// Never fails.
    fn query(&mut self, images: &[Image]) -> Result<Vec<Scores>, PlainOracleError> {
        self.queries = self.queries.saturating_add(images.len() as u64);
        Ok(self.classifier.scores_batch(images))
    }

    fn queries(&self) -> u64 {
        self.queries
    }
}

/// `∂L/∂z` of one image's scores as a slice, for [`Differentiable::vjp_flat`].
pub type FlatCotangent<'a> = &'a (dyn Fn(usize, &[f32]) -> Vec<f32> + Sync);

/// A plaintext classifier that can differentiate a function of its scores with respect to
/// its input: what [`PlainOracle`] needs to be a [`GradientOracle`].
pub trait Differentiable: Classifier + Sync {
    /// The vector–Jacobian product of [`Model::vjp`]: for `n` images laid one after another,
    /// their scores (`n × 10`) and the gradients (`n × 784`) of the function whose
    /// `∂L/∂z` `cotangent(i, z)` returns.
    fn vjp_flat(&self, pixels: &[f32], cotangent: FlatCotangent<'_>) -> (Vec<f32>, Vec<f32>);

    /// The network and its parameters, for work that steps one chunk of images many times
    /// ([`signed_steps_chunk`]).
    fn network(&self) -> (&Network, &[f32]);
}

impl Differentiable for Model {
    fn vjp_flat(&self, pixels: &[f32], cotangent: FlatCotangent<'_>) -> (Vec<f32>, Vec<f32>) {
        self.vjp(pixels, cotangent)
    }

    fn network(&self) -> (&Network, &[f32]) {
        (Model::network(self), self.params())
    }
}

/// Any network of ten outputs and its weights, e.g. a twin of a paper network with other
/// activations (which the encrypted service cannot run).
#[derive(Clone, Debug, PartialEq)]
pub struct Weighted {
    /// The network (input 1 × 28 × 28, ten outputs).
    pub network: crate::model::network::Network,
    /// Its parameters.
    pub params: Vec<f32>,
}

impl Classifier for Weighted {
    fn scores(&self, image: &Image) -> Scores {
        first(self.scores_batch(std::slice::from_ref(image)))
    }

    fn scores_batch(&self, images: &[Image]) -> Vec<Scores> {
        split_scores(
            &self
                .network
                .forward(&self.params, &flat_pixels(images), images.len()),
        )
    }
}

impl Differentiable for Weighted {
    fn vjp_flat(&self, pixels: &[f32], cotangent: FlatCotangent<'_>) -> (Vec<f32>, Vec<f32>) {
        self.network
            .vjp(&self.params, pixels, pixels.len() / IMAGE_PIXELS, cotangent)
    }

    fn network(&self) -> (&Network, &[f32]) {
        (&self.network, &self.params)
    }
}

/// White-box access to a plaintext classifier (through [`Differentiable::vjp_flat`]).
impl<C: Differentiable> GradientOracle for PlainOracle<C> {
    fn vjp(
        &mut self,
        images: &[Image],
        cotangent: Cotangent<'_>,
    ) -> Result<(Vec<Scores>, Vec<PixelGradient>), PlainOracleError> {
        self.queries = self.queries.saturating_add(images.len() as u64);
        let (scores, grads) = self.classifier.vjp_flat(&flat_pixels(images), &|i, z| {
            let mut zs = [0.0; CLASSES];
            zs.copy_from_slice(z);
            cotangent(i, &zs).to_vec()
        });
        Ok((
            split_scores(&scores),
            grads
                .par_chunks_exact(IMAGE_PIXELS)
                .map(|chunk| {
                    let mut gradient = Box::new([0.0; IMAGE_PIXELS]);
                    gradient.copy_from_slice(chunk);
                    gradient
                })
                .collect(),
        ))
    }

    fn loss_gradient(
        &mut self,
        images: &[Image],
        labels: &[u8],
    ) -> Result<Vec<PixelGradient>, PlainOracleError> {
        check_labels(images.len(), labels)?;
        let (_, grads) = self.vjp(images, &|i, z| {
            cross_entropy_cotangent(z, usize::from(labels[i]))
        })?;
        Ok(grads)
    }

    /// The provided method's result, computed per chunk of 128 images by
    /// [`signed_steps_chunk`]: every step of a chunk runs on one batch-innermost buffer
    /// while it is in cache, with no image built and no transpose between steps. Refuses
    /// mismatched lengths and labels instead of panicking.
    fn signed_steps(
        &mut self,
        clean: &[Image],
        start: &[Image],
        labels: &[u8],
        step: f32,
        eps: f32,
        iters: usize,
    ) -> Result<Vec<Image>, PlainOracleError> {
        check_labels(start.len(), labels)?;
        check_labels(clean.len(), labels)?;
        let steps = (start.len() as u64).saturating_mul(iters as u64);
        self.queries = self.queries.saturating_add(steps);
        let (network, params) = self.classifier.network();
        let chunks: Vec<Vec<Image>> = start
            .par_chunks(STEP_CHUNK)
            .zip(clean.par_chunks(STEP_CHUNK))
            .enumerate()
            .map(|(index, (start, clean))| {
                let labels = &labels[index * STEP_CHUNK..][..start.len()];
                let mut x = flat_pixels(start);
                let clean = flat_pixels(clean);
                signed_steps_chunk(network, params, &mut x, &clean, labels, step, eps, iters);
                x.chunks_exact(IMAGE_PIXELS)
                    .map(|p| Image::new(p).expect("a signed step stays in the box"))
                    .collect()
            })
            .collect();
        Ok(chunks.into_iter().flatten().collect())
    }
}

/// Images per chunk of [`PlainOracle`]'s fused [`GradientOracle::signed_steps`]: twice
/// the chunk [`Model::vjp`] works in, which halves how often each step's matrix products
/// repack the weights (the chunk size changes no result: each image's arithmetic is the
/// same in any batch, which the fused path's test checks bit for bit).
const STEP_CHUNK: usize = 128;

/// One label per image (`images` of them), each below [`CLASSES`].
fn check_labels(images: usize, labels: &[u8]) -> Result<(), PlainOracleError> {
    if images != labels.len() {
        return Err(PlainOracleError::LengthMismatch {
            images,
            labels: labels.len(),
        });
    }
    match labels.iter().position(|&l| usize::from(l) >= CLASSES) {
        Some(index) => Err(PlainOracleError::LabelOutOfRange {
            index,
            label: labels[index],
        }),
        None => Ok(()),
    }
}

/// What the trusted party releases of each decrypted score vector: the cheapest
/// countermeasure against attacks that learn from scores (reconstruction, membership).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Release {
    /// The scores as decrypted.
    Full,
    /// Each score rounded to this many decimal places (half away from zero, in `f64`),
    /// then to the nearest `f32`.
    Decimals(u8),
    /// The predicted class only ([`predicted_class`] of the scores): 1 for it, 0 for
    /// every other class.
    TopOne,
}

/// The most decimal places [`Release::Decimals`] accepts (an `f32` holds about 7
/// significant digits).
pub const MAX_RELEASE_DECIMALS: u8 = 6;

/// Why a release policy is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// More decimal places than [`MAX_RELEASE_DECIMALS`].
    #[error("{0} decimal places; at most {MAX_RELEASE_DECIMALS}")]
    TooManyDecimals(u8),
    /// Not `full`, `top1` or a number of decimals.
    #[error("release {0:?} is not `full`, `top1` or a number of decimal places")]
    Unknown(String),
}

impl Release {
    /// Checks the number of decimal places.
    ///
    /// # Errors
    /// [`ReleaseError::TooManyDecimals`].
    pub fn validate(self) -> Result<Self, ReleaseError> {
        match self {
            Release::Decimals(d) if d > MAX_RELEASE_DECIMALS => {
                Err(ReleaseError::TooManyDecimals(d))
            }
            other => Ok(other),
        }
    }

    /// What is released of `scores`.
    pub fn apply(self, scores: &Scores) -> Scores {
        match self {
            Release::Full => *scores,
            Release::Decimals(d) => {
                let unit = 10f64.powi(i32::from(d));
                scores.map(|s| ((f64::from(s) * unit).round() / unit) as f32)
            }
            Release::TopOne => {
                let mut out = [0.0; CLASSES];
                out[predicted_class(scores)] = 1.0;
                out
            }
        }
    }
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Release::Full => f.write_str("full"),
            Release::Decimals(d) => write!(f, "{d}"),
            Release::TopOne => f.write_str("top1"),
        }
    }
}

impl std::str::FromStr for Release {
    type Err = ReleaseError;

    /// `full`, `top1`, or a number of decimal places.
    fn from_str(s: &str) -> Result<Self, ReleaseError> {
        match s {
            "full" => Ok(Release::Full),
            "top1" => Ok(Release::TopOne),
            _ => s
                .parse::<u8>()
                .map_err(|_| ReleaseError::Unknown(s.to_owned()))
                .and_then(|d| Release::Decimals(d).validate()),
        }
    }
}

/// An [`Oracle`] that hands back only what a [`Release`] policy lets out of another one's
/// answers. Counts what the inner oracle counts.
#[derive(Debug)]
pub struct Released<O> {
    inner: O,
    release: Release,
}

impl<O: Oracle> Released<O> {
    /// Wraps `inner`.
    ///
    /// # Errors
    /// As [`Release::validate`].
    pub fn new(inner: O, release: Release) -> Result<Self, ReleaseError> {
        Ok(Self {
            inner,
            release: release.validate()?,
        })
    }

    /// The policy.
    pub fn release(&self) -> Release {
        self.release
    }

    /// The wrapped oracle.
    pub fn into_inner(self) -> O {
        self.inner
    }
}

impl<O: Oracle> Oracle for Released<O> {
    type Error = O::Error;

    fn query(&mut self, images: &[Image]) -> Result<Vec<Scores>, O::Error> {
        let scores = self.inner.query(images)?;
        Ok(scores.iter().map(|s| self.release.apply(s)).collect())
    }

    fn queries(&self) -> u64 {
        self.inner.queries()
    }
}
