//! Compiling a [`Network<f64>`] for CKKS: integer weights, magnitude and error
//! bounds, and the automatic choice of the ring degree and chain.

use alloc::vec;
use alloc::vec::Vec;

use heist_core::nn::{LinearMap, Network, Op};

use super::kernel::CompiledRow;
use super::NnError;
use crate::ckks::{fft_error, CkksParams};
use crate::keys::{keyswitch_noise_bound, rounding_bound, slot_bound, BETA, ERROR_VARIANCE};
use crate::params::{max_log_q, primes_for_sizes, HeParams, SecurityLevel};

/// The smallest and largest prime size the chain search uses.
const PRIME_BITS: (u32, u32) = (20, 60);
/// The range of scale exponents (input scale and scale after each rescale) searched.
const SCALE_BITS: (u32, u32) = (16, 50);
/// Bits of headroom kept above every worst-case magnitude (sign and rounding).
const HEADROOM_BITS: f64 = 2.0;

/// How [`CkksPlan`] quantises the weights and chooses parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanConfig {
    /// Signed bits of every integer weight: `w_q = round(w · 2^k)` with the largest `k`
    /// such that every `|w_q| <= 2^(bits-1)` in its layer; in `[2, 24]`. `None`: the
    /// search also tries every even width from 8 to 24.
    pub weight_bits: Option<u32>,
    /// Largest input magnitude the bounds assume (MNIST pixels `k/255` are in `[0, 1]`).
    pub input_max_abs: f64,
    /// The largest acceptable predicted error of a score: the smallest ring degree with a
    /// chain that fits the worst-case magnitudes and meets it is chosen (infinite by
    /// default: the smallest degree that fits).
    pub max_score_error: f64,
    /// The security level the chain is checked against.
    pub security: SecurityLevel,
    /// Size the chain for the magnitudes observed on sample inputs (times a margin)
    /// instead of the worst case over all inputs in range. Much more precision is left
    /// for typical inputs, but an input driving a value beyond the calibrated magnitude
    /// makes it wrap around the modulus (a wrong score). The tracked error bounds remain
    /// worst cases.
    pub calibration: Option<Calibration>,
}

/// Sample inputs and a safety factor for [`PlanConfig::calibration`].
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// Sample inputs, each of the network's input length.
    pub inputs: Vec<Vec<f64>>,
    /// Factor (at least 1) applied to the largest magnitude observed for each value.
    pub margin: f64,
}

/// The calibrated magnitudes of `config`, if it asks for them (computed once per plan,
/// whatever the number of degrees tried).
fn calibration(
    network: &Network<f64>,
    config: &PlanConfig,
) -> Result<Option<Vec<Vec<f64>>>, NnError> {
    config
        .calibration
        .as_ref()
        .map(|c| calibrate(network, c))
        .transpose()
}

/// The largest magnitude of every value after every operation over the calibration
/// inputs, times the margin.
fn calibrate(network: &Network<f64>, c: &Calibration) -> Result<Vec<Vec<f64>>, NnError> {
    if c.inputs.is_empty() || !(c.margin >= 1.0 && c.margin.is_finite()) {
        return Err(NnError::Config);
    }
    let mut mags: Vec<Vec<f64>> = Vec::new();
    for input in &c.inputs {
        network
            .evaluate_with(input, |op, values| {
                if mags.len() <= op {
                    mags.push(vec![0.0; values.len()]);
                }
                for (m, v) in mags[op].iter_mut().zip(values) {
                    *m = f64::max(*m, libm::fabs(*v) * c.margin);
                }
            })
            .map_err(NnError::Calibration)?;
    }
    Ok(mags)
}

impl Default for PlanConfig {
    /// Searched weight widths, inputs in `[-1, 1]`, no error cap, 128-bit security, worst-case
    /// magnitudes.
    fn default() -> Self {
        Self {
            weight_bits: None,
            input_max_abs: 1.0,
            max_score_error: f64::INFINITY,
            security: SecurityLevel::Tc128,
            calibration: None,
        }
    }
}

/// A linear map with integer weights `round(w · 2^log2)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CompiledLinear {
    pub(crate) input_len: usize,
    pub(crate) rows: Vec<CompiledRow>,
    /// The real bias of every row, added at the accumulator's scale.
    pub(crate) biases: Vec<f64>,
    pub(crate) log2: i32,
}

/// One compiled operation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CompiledOp {
    /// Integer multiply-accumulate plus bias; no level consumed.
    Linear(CompiledLinear),
    /// Square, relinearise, rescale by the top prime.
    Square,
}

impl CompiledLinear {
    /// Quantises `map` to `bits`-bit signed weights.
    fn new(op: usize, map: &LinearMap<f64>, bits: u32) -> Result<Self, NnError> {
        let max = map
            .rows()
            .iter()
            .flat_map(|r| r.terms().iter().map(|&(_, w)| libm::fabs(w)))
            .fold(0.0, f64::max);
        let q_max = libm::ldexp(1.0, bits as i32 - 1);
        let log2 = if max > 0.0 {
            // max = f 2^e, f in [0.5, 1): max 2^(bits-1-e) is in [2^(bits-2), 2^(bits-1)).
            let (_, e) = libm::frexp(max);
            bits as i32 - 1 - e
        } else {
            0
        };
        let mut rows = Vec::with_capacity(map.output_len());
        let mut biases = Vec::with_capacity(map.output_len());
        for row in map.rows() {
            // |w_q| <= 2^23 by the choice of log2 (bits <= 24): the casts are exact.
            let terms = row.terms().iter().map(|&(i, w)| {
                let wq = libm::round(libm::ldexp(w, log2));
                debug_assert!(libm::fabs(wq) <= q_max);
                (i, wq as i64)
            });
            rows.push(CompiledRow::from_terms(op, terms)?);
            if !row.bias().is_finite() {
                return Err(NnError::NotFinite { op });
            }
            biases.push(row.bias());
        }
        Ok(Self {
            input_len: map.input_len(),
            rows,
            biases,
            log2,
        })
    }

    /// Message and error bounds of every output, given those of the inputs at `scale`
    /// (the error in integer units at `scale`; the outputs' at `scale · 2^log2`).
    ///
    /// The computed message `Σ w_q x / 2^k + b` differs from the real `Σ w x + b` by
    /// `Σ (w_q - 2^k w) x / 2^k` (each `|w_q - 2^k w| <= 1/2`); in integer units at the
    /// new scale `Δ 2^k`, the error is at most `Σ |w_q| e_i + (1/2) Δ Σ M_i` plus `1/2`
    /// for the rounded bias. Messages are bounded by `Σ |w_q| M_i / 2^k + |b|`.
    pub(crate) fn bounds(&self, scale: f64, msg: &[f64], err: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let inv = libm::ldexp(1.0, -self.log2);
        self.rows
            .iter()
            .zip(&self.biases)
            .map(|(row, bias)| {
                let (mut m, mut e, mut msum) = (0.0, 0.0, 0.0);
                for (i, w) in row.magnitudes() {
                    m += f64::from(w) * msg[i];
                    e += f64::from(w) * err[i];
                    msum += msg[i];
                }
                (m * inv + libm::fabs(*bias), e + 0.5 * scale * msum + 0.5)
            })
            .unzip()
    }
}

/// The bounds of a square followed by a rescale by `q`, per element, as the CKKS
/// evaluator tracks them (`square_relin` then `rescale`): message `M²`, error
/// `(2 Δ M E + E² + ks) / q + rounding_bound(N)`.
fn square_bounds(n: usize, scale: f64, q: f64, ks: f64, msg: &mut [f64], err: &mut [f64]) {
    let round = rounding_bound(n as f64);
    for (m, e) in msg.iter_mut().zip(err.iter_mut()) {
        *e = (2.0 * scale * *m * *e + *e * *e + ks) / q + round;
        *m = *m * *m;
    }
}

/// The error bound of a fresh input ciphertext at `scale` (encoding, floating point,
/// secret-key encryption), in integer units, as [`crate::ckks`] tracks it.
pub(crate) fn fresh_error(n: usize, scale: f64, max_abs: f64) -> f64 {
    let nf = n as f64;
    slot_bound(nf, 1.0 / 12.0) + fft_error(n, scale, max_abs) + slot_bound(nf, ERROR_VARIANCE)
}

/// The outcome of walking the network with given scales.
struct Walk {
    /// Prime sizes removed by each square, in order.
    rescale_bits: Vec<u32>,
    /// For each square, the bits the modulus must have at that point.
    square_need: Vec<f64>,
    /// Bits the last prime must have (linear outputs after the last square).
    tail_need: f64,
    /// Predicted error of the scores.
    score_error: f64,
    /// The magnitude every score is held to: calibrated when given, else the worst case.
    score_bounds: Vec<f64>,
}

/// A network compiled for CKKS batch inference with its parameters.
#[derive(Debug, Clone)]
pub struct CkksPlan {
    params: CkksParams,
    input_scale: f64,
    input_max_abs: f64,
    ops: Vec<CompiledOp>,
    input_len: usize,
    output_len: usize,
    predicted_error: f64,
    score_bounds: Vec<f64>,
}

impl CkksPlan {
    /// Compiles `network` and chooses the smallest secure ring degree (at least 2048) and
    /// the chain whose predicted score error is smallest, provided it is at most
    /// `config.max_score_error`.
    ///
    /// # Errors
    /// [`NnError::Config`], [`NnError::TooLarge`], [`NnError::NotFinite`] for a network or
    /// configuration that cannot be compiled; [`NnError::NoParameters`] when no secure
    /// degree up to 32768 fits.
    pub fn new(network: &Network<f64>, config: &PlanConfig) -> Result<Self, NnError> {
        let compiled = compile_all(network, config)?;
        let mags = calibration(network, config)?;
        let mut n = 2048;
        while n <= 32768 {
            let budget = max_log_q(n, config.security).unwrap_or(0);
            if let Some(plan) =
                Self::best(network, &compiled, config, n, Some(budget), mags.as_deref())?
            {
                return Ok(plan);
            }
            n *= 2;
        }
        Err(NnError::NoParameters {
            max_score_error: config.max_score_error,
        })
    }

    /// As [`Self::new`] at a fixed degree `n` without the security check (fast tests).
    ///
    /// # Errors
    /// As [`Self::new`].
    #[cfg(any(test, feature = "insecure-params"))]
    pub fn new_insecure_for_tests(
        network: &Network<f64>,
        config: &PlanConfig,
        n: usize,
    ) -> Result<Self, NnError> {
        let compiled = compile_all(network, config)?;
        let mags = calibration(network, config)?;
        Self::best(network, &compiled, config, n, None, mags.as_deref())?.ok_or(
            NnError::NoParameters {
                max_score_error: config.max_score_error,
            },
        )
    }

    /// The plan of smallest predicted error over the compiled weight widths at degree `n`,
    /// with the calibrated magnitudes `mags` if any.
    fn best(
        network: &Network<f64>,
        compiled: &[Vec<CompiledOp>],
        config: &PlanConfig,
        n: usize,
        budget: Option<u32>,
        mags: Option<&[Vec<f64>]>,
    ) -> Result<Option<Self>, NnError> {
        let mut best: Option<Self> = None;
        for ops in compiled {
            if let Some(plan) = Self::search(network, ops, config, n, budget, mags)? {
                if best
                    .as_ref()
                    .is_none_or(|b| plan.predicted_error < b.predicted_error)
                {
                    best = Some(plan);
                }
            }
        }
        Ok(best)
    }

    /// The best chain at degree `n` within `budget` bits (`None`: unchecked), if any.
    fn search(
        network: &Network<f64>,
        ops: &[CompiledOp],
        config: &PlanConfig,
        n: usize,
        budget: Option<u32>,
        mags: Option<&[Vec<f64>]>,
    ) -> Result<Option<Self>, NnError> {
        let squares = ops
            .iter()
            .filter(|op| matches!(op, CompiledOp::Square))
            .count();
        let mut best: Option<(f64, Vec<u32>, u32)> = None;
        for p_in in (SCALE_BITS.0..=SCALE_BITS.1).step_by(2) {
            for p in (SCALE_BITS.0..=SCALE_BITS.1).step_by(2) {
                let Some(walk) = walk(ops, n, config.input_max_abs, p_in, p, None, mags) else {
                    continue;
                };
                let Some(sizes) = chain_sizes(&walk, squares, budget) else {
                    continue;
                };
                if best.as_ref().is_none_or(|(e, _, _)| walk.score_error < *e) {
                    best = Some((walk.score_error, sizes, p_in));
                }
            }
        }
        let Some((error, sizes, p_in)) = best else {
            return Ok(None);
        };
        if error > config.max_score_error {
            return Ok(None);
        }
        let primes = primes_for_sizes(n, &sizes, &[])?;
        let (special, chain) = primes.split_last().ok_or(NnError::NoParameters {
            max_score_error: config.max_score_error,
        })?;
        let params = match budget {
            Some(_) => CkksParams::new(n, chain, *special, p_in, config.security)?,
            None => CkksParams::unchecked(n, chain, *special, p_in)?,
        };
        // Check the fit again with the actual primes (slightly below their powers of two).
        let Some(exact) = walk(
            ops,
            n,
            config.input_max_abs,
            p_in,
            0,
            Some(params.he()),
            mags,
        ) else {
            return Ok(None);
        };
        let log_q = |limbs: usize| {
            chain[..limbs]
                .iter()
                .map(|&q| libm::log2(q as f64))
                .sum::<f64>()
        };
        let fits = exact
            .square_need
            .iter()
            .enumerate()
            .all(|(j, &need)| need <= log_q(chain.len() - j))
            && exact.tail_need <= log_q(1);
        if !fits {
            return Ok(None);
        }
        Ok(Some(Self {
            params,
            input_scale: libm::ldexp(1.0, p_in as i32),
            input_max_abs: config.input_max_abs,
            ops: ops.to_vec(),
            input_len: network.input_len(),
            output_len: network.output_len(),
            predicted_error: exact.score_error,
            score_bounds: exact.score_bounds,
        }))
    }

    /// The CKKS parameters.
    pub fn params(&self) -> &CkksParams {
        &self.params
    }

    /// The scale the inputs are encoded at.
    pub fn input_scale(&self) -> f64 {
        self.input_scale
    }

    /// The largest input magnitude the bounds assume.
    pub fn input_max_abs(&self) -> f64 {
        self.input_max_abs
    }

    /// Number of inputs (one ciphertext each).
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Number of scores (one ciphertext each).
    pub fn output_len(&self) -> usize {
        self.output_len
    }

    /// Images per batch: one per slot, `N/2`.
    pub fn batch(&self) -> usize {
        self.params.slots()
    }

    /// The predicted bound on `|decrypted score - exact real score|` of every slot at the
    /// time of planning (the ciphertexts carry the same bound after evaluation).
    pub fn predicted_error(&self) -> f64 {
        self.predicted_error
    }

    /// The bound on the magnitude of each score (one per output) that the chain was sized
    /// for: the calibrated magnitude (largest observed times the margin) when the plan is
    /// calibrated, else the worst case over all inputs in range. An honest score beyond it
    /// has wrapped around the modulus, so a trusted party refuses a reply that decrypts
    /// beyond it and loses no correct answer.
    pub fn score_bounds(&self) -> &[f64] {
        &self.score_bounds
    }

    /// The level and scale of the score ciphertexts, as the evaluator produces them: a
    /// linear map multiplies the scale by `2^k`, a square squares it and rescales by the
    /// top prime of its level. A trusted party checks replies against these, not against
    /// what a reply claims.
    pub fn output_level_scale(&self) -> (usize, f64) {
        let he = self.params.he();
        let mut level = he.max_level();
        let mut scale = self.input_scale;
        for op in &self.ops {
            match op {
                CompiledOp::Linear(l) => scale *= libm::ldexp(1.0, l.log2),
                CompiledOp::Square => {
                    scale = scale * scale / he.chain()[level - 1] as f64;
                    level -= 1;
                }
            }
        }
        (level, scale)
    }

    /// The weight exponents `k` of the linear maps (weights are `round(w · 2^k)`).
    pub fn weight_log2(&self) -> Vec<i32> {
        self.ops
            .iter()
            .filter_map(|op| match op {
                CompiledOp::Linear(l) => Some(l.log2),
                CompiledOp::Square => None,
            })
            .collect()
    }

    pub(crate) fn ops(&self) -> &[CompiledOp] {
        &self.ops
    }
}

/// The network compiled at every weight width the configuration allows.
fn compile_all(
    network: &Network<f64>,
    config: &PlanConfig,
) -> Result<Vec<Vec<CompiledOp>>, NnError> {
    let widths: Vec<u32> = match config.weight_bits {
        Some(bits) => vec![bits],
        None => (8..=24).step_by(2).collect(),
    };
    widths
        .iter()
        .map(|&bits| compile(network, config, bits))
        .collect()
}

fn compile(
    network: &Network<f64>,
    config: &PlanConfig,
    bits: u32,
) -> Result<Vec<CompiledOp>, NnError> {
    // Written positively so that NaN fails every comparison.
    let valid = (2..=24).contains(&bits)
        && config.input_max_abs.is_finite()
        && config.input_max_abs > 0.0
        && config.max_score_error > 0.0;
    if !valid {
        return Err(NnError::Config);
    }
    network
        .ops()
        .iter()
        .enumerate()
        .map(|(i, op)| match op {
            Op::Linear(map) => CompiledLinear::new(i, map, bits).map(CompiledOp::Linear),
            Op::Square => Ok(CompiledOp::Square),
        })
        .collect()
}

/// Walks the compiled network with input scale `2^p_in`. Each square's rescale divides by
/// the top prime of `he`'s chain when given, else by a prime of `round(2 log2 Δ - p)` bits (so the scale
/// returns to about `2^p`), taken as its power of two; `None` when such a size is outside
/// the prime sizes searched.
fn walk(
    ops: &[CompiledOp],
    n: usize,
    input_max_abs: f64,
    p_in: u32,
    p: u32,
    he: Option<&HeParams>,
    mags: Option<&[Vec<f64>]>,
) -> Option<Walk> {
    let mut scale = libm::ldexp(1.0, p_in as i32);
    let input_len = match ops.first() {
        Some(CompiledOp::Linear(l)) => l.input_len,
        _ => 0,
    };
    let mut msg = vec![input_max_abs; input_len];
    let mut err = vec![fresh_error(n, scale, input_max_abs); input_len];
    let mut out = Walk {
        rescale_bits: Vec::new(),
        square_need: Vec::new(),
        tail_need: 0.0,
        score_error: 0.0,
        score_bounds: Vec::new(),
    };
    let need = |scale: f64, msg: &[f64], err: &[f64]| {
        let top = msg
            .iter()
            .zip(err)
            .map(|(m, e)| scale * m + e)
            .fold(0.0, f64::max);
        libm::log2(top) + HEADROOM_BITS
    };
    // Key-switching noise: the evaluator's own bound once the chain is known, else its
    // value with every ratio q_j / P at its largest, 1 (the special prime is the largest).
    let ks_bound = |limbs: usize| match he {
        Some(he) => keyswitch_noise_bound(he, limbs),
        None => {
            let nf = n as f64;
            BETA * BETA * nf * libm::sqrt(ERROR_VARIANCE * limbs as f64 / 12.0) + rounding_bound(nf)
        }
    };
    let squares = ops
        .iter()
        .filter(|op| matches!(op, CompiledOp::Square))
        .count();
    let mut done = 0;
    // The magnitudes the modulus must hold: calibrated ones when given, else worst cases.
    let held = |i: usize, worst: &[f64]| -> Vec<f64> { mags.map_or(worst, |m| &m[i]).to_vec() };
    for (i, op) in ops.iter().enumerate() {
        match op {
            CompiledOp::Linear(l) => {
                let (m, e) = l.bounds(scale, &msg, &err);
                msg = m;
                err = e;
                scale *= libm::ldexp(1.0, l.log2);
                if done == squares {
                    out.tail_need = out.tail_need.max(need(scale, &held(i, &msg), &err));
                }
            }
            CompiledOp::Square => {
                let sq_msg: Vec<f64> = msg.iter().map(|m| m * m).collect();
                let sq_err: Vec<f64> = msg
                    .iter()
                    .zip(&err)
                    .map(|(m, e)| 2.0 * scale * m * e + e * e)
                    .collect();
                out.square_need
                    .push(need(scale * scale, &held(i, &sq_msg), &sq_err));
                // The chain is [q_0, r_d, …, r_1]: square `done` removes r_{done+1}.
                let q = match he {
                    Some(he) => he.chain()[squares - done] as f64,
                    None => {
                        let bits = libm::round(2.0 * libm::log2(scale) - f64::from(p)).max(0.0);
                        if !(f64::from(PRIME_BITS.0)..=f64::from(PRIME_BITS.1)).contains(&bits) {
                            return None;
                        }
                        out.rescale_bits.push(bits as u32);
                        libm::ldexp(1.0, bits as i32)
                    }
                };
                square_bounds(
                    n,
                    scale,
                    q,
                    ks_bound(squares + 1 - done),
                    &mut msg,
                    &mut err,
                );
                scale = scale * scale / q;
                done += 1;
                if done == squares {
                    out.tail_need = need(scale, &held(i, &msg), &err);
                }
            }
        }
    }
    out.score_bounds = held(ops.len().saturating_sub(1), &msg);
    out.score_error = msg
        .iter()
        .zip(&err)
        .map(|(&m, &e)| e / scale + fft_error(n, 1.0, m))
        .fold(0.0, f64::max);
    Some(out)
}

/// Prime sizes `[q_0, r_d, …, r_1, special]` for a walk (`r_j` removed by square `j`), or
/// `None` when a size leaves `PRIME_BITS` or the total exceeds `budget`.
fn chain_sizes(walk: &Walk, squares: usize, budget: Option<u32>) -> Option<Vec<u32>> {
    let ok = |b: u32| (PRIME_BITS.0..=PRIME_BITS.1).contains(&b);
    if !walk.rescale_bits.iter().all(|&b| ok(b)) || walk.rescale_bits.len() != squares {
        return None;
    }
    // Bits above q_0 at square j: r_j + … + r_d. Primes lie in (2^(b-1), 2^b): count b - 1.
    let mut first = libm::ceil(walk.tail_need) as u32 + 1;
    for (j, &need) in walk.square_need.iter().enumerate() {
        let above: u32 = walk.rescale_bits[j..].iter().map(|b| b - 1).sum();
        let need_first = (libm::ceil(need) as u32 + 1).saturating_sub(above);
        first = first.max(need_first);
    }
    let first = first.max(PRIME_BITS.0);
    if !ok(first) {
        return None;
    }
    let mut sizes = vec![first];
    sizes.extend(walk.rescale_bits.iter().rev());
    let special = sizes.iter().copied().max().unwrap_or(first) + 1;
    if special > PRIME_BITS.1 + 1 {
        return None;
    }
    sizes.push(special);
    let total: u32 = sizes.iter().sum();
    match budget {
        Some(b) if total > b => None,
        _ => Some(sizes),
    }
}
