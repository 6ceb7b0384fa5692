//! Per-request authentication of the client ↔ trusted-party link, for deployments that
//! terminate TLS before the trusted party (or run none): an HMAC-SHA256 under a key the
//! client shares with the trusted party (RustCrypto's `hmac`).
//!
//! With a key, a `Query` payload is `nonce (16 bytes) ‖ tag (32) ‖ images`, where
//! `tag = HMAC(key, "heist query v1" ‖ nonce ‖ images)`, and the `Scores` reply is
//! `tag (32) ‖ scores` with `tag = HMAC(key, "heist scores v1" ‖ nonce ‖ scores)`: the reply
//! is bound to its request, so neither can be rewritten on the way, nor a reply moved to
//! another request. The trusted party refuses a nonce it has seen (within the last
//! [`REPLAY_WINDOW`] requests), so a recorded request cannot be replayed. Tags are compared
//! in constant time. A relay that rewrites images (attack 1's man in the middle) makes the
//! trusted party refuse the request: the client gets an error, never a wrong class.

use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Bytes of a request nonce.
pub const NONCE_BYTES: usize = 16;
/// Bytes of a tag (HMAC-SHA256).
pub const TAG_BYTES: usize = 32;
/// The shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;
/// The longest key file read, in bytes.
pub const MAX_KEY_BYTES: usize = 4096;
/// Nonces the trusted party remembers to refuse replays.
pub const REPLAY_WINDOW: usize = 1 << 16;

const QUERY_LABEL: &[u8] = b"heist query v1";
const SCORES_LABEL: &[u8] = b"heist scores v1";

/// Why authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The key is shorter than [`MIN_KEY_BYTES`] or longer than [`MAX_KEY_BYTES`].
    #[error("a link key has {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, got {0}")]
    KeyLength(usize),
    /// The key file could not be read.
    #[error("link key file {path}: {error}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        error: String,
    },
    /// The payload is too short to hold its nonce and tag.
    #[error("an authenticated payload needs {needed} bytes, got {found}")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        found: usize,
    },
    /// The tag does not match.
    #[error("the authentication tag does not match")]
    BadTag,
    /// The nonce was seen before.
    #[error("replayed request")]
    Replay,
}

/// A key shared by a client and the trusted party; wiped when dropped, never printed.
#[derive(Clone)]
pub struct LinkKey(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(..)")
    }
}

impl LinkKey {
    /// A key of these bytes.
    ///
    /// # Errors
    /// [`AuthError::KeyLength`] outside `[MIN_KEY_BYTES, MAX_KEY_BYTES]`.
    pub fn new(bytes: &[u8]) -> Result<Self, AuthError> {
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&bytes.len()) {
            return Err(AuthError::KeyLength(bytes.len()));
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    /// The key held in a file (its raw bytes, e.g. `head -c 32 /dev/urandom > link.key`).
    ///
    /// # Errors
    /// An unreadable file, or one of the wrong size (checked before reading it whole).
    pub fn from_file(path: &Path) -> Result<Self, AuthError> {
        let fail = |error: String| AuthError::KeyFile {
            path: path.display().to_string(),
            error,
        };
        let len = std::fs::metadata(path)
            .map_err(|e| fail(e.to_string()))?
            .len();
        if len > MAX_KEY_BYTES as u64 {
            return Err(AuthError::KeyLength(
                usize::try_from(len).unwrap_or(usize::MAX),
            ));
        }
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| fail(e.to_string()))?);
        Self::new(&bytes)
    }

    fn mac(&self, label: &[u8], nonce: &[u8], body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(label);
        mac.update(nonce);
        mac.update(body);
        mac
    }
}

/// Splits `n` leading bytes off `payload`.
fn split(payload: &[u8], n: usize) -> Result<(&[u8], &[u8]), AuthError> {
    if payload.len() < n {
        return Err(AuthError::Truncated {
            needed: n,
            found: payload.len(),
        });
    }
    Ok(payload.split_at(n))
}

/// The authenticated `Query` payload for `images` (an encoded image list) under `nonce`.
pub fn seal_query(key: &LinkKey, nonce: &[u8; NONCE_BYTES], images: &[u8]) -> Vec<u8> {
    let tag = key.mac(QUERY_LABEL, nonce, images).finalize().into_bytes();
    let mut out = Vec::with_capacity(NONCE_BYTES + TAG_BYTES + images.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&tag);
    out.extend_from_slice(images);
    out
}

/// Checks an authenticated `Query` payload: its tag, then that its nonce is new to
/// `replays`. Returns the nonce and the encoded images.
///
/// # Errors
/// A short payload, a wrong tag, a replayed nonce.
pub fn open_query<'a>(
    key: &LinkKey,
    payload: &'a [u8],
    replays: &ReplayGuard,
) -> Result<([u8; NONCE_BYTES], &'a [u8]), AuthError> {
    let (head, images) = split(payload, NONCE_BYTES + TAG_BYTES)?;
    let (nonce, tag) = head.split_at(NONCE_BYTES);
    key.mac(QUERY_LABEL, nonce, images)
        .verify_slice(tag)
        .map_err(|_| AuthError::BadTag)?;
    let mut fixed = [0u8; NONCE_BYTES];
    fixed.copy_from_slice(nonce);
    replays.admit(fixed)?;
    Ok((fixed, images))
}

/// The authenticated `Scores` payload answering the request with `nonce`.
pub fn seal_scores(key: &LinkKey, nonce: &[u8; NONCE_BYTES], scores: &[u8]) -> Vec<u8> {
    let tag = key.mac(SCORES_LABEL, nonce, scores).finalize().into_bytes();
    let mut out = Vec::with_capacity(TAG_BYTES + scores.len());
    out.extend_from_slice(&tag);
    out.extend_from_slice(scores);
    out
}

/// Checks an authenticated `Scores` payload answering the request with `nonce`; returns
/// the encoded scores.
///
/// # Errors
/// A short payload or a wrong tag.
pub fn open_scores<'a>(
    key: &LinkKey,
    nonce: &[u8; NONCE_BYTES],
    payload: &'a [u8],
) -> Result<&'a [u8], AuthError> {
    let (tag, scores) = split(payload, TAG_BYTES)?;
    key.mac(SCORES_LABEL, nonce, scores)
        .verify_slice(tag)
        .map_err(|_| AuthError::BadTag)?;
    Ok(scores)
}

/// The nonces seen, as a set and in arrival order (to forget the oldest).
type Seen = (HashSet<[u8; NONCE_BYTES]>, VecDeque<[u8; NONCE_BYTES]>);

/// The nonces of the last [`REPLAY_WINDOW`] authenticated requests.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: Mutex<Seen>,
}

impl ReplayGuard {
    /// Records `nonce`, or refuses it if it was seen within the window.
    ///
    /// # Errors
    /// [`AuthError::Replay`].
    pub fn admit(&self, nonce: [u8; NONCE_BYTES]) -> Result<(), AuthError> {
        let mut guard = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let (set, order) = &mut *guard;
        if !set.insert(nonce) {
            return Err(AuthError::Replay);
        }
        order.push_back(nonce);
        if order.len() > REPLAY_WINDOW {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        Ok(())
    }
}
