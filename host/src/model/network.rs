//! Networks in floating point: a layer list with hand-written forward and backward passes,
//! generic over [`Real`] (`f32` to train and infer, `f64` to check gradients against finite
//! differences). The paper's targets use convolution, dense layers and the square; attack
//! models (the inverse generator of the reconstruction attack, membership attack models)
//! add ReLU, leaky ReLU, sigmoid and tanh activations, nearest-neighbour upsampling, and
//! regression losses ([`Loss`]).
//!
//! # Layout
//! An example's activations are a flat vector in (C, H, W) order, so [`LayerSpec::Flatten`]
//! moves no data, exactly like `torch.flatten` on an NCHW tensor. A batch is `batch`
//! such vectors one after another. The parameters of the whole network are one flat vector:
//! layer after layer, each weight followed by its bias, with the PyTorch layouts
//! (`Conv2d` weight `[out, in, kh, kw]`, `Linear` weight `[out, in]`); see
//! [`Network::tensors`].
//!
//! # Convolution
//! Square kernels, one stride for both axes, and two paddings: [`Padding::Valid`] (none) and
//! [`Padding::Same`], TensorFlow/Keras's rule: output side `ceil(in / stride)`, total padding
//! `max((out - 1) * stride + kernel - in, 0)`, of which the smaller half goes before (top,
//! left) and the rest after. For a 5x5 kernel at stride 2 on 28x28 that is one row/column
//! before and two after, and a 14x14 output. The convolution runs over a batch laid out
//! batch-innermost ([`Layout::BatchInner`]), register-blocked over output channels and
//! examples; the dense layers' products go through `matrixmultiply`, which reads and writes
//! either layout through strides, so a batch is transposed only where a layer needs the
//! other layout.

use std::borrow::Cow;
use std::ops::Range;

use super::real::Real;

/// How a convolution pads its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// TensorFlow/Keras "same": output side `ceil(in / stride)`, extra padding after.
    Same,
    /// No padding: output side `(in - kernel) / stride + 1`.
    Valid,
}

/// A 2-D convolution with a square kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Conv2d {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels (filters).
    pub out_channels: usize,
    /// Kernel side.
    pub kernel: usize,
    /// Stride along both axes.
    pub stride: usize,
    /// Padding rule.
    pub padding: Padding,
    /// Whether each filter has a bias.
    pub bias: bool,
}

/// A fully connected layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dense {
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
    /// Whether each output has a bias.
    pub bias: bool,
}

/// One layer of a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LayerSpec {
    /// 2-D convolution.
    Conv2d(Conv2d),
    /// `x -> x^2`, element-wise.
    Square,
    /// (C, H, W) to a vector of C*H*W features, in that order.
    Flatten,
    /// Fully connected layer.
    Dense(Dense),
    /// `x -> max(x, 0)`, element-wise.
    Relu,
    /// `x -> x` for `x > 0`, `LEAKY_RELU_SLOPE * x` otherwise, element-wise.
    LeakyRelu,
    /// `x -> 1 / (1 + e^-x)`, element-wise.
    Sigmoid,
    /// `x -> tanh x`, element-wise.
    Tanh,
    /// The same values viewed with another shape of the same length (e.g. a dense layer's
    /// output as (C, H, W) for a convolution), in order; the inverse of
    /// [`LayerSpec::Flatten`].
    Reshape(Shape),
    /// Nearest-neighbour upsampling of (C, H, W) to (C, H·factor, W·factor):
    /// `y[c, i, j] = x[c, i / factor, j / factor]` (PyTorch's `nn.Upsample(mode="nearest")`).
    Upsample {
        /// Integer scale along both axes.
        factor: usize,
    },
}

/// The slope of [`LayerSpec::LeakyRelu`] for negative inputs (PyTorch's default).
pub const LEAKY_RELU_SLOPE: f64 = 0.01;

/// An element-wise activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Activation {
    Square,
    Relu,
    LeakyRelu,
    Sigmoid,
    Tanh,
}

impl Activation {
    fn sigmoid<T: Real>(x: T) -> T {
        T::ONE / (T::ONE + (-x).exp())
    }

    #[inline(always)]
    fn apply<T: Real>(self, x: T) -> T {
        match self {
            Activation::Square => x * x,
            Activation::Relu => {
                if x > T::ZERO {
                    x
                } else {
                    T::ZERO
                }
            }
            Activation::LeakyRelu => {
                if x > T::ZERO {
                    x
                } else {
                    T::from_f64(LEAKY_RELU_SLOPE) * x
                }
            }
            Activation::Sigmoid => Self::sigmoid(x),
            // tanh x = 2 sigmoid(2x) - 1.
            Activation::Tanh => {
                let two = T::ONE + T::ONE;
                two * Self::sigmoid(two * x) - T::ONE
            }
        }
    }

    /// The derivative at input `x`.
    #[inline(always)]
    fn derivative<T: Real>(self, x: T) -> T {
        match self {
            Activation::Square => x + x,
            Activation::Relu => {
                if x > T::ZERO {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
            Activation::LeakyRelu => {
                if x > T::ZERO {
                    T::ONE
                } else {
                    T::from_f64(LEAKY_RELU_SLOPE)
                }
            }
            Activation::Sigmoid => {
                let s = Self::sigmoid(x);
                s * (T::ONE - s)
            }
            Activation::Tanh => {
                let t = self.apply(x);
                T::ONE - t * t
            }
        }
    }

    /// `f(a, ..)` for `a = self`, in the widest tier and with `a` a constant in each arm,
    /// so that a loop over [`Activation::apply`] or [`Activation::derivative`] inside `f`
    /// is one vector loop per activation instead of a match per value.
    #[inline(always)]
    fn each<R>(self, f: impl FnOnce(Activation) -> R) -> R {
        Tier::Widest.run(
            #[inline(always)]
            || match self {
                Activation::Square => f(Activation::Square),
                Activation::Relu => f(Activation::Relu),
                Activation::LeakyRelu => f(Activation::LeakyRelu),
                Activation::Sigmoid => f(Activation::Sigmoid),
                Activation::Tanh => f(Activation::Tanh),
            },
        )
    }
}

/// A loss on a network's outputs, summed over the examples of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    /// Softmax cross-entropy of the raw scores against a class label per example.
    CrossEntropy,
    /// Mean over the outputs of `(y - t)²` (PyTorch's `MSELoss`), against a target vector.
    Mse,
    /// Mean over the outputs of `-(t ln y + (1 - t) ln(1 - y))` (PyTorch's `BCELoss`, each
    /// log clamped at -100), for outputs in (0, 1) such as a sigmoid's.
    Bce,
}

/// What each example of a batch is compared with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target<'a, T> {
    /// One class label per example ([`Loss::CrossEntropy`]).
    Labels(&'a [u8]),
    /// [`Network::output_len`] values per example ([`Loss::Mse`] or [`Loss::Bce`]).
    Values(&'a [T], Loss),
}

/// The shape of one example's activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    /// Channels (or features, for a vector).
    pub c: usize,
    /// Height (1 for a vector).
    pub h: usize,
    /// Width (1 for a vector).
    pub w: usize,
}

impl Shape {
    /// A (C, H, W) shape.
    pub const fn chw(c: usize, h: usize, w: usize) -> Self {
        Shape { c, h, w }
    }

    /// Number of values.
    pub const fn len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Whether it holds no value.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn is_vector(&self) -> bool {
        self.h == 1 && self.w == 1
    }
}

/// Why a layer list does not form a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// A layer's input does not fit the previous layer's output.
    #[error("layer {index} ({layer:?}) cannot take input of shape {input:?}")]
    Mismatch {
        /// Index of the layer.
        index: usize,
        /// The layer.
        layer: LayerSpec,
        /// The shape it was given.
        input: Shape,
    },
    /// A layer has a zero size, stride or kernel.
    #[error("layer {index} ({layer:?}) has a zero size, kernel or stride")]
    Degenerate {
        /// Index of the layer.
        index: usize,
        /// The layer.
        layer: LayerSpec,
    },
}

/// One named parameter tensor of a network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// PyTorch-style name, e.g. `conv.weight` or `fc1.bias`.
    pub name: String,
    /// Its shape, PyTorch layout.
    pub shape: Vec<usize>,
    /// Where it lives in the flat parameter vector.
    pub range: Range<usize>,
    /// `(fan_in, fan_out)` for Glorot initialisation, `None` for a bias.
    pub fans: Option<(usize, usize)>,
}

/// Geometry of a planned convolution.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ConvPlan {
    spec: Conv2d,
    out_h: usize,
    out_w: usize,
    /// The length of one input example, `c·h·w`.
    input_len: usize,
    /// For each output position `p = oy·out_w + ox` and kernel tap `t = (c·k + i)·k + j`,
    /// at `p·patch + t`: the index within one example of the input value the tap reads,
    /// `(c·h + oy·s + i − top)·w + ox·s + j − left`, or the example's length `c·h·w` (out
    /// of range) where it reads the zero padding.
    taps: Vec<usize>,
}

impl ConvPlan {
    /// Plans `spec` on inputs of shape `input`, or `None` if the kernel does not fit.
    fn new(spec: Conv2d, input: Shape) -> Option<Self> {
        let (k, s) = (spec.kernel, spec.stride);
        let (out_h, pad_top) = conv_axis(input.h, k, s, spec.padding)?;
        let (out_w, pad_left) = conv_axis(input.w, k, s, spec.padding)?;
        let outside = input.len();
        let mut taps = Vec::with_capacity(spec.in_channels * k * k * out_h * out_w);
        for oy in 0..out_h {
            for ox in 0..out_w {
                for ch in 0..spec.in_channels {
                    for i in 0..k {
                        let iy = source(oy, i, s, pad_top, input.h);
                        taps.extend((0..k).map(|j| {
                            iy.zip(source(ox, j, s, pad_left, input.w))
                                .map_or(outside, |(iy, ix)| (ch * input.h + iy) * input.w + ix)
                        }));
                    }
                }
            }
        }
        Some(Self {
            spec,
            out_h,
            out_w,
            input_len: outside,
            taps,
        })
    }
    fn patch(&self) -> usize {
        self.spec.in_channels * self.spec.kernel * self.spec.kernel
    }

    /// Walks the convolution's multiply-adds over a batch laid batch-innermost, in `tier`:
    /// for each output channel `o`, output position `p` and kernel tap `t` that reads input
    /// value `src` (taps in the padding read zeros and are skipped), calls `f(weight, input,
    /// output)` with the index `o·patch + t` of the weight and the ranges of the `batch`
    /// copies of input value `src` and of output `o·positions + p`.
    #[inline(always)]
    fn walk(&self, tier: Tier, batch: usize, mut f: impl FnMut(usize, Range<usize>, Range<usize>)) {
        let (k, positions) = (self.patch(), self.positions());
        tier.run(
            #[inline(always)]
            || {
                for (p, taps) in self.taps.chunks_exact(k).enumerate() {
                    for (t, &src) in taps.iter().enumerate() {
                        if src >= self.input_len {
                            continue;
                        }
                        for o in 0..self.spec.out_channels {
                            let y = (o * positions + p) * batch;
                            f(o * k + t, src * batch..(src + 1) * batch, y..y + batch);
                        }
                    }
                }
            },
        );
    }

    /// `yt = bias + W * x` for `batch` examples, batch-innermost: `xt` holds input value `i`
    /// of every example at `i·batch ..`, and `yt` receives output `(o·positions + p)` of
    /// every example at `(o·positions + p)·batch ..`. `w` is `out x patch` (PyTorch's
    /// layout flattened); `yt` is overwritten. Runs in `tier`, register-blocked
    /// ([`ConvPlan::blocks`]): each output starts at its bias and adds its taps' products
    /// in tap order, as [`ConvPlan::walk`] visits them.
    fn forward_batched<T: Real>(
        &self,
        tier: Tier,
        w: &[T],
        bias: Option<&[T]>,
        xt: &[T],
        yt: &mut [T],
        batch: usize,
    ) {
        for (o, y) in yt.chunks_exact_mut(self.positions() * batch).enumerate() {
            y.fill(bias.map_or(T::ZERO, |b| b[o]));
        }
        self.blocks(
            tier,
            batch,
            &mut Forward {
                on: Blocking {
                    plan: self,
                    w: &regroup(w, self.spec.out_channels, self.patch()),
                    batch,
                },
                xt,
                yt,
            },
        );
    }

    /// The adjoint of [`ConvPlan::forward_batched`] in the input: adds `W^T * dyt` to `dxt`
    /// (both batch-innermost, as there). Runs in `tier`, register-blocked
    /// ([`ConvPlan::blocks`]): each input value receives, position after position and tap
    /// after tap, the sum over a block's output channels in channel order.
    fn input_grad_batched<T: Real>(
        &self,
        tier: Tier,
        w: &[T],
        dyt: &[T],
        dxt: &mut [T],
        batch: usize,
    ) {
        self.blocks(
            tier,
            batch,
            &mut InputGrad {
                on: Blocking {
                    plan: self,
                    w: &regroup(w, self.spec.out_channels, self.patch()),
                    batch,
                },
                dyt,
                dxt,
            },
        );
    }

    /// Runs `kernel` in `tier` over every register block of a batch of `batch`: position
    /// after position, output channels in groups of at most [`GROUP`], examples in tiles of
    /// [`LANES`] and then one by one for the rest. The blocks of a position touch disjoint
    /// outputs, so the order within a position changes no result.
    #[inline(always)]
    fn blocks(&self, tier: Tier, batch: usize, kernel: &mut impl Block) {
        let channels = self.spec.out_channels;
        tier.run(
            #[inline(always)]
            || {
                for p in 0..self.positions() {
                    for o0 in (0..channels).step_by(GROUP) {
                        let group = GROUP.min(channels - o0);
                        let full = batch - batch % LANES;
                        for b0 in (0..full).step_by(LANES) {
                            dispatch::<LANES>(kernel, group, p, o0, b0);
                        }
                        for b0 in full..batch {
                            dispatch::<1>(kernel, group, p, o0, b0);
                        }
                    }
                }
            },
        );
    }

    /// The adjoint of [`ConvPlan::forward_batched`] in the weight: adds `dyt * x^T` to `dw`
    /// (`out x patch`), summed over the batch. Runs in `tier`.
    fn weight_grad_batched<T: Real>(
        &self,
        tier: Tier,
        xt: &[T],
        dyt: &[T],
        dw: &mut [T],
        batch: usize,
    ) {
        self.walk(
            tier,
            batch,
            #[inline(always)]
            |w_i, x, dy| dw[w_i] += dot(&dyt[dy], &xt[x]),
        );
    }

    fn positions(&self) -> usize {
        self.out_h * self.out_w
    }
}

/// Output side and padding before, for one axis.
fn conv_axis(
    input: usize,
    kernel: usize,
    stride: usize,
    padding: Padding,
) -> Option<(usize, usize)> {
    match padding {
        Padding::Valid => (input >= kernel).then(|| ((input - kernel) / stride + 1, 0)),
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = ((out - 1) * stride + kernel).saturating_sub(input);
            Some((out, total / 2))
        }
    }
}

/// Examples per register block of the convolution kernels: two AVX2 vectors of `f32`.
const LANES: usize = 16;

/// The most output channels one register block holds (with [`LANES`] examples, the block's
/// accumulators and operands fit the sixteen AVX2 registers).
const GROUP: usize = 6;

/// One of the convolution's register-blocked kernels.
trait Block {
    /// Does the kernel's work for output channels `o0 .. o0 + G` at output position `p`, for
    /// examples `b0 .. b0 + L`.
    fn block<const G: usize, const L: usize>(&mut self, p: usize, o0: usize, b0: usize);
}

/// Calls `kernel.block::<group, L>`, for `group` in `1 ..= GROUP`.
#[inline(always)]
fn dispatch<const L: usize>(kernel: &mut impl Block, group: usize, p: usize, o0: usize, b0: usize) {
    match group {
        1 => kernel.block::<1, L>(p, o0, b0),
        2 => kernel.block::<2, L>(p, o0, b0),
        3 => kernel.block::<3, L>(p, o0, b0),
        4 => kernel.block::<4, L>(p, o0, b0),
        5 => kernel.block::<5, L>(p, o0, b0),
        6 => kernel.block::<6, L>(p, o0, b0),
        _ => unreachable!("a group holds 1 to {GROUP} channels, not {group}"),
    }
}

/// The first `N` values of `s` as an array.
#[inline(always)]
fn as_array<T, const N: usize>(s: &[T]) -> &[T; N] {
    s[..N].try_into().expect("a slice of N values")
}

/// The weights `w` (`out x patch`, PyTorch's layout) regrouped for the register blocks:
/// for each group of [`GROUP`] output channels from `o0` and each tap `t`, the group's
/// weights side by side from [`grouped`]`(o0, patch, t)` (zeros beyond the last channel),
/// so that a block reads a tap's weights as one array.
fn regroup<T: Real>(w: &[T], out: usize, patch: usize) -> Vec<T> {
    let mut g = vec![T::ZERO; out.div_ceil(GROUP) * patch * GROUP];
    for o in 0..out {
        for t in 0..patch {
            g[grouped(o - o % GROUP, patch, t) + o % GROUP] = w[o * patch + t];
        }
    }
    g
}

/// Where [`regroup`] puts the weights of tap `t` of the group that starts at channel `o0`.
#[inline(always)]
fn grouped(o0: usize, patch: usize, t: usize) -> usize {
    (o0 / GROUP * patch + t) * GROUP
}

/// What both register-blocked kernels read besides their buffers: the plan, the weights
/// ([`regroup`]ed) and the batch size.
#[derive(Clone, Copy)]
struct Blocking<'a, T> {
    plan: &'a ConvPlan,
    w: &'a [T],
    batch: usize,
}

impl<T: Real> Blocking<'_, T> {
    /// Where the `L` examples from `b0` of output `(o, p)` start in a batch-innermost
    /// output buffer.
    #[inline(always)]
    fn output(&self, o: usize, p: usize, b0: usize) -> usize {
        (o * self.plan.positions() + p) * self.batch + b0
    }

    /// Calls `f(weights, input)` for each tap of position `p` that reads an input value
    /// (in tap order, padding skipped), with the tap's weights of the `G` channels from
    /// `o0` and where the `L` examples from `b0` of that input value start.
    #[inline(always)]
    fn taps<const G: usize>(
        &self,
        p: usize,
        o0: usize,
        b0: usize,
        mut f: impl FnMut(&[T; G], usize),
    ) {
        let k = self.plan.patch();
        for (t, &src) in self.plan.taps[p * k..][..k].iter().enumerate() {
            if src < self.plan.input_len {
                f(
                    as_array(&self.w[grouped(o0, k, t)..]),
                    src * self.batch + b0,
                );
            }
        }
    }
}

/// [`ConvPlan::forward_batched`]'s kernel: the block's outputs stay in registers while
/// every tap adds its products.
struct Forward<'a, T> {
    on: Blocking<'a, T>,
    xt: &'a [T],
    yt: &'a mut [T],
}

impl<T: Real> Block for Forward<'_, T> {
    #[inline(always)]
    fn block<const G: usize, const L: usize>(&mut self, p: usize, o0: usize, b0: usize) {
        let on = self.on;
        let mut acc = [[T::ZERO; L]; G];
        for (g, a) in acc.iter_mut().enumerate() {
            a.copy_from_slice(&self.yt[on.output(o0 + g, p, b0)..][..L]);
        }
        on.taps::<G>(
            p,
            o0,
            b0,
            #[inline(always)]
            |w, x| {
                let x: &[T; L] = as_array(&self.xt[x..]);
                for (a, &w) in acc.iter_mut().zip(w) {
                    for (a, &x) in a.iter_mut().zip(x) {
                        *a += w * x;
                    }
                }
            },
        );
        for (g, a) in acc.iter().enumerate() {
            self.yt[on.output(o0 + g, p, b0)..][..L].copy_from_slice(a);
        }
    }
}

/// [`ConvPlan::input_grad_batched`]'s kernel: the block's output gradients stay in
/// registers while every tap's input value receives their weighted sum.
struct InputGrad<'a, T> {
    on: Blocking<'a, T>,
    dyt: &'a [T],
    dxt: &'a mut [T],
}

impl<T: Real> Block for InputGrad<'_, T> {
    #[inline(always)]
    fn block<const G: usize, const L: usize>(&mut self, p: usize, o0: usize, b0: usize) {
        let on = self.on;
        let mut dy = [[T::ZERO; L]; G];
        for (g, d) in dy.iter_mut().enumerate() {
            d.copy_from_slice(&self.dyt[on.output(o0 + g, p, b0)..][..L]);
        }
        on.taps::<G>(
            p,
            o0,
            b0,
            #[inline(always)]
            |w, dx| {
                let dx: &mut [T; L] = (&mut self.dxt[dx..][..L])
                    .try_into()
                    .expect("a slice of L values");
                let mut acc = *dx;
                for (d, &w) in dy.iter().zip(w) {
                    for (a, &d) in acc.iter_mut().zip(d) {
                        *a += w * d;
                    }
                }
                *dx = acc;
            },
        );
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Conv(ConvPlan),
    Act(Activation),
    /// Flatten or reshape: the values unchanged.
    View,
    Dense(Dense),
    Upsample(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Planned {
    op: Op,
    input: Shape,
    output: Shape,
    weight: Range<usize>,
    bias: Option<Range<usize>>,
    name: String,
}

/// A validated layer list with its parameter layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    input: Shape,
    specs: Vec<LayerSpec>,
    layers: Vec<Planned>,
    params: usize,
}

/// How a batch's activations lie in one buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Example after example: value `i` of example `b` at `b·len + i`.
    Examples,
    /// Batch-innermost: value `i` of example `b` at `i·batch + b`, the layout a
    /// convolution's multiply-adds run over (each over the whole batch at once).
    BatchInner,
}

impl Layout {
    /// `values` (`len` values for each of `batch` examples, laid out in `self`) laid out in
    /// `to`: the same buffer when the layouts agree, a transpose otherwise.
    ///
    /// # Panics
    /// If `values.len() != len * batch`.
    pub fn convert<T: Real>(self, to: Layout, values: Vec<T>, len: usize, batch: usize) -> Vec<T> {
        match (self, to) {
            (Layout::Examples, Layout::BatchInner) => transposed(&values, batch, len),
            (Layout::BatchInner, Layout::Examples) => transposed(&values, len, batch),
            _ => values,
        }
    }

    /// The (row stride, column stride) of the `batch x len` matrix of a batch in this layout,
    /// for a matrix product to read or write it in place.
    fn strides(self, len: usize, batch: usize) -> (usize, usize) {
        match self {
            Layout::Examples => (len, 1),
            Layout::BatchInner => (1, batch),
        }
    }
}

impl Op {
    /// The layout this layer reads, if it needs one: a dense layer reads both through
    /// strides, and an element-wise layer does not care.
    fn reads(&self) -> Option<Layout> {
        match self {
            Op::Conv(_) => Some(Layout::BatchInner),
            Op::Upsample(_) => Some(Layout::Examples),
            Op::Act(_) | Op::View | Op::Dense(_) => None,
        }
    }

    /// The layout of this layer's output, for an input laid out in `input`.
    fn writes(&self, input: Layout) -> Layout {
        match self {
            Op::Conv(_) => Layout::BatchInner,
            Op::Dense(_) | Op::Upsample(_) => Layout::Examples,
            Op::Act(_) | Op::View => input,
        }
    }
}

/// What a forward pass keeps for the backward pass: each layer's input, in the layout the
/// layer read it, or an empty buffer where the backward pass does not read it.
type Trace<T> = Vec<(Vec<T>, Layout)>;

/// What a forward pass keeps of each layer's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keep {
    /// Nothing: inference.
    Nothing,
    /// What the input gradient needs: an activation's input.
    ForInput,
    /// What the input and parameter gradients need: every layer's input.
    ForParams,
}

impl Keep {
    /// Whether the backward pass reads the input of a layer doing `op`.
    fn keeps(self, op: &Op) -> bool {
        match self {
            Keep::Nothing => false,
            Keep::ForInput => matches!(op, Op::Act(_)),
            Keep::ForParams => *op != Op::View && !matches!(op, Op::Upsample(_)),
        }
    }
}

impl Network {
    /// Plans `specs` on examples of shape `input`, naming parameters PyTorch-style: a single
    /// convolution is `conv`, several are `conv1`, `conv2`, …; dense layers are `fc1`, `fc2`, ….
    ///
    /// # Errors
    /// [`NetworkError`] if a layer does not fit its input or has a zero size.
    pub fn new(input: Shape, specs: &[LayerSpec]) -> Result<Self, NetworkError> {
        let convs = specs
            .iter()
            .filter(|s| matches!(s, LayerSpec::Conv2d(_)))
            .count();
        let (mut conv_i, mut dense_i) = (0, 0);
        let mut shape = input;
        let mut offset = 0;
        let mut layers = Vec::with_capacity(specs.len());
        for (index, &layer) in specs.iter().enumerate() {
            let mismatch = NetworkError::Mismatch {
                index,
                layer,
                input: shape,
            };
            let (op, output, weight_len, bias_len, name) = match layer {
                LayerSpec::Conv2d(c) => {
                    if c.in_channels == 0 || c.out_channels == 0 || c.kernel == 0 || c.stride == 0 {
                        return Err(NetworkError::Degenerate { index, layer });
                    }
                    if c.in_channels != shape.c {
                        return Err(mismatch);
                    }
                    let plan = ConvPlan::new(c, shape).ok_or(mismatch)?;
                    conv_i += 1;
                    let name = if convs == 1 {
                        "conv".to_owned()
                    } else {
                        format!("conv{conv_i}")
                    };
                    let output = Shape::chw(c.out_channels, plan.out_h, plan.out_w);
                    let weight_len = c.out_channels * plan.patch();
                    (
                        Op::Conv(plan),
                        output,
                        weight_len,
                        if c.bias { c.out_channels } else { 0 },
                        name,
                    )
                }
                LayerSpec::Square => (Op::Act(Activation::Square), shape, 0, 0, String::new()),
                LayerSpec::Relu => (Op::Act(Activation::Relu), shape, 0, 0, String::new()),
                LayerSpec::LeakyRelu => {
                    (Op::Act(Activation::LeakyRelu), shape, 0, 0, String::new())
                }
                LayerSpec::Sigmoid => (Op::Act(Activation::Sigmoid), shape, 0, 0, String::new()),
                LayerSpec::Tanh => (Op::Act(Activation::Tanh), shape, 0, 0, String::new()),
                LayerSpec::Reshape(to) => {
                    if to.len() != shape.len() {
                        return Err(mismatch);
                    }
                    (Op::View, to, 0, 0, String::new())
                }
                LayerSpec::Upsample { factor } => {
                    if factor == 0 {
                        return Err(NetworkError::Degenerate { index, layer });
                    }
                    let output = shape
                        .h
                        .checked_mul(factor)
                        .zip(shape.w.checked_mul(factor))
                        .map(|(h, w)| Shape::chw(shape.c, h, w))
                        .ok_or(mismatch)?;
                    (Op::Upsample(factor), output, 0, 0, String::new())
                }
                LayerSpec::Flatten => {
                    (Op::View, Shape::chw(shape.len(), 1, 1), 0, 0, String::new())
                }
                LayerSpec::Dense(d) => {
                    if d.inputs == 0 || d.outputs == 0 {
                        return Err(NetworkError::Degenerate { index, layer });
                    }
                    if !shape.is_vector() || shape.c != d.inputs {
                        return Err(mismatch);
                    }
                    dense_i += 1;
                    (
                        Op::Dense(d),
                        Shape::chw(d.outputs, 1, 1),
                        d.outputs * d.inputs,
                        if d.bias { d.outputs } else { 0 },
                        format!("fc{dense_i}"),
                    )
                }
            };
            let weight = offset..offset + weight_len;
            offset += weight_len;
            let bias = (bias_len > 0).then(|| offset..offset + bias_len);
            offset += bias_len;
            layers.push(Planned {
                op,
                input: shape,
                output,
                weight,
                bias,
                name,
            });
            shape = output;
        }
        Ok(Network {
            input,
            specs: specs.to_vec(),
            layers,
            params: offset,
        })
    }

    /// The layer list.
    pub fn specs(&self) -> &[LayerSpec] {
        &self.specs
    }

    /// Shape of one input example.
    pub fn input_shape(&self) -> Shape {
        self.input
    }

    /// Values per input example.
    pub fn input_len(&self) -> usize {
        self.input.len()
    }

    /// Values per output example (the number of classes for a classifier).
    pub fn output_len(&self) -> usize {
        self.layers
            .last()
            .map_or(self.input.len(), |l| l.output.len())
    }

    /// Length of the flat parameter vector.
    pub fn param_count(&self) -> usize {
        self.params
    }

    /// The parameter tensors in storage order.
    pub fn tensors(&self) -> Vec<TensorInfo> {
        let mut out = Vec::new();
        for l in &self.layers {
            let (shape, fans) = match &l.op {
                Op::Conv(c) => {
                    let k2 = c.spec.kernel * c.spec.kernel;
                    (
                        vec![
                            c.spec.out_channels,
                            c.spec.in_channels,
                            c.spec.kernel,
                            c.spec.kernel,
                        ],
                        (c.spec.in_channels * k2, c.spec.out_channels * k2),
                    )
                }
                Op::Dense(d) => (vec![d.outputs, d.inputs], (d.inputs, d.outputs)),
                Op::Act(_) | Op::View | Op::Upsample(_) => continue,
            };
            out.push(TensorInfo {
                name: format!("{}.weight", l.name),
                shape: shape.clone(),
                range: l.weight.clone(),
                fans: Some(fans),
            });
            if let Some(b) = &l.bias {
                out.push(TensorInfo {
                    name: format!("{}.bias", l.name),
                    shape: vec![shape[0]],
                    range: b.clone(),
                    fans: None,
                });
            }
        }
        out
    }

    fn check_batch<T>(&self, params: &[T], x: &[T], batch: usize) {
        assert_eq!(params.len(), self.params, "parameter vector length");
        assert_eq!(
            Some(x.len()),
            batch.checked_mul(self.input.len()),
            "input length for a batch of {batch}"
        );
    }

    /// The outputs (raw scores, no softmax) for `batch` examples laid one after another in `x`.
    ///
    /// # Panics
    /// If `params.len() != self.param_count()` or `x.len() != batch * self.input_len()`.
    pub fn forward<T: Real>(&self, params: &[T], x: &[T], batch: usize) -> Vec<T> {
        self.check_batch(params, x, batch);
        let mut trace = Trace::new();
        self.run_forward(
            params,
            x,
            Layout::Examples,
            batch,
            Keep::Nothing,
            &mut trace,
        )
    }

    /// The outputs, example after example, for `batch` examples laid out in `layout` in `x`;
    /// pushes each layer's input onto `trace` (empty unless `keep` keeps it). Each layer's
    /// output stays in the layout the layer writes ([`Op::writes`]) until a layer needs
    /// another, so a dense layer after a convolution reads its batch-innermost output in
    /// place, and `x` itself is copied only where it must be kept or relaid.
    fn run_forward<T: Real>(
        &self,
        params: &[T],
        x: &[T],
        layout: Layout,
        batch: usize,
        keep: Keep,
        trace: &mut Trace<T>,
    ) -> Vec<T> {
        let (mut act, mut layout) = (Cow::Borrowed(x), layout);
        for l in &self.layers {
            if let Some(needed) = l.op.reads() {
                if needed != layout {
                    act =
                        Cow::Owned(layout.convert(needed, act.into_owned(), l.input.len(), batch));
                    layout = needed;
                }
            }
            if l.op == Op::View {
                // The values pass on unchanged.
                trace.push((Vec::new(), layout));
                continue;
            }
            let next = self.layer_forward(l, params, &act, layout, batch);
            let kept = if keep.keeps(&l.op) {
                act.into_owned()
            } else {
                Vec::new()
            };
            trace.push((kept, layout));
            (act, layout) = (Cow::Owned(next), l.op.writes(layout));
        }
        layout.convert(Layout::Examples, act.into_owned(), self.output_len(), batch)
    }

    /// Layer `l`'s output for `batch` examples laid out in `layout` in `x` (a layout the
    /// layer reads), laid out as [`Op::writes`] says.
    fn layer_forward<T: Real>(
        &self,
        l: &Planned,
        params: &[T],
        x: &[T],
        layout: Layout,
        batch: usize,
    ) -> Vec<T> {
        let (n_in, n_out) = (l.input.len(), l.output.len());
        match &l.op {
            Op::Act(a) => {
                // A loop, not `collect`: the latter's code is shared by every activation.
                let mut y = vec![T::ZERO; x.len()];
                a.each(
                    #[inline(always)]
                    |a| {
                        for (y, &v) in y.iter_mut().zip(x) {
                            *y = a.apply(v);
                        }
                    },
                );
                y
            }
            Op::View => unreachable!("a view passes its input on unchanged, never through here"),
            Op::Upsample(f) => {
                let (c, h, w) = (l.input.c, l.input.h, l.input.w);
                let mut y = Vec::with_capacity(batch * n_out);
                for xb in x.chunks_exact(n_in) {
                    for plane in 0..c {
                        for i in 0..h * f {
                            let row = &xb[(plane * h + i / f) * w..][..w];
                            y.extend((0..w * f).map(|j| row[j / f]));
                        }
                    }
                }
                y
            }
            Op::Dense(d) => {
                let w = &params[l.weight.clone()];
                let mut y = vec![T::ZERO; batch * n_out];
                if let Some(b) = &l.bias {
                    for row in y.chunks_exact_mut(n_out) {
                        row.copy_from_slice(&params[b.clone()]);
                    }
                }
                // y[B x out] += x[B x in] * W^T, W stored [out x in].
                let (rs, cs) = layout.strides(n_in, batch);
                T::gemm(
                    batch,
                    d.inputs,
                    d.outputs,
                    (x, rs, cs),
                    (w, 1, d.inputs),
                    T::ONE,
                    (&mut y, n_out, 1),
                );
                y
            }
            Op::Conv(c) => {
                let mut yt = vec![T::ZERO; n_out * batch];
                c.forward_batched(
                    Tier::Widest,
                    &params[l.weight.clone()],
                    l.bias.clone().map(|b| &params[b]),
                    x,
                    &mut yt,
                    batch,
                );
                yt
            }
        }
    }

    /// Softmax cross-entropy of the outputs for `batch` examples against `labels`; adds
    /// `scale` times the gradient of the summed loss to `grad` (same layout as `params`) and,
    /// when given, writes `scale` times the gradient with respect to the inputs to
    /// `input_grad`. Returns the summed loss and the number of correct arg-max predictions.
    ///
    /// # Panics
    /// On length mismatches, or a label not below [`Network::output_len`].
    pub fn loss_grad<T: Real>(
        &self,
        params: &[T],
        x: &[T],
        labels: &[u8],
        scale: T,
        grad: &mut [T],
        input_grad: Option<&mut [T]>,
    ) -> (f64, usize) {
        self.target_grad(params, x, Target::Labels(labels), scale, grad, input_grad)
    }

    /// The summed loss of the outputs for the examples in `x` against `target`; adds `scale`
    /// times its gradient to `grad` (same layout as `params`) and, when given, writes `scale`
    /// times the gradient with respect to the inputs to `input_grad`. Returns the summed
    /// loss and, for [`Target::Labels`], the number of correct arg-max predictions (0 for
    /// [`Target::Values`]).
    ///
    /// The batch size is the number of labels, or the number of target values over
    /// [`Network::output_len`]. [`Loss::CrossEntropy`] with [`Target::Values`] treats each
    /// target vector as a probability distribution over the outputs.
    ///
    /// # Panics
    /// On length mismatches, or a label not below [`Network::output_len`].
    pub fn target_grad<T: Real>(
        &self,
        params: &[T],
        x: &[T],
        target: Target<'_, T>,
        scale: T,
        grad: &mut [T],
        input_grad: Option<&mut [T]>,
    ) -> (f64, usize) {
        let outputs = self.output_len();
        let batch = match target {
            Target::Labels(labels) => labels.len(),
            Target::Values(values, _) => {
                assert_eq!(values.len() % outputs, 0, "target length");
                values.len() / outputs
            }
        };
        self.check_batch(params, x, batch);
        assert_eq!(grad.len(), self.params, "gradient vector length");
        let mut trace = Trace::with_capacity(self.layers.len());
        let y = self.run_forward(
            params,
            x,
            Layout::Examples,
            batch,
            Keep::ForParams,
            &mut trace,
        );
        let mut delta = vec![T::ZERO; y.len()];
        let mut loss = 0.0;
        let mut correct = 0;
        for (b, (z, d)) in y
            .chunks_exact(outputs)
            .zip(delta.chunks_exact_mut(outputs))
            .enumerate()
        {
            loss += match target {
                Target::Labels(labels) => {
                    let label = usize::from(labels[b]);
                    assert!(label < outputs, "label {label} not below {outputs}");
                    correct += usize::from(argmax(z).0 == label);
                    softmax_cross_entropy(
                        z,
                        |i| if i == label { T::ONE } else { T::ZERO },
                        scale,
                        d,
                    )
                }
                Target::Values(values, loss) => {
                    let t = &values[b * outputs..(b + 1) * outputs];
                    match loss {
                        Loss::CrossEntropy => softmax_cross_entropy(z, |i| t[i], scale, d),
                        Loss::Mse => mse(z, t, scale, d),
                        Loss::Bce => bce(z, t, scale, d),
                    }
                }
            };
        }
        let want = input_grad.is_some().then_some(Layout::Examples);
        let dx = self.backward(params, trace, delta, batch, Some(grad), want);
        if let (Some(out), Some(dx)) = (input_grad, dx) {
            out.copy_from_slice(&dx);
        }
        (loss, correct)
    }

    /// A vector–Jacobian product through the network, without parameter gradients: for each
    /// of `batch` examples in `x`, its outputs `z` (raw scores) are handed to `cotangent`
    /// with the example's index, which returns `∂L/∂z` for whatever function `L` of the
    /// scores the caller differentiates (a loss, a margin, one class's score). Returns the
    /// outputs (`batch × output_len`) and `∂L/∂x` (`batch × input_len`).
    ///
    /// # Panics
    /// On length mismatches, or when `cotangent` returns a slice of another length than
    /// [`Network::output_len`].
    pub fn vjp<T: Real>(
        &self,
        params: &[T],
        x: &[T],
        batch: usize,
        cotangent: impl FnMut(usize, &[T]) -> Vec<T>,
    ) -> (Vec<T>, Vec<T>) {
        self.vjp_laid_out(params, x, Layout::Examples, batch, cotangent)
    }

    /// [`Network::vjp`] for examples laid out in `layout` in `x`; the input gradient comes
    /// back in the same layout (the outputs, example after example). A caller that steps
    /// the same batch many times keeps it batch-innermost and so never transposes it.
    ///
    /// # Panics
    /// As [`Network::vjp`].
    pub fn vjp_laid_out<T: Real>(
        &self,
        params: &[T],
        x: &[T],
        layout: Layout,
        batch: usize,
        mut cotangent: impl FnMut(usize, &[T]) -> Vec<T>,
    ) -> (Vec<T>, Vec<T>) {
        self.check_batch(params, x, batch);
        let mut trace = Trace::with_capacity(self.layers.len());
        let outputs = self.run_forward(params, x, layout, batch, Keep::ForInput, &mut trace);
        let classes = self.output_len();
        let mut delta = Vec::with_capacity(outputs.len());
        for (i, z) in outputs.chunks_exact(classes).enumerate() {
            let d = cotangent(i, z);
            assert_eq!(d.len(), classes, "cotangent length");
            delta.extend_from_slice(&d);
        }
        let input_grad = self
            .backward(params, trace, delta, batch, None, Some(layout))
            .expect("an input gradient was asked for");
        (outputs, input_grad)
    }

    /// Back-propagates `delta` (the gradient of the outputs, example after example) through
    /// the layers whose inputs `trace` holds: adds the parameter gradient to `grad` when
    /// given, and returns the input gradient in layout `input` when asked for one.
    fn backward<T: Real>(
        &self,
        params: &[T],
        trace: Trace<T>,
        mut delta: Vec<T>,
        batch: usize,
        mut grad: Option<&mut [T]>,
        input: Option<Layout>,
    ) -> Option<Vec<T>> {
        let mut layout = Layout::Examples;
        for (i, (l, (x, read))) in self.layers.iter().zip(trace).enumerate().rev() {
            // The first layer's input gradient is only needed on request.
            let need_dx = i > 0 || input.is_some();
            let (n_in, n_out) = (l.input.len(), l.output.len());
            delta = layout.convert(l.op.writes(read), delta, n_out, batch);
            delta = match &l.op {
                Op::View => delta,
                Op::Act(a) => {
                    a.each(
                        #[inline(always)]
                        |a| {
                            for (d, &v) in delta.iter_mut().zip(&x) {
                                *d = a.derivative(v) * *d;
                            }
                        },
                    );
                    delta
                }
                Op::Upsample(f) => {
                    let (c, h, w) = (l.input.c, l.input.h, l.input.w);
                    let mut dx = vec![T::ZERO; batch * n_in];
                    for (db, dxb) in delta.chunks_exact(n_out).zip(dx.chunks_exact_mut(n_in)) {
                        for plane in 0..c {
                            for i in 0..h * f {
                                let src = &db[(plane * h * f + i) * w * f..][..w * f];
                                let row = &mut dxb[(plane * h + i / f) * w..][..w];
                                for (j, &d) in src.iter().enumerate() {
                                    row[j / f] += d;
                                }
                            }
                        }
                    }
                    dx
                }
                Op::Dense(dn) => {
                    let (rs, cs) = read.strides(n_in, batch);
                    if let Some(grad) = grad.as_deref_mut() {
                        // dW[out x in] += delta^T[out x B] * x[B x in].
                        T::gemm(
                            dn.outputs,
                            batch,
                            dn.inputs,
                            (&delta, 1, n_out),
                            (&x, rs, cs),
                            T::ONE,
                            (&mut grad[l.weight.clone()], dn.inputs, 1),
                        );
                        if let Some(b) = &l.bias {
                            let gb = &mut grad[b.clone()];
                            for row in delta.chunks_exact(n_out) {
                                for (g, &d) in gb.iter_mut().zip(row) {
                                    *g += d;
                                }
                            }
                        }
                    }
                    let mut dx = Vec::new();
                    if need_dx {
                        dx = vec![T::ZERO; batch * n_in];
                        // dx[B x in] = delta[B x out] * W[out x in], in the layout x was read.
                        T::gemm(
                            batch,
                            dn.outputs,
                            dn.inputs,
                            (&delta, n_out, 1),
                            (&params[l.weight.clone()], dn.inputs, 1),
                            T::ZERO,
                            (&mut dx, rs, cs),
                        );
                    }
                    dx
                }
                Op::Conv(c) => {
                    // delta is batch-innermost here, as the convolution wrote its output.
                    if let Some(grad) = grad.as_deref_mut() {
                        // The trace holds a convolution's input batch-innermost.
                        c.weight_grad_batched(
                            Tier::Widest,
                            &x,
                            &delta,
                            &mut grad[l.weight.clone()],
                            batch,
                        );
                        if let Some(b) = &l.bias {
                            // Each channel's bias gradient sums its positions and examples.
                            let per_channel = delta.chunks_exact(c.positions() * batch);
                            for (g, d) in grad[b.clone()].iter_mut().zip(per_channel) {
                                *g += d.iter().fold(T::ZERO, |s, &v| s + v);
                            }
                        }
                    }
                    let mut dxt = Vec::new();
                    if need_dx {
                        dxt = vec![T::ZERO; n_in * batch];
                        c.input_grad_batched(
                            Tier::Widest,
                            &params[l.weight.clone()],
                            &delta,
                            &mut dxt,
                            batch,
                        );
                    }
                    dxt
                }
            };
            layout = read;
        }
        input.map(|to| layout.convert(to, delta, self.input_len(), batch))
    }
}

/// Softmax cross-entropy of scores `z` against the distribution `t(i)`: writes `scale`
/// times the gradient to `d`, returns the loss.
fn softmax_cross_entropy<T: Real>(z: &[T], t: impl Fn(usize) -> T, scale: T, d: &mut [T]) -> f64 {
    let (_, max) = argmax(z);
    let mut sum = T::ZERO;
    for (dv, &zv) in d.iter_mut().zip(z) {
        *dv = (zv - max).exp();
        sum += *dv;
    }
    let log_sum = sum.to_f64().ln();
    let mut loss = 0.0;
    for (i, (dv, &zv)) in d.iter_mut().zip(z).enumerate() {
        let ti = t(i);
        if ti != T::ZERO {
            loss += ti.to_f64() * (log_sum - (zv - max).to_f64());
        }
        *dv = *dv / sum * scale - ti * scale;
    }
    loss
}

/// Mean squared error of `y` against `t`: writes `scale` times the gradient to `d`,
/// returns the loss.
fn mse<T: Real>(y: &[T], t: &[T], scale: T, d: &mut [T]) -> f64 {
    let n = T::from_f64(y.len() as f64);
    let mut loss = 0.0;
    for ((dv, &yv), &tv) in d.iter_mut().zip(y).zip(t) {
        let e = yv - tv;
        loss += (e * e).to_f64();
        *dv = (e + e) / n * scale;
    }
    loss / y.len() as f64
}

/// Binary cross-entropy of `y` in (0, 1) against `t`: writes `scale` times the gradient to
/// `d`, returns the loss. Each log is clamped at -100 as PyTorch's `BCELoss` does, and the
/// gradient's denominator `y (1 - y)` at 1e-12.
fn bce<T: Real>(y: &[T], t: &[T], scale: T, d: &mut [T]) -> f64 {
    let n = y.len() as f64;
    let mut loss = 0.0;
    for ((dv, &yv), &tv) in d.iter_mut().zip(y).zip(t) {
        let (yf, tf) = (yv.to_f64(), tv.to_f64());
        loss -= tf * yf.ln().max(-100.0) + (1.0 - tf) * (1.0 - yf).ln().max(-100.0);
        let g = (yf - tf) / (yf * (1.0 - yf)).max(1e-12) / n;
        *dv = T::from_f64(g) * scale;
    }
    loss / n
}

/// Index and value of the largest element (the first one on ties).
///
/// # Panics
/// If `z` is empty.
pub fn argmax<T: Real>(z: &[T]) -> (usize, T) {
    let mut best = (0, z[0]);
    for (i, &v) in z.iter().enumerate().skip(1) {
        if v > best.1 {
            best = (i, v);
        }
    }
    best
}

/// The input coordinate read by output coordinate `o` at kernel offset `j`, or `None` in
/// the padding.
fn source(o: usize, j: usize, stride: usize, pad: usize, side: usize) -> Option<usize> {
    (o * stride + j).checked_sub(pad).filter(|&s| s < side)
}

/// The `cols x rows` transpose of the row-major `rows x cols` matrix `a`.
fn transposed<T: Real>(a: &[T], rows: usize, cols: usize) -> Vec<T> {
    assert_eq!(
        a.len(),
        rows * cols,
        "transpose of a {rows} x {cols} matrix"
    );
    let mut out = vec![T::ZERO; a.len()];
    // Tiles of 16 x 16 keep both sides in the cache.
    const TILE: usize = 16;
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..rows.min(r0 + TILE) {
                for c in c0..cols.min(c0 + TILE) {
                    out[c * rows + r] = a[r * cols + c];
                }
            }
        }
    }
    out
}

/// Where the convolution's loops run: the portable build, or the widest tier this CPU has
/// (on x86-64 CPUs with AVX2, the same code compiled for AVX2: eight `f32` lanes where
/// SSE2 has four). No tier fuses a multiply with an add, so every tier computes the same
/// operations in the same order and gives bit-identical results: `tests/train_gradients.rs`
/// checks the tier the machine selects against a direct convolution and finite
/// differences, and this file's tests check it against the portable build bit for bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tier {
    /// The build's target features only.
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "the reference the tests compare with")
    )]
    Portable,
    /// The widest tier the CPU has.
    Widest,
}

impl Tier {
    /// Runs `f` in this tier; `f` and what it calls must be `#[inline(always)]` for a wider
    /// tier to compile them with its instructions.
    #[inline(always)]
    fn run<R>(self, f: impl FnOnce() -> R) -> R {
        #[cfg(target_arch = "x86_64")]
        if self == Tier::Widest && std::arch::is_x86_feature_detected!("avx2") {
            /// `f` compiled with AVX2.
            #[target_feature(enable = "avx2")]
            fn avx2<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { avx2(f) };
        }
        f()
    }
}

/// `Σ x_i·y_i`, in eight interleaved partial sums (which the compiler keeps in one vector).
#[inline(always)]
fn dot<T: Real>(x: &[T], y: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let tail = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .fold(T::ZERO, |s, (&a, &b)| s + a * b);
    for (a, b) in xc.zip(yc) {
        for l in 0..8 {
            acc[l] += a[l] * b[l];
        }
    }
    acc.iter().fold(tail, |s, &v| s + v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The widest tier this machine has gives the same bits as the portable build, for the
    /// paper's convolution and a wider one with several input channels, on a batch that is
    /// not a multiple of the register block's width; and the register-blocked kernels give
    /// the same bits as the obvious loop over [`ConvPlan::walk`], which adds the products
    /// to each value in the same order when a block holds every output channel (and
    /// nearly the same when it does not).
    #[test]
    fn every_convolution_tier_matches_the_portable_one_bit_for_bit() {
        let LayerSpec::Conv2d(paper) = crate::model::Architecture::Mnist.layers()[0] else {
            unreachable!("the paper's network opens with its convolution")
        };
        let specs = [
            (paper, Shape::chw(1, 28, 28)),
            (
                Conv2d {
                    in_channels: 3,
                    out_channels: 4,
                    kernel: 3,
                    stride: 1,
                    padding: Padding::Valid,
                    bias: false,
                },
                Shape::chw(3, 9, 7),
            ),
            (
                Conv2d {
                    in_channels: 2,
                    out_channels: GROUP + 2,
                    kernel: 3,
                    stride: 2,
                    padding: Padding::Same,
                    bias: true,
                },
                Shape::chw(2, 8, 9),
            ),
        ];
        // A fixed pseudo-random sequence in [-1, 1).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut draw = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
                })
                .collect()
        };
        for (spec, input) in specs {
            let plan = ConvPlan::new(spec, input).expect("the kernel fits");
            let batch = 2 * LANES + 5;
            let (n_in, n_out) = (input.len(), spec.out_channels * plan.positions());
            let w = draw(spec.out_channels * plan.patch());
            let bias = draw(spec.out_channels);
            let xt = draw(n_in * batch);
            let dyt = draw(n_out * batch);

            let (mut fast, mut slow) = (vec![0.0; n_out * batch], vec![0.0; n_out * batch]);
            plan.forward_batched(Tier::Widest, &w, Some(&bias), &xt, &mut fast, batch);
            plan.forward_batched(Tier::Portable, &w, Some(&bias), &xt, &mut slow, batch);
            assert_eq!(fast, slow, "forward, {spec:?}");
            let mut obvious = vec![0.0; n_out * batch];
            for (o, y) in obvious
                .chunks_exact_mut(plan.positions() * batch)
                .enumerate()
            {
                y.fill(bias[o]);
            }
            plan.walk(Tier::Portable, batch, |w_i, x, y| {
                axpy(w[w_i], &xt[x], &mut obvious[y]);
            });
            assert_eq!(fast, obvious, "forward against the obvious loop, {spec:?}");

            let (mut fast, mut slow) = (vec![0.0; n_in * batch], vec![0.0; n_in * batch]);
            plan.input_grad_batched(Tier::Widest, &w, &dyt, &mut fast, batch);
            plan.input_grad_batched(Tier::Portable, &w, &dyt, &mut slow, batch);
            assert_eq!(fast, slow, "input gradient, {spec:?}");
            let mut obvious = vec![0.0; n_in * batch];
            plan.walk(Tier::Portable, batch, |w_i, dx, dy| {
                axpy(w[w_i], &dyt[dy], &mut obvious[dx]);
            });
            if spec.out_channels <= GROUP {
                assert_eq!(
                    fast, obvious,
                    "input gradient against the obvious loop, {spec:?}"
                );
            } else {
                // Several blocks per position add their sums group by group.
                for (f, o) in fast.iter().zip(&obvious) {
                    assert!(
                        (f - o).abs() <= 1e-5 * o.abs().max(1.0),
                        "{f} vs {o}, {spec:?}"
                    );
                }
            }

            let (mut fast, mut slow) = (w.clone(), w.clone());
            plan.weight_grad_batched(Tier::Widest, &xt, &dyt, &mut fast, batch);
            plan.weight_grad_batched(Tier::Portable, &xt, &dyt, &mut slow, batch);
            assert_eq!(fast, slow, "weight gradient, {spec:?}");
        }
    }

    /// `y += a·x` over two slices of the same length.
    fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y += a * x;
        }
    }

    /// [`transposed`] against its definition, on shapes that are not multiples of its tile.
    #[test]
    fn transposed_swaps_rows_and_columns() {
        for (rows, cols) in [(1, 1), (3, 17), (17, 3), (33, 40)] {
            let a: Vec<f64> = (0..rows * cols).map(|i| i as f64).collect();
            let t = transposed(&a, rows, cols);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(
                        t[c * rows + r],
                        a[r * cols + c],
                        "{rows} x {cols} at ({r}, {c})"
                    );
                }
            }
        }
    }
}
