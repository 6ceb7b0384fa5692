//! `heist bench inference`: encrypted batch inference of the paper's MNIST network
//! (random Glorot weights, fixed seed) with CKKS or exact BFV, timed phase by phase for
//! one full batch.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, Context};
use heist_core::nn::{MnistWeights, Model, QuantConfig, QuantizedModel};
use heist_he::nn::{
    BfvClient, BfvPlan, BfvServer, Calibration, CkksClient, CkksPlan, CkksServer, PlanConfig,
};
use heist_he::params::{HeParams, SecurityLevel};
use rand_core::{RngCore, SeedableRng};
use serde::Serialize;

use crate::cli::exit::{CliError, CliResult};
use crate::executor::Rayon;

/// Time key generation, encryption, evaluation and decryption of one batch.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  heist bench inference --scheme ckks --threads 2 --json inference.json"
)]
pub struct InferenceArgs {
    /// The scheme.
    #[arg(long, value_enum, default_value = "ckks")]
    scheme: Scheme,
    /// Images in the batch (default: every slot, N/2 for CKKS, N for BFV).
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
    /// Exact integer arithmetic (BFV) on the 8-bit quantised model, CRT over plaintext
    /// primes.
    Bfv,
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
    /// CKKS: the tracked bound on `|decrypted score - f64 score|`, and the largest seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    predicted_score_error: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    measured_score_error: Option<f64>,
    /// BFV: the plaintext primes' sizes, the least noise budget the worst-case bounds
    /// guarantee on a score, the least measured with the secret key, and the number of
    /// scores differing from the integer model (zero when exact).
    #[serde(skip_serializing_if = "Option::is_none")]
    plain_modulus_bits: Option<Vec<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    noise_budget_bound_bits: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    noise_budget_measured_bits: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mismatched_scores: Option<usize>,
}

/// The timings of one run.
struct Phases {
    keygen_ms: f64,
    encrypt_ms: f64,
    evaluate_ms: f64,
    decrypt_ms: f64,
}

impl Report {
    /// The common fields; the scheme-specific ones are left empty.
    fn new(scheme: &'static str, he: &HeParams, batch: usize, threads: usize, p: &Phases) -> Self {
        let total = p.encrypt_ms + p.evaluate_ms + p.decrypt_ms;
        Self {
            scheme,
            n: he.n(),
            chain_bits: he.chain().iter().map(|q| 64 - q.leading_zeros()).collect(),
            special_bits: 64 - he.special().leading_zeros(),
            log_q: he.log_q(),
            security_bits: he.security().map_or(0, |s| s.bits()),
            batch,
            threads,
            keygen_ms: p.keygen_ms,
            encrypt_ms: p.encrypt_ms,
            evaluate_ms: p.evaluate_ms,
            decrypt_ms: p.decrypt_ms,
            ms_per_image: total / batch as f64,
            images_per_second: batch as f64 / (total / 1e3),
            peak_rss_mib: peak_rss_mib(),
            predicted_score_error: None,
            measured_score_error: None,
            plain_modulus_bits: None,
            noise_budget_bound_bits: None,
            noise_budget_measured_bits: None,
            mismatched_scores: None,
        }
    }
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

/// The batch size: `--batch` or every slot.
fn batch_size(arg: Option<usize>, slots: usize) -> Result<usize, CliError> {
    let batch = arg.unwrap_or(slots);
    if batch == 0 || batch > slots {
        return Err(CliError::bad_input(anyhow!(
            "--batch must be in [1, {slots}]"
        )));
    }
    Ok(batch)
}

/// Runs `heist bench inference`.
///
/// # Errors
/// Bad arguments; failures of planning or evaluation; a BFV score that differs from the
/// integer model.
pub fn run(args: InferenceArgs) -> CliResult {
    let threads = args.threads.unwrap_or_else(rayon::current_num_threads);
    let exec = Rayon::with_threads(threads).map_err(CliError::bad_input)?;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0x6865_6e6e);
    let model = random_mnist(&mut rng)?;
    let report = match args.scheme {
        Scheme::Ckks => ckks(&model, args.batch, threads, &exec, &mut rng)?,
        Scheme::Bfv => bfv(&model, args.batch, threads, &exec, &mut rng)?,
    };
    println!(
        "{:>6} {:>6} {:>7} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9}",
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
    );
    println!(
        "{:>6} {:>6} {:>7} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>9.4} {:>9.0} {:>9.0}",
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
    );
    if let (Some(bound), Some(seen)) = (report.predicted_score_error, report.measured_score_error) {
        println!("score error vs the f64 model: bound {bound:.2e}, largest seen {seen:.2e}");
    }
    if let (Some(bound), Some(seen), Some(bad)) = (
        report.noise_budget_bound_bits,
        report.noise_budget_measured_bits,
        report.mismatched_scores,
    ) {
        println!(
            "scores equal to the integer model: {} of {}; noise budget left: guaranteed {bound:.1} bits, measured {seen:.1} bits",
            report.batch * 10 - bad,
            report.batch * 10
        );
    }
    if let Some(path) = &args.json {
        crate::cli::exit::write_json(path, &report)?;
    }
    match report.mismatched_scores {
        Some(bad) if bad > 0 => {
            Err(anyhow!("{bad} BFV scores differ from the integer model").into())
        }
        _ => Ok(()),
    }
}

/// CKKS: the chain is sized for the magnitudes of 256 sample images of the batch's
/// distribution, times the service's [`CALIBRATION_MARGIN`]; the scores are compared with
/// the f64 model.
///
/// [`CALIBRATION_MARGIN`]: crate::service::ckks::CALIBRATION_MARGIN
fn ckks(
    model: &Model,
    batch: Option<usize>,
    threads: usize,
    exec: &Rayon,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> Result<Report, CliError> {
    let config = PlanConfig {
        calibration: Some(Calibration {
            inputs: (0..256).map(|_| random_image(rng)).collect(),
            margin: crate::service::ckks::CALIBRATION_MARGIN,
        }),
        ..PlanConfig::default()
    };
    let plan = CkksPlan::new(model.network(), &config).map_err(|e| anyhow!("{e}"))?;
    let he = plan.params().he().clone();
    let batch = batch_size(batch, plan.batch())?;
    let chain_bits: Vec<u32> = he.chain().iter().map(|q| 64 - q.leading_zeros()).collect();
    let special_bits = 64 - he.special().leading_zeros();
    eprintln!(
        "scheme ckks, N {}, chain bits {chain_bits:?} + special {special_bits} (log q {}), input scale 2^{}, batch {batch}, threads {threads}, predicted score error {:.3e}",
        he.n(),
        he.log_q(),
        plan.input_scale().log2(),
        plan.predicted_error()
    );
    let images: Vec<Vec<f64>> = (0..batch).map(|_| random_image(rng)).collect();
    let refs: Vec<&[f64]> = images.iter().map(Vec::as_slice).collect();

    let start = Instant::now();
    let client = CkksClient::new(plan.clone(), rng);
    let rlk = client.relin_key(rng);
    let server = CkksServer::new(plan, rlk).map_err(|e| anyhow!("{e}"))?;
    let keygen_ms = ms(start);
    eprintln!("keys generated in {keygen_ms:.1} ms");

    let start = Instant::now();
    let cts = client
        .encrypt_batch(&refs, rng, exec)
        .map_err(|e| anyhow!("{e}"))?;
    let encrypt_ms = ms(start);
    eprintln!("encrypted {} ciphertexts in {encrypt_ms:.1} ms", cts.len());

    let start = Instant::now();
    let scores = server.evaluate(cts, exec).map_err(|e| anyhow!("{e}"))?;
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
    let phases = Phases {
        keygen_ms,
        encrypt_ms,
        evaluate_ms,
        decrypt_ms,
    };
    let mut report = Report::new("ckks", &he, batch, threads, &phases);
    report.predicted_score_error = Some(client.error_bound(&scores));
    report.measured_score_error = Some(measured);
    Ok(report)
}

/// BFV: the model quantised to 8-bit weights and pixels `k` (scale 255), evaluated once
/// per plaintext prime (encrypt, evaluate, keep the scores), then decrypted and
/// recombined; every score is compared with the integer model.
fn bfv(
    model: &Model,
    batch: Option<usize>,
    threads: usize,
    exec: &Rayon,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> Result<Report, CliError> {
    let quant = QuantizedModel::new(model, &QuantConfig::pixels(8)).map_err(|e| anyhow!("{e}"))?;
    let plan = BfvPlan::new(&quant, SecurityLevel::Tc128).map_err(|e| anyhow!("{e}"))?;
    let he = plan.params()[0].he().clone();
    let batch = batch_size(batch, plan.batch())?;
    let plain_bits: Vec<u32> = plan
        .plain_moduli()
        .iter()
        .map(|t| 64 - t.leading_zeros())
        .collect();
    eprintln!(
        "scheme bfv, N {}, chain bits {:?} + special {} (log q {}), plaintext primes of {plain_bits:?} bits ({:.1} bits, model needs {:.1}), batch {batch}, threads {threads}, guaranteed noise budget {:.1} bits",
        he.n(),
        he.chain().iter().map(|q| 64 - q.leading_zeros()).collect::<Vec<_>>(),
        64 - he.special().leading_zeros(),
        he.log_q(),
        plan.plaintext_bits(),
        (plan.needed_modulus() as f64).log2(),
        plan.noise_budget(),
    );
    let images: Vec<Vec<i64>> = (0..batch)
        .map(|_| quant.quantize_input(&random_image(rng)))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("{e}"))?;
    let refs: Vec<&[i64]> = images.iter().map(Vec::as_slice).collect();

    let start = Instant::now();
    let client = BfvClient::new(plan.clone(), rng).map_err(|e| anyhow!("{e}"))?;
    let rlk = client.relin_key(rng);
    let server = BfvServer::new(plan.clone(), rlk).map_err(|e| anyhow!("{e}"))?;
    let keygen_ms = ms(start);
    eprintln!("keys generated in {keygen_ms:.1} ms");

    let (mut encrypt_ms, mut evaluate_ms) = (0.0, 0.0);
    let mut scores = Vec::with_capacity(plan.params().len());
    for prime in 0..plan.params().len() {
        let start = Instant::now();
        let cts = client
            .encrypt_batch(&refs, prime, rng, exec)
            .map_err(|e| anyhow!("{e}"))?;
        let e = ms(start);
        let start = Instant::now();
        scores.push(server.evaluate(cts, exec).map_err(|e| anyhow!("{e}"))?);
        let v = ms(start);
        eprintln!("prime {prime}: encrypted in {e:.1} ms, evaluated in {v:.1} ms");
        encrypt_ms += e;
        evaluate_ms += v;
    }

    let start = Instant::now();
    let decrypted = client
        .decrypt_scores(&scores, batch)
        .map_err(|e| anyhow!("{e}"))?;
    let decrypt_ms = ms(start);
    eprintln!("decrypted and recombined in {decrypt_ms:.1} ms");

    let mut mismatched = 0;
    for (image, got) in images.iter().zip(&decrypted) {
        let want = quant.infer(image).map_err(|e| anyhow!("{e}"))?;
        mismatched += got.iter().zip(&want).filter(|(g, w)| g != w).count();
    }
    let mut bound = f64::INFINITY;
    let mut measured = f64::INFINITY;
    for ct in scores.iter().flatten() {
        bound = bound.min(ct.noise_budget_estimate());
        measured = measured.min(client.noise_budget(ct).map_err(|e| anyhow!("{e}"))?);
    }
    let phases = Phases {
        keygen_ms,
        encrypt_ms,
        evaluate_ms,
        decrypt_ms,
    };
    let mut report = Report::new("bfv", &he, batch, threads, &phases);
    report.plain_modulus_bits = Some(plain_bits);
    report.noise_budget_bound_bits = Some(bound);
    report.noise_budget_measured_bits = Some(measured);
    report.mismatched_scores = Some(mismatched);
    Ok(report)
}
