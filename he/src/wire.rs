//! The byte format of every encoded object.
//!
//! # Layout
//!
//! Every object is a [`HEADER_SIZE`]-byte header followed by a body, all integers
//! little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `HEIS` |
//! | 4 | 2 | format version ([`VERSION`]) |
//! | 6 | 2 | object kind ([`Kind`]) |
//! | 8 | 8 | parameter fingerprint ([`crate::params::HeParams::fingerprint`]) |
//! | 16 | 4 | body length in bytes |
//!
//! A polynomial is its residues as `u64`, limb after limb; decoders check every residue
//! against its prime. Decoders check the declared body length against the exact length the
//! parameters imply **before** allocating, and return a [`WireError`] (never panic) for
//! anything malformed, truncated, oversized, of the wrong kind or of other parameters.

use alloc::vec::Vec;
use core::fmt;

use heist_core::rns::{RnsBasis, RnsPoly};

use crate::params::ParamsError;

/// The magic bytes that open every object.
pub const MAGIC: [u8; 4] = *b"HEIS";
/// The format version written and accepted.
pub const VERSION: u16 = 1;
/// The header size in bytes.
pub const HEADER_SIZE: usize = 20;
/// The largest body any decoder accepts (1 GiB).
pub const MAX_BODY: usize = 1 << 30;

const _: () = assert!(HEADER_SIZE == 4 + 2 + 2 + 8 + 4);

/// The kind of an encoded object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// Common parameters ([`crate::params::HeParams`]).
    Params,
    /// CKKS parameters.
    CkksParams,
    /// A secret key.
    SecretKey,
    /// A public key.
    PublicKey,
    /// A relinearisation key.
    RelinKey,
    /// A set of Galois keys.
    GaloisKeys,
    /// A CKKS plaintext.
    CkksPlaintext,
    /// A CKKS ciphertext, both polynomials in full.
    CkksCiphertext,
    /// A CKKS ciphertext whose uniform polynomial is replaced by its 32-byte seed.
    CkksCiphertextSeeded,
    /// BFV parameters.
    BfvParams,
    /// A BFV plaintext.
    BfvPlaintext,
    /// A BFV ciphertext.
    BfvCiphertext,
    /// A seed-compressed BFV ciphertext.
    BfvCiphertextSeeded,
}

impl Kind {
    /// The code written in the header.
    pub fn code(self) -> u16 {
        match self {
            Self::Params => 1,
            Self::CkksParams => 2,
            Self::SecretKey => 3,
            Self::PublicKey => 4,
            Self::RelinKey => 5,
            Self::GaloisKeys => 6,
            Self::CkksPlaintext => 0x10,
            Self::CkksCiphertext => 0x11,
            Self::CkksCiphertextSeeded => 0x12,
            Self::BfvParams => 0x20,
            Self::BfvPlaintext => 0x21,
            Self::BfvCiphertext => 0x22,
            Self::BfvCiphertextSeeded => 0x23,
        }
    }
}

/// An error decoding bytes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WireError {
    /// Fewer bytes than needed.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The magic is not `HEIS`.
    BadMagic {
        /// The bytes found.
        found: [u8; 4],
    },
    /// An unsupported format version.
    BadVersion {
        /// The version found.
        found: u16,
    },
    /// The object is of another kind.
    WrongKind {
        /// The kind code expected.
        expected: u16,
        /// The kind code found.
        found: u16,
    },
    /// The object belongs to other parameters.
    ForeignParams {
        /// The fingerprint of the parameters in use.
        expected: u64,
        /// The fingerprint found.
        found: u64,
    },
    /// The declared body length is not the one the contents imply.
    BadLength {
        /// The declared length.
        declared: usize,
        /// The length implied by the parameters and the body's own counts.
        expected: usize,
    },
    /// A length or count exceeds its bound.
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// The value found.
        value: u64,
        /// The largest value accepted.
        max: u64,
    },
    /// A residue is not below its prime.
    ResidueOutOfRange {
        /// The limb (prime index).
        limb: usize,
        /// The residue found.
        value: u64,
        /// The prime.
        prime: u64,
    },
    /// A field holds an invalid value.
    BadValue {
        /// The field.
        what: &'static str,
        /// The value found (floating-point fields as their bit pattern).
        value: u64,
    },
    /// Bytes are left after the object.
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The encoded parameters are invalid.
    Params(ParamsError),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, available } => {
                write!(f, "truncated: need {needed} bytes, have {available}")
            }
            Self::BadMagic { found } => write!(f, "bad magic {found:02x?}, expected \"HEIS\""),
            Self::BadVersion { found } => {
                write!(f, "unsupported format version {found}, expected {VERSION}")
            }
            Self::WrongKind { expected, found } => {
                write!(f, "object kind {found:#x}, expected {expected:#x}")
            }
            Self::ForeignParams { expected, found } => write!(
                f,
                "object of other parameters: fingerprint {found:#018x}, expected {expected:#018x}"
            ),
            Self::BadLength { declared, expected } => {
                write!(f, "declared body length {declared}, expected {expected}")
            }
            Self::TooLarge { what, value, max } => {
                write!(f, "{what} {value} exceeds the bound {max}")
            }
            Self::ResidueOutOfRange { limb, value, prime } => {
                write!(
                    f,
                    "residue {value} in limb {limb} is not below its prime {prime}"
                )
            }
            Self::BadValue { what, value } => write!(f, "invalid {what}: {value}"),
            Self::TrailingBytes { count } => write!(f, "{count} trailing bytes after the object"),
            Self::Params(e) => write!(f, "invalid parameters: {e}"),
        }
    }
}

impl core::error::Error for WireError {}

impl From<ParamsError> for WireError {
    fn from(e: ParamsError) -> Self {
        Self::Params(e)
    }
}

/// Appends little-endian fields to a buffer that starts with a header; [`Writer::finish`]
/// fills in the body length.
#[derive(Debug)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Starts an object of `kind` for parameters with `fingerprint`, reserving `body` bytes.
    pub fn new(kind: Kind, fingerprint: u64, body: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADER_SIZE + body);
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&VERSION.to_le_bytes());
        buf.extend_from_slice(&kind.code().to_le_bytes());
        buf.extend_from_slice(&fingerprint.to_le_bytes());
        buf.extend_from_slice(&0u32.to_le_bytes());
        Self { buf }
    }

    /// Appends a byte.
    pub fn u8(&mut self, x: u8) {
        self.buf.push(x);
    }

    /// Appends a `u32`.
    pub fn u32(&mut self, x: u32) {
        self.buf.extend_from_slice(&x.to_le_bytes());
    }

    /// Appends a `u64`.
    pub fn u64(&mut self, x: u64) {
        self.buf.extend_from_slice(&x.to_le_bytes());
    }

    /// Appends an `f64` as its bit pattern.
    pub fn f64(&mut self, x: f64) {
        self.u64(x.to_bits());
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Appends every residue of a polynomial.
    pub fn poly<R>(&mut self, p: &RnsPoly<R>) {
        for &x in p.as_slice() {
            self.u64(x);
        }
    }

    /// The finished object, body length filled in.
    ///
    /// # Panics
    /// If the body exceeds [`MAX_BODY`] (no decoder would accept it).
    pub fn finish(mut self) -> Vec<u8> {
        let body = self.buf.len() - HEADER_SIZE;
        assert!(
            body <= MAX_BODY,
            "encoded body of {body} bytes exceeds {MAX_BODY}"
        );
        self.buf[16..20].copy_from_slice(&(body as u32).to_le_bytes());
        self.buf
    }
}

/// The decoded header of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The kind code.
    pub kind: u16,
    /// The parameter fingerprint.
    pub fingerprint: u64,
    /// The body length.
    pub body_len: usize,
}

/// Parses and checks the header: magic, version, kind `expected`, body length equal to what
/// follows. The fingerprint is returned, not checked.
///
/// # Errors
/// [`WireError::Truncated`], [`WireError::BadMagic`], [`WireError::BadVersion`],
/// [`WireError::WrongKind`], [`WireError::TooLarge`], [`WireError::BadLength`],
/// [`WireError::TrailingBytes`].
pub fn read_header(bytes: &[u8], expected: Kind) -> Result<(Header, Reader<'_>), WireError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let magic = r.array::<4>()?;
    if magic != MAGIC {
        return Err(WireError::BadMagic { found: magic });
    }
    let version = r.u16()?;
    if version != VERSION {
        return Err(WireError::BadVersion { found: version });
    }
    let kind = r.u16()?;
    if kind != expected.code() {
        return Err(WireError::WrongKind {
            expected: expected.code(),
            found: kind,
        });
    }
    let fingerprint = r.u64()?;
    let body_len = r.u32()? as usize;
    if body_len > MAX_BODY {
        return Err(WireError::TooLarge {
            what: "body length",
            value: body_len as u64,
            max: MAX_BODY as u64,
        });
    }
    let available = bytes.len() - HEADER_SIZE;
    if available < body_len {
        return Err(WireError::Truncated {
            needed: HEADER_SIZE + body_len,
            available: bytes.len(),
        });
    }
    if available > body_len {
        return Err(WireError::TrailingBytes {
            count: available - body_len,
        });
    }
    Ok((
        Header {
            kind,
            fingerprint,
            body_len,
        },
        r,
    ))
}

/// Checks the header's fingerprint against the parameters in use.
///
/// # Errors
/// [`WireError::ForeignParams`].
pub fn check_fingerprint(header: &Header, expected: u64) -> Result<(), WireError> {
    if header.fingerprint == expected {
        Ok(())
    } else {
        Err(WireError::ForeignParams {
            expected,
            found: header.fingerprint,
        })
    }
}

/// Checks a declared body length against the exact length the contents imply.
///
/// # Errors
/// [`WireError::BadLength`].
pub fn check_len(header: &Header, expected: usize) -> Result<(), WireError> {
    if header.body_len == expected {
        Ok(())
    } else {
        Err(WireError::BadLength {
            declared: header.body_len,
            expected,
        })
    }
}

/// A bounded little-endian reader over the body of an object.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Takes the next `len` bytes.
    ///
    /// # Errors
    /// [`WireError::Truncated`].
    pub fn take(&mut self, len: usize) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(len).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(WireError::Truncated {
                needed: self.pos.saturating_add(len),
                available: self.buf.len(),
            }),
        }
    }

    fn array<const K: usize>(&mut self) -> Result<[u8; K], WireError> {
        let mut out = [0u8; K];
        out.copy_from_slice(self.take(K)?);
        Ok(out)
    }

    /// Reads a byte.
    ///
    /// # Errors
    /// [`WireError::Truncated`].
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a `u16`.
    ///
    /// # Errors
    /// [`WireError::Truncated`].
    pub fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// Reads a `u32`.
    ///
    /// # Errors
    /// [`WireError::Truncated`].
    pub fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// Reads a `u64`.
    ///
    /// # Errors
    /// [`WireError::Truncated`].
    pub fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Reads a finite `f64`.
    ///
    /// # Errors
    /// [`WireError::Truncated`]; [`WireError::BadValue`] for NaN or infinity.
    pub fn f64(&mut self, what: &'static str) -> Result<f64, WireError> {
        let bits = self.u64()?;
        let x = f64::from_bits(bits);
        if x.is_finite() {
            Ok(x)
        } else {
            Err(WireError::BadValue { what, value: bits })
        }
    }

    /// Reads a 32-byte seed.
    ///
    /// # Errors
    /// [`WireError::Truncated`].
    pub fn seed(&mut self) -> Result<[u8; 32], WireError> {
        self.array()
    }

    /// Reads a polynomial of `limbs` limbs over the basis, checking every residue.
    ///
    /// # Errors
    /// [`WireError::Truncated`], [`WireError::ResidueOutOfRange`], [`WireError::TooLarge`]
    /// when `limbs` exceeds the basis.
    pub fn poly<R>(&mut self, basis: &RnsBasis, limbs: usize) -> Result<RnsPoly<R>, WireError> {
        if limbs == 0 || limbs > basis.len() {
            return Err(WireError::TooLarge {
                what: "limb count",
                value: limbs as u64,
                max: basis.len() as u64,
            });
        }
        let n = basis.n();
        let raw = self.take(limbs * n * 8)?;
        let mut data = Vec::with_capacity(limbs * n);
        for (idx, chunk) in raw.chunks_exact(8).enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            let x = u64::from_le_bytes(b);
            let limb = idx / n;
            let prime = basis.modulus(limb).value();
            if x >= prime {
                return Err(WireError::ResidueOutOfRange {
                    limb,
                    value: x,
                    prime,
                });
            }
            data.push(x);
        }
        Ok(RnsPoly::from_vec(n, limbs, data))
    }

    /// The number of bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
}
