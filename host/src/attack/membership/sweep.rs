//! The overfitting sweep: targets trained longer and on smaller fractions of the training
//! set, each attacked as in [`super::experiment`], so that the attacks' advantage can be
//! read against the target's train–test gap.
//!
//! Each point is one target (one `(epochs, fraction)` pair, the experiment's seed) with its
//! own split (as many members as it holds, up to the experiment's count), its own LiRA
//! shadows (trained with the same epochs, on as many records as the target when the
//! insider holds enough) and Shokri's attack with the experiment's largest shadow count.
//! The experiment's own targets are points too ([`points`]).
//!
//! The advantage is read three ways, each on raw scores and on their softmax: LiRA's AUC
//! − 1/2 and its TPR at 1 % FPR (online, per-record variances), and Shokri's test-phase
//! accuracy − 1/2; and once from the loss (its AUC − 1/2). The gap attack's accuracy − 1/2
//! (`gap/2` on balanced records) is the baseline each must beat.

use crate::data::{Dataset, Images};
use crate::model::Model;
use crate::train::TrainConfig;

use super::experiment::{self, ExperimentConfig, ExperimentError, Outcome, TargetModel};
use super::signals::Signals;
use super::Features;

/// Which targets the sweep trains: every pair of `epochs` × `fractions`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SweepConfig {
    /// Training epochs of the targets (and of their shadow models).
    pub epochs: Vec<usize>,
    /// Fractions of the training set the targets train on.
    pub fractions: Vec<f64>,
    /// LiRA shadow models per point (even; 0 skips LiRA).
    pub lira_models: usize,
}

impl SweepConfig {
    /// Checks the ranges.
    ///
    /// # Errors
    /// [`ExperimentError::Config`] naming the first bad value.
    pub fn validate(&self) -> Result<(), ExperimentError> {
        let bad = |s: String| Err(ExperimentError::Config(s));
        if self.epochs.is_empty() || self.fractions.is_empty() {
            return bad("the sweep needs at least one epoch count and one fraction".to_owned());
        }
        if self.epochs.contains(&0) {
            return bad("a sweep target with 0 epochs".to_owned());
        }
        if let Some(f) = self.fractions.iter().find(|f| !(**f > 0.0 && **f <= 1.0)) {
            return bad(format!("sweep fraction {f} is not in (0, 1]"));
        }
        if !self.lira_models.is_multiple_of(2) {
            return bad(format!(
                "{} LiRA models in the sweep: the count must be even",
                self.lira_models
            ));
        }
        Ok(())
    }
}

/// One attack's advantage on one kind of features.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SweepAttacks {
    /// Raw scores or softmax.
    pub features: Features,
    /// LiRA online's AUC (`None` without LiRA).
    pub lira_auc: Option<f64>,
    /// LiRA online's TPR at FPR below 1 %.
    pub lira_tpr_at_1pct_fpr: Option<f64>,
    /// LiRA online's TPR at FPR below 0.1 %.
    pub lira_tpr_at_0_1pct_fpr: Option<f64>,
    /// Whether that TPR at 1 % FPR beats chance (see [`super::experiment`]).
    pub lira_beats_chance: Option<bool>,
    /// Shokri's test-phase accuracy with the most shadows (`None` without Shokri).
    pub shokri_accuracy: Option<f64>,
    /// Whether it beats chance.
    pub shokri_beats_chance: Option<bool>,
}

/// One target of the sweep.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SweepPoint {
    /// `main` (a target of the experiment itself) or `sweep`.
    pub source: &'static str,
    /// Training epochs.
    pub epochs: usize,
    /// Training fraction.
    pub fraction: f64,
    /// Records it trained on.
    pub train_records: usize,
    /// Members scored (and as many non-members).
    pub members: usize,
    /// Accuracy on the member records minus accuracy on the non-member records.
    pub gap: f64,
    /// The gap attack's accuracy (the baseline).
    pub gap_attack_accuracy: f64,
    /// The loss attack's AUC.
    pub loss_auc: f64,
    /// The loss attack's TPR at FPR below 1 %.
    pub loss_tpr_at_1pct_fpr: f64,
    /// Shokri's shadow count (`None` without Shokri).
    pub shokri_shadows: Option<usize>,
    /// Raw first, then softmax.
    pub attacks: Vec<SweepAttacks>,
}

/// The sweep points of `outcome`'s targets, trained for `epochs` (`source` names where
/// they come from). Shokri's figures are those of its largest shadow count.
pub fn points(outcome: &Outcome, epochs: usize, source: &'static str) -> Vec<SweepPoint> {
    let shokri_shadows = outcome.shokri.iter().map(|r| r.shadows).max();
    outcome
        .targets
        .iter()
        .map(|t| {
            let roc = |attack: &str, features: Features| {
                outcome.roc.iter().find(|r| {
                    r.attack == attack && r.features == features && r.fraction == t.fraction
                })
            };
            let loss = roc("loss", Features::Raw);
            let attacks = Features::ALL
                .into_iter()
                .map(|features| {
                    let lira = roc("lira_online", features);
                    let shokri = outcome.shokri.iter().find(|r| {
                        Some(r.shadows) == shokri_shadows
                            && r.phase == "test"
                            && r.features == features
                            && r.fraction == t.fraction
                    });
                    SweepAttacks {
                        features,
                        lira_auc: lira.map(|r| r.auc),
                        lira_tpr_at_1pct_fpr: lira.map(|r| r.tpr_at_1pct_fpr),
                        lira_tpr_at_0_1pct_fpr: lira.map(|r| r.tpr_at_0_1pct_fpr),
                        lira_beats_chance: lira.map(experiment::RocRow::beats_chance),
                        shokri_accuracy: shokri.map(|r| r.accuracy),
                        shokri_beats_chance: shokri.map(experiment::ShokriRow::beats_chance),
                    }
                })
                .collect();
            SweepPoint {
                source,
                epochs,
                fraction: t.fraction,
                train_records: t.train_records,
                members: outcome.members,
                gap: t.gap,
                gap_attack_accuracy: t.gap_attack_accuracy,
                loss_auc: loss.map_or(f64::NAN, |r| r.auc),
                loss_tpr_at_1pct_fpr: loss.map_or(f64::NAN, |r| r.tpr_at_1pct_fpr),
                shokri_shadows,
                attacks,
            }
        })
        .collect()
}

/// Runs the sweep: for each `(epochs, fraction)` of `sweep`, obtains the target with
/// `target(training configuration)` (which trains it, or reuses a cached one), then runs
/// [`experiment::run`] on it alone with `base`'s settings (its largest Shokri shadow
/// count, `sweep.lira_models` LiRA shadows, at most as many members as it holds), querying
/// it through `collect`.
///
/// # Errors
/// Any [`ExperimentError`].
#[allow(clippy::too_many_arguments)]
pub fn run(
    dataset: Dataset,
    train: &Images,
    test: &Images,
    base: &ExperimentConfig,
    sweep: &SweepConfig,
    mut target: impl FnMut(&TrainConfig) -> Result<TargetModel, ExperimentError>,
    mut collect: impl FnMut(&Model, &Images, Vec<bool>) -> anyhow::Result<Signals>,
    mut progress: impl FnMut(usize, usize, &SweepPoint),
) -> Result<Vec<SweepPoint>, ExperimentError> {
    sweep.validate()?;
    base.validate()?;
    let total = sweep.epochs.len() * sweep.fractions.len();
    let mut out = Vec::with_capacity(total);
    for &epochs in &sweep.epochs {
        for &fraction in &sweep.fractions {
            let config = ExperimentConfig {
                training: TrainConfig {
                    epochs,
                    ..base.training.clone()
                },
                fractions: vec![fraction],
                shadows: base.shadows.iter().copied().max().into_iter().collect(),
                lira_models: sweep.lira_models,
                per_side: base.per_side,
                attack: base.attack.clone(),
                seed: base.seed,
            };
            let model = target(&config.target(fraction))?;
            let config = ExperimentConfig {
                per_side: base
                    .per_side
                    .min(model.members.len())
                    .min(test.len().saturating_sub(1) / 2),
                ..config
            };
            let outcome =
                experiment::run(dataset, train, test, vec![model], &config, &mut collect)?;
            for p in points(&outcome, epochs, "sweep") {
                progress(out.len() + 1, total, &p);
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// The smallest gap at which an attack beats chance at 1 % FPR (LiRA) or in accuracy
/// (Shokri) on either kind of features, and the largest gap at which none does: where the
/// attacks start to work. `None` for a side with no such point.
pub fn onset(points: &[SweepPoint]) -> (Option<f64>, Option<f64>) {
    let works = |p: &SweepPoint| {
        p.attacks
            .iter()
            .any(|a| a.lira_beats_chance == Some(true) || a.shokri_beats_chance == Some(true))
    };
    let first_working = points
        .iter()
        .filter(|p| works(p))
        .map(|p| p.gap)
        .fold(None, |m: Option<f64>, g| Some(m.map_or(g, |m| m.min(g))));
    let last_failing = points
        .iter()
        .filter(|p| !works(p))
        .map(|p| p.gap)
        .fold(None, |m: Option<f64>, g| Some(m.map_or(g, |m| m.max(g))));
    (first_working, last_failing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(gap: f64, lira: bool, shokri: bool) -> SweepPoint {
        SweepPoint {
            source: "sweep",
            epochs: 1,
            fraction: 1.0,
            train_records: 1,
            members: 1,
            gap,
            gap_attack_accuracy: 0.5 + gap / 2.0,
            loss_auc: 0.5,
            loss_tpr_at_1pct_fpr: 0.0,
            shokri_shadows: Some(8),
            attacks: vec![SweepAttacks {
                features: Features::Raw,
                lira_auc: Some(0.5),
                lira_tpr_at_1pct_fpr: Some(0.01),
                lira_tpr_at_0_1pct_fpr: Some(0.0),
                lira_beats_chance: Some(lira),
                shokri_accuracy: Some(0.5),
                shokri_beats_chance: Some(shokri),
            }],
        }
    }

    #[test]
    fn onset_reads_the_working_and_failing_gaps() {
        let p = [
            point(0.01, false, false),
            point(0.05, false, true),
            point(0.03, false, false),
            point(0.10, true, false),
        ];
        assert_eq!(onset(&p), (Some(0.05), Some(0.03)));
        assert_eq!(onset(&p[..1]), (None, Some(0.01)));
        assert_eq!(onset(&[]), (None, None));
    }

    #[test]
    fn bad_sweeps_are_refused() {
        let ok = SweepConfig {
            epochs: vec![10],
            fractions: vec![0.1],
            lira_models: 4,
        };
        assert!(ok.validate().is_ok());
        for bad in [
            SweepConfig {
                epochs: vec![],
                ..ok.clone()
            },
            SweepConfig {
                epochs: vec![0],
                ..ok.clone()
            },
            SweepConfig {
                fractions: vec![1.5],
                ..ok.clone()
            },
            SweepConfig {
                lira_models: 3,
                ..ok.clone()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(ExperimentError::Config(_))),
                "{bad:?}"
            );
        }
    }
}
