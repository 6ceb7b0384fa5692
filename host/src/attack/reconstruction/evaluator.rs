//! The independent evaluator: a classifier trained apart from the target model (another
//! architecture, another seed, the target images left out) that re-classifies
//! reconstructions, so that re-classification accuracy does not only measure agreement
//! with the target's own decision boundaries.
//!
//! Architecture: 784 → 256 → ReLU → 10 (softmax cross-entropy), Adam at lr 1e-3, batch
//! 128, [`EVALUATOR_EPOCHS`] epochs, trained with the host's one trainer.

use crate::data::{Images, CLASSES, IMAGE_PIXELS};
use crate::model::network::{Dense, LayerSpec, Network, Shape};
use crate::oracle::{Classifier, Image, Scores, Weighted};
use crate::train::optim::OptimizerKind;
use crate::train::{fit, init_network, stream_rng, FitOptions, Targets};

use super::ReconstructionError;

/// Passes over the training images.
pub const EVALUATOR_EPOCHS: usize = 3;

/// A trained network used as a plaintext [`Classifier`].
#[derive(Clone, Debug)]
pub struct Evaluator(Weighted);

impl Evaluator {
    /// Trains the evaluator on the images of `train` whose indices are not in `exclude`,
    /// seeded by `seed` (stream 0: weights, stream 1: shuffles).
    ///
    /// # Errors
    /// [`ReconstructionError::Train`] if training fails (e.g. no images left).
    pub fn train(
        train: &Images,
        exclude: &[usize],
        seed: u64,
    ) -> Result<Self, ReconstructionError> {
        let network = Network::new(
            Shape::chw(1, 28, 28),
            &[
                LayerSpec::Flatten,
                LayerSpec::Dense(Dense {
                    inputs: IMAGE_PIXELS,
                    outputs: 256,
                    bias: true,
                }),
                LayerSpec::Relu,
                LayerSpec::Dense(Dense {
                    inputs: 256,
                    outputs: CLASSES,
                    bias: true,
                }),
            ],
        )
        .unwrap_or_else(|e| unreachable!("the evaluator's layers are valid: {e}"));
        let mut params = init_network(&network, &mut stream_rng(seed, 0));
        let mut skip = vec![false; train.len()];
        for &i in exclude {
            if let Some(s) = skip.get_mut(i) {
                *s = true;
            }
        }
        let examples: Vec<usize> = (0..train.len()).filter(|&i| !skip[i]).collect();
        let options = FitOptions {
            epochs: EVALUATOR_EPOCHS,
            batch_size: 128,
            lr: 1e-3,
            optimizer: OptimizerKind::Adam,
            momentum: 0.0,
            clip_norm: None,
        };
        let input = |i: usize, x: &mut Vec<f32>| train.push_scaled(i, x);
        fit(
            &network,
            &mut params,
            &examples,
            &input,
            Targets::Labels(&train.labels),
            &options,
            &mut stream_rng(seed, 1),
            |_, _, _| {},
        )?;
        Ok(Self(Weighted { network, params }))
    }
}

impl Classifier for Evaluator {
    fn scores(&self, image: &Image) -> Scores {
        self.0.scores(image)
    }

    fn scores_batch(&self, images: &[Image]) -> Vec<Scores> {
        self.0.scores_batch(images)
    }
}
