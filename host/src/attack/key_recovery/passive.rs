//! The passive adversary (Li and Micciancio, "On the Security of Homomorphic Encryption on
//! Approximate Numbers", EUROCRYPT 2021, ePrint 2020/1533): an honest-but-curious compute
//! server keeps the ciphertexts it returned, and a colluding client that filled the batch
//! reads the released scores.
//!
//! CKKS decryption returns `c_0 + c_1·s = Δm + e`, and `e` depends on `s`. Re-encoding the
//! released values gives back `Δm + e` exactly when the release keeps every bit of it;
//! then `s` follows by linear algebra. heist's service releases the real part of each
//! slot only, as an `f32`: two ciphertexts of one batch give the system of
//! [`super::solve`] for the real parts, but the `f32` rounding (24 bits of a score whose
//! integer representation `Δ·m` has far more) destroys the low bits that carry `e`. What
//! is measured: the largest distance of a re-encoded coefficient to an integer
//! ([`Outcome::reencoding_error`]); recovery needs it below 1/2.
//!
//! [`ckks_f64`] asks the same question of a release that kept the full `f64` decoded
//! values (what the trusted party holds before it converts to `f32`), without a service.
//!
//! BFV decryption rounds the noise away: the released scores are the exact integer
//! scores, which the compute server can already predict from the model for a query it
//! knows, and they carry nothing about `e`. [`bfv`] measures it: with `m` known exactly,
//! `c_0 + c_1·s - round(Q·m/t) = e` remains an LWE sample, and solving as if `e = 0`
//! gives no ternary key.

use std::time::Instant;

use heist_core::nn::QuantizedModel;
use heist_core::rns::{Coeff, RnsPoly};
use heist_he::bfv::BatchEncoder;
use heist_he::ckks::Encoder;
use heist_he::keys::SecretKey;
use heist_he::nn::{BfvPlan, CkksClient, CkksPlan, CkksServer};
use heist_he::ring;
use rand_core::{CryptoRng, RngCore};

use super::solve::{solve_ternary, symmetric_part, ternary, Equation};
use super::{
    ckks_service, conclude_ckks, fill, Adversary, AttackError, CkksRun, Cost, MaliciousCompute,
    Outcome,
};
use crate::executor::Rayon;
use crate::oracle::{Image, Oracle};
use crate::service::bfv::decode_prime_of;
use crate::service::ckks::decode_ciphertexts;
use crate::service::{
    BatchConfig, BfvCodec, BfvEvaluator, InProcessService, ReleasePolicy, Scheme,
};

/// The equations of classes 0 and 1 from kept ciphertexts and the released real parts of
/// all slots (`rows[j][k]`: slot `j`, class `k`), and the worst re-encoding distance.
fn equations(
    encoder: &Encoder,
    cts: &[heist_he::ckks::Ciphertext],
    rows: &[Vec<f64>],
) -> Result<(Vec<Equation>, f64), AttackError> {
    let mut worst = 0.0f64;
    let mut out = Vec::with_capacity(2);
    for (k, ct) in cts.iter().enumerate().take(2) {
        let re: Vec<f64> = rows.iter().map(|row| row[k]).collect();
        let (symmetric, err) = symmetric_part(encoder, &re, ct.scale())?;
        worst = worst.max(err);
        out.push(Equation::new(ct.c0(), ct.c1(), symmetric));
    }
    Ok((out, worst))
}

/// Runs the passive attack on a CKKS service of `plan`: the client fills one batch with
/// `filler`, the honest server keeps the returned ciphertexts; a recovered key is checked
/// on the encrypted batch of `victim`.
///
/// # Errors
/// As [`super::active::ckks`].
pub fn ckks<R: RngCore + CryptoRng>(
    plan: &CkksPlan,
    release: ReleasePolicy,
    filler: &[Image],
    victim: &[Image],
    rng: &mut R,
) -> Result<Outcome, AttackError> {
    let (service, control, noise) = ckks_service(plan, release, filler, rng)?;
    let mut client = service.client();
    let start = Instant::now();
    let scores = client.query(&fill(filler, plan.batch()))?;
    let kept = control.take_seen().pop().ok_or(AttackError::NothingSeen)?;
    let cts = decode_ciphertexts(plan, &kept.output, plan.output_len())?;
    let rows: Vec<Vec<f64>> = scores
        .iter()
        .map(|row| row.iter().map(|&v| f64::from(v)).collect())
        .collect();
    let encoder = Encoder::new(plan.params());
    let (eqs, worst) = equations(&encoder, &cts, &rows)?;
    conclude_ckks(
        plan,
        (release, noise),
        Adversary::Passive,
        Cost::one_batch(1),
        Some((&eqs[0], &eqs[1], worst)),
        CkksRun {
            client: &mut client,
            control: &control,
            start,
            victim,
        },
    )
}

/// What a release of the full `f64` decoded values would give the passive adversary: one
/// batch of `images` (filled up to the slots) is encrypted, evaluated and decrypted by the
/// roles of [`heist_he::nn`] without a service, the kept score ciphertexts and the `f64`
/// real parts of all slots go to the solver, and a recovered key is checked by decrypting
/// a fresh encryption of `victim`.
///
/// # Errors
/// CKKS failures; bad images.
pub fn ckks_f64<R: RngCore + CryptoRng>(
    plan: &CkksPlan,
    images: &[Image],
    victim: &[Image],
    rng: &mut R,
) -> Result<Outcome, AttackError> {
    let client = CkksClient::new(plan.clone(), rng);
    let server = CkksServer::new(plan.clone(), client.relin_key(rng)).map_err(nn)?;
    let exec = Rayon::default();
    let batch: Vec<Vec<f64>> = fill(images, plan.batch()).iter().map(pixels).collect();
    let refs: Vec<&[f64]> = batch.iter().map(Vec::as_slice).collect();
    let inputs = client.encrypt_batch(&refs, rng, &exec).map_err(nn)?;
    let start = Instant::now();
    let cts = server.evaluate(inputs, &exec).map_err(nn)?;
    let rows = client.decrypt_scores(&cts, plan.batch()).map_err(nn)?;
    let encoder = Encoder::new(plan.params());
    let (eqs, worst) = equations(&encoder, &cts, &rows)?;
    let he = plan.params().he();
    let key = solve_ternary(he.basis(), &eqs[0], &eqs[1])
        .ok()
        .map(|s| SecretKey::from_ternary(he, &s))
        .transpose()?;
    let seconds = start.elapsed().as_secs_f64();
    let verified = match &key {
        Some(key) => {
            let victim: Vec<Vec<f64>> = victim.iter().map(pixels).collect();
            let refs: Vec<&[f64]> = victim.iter().map(Vec::as_slice).collect();
            let fresh = client.encrypt_batch(&refs, rng, &exec).map_err(nn)?;
            let mut all = true;
            for (pixel, ct) in fresh.iter().enumerate() {
                let slots = encoder.decode(&heist_he::ckks::decrypt(plan.params(), key, ct)?)?;
                all &= victim
                    .iter()
                    .zip(&slots)
                    .all(|(image, &v)| (v - image[pixel]).abs() <= super::PIXEL_TOLERANCE);
            }
            all
        }
        None => false,
    };
    Ok(Outcome {
        scheme: Scheme::Ckks,
        adversary: Adversary::Passive,
        release: "f64 (all slots, no service)".to_owned(),
        release_sigma: 0.0,
        noise_estimate: None,
        recovered: key.is_some(),
        verified_on_unseen: verified,
        ciphertexts_used: 2,
        batches: 1,
        gain: 1,
        adaptive: false,
        refused_batches: 0,
        reply_checks: true,
        probes_released: None,
        client_queries: plan.batch() as u64,
        reencoding_error: Some(worst),
        seconds,
        ring_degree: he.n(),
        slots: plan.batch(),
    })
}

fn pixels(image: &Image) -> Vec<f64> {
    image.pixels().iter().map(|&p| f64::from(p)).collect()
}

fn nn(error: heist_he::nn::NnError) -> AttackError {
    AttackError::Codec(crate::service::CodecError::Backend {
        scheme: Scheme::Ckks,
        error: Box::new(error),
    })
}

/// Runs the passive attack on a BFV service of `plan`: the client fills one batch with
/// `filler`, the honest server keeps the returned ciphertexts, and the adversary solves
/// `c_0 + c_1·s = round(Q·m/t)` for `s` with the exactly released `m` of class 0 (first
/// plaintext prime), as if the decryption noise were zero. The noise it ignores is
/// multiplied by `c_1⁻¹`, so the solution is not ternary: the exact decryption releases
/// nothing about `e`.
///
/// # Errors
/// As [`super::active::ckks`].
pub fn bfv<R: RngCore + CryptoRng>(
    quant: &QuantizedModel,
    plan: &BfvPlan,
    release: ReleasePolicy,
    filler: &[Image],
    victim: &[Image],
    rng: &mut R,
) -> Result<Outcome, AttackError> {
    let codec = BfvCodec::new(quant.clone(), plan.clone(), rng)?.with_release(release)?;
    let (server, control) = MaliciousCompute::new(BfvEvaluator::new(plan.clone())?);
    let service = InProcessService::start(codec, server, &BatchConfig::default())?;
    let mut client = service.client();
    let start = Instant::now();
    let scores = client.query(&fill(filler, plan.batch()))?;
    let kept = control.take_seen().pop().ok_or(AttackError::NothingSeen)?;
    let params = &plan.params()[0];
    let cts = decode_prime_of(plan, &kept.output, plan.output_len(), 0)?;
    let t = params.plain_modulus();
    // The colluding client knows its images, so the exact integer scores of class 0 (what
    // the release rounds to f32) follow from the model the server holds.
    let exact: Vec<u64> = filler
        .iter()
        .map(|image| {
            let x = quant
                .quantize_input(&pixels(image))
                .and_then(|q| quant.infer(&q))
                .map_err(|e| {
                    AttackError::Codec(crate::service::CodecError::Context {
                        reason: format!("integer model: {e}"),
                    })
                })?;
            let r = x
                .first()
                .copied()
                .unwrap_or(0)
                .rem_euclid(i128::from(t.value()));
            Ok(r as u64)
        })
        .collect::<Result<_, AttackError>>()?;
    let released = scores.len();
    let slots: Vec<u64> = exact.iter().cycle().take(released).copied().collect();
    let m = BatchEncoder::new(plan.n(), t.value())?.encode_u64(&slots)?;
    let he = params.he();
    let basis = he.basis();
    let mut rhs = heist_he::bfv::scale_plain(params, &m)?;
    rhs.truncate(1);
    let mut c0 = cts[0].c0().clone();
    c0.truncate(1);
    let mut c1 = cts[0].c1().clone();
    c1.truncate(1);
    rhs.sub_assign(&c0, basis);
    let key = match ring::invert(&c1, basis) {
        Ok(inv) => {
            rhs.mul_assign(&inv, basis);
            let s: RnsPoly<Coeff> = rhs.into_coeff(basis);
            let q = basis.modulus(0);
            ternary(s.limb(0).iter().map(|&r| q.centre(r)))
                .ok()
                .map(|s| SecretKey::from_ternary(he, &s))
                .transpose()?
        }
        Err(_) => None,
    };
    let seconds = start.elapsed().as_secs_f64();
    let client_queries = client.queries();
    let verified = match &key {
        Some(key) => super::verify_bfv(quant, plan, key, &mut client, &control, victim)?,
        None => false,
    };
    Ok(Outcome {
        scheme: Scheme::Bfv,
        adversary: Adversary::Passive,
        release: release.to_string(),
        release_sigma: 0.0,
        noise_estimate: None,
        recovered: key.is_some(),
        verified_on_unseen: verified,
        ciphertexts_used: 1,
        batches: 1,
        gain: 1,
        adaptive: false,
        refused_batches: 0,
        reply_checks: true,
        probes_released: None,
        client_queries,
        reencoding_error: None,
        seconds,
        ring_degree: plan.n(),
        slots: plan.batch(),
    })
}
