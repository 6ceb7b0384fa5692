//! `heist attack membership`: attack 3, membership inference by a semi-honest insider
//! (paper Tables 6–7), with LiRA and the loss attack beside Shokri et al.'s.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use crate::attack::membership::experiment::{
    self, ExperimentConfig, Outcome, RocRow, ShokriRow, TargetModel, TargetRow,
};
use crate::attack::membership::paper::Cell;
use crate::attack::membership::shokri::AttackModelConfig;
use crate::attack::membership::signals::Signals;
use crate::attack::membership::split::Split;
use crate::attack::membership::Features;
use crate::cli::exit::{write_json, CliError, CliResult};
use crate::cli::options::{use_threads, DataOptions};
use crate::data::{Dataset, Images};
use crate::inference::OracleSpec;
use crate::model::{Architecture, Model};
use crate::oracle::Oracle;
use crate::service::Scheme;
use crate::train::{members_path, Members, TrainConfig};

/// Members scored by default (and as many non-members): 5,000 records in all, so every
/// accuracy's 95 % interval is narrower than ±0.014.
pub const DEFAULT_PER_SIDE: usize = 2500;

/// Membership inference by a semi-honest insider: Shokri et al.'s shadow models (paper
/// Tables 6–7), LiRA online and offline, and the loss attack, on raw and softmax scores.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    heist attack membership --dataset mnist --data-dir data --json membership.json\n  \
    heist attack membership --dataset fashion --oracle plain --lira-models 16 --fractions 1")]
pub struct MembershipArgs {
    #[command(flatten)]
    data: DataOptions,
    /// Attack this model (with its `<model>.members.json` from `heist train`) instead of
    /// training one target per fraction; needed with `--oracle tcp://ADDR`, whose trusted
    /// party must serve this model.
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// Where the target's queries go: plain, ckks, bfv (in-process service) or tcp://ADDR.
    #[arg(long, default_value = "ckks")]
    oracle: OracleSpec,
    /// Shokri shadow-model counts.
    #[arg(long, value_delimiter = ',', default_value = "2,4,8")]
    shadows: Vec<usize>,
    /// Fractions of the training set the targets train on.
    #[arg(long, value_delimiter = ',', default_value = "1,0.5,0.2")]
    fractions: Vec<f64>,
    /// LiRA shadow models (even; 0 skips LiRA).
    #[arg(long, default_value_t = 64)]
    lira_models: usize,
    /// Members scored, and as many non-members (default: 2500, at most half the test set).
    #[arg(long)]
    members: Option<usize>,
    /// Epochs of the targets and every shadow model.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Mini-batch size of the targets and every shadow model.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Seed of every draw and model.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Write the results as JSON to this file (`-` for stdout, which then holds only JSON).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Write the full report (ROC curves and the split by index) and a log-log ROC figure
    /// of LiRA (PNG) to this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// The JSON report.
#[derive(Debug, serde::Serialize)]
struct Report<'a> {
    dataset: Dataset,
    data_source: &'static str,
    oracle: String,
    encrypted: bool,
    seed: u64,
    config: &'a ExperimentConfig,
    members: usize,
    non_members: usize,
    insider_records: usize,
    targets: &'a [TargetRow],
    shokri: &'a [ShokriRow],
    lira: Vec<&'a RocRow>,
    loss: Vec<&'a RocRow>,
    lira_auc: Option<f64>,
    lira_tpr_at_0_1pct_fpr: Option<f64>,
    lira_tpr_at_1pct_fpr: Option<f64>,
    loss_auc: Option<f64>,
    softmax_changes_conclusion: bool,
    any_beats_chance_at_low_fpr: bool,
    lira_shadow_train_records: Option<(usize, usize)>,
    queries: u64,
    threads: usize,
    seconds: f64,
    attack_seconds: f64,
}

/// The full report under `--out`: the JSON report plus the split by index.
#[derive(Debug, serde::Serialize)]
struct Full<'a> {
    #[serde(flatten)]
    report: &'a Report<'a>,
    split: &'a Split,
}

/// Queries `records` once through a fresh oracle of `choice` for `model`.
fn collect(
    choice: &OracleSpec,
    model: &Model,
    train: &Images,
    records: &Images,
    member: Vec<bool>,
    queries: &mut u64,
) -> anyhow::Result<Signals> {
    let mut oracle = choice.open(model, train)?;
    let signals = Signals::collect(&mut oracle, records, member)?;
    *queries += oracle.queries();
    Ok(signals)
}

/// The target of `--model`: the model and its member file.
fn load_target(
    path: &std::path::Path,
    arch: Architecture,
    train_len: usize,
) -> Result<TargetModel, CliError> {
    let model = Model::load(path, Some(arch)).map_err(CliError::bad_input)?;
    let file = members_path(path);
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("reading the member file {}", file.display()))
        .map_err(CliError::bad_input)?;
    let members: Members = serde_json::from_str(&text)
        .with_context(|| format!("parsing the member file {}", file.display()))
        .map_err(CliError::bad_input)?;
    if members.train_size != train_len {
        return Err(CliError::bad_input(anyhow::anyhow!(
            "{}: the members index a training set of {} images, the data has {train_len}",
            file.display(),
            members.train_size
        )));
    }
    if let Some(&bad) = members.members.iter().find(|&&i| i >= train_len) {
        return Err(CliError::bad_input(anyhow::anyhow!(
            "{}: member index {bad} is not below {train_len}",
            file.display()
        )));
    }
    Ok(TargetModel {
        fraction: members.fraction,
        model,
        members: members.members,
    })
}

/// Runs `heist attack membership`.
///
/// # Errors
/// Bad input (exit 2) for bad flags, data or model files; failure (exit 1) otherwise.
pub fn run(args: MembershipArgs) -> CliResult {
    let start = Instant::now();
    use_threads(args.threads)?;
    if matches!(args.oracle, OracleSpec::Tcp(_)) && args.model.is_none() {
        return Err(CliError::bad_input(anyhow::anyhow!(
            "--oracle tcp://ADDR attacks the model the trusted party serves: give it with --model"
        )));
    }
    let data = args.data.load().map_err(CliError::bad_input)?;
    let arch = Architecture::for_dataset(data.dataset);
    let mut config = ExperimentConfig {
        training: TrainConfig {
            batch_size: args.batch_size,
            ..TrainConfig::adam(arch, args.epochs, args.seed)
        },
        fractions: args.fractions.clone(),
        shadows: args.shadows.clone(),
        lira_models: args.lira_models,
        per_side: args.members.unwrap_or(DEFAULT_PER_SIDE),
        attack: AttackModelConfig::default(),
        seed: args.seed,
    };
    config.validate().map_err(CliError::bad_input)?;
    let targets = match &args.model {
        Some(path) => vec![load_target(path, arch, data.train.len())?],
        None => {
            eprintln!(
                "training {} target(s) on fractions {:?} of {} images, {} epochs",
                config.fractions.len(),
                config.fractions,
                data.train.len(),
                config.training.epochs
            );
            experiment::train_targets(&data.train, &config)
                .map_err(|e| CliError::Failure(e.into()))?
        }
    };
    if args.members.is_none() {
        // The default shrinks to what small data sets hold: every target's members and
        // half the test set (the other half stays with the insider).
        let smallest = targets.iter().map(|t| t.members.len()).min().unwrap_or(0);
        config.per_side = DEFAULT_PER_SIDE
            .min(data.test.len().saturating_sub(1) / 2)
            .min(smallest);
    }
    let mut queries = 0;
    let outcome = experiment::run(
        data.dataset,
        &data.train,
        &data.test,
        targets,
        &config,
        |model, records, member| {
            eprintln!(
                "querying {} records through the {} oracle",
                records.len(),
                args.oracle
            );
            collect(
                &args.oracle,
                model,
                &data.train,
                records,
                member,
                &mut queries,
            )
        },
    )
    .map_err(|e| match e {
        experiment::ExperimentError::Split(_) | experiment::ExperimentError::Config(_) => {
            CliError::bad_input(e)
        }
        e => CliError::Failure(e.into()),
    })?;
    let report = report(
        &args,
        &data,
        &config,
        &outcome,
        queries,
        start.elapsed().as_secs_f64(),
    );
    let quiet = args.json.as_deref() == Some(std::path::Path::new("-"));
    if !quiet {
        print_report(&report, &outcome, &config);
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
        let file = dir.join(format!("membership-{}.json", data.dataset));
        write_json(
            &file,
            &Full {
                report: &report,
                split: &outcome.split,
            },
        )?;
        let png = dir.join(format!("membership-{}-roc.png", data.dataset));
        roc_png(&outcome.roc)
            .save(&png)
            .map_err(|e| anyhow::anyhow!("{}: {e}", png.display()))?;
    }
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    Ok(())
}

fn report<'a>(
    args: &MembershipArgs,
    data: &crate::data::Data,
    config: &'a ExperimentConfig,
    outcome: &'a Outcome,
    queries: u64,
    seconds: f64,
) -> Report<'a> {
    let first = outcome.targets.first().map(|t| t.fraction);
    let headline = |attack: &str| {
        outcome.roc.iter().find(|r| {
            r.attack == attack && r.features == Features::Raw && Some(r.fraction) == first
        })
    };
    let lira = headline("lira_online");
    Report {
        dataset: data.dataset,
        data_source: data.source.label(),
        oracle: args.oracle.to_string(),
        encrypted: matches!(
            args.oracle,
            OracleSpec::InProcess(Scheme::Ckks | Scheme::Bfv) | OracleSpec::Tcp(_)
        ),
        seed: args.seed,
        config,
        members: outcome.members,
        non_members: outcome.non_members,
        insider_records: outcome.insider_records,
        targets: &outcome.targets,
        shokri: &outcome.shokri,
        lira: outcome.roc.iter().filter(|r| r.attack != "loss").collect(),
        loss: outcome.roc.iter().filter(|r| r.attack == "loss").collect(),
        lira_auc: lira.map(|r| r.auc),
        lira_tpr_at_0_1pct_fpr: lira.map(|r| r.tpr_at_0_1pct_fpr),
        lira_tpr_at_1pct_fpr: lira.map(|r| r.tpr_at_1pct_fpr),
        loss_auc: headline("loss").map(|r| r.auc),
        softmax_changes_conclusion: outcome.softmax_changes_conclusion,
        any_beats_chance_at_low_fpr: outcome.any_beats_chance_at_low_fpr,
        lira_shadow_train_records: outcome.lira_shadow_train_records,
        queries,
        threads: rayon::current_num_threads(),
        seconds,
        attack_seconds: outcome.attack_seconds,
    }
}

/// Side of the ROC figure in pixels.
const PNG_SIDE: u32 = 480;

/// The smallest rate on the figure's log axes.
const PNG_FLOOR: f64 = 1e-4;

/// One colour per target, in order.
const PNG_COLOURS: [[u8; 3]; 4] = [
    [31, 119, 180],
    [214, 39, 40],
    [44, 160, 44],
    [148, 103, 189],
];

/// Pixel coordinate of a rate on a log axis from [`PNG_FLOOR`] to 1 (0 at the floor).
fn png_coordinate(rate: f64) -> f64 {
    let lo = PNG_FLOOR.log10();
    (rate.max(PNG_FLOOR).log10() - lo) / -lo * f64::from(PNG_SIDE - 1)
}

/// A log-log ROC figure of LiRA online on raw scores, one curve per target (blue, red,
/// green, purple in target order), the chance diagonal in grey and grid lines at each
/// decade; no text (the JSON report carries the numbers).
fn roc_png(rows: &[RocRow]) -> image::RgbImage {
    let side = PNG_SIDE;
    let mut img = image::RgbImage::from_pixel(side, side, image::Rgb([255, 255, 255]));
    let mut plot = |fpr: f64, tpr: f64, colour: [u8; 3]| {
        let x = png_coordinate(fpr).round() as u32;
        let y = side - 1 - png_coordinate(tpr).round() as u32;
        if x < side && y < side {
            img.put_pixel(x, y, image::Rgb(colour));
        }
    };
    let steps = 2000;
    for decade in [1e-4, 1e-3, 1e-2, 1e-1, 1.0] {
        for i in 0..=steps {
            let t = PNG_FLOOR.powf(1.0 - f64::from(i) / f64::from(steps));
            plot(decade, t, [220, 220, 220]);
            plot(t, decade, [220, 220, 220]);
        }
    }
    for i in 0..=steps {
        let t = PNG_FLOOR.powf(1.0 - f64::from(i) / f64::from(steps));
        plot(t, t, [128, 128, 128]);
    }
    let curves = rows
        .iter()
        .filter(|r| r.attack == "lira_online" && r.features == Features::Raw);
    for (row, colour) in curves.zip(PNG_COLOURS.iter().cycle()) {
        for w in row.roc.windows(2) {
            for i in 0..=100 {
                let f = f64::from(i) / 100.0;
                plot(
                    w[0].fpr + (w[1].fpr - w[0].fpr) * f,
                    w[0].tpr + (w[1].tpr - w[0].tpr) * f,
                    *colour,
                );
            }
        }
    }
    img
}

fn fraction_name(f: f64) -> String {
    if f == 1.0 {
        "base model (all data)".to_owned()
    } else if f == 0.5 {
        "half data".to_owned()
    } else {
        format!("{:.0} % data", f * 100.0)
    }
}

fn cell(accuracy: f64, recall: f64, precision: f64) -> String {
    format!("{accuracy:.3} {recall:.3} {precision:.3}")
}

fn print_report(report: &Report<'_>, outcome: &Outcome, config: &ExperimentConfig) {
    let table = match report.dataset {
        Dataset::Mnist => "Table 6 (MNIST)",
        Dataset::Fashion => "Table 7 (Fashion-MNIST)",
    };
    println!(
        "{} ({}), oracle {}: {} members, {} non-members, {} insider records",
        report.dataset,
        report.data_source,
        report.oracle,
        report.members,
        report.non_members,
        report.insider_records
    );
    println!("\ntargets (accuracy on the scored records, through the oracle)");
    println!("fraction  trained on  members  non-members  gap     loss gap");
    for t in report.targets {
        println!(
            "{:<8}  {:>10}  {:.4}   {:.4}       {:+.4} {:+.4}",
            t.fraction,
            t.train_records,
            t.member_accuracy,
            t.non_member_accuracy,
            t.gap,
            t.loss_gap
        );
    }
    for features in Features::ALL {
        println!(
            "\n{table}: Shokri et al. on {} scores; acc rec pre, heist [paper]",
            features.name()
        );
        let header: Vec<String> = config
            .fractions
            .iter()
            .map(|&f| format!("{:<37}", fraction_name(f)))
            .collect();
        println!("shadows phase  {}", header.join(" | "));
        for &k in &config.shadows {
            for phase in ["train", "test"] {
                let cells: Vec<String> = config
                    .fractions
                    .iter()
                    .map(|&f| {
                        outcome
                            .shokri
                            .iter()
                            .find(|r| {
                                r.shadows == k
                                    && r.phase == phase
                                    && r.features == features
                                    && r.fraction == f
                            })
                            .map_or_else(String::new, |r| {
                                let paper = r.paper.map_or_else(
                                    || "[  -     -     -  ]".to_owned(),
                                    |p: Cell| {
                                        format!("[{}]", cell(p.accuracy, p.recall, p.precision))
                                    },
                                );
                                format!("{} {paper}", cell(r.accuracy, r.recall, r.precision))
                            })
                    })
                    .collect();
                println!("{k:<7} {phase:<6} {}", cells.join(" | "));
            }
        }
    }
    let worst = outcome
        .shokri
        .iter()
        .filter(|r| r.phase == "test")
        .map(|r| r.accuracy_ci.half_width())
        .fold(0.0, f64::max);
    println!("largest 95 % interval of a test-phase accuracy: ±{worst:.4}");
    println!(
        "\nLiRA and the loss attack: AUC, TPR at FPR < 0.1 % and < 1 % [95 % Wilson interval]"
    );
    println!("fraction  attack               features  AUC     TPR@0.1%                TPR@1%");
    for r in &outcome.roc {
        println!(
            "{:<8}  {:<20} {:<9} {:.4}  {:.4} [{:.4}, {:.4}]  {:.4} [{:.4}, {:.4}]",
            r.fraction,
            r.attack,
            if r.attack == "loss" {
                "-"
            } else {
                r.features.name()
            },
            r.auc,
            r.tpr_at_0_1pct_fpr,
            r.tpr_at_0_1pct_fpr_ci.low,
            r.tpr_at_0_1pct_fpr_ci.high,
            r.tpr_at_1pct_fpr,
            r.tpr_at_1pct_fpr_ci.low,
            r.tpr_at_1pct_fpr_ci.high
        );
    }
    if let Some((lo, hi)) = report.lira_shadow_train_records {
        println!("each LiRA shadow model trained on {lo}–{hi} records");
    }
    println!(
        "\nany attack beats chance at 1 % FPR: {}; softmax changes a conclusion: {}",
        report.any_beats_chance_at_low_fpr, report.softmax_changes_conclusion
    );
    println!(
        "{} queries to the target(s); {:.1} s in all, {:.1} s attacking",
        report.queries, report.seconds, report.attack_seconds
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oracle_flag_parses_and_prints_back() {
        for text in ["plain", "ckks", "bfv", "tcp://127.0.0.1:7000"] {
            let choice: OracleSpec = text.parse().expect(text);
            assert_eq!(choice.to_string(), text);
        }
        assert_eq!(
            "bfv".parse::<OracleSpec>(),
            Ok(OracleSpec::InProcess(Scheme::Bfv))
        );
        for bad in ["", "tcp://", "CKKS", "udp://x:1"] {
            assert!(bad.parse::<OracleSpec>().is_err(), "{bad:?}");
        }
    }
}
