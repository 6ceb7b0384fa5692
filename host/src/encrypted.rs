//! Accuracy through real encrypted inference: `heist eval --encrypted` and `heist demo`.
//!
//! Both run the three-party service in this process ([`InProcessService`]): the trusted
//! party encrypts the test images (one per slot), the compute server evaluates the model
//! on the ciphertexts with the evaluation key only, the trusted party decrypts the scores.
//! The same images also go through the plaintext model; the report gives both accuracies
//! and their agreement (the fraction of images with the same predicted class). BFV
//! evaluates the 8-bit quantised integer model exactly, so for BFV the report also compares
//! with that model in plaintext: its accuracy, and the fraction of images whose scores
//! through the service are identical to its dequantised scores (expected: all of them).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, Context};
use sha2::{Digest, Sha256};

use crate::data::{DataOptions, Images, CLASSES, IMAGE_PIXELS};
use crate::exit::{write_json, CliError, CliResult};
use crate::model::eval::{evaluate, Evaluation, Plain, Scorer};
use crate::model::{fraction, Architecture, Model};
use crate::oracle::{Image, Oracle};
use crate::service::{
    bfv_plan, ckks_plan, BatchConfig, BfvCodec, BfvEvaluator, CkksCodec, CkksEvaluator,
    InProcessClient, InProcessService, PlaintextCodec, PlaintextEvaluator, Scheme,
};
use crate::train::optim::OptimizerKind;
use crate::train::{train, TrainConfig};
use heist_core::nn::QuantizedModel;

/// Training images the CKKS chain is calibrated on (the first ones of the training set).
pub const CALIBRATION_IMAGES: usize = 256;

/// Scores from an in-process service: every image goes through the service's codec and
/// evaluator (encrypted for [`Scheme::Ckks`] and [`Scheme::Bfv`]).
#[derive(Debug)]
pub struct ServiceScorer {
    client: InProcessClient,
    batch: usize,
}

impl Scorer for ServiceScorer {
    fn label(&self) -> &'static str {
        "encrypted"
    }

    /// Submits the images in queries of at most one batch each.
    fn scores(&mut self, images: &[f32]) -> anyhow::Result<Vec<f32>> {
        let mut out = Vec::with_capacity(images.len() / IMAGE_PIXELS * CLASSES);
        for chunk in images.chunks(self.batch * IMAGE_PIXELS) {
            let query = chunk
                .chunks(IMAGE_PIXELS)
                .map(Image::new)
                .collect::<Result<Vec<_>, _>>()?;
            for scores in self.client.query(&query)? {
                out.extend_from_slice(&scores);
            }
        }
        Ok(out)
    }
}

/// Plaintext inference of the quantised integer model ([`QuantizedModel::infer`],
/// dequantised): the scores the BFV service reproduces exactly.
#[derive(Debug, Clone, Copy)]
pub struct Integer<'a>(pub &'a QuantizedModel);

impl Scorer for Integer<'_> {
    fn label(&self) -> &'static str {
        "integer"
    }

    fn scores(&mut self, images: &[f32]) -> anyhow::Result<Vec<f32>> {
        let mut out = Vec::with_capacity(images.len() / IMAGE_PIXELS * CLASSES);
        for image in images.chunks(IMAGE_PIXELS) {
            let pixels: Vec<f64> = image.iter().map(|&p| f64::from(p)).collect();
            let scores = self
                .0
                .infer_real(&pixels)
                .map_err(|e| anyhow!("integer model: {e}"))?;
            // As the BFV codec hands them to the service.
            out.extend(scores.iter().map(|&s| s as f32));
        }
        Ok(out)
    }
}

/// A scorer that keeps a copy of every score it returns.
struct Recorded<'a> {
    inner: &'a mut dyn Scorer,
    scores: Vec<f32>,
}

impl Scorer for Recorded<'_> {
    fn label(&self) -> &'static str {
        self.inner.label()
    }

    fn scores(&mut self, images: &[f32]) -> anyhow::Result<Vec<f32>> {
        let scores = self.inner.scores(images)?;
        self.scores.extend_from_slice(&scores);
        Ok(scores)
    }
}

/// The fraction of images whose score vectors are bit for bit identical (1 for no images).
fn identical_scores(a: &[f32], b: &[f32]) -> f64 {
    let images = a.len().min(b.len()) / CLASSES;
    if images == 0 {
        return 1.0;
    }
    let same = a
        .chunks_exact(CLASSES)
        .zip(b.chunks_exact(CLASSES))
        .filter(|(x, y)| x.iter().zip(*y).all(|(p, q)| p.to_bits() == q.to_bits()))
        .count();
    fraction(same, images)
}

/// An in-process service for `model` speaking `scheme`, and what it runs on.
pub struct Service {
    /// The scheme between trusted party and compute server.
    pub scheme: Scheme,
    /// The running service.
    pub service: InProcessService,
    /// Images per batch.
    pub slots: usize,
    /// Ring degree (0 for [`Scheme::Plain`]).
    pub ring_degree: usize,
    /// Seconds spent compiling the plan and generating keys.
    pub setup_seconds: f64,
    /// The integer model the service computes exactly ([`Scheme::Bfv`] only).
    pub integer: Option<QuantizedModel>,
}

/// The images of `images` as [`Image`]s.
fn to_images(images: &Images) -> anyhow::Result<Vec<Image>> {
    crate::model::scaled(images)
        .chunks(IMAGE_PIXELS)
        .map(|p| Image::new(p).map_err(anyhow::Error::from))
        .collect()
}

/// Starts an in-process service for `model` with `scheme`. For CKKS the plan is calibrated
/// on the first [`CALIBRATION_IMAGES`] images of `train`; for BFV it is compiled from the
/// 8-bit quantised model ([`bfv_plan`]). The keys are drawn from the OS.
///
/// # Errors
/// Planning or start-up failures.
pub fn start_service(model: &Model, train: &Images, scheme: Scheme) -> anyhow::Result<Service> {
    let start = Instant::now();
    let config = BatchConfig::default();
    match scheme {
        Scheme::Ckks => {
            let calibration = to_images(&train.truncated(CALIBRATION_IMAGES))?;
            let plan = ckks_plan(model, &calibration)?;
            let ring_degree = plan.params().he().n();
            let codec = CkksCodec::new(plan.clone(), &mut rand_core::OsRng)?;
            let slots = plan.batch();
            let evaluator = CkksEvaluator::new(plan)?;
            let service = InProcessService::start(codec, evaluator, &config)?;
            Ok(Service {
                scheme,
                service,
                slots,
                ring_degree,
                setup_seconds: start.elapsed().as_secs_f64(),
                integer: None,
            })
        }
        Scheme::Bfv => {
            let (quant, plan) = bfv_plan(model)?;
            let (ring_degree, slots) = (plan.n(), plan.batch());
            let codec = BfvCodec::new(quant.clone(), plan.clone(), &mut rand_core::OsRng)?;
            let evaluator = BfvEvaluator::new(plan)?;
            let service = InProcessService::start(codec, evaluator, &config)?;
            Ok(Service {
                scheme,
                service,
                slots,
                ring_degree,
                setup_seconds: start.elapsed().as_secs_f64(),
                integer: Some(quant),
            })
        }
        Scheme::Plain => {
            let slots = 4096;
            let service = InProcessService::start(
                PlaintextCodec::new(slots)?,
                PlaintextEvaluator::new(model.clone()),
                &config,
            )?;
            Ok(Service {
                scheme,
                service,
                slots,
                ring_degree: 0,
                setup_seconds: start.elapsed().as_secs_f64(),
                integer: None,
            })
        }
    }
}

/// Where `heist serve --scheme ckks` takes its calibration images from: both roles must
/// give the same data set (the first [`CALIBRATION_IMAGES`] training images) to compile
/// the same plan. `--scheme bfv` reads no data: its plan depends on the model only.
#[derive(Debug, clap::Args)]
pub struct PlanOptions {
    #[command(flatten)]
    data: DataOptions,
}

impl PlanOptions {
    /// The CKKS plan of `model`, calibrated on the first [`CALIBRATION_IMAGES`] training
    /// images of the data set.
    ///
    /// # Errors
    /// Bad input for unusable data; failure when no plan fits.
    pub fn ckks_plan(&self, model: &Model) -> Result<heist_he::nn::CkksPlan, CliError> {
        let data = self.data.load().map_err(CliError::bad_input)?;
        let calibration = to_images(&data.train.truncated(CALIBRATION_IMAGES))?;
        Ok(ckks_plan(model, &calibration)?)
    }
}

/// Plaintext and service results on the same images.
#[derive(Debug, serde::Serialize)]
pub struct Comparison {
    /// The scheme between trusted party and compute server.
    pub scheme: String,
    /// Images evaluated.
    pub images: usize,
    /// Ring degree of the scheme (0 for plain).
    pub ring_degree: usize,
    /// Images per encrypted batch.
    pub slots: usize,
    /// Plaintext accuracy.
    pub plain_accuracy: f64,
    /// Accuracy through the service.
    pub encrypted_accuracy: f64,
    /// Fraction of images with the same predicted class both ways.
    pub agreement: f64,
    /// Seconds of plaintext inference.
    pub plain_seconds: f64,
    /// Seconds of plan compilation and key generation.
    pub setup_seconds: f64,
    /// Seconds of encrypted inference (encryption, evaluation, decryption).
    pub encrypted_seconds: f64,
    /// The plaintext integer model the scheme computes exactly ([`Scheme::Bfv`] only).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub integer: Option<IntegerComparison>,
}

/// The service against the plaintext integer model it computes exactly.
#[derive(Debug, serde::Serialize)]
pub struct IntegerComparison {
    /// Accuracy of the plaintext integer model.
    pub integer_accuracy: f64,
    /// Fraction of images with the same predicted class through the service and the
    /// plaintext integer model.
    pub integer_agreement: f64,
    /// Fraction of images whose scores through the service are bit for bit those of the
    /// plaintext integer model (dequantised, as the `f32` the service answers).
    pub integer_scores_identical: f64,
    /// Seconds of plaintext integer inference.
    pub integer_seconds: f64,
}

/// Classifies `test` with `model` in plaintext and through an in-process service speaking
/// `scheme`, and compares.
///
/// # Errors
/// As [`start_service`]; failures of the service.
pub fn compare(
    model: &Model,
    train: &Images,
    test: &Images,
    scheme: Scheme,
) -> anyhow::Result<Comparison> {
    let service = start_service(model, train, scheme)?;
    eprintln!(
        "{scheme} service ready in {:.1} s (ring degree {}, {} slots); classifying {} images",
        service.setup_seconds,
        service.ring_degree,
        service.slots,
        test.len()
    );
    compare_with(model, &service, test)
}

/// Classifies `test` with `model` in plaintext and through the running `service` (of
/// `model`), and compares; with [`Service::integer`], also with the plaintext integer
/// model.
///
/// # Errors
/// Failures of the service.
pub fn compare_with(model: &Model, service: &Service, test: &Images) -> anyhow::Result<Comparison> {
    let plain = evaluate(&mut Plain(model), test)?;
    let mut scorer = ServiceScorer {
        client: service.service.client(),
        batch: service.slots,
    };
    let mut recorded = Recorded {
        inner: &mut scorer,
        scores: Vec::new(),
    };
    let encrypted = evaluate(&mut recorded, test)?;
    let integer = match &service.integer {
        Some(quant) => {
            let mut integer = Recorded {
                inner: &mut Integer(quant),
                scores: Vec::new(),
            };
            let plain = evaluate(&mut integer, test)?;
            Some(IntegerComparison {
                integer_accuracy: plain.accuracy,
                integer_agreement: agreement(&plain, &encrypted),
                integer_scores_identical: identical_scores(&integer.scores, &recorded.scores),
                integer_seconds: plain.seconds,
            })
        }
        None => None,
    };
    Ok(Comparison {
        scheme: service.scheme.to_string(),
        images: test.len(),
        ring_degree: service.ring_degree,
        slots: service.slots,
        plain_accuracy: plain.accuracy,
        encrypted_accuracy: encrypted.accuracy,
        agreement: agreement(&plain, &encrypted),
        plain_seconds: plain.seconds,
        setup_seconds: service.setup_seconds,
        encrypted_seconds: encrypted.seconds,
        integer,
    })
}

/// The fraction of images both evaluations assign the same class (1 for no images).
pub fn agreement(a: &Evaluation, b: &Evaluation) -> f64 {
    let same = a
        .predictions
        .iter()
        .zip(&b.predictions)
        .filter(|(x, y)| x == y)
        .count();
    if a.predictions.is_empty() {
        1.0
    } else {
        fraction(same, a.predictions.len())
    }
}

/// Prints a comparison, one line per figure.
fn print_comparison(c: &Comparison) {
    println!(
        "plaintext accuracy  {:.4}  ({} images, {:.2} s)",
        c.plain_accuracy, c.images, c.plain_seconds
    );
    println!(
        "encrypted accuracy  {:.4}  ({}, ring degree {}, {} slots; setup {:.1} s, inference {:.1} s)",
        c.encrypted_accuracy, c.scheme, c.ring_degree, c.slots, c.setup_seconds, c.encrypted_seconds
    );
    println!("agreement           {:.4}", c.agreement);
    if let Some(i) = &c.integer {
        println!(
            "integer model       accuracy {:.4}, agreement {:.4}, identical scores {:.4} ({:.2} s)",
            i.integer_accuracy, i.integer_agreement, i.integer_scores_identical, i.integer_seconds
        );
    }
}

/// The comparison as JSON, with the data set and its source.
fn comparison_json(
    c: &Comparison,
    dataset: impl serde::Serialize,
    source: &str,
) -> anyhow::Result<serde_json::Value> {
    let mut out = serde_json::to_value(c)?;
    if let Some(obj) = out.as_object_mut() {
        obj.insert("dataset".to_owned(), serde_json::to_value(dataset)?);
        obj.insert("data_source".to_owned(), source.into());
    }
    Ok(out)
}

/// `heist eval --encrypted`: the comparison for a loaded model and data set.
///
/// # Errors
/// As [`compare`]; JSON output failures.
pub fn eval_encrypted(
    model: &Model,
    data: &crate::data::Data,
    test: &Images,
    scheme: Scheme,
    json: Option<&Path>,
) -> CliResult {
    let c = compare(model, &data.train, test, scheme)?;
    if let Some(n) = data.source.notice() {
        println!("{n}");
    }
    println!(
        "{} ({}), model {}: {} test images",
        data.dataset,
        data.source.label(),
        model.architecture(),
        c.images
    );
    print_comparison(&c);
    if let Some(path) = json {
        write_json(
            path,
            &comparison_json(&c, data.dataset, data.source.label())?,
        )?;
    }
    Ok(())
}

/// Train the paper's network (or reuse a cached one) and classify encrypted test images.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    heist demo\n  \
    heist demo --dataset fashion --limit 200 --json demo.json")]
pub struct DemoArgs {
    #[command(flatten)]
    data: DataOptions,
    /// Scheme between trusted party and compute server.
    #[arg(long, value_enum, default_value = "ckks")]
    scheme: Scheme,
    /// Classify only the first K test images.
    #[arg(long, value_name = "K", default_value_t = 1000)]
    limit: usize,
    /// Training epochs (when no cached model matches).
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Seed of the training run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Directory of trained models, keyed by data, architecture, hyper-parameters and seed.
    #[arg(long, value_name = "DIR", default_value = ".heist-cache")]
    cache: PathBuf,
    /// Also write the results as JSON to this file (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

/// The cache file of a model trained with `config` on `train`: a SHA-256 of the training
/// images and labels, the architecture and every hyper-parameter (seed included).
///
/// # Errors
/// When the configuration cannot be serialised.
pub fn cache_path(dir: &Path, train: &Images, config: &TrainConfig) -> anyhow::Result<PathBuf> {
    let mut h = Sha256::new();
    h.update(Sha256::digest(&train.pixels));
    h.update(Sha256::digest(&train.labels));
    h.update(serde_json::to_vec(config)?);
    let key = crate::data::hex(&h.finalize());
    Ok(dir.join(format!(
        "{}-{}.safetensors",
        config.arch.name(),
        key.get(..16).unwrap_or(&key)
    )))
}

/// The model cached at `path` if it loads, otherwise one trained now with `config` on
/// `train` and saved to `path` (in `dir`); `true` when the cached one is reused. A cache
/// file that does not load (corrupted, truncated, of another architecture) is reported on
/// stderr and replaced.
///
/// # Errors
/// When training fails or the model cannot be saved.
fn cached_or_trained(
    path: &Path,
    dir: &Path,
    train_set: &Images,
    config: &TrainConfig,
) -> anyhow::Result<(Model, bool)> {
    if path.exists() {
        match Model::load(path, Some(config.arch)) {
            Ok(model) => {
                eprintln!("reusing the cached model {}", path.display());
                return Ok((model, true));
            }
            Err(e) => eprintln!(
                "warning: the cached model {} does not load ({e:#}); training a new one",
                path.display()
            ),
        }
    }
    eprintln!(
        "training {} on {} images for {} epochs",
        config.arch,
        train_set.len(),
        config.epochs
    );
    let trained = train(train_set, config, |_, _, _| {}).map_err(anyhow::Error::from)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    trained
        .model
        .save(path)
        .with_context(|| format!("saving {}", path.display()))?;
    eprintln!(
        "trained in {:.1} s, saved to {}",
        trained.seconds,
        path.display()
    );
    Ok((trained.model, false))
}

/// Runs `heist demo`.
///
/// # Errors
/// Bad input (exit 2) for unusable data or arguments, failure (exit 1) otherwise.
pub fn demo(args: DemoArgs) -> CliResult {
    let start = Instant::now();
    let data = args.data.load().map_err(CliError::bad_input)?;
    let config = TrainConfig {
        arch: Architecture::for_dataset(data.dataset),
        epochs: args.epochs,
        batch_size: 128,
        lr: 1e-3,
        optimizer: OptimizerKind::Adam,
        momentum: 0.0,
        clip_norm: None,
        fraction: 1.0,
        seed: args.seed,
    };
    let path = cache_path(&args.cache, &data.train, &config)?;
    let (model, cached) = cached_or_trained(&path, &args.cache, &data.train, &config)?;
    let test = data.test.truncated(args.limit);
    let c = compare(&model, &data.train, &test, args.scheme)?;
    let seconds = start.elapsed().as_secs_f64();
    if let Some(n) = data.source.notice() {
        println!("{n}");
    }
    println!(
        "{} ({}): {} model {} ({}), {} test images",
        data.dataset,
        data.source.label(),
        config.arch,
        path.display(),
        if cached { "cached" } else { "trained now" },
        c.images
    );
    print_comparison(&c);
    println!("total wall time     {seconds:.1} s");
    if let Some(json) = &args.json {
        let mut out = comparison_json(&c, data.dataset, data.source.label())?;
        if let Some(obj) = out.as_object_mut() {
            obj.insert("model".to_owned(), path.display().to_string().into());
            obj.insert("cached_model".to_owned(), cached.into());
            obj.insert("seconds".to_owned(), seconds.into());
        }
        write_json(json, &out)?;
    }
    Ok(())
}
