//! Encoding of CKKS parameters, plaintexts and ciphertexts (format in [`crate::wire`]).
//!
//! Bodies: parameters = common fields then `scale_bits` (u32); plaintext = level (u32),
//! scale, message bound, error bound (f64 each), polynomial; ciphertext = the same fields,
//! then `c_0` and `c_1`; seeded ciphertext = the same fields, `c_0`, and the 32-byte seed
//! `c_1` is expanded from.

use alloc::vec::Vec;

use super::{Ciphertext, CkksParams, Plaintext};
use crate::encoding::{read_params_body, write_params_body};
use crate::keys::expand_seed;
use crate::wire::{
    check_fingerprint, check_len, read_header, Header, Kind, Reader, WireError, Writer, HEADER_SIZE,
};

const META: usize = 4 + 8 + 8 + 8;

impl CkksParams {
    /// Encodes the parameters.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(Kind::CkksParams, self.he().fingerprint(), 64);
        write_params_body(&mut w, self.he());
        w.u32(self.scale_bits());
        w.finish()
    }

    /// Decodes parameters, refusing sets without a checked security level.
    ///
    /// # Errors
    /// Any [`WireError`].
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        Self::decode_with(bytes, false)
    }

    /// Decodes parameters, accepting insecure test sets.
    ///
    /// # Errors
    /// Any [`WireError`].
    #[cfg(any(test, feature = "insecure-params"))]
    pub fn decode_insecure_for_tests(bytes: &[u8]) -> Result<Self, WireError> {
        Self::decode_with(bytes, true)
    }

    fn decode_with(bytes: &[u8], allow_insecure: bool) -> Result<Self, WireError> {
        let (h, mut r) = read_header(bytes, Kind::CkksParams)?;
        let he = read_params_body(&mut r, h.body_len, 4, allow_insecure)?;
        check_fingerprint(&h, he.fingerprint())?;
        let bits = r.u32()?;
        Ok(Self::from_common(he, bits)?)
    }
}

fn write_meta(w: &mut Writer, level: usize, scale: f64, msg: f64, err: f64) {
    w.u32(level as u32);
    w.f64(scale);
    w.f64(msg);
    w.f64(err);
}

/// Reads the level and bounds; checks the level against the chain and the body length
/// against `len(level)` before any polynomial is allocated.
fn read_meta(
    r: &mut Reader<'_>,
    params: &CkksParams,
    h: &Header,
    len: impl Fn(usize) -> usize,
) -> Result<(usize, f64, f64, f64), WireError> {
    let level = r.u32()? as usize;
    let max = params.he().max_level();
    if level == 0 || level > max {
        return Err(WireError::TooLarge {
            what: "level",
            value: level as u64,
            max: max as u64,
        });
    }
    check_len(h, len(level))?;
    let scale = r.f64("scale")?;
    if scale <= 0.0 {
        return Err(WireError::BadValue {
            what: "scale",
            value: scale.to_bits(),
        });
    }
    let msg = r.f64("message bound")?;
    let err = r.f64("error bound")?;
    if msg < 0.0 || err < 0.0 {
        return Err(WireError::BadValue {
            what: "bound",
            value: msg.min(err).to_bits(),
        });
    }
    Ok((level, scale, msg, err))
}

impl Plaintext {
    /// Encodes the plaintext.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(
            Kind::CkksPlaintext,
            self.fingerprint,
            META + self.poly.as_slice().len() * 8,
        );
        write_meta(
            &mut w,
            self.level(),
            self.scale,
            self.msg_bound,
            self.err_bound,
        );
        w.poly(&self.poly);
        w.finish()
    }

    /// Decodes a plaintext of `params`.
    ///
    /// # Errors
    /// Any [`WireError`].
    pub fn decode(params: &CkksParams, bytes: &[u8]) -> Result<Self, WireError> {
        let he = params.he();
        let (h, mut r) = read_header(bytes, Kind::CkksPlaintext)?;
        check_fingerprint(&h, he.fingerprint())?;
        let n = he.n();
        let (level, scale, msg_bound, err_bound) =
            read_meta(&mut r, params, &h, |l| META + l * n * 8)?;
        let poly = r.poly(he.basis(), level)?;
        Ok(Self {
            fingerprint: he.fingerprint(),
            poly,
            scale,
            msg_bound,
            err_bound,
        })
    }
}

impl Ciphertext {
    /// Encodes the ciphertext; a fresh secret-key encryption is written seed-compressed
    /// (`c_1` replaced by its 32-byte seed).
    pub fn encode(&self) -> Vec<u8> {
        let poly = self.c0.as_slice().len() * 8;
        let (kind, body) = match self.seed {
            Some(_) => (Kind::CkksCiphertextSeeded, META + poly + 32),
            None => (Kind::CkksCiphertext, META + 2 * poly),
        };
        let mut w = Writer::new(kind, self.fingerprint, body);
        write_meta(
            &mut w,
            self.level(),
            self.scale,
            self.msg_bound,
            self.err_bound,
        );
        w.poly(&self.c0);
        match self.seed {
            Some(seed) => w.bytes(&seed),
            None => w.poly(&self.c1),
        }
        w.finish()
    }

    /// The length of a ciphertext of `params` with `level` limbs encoded in full (not
    /// seed-compressed): the most a ciphertext at that level takes on the wire.
    pub fn max_encoded_len(params: &CkksParams, level: usize) -> usize {
        HEADER_SIZE + META + 2 * level * params.he().n() * 8
    }

    /// Decodes a ciphertext of `params`, full or seed-compressed.
    ///
    /// # Errors
    /// Any [`WireError`].
    pub fn decode(params: &CkksParams, bytes: &[u8]) -> Result<Self, WireError> {
        let seeded = bytes.get(6..8) == Some(&Kind::CkksCiphertextSeeded.code().to_le_bytes()[..]);
        let kind = if seeded {
            Kind::CkksCiphertextSeeded
        } else {
            Kind::CkksCiphertext
        };
        let he = params.he();
        let (h, mut r) = read_header(bytes, kind)?;
        check_fingerprint(&h, he.fingerprint())?;
        let n = he.n();
        let (level, scale, msg_bound, err_bound) = read_meta(&mut r, params, &h, |l| {
            META + l * n * 8 + if seeded { 32 } else { l * n * 8 }
        })?;
        let c0 = r.poly(he.basis(), level)?;
        let (c1, seed) = if seeded {
            let seed = r.seed()?;
            (expand_seed(he, seed, level), Some(seed))
        } else {
            (r.poly(he.basis(), level)?, None)
        };
        Ok(Self {
            fingerprint: he.fingerprint(),
            c0,
            c1,
            scale,
            msg_bound,
            err_bound,
            seed,
        })
    }
}
