//! Fixed-point inference with the `fixed` crate.
//!
//! Format: [`I32F32`] (a signed 64-bit word with 32 fractional bits): values
//! in `[-2^31, 2^31 - 2^-32]`, step `2^-32`. Inputs, weights and biases are
//! rounded to the nearest step (error at most `2^-33`), products are
//! truncated towards minus infinity (error below `2^-32`), sums are exact,
//! and any overflow is reported, never wrapped. The resulting error against
//! exact arithmetic is bounded a priori by [`Network::error_bound`] and per
//! input by [`Network::error_bound_at`], with [`FixedModel::rounding`]. On
//! the paper's MNIST network with random Glorot-uniform weights and random
//! pixel inputs (scores of order 0.1), the measured error is about `1e-7`,
//! the per-input bound about `1e-6` and the a-priori bound about `2e-2`.

use alloc::vec::Vec;

use fixed::types::I32F32;

use super::error_bound::{OpRounding, Rounding, F64_UNIT};
use super::model::{ConvertError, Model};
use super::network::{EvalError, Network};

/// Half a step of [`I32F32`] (2^-33): the error of rounding to nearest.
const HALF_STEP: f64 = 1.0 / 8_589_934_592.0;

/// One step of [`I32F32`] (2^-32): the error bound of a truncated product.
const STEP: f64 = 1.0 / 4_294_967_296.0;

/// A model with [`I32F32`] parameters.
///
/// ```
/// use heist_core::nn::{Dense, FixedModel, Layer, Model, Rounding, Shape};
///
/// let dense = Dense { in_features: 3, out_features: 2, weight: vec![0.3, -0.7, 0.1, 1.5, 0.2, -0.4], bias: Some(vec![0.01, -0.02]) };
/// let model = Model::new(Shape::Flat(3), vec![Layer::Dense(dense), Layer::Square])?;
/// let fixed = FixedModel::new(&model)?;
/// let input = [0.25, 0.5, 1.0];
/// let reference = model.infer(&input)?;
/// let approx = fixed.infer(&input)?;
/// // Derived bound: fixed-point error plus the f64 reference's own error.
/// let net = model.network();
/// let bound = net.error_bound(1.0, &fixed.rounding())? + net.error_bound(1.0, &Rounding::f64_arithmetic(net))?;
/// for (a, r) in approx.iter().zip(&reference) {
///     assert!((a - r).abs() <= bound);
/// }
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FixedModel {
    network: Network<I32F32>,
}

/// Rounds `value` to the nearest [`I32F32`], or reports it for operation `op`.
fn to_fixed(op: usize, value: f64) -> Result<I32F32, ConvertError> {
    I32F32::checked_from_num(value).ok_or(ConvertError { op, value })
}

impl FixedModel {
    /// Rounds every weight and bias of `model` to the nearest [`I32F32`].
    ///
    /// # Ranges
    /// Parameters must lie in `[-2^31, 2^31)`; others are a [`ConvertError`].
    pub fn new(model: &Model) -> Result<FixedModel, ConvertError> {
        let network = model
            .network()
            .try_map(|op, map| map.try_map(|w| to_fixed(op, w), |b| to_fixed(op, b), |_| true))?;
        Ok(FixedModel { network })
    }

    /// The fixed-point network.
    pub fn network(&self) -> &Network<I32F32> {
        &self.network
    }

    /// Rounds `input` to [`I32F32`], evaluates, and converts the scores to f64.
    ///
    /// # Ranges
    /// Inputs in `[-2^31, 2^31)`, else [`EvalError::InputOutOfRange`]; an
    /// intermediate leaving the format is an [`EvalError::Overflow`]. The
    /// scores are within [`Network::error_bound`] (with
    /// [`FixedModel::rounding`]) of the exact ones.
    pub fn infer(&self, input: &[f64]) -> Result<Vec<f64>, EvalError> {
        let fixed_input = input
            .iter()
            .enumerate()
            .map(|(index, &value)| {
                I32F32::checked_from_num(value).ok_or(EvalError::InputOutOfRange {
                    index,
                    value,
                    max_abs: I32F32::MAX.to_num::<f64>(),
                })
            })
            .collect::<Result<Vec<I32F32>, EvalError>>()?;
        let scores = self.network.evaluate(&fixed_input)?;
        Ok(scores.iter().map(|s| s.to_num::<f64>()).collect())
    }

    /// How [`FixedModel::infer`] rounds, for [`Network::error_bound`]:
    /// inputs, weights and biases within `2^-33`, products within `2^-32`,
    /// exact sums, and the final conversion to f64 within a relative `2^-53`.
    pub fn rounding(&self) -> Rounding {
        let op = OpRounding {
            weight_abs: HALF_STEP,
            bias_abs: HALF_STEP,
            product_abs: STEP,
            ..OpRounding::EXACT
        };
        Rounding {
            input_abs: HALF_STEP,
            input_rel: 0.0,
            ops: alloc::vec![op; self.network.ops().len()],
            output_rel: F64_UNIT,
        }
    }
}
