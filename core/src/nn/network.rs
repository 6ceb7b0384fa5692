//! The lowered form of a network: sparse linear maps and squares.
//!
//! Every evaluator of heist (f64 and f32 reference, fixed point, quantised
//! integers here; the encrypted evaluator in heist-he) runs this one
//! representation, so they all compute the same function up to rounding.

use alloc::vec::Vec;
use core::fmt;

use fixed::types::I32F32;

/// A number type a [`Network`] can be evaluated over.
///
/// A linear row computes `bias + w_1 * x_1 + ... + w_n * x_n` by starting
/// from [`Value::from_bias`] and folding [`Value::mul_add`] over the terms in
/// order; a square computes [`Value::square`].
pub trait Value: Copy + fmt::Debug + PartialEq {
    /// The type of the weights of a linear row.
    type Weight: Copy + fmt::Debug + PartialEq;
    /// The type of the bias of a linear row.
    type Bias: Copy + fmt::Debug + PartialEq;
    /// The accumulator value of a row before any term is added.
    fn from_bias(bias: Self::Bias) -> Self;
    /// `self + weight * x`, or `None` on overflow.
    fn mul_add(self, weight: Self::Weight, x: Self) -> Option<Self>;
    /// `self * self`, or `None` on overflow.
    fn square(self) -> Option<Self>;
}

/// Floating point: a product and a sum are each rounded to nearest (no fused
/// multiply-add); an infinite or NaN result is reported as an overflow.
impl Value for f64 {
    type Weight = f64;
    type Bias = f64;
    fn from_bias(bias: f64) -> f64 {
        bias
    }
    fn mul_add(self, weight: f64, x: f64) -> Option<f64> {
        let product = weight * x;
        let sum = self + product;
        sum.is_finite().then_some(sum)
    }
    fn square(self) -> Option<f64> {
        let sq = self * self;
        sq.is_finite().then_some(sq)
    }
}

/// Single-precision floating point, with the same conventions as `f64`.
impl Value for f32 {
    type Weight = f32;
    type Bias = f32;
    fn from_bias(bias: f32) -> f32 {
        bias
    }
    fn mul_add(self, weight: f32, x: f32) -> Option<f32> {
        let product = weight * x;
        let sum = self + product;
        sum.is_finite().then_some(sum)
    }
    fn square(self) -> Option<f32> {
        let sq = self * self;
        sq.is_finite().then_some(sq)
    }
}

/// Fixed point with 32 integer and 32 fractional bits: values in
/// `[-2^31, 2^31 - 2^-32]`, step `2^-32`. Products are rounded down
/// (towards minus infinity, an error in `(-2^-32, 0]`); sums are exact.
impl Value for I32F32 {
    type Weight = I32F32;
    type Bias = I32F32;
    fn from_bias(bias: I32F32) -> I32F32 {
        bias
    }
    fn mul_add(self, weight: I32F32, x: I32F32) -> Option<I32F32> {
        self.checked_add(weight.checked_mul(x)?)
    }
    fn square(self) -> Option<I32F32> {
        self.checked_mul(self)
    }
}

/// Exact integers: `i64` weights, `i128` biases and values, every operation
/// checked. This is the arithmetic the BFV evaluation reproduces modulo `t`.
impl Value for i128 {
    type Weight = i64;
    type Bias = i128;
    fn from_bias(bias: i128) -> i128 {
        bias
    }
    fn mul_add(self, weight: i64, x: i128) -> Option<i128> {
        self.checked_add(i128::from(weight).checked_mul(x)?)
    }
    fn square(self) -> Option<i128> {
        self.checked_mul(self)
    }
}

/// One output of a linear map: `bias + sum of weight * input[index]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Row<V: Value> {
    pub(crate) terms: Vec<(usize, V::Weight)>,
    pub(crate) bias: V::Bias,
}

impl<V: Value> Row<V> {
    /// The `(input index, weight)` pairs, each index below the map's
    /// [`LinearMap::input_len`], in increasing index order without repeats.
    pub fn terms(&self) -> &[(usize, V::Weight)] {
        &self.terms
    }

    /// The bias added to the sum of the terms.
    pub fn bias(&self) -> V::Bias {
        self.bias
    }
}

/// A linear map stored row by row as sparse dot products.
///
/// A convolution becomes one row per output value holding only the kernel
/// taps that fall inside the image; a dense layer one row per output.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearMap<V: Value> {
    pub(crate) input_len: usize,
    pub(crate) rows: Vec<Row<V>>,
}

impl<V: Value> LinearMap<V> {
    /// Length of the input vector.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Length of the output vector (number of rows).
    pub fn output_len(&self) -> usize {
        self.rows.len()
    }

    /// The rows, output `j` being `rows()[j]`.
    pub fn rows(&self) -> &[Row<V>] {
        &self.rows
    }

    /// Total number of stored terms (multiplications per evaluation).
    pub fn term_count(&self) -> usize {
        self.rows.iter().map(|row| row.terms.len()).sum()
    }

    /// Applies the map; `op` only names the operation in errors.
    fn apply(&self, op: usize, input: &[V]) -> Result<Vec<V>, EvalError> {
        debug_assert_eq!(input.len(), self.input_len);
        self.rows
            .iter()
            .enumerate()
            .map(|(index, row)| {
                row.terms
                    .iter()
                    .try_fold(V::from_bias(row.bias), |acc, &(i, w)| {
                        acc.mul_add(w, input[i])
                    })
                    .ok_or(EvalError::Overflow { op, index })
            })
            .collect()
    }

    /// Converts every weight and bias with the given functions, keeping the
    /// terms whose converted weight `keep` accepts.
    pub(crate) fn try_map<U: Value, E>(
        &self,
        mut weight: impl FnMut(V::Weight) -> Result<U::Weight, E>,
        mut bias: impl FnMut(V::Bias) -> Result<U::Bias, E>,
        keep: impl Fn(&U::Weight) -> bool,
    ) -> Result<LinearMap<U>, E> {
        let mut rows = Vec::with_capacity(self.rows.len());
        for row in &self.rows {
            let mut terms = Vec::with_capacity(row.terms.len());
            for &(i, w) in &row.terms {
                let converted = weight(w)?;
                if keep(&converted) {
                    terms.push((i, converted));
                }
            }
            rows.push(Row {
                terms,
                bias: bias(row.bias)?,
            });
        }
        Ok(LinearMap {
            input_len: self.input_len,
            rows,
        })
    }
}

/// One operation of a lowered network.
#[derive(Clone, Debug, PartialEq)]
pub enum Op<V: Value> {
    /// A linear map (convolution, dense layer or pooling).
    Linear(LinearMap<V>),
    /// Element-wise square.
    Square,
}

/// A network as a sequence of sparse linear maps and squares over a flat
/// input vector (images flattened in (C, H, W) order).
///
/// Built by [`Model`](super::Model) (f64) and converted from it by
/// [`Model::network_f32`](super::Model::network_f32),
/// [`FixedModel`](super::FixedModel) and
/// [`QuantizedModel`](super::QuantizedModel); the lengths of consecutive
/// operations always agree.
///
/// ```
/// use heist_core::nn::{Dense, Layer, Model, Op, Shape};
///
/// let dense = Dense { in_features: 2, out_features: 1, weight: vec![3.0, -1.0], bias: Some(vec![0.5]) };
/// let model = Model::new(Shape::Flat(2), vec![Layer::Dense(dense), Layer::Square]).unwrap();
/// let net = model.network();
/// assert_eq!(net.ops().len(), 2);
/// if let Op::Linear(map) = &net.ops()[0] {
///     assert_eq!(map.rows()[0].terms(), &[(0, 3.0), (1, -1.0)]);
///     assert_eq!(map.rows()[0].bias(), 0.5);
/// }
/// // (3 * 1 - 1 * 2 + 0.5)^2
/// assert_eq!(net.evaluate(&[1.0, 2.0]).unwrap(), vec![2.25]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Network<V: Value> {
    pub(crate) input_len: usize,
    pub(crate) ops: Vec<Op<V>>,
}

impl<V: Value> Network<V> {
    /// Length of the input vector.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// The operations, in evaluation order.
    pub fn ops(&self) -> &[Op<V>] {
        &self.ops
    }

    /// Length of the vector after operation `op` (`op_output_len(ops().len() - 1)`
    /// is the number of scores), or `None` if `op` is out of range.
    pub fn op_output_len(&self, op: usize) -> Option<usize> {
        let mut len = self.input_len;
        for operation in self.ops.get(..=op)? {
            if let Op::Linear(map) = operation {
                len = map.output_len();
            }
        }
        Some(len)
    }

    /// Length of the output vector.
    pub fn output_len(&self) -> usize {
        self.ops.iter().fold(self.input_len, |len, op| match op {
            Op::Linear(map) => map.output_len(),
            Op::Square => len,
        })
    }

    /// Number of square operations: the multiplicative depth of an
    /// encrypted evaluation.
    pub fn square_count(&self) -> usize {
        self.ops
            .iter()
            .filter(|op| matches!(op, Op::Square))
            .count()
    }

    /// Evaluates the network on one input.
    ///
    /// # Ranges
    /// Any input of length [`Network::input_len`]; the arithmetic of `V`
    /// (see its [`Value`] impl) decides the rounding, and an overflow is an
    /// error naming the operation and output index, never a wrap.
    pub fn evaluate(&self, input: &[V]) -> Result<Vec<V>, EvalError> {
        self.evaluate_with(input, |_, _| {})
    }

    /// Like [`Network::evaluate`], and calls `observe(op, values)` with the
    /// output of every operation as it is computed.
    pub fn evaluate_with(
        &self,
        input: &[V],
        mut observe: impl FnMut(usize, &[V]),
    ) -> Result<Vec<V>, EvalError> {
        if input.len() != self.input_len {
            return Err(EvalError::InputLength {
                expected: self.input_len,
                found: input.len(),
            });
        }
        let mut values = input.to_vec();
        for (op, operation) in self.ops.iter().enumerate() {
            values = match operation {
                Op::Linear(map) => map.apply(op, &values)?,
                Op::Square => values
                    .iter()
                    .enumerate()
                    .map(|(index, x)| x.square().ok_or(EvalError::Overflow { op, index }))
                    .collect::<Result<Vec<V>, EvalError>>()?,
            };
            observe(op, &values);
        }
        Ok(values)
    }

    /// Converts every linear map with `f(op index, map)`.
    pub(crate) fn try_map<U: Value, E>(
        &self,
        mut f: impl FnMut(usize, &LinearMap<V>) -> Result<LinearMap<U>, E>,
    ) -> Result<Network<U>, E> {
        let ops = self
            .ops
            .iter()
            .enumerate()
            .map(|(op, operation)| match operation {
                Op::Linear(map) => f(op, map).map(Op::Linear),
                Op::Square => Ok(Op::Square),
            })
            .collect::<Result<Vec<Op<U>>, E>>()?;
        Ok(Network {
            input_len: self.input_len,
            ops,
        })
    }
}

/// Why an evaluation failed.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum EvalError {
    /// The input vector has the wrong length.
    InputLength {
        /// Length the network takes.
        expected: usize,
        /// Length given.
        found: usize,
    },
    /// A real input is NaN or outside the range the evaluator accepts.
    InputOutOfRange {
        /// Index of the offending input.
        index: usize,
        /// Its value.
        value: f64,
        /// Largest magnitude accepted.
        max_abs: f64,
    },
    /// An integer input is outside the range the worst-case bounds assume.
    IntegerInputOutOfRange {
        /// Index of the offending input.
        index: usize,
        /// Its value.
        value: i64,
        /// Largest magnitude accepted.
        max_abs: u64,
    },
    /// An operation overflowed the number type.
    Overflow {
        /// Index of the operation in [`Network::ops`].
        op: usize,
        /// Index of the output value being computed.
        index: usize,
    },
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::InputLength { expected, found } => {
                write!(f, "input has {found} values, the network takes {expected}")
            }
            EvalError::InputOutOfRange {
                index,
                value,
                max_abs,
            } => {
                write!(
                    f,
                    "input {index} = {value} is outside [-{max_abs}, {max_abs}]"
                )
            }
            EvalError::IntegerInputOutOfRange {
                index,
                value,
                max_abs,
            } => {
                write!(
                    f,
                    "integer input {index} = {value} is outside [-{max_abs}, {max_abs}]"
                )
            }
            EvalError::Overflow { op, index } => {
                write!(f, "overflow in operation {op} at output {index}")
            }
        }
    }
}

impl core::error::Error for EvalError {}
