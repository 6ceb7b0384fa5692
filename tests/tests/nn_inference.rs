//! heist_core::nn inference: fixed point, f32 and quantised integers against
//! the f64 reference within derived bounds, worst-case integer magnitudes
//! against observed ones, arg-max agreement, and every error variant.

use heist_core::nn::{
    BoundError, Conv2d, Dense, EvalError, FashionMnistWeights, FixedModel, Layer, Model, Op,
    OpRounding, PointBound, QuantConfig, QuantError, QuantizedModel, Rounding, Shape, SumPool2d,
    WeightBits,
};
use heist_tests::models::{arch, glorot, mnist_model, pixels, random_model, small_bias, uniform};
use heist_tests::seeded_rng;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rand_core::RngCore;

fn fashion_model(rng: &mut impl RngCore) -> Model {
    Model::fashion_mnist(FashionMnistWeights {
        conv_weight: glorot(rng, 125, 25, 125),
        conv_bias: small_bias(rng, 5),
        dense1_weight: glorot(rng, 125_440, 980, 128),
        dense1_bias: small_bias(rng, 128),
        dense2_weight: glorot(rng, 1_280, 128, 10),
    })
    .unwrap()
}

/// Bound on |f64 reference - exact| for inputs in [-1, 1].
fn f64_bound(model: &Model) -> f64 {
    let net = model.network();
    net.error_bound(1.0, &Rounding::f64_arithmetic(net))
        .unwrap()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Asserts `|computed[j] - reference[j]| <= bound.distance(j)` for every
/// score; returns the largest ratio of error to bound.
fn within(what: &str, computed: &[f64], bound: &PointBound) -> f64 {
    assert_eq!(computed.len(), bound.scores.len());
    let mut ratio = 0.0f64;
    for (j, (c, r)) in computed.iter().zip(&bound.scores).enumerate() {
        let d = bound.distance(j).unwrap();
        let err = (c - r).abs();
        assert!(
            err <= d,
            "{what}: score {j} error {err} > derived bound {d}"
        );
        ratio = ratio.max(err / d);
    }
    ratio
}

/// The integer pipeline computes exactly the dequantised network (weights
/// `w_q 2^-k`, biases `b_q / S`) on `x_q / s`: the descaled integer scores
/// and an f64 evaluation of that network differ only by f64 rounding, bounded
/// by the per-input analysis with the dequantised parameters' own rounding
/// (inputs `x_q / s` and biases within relative 2^-53 and 3 * 2^-53) plus
/// the 4 * 2^-53 relative error of `dequantize`. This catches any scale,
/// bias or rounding-direction mistake of the quantiser, however small
/// against the a-priori bound.
fn exact_pipeline(quant: &QuantizedModel, ints: &[i64], descaled: &[f64]) {
    let u = f64::EPSILON / 2.0;
    let deq = quant.dequantized_network();
    let s = f64::from(quant.input_scale());
    let xhat: Vec<f64> = ints.iter().map(|&v| v as f64 / s).collect();
    let mut rounding = Rounding::f64_arithmetic(&deq);
    rounding.input_rel = u;
    for op in &mut rounding.ops {
        op.bias_rel = 3.0 * u;
    }
    let bound = deq.error_bound_at(&xhat, &rounding).unwrap();
    for (j, (&c, &r)) in descaled.iter().zip(&bound.scores).enumerate() {
        let d = bound.distance(j).unwrap();
        let tol = d + 4.0 * u * (r.abs() + d);
        assert!(
            (c - r).abs() <= tol,
            "dequantised network, score {j}: {c} vs {r} (tolerance {tol})"
        );
    }
}

/// Checks fixed point, f32 and quantised integers against f64 on `inputs`,
/// each within the per-input derived bound and the a-priori one, and the
/// integer magnitudes within the worst-case bounds. Returns the largest
/// (fixed error, fixed per-input bound, quantised error, quantised bound).
fn check_all_evaluators(model: &Model, quant: &QuantizedModel, inputs: &[Vec<f64>]) -> [f64; 4] {
    let net = model.network();
    let reference_apriori = f64_bound(model);
    let fixed = FixedModel::new(model).unwrap();
    let fixed_apriori = net.error_bound(1.0, &fixed.rounding()).unwrap() + reference_apriori;
    let single = model.network_f32().unwrap();
    let single_rounding = Rounding::f32_arithmetic(net);
    let quant_apriori = net.error_bound(1.0, quant.rounding()).unwrap() + reference_apriori;
    let mut worst = [0.0f64; 4];
    for x in inputs {
        let reference = model.infer(x).unwrap();

        let computed = fixed.infer(x).unwrap();
        let bound = net.error_bound_at(x, &fixed.rounding()).unwrap();
        assert_eq!(bound.scores, reference);
        within("fixed", &computed, &bound);
        if bound.certifies_argmax().unwrap() {
            assert_eq!(argmax(&computed), argmax(&reference));
        }
        let e = max_diff(&computed, &reference);
        assert!(
            e <= fixed_apriori,
            "fixed error {e} > a-priori bound {fixed_apriori}"
        );
        worst[0] = worst[0].max(e);
        worst[1] = worst[1].max(
            (0..10.min(computed.len()))
                .map(|j| bound.distance(j).unwrap())
                .fold(0.0, f64::max),
        );

        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let computed: Vec<f64> = single
            .evaluate(&x32)
            .unwrap()
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        within(
            "f32",
            &computed,
            &net.error_bound_at(x, &single_rounding).unwrap(),
        );

        let ints = quant.quantize_input(x).unwrap();
        let wide: Vec<i128> = ints.iter().map(|&v| i128::from(v)).collect();
        let mut observed = vec![0u128; quant.network().ops().len()];
        let scores = quant
            .network()
            .evaluate_with(&wide, |op, values| {
                observed[op] = values.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
            })
            .unwrap();
        assert_eq!(scores, quant.infer(&ints).unwrap());
        for (op, (&seen, &bound)) in observed.iter().zip(quant.op_bounds()).enumerate() {
            assert!(
                seen <= bound,
                "op {op}: observed {seen} > worst case {bound}"
            );
        }
        let computed = quant.dequantize(&scores);
        exact_pipeline(quant, &ints, &computed);
        let bound = net.error_bound_at(x, quant.rounding()).unwrap();
        within("quantised", &computed, &bound);
        let e = max_diff(&computed, &reference);
        assert!(
            e <= quant_apriori,
            "quantised error {e} > a-priori bound {quant_apriori}"
        );
        worst[2] = worst[2].max(e);
        worst[3] = worst[3].max(
            (0..computed.len())
                .map(|j| bound.distance(j).unwrap())
                .fold(0.0, f64::max),
        );
    }
    worst
}

#[test]
fn paper_networks_every_evaluator_within_its_derived_bound() {
    for (name, seed) in [
        ("mnist", 10u64),
        ("mnist", 11),
        ("fashion", 12),
        ("fashion", 13),
    ] {
        let mut rng = seeded_rng("nn_paper_eval", seed);
        let model = if name == "mnist" {
            mnist_model(&mut rng)
        } else {
            fashion_model(&mut rng)
        };
        let quant = QuantizedModel::new(&model, &QuantConfig::pixels(8)).unwrap();
        let inputs: Vec<Vec<f64>> = (0..40).map(|_| pixels(&mut rng, 784)).collect();
        let scores: Vec<f64> = inputs
            .iter()
            .flat_map(|x| model.infer(x).unwrap())
            .collect();
        let [fe, fb, qe, qb] = check_all_evaluators(&model, &quant, &inputs);
        eprintln!(
            "{name} seed {seed}: max |score| {:.3e}; fixed I32F32 max err {fe:.3e} (per-input bound up to {fb:.3e}); \
             8-bit quantised max err {qe:.3e} (per-input bound up to {qb:.3e}); worst-case integer bits {}",
            scores.iter().fold(0.0f64, |m, s| m.max(s.abs())),
            quant.bits_needed()
        );
    }
}

#[test]
fn paper_networks_fit_i128_at_eight_bits_with_the_bound_checked() {
    let mut rng = seeded_rng("nn_paper_bounds", 20);
    for model in [mnist_model(&mut rng), fashion_model(&mut rng)] {
        let quant = QuantizedModel::new(&model, &QuantConfig::pixels(8)).unwrap();
        let bound = quant.max_abs_bound();
        assert!(bound <= i128::MAX as u128);
        assert_eq!(bound, *quant.op_bounds().iter().max().unwrap());
        assert_eq!(quant.bits_needed(), 1 + (128 - bound.leading_zeros()));
        assert_eq!(quant.min_plaintext_modulus(), 2 * bound + 1);
        assert_eq!(quant.input_bound(), 255);
        // Every weight within the 8-bit budget, every scale a power of 255 times 2^k.
        for op in quant.network().ops() {
            if let Op::Linear(map) = op {
                for row in map.rows() {
                    assert!(row.terms().iter().all(|&(_, w)| w != 0 && w.abs() <= 127));
                }
            }
        }
        let squares = model.network().square_count() as u32;
        assert_eq!(quant.output_scale().factor(), 255u128.pow(1 << squares));
        eprintln!(
            "paper network ({} squares): worst case {} bits, min plaintext modulus {}",
            squares,
            quant.bits_needed(),
            quant.min_plaintext_modulus()
        );
        // A per-layer budget: two more bits on the first layer raise its weight
        // exponent by two (the largest weight keeps its leading bits).
        let per_layer = WeightBits::PerLinear(vec![10, 8, 8]);
        let wider = QuantizedModel::new(
            &model,
            &QuantConfig {
                weight_bits: per_layer,
                ..QuantConfig::pixels(8)
            },
        )
        .unwrap();
        assert_eq!(wider.weight_log2(0), quant.weight_log2(0).map(|k| k + 2));
        assert_eq!(wider.weight_log2(2), quant.weight_log2(2));
        let table: Vec<String> = (4..=12)
            .map(
                |bits| match QuantizedModel::new(&model, &QuantConfig::pixels(bits)) {
                    Ok(q) => format!("{bits}:{}", q.bits_needed()),
                    Err(QuantError::BoundExceeded { .. }) => format!("{bits}:>128"),
                    Err(e) => panic!("unexpected {e}"),
                },
            )
            .collect();
        eprintln!(
            "weight bits : worst-case integer bits = {}",
            table.join(" ")
        );
    }
}

#[test]
fn worst_case_bound_is_attained_by_the_sign_aligned_input() {
    // One dense layer: the bound sum |w_q| * 255 + |b_q| is reached by
    // x_i = sign(w_i) * 255 on a row whose bias is non-negative.
    let mut rng = seeded_rng("nn_bound_tight", 21);
    let (n, m) = (50, 4);
    let model = Model::new(
        Shape::Flat(n),
        vec![Layer::Dense(Dense {
            in_features: n,
            out_features: m,
            weight: glorot(&mut rng, n * m, n, m),
            bias: Some(vec![0.03, 0.01, 0.02, 0.04]),
        })],
    )
    .unwrap();
    let quant = QuantizedModel::new(&model, &QuantConfig::pixels(10)).unwrap();
    let Op::Linear(map) = &quant.network().ops()[0] else {
        panic!("dense lowers to a linear map")
    };
    let mut best = 0u128;
    for row in map.rows() {
        let mut x = vec![0i64; n];
        for &(i, w) in row.terms() {
            x[i] = if w > 0 { 255 } else { -255 };
        }
        let out = quant
            .network()
            .evaluate(&x.iter().map(|&v| i128::from(v)).collect::<Vec<_>>())
            .unwrap();
        best = best.max(out.iter().map(|v| v.unsigned_abs()).max().unwrap());
    }
    assert_eq!(best, quant.op_bounds()[0]);
}

/// `model` with every weight of a linear layer moved by U(-h, h),
/// h = 2^-(k+1) its quantisation half-step, and every bias by its half-step
/// 1 / (2 S): the standard model of rounding errors as independent uniform
/// variables (Higham, 2nd ed., section 2.8).
fn randomly_rounded(model: &Model, quant: &QuantizedModel, rng: &mut impl RngCore) -> Model {
    let mut jitter =
        |v: &[f64], h: f64| -> Vec<f64> { v.iter().map(|&w| w + uniform(rng, -h, h)).collect() };
    let layers = model
        .layers()
        .iter()
        .enumerate()
        .map(|(l, layer)| {
            let Some(op) = model.op_of_layer(l) else {
                return layer.clone();
            };
            let Some(k) = quant.weight_log2(op) else {
                return layer.clone();
            };
            let h = 0.5 / 2f64.powi(k);
            let hb = 0.5 / quant.scale_after(op).unwrap().to_f64();
            match layer {
                Layer::Conv2d(c) => Layer::Conv2d(Conv2d {
                    weight: jitter(&c.weight, h),
                    bias: c.bias.as_ref().map(|b| jitter(b, hb)),
                    ..c.clone()
                }),
                Layer::Dense(d) => Layer::Dense(Dense {
                    weight: jitter(&d.weight, h),
                    bias: d.bias.as_ref().map(|b| jitter(b, hb)),
                    ..d.clone()
                }),
                other => other.clone(),
            }
        })
        .collect();
    Model::new(model.input_shape(), layers).unwrap()
}

#[test]
fn argmax_agreement_between_f64_and_eight_bit_integers() {
    // Two thresholds, both derived, neither tuned:
    // - rigorous: where the per-input bound certifies the arg-max (top score
    //   minus its distance bound above every other score plus its own), the
    //   integer arg-max must equal the f64 one;
    // - statistical: modelling the rounding of the R = 16 sampled
    //   perturbations below as independent uniform errors, each score error is
    //   a sum of thousands of small independent terms, close to normal with a
    //   standard deviation sigma_j estimated from the samples. An input whose
    //   margin over every class j exceeds Z (sigma_top + sigma_j), Z = 8, can
    //   flip only if an error exceeds 4 sigma while sigma is underestimated
    //   by half (chi-square with 16 degrees of freedom: P < 2e-3; normal
    //   tail beyond 4: P < 7e-5), about 1e-7 per class pair. Every such input
    //   must agree.
    // Agreement is then at least the larger of the two counts; all three
    // figures are reported.
    const SAMPLES: usize = 16;
    const Z: f64 = 8.0;
    let mut rng = seeded_rng("nn_argmax", 30);
    let (mut total, mut agree, mut certified, mut stable) = (0usize, 0usize, 0usize, 0usize);
    for build in [mnist_model, fashion_model] {
        let model = build(&mut rng);
        let quant = QuantizedModel::new(&model, &QuantConfig::pixels(8)).unwrap();
        let samples: Vec<Model> = (0..SAMPLES)
            .map(|_| randomly_rounded(&model, &quant, &mut rng))
            .collect();
        for _ in 0..100 {
            let x = pixels(&mut rng, 784);
            let bound = model
                .network()
                .error_bound_at(&x, quant.rounding())
                .unwrap();
            let reference = &bound.scores;
            let top = argmax(reference);
            let same = argmax(&quant.infer_real(&x).unwrap()) == top;
            if bound.certifies_argmax().unwrap() {
                certified += 1;
                assert!(same, "an input certified by the rigorous bound disagrees");
            }
            let mut sq = vec![0.0; reference.len()];
            for sample in &samples {
                for (j, v) in sample.infer(&x).unwrap().iter().enumerate() {
                    sq[j] += (v - reference[j]).powi(2);
                }
            }
            let sigma: Vec<f64> = sq.iter().map(|s| (s / SAMPLES as f64).sqrt()).collect();
            let is_stable = (0..reference.len())
                .filter(|&j| j != top)
                .all(|j| reference[top] - reference[j] > Z * (sigma[top] + sigma[j]));
            if is_stable {
                stable += 1;
                assert!(same, "an input with margin above {Z} sigma disagrees");
            }
            total += 1;
            agree += usize::from(same);
        }
    }
    eprintln!(
        "arg-max agreement f64 vs 8-bit integers: {agree}/{total}; \
         certified by the rigorous bound: {certified}/{total}; margin above {Z} sigma: {stable}/{total}"
    );
    assert!(agree >= certified.max(stable));
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (j, &s) in v.iter().enumerate() {
        if s > v[best] {
            best = j;
        }
    }
    best
}

#[test]
fn mnist_bytes_quantise_exactly_and_scales_are_exact() {
    let model = Model::new(Shape::Flat(256), vec![Layer::Square]).unwrap();
    let quant = QuantizedModel::new(&model, &QuantConfig::pixels(8)).unwrap();
    let x: Vec<f64> = (0..256).map(|k| k as f64 / 255.0).collect();
    let ints = quant.quantize_input(&x).unwrap();
    assert_eq!(ints, (0..256).collect::<Vec<i64>>());
    assert_eq!(
        quant.infer(&ints).unwrap(),
        (0..256).map(|k: i128| k * k).collect::<Vec<_>>()
    );
    assert_eq!(quant.output_scale().factor(), 255 * 255);
    assert_eq!(quant.output_scale().log2(), 0);
}

#[test]
fn sum_pooling_of_scale_one_keeps_unit_weights() {
    let model = Model::new(
        Shape::Image {
            channels: 1,
            height: 4,
            width: 4,
        },
        vec![Layer::SumPool2d(SumPool2d {
            kernel: [2, 2],
            stride: [2, 2],
            scale: 1.0,
        })],
    )
    .unwrap();
    let quant = QuantizedModel::new(&model, &QuantConfig::pixels(8)).unwrap();
    assert_eq!(quant.weight_log2(0), Some(0));
    let Op::Linear(map) = &quant.network().ops()[0] else {
        panic!("pooling lowers to a linear map")
    };
    assert!(map
        .rows()
        .iter()
        .all(|r| r.terms().iter().all(|&(_, w)| w == 1)));
    assert_eq!(quant.op_bounds(), &[4 * 255]);
    // Mean pooling (scale 1/4) is exact too, at 2^2.
    let mean = Model::new(
        Shape::Image {
            channels: 1,
            height: 4,
            width: 4,
        },
        vec![Layer::SumPool2d(SumPool2d {
            kernel: [2, 2],
            stride: [2, 2],
            scale: 0.25,
        })],
    )
    .unwrap();
    let quant = QuantizedModel::new(&mean, &QuantConfig::pixels(8)).unwrap();
    assert_eq!(quant.weight_log2(0), Some(2));
}

// ------------------------------------------------------ random architectures

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/nn_inference.txt"))),
        ..heist_tests::seeded_config(48)
    })]

    #[test]
    fn random_networks_every_evaluator_within_its_derived_bound(
        seed in any::<u64>(), p in arch(), bits in 4u32..13,
    ) {
        let mut rng = seeded_rng("nn_random_eval", seed);
        let model = random_model(&mut rng, &p);
        let quant = QuantizedModel::new(&model, &QuantConfig::pixels(bits));
        // Wide weights through two squares can have a worst case beyond i128: the
        // quantiser refuses such a model (its refusal is tested below), there is nothing
        // to compare.
        prop_assume!(!matches!(quant, Err(QuantError::BoundExceeded { .. })));
        let quant = quant.unwrap();
        let n = model.network().input_len();
        let inputs: Vec<Vec<f64>> = (0..8).map(|_| pixels(&mut rng, n)).collect();
        check_all_evaluators(&model, &quant, &inputs);
    }
}

// ------------------------------------------------------------ error variants

fn tiny_dense(weight: f64, bias: f64) -> Model {
    Model::new(
        Shape::Flat(1),
        vec![Layer::Dense(Dense {
            in_features: 1,
            out_features: 1,
            weight: vec![weight],
            bias: Some(vec![bias]),
        })],
    )
    .unwrap()
}

#[test]
fn every_quant_error_variant_is_reached() {
    // w = 0.5 quantises exactly to 1 at 2^1, the bias 0.1 to round(0.1 * 510) = 51:
    // the worst case is 255 + 51 = 306.
    let model = tiny_dense(0.5, 0.1);
    let cfg = QuantConfig::pixels(8);
    let quant = QuantizedModel::new(&model, &cfg).unwrap();
    assert_eq!(
        (quant.weight_log2(0), quant.max_abs_bound()),
        (Some(1), 306)
    );
    let invalid = |input_scale, input_max_abs| QuantError::InvalidInputRange {
        input_scale,
        input_max_abs,
    };
    assert_eq!(
        QuantizedModel::new(
            &model,
            &QuantConfig {
                input_scale: 0,
                ..cfg.clone()
            }
        )
        .err(),
        Some(invalid(0, 1.0))
    );
    assert!(matches!(
        QuantizedModel::new(
            &model,
            &QuantConfig {
                input_max_abs: f64::NAN,
                ..cfg.clone()
            }
        )
        .err(),
        Some(QuantError::InvalidInputRange { .. })
    ));
    assert_eq!(
        QuantizedModel::new(
            &model,
            &QuantConfig {
                input_max_abs: 1e10,
                input_scale: 1 << 30,
                ..cfg.clone()
            }
        )
        .err(),
        Some(invalid(1 << 30, 1e10))
    );
    assert_eq!(
        QuantizedModel::new(
            &model,
            &QuantConfig {
                weight_bits: WeightBits::PerLinear(vec![8, 8]),
                ..cfg.clone()
            }
        )
        .err(),
        Some(QuantError::WeightBitsCount {
            expected: 1,
            found: 2
        })
    );
    for bits in [1, 33] {
        assert_eq!(
            QuantizedModel::new(&model, &QuantConfig::pixels(bits)).err(),
            Some(QuantError::WeightBits { op: 0, bits })
        );
    }
    let squares = Model::new(
        Shape::Flat(1),
        vec![Layer::Square, Layer::Square, Layer::Square],
    )
    .unwrap();
    assert_eq!(
        QuantizedModel::new(
            &squares,
            &QuantConfig {
                input_scale: u32::MAX,
                input_max_abs: 1e-12,
                ..cfg.clone()
            }
        )
        .err(),
        Some(QuantError::ScaleOverflow { op: 2 })
    );
    assert_eq!(
        QuantizedModel::new(&tiny_dense(1.0, 1e40), &cfg).err(),
        Some(QuantError::BiasNotRepresentable {
            op: 0,
            index: 0,
            value: 1e40
        })
    );
    assert_eq!(
        QuantizedModel::new(
            &model,
            &QuantConfig {
                bound_limit: 254,
                ..cfg.clone()
            }
        )
        .err(),
        Some(QuantError::BoundExceeded {
            op: None,
            limit: 254
        })
    );
    assert_eq!(
        QuantizedModel::new(
            &model,
            &QuantConfig {
                bound_limit: 300,
                ..cfg.clone()
            }
        )
        .err(),
        Some(QuantError::BoundExceeded {
            op: Some(0),
            limit: 300
        })
    );
    let text = QuantError::WeightBits { op: 3, bits: 40 }.to_string();
    assert_eq!(text, "operation 3: weight budget 40 is outside [2, 32]");
}

#[test]
fn every_eval_error_variant_is_reached() {
    let model = tiny_dense(0.5, 0.1);
    assert_eq!(
        model.infer(&[1.0, 2.0]),
        Err(EvalError::InputLength {
            expected: 1,
            found: 2
        })
    );
    let quant = QuantizedModel::new(&model, &QuantConfig::pixels(8)).unwrap();
    assert_eq!(
        quant.quantize_input(&[1.5]),
        Err(EvalError::InputOutOfRange {
            index: 0,
            value: 1.5,
            max_abs: 1.0
        })
    );
    assert!(matches!(
        quant.quantize_input(&[f64::NAN]),
        Err(EvalError::InputOutOfRange { index: 0, .. })
    ));
    assert_eq!(
        quant.infer(&[-256]),
        Err(EvalError::IntegerInputOutOfRange {
            index: 0,
            value: -256,
            max_abs: 255
        })
    );
    let fixed = FixedModel::new(&model).unwrap();
    assert!(
        matches!(fixed.infer(&[3e9]), Err(EvalError::InputOutOfRange { index: 0, value, .. }) if value == 3e9)
    );
    // 60000^2 = 3.6e9 leaves I32F32; 1e200^2 leaves f64.
    let big = Model::new(
        Shape::Flat(1),
        vec![
            Layer::Dense(Dense {
                in_features: 1,
                out_features: 1,
                weight: vec![1e200],
                bias: None,
            }),
            Layer::Square,
        ],
    )
    .unwrap();
    assert_eq!(
        big.infer(&[1.0]),
        Err(EvalError::Overflow { op: 1, index: 0 })
    );
    let fixed = FixedModel::new(&tiny_dense(60_000.0, 0.0)).unwrap();
    assert_eq!(fixed.infer(&[1.0]), Ok(vec![60_000.0]));
    let square = Model::new(
        Shape::Flat(1),
        vec![
            Layer::Dense(Dense {
                in_features: 1,
                out_features: 1,
                weight: vec![60_000.0],
                bias: None,
            }),
            Layer::Square,
        ],
    )
    .unwrap();
    assert_eq!(
        FixedModel::new(&square).unwrap().infer(&[1.0]),
        Err(EvalError::Overflow { op: 1, index: 0 })
    );
    assert!(FixedModel::new(&tiny_dense(3e9, 0.0)).is_err());
    assert!(big.network_f32().is_err());
}

#[test]
fn every_bound_error_variant_is_reached() {
    let model = tiny_dense(0.5, 0.1);
    let net = model.network();
    let mut rounding = Rounding::f64_arithmetic(net);
    rounding.ops.push(OpRounding::EXACT);
    assert_eq!(
        net.error_bound(1.0, &rounding),
        Err(BoundError::OpCount {
            expected: 1,
            found: 2
        })
    );
    rounding.ops.pop();
    assert_eq!(
        net.error_bound(-1.0, &rounding),
        Err(BoundError::InvalidParameter {
            op: None,
            value: -1.0
        })
    );
    assert_eq!(
        net.error_bound_at(&[1.0, 2.0], &rounding),
        Err(BoundError::Evaluation(EvalError::InputLength {
            expected: 1,
            found: 2
        }))
    );
    rounding.ops[0].weight_abs = f64::INFINITY;
    assert_eq!(
        net.error_bound(1.0, &rounding),
        Err(BoundError::InvalidParameter {
            op: Some(0),
            value: f64::INFINITY
        })
    );
    // The exact model has a zero bound; an inexact one a positive bound.
    let exact = Rounding {
        input_abs: 0.0,
        input_rel: 0.0,
        ops: vec![OpRounding::EXACT],
        output_rel: 0.0,
    };
    assert_eq!(net.error_bound(1.0, &exact), Ok(0.0));
    assert!(
        net.error_bound(1.0, &Rounding::f64_arithmetic(net))
            .unwrap()
            > 0.0
    );
}

#[test]
fn quantised_parameters_are_within_half_a_step_of_the_real_ones() {
    // |w_q 2^-k - w| <= 2^-(k+1) for every weight (dropped terms have w_q = 0),
    // |b_q / S - b| <= 0.5 / S + 3 * 2^-53 |b| for every bias, |w_q| within budget;
    // the dequantised bias adds its own 3 * 2^-53 relative rounding (4 * 2^-53 taken).
    let u = f64::EPSILON / 2.0;
    // (MNIST at 12 bits needs more than 127 bits in the worst case, so the
    // 12-bit case uses the Fashion-MNIST network.)
    for (bits, seed, build) in [
        (4u32, 40u64, mnist_model as fn(&mut _) -> Model),
        (8, 41, mnist_model),
        (12, 42, fashion_model),
    ] {
        let mut rng = seeded_rng("nn_param_rounding", seed);
        let model = build(&mut rng);
        let quant = QuantizedModel::new(&model, &QuantConfig::pixels(bits)).unwrap();
        let deq = quant.dequantized_network();
        for (op, (orig, (q, d))) in model
            .network()
            .ops()
            .iter()
            .zip(quant.network().ops().iter().zip(deq.ops()))
            .enumerate()
        {
            let (Op::Linear(orig), Op::Linear(q), Op::Linear(d)) = (orig, q, d) else {
                continue;
            };
            let k = quant.weight_log2(op).unwrap();
            let half = 0.5 / 2f64.powi(k);
            let s = quant.scale_after(op).unwrap().to_f64();
            let limit = (1i64 << (bits - 1)) - 1;
            for ((ro, rq), rd) in orig.rows().iter().zip(q.rows()).zip(d.rows()) {
                assert!(rq.terms().iter().all(|&(_, w)| w != 0 && w.abs() <= limit));
                let mut dq = rd.terms().iter().peekable();
                for &(i, w) in ro.terms() {
                    let wq = match dq.peek() {
                        Some(&&(j, v)) if j == i => {
                            dq.next();
                            v
                        }
                        _ => 0.0,
                    };
                    assert!(
                        (wq - w).abs() <= half,
                        "op {op}: weight {w} -> {wq}, step {}",
                        2.0 * half
                    );
                }
                assert!(dq.next().is_none());
                let b = ro.bias();
                assert!(
                    (rd.bias() - b).abs()
                        <= 0.5 / s + 3.0 * u * b.abs() + 4.0 * u * rd.bias().abs()
                );
            }
        }
    }
}

#[test]
fn point_bound_certifies_only_separated_top_scores() {
    let bound = |error: f64| PointBound {
        scores: vec![0.25, 1.0, 0.5],
        reference_error: vec![0.0; 3],
        error: vec![error; 3],
    };
    // Top 1.0 vs runner-up 0.5: certified iff 1.0 - e > 0.5 + e.
    assert_eq!(bound(0.2).certifies_argmax(), Some(true));
    assert_eq!(bound(0.25).certifies_argmax(), Some(false));
    assert_eq!(bound(0.2).distance(1), Some(0.2));
    assert_eq!(bound(0.2).distance(3), None);
    let empty = PointBound {
        scores: vec![],
        reference_error: vec![],
        error: vec![],
    };
    assert_eq!(empty.certifies_argmax(), None);
}
