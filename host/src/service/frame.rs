//! The frame: the unit of the service's binary protocol, on every connection
//! (client ↔ trusted party and trusted party ↔ compute server).
//!
//! A frame is a fixed 20-byte header followed by the payload; all integers little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic [`MAGIC`] |
//! | 4 | 2 | protocol version [`VERSION`] |
//! | 6 | 1 | message kind ([`Kind`]) |
//! | 7 | 1 | reserved, must be 0 |
//! | 8 | 8 | request id (a reply repeats the id of its request) |
//! | 16 | 4 | payload length in bytes |
//!
//! Decoding checks the header field by field, in that order, and bounds the payload length
//! by a maximum the receiver chooses *before* reading or allocating the payload. What the
//! payload of each kind holds is in [`super::message`].

use std::io::{self, Read, Write};

/// The first four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"HEIS";
/// The protocol version this build speaks; any other is refused.
pub const VERSION: u16 = 1;
/// Bytes in a frame header.
pub const HEADER_LEN: usize = 20;
const _: () = assert!(HEADER_LEN == MAGIC.len() + 2 + 1 + 1 + 8 + 4);

/// What a frame carries; the byte at offset 6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// Client → trusted party: images to classify.
    Query = 1,
    /// Trusted party → client: the scores of each queried image.
    Scores = 2,
    /// Trusted party → compute server, first frame of a connection: scheme and evaluation
    /// context (public material such as evaluation keys).
    Setup = 3,
    /// Compute server → trusted party: the setup was accepted.
    SetupOk = 4,
    /// Trusted party → compute server: an encoded (later: encrypted) batch.
    Evaluate = 5,
    /// Compute server → trusted party: the evaluated batch.
    Evaluated = 6,
    /// Either way: the request failed; code and message.
    Error = 7,
}

impl Kind {
    /// Every kind, in wire order.
    pub const ALL: [Kind; 7] = [
        Kind::Query,
        Kind::Scores,
        Kind::Setup,
        Kind::SetupOk,
        Kind::Evaluate,
        Kind::Evaluated,
        Kind::Error,
    ];

    /// The kind with this wire byte, if any.
    pub fn from_byte(byte: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| *kind as u8 == byte)
    }
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Fewer bytes than the header or the announced payload needs.
    #[error("truncated frame: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// The first four bytes are not [`MAGIC`].
    #[error("bad magic {found:02x?}, expected {MAGIC:02x?}")]
    BadMagic {
        /// The bytes found.
        found: [u8; 4],
    },
    /// The version is not [`VERSION`].
    #[error("unsupported protocol version {found}, this build speaks {VERSION}")]
    UnsupportedVersion {
        /// The version found.
        found: u16,
    },
    /// The kind byte names no [`Kind`].
    #[error("unknown message kind {found}")]
    UnknownKind {
        /// The byte found.
        found: u8,
    },
    /// The reserved byte is not zero.
    #[error("reserved header byte is {found}, must be 0")]
    ReservedNonZero {
        /// The byte found.
        found: u8,
    },
    /// The payload is longer than the receiver accepts (or than a `u32` can say).
    #[error("payload of {len} bytes exceeds the maximum of {max}")]
    PayloadTooLarge {
        /// The announced or given length.
        len: u64,
        /// The maximum.
        max: u64,
    },
}

/// A decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The message kind.
    pub kind: Kind,
    /// The request id.
    pub request_id: u64,
    /// Payload length in bytes, already checked against the receiver's maximum.
    pub payload_len: u32,
}

impl Header {
    /// The header for a payload of `len` bytes; fails if `len` does not fit a `u32`.
    pub fn new(kind: Kind, request_id: u64, len: usize) -> Result<Self, FrameError> {
        let payload_len = u32::try_from(len).map_err(|_| FrameError::PayloadTooLarge {
            len: len as u64,
            max: u64::from(u32::MAX),
        })?;
        Ok(Self {
            kind,
            request_id,
            payload_len,
        })
    }

    /// The header's wire bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&VERSION.to_le_bytes());
        out[6] = self.kind as u8;
        // out[7], the reserved byte, stays 0.
        out[8..16].copy_from_slice(&self.request_id.to_le_bytes());
        out[16..20].copy_from_slice(&self.payload_len.to_le_bytes());
        out
    }

    /// Decodes and checks a header: magic, version, kind, reserved byte, then the payload
    /// length against `max_payload` (inclusive).
    pub fn decode(b: &[u8; HEADER_LEN], max_payload: u32) -> Result<Self, FrameError> {
        Self::decode_limited(b, |_| max_payload)
    }

    /// As [`Self::decode`], with the payload bound depending on the kind: `limit(kind)`
    /// (inclusive).
    pub fn decode_limited(
        b: &[u8; HEADER_LEN],
        limit: impl FnOnce(Kind) -> u32,
    ) -> Result<Self, FrameError> {
        let magic = [b[0], b[1], b[2], b[3]];
        if magic != MAGIC {
            return Err(FrameError::BadMagic { found: magic });
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != VERSION {
            return Err(FrameError::UnsupportedVersion { found: version });
        }
        let kind = Kind::from_byte(b[6]).ok_or(FrameError::UnknownKind { found: b[6] })?;
        if b[7] != 0 {
            return Err(FrameError::ReservedNonZero { found: b[7] });
        }
        let request_id = u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
        let payload_len = u32::from_le_bytes([b[16], b[17], b[18], b[19]]);
        let max_payload = limit(kind);
        if payload_len > max_payload {
            return Err(FrameError::PayloadTooLarge {
                len: u64::from(payload_len),
                max: u64::from(max_payload),
            });
        }
        Ok(Self {
            kind,
            request_id,
            payload_len,
        })
    }
}

/// A whole frame: kind, request id and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The message kind.
    pub kind: Kind,
    /// The request id.
    pub request_id: u64,
    /// The payload bytes (see [`super::message`] for each kind's layout).
    pub payload: Vec<u8>,
}

impl Frame {
    /// Header followed by payload; fails if the payload does not fit a `u32` length.
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        let header = Header::new(self.kind, self.request_id, self.payload.len())?;
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        out.extend_from_slice(&header.encode());
        out.extend_from_slice(&self.payload);
        Ok(out)
    }

    /// Decodes the frame at the start of `bytes`; returns it and the number of bytes it
    /// used (trailing bytes are left to the caller).
    pub fn decode(bytes: &[u8], max_payload: u32) -> Result<(Self, usize), FrameError> {
        let header_bytes: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(FrameError::Truncated {
                needed: HEADER_LEN,
                available: bytes.len(),
            })?;
        let header = Header::decode(header_bytes, max_payload)?;
        let end = HEADER_LEN + header.payload_len as usize;
        let payload = bytes.get(HEADER_LEN..end).ok_or(FrameError::Truncated {
            needed: end,
            available: bytes.len(),
        })?;
        Ok((
            Self {
                kind: header.kind,
                request_id: header.request_id,
                payload: payload.to_vec(),
            },
            end,
        ))
    }

    /// Writes the frame.
    pub fn write_to<W: Write>(&self, writer: &mut W) -> io::Result<()> {
        write_frame(writer, self.kind, self.request_id, &self.payload)
    }

    /// Reads one frame. The payload buffer grows with the bytes that actually arrive, so
    /// a large announced length costs nothing until the bytes are sent.
    pub fn read_from<R: Read>(reader: &mut R, max_payload: u32) -> Result<Self, ReadError> {
        Self::read_limited(reader, |_| max_payload)
    }

    /// As [`Self::read_from`], with the payload bound depending on the kind: a header
    /// announcing more than `limit(kind)` is refused before a payload byte is read.
    pub fn read_limited<R: Read>(
        reader: &mut R,
        limit: impl FnOnce(Kind) -> u32,
    ) -> Result<Self, ReadError> {
        let mut header = [0u8; HEADER_LEN];
        let got = read_full(reader, &mut header)?;
        if got == 0 {
            return Err(ReadError::Closed);
        }
        if got < HEADER_LEN {
            return Err(ReadError::Truncated {
                got,
                expected: HEADER_LEN,
            });
        }
        let header = Header::decode_limited(&header, limit)?;
        let len = header.payload_len as usize;
        let mut payload = Vec::with_capacity(len.min(READ_CHUNK));
        let got = reader
            .take(u64::from(header.payload_len))
            .read_to_end(&mut payload)
            .map_err(ReadError::from_io)?;
        if got < len {
            return Err(ReadError::Truncated {
                got: HEADER_LEN + got,
                expected: HEADER_LEN + len,
            });
        }
        Ok(Self {
            kind: header.kind,
            request_id: header.request_id,
            payload,
        })
    }
}

/// Writes one frame from its parts; fails (writing nothing) if the payload does not fit a
/// `u32` length.
pub fn write_frame<W: Write>(
    writer: &mut W,
    kind: Kind,
    request_id: u64,
    payload: &[u8],
) -> io::Result<()> {
    let header = Header::new(kind, request_id, payload.len())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    writer.write_all(&header.encode())?;
    writer.write_all(payload)?;
    writer.flush()
}

/// Initial payload buffer bound when reading from a stream.
const READ_CHUNK: usize = 64 * 1024;

/// Fills `buf` unless the stream ends first; returns the bytes read.
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> Result<usize, ReadError> {
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..).filter(|rest| !rest.is_empty()) {
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::from_io(e)),
        }
    }
    Ok(got)
}

/// Why no frame could be read from a stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The stream ended cleanly, before the first byte of a frame.
    #[error("connection closed")]
    Closed,
    /// The stream ended inside a frame.
    #[error("connection closed after {got} of {expected} bytes of a frame")]
    Truncated {
        /// Bytes of the frame received.
        got: usize,
        /// Bytes the frame needed.
        expected: usize,
    },
    /// A read timed out.
    #[error("read timed out")]
    TimedOut,
    /// The header is invalid.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Another I/O error.
    #[error("read failed: {0}")]
    Io(io::Error),
}

impl ReadError {
    fn from_io(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Self::TimedOut,
            _ => Self::Io(error),
        }
    }
}
