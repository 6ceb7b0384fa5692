//! Payload layouts of the frame kinds (all integers and floats little-endian).
//!
//! | kind | payload |
//! |---|---|
//! | `Query` | `count: u32`, then `count` images of [`IMAGE_PIXELS`] `f32` each, each in `[0, 1]` |
//! | `Scores` | `count: u32`, then `count` × [`CLASSES`] finite `f32` |
//! | `Setup` | `scheme: u8` ([`Scheme::id`]), then the evaluation context (opaque, the rest) |
//! | `SetupOk` | empty |
//! | `Evaluate`, `Evaluated` | opaque bytes of the [`Scheme`]'s codec |
//! | `Error` | `code: u16` ([`ErrorCode`]), then a UTF-8 message of at most [`MAX_ERROR_MESSAGE`] bytes |
//!
//! Every decoder checks the count against a caller's maximum and the exact length before
//! reading any value, and refuses zero counts.

use super::scheme::Scheme;
use crate::oracle::{Image, ImageError, Scores, CLASSES, IMAGE_PIXELS};

/// Longest error message sent or accepted, in bytes.
pub const MAX_ERROR_MESSAGE: usize = 1024;
/// Bytes of one encoded image.
pub const IMAGE_BYTES: usize = IMAGE_PIXELS * 4;
/// Bytes of one encoded score vector.
pub const SCORES_BYTES: usize = CLASSES * 4;
/// Bytes of the count prefix of `Query` and `Scores` payloads.
pub const COUNT_BYTES: usize = 4;

/// Why a payload does not decode.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// Shorter than its fixed prefix.
    #[error("payload of {found} bytes is shorter than its {needed}-byte prefix")]
    TooShort {
        /// Prefix length.
        needed: usize,
        /// Payload length.
        found: usize,
    },
    /// The count is zero.
    #[error("payload announces zero items")]
    Empty,
    /// The count exceeds the receiver's maximum (or what the encoding can say).
    #[error("payload announces {count} items, at most {max} accepted")]
    TooMany {
        /// Items announced or given.
        count: u64,
        /// The maximum.
        max: u64,
    },
    /// The length does not match the count.
    #[error("payload of {found} bytes, but {count} items need {expected}")]
    LengthMismatch {
        /// Items announced.
        count: u64,
        /// Bytes they need.
        expected: u64,
        /// Bytes there are.
        found: usize,
    },
    /// An image's pixels are not all in `[0, 1]`.
    #[error("image {image}: {error}")]
    Image {
        /// Index of the image in the payload.
        image: usize,
        /// What is wrong with it.
        error: ImageError,
    },
    /// A score is NaN or infinite.
    #[error("scores {index}: class {class} has the non-finite score {value}")]
    NonFiniteScore {
        /// Index of the score vector in the payload.
        index: usize,
        /// The class.
        class: usize,
        /// Its value.
        value: f32,
    },
    /// The scheme byte names no [`Scheme`].
    #[error("unknown scheme id {found}")]
    UnknownScheme {
        /// The byte found.
        found: u8,
    },
    /// The error code names no [`ErrorCode`].
    #[error("unknown error code {found}")]
    UnknownErrorCode {
        /// The code found.
        found: u16,
    },
    /// An error message longer than [`MAX_ERROR_MESSAGE`].
    #[error("error message of {len} bytes exceeds {MAX_ERROR_MESSAGE}")]
    MessageTooLong {
        /// Its length.
        len: usize,
    },
    /// An error message that is not UTF-8.
    #[error("error message is not UTF-8 after byte {valid_up_to}")]
    InvalidUtf8 {
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// A payload that must be empty is not.
    #[error("payload must be empty, has {len} bytes")]
    NotEmpty {
        /// Its length.
        len: usize,
    },
}

/// Reads the `u32` count prefix, checks `1 ≤ count ≤ max` and that the rest holds exactly
/// `count` items of `item_bytes`; returns the items' bytes.
fn counted(payload: &[u8], max: usize, item_bytes: usize) -> Result<&[u8], PayloadError> {
    let (prefix, body) =
        payload
            .split_first_chunk::<COUNT_BYTES>()
            .ok_or(PayloadError::TooShort {
                needed: COUNT_BYTES,
                found: payload.len(),
            })?;
    let count = u32::from_le_bytes(*prefix);
    if count == 0 {
        return Err(PayloadError::Empty);
    }
    let count = u64::from(count);
    if count > max as u64 {
        return Err(PayloadError::TooMany {
            count,
            max: max as u64,
        });
    }
    let expected = count * item_bytes as u64;
    if body.len() as u64 != expected {
        return Err(PayloadError::LengthMismatch {
            count,
            expected: expected + COUNT_BYTES as u64,
            found: payload.len(),
        });
    }
    Ok(body)
}

/// The `u32` count prefix for `count` items.
fn count_prefix(count: usize) -> Result<[u8; COUNT_BYTES], PayloadError> {
    if count == 0 {
        return Err(PayloadError::Empty);
    }
    u32::try_from(count)
        .map(u32::to_le_bytes)
        .map_err(|_| PayloadError::TooMany {
            count: count as u64,
            max: u64::from(u32::MAX),
        })
}

fn f32s(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

/// Encodes images as a `Query` payload (also the plaintext batch layout).
pub fn encode_images(images: &[Image]) -> Result<Vec<u8>, PayloadError> {
    let prefix = count_prefix(images.len())?;
    let mut out = Vec::with_capacity(COUNT_BYTES + images.len() * IMAGE_BYTES);
    out.extend_from_slice(&prefix);
    for image in images {
        out.extend(image.pixels().iter().flat_map(|p| p.to_le_bytes()));
    }
    Ok(out)
}

/// Decodes a `Query` payload of at most `max` images.
pub fn decode_images(payload: &[u8], max: usize) -> Result<Vec<Image>, PayloadError> {
    let body = counted(payload, max, IMAGE_BYTES)?;
    body.chunks_exact(IMAGE_BYTES)
        .enumerate()
        .map(|(index, bytes)| {
            let pixels: Vec<f32> = f32s(bytes).collect();
            Image::new(&pixels).map_err(|error| PayloadError::Image {
                image: index,
                error,
            })
        })
        .collect()
}

/// Encodes score vectors as a `Scores` payload; every score must be finite.
pub fn encode_scores(scores: &[Scores]) -> Result<Vec<u8>, PayloadError> {
    check_finite(scores)?;
    let prefix = count_prefix(scores.len())?;
    let mut out = Vec::with_capacity(COUNT_BYTES + scores.len() * SCORES_BYTES);
    out.extend_from_slice(&prefix);
    for vector in scores {
        out.extend(vector.iter().flat_map(|s| s.to_le_bytes()));
    }
    Ok(out)
}

/// Decodes a `Scores` payload of at most `max` vectors, each score finite.
pub fn decode_scores(payload: &[u8], max: usize) -> Result<Vec<Scores>, PayloadError> {
    let body = counted(payload, max, SCORES_BYTES)?;
    let scores: Vec<Scores> = body
        .chunks_exact(SCORES_BYTES)
        .map(|bytes| {
            let mut vector = [0f32; CLASSES];
            for (slot, value) in vector.iter_mut().zip(f32s(bytes)) {
                *slot = value;
            }
            vector
        })
        .collect();
    check_finite(&scores)?;
    Ok(scores)
}

fn check_finite(scores: &[Scores]) -> Result<(), PayloadError> {
    for (index, vector) in scores.iter().enumerate() {
        if let Some((class, &value)) = vector.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(PayloadError::NonFiniteScore {
                index,
                class,
                value,
            });
        }
    }
    Ok(())
}

/// The first frame on a trusted party → compute server connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    /// The scheme the trusted party encodes batches with.
    pub scheme: Scheme,
    /// The codec's evaluation context ([`super::BatchCodec::evaluation_context`]).
    pub context: Vec<u8>,
}

impl Setup {
    /// The `Setup` payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.context.len());
        out.push(self.scheme.id());
        out.extend_from_slice(&self.context);
        out
    }

    /// The length of a `Setup` payload with a context of `context_len` bytes.
    pub fn encoded_len(context_len: usize) -> usize {
        1 + context_len
    }

    /// Decodes a `Setup` payload.
    pub fn decode(payload: &[u8]) -> Result<Self, PayloadError> {
        let (&id, context) = payload.split_first().ok_or(PayloadError::TooShort {
            needed: 1,
            found: 0,
        })?;
        let scheme = Scheme::from_id(id).ok_or(PayloadError::UnknownScheme { found: id })?;
        Ok(Self {
            scheme,
            context: context.to_vec(),
        })
    }
}

/// Checks that a payload that must be empty (`SetupOk`) is.
pub fn expect_empty(payload: &[u8]) -> Result<(), PayloadError> {
    if payload.is_empty() {
        Ok(())
    } else {
        Err(PayloadError::NotEmpty { len: payload.len() })
    }
}

/// What went wrong, as told to the peer in an `Error` frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame header was invalid; the connection is closed after this reply.
    BadFrame = 1,
    /// The payload did not decode.
    BadPayload = 2,
    /// The kind is not one this peer accepts here.
    UnexpectedKind = 3,
    /// The server is at its connection limit.
    Overloaded = 4,
    /// The trusted party could not reach the compute server, or lost it.
    Unavailable = 5,
    /// The compute server runs another scheme than the trusted party.
    SchemeMismatch = 6,
    /// Encoding, evaluation or decoding of a batch failed.
    Evaluation = 7,
    /// A request's authentication tag is missing or wrong, or the request is a replay.
    Unauthenticated = 8,
}

impl ErrorCode {
    /// Every code, in wire order.
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::BadFrame,
        ErrorCode::BadPayload,
        ErrorCode::UnexpectedKind,
        ErrorCode::Overloaded,
        ErrorCode::Unavailable,
        ErrorCode::SchemeMismatch,
        ErrorCode::Evaluation,
        ErrorCode::Unauthenticated,
    ];

    /// The code with this wire value, if any.
    pub fn from_u16(value: u16) -> Option<Self> {
        ErrorCode::ALL
            .into_iter()
            .find(|code| *code as u16 == value)
    }
}

/// The payload of an `Error` frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ErrorReply {
    /// What went wrong.
    pub code: ErrorCode,
    /// For a person; cut to [`MAX_ERROR_MESSAGE`] bytes (at a character boundary) when sent.
    pub message: String,
}

impl ErrorReply {
    /// A reply with `message` cut to at most [`MAX_ERROR_MESSAGE`] bytes.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_ERROR_MESSAGE {
            let cut = (0..=MAX_ERROR_MESSAGE)
                .rev()
                .find(|&i| message.is_char_boundary(i))
                .unwrap_or(0);
            message.truncate(cut);
        }
        Self { code, message }
    }

    /// The `Error` payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.message.len());
        out.extend_from_slice(&(self.code as u16).to_le_bytes());
        out.extend_from_slice(self.message.as_bytes());
        out
    }

    /// Decodes an `Error` payload.
    pub fn decode(payload: &[u8]) -> Result<Self, PayloadError> {
        let (code, message) = payload
            .split_first_chunk::<2>()
            .ok_or(PayloadError::TooShort {
                needed: 2,
                found: payload.len(),
            })?;
        let code = u16::from_le_bytes(*code);
        let code =
            ErrorCode::from_u16(code).ok_or(PayloadError::UnknownErrorCode { found: code })?;
        if message.len() > MAX_ERROR_MESSAGE {
            return Err(PayloadError::MessageTooLong { len: message.len() });
        }
        let message = std::str::from_utf8(message).map_err(|e| PayloadError::InvalidUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        Ok(Self {
            code,
            message: message.to_owned(),
        })
    }
}
