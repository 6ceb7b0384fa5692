//! Attack 2: black-box reconstruction of private training images from the scores the
//! encrypted service releases (paper §5.1.3, Algorithm 1, Table 5, Figure 4).
//!
//! Anyone who may query the service gets scores back. The attacker queries it on an
//! auxiliary set (the test images, as the paper does), trains an inverse generator
//! `G: scores → image` on those pairs ([`generator`]), and turns the scores of a private
//! training image `x0` back into an image `G(f(x0))`. The attack only holds an
//! [`Oracle`]: it never sees the model's weights, and every query (auxiliary and target)
//! is counted.
//!
//! # What is measured ([`run`])
//! For `K` private training images drawn with a seed, the generator's reconstructions and
//! three baselines ([`baselines`]: the class-mean training image of the predicted label, the
//! nearest auxiliary image by score distance, the global mean image) are each scored
//! against the originals ([`crate::attack::metrics`]): SSIM at data range 1 (the result),
//! SSIM at data range 255 (the convention that reproduces the paper's 0.998: images in
//! [0, 1] compared as if their range were 255), PSNR and MSE, and re-classification
//! accuracy, the fraction of reconstructions classified as the original's label, by the
//! target model and by an independently trained evaluator ([`evaluator`]). Every figure
//! carries a 95 % bootstrap interval over the `K` images (the same resamples for every
//! method: the intervals are paired).
//!
//! Two curves come on request: quality against the number of auxiliary queries (each
//! generator trained for the same number of optimiser steps), and against what the service
//! releases ([`Release`]: full precision, 4, 2 and 1 decimals, the top-1 label). The
//! release policy is applied to the answers already obtained, exactly as the
//! [`crate::oracle::Released`] adapter would hand them out, so the curve costs no new
//! queries.
//!
//! A second, different method comes on request too: per-class model inversion after
//! Fredrikson et al. from queries only ([`inversion`]), which recovers a representative of
//! each class rather than a particular private image.
//!
//! # Paper
//! Table 5 ([`paper_table5`]) reports re-classification accuracy and a mean SSIM of 0.998
//! (MNIST) and 0.972 (Fashion-MNIST). Ten scores cannot carry 784 pixels: at data range 1
//! the SSIM of such reconstructions is about 0.5. Comparing images in [0, 1] with a data
//! range of 255 makes the constants `C1`, `C2` dwarf every variance, so that even the
//! global mean image scores above 0.99; that is the convention reported beside the result.

pub mod baselines;
pub mod evaluator;
pub mod generator;
pub mod inversion;

use std::time::Instant;

use crate::attack::metrics::{self, bootstrap_fraction, bootstrap_mean, Estimate, MetricError};
use crate::data::{sample, Dataset, Images, CLASSES, IMAGE_PIXELS, IMAGE_SIDE};
use crate::oracle::{predicted_class, Classifier, Image, Oracle, Release, Scores};
use crate::train::{stream_rng, EpochStats, TrainError};

use baselines::{nearest_aux, MeanImages};
use evaluator::Evaluator;
use generator::{GeneratorConfig, InverseGenerator};
use inversion::{invert, InversionConfig};

/// Why the attack failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconstructionError {
    /// A setting is out of range or inputs do not fit together.
    #[error("invalid reconstruction setting: {0}")]
    Config(String),
    /// A released score vector gives a non-finite generator input.
    #[error("score vector {index} is not finite after input preparation")]
    NonFiniteScores {
        /// Its index among the vectors given.
        index: usize,
    },
    /// The generator produced a NaN pixel.
    #[error("the generator produced a NaN at pixel {index}")]
    NonFiniteOutput {
        /// Index among the pixels of the batch.
        index: usize,
    },
    /// Training the generator or the evaluator failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// A metric could not be computed.
    #[error(transparent)]
    Metric(#[from] MetricError),
    /// The oracle failed.
    #[error("oracle: {0}")]
    Oracle(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The paper's Table 5 row for a data set.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct PaperRow {
    /// Accuracy of the target model on the originals.
    pub baseline_accuracy: f64,
    /// Re-classification accuracy of the reconstructions.
    pub reclassification_accuracy: f64,
    /// Mean SSIM as published (reproduced by data range 255, see the module docs).
    pub ssim: f64,
}

/// Table 5 of the paper.
pub fn paper_table5(dataset: Dataset) -> PaperRow {
    match dataset {
        Dataset::Mnist => PaperRow {
            baseline_accuracy: 0.999,
            reclassification_accuracy: 0.945,
            ssim: 0.998,
        },
        Dataset::Fashion => PaperRow {
            baseline_accuracy: 0.941,
            reclassification_accuracy: 0.832,
            ssim: 0.972,
        },
    }
}

/// What the attack asks of the oracle and how it trains.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Settings {
    /// Auxiliary images queried: the first `aux` test images.
    pub aux: usize,
    /// Private training images reconstructed, drawn uniformly without replacement.
    pub targets: usize,
    /// The generator.
    pub generator: GeneratorConfig,
    /// Seed of the target draw (stream 2), the evaluator (seed + 1) and the bootstrap.
    pub seed: u64,
    /// Whether to measure the two curves.
    pub curves: bool,
    /// Whether and how to run the per-class model inversion ([`inversion`]).
    pub inversion: Option<InversionConfig>,
}

/// Numbers of auxiliary queries on the first curve (those not above [`Settings::aux`]).
pub const AUX_CURVE: [usize; 5] = [100, 300, 1_000, 3_000, 10_000];

/// Release policies on the second curve.
pub const RELEASE_CURVE: [Release; 5] = [
    Release::Full,
    Release::Decimals(4),
    Release::Decimals(2),
    Release::Decimals(1),
    Release::TopOne,
];

impl Settings {
    /// Checks the settings against the data.
    ///
    /// # Errors
    /// [`ReconstructionError::Config`] naming the first bad value.
    pub fn validate(&self, train: &Images, test: &Images) -> Result<(), ReconstructionError> {
        let bad = |s: String| Err(ReconstructionError::Config(s));
        if self.aux == 0 || self.aux > test.len() {
            return bad(format!(
                "{} auxiliary images; between 1 and the {} test images",
                self.aux,
                test.len()
            ));
        }
        if self.targets == 0 || self.targets > train.len() {
            return bad(format!(
                "{} targets; between 1 and the {} training images",
                self.targets,
                train.len()
            ));
        }
        self.generator.fit.validate()?;
        Ok(())
    }
}

/// One method's scores against the originals, each a mean with its 95 % interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Quality {
    /// SSIM at data range 1.
    pub ssim: Estimate,
    /// SSIM at data range 255 (the paper-compatible convention).
    pub ssim_data_range_255: Estimate,
    /// PSNR in dB at data range 1.
    pub psnr: Estimate,
    /// Mean squared error per pixel.
    pub mse: Estimate,
    /// Fraction classified as the original's label by the target model.
    pub reclassification_accuracy: Estimate,
    /// Fraction classified as the original's label by the evaluator.
    pub evaluator_reclassification_accuracy: Estimate,
}

impl Quality {
    /// Whether SSIM and PSNR intervals both lie entirely above `other`'s.
    pub fn beats(&self, other: &Quality) -> bool {
        self.ssim.above(&other.ssim) && self.psnr.above(&other.psnr)
    }
}

/// Scores reconstructions against the originals.
pub struct Judge<'a, M> {
    originals: &'a [Image],
    labels: &'a [u8],
    model: &'a M,
    evaluator: &'a Evaluator,
    seed: u64,
}

impl<'a, M: Classifier> Judge<'a, M> {
    /// A judge of reconstructions of `originals` (labelled `labels`), re-classified by
    /// `model` and `evaluator`; the bootstrap draws from `seed`.
    pub fn new(
        originals: &'a [Image],
        labels: &'a [u8],
        model: &'a M,
        evaluator: &'a Evaluator,
        seed: u64,
    ) -> Self {
        Self {
            originals,
            labels,
            model,
            evaluator,
            seed,
        }
    }

    /// The fraction of `images` classified as their original's label by `classifier`.
    fn hits(&self, classifier: &impl Classifier, images: &[Image]) -> Vec<bool> {
        classifier
            .scores_batch(images)
            .iter()
            .zip(self.labels)
            .map(|(s, &l)| predicted_class(s) == usize::from(l))
            .collect()
    }

    /// How the target model classifies the originals themselves.
    ///
    /// # Errors
    /// [`ReconstructionError::Metric`] for no images.
    pub fn baseline_accuracy(&self) -> Result<Estimate, ReconstructionError> {
        Ok(bootstrap_fraction(
            &self.hits(self.model, self.originals),
            self.seed,
        )?)
    }

    /// The scores of `reconstructions` (one per original, in order).
    ///
    /// # Errors
    /// [`ReconstructionError::Metric`] for a count mismatch or no images.
    pub fn quality(&self, reconstructions: &[Image]) -> Result<Quality, ReconstructionError> {
        if reconstructions.len() != self.originals.len() {
            return Err(MetricError::LengthMismatch {
                expected: self.originals.len(),
                found: reconstructions.len(),
            }
            .into());
        }
        let per_image = |f: fn(&[f32], &[f32]) -> Result<f64, MetricError>| {
            self.originals
                .iter()
                .zip(reconstructions)
                .map(|(o, r)| f(o.pixels(), r.pixels()))
                .collect::<Result<Vec<f64>, MetricError>>()
        };
        let ssim_1 = per_image(|a, b| metrics::ssim(a, b, IMAGE_SIDE, IMAGE_SIDE, 1.0))?;
        let ssim_255 = per_image(|a, b| metrics::ssim(a, b, IMAGE_SIDE, IMAGE_SIDE, 255.0))?;
        let est = |values: Vec<f64>| bootstrap_mean(&values, self.seed);
        Ok(Quality {
            ssim: est(ssim_1)?,
            ssim_data_range_255: est(ssim_255)?,
            psnr: est(per_image(|a, b| metrics::psnr(a, b, 1.0))?)?,
            mse: est(per_image(metrics::mse)?)?,
            reclassification_accuracy: bootstrap_fraction(
                &self.hits(self.model, reconstructions),
                self.seed,
            )?,
            evaluator_reclassification_accuracy: bootstrap_fraction(
                &self.hits(self.evaluator, reconstructions),
                self.seed,
            )?,
        })
    }
}

/// The queries of one attack: the auxiliary pairs and the targets' released scores.
#[derive(Clone, Debug)]
pub struct Queried {
    /// The auxiliary images.
    pub aux_images: Vec<Image>,
    /// Their scores.
    pub aux_scores: Vec<Scores>,
    /// The private images' scores.
    pub target_scores: Vec<Scores>,
    /// Images submitted to the oracle for these answers.
    pub queries: u64,
}

/// Queries `oracle` on the auxiliary images and on the private targets.
///
/// # Errors
/// [`ReconstructionError::Oracle`] when the oracle fails, [`ReconstructionError::Config`]
/// if it answers the wrong number of vectors.
pub fn query<O: Oracle>(
    oracle: &mut O,
    aux_images: Vec<Image>,
    targets: &[Image],
) -> Result<Queried, ReconstructionError> {
    let before = oracle.queries();
    let mut ask = |images: &[Image]| -> Result<Vec<Scores>, ReconstructionError> {
        let scores = oracle
            .query(images)
            .map_err(|e| ReconstructionError::Oracle(Box::new(e)))?;
        if scores.len() == images.len() {
            Ok(scores)
        } else {
            Err(ReconstructionError::Config(format!(
                "the oracle answered {} score vectors for {} images",
                scores.len(),
                images.len()
            )))
        }
    };
    let aux_scores = ask(&aux_images)?;
    let target_scores = ask(targets)?;
    Ok(Queried {
        aux_images,
        aux_scores,
        target_scores,
        queries: oracle.queries().saturating_sub(before),
    })
}

/// The images of `images` at `indices`, pixels scaled to [0, 1].
///
/// # Errors
/// [`ReconstructionError::Config`] if an image does not convert (never for decoded data).
pub fn to_images(images: &Images, indices: &[usize]) -> Result<Vec<Image>, ReconstructionError> {
    let mut pixels = Vec::with_capacity(IMAGE_PIXELS);
    indices
        .iter()
        .map(|&i| {
            pixels.clear();
            images.push_scaled(i, &mut pixels);
            Image::new(&pixels).map_err(|e| ReconstructionError::Config(e.to_string()))
        })
        .collect()
}

/// One point of a curve.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CurvePoint {
    /// Auxiliary queries the generator was trained on.
    pub aux: usize,
    /// What the service released.
    pub release: String,
    /// Epochs the generator was trained for.
    pub epochs: usize,
    /// Its quality.
    pub quality: Quality,
}

/// A named method's row of the table.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MethodRow {
    /// `generator`, `class_mean`, `nearest_aux` or `global_mean`.
    pub method: &'static str,
    /// Its scores.
    #[serde(flatten)]
    pub quality: Quality,
}

/// What the per-class model inversion achieved.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InversionReport {
    /// Its settings.
    pub config: InversionConfig,
    /// Images submitted to the oracle for it.
    pub queries: u64,
    /// Iterations each class ran.
    pub iterations: Vec<usize>,
    /// The oracle's softmax probability of each class for its image.
    pub confidence: Vec<f64>,
    /// Fraction of classes whose image the target model assigns to that class.
    pub target_accuracy: f64,
    /// Fraction of classes whose image the independent evaluator assigns to that class.
    pub evaluator_accuracy: f64,
    /// SSIM (data range 1) of each class's image to that class's mean training image.
    pub ssim_to_class_mean: Vec<f64>,
    /// The same for the starting point (the mean auxiliary image): the baseline.
    pub prior_ssim_to_class_mean: Vec<f64>,
    /// The images, in class order.
    #[serde(skip)]
    pub images: Vec<Image>,
}

/// Everything [`run`] measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outcome {
    /// The settings.
    pub settings: Settings,
    /// Indices of the private training images reconstructed, increasing.
    pub target_indices: Vec<usize>,
    /// Images submitted to the oracle.
    pub queries: u64,
    /// The target model on the originals.
    pub baseline_accuracy: Estimate,
    /// The generator, then the baselines.
    pub methods: Vec<MethodRow>,
    /// Whether the generator's SSIM and PSNR intervals lie above those of every baseline.
    pub beats_every_baseline: bool,
    /// The generator's training loss per epoch.
    pub history: Vec<EpochStats>,
    /// Quality against auxiliary queries (with [`Settings::curves`]).
    pub aux_curve: Vec<CurvePoint>,
    /// Quality against the release policy (with [`Settings::curves`]).
    pub release_curve: Vec<CurvePoint>,
    /// The per-class model inversion (with [`Settings::inversion`]).
    pub inversion: Option<InversionReport>,
    /// Seconds spent querying the oracle.
    pub query_seconds: f64,
    /// Seconds spent training the generator.
    pub generator_seconds: f64,
    /// Seconds of the whole run (curves included).
    pub seconds: f64,
    /// The originals, in target order.
    #[serde(skip)]
    pub originals: Vec<Image>,
    /// Their labels.
    #[serde(skip)]
    pub labels: Vec<u8>,
    /// The generator's reconstructions, in target order.
    #[serde(skip)]
    pub reconstructions: Vec<Image>,
}

impl Outcome {
    /// The row of `method`.
    pub fn method(&self, method: &str) -> Option<&Quality> {
        self.methods
            .iter()
            .find(|m| m.method == method)
            .map(|m| &m.quality)
    }
}

/// Runs the attack against `oracle` (which answers for `model`, the target): draws the
/// targets from `train`, queries the first [`Settings::aux`] images of `test` and the
/// targets, trains the generator, reconstructs, and scores it beside the baselines.
///
/// # Errors
/// [`ReconstructionError`] for bad settings, oracle failures or training failures.
pub fn run<O: Oracle, M: Classifier>(
    oracle: &mut O,
    model: &M,
    train: &Images,
    test: &Images,
    settings: &Settings,
) -> Result<Outcome, ReconstructionError> {
    let start = Instant::now();
    settings.validate(train, test)?;
    let target_indices = sample::sample_indices(
        &mut stream_rng(settings.seed, 2),
        train.len(),
        settings.targets,
    );
    let originals = to_images(train, &target_indices)?;
    let labels: Vec<u8> = target_indices.iter().map(|&i| train.labels[i]).collect();
    let aux_indices: Vec<usize> = (0..settings.aux).collect();
    let queried = query(oracle, to_images(test, &aux_indices)?, &originals)?;
    let query_seconds = start.elapsed().as_secs_f64();

    let trained_at = Instant::now();
    let (generator, history) = InverseGenerator::train(
        &queried.aux_images,
        &queried.aux_scores,
        &settings.generator,
    )?;
    let generator_seconds = trained_at.elapsed().as_secs_f64();
    let reconstructions = generator.reconstruct(&queried.target_scores)?;

    let evaluator = Evaluator::train(train, &target_indices, settings.seed.wrapping_add(1))?;
    let judge = Judge::new(&originals, &labels, model, &evaluator, settings.seed);
    let means = MeanImages::new(train)?;
    let target_scores = &queried.target_scores;
    let candidates = [
        ("generator", reconstructions.clone()),
        ("class_mean", means.class_mean(target_scores)),
        (
            "nearest_aux",
            nearest_aux(
                &generator,
                &queried.aux_images,
                &queried.aux_scores,
                target_scores,
            )?,
        ),
        ("global_mean", means.global_mean(target_scores)),
    ];
    let methods = candidates
        .iter()
        .map(|(method, images)| {
            Ok(MethodRow {
                method,
                quality: judge.quality(images)?,
            })
        })
        .collect::<Result<Vec<_>, ReconstructionError>>()?;
    let beats_every_baseline = methods
        .iter()
        .skip(1)
        .all(|m| methods[0].quality.beats(&m.quality));

    let (mut aux_curve, mut release_curve) = (Vec::new(), Vec::new());
    if settings.curves {
        let main = |aux: usize, release: Release| CurvePoint {
            aux,
            release: release.to_string(),
            epochs: settings.generator.fit.epochs,
            quality: methods[0].quality,
        };
        for &n in AUX_CURVE.iter().filter(|&&n| n <= settings.aux) {
            if n == settings.aux {
                aux_curve.push(main(n, Release::Full));
                continue;
            }
            // The same number of optimiser steps as the main generator.
            let mut config = settings.generator;
            config.fit.epochs = settings.generator.fit.epochs * settings.aux.div_ceil(n);
            let (g, _) = InverseGenerator::train(
                &queried.aux_images[..n],
                &queried.aux_scores[..n],
                &config,
            )?;
            aux_curve.push(CurvePoint {
                aux: n,
                release: Release::Full.to_string(),
                epochs: config.fit.epochs,
                quality: judge.quality(&g.reconstruct(target_scores)?)?,
            });
        }
        for release in RELEASE_CURVE {
            if release == Release::Full {
                release_curve.push(main(settings.aux, release));
                continue;
            }
            let released = |s: &[Scores]| s.iter().map(|v| release.apply(v)).collect::<Vec<_>>();
            let (g, _) = InverseGenerator::train(
                &queried.aux_images,
                &released(&queried.aux_scores),
                &settings.generator,
            )?;
            release_curve.push(CurvePoint {
                aux: settings.aux,
                release: release.to_string(),
                epochs: settings.generator.fit.epochs,
                quality: judge.quality(&g.reconstruct(&released(target_scores))?)?,
            });
        }
    }
    let inversion = match &settings.inversion {
        None => None,
        Some(config) => {
            let aux_means = MeanImages::new(&test.truncated(settings.aux))?;
            let prior = aux_means.global_mean(&[[0.0; CLASSES]])[0].clone();
            let result = invert(oracle, &prior, config)?;
            let class_means: Vec<Image> = (0..CLASSES)
                .map(|c| {
                    let mut one_hot = [0.0; CLASSES];
                    one_hot[c] = 1.0;
                    means.class_mean(&[one_hot])[0].clone()
                })
                .collect();
            let agreement = |classifier: &dyn Fn(&[Image]) -> Vec<Scores>| {
                let hits = classifier(&result.images)
                    .iter()
                    .enumerate()
                    .filter(|(c, s)| predicted_class(s) == *c)
                    .count();
                hits as f64 / CLASSES as f64
            };
            let ssim_to = |images: &[Image]| {
                images
                    .iter()
                    .zip(&class_means)
                    .map(|(a, b)| {
                        metrics::ssim(a.pixels(), b.pixels(), IMAGE_SIDE, IMAGE_SIDE, 1.0)
                    })
                    .collect::<Result<Vec<f64>, MetricError>>()
            };
            Some(InversionReport {
                config: *config,
                queries: result.queries,
                target_accuracy: agreement(&|i| model.scores_batch(i)),
                evaluator_accuracy: agreement(&|i| evaluator.scores_batch(i)),
                ssim_to_class_mean: ssim_to(&result.images)?,
                prior_ssim_to_class_mean: ssim_to(&vec![prior; CLASSES])?,
                iterations: result.iterations,
                confidence: result.confidence,
                images: result.images,
            })
        }
    };
    Ok(Outcome {
        settings: settings.clone(),
        inversion,
        target_indices,
        queries: queried.queries,
        baseline_accuracy: judge.baseline_accuracy()?,
        methods,
        beats_every_baseline,
        history,
        aux_curve,
        release_curve,
        query_seconds,
        generator_seconds,
        seconds: start.elapsed().as_secs_f64(),
        originals,
        labels,
        reconstructions,
    })
}
