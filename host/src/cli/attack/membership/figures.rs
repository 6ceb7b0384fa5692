//! The figures of `heist attack membership --out DIR`: bar charts like the paper's Figures
//! 5 and 6 (one per target and kind of features), a log-log ROC chart, and the overfitting
//! sweep (advantage against the train–test gap).

use std::path::{Path, PathBuf};

use crate::attack::membership::experiment::{Outcome, RocRow, ShokriRow};
use crate::attack::membership::metrics::Interval;
use crate::attack::membership::sweep::SweepPoint;
use crate::attack::membership::Features;
use crate::data::Dataset;
use crate::plot::{BarChart, BarSeries, LineChart, PlotError, Series};

/// The smallest rate on the ROC chart's log axes (below one non-member in 2,500).
const ROC_FLOOR: f64 = 1e-4;

/// A target's name in titles and legends.
pub(super) fn fraction_name(f: f64) -> String {
    if f == 1.0 {
        "base model (all data)".to_owned()
    } else if f == 0.5 {
        "half data".to_owned()
    } else {
        let percent = f * 100.0;
        if (percent - percent.round()).abs() < 1e-9 {
            format!("{percent:.0} % data")
        } else {
            format!("{percent:.1} % data")
        }
    }
}

/// The data set's name in titles.
fn title(dataset: Dataset) -> &'static str {
    match dataset {
        Dataset::Mnist => "MNIST",
        Dataset::Fashion => "Fashion-MNIST",
    }
}

/// The larger distance from `value` to an end of `ci`: a symmetric error bar that covers
/// the (asymmetric) Wilson interval.
fn half_width(value: f64, ci: &Interval) -> f64 {
    (value - ci.low).max(ci.high - value).max(0.0)
}

/// Figures 5–6 for one target and kind of features: accuracy, recall and precision of
/// Shokri's attack in the train and test phase per shadow count, with 95 % intervals, and
/// the paper's accuracy beside them when it has every cell.
fn shokri_chart(
    dataset: Dataset,
    fraction: f64,
    features: Features,
    shadows: &[usize],
    rows: &[ShokriRow],
) -> Option<BarChart> {
    let mut categories = Vec::new();
    let mut picked = Vec::new();
    for &k in shadows {
        for phase in ["train", "test"] {
            let row = rows.iter().find(|r| {
                r.shadows == k
                    && r.phase == phase
                    && r.features == features
                    && r.fraction == fraction
            })?;
            categories.push(format!("{k} shadows, {phase}"));
            picked.push(row);
        }
    }
    let metric = |label: &str, value: fn(&ShokriRow) -> (f64, Interval)| BarSeries {
        label: label.to_owned(),
        values: picked.iter().map(|r| value(r).0).collect(),
        errors: Some(
            picked
                .iter()
                .map(|r| {
                    let (v, ci) = value(r);
                    half_width(v, &ci)
                })
                .collect(),
        ),
    };
    let mut series = vec![
        metric("accuracy", |r| (r.accuracy, r.accuracy_ci)),
        metric("recall", |r| (r.recall, r.recall_ci)),
        metric("precision", |r| (r.precision, r.precision_ci)),
    ];
    let paper: Option<Vec<f64>> = picked.iter().map(|r| r.paper.map(|c| c.accuracy)).collect();
    if let Some(values) = paper {
        series.push(BarSeries {
            label: "accuracy (paper)".to_owned(),
            values,
            errors: None,
        });
    }
    Some(BarChart {
        title: format!(
            "{}: Shokri et al., {}, {} scores (95 % intervals)",
            title(dataset),
            fraction_name(fraction),
            features.name()
        ),
        y_label: "rate".to_owned(),
        categories,
        series,
        y_range: Some((0.0, 1.05)),
    })
}

/// The ROC curves of LiRA online (raw hinge) for every target, on log-log axes from
/// [`ROC_FLOOR`] to 1, with the chance diagonal (points at a rate of 0 have no place on a
/// log axis and are left out).
fn roc_chart(dataset: Dataset, rows: &[RocRow]) -> LineChart {
    let mut series: Vec<Series> = rows
        .iter()
        .filter(|r| r.attack == "lira_online" && r.features == Features::Raw)
        .map(|r| Series {
            label: format!("LiRA, {}", fraction_name(r.fraction)),
            points: r.roc.iter().map(|p| (p.fpr, p.tpr)).collect(),
        })
        .collect();
    series.push(Series {
        label: "chance".to_owned(),
        points: vec![(ROC_FLOOR, ROC_FLOOR), (1.0, 1.0)],
    });
    LineChart {
        title: format!("{}: LiRA ROC (online, raw hinge, log-log)", title(dataset)),
        x_label: "false-positive rate".to_owned(),
        y_label: "true-positive rate".to_owned(),
        series,
        x_log: true,
        y_log: true,
        x_range: Some((ROC_FLOOR, 1.0)),
        y_range: Some((ROC_FLOOR, 1.0)),
    }
}

/// The sweep: each attack's advantage against the target's train–test gap, points sorted
/// by gap; the gap attack (the baseline) as `gap/2`.
fn sweep_chart(dataset: Dataset, points: &[SweepPoint]) -> LineChart {
    let mut sorted: Vec<&SweepPoint> = points.iter().collect();
    sorted.sort_by(|a, b| a.gap.total_cmp(&b.gap));
    let line = |label: String, y: &dyn Fn(&SweepPoint) -> Option<f64>| Series {
        label,
        points: sorted
            .iter()
            .filter_map(|p| y(p).map(|v| (p.gap, v)))
            .collect(),
    };
    let attack = |p: &SweepPoint, f: Features| p.attacks.iter().find(|a| a.features == f).cloned();
    let mut series = Vec::new();
    for f in Features::ALL {
        series.push(line(format!("LiRA AUC - 0.5, {}", f.name()), &|p| {
            attack(p, f).and_then(|a| a.lira_auc).map(|v| v - 0.5)
        }));
        series.push(line(format!("LiRA TPR at 1 % FPR, {}", f.name()), &|p| {
            attack(p, f).and_then(|a| a.lira_tpr_at_1pct_fpr)
        }));
        series.push(line(format!("Shokri accuracy - 0.5, {}", f.name()), &|p| {
            attack(p, f)
                .and_then(|a| a.shokri_accuracy)
                .map(|v| v - 0.5)
        }));
    }
    series.push(line("loss AUC - 0.5".to_owned(), &|p| {
        p.loss_auc.is_finite().then_some(p.loss_auc - 0.5)
    }));
    series.push(line(
        "gap attack accuracy - 0.5 (baseline)".to_owned(),
        &|p| Some(p.gap_attack_accuracy - 0.5),
    ));
    series.retain(|s| !s.points.is_empty());
    // Room above the data for the legend, which sits in the upper right corner.
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold((0.0f64, 0.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let span = (hi - lo).max(0.01);
    LineChart {
        title: format!(
            "{}: attack advantage against the train-test gap",
            title(dataset)
        ),
        x_label: "train-test gap (accuracy on members - on non-members)".to_owned(),
        y_label: "advantage".to_owned(),
        series,
        y_range: Some((lo - 0.05 * span, hi + 1.1 * span)),
        ..LineChart::default()
    }
}

/// Writes every figure into `dir` and returns the files written.
///
/// # Errors
/// The first chart that cannot be drawn or written.
pub(super) fn write(
    dir: &Path,
    dataset: Dataset,
    outcome: &Outcome,
    fractions: &[f64],
    shadows: &[usize],
    sweep: &[SweepPoint],
) -> Result<Vec<PathBuf>, PlotError> {
    let mut written = Vec::new();
    for &fraction in fractions {
        for features in Features::ALL {
            if let Some(chart) = shokri_chart(dataset, fraction, features, shadows, &outcome.shokri)
            {
                let file = dir.join(format!(
                    "membership-{dataset}-shokri-{}-{}.png",
                    features.name(),
                    fraction
                ));
                chart.write_png(&file)?;
                written.push(file);
            }
        }
    }
    if outcome.roc.iter().any(|r| r.roc.len() > 1) {
        let file = dir.join(format!("membership-{dataset}-roc.png"));
        roc_chart(dataset, &outcome.roc).write_png(&file)?;
        written.push(file);
    }
    if !sweep.is_empty() {
        let file = dir.join(format!("membership-{dataset}-sweep.png"));
        sweep_chart(dataset, sweep).write_png(&file)?;
        written.push(file);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bars_cover_the_interval() {
        let ci = Interval {
            low: 0.4,
            high: 0.7,
        };
        assert!((half_width(0.5, &ci) - 0.2).abs() < 1e-12);
        assert!((half_width(0.6, &ci) - 0.2).abs() < 1e-12);
        assert_eq!(fraction_name(0.2), "20 % data");
        assert_eq!(fraction_name(1.0), "base model (all data)");
    }
}
