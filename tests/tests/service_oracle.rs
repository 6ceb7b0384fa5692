//! The oracles over the real network type: the plain model, the in-process service and the
//! white-box gradient all agree with `Model` itself.

#[expect(dead_code, reason = "this suite uses the real model")]
mod service_support;

use std::time::Duration;

use heist::model::{Architecture, Model};
use heist::oracle::{
    Classifier, GradientOracle, Image, Oracle, PlainOracle, PlainOracleError, Scores, CLASSES,
};
use heist::service::{BatchConfig, InProcessService, PlaintextCodec, PlaintextEvaluator};
use heist_tests::seeded_rng;
use service_support::{random_image, unit};

/// A Fashion-architecture model with weights uniform in [-0.05, 0.05].
fn model(seed: u64) -> Model {
    let mut rng = seeded_rng("service_oracle::model", seed);
    let count = Architecture::Fashion.network().param_count();
    let params = (0..count).map(|_| 0.1 * unit(&mut rng) - 0.05).collect();
    Model::new(Architecture::Fashion, params).expect("right parameter count")
}

/// Softmax cross-entropy of `scores` against `label`, in f64.
fn loss(scores: &Scores, label: usize) -> f64 {
    let max = scores
        .iter()
        .fold(f64::NEG_INFINITY, |m, &s| m.max(f64::from(s)));
    let sum: f64 = scores.iter().map(|&s| (f64::from(s) - max).exp()).sum();
    max + sum.ln() - f64::from(scores[label])
}

#[test]
fn model_scores_match_through_every_oracle() {
    let model = model(1);
    let mut rng = seeded_rng("service_oracle::images", 2);
    let images: Vec<Image> = (0..12).map(|_| random_image(&mut rng)).collect();
    let pixels: Vec<f32> = images.iter().flat_map(|i| *i.pixels()).collect();
    let direct = model.scores(&pixels);
    let expected: Vec<Scores> = direct
        .chunks_exact(CLASSES)
        .map(|c| c.try_into().expect("ten scores"))
        .collect();
    let one_by_one: Vec<Scores> = images
        .iter()
        .map(|i| Classifier::scores(&model, i))
        .collect();
    assert_eq!(one_by_one, expected);
    let service = InProcessService::start(
        PlaintextCodec::new(5).expect("valid slots"),
        PlaintextEvaluator::new(model.clone()),
        &BatchConfig {
            window: Duration::from_millis(1),
            ..BatchConfig::default()
        },
    )
    .expect("starts");
    assert_eq!(service.client().query(&images).expect("answered"), expected);
    let mut plain = PlainOracle::new(model);
    assert_eq!(plain.query(&images).expect("never fails"), expected);
    assert_eq!(plain.queries(), 12);
}

#[test]
fn the_loss_gradient_matches_a_directional_difference() {
    let model = model(3);
    let base = Image::new(&[0.5; 784]).expect("in range");
    let mut oracle = PlainOracle::new(model.clone());
    for label in [0u8, 7] {
        let gradient = oracle
            .loss_gradient(std::slice::from_ref(&base), &[label])
            .expect("valid label")
            .pop()
            .expect("one gradient");
        let norm2: f64 = gradient.iter().map(|&g| f64::from(g) * f64::from(g)).sum();
        let max = gradient.iter().fold(0f32, |m, g| m.max(g.abs()));
        assert!(max > 0.0);
        // Step along the gradient, small enough to stay in [0, 1] and in the linear regime.
        let h = 1e-3 / max;
        let step = |sign: f32| {
            let pixels: Vec<f32> = base
                .pixels()
                .iter()
                .zip(gradient.iter())
                .map(|(p, g)| p + sign * h * g)
                .collect();
            let image = Image::new(&pixels).expect("in range");
            loss(&Classifier::scores(&model, &image), usize::from(label))
        };
        let slope = (step(1.0) - step(-1.0)) / (2.0 * f64::from(h));
        assert!(
            (slope - norm2).abs() <= 0.02 * norm2,
            "label {label}: {slope} vs {norm2}"
        );
    }
    assert_eq!(oracle.queries(), 2);
    assert_eq!(
        oracle.loss_gradient(std::slice::from_ref(&base), &[]),
        Err(PlainOracleError::LengthMismatch {
            images: 1,
            labels: 0
        })
    );
    assert_eq!(
        oracle.loss_gradient(&[base.clone(), base], &[1, 10]),
        Err(PlainOracleError::LabelOutOfRange {
            index: 1,
            label: 10
        })
    );
    assert_eq!(oracle.queries(), 2);
}
