//! heist_core::nn model construction: shape validation (every error
//! variant), and the lowered convolution, pooling and dense layers against
//! slow direct implementations.

use heist_core::nn::{
    Conv2d, Dense, FashionMnistWeights, Layer, MnistWeights, Model, ModelError, Padding, Param,
    Shape, SumPool2d, MAX_SIZE, MNIST_INPUT,
};
use heist_tests::seeded_rng;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rand_core::RngCore;

/// Uniform in [lo, hi).
fn uniform(rng: &mut impl RngCore, lo: f64, hi: f64) -> f64 {
    let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    lo + (hi - lo) * unit
}

fn uniform_vec(rng: &mut impl RngCore, n: usize, a: f64) -> Vec<f64> {
    (0..n).map(|_| uniform(rng, -a, a)).collect()
}

fn image(channels: usize, height: usize, width: usize) -> Shape {
    Shape::Image {
        channels,
        height,
        width,
    }
}

fn conv(in_channels: usize, out_channels: usize, k: usize, s: usize, padding: Padding) -> Conv2d {
    Conv2d {
        in_channels,
        out_channels,
        kernel: [k, k],
        stride: [s, s],
        padding,
        weight: vec![0.5; out_channels * in_channels * k * k],
        bias: Some(vec![0.25; out_channels]),
    }
}

fn dense(in_features: usize, out_features: usize) -> Dense {
    Dense {
        in_features,
        out_features,
        weight: vec![0.5; in_features * out_features],
        bias: None,
    }
}

// ---------------------------------------------------------------- validation

#[test]
fn every_model_error_variant_is_reached_and_names_the_layer() {
    let img = image(1, 8, 8);
    let cases: Vec<(Shape, Vec<Layer>, ModelError)> = vec![
        (img, vec![], ModelError::NoLayers),
        (
            image(1, 0, 8),
            vec![Layer::Square],
            ModelError::InvalidInput {
                shape: image(1, 0, 8),
            },
        ),
        (
            Shape::Flat(MAX_SIZE + 1),
            vec![Layer::Square],
            ModelError::InvalidInput {
                shape: Shape::Flat(MAX_SIZE + 1),
            },
        ),
        (
            Shape::Flat(64),
            vec![
                Layer::Square,
                Layer::Conv2d(conv(1, 2, 3, 1, Padding::Same)),
            ],
            ModelError::ExpectedImage {
                layer: 1,
                found: Shape::Flat(64),
            },
        ),
        (
            img,
            vec![
                Layer::Square,
                Layer::SumPool2d(SumPool2d {
                    kernel: [2, 2],
                    stride: [2, 2],
                    scale: 1.0,
                }),
                Layer::Flatten,
                Layer::SumPool2d(SumPool2d {
                    kernel: [2, 2],
                    stride: [2, 2],
                    scale: 1.0,
                }),
            ],
            ModelError::ExpectedImage {
                layer: 3,
                found: Shape::Flat(16),
            },
        ),
        (
            img,
            vec![
                Layer::Conv2d(conv(1, 2, 3, 1, Padding::Same)),
                Layer::Dense(dense(128, 4)),
            ],
            ModelError::ExpectedFlat {
                layer: 1,
                found: image(2, 8, 8),
            },
        ),
        (
            img,
            vec![
                Layer::Conv2d(conv(1, 2, 3, 1, Padding::Same)),
                Layer::Conv2d(conv(3, 2, 3, 1, Padding::Same)),
            ],
            ModelError::ChannelMismatch {
                layer: 1,
                expected: 3,
                found: image(2, 8, 8),
            },
        ),
        (
            img,
            vec![Layer::Flatten, Layer::Dense(dense(63, 4))],
            ModelError::FeatureMismatch {
                layer: 1,
                expected: 63,
                found: Shape::Flat(64),
            },
        ),
        (
            img,
            vec![Layer::Conv2d(conv(1, 2, 3, 0, Padding::Same))],
            ModelError::ZeroHyperparameter {
                layer: 0,
                name: "stride",
            },
        ),
        (
            img,
            vec![Layer::Conv2d(conv(1, 2, 0, 1, Padding::Valid))],
            ModelError::ZeroHyperparameter {
                layer: 0,
                name: "kernel",
            },
        ),
        (
            img,
            vec![Layer::Conv2d(conv(1, 0, 3, 1, Padding::Valid))],
            ModelError::ZeroHyperparameter {
                layer: 0,
                name: "out_channels",
            },
        ),
        (
            Shape::Flat(4),
            vec![Layer::Dense(dense(4, 0))],
            ModelError::ZeroHyperparameter {
                layer: 0,
                name: "out_features",
            },
        ),
        (
            img,
            vec![Layer::Conv2d(conv(1, 1, 9, 1, Padding::Valid))],
            ModelError::KernelTooLarge {
                layer: 0,
                kernel: [9, 9],
                found: img,
            },
        ),
        (
            img,
            vec![
                Layer::Square,
                Layer::SumPool2d(SumPool2d {
                    kernel: [3, 9],
                    stride: [1, 1],
                    scale: 1.0,
                }),
            ],
            ModelError::KernelTooLarge {
                layer: 1,
                kernel: [3, 9],
                found: img,
            },
        ),
        (
            img,
            vec![Layer::Conv2d(Conv2d {
                weight: vec![0.5; 17],
                ..conv(1, 2, 3, 1, Padding::Same)
            })],
            ModelError::ParameterLength {
                layer: 0,
                param: Param::Weight,
                expected: 18,
                found: 17,
            },
        ),
        (
            Shape::Flat(3),
            vec![Layer::Dense(Dense {
                bias: Some(vec![0.0; 3]),
                ..dense(3, 2)
            })],
            ModelError::ParameterLength {
                layer: 0,
                param: Param::Bias,
                expected: 2,
                found: 3,
            },
        ),
        (
            Shape::Flat(3),
            vec![
                Layer::Square,
                Layer::Dense(Dense {
                    weight: vec![0.0, 1.0, f64::NAN, 0.0, 0.0, 0.0],
                    ..dense(3, 2)
                }),
            ],
            ModelError::NonFiniteParameter {
                layer: 1,
                param: Param::Weight,
                index: 2,
            },
        ),
        (
            img,
            vec![Layer::SumPool2d(SumPool2d {
                kernel: [2, 2],
                stride: [2, 2],
                scale: f64::INFINITY,
            })],
            ModelError::NonFiniteParameter {
                layer: 0,
                param: Param::Scale,
                index: 0,
            },
        ),
        (
            Shape::Flat(4096),
            vec![Layer::Dense(Dense {
                weight: vec![],
                ..dense(4096, 4097)
            })],
            ModelError::TooLarge {
                layer: 0,
                size: 4096 * 4097,
            },
        ),
    ];
    for (input, layers, expected) in cases {
        let got = Model::new(input, layers);
        assert_eq!(got.as_ref().err(), Some(&expected), "input {input}");
        let text = expected.to_string();
        if let Some(layer) = layer_of(&expected) {
            assert!(text.contains(&format!("layer {layer}")), "{text}");
        }
    }
}

fn layer_of(error: &ModelError) -> Option<usize> {
    match *error {
        ModelError::ExpectedImage { layer, .. }
        | ModelError::ExpectedFlat { layer, .. }
        | ModelError::ChannelMismatch { layer, .. }
        | ModelError::FeatureMismatch { layer, .. }
        | ModelError::ZeroHyperparameter { layer, .. }
        | ModelError::KernelTooLarge { layer, .. }
        | ModelError::ParameterLength { layer, .. }
        | ModelError::NonFiniteParameter { layer, .. }
        | ModelError::TooLarge { layer, .. } => Some(layer),
        _ => None,
    }
}

#[test]
fn too_large_convolution_output_is_rejected() {
    // 2^13 filters of 1x1 on a 64x64 image: 2^25 outputs, above MAX_SIZE.
    let layer = Layer::Conv2d(Conv2d {
        weight: vec![0.0; 1 << 13],
        bias: None,
        ..conv(1, 1 << 13, 1, 1, Padding::Same)
    });
    let got = Model::new(image(1, 64, 64), vec![layer]);
    assert_eq!(
        got.err(),
        Some(ModelError::TooLarge {
            layer: 0,
            size: 1 << 25
        })
    );
}

#[test]
fn shape_and_error_display_texts_carry_the_values() {
    assert_eq!(image(5, 14, 14).to_string(), "(5, 14, 14)");
    assert_eq!(Shape::Flat(980).to_string(), "(980)");
    let e = ModelError::FeatureMismatch {
        layer: 3,
        expected: 981,
        found: Shape::Flat(980),
    };
    assert_eq!(
        e.to_string(),
        "layer 3 takes 981 input features, got shape (980)"
    );
}

// ------------------------------------------------------ paper architectures

fn mnist_weights(rng: &mut impl RngCore) -> MnistWeights {
    MnistWeights {
        conv_weight: uniform_vec(rng, 125, 0.2),
        conv_bias: uniform_vec(rng, 5, 0.1),
        dense1_weight: uniform_vec(rng, 98_000, 0.08),
        dense1_bias: uniform_vec(rng, 100, 0.1),
        dense2_weight: uniform_vec(rng, 1_000, 0.2),
        dense2_bias: uniform_vec(rng, 10, 0.1),
    }
}

#[test]
fn paper_architectures_have_the_tables_shapes_and_parameter_counts() {
    let mut rng = seeded_rng("nn_paper_shapes", 1);
    let mnist = Model::mnist(mnist_weights(&mut rng)).unwrap();
    assert_eq!(mnist.input_shape(), MNIST_INPUT);
    assert_eq!(
        mnist.shapes(),
        &[
            image(5, 14, 14),
            image(5, 14, 14),
            Shape::Flat(980),
            Shape::Flat(100),
            Shape::Flat(100),
            Shape::Flat(10)
        ]
    );
    // Table 1: 130 + 98,100 + 1,010.
    assert_eq!(mnist.parameter_count(), 130 + 98_100 + 1_010);
    assert_eq!(mnist.network().square_count(), 2);
    assert_eq!(mnist.op_of_layer(2), None);
    assert_eq!(mnist.op_of_layer(3), Some(2));

    let fashion = Model::fashion_mnist(FashionMnistWeights {
        conv_weight: uniform_vec(&mut rng, 125, 0.2),
        conv_bias: uniform_vec(&mut rng, 5, 0.1),
        dense1_weight: uniform_vec(&mut rng, 125_440, 0.08),
        dense1_bias: uniform_vec(&mut rng, 128, 0.1),
        dense2_weight: uniform_vec(&mut rng, 1_280, 0.2),
    })
    .unwrap();
    assert_eq!(fashion.output_shape(), Shape::Flat(10));
    // Table 2: 130 + 125,568 + 1,280 (no output bias).
    assert_eq!(fashion.parameter_count(), 130 + 125_568 + 1_280);
    assert_eq!(fashion.network().square_count(), 1);

    let mut short = mnist_weights(&mut rng);
    short.dense2_bias.pop();
    assert_eq!(
        Model::mnist(short).err(),
        Some(ModelError::ParameterLength {
            layer: 5,
            param: Param::Bias,
            expected: 10,
            found: 9
        })
    );
}

// ------------------------------------------------------- direct oracles

/// Direct convolution with explicit padding before each axis; returns the
/// output and, per output, the sum of |w x| over the taps (for the rounding
/// tolerance) and the number of taps.
fn direct_conv(
    x: &[f64],
    (c, h, w): (usize, usize, usize),
    conv: &Conv2d,
    (oh, ow): (usize, usize),
    (pad_top, pad_left): (usize, usize),
) -> Vec<(f64, f64, usize)> {
    let [kh, kw] = conv.kernel;
    let mut out = Vec::new();
    for o in 0..conv.out_channels {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = conv.bias.as_ref().map_or(0.0, |b| b[o]);
                let mut mag = acc.abs();
                let mut taps = 0;
                for i in 0..c {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (oy * conv.stride[0] + ky) as isize - pad_top as isize;
                            let ix = (ox * conv.stride[1] + kx) as isize - pad_left as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            let wv = conv.weight[((o * c + i) * kh + ky) * kw + kx];
                            let xv = x[(i * h + iy as usize) * w + ix as usize];
                            acc += wv * xv;
                            mag += (wv * xv).abs();
                            taps += 1;
                        }
                    }
                }
                out.push((acc, mag, taps));
            }
        }
    }
    out
}

/// Two f64 evaluations of the same dot product of `n` terms in different
/// orders are each within `gamma_{n+1} sum |terms|` of the exact value.
fn close(a: f64, b: f64, mag: f64, n: usize) -> bool {
    let u = f64::EPSILON / 2.0;
    let g = (n + 1) as f64 * u / (1.0 - (n + 1) as f64 * u);
    (a - b).abs() <= 2.0 * g * mag
}

/// Keras "same": out = ceil(in / s), pad before = max((out-1) s + k - in, 0) / 2.
fn same(input: usize, k: usize, s: usize) -> (usize, usize) {
    let out = input.div_ceil(s);
    let total = ((out - 1) * s + k).saturating_sub(input);
    (out, total / 2)
}

fn check_conv(
    rng: &mut impl RngCore,
    (c, h, w): (usize, usize, usize),
    conv: Conv2d,
    out: (usize, usize),
    pad: (usize, usize),
) {
    let x = uniform_vec(rng, c * h * w, 1.0);
    let model = Model::new(image(c, h, w), vec![Layer::Conv2d(conv.clone())]).unwrap();
    assert_eq!(model.output_shape(), image(conv.out_channels, out.0, out.1));
    let got = model.infer(&x).unwrap();
    let want = direct_conv(&x, (c, h, w), &conv, out, pad);
    assert_eq!(got.len(), want.len());
    for (j, (g, (v, mag, taps))) in got.iter().zip(&want).enumerate() {
        assert!(close(*g, *v, *mag, *taps), "output {j}: {g} vs {v}");
    }
}

#[test]
fn paper_convolution_same_padding_28x28_5x5_stride2() {
    assert_eq!(Padding::Same.output_and_offset(28, 5, 2), Some((14, 1)));
    let mut rng = seeded_rng("nn_conv_paper", 2);
    let conv = Conv2d {
        weight: uniform_vec(&mut rng, 125, 0.2),
        bias: Some(uniform_vec(&mut rng, 5, 0.1)),
        ..conv(1, 5, 5, 2, Padding::Same)
    };
    // One row/column of padding before, two after: output (0, 0) sees
    // input rows/columns 0..=3 only, output (13, 13) sees 25..=27 only.
    let model = Model::new(MNIST_INPUT, vec![Layer::Conv2d(conv.clone())]).unwrap();
    let heist_core::nn::Op::Linear(map) = &model.network().ops()[0] else {
        panic!("a convolution lowers to a linear map");
    };
    let first: Vec<usize> = map.rows()[0].terms().iter().map(|t| t.0).collect();
    let want_first: Vec<usize> = (0..4)
        .flat_map(|y| (0..4).map(move |x| y * 28 + x))
        .collect();
    assert_eq!(first, want_first);
    let last: Vec<usize> = map.rows()[13 * 14 + 13]
        .terms()
        .iter()
        .map(|t| t.0)
        .collect();
    let want_last: Vec<usize> = (25..28)
        .flat_map(|y| (25..28).map(move |x| y * 28 + x))
        .collect();
    assert_eq!(last, want_last);
    // Weight of tap (ky, kx) = (1, 1) for output (0, 0) reads input (0, 0).
    assert_eq!(map.rows()[0].terms()[0], (0, conv.weight[6]));
    check_conv(&mut rng, (1, 28, 28), conv, (14, 14), (1, 1));
}

#[test]
fn valid_padding_convolution_known_case() {
    let mut rng = seeded_rng("nn_conv_valid", 3);
    let conv = Conv2d {
        weight: uniform_vec(&mut rng, 3 * 2 * 3 * 2, 0.5),
        bias: None,
        kernel: [3, 2],
        stride: [2, 1],
        ..conv(2, 3, 3, 2, Padding::Valid)
    };
    // rows: (9 - 3) / 2 + 1 = 4; columns: (7 - 2) / 1 + 1 = 6.
    check_conv(&mut rng, (2, 9, 7), conv, (4, 6), (0, 0));
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/nn_model.txt"))),
        ..heist_tests::seeded_config(64)
    })]

    #[test]
    fn lowered_convolution_matches_direct_loops(
        seed in any::<u64>(),
        c in 1usize..4, o in 1usize..4, h in 1usize..11, w in 1usize..11,
        kh in 1usize..6, kw in 1usize..6, sh in 1usize..4, sw in 1usize..4,
        same_padding in any::<bool>(), with_bias in any::<bool>(),
    ) {
        let padding = if same_padding { Padding::Same } else { Padding::Valid };
        prop_assume!(same_padding || (kh <= h && kw <= w));
        let mut rng = seeded_rng("nn_conv_prop", seed);
        let conv = Conv2d {
            in_channels: c,
            out_channels: o,
            kernel: [kh, kw],
            stride: [sh, sw],
            padding,
            weight: uniform_vec(&mut rng, o * c * kh * kw, 1.0),
            bias: with_bias.then(|| uniform_vec(&mut rng, o, 1.0)),
        };
        let (out, pad) = if same_padding {
            let (oh, pt) = same(h, kh, sh);
            let (ow, pl) = same(w, kw, sw);
            ((oh, ow), (pt, pl))
        } else {
            (((h - kh) / sh + 1, (w - kw) / sw + 1), (0, 0))
        };
        check_conv(&mut rng, (c, h, w), conv, out, pad);
    }

    #[test]
    fn dense_matches_naive_dot_product(
        seed in any::<u64>(), n in 1usize..40, m in 1usize..12, with_bias in any::<bool>(),
    ) {
        let mut rng = seeded_rng("nn_dense_prop", seed);
        let layer = Dense {
            in_features: n,
            out_features: m,
            weight: uniform_vec(&mut rng, n * m, 1.0),
            bias: with_bias.then(|| uniform_vec(&mut rng, m, 1.0)),
        };
        let x = uniform_vec(&mut rng, n, 2.0);
        let model = Model::new(Shape::Flat(n), vec![Layer::Dense(layer.clone())]).unwrap();
        let got = model.infer(&x).unwrap();
        prop_assert_eq!(got.len(), m);
        for j in 0..m {
            let b = layer.bias.as_ref().map_or(0.0, |b| b[j]);
            let terms: Vec<f64> = (0..n).map(|i| layer.weight[j * n + i] * x[i]).collect();
            let want: f64 = b + terms.iter().sum::<f64>();
            let mag: f64 = b.abs() + terms.iter().map(|t| t.abs()).sum::<f64>();
            prop_assert!(close(got[j], want, mag, n), "row {}: {} vs {}", j, got[j], want);
        }
    }

    #[test]
    fn sum_pooling_matches_direct_window_sums(
        seed in any::<u64>(), c in 1usize..3, h in 2usize..9, w in 2usize..9,
        k in 1usize..3, s in 1usize..3,
    ) {
        let mut rng = seeded_rng("nn_pool_prop", seed);
        let scale = uniform(&mut rng, -2.0, 2.0);
        let x = uniform_vec(&mut rng, c * h * w, 1.0);
        let pool = SumPool2d { kernel: [k, k], stride: [s, s], scale };
        let model = Model::new(image(c, h, w), vec![Layer::SumPool2d(pool)]).unwrap();
        let (oh, ow) = ((h - k) / s + 1, (w - k) / s + 1);
        prop_assert_eq!(model.output_shape(), image(c, oh, ow));
        let got = model.infer(&x).unwrap();
        for ch in 0..c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut want = 0.0;
                    let mut mag = 0.0;
                    for ky in 0..k {
                        for kx in 0..k {
                            let t = scale * x[(ch * h + oy * s + ky) * w + ox * s + kx];
                            want += t;
                            mag += t.abs();
                        }
                    }
                    let g = got[(ch * oh + oy) * ow + ox];
                    prop_assert!(close(g, want, mag, k * k), "{} vs {}", g, want);
                }
            }
        }
    }
}

#[test]
fn flatten_uses_channel_height_width_order() {
    // A dense layer that reads exactly one flattened index picks out that value.
    let (c, h, w) = (2, 3, 4);
    let x: Vec<f64> = (0..c * h * w).map(|i| i as f64).collect();
    let (channel, row, column) = (1, 2, 3);
    let target = (channel * h + row) * w + column;
    let mut weight = vec![0.0; c * h * w];
    weight[target] = 1.0;
    let model = Model::new(
        image(c, h, w),
        vec![
            Layer::Flatten,
            Layer::Dense(Dense {
                in_features: c * h * w,
                out_features: 1,
                weight,
                bias: None,
            }),
        ],
    )
    .unwrap();
    assert_eq!(model.infer(&x).unwrap(), vec![x[target]]);
}
