//! `heist bench`: heist's own timings, measured without criterion (repeated batches,
//! medians), printed as a table and optionally written as JSON.
//!
//! Each kind of benchmark is one variant of [`BenchCommand`] with its own module; the
//! shared timing loop is [`median_ns`].

use std::time::{Duration, Instant};

use crate::cli::exit::CliResult;

pub mod he;
pub mod inference;
pub mod ntt;

/// Time heist's building blocks.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    heist bench ntt\n  \
    heist bench ntt --sizes 4096,8192 --path portable --json ntt.json")]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

/// The benchmarks `heist bench` runs.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Forward and inverse negacyclic NTT: median ns per transform and per butterfly.
    Ntt(ntt::NttArgs),
    /// Every homomorphic operation at the default parameter sets: median ms.
    He(he::HeArgs),
    /// Encrypted batch inference of the MNIST network: phase times, ms per image, peak memory.
    Inference(inference::InferenceArgs),
}

/// Runs `heist bench <command>`.
///
/// # Errors
/// As the chosen benchmark.
pub fn run(args: BenchArgs) -> CliResult {
    match args.command {
        BenchCommand::Ntt(a) => ntt::run(a),
        BenchCommand::Inference(a) => inference::run(a),
        BenchCommand::He(a) => he::run(a),
    }
}

/// How long and how often one measurement samples.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Total time of the timed batches of one measurement.
    pub total: Duration,
    /// Number of batches (the median is taken over their per-call means).
    pub batches: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            total: Duration::from_millis(150),
            batches: 15,
        }
    }
}

/// Median over batches of the mean time per call, in nanoseconds, for each of several
/// operations timed in alternation (batch 1 of every operation, then batch 2, …), so that a
/// burst of noise from other processes lands on every operation alike.
///
/// Each operation is warmed up first; the warm-up also sizes its batches so that all of
/// its batches together take about `budget.total`.
pub fn median_ns(ops: &mut [&mut dyn FnMut()], budget: Budget) -> Vec<f64> {
    let batches = budget.batches.max(1);
    let per_batch = budget.total / batches as u32;
    let sizes: Vec<u64> = ops
        .iter_mut()
        .map(|op| {
            let mut calls = 0u64;
            let start = Instant::now();
            while start.elapsed() < per_batch || calls == 0 {
                op();
                calls += 1;
            }
            calls.max(1)
        })
        .collect();
    let mut samples = vec![Vec::with_capacity(batches); ops.len()];
    for _ in 0..batches {
        for ((op, &calls), out) in ops.iter_mut().zip(&sizes).zip(samples.iter_mut()) {
            let start = Instant::now();
            for _ in 0..calls {
                op();
            }
            out.push(start.elapsed().as_nanos() as f64 / calls as f64);
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            let mid = s.len() / 2;
            if s.len() % 2 == 1 {
                s[mid]
            } else {
                (s[mid - 1] + s[mid]) / 2.0
            }
        })
        .collect()
}
