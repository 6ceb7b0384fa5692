//! Forward passes against a direct (naive) convolution, and backward passes against
//! central finite differences, in f64.

use heist::model::network::{Conv2d, Dense, LayerSpec, Loss, Network, Padding, Shape, Target};
use heist::model::Architecture;
use heist_tests::seeded_rng;
use rand_core::RngCore;

fn uniform(rng: &mut impl RngCore, n: usize, scale: f64) -> Vec<f64> {
    (0..n)
        .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 * scale - scale)
        .collect()
}

/// Direct convolution with explicit padding before (`top`, `left`), for one example in CHW.
fn naive_conv(
    x: &[f64],
    input: Shape,
    w: &[f64],
    b: Option<&[f64]>,
    c: &Conv2d,
    (out_h, out_w, top, left): (usize, usize, usize, usize),
) -> Vec<f64> {
    let k = c.kernel;
    let mut y = vec![0.0; c.out_channels * out_h * out_w];
    for o in 0..c.out_channels {
        for oy in 0..out_h {
            for ox in 0..out_w {
                let mut s = b.map_or(0.0, |b| b[o]);
                for ci in 0..c.in_channels {
                    for i in 0..k {
                        for j in 0..k {
                            let iy = (oy * c.stride + i) as isize - top as isize;
                            let ix = (ox * c.stride + j) as isize - left as isize;
                            if iy >= 0
                                && ix >= 0
                                && (iy as usize) < input.h
                                && (ix as usize) < input.w
                            {
                                s += w[((o * c.in_channels + ci) * k + i) * k + j]
                                    * x[(ci * input.h + iy as usize) * input.w + ix as usize];
                            }
                        }
                    }
                }
                y[(o * out_h + oy) * out_w + ox] = s;
            }
        }
    }
    y
}

#[test]
fn same_padding_matches_tensorflow_geometry_and_a_direct_convolution() {
    let mut rng = seeded_rng("conv-forward", 11);
    // (input side, kernel, stride, padding, expected output side, padding before)
    let cases = [
        (28, 5, 2, Padding::Same, 14, 1),
        (28, 5, 1, Padding::Same, 28, 2),
        (7, 3, 2, Padding::Same, 4, 1),
        (8, 4, 3, Padding::Same, 3, 1),
        (28, 5, 2, Padding::Valid, 12, 0),
        (9, 3, 3, Padding::Valid, 3, 0),
    ];
    for (side, kernel, stride, padding, out, top) in cases {
        let conv = Conv2d {
            in_channels: 2,
            out_channels: 3,
            kernel,
            stride,
            padding,
            bias: true,
        };
        let input = Shape::chw(2, side, side);
        let net = Network::new(input, &[LayerSpec::Conv2d(conv)]).expect("valid");
        assert_eq!(
            net.output_len(),
            3 * out * out,
            "{side}/{kernel}/{stride}/{padding:?}"
        );
        let params = uniform(&mut rng, net.param_count(), 1.0);
        let batch = 2;
        let x = uniform(&mut rng, batch * input.len(), 1.0);
        let y = net.forward(&params, &x, batch);
        let wlen = 3 * 2 * kernel * kernel;
        for b in 0..batch {
            let want = naive_conv(
                &x[b * input.len()..(b + 1) * input.len()],
                input,
                &params[..wlen],
                Some(&params[wlen..]),
                &conv,
                (out, out, top, top),
            );
            let got = &y[b * want.len()..(b + 1) * want.len()];
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() < 1e-12,
                    "{side}/{kernel}/{stride}: {g} vs {w}"
                );
            }
        }
    }
}

/// Checks every analytic parameter gradient and input gradient of `net` against central
/// differences of the summed loss: cross-entropy against random labels, or `loss` against
/// random targets in (0, 1).
fn check_gradients(net: &Network, label: &str, seed: u64, loss: Loss) {
    let mut rng = seeded_rng(label, seed);
    let batch = 3;
    let params = uniform(&mut rng, net.param_count(), 0.5);
    let x = uniform(&mut rng, batch * net.input_len(), 1.0);
    let labels: Vec<u8> = (0..batch)
        .map(|_| (rng.next_u32() % net.output_len() as u32) as u8)
        .collect();
    let values: Vec<f64> = uniform(&mut rng, batch * net.output_len(), 0.45)
        .iter()
        .map(|v| v + 0.5)
        .collect();
    let target = match loss {
        Loss::CrossEntropy => Target::Labels(&labels),
        _ => Target::Values(&values, loss),
    };
    let mut grad = vec![0.0; params.len()];
    let mut dx = vec![0.0; x.len()];
    net.target_grad(&params, &x, target, 1.0, &mut grad, Some(&mut dx));
    let loss = |p: &[f64], x: &[f64]| {
        let mut g = vec![0.0; p.len()];
        net.target_grad(p, x, target, 1.0, &mut g, None).0
    };
    let h = 1e-6;
    let compare = |what: &str, i: usize, analytic: f64, numeric: f64| {
        let tol = 1e-6 * (1.0 + numeric.abs());
        assert!(
            (analytic - numeric).abs() <= tol,
            "{label}: d loss / d {what}[{i}]: analytic {analytic} vs numeric {numeric}"
        );
    };
    for i in 0..params.len() {
        let (mut up, mut down) = (params.clone(), params.clone());
        up[i] += h;
        down[i] -= h;
        compare(
            "param",
            i,
            grad[i],
            (loss(&up, &x) - loss(&down, &x)) / (2.0 * h),
        );
    }
    for i in 0..x.len() {
        let (mut up, mut down) = (x.clone(), x.clone());
        up[i] += h;
        down[i] -= h;
        compare(
            "input",
            i,
            dx[i],
            (loss(&params, &up) - loss(&params, &down)) / (2.0 * h),
        );
    }
    // The gradient is not trivially zero.
    assert!(
        grad.iter().any(|g| g.abs() > 1e-3),
        "{label}: gradient vanished"
    );
}

#[test]
fn every_layer_kind_passes_a_finite_difference_check() {
    let conv = |in_channels, padding, bias, stride| {
        LayerSpec::Conv2d(Conv2d {
            in_channels,
            out_channels: 2,
            kernel: 3,
            stride,
            padding,
            bias,
        })
    };
    let dense = |inputs, outputs, bias| {
        LayerSpec::Dense(Dense {
            inputs,
            outputs,
            bias,
        })
    };
    let cases: Vec<(&str, Shape, Vec<LayerSpec>, Loss)> = vec![
        (
            "same-stride2-square",
            Shape::chw(1, 7, 7),
            vec![
                conv(1, Padding::Same, true, 2),
                LayerSpec::Square,
                LayerSpec::Flatten,
                dense(32, 5, true),
                LayerSpec::Square,
                dense(5, 4, true),
            ],
            Loss::CrossEntropy,
        ),
        (
            "valid-two-channels-no-bias",
            Shape::chw(2, 6, 5),
            vec![
                conv(2, Padding::Valid, false, 1),
                LayerSpec::Flatten,
                dense(24, 3, false),
            ],
            Loss::CrossEntropy,
        ),
        (
            "dense-relu",
            Shape::chw(6, 1, 1),
            vec![dense(6, 5, true), LayerSpec::Relu, dense(5, 2, true)],
            Loss::CrossEntropy,
        ),
        (
            "two-convs",
            Shape::chw(1, 8, 8),
            vec![
                conv(1, Padding::Same, true, 2),
                LayerSpec::Square,
                conv(2, Padding::Valid, true, 1),
                LayerSpec::Flatten,
                dense(8, 3, true),
            ],
            Loss::CrossEntropy,
        ),
        (
            "relu-cross-entropy",
            Shape::chw(6, 1, 1),
            vec![dense(6, 7, true), LayerSpec::Relu, dense(7, 4, true)],
            Loss::CrossEntropy,
        ),
        (
            "leaky-relu-tanh-mse",
            Shape::chw(5, 1, 1),
            vec![
                dense(5, 6, true),
                LayerSpec::LeakyRelu,
                dense(6, 6, false),
                LayerSpec::Tanh,
                dense(6, 4, true),
            ],
            Loss::Mse,
        ),
        (
            "upsample-conv-sigmoid-bce",
            Shape::chw(2, 2, 3),
            vec![
                LayerSpec::Upsample { factor: 2 },
                conv(2, Padding::Same, true, 1),
                LayerSpec::Tanh,
                LayerSpec::Flatten,
                dense(48, 5, true),
                LayerSpec::Sigmoid,
            ],
            Loss::Bce,
        ),
        (
            "dense-sigmoid-mse",
            Shape::chw(3, 1, 1),
            vec![dense(3, 9, true), LayerSpec::Sigmoid],
            Loss::Mse,
        ),
    ];
    for (i, (label, input, layers, loss)) in cases.into_iter().enumerate() {
        let net = Network::new(input, &layers).expect(label);
        check_gradients(&net, label, 100 + i as u64, loss);
    }
}

#[test]
fn the_papers_networks_pass_a_finite_difference_check_on_sampled_coordinates() {
    for arch in Architecture::ALL {
        let net = arch.network();
        let mut rng = seeded_rng("paper-nets", 7);
        let params = uniform(&mut rng, net.param_count(), 0.05);
        let x: Vec<f64> = uniform(&mut rng, 2 * net.input_len(), 0.5)
            .iter()
            .map(|v| v + 0.5)
            .collect();
        let labels = [3u8, 8];
        let mut grad = vec![0.0; params.len()];
        net.loss_grad(&params, &x, &labels, 1.0, &mut grad, None);
        let loss = |p: &[f64]| {
            let mut g = vec![0.0; p.len()];
            net.loss_grad(p, &x, &labels, 1.0, &mut g, None).0
        };
        // One coordinate inside every tensor, plus 40 random ones.
        let mut coords: Vec<usize> = net
            .tensors()
            .iter()
            .map(|t| t.range.start + t.range.len() / 2)
            .collect();
        coords.extend((0..40).map(|_| (rng.next_u64() % params.len() as u64) as usize));
        let h = 1e-6;
        for i in coords {
            let (mut up, mut down) = (params.clone(), params.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (loss(&up) - loss(&down)) / (2.0 * h);
            assert!(
                (grad[i] - numeric).abs() <= 1e-6 * (1.0 + numeric.abs()),
                "{arch}: param {i}: analytic {} vs numeric {numeric}",
                grad[i]
            );
        }
    }
}

#[test]
fn paper_networks_have_the_papers_parameter_counts() {
    // Tables 1 and 2: 130 + 98,100 + 1,010 and 130 + 125,568 + 1,280.
    assert_eq!(
        Architecture::Mnist.network().param_count(),
        130 + 98_100 + 1_010
    );
    assert_eq!(
        Architecture::Fashion.network().param_count(),
        130 + 125_568 + 1_280
    );
    let names: Vec<_> = Architecture::Fashion
        .network()
        .tensors()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(
        names,
        [
            "conv.weight",
            "conv.bias",
            "fc1.weight",
            "fc1.bias",
            "fc2.weight"
        ]
    );
}

#[test]
fn mismatched_layers_are_rejected() {
    let bad = Network::new(
        Shape::chw(1, 28, 28),
        &[LayerSpec::Dense(Dense {
            inputs: 784,
            outputs: 10,
            bias: true,
        })],
    );
    assert!(bad.is_err(), "dense on an unflattened image");
    let bad = Network::new(
        Shape::chw(1, 4, 4),
        &[LayerSpec::Conv2d(Conv2d {
            in_channels: 1,
            out_channels: 1,
            kernel: 5,
            stride: 1,
            padding: Padding::Valid,
            bias: false,
        })],
    );
    assert!(bad.is_err(), "valid kernel larger than the input");
    let bad = Network::new(
        Shape::chw(1, 4, 4),
        &[LayerSpec::Conv2d(Conv2d {
            in_channels: 1,
            out_channels: 1,
            kernel: 3,
            stride: 0,
            padding: Padding::Same,
            bias: false,
        })],
    );
    assert!(bad.is_err(), "zero stride");
}

#[test]
fn upsampling_repeats_each_pixel_and_rejects_a_zero_factor() {
    let net =
        Network::new(Shape::chw(2, 2, 2), &[LayerSpec::Upsample { factor: 3 }]).expect("valid");
    assert_eq!(net.output_len(), 2 * 6 * 6);
    let x: Vec<f64> = (0..8).map(f64::from).collect();
    let y = net.forward(&[], &x, 1);
    for c in 0..2 {
        for i in 0..6 {
            for j in 0..6 {
                assert_eq!(y[(c * 6 + i) * 6 + j], x[(c * 2 + i / 3) * 2 + j / 3]);
            }
        }
    }
    assert!(
        Network::new(Shape::chw(1, 2, 2), &[LayerSpec::Upsample { factor: 0 }]).is_err(),
        "zero factor"
    );
}

#[test]
fn activations_match_their_definitions() {
    let x = [-3.0, -0.5, 0.0, 0.25, 2.0];
    for (layer, f) in [
        (LayerSpec::Relu, (|v: f64| v.max(0.0)) as fn(f64) -> f64),
        (
            LayerSpec::LeakyRelu,
            |v: f64| if v > 0.0 { v } else { 0.01 * v },
        ),
        (LayerSpec::Sigmoid, |v: f64| 1.0 / (1.0 + (-v).exp())),
        (LayerSpec::Tanh, f64::tanh),
        (LayerSpec::Square, |v: f64| v * v),
    ] {
        let net = Network::new(Shape::chw(5, 1, 1), &[layer]).expect("valid");
        for (got, &v) in net.forward(&[], &x, 1).iter().zip(&x) {
            assert!((got - f(v)).abs() < 1e-15, "{layer:?}({v}): {got}");
        }
    }
}
