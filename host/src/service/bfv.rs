//! The exact encrypting codec/evaluator pair: BFV batch inference of [`heist_he::nn`] on
//! the 8-bit quantised model, behind [`BatchCodec`] and [`BatchEvaluator`].
//!
//! [`BfvCodec`] (trusted party) holds the secret key and the [`QuantizedModel`]: it
//! quantises the images, encrypts a batch (one image per slot) once per plaintext prime of
//! the plan, and on the way back decrypts, recombines the residues by CRT into the integer
//! scores of [`QuantizedModel::infer`] and dequantises them, so that the service answers
//! the real-valued scores of the plaintext integer model, bit for bit. [`BfvEvaluator`]
//! (compute server) holds the plan and, per connection, the relinearisation key the
//! trusted party sends as its evaluation context; it never sees a secret key.
//!
//! Both sides compile the same plan from the same model ([`bfv_plan`]; the plan is chosen
//! deterministically from the quantised model). The relinearisation key's fingerprint
//! names the parameters it belongs to; the compute server refuses a key of other
//! parameters.
//!
//! # Payload layout
//!
//! The list layout of [`super::ckks`] (`count: u32 LE`, then `count` length-prefixed
//! ciphertexts in [`heist_he::wire`] format), with the ciphertexts of every prime in one
//! message, prime after prime: a batch is `k · 784` input ciphertexts (those of prime `j`
//! at positions `j · 784 ..`, seed-compressed), the answer `k · 10` score ciphertexts
//! (prime `j` at `j · 10 ..`), where `k` is the number of plaintext primes of the plan.
//! The count is checked against the plan before anything is allocated, and ciphertext
//! `i` goes through the size-checked decoder of the parameters of its prime, which refuses
//! a ciphertext of another prime. The compute server evaluates one prime at a time.
//!
//! At the secure MNIST parameters (`N` = 16384, five 57-bit chain primes, two plaintext
//! primes) a batch is about 1.03 GB, within the compute server's default 1 GiB frame limit.

use heist_core::nn::{QuantConfig, QuantizedModel};
use heist_he::bfv::{BfvParams, Ciphertext};
use heist_he::keys::RelinKey;
use heist_he::nn::{BfvClient, BfvPlan, BfvServer};
use heist_he::params::SecurityLevel;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};

use super::ckks::{
    backend, check_shape, encode_items, pixels_f64, push_item, split_items, start_items, to_scores,
    HeBatchError, CALIBRATION_MARGIN,
};
use super::codec::{BatchCodec, BatchEvaluator, CodecError};
use super::release::ReleasePolicy;
use super::scheme::Scheme;
use crate::executor::Rayon;
use crate::model::Model;
use crate::oracle::{Image, Scores};

/// Weight bits of the quantised model the BFV pair evaluates.
pub const BFV_WEIGHT_BITS: u32 = 8;

fn bfv(error: impl Into<HeBatchError>) -> CodecError {
    backend(Scheme::Bfv)(error)
}

/// Quantises `model` ([`QuantConfig::pixels`] with [`BFV_WEIGHT_BITS`]) and compiles it
/// for BFV at 128-bit security. Both parties call it with the same model and obtain the
/// same plan.
///
/// # Errors
/// When the model cannot be converted or quantised, or no secure parameters fit.
pub fn bfv_plan(model: &Model) -> anyhow::Result<(QuantizedModel, BfvPlan)> {
    let quant = quantize(model)?;
    let plan =
        BfvPlan::new(&quant, SecurityLevel::Tc128).map_err(|e| anyhow::anyhow!("BFV plan: {e}"))?;
    Ok((quant, plan))
}

/// The quantised model the BFV pair evaluates (as [`bfv_plan`] quantises it).
///
/// # Errors
/// When the model cannot be converted or quantised.
pub fn quantize(model: &Model) -> anyhow::Result<QuantizedModel> {
    let core = model
        .to_core()
        .map_err(|e| anyhow::anyhow!("model conversion: {e}"))?;
    QuantizedModel::new(&core, &QuantConfig::pixels(BFV_WEIGHT_BITS))
        .map_err(|e| anyhow::anyhow!("quantisation: {e}"))
}

/// Refuses a plan that does not map [`crate::oracle::IMAGE_PIXELS`] inputs to
/// [`crate::oracle::CLASSES`] scores.
fn check_plan_shape(plan: &BfvPlan) -> Result<(), CodecError> {
    check_shape(plan.input_len(), plan.output_len())
}

/// Decodes the ciphertexts of one prime (`params`), which start at position `first` of
/// the payload.
fn decode_prime(
    params: &BfvParams,
    items: &[&[u8]],
    first: usize,
) -> Result<Vec<Ciphertext>, HeBatchError> {
    items
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            Ciphertext::decode(params, bytes).map_err(|error| HeBatchError::Wire {
                index: first + i,
                error,
            })
        })
        .collect()
}

/// The ciphertexts of prime `prime` in a payload of `plan` with `per_prime` ciphertexts
/// per prime (784 for a batch, 10 for its scores).
///
/// # Errors
/// [`CodecError::Backend`] for a malformed payload or a prime out of range.
pub(crate) fn decode_prime_of(
    plan: &BfvPlan,
    payload: &[u8],
    per_prime: usize,
    prime: usize,
) -> Result<Vec<Ciphertext>, CodecError> {
    let items = split_items(payload, plan.params().len() * per_prime).map_err(bfv)?;
    let (Some(chunk), Some(params)) =
        (items.chunks(per_prime).nth(prime), plan.params().get(prime))
    else {
        return Err(bfv(HeBatchError::Count {
            expected: plan.params().len(),
            found: prime as u64,
        }));
    };
    decode_prime(params, chunk, prime * per_prime).map_err(bfv)
}

/// Encodes `cts` (all primes, prime after prime) in the payload layout of this module.
pub(crate) fn encode_ciphertexts(cts: &[Ciphertext]) -> Result<Vec<u8>, CodecError> {
    encode_items(&cts.iter().map(Ciphertext::encode).collect::<Vec<_>>())
}

/// What the trusted party accepts of a decrypted BFV reply: the integer scores of an
/// honest evaluation, and nothing else.
///
/// A compute server that returns crafted ciphertexts reads the key through the released
/// scores: `(0, Δ·λ)` decrypts to `λ·s`, whose slots are the slots of `s` times `λ`
/// ([`crate::attack::key_recovery::active`]). Those are spread over the whole plaintext
/// range, while honest scores are not. Before anything is released:
///
/// - every ciphertext's noise is measured with the key and must be within the plan's
///   worst case ([`NnError::ReplyNoise`](heist_he::nn::NnError::ReplyNoise), in
///   [`BfvClient::decrypt_scores`]), so no crafted phase sits near a rounding boundary;
/// - every score of a used slot must lie within `bounds[class]`: [`CALIBRATION_MARGIN`]
///   times the largest magnitude of that score on the calibration images, never above the
///   model's worst case `B` ([`QuantizedModel::max_abs_bound`]);
/// - every score of an unused slot must equal that of a blank (all-zero) image exactly.
///
/// The check is one predicate per reply: the whole reply is refused or released. What
/// it leaves an active server is the refusal bit, at most one bit per batch; to release a
/// slot of `λ·s` it must land in a window of `2·bounds[class] + 1` out of `Π t_j`
/// values (`docs/threat-model.md` gives the figures).
#[derive(Clone, Debug)]
struct ReplyCheck {
    /// Largest accepted magnitude of each class's integer score.
    bounds: Vec<i128>,
    /// The integer scores of a blank slot.
    blank: Vec<i128>,
}

impl ReplyCheck {
    /// The check at the model's worst case `B` for every class.
    fn worst_case(quant: &QuantizedModel) -> Result<Self, CodecError> {
        let blank = quant
            .infer(&vec![0; quant.network().input_len()])
            .map_err(|error| bfv(HeBatchError::Quantize { image: 0, error }))?;
        let worst = i128::try_from(quant.max_abs_bound()).unwrap_or(i128::MAX);
        Ok(Self {
            bounds: vec![worst; blank.len()],
            blank,
        })
    }

    /// Refuses `rows` (every slot of a reply, the first `count` used) unless each used
    /// slot is within the bounds and each unused slot equals the blank one.
    fn apply(
        &self,
        rows: &[Vec<i128>],
        count: usize,
        quant: &QuantizedModel,
    ) -> Result<(), HeBatchError> {
        let real = |v: i128| quant.dequantize(&[v])[0];
        for (slot, row) in rows.iter().enumerate() {
            for (class, ((&v, &bound), &blank)) in
                row.iter().zip(&self.bounds).zip(&self.blank).enumerate()
            {
                if slot < count && v.unsigned_abs() > bound.unsigned_abs() {
                    return Err(HeBatchError::OutOfBound {
                        image: slot,
                        class,
                        value: real(v),
                        bound: real(bound),
                    });
                }
                if slot >= count && v != blank {
                    return Err(HeBatchError::IllFormed {
                        slot,
                        class,
                        used: false,
                        deviation: (real(v) - real(blank)).abs(),
                        bound: 0.0,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The trusted party's BFV codec: the secret key, the quantised model, encryption and
/// decryption.
#[derive(Debug)]
pub struct BfvCodec {
    quant: QuantizedModel,
    client: BfvClient,
    rng: ChaCha20Rng,
    exec: Rayon,
    context: Vec<u8>,
    release: ReleasePolicy,
    /// `None` only for [`Self::without_reply_checks`].
    check: Option<ReplyCheck>,
}

impl BfvCodec {
    /// A codec for `plan`, compiled from `quant` (which must map
    /// [`crate::oracle::IMAGE_PIXELS`] inputs to [`crate::oracle::CLASSES`] scores), with a
    /// fresh secret key and relinearisation key; its randomness is a ChaCha20 stream seeded
    /// from `rng`.
    ///
    /// # Errors
    /// [`CodecError::Context`] for a plan of another shape or one not compiled from
    /// `quant` (other input bound or plaintext modulus).
    pub fn new<R: RngCore + CryptoRng>(
        quant: QuantizedModel,
        plan: BfvPlan,
        rng: &mut R,
    ) -> Result<Self, CodecError> {
        check_plan_shape(&plan)?;
        if plan.input_bound() != quant.input_bound()
            || plan.needed_modulus() != quant.min_plaintext_modulus()
            || plan.input_len() != quant.network().input_len()
            || plan.output_len() != quant.network().output_len()
        {
            return Err(CodecError::Context {
                reason: format!(
                    "the plan (input bound {}, modulus {}) is not compiled from this model (input bound {}, modulus {})",
                    plan.input_bound(),
                    plan.needed_modulus(),
                    quant.input_bound(),
                    quant.min_plaintext_modulus()
                ),
            });
        }
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let mut rng = ChaCha20Rng::from_seed(seed);
        let client = BfvClient::new(plan, &mut rng).map_err(bfv)?;
        let context = client.relin_key(&mut rng).encode();
        let check = Some(ReplyCheck::worst_case(&quant)?);
        Ok(Self {
            quant,
            client,
            rng,
            exec: Rayon::default(),
            context,
            release: ReleasePolicy::Exact,
            check,
        })
    }

    /// The codec with each class's score bound tightened to [`CALIBRATION_MARGIN`] times
    /// the largest magnitude of that score on `calibration` (the plaintext integer model
    /// run on them), never above the model's worst case: the services calibrate on the
    /// first [`crate::inference::CALIBRATION_IMAGES`] training images, as CKKS does.
    ///
    /// # Errors
    /// [`CodecError::Context`] for no images (every bound would be zero);
    /// [`CodecError::Backend`] for an image the model cannot quantise. A codec
    /// [`Self::without_reply_checks`] stays without them.
    pub fn with_calibration(mut self, calibration: &[Image]) -> Result<Self, CodecError> {
        if calibration.is_empty() {
            return Err(CodecError::Context {
                reason: "no calibration images for the BFV score bounds".into(),
            });
        }
        let Some(check) = self.check.as_mut() else {
            return Ok(self);
        };
        let mut largest = vec![0u128; check.bounds.len()];
        for (image, pixels) in calibration.iter().enumerate() {
            let scores = self
                .quant
                .quantize_input(&pixels_f64(pixels))
                .and_then(|q| self.quant.infer(&q))
                .map_err(|error| bfv(HeBatchError::Quantize { image, error }))?;
            for (l, v) in largest.iter_mut().zip(&scores) {
                *l = (*l).max(v.unsigned_abs());
            }
        }
        for (bound, l) in check.bounds.iter_mut().zip(largest) {
            let margin = (l as f64 * CALIBRATION_MARGIN).ceil();
            if margin < bound.unsigned_abs() as f64 {
                *bound = margin as i128;
            }
        }
        Ok(self)
    }

    /// The codec releasing whatever the reply decrypts to, without the checks of its
    /// scores (the noise check stays): the undefended trusted party that attack 4's
    /// experiments compare against. Never a deployment's choice.
    pub fn without_reply_checks(mut self) -> Self {
        self.check = None;
        self
    }

    /// The accepted magnitude of each class's score, dequantised (`None` without the
    /// checks).
    pub fn score_bounds(&self) -> Option<Vec<f64>> {
        self.check
            .as_ref()
            .map(|c| self.quant.dequantize(&c.bounds))
    }

    /// The codec releasing scores under `release`: [`ReleasePolicy::Exact`] (default) or
    /// [`ReleasePolicy::Rounded`] of the dequantised scores.
    ///
    /// # Errors
    /// [`CodecError::Context`] for [`ReleasePolicy::Flooded`] and [`ReleasePolicy::Noised`]:
    /// flooding the phase of an exact scheme within its noise budget is not implemented.
    pub fn with_release(mut self, release: ReleasePolicy) -> Result<Self, CodecError> {
        if let ReleasePolicy::Flooded { .. } | ReleasePolicy::Noised { .. } = release {
            return Err(CodecError::Context {
                reason: format!("release policy {release} is not implemented for BFV"),
            });
        }
        self.release = release;
        Ok(self)
    }

    /// The plan.
    pub fn plan(&self) -> &BfvPlan {
        self.client.plan()
    }

    /// The quantised model whose integer scores the codec recovers.
    pub fn quantized_model(&self) -> &QuantizedModel {
        &self.quant
    }

    /// Decrypts an evaluated batch (untrusted) into the exact integer scores of the first
    /// `count` slots, in slot order: those [`QuantizedModel::infer`] gives on the
    /// quantised images. [`BatchCodec::decrypt_batch`] dequantises them.
    ///
    /// # Errors
    /// [`CodecError::Backend`] for a malformed payload, ciphertexts of other parameters
    /// or `count` above the slots.
    pub fn decrypt_integer(
        &self,
        payload: &[u8],
        count: usize,
    ) -> Result<Vec<Vec<i128>>, CodecError> {
        let plan = self.client.plan();
        let per_prime = plan.output_len();
        let items = split_items(payload, plan.params().len() * per_prime).map_err(bfv)?;
        let scores = items
            .chunks(per_prime)
            .zip(plan.params())
            .enumerate()
            .map(|(prime, (chunk, params))| decode_prime(params, chunk, prime * per_prime))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bfv)?;
        self.client.decrypt_scores(&scores, count).map_err(bfv)
    }
}

impl BatchCodec for BfvCodec {
    fn scheme(&self) -> Scheme {
        Scheme::Bfv
    }

    fn slots(&self) -> usize {
        self.client.plan().batch()
    }

    /// The encoded relinearisation key (the compute server's only key; it serves every
    /// prime).
    fn evaluation_context(&self) -> Result<Vec<u8>, CodecError> {
        Ok(self.context.clone())
    }

    fn encrypt_batch(&mut self, images: &[Image]) -> Result<Vec<u8>, CodecError> {
        CodecError::check_batch(images.len(), self.slots())?;
        let quantised: Vec<Vec<i64>> = images
            .iter()
            .enumerate()
            .map(|(image, pixels)| {
                self.quant
                    .quantize_input(&pixels_f64(pixels))
                    .map_err(|error| bfv(HeBatchError::Quantize { image, error }))
            })
            .collect::<Result<_, _>>()?;
        let refs: Vec<&[i64]> = quantised.iter().map(Vec::as_slice).collect();
        let total = self.client.plan().params().len() * self.client.plan().input_len();
        let mut out = start_items(total, 0)?;
        for prime in 0..self.client.plan().params().len() {
            let cts = self
                .client
                .encrypt_batch(&refs, prime, &mut self.rng, &self.exec)
                .map_err(bfv)?;
            for ct in &cts {
                // Fresh secret-key encryptions carry their seed: half the bytes.
                let bytes = ct.encode_seeded().unwrap_or_else(|| ct.encode());
                if out.len() == 4 {
                    // Every ciphertext of the batch has this size: reserve once.
                    out.reserve_exact(total * (4 + bytes.len()));
                }
                push_item(&mut out, &bytes)?;
            }
        }
        Ok(out)
    }

    /// Decrypts every slot, refuses a reply that is not an honest evaluation's
    /// (`ReplyCheck`, unless [`BfvCodec::without_reply_checks`]), and releases the first
    /// `count` rows under the release policy.
    fn decrypt_batch(&mut self, payload: &[u8], count: usize) -> Result<Vec<Scores>, CodecError> {
        CodecError::check_batch(count, self.slots())?;
        let decrypted = match &self.check {
            Some(check) => {
                let all = self.decrypt_integer(payload, self.slots())?;
                check.apply(&all, count, &self.quant).map_err(bfv)?;
                all
            }
            None => self.decrypt_integer(payload, count)?,
        };
        let mut rows: Vec<Vec<f64>> = decrypted[..count]
            .iter()
            .map(|row| self.quant.dequantize(row))
            .collect();
        self.release.apply(&mut rows, 0.0, &mut self.rng);
        to_scores(&rows).map_err(bfv)
    }
}

/// The compute server's BFV evaluator: the compiled model; per connection, the
/// relinearisation key received from the trusted party.
#[derive(Debug)]
pub struct BfvEvaluator {
    plan: BfvPlan,
    exec: Rayon,
}

impl BfvEvaluator {
    /// An evaluator of `plan` (which must have [`crate::oracle::IMAGE_PIXELS`] inputs and
    /// [`crate::oracle::CLASSES`] outputs).
    ///
    /// # Errors
    /// [`CodecError::Context`] for a plan of another shape.
    pub fn new(plan: BfvPlan) -> Result<Self, CodecError> {
        check_plan_shape(&plan)?;
        Ok(Self {
            plan,
            exec: Rayon::default(),
        })
    }
}

impl BatchEvaluator for BfvEvaluator {
    type Session = BfvServer;

    fn scheme(&self) -> Scheme {
        Scheme::Bfv
    }

    fn open_session(&self, context: &[u8]) -> Result<BfvServer, CodecError> {
        let rlk = RelinKey::decode(self.plan.params()[0].he(), context)
            .map_err(|e| bfv(HeBatchError::Key(e)))?;
        BfvServer::new(self.plan.clone(), rlk).map_err(bfv)
    }

    fn max_context_len(&self) -> usize {
        RelinKey::encoded_len(self.plan.params()[0].he())
    }

    /// The plan's inputs for every plaintext prime, each a length-prefixed ciphertext in
    /// full.
    fn max_batch_len(&self, _: &BfvServer) -> usize {
        let inputs = self.plan.input_len();
        4 + self
            .plan
            .params()
            .iter()
            .map(|params| inputs * (4 + Ciphertext::max_encoded_len(params)))
            .sum::<usize>()
    }

    /// Evaluates the primes one after the other; the ciphertexts of a prime are decoded
    /// just before its evaluation.
    fn evaluate(&self, session: &BfvServer, payload: &[u8]) -> Result<Vec<u8>, CodecError> {
        let params = self.plan.params();
        let (inputs, outputs) = (self.plan.input_len(), self.plan.output_len());
        let items = split_items(payload, params.len() * inputs).map_err(bfv)?;
        let mut out = start_items(params.len() * outputs, 0)?;
        for (prime, (chunk, params)) in items.chunks(inputs).zip(params).enumerate() {
            let cts = decode_prime(params, chunk, prime * inputs).map_err(bfv)?;
            for ct in session.evaluate(cts, &self.exec).map_err(bfv)? {
                push_item(&mut out, &ct.encode())?;
            }
        }
        Ok(out)
    }
}
