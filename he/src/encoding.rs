//! Encoding of the common objects: parameters and keys (format in [`crate::wire`]).
//!
//! The secret key is encoded on its own ([`SecretKey::encode`]); no public object holds it.

use alloc::vec::Vec;

use crate::keys::{GaloisKey, GaloisKeys, KeySwitchKey, PublicKey, RelinKey, SecretKey};
use crate::params::{HeParams, SecurityLevel, MAX_CHAIN};
use crate::wire::{
    check_fingerprint, check_len, read_header, Kind, Reader, WireError, Writer, HEADER_SIZE,
};

fn params_body_len(chain: usize) -> usize {
    4 + 1 + 4 + 8 * chain + 8
}

/// Writes the common parameter fields (shared with the scheme parameter encodings).
pub(crate) fn write_params_body(w: &mut Writer, p: &HeParams) {
    w.u32(p.n() as u32);
    w.u8(p.security().map_or(0, SecurityLevel::code));
    w.u32(p.chain().len() as u32);
    for &q in p.chain() {
        w.u64(q);
    }
    w.u64(p.special());
}

/// Reads the common parameter fields; `extra` is the length of the scheme fields that
/// follow, so the total body length can be checked before anything is allocated.
pub(crate) fn read_params_body(
    r: &mut Reader<'_>,
    body_len: usize,
    extra: usize,
    allow_insecure: bool,
) -> Result<HeParams, WireError> {
    let n = r.u32()? as usize;
    let code = r.u8()?;
    let len = r.u32()? as usize;
    if len > MAX_CHAIN {
        return Err(WireError::TooLarge {
            what: "chain length",
            value: len as u64,
            max: MAX_CHAIN as u64,
        });
    }
    let expected = params_body_len(len) + extra;
    if body_len != expected {
        return Err(WireError::BadLength {
            declared: body_len,
            expected,
        });
    }
    let mut chain = Vec::with_capacity(len);
    for _ in 0..len {
        chain.push(r.u64()?);
    }
    let special = r.u64()?;
    let params = match (SecurityLevel::from_code(code), code, allow_insecure) {
        (Some(level), _, _) => HeParams::new(n, &chain, special, level)?,
        (None, 0, true) => HeParams::unchecked(n, &chain, special)?,
        _ => {
            return Err(WireError::BadValue {
                what: "security level code",
                value: u64::from(code),
            })
        }
    };
    Ok(params)
}

impl HeParams {
    /// Encodes the parameters.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(
            Kind::Params,
            self.fingerprint(),
            params_body_len(self.chain().len()),
        );
        write_params_body(&mut w, self);
        w.finish()
    }

    /// Decodes parameters, refusing sets without a checked security level.
    ///
    /// # Errors
    /// Any [`WireError`]; [`WireError::BadValue`] for an unchecked (insecure) set;
    /// [`WireError::ForeignParams`] when the header fingerprint does not match the contents.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        Self::decode_with(bytes, false)
    }

    /// Decodes parameters, accepting insecure test sets.
    ///
    /// # Errors
    /// As [`Self::decode`], insecure sets aside.
    #[cfg(any(test, feature = "insecure-params"))]
    pub fn decode_insecure_for_tests(bytes: &[u8]) -> Result<Self, WireError> {
        Self::decode_with(bytes, true)
    }

    fn decode_with(bytes: &[u8], allow_insecure: bool) -> Result<Self, WireError> {
        let (h, mut r) = read_header(bytes, Kind::Params)?;
        let p = read_params_body(&mut r, h.body_len, 0, allow_insecure)?;
        check_fingerprint(&h, p.fingerprint())?;
        Ok(p)
    }
}

fn poly_bytes(params: &HeParams, limbs: usize) -> usize {
    limbs * params.n() * 8
}

fn ksk_len(params: &HeParams) -> usize {
    2 * params.max_level() * poly_bytes(params, params.basis().len())
}

fn write_ksk(w: &mut Writer, k: &KeySwitchKey) {
    for (b, a) in &k.digits {
        w.poly(b);
        w.poly(a);
    }
}

fn read_ksk(r: &mut Reader<'_>, params: &HeParams) -> Result<KeySwitchKey, WireError> {
    let all = params.basis().len();
    let mut digits = Vec::with_capacity(params.max_level());
    for _ in 0..params.max_level() {
        let b = r.poly(params.basis(), all)?;
        let a = r.poly(params.basis(), all)?;
        digits.push((b, a));
    }
    Ok(KeySwitchKey {
        fingerprint: params.fingerprint(),
        digits,
    })
}

/// Reads a header of `kind`, checks the fingerprint and the exact body length.
fn open<'a>(
    bytes: &'a [u8],
    kind: Kind,
    params: &HeParams,
    len: usize,
) -> Result<Reader<'a>, WireError> {
    let (h, r) = read_header(bytes, kind)?;
    check_fingerprint(&h, params.fingerprint())?;
    check_len(&h, len)?;
    Ok(r)
}

impl SecretKey {
    /// Encodes the secret key (alone: no public material is ever encoded with it). The
    /// bytes are wiped when the returned buffer drops.
    pub fn encode(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut w = Writer::new(
            Kind::SecretKey,
            self.fingerprint(),
            self.poly().as_slice().len() * 8,
        );
        w.poly(self.poly());
        zeroize::Zeroizing::new(w.finish())
    }

    /// Decodes a secret key of `params`.
    ///
    /// # Errors
    /// Any [`WireError`].
    pub fn decode(params: &HeParams, bytes: &[u8]) -> Result<Self, WireError> {
        let all = params.basis().len();
        let mut r = open(bytes, Kind::SecretKey, params, poly_bytes(params, all))?;
        let s = r.poly(params.basis(), all)?;
        Ok(Self::from_eval(params, s))
    }
}

impl PublicKey {
    /// Encodes the public key.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(
            Kind::PublicKey,
            self.fingerprint,
            16 * self.b.as_slice().len(),
        );
        w.poly(&self.b);
        w.poly(&self.a);
        w.finish()
    }

    /// Decodes a public key of `params`.
    ///
    /// # Errors
    /// Any [`WireError`].
    pub fn decode(params: &HeParams, bytes: &[u8]) -> Result<Self, WireError> {
        let l = params.max_level();
        let mut r = open(bytes, Kind::PublicKey, params, 2 * poly_bytes(params, l))?;
        let b = r.poly(params.basis(), l)?;
        let a = r.poly(params.basis(), l)?;
        Ok(Self {
            fingerprint: params.fingerprint(),
            b,
            a,
        })
    }
}

impl RelinKey {
    /// Encodes the relinearisation key.
    pub fn encode(&self) -> Vec<u8> {
        let body =
            self.0.digits.len() * 2 * self.0.digits.first().map_or(0, |d| d.0.as_slice().len()) * 8;
        let mut w = Writer::new(Kind::RelinKey, self.0.fingerprint, body);
        write_ksk(&mut w, &self.0);
        w.finish()
    }

    /// The exact length of an encoded relinearisation key of `params`: what a receiver
    /// needs to accept, and all it should, before reading one.
    pub fn encoded_len(params: &HeParams) -> usize {
        HEADER_SIZE + ksk_len(params)
    }

    /// Decodes a relinearisation key of `params`.
    ///
    /// # Errors
    /// Any [`WireError`].
    pub fn decode(params: &HeParams, bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = open(bytes, Kind::RelinKey, params, ksk_len(params))?;
        Ok(Self(read_ksk(&mut r, params)?))
    }
}

impl GaloisKeys {
    /// Encodes the Galois keys: a count, then per key its element and its key.
    ///
    /// # Panics
    /// If the encoding exceeds [`crate::wire::MAX_BODY`] (1 GiB), which takes many keys at
    /// the largest parameter sets; encode such sets in several parts.
    pub fn encode(&self) -> Vec<u8> {
        let per = self.keys.first().map_or(0, |k| {
            8 + k.key.digits.len() * 2 * k.key.digits[0].0.as_slice().len() * 8
        });
        let mut w = Writer::new(
            Kind::GaloisKeys,
            self.fingerprint,
            4 + per * self.keys.len(),
        );
        w.u32(self.keys.len() as u32);
        for k in &self.keys {
            w.u64(k.element);
            write_ksk(&mut w, &k.key);
        }
        w.finish()
    }

    /// Decodes Galois keys of `params`; elements must be odd, below `2N`, strictly
    /// increasing.
    ///
    /// # Errors
    /// Any [`WireError`]; [`WireError::TooLarge`] for more than `N` keys.
    pub fn decode(params: &HeParams, bytes: &[u8]) -> Result<Self, WireError> {
        let (h, mut r) = read_header(bytes, Kind::GaloisKeys)?;
        check_fingerprint(&h, params.fingerprint())?;
        let count = r.u32()? as usize;
        let n = params.n();
        if count > n {
            return Err(WireError::TooLarge {
                what: "Galois key count",
                value: count as u64,
                max: n as u64,
            });
        }
        // In u64: on 32-bit targets count · key size may exceed usize.
        let expected = 4 + count as u64 * (8 + ksk_len(params) as u64);
        if expected != h.body_len as u64 {
            return Err(WireError::BadLength {
                declared: h.body_len,
                expected: usize::try_from(expected).unwrap_or(usize::MAX),
            });
        }
        let mut keys: Vec<GaloisKey> = Vec::with_capacity(count);
        for _ in 0..count {
            let element = r.u64()?;
            let increasing = keys.last().is_none_or(|k| k.element < element);
            if element % 2 == 0 || element >= 2 * n as u64 || !increasing {
                return Err(WireError::BadValue {
                    what: "Galois element",
                    value: element,
                });
            }
            let key = read_ksk(&mut r, params)?;
            let perm = crate::galois::permutation(n, element).map_err(|_| WireError::BadValue {
                what: "Galois element",
                value: element,
            })?;
            keys.push(GaloisKey { element, key, perm });
        }
        Ok(Self {
            fingerprint: params.fingerprint(),
            keys,
        })
    }
}
