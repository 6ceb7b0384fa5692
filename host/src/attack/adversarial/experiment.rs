//! Table 4 as an experiment: classify clean images through an oracle (by default the
//! encrypted service), attack them, classify the adversarial images through the same
//! oracle, and compare with the plaintext twin on the same images.
//!
//! Every accuracy here is against the data set's true labels, whatever labels the attacks
//! moved away from (`labels`), over the images given (the first `--limit` test images).

use std::time::Instant;

use super::cw::{cw, CwConfig};
use super::fgsm::{fgsm, FgsmConfig};
use super::pgd::{pgd, PgdConfig};
use super::square::{square, SquareConfig};
use super::{attack_labels, distances, project, Labels};
use crate::model::Model;
use crate::oracle::{predicted_class, Classifier, Image, Oracle, PlainOracle};

/// The attacks of the experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AttackKind {
    /// FGSM (one signed-gradient step).
    Fgsm,
    /// BIM (iterated FGSM, projected).
    Bim,
    /// PGD (BIM from a random start, with restarts).
    Pgd,
    /// Carlini–Wagner L2 (unbounded, and projected to the L∞ budget).
    Cw,
    /// The Square Attack (black box, through the oracle).
    Square,
}

impl AttackKind {
    /// The attack's name in tables and JSON keys.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fgsm => "fgsm",
            Self::Bim => "bim",
            Self::Pgd => "pgd",
            Self::Cw => "cw",
            Self::Square => "square",
        }
    }
}

/// Every setting of the experiment; stated in its JSON so that a run can be repeated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    /// The attacks to run, in order.
    pub attacks: Vec<AttackKind>,
    /// The labels the attacks move away from.
    pub labels: Labels,
    /// FGSM.
    pub fgsm: FgsmConfig,
    /// BIM.
    pub bim: PgdConfig,
    /// PGD.
    pub pgd: PgdConfig,
    /// C&W L2 (and the L∞ budget its projection uses: `fgsm.eps`).
    pub cw: CwConfig,
    /// The Square Attack.
    pub square: SquareConfig,
    /// Run C&W on the first this many images only (`None`: all).
    pub cw_limit: Option<usize>,
    /// Run the Square Attack on the first this many images only (`None`: all).
    pub square_limit: Option<usize>,
}

/// One attack's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// `fgsm`, `bim`, `pgd`, `cw`, `cw_projected` or `square`.
    pub name: String,
    /// Images attacked (the first ones of the experiment's images).
    pub attacked: usize,
    /// Accuracy of the oracle on the same images, clean.
    pub clean_accuracy: f64,
    /// Accuracy of the oracle on the adversarial images.
    pub accuracy: f64,
    /// Accuracy of the plaintext twin on the same images.
    pub plain_accuracy: f64,
    /// Fraction of adversarial images on which the oracle and the twin predict the same
    /// class.
    pub encrypted_plain_agreement: f64,
    /// Mean L2 distance to the clean image, over all images.
    pub mean_l2: f64,
    /// Mean L∞ distance to the clean image, over all images.
    pub mean_linf: f64,
    /// Fraction of images for which the attack produced a point other than the clean image
    /// (C&W: found an adversarial point; others: 1).
    pub found: f64,
    /// Mean oracle queries per image spent by the attack itself (black box only; 0 for
    /// white-box attacks, whose gradients come from the twin).
    pub queries_per_image: f64,
    /// Wall time of the attack (without the final classification), seconds.
    pub seconds: f64,
    /// The adversarial images, in input order.
    #[serde(skip)]
    pub adversarial: Vec<Image>,
    /// The oracle's predicted class of each adversarial image.
    #[serde(skip)]
    pub predictions: Vec<usize>,
}

/// The whole experiment's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Experiment {
    /// Images attacked.
    pub images: usize,
    /// Accuracy of the oracle on the clean images.
    pub clean_accuracy: f64,
    /// Accuracy of the twin on the clean images.
    pub clean_plain_accuracy: f64,
    /// Agreement of oracle and twin on the clean images.
    pub clean_agreement: f64,
    /// The oracle's predicted class of each clean image.
    #[serde(skip)]
    pub clean_predictions: Vec<usize>,
    /// The true label of each image.
    #[serde(skip)]
    pub clean_labels: Vec<u8>,
    /// One entry per attack (C&W gives two: `cw` and `cw_projected`).
    pub outcomes: Vec<Outcome>,
    /// Oracle queries in all (clean and adversarial classification, black-box attacks).
    pub oracle_queries: u64,
}

/// Why the experiment stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// An attack failed.
    #[error("{attack}: {source}")]
    Attack {
        /// Which one.
        attack: &'static str,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The twin failed (it does not: plaintext).
    #[error("plaintext twin: {0}")]
    Twin(#[source] crate::oracle::PlainOracleError),
    /// The oracle failed classifying.
    #[error("oracle: {0}")]
    Oracle(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn fraction(hits: usize, n: usize) -> f64 {
    crate::model::fraction(hits, n)
}

/// Runs the experiment. `progress` is called with each attack's name as it starts.
///
/// # Errors
/// Invalid settings or labels; the oracle's failures.
pub fn run<O: Oracle>(
    model: &Model,
    oracle: &mut O,
    images: &[Image],
    labels: &[u8],
    settings: &Settings,
    progress: &mut dyn FnMut(&str),
) -> Result<Experiment, ExperimentError> {
    let mut twin = PlainOracle::new(model.clone());
    let classify = |oracle: &mut O, x: &[Image]| -> Result<Vec<usize>, ExperimentError> {
        Ok(oracle
            .query(x)
            .map_err(|e| ExperimentError::Oracle(Box::new(e)))?
            .iter()
            .map(predicted_class)
            .collect())
    };
    let plain =
        |x: &[Image]| -> Vec<usize> { model.scores_batch(x).iter().map(predicted_class).collect() };
    let correct = |p: &[usize]| {
        p.iter()
            .zip(labels)
            .filter(|(&a, &y)| a == usize::from(y))
            .count()
    };
    let agree = |a: &[usize], b: &[usize]| a.iter().zip(b).filter(|(x, y)| x == y).count();
    let n = images.len();
    let start_queries = oracle.queries();
    let clean_predictions = classify(oracle, images)?;
    let clean_plain = plain(images);
    let targets =
        attack_labels(&mut twin, images, labels, settings.labels).map_err(ExperimentError::Twin)?;
    let mut outcomes = Vec::new();
    for &kind in &settings.attacks {
        progress(kind.name());
        let wrap = |source: Box<dyn std::error::Error + Send + Sync>| ExperimentError::Attack {
            attack: kind.name(),
            source,
        };
        let m = match kind {
            AttackKind::Cw => settings.cw_limit,
            AttackKind::Square => settings.square_limit,
            _ => None,
        }
        .map_or(n, |limit| limit.min(n));
        let (images, targets) = (&images[..m], &targets[..m]);
        let start = Instant::now();
        let before = oracle.queries();
        let mut produced: Vec<(String, Vec<Image>, f64)> = Vec::new();
        match kind {
            AttackKind::Fgsm => {
                let x = fgsm(&mut twin, images, targets, &settings.fgsm)
                    .map_err(|e| wrap(Box::new(e)))?;
                produced.push(("fgsm".into(), x, 1.0));
            }
            AttackKind::Bim => {
                let x = pgd(&mut twin, images, targets, &settings.bim)
                    .map_err(|e| wrap(Box::new(e)))?;
                produced.push(("bim".into(), x, 1.0));
            }
            AttackKind::Pgd => {
                let x = pgd(&mut twin, images, targets, &settings.pgd)
                    .map_err(|e| wrap(Box::new(e)))?;
                produced.push(("pgd".into(), x, 1.0));
            }
            AttackKind::Cw => {
                let r =
                    cw(&mut twin, images, targets, &settings.cw).map_err(|e| wrap(Box::new(e)))?;
                let found = fraction(r.found.iter().filter(|&&f| f).count(), m);
                let projected = images
                    .iter()
                    .zip(&r.images)
                    .map(|(c, x)| project(c, x.pixels(), settings.fgsm.eps))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| wrap(Box::new(e)))?;
                produced.push(("cw".into(), r.images, found));
                produced.push(("cw_projected".into(), projected, found));
            }
            AttackKind::Square => {
                let r = square(oracle, images, targets, &settings.square)
                    .map_err(|e| wrap(Box::new(e)))?;
                produced.push(("square".into(), r.images, 1.0));
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        let attack_queries = oracle.queries() - before;
        for (name, x, found) in produced {
            let predictions = classify(oracle, &x)?;
            let plain_predictions = plain(&x);
            let (l2, linf) = images
                .iter()
                .zip(&x)
                .map(|(a, b)| distances(a, b))
                .fold((0.0f64, 0.0f64), |(s2, si), (d2, di)| {
                    (s2 + f64::from(d2), si + f64::from(di))
                });
            let per_image = |total: f64| if m == 0 { 0.0 } else { total / m as f64 };
            outcomes.push(Outcome {
                name,
                attacked: m,
                clean_accuracy: fraction(correct(&clean_predictions[..m]), m),
                accuracy: fraction(correct(&predictions), m),
                plain_accuracy: fraction(correct(&plain_predictions), m),
                encrypted_plain_agreement: fraction(agree(&predictions, &plain_predictions), m),
                mean_l2: per_image(l2),
                mean_linf: per_image(linf),
                found,
                queries_per_image: per_image(attack_queries as f64),
                seconds,
                adversarial: x,
                predictions,
            });
        }
    }
    Ok(Experiment {
        images: n,
        clean_accuracy: fraction(correct(&clean_predictions), n),
        clean_plain_accuracy: fraction(correct(&clean_plain), n),
        clean_agreement: fraction(agree(&clean_predictions, &clean_plain), n),
        clean_predictions,
        clean_labels: labels.to_vec(),
        outcomes,
        oracle_queries: oracle.queries() - start_queries,
    })
}

/// The paper's Table 4 (accuracy of the target models under attack at ε = 0.3): per data
/// set, `[none, FGSM, BIM, C&W]`.
pub const PAPER_TABLE_4: [(&str, [f64; 4]); 2] = [
    ("mnist", [0.971, 0.081, 0.017, 0.027]),
    ("fashion", [0.884, 0.094, 0.013, 0.031]),
];
