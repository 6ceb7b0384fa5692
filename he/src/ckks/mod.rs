//! CKKS (Cheon–Kim–Kim–Song) over the RNS chain of [`HeParams`].
//!
//! # Objects
//!
//! - [`CkksParams`]: the common parameters and the default scale `2^scale_bits`;
//!   [`CkksParams::for_depth`] chooses a secure chain for a multiplicative depth.
//! - [`Encoder`]: real or complex slots ↔ [`Plaintext`] through the canonical embedding
//!   ([`fft`]), coefficients rounded to integers after scaling.
//! - [`encrypt_pk`], [`encrypt_sk`] (seed-compressible), [`decrypt`].
//! - [`Evaluator`]: the homomorphic operations.
//!
//! Ciphertexts stay in evaluation (NTT) form between operations; level `k` means `k`
//! limbs, modulo `q_0 ⋯ q_{k-1}`.
//!
//! # Precision bound
//!
//! Every [`Plaintext`] and [`Ciphertext`] carries `msg_bound` (a bound on the magnitude of
//! every slot of the message) and `err_bound` (a bound on the magnitude of every slot of the
//! error, in integer units, i.e. before division by the scale);
//! [`Ciphertext::predicted_error`] is `err_bound / scale`. The rules, in the canonical
//! embedding:
//!
//! - fresh randomness (encryption noise, encoding and rescaling round-offs, key-switching
//!   noise) is bounded by [`crate::keys::slot_bound`]: `BETA · sqrt(N v)` for independent
//!   coefficients of variance `v`, and the product of the factors' bounds for a product of
//!   two random polynomials. With [`BETA`] `= 6` each bound fails with probability about
//!   `exp(-36)` per slot under the standard independence heuristic of the CKKS literature;
//!   it is not a worst-case bound.
//! - everything else propagates by the triangle inequality: sums add bounds, a product
//!   `(Δ_1 m_1 + e_1)(Δ_2 m_2 + e_2)` has error `Δ_1 M_1 B_2 + Δ_2 M_2 B_1 + B_1 B_2`,
//!   rescaling by `q` divides by `q` and adds [`crate::keys::rounding_bound`],
//!   automorphisms preserve slot magnitudes.
//!
//! Encoding: `slot_bound(N, 1/12)` (rounding to integers) plus the encoder's floating-point
//! error `Δ M N log2(N) 2^-52`. Secret-key encryption adds `slot_bound(N, σ²)`;
//! public-key encryption adds `slot_bound(N, σ²) + 2 BETA² N σ sqrt(2/3)` (for
//! `e_0 + u e + e_1 s`); key switching adds [`crate::keys::keyswitch_noise_bound`].

pub mod fft;

mod encoding;
mod eval;

pub use eval::Evaluator;

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use heist_core::rns::{Eval, RnsPoly};
use rand_core::{CryptoRng, RngCore};

use crate::keys::{
    slot_bound, small_to_eval, zero_pk, zero_sk, PublicKey, SecretKey, ERROR_VARIANCE,
    SECRET_VARIANCE,
};
use crate::params::{primes_for_sizes, HeParams, ParamsError, SecurityLevel};
use fft::{Complex, SpecialFft};

pub use crate::keys::BETA;

/// The largest scale exponent (the scale must stay below `2^60` so products of two
/// coefficients fit the chain primes and encoded coefficients fit an `i64`).
pub const MAX_SCALE_BITS: u32 = 60;

/// CKKS parameters: the common set and the default scale `2^scale_bits`.
#[derive(Debug, Clone)]
pub struct CkksParams {
    he: HeParams,
    scale_bits: u32,
}

impl CkksParams {
    /// Parameters from an explicit chain, checked against the security standard.
    ///
    /// # Errors
    /// As [`HeParams::new`]; [`ParamsError::Scheme`] if `scale_bits` is 0 or above
    /// [`MAX_SCALE_BITS`].
    pub fn new(
        n: usize,
        chain: &[u64],
        special: u64,
        scale_bits: u32,
        level: SecurityLevel,
    ) -> Result<Self, ParamsError> {
        check_scale_bits(scale_bits)?;
        Ok(Self {
            he: HeParams::new(n, chain, special, level)?,
            scale_bits,
        })
    }

    /// Parameters without the security check (tests at small `N`).
    ///
    /// # Errors
    /// As [`HeParams::new_insecure_for_tests`] and [`Self::new`].
    #[cfg(any(test, feature = "insecure-params"))]
    pub fn new_insecure_for_tests(
        n: usize,
        chain: &[u64],
        special: u64,
        scale_bits: u32,
    ) -> Result<Self, ParamsError> {
        Self::unchecked(n, chain, special, scale_bits)
    }

    /// `Self::new_insecure_for_tests` for this crate's paths behind insecure entry points.
    pub(crate) fn unchecked(
        n: usize,
        chain: &[u64],
        special: u64,
        scale_bits: u32,
    ) -> Result<Self, ParamsError> {
        check_scale_bits(scale_bits)?;
        Ok(Self {
            he: HeParams::unchecked(n, chain, special)?,
            scale_bits,
        })
    }

    /// Wraps common parameters with a scale.
    ///
    /// # Errors
    /// [`ParamsError::Scheme`] for a bad `scale_bits`.
    pub fn from_common(he: HeParams, scale_bits: u32) -> Result<Self, ParamsError> {
        check_scale_bits(scale_bits)?;
        Ok(Self { he, scale_bits })
    }

    /// A chain for `depth` rescalings: one `first_bits` prime (it holds the result after
    /// the last rescale, so it should exceed `scale_bits` by the bits of the largest
    /// message), `depth` primes of `scale_bits` bits (each rescale divides by one), and a
    /// special prime of `first_bits` bits; checked at `level`.
    ///
    /// # Errors
    /// [`ParamsError::Insecure`] when the chain is too long for `n` (the message names the
    /// sizes); [`ParamsError::Scheme`] when `first_bits <= scale_bits` or a size is out of
    /// range; [`ParamsError::Primes`] when too few primes exist.
    pub fn for_depth(
        n: usize,
        depth: usize,
        scale_bits: u32,
        first_bits: u32,
        level: SecurityLevel,
    ) -> Result<Self, ParamsError> {
        let chain = chain_for_depth(n, depth, scale_bits, first_bits)?;
        let special = chain.1;
        Self::new(n, &chain.0, special, scale_bits, level)
    }

    /// As [`Self::for_depth`], without the security check.
    ///
    /// # Errors
    /// As [`Self::for_depth`], except [`ParamsError::Insecure`].
    #[cfg(any(test, feature = "insecure-params"))]
    pub fn for_depth_insecure_for_tests(
        n: usize,
        depth: usize,
        scale_bits: u32,
        first_bits: u32,
    ) -> Result<Self, ParamsError> {
        let chain = chain_for_depth(n, depth, scale_bits, first_bits)?;
        Self::unchecked(n, &chain.0, chain.1, scale_bits)
    }

    /// The default set for `n` in `{4096, 8192, 16384}` at 128-bit security:
    /// `N = 4096`: depth 1, scale `2^30`, first and special primes of 38 bits (106 bits);
    /// `N = 8192`: depth 2, scale `2^40`, 60-bit first and special (200 bits);
    /// `N = 16384`: depth 5, scale `2^40`, 60-bit first and special (320 bits, the chain
    /// `[60, 40, 40, 40, 40, 40] + 60`).
    ///
    /// # Errors
    /// [`ParamsError::BadDegree`] for another `n`; otherwise as [`Self::for_depth`].
    pub fn default_for(n: usize) -> Result<Self, ParamsError> {
        let (depth, scale, first) = match n {
            4096 => (1, 30, 38),
            8192 => (2, 40, 60),
            16384 => (5, 40, 60),
            _ => {
                return Err(ParamsError::BadDegree {
                    n,
                    min: 4096,
                    max: 16384,
                })
            }
        };
        Self::for_depth(n, depth, scale, first, SecurityLevel::Tc128)
    }

    /// The common parameters.
    pub fn he(&self) -> &HeParams {
        &self.he
    }

    /// The default scale exponent.
    pub fn scale_bits(&self) -> u32 {
        self.scale_bits
    }

    /// The default scale `2^scale_bits`.
    pub fn scale(&self) -> f64 {
        libm::ldexp(1.0, self.scale_bits as i32)
    }

    /// The number of slots `N/2`.
    pub fn slots(&self) -> usize {
        self.he.n() / 2
    }

    /// The multiplicative depth: the number of rescalings from the top level.
    pub fn depth(&self) -> usize {
        self.he.max_level() - 1
    }
}

fn check_scale_bits(scale_bits: u32) -> Result<(), ParamsError> {
    if scale_bits == 0 || scale_bits > MAX_SCALE_BITS {
        return Err(ParamsError::Scheme {
            what: "CKKS scale bits must be in [1, 60], got",
            value: u64::from(scale_bits),
        });
    }
    Ok(())
}

fn chain_for_depth(
    n: usize,
    depth: usize,
    scale_bits: u32,
    first_bits: u32,
) -> Result<(Vec<u64>, u64), ParamsError> {
    check_scale_bits(scale_bits)?;
    if first_bits <= scale_bits || first_bits > 61 {
        return Err(ParamsError::Scheme {
            what: "first prime bits must exceed the scale bits and be at most 61, got",
            value: u64::from(first_bits),
        });
    }
    if depth + 1 > crate::params::MAX_CHAIN {
        return Err(ParamsError::BadChainLength { len: depth + 1 });
    }
    // The special prime is drawn first, so it is the largest prime of its size and at
    // least every chain prime.
    let mut sizes = vec![first_bits, first_bits];
    sizes.extend(core::iter::repeat_n(scale_bits, depth));
    let mut primes = primes_for_sizes(n, &sizes, &[])?;
    let special = primes.remove(0);
    Ok((primes, special))
}

/// An error of a CKKS operation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CkksError {
    /// The operands are at different levels.
    LevelMismatch {
        /// The level of the left operand.
        left: usize,
        /// The level of the right operand.
        right: usize,
    },
    /// The operands' scales differ by more than [`SCALE_TOLERANCE`] (relative).
    ScaleMismatch {
        /// The left scale.
        left: f64,
        /// The right scale.
        right: f64,
    },
    /// An object belongs to other parameters.
    ForeignObject {
        /// The fingerprint of the parameters in use.
        expected: u64,
        /// The object's fingerprint.
        found: u64,
    },
    /// No level is left to rescale or the requested level is invalid.
    BadLevel {
        /// The current level.
        level: usize,
        /// The requested level.
        requested: usize,
    },
    /// No Galois key for the element.
    MissingGaloisKey {
        /// The Galois element.
        element: u64,
    },
    /// More values than slots.
    TooManySlots {
        /// Values given.
        given: usize,
        /// Slots available.
        slots: usize,
    },
    /// A scaled coefficient or constant does not fit (`|x| >= 2^62`) or is not finite.
    Overflow {
        /// The offending value.
        value: f64,
    },
    /// A scale is not a positive finite number.
    BadScale {
        /// The offending scale.
        scale: f64,
    },
    /// The tracked bound on a scaled message and its error, `Δ·M + E`, reaches half the
    /// modulus `Q_ℓ / 2` at its level: the coefficients could wrap modulo `Q_ℓ` and decrypt
    /// to garbage while the tracked error stays small. Refused as SEAL refuses a product
    /// whose scale outgrows the modulus.
    Capacity {
        /// The level (number of primes) of the result.
        level: usize,
        /// `log2(Δ·M + E)`.
        needed_bits: f64,
        /// `log2(Q_ℓ / 2)`.
        available_bits: f64,
    },
    /// Weights and ciphertexts of a linear combination differ in number, or none are given.
    LengthMismatch {
        /// Number of ciphertexts.
        ciphertexts: usize,
        /// Number of weights.
        weights: usize,
    },
}

impl fmt::Display for CkksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LevelMismatch { left, right } => {
                write!(f, "operands at different levels {left} and {right}")
            }
            Self::ScaleMismatch { left, right } => {
                write!(f, "operand scales {left:e} and {right:e} differ")
            }
            Self::ForeignObject { expected, found } => write!(
                f,
                "object of other parameters: fingerprint {found:#018x}, expected {expected:#018x}"
            ),
            Self::BadLevel { level, requested } => {
                write!(f, "cannot go from level {level} to level {requested}")
            }
            Self::MissingGaloisKey { element } => {
                write!(f, "no Galois key for element {element}")
            }
            Self::TooManySlots { given, slots } => {
                write!(f, "{given} values for {slots} slots")
            }
            Self::Overflow { value } => {
                write!(
                    f,
                    "value {value:e} does not fit a 62-bit signed coefficient"
                )
            }
            Self::BadScale { scale } => write!(f, "scale {scale:e} is not positive and finite"),
            Self::Capacity {
                level,
                needed_bits,
                available_bits,
            } => write!(
                f,
                "scaled message and error reach 2^{needed_bits:.1}, not below Q/2 = \
                 2^{available_bits:.1} at level {level}: decryption would wrap"
            ),
            Self::LengthMismatch {
                ciphertexts,
                weights,
            } => write!(
                f,
                "{ciphertexts} ciphertexts and {weights} weights (need equal, non-zero counts)"
            ),
        }
    }
}

impl core::error::Error for CkksError {}

/// The largest relative difference of two scales that may be added.
pub const SCALE_TOLERANCE: f64 = 1e-6;

/// An encoded message: a polynomial in evaluation form at some level, with its scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Plaintext {
    pub(crate) fingerprint: u64,
    pub(crate) poly: RnsPoly<Eval>,
    pub(crate) scale: f64,
    pub(crate) msg_bound: f64,
    pub(crate) err_bound: f64,
}

impl Plaintext {
    /// The level (number of limbs).
    pub fn level(&self) -> usize {
        self.poly.limbs()
    }

    /// The scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The polynomial.
    pub fn poly(&self) -> &RnsPoly<Eval> {
        &self.poly
    }

    /// A bound on the magnitude of every slot of the message.
    pub fn msg_bound(&self) -> f64 {
        self.msg_bound
    }

    /// A bound on the magnitude of every slot's error, in integer units.
    pub fn err_bound(&self) -> f64 {
        self.err_bound
    }
}

/// A CKKS ciphertext `(c_0, c_1)` with `c_0 + c_1 s ≈ Δ m`, in evaluation form.
#[derive(Debug, Clone, PartialEq)]
pub struct Ciphertext {
    pub(crate) fingerprint: u64,
    pub(crate) c0: RnsPoly<Eval>,
    pub(crate) c1: RnsPoly<Eval>,
    pub(crate) scale: f64,
    pub(crate) msg_bound: f64,
    pub(crate) err_bound: f64,
    /// The ChaCha20 seed `c_1` was expanded from, while `c_1` is still that expansion.
    pub(crate) seed: Option<[u8; 32]>,
}

impl Ciphertext {
    /// The level (number of limbs).
    pub fn level(&self) -> usize {
        self.c0.limbs()
    }

    /// The scale `Δ`.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The fingerprint of the parameters.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// `c_0`.
    pub fn c0(&self) -> &RnsPoly<Eval> {
        &self.c0
    }

    /// `c_1`.
    pub fn c1(&self) -> &RnsPoly<Eval> {
        &self.c1
    }

    /// The tracked bound on every slot of the message.
    pub fn msg_bound(&self) -> f64 {
        self.msg_bound
    }

    /// The tracked bound on every slot of the error, in integer units.
    pub fn err_bound(&self) -> f64 {
        self.err_bound
    }

    /// The predicted bound on the error of every decrypted slot: `err_bound / scale`.
    pub fn predicted_error(&self) -> f64 {
        self.err_bound / self.scale
    }

    /// Whether the ciphertext can be sent seed-compressed (fresh secret-key encryption).
    pub fn is_seeded(&self) -> bool {
        self.seed.is_some()
    }

    /// A ciphertext `(c0, c1)` of `params` at the level of its parts, with the scale and
    /// tracked bounds it claims: what a party that computes on ciphertexts (or crafts them)
    /// hands on. Nothing relates the bounds to the parts.
    ///
    /// # Errors
    /// [`CkksError::BadLevel`] unless both parts have the same number of limbs, between 1
    /// and the chain length, and the ring degree of `params`; [`CkksError::BadScale`];
    /// [`CkksError::Overflow`] for a bound that is negative or not finite.
    pub fn from_parts(
        params: &CkksParams,
        c0: RnsPoly<Eval>,
        c1: RnsPoly<Eval>,
        scale: f64,
        msg_bound: f64,
        err_bound: f64,
    ) -> Result<Self, CkksError> {
        let he = params.he();
        let n = he.n();
        if c0.limbs() != c1.limbs() || c0.n() != n || c1.n() != n {
            return Err(CkksError::BadLevel {
                level: c0.limbs(),
                requested: c1.limbs(),
            });
        }
        check_level(he, c0.limbs())?;
        check_scale(scale)?;
        for bound in [msg_bound, err_bound] {
            if !(bound >= 0.0 && bound.is_finite()) {
                return Err(CkksError::Overflow { value: bound });
            }
        }
        Ok(Self {
            fingerprint: he.fingerprint(),
            c0,
            c1,
            scale,
            msg_bound,
            err_bound,
            seed: None,
        })
    }
}

/// The floating-point error bound of the special FFT on a message of bound `m` at `scale`.
pub(crate) fn fft_error(n: usize, scale: f64, m: f64) -> f64 {
    let n = n as f64;
    scale * m * n * libm::log2(n) * libm::ldexp(1.0, -52)
}

/// Encodes slots into plaintexts and decodes plaintexts into slots.
#[derive(Debug, Clone)]
pub struct Encoder {
    params: CkksParams,
    fft: SpecialFft,
}

impl Encoder {
    /// An encoder for `params`.
    pub fn new(params: &CkksParams) -> Self {
        Self {
            params: params.clone(),
            fft: SpecialFft::new(params.he().n()),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &CkksParams {
        &self.params
    }

    /// Encodes real values (missing slots are zero) at `scale` and `level`.
    ///
    /// # Errors
    /// As [`Self::encode_complex`].
    pub fn encode(&self, values: &[f64], scale: f64, level: usize) -> Result<Plaintext, CkksError> {
        let v: Vec<Complex> = values.iter().map(|&x| Complex::new(x, 0.0)).collect();
        self.encode_complex(&v, scale, level)
    }

    /// Encodes complex values (missing slots are zero) at `scale` and `level`.
    ///
    /// # Errors
    /// [`CkksError::TooManySlots`], [`CkksError::BadScale`], [`CkksError::BadLevel`],
    /// [`CkksError::Overflow`] when a scaled coefficient reaches `2^62` or a value is not
    /// finite.
    pub fn encode_complex(
        &self,
        values: &[Complex],
        scale: f64,
        level: usize,
    ) -> Result<Plaintext, CkksError> {
        let he = self.params.he();
        let coeffs = self.embed_inverse(values, scale)?;
        check_level(he, level)?;
        let msg_bound = values.iter().map(|x| x.abs()).fold(0.0, f64::max);
        let coeffs = coeffs
            .into_iter()
            .map(to_i64)
            .collect::<Result<Vec<_>, _>>()?;
        let n = he.n();
        let nf = n as f64;
        let err_bound = slot_bound(nf, 1.0 / 12.0) + fft_error(n, scale, msg_bound);
        check_capacity(he, level, scale, msg_bound, err_bound)?;
        let poly = small_to_eval(he, coeffs, level);
        Ok(Plaintext {
            fingerprint: he.fingerprint(),
            poly,
            scale,
            msg_bound,
            err_bound,
        })
    }

    /// The canonical embedding inverted at `scale`, before rounding: the real coefficients
    /// `scale · m_k` (`k < N`) of the polynomial `m` whose slots are `values` (missing
    /// slots are zero). [`Self::encode_complex`] rounds them to integers; re-encoding
    /// decoded values and comparing the result with its rounding tells whether the
    /// decoded values determine the plaintext exactly.
    ///
    /// # Ranges
    /// Finite values, positive finite scale → `N` coefficients, each within the special
    /// FFT's floating-point error (`Δ M N log2(N) 2^-52`, see the module docs) of the exact value.
    ///
    /// # Errors
    /// [`CkksError::TooManySlots`], [`CkksError::BadScale`], [`CkksError::Overflow`] for a
    /// value that is not finite.
    pub fn embed_inverse(&self, values: &[Complex], scale: f64) -> Result<Vec<f64>, CkksError> {
        let slots = self.params.slots();
        if values.len() > slots {
            return Err(CkksError::TooManySlots {
                given: values.len(),
                slots,
            });
        }
        check_scale(scale)?;
        let mut v = vec![Complex::default(); slots];
        for (d, &x) in v.iter_mut().zip(values) {
            let a = x.abs();
            if !a.is_finite() {
                return Err(CkksError::Overflow { value: a });
            }
            *d = x;
        }
        self.fft.inverse(&mut v);
        let mut coeffs = vec![0.0f64; 2 * slots];
        let (lo, hi) = coeffs.split_at_mut(slots);
        for ((c, d), x) in lo.iter_mut().zip(hi.iter_mut()).zip(&v) {
            *c = x.re * scale;
            *d = x.im * scale;
        }
        Ok(coeffs)
    }

    /// The plaintext with every slot equal to the real constant `c` (a constant
    /// polynomial, no FFT), at `scale` and `level`.
    ///
    /// # Errors
    /// As [`Self::encode_complex`].
    pub fn encode_constant(
        &self,
        c: f64,
        scale: f64,
        level: usize,
    ) -> Result<Plaintext, CkksError> {
        let he = self.params.he();
        check_scale(scale)?;
        check_level(he, level)?;
        let v = to_i64(c * scale)?;
        check_capacity(he, level, scale, libm::fabs(c), 0.5)?;
        let mut poly = RnsPoly::zero(he.n(), level);
        for i in 0..level {
            let x = he.basis().modulus(i).from_i64(v);
            poly.limb_mut(i).fill(x);
        }
        Ok(Plaintext {
            fingerprint: he.fingerprint(),
            poly,
            scale,
            msg_bound: libm::fabs(c),
            err_bound: 0.5,
        })
    }

    /// Decodes the real parts of all slots.
    ///
    /// # Errors
    /// [`CkksError::ForeignObject`] for a plaintext of other parameters.
    pub fn decode(&self, pt: &Plaintext) -> Result<Vec<f64>, CkksError> {
        Ok(self.decode_complex(pt)?.iter().map(|z| z.re).collect())
    }

    /// Decodes all slots.
    ///
    /// # Errors
    /// [`CkksError::ForeignObject`] for a plaintext of other parameters.
    pub fn decode_complex(&self, pt: &Plaintext) -> Result<Vec<Complex>, CkksError> {
        let he = self.params.he();
        check_fp(he, pt.fingerprint)?;
        let basis = he.basis();
        let k = pt.level();
        let coeff = pt.poly.clone().into_coeff(basis);
        let n = he.n();
        let slots = n / 2;
        let mut scratch = vec![0u64; k];
        let mut residues = vec![0u64; k];
        let mut value = |j: usize| -> f64 {
            for (i, r) in residues.iter_mut().enumerate() {
                *r = coeff.limb(i)[j];
            }
            basis.compose_centred(&residues, &mut scratch)
        };
        let inv = 1.0 / pt.scale;
        let mut v: Vec<Complex> = (0..slots)
            .map(|j| Complex::new(value(j) * inv, value(j + slots) * inv))
            .collect();
        self.fft.forward(&mut v);
        Ok(v)
    }
}

fn to_i64(x: f64) -> Result<i64, CkksError> {
    let r = libm::round(x);
    if r.is_finite() && libm::fabs(r) < libm::ldexp(1.0, 62) {
        Ok(r as i64)
    } else {
        Err(CkksError::Overflow { value: x })
    }
}

fn check_scale(scale: f64) -> Result<(), CkksError> {
    if scale.is_finite() && scale > 0.0 {
        Ok(())
    } else {
        Err(CkksError::BadScale { scale })
    }
}

/// Refuses a message at `level` and `scale` whose tracked bounds (`msg` on every slot,
/// `err` in integer units) could wrap: `Δ·M + E ≥ Q_ℓ / 2`, compared in log2. Every
/// coefficient of the scaled message polynomial is at most its largest slot, so below
/// `Q_ℓ / 2` the centred decryption is exact up to the tracked error.
///
/// # Ranges
/// `level` in `1..=max_level`, finite non-negative bounds; `msg = err = 0` always fits.
pub(crate) fn check_capacity(
    he: &HeParams,
    level: usize,
    scale: f64,
    msg: f64,
    err: f64,
) -> Result<(), CkksError> {
    let magnitude = scale * msg + err;
    if magnitude == 0.0 {
        return Ok(());
    }
    let needed_bits = libm::log2(magnitude);
    let available_bits = (0..level)
        .map(|i| libm::log2(he.basis().modulus(i).value() as f64))
        .sum::<f64>()
        - 1.0;
    if needed_bits < available_bits {
        Ok(())
    } else {
        Err(CkksError::Capacity {
            level,
            needed_bits,
            available_bits,
        })
    }
}

impl Ciphertext {
    /// The ciphertext, if its tracked bounds fit its level ([`check_capacity`]).
    pub(crate) fn within_capacity(self, he: &HeParams) -> Result<Self, CkksError> {
        check_capacity(he, self.level(), self.scale, self.msg_bound, self.err_bound)?;
        Ok(self)
    }
}

fn check_level(he: &HeParams, level: usize) -> Result<(), CkksError> {
    if (1..=he.max_level()).contains(&level) {
        Ok(())
    } else {
        Err(CkksError::BadLevel {
            level: he.max_level(),
            requested: level,
        })
    }
}

pub(crate) fn check_fp(he: &HeParams, found: u64) -> Result<(), CkksError> {
    if found == he.fingerprint() {
        Ok(())
    } else {
        Err(CkksError::ForeignObject {
            expected: he.fingerprint(),
            found,
        })
    }
}

/// Encrypts `pt` under the public key: `(u b + e_0 + m, u a + e_1)`, `u` ternary.
///
/// # Errors
/// [`CkksError::ForeignObject`] when the key or plaintext belongs to other parameters.
pub fn encrypt_pk<R: RngCore + CryptoRng>(
    params: &CkksParams,
    pk: &PublicKey,
    pt: &Plaintext,
    rng: &mut R,
) -> Result<Ciphertext, CkksError> {
    let he = params.he();
    check_fp(he, pk.fingerprint())?;
    check_fp(he, pt.fingerprint)?;
    let (mut c0, c1) = zero_pk(he, pk, rng, pt.level());
    c0.add_assign(&pt.poly, he.basis());
    let n = he.n() as f64;
    let fresh = slot_bound(n, ERROR_VARIANCE)
        + 2.0 * BETA * BETA * n * libm::sqrt(SECRET_VARIANCE * ERROR_VARIANCE);
    Ok(Ciphertext {
        fingerprint: he.fingerprint(),
        c0,
        c1,
        scale: pt.scale,
        msg_bound: pt.msg_bound,
        err_bound: pt.err_bound + fresh,
        seed: None,
    })
}

/// Encrypts `pt` under the secret key: `(-a s + e + m, a)` with `a` expanded from a fresh
/// 32-byte seed, so the ciphertext can be sent seed-compressed (half the size).
///
/// # Errors
/// [`CkksError::ForeignObject`] when the key or plaintext belongs to other parameters.
pub fn encrypt_sk<R: RngCore + CryptoRng>(
    params: &CkksParams,
    sk: &SecretKey,
    pt: &Plaintext,
    rng: &mut R,
) -> Result<Ciphertext, CkksError> {
    let he = params.he();
    check_fp(he, sk.fingerprint())?;
    check_fp(he, pt.fingerprint)?;
    let (mut c0, c1, seed) = zero_sk(he, sk, rng, pt.level());
    c0.add_assign(&pt.poly, he.basis());
    let n = he.n() as f64;
    Ok(Ciphertext {
        fingerprint: he.fingerprint(),
        c0,
        c1,
        scale: pt.scale,
        msg_bound: pt.msg_bound,
        err_bound: pt.err_bound + slot_bound(n, ERROR_VARIANCE),
        seed: Some(seed),
    })
}

/// Decrypts: the plaintext `c_0 + c_1 s`, with the ciphertext's scale and bounds.
///
/// # Errors
/// [`CkksError::ForeignObject`] when the key belongs to other parameters.
pub fn decrypt(
    params: &CkksParams,
    sk: &SecretKey,
    ct: &Ciphertext,
) -> Result<Plaintext, CkksError> {
    let he = params.he();
    check_fp(he, sk.fingerprint())?;
    check_fp(he, ct.fingerprint)?;
    let mut m = ct.c0.clone();
    m.mul_add_assign(&ct.c1, sk.poly(), he.basis());
    Ok(Plaintext {
        fingerprint: he.fingerprint(),
        poly: m,
        scale: ct.scale,
        msg_bound: ct.msg_bound,
        err_bound: ct.err_bound,
    })
}

/// The largest absolute difference between decoded slots and a reference (the measured
/// precision); slots beyond `reference.len()` are compared with zero.
pub fn max_error(decoded: &[f64], reference: &[f64]) -> f64 {
    decoded
        .iter()
        .enumerate()
        .map(|(i, &x)| libm::fabs(x - reference.get(i).copied().unwrap_or(0.0)))
        .fold(0.0, f64::max)
}

/// A precision readout: the measured error against a reference and the predicted bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Precision {
    /// The largest measured slot error.
    pub measured: f64,
    /// The bound predicted from the tracked scale, level and noise.
    pub predicted: f64,
    /// The ciphertext's level.
    pub level: usize,
    /// The ciphertext's scale.
    pub scale: f64,
}

/// Decrypts and decodes `ct` and compares its real slots with `reference`.
///
/// # Errors
/// As [`decrypt`] and [`Encoder::decode`].
pub fn precision(
    encoder: &Encoder,
    sk: &SecretKey,
    ct: &Ciphertext,
    reference: &[f64],
) -> Result<Precision, CkksError> {
    let pt = decrypt(encoder.params(), sk, ct)?;
    let decoded = encoder.decode(&pt)?;
    Ok(Precision {
        measured: max_error(&decoded, reference),
        predicted: ct.predicted_error() + fft_error(encoder.params().he().n(), 1.0, ct.msg_bound),
        level: ct.level(),
        scale: ct.scale,
    })
}
