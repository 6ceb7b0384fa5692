//! The whole membership experiment over several targets: train the targets, draw the
//! split, collect each target's signals once, run every attack offline on raw and softmax
//! features, and gather the results beside the paper's cells.
//!
//! **LiRA's population** is the challenge records plus the first insider records, so that
//! each shadow (trained on half of it) sees about as many records as the smallest target,
//! or all the insider's records when they are too few for that.
//!
//! **Targets** are the paper's network trained with one configuration and one seed on
//! fractions of the training set (nested member sets, see [`super::split`]).
//! **Shadow models** (Shokri's `k` and LiRA's `N`) use the same configuration with their
//! own seeds; Shokri's attack models do not depend on the target, so the train phase is
//! the same for every target column, and each target only adds its test phase.
//!
//! **Conclusions.** An attack *beats chance* on a target when the lower end of the 99.9 %
//! Wilson interval of its headline figure is above chance (a 95 % family-wise level over
//! up to 50 comparisons, Bonferroni; a report holds at most 3 targets x 3 shadow counts x
//! 2 features of Shokri plus 3 x 9 threshold attacks = 45): for Shokri's test phase the
//! accuracy against 0.5; for LiRA and the loss attack the TPR at 1 % FPR against 0.01.
//! `softmax_changes_conclusion` is whether any attack on any target beats chance on one of
//! raw and softmax features and not on the other.

use std::time::Instant;

use crate::data::{Dataset, Images};
use crate::model::Model;
use crate::train::{self, TrainConfig, TrainError};

use super::lira::{self, LiraError};
use super::metrics::{roc, wilson_z, Confusion, Interval, Roc, RocPoint, Z_STRICT};
use super::paper::{self, Cell};
use super::shokri::{self, AttackModelConfig, AttackModels, ShokriError};
use super::signals::Signals;
use super::split::{Split, SplitConfig, SplitError};
use super::{derive_seed, Features};

/// The FPRs the ROC tables report TPRs at.
pub const LOW_FPRS: [f64; 2] = [0.001, 0.01];

/// Points kept of each ROC curve in the report.
pub const ROC_POINTS: usize = 200;

/// What to run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ExperimentConfig {
    /// How the targets and every shadow model train (`fraction` and `seed` are set per
    /// model).
    pub training: TrainConfig,
    /// Fractions of the training set the targets train on.
    pub fractions: Vec<f64>,
    /// Shokri shadow-model counts.
    pub shadows: Vec<usize>,
    /// LiRA shadow models (even; 0 skips LiRA).
    pub lira_models: usize,
    /// Members scored (and as many non-members).
    pub per_side: usize,
    /// The attack models.
    pub attack: AttackModelConfig,
    /// The seed every other seed derives from.
    pub seed: u64,
}

/// Why the experiment failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExperimentError {
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Training a target failed.
    #[error("target: {0}")]
    Train(#[from] TrainError),
    /// The split could not be drawn.
    #[error(transparent)]
    Split(#[from] SplitError),
    /// Shokri's attack failed.
    #[error(transparent)]
    Shokri(#[from] ShokriError),
    /// LiRA failed.
    #[error(transparent)]
    Lira(#[from] LiraError),
    /// Collecting a target's signals failed.
    #[error("signals of the target trained on fraction {fraction}: {source}")]
    Signals {
        /// The target's fraction.
        fraction: f64,
        /// Why.
        #[source]
        source: anyhow::Error,
    },
}

impl ExperimentConfig {
    /// The training configuration of the target trained on `fraction`: the shared one
    /// with that fraction and the experiment's seed.
    pub fn target(&self, fraction: f64) -> TrainConfig {
        TrainConfig {
            fraction,
            seed: self.seed,
            ..self.training.clone()
        }
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// [`ExperimentError::Config`] naming the first bad value.
    pub fn validate(&self) -> Result<(), ExperimentError> {
        let bad = |s: String| Err(ExperimentError::Config(s));
        if self.fractions.is_empty() {
            return bad("no target fraction".to_owned());
        }
        if let Some(f) = self.fractions.iter().find(|f| !(**f > 0.0 && **f <= 1.0)) {
            return bad(format!("fraction {f} is not in (0, 1]"));
        }
        if self.shadows.contains(&0) {
            return bad("0 shadow models".to_owned());
        }
        if !self.lira_models.is_multiple_of(2) {
            return bad(format!(
                "{} LiRA models: the count must be even (each record IN for half)",
                self.lira_models
            ));
        }
        if self.per_side == 0 {
            return bad("0 members to score".to_owned());
        }
        if self.attack.hidden == 0 {
            return bad("attack model with 0 hidden units".to_owned());
        }
        self.training.validate()?;
        self.attack
            .schedule
            .validate()
            .map_err(ExperimentError::Train)
    }
}

/// A target model and the training records it saw.
#[derive(Clone, Debug)]
pub struct TargetModel {
    /// Fraction of the training set it trained on.
    pub fraction: f64,
    /// The model.
    pub model: Model,
    /// Its members: training-set indices.
    pub members: Vec<usize>,
}

/// A target and its signals.
#[derive(Clone, Debug)]
pub struct Target {
    /// Fraction of the training set it trained on.
    pub fraction: f64,
    /// Records it trained on.
    pub train_records: usize,
    /// Its scores on the challenge records, through its oracle.
    pub signals: Signals,
}

/// Trains one target per fraction of `config`, in order, with `config.seed`.
///
/// # Errors
/// A training failure.
pub fn train_targets(
    train: &Images,
    config: &ExperimentConfig,
) -> Result<Vec<TargetModel>, TrainError> {
    config
        .fractions
        .iter()
        .map(|&fraction| {
            let t = train::train(train, &config.target(fraction), |_, _, _| {})?;
            Ok(TargetModel {
                fraction,
                model: t.model,
                members: t.members,
            })
        })
        .collect()
}

/// One row of Tables 6–7: Shokri's attack for one (shadows, target, phase, features).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ShokriRow {
    /// Shadow models.
    pub shadows: usize,
    /// The target's training fraction.
    pub fraction: f64,
    /// `train` (the attack models on the shadows' records) or `test` (against the target).
    pub phase: &'static str,
    /// Raw scores or softmax.
    pub features: Features,
    /// Accuracy.
    pub accuracy: f64,
    /// Its 95 % Wilson interval.
    pub accuracy_ci: Interval,
    /// Recall.
    pub recall: f64,
    /// Its 95 % Wilson interval.
    pub recall_ci: Interval,
    /// Precision.
    pub precision: f64,
    /// Its 95 % Wilson interval.
    pub precision_ci: Interval,
    /// Records scored.
    pub records: usize,
    /// The fraction of records on which the attack predicts what the gap attack does
    /// ("member iff classified correctly"): near 1 when the attack models learned little
    /// more than the target's generalisation gap.
    pub gap_attack_agreement: f64,
    /// The paper's cell, when it has one.
    pub paper: Option<Cell>,
}

/// Whether `rate` of `trials` lies above `chance` at the strict level of the module docs.
fn above_chance(rate: f64, trials: usize, chance: f64) -> bool {
    let successes = (rate * trials as f64).round() as usize;
    wilson_z(successes, trials, Z_STRICT).low > chance
}

impl ShokriRow {
    /// Whether the accuracy beats a coin flip (see the module docs).
    pub fn beats_chance(&self) -> bool {
        above_chance(self.accuracy, self.records, 0.5)
    }
}

impl ShokriRow {
    fn new(
        shadows: usize,
        fraction: f64,
        test: bool,
        features: Features,
        c: &Confusion,
        gap_attack_agreement: f64,
        dataset: Dataset,
    ) -> Self {
        Self {
            shadows,
            fraction,
            phase: if test { "test" } else { "train" },
            features,
            accuracy: c.accuracy(),
            accuracy_ci: c.accuracy_ci(),
            recall: c.recall(),
            recall_ci: c.recall_ci(),
            precision: c.precision(),
            precision_ci: c.precision_ci(),
            records: c.total(),
            gap_attack_agreement,
            paper: paper::cell(dataset, shadows, test, fraction),
        }
    }
}

/// One threshold attack's ROC figures on one target.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RocRow {
    /// The target's training fraction.
    pub fraction: f64,
    /// `lira_online`, `lira_online_global`, `lira_offline`, `lira_offline_global` or `loss`.
    pub attack: &'static str,
    /// Raw scores or softmax (the loss attack computes the same loss from either).
    pub features: Features,
    /// Area under the ROC curve.
    pub auc: f64,
    /// TPR at FPR below 0.1 %.
    pub tpr_at_0_1pct_fpr: f64,
    /// Its 95 % Wilson interval over the members.
    pub tpr_at_0_1pct_fpr_ci: Interval,
    /// TPR at FPR below 1 %.
    pub tpr_at_1pct_fpr: f64,
    /// Its 95 % Wilson interval over the members.
    pub tpr_at_1pct_fpr_ci: Interval,
    /// Yeom et al.'s advantage, max(TPR − FPR).
    pub advantage: f64,
    /// Members scored (the TPR's denominator).
    pub members: usize,
    /// The curve, thinned to at most [`ROC_POINTS`] points spread in log FPR.
    pub roc: Vec<RocPoint>,
}

impl RocRow {
    fn new(fraction: f64, attack: &'static str, features: Features, r: &Roc) -> Self {
        let (low, low_ci) = r.tpr_at_fpr_ci(LOW_FPRS[0]);
        let (one, one_ci) = r.tpr_at_fpr_ci(LOW_FPRS[1]);
        Self {
            fraction,
            attack,
            features,
            auc: r.auc(),
            tpr_at_0_1pct_fpr: low,
            tpr_at_0_1pct_fpr_ci: low_ci,
            tpr_at_1pct_fpr: one,
            tpr_at_1pct_fpr_ci: one_ci,
            advantage: r.advantage(),
            members: r.members,
            roc: r.thinned(ROC_POINTS),
        }
    }

    /// Whether the TPR at 1 % FPR beats the 1 % of a guess (see the module docs).
    pub fn beats_chance(&self) -> bool {
        above_chance(self.tpr_at_1pct_fpr, self.members, LOW_FPRS[1])
    }
}

/// A target's generalisation, on the challenge records through its oracle.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TargetRow {
    /// Training fraction.
    pub fraction: f64,
    /// Records it trained on.
    pub train_records: usize,
    /// Accuracy on the member records (through the oracle).
    pub member_accuracy: f64,
    /// Accuracy on the non-member records (through the oracle).
    pub non_member_accuracy: f64,
    /// `member_accuracy − non_member_accuracy`.
    pub gap: f64,
    /// Mean loss of members minus mean loss of non-members (negative when members fit
    /// better).
    pub loss_gap: f64,
    /// The baseline every attack must beat: Yeom et al.'s gap attack, "member iff the
    /// oracle classifies the record correctly", whose accuracy on balanced records is
    /// `1/2 + gap/2`.
    pub gap_attack_accuracy: f64,
    /// Its 95 % Wilson interval.
    pub gap_attack_accuracy_ci: Interval,
}

/// Everything the experiment measured.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Outcome {
    /// The split (sizes; the indices are in [`Outcome::split`]).
    pub members: usize,
    /// Non-members scored.
    pub non_members: usize,
    /// Insider records.
    pub insider_records: usize,
    /// The targets.
    pub targets: Vec<TargetRow>,
    /// Tables 6–7.
    pub shokri: Vec<ShokriRow>,
    /// LiRA and loss attack.
    pub roc: Vec<RocRow>,
    /// Records each LiRA shadow trained on (the smallest and largest).
    pub lira_shadow_train_records: Option<(usize, usize)>,
    /// Whether raw and softmax features ever disagree on beating chance.
    pub softmax_changes_conclusion: bool,
    /// Whether any attack beats chance at 1 % FPR on any target.
    pub any_beats_chance_at_low_fpr: bool,
    /// Seconds spent training shadow and attack models and scoring.
    pub attack_seconds: f64,
    /// The split, by index.
    pub split: Split,
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

fn target_row(t: &Target) -> TargetRow {
    let s = &t.signals;
    let loss = |members: bool| {
        mean(
            (0..s.len())
                .filter(|&i| s.member[i] == members)
                .map(|i| s.loss(i)),
        )
    };
    let (m, n) = (s.accuracy(true), s.accuracy(false));
    let gap_attack = Confusion::new(&s.correct(), &s.member);
    TargetRow {
        gap_attack_accuracy: gap_attack.accuracy(),
        gap_attack_accuracy_ci: gap_attack.accuracy_ci(),
        fraction: t.fraction,
        train_records: t.train_records,
        member_accuracy: m,
        non_member_accuracy: n,
        gap: m - n,
        loss_gap: loss(true) - loss(false),
    }
}

/// Runs the attacks on targets whose signals are collected (see [`run`]).
///
/// # Errors
/// A failing attack.
pub fn attack(
    dataset: Dataset,
    split: Split,
    challenge: &Images,
    insider: &Images,
    targets: &[Target],
    config: &ExperimentConfig,
) -> Result<Outcome, ExperimentError> {
    let start = Instant::now();
    let mut shokri_rows = Vec::new();
    for &k in &config.shadows {
        let shadows = shokri::train_shadows(insider, k, &config.training, config.seed)?;
        for features in Features::ALL {
            let seed = derive_seed(config.seed, 20 + features as u64, k as u64);
            let models = AttackModels::fit(&shadows, features, &config.attack, seed)?;
            let train_phase = models.confusion(&shadows);
            let train_agreement = gap_attack_agreement(&models, &shadows);
            for t in targets {
                let target = std::slice::from_ref(&t.signals);
                let test_phase = models.confusion(target);
                shokri_rows.push(ShokriRow::new(
                    k,
                    t.fraction,
                    false,
                    features,
                    &train_phase,
                    train_agreement,
                    dataset,
                ));
                shokri_rows.push(ShokriRow::new(
                    k,
                    t.fraction,
                    true,
                    features,
                    &test_phase,
                    gap_attack_agreement(&models, target),
                    dataset,
                ));
            }
        }
    }
    let mut roc_rows = Vec::new();
    let mut sizes = None;
    let lira_shadows = if config.lira_models > 0 {
        // Each LiRA shadow trains on half the population: as many records as the smallest
        // target when the insider holds enough, so the shadows overfit like the targets.
        let smallest = targets.iter().map(|t| t.train_records).min().unwrap_or(0);
        let extra = (2 * smallest).saturating_sub(challenge.len());
        let s = lira::train_shadows(
            challenge,
            &insider.truncated(extra),
            config.lira_models,
            &config.training,
            config.seed,
        )?;
        let lo = s.train_sizes.iter().copied().min().unwrap_or(0);
        let hi = s.train_sizes.iter().copied().max().unwrap_or(0);
        sizes = Some((lo, hi));
        Some(s)
    } else {
        None
    };
    for t in targets {
        let member = &t.signals.member;
        if let Some(shadows) = &lira_shadows {
            for features in Features::ALL {
                let s = lira::scores(shadows, &t.signals, features)?;
                for (name, values) in [
                    ("lira_online", &s.online),
                    ("lira_online_global", &s.online_global),
                    ("lira_offline", &s.offline),
                    ("lira_offline_global", &s.offline_global),
                ] {
                    roc_rows.push(RocRow::new(
                        t.fraction,
                        name,
                        features,
                        &roc(values, member),
                    ));
                }
            }
        }
        let loss = roc(&lira::loss_scores(&t.signals), member);
        roc_rows.push(RocRow::new(t.fraction, "loss", Features::Raw, &loss));
    }
    let softmax_changes_conclusion = changes_conclusion(&shokri_rows, &roc_rows);
    let any_beats_chance_at_low_fpr = roc_rows.iter().any(RocRow::beats_chance);
    Ok(Outcome {
        members: split.members.len(),
        non_members: split.non_members.len(),
        insider_records: split.insider.len(),
        targets: targets.iter().map(target_row).collect(),
        shokri: shokri_rows,
        roc: roc_rows,
        lira_shadow_train_records: sizes,
        softmax_changes_conclusion,
        any_beats_chance_at_low_fpr,
        attack_seconds: start.elapsed().as_secs_f64(),
        split,
    })
}

/// The fraction of the records of `sets` on which `models` predict "member" exactly when
/// the scored model classifies the record correctly.
fn gap_attack_agreement(models: &AttackModels, sets: &[Signals]) -> f64 {
    let (mut same, mut all) = (0usize, 0usize);
    for s in sets {
        for (p, c) in models.predict(s).into_iter().zip(s.correct()) {
            same += usize::from(p == c);
            all += 1;
        }
    }
    crate::model::fraction(same, all)
}

/// Whether some attack on some target beats chance with one kind of features and not with
/// the other (see the module docs).
fn changes_conclusion(shokri: &[ShokriRow], roc: &[RocRow]) -> bool {
    let shokri_differs = shokri
        .iter()
        .filter(|r| r.phase == "test" && r.features == Features::Raw)
        .any(|raw| {
            shokri
                .iter()
                .find(|s| {
                    s.phase == "test"
                        && s.features == Features::Softmax
                        && s.shadows == raw.shadows
                        && s.fraction == raw.fraction
                })
                .is_some_and(|soft| raw.beats_chance() != soft.beats_chance())
        });
    let roc_differs = roc
        .iter()
        .filter(|r| r.features == Features::Raw && r.attack != "loss")
        .any(|raw| {
            roc.iter()
                .find(|s| {
                    s.features == Features::Softmax
                        && s.attack == raw.attack
                        && s.fraction == raw.fraction
                })
                .is_some_and(|soft| raw.beats_chance() != soft.beats_chance())
        });
    shokri_differs || roc_differs
}

/// The whole experiment on `targets` (trained on `train`, e.g. by [`train_targets`]):
/// draws the split against `test`, collects each target's signals with
/// `collect(model, records, member)` (through the caller's oracle), then runs [`attack`].
///
/// # Errors
/// Any [`ExperimentError`].
pub fn run(
    dataset: Dataset,
    train: &Images,
    test: &Images,
    targets: Vec<TargetModel>,
    config: &ExperimentConfig,
    mut collect: impl FnMut(&Model, &Images, Vec<bool>) -> anyhow::Result<Signals>,
) -> Result<Outcome, ExperimentError> {
    config.validate()?;
    let members: Vec<&[usize]> = targets.iter().map(|t| t.members.as_slice()).collect();
    let split = Split::draw(
        &members,
        train.len(),
        test.len(),
        SplitConfig {
            per_side: config.per_side,
            seed: derive_seed(config.seed, 30, 0),
        },
    )?;
    let (challenge, member) = split.challenge(train, test);
    let insider = split.insider_records(test);
    let mut done = Vec::with_capacity(targets.len());
    for t in targets {
        let fraction = t.fraction;
        let signals = collect(&t.model, &challenge, member.clone())
            .map_err(|source| ExperimentError::Signals { fraction, source })?;
        done.push(Target {
            fraction,
            train_records: t.members.len(),
            signals,
        });
    }
    attack(dataset, split, &challenge, &insider, &done, config)
}
