//! A trained host model converts to the heist-core network and predicts the same.

use heist::data::{self, Dataset};
use heist::model::{scaled, Architecture};
use heist::train::{self, optim::OptimizerKind, TrainConfig};

#[test]
fn core_model_gives_the_same_scores_and_predictions() {
    for d in Dataset::ALL {
        let data = data::load(d, None, true).expect("embedded subset");
        let cfg = TrainConfig {
            arch: Architecture::for_dataset(d),
            epochs: 1,
            batch_size: 64,
            lr: 1e-3,
            optimizer: OptimizerKind::Adam,
            momentum: 0.0,
            clip_norm: None,
            fraction: 0.5,
            seed: 3,
        };
        let model = train::train(&data.train, &cfg, |_, _, _| {})
            .expect("trains")
            .model;
        let core = model.to_core().expect("converts");
        assert_eq!(core.parameter_count(), model.params().len());
        let test = data.test.truncated(50);
        let x = scaled(&test);
        let ours = model.scores(&x);
        let scale = 1.0 + ours.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (i, image) in x.chunks_exact(784).enumerate() {
            let inputs: Vec<f64> = image.iter().map(|&v| f64::from(v)).collect();
            let theirs = core.infer(&inputs).expect("infers");
            let mine = &ours[i * 10..(i + 1) * 10];
            for (a, b) in mine.iter().zip(&theirs) {
                assert!(
                    (f64::from(*a) - b).abs() <= 1e-4 * f64::from(scale),
                    "{d} image {i}: host {a} vs core {b}"
                );
            }
            let arg = |z: &[f64]| {
                z.iter()
                    .enumerate()
                    .fold(0, |m, (j, v)| if *v > z[m] { j } else { m })
            };
            let mine64: Vec<f64> = mine.iter().map(|&v| f64::from(v)).collect();
            assert_eq!(
                arg(&mine64),
                arg(&theirs),
                "{d} image {i}: predictions differ"
            );
        }
    }
}
