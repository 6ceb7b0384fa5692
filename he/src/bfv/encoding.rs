//! Encoding of BFV parameters, plaintexts and ciphertexts (format in [`crate::wire`]).
//!
//! Header fingerprints are [`BfvParams::fingerprint`] (the common fingerprint and `t`).
//! Bodies: parameters = the common fields then `t` (u64); plaintext = its `N`
//! coefficients (u64, each below `t`); ciphertext = the noise bound (f64, finite and
//! non-negative), then `c_0` and `c_1` over the whole chain; seeded ciphertext = the noise
//! bound, `c_0`, and the 32-byte seed `c_1` is expanded from.

use alloc::vec::Vec;

use super::{BfvParams, Ciphertext, Plaintext};
use crate::encoding::{read_params_body, write_params_body};
use crate::wire::{
    check_fingerprint, check_len, read_header, Kind, Reader, WireError, Writer, HEADER_SIZE,
};

impl BfvParams {
    /// Encodes the parameters.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(Kind::BfvParams, self.fingerprint(), 64);
        write_params_body(&mut w, self.he());
        w.u64(self.plain_modulus().value());
        w.finish()
    }

    /// Decodes parameters, refusing sets without a checked security level.
    ///
    /// # Errors
    /// Any [`WireError`]; [`WireError::Params`] for an invalid `t`.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        Self::decode_with(bytes, false)
    }

    /// Decodes parameters, accepting insecure test sets.
    ///
    /// # Errors
    /// As [`Self::decode`].
    #[cfg(any(test, feature = "insecure-params"))]
    pub fn decode_insecure_for_tests(bytes: &[u8]) -> Result<Self, WireError> {
        Self::decode_with(bytes, true)
    }

    fn decode_with(bytes: &[u8], allow_insecure: bool) -> Result<Self, WireError> {
        let (h, mut r) = read_header(bytes, Kind::BfvParams)?;
        let he = read_params_body(&mut r, h.body_len, 8, allow_insecure)?;
        let t = r.u64()?;
        let params = Self::from_common(he, t)?;
        check_fingerprint(&h, params.fingerprint())?;
        Ok(params)
    }
}

impl Plaintext {
    /// Encodes the plaintext for `params`.
    ///
    /// # Panics
    /// If the plaintext does not belong to `params` (other `N` or `t`).
    pub fn encode(&self, params: &BfvParams) -> Vec<u8> {
        assert!(
            self.t == params.plain_modulus().value() && self.coeffs.len() == params.n(),
            "Plaintext::encode: plaintext of other parameters"
        );
        let mut w = Writer::new(
            Kind::BfvPlaintext,
            params.fingerprint(),
            8 * self.coeffs.len(),
        );
        for &c in &self.coeffs {
            w.u64(c);
        }
        w.finish()
    }

    /// Decodes a plaintext of `params`.
    ///
    /// # Errors
    /// Any [`WireError`]; [`WireError::ResidueOutOfRange`] for a coefficient not below `t`.
    pub fn decode(params: &BfvParams, bytes: &[u8]) -> Result<Self, WireError> {
        let (h, mut r) = read_header(bytes, Kind::BfvPlaintext)?;
        check_fingerprint(&h, params.fingerprint())?;
        let n = params.n();
        check_len(&h, 8 * n)?;
        let t = params.plain_modulus().value();
        let mut coeffs = Vec::with_capacity(n);
        for _ in 0..n {
            let c = r.u64()?;
            if c >= t {
                return Err(WireError::ResidueOutOfRange {
                    limb: 0,
                    value: c,
                    prime: t,
                });
            }
            coeffs.push(c);
        }
        Ok(Self { t, coeffs })
    }
}

fn read_bound(r: &mut Reader<'_>) -> Result<f64, WireError> {
    let v = r.f64("noise bound")?;
    if v < 0.0 {
        return Err(WireError::BadValue {
            what: "noise bound",
            value: v.to_bits(),
        });
    }
    Ok(v)
}

impl Ciphertext {
    /// Encodes the ciphertext in full.
    pub fn encode(&self) -> Vec<u8> {
        let body = 8 + 8 * (self.c0.as_slice().len() + self.c1.as_slice().len());
        let mut w = Writer::new(Kind::BfvCiphertext, self.fingerprint, body);
        w.f64(self.noise_bound);
        w.poly(&self.c0);
        w.poly(&self.c1);
        w.finish()
    }

    /// Encodes a fresh secret-key encryption as `c_0` and the seed of `c_1` (half the
    /// size); `None` for any other ciphertext.
    pub fn encode_seeded(&self) -> Option<Vec<u8>> {
        let seed = self.seed?;
        let body = 8 + 32 + 8 * self.c0.as_slice().len();
        let mut w = Writer::new(Kind::BfvCiphertextSeeded, self.fingerprint, body);
        w.f64(self.noise_bound);
        w.poly(&self.c0);
        w.bytes(&seed);
        Some(w.finish())
    }

    /// The length of a ciphertext of `params` encoded in full (not seed-compressed): the
    /// most a BFV ciphertext takes on the wire.
    pub fn max_encoded_len(params: &BfvParams) -> usize {
        HEADER_SIZE + 8 + 2 * params.he().chain().len() * params.n() * 8
    }

    /// Decodes a ciphertext of `params`, in full or seed-compressed.
    ///
    /// # Errors
    /// Any [`WireError`].
    pub fn decode(params: &BfvParams, bytes: &[u8]) -> Result<Self, WireError> {
        let seeded = bytes.get(6..8) == Some(&Kind::BfvCiphertextSeeded.code().to_le_bytes()[..]);
        let kind = if seeded {
            Kind::BfvCiphertextSeeded
        } else {
            Kind::BfvCiphertext
        };
        let (h, mut r) = read_header(bytes, kind)?;
        check_fingerprint(&h, params.fingerprint())?;
        let he = params.he();
        let l = he.max_level();
        let poly = 8 * l * he.n();
        check_len(&h, if seeded { 8 + poly + 32 } else { 8 + 2 * poly })?;
        let noise_bound = read_bound(&mut r)?;
        let c0 = r.poly(he.basis(), l)?;
        let (c1, seed) = if seeded {
            let seed = r.seed()?;
            (crate::keys::expand_seed(he, seed, l), Some(seed))
        } else {
            (r.poly(he.basis(), l)?, None)
        };
        Ok(Self {
            fingerprint: params.fingerprint(),
            c0,
            c1,
            noise_bound,
            seed,
        })
    }
}
