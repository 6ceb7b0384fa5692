//! Rigorous forward error bounds of inexact evaluators (see [`Network::error_bound`]).

use alloc::vec::Vec;
use core::fmt;

use super::network::{EvalError, LinearMap, Network, Op};

/// Factor applied to every computed element bound to cover the rounding of
/// the bound computation itself (see [`Network::error_bound`]).
pub const SLACK: f64 = 1.0 + 1.0 / 1_048_576.0;

/// Unit roundoff of f64 (2^-53).
pub const F64_UNIT: f64 = f64::EPSILON / 2.0;

/// Unit roundoff of f32 (2^-24).
pub const F32_UNIT: f64 = (f32::EPSILON / 2.0) as f64;

/// Smallest positive subnormal f64 (2^-1074): the absolute error a product
/// may lose to underflow.
const F64_UNDERFLOW: f64 = f64::from_bits(1);

/// Smallest positive subnormal f32 (2^-149), as f64.
const F32_UNDERFLOW: f64 = f32::from_bits(1) as f64;

/// How one linear map or square of an inexact evaluator rounds.
///
/// All fields are non-negative and finite. For a square only `product_abs`
/// and `relative` are used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpRounding {
    /// Absolute error of each stored weight.
    pub weight_abs: f64,
    /// Relative error of each stored weight.
    pub weight_rel: f64,
    /// Absolute error of each stored bias.
    pub bias_abs: f64,
    /// Relative error of each stored bias.
    pub bias_rel: f64,
    /// Absolute error of each product (rounding down, underflow).
    pub product_abs: f64,
    /// Relative error of each product and of each addition.
    pub relative: f64,
}

impl OpRounding {
    /// Exact arithmetic on exact parameters.
    pub const EXACT: OpRounding = OpRounding {
        weight_abs: 0.0,
        weight_rel: 0.0,
        bias_abs: 0.0,
        bias_rel: 0.0,
        product_abs: 0.0,
        relative: 0.0,
    };

    fn fields(&self) -> [f64; 6] {
        [
            self.weight_abs,
            self.weight_rel,
            self.bias_abs,
            self.bias_rel,
            self.product_abs,
            self.relative,
        ]
    }
}

/// How an inexact evaluator rounds: its input, every operation, its output.
#[derive(Clone, Debug, PartialEq)]
pub struct Rounding {
    /// Absolute error of each represented input value.
    pub input_abs: f64,
    /// Relative error of each represented input value.
    pub input_rel: f64,
    /// One entry per operation of the network, in order.
    pub ops: Vec<OpRounding>,
    /// Relative error of the final conversion of the scores to f64.
    pub output_rel: f64,
}

impl Rounding {
    /// f64 arithmetic on the f64 parameters of `network`: products and sums
    /// round to nearest (relative error 2^-53), products may underflow
    /// (absolute error 2^-1074); inputs and parameters are exact.
    pub fn f64_arithmetic(network: &Network<f64>) -> Rounding {
        let op = OpRounding {
            product_abs: F64_UNDERFLOW,
            relative: F64_UNIT,
            ..OpRounding::EXACT
        };
        Rounding {
            input_abs: 0.0,
            input_rel: 0.0,
            ops: alloc::vec![op; network.ops().len()],
            output_rel: 0.0,
        }
    }

    /// f32 arithmetic on the parameters of [`Model::network_f32`](super::Model::network_f32):
    /// inputs and parameters rounded from f64 to f32, then every product
    /// and sum rounded to f32 (relative error 2^-24, underflow 2^-149); the
    /// conversion of the scores back to f64 is exact.
    pub fn f32_arithmetic(network: &Network<f64>) -> Rounding {
        let op = OpRounding {
            weight_abs: F32_UNDERFLOW,
            weight_rel: F32_UNIT,
            bias_abs: F32_UNDERFLOW,
            bias_rel: F32_UNIT,
            product_abs: F32_UNDERFLOW,
            relative: F32_UNIT,
        };
        Rounding {
            input_abs: F32_UNDERFLOW,
            input_rel: F32_UNIT,
            ops: alloc::vec![op; network.ops().len()],
            output_rel: 0.0,
        }
    }
}

/// Why an error bound cannot be computed.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum BoundError {
    /// The rounding model has a different number of operations than the network.
    OpCount {
        /// Operations in the network.
        expected: usize,
        /// Entries in [`Rounding::ops`].
        found: usize,
    },
    /// A rounding parameter or the input magnitude is negative, NaN or infinite.
    InvalidParameter {
        /// The operation it belongs to, `None` for the input and output fields.
        op: Option<usize>,
        /// The value.
        value: f64,
    },
    /// The f64 reference evaluation failed.
    Evaluation(EvalError),
}

impl fmt::Display for BoundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoundError::OpCount { expected, found } => write!(
                f,
                "rounding model has {found} operations, the network {expected}"
            ),
            BoundError::InvalidParameter {
                op: Some(op),
                value,
            } => {
                write!(f, "rounding parameter {value} of operation {op} is not a finite non-negative number")
            }
            BoundError::InvalidParameter { op: None, value } => {
                write!(
                    f,
                    "input/output parameter {value} is not a finite non-negative number"
                )
            }
            BoundError::Evaluation(e) => write!(f, "reference evaluation failed: {e}"),
        }
    }
}

impl core::error::Error for BoundError {}

fn check(op: Option<usize>, values: &[f64]) -> Result<(), BoundError> {
    match values.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
        Some(&value) => Err(BoundError::InvalidParameter { op, value }),
        None => Ok(()),
    }
}

/// `n r / (1 - n r)`, or infinity when `n r >= 1`.
fn gamma(n: usize, r: f64) -> f64 {
    let nr = n as f64 * r;
    if nr < 1.0 {
        nr / (1.0 - nr)
    } else {
        f64::INFINITY
    }
}

/// Error bounds after one linear map, from magnitude bounds `x` and error
/// bounds `e` of its input (the `E'` recurrence of [`Network::error_bound`]).
fn linear_errors(map: &LinearMap<f64>, r: &OpRounding, x: &[f64], e: &[f64]) -> Vec<f64> {
    map.rows()
        .iter()
        .map(|row| {
            let (mut we, mut dwxe, mut p) = (0.0, 0.0, 0.0);
            for &(i, w) in row.terms() {
                let aw = w.abs();
                let dw = r.weight_abs + r.weight_rel * aw;
                let xe = x[i] + e[i];
                we += aw * e[i];
                dwxe += dw * xe;
                p += (aw + dw) * xe;
            }
            let n = row.terms().len();
            let b = row.bias().abs();
            let db = r.bias_abs + r.bias_rel * b;
            let products = n as f64 * r.product_abs + r.relative * p;
            let sum_input = (1.0 + r.relative) * p + n as f64 * r.product_abs + b + db;
            let summation = gamma(n, r.relative) * sum_input;
            (we + dwxe + db + products + summation) * SLACK
        })
        .collect()
}

/// Worst-case magnitudes after one linear map: `X' = sum |w| X + |b|`.
fn linear_magnitudes(map: &LinearMap<f64>, x: &[f64]) -> Vec<f64> {
    map.rows()
        .iter()
        .map(|row| {
            let wx: f64 = row.terms().iter().map(|&(i, w)| w.abs() * x[i]).sum();
            (wx + row.bias().abs()) * SLACK
        })
        .collect()
}

/// Error bounds after a square: `E' = E (2X + E) + product_abs + relative (X + E)^2`.
fn square_errors(r: &OpRounding, x: &[f64], e: &[f64]) -> Vec<f64> {
    x.iter()
        .zip(e)
        .map(|(&xi, &ei)| {
            let xe = xi + ei;
            (ei * (xi + xe) + r.product_abs + r.relative * xe * xe) * SLACK
        })
        .collect()
}

/// Error bounds after one operation.
fn op_errors(op: &Op<f64>, r: &OpRounding, x: &[f64], e: &[f64]) -> Vec<f64> {
    match op {
        Op::Linear(map) => linear_errors(map, r, x, e),
        Op::Square => square_errors(r, x, e),
    }
}

/// Adds the final conversion error `output_rel (X + E)`; a NaN (from
/// `0 * inf` once a bound has overflowed) becomes `+inf`.
fn output_errors(rounding: &Rounding, x: &[f64], e: &[f64]) -> Vec<f64> {
    x.iter()
        .zip(e)
        .map(|(&xi, &ei)| {
            let bound = (ei + rounding.output_rel * (xi + ei)) * SLACK;
            if bound.is_nan() {
                f64::INFINITY
            } else {
                bound
            }
        })
        .collect()
}

/// Checks a rounding model against a network.
fn check_rounding(network: &Network<f64>, rounding: &Rounding) -> Result<(), BoundError> {
    if rounding.ops.len() != network.ops().len() {
        return Err(BoundError::OpCount {
            expected: network.ops().len(),
            found: rounding.ops.len(),
        });
    }
    check(
        None,
        &[rounding.input_abs, rounding.input_rel, rounding.output_rel],
    )?;
    for (op, r) in rounding.ops.iter().enumerate() {
        check(Some(op), &r.fields())?;
    }
    Ok(())
}

/// Per-score error bounds of an inexact evaluator at one input (see
/// [`Network::error_bound_at`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PointBound {
    /// The f64 reference scores ([`Network::evaluate`] on the input).
    pub scores: Vec<f64>,
    /// Bound on `|scores[j] - exact[j]|` (the reference's own rounding).
    pub reference_error: Vec<f64>,
    /// Bound on `|computed[j] - exact[j]|` for the inexact evaluator.
    pub error: Vec<f64>,
}

impl PointBound {
    /// Bound on `|computed[j] - scores[j]|`: the sum of both errors.
    pub fn distance(&self, j: usize) -> Option<f64> {
        Some(self.error.get(j)? + self.reference_error.get(j)?)
    }

    /// Whether every evaluator within these bounds has the same arg-max as
    /// the reference: the reference's top score minus its distance bound
    /// exceeds every other score plus its own. `None` without scores.
    pub fn certifies_argmax(&self) -> Option<bool> {
        let top =
            (0..self.scores.len()).max_by(|&a, &b| self.scores[a].total_cmp(&self.scores[b]))?;
        let low = self.scores[top] - self.distance(top)?;
        Some(
            (0..self.scores.len())
                .filter(|&j| j != top)
                .all(|j| self.distance(j).is_some_and(|d| self.scores[j] + d < low)),
        )
    }
}

impl Network<f64> {
    /// A rigorous a-priori upper bound on `|computed - exact|` over every score, for
    /// every input with `|x_i| <= input_max_abs`, where `exact` is this
    /// network in real arithmetic and `computed` is an evaluator that rounds
    /// as `rounding` describes (f64, f32, fixed point, quantised integers).
    ///
    /// For every value `v` of the exact real network on an input with
    /// `|x_i| <= X0` the analysis carries, element by element, a bound `X` on
    /// `|v|` and a bound `E` on `|v_hat - v|`, where `v_hat` is what the inexact
    /// evaluator computes (after dividing out its scale, for integers).
    ///
    /// **Linear row** `y = b + sum_i w_i x_i` over `n` terms, computed as
    /// `y_hat = fl(b_hat + sum_i fl(w_hat_i * x_hat_i))` with recursive summation,
    /// where `|w_hat - w| <= dw = weight_abs + weight_rel |w|`,
    /// `|b_hat - b| <= db = bias_abs + bias_rel |b|`, each product rounds with
    /// error at most `product_abs + relative * |product|` and each addition with
    /// relative error at most `relative`:
    ///
    /// ```text
    /// P  = sum_i (|w_i| + dw_i) (X_i + E_i)                          (bound on sum |w_hat x_hat|)
    /// E' = sum_i |w_i| E_i + sum_i dw_i (X_i + E_i) + db             (representation)
    ///    + n product_abs + relative P                                (products)
    ///    + g_n ((1 + relative) P + n product_abs + |b| + db)         (summation, g_n = n r / (1 - n r))
    /// X' = sum_i |w_i| X_i + |b|
    /// ```
    ///
    /// from `w_hat x_hat - w x = w (x_hat - x) + (w_hat - w) x_hat` and the
    /// standard bound on recursive summation (Higham, *Accuracy and Stability of
    /// Numerical Algorithms*, 2nd ed., eq. 4.4).
    ///
    /// **Square** `y = x^2`: `|x_hat^2 - x^2| = |x_hat - x| |x_hat + x|`, so
    /// `E' = E (2X + E) + product_abs + relative (X + E)^2` and `X' = X^2`.
    ///
    /// **Output**: a final conversion to f64 with relative error `output_rel`
    /// adds `output_rel (X + E)`.
    ///
    /// The bound itself is computed in f64 with round-to-nearest. Every term is
    /// non-negative and each element's bound comes from at most
    /// `4 * MAX_SIZE + 3` operations ([`MAX_SIZE`](super::MAX_SIZE) `= 2^24`), so its computed
    /// value is at least `(1 - 2^-26)` times the exact one; multiplying every
    /// element bound by [`SLACK`] `= 1 + 2^-20` keeps it an upper bound.
    ///
    /// The bound may be `+inf` when the rounding model admits no finite
    /// bound (a summation with `n * relative >= 1`).
    ///
    /// # Ranges
    /// `input_max_abs` and every field of `rounding` finite and
    /// non-negative; the result is non-negative (or `+inf`).
    pub fn error_bound(&self, input_max_abs: f64, rounding: &Rounding) -> Result<f64, BoundError> {
        check_rounding(self, rounding)?;
        check(None, &[input_max_abs])?;
        let e0 = (rounding.input_abs + rounding.input_rel * input_max_abs) * SLACK;
        let mut x = alloc::vec![input_max_abs; self.input_len()];
        let mut e = alloc::vec![e0; self.input_len()];
        for (op, r) in self.ops().iter().zip(&rounding.ops) {
            e = op_errors(op, r, &x, &e);
            x = match op {
                Op::Linear(map) => linear_magnitudes(map, &x),
                Op::Square => x.iter().map(|&xi| xi * xi * SLACK).collect(),
            };
        }
        let worst = output_errors(rounding, &x, &e)
            .into_iter()
            .fold(0.0, f64::max);
        debug_assert!(worst >= 0.0);
        Ok(worst)
    }

    /// Like [`Network::error_bound`], but for one given input, and per score:
    /// a running error analysis that uses, in place of the worst-case `X`,
    /// the magnitude of the f64 reference values at this input plus their
    /// own error bound (`X = |v_ref| + E_ref`, with `E_ref` from the same
    /// recurrence under [`Rounding::f64_arithmetic`]).
    ///
    /// This is orders of magnitude tighter than the worst case through
    /// squares, and still rigorous: `|computed[j] - scores[j]| <=
    /// distance(j)` for an evaluator rounding as `rounding` describes.
    ///
    /// # Ranges
    /// A finite input of length [`Network::input_len`]; every field of
    /// `rounding` finite and non-negative; the bounds are non-negative (or
    /// `+inf`).
    pub fn error_bound_at(
        &self,
        input: &[f64],
        rounding: &Rounding,
    ) -> Result<PointBound, BoundError> {
        check_rounding(self, rounding)?;
        let reference = Rounding::f64_arithmetic(self);
        let mut values = Vec::with_capacity(self.ops().len());
        let scores = self
            .evaluate_with(input, |_, v| values.push(v.to_vec()))
            .map_err(BoundError::Evaluation)?;
        let mut x: Vec<f64> = input.iter().map(|v| v.abs()).collect();
        let mut e_ref = alloc::vec![0.0; input.len()];
        let mut e: Vec<f64> = x
            .iter()
            .map(|&xi| (rounding.input_abs + rounding.input_rel * xi) * SLACK)
            .collect();
        for (((op, r), r_ref), v) in self
            .ops()
            .iter()
            .zip(&rounding.ops)
            .zip(&reference.ops)
            .zip(&values)
        {
            e = op_errors(op, r, &x, &e);
            e_ref = op_errors(op, r_ref, &x, &e_ref);
            x = v
                .iter()
                .zip(&e_ref)
                .map(|(vi, ei)| (vi.abs() + ei) * SLACK)
                .collect();
        }
        Ok(PointBound {
            scores,
            reference_error: output_errors(&reference, &x, &e_ref),
            error: output_errors(rounding, &x, &e),
        })
    }
}
