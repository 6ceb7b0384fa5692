//! Quantised integer inference: the exact computation BFV reproduces.
//!
//! **Scales.** A real value `v` is carried as an integer `q ≈ v * S`, with a
//! running scale `S` known per operation and kept exact as a [`Scale`]
//! (`factor * 2^log2`):
//!
//! - inputs: `q = round(x * s_in)` with an integer `s_in` (255 makes MNIST
//!   bytes `k / 255` exact), so `S = s_in`;
//! - linear map: weights `w_q = round(w * 2^k)` with the largest `k` such
//!   that every `|w_q| <= 2^(bits-1) - 1` (then lowered while every weight
//!   stays exact, e.g. `k = 0` for a sum pooling of scale 1); the
//!   accumulator has scale `S * 2^k` and the bias is quantised to it,
//!   `b_q = round(b * S * 2^k)`, so it adds exactly;
//! - square: `S` becomes `S^2`.
//!
//! The scores divided by the final scale approximate the real scores; the
//! error is bounded by [`Network::error_bound`] with
//! [`QuantizedModel::rounding`].
//!
//! **Worst-case magnitudes.** With every input `|q| <= B_in`, each value
//! carries a bound: `sum_i |w_q,i| B_i + |b_q|` through a linear row (this
//! also bounds every partial sum, in any order), `B^2` through a square.
//! Computed exactly in `u128`, these bounds are checked against a limit at
//! construction (by default `i128::MAX`, so the `i128` evaluation cannot
//! overflow), and a plaintext modulus `t >= 2 B + 1`
//! ([`QuantizedModel::min_plaintext_modulus`]) recovers every intermediate
//! from its centred residue.

use alloc::vec::Vec;
use core::fmt;

use super::error_bound::{OpRounding, Rounding, F64_UNIT};
use super::model::Model;
use super::network::{EvalError, LinearMap, Network, Op};

/// An exact positive scale `factor * 2^log2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scale {
    factor: u128,
    log2: i32,
}

impl Scale {
    /// The integer factor (a power of the input scale).
    pub fn factor(&self) -> u128 {
        self.factor
    }

    /// The power of two.
    pub fn log2(&self) -> i32 {
        self.log2
    }

    /// The scale as an f64, rounded to nearest.
    ///
    /// # Ranges
    /// Exact when `factor < 2^53` and the result is a normal f64; otherwise
    /// within a relative `2^-53` while it stays in the normal range (the
    /// scales the quantiser accepts always do).
    pub fn to_f64(&self) -> f64 {
        libm::scalbn(self.factor as f64, self.log2)
    }

    fn times_pow2(self, k: i32) -> Option<Scale> {
        Some(Scale {
            factor: self.factor,
            log2: self.log2.checked_add(k)?,
        })
    }

    fn squared(self) -> Option<Scale> {
        Some(Scale {
            factor: self.factor.checked_mul(self.factor)?,
            log2: self.log2.checked_mul(2)?,
        })
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} * 2^{}", self.factor, self.log2)
    }
}

/// The weight bit budget of each linear map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeightBits {
    /// The same budget for every linear map.
    Uniform(u32),
    /// One budget per linear map, in network order (squares have none).
    PerLinear(Vec<u32>),
}

/// Smallest accepted weight budget (weights in `[-1, 1]`).
pub const MIN_WEIGHT_BITS: u32 = 2;

/// Largest accepted weight budget (weights in `[-(2^31 - 1), 2^31 - 1]`).
pub const MAX_WEIGHT_BITS: u32 = 32;

/// How to quantise a model.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantConfig {
    /// Integer scale of the inputs: input `x` becomes `round(x * input_scale)`.
    pub input_scale: u32,
    /// Largest input magnitude accepted; the worst-case bounds assume it.
    pub input_max_abs: f64,
    /// Signed bit budget of the weights of each linear map, in
    /// `[MIN_WEIGHT_BITS, MAX_WEIGHT_BITS]`.
    pub weight_bits: WeightBits,
    /// Largest magnitude any intermediate may reach in the worst case.
    pub bound_limit: u128,
}

impl QuantConfig {
    /// Pixels in `[0, 1]` at scale 255 (MNIST bytes `k / 255` map exactly to
    /// `k`), `weight_bits` for every linear map, and the `i128` limit.
    pub fn pixels(weight_bits: u32) -> QuantConfig {
        QuantConfig {
            input_scale: 255,
            input_max_abs: 1.0,
            weight_bits: WeightBits::Uniform(weight_bits),
            bound_limit: i128::MAX as u128,
        }
    }
}

/// Why a model cannot be quantised with a configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum QuantError {
    /// `input_scale` is zero, or `input_max_abs` is not finite and positive,
    /// or their product exceeds 2^53.
    InvalidInputRange {
        /// The configured input scale.
        input_scale: u32,
        /// The configured input magnitude.
        input_max_abs: f64,
    },
    /// [`WeightBits::PerLinear`] has the wrong number of entries.
    WeightBitsCount {
        /// Linear maps in the network.
        expected: usize,
        /// Entries given.
        found: usize,
    },
    /// A weight budget is outside `[MIN_WEIGHT_BITS, MAX_WEIGHT_BITS]`.
    WeightBits {
        /// The operation.
        op: usize,
        /// The budget.
        bits: u32,
    },
    /// A running scale leaves the `u128` factor range, the `i32` exponent
    /// range or the normal f64 range.
    ScaleOverflow {
        /// The operation.
        op: usize,
    },
    /// A quantised bias does not fit in `i128`.
    BiasNotRepresentable {
        /// The operation.
        op: usize,
        /// The row.
        index: usize,
        /// The real bias.
        value: f64,
    },
    /// A worst-case magnitude exceeds the configured limit.
    BoundExceeded {
        /// The operation, `None` for the input.
        op: Option<usize>,
        /// The limit.
        limit: u128,
    },
}

impl fmt::Display for QuantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuantError::InvalidInputRange {
                input_scale,
                input_max_abs,
            } => write!(
                f,
                "input scale {input_scale} with input magnitude {input_max_abs} is not a valid input range"
            ),
            QuantError::WeightBitsCount { expected, found } => {
                write!(f, "{found} weight budgets given for {expected} linear maps")
            }
            QuantError::WeightBits { op, bits } => write!(
                f,
                "operation {op}: weight budget {bits} is outside [{MIN_WEIGHT_BITS}, {MAX_WEIGHT_BITS}]"
            ),
            QuantError::ScaleOverflow { op } => write!(f, "operation {op}: running scale overflows"),
            QuantError::BiasNotRepresentable { op, index, value } => {
                write!(f, "operation {op}: bias {index} = {value} does not fit in i128 at its scale")
            }
            QuantError::BoundExceeded { op: Some(op), limit } => {
                write!(f, "operation {op}: worst-case magnitude exceeds {limit}")
            }
            QuantError::BoundExceeded { op: None, limit } => {
                write!(f, "input: worst-case magnitude exceeds {limit}")
            }
        }
    }
}

impl core::error::Error for QuantError {}

/// 2^127 as f64: the first magnitude that does not fit in `i128`.
const TWO_POW_127: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;

/// A model quantised to integers, with exact scales and worst-case bounds.
///
/// ```
/// use heist_core::nn::{Dense, Layer, Model, QuantConfig, QuantizedModel, Rounding, Shape};
///
/// let dense = Dense { in_features: 3, out_features: 2, weight: vec![0.3, -0.7, 0.1, 1.5, 0.2, -0.4], bias: Some(vec![0.01, -0.02]) };
/// let model = Model::new(Shape::Flat(3), vec![Layer::Dense(dense), Layer::Square])?;
/// let quant = QuantizedModel::new(&model, &QuantConfig::pixels(8))?;
/// // After the dense layer the scale is 255 * 2^6 (largest |w| = 1.5 becomes
/// // 96 <= 127); the square makes it 255^2 * 2^12.
/// assert_eq!(quant.output_scale().factor(), 255 * 255);
/// assert_eq!(quant.output_scale().log2(), 12);
///
/// let input = [64.0 / 255.0, 128.0 / 255.0, 1.0];
/// let ints = quant.quantize_input(&input)?;
/// assert_eq!(ints, vec![64, 128, 255]);
/// let scores = quant.infer(&ints)?;
/// // The worst-case bound covers the actual magnitudes ...
/// assert!(scores.iter().all(|s| s.unsigned_abs() <= quant.max_abs_bound()));
/// // ... and the descaled scores are within the derived error bound.
/// let net = model.network();
/// let bound = net.error_bound(1.0, quant.rounding())? + net.error_bound(1.0, &Rounding::f64_arithmetic(net))?;
/// for (q, r) in quant.dequantize(&scores).iter().zip(model.infer(&input)?) {
///     assert!((q - r).abs() <= bound);
/// }
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedModel {
    network: Network<i128>,
    input_scale: u32,
    input_max_abs: f64,
    input_bound: u64,
    scales: Vec<Scale>,
    weight_log2: Vec<Option<i32>>,
    op_bounds: Vec<u128>,
    rounding: Rounding,
}

/// The quantisation of one linear map.
struct QuantizedLinear {
    map: LinearMap<i128>,
    log2: i32,
    bounds: Vec<u128>,
}

/// The power of two `k` such that `round(w * 2^k)` fits `bits` signed bits
/// for every weight (largest such `k`, then lowered while all stay exact).
///
/// # Ranges
/// `bits` in `[MIN_WEIGHT_BITS, MAX_WEIGHT_BITS]`, finite weights; every
/// `|round(w * 2^k)|` is at most `2^(bits-1) - 1`.
fn weight_exponent(map: &LinearMap<f64>, bits: u32) -> i32 {
    debug_assert!((MIN_WEIGHT_BITS..=MAX_WEIGHT_BITS).contains(&bits));
    let weights = || {
        map.rows()
            .iter()
            .flat_map(|row| row.terms().iter().map(|&(_, w)| w))
    };
    let max = weights().fold(0.0, |m: f64, w| m.max(w.abs()));
    if max == 0.0 {
        return 0;
    }
    let q_max = f64::from((1u32 << (bits - 1)) - 1);
    // max = f * 2^e with f in [0.5, 1), so max * 2^(bits-1-e) is in [2^(bits-2), 2^(bits-1)).
    let (_, e) = libm::frexp(max);
    let mut k = (bits as i32 - 1) - e;
    if libm::round(libm::scalbn(max, k)) > q_max {
        k -= 1;
    }
    // Lower k while every weight stays an integer: the same values, fewer bits
    // of scale. Terminates: a nonzero weight times a small enough 2^k is in (0, 1).
    while weights().all(|w| {
        let v = libm::scalbn(w, k - 1);
        v == libm::round(v)
    }) {
        k -= 1;
    }
    debug_assert!(weights().all(|w| libm::round(libm::scalbn(w, k)).abs() <= q_max));
    k
}

/// Quantises one linear map whose input has scale `scale` and element bounds `bounds`.
fn quantize_linear(
    op: usize,
    map: &LinearMap<f64>,
    bits: u32,
    scale: Scale,
    bounds: &[u128],
    limit: u128,
) -> Result<(QuantizedLinear, Scale), QuantError> {
    let log2 = weight_exponent(map, bits);
    let acc_scale = scale
        .times_pow2(log2)
        .ok_or(QuantError::ScaleOverflow { op })?;
    let acc_f64 = acc_scale.to_f64();
    if !(acc_f64.is_normal()) {
        return Err(QuantError::ScaleOverflow { op });
    }
    let mut row_index = 0;
    let quantized = map.try_map::<i128, QuantError>(
        // |round(w * 2^k)| <= 2^31 - 1 by the choice of k, so the cast is exact.
        |w| Ok(libm::round(libm::scalbn(w, log2)) as i64),
        |b| {
            let index = row_index;
            row_index += 1;
            let q = libm::round(b * acc_f64);
            if q.is_finite() && q.abs() < TWO_POW_127 {
                Ok(q as i128)
            } else {
                Err(QuantError::BiasNotRepresentable {
                    op,
                    index,
                    value: b,
                })
            }
        },
        |&w| w != 0,
    )?;
    let exceeded = QuantError::BoundExceeded {
        op: Some(op),
        limit,
    };
    let out_bounds = quantized
        .rows()
        .iter()
        .map(|row| {
            row.terms()
                .iter()
                .try_fold(row.bias().unsigned_abs(), |acc, &(i, w)| {
                    acc.checked_add(u128::from(w.unsigned_abs()).checked_mul(bounds[i])?)
                })
                .filter(|&b| b <= limit)
                .ok_or(exceeded)
        })
        .collect::<Result<Vec<u128>, QuantError>>()?;
    Ok((
        QuantizedLinear {
            map: quantized,
            log2,
            bounds: out_bounds,
        },
        acc_scale,
    ))
}

impl QuantizedModel {
    /// Quantises `model` as `config` says and proves, by the worst-case
    /// bounds, that no intermediate exceeds `config.bound_limit`.
    pub fn new(model: &Model, config: &QuantConfig) -> Result<QuantizedModel, QuantError> {
        let invalid = QuantError::InvalidInputRange {
            input_scale: config.input_scale,
            input_max_abs: config.input_max_abs,
        };
        let scaled_max = config.input_max_abs * f64::from(config.input_scale);
        if config.input_scale == 0
            || !(config.input_max_abs.is_finite() && config.input_max_abs > 0.0)
            || scaled_max > 9_007_199_254_740_992.0
        {
            return Err(invalid);
        }
        // round is monotone, so |x| <= max implies |round(fl(x s))| <= round(fl(max s)) < 2^53.
        let input_bound = libm::round(scaled_max) as u64;
        if u128::from(input_bound) > config.bound_limit {
            return Err(QuantError::BoundExceeded {
                op: None,
                limit: config.bound_limit,
            });
        }
        let network = model.network();
        let linear_count = network
            .ops()
            .iter()
            .filter(|op| matches!(op, Op::Linear(_)))
            .count();
        if let WeightBits::PerLinear(bits) = &config.weight_bits {
            if bits.len() != linear_count {
                return Err(QuantError::WeightBitsCount {
                    expected: linear_count,
                    found: bits.len(),
                });
            }
        }
        let mut scale = Scale {
            factor: u128::from(config.input_scale),
            log2: 0,
        };
        let mut bounds = alloc::vec![u128::from(input_bound); network.input_len()];
        let mut scales = Vec::with_capacity(network.ops().len());
        let mut weight_log2 = Vec::with_capacity(network.ops().len());
        let mut op_bounds = Vec::with_capacity(network.ops().len());
        let mut op_rounding = Vec::with_capacity(network.ops().len());
        let mut linear_index = 0;
        let quantized = network.try_map(|op, map| {
            let bits = match &config.weight_bits {
                WeightBits::Uniform(bits) => *bits,
                WeightBits::PerLinear(bits) => bits[linear_index],
            };
            linear_index += 1;
            if !(MIN_WEIGHT_BITS..=MAX_WEIGHT_BITS).contains(&bits) {
                return Err(QuantError::WeightBits { op, bits });
            }
            // Squares before this map: update scale and bounds.
            while scales.len() < op {
                square_step(scales.len(), &mut scale, &mut bounds, config.bound_limit)?;
                scales.push(scale);
                weight_log2.push(None);
                op_bounds.push(bounds.iter().copied().max().unwrap_or(0));
                op_rounding.push(OpRounding::EXACT);
            }
            let (linear, acc_scale) =
                quantize_linear(op, map, bits, scale, &bounds, config.bound_limit)?;
            op_rounding.push(OpRounding {
                weight_abs: libm::scalbn(0.5, -linear.log2),
                // 0.5 / S and b * S are each computed from the f64 value of S
                // (within a relative 2^-53), then rounded once or twice more.
                bias_abs: 0.5 / acc_scale.to_f64() * (1.0 + 4.0 * F64_UNIT),
                bias_rel: 3.0 * F64_UNIT,
                ..OpRounding::EXACT
            });
            scale = acc_scale;
            bounds = linear.bounds;
            scales.push(scale);
            weight_log2.push(Some(linear.log2));
            op_bounds.push(bounds.iter().copied().max().unwrap_or(0));
            Ok(linear.map)
        })?;
        // Squares after the last linear map.
        while scales.len() < network.ops().len() {
            square_step(scales.len(), &mut scale, &mut bounds, config.bound_limit)?;
            scales.push(scale);
            weight_log2.push(None);
            op_bounds.push(bounds.iter().copied().max().unwrap_or(0));
            op_rounding.push(OpRounding::EXACT);
        }
        let rounding = Rounding {
            input_abs: 0.5 / f64::from(config.input_scale) * (1.0 + 2.0 * F64_UNIT),
            input_rel: F64_UNIT,
            ops: op_rounding,
            // fl(fl(n) / fl(S)): three roundings.
            output_rel: 4.0 * F64_UNIT,
        };
        Ok(QuantizedModel {
            network: quantized,
            input_scale: config.input_scale,
            input_max_abs: config.input_max_abs,
            input_bound,
            scales,
            weight_log2,
            op_bounds,
            rounding,
        })
    }

    /// The integer network: `i64` weights, `i128` biases, one shared
    /// definition for the plaintext and the encrypted evaluation. Terms whose
    /// quantised weight is zero are dropped.
    pub fn network(&self) -> &Network<i128> {
        &self.network
    }

    /// The integer input scale.
    pub fn input_scale(&self) -> u32 {
        self.input_scale
    }

    /// Largest accepted real input magnitude.
    pub fn input_max_abs(&self) -> f64 {
        self.input_max_abs
    }

    /// Largest quantised input magnitude, `round(input_max_abs * input_scale)`.
    pub fn input_bound(&self) -> u64 {
        self.input_bound
    }

    /// The scale of the values after operation `op`, or `None` out of range.
    pub fn scale_after(&self, op: usize) -> Option<Scale> {
        self.scales.get(op).copied()
    }

    /// The scale of the scores.
    pub fn output_scale(&self) -> Scale {
        self.scales.last().copied().unwrap_or(Scale {
            factor: u128::from(self.input_scale),
            log2: 0,
        })
    }

    /// The weight exponent `k` of operation `op` (weights are `round(w * 2^k)`),
    /// `None` for a square or out of range.
    pub fn weight_log2(&self, op: usize) -> Option<i32> {
        self.weight_log2.get(op).copied().flatten()
    }

    /// Worst-case magnitude of the output of every operation (every partial
    /// sum of a linear row included).
    pub fn op_bounds(&self) -> &[u128] {
        &self.op_bounds
    }

    /// Worst-case magnitude of every value of an evaluation: inputs,
    /// intermediates, partial sums and scores.
    pub fn max_abs_bound(&self) -> u128 {
        self.op_bounds
            .iter()
            .copied()
            .fold(u128::from(self.input_bound), u128::max)
    }

    /// Number of bits of a two's complement integer that holds every value of
    /// an evaluation: `1 + bit length of max_abs_bound()`, at most 128.
    pub fn bits_needed(&self) -> u32 {
        1 + (u128::BITS - self.max_abs_bound().leading_zeros())
    }

    /// Smallest plaintext modulus `t = 2 B + 1` (`B = max_abs_bound()`) whose
    /// centred residues in `[-(t-1)/2, (t-1)/2]` represent every value of an
    /// evaluation; any larger `t` (or product of primes) works too.
    pub fn min_plaintext_modulus(&self) -> u128 {
        // B <= i128::MAX = 2^127 - 1 whenever the default limit is used; a
        // larger configured limit saturates instead of wrapping.
        self.max_abs_bound().saturating_mul(2).saturating_add(1)
    }

    /// Quantises real inputs: `round(x * input_scale)`.
    ///
    /// # Ranges
    /// Inputs with `|x| <= input_max_abs` (else
    /// [`EvalError::InputOutOfRange`]); outputs in `[-input_bound, input_bound]`.
    pub fn quantize_input(&self, input: &[f64]) -> Result<Vec<i64>, EvalError> {
        let scale = f64::from(self.input_scale);
        input
            .iter()
            .enumerate()
            .map(|(index, &value)| {
                if value.abs() <= self.input_max_abs {
                    let q = libm::round(value * scale) as i64;
                    debug_assert!(q.unsigned_abs() <= self.input_bound);
                    Ok(q)
                } else {
                    Err(EvalError::InputOutOfRange {
                        index,
                        value,
                        max_abs: self.input_max_abs,
                    })
                }
            })
            .collect()
    }

    /// Integer inference on quantised inputs; the scores have scale
    /// [`QuantizedModel::output_scale`].
    ///
    /// # Ranges
    /// Inputs in `[-input_bound, input_bound]` (else
    /// [`EvalError::IntegerInputOutOfRange`]); then every intermediate is
    /// within [`QuantizedModel::op_bounds`], so no overflow can occur.
    pub fn infer(&self, input: &[i64]) -> Result<Vec<i128>, EvalError> {
        let wide = input
            .iter()
            .enumerate()
            .map(|(index, &value)| {
                if value.unsigned_abs() <= self.input_bound {
                    Ok(i128::from(value))
                } else {
                    Err(EvalError::IntegerInputOutOfRange {
                        index,
                        value,
                        max_abs: self.input_bound,
                    })
                }
            })
            .collect::<Result<Vec<i128>, EvalError>>()?;
        self.network.evaluate_with(&wide, |op, values| {
            debug_assert!(
                values
                    .iter()
                    .all(|v| v.unsigned_abs() <= self.op_bounds[op]),
                "operation {op} exceeds its worst-case bound {}",
                self.op_bounds[op]
            );
        })
    }

    /// Divides integer scores by the output scale.
    ///
    /// # Ranges
    /// Any scores; each result is within a relative `4 * 2^-53` of
    /// `score / output_scale`.
    pub fn dequantize(&self, scores: &[i128]) -> Vec<f64> {
        let scale = self.output_scale().to_f64();
        scores.iter().map(|&s| s as f64 / scale).collect()
    }

    /// Quantise, infer, dequantise.
    pub fn infer_real(&self, input: &[f64]) -> Result<Vec<f64>, EvalError> {
        let ints = self.quantize_input(input)?;
        Ok(self.dequantize(&self.infer(&ints)?))
    }

    /// The real-valued network the integer inference computes exactly:
    /// weights `w_q * 2^-k`, biases `b_q / S` of their accumulator scale `S`
    /// (terms with `w_q = 0` dropped), for inputs `x_q / input_scale`.
    ///
    /// # Ranges
    /// Weights are exact; each bias is within a relative `3 * 2^-53` of
    /// `b_q / S` (rounding of `b_q`, of `S` and of the division).
    pub fn dequantized_network(&self) -> Network<f64> {
        let to_f64 = |op: usize,
                      map: &LinearMap<i128>|
         -> Result<LinearMap<f64>, core::convert::Infallible> {
            let k = self.weight_log2(op).unwrap_or(0);
            let scale = self.scales[op].to_f64();
            map.try_map(
                |w| Ok(libm::scalbn(w as f64, -k)),
                |b| Ok(b as f64 / scale),
                |_| true,
            )
        };
        match self.network.try_map(to_f64) {
            Ok(network) => network,
            Err(never) => match never {},
        }
    }

    /// How the integer inference (seen through its scales) rounds, for
    /// [`Network::error_bound`] on the original model's network: inputs
    /// within `0.5 / input_scale`, weights within `2^-(k+1)`, biases within
    /// `0.5 / S`, exact arithmetic, and the final division.
    pub fn rounding(&self) -> &Rounding {
        &self.rounding
    }
}

/// Applies a square (operation `op`) to the running scale and element bounds.
fn square_step(
    op: usize,
    scale: &mut Scale,
    bounds: &mut [u128],
    limit: u128,
) -> Result<(), QuantError> {
    *scale = scale
        .squared()
        .filter(|s| s.to_f64().is_normal())
        .ok_or(QuantError::ScaleOverflow { op })?;
    for b in bounds.iter_mut() {
        *b = b
            .checked_mul(*b)
            .filter(|&sq| sq <= limit)
            .ok_or(QuantError::BoundExceeded {
                op: Some(op),
                limit,
            })?;
    }
    Ok(())
}
