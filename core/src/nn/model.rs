//! A validated sequence of layers, its lowering, and the paper's architectures.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::layer::{Conv2d, Dense, Layer, Padding, Shape, SumPool2d};
use super::network::{EvalError, LinearMap, Network, Op, Row};

/// Largest number of values, parameters or linear-map terms any single layer
/// may have (2^24). It keeps every size product below 2^48 in `u64`, and
/// every dot product short enough for the rounding analysis of
/// [`Network::error_bound`].
pub const MAX_SIZE: usize = 1 << 24;

/// Which parameter of a layer an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Param {
    /// The weight tensor.
    Weight,
    /// The bias vector.
    Bias,
    /// The pooling scale.
    Scale,
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Param::Weight => "weight",
            Param::Bias => "bias",
            Param::Scale => "scale",
        })
    }
}

/// Why a sequence of layers is not a valid model.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ModelError {
    /// The model has no layer.
    NoLayers,
    /// The input shape is empty or larger than [`MAX_SIZE`].
    InvalidInput {
        /// The input shape given.
        shape: Shape,
    },
    /// A convolution or pooling layer receives a flat vector.
    ExpectedImage {
        /// Index of the layer.
        layer: usize,
        /// The shape it receives.
        found: Shape,
    },
    /// A dense layer receives an image (add a [`Layer::Flatten`] first).
    ExpectedFlat {
        /// Index of the layer.
        layer: usize,
        /// The shape it receives.
        found: Shape,
    },
    /// A convolution's `in_channels` differs from the channels it receives.
    ChannelMismatch {
        /// Index of the layer.
        layer: usize,
        /// The layer's `in_channels`.
        expected: usize,
        /// The shape it receives.
        found: Shape,
    },
    /// A dense layer's `in_features` differs from the length it receives.
    FeatureMismatch {
        /// Index of the layer.
        layer: usize,
        /// The layer's `in_features`.
        expected: usize,
        /// The shape it receives.
        found: Shape,
    },
    /// A size, kernel or stride is zero.
    ZeroHyperparameter {
        /// Index of the layer.
        layer: usize,
        /// Name of the field (`"in_channels"`, `"kernel"`, ...).
        name: &'static str,
    },
    /// A valid-padding kernel (or pooling window) is larger than the image.
    KernelTooLarge {
        /// Index of the layer.
        layer: usize,
        /// The kernel `[height, width]`.
        kernel: [usize; 2],
        /// The shape it receives.
        found: Shape,
    },
    /// A weight or bias vector has the wrong length.
    ParameterLength {
        /// Index of the layer.
        layer: usize,
        /// Which parameter.
        param: Param,
        /// Length the layer's sizes require.
        expected: u64,
        /// Length given.
        found: usize,
    },
    /// A parameter is NaN or infinite.
    NonFiniteParameter {
        /// Index of the layer.
        layer: usize,
        /// Which parameter.
        param: Param,
        /// Index of the value in that parameter.
        index: usize,
    },
    /// A layer has more than [`MAX_SIZE`] outputs, parameters or terms.
    TooLarge {
        /// Index of the layer.
        layer: usize,
        /// The offending count.
        size: u64,
    },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::NoLayers => f.write_str("a model needs at least one layer"),
            ModelError::InvalidInput { shape } => {
                write!(
                    f,
                    "input shape {shape} is empty or has more than {MAX_SIZE} values"
                )
            }
            ModelError::ExpectedImage { layer, found } => {
                write!(
                    f,
                    "layer {layer} needs a (C, H, W) image, got shape {found}"
                )
            }
            ModelError::ExpectedFlat { layer, found } => {
                write!(
                    f,
                    "layer {layer} needs a flat vector, got shape {found} (flatten first)"
                )
            }
            ModelError::ChannelMismatch {
                layer,
                expected,
                found,
            } => {
                write!(
                    f,
                    "layer {layer} takes {expected} input channels, got shape {found}"
                )
            }
            ModelError::FeatureMismatch {
                layer,
                expected,
                found,
            } => {
                write!(
                    f,
                    "layer {layer} takes {expected} input features, got shape {found}"
                )
            }
            ModelError::ZeroHyperparameter { layer, name } => {
                write!(f, "layer {layer} has {name} zero")
            }
            ModelError::KernelTooLarge {
                layer,
                kernel,
                found,
            } => write!(
                f,
                "layer {layer}: kernel {}x{} does not fit in input shape {found}",
                kernel[0], kernel[1]
            ),
            ModelError::ParameterLength {
                layer,
                param,
                expected,
                found,
            } => {
                write!(
                    f,
                    "layer {layer}: {param} has {found} values, expected {expected}"
                )
            }
            ModelError::NonFiniteParameter {
                layer,
                param,
                index,
            } => {
                write!(f, "layer {layer}: {param}[{index}] is not finite")
            }
            ModelError::TooLarge { layer, size } => {
                write!(f, "layer {layer}: size {size} exceeds the limit {MAX_SIZE}")
            }
        }
    }
}

impl core::error::Error for ModelError {}

/// A weight or bias that the target number type cannot represent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvertError {
    /// Index of the operation in [`Network::ops`].
    pub op: usize,
    /// The value that does not fit.
    pub value: f64,
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "operation {}: value {} is not representable",
            self.op, self.value
        )
    }
}

impl core::error::Error for ConvertError {}

/// A validated square-activation network with f64 parameters.
///
/// Construction checks every shape and parameter length and lowers the
/// layers to a [`Network<f64>`], the sparse form every evaluator shares.
///
/// ```
/// use heist_core::nn::{Conv2d, Dense, Layer, Model, Padding, Shape};
///
/// let conv = Conv2d {
///     in_channels: 1,
///     out_channels: 2,
///     kernel: [3, 3],
///     stride: [2, 2],
///     padding: Padding::Same,
///     weight: vec![0.1; 2 * 9],
///     bias: Some(vec![0.0, 0.5]),
/// };
/// let dense = Dense { in_features: 2 * 3 * 3, out_features: 4, weight: vec![0.01; 4 * 18], bias: None };
/// let model = Model::new(
///     Shape::Image { channels: 1, height: 6, width: 6 },
///     vec![Layer::Conv2d(conv), Layer::Square, Layer::Flatten, Layer::Dense(dense)],
/// )?;
/// assert_eq!(model.output_shape(), Shape::Flat(4));
/// let scores = model.infer(&[1.0; 36])?;
/// assert_eq!(scores.len(), 4);
///
/// // A dense layer straight after a convolution is a shape error naming the layer.
/// let bad = Model::new(
///     Shape::Image { channels: 1, height: 6, width: 6 },
///     vec![model.layers()[0].clone(), model.layers()[3].clone()],
/// );
/// assert!(matches!(bad, Err(heist_core::nn::ModelError::ExpectedFlat { layer: 1, .. })));
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    input: Shape,
    layers: Vec<Layer>,
    shapes: Vec<Shape>,
    layer_ops: Vec<Option<usize>>,
    network: Network<f64>,
}

/// Parameters of the MNIST network of the paper (Table 1), PyTorch layouts.
#[derive(Clone, Debug, PartialEq)]
pub struct MnistWeights {
    /// Convolution weights `[5, 1, 5, 5]` (125 values).
    pub conv_weight: Vec<f64>,
    /// Convolution bias (5 values).
    pub conv_bias: Vec<f64>,
    /// Hidden dense weights `[100, 980]` (98,000 values).
    pub dense1_weight: Vec<f64>,
    /// Hidden dense bias (100 values).
    pub dense1_bias: Vec<f64>,
    /// Output dense weights `[10, 100]` (1,000 values).
    pub dense2_weight: Vec<f64>,
    /// Output dense bias (10 values).
    pub dense2_bias: Vec<f64>,
}

/// Parameters of the Fashion-MNIST network of the paper (Table 2), PyTorch
/// layouts. The output layer has no bias (Table 2 counts 1,280 parameters).
#[derive(Clone, Debug, PartialEq)]
pub struct FashionMnistWeights {
    /// Convolution weights `[5, 1, 5, 5]` (125 values).
    pub conv_weight: Vec<f64>,
    /// Convolution bias (5 values).
    pub conv_bias: Vec<f64>,
    /// Hidden dense weights `[128, 980]` (125,440 values).
    pub dense1_weight: Vec<f64>,
    /// Hidden dense bias (128 values).
    pub dense1_bias: Vec<f64>,
    /// Output dense weights `[10, 128]` (1,280 values), no bias.
    pub dense2_weight: Vec<f64>,
}

/// The 28x28 single-channel input of both paper networks.
pub const MNIST_INPUT: Shape = Shape::Image {
    channels: 1,
    height: 28,
    width: 28,
};

/// The first layer of both paper networks: 5 filters, 5x5, stride 2, same
/// padding, with bias; 28x28 becomes 5x14x14 = 980 values.
fn paper_conv(weight: Vec<f64>, bias: Vec<f64>) -> Layer {
    Layer::Conv2d(Conv2d {
        in_channels: 1,
        out_channels: 5,
        kernel: [5, 5],
        stride: [2, 2],
        padding: Padding::Same,
        weight,
        bias: Some(bias),
    })
}

impl Model {
    /// Validates `layers` applied to an input of shape `input` and lowers
    /// them to a [`Network<f64>`].
    ///
    /// Errors name the index of the first offending layer and the shapes
    /// involved (see [`ModelError`]).
    pub fn new(input: Shape, layers: Vec<Layer>) -> Result<Model, ModelError> {
        if layers.is_empty() {
            return Err(ModelError::NoLayers);
        }
        match input.len() {
            Some(len) if len > 0 && len <= MAX_SIZE => {}
            _ => return Err(ModelError::InvalidInput { shape: input }),
        }
        let mut shapes = Vec::with_capacity(layers.len());
        let mut layer_ops = Vec::with_capacity(layers.len());
        let mut ops = Vec::new();
        let mut shape = input;
        for (index, layer) in layers.iter().enumerate() {
            let (next, op) = lower_layer(index, layer, shape)?;
            layer_ops.push(op.as_ref().map(|_| ops.len()));
            if let Some(op) = op {
                ops.push(op);
            }
            shapes.push(next);
            shape = next;
        }
        let network = Network {
            input_len: input.len().unwrap_or(0),
            ops,
        };
        Ok(Model {
            input,
            layers,
            shapes,
            layer_ops,
            network,
        })
    }

    /// The MNIST network of the paper (Table 1): Conv2D(1→5, 5x5, stride 2,
    /// same, bias) → square → flatten (980) → Dense 100 (bias) → square →
    /// Dense 10 (bias); 99,240 parameters.
    pub fn mnist(weights: MnistWeights) -> Result<Model, ModelError> {
        Model::new(
            MNIST_INPUT,
            vec![
                paper_conv(weights.conv_weight, weights.conv_bias),
                Layer::Square,
                Layer::Flatten,
                Layer::Dense(Dense {
                    in_features: 980,
                    out_features: 100,
                    weight: weights.dense1_weight,
                    bias: Some(weights.dense1_bias),
                }),
                Layer::Square,
                Layer::Dense(Dense {
                    in_features: 100,
                    out_features: 10,
                    weight: weights.dense2_weight,
                    bias: Some(weights.dense2_bias),
                }),
            ],
        )
    }

    /// The Fashion-MNIST network of the paper (Table 2): Conv2D(1→5, 5x5,
    /// stride 2, same, bias) → flatten (980) → Dense 128 (bias) → square →
    /// Dense 10 without bias; 126,978 parameters.
    pub fn fashion_mnist(weights: FashionMnistWeights) -> Result<Model, ModelError> {
        Model::new(
            MNIST_INPUT,
            vec![
                paper_conv(weights.conv_weight, weights.conv_bias),
                Layer::Flatten,
                Layer::Dense(Dense {
                    in_features: 980,
                    out_features: 128,
                    weight: weights.dense1_weight,
                    bias: Some(weights.dense1_bias),
                }),
                Layer::Square,
                Layer::Dense(Dense {
                    in_features: 128,
                    out_features: 10,
                    weight: weights.dense2_weight,
                    bias: None,
                }),
            ],
        )
    }

    /// The input shape.
    pub fn input_shape(&self) -> Shape {
        self.input
    }

    /// The output shape.
    pub fn output_shape(&self) -> Shape {
        self.shapes.last().copied().unwrap_or(self.input)
    }

    /// The layers, as given.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The output shape of every layer, `shapes()[i]` being that of `layers()[i]`.
    pub fn shapes(&self) -> &[Shape] {
        &self.shapes
    }

    /// The index in [`Network::ops`] of the operation layer `layer` lowers
    /// to, or `None` for a flatten (which lowers to nothing) or an index out
    /// of range.
    pub fn op_of_layer(&self, layer: usize) -> Option<usize> {
        self.layer_ops.get(layer).copied().flatten()
    }

    /// Number of weights and biases (pooling scales are not counted).
    pub fn parameter_count(&self) -> usize {
        self.layers
            .iter()
            .map(|layer| match layer {
                Layer::Conv2d(Conv2d { weight, bias, .. })
                | Layer::Dense(Dense { weight, bias, .. }) => {
                    weight.len() + bias.as_ref().map_or(0, Vec::len)
                }
                Layer::SumPool2d(_) | Layer::Square | Layer::Flatten => 0,
            })
            .sum()
    }

    /// The lowered network (f64 weights), shared by every evaluator.
    pub fn network(&self) -> &Network<f64> {
        &self.network
    }

    /// The reference inference in f64: [`Network::evaluate`] on [`Model::network`].
    ///
    /// # Ranges
    /// Any finite input of the input shape's length, flattened in (C, H, W)
    /// order; an infinite intermediate is an [`EvalError::Overflow`].
    pub fn infer(&self, input: &[f64]) -> Result<Vec<f64>, EvalError> {
        self.network.evaluate(input)
    }

    /// The network with every parameter rounded to the nearest f32, for
    /// single-precision inference.
    pub fn network_f32(&self) -> Result<Network<f32>, ConvertError> {
        self.network.try_map(|op, map| {
            let convert = |value: f64| {
                let single = value as f32;
                if single.is_finite() {
                    Ok(single)
                } else {
                    Err(ConvertError { op, value })
                }
            };
            map.try_map(convert, convert, |_| true)
        })
    }
}

/// Rejects a count above [`MAX_SIZE`].
fn check_size(layer: usize, size: u64) -> Result<(), ModelError> {
    if size > MAX_SIZE as u64 {
        Err(ModelError::TooLarge { layer, size })
    } else {
        Ok(())
    }
}

/// Checks a parameter vector's length and finiteness.
fn check_param(
    layer: usize,
    param: Param,
    values: &[f64],
    expected: u64,
) -> Result<(), ModelError> {
    if values.len() as u64 != expected {
        return Err(ModelError::ParameterLength {
            layer,
            param,
            expected,
            found: values.len(),
        });
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(ModelError::NonFiniteParameter {
            layer,
            param,
            index,
        }),
        None => Ok(()),
    }
}

/// Rejects a zero hyperparameter.
fn nonzero(layer: usize, name: &'static str, values: &[usize]) -> Result<(), ModelError> {
    if values.contains(&0) {
        Err(ModelError::ZeroHyperparameter { layer, name })
    } else {
        Ok(())
    }
}

/// The image dimensions `(channels, height, width)` of `shape`, or an error.
fn image(layer: usize, shape: Shape) -> Result<(usize, usize, usize), ModelError> {
    match shape {
        Shape::Image {
            channels,
            height,
            width,
        } => Ok((channels, height, width)),
        Shape::Flat(_) => Err(ModelError::ExpectedImage {
            layer,
            found: shape,
        }),
    }
}

/// Output size and padding before along both axes of a window operation.
struct Window {
    out: [usize; 2],
    pad: [usize; 2],
}

fn window(
    layer: usize,
    shape: Shape,
    (height, width): (usize, usize),
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: Padding,
) -> Result<Window, ModelError> {
    nonzero(layer, "kernel", &kernel)?;
    nonzero(layer, "stride", &stride)?;
    let too_large = ModelError::KernelTooLarge {
        layer,
        kernel,
        found: shape,
    };
    let (out_h, pad_h) = padding
        .output_and_offset(height, kernel[0], stride[0])
        .ok_or(too_large)?;
    let (out_w, pad_w) = padding
        .output_and_offset(width, kernel[1], stride[1])
        .ok_or(too_large)?;
    Ok(Window {
        out: [out_h, out_w],
        pad: [pad_h, pad_w],
    })
}

/// Input position read by output position `out` at kernel offset `k`, or
/// `None` when it falls in the zero padding.
fn source(out: usize, stride: usize, k: usize, pad: usize, len: usize) -> Option<usize> {
    (out * stride + k).checked_sub(pad).filter(|&i| i < len)
}

/// Validates one layer on an input of shape `shape`; returns its output
/// shape and the operation it lowers to.
fn lower_layer(
    index: usize,
    layer: &Layer,
    shape: Shape,
) -> Result<(Shape, Option<Op<f64>>), ModelError> {
    match layer {
        Layer::Conv2d(conv) => lower_conv(index, conv, shape),
        Layer::Dense(dense) => lower_dense(index, dense, shape),
        Layer::SumPool2d(pool) => lower_pool(index, pool, shape),
        Layer::Square => Ok((shape, Some(Op::Square))),
        Layer::Flatten => Ok((Shape::Flat(shape.len().unwrap_or(0)), None)),
    }
}

fn lower_conv(
    index: usize,
    conv: &Conv2d,
    shape: Shape,
) -> Result<(Shape, Option<Op<f64>>), ModelError> {
    let (channels, height, width) = image(index, shape)?;
    nonzero(index, "in_channels", &[conv.in_channels])?;
    nonzero(index, "out_channels", &[conv.out_channels])?;
    if conv.in_channels != channels {
        return Err(ModelError::ChannelMismatch {
            layer: index,
            expected: conv.in_channels,
            found: shape,
        });
    }
    let win = window(
        index,
        shape,
        (height, width),
        conv.kernel,
        conv.stride,
        conv.padding,
    )?;
    let [kh, kw] = conv.kernel;
    let per_output = (channels as u64)
        .saturating_mul(kh as u64)
        .saturating_mul(kw as u64);
    let weight_len = (conv.out_channels as u64).saturating_mul(per_output);
    check_size(index, weight_len)?;
    check_param(index, Param::Weight, &conv.weight, weight_len)?;
    if let Some(bias) = &conv.bias {
        check_param(index, Param::Bias, bias, conv.out_channels as u64)?;
    }
    let out_len = (conv.out_channels as u64)
        .saturating_mul(win.out[0] as u64)
        .saturating_mul(win.out[1] as u64);
    check_size(index, out_len)?;
    check_size(index, out_len.saturating_mul(per_output))?;
    let mut rows = Vec::with_capacity(out_len as usize);
    for o in 0..conv.out_channels {
        let bias = conv.bias.as_ref().map_or(0.0, |b| b[o]);
        for oy in 0..win.out[0] {
            for ox in 0..win.out[1] {
                let mut terms = Vec::new();
                for i in 0..channels {
                    for ky in 0..kh {
                        let Some(iy) = source(oy, conv.stride[0], ky, win.pad[0], height) else {
                            continue;
                        };
                        for kx in 0..kw {
                            let Some(ix) = source(ox, conv.stride[1], kx, win.pad[1], width) else {
                                continue;
                            };
                            let w = conv.weight[((o * channels + i) * kh + ky) * kw + kx];
                            terms.push(((i * height + iy) * width + ix, w));
                        }
                    }
                }
                rows.push(Row { terms, bias });
            }
        }
    }
    let out = Shape::Image {
        channels: conv.out_channels,
        height: win.out[0],
        width: win.out[1],
    };
    let map = LinearMap {
        input_len: channels * height * width,
        rows,
    };
    Ok((out, Some(Op::Linear(map))))
}

fn lower_pool(
    index: usize,
    pool: &SumPool2d,
    shape: Shape,
) -> Result<(Shape, Option<Op<f64>>), ModelError> {
    let (channels, height, width) = image(index, shape)?;
    let win = window(
        index,
        shape,
        (height, width),
        pool.kernel,
        pool.stride,
        Padding::Valid,
    )?;
    check_param(index, Param::Scale, &[pool.scale], 1)?;
    let [kh, kw] = pool.kernel;
    let out_len = (channels as u64) * (win.out[0] as u64) * (win.out[1] as u64);
    check_size(
        index,
        out_len.saturating_mul(kh as u64).saturating_mul(kw as u64),
    )?;
    let mut rows = Vec::with_capacity(out_len as usize);
    for c in 0..channels {
        for oy in 0..win.out[0] {
            for ox in 0..win.out[1] {
                let mut terms = Vec::with_capacity(kh * kw);
                for ky in 0..kh {
                    for kx in 0..kw {
                        let (iy, ix) = (oy * pool.stride[0] + ky, ox * pool.stride[1] + kx);
                        terms.push(((c * height + iy) * width + ix, pool.scale));
                    }
                }
                rows.push(Row { terms, bias: 0.0 });
            }
        }
    }
    let out = Shape::Image {
        channels,
        height: win.out[0],
        width: win.out[1],
    };
    let map = LinearMap {
        input_len: channels * height * width,
        rows,
    };
    Ok((out, Some(Op::Linear(map))))
}

fn lower_dense(
    index: usize,
    dense: &Dense,
    shape: Shape,
) -> Result<(Shape, Option<Op<f64>>), ModelError> {
    let Shape::Flat(len) = shape else {
        return Err(ModelError::ExpectedFlat {
            layer: index,
            found: shape,
        });
    };
    nonzero(index, "in_features", &[dense.in_features])?;
    nonzero(index, "out_features", &[dense.out_features])?;
    if dense.in_features != len {
        return Err(ModelError::FeatureMismatch {
            layer: index,
            expected: dense.in_features,
            found: shape,
        });
    }
    let weight_len = (dense.in_features as u64) * (dense.out_features as u64);
    check_size(index, weight_len)?;
    check_param(index, Param::Weight, &dense.weight, weight_len)?;
    if let Some(bias) = &dense.bias {
        check_param(index, Param::Bias, bias, dense.out_features as u64)?;
    }
    let rows = dense
        .weight
        .chunks_exact(dense.in_features)
        .enumerate()
        .map(|(j, row)| Row {
            terms: row.iter().copied().enumerate().collect(),
            bias: dense.bias.as_ref().map_or(0.0, |b| b[j]),
        })
        .collect();
    let map = LinearMap {
        input_len: len,
        rows,
    };
    Ok((Shape::Flat(dense.out_features), Some(Op::Linear(map))))
}
