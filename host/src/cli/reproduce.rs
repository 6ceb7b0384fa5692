//! `heist reproduce`: every stage of the plan as a `heist` process of its own, then
//! `results.json` and `report.md`.
//!
//! Each stage runs as a child process of this binary with its own log, so a stage can be
//! rerun or handed to a job runner exactly as it ran here, and Ctrl-C stops the current
//! stage while the finished ones stay on disk: the next run resumes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::progress::Progress;
use serde_json::json;

use super::exit::{CliError, CliResult};
use crate::data::Dataset;
use crate::reproduce::report::{self, Timing};
use crate::reproduce::{plan, Config, Stage};
use crate::service::Scheme;

/// Reproduce the paper's tables and figures, and the sections beyond it, through the
/// encrypted service.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    heist reproduce --quick\n  \
    heist reproduce --data-dir DATA --out reproduction --threads 2\n\n\
    Writes OUT/report.md, OUT/results.json, OUT/figures/ and OUT/stages/ (each stage's JSON) \
    and OUT/logs/ (each stage's output). A rerun reuses every finished stage whose command \
    is unchanged.")]
pub struct ReproduceArgs {
    /// Small settings that finish in minutes: a smoke run of the whole pipeline, not a
    /// reproduction of the paper's figures.
    #[arg(long)]
    quick: bool,
    /// Data root holding `mnist/` and `fashion-mnist/` (default: $HEIST_DATA_DIR, then
    /// ./data, then /usr/share/datasets, then the embedded subset).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Use the small subset embedded in the binary, whatever is on disk.
    #[arg(long, conflicts_with = "data_dir")]
    embedded: bool,
    /// Data sets to run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "mnist,fashion"
    )]
    datasets: Vec<Dataset>,
    /// Output directory.
    #[arg(long, value_name = "DIR", default_value = "reproduction")]
    out: PathBuf,
    /// Stages run side by side. A stage that reads a data set's cached model starts after
    /// the first stage of that data set, which trains the model when the cache lacks it.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Worker threads of every stage (default: the cores divided among the jobs).
    #[arg(long)]
    threads: Option<usize>,
    /// Seed of every model, draw and key.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The scheme of every target query.
    #[arg(long, value_enum, default_value = "ckks")]
    scheme: Scheme,
    /// Directory of trained models shared with the other commands.
    #[arg(long, value_name = "DIR", default_value = ".heist-cache")]
    cache: PathBuf,
    /// Run every stage again, even those finished earlier.
    #[arg(long, conflicts_with = "report_only")]
    force: bool,
    /// Run no stage: write report.md and results.json from the stages finished so far
    /// (the report names those missing).
    #[arg(long)]
    report_only: bool,
}

/// Runs `heist reproduce`.
///
/// # Errors
/// Bad input (exit 2) for an unusable scheme or thread count; failure (exit 1) when a stage
/// fails (its log's last lines are printed) or the report cannot be written.
pub fn run(args: ReproduceArgs) -> CliResult {
    if args.scheme == Scheme::Plain {
        return Err(CliError::bad_input(anyhow::anyhow!(
            "--scheme plain: reproduce sends every target query through encryption (ckks or bfv)"
        )));
    }
    if args.threads == Some(0) {
        return Err(CliError::bad_input(anyhow::anyhow!("--threads 0")));
    }
    if args.jobs == 0 {
        return Err(CliError::bad_input(anyhow::anyhow!("--jobs 0")));
    }
    // Each of the jobs gets its share of the cores unless --threads says otherwise.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = args
        .threads
        .or_else(|| (args.jobs > 1).then(|| (cores / args.jobs).max(1)));
    let config = Config {
        quick: args.quick,
        data_dir: args.data_dir.clone(),
        embedded: args.embedded,
        datasets: args.datasets.clone(),
        seed: args.seed,
        scheme: args.scheme,
        cache: args.cache.clone(),
    };
    let out = &args.out;
    for dir in ["stages", "logs", "figures"] {
        std::fs::create_dir_all(out.join(dir))
            .with_context(|| format!("creating {}", out.join(dir).display()))?;
    }
    let stages = plan(&config);
    let exe = std::env::current_exe().context("locating the heist binary")?;
    let progress = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let estimate: f64 = stages.iter().map(|s| s.estimate_seconds).sum();
    let overall = progress.add(ProgressBar::new(estimate.ceil() as u64));
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix:>12} [{bar:30}] {elapsed_precise} elapsed, about {eta} left  {msg}",
    ) {
        overall.set_style(style.progress_chars("=> "));
    }
    overall.set_prefix("reproduce");
    let started = Instant::now();
    let timings = if args.report_only {
        Vec::new()
    } else {
        let board = Board::new(&stages);
        std::thread::scope(|scope| {
            for _ in 0..args.jobs.min(stages.len()) {
                scope.spawn(|| {
                    while let Some(k) = board.next() {
                        let stage = &stages[k];
                        overall.set_message(format!(
                            "stage {}/{}: {}",
                            k + 1,
                            stages.len(),
                            stage.id
                        ));
                        let done = if !args.force && stage.is_done(out) {
                            Progress::println_above(&progress, &format!("  reused   {}", stage.id));
                            Ok(Timing {
                                stage: stage.id.clone(),
                                seconds: 0.0,
                                reused: true,
                            })
                        } else {
                            run_stage(&exe, stage, out, threads, &progress).map(|seconds| {
                                Progress::println_above(
                                    &progress,
                                    &format!("  finished {} in {seconds:.1} s", stage.id),
                                );
                                Timing {
                                    stage: stage.id.clone(),
                                    seconds,
                                    reused: false,
                                }
                            })
                        };
                        overall.inc(stage.estimate_seconds.ceil() as u64);
                        board.finish(k, done);
                    }
                });
            }
        });
        board.into_timings()?
    };
    overall.finish_and_clear();
    let wall = started.elapsed().as_secs_f64();
    let results = report::gather(
        &config,
        &stages,
        out,
        &timings,
        wall,
        environment(threads, args.jobs),
    )
    .map_err(|e| CliError::Failure(e.into()))?;
    write_atomic(
        &out.join("results.json"),
        &(serde_json::to_string_pretty(&results).map_err(anyhow::Error::from)? + "\n"),
    )?;
    write_atomic(&out.join("report.md"), &report::markdown(&results))?;
    let ran = timings.iter().fold(0.0, |sum, t| sum + t.seconds);
    println!(
        "{} stages ({} reused) in {wall:.1} s wall, {ran:.1} s summed over the stages; data: {}",
        stages.len(),
        timings.iter().filter(|t| t.reused).count(),
        results["data_source"].as_str().unwrap_or("?")
    );
    println!("report:  {}", out.join("report.md").display());
    println!("results: {}", out.join("results.json").display());
    Ok(())
}

/// Which stages are taken and how the finished ones went, shared by the jobs.
struct Board {
    /// For each stage, the index of its `after` stage.
    after: Vec<Option<usize>>,
    state: Mutex<BoardState>,
    changed: Condvar,
}

#[derive(Default)]
struct BoardState {
    taken: Vec<bool>,
    done: Vec<Option<Timing>>,
    failure: Option<CliError>,
}

impl Board {
    fn new(stages: &[Stage]) -> Self {
        Self {
            after: stages
                .iter()
                .map(|stage| {
                    let after = stage.after.as_ref()?;
                    stages.iter().position(|s| &s.id == after)
                })
                .collect(),
            state: Mutex::new(BoardState {
                taken: vec![false; stages.len()],
                done: vec![None; stages.len()],
                failure: None,
            }),
            changed: Condvar::new(),
        }
    }

    /// Takes the first stage in plan order that is not taken and whose `after` stage has
    /// finished, waiting while such a stage may still come; `None` once every stage is
    /// taken or one has failed.
    fn next(&self) -> Option<usize> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if state.failure.is_some() || state.taken.iter().all(|&t| t) {
                return None;
            }
            let ready = (0..self.after.len()).find(|&k| {
                !state.taken[k] && self.after[k].is_none_or(|a| state.done[a].is_some())
            });
            if let Some(k) = ready {
                state.taken[k] = true;
                return Some(k);
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Records how stage `k` went and wakes the jobs waiting for it.
    fn finish(&self, k: usize, outcome: Result<Timing, CliError>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Ok(timing) => state.done[k] = Some(timing),
            Err(e) => {
                state.failure.get_or_insert(e);
            }
        }
        self.changed.notify_all();
    }

    /// The timings in plan order, or the first failure.
    fn into_timings(self) -> Result<Vec<Timing>, CliError> {
        let state = self
            .state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        match state.failure {
            Some(e) => Err(e),
            None => Ok(state.done.into_iter().flatten().collect()),
        }
    }
}

/// Runs one stage as a child process with its output in its log; returns its wall time.
fn run_stage(
    exe: &Path,
    stage: &Stage,
    out: &Path,
    threads: Option<usize>,
    progress: &MultiProgress,
) -> Result<f64, CliError> {
    let partial = stage.json_path(out).with_extension("json.partial");
    let log_path = stage.log_path(out);
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let log_err = log.try_clone().context("duplicating the log handle")?;
    let mut command = Command::new(exe);
    command
        .args(stage.command_line(out, &partial))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    if let Some(t) = threads {
        command.env("RAYON_NUM_THREADS", t.to_string());
    }
    let spinner = progress.add(ProgressBar::new_spinner());
    if let Ok(style) = ProgressStyle::with_template("{prefix:>12} {spinner} {elapsed} {msg}") {
        spinner.set_style(style);
    }
    spinner.set_prefix("running");
    let message = format!(
        "{} (about {:.0} s; log {})",
        stage.id,
        stage.estimate_seconds,
        log_path.display()
    );
    Progress::plain_line(&format!("  running  {message}"));
    spinner.set_message(message);
    spinner.enable_steady_tick(Duration::from_millis(250));
    let start = Instant::now();
    let status = command
        .status()
        .with_context(|| format!("starting stage {}", stage.id));
    spinner.finish_and_clear();
    let status = status?;
    let seconds = start.elapsed().as_secs_f64();
    if !status.success() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        for line in tail.iter().rev() {
            eprintln!("  | {line}");
        }
        return Err(CliError::Failure(anyhow::anyhow!(
            "stage {} failed ({status}); command: {}; log: {}",
            stage.id,
            report::command_text(stage),
            log_path.display()
        )));
    }
    stage
        .commit(out, &partial)
        .with_context(|| format!("recording stage {}", stage.id))?;
    Ok(seconds)
}

/// Writes `text` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, text: &str) -> CliResult {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The machine and build the results came from: CPU, cores, threads, NTT kernels.
fn environment(threads: Option<usize>, jobs: usize) -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = |bits: u32| {
        heist_core::primes::ntt_primes(bits, 2 * 8192, 1, &[])
            .ok()
            .and_then(|p| p.first().copied())
            .and_then(|p| heist_core::ntt::NttPlan::new(8192, p).ok())
            .map_or_else(
                || "unknown".to_string(),
                |plan| plan.kernel().name().to_string(),
            )
    };
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map_or(0, usize::from),
        "stages side by side": jobs,
        "threads per stage": threads.map_or_else(|| "all cores".to_string(), |t| t.to_string()),
        "NTT kernel, primes < 2^50": kernel(50),
        "NTT kernel, primes < 2^60": kernel(60),
        "heist version": env!("CARGO_PKG_VERSION"),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    })
}
