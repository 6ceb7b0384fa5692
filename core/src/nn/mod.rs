//! Square-activation networks (CryptoNets style) in plaintext.
//!
//! - [`Model`]: a validated sequence of [`Layer`]s (convolution, dense,
//!   sum pooling, square, flatten) with PyTorch layouts, and the two
//!   networks of the paper ([`Model::mnist`], [`Model::fashion_mnist`]).
//! - [`Network`]: the lowered form every evaluator shares, a sequence of
//!   sparse linear maps ("for each output, the (input index, weight) pairs
//!   and a bias") and squares over a flat input.
//! - Inference four ways over that one form: f64 ([`Model::infer`], the
//!   reference), f32 ([`Model::network_f32`]), fixed point
//!   ([`FixedModel`], `I32F32`) and quantised integers
//!   ([`QuantizedModel`], the exact computation BFV reproduces, with
//!   worst-case magnitudes that rule out overflow before encrypting).
//! - [`Network::error_bound`] (a priori, over all inputs in a range) and
//!   [`Network::error_bound_at`] (at one input): rigorous forward error
//!   bounds of an inexact evaluator against exact arithmetic, which state
//!   how far the fixed-point, f32 and integer scores may be from the f64 ones.

mod error_bound;
mod fixed_point;
mod layer;
mod model;
mod network;
mod quant;

pub use error_bound::{BoundError, OpRounding, PointBound, Rounding, F32_UNIT, F64_UNIT, SLACK};
pub use fixed_point::FixedModel;
pub use layer::{Conv2d, Dense, Layer, Padding, Shape, SumPool2d};
pub use model::{
    ConvertError, FashionMnistWeights, MnistWeights, Model, ModelError, Param, MAX_SIZE,
    MNIST_INPUT,
};
pub use network::{EvalError, LinearMap, Network, Op, Row, Value};
pub use quant::{
    QuantConfig, QuantError, QuantizedModel, Scale, WeightBits, MAX_WEIGHT_BITS, MIN_WEIGHT_BITS,
};
