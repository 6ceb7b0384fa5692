//! A strict reader for the IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed.
//!
//! An IDX file is a 4-byte magic `00 00 TT RR` (`TT` the element type, `RR` the rank),
//! `RR` big-endian `u32` dimensions, then the elements in row-major order. heist reads
//! only unsigned-byte files (`TT = 0x08`) of rank 1 to [`MAX_RANK`]; everything else is
//! rejected with an [`IdxError`] that names the file and carries the offending values.
//!
//! Allocation is bounded: a gzip stream is decompressed at most up to a caller-given limit
//! ([`MAX_IDX_BYTES`] by default), and the size declared by the header is computed with
//! checked arithmetic and must equal the number of bytes that follow it exactly.

use std::io::Read;
use std::path::Path;

/// The largest decompressed IDX file heist accepts by default, in bytes (64 MiB; the
/// largest canonical file, the 60,000 training images, has 47,040,016 bytes).
pub const MAX_IDX_BYTES: usize = 64 << 20;

/// The largest rank accepted (images are rank 3, labels rank 1).
pub const MAX_RANK: u8 = 4;

/// The IDX element-type code for unsigned bytes, the only type heist reads.
pub const TYPE_U8: u8 = 0x08;

/// The two bytes that start a gzip stream (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Why an IDX file was rejected. Every variant names the file it came from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdxError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The gzip stream is corrupt or truncated.
    #[error("{file}: corrupt gzip stream: {source}")]
    Gzip {
        /// The file.
        file: String,
        /// The decompressor's error.
        #[source]
        source: std::io::Error,
    },
    /// The (decompressed) contents exceed the size limit.
    #[error("{file}: more than {limit} bytes after decompression")]
    TooLarge {
        /// The file.
        file: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// The file ends before its header does.
    #[error("{file}: {len} bytes is too short for an IDX header of {needed} bytes")]
    TooShort {
        /// The file.
        file: String,
        /// The number of bytes present.
        len: usize,
        /// The number of header bytes needed.
        needed: usize,
    },
    /// The first two bytes are not zero.
    #[error("{file}: bad IDX magic {magic:02x?} (expected [00, 00])")]
    BadMagic {
        /// The file.
        file: String,
        /// The two bytes found.
        magic: [u8; 2],
    },
    /// The element type is not unsigned byte.
    #[error("{file}: IDX element type {code:#04x} is not supported (only {TYPE_U8:#04x}, unsigned byte)")]
    UnsupportedType {
        /// The file.
        file: String,
        /// The type code found.
        code: u8,
    },
    /// The rank is zero or above [`MAX_RANK`].
    #[error("{file}: IDX rank {rank} is outside 1..={MAX_RANK}")]
    BadRank {
        /// The file.
        file: String,
        /// The rank found.
        rank: u8,
    },
    /// The product of the dimensions overflows or exceeds the size limit.
    #[error("{file}: dimensions {dims:?} declare more than {limit} elements")]
    DeclaredTooLarge {
        /// The file.
        file: String,
        /// The dimensions declared.
        dims: Vec<u32>,
        /// The limit in elements.
        limit: usize,
    },
    /// The number of data bytes differs from what the dimensions declare.
    #[error(
        "{file}: dimensions {dims:?} declare {expected} data bytes but {actual} follow the header"
    )]
    LengthMismatch {
        /// The file.
        file: String,
        /// The dimensions declared.
        dims: Vec<u32>,
        /// The number of bytes declared.
        expected: usize,
        /// The number of bytes present.
        actual: usize,
    },
}

/// A decoded IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first (e.g. `[60000, 28, 28]`).
    pub dims: Vec<u32>,
    /// The elements in row-major order; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

/// Returns `bytes` decompressed if they start with the gzip magic, or unchanged otherwise,
/// reading at most `limit` bytes of output.
///
/// # Errors
/// [`IdxError::Gzip`] for a corrupt stream, [`IdxError::TooLarge`] past `limit`.
pub fn decompress(bytes: Vec<u8>, file: &str, limit: usize) -> Result<Vec<u8>, IdxError> {
    if bytes.get(..2) != Some(&GZIP_MAGIC[..]) {
        if bytes.len() > limit {
            return Err(IdxError::TooLarge {
                file: file.to_owned(),
                limit,
            });
        }
        return Ok(bytes);
    }
    let decoder = flate2::read::MultiGzDecoder::new(bytes.as_slice());
    // Read one byte past the limit so that "exactly at the limit" and "over it" differ.
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::new();
    decoder
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|source| IdxError::Gzip {
            file: file.to_owned(),
            source,
        })?;
    if out.len() > limit {
        return Err(IdxError::TooLarge {
            file: file.to_owned(),
            limit,
        });
    }
    Ok(out)
}

/// Parses decompressed IDX bytes, taking ownership to avoid copying the data.
///
/// # Errors
/// Any [`IdxError`] describing the first violation found.
pub fn parse(mut bytes: Vec<u8>, file: &str) -> Result<IdxArray, IdxError> {
    let err_file = || file.to_owned();
    let (magic, rest) = bytes.split_first_chunk::<4>().ok_or(IdxError::TooShort {
        file: err_file(),
        len: bytes.len(),
        needed: 4,
    })?;
    let [m0, m1, code, rank] = *magic;
    if [m0, m1] != [0, 0] {
        return Err(IdxError::BadMagic {
            file: err_file(),
            magic: [m0, m1],
        });
    }
    if code != TYPE_U8 {
        return Err(IdxError::UnsupportedType {
            file: err_file(),
            code,
        });
    }
    if rank == 0 || rank > MAX_RANK {
        return Err(IdxError::BadRank {
            file: err_file(),
            rank,
        });
    }
    let header = 4 + 4 * usize::from(rank);
    let dim_bytes = rest
        .get(..4 * usize::from(rank))
        .ok_or(IdxError::TooShort {
            file: err_file(),
            len: bytes.len(),
            needed: header,
        })?;
    let dims: Vec<u32> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| {
            acc.checked_mul(usize::try_from(d).ok()?)
                .filter(|&n| n <= MAX_IDX_BYTES)
        })
        .ok_or_else(|| IdxError::DeclaredTooLarge {
            file: err_file(),
            dims: dims.clone(),
            limit: MAX_IDX_BYTES,
        })?;
    let actual = bytes.len() - header;
    if actual != expected {
        return Err(IdxError::LengthMismatch {
            file: err_file(),
            dims,
            expected,
            actual,
        });
    }
    bytes.drain(..header);
    Ok(IdxArray { dims, data: bytes })
}

/// Decodes IDX bytes, raw or gzip, with at most `limit` bytes after decompression.
///
/// # Errors
/// Any [`IdxError`].
pub fn decode(bytes: &[u8], file: &str, limit: usize) -> Result<IdxArray, IdxError> {
    parse(decompress(bytes.to_vec(), file, limit)?, file)
}

/// Reads a file and returns its decompressed bytes (at most [`MAX_IDX_BYTES`]), ready for a
/// checksum and then [`parse`].
///
/// # Errors
/// [`IdxError::Io`], [`IdxError::Gzip`] or [`IdxError::TooLarge`].
pub fn read_decompressed(path: &Path) -> Result<Vec<u8>, IdxError> {
    let file = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| IdxError::Io {
        file: file.clone(),
        source,
    })?;
    // A compressed file is never larger than what it decompresses to for these data.
    if meta.len() > u64::try_from(MAX_IDX_BYTES).unwrap_or(u64::MAX) {
        return Err(IdxError::TooLarge {
            file,
            limit: MAX_IDX_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(|source| IdxError::Io {
        file: file.clone(),
        source,
    })?;
    decompress(bytes, &file, MAX_IDX_BYTES)
}

/// Encodes an unsigned-byte array as raw IDX bytes (the inverse of [`parse`]).
///
/// # Panics
/// If `data.len()` is not the product of `dims` or the rank is outside `1..=MAX_RANK`:
/// both are programming errors of the caller, never properties of input files.
pub fn encode(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let rank = u8::try_from(dims.len()).unwrap_or(u8::MAX);
    assert!(
        (1..=MAX_RANK).contains(&rank),
        "IDX rank {} outside 1..={MAX_RANK}",
        dims.len()
    );
    let count: u64 = dims.iter().map(|&d| u64::from(d)).product();
    assert_eq!(
        Some(count),
        u64::try_from(data.len()).ok(),
        "IDX data length does not match dimensions {dims:?}"
    );
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, TYPE_U8, rank]);
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}
