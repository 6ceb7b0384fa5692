//! What a reconstruction must beat: images an attacker gets without inverting anything.
//!
//! * **Class mean**: the mean training image of the class the released scores predict.
//!   It re-classifies almost perfectly, because it only carries what the scores leak
//!   about the label; any margin of a reconstruction over it is information beyond the label.
//! * **Nearest auxiliary image**: the auxiliary image whose scores are nearest (Euclidean
//!   distance between the generator's standardised features) to the target's.
//! * **Global mean**: the mean training image, whatever the scores.
//!
//! The means are taken over the whole training set, a stronger baseline than any
//! attacker-side estimate.

use crate::data::{Images, CLASSES, IMAGE_PIXELS};
use crate::oracle::{predicted_class, Image, Scores};

use super::generator::InverseGenerator;
use super::ReconstructionError;

/// The mean image of each class and of all images.
#[derive(Clone, Debug)]
pub struct MeanImages {
    class: Vec<Image>,
    global: Image,
}

impl MeanImages {
    /// The means of `images` (pixels scaled to [0, 1]). A class without images gets the
    /// global mean.
    ///
    /// # Errors
    /// [`ReconstructionError::Config`] for no images.
    pub fn new(images: &Images) -> Result<Self, ReconstructionError> {
        if images.is_empty() {
            return Err(ReconstructionError::Config(
                "no images to average".to_owned(),
            ));
        }
        let mut sums = vec![[0.0f64; IMAGE_PIXELS]; CLASSES];
        let mut counts = [0usize; CLASSES];
        for i in 0..images.len() {
            let label = usize::from(images.labels[i]);
            counts[label] += 1;
            for (s, &p) in sums[label].iter_mut().zip(images.image(i)) {
                *s += f64::from(p) / 255.0;
            }
        }
        let mean = |sum: &[f64; IMAGE_PIXELS], n: usize| -> Result<Image, ReconstructionError> {
            let pixels: Vec<f32> = sum.iter().map(|&s| (s / n as f64) as f32).collect();
            Image::new(&pixels).map_err(|e| ReconstructionError::Config(e.to_string()))
        };
        let mut total = [0.0f64; IMAGE_PIXELS];
        for sum in &sums {
            for (t, s) in total.iter_mut().zip(sum) {
                *t += s;
            }
        }
        let global = mean(&total, images.len())?;
        let class = sums
            .iter()
            .zip(counts)
            .map(|(sum, n)| {
                if n == 0 {
                    Ok(global.clone())
                } else {
                    mean(sum, n)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { class, global })
    }

    /// The mean image of the class each score vector predicts.
    pub fn class_mean(&self, scores: &[Scores]) -> Vec<Image> {
        scores
            .iter()
            .map(|s| self.class[predicted_class(s)].clone())
            .collect()
    }

    /// The global mean image, once per score vector.
    pub fn global_mean(&self, scores: &[Scores]) -> Vec<Image> {
        vec![self.global.clone(); scores.len()]
    }
}

/// For each target score vector, the auxiliary image whose scores are nearest in the
/// generator's feature space (the first one on ties).
///
/// # Errors
/// [`ReconstructionError::Config`] when there are no auxiliary pairs or they do not pair up.
pub fn nearest_aux(
    generator: &InverseGenerator,
    aux_images: &[Image],
    aux_scores: &[Scores],
    target_scores: &[Scores],
) -> Result<Vec<Image>, ReconstructionError> {
    if aux_images.is_empty() || aux_images.len() != aux_scores.len() {
        return Err(ReconstructionError::Config(format!(
            "{} auxiliary images and {} score vectors",
            aux_images.len(),
            aux_scores.len()
        )));
    }
    let aux: Vec<[f32; CLASSES]> = aux_scores.iter().map(|s| generator.features(s)).collect();
    Ok(target_scores
        .iter()
        .map(|s| {
            let f = generator.features(s);
            let (best, _) =
                aux.iter()
                    .enumerate()
                    .fold((0, f32::INFINITY), |(best, dist), (i, a)| {
                        let d: f32 = a.iter().zip(&f).map(|(x, y)| (x - y) * (x - y)).sum();
                        if d < dist {
                            (i, d)
                        } else {
                            (best, dist)
                        }
                    });
            aux_images[best].clone()
        })
        .collect())
}
