//! Accuracy through real encrypted inference (what `heist eval --encrypted` and
//! `heist demo` report).
//!
//! Both run the three-party service in this process ([`InProcessService`]): the trusted
//! party encrypts the test images (one per slot), the compute server evaluates the model
//! on the ciphertexts with the evaluation key only, the trusted party decrypts the scores.
//! The same images also go through the plaintext model; the report gives both accuracies
//! and their agreement (the fraction of images with the same predicted class). BFV
//! evaluates the 8-bit quantised integer model exactly, so for BFV the report also compares
//! with that model in plaintext: its accuracy, and the fraction of images whose scores
//! through the service are identical to its dequantised scores (expected: all of them).

use std::time::Instant;

use anyhow::anyhow;

use crate::data::{Images, CLASSES, IMAGE_PIXELS};
use crate::model::eval::{evaluate, Evaluation, Plain, Scorer};
use crate::model::{fraction, Model};
use crate::oracle::{Image, Oracle, PlainOracle, PlainOracleError, Scores};
use crate::service::{
    bfv_plan, ckks_plan, BatchConfig, BfvCodec, BfvEvaluator, CkksCodec, CkksEvaluator,
    ClientConfig, InProcessClient, InProcessService, NetError, PlaintextCodec, PlaintextEvaluator,
    ReleasePolicy, Scheme, ServiceError, TcpClient,
};
use heist_core::nn::QuantizedModel;
use heist_he::nn::CkksPlan;

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
///
/// # Errors
/// A pixel outside `[0, 1]`.
pub fn to_images(images: &Images) -> anyhow::Result<Vec<Image>> {
    crate::model::scaled(images)
        .chunks(IMAGE_PIXELS)
        .map(|p| Image::new(p).map_err(anyhow::Error::from))
        .collect()
}

/// The first [`CALIBRATION_IMAGES`] images of `train`: what a CKKS plan is sized for, what
/// the CKKS trusted party measures its noise on, and what the BFV trusted party
/// calibrates its score bounds on.
///
/// # Errors
/// A pixel outside `[0, 1]`.
pub fn calibration_images(train: &Images) -> anyhow::Result<Vec<Image>> {
    to_images(&train.truncated(CALIBRATION_IMAGES))
}

/// The CKKS plan of `model`, calibrated on the first [`CALIBRATION_IMAGES`] images of
/// `train`: what both roles of a CKKS service must compile alike.
///
/// # Errors
/// Images outside `[0, 1]`; no plan fits the model.
pub fn calibrated_ckks_plan(model: &Model, train: &Images) -> anyhow::Result<CkksPlan> {
    ckks_plan(model, &calibration_images(train)?)
}

/// The trusted party's CKKS codec for `plan` (calibrated on `train`), releasing under
/// `release`, with fresh keys from the OS; its noise estimate, which the well-formedness
/// check of every reply and the flooding deviation are multiples of, is measured at setup
/// on the plan's calibration images ([`CkksCodec::with_measured_noise`]).
///
/// # Errors
/// Images outside `[0, 1]`; codec failures.
pub fn trusted_ckks_codec(
    plan: CkksPlan,
    train: &Images,
    release: ReleasePolicy,
) -> anyhow::Result<CkksCodec> {
    Ok(CkksCodec::new(plan, &mut rand_core::OsRng)?
        .with_release(release)
        .with_measured_noise(&calibration_images(train)?)?)
}

/// Starts an in-process service for `model` with `scheme`. For CKKS the plan is calibrated
/// on the first [`CALIBRATION_IMAGES`] images of `train`; for BFV it is compiled from the
/// 8-bit quantised model ([`bfv_plan`]) and the trusted party's score bounds are
/// calibrated on the same images ([`BfvCodec::with_calibration`]). The keys are drawn from
/// the OS.
///
/// # Errors
/// Planning or start-up failures.
pub fn start_service(model: &Model, train: &Images, scheme: Scheme) -> anyhow::Result<Service> {
    start_service_releasing(model, train, scheme, ReleasePolicy::Exact)
}

/// As [`start_service`], with the trusted party releasing scores under `release`.
///
/// # Errors
/// As [`start_service`]; a policy the scheme does not support.
pub fn start_service_releasing(
    model: &Model,
    train: &Images,
    scheme: Scheme,
    release: ReleasePolicy,
) -> anyhow::Result<Service> {
    let start = Instant::now();
    let config = BatchConfig::default();
    match scheme {
        Scheme::Ckks => {
            let plan = calibrated_ckks_plan(model, train)?;
            let ring_degree = plan.params().he().n();
            let codec = trusted_ckks_codec(plan.clone(), train, release)?;
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
            let codec = BfvCodec::new(quant.clone(), plan.clone(), &mut rand_core::OsRng)?
                .with_release(release)?
                .with_calibration(&calibration_images(train)?)?;
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
    compare_releasing(model, train, test, scheme, ReleasePolicy::Exact)
}

/// As [`compare`], with the trusted party releasing scores under `release`.
///
/// # Errors
/// As [`compare`].
pub fn compare_releasing(
    model: &Model,
    train: &Images,
    test: &Images,
    scheme: Scheme,
    release: ReleasePolicy,
) -> anyhow::Result<Comparison> {
    let service = start_service_releasing(model, train, scheme, release)?;
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

/// Which oracle an attack queries: the plaintext model, an in-process service speaking a
/// scheme, or a trusted party over TCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OracleSpec {
    /// The plaintext model, no service, no encryption.
    Plain,
    /// The three-party service in this process with this scheme (CKKS or BFV encrypt).
    InProcess(Scheme),
    /// A running trusted party at this address (`host:port`).
    Tcp(String),
}

impl std::str::FromStr for OracleSpec {
    type Err = String;

    /// `plain`, `ckks`, `bfv` or `tcp://HOST:PORT`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "plain" => Ok(Self::Plain),
            "ckks" => Ok(Self::InProcess(Scheme::Ckks)),
            "bfv" => Ok(Self::InProcess(Scheme::Bfv)),
            _ => match s.strip_prefix("tcp://") {
                Some(addr) if !addr.is_empty() => Ok(Self::Tcp(addr.to_owned())),
                _ => Err(format!(
                    "unknown oracle {s:?}: expected plain, ckks, bfv or tcp://HOST:PORT"
                )),
            },
        }
    }
}

impl std::fmt::Display for OracleSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain => f.write_str("plain"),
            Self::InProcess(scheme) => write!(f, "{scheme}"),
            Self::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

impl OracleSpec {
    /// Whether the scores come back through encryption (always assumed for TCP, whose
    /// scheme the trusted party chose).
    pub fn encrypted(&self) -> bool {
        match self {
            Self::Plain => false,
            Self::InProcess(scheme) => *scheme != Scheme::Plain,
            Self::Tcp(_) => true,
        }
    }

    /// Opens the oracle for `model`; an in-process CKKS service is calibrated on `train`
    /// as [`start_service`] does.
    ///
    /// # Errors
    /// Planning or start-up failures; an unreachable TCP trusted party.
    pub fn open(&self, model: &Model, train: &Images) -> anyhow::Result<ServiceOracle> {
        Ok(match self {
            Self::Plain => ServiceOracle::Plain(PlainOracle::new(model.clone())),
            Self::InProcess(scheme) => {
                let service = start_service(model, train, *scheme)?;
                let client = service.service.client();
                ServiceOracle::InProcess {
                    client,
                    service: Box::new(service),
                }
            }
            Self::Tcp(addr) => {
                ServiceOracle::Tcp(TcpClient::connect(addr, ClientConfig::default())?)
            }
        })
    }
}

/// An oracle of any [`OracleSpec`].
pub enum ServiceOracle {
    /// The plaintext model.
    Plain(PlainOracle<Model>),
    /// An in-process service and a client of it.
    InProcess {
        /// The client the queries go through. Declared (so dropped) before the service,
        /// whose batching thread ends only once every client is gone.
        client: InProcessClient,
        /// The running service (kept alive for the client).
        service: Box<Service>,
    },
    /// A client of a trusted party over TCP.
    Tcp(TcpClient),
}

/// Why a [`ServiceOracle`] query failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceOracleError {
    /// The plaintext oracle refused.
    #[error(transparent)]
    Plain(#[from] PlainOracleError),
    /// The in-process service failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The TCP link or the remote service failed.
    #[error(transparent)]
    Net(#[from] NetError),
}

impl Oracle for ServiceOracle {
    type Error = ServiceOracleError;

    fn query(&mut self, images: &[Image]) -> Result<Vec<Scores>, ServiceOracleError> {
        Ok(match self {
            Self::Plain(oracle) => oracle.query(images)?,
            Self::InProcess { client, .. } => client.query(images)?,
            Self::Tcp(client) => client.query(images)?,
        })
    }

    fn queries(&self) -> u64 {
        match self {
            Self::Plain(oracle) => oracle.queries(),
            Self::InProcess { client, .. } => client.queries(),
            Self::Tcp(client) => client.queries(),
        }
    }
}
