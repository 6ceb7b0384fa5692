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
//! inverse slot transform gives `s mod t`. One batch, against a trusted party without its
//! reply check ([`BfvCodec::without_reply_checks`]); with it, `λ_c·ŝ_j` spread over the
//! whole plaintext range is refused.

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
    ckks_service, conclude_ckks, fill, released, verify_bfv, Adversary, AttackError, CkksRun,
    ControlHandle, Cost, MaliciousCompute, Outcome, Reply,
};
use crate::oracle::{Image, Oracle};
use crate::service::bfv::encode_ciphertexts as bfv_payload;
use crate::service::ckks::WELL_FORMED_FACTOR;
use crate::service::ckks::{decode_ciphertexts, encode_ciphertexts as ckks_payload, HeBatchError};
use crate::service::{
    BatchConfig, BfvCodec, BfvEvaluator, CodecError, InProcessService, ReleasePolicy, Scheme,
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

/// Replaces the scores of classes 0 and 1 in an honest CKKS reply by `(0, gain)` and
/// `(0, gain·X)`, with the honest level, scale and bounds.
fn craft_ckks(plan: &CkksPlan, honest: &[u8], gain: i64) -> Result<Vec<u8>, CodecError> {
    let backend = |error: Box<dyn std::error::Error + Send + Sync>| CodecError::Backend {
        scheme: Scheme::Ckks,
        error,
    };
    let mut cts =
        decode_ciphertexts(plan, honest, plan.output_len()).map_err(|e| backend(Box::new(e)))?;
    let he = plan.params().he();
    for (k, ct) in cts.iter_mut().take(2).enumerate() {
        let (c0, c1) = monomial_pair(he, k, ct.level(), gain);
        *ct = CkksCiphertext::from_parts(
            plan.params(),
            c0,
            c1,
            ct.scale(),
            ct.msg_bound(),
            ct.err_bound(),
        )
        .map_err(|e| backend(Box::new(e)))?;
    }
    ckks_payload(&cts)
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

/// The largest gain of the adaptive server ([`ckks_adaptive`]): its crafted slots are
/// `gain·ζ^k·s(ζ)/Δ`, whose imaginary parts have a deviation of `gain·√(N/3)/Δ`
/// (ternary `s`), and the trusted party refuses an imaginary part beyond
/// [`WELL_FORMED_FACTOR`] times its noise estimate `noise` (public, as the plan). Five
/// deviations within that bound keep all `N` imaginary parts of the two crafted
/// ciphertexts within it with probability about 99.5 %.
pub fn adaptive_gain(plan: &CkksPlan, noise: f64) -> i64 {
    let (_, scale) = plan.output_level_scale();
    let deviation = (plan.params().he().n() as f64 / 3.0).sqrt() / scale;
    (WELL_FORMED_FACTOR * noise / (5.0 * deviation))
        .floor()
        .clamp(1.0, (1u64 << 62) as f64) as i64
}

/// Concludes an active CKKS attack from the equations of its two crafted ciphertexts
/// (none when nothing was released).
fn conclude_crafted(
    plan: &CkksPlan,
    policy: (ReleasePolicy, f64),
    cost: Cost,
    equations: Option<&[(Equation, f64)]>,
    run: CkksRun<'_>,
) -> Result<Outcome, AttackError> {
    let pair = equations.map(|e| (&e[0].0, &e[1].0, e[0].1.max(e[1].1)));
    conclude_ckks(plan, policy, Adversary::Active, cost, pair, run)
}

/// The equation of the crafted `(0, X^k)` and its re-encoded release: `values` are the
/// released real parts of all slots divided by the gain, so re-encoding them at the
/// output `scale` gives `σ(X^k·s)`; also the re-encoding error.
fn crafted_equation(
    plan: &CkksPlan,
    encoder: &Encoder,
    k: usize,
    values: &[f64],
) -> Result<(Equation, f64), AttackError> {
    let (level, scale) = plan.output_level_scale();
    let (symmetric, error) = symmetric_part(encoder, values, scale)?;
    let (c0, c1) = monomial_pair(plan.params().he(), k, level, 1);
    Ok((Equation::new(&c0, &c1, symmetric), error))
}

/// Runs the active attack on a CKKS service of `plan`: the colluding client fills one
/// batch with `filler` (repeated), the server answers it with `(0, gain)` and
/// `(0, gain·X)` (`gain` 1, or [`gain`] when amplifying); the recovered key is then
/// checked on the encrypted batch of `victim`. The trusted party measures its noise
/// estimate at setup on `filler` (known inputs). A refused reply is an outcome with
/// nothing recovered and one refused batch.
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
    let (service, control, noise) = ckks_service(plan, release, filler, rng)?;
    let mut client = service.client();
    let start = Instant::now();
    let gain = if amplify {
        gain(plan, release, noise)
    } else {
        1
    };
    let crafted = plan.clone();
    control.push(Reply::Crafted(Box::new(move |honest| {
        craft_ckks(&crafted, &honest, gain)
    })));
    let scores = released(&mut client, &fill(filler, plan.batch()))?;
    let encoder = Encoder::new(plan.params());
    let equations = scores
        .map(|scores| {
            (0..2)
                .map(|k| {
                    let values: Vec<f64> = scores
                        .iter()
                        .map(|row| f64::from(row[k]) / gain as f64)
                        .collect();
                    crafted_equation(plan, &encoder, k, &values)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let mut cost = Cost::one_batch(gain);
    cost.refused = usize::from(equations.is_none());
    conclude_crafted(
        plan,
        (release, noise),
        cost,
        equations.as_deref(),
        CkksRun {
            client: &mut client,
            control: &control,
            start,
            victim,
        },
    )
}

/// The adaptive active attack on a CKKS service of `plan`: the server knows the trusted
/// party's well-formedness check and its noise estimate, so it scales its crafted
/// ciphertexts by [`adaptive_gain`] to pass it, and answers every batch the colluding
/// client fills with `(0, gain)` for the even classes and `(0, gain·X)` for the odd ones
/// (five releases of each per batch). The released values, divided by the gain, are
/// averaged over the batches; after each budget of `budgets` batches the averages are
/// solved for `s` and a recovered key is checked on the encrypted batch of `victim`. A
/// refused batch releases nothing, and the server lowers its gain by a fifth. One outcome
/// per budget, in increasing order.
///
/// # Errors
/// As [`ckks`].
pub fn ckks_adaptive<R: RngCore + CryptoRng>(
    plan: &CkksPlan,
    release: ReleasePolicy,
    budgets: &[usize],
    filler: &[Image],
    victim: &[Image],
    rng: &mut R,
) -> Result<Vec<Outcome>, AttackError> {
    let (service, control, noise) = ckks_service(plan, release, filler, rng)?;
    let mut client = service.client();
    let start = Instant::now();
    let mut budgets = budgets.to_vec();
    budgets.sort_unstable();
    budgets.dedup();
    let mut gain = adaptive_gain(plan, noise);
    let encoder = Encoder::new(plan.params());
    let batch = fill(filler, plan.batch());
    // sums[k][slot]: the released values of (0, gain·X^k) over the gain, summed.
    let mut sums = vec![vec![0.0f64; plan.batch()]; 2];
    let mut counts = [0usize; 2];
    let (mut refused, mut outcomes) = (0, Vec::with_capacity(budgets.len()));
    for spent in 1..=budgets.last().copied().unwrap_or(0) {
        control.push(Reply::Fixed(crafted_reply(plan, gain)?));
        match released(&mut client, &batch)? {
            Some(scores) => {
                for class in 0..plan.output_len() {
                    let k = class % 2;
                    for (sum, row) in sums[k].iter_mut().zip(&scores) {
                        *sum += f64::from(row[class]) / gain as f64;
                    }
                    counts[k] += 1;
                }
            }
            None => {
                refused += 1;
                gain = (gain - gain / 5).max(1);
            }
        }
        if budgets.binary_search(&spent).is_err() {
            continue;
        }
        let equations = if counts.iter().all(|&c| c > 0) {
            let solved = (0..2)
                .map(|k| {
                    let mean: Vec<f64> = sums[k].iter().map(|v| v / counts[k] as f64).collect();
                    crafted_equation(plan, &encoder, k, &mean)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Some(solved)
        } else {
            None
        };
        let cost = Cost {
            gain,
            adaptive: true,
            ciphertexts: counts.iter().sum(),
            batches: spent,
            refused,
        };
        outcomes.push(conclude_crafted(
            plan,
            (release, noise),
            cost,
            equations.as_deref(),
            CkksRun {
                client: &mut client,
                control: &control,
                start,
                victim,
            },
        )?);
    }
    Ok(outcomes)
}

/// The adaptive server's reply: `(0, gain·X^(c mod 2))` for every class `c`, at the
/// plan's output level and scale.
fn crafted_reply(plan: &CkksPlan, gain: i64) -> Result<Vec<u8>, AttackError> {
    let (level, scale) = plan.output_level_scale();
    let he = plan.params().he();
    let cts = (0..plan.output_len())
        .map(|class| {
            let (c0, c1) = monomial_pair(he, class % 2, level, gain);
            CkksCiphertext::from_parts(plan.params(), c0, c1, scale, 1.0, 1.0)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ckks_payload(&cts)?)
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

/// The BFV trusted party the active attacks face.
#[derive(Clone, Copy, Debug)]
pub struct BfvParty<'a> {
    /// What it releases of each score.
    pub release: ReleasePolicy,
    /// With the calibration images of the deployment, it checks every reply as a
    /// deployment does ([`BfvCodec::with_calibration`]); without, it releases whatever a
    /// reply decrypts to ([`BfvCodec::without_reply_checks`]).
    pub checks: Option<&'a [Image]>,
}

/// A service of `party` whose compute server the adversary steers.
fn bfv_service<R: RngCore + CryptoRng>(
    quant: &QuantizedModel,
    plan: &BfvPlan,
    party: BfvParty<'_>,
    rng: &mut R,
) -> Result<(InProcessService, ControlHandle), AttackError> {
    let codec = BfvCodec::new(quant.clone(), plan.clone(), rng)?.with_release(party.release)?;
    let codec = match party.checks {
        Some(calibration) => codec.with_calibration(calibration)?,
        None => codec.without_reply_checks(),
    };
    let (server, control) = MaliciousCompute::new(BfvEvaluator::new(plan.clone())?);
    let service = InProcessService::start(codec, server, &BatchConfig::default())?;
    Ok((service, control))
}

/// The noiseless encryptions `(Δ·h, 0)` of `honest` (the integer scores of a full batch,
/// `honest[slot][class]`, which the colluding server knows), prime after prime: the reply
/// every probe starts from.
fn honest_reply(plan: &BfvPlan, honest: &[Vec<i128>]) -> Result<Vec<bfv::Ciphertext>, AttackError> {
    let n = plan.n();
    let mut cts = Vec::with_capacity(plan.params().len() * plan.output_len());
    for p in plan.params() {
        let t = p.plain_modulus().value();
        let encoder = BatchEncoder::new(n, t)?;
        for c in 0..plan.output_len() {
            let residues: Vec<u64> = honest
                .iter()
                .map(|row| row[c].rem_euclid(i128::from(t)) as u64)
                .collect();
            let c0 = bfv::scale_plain(p, &encoder.encode_u64(&residues)?)?;
            let c1 = RnsPoly::zero(n, p.he().max_level());
            cts.push(bfv::Ciphertext::new(p, c0, c1)?);
        }
    }
    Ok(cts)
}

/// A probe of slot `slot` with multiplier `lambda`: `reply` ([`honest_reply`]) with
/// `c_1 = Δ·λ·e_slot` in class 0 of the first prime, which then decrypts to
/// `h + λ·ŝ_slot` in that slot; `encoder` is the first prime's.
fn craft_probe(
    plan: &BfvPlan,
    reply: &[bfv::Ciphertext],
    encoder: &BatchEncoder,
    slot: usize,
    lambda: u64,
) -> Result<Vec<u8>, AttackError> {
    let p = &plan.params()[0];
    let mut unit = vec![0u64; plan.n()];
    unit[slot] = lambda;
    let c1 = bfv::scale_plain(p, &encoder.encode_u64(&unit)?)?;
    let mut cts = reply.to_vec();
    cts[0] = bfv::Ciphertext::new(p, reply[0].c0().clone(), c1)?;
    Ok(bfv_payload(&cts)?)
}

/// The probing active server against BFV, the adversary the reply check leaves: each of
/// `probes` batches (filled by the colluding client with `filler`) is answered with the
/// honest scores, noiselessly encrypted, plus `λ·ŝ_j` in one slot `j` of one score
/// (`craft_probe`, random `λ`, a new slot each batch). A reply the trusted party releases
/// shows `ŝ_j` (through the `f32` score, to its precision); one it refuses shows one bit.
/// The outcome counts the released probes ([`Outcome::probes_released`]); the key would
/// need about `N` released slots, so it is never solved here (`recovered` is false).
/// `progress` hears the number of probes answered and of those released after each.
///
/// # Errors
/// As [`ckks`].
pub fn bfv_probing<R: RngCore + CryptoRng>(
    quant: &QuantizedModel,
    plan: &BfvPlan,
    party: BfvParty<'_>,
    probes: usize,
    filler: &[Image],
    rng: &mut R,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Outcome, AttackError> {
    let (service, control) = bfv_service(quant, plan, party, rng)?;
    let mut client = service.client();
    let batch = fill(filler, plan.batch());
    // The batch repeats the filler: its scores are the filler's, repeated alike.
    let scores = filler
        .iter()
        .enumerate()
        .map(|(image, pixels)| {
            let pixels: Vec<f64> = pixels.pixels().iter().map(|&p| f64::from(p)).collect();
            quant
                .quantize_input(&pixels)
                .and_then(|q| quant.infer(&q))
                .map_err(|error| HeBatchError::Quantize { image, error })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let reply = honest_reply(plan, &fill(&scores, plan.batch()))?;
    let t = plan.params()[0].plain_modulus().value();
    let encoder = BatchEncoder::new(plan.n(), t)?;
    let start = Instant::now();
    let (mut released_probes, mut refused) = (0, 0);
    for probe in 0..probes {
        let lambda = 1 + rng.next_u64() % (t - 1);
        control.push(Reply::Fixed(craft_probe(
            plan,
            &reply,
            &encoder,
            probe % plan.n(),
            lambda,
        )?));
        match released(&mut client, &batch)? {
            Some(_) => released_probes += 1,
            None => refused += 1,
        }
        progress(probe + 1, released_probes);
    }
    Ok(Outcome {
        ciphertexts_used: probes,
        batches: probes,
        adaptive: true,
        refused_batches: refused,
        probes_released: Some(released_probes),
        client_queries: client.queries(),
        seconds: start.elapsed().as_secs_f64(),
        ..bfv_outcome(plan, party)
    })
}

/// The outcome of an active BFV attack on `plan` that recovered nothing, before its cost.
fn bfv_outcome(plan: &BfvPlan, party: BfvParty<'_>) -> Outcome {
    Outcome {
        scheme: Scheme::Bfv,
        adversary: Adversary::Active,
        release: party.release.to_string(),
        release_sigma: 0.0,
        noise_estimate: None,
        recovered: false,
        verified_on_unseen: false,
        ciphertexts_used: 0,
        batches: 0,
        gain: 1,
        adaptive: false,
        refused_batches: 0,
        reply_checks: party.checks.is_some(),
        probes_released: None,
        client_queries: 0,
        reencoding_error: None,
        seconds: 0.0,
        ring_degree: plan.n(),
        slots: plan.batch(),
    }
}

/// Runs the active attack on a BFV service of `plan` (compiled from `quant`): the
/// colluding client fills one batch with `filler`, the server answers with the crafted
/// reply of the module docs; the recovered key is checked on the encrypted batch of
/// `victim`; the trusted party is `party`.
///
/// # Errors
/// As [`ckks`].
pub fn bfv<R: RngCore + CryptoRng>(
    quant: &QuantizedModel,
    plan: &BfvPlan,
    party: BfvParty<'_>,
    filler: &[Image],
    victim: &[Image],
    rng: &mut R,
) -> Result<Outcome, AttackError> {
    let (service, control) = bfv_service(quant, plan, party, rng)?;
    let mut client = service.client();
    let params = &plan.params()[0];
    let t = params.plain_modulus().value();
    // |a| <= t/2 read through f32 (relative 2^-24) and a few f64 roundings: eps = t·2^-24
    // is twice the worst case.
    let eps = t as f64 * f64::powi(2.0, -24);
    let mus = multipliers(t, eps, plan.output_len()).ok_or(AttackError::PrimeTooLarge { t })?;
    let start = Instant::now();
    control.push(Reply::Fixed(craft_bfv(plan, &mus)?));
    let scores = released(&mut client, &fill(filler, plan.batch()))?;
    let key = match &scores {
        Some(scores) => {
            let others: f64 = plan.plain_moduli()[1..].iter().map(|&p| p as f64).product();
            let unit = quant.output_scale().to_f64() / others;
            let measured: Vec<Vec<f64>> = (0..mus.len())
                .map(|c| scores.iter().map(|row| f64::from(row[c]) * unit).collect())
                .collect();
            let slots = refine_residues(t, &mus, &measured);
            let encoder = BatchEncoder::new(plan.n(), t)?;
            let pt = encoder.encode_u64(&slots)?;
            let modulus = params.plain_modulus();
            ternary(pt.coeffs().iter().map(|&c| modulus.centre(c)))
                .ok()
                .map(|s| SecretKey::from_ternary(params.he(), &s))
                .transpose()?
        }
        None => None,
    };
    let seconds = start.elapsed().as_secs_f64();
    let client_queries = client.queries();
    let verified = match &key {
        Some(key) => verify_bfv(quant, plan, key, &mut client, &control, victim)?,
        None => false,
    };
    Ok(Outcome {
        recovered: key.is_some(),
        verified_on_unseen: verified,
        ciphertexts_used: mus.len(),
        batches: 1,
        refused_batches: usize::from(scores.is_none()),
        client_queries,
        seconds,
        ..bfv_outcome(plan, party)
    })
}
