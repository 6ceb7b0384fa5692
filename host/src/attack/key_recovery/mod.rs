//! Attack 4: recovering the trusted party's secret key from what it releases.
//!
//! The trusted party decrypts whatever ciphertexts the compute server returns and hands
//! each client the decoded scores of its slots. Two adversaries, both inside the service
//! model of the paper:
//!
//! - **active** ([`active`]): a malicious compute server returns crafted ciphertexts
//!   instead of the network's output, and a client that fills a batch reads the released
//!   decryptions. For CKKS, `(0, 1)` and `(0, X)` decrypt to `s` and `X·s` (no noise at
//!   all), and the real parts of their slots give `s(X) + s(X⁻¹)` and
//!   `X·s(X) + X⁻¹·s(X⁻¹)`: a 2 × 2 system over the ring that yields `s`. For BFV, the
//!   crafted `(0, round(Q·λ/t))` decrypts exactly to `λ·s mod t`; its slots leave the
//!   service as `f32` scores, from which a few multipliers `λ` read the residues of `s`
//!   digit by digit.
//! - **passive** ([`passive`]; Li and Micciancio, EUROCRYPT 2021, ePrint 2020/1533): an
//!   honest-but-curious compute server keeps the ciphertexts it returned, a colluding
//!   client fills a batch and reads the released scores; re-encoding the released values
//!   gives `m + e = c_0 + c_1·s` where the release is precise enough.
//!
//! The adversary's view is enforced by construction: the compute server is a
//! [`MaliciousCompute`] wrapped around the honest evaluator, inside the real
//! [`InProcessService`](crate::service::InProcessService); the client is an ordinary
//! client of that service. The recovered key is verified on ciphertexts the attack never
//! saw decrypted: the input batch of another client, which the compute server receives
//! and decrypts with the recovered key.

pub mod active;
pub mod passive;
pub mod solve;
pub mod sweep;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use heist_core::nn::QuantizedModel;
use heist_he::bfv::BfvError;
use heist_he::ckks::CkksError;
use heist_he::keys::{KeyError, SecretKey};
use heist_he::nn::{BfvPlan, CkksPlan};

use crate::oracle::{Image, Oracle};
use crate::service::bfv::decode_prime_of;
use crate::service::ckks::decode_ciphertexts;
use crate::service::{
    BatchEvaluator, BatchFailure, CodecError, HeBatchError, InProcessClient, Scheme, ServiceError,
    SetupError,
};

/// Which adversary runs the attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Adversary {
    /// An honest-but-curious compute server with a colluding client.
    Passive,
    /// A malicious compute server that returns crafted ciphertexts, with a colluding client.
    Active,
}

/// What one run of the attack achieved and what it cost.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Outcome {
    /// The scheme between trusted party and compute server.
    #[serde(serialize_with = "display")]
    pub scheme: Scheme,
    /// The adversary.
    pub adversary: Adversary,
    /// The trusted party's release policy.
    pub release: String,
    /// The deviation of the noise the policy adds to every released score (0 unless
    /// flooded).
    pub release_sigma: f64,
    /// The trusted party's estimate of the error of a decrypted score, which the flooding
    /// deviation is a multiple of (CKKS: measured at setup; BFV: none).
    pub noise_estimate: Option<f64>,
    /// Whether a ternary key came out of the released values.
    pub recovered: bool,
    /// Whether that key decrypts another client's input batch (never seen decrypted) to
    /// that client's images.
    pub verified_on_unseen: bool,
    /// Ciphertexts whose decryptions the attack used.
    pub ciphertexts_used: usize,
    /// The factor the crafted ciphertexts were multiplied by (1: none; see
    /// [`active::gain`] and [`active::adaptive_gain`]; the last one used when adaptive).
    pub gain: i64,
    /// Whether the active server adapted its gain to the trusted party's well-formedness
    /// check and averaged the releases of several batches ([`active::ckks_adaptive`]).
    pub adaptive: bool,
    /// Batches the attack spent (crafted or kept), refused ones included.
    pub batches: usize,
    /// Batches whose reply the trusted party refused (nothing released).
    pub refused_batches: usize,
    /// Whether the trusted party checked every decrypted reply before releasing it (CKKS
    /// always; BFV unless the experiment removed the checks to show the undefended case).
    pub reply_checks: bool,
    /// Probes the trusted party released ([`active::bfv_probing`]; `None` for the other
    /// attacks): each shows one slot of `s`.
    pub probes_released: Option<usize>,
    /// Images the colluding client submitted (the service counts one query per image).
    pub client_queries: u64,
    /// Largest distance of a re-encoded released value to the integer it should be (CKKS;
    /// in units of the coefficient); below 1/2 means the release was exact enough.
    pub reencoding_error: Option<f64>,
    /// Seconds from the first query to the verified key.
    pub seconds: f64,
    /// Ring degree.
    pub ring_degree: usize,
    /// Images per batch.
    pub slots: usize,
}

/// Serialises a value by its `Display` text.
fn display<S: serde::Serializer>(value: &Scheme, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// Turns the honest reply to a batch into the crafted one.
pub type Craft = Box<dyn FnOnce(Vec<u8>) -> Result<Vec<u8>, CodecError> + Send>;

/// What the malicious compute server does with the next batch.
pub enum Reply {
    /// Evaluate honestly, and keep the input and output payloads.
    Honest,
    /// Evaluate honestly, then replace the output with what the function makes of it.
    Crafted(Craft),
    /// Return this payload without evaluating anything.
    Fixed(Vec<u8>),
    /// Keep the input and answer with an empty payload, which the trusted party refuses:
    /// all the server wants of the batch is the input it saw.
    Keep,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reply::Honest => "Honest",
            Reply::Crafted(_) => "Crafted",
            Reply::Fixed(_) => "Fixed",
            Reply::Keep => "Keep",
        })
    }
}

/// A batch the server kept ([`Reply::Honest`] or [`Reply::Keep`]): its whole view of it.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// The encrypted batch the trusted party sent.
    pub input: Vec<u8>,
    /// The encrypted scores returned (empty for [`Reply::Keep`]).
    pub output: Vec<u8>,
}

/// The shared state of a [`MaliciousCompute`]: the replies it will give, what it kept.
#[derive(Debug, Default)]
pub struct Control {
    replies: VecDeque<Reply>,
    seen: Vec<Seen>,
}

/// A handle on a [`MaliciousCompute`] running on the service's compute thread.
#[derive(Clone, Debug, Default)]
pub struct ControlHandle(Arc<Mutex<Control>>);

impl ControlHandle {
    fn lock(&self) -> std::sync::MutexGuard<'_, Control> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues the reply to the next batch not yet answered (batches beyond the queue are
    /// evaluated honestly).
    pub fn push(&self, reply: Reply) {
        self.lock().replies.push_back(reply);
    }

    /// Takes the batches kept so far, oldest first.
    pub fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut self.lock().seen)
    }
}

/// The compute server of attack 4: the honest evaluator, plus replies chosen by the
/// adversary ([`Reply`]) and a record of the honest batches.
pub struct MaliciousCompute<E> {
    honest: E,
    control: ControlHandle,
}

impl<E> MaliciousCompute<E> {
    /// Wraps `honest`; the handle steers it from the attack's thread.
    pub fn new(honest: E) -> (Self, ControlHandle) {
        let control = ControlHandle::default();
        (
            Self {
                honest,
                control: control.clone(),
            },
            control,
        )
    }
}

impl<E: BatchEvaluator> BatchEvaluator for MaliciousCompute<E> {
    type Session = E::Session;

    fn scheme(&self) -> Scheme {
        self.honest.scheme()
    }

    fn open_session(&self, context: &[u8]) -> Result<E::Session, CodecError> {
        self.honest.open_session(context)
    }

    fn max_context_len(&self) -> usize {
        self.honest.max_context_len()
    }

    fn max_batch_len(&self, session: &E::Session) -> usize {
        self.honest.max_batch_len(session)
    }

    fn evaluate(&self, session: &E::Session, payload: &[u8]) -> Result<Vec<u8>, CodecError> {
        let reply = self.control.lock().replies.pop_front();
        match reply.unwrap_or(Reply::Honest) {
            Reply::Honest => {
                let output = self.honest.evaluate(session, payload)?;
                self.control.lock().seen.push(Seen {
                    input: payload.to_vec(),
                    output: output.clone(),
                });
                Ok(output)
            }
            Reply::Crafted(craft) => craft(self.honest.evaluate(session, payload)?),
            Reply::Fixed(payload) => Ok(payload),
            Reply::Keep => {
                self.control.lock().seen.push(Seen {
                    input: payload.to_vec(),
                    output: Vec::new(),
                });
                Ok(Vec::new())
            }
        }
    }
}

/// Why the attack could not run (a failed recovery is not an error: see
/// [`Outcome::recovered`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttackError {
    /// The service did not start.
    #[error("service: {0}")]
    Setup(#[from] SetupError),
    /// A codec or evaluator refused its input.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A query failed.
    #[error("query: {0}")]
    Service(#[from] ServiceError),
    /// A CKKS operation failed.
    #[error("CKKS: {0}")]
    Ckks(#[from] CkksError),
    /// A BFV operation failed.
    #[error("BFV: {0}")]
    Bfv(#[from] BfvError),
    /// The recovered polynomial is not a key of the parameters.
    #[error("key: {0}")]
    Key(#[from] KeyError),
    /// A payload of the service did not decode.
    #[error(transparent)]
    Payload(#[from] HeBatchError),
    /// Re-encoding the released values failed.
    #[error(transparent)]
    Solve(#[from] solve::SolveError),
    /// The crafted reply was never made (the batch did not reach the compute server).
    #[error("the compute server did not answer the attack batch")]
    NotCrafted,
    /// The compute server kept no honest batch.
    #[error("the compute server kept no batch")]
    NothingSeen,
    /// The first plaintext prime is too large to be read through `f32` scores.
    #[error("plaintext prime {t} is too large to read through f32 scores")]
    PrimeTooLarge {
        /// The prime.
        t: u64,
    },
}

/// The first `count` of `items` cycled: a colluding client filling a batch with images, or
/// the server laying out their scores alike.
///
/// # Panics
/// Never; an empty `items` gives an empty batch, which the service answers at once.
pub(crate) fn fill<T: Clone>(items: &[T], count: usize) -> Vec<T> {
    items.iter().cycle().take(count).cloned().collect()
}

/// Sends `victim`'s images through the service (another client) and returns the
/// encrypted batch the compute server received. The server keeps the batch and does not
/// evaluate it ([`Reply::Keep`]): the victim's query fails, which costs the verification
/// nothing and spares it an evaluation (most of a BFV stage's time).
fn victim_batch(
    client: &mut InProcessClient,
    control: &ControlHandle,
    victim: &[Image],
) -> Result<Vec<u8>, AttackError> {
    control.take_seen();
    control.push(Reply::Keep);
    released(client, victim)?;
    control
        .take_seen()
        .pop()
        .map(|seen| seen.input)
        .ok_or(AttackError::NothingSeen)
}

/// The scores the trusted party released for `images`, or `None` when it refused to
/// decrypt the reply (all a client sees of a failed check: the query's error).
pub(crate) fn released(
    client: &mut InProcessClient,
    images: &[Image],
) -> Result<Option<Vec<crate::oracle::Scores>>, AttackError> {
    match client.query(images) {
        Ok(scores) => Ok(Some(scores)),
        Err(ServiceError::Batch(failure)) if matches!(*failure, BatchFailure::Decrypt(_)) => {
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}

/// Half a grey level: a decrypted pixel within this of the image's pixel is the pixel.
const PIXEL_TOLERANCE: f64 = 0.5 / 255.0;

/// Whether `key` decrypts every input ciphertext of `victim`'s encrypted batch (which the
/// attack never saw decrypted) to `victim`'s pixels within half a grey level.
pub(crate) fn verify_ckks(
    plan: &CkksPlan,
    key: &SecretKey,
    client: &mut InProcessClient,
    control: &ControlHandle,
    victim: &[Image],
) -> Result<bool, AttackError> {
    let input = victim_batch(client, control, victim)?;
    let cts = decode_ciphertexts(plan, &input, plan.input_len())?;
    let encoder = heist_he::ckks::Encoder::new(plan.params());
    for (pixel, ct) in cts.iter().enumerate() {
        let slots = encoder.decode(&heist_he::ckks::decrypt(plan.params(), key, ct)?)?;
        let wrong = victim.iter().zip(&slots).any(|(image, &value)| {
            (value - f64::from(image.pixels()[pixel])).abs() > PIXEL_TOLERANCE
        });
        if wrong {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether `key` decrypts every input ciphertext of the first plaintext prime of
/// `victim`'s encrypted batch to `victim`'s quantised pixels.
pub(crate) fn verify_bfv(
    quant: &QuantizedModel,
    plan: &BfvPlan,
    key: &SecretKey,
    client: &mut InProcessClient,
    control: &ControlHandle,
    victim: &[Image],
) -> Result<bool, AttackError> {
    let input = victim_batch(client, control, victim)?;
    let params = &plan.params()[0];
    let cts = decode_prime_of(plan, &input, plan.input_len(), 0)?;
    let encoder = heist_he::bfv::BatchEncoder::new(plan.n(), params.plain_modulus().value())?;
    let t = params.plain_modulus();
    let expected: Vec<Vec<i64>> = victim
        .iter()
        .map(|image| {
            let pixels: Vec<f64> = image.pixels().iter().map(|&p| f64::from(p)).collect();
            quant.quantize_input(&pixels)
        })
        .collect::<Result<_, _>>()
        .map_err(|e| {
            AttackError::Codec(CodecError::Context {
                reason: format!("quantising the victim's images: {e}"),
            })
        })?;
    for (pixel, ct) in cts.iter().enumerate() {
        let slots = encoder.decode_u64(&heist_he::bfv::decrypt(params, key, ct)?)?;
        let wrong = expected
            .iter()
            .zip(&slots)
            .any(|(image, &value)| t.from_i64(image[pixel]) != value);
        if wrong {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A CKKS service of `plan` releasing under `release` whose compute server the attack
/// controls; the trusted party measures its noise estimate at setup on `filler` (known
/// inputs). Returns the service, the server's control and the estimate.
pub(crate) fn ckks_service<R: rand_core::RngCore + rand_core::CryptoRng>(
    plan: &heist_he::nn::CkksPlan,
    release: crate::service::ReleasePolicy,
    filler: &[crate::oracle::Image],
    rng: &mut R,
) -> Result<(crate::service::InProcessService, ControlHandle, f64), AttackError> {
    let codec = crate::service::CkksCodec::new(plan.clone(), rng)?
        .with_release(release)
        .with_measured_noise(filler)?;
    let noise = codec.noise().value();
    let (server, control) =
        MaliciousCompute::new(crate::service::CkksEvaluator::new(plan.clone())?);
    let service = crate::service::InProcessService::start(
        codec,
        server,
        &crate::service::BatchConfig::default(),
    )?;
    Ok((service, control, noise))
}

/// What a CKKS attack holds once its batch is answered: the client it queried through, the
/// handle on the malicious compute server, when the batch was sent, and the victim whose
/// batch checks a recovered key.
pub(crate) struct CkksRun<'a> {
    /// The colluding client.
    pub client: &'a mut InProcessClient,
    /// The compute server's control.
    pub control: &'a ControlHandle,
    /// When the attack's batch was sent.
    pub start: std::time::Instant,
    /// The victim's images.
    pub victim: &'a [Image],
}

/// What a CKKS attack spent.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cost {
    /// The gain of the crafted ciphertexts (1 for the passive adversary).
    pub(crate) gain: i64,
    /// Whether the active server was adaptive.
    pub(crate) adaptive: bool,
    /// Ciphertexts whose decryptions were used.
    pub(crate) ciphertexts: usize,
    /// Batches spent.
    pub(crate) batches: usize,
    /// Batches refused by the trusted party.
    pub(crate) refused: usize,
}

impl Cost {
    /// One batch, two ciphertexts, nothing refused.
    pub(crate) fn one_batch(gain: i64) -> Self {
        Self {
            gain,
            adaptive: false,
            ciphertexts: 2,
            batches: 1,
            refused: 0,
        }
    }
}

/// The end both CKKS attacks share (`noise`: the trusted party's noise estimate): a
/// ternary key solved from the two `equations` with the largest re-encoding error (none:
/// nothing was released), its check on the victim's encrypted batch, and the outcome
/// (`seconds` run from the first batch to the solved key, the check excluded).
///
/// # Errors
/// Failures of the check's query or decryption; an unsolvable system is an outcome with
/// `recovered: false`.
pub(crate) fn conclude_ckks(
    plan: &CkksPlan,
    (release, noise): (crate::service::ReleasePolicy, f64),
    adversary: Adversary,
    cost: Cost,
    equations: Option<(&solve::Equation, &solve::Equation, f64)>,
    run: CkksRun<'_>,
) -> Result<Outcome, AttackError> {
    let he = plan.params().he();
    let key = equations
        .and_then(|(first, second, _)| solve::solve_ternary(he.basis(), first, second).ok())
        .map(|s| SecretKey::from_ternary(he, &s))
        .transpose()?;
    let seconds = run.start.elapsed().as_secs_f64();
    let client_queries = run.client.queries();
    let verified = match &key {
        Some(key) => verify_ckks(plan, key, run.client, run.control, run.victim)?,
        None => false,
    };
    Ok(Outcome {
        scheme: Scheme::Ckks,
        adversary,
        release: release.to_string(),
        release_sigma: release.sigma(noise),
        noise_estimate: Some(noise),
        recovered: key.is_some(),
        verified_on_unseen: verified,
        ciphertexts_used: cost.ciphertexts,
        batches: cost.batches,
        gain: cost.gain,
        adaptive: cost.adaptive,
        refused_batches: cost.refused,
        reply_checks: true,
        probes_released: None,
        client_queries,
        reencoding_error: equations.map(|(_, _, error)| error),
        seconds,
        ring_degree: he.n(),
        slots: plan.batch(),
    })
}
