//! Accuracy through real encrypted inference: `heist eval --encrypted` and `heist demo`.
//!
//! Both run the three-party service in this process ([`InProcessService`]): the trusted
//! party encrypts the test images (one per slot), the compute server evaluates the model
//! on the ciphertexts with the evaluation key only, the trusted party decrypts the scores.
//! The same images also go through the plaintext model; the report gives both accuracies
//! and their agreement (the fraction of images with the same predicted class).

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
    ckks_plan, BatchConfig, CkksCodec, CkksEvaluator, InProcessClient, InProcessService,
    PlaintextCodec, PlaintextEvaluator, Scheme,
};
use crate::train::optim::OptimizerKind;
use crate::train::{train, TrainConfig};

/// Training images the CKKS chain is calibrated on (the first ones of the training set).
pub const CALIBRATION_IMAGES: usize = 256;

/// Scores from an in-process service: every image goes through the service's codec and
/// evaluator (encrypted for [`Scheme::Ckks`]).
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

/// An in-process service for `model` speaking `scheme`, and what it runs on.
pub struct Service {
    /// The running service.
    pub service: InProcessService,
    /// Images per batch.
    pub slots: usize,
    /// Ring degree (0 for [`Scheme::Plain`]).
    pub ring_degree: usize,
    /// Seconds spent compiling the plan and generating keys.
    pub setup_seconds: f64,
}

/// The images of `images` as [`Image`]s.
fn to_images(images: &Images) -> anyhow::Result<Vec<Image>> {
    crate::model::scaled(images)
        .chunks(IMAGE_PIXELS)
        .map(|p| Image::new(p).map_err(anyhow::Error::from))
        .collect()
}

/// Starts an in-process service for `model` with `scheme`. For CKKS the plan is calibrated
/// on the first [`CALIBRATION_IMAGES`] images of `train` and the keys are drawn from the OS.
///
/// # Errors
/// [`Scheme::Bfv`] (not available), planning or start-up failures.
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
                service,
                slots,
                ring_degree,
                setup_seconds: start.elapsed().as_secs_f64(),
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
                service,
                slots,
                ring_degree: 0,
                setup_seconds: start.elapsed().as_secs_f64(),
            })
        }
        other => Err(anyhow!(
            "encrypted inference with {other} is not available: heist_he::nn has no {other} plan"
        )),
    }
}

/// Where `heist serve --scheme ckks` takes its calibration images from: both roles must
/// give the same data set (the first [`CALIBRATION_IMAGES`] training images) to compile
/// the same plan.
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
    let plain = evaluate(&mut Plain(model), test)?;
    let service = start_service(model, train, scheme)?;
    eprintln!(
        "{scheme} service ready in {:.1} s (ring degree {}, {} slots); classifying {} images",
        service.setup_seconds,
        service.ring_degree,
        service.slots,
        test.len()
    );
    let mut scorer = ServiceScorer {
        client: service.service.client(),
        batch: service.slots,
    };
    let encrypted = evaluate(&mut scorer, test)?;
    Ok(Comparison {
        scheme: scheme.to_string(),
        images: test.len(),
        ring_degree: service.ring_degree,
        slots: service.slots,
        plain_accuracy: plain.accuracy,
        encrypted_accuracy: encrypted.accuracy,
        agreement: agreement(&plain, &encrypted),
        plain_seconds: plain.seconds,
        setup_seconds: service.setup_seconds,
        encrypted_seconds: encrypted.seconds,
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
    let (model, cached) = if path.exists() {
        let model = Model::load(&path, Some(config.arch))
            .with_context(|| format!("cached model {}", path.display()))?;
        eprintln!("reusing the cached model {}", path.display());
        (model, true)
    } else {
        eprintln!(
            "training {} on {} images for {} epochs",
            config.arch,
            data.train.len(),
            config.epochs
        );
        let trained = train(&data.train, &config, |_, _, _| {}).map_err(anyhow::Error::from)?;
        std::fs::create_dir_all(&args.cache)
            .with_context(|| format!("creating {}", args.cache.display()))?;
        trained
            .model
            .save(&path)
            .with_context(|| format!("saving {}", path.display()))?;
        eprintln!(
            "trained in {:.1} s, saved to {}",
            trained.seconds,
            path.display()
        );
        (trained.model, false)
    };
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
