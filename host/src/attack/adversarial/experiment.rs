//! Table 4 as an experiment: classify clean images through an oracle (by default the
//! encrypted service), attack them, classify the adversarial images through the same
//! oracle, and compare with the plaintext twin on the same images.
//!
//! Every accuracy here is against the data set's true labels, whatever labels the attacks
//! moved away from (`labels`), over the images given (the first `--limit` test images).

use std::time::Instant;

use rand_core::RngCore;

use super::cw::{cw, CwConfig};
use super::fgsm::{fgsm, FgsmConfig};
use super::pgd::{pgd, PgdConfig};
use super::square::{square, square_budgets, SquareConfig};
use super::transfer::{train_surrogate, transfer, Surrogate, TransferConfig};
use super::{attack_labels, check_count, check_range, distances, project, ConfigError, Labels};
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
    /// BIM on a surrogate trained on the oracle's labels (black box).
    Transfer,
    /// Random ±ε per pixel: the baseline every attack must beat.
    Noise,
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
            Self::Transfer => "transfer",
            Self::Noise => "noise",
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
    /// The transfer attack.
    pub transfer: TransferConfig,
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
    /// The transfer attack's surrogate, when it ran.
    pub surrogate: Option<Surrogate>,
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
    /// A setting is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The accuracy-against-ε sweep does not fit its experiment.
    #[error("ε sweep: {0}")]
    Curve(String),
}

fn fraction(hits: usize, n: usize) -> f64 {
    crate::model::fraction(hits, n)
}

/// The boxed error of one attack.
type Boxed = Box<dyn std::error::Error + Send + Sync>;

/// Adversarial images with their outcome name and the fraction of images attacked.
type Produced = Vec<(String, Vec<Image>, f64)>;

impl Settings {
    /// The same settings with every L∞ budget (FGSM, BIM, PGD, the Square Attack, the
    /// transfer attack and C&W's projection) set to `eps`.
    pub fn at_eps(&self, eps: f32) -> Settings {
        let mut s = self.clone();
        s.fgsm.eps = eps;
        s.bim.eps = eps;
        s.pgd.eps = eps;
        s.square.eps = eps;
        s.transfer.attack.eps = eps;
        s
    }

    /// How many of `n` images the attack `kind` runs on (the first ones).
    fn attacked(&self, kind: AttackKind, n: usize) -> usize {
        match kind {
            AttackKind::Cw => self.cw_limit,
            AttackKind::Square => self.square_limit,
            _ => None,
        }
        .map_or(n, |limit| limit.min(n))
    }
}

/// The adversarial images of attack `kind` (C&W gives the unbounded and the projected
/// ones); white-box gradients from `twin`, black-box queries to `oracle`, the transfer
/// attack's gradients from `surrogate`.
#[allow(clippy::too_many_arguments)]
fn produce<O: Oracle>(
    kind: AttackKind,
    settings: &Settings,
    twin: &mut PlainOracle<Model>,
    oracle: &mut O,
    surrogate: Option<&Surrogate>,
    images: &[Image],
    targets: &[u8],
) -> Result<Produced, Boxed> {
    let name = kind.name().to_owned();
    Ok(match kind {
        AttackKind::Fgsm => vec![(name, fgsm(twin, images, targets, &settings.fgsm)?, 1.0)],
        AttackKind::Bim => vec![(name, pgd(twin, images, targets, &settings.bim)?, 1.0)],
        AttackKind::Pgd => vec![(name, pgd(twin, images, targets, &settings.pgd)?, 1.0)],
        AttackKind::Cw => {
            let r = cw(twin, images, targets, &settings.cw)?;
            let found = fraction(r.found.iter().filter(|&&f| f).count(), images.len());
            let projected = project_all(images, &r.images, settings.fgsm.eps)?;
            vec![
                (name, r.images, found),
                ("cw_projected".into(), projected, found),
            ]
        }
        AttackKind::Square => {
            vec![(
                name,
                square(oracle, images, targets, &settings.square)?.images,
                1.0,
            )]
        }
        AttackKind::Noise => vec![(
            name,
            random_signs(images, settings.fgsm.eps, settings.pgd.seed)?,
            1.0,
        )],
        AttackKind::Transfer => {
            let surrogate = surrogate.ok_or("no surrogate trained")?;
            let x = transfer(surrogate, images, targets, &settings.transfer.attack)?;
            vec![(name, x, 1.0)]
        }
    })
}

/// Each image moved by `eps` per pixel with a random sign (ChaCha20 from `seed`, stream 4),
/// clipped to the box: the same L∞ size as the attacks, no information.
///
/// # Errors
/// Never for a finite `eps` (pixels are clipped); kept for the image check.
pub fn random_signs(
    images: &[Image],
    eps: f32,
    seed: u64,
) -> Result<Vec<Image>, crate::oracle::ImageError> {
    let mut rng = crate::train::stream_rng(seed, 4);
    images
        .iter()
        .map(|im| {
            let x: Vec<f32> = im
                .pixels()
                .iter()
                .map(|&v| {
                    if rng.next_u32() & 1 == 0 {
                        v - eps
                    } else {
                        v + eps
                    }
                })
                .collect();
            project(im, &x, eps)
        })
        .collect()
}

/// Each of `adversarial` projected onto the L∞ ball of radius `eps` around its clean image.
fn project_all(
    clean: &[Image],
    adversarial: &[Image],
    eps: f32,
) -> Result<Vec<Image>, crate::oracle::ImageError> {
    clean
        .iter()
        .zip(adversarial)
        .map(|(c, x)| project(c, x.pixels(), eps))
        .collect()
}

/// The oracle's predicted class of each image.
fn classify<O: Oracle>(oracle: &mut O, x: &[Image]) -> Result<Vec<usize>, ExperimentError> {
    Ok(oracle
        .query(x)
        .map_err(|e| ExperimentError::Oracle(Box::new(e)))?
        .iter()
        .map(predicted_class)
        .collect())
}

/// The number of predictions equal to their label.
fn correct(predictions: &[usize], labels: &[u8]) -> usize {
    predictions
        .iter()
        .zip(labels)
        .filter(|(&a, &y)| a == usize::from(y))
        .count()
}

/// Runs the experiment. `aux` holds the transfer attack's auxiliary images (disjoint from
/// `images`; unused without it). `progress` is called with each attack's name as it starts,
/// then with `classify` before the one query that classifies the clean images and every
/// attack's images through `oracle`.
///
/// # Errors
/// Invalid settings or labels; the oracle's failures.
pub fn run<O: Oracle>(
    model: &Model,
    oracle: &mut O,
    images: &[Image],
    labels: &[u8],
    aux: &[Image],
    settings: &Settings,
    progress: &mut dyn FnMut(&str),
) -> Result<Experiment, ExperimentError> {
    let mut twin = PlainOracle::new(model.clone());
    let plain =
        |x: &[Image]| -> Vec<usize> { model.scores_batch(x).iter().map(predicted_class).collect() };
    let agree = |a: &[usize], b: &[usize]| a.iter().zip(b).filter(|(x, y)| x == y).count();
    let n = images.len();
    let start_queries = oracle.queries();
    let clean_plain = plain(images);
    let targets =
        attack_labels(&mut twin, images, labels, settings.labels).map_err(ExperimentError::Twin)?;
    let mut pending = Vec::new();
    let mut surrogate = None;
    for &kind in &settings.attacks {
        progress(kind.name());
        let wrap = |source: Boxed| ExperimentError::Attack {
            attack: kind.name(),
            source,
        };
        let m = settings.attacked(kind, n);
        let start = Instant::now();
        let before = oracle.queries();
        if kind == AttackKind::Transfer && surrogate.is_none() {
            surrogate = Some(
                train_surrogate(oracle, model.architecture(), aux, &settings.transfer)
                    .map_err(|e| wrap(Box::new(e)))?,
            );
        }
        let produced = produce(
            kind,
            settings,
            &mut twin,
            oracle,
            surrogate.as_ref(),
            &images[..m],
            &targets[..m],
        )
        .map_err(wrap)?;
        let seconds = start.elapsed().as_secs_f64();
        let attack_queries = oracle.queries() - before;
        pending.extend(
            produced
                .into_iter()
                .map(|(name, x, found)| (name, x, found, m, seconds, attack_queries)),
        );
    }
    // One query classifies the clean images and every attack's images: the encrypted
    // service packs them into as few batches as they fill, where a query per attack
    // would cost a whole batch each.
    progress("classify");
    let all: Vec<Image> = images
        .iter()
        .chain(pending.iter().flat_map(|p| p.1.iter()))
        .cloned()
        .collect();
    let mut predicted = classify(oracle, &all)?.into_iter();
    let clean_predictions: Vec<usize> = predicted.by_ref().take(n).collect();
    let mut outcomes = Vec::new();
    for (name, x, found, m, seconds, attack_queries) in pending {
        let predictions: Vec<usize> = predicted.by_ref().take(x.len()).collect();
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
            clean_accuracy: fraction(correct(&clean_predictions[..m], labels), m),
            accuracy: fraction(correct(&predictions, labels), m),
            plain_accuracy: fraction(correct(&plain_predictions, labels), m),
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
    Ok(Experiment {
        images: n,
        clean_accuracy: fraction(correct(&clean_predictions, labels), n),
        clean_plain_accuracy: fraction(correct(&clean_plain, labels), n),
        clean_agreement: fraction(agree(&clean_predictions, &clean_plain), n),
        clean_predictions,
        clean_labels: labels.to_vec(),
        outcomes,
        surrogate,
        oracle_queries: oracle.queries() - start_queries,
    })
}

/// Checks the budgets of an accuracy-against-ε sweep: at least one, each in `[0, 1]`.
///
/// # Errors
/// An empty grid or the first budget out of range.
pub fn check_grid(grid: &[f32]) -> Result<(), ConfigError> {
    check_count("eps-grid", grid.len())?;
    for &eps in grid {
        check_range("eps-grid", f64::from(eps), 0.0, 1.0, false, "in [0, 1]")?;
    }
    Ok(())
}

/// The oracle's accuracy against the L∞ budget for one attack.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EpsCurve {
    /// `fgsm`, `bim`, `pgd`, `cw_projected`, `square` or `transfer`.
    pub attack: String,
    /// Images attacked (the first ones of the experiment's).
    pub images: usize,
    /// The budgets, as given.
    pub eps: Vec<f32>,
    /// The oracle's accuracy against the true labels at each budget (at ε = 0: on the
    /// clean images).
    pub accuracy: Vec<f64>,
}

/// One point of an ε curve before the classifying query.
enum CurvePoint {
    /// ε = 0: the clean accuracy, already known.
    Clean(f64),
    /// The adversarial images, to classify.
    Adversarial(Vec<Image>),
}

/// Re-runs every attack of `settings` that has an L∞ budget at each budget of `grid`, on
/// the first `images.len()` images of `experiment`, and classifies the results through
/// `oracle`. C&W has no budget: its unbounded images from `experiment` are projected onto
/// each budget (`cw_projected`). The transfer attack reuses `experiment`'s surrogate, so
/// no label is bought twice. The Square Attack runs all budgets in lockstep
/// ([`square_budgets`]). `progress` is called before that, as each budget starts, then with
/// `classify` before the one query that classifies every budget's images.
///
/// # Errors
/// A budget outside `[0, 1]`, more images than the experiment attacked, or an attack's or
/// the oracle's failure.
#[allow(clippy::too_many_arguments)]
pub fn eps_curve<O: Oracle>(
    model: &Model,
    oracle: &mut O,
    images: &[Image],
    labels: &[u8],
    settings: &Settings,
    experiment: &Experiment,
    grid: &[f32],
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<EpsCurve>, ExperimentError> {
    check_grid(grid)?;
    let n = images.len();
    if n > experiment.images || labels.len() != n {
        return Err(ExperimentError::Curve(format!(
            "{n} images and {} labels for an experiment on {}",
            labels.len(),
            experiment.images
        )));
    }
    let mut twin = PlainOracle::new(model.clone());
    let targets =
        attack_labels(&mut twin, images, labels, settings.labels).map_err(ExperimentError::Twin)?;
    let mut curves: Vec<EpsCurve> = Vec::new();
    let mut point = |name: &str, m: usize, eps: f32, accuracy: f64| match curves
        .iter_mut()
        .find(|c| c.attack == name)
    {
        Some(c) => {
            c.eps.push(eps);
            c.accuracy.push(accuracy);
        }
        None => curves.push(EpsCurve {
            attack: name.to_owned(),
            images: m,
            eps: vec![eps],
            accuracy: vec![accuracy],
        }),
    };
    // The Square Attack runs every budget in lockstep, so that its queries fill the
    // encrypted batches one budget alone leaves mostly empty.
    let budgets: Vec<f32> = grid.iter().copied().filter(|&eps| eps != 0.0).collect();
    let mut square_images = if settings.attacks.contains(&AttackKind::Square) {
        let m = settings.attacked(AttackKind::Square, n);
        progress("square at every ε");
        square_budgets(
            oracle,
            &images[..m],
            &targets[..m],
            &budgets,
            &settings.square,
        )
        .map_err(|e| ExperimentError::Attack {
            attack: AttackKind::Square.name(),
            source: Box::new(e),
        })?
        .into_iter()
        .map(|r| r.images)
        .collect()
    } else {
        Vec::new()
    }
    .into_iter();
    // Per point: the attack, its images, the budget, and its adversarial images (or, at
    // ε = 0, the clean accuracy).
    let mut pending: Vec<(&str, usize, f32, CurvePoint)> = Vec::new();
    for &eps in grid {
        progress(&format!("accuracy at ε = {eps}"));
        let at = settings.at_eps(eps);
        for &kind in &settings.attacks {
            let wrap = |source: Boxed| ExperimentError::Attack {
                attack: kind.name(),
                source,
            };
            let cw_images = experiment
                .outcomes
                .iter()
                .find(|o| o.name == "cw")
                .map(|o| &o.adversarial);
            let m = match (kind, cw_images) {
                (AttackKind::Cw, Some(x)) => x.len().min(n),
                _ => settings.attacked(kind, n),
            };
            let name = match kind {
                AttackKind::Cw => "cw_projected",
                _ => kind.name(),
            };
            if eps == 0.0 {
                let clean = fraction(correct(&experiment.clean_predictions[..m], labels), m);
                pending.push((name, m, eps, CurvePoint::Clean(clean)));
                continue;
            }
            let (images, targets) = (&images[..m], &targets[..m]);
            let x = match (kind, cw_images) {
                (AttackKind::Cw, Some(cw)) => {
                    project_all(images, &cw[..m], eps).map_err(|e| wrap(Box::new(e)))?
                }
                (AttackKind::Cw, None) => {
                    return Err(ExperimentError::Curve(
                        "the experiment ran no C&W to project".to_owned(),
                    ))
                }
                (AttackKind::Square, _) => square_images
                    .next()
                    .ok_or_else(|| wrap("the attack produced no images".into()))?,
                _ => produce(
                    kind,
                    &at,
                    &mut twin,
                    oracle,
                    experiment.surrogate.as_ref(),
                    images,
                    targets,
                )
                .map_err(wrap)?
                .into_iter()
                .next()
                .map(|(_, x, _)| x)
                .ok_or_else(|| wrap("the attack produced no images".into()))?,
            };
            pending.push((name, m, eps, CurvePoint::Adversarial(x)));
        }
    }
    // One query classifies every budget's images (see `run`).
    progress("classify");
    let all: Vec<Image> = pending
        .iter()
        .flat_map(|p| match &p.3 {
            CurvePoint::Adversarial(x) => x.as_slice(),
            CurvePoint::Clean(_) => &[],
        })
        .cloned()
        .collect();
    let mut predicted = classify(oracle, &all)?.into_iter();
    for (name, m, eps, x) in pending {
        let accuracy = match x {
            CurvePoint::Adversarial(x) => {
                let predictions: Vec<usize> = predicted.by_ref().take(x.len()).collect();
                fraction(correct(&predictions, labels), m)
            }
            CurvePoint::Clean(clean) => clean,
        };
        point(name, m, eps, accuracy);
    }
    Ok(curves)
}

/// The paper's Table 4 (accuracy of the target models under attack at ε = 0.3): per data
/// set, `[none, FGSM, BIM, C&W]`.
pub const PAPER_TABLE_4: [(&str, [f64; 4]); 2] = [
    ("mnist", [0.971, 0.081, 0.017, 0.027]),
    ("fashion", [0.884, 0.094, 0.013, 0.031]),
];
