//! `heist bench ntt`: median time of heist's forward and inverse NTT over a grid of lengths
//! and two prime sizes (about 50 and 62 bits, the largest NTT-friendly primes below 2^50
//! and 2^62), with the kernel each plan chose.

use std::hint::black_box;
use std::path::PathBuf;

use anyhow::Context;
use heist_core::ntt::{Kernel, NttError, NttPath, NttPlan, MAX_N, MIN_N};
use heist_core::primes::primes_below;
use rand_core::{RngCore, SeedableRng};
use serde::Serialize;

use super::{median_ns, Budget};
use crate::cli::exit::{CliError, CliResult};

/// The prime sizes timed: the largest `p ≡ 1 mod 2N` below `2^bits`.
const PRIME_BITS: [u32; 2] = [50, 62];

/// Time the forward and inverse NTT.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  heist bench ntt --sizes 4096,8192 --path auto --json ntt.json")]
pub struct NttArgs {
    /// Transform lengths (powers of two in [16, 131072]).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1024,2048,4096,8192,16384,32768"
    )]
    sizes: Vec<usize>,
    /// Kernel choice: the fastest this CPU runs, the portable one, or the AVX2 one (an
    /// error on a CPU without AVX2).
    #[arg(long, value_enum, default_value = "auto")]
    path: PathArg,
    /// Also write the results as JSON to this file (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Milliseconds of timed batches per measurement.
    #[arg(long, default_value_t = 150)]
    ms: u64,
}

/// `--path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PathArg {
    /// The fastest kernel the CPU supports.
    Auto,
    /// The portable kernel (no intrinsics).
    Portable,
    /// The AVX2 kernel, even where an AVX-512 one is faster.
    Avx2,
}

impl PathArg {
    fn plan(self, n: usize, p: u64) -> Result<NttPlan, NttError> {
        match self {
            Self::Auto => NttPlan::with_path(n, p, NttPath::Auto),
            Self::Portable => NttPlan::with_path(n, p, NttPath::Portable),
            Self::Avx2 => NttPlan::with_kernel(n, p, Kernel::Avx2),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Portable => "portable",
            Self::Avx2 => "avx2",
        }
    }
}

/// One line of the results.
#[derive(Debug, Serialize)]
struct Row {
    n: usize,
    p: u64,
    prime_bits: u32,
    path: &'static str,
    kernel: &'static str,
    forward_ns: f64,
    inverse_ns: f64,
    /// Forward time per butterfly: `forward_ns / (N/2 · log2 N)`.
    ns_per_butterfly: f64,
    /// Inverse time per butterfly.
    inverse_ns_per_butterfly: f64,
}

/// The JSON document `--json` writes.
#[derive(Debug, Serialize)]
struct Report {
    benchmark: &'static str,
    batches: usize,
    ms_per_measurement: u64,
    results: Vec<Row>,
}

/// Runs `heist bench ntt`.
///
/// # Errors
/// Bad input (exit code 2) for a length outside `[16, 2^17]` or not a power of two; a
/// failure if the JSON file cannot be written.
pub fn run(args: NttArgs) -> CliResult {
    for &n in &args.sizes {
        if !n.is_power_of_two() || !(MIN_N..=MAX_N).contains(&n) {
            return Err(CliError::bad_input(anyhow::anyhow!(
                "--sizes: {n} is not a power of two in [{MIN_N}, {MAX_N}]"
            )));
        }
    }
    let budget = Budget {
        total: std::time::Duration::from_millis(args.ms),
        ..Budget::default()
    };
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0x006e_7474);
    let mut rows = Vec::new();
    println!(
        "{:>7} {:>4} {:>20} {:>12} {:>12} {:>9} {:>9}  kernel",
        "N", "bits", "p", "forward ns", "inverse ns", "fwd ns/bf", "inv ns/bf"
    );
    for &n in &args.sizes {
        for bits in PRIME_BITS {
            let p = primes_below(1 << bits, 2 * n as u64, 1, &[])
                .with_context(|| format!("no NTT prime below 2^{bits} for N = {n}"))?[0];
            let plan = args
                .path
                .plan(n, p)
                .with_context(|| format!("NTT plan for N = {n}, p = {p}"))?;
            let mut fwd: Vec<u64> = (0..n).map(|_| rng.next_u64() % p).collect();
            let mut inv = fwd.clone();
            // Forward outputs lie in [0, p) and inverse outputs too, so repeating each
            // transform in place keeps feeding it valid input.
            let medians = median_ns(
                &mut [&mut || plan.forward(black_box(&mut fwd)), &mut || {
                    plan.inverse(black_box(&mut inv))
                }],
                budget,
            );
            let butterflies = (n / 2) as f64 * n.trailing_zeros() as f64;
            let row = Row {
                n,
                p,
                prime_bits: bits,
                path: args.path.name(),
                kernel: plan.kernel().name(),
                forward_ns: medians[0],
                inverse_ns: medians[1],
                ns_per_butterfly: medians[0] / butterflies,
                inverse_ns_per_butterfly: medians[1] / butterflies,
            };
            println!(
                "{:>7} {:>4} {:>20} {:>12.0} {:>12.0} {:>9.3} {:>9.3}  {}",
                row.n,
                row.prime_bits,
                row.p,
                row.forward_ns,
                row.inverse_ns,
                row.ns_per_butterfly,
                row.inverse_ns_per_butterfly,
                row.kernel
            );
            rows.push(row);
        }
    }
    if let Some(path) = &args.json {
        let report = Report {
            benchmark: "ntt",
            batches: budget.batches,
            ms_per_measurement: args.ms,
            results: rows,
        };
        crate::cli::exit::write_json(path, &report)?;
    }
    Ok(())
}
