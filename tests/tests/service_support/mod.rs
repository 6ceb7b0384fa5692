//! What the service suites share: a seeded linear classifier (the reference model),
//! random images, and a plaintext codec that records its batches.

use std::sync::{Arc, Mutex};

use heist::oracle::{Image, Scores, CLASSES, IMAGE_PIXELS};
use heist::service::{BatchCodec, CodecError, PlaintextCodec, Scheme};
use rand_core::RngCore;

/// A uniform value in `[0, 1]` from 24 random bits.
pub(crate) fn unit(rng: &mut impl RngCore) -> f32 {
    (rng.next_u32() >> 8) as f32 / ((1u32 << 24) - 1) as f32
}

/// A random image, every pixel uniform in `[0, 1]`.
pub(crate) fn random_image(rng: &mut impl RngCore) -> Image {
    let pixels: Vec<f32> = (0..IMAGE_PIXELS).map(|_| unit(rng)).collect();
    Image::new(&pixels).expect("pixels in [0, 1]")
}

/// A linear classifier `scores = W x + b` with weights drawn from `rng` in `[-1, 1]`:
/// different images give different scores, so a misrouted answer shows.
pub(crate) fn linear_classifier(
    rng: &mut impl RngCore,
) -> impl Fn(&Image) -> Scores + Clone + Send + Sync + 'static {
    let weights: Arc<Vec<f32>> = Arc::new(
        (0..CLASSES * (IMAGE_PIXELS + 1))
            .map(|_| 2.0 * unit(rng) - 1.0)
            .collect(),
    );
    move |image: &Image| {
        let mut scores = [0.0; CLASSES];
        for (score, row) in scores
            .iter_mut()
            .zip(weights.chunks_exact(IMAGE_PIXELS + 1))
        {
            let (bias, w) = row.split_last().expect("non-empty row");
            *score = *bias
                + w.iter()
                    .zip(image.pixels())
                    .map(|(a, b)| a * b)
                    .sum::<f32>();
        }
        scores
    }
}

/// A plaintext codec that records the size of every batch it encrypts, and can claim
/// another scheme or send another context.
pub(crate) struct Recording {
    inner: PlaintextCodec,
    batches: Arc<Mutex<Vec<usize>>>,
    pub(crate) scheme: Scheme,
    pub(crate) context: Option<Vec<u8>>,
}

impl Recording {
    pub(crate) fn new(slots: usize) -> (Self, Arc<Mutex<Vec<usize>>>) {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let codec = Self {
            inner: PlaintextCodec::new(slots).expect("valid slots"),
            batches: Arc::clone(&batches),
            scheme: Scheme::Plain,
            context: None,
        };
        (codec, batches)
    }
}

impl BatchCodec for Recording {
    fn scheme(&self) -> Scheme {
        self.scheme
    }
    fn slots(&self) -> usize {
        self.inner.slots()
    }
    fn evaluation_context(&self) -> Result<Vec<u8>, CodecError> {
        match &self.context {
            Some(context) => Ok(context.clone()),
            None => self.inner.evaluation_context(),
        }
    }
    fn encrypt_batch(&mut self, images: &[Image]) -> Result<Vec<u8>, CodecError> {
        self.batches
            .lock()
            .expect("not poisoned")
            .push(images.len());
        self.inner.encrypt_batch(images)
    }
    fn decrypt_batch(&mut self, payload: &[u8], count: usize) -> Result<Vec<Scores>, CodecError> {
        self.inner.decrypt_batch(payload, count)
    }
}
