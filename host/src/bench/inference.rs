//! `heist bench inference`: encrypted batch inference of the paper's MNIST network
//! (random Glorot weights, fixed seed) with CKKS, timed phase by phase for one full batch.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, Context};
use heist_core::nn::{MnistWeights, Model};
use heist_he::nn::{Calibration, CkksClient, CkksPlan, CkksServer, PlanConfig};
use rand_core::{RngCore, SeedableRng};
use serde::Serialize;

use crate::exit::{CliError, CliResult};
use crate::henn::Rayon;

/// Time key generation, encryption, evaluation and decryption of one batch.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  heist bench inference --scheme ckks --threads 2 --json inference.json"
)]
pub struct InferenceArgs {
    /// The scheme.
    #[arg(long, value_enum, default_value = "ckks")]
    scheme: Scheme,
    /// Images in the batch (default: every slot, N/2).
    #[arg(long)]
    batch: Option<usize>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Also write the results as JSON to this file (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

/// `--scheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scheme {
    /// Approximate arithmetic (CKKS).
    Ckks,
}

/// The JSON document `--json` writes.
#[derive(Debug, Serialize)]
struct Report {
    scheme: &'static str,
    n: usize,
    chain_bits: Vec<u32>,
    special_bits: u32,
    log_q: u32,
    security_bits: u32,
    batch: usize,
    threads: usize,
    keygen_ms: f64,
    encrypt_ms: f64,
    evaluate_ms: f64,
    decrypt_ms: f64,
    ms_per_image: f64,
    images_per_second: f64,
    peak_rss_mib: f64,
    predicted_score_error: f64,
    measured_score_error: f64,
}

/// Uniform in `[-a, a)`.
fn glorot(rng: &mut impl RngCore, n: usize, fan_in: usize, fan_out: usize) -> Vec<f64> {
    let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
    (0..n)
        .map(|_| a * (2.0 * ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) - 1.0))
        .collect()
}

/// The paper's MNIST architecture with Glorot weights and zero biases.
fn random_mnist(rng: &mut impl RngCore) -> anyhow::Result<Model> {
    Model::mnist(MnistWeights {
        conv_weight: glorot(rng, 125, 25, 125),
        conv_bias: vec![0.0; 5],
        dense1_weight: glorot(rng, 98_000, 980, 100),
        dense1_bias: vec![0.0; 100],
        dense2_weight: glorot(rng, 1_000, 100, 10),
        dense2_bias: vec![0.0; 10],
    })
    .map_err(|e| anyhow!("{e}"))
}

/// Random pixels `k / 255`.
fn random_image(rng: &mut impl RngCore) -> Vec<f64> {
    (0..784)
        .map(|_| f64::from(rng.next_u32() % 256) / 255.0)
        .collect()
}

/// The peak resident set size in MiB (`VmHWM` of /proc/self/status), 0 where unavailable.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// Runs `heist bench inference`.
///
/// # Errors
/// Bad arguments; failures of planning or evaluation.
pub fn run(args: InferenceArgs) -> CliResult {
    let threads = args.threads.unwrap_or_else(rayon::current_num_threads);
    let exec = Rayon::with_threads(threads).map_err(CliError::bad_input)?;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0x6865_6e6e);
    let model = random_mnist(&mut rng)?;
    // The chain is sized for the magnitudes of 256 sample images of the same
    // distribution as the batch, times 4.
    let config = PlanConfig {
        calibration: Some(Calibration {
            inputs: (0..256).map(|_| random_image(&mut rng)).collect(),
            margin: 4.0,
        }),
        ..PlanConfig::default()
    };
    let plan = CkksPlan::new(model.network(), &config).map_err(|e| anyhow!("{e}"))?;
    let he = plan.params().he().clone();
    let batch = args.batch.unwrap_or(plan.batch());
    if batch == 0 || batch > plan.batch() {
        return Err(CliError::bad_input(anyhow!(
            "--batch must be in [1, {}]",
            plan.batch()
        )));
    }
    let chain_bits: Vec<u32> = he.chain().iter().map(|q| 64 - q.leading_zeros()).collect();
    let special_bits = 64 - he.special().leading_zeros();
    eprintln!(
        "scheme ckks, N {}, chain bits {chain_bits:?} + special {special_bits} (log q {}), input scale 2^{}, batch {batch}, threads {threads}, predicted score error {:.3e}",
        he.n(),
        he.log_q(),
        plan.input_scale().log2(),
        plan.predicted_error()
    );
    let images: Vec<Vec<f64>> = (0..batch).map(|_| random_image(&mut rng)).collect();
    let refs: Vec<&[f64]> = images.iter().map(Vec::as_slice).collect();

    let start = Instant::now();
    let client = CkksClient::new(plan.clone(), &mut rng);
    let rlk = client.relin_key(&mut rng);
    let server = CkksServer::new(plan, rlk).map_err(|e| anyhow!("{e}"))?;
    let keygen_ms = ms(start);
    eprintln!("keys generated in {keygen_ms:.1} ms");

    let start = Instant::now();
    let cts = client
        .encrypt_batch(&refs, &mut rng, &exec)
        .map_err(|e| anyhow!("{e}"))?;
    let encrypt_ms = ms(start);
    eprintln!("encrypted {} ciphertexts in {encrypt_ms:.1} ms", cts.len());

    let start = Instant::now();
    let scores = server.evaluate(cts, &exec).map_err(|e| anyhow!("{e}"))?;
    let evaluate_ms = ms(start);
    eprintln!("evaluated in {evaluate_ms:.1} ms");

    let start = Instant::now();
    let decrypted = client
        .decrypt_scores(&scores, batch)
        .map_err(|e| anyhow!("{e}"))?;
    let decrypt_ms = ms(start);
    eprintln!("decrypted in {decrypt_ms:.1} ms");

    let mut measured = 0.0f64;
    for (image, got) in images.iter().zip(&decrypted) {
        let want = model.infer(image).context("plaintext inference")?;
        for (g, w) in got.iter().zip(&want) {
            measured = measured.max((g - w).abs());
        }
    }
    let total = encrypt_ms + evaluate_ms + decrypt_ms;
    let report = Report {
        scheme: "ckks",
        n: he.n(),
        chain_bits,
        special_bits,
        log_q: he.log_q(),
        security_bits: he.security().map_or(0, |s| s.bits()),
        batch,
        threads,
        keygen_ms,
        encrypt_ms,
        evaluate_ms,
        decrypt_ms,
        ms_per_image: total / batch as f64,
        images_per_second: batch as f64 / (total / 1e3),
        peak_rss_mib: peak_rss_mib(),
        predicted_score_error: client.error_bound(&scores),
        measured_score_error: measured,
    };
    println!(
        "{:>6} {:>6} {:>7} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "scheme",
        "N",
        "threads",
        "keygen ms",
        "encrypt ms",
        "eval ms",
        "decrypt ms",
        "ms/image",
        "images/s",
        "peak MiB",
        "err bound",
        "err meas."
    );
    println!(
        "{:>6} {:>6} {:>7} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>9.4} {:>9.0} {:>9.0} {:>10.2e} {:>10.2e}",
        report.scheme,
        report.n,
        report.threads,
        report.keygen_ms,
        report.encrypt_ms,
        report.evaluate_ms,
        report.decrypt_ms,
        report.ms_per_image,
        report.images_per_second,
        report.peak_rss_mib,
        report.predicted_score_error,
        report.measured_score_error
    );
    if let Some(path) = &args.json {
        crate::exit::write_json(path, &report)?;
    }
    Ok(())
}
