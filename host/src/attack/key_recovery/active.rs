//! The active adversary: a malicious compute server returns crafted ciphertexts to a
//! batch that a colluding client filled, and the client reads the released scores.
//!
//! CKKS: the server replaces the scores of classes 0 and 1 by `(0, 1)` and `(0, X)` at the
//! level and scale of the honest output (so that a check of level and scale against the
//! plan passes them); they decrypt to `s` and `X·s` exactly, without noise, and the
//! released real parts solve for `s` ([`super::solve`]). One batch, two ciphertexts.
//!
//! BFV: the server returns, for the first plaintext prime `t` and class `c`, the noiseless
//! `(0, round(Q·λ_c/t))` with `λ_c = μ_c·T'` (`T'` the product of the other plaintext
//! primes), and `(0, 0)` for the other primes. Decryption is exact: slot `j` of the first
//! prime holds `λ_c·ŝ_j` (`ŝ` the slots of `s` modulo `t`), the codec's CRT turns it into
//! the integer `T'·[μ_c·ŝ_j]_t`, and the client receives that over the model's output
//! scale as an `f32`. The multipliers `μ_c` of [`super::solve::multipliers`] read `ŝ_j`
//! through the 24-bit mantissa digit by digit ([`super::solve::refine_residues`]); the
//! inverse slot transform gives `s mod t`. One batch.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use heist_core::nn::QuantizedModel;
use heist_core::rns::{Coeff, Eval, RnsPoly};
use heist_he::bfv::{self, BatchEncoder, Plaintext as BfvPlaintext};
use heist_he::ckks::Ciphertext as CkksCiphertext;
use heist_he::ckks::Encoder;
use heist_he::keys::SecretKey;
use heist_he::nn::{BfvPlan, CkksPlan};
use heist_he::params::HeParams;
use rand_core::{CryptoRng, RngCore};

use super::solve::{multipliers, refine_residues, symmetric_part, ternary, Equation};
use super::{
    conclude_ckks, fill, verify_bfv, Adversary, AttackError, CkksRun, MaliciousCompute, Outcome,
    Reply,
};
use crate::oracle::{Image, Oracle};
use crate::service::bfv::encode_ciphertexts as bfv_payload;
use crate::service::ckks::{decode_ciphertexts, encode_ciphertexts as ckks_payload};
use crate::service::{
    BatchConfig, BfvCodec, BfvEvaluator, CkksCodec, CkksEvaluator, CodecError, InProcessService,
    ReleasePolicy, Scheme,
};

/// `(0, gain·X^k)` at `level`, in evaluation form.
fn monomial_pair(
    he: &HeParams,
    k: usize,
    level: usize,
    gain: i64,
) -> (RnsPoly<Eval>, RnsPoly<Eval>) {
    let mut x = vec![0i64; he.n()];
    x[k] = gain;
    let c1 = RnsPoly::<Coeff>::from_signed(&x, level, he.basis()).into_eval(he.basis());
    (RnsPoly::zero(he.n(), level), c1)
}

/// Replaces the scores of classes 0 and 1 in an honest CKKS reply by `(0, 1)` and
/// `(0, X)`, with the honest level, scale and bounds; returns the reply, the level and
/// the scale.
fn craft_ckks(
    plan: &CkksPlan,
    honest: &[u8],
    gain: i64,
) -> Result<(Vec<u8>, usize, f64), CodecError> {
    let backend = |error: Box<dyn std::error::Error + Send + Sync>| CodecError::Backend {
        scheme: Scheme::Ckks,
        error,
    };
    let mut cts =
        decode_ciphertexts(plan, honest, plan.output_len()).map_err(|e| backend(Box::new(e)))?;
    let he = plan.params().he();
    let (mut level, mut scale) = (0, 0.0);
    for (k, ct) in cts.iter_mut().take(2).enumerate() {
        (level, scale) = (ct.level(), ct.scale());
        let (c0, c1) = monomial_pair(he, k, level, gain);
        *ct = CkksCiphertext::from_parts(
            plan.params(),
            c0,
            c1,
            scale,
            ct.msg_bound(),
            ct.err_bound(),
        )
        .map_err(|e| backend(Box::new(e)))?;
    }
    Ok((ckks_payload(&cts)?, level, scale))
}

/// The factor an amplifying server multiplies its crafted pair by (Li and Micciancio's
/// counter to rounding, which their Lattigo code applies as `2^5`). The adversary knows
/// the plan, the release policy and the trusted party's noise estimate `noise`. It wants
/// the release's rounding (`2^-bits`) or flooding (`6σ`) to move a re-encoded
/// coefficient by at most about 1/8, but is held below two caps:
///
/// - `q_0 / 8`, so that `gain·s` does not wrap;
/// - the plan's score bounds of classes 0 and 1, which the trusted party enforces: the
///   released real parts of the slots of `gain·X^k·s` over the output scale have a
///   deviation of `gain·√(N/3)/Δ` (ternary `s`), so the gain keeps six deviations within
///   the smaller bound.
pub fn gain(plan: &CkksPlan, release: ReleasePolicy, noise: f64) -> i64 {
    let (_, scale) = plan.output_level_scale();
    let slot_noise = match release {
        ReleasePolicy::Exact => 0.0,
        ReleasePolicy::Rounded { bits } => f64::powi(2.0, -(bits as i32)),
        ReleasePolicy::Flooded { .. } | ReleasePolicy::Noised { .. } => 6.0 * release.sigma(noise),
    };
    // A slot error of `slot_noise` moves a coefficient re-encoded at 2·scale/gain by at
    // most 2·scale·slot_noise·2/gain.
    let wanted = 32.0 * scale * slot_noise;
    let he = plan.params().he();
    let q0 = he.chain()[0] as f64;
    let bound = plan
        .score_bounds()
        .iter()
        .take(2)
        .copied()
        .fold(f64::INFINITY, f64::min);
    let deviation = (he.n() as f64 / 3.0).sqrt() / scale;
    let cap = (bound / (6.0 * deviation)).min(q0 / 8.0);
    wanted.min(cap).floor().clamp(1.0, (1u64 << 62) as f64) as i64
}

/// Runs the active attack on a CKKS service of `plan`: the colluding client fills one
/// batch with `filler` (repeated), the server answers it with `(0, 1)` and `(0, X)`; the
/// recovered key is then checked on the encrypted batch of `victim`. The trusted party
/// measures its noise estimate at setup on `filler` (known inputs).
///
/// # Errors
/// When the service cannot start or a query fails ([`AttackError`]); a failed recovery is
/// an [`Outcome`] with `recovered: false`.
pub fn ckks<R: RngCore + CryptoRng>(
    plan: &CkksPlan,
    release: ReleasePolicy,
    amplify: bool,
    filler: &[Image],
    victim: &[Image],
    rng: &mut R,
) -> Result<Outcome, AttackError> {
    let codec = CkksCodec::new(plan.clone(), rng)?
        .with_release(release)
        .with_measured_noise(filler)?;
    let noise = codec.noise().value();
    let (server, control) = MaliciousCompute::new(CkksEvaluator::new(plan.clone())?);
    let service = InProcessService::start(codec, server, &BatchConfig::default())?;
    let mut client = service.client();
    let start = Instant::now();
    let gain = if amplify {
        gain(plan, release, noise)
    } else {
        1
    };
    let meta = Arc::new(Mutex::new(None));
    let (crafted, out) = (plan.clone(), Arc::clone(&meta));
    control.push(Reply::Crafted(Box::new(move |honest| {
        let (reply, level, scale) = craft_ckks(&crafted, &honest, gain)?;
        *out.lock().unwrap_or_else(PoisonError::into_inner) = Some((level, scale));
        Ok(reply)
    })));
    let scores = client.query(&fill(filler, plan.batch()))?;
    let (level, scale) = meta
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .ok_or(AttackError::NotCrafted)?;
    let encoder = Encoder::new(plan.params());
    let he = plan.params().he();
    let mut worst = 0.0f64;
    let mut equations = Vec::with_capacity(2);
    for k in 0..2 {
        let re: Vec<f64> = scores.iter().map(|row| f64::from(row[k])).collect();
        // The slots carry gain·s: re-encoding at scale/gain gives σ(s) directly.
        let (symmetric, err) = symmetric_part(&encoder, &re, scale / gain as f64)?;
        worst = worst.max(err);
        let (c0, c1) = monomial_pair(he, k, level, 1);
        equations.push(Equation::new(&c0, &c1, symmetric));
    }
    conclude_ckks(
        plan,
        (release, noise),
        Adversary::Active,
        gain,
        (&equations[0], &equations[1]),
        worst,
        CkksRun {
            client: &mut client,
            control: &control,
            start,
            victim,
        },
    )
}

/// The crafted BFV reply: for the first plaintext prime, `(0, round(Q·μ_c·T'/t))` for the
/// class `c < mus.len()` and `(0, 0)` for the others; `(0, 0)` for every other prime.
fn craft_bfv(plan: &BfvPlan, mus: &[u64]) -> Result<Vec<u8>, AttackError> {
    let params = plan.params();
    let n = plan.n();
    let t = *params[0].plain_modulus();
    let others = params[1..].iter().fold(1u64, |acc, p| {
        t.mul(acc, t.reduce(p.plain_modulus().value()))
    });
    let mut cts = Vec::with_capacity(params.len() * plan.output_len());
    for (j, p) in params.iter().enumerate() {
        let level = p.he().max_level();
        for c in 0..plan.output_len() {
            let c1 = match (j, mus.get(c)) {
                (0, Some(&mu)) => {
                    let mut coeffs = vec![0u64; n];
                    coeffs[0] = t.mul(t.reduce(mu), others);
                    bfv::scale_plain(p, &BfvPlaintext::from_coeffs(t.value(), coeffs)?)?
                }
                _ => RnsPoly::zero(n, level),
            };
            cts.push(bfv::Ciphertext::new(p, RnsPoly::zero(n, level), c1)?);
        }
    }
    Ok(bfv_payload(&cts)?)
}

/// Runs the active attack on a BFV service of `plan` (compiled from `quant`): the
/// colluding client fills one batch with `filler`, the server answers with the crafted
/// reply of the module docs; the recovered key is checked on the encrypted batch of
/// `victim`.
///
/// # Errors
/// As [`ckks`].
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
    let params = &plan.params()[0];
    let t = params.plain_modulus().value();
    // |a| <= t/2 read through f32 (relative 2^-24) and a few f64 roundings: eps = t·2^-24
    // is twice the worst case.
    let eps = t as f64 * f64::powi(2.0, -24);
    let mus = multipliers(t, eps, plan.output_len()).ok_or(AttackError::PrimeTooLarge { t })?;
    let start = Instant::now();
    control.push(Reply::Fixed(craft_bfv(plan, &mus)?));
    let scores = client.query(&fill(filler, plan.batch()))?;
    let others: f64 = plan.plain_moduli()[1..].iter().map(|&p| p as f64).product();
    let unit = quant.output_scale().to_f64() / others;
    let measured: Vec<Vec<f64>> = (0..mus.len())
        .map(|c| scores.iter().map(|row| f64::from(row[c]) * unit).collect())
        .collect();
    let slots = refine_residues(t, &mus, &measured);
    let encoder = BatchEncoder::new(plan.n(), t)?;
    let pt = encoder.encode_u64(&slots)?;
    let modulus = params.plain_modulus();
    let he = params.he();
    let key = ternary(pt.coeffs().iter().map(|&c| modulus.centre(c)))
        .ok()
        .map(|s| SecretKey::from_ternary(he, &s))
        .transpose()?;
    let seconds = start.elapsed().as_secs_f64();
    let client_queries = client.queries();
    let verified = match &key {
        Some(key) => verify_bfv(quant, plan, key, &mut client, &control, victim)?,
        None => false,
    };
    Ok(Outcome {
        scheme: Scheme::Bfv,
        adversary: Adversary::Active,
        release: release.to_string(),
        release_sigma: 0.0,
        noise_estimate: None,
        recovered: key.is_some(),
        verified_on_unseen: verified,
        ciphertexts_used: mus.len(),
        batches: 1,
        gain: 1,
        client_queries,
        reencoding_error: None,
        seconds,
        ring_degree: plan.n(),
        slots: plan.batch(),
    })
}
