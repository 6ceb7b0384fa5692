//! Layers of a square-activation network, with PyTorch tensor layouts.

use alloc::vec::Vec;
use core::fmt;

/// The shape of the activations between two layers.
///
/// Images are stored in (C, H, W) order: the value at channel `c`, row `y`,
/// column `x` sits at index `(c * H + y) * W + x` of the flattened vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// A stack of `channels` images of `height` x `width` values.
    Image {
        /// Number of channels (C).
        channels: usize,
        /// Number of rows (H).
        height: usize,
        /// Number of columns (W).
        width: usize,
    },
    /// A flat vector of this many values.
    Flat(usize),
}

impl Shape {
    /// The number of values, or `None` if it does not fit in a `usize`.
    pub fn len(&self) -> Option<usize> {
        match *self {
            Shape::Image {
                channels,
                height,
                width,
            } => channels.checked_mul(height)?.checked_mul(width),
            Shape::Flat(n) => Some(n),
        }
    }

    /// Whether the shape holds no value at all (some dimension is zero).
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Image {
                channels,
                height,
                width,
            } => write!(f, "({channels}, {height}, {width})"),
            Shape::Flat(n) => write!(f, "({n})"),
        }
    }
}

/// Padding of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    /// No padding: the kernel only visits positions where it fits entirely,
    /// output size `(in - k) / stride + 1` (requires `in >= k`).
    Valid,
    /// TensorFlow/Keras "same" padding: output size `ceil(in / stride)`,
    /// total zero padding `max((out - 1) * stride + k - in, 0)`, of which the
    /// smaller half (`total / 2`) goes before (top/left) and the rest after.
    /// For a 5x5 kernel at stride 2 on 28x28 this is one row/column before and
    /// two after, and a 14x14 output.
    Same,
}

impl Padding {
    /// Output length and padding before, along one axis, for an input of
    /// length `input`, a kernel of length `kernel` and a stride `stride`.
    ///
    /// Returns `None` when the kernel does not fit (valid padding with
    /// `kernel > input`), when a size is zero, or when `input + kernel`
    /// overflows `usize`.
    ///
    /// # Ranges
    /// Inputs are positive; the output length is in `[1, input]` and the
    /// padding before is below `kernel`. No intermediate exceeds
    /// `input + kernel`, which is checked.
    pub fn output_and_offset(
        self,
        input: usize,
        kernel: usize,
        stride: usize,
    ) -> Option<(usize, usize)> {
        if input == 0 || kernel == 0 || stride == 0 {
            return None;
        }
        match self {
            Padding::Valid => {
                let span = input.checked_sub(kernel)?;
                Some((span / stride + 1, 0))
            }
            Padding::Same => {
                let out = input.div_ceil(stride);
                // (out - 1) * stride < input, so this sum is below input + kernel.
                let covered = ((out - 1) * stride).checked_add(kernel)?;
                let total = covered.saturating_sub(input);
                debug_assert!(total < kernel);
                Some((out, total / 2))
            }
        }
    }
}

/// A 2-D convolution over a (C, H, W) image.
///
/// `weight` has PyTorch layout `[out_channels, in_channels, kernel[0], kernel[1]]`
/// (row-major), `bias` (if any) has `out_channels` entries. Output value
/// `(o, y, x)` is `bias[o] + sum over (i, ky, kx) of weight[o, i, ky, kx] *
/// input[i, y * stride[0] + ky - pad_top, x * stride[1] + kx - pad_left]`,
/// where input positions outside the image read as zero.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2d {
    /// Number of input channels.
    pub in_channels: usize,
    /// Number of output channels (filters).
    pub out_channels: usize,
    /// Kernel size `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[vertical, horizontal]`.
    pub stride: [usize; 2],
    /// Padding convention.
    pub padding: Padding,
    /// Weights, `[out, in, kh, kw]` row-major.
    pub weight: Vec<f64>,
    /// Optional bias, one per output channel.
    pub bias: Option<Vec<f64>>,
}

/// A fully connected layer over a flat vector.
///
/// `weight` has PyTorch layout `[out_features, in_features]` (row-major):
/// output `j` is `bias[j] + sum_i weight[j * in_features + i] * input[i]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// Number of inputs.
    pub in_features: usize,
    /// Number of outputs.
    pub out_features: usize,
    /// Weights, `[out, in]` row-major.
    pub weight: Vec<f64>,
    /// Optional bias, one per output.
    pub bias: Option<Vec<f64>>,
}

/// Scaled sum pooling over each channel of an image, without padding.
///
/// Output `(c, y, x)` is `scale * sum over the kernel window at
/// (y * stride[0], x * stride[1])` of the input of channel `c`. With
/// `scale = 1 / (kernel[0] * kernel[1])` this is mean pooling; with
/// `scale = 1` it is the sum pooling that CryptoNets uses, which keeps
/// integer inference free of divisions.
#[derive(Clone, Debug, PartialEq)]
pub struct SumPool2d {
    /// Window size `[height, width]`.
    pub kernel: [usize; 2],
    /// Stride `[vertical, horizontal]`.
    pub stride: [usize; 2],
    /// Factor applied to every window sum.
    pub scale: f64,
}

/// One layer of a square-activation network.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// 2-D convolution.
    Conv2d(Conv2d),
    /// Fully connected layer.
    Dense(Dense),
    /// Scaled sum pooling.
    SumPool2d(SumPool2d),
    /// Element-wise square, the only non-linearity.
    Square,
    /// Reshape an image to a flat vector in (C, H, W) order; a flat input is
    /// left as it is.
    Flatten,
}
