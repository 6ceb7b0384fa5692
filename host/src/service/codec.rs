//! Where the cryptography plugs in: [`BatchCodec`] on the trusted party, [`BatchEvaluator`]
//! on the compute server. The service moves their payloads as opaque bytes.
//!
//! [`PlaintextCodec`] and [`PlaintextEvaluator`] are the reference pair. They do **not**
//! encrypt anything: the batch travels as plain pixels and the compute server sees every
//! image. They exist to test the plumbing and to compare an encrypted pair against.

use super::message::{self, PayloadError};
use super::scheme::Scheme;
use crate::oracle::{Classifier, Image, Scores};

impl CodecError {
    /// [`CodecError::BatchSize`] unless `count` images fit `slots` (and are at least one).
    pub fn check_batch(count: usize, slots: usize) -> Result<(), CodecError> {
        if count == 0 || count > slots {
            return Err(CodecError::BatchSize { count, slots });
        }
        Ok(())
    }
}

/// Why a codec or evaluator failed on a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The batch does not fit the slots (or is empty).
    #[error("a batch holds 1 to {slots} images, got {count}")]
    BatchSize {
        /// Images given.
        count: usize,
        /// Slots available.
        slots: usize,
    },
    /// A codec was asked for zero slots or more than a `u32` can count.
    #[error("slot count {slots} is not in 1..=4294967295")]
    InvalidSlots {
        /// The slot count asked for.
        slots: usize,
    },
    /// A payload did not decode.
    #[error("malformed batch payload: {0}")]
    Payload(PayloadError),
    /// The decrypted batch holds another number of results than was encrypted.
    #[error("evaluated batch holds {found} results, expected {expected}")]
    CountMismatch {
        /// Images encrypted.
        expected: usize,
        /// Results found.
        found: usize,
    },
    /// The evaluation context is not one this evaluator can use.
    #[error("invalid evaluation context: {reason}")]
    Context {
        /// Why.
        reason: String,
    },
    /// An error of the scheme's implementation.
    #[error("{scheme} backend: {error}")]
    Backend {
        /// The scheme.
        scheme: Scheme,
        /// The implementation's error.
        error: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<PayloadError> for CodecError {
    fn from(error: PayloadError) -> Self {
        Self::Payload(error)
    }
}

/// The trusted party's half: holds the secret key, packs images into the slots of one
/// batch, encrypts it, and decrypts the evaluated batch back into one score vector per slot.
///
/// The service calls it from one thread only, one batch at a time, in this order per batch:
/// `encrypt_batch(images)` → (payload travels to the compute server) →
/// `decrypt_batch(evaluated, images.len())`.
pub trait BatchCodec: Send {
    /// The scheme; the compute server must run the same one.
    fn scheme(&self) -> Scheme;

    /// Images per batch (SIMD slots). A batch closes when it holds this many images.
    fn slots(&self) -> usize;

    /// Public material the compute server needs to evaluate this codec's batches
    /// (parameters, evaluation/relinearisation/Galois keys; never the secret key). Sent
    /// once per connection in the `Setup` frame and handed to
    /// [`BatchEvaluator::open_session`].
    fn evaluation_context(&self) -> Result<Vec<u8>, CodecError>;

    /// Encodes and encrypts `1 ..= slots()` images, image `i` in slot `i`.
    fn encrypt_batch(&mut self, images: &[Image]) -> Result<Vec<u8>, CodecError>;

    /// Decrypts an evaluated batch and returns the scores of the first `count` slots, in
    /// slot order. `count` is the number of images given to the matching `encrypt_batch`.
    /// `payload` comes from the network: it must be checked, never trusted.
    fn decrypt_batch(&mut self, payload: &[u8], count: usize) -> Result<Vec<Scores>, CodecError>;
}

/// The compute server's half: holds the model and evaluation keys only, and evaluates
/// batches without seeing what is in them.
///
/// One value serves every connection (from several threads at once); each trusted-party
/// connection opens its own [`BatchEvaluator::Session`] from the context it sends.
pub trait BatchEvaluator: Send + Sync {
    /// Per-connection state built from an evaluation context (for example, decoded
    /// evaluation keys).
    type Session: Send;

    /// The scheme; a trusted party with another one is refused.
    fn scheme(&self) -> Scheme;

    /// Checks and decodes an evaluation context (from the network: untrusted).
    fn open_session(&self, context: &[u8]) -> Result<Self::Session, CodecError>;

    /// Evaluates the network on an encrypted batch and returns the encrypted scores.
    /// `payload` comes from the network: it must be checked, never trusted.
    fn evaluate(&self, session: &Self::Session, payload: &[u8]) -> Result<Vec<u8>, CodecError>;

    /// The most bytes an evaluation context can take (the exact size where it is fixed):
    /// a compute server refuses a larger `Setup` before reading its payload.
    fn max_context_len(&self) -> usize;

    /// The most bytes an encrypted batch of `session` can take: a compute server refuses a
    /// larger `Evaluate` before reading its payload.
    fn max_batch_len(&self, session: &Self::Session) -> usize;
}

/// A batch codec that does **not** encrypt: the batch is the plain pixels
/// ([`message::encode_images`] layout) and the results plain scores. For tests and
/// comparison only.
#[derive(Debug)]
pub struct PlaintextCodec {
    slots: usize,
    /// The slot count as a little-endian `u32`: the evaluation context.
    context: [u8; 4],
}

impl PlaintextCodec {
    /// A codec with `slots` images per batch; fails unless `1 ≤ slots ≤ u32::MAX`.
    pub fn new(slots: usize) -> Result<Self, CodecError> {
        match u32::try_from(slots) {
            Ok(count) if count > 0 => Ok(Self {
                slots,
                context: count.to_le_bytes(),
            }),
            _ => Err(CodecError::InvalidSlots { slots }),
        }
    }
}

impl BatchCodec for PlaintextCodec {
    fn scheme(&self) -> Scheme {
        Scheme::Plain
    }

    fn slots(&self) -> usize {
        self.slots
    }

    /// The slot count as a `u32`, so the evaluator can bound the batches it decodes.
    fn evaluation_context(&self) -> Result<Vec<u8>, CodecError> {
        Ok(self.context.to_vec())
    }

    fn encrypt_batch(&mut self, images: &[Image]) -> Result<Vec<u8>, CodecError> {
        CodecError::check_batch(images.len(), self.slots)?;
        Ok(message::encode_images(images)?)
    }

    fn decrypt_batch(&mut self, payload: &[u8], count: usize) -> Result<Vec<Scores>, CodecError> {
        let scores = message::decode_scores(payload, self.slots)?;
        if scores.len() != count {
            return Err(CodecError::CountMismatch {
                expected: count,
                found: scores.len(),
            });
        }
        Ok(scores)
    }
}

/// A batch evaluator that runs a plaintext [`Classifier`] on plain pixels: it sees every image.
/// The counterpart of [`PlaintextCodec`]; for tests and comparison only.
#[derive(Debug)]
pub struct PlaintextEvaluator<K> {
    classifier: K,
}

impl<K> PlaintextEvaluator<K> {
    /// Evaluates with `classifier`.
    pub fn new(classifier: K) -> Self {
        Self { classifier }
    }
}

/// A plaintext session: the slot count the trusted party announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaintextSession {
    slots: usize,
}

impl<K: Classifier + Send + Sync> BatchEvaluator for PlaintextEvaluator<K> {
    type Session = PlaintextSession;

    fn scheme(&self) -> Scheme {
        Scheme::Plain
    }

    fn open_session(&self, context: &[u8]) -> Result<PlaintextSession, CodecError> {
        let slots: [u8; 4] = context.try_into().map_err(|_| CodecError::Context {
            reason: format!("expected a 4-byte slot count, got {} bytes", context.len()),
        })?;
        match usize::try_from(u32::from_le_bytes(slots)) {
            Ok(slots) if slots > 0 => Ok(PlaintextSession { slots }),
            _ => Err(CodecError::Context {
                reason: format!("invalid slot count {}", u32::from_le_bytes(slots)),
            }),
        }
    }

    fn max_context_len(&self) -> usize {
        4
    }

    fn max_batch_len(&self, session: &PlaintextSession) -> usize {
        message::COUNT_BYTES + session.slots.saturating_mul(message::IMAGE_BYTES)
    }

    fn evaluate(&self, session: &PlaintextSession, payload: &[u8]) -> Result<Vec<u8>, CodecError> {
        let images = message::decode_images(payload, session.slots)?;
        let scores = self.classifier.scores_batch(&images);
        Ok(message::encode_scores(&scores)?)
    }
}
