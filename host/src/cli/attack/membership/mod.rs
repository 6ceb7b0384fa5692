//! `heist attack membership`: attack 3, membership inference by a semi-honest insider
//! (paper Tables 6–7), with LiRA and the loss attack beside Shokri et al.'s, the overfitting
//! sweep, and the figures (`--out`).

mod figures;

use figures::fraction_name;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use crate::attack::membership::experiment::{
    self, ExperimentConfig, Outcome, RocRow, ShokriRow, TargetModel, TargetRow,
};
use crate::attack::membership::paper::Cell;
use crate::attack::membership::shokri::AttackModelConfig;
use crate::attack::membership::signals::Signals;
use crate::attack::membership::split::Split;
use crate::attack::membership::sweep::{self, SweepConfig, SweepPoint};
use crate::attack::membership::Features;
use crate::cli::exit::{write_json, CliError, CliResult};
use crate::cli::options::{use_threads, DataOptions};
use crate::data::{Dataset, Images};
use crate::inference::OracleSpec;
use crate::model::{Architecture, Model};
use crate::oracle::Oracle;
use crate::service::Scheme;
use crate::train::cache::{cache_path, cached_or_trained};
use crate::train::{member_indices, members_path, Members, TrainConfig};

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
    /// Write the full report (ROC curves and the split by index) and the figures (PNG: the
    /// Shokri bar charts like the paper's Figures 5–6, a log-log ROC chart, the sweep) to
    /// this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Reuse targets trained before (keyed by data, architecture, every hyper-parameter,
    /// the fraction and the seed; the members are drawn again from fraction and seed) from
    /// this directory, and store those trained now there.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Also run the overfitting sweep: targets trained for each of `--sweep-epochs` on each
    /// of `--sweep-fractions`, each attacked with its own split and shadows.
    #[arg(long)]
    sweep: bool,
    /// The sweep's training epochs (implies --sweep).
    #[arg(long, value_delimiter = ',', value_name = "E,..")]
    sweep_epochs: Option<Vec<usize>>,
    /// The sweep's training fractions (implies --sweep).
    #[arg(long, value_delimiter = ',', value_name = "F,..")]
    sweep_fractions: Option<Vec<f64>>,
    /// LiRA shadow models per sweep target (even; 0 skips LiRA).
    #[arg(long, default_value_t = 32)]
    sweep_lira_models: usize,
}

/// The sweep's epochs when `--sweep` is given without `--sweep-epochs`.
pub const DEFAULT_SWEEP_EPOCHS: [usize; 2] = [10, 30];

/// The sweep's fractions when `--sweep` is given without `--sweep-fractions`.
pub const DEFAULT_SWEEP_FRACTIONS: [f64; 3] = [0.2, 0.05, 0.01];

/// The largest [`Signals::deviation`] of a TCP service's answers from the plaintext scores
/// of `--model` that is taken for the same model. Measured: CKKS answers within 1e-3 of
/// them (1.4e-4 to 9.1e-4 on the canonical data sets), BFV's 8-bit quantised model within
/// 1e-2 (9.2e-3 on the embedded MNIST subset), while another model of the same
/// architecture differs by the size of the scores themselves.
pub const MAX_DEVIATION: f64 = 0.2;

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
    oracle_deviation: &'a [f64],
    targets_from_cache: usize,
    sweep_config: Option<&'a SweepConfig>,
    sweep: &'a [SweepPoint],
    sweep_onset_gap: Option<f64>,
    sweep_last_failing_gap: Option<f64>,
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

/// What the target queries cost and how close the answers were to the model's.
#[derive(Debug, Default)]
struct Queries {
    /// Queries to the target(s).
    count: u64,
    /// [`Signals::deviation`] of each target's answers from its plaintext scores.
    deviation: Vec<f64>,
}

/// Queries `records` once through a fresh oracle of `choice` for `model`, and measures
/// how far the answers are from `model`'s own scores. A TCP service whose answers are
/// further than [`MAX_DEVIATION`] does not run `model`: the attack would score the wrong
/// model's members, so that is an error.
fn collect(
    choice: &OracleSpec,
    model: &Model,
    train: &Images,
    records: &Images,
    member: Vec<bool>,
    queries: &mut Queries,
) -> anyhow::Result<Signals> {
    let mut oracle = choice.open(model, train)?;
    let signals = Signals::collect(&mut oracle, records, member.clone())?;
    queries.count += oracle.queries();
    let deviation = signals.deviation(&Signals::of_model(model, records, member)?)?;
    queries.deviation.push(deviation);
    if matches!(choice, OracleSpec::Tcp(_)) && (deviation.is_nan() || deviation > MAX_DEVIATION) {
        anyhow::bail!(
            "the service at {choice} does not run the model of --model: its scores are off by \
             {deviation:.3} of their size (at most {MAX_DEVIATION} for the same model)"
        );
    }
    Ok(signals)
}

/// The target trained with `config` on `train`: from `cache` when it holds it (its
/// members drawn again from the fraction and seed), otherwise trained now (and stored
/// there). Counts reuses in `reused`.
fn target(
    train: &Images,
    config: &TrainConfig,
    cache: Option<&Path>,
    reused: &mut usize,
) -> anyhow::Result<TargetModel> {
    let model = match cache {
        Some(dir) => {
            let path = cache_path(dir, train, config)?;
            let (model, cached) = cached_or_trained(&path, dir, train, config)?;
            *reused += usize::from(cached);
            model
        }
        None => {
            eprintln!(
                "training the target on {} of {} images, {} epochs",
                config.fraction,
                train.len(),
                config.epochs
            );
            crate::train::train(train, config, |_, _, _| {})?.model
        }
    };
    Ok(TargetModel {
        fraction: config.fraction,
        model,
        members: member_indices(train.len(), config.fraction, config.seed),
    })
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

/// The sweep `args` ask for, if any.
fn sweep_config(args: &MembershipArgs) -> Option<SweepConfig> {
    (args.sweep || args.sweep_epochs.is_some() || args.sweep_fractions.is_some()).then(|| {
        SweepConfig {
            epochs: args
                .sweep_epochs
                .clone()
                .unwrap_or_else(|| DEFAULT_SWEEP_EPOCHS.to_vec()),
            fractions: args
                .sweep_fractions
                .clone()
                .unwrap_or_else(|| DEFAULT_SWEEP_FRACTIONS.to_vec()),
            lira_models: args.sweep_lira_models,
        }
    })
}

/// An experiment error as an exit code: bad input for a configuration or split that
/// cannot work, failure otherwise.
fn experiment_error(e: experiment::ExperimentError) -> CliError {
    match e {
        experiment::ExperimentError::Split(_) | experiment::ExperimentError::Config(_) => {
            CliError::bad_input(e)
        }
        e => CliError::Failure(e.into()),
    }
}

/// Runs `heist attack membership`.
///
/// # Errors
/// Bad input (exit 2) for bad flags, data or model files; failure (exit 1) otherwise.
pub fn run(args: MembershipArgs) -> CliResult {
    let start = Instant::now();
    use_threads(args.threads)?;
    let tcp = matches!(args.oracle, OracleSpec::Tcp(_));
    if tcp && args.model.is_none() {
        return Err(CliError::bad_input(anyhow::anyhow!(
            "--oracle tcp://ADDR attacks the model the trusted party serves: give it with --model"
        )));
    }
    let sweep_config = sweep_config(&args);
    if tcp && sweep_config.is_some() {
        return Err(CliError::bad_input(anyhow::anyhow!(
            "the sweep trains its own targets, which a TCP service does not run: \
             use an in-process oracle for --sweep"
        )));
    }
    if let Some(s) = &sweep_config {
        s.validate().map_err(CliError::bad_input)?;
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
    let mut from_cache = 0;
    let targets = match &args.model {
        Some(path) => vec![load_target(path, arch, data.train.len())?],
        None => {
            eprintln!(
                "{} target(s) on fractions {:?} of {} images, {} epochs",
                config.fractions.len(),
                config.fractions,
                data.train.len(),
                config.training.epochs
            );
            config
                .fractions
                .iter()
                .map(|&f| {
                    target(
                        &data.train,
                        &config.target(f),
                        args.cache.as_deref(),
                        &mut from_cache,
                    )
                })
                .collect::<anyhow::Result<Vec<_>>>()
                .map_err(CliError::Failure)?
        }
    };
    if args.model.is_some() {
        // The tables, figures and sweep points have one column: the model's own fraction.
        config.fractions = targets.iter().map(|t| t.fraction).collect();
    }
    if args.members.is_none() {
        // The default shrinks to what small data sets hold: every target's members and
        // half the test set (the other half stays with the insider).
        let smallest = targets.iter().map(|t| t.members.len()).min().unwrap_or(0);
        config.per_side = DEFAULT_PER_SIDE
            .min(data.test.len().saturating_sub(1) / 2)
            .min(smallest);
    }
    let mut queries = Queries::default();
    let mut query = |model: &Model, records: &Images, member: Vec<bool>| {
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
    };
    let outcome = experiment::run(
        data.dataset,
        &data.train,
        &data.test,
        targets,
        &config,
        &mut query,
    )
    .map_err(experiment_error)?;
    let mut sweep_points = sweep::points(&outcome, config.training.epochs, "main");
    if let Some(s) = &sweep_config {
        eprintln!(
            "sweep: {} target(s), epochs {:?} x fractions {:?}, {} LiRA shadows each",
            s.epochs.len() * s.fractions.len(),
            s.epochs,
            s.fractions,
            s.lira_models
        );
        let points = sweep::run(
            data.dataset,
            &data.train,
            &data.test,
            &config,
            s,
            |c| {
                target(&data.train, c, args.cache.as_deref(), &mut from_cache)
                    .map_err(|e| experiment::ExperimentError::Config(format!("{e:#}")))
            },
            &mut query,
            |done, total, p| {
                eprintln!(
                    "sweep target {done}/{total}: {} epochs, fraction {}, gap {:+.3}",
                    p.epochs, p.fraction, p.gap
                );
            },
        )
        .map_err(experiment_error)?;
        sweep_points.extend(points);
    }
    let (onset, last_failing) = sweep::onset(&sweep_points);
    let report = Report {
        sweep_config: sweep_config.as_ref(),
        sweep: &sweep_points,
        sweep_onset_gap: onset,
        sweep_last_failing_gap: last_failing,
        oracle_deviation: &queries.deviation,
        targets_from_cache: from_cache,
        ..report(
            &args,
            &data,
            &config,
            &outcome,
            queries.count,
            start.elapsed().as_secs_f64(),
        )
    };
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
        let written = figures::write(
            dir,
            data.dataset,
            &outcome,
            &config.fractions,
            &config.shadows,
            &sweep_points,
        )
        .map_err(|e| CliError::Failure(e.into()))?;
        if !quiet {
            for f in written {
                eprintln!("wrote {}", f.display());
            }
        }
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
        oracle_deviation: &[],
        targets_from_cache: 0,
        sweep_config: None,
        sweep: &[],
        sweep_onset_gap: None,
        sweep_last_failing_gap: None,
        queries,
        threads: rayon::current_num_threads(),
        seconds,
        attack_seconds: outcome.attack_seconds,
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
    println!(
        "fraction  trained on  members  non-members  gap     loss gap  gap attack (baseline) [95 %]  oracle deviation"
    );
    for (i, t) in report.targets.iter().enumerate() {
        println!(
            "{:<8}  {:>10}  {:.4}   {:.4}       {:+.4} {:+.4}   {:.4} [{:.4}, {:.4}]        {}",
            t.fraction,
            t.train_records,
            t.member_accuracy,
            t.non_member_accuracy,
            t.gap,
            t.loss_gap,
            t.gap_attack_accuracy,
            t.gap_attack_accuracy_ci.low,
            t.gap_attack_accuracy_ci.high,
            report
                .oracle_deviation
                .get(i)
                .map_or_else(|| "-".to_owned(), |d| format!("{d:.2e}"))
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
        "\nShokri's test phase against the baseline, the gap attack (member iff classified correctly)"
    );
    println!("shadows features fraction  Shokri acc  gap attack  same prediction");
    for r in outcome.shokri.iter().filter(|r| r.phase == "test") {
        let baseline = report
            .targets
            .iter()
            .find(|t| t.fraction == r.fraction)
            .map_or(f64::NAN, |t| t.gap_attack_accuracy);
        println!(
            "{:<7} {:<8} {:<8}  {:.4}      {:.4}      {:.4}",
            r.shadows,
            r.features.name(),
            r.fraction,
            r.accuracy,
            baseline,
            r.gap_attack_agreement
        );
    }
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
    if report.sweep_config.is_some() {
        print_sweep(report);
    }
    println!(
        "{} queries to the target(s); {:.1} s in all, {:.1} s attacking the main targets",
        report.queries, report.seconds, report.attack_seconds
    );
}

/// `x` to 4 decimals, or `-`.
fn optional(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |v| format!("{v:.4}"))
}

/// The sweep's table: each target's gap and every attack's figures, raw / softmax.
fn print_sweep(report: &Report<'_>) {
    println!(
        "\noverfitting sweep (LiRA online and Shokri with the most shadows; raw / softmax; * beats chance)"
    );
    println!(
        "source epochs fraction trained members  gap      gap-attack  LiRA AUC         LiRA TPR@1%      LiRA TPR@0.1%    Shokri acc       loss AUC"
    );
    let mut points: Vec<&SweepPoint> = report.sweep.iter().collect();
    points.sort_by(|a, b| a.gap.total_cmp(&b.gap));
    for p in points {
        let pair = |f: &dyn Fn(&sweep::SweepAttacks) -> String| {
            let v: Vec<String> = p.attacks.iter().map(f).collect();
            format!("{:<16}", v.join(" / "))
        };
        let star = |b: Option<bool>| if b == Some(true) { "*" } else { "" };
        println!(
            "{:<6} {:>6} {:<8} {:>7} {:>7}  {:+.4}  {:.4}      {} {} {} {} {:.4}",
            p.source,
            p.epochs,
            p.fraction,
            p.train_records,
            p.members,
            p.gap,
            p.gap_attack_accuracy,
            pair(&|a| optional(a.lira_auc)),
            pair(&|a| format!(
                "{}{}",
                optional(a.lira_tpr_at_1pct_fpr),
                star(a.lira_beats_chance)
            )),
            pair(&|a| optional(a.lira_tpr_at_0_1pct_fpr)),
            pair(&|a| format!(
                "{}{}",
                optional(a.shokri_accuracy),
                star(a.shokri_beats_chance)
            )),
            p.loss_auc
        );
    }
    let gap = |g: Option<f64>| g.map_or_else(|| "none".to_owned(), |g| format!("{g:+.4}"));
    println!(
        "smallest gap at which an attack beats chance: {}; largest gap at which none does: {}",
        gap(report.sweep_onset_gap),
        gap(report.sweep_last_failing_gap)
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
