//! BFV: exact arithmetic on vectors of integers modulo a prime `t`, encrypted.
//!
//! Brakerski, "Fully Homomorphic Encryption without Modulus Switching from Classical
//! GapSVP", CRYPTO 2012, and Fan–Vercauteren, "Somewhat Practical Fully Homomorphic
//! Encryption" (<https://eprint.iacr.org/2012/144>), in the full-RNS form of Halevi,
//! Polyakov and Shoup (<https://eprint.iacr.org/2018/117>, see [`rns`]).
//!
//! * [`BfvParams`]: the common parameters plus the plaintext modulus `t`
//!   ([`BfvParams::for_depth`] chooses a secure chain, [`BfvParams::default_for`] gives the
//!   sets of the benchmarks, [`BfvParams::with_plain_modulus`] another `t` on one chain).
//! * [`encoder`]: the batch encoder (`N` slots as a `2 × N/2` matrix) to [`Plaintext`]s.
//! * [`encrypt_pk`], [`encrypt_sk`] (seed-compressible), [`decrypt`], [`decrypt_measured`], [`noise_budget`].
//! * [`Evaluator`]: add, sub, negate, plaintext and scalar products, linear combinations
//!   with deferred reduction, ct × ct with relinearisation, row rotations and the row swap.
//! * [`noise`]: the invariant noise budget and the worst-case bound every [`Ciphertext`]
//!   carries.
//! * [`rns`]: exact basis extension and the scalings `round(t/Q · x)` (HPS).
//!
//! Ciphertexts live modulo the whole chain `Q`, in evaluation (NTT) form, as those of
//! [`crate::ckks`]; keys are the common ones of [`crate::keys`], generated for
//! [`BfvParams::he`].
//!
//! # Example
//! ```
//! use heist_he::bfv::{decrypt, encrypt_pk, BatchEncoder, BfvParams, Evaluator};
//! use heist_he::keys::{PublicKey, RelinKey, SecretKey};
//! use rand_chacha::rand_core::SeedableRng;
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! let params = BfvParams::default_for(4096)?; // 128-bit secure, t = 65537
//! let sk = SecretKey::generate(params.he(), &mut rng);
//! let pk = PublicKey::generate(params.he(), &sk, &mut rng);
//! let rlk = RelinKey::generate(params.he(), &sk, &mut rng);
//! let enc = BatchEncoder::new(params.n(), 65537)?;
//! let x = encrypt_pk(&params, &pk, &enc.encode_i64(&[3, -4, 5])?, &mut rng)?;
//! let mut ev = Evaluator::new(&params);
//! let y = ev.mul(&x, &x, &rlk)?;
//! assert_eq!(&enc.decode_i64(&decrypt(&params, &sk, &y)?)?[..3], &[9, 16, 25]);
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```

use core::fmt;

use heist_core::ntt::NttError;

mod cipher;
pub mod encoder;
mod encoding;
mod eval;
pub mod noise;
pub mod params;
pub mod rns;

pub(crate) use cipher::scaled_constant;
pub use cipher::{
    decrypt, decrypt_measured, encrypt_pk, encrypt_sk, noise_budget, scale_plain, Ciphertext,
    Plaintext,
};
pub use encoder::{rotation_galois_element, row_swap_galois_element, BatchEncoder};
pub use eval::Evaluator;
pub(crate) use eval::{relinearize, tensor};
pub use params::BfvParams;

/// An error of the BFV scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BfvError {
    /// The plaintext modulus cannot carry the batch encoding for this ring degree.
    PlainModulus {
        /// The rejected plaintext modulus.
        t: u64,
        /// The ring degree.
        n: usize,
        /// Why the transform modulo `t` cannot be built.
        source: NttError,
    },
    /// More values than slots.
    TooManySlots {
        /// The number of values given.
        given: usize,
        /// The number of slots `N`.
        slots: usize,
    },
    /// An unsigned slot value is not below `t`.
    SlotOutOfRange {
        /// The slot.
        slot: usize,
        /// The value.
        value: u64,
        /// The plaintext modulus.
        t: u64,
    },
    /// A signed slot value lies outside `(-t/2, t/2]`.
    SignedSlotOutOfRange {
        /// The slot.
        slot: usize,
        /// The value.
        value: i64,
        /// The plaintext modulus.
        t: u64,
    },
    /// A plaintext has another degree or plaintext modulus than the parameters.
    PlainMismatch {
        /// The ring degree of the parameters.
        n: usize,
        /// The plaintext modulus of the parameters.
        t: u64,
        /// The degree of the plaintext.
        found_n: usize,
        /// The modulus of the plaintext.
        found_t: u64,
    },
    /// An object (ciphertext, key) belongs to other parameters.
    ForeignObject {
        /// The fingerprint of the parameters in use.
        expected: u64,
        /// The fingerprint of the object.
        found: u64,
    },
    /// No Galois key for the element a rotation needs.
    MissingGaloisKey {
        /// The Galois element.
        element: u64,
    },
    /// A linear combination has as many weights as ciphertexts, and at least one.
    LengthMismatch {
        /// The number of ciphertexts.
        ciphertexts: usize,
        /// The number of weights.
        weights: usize,
    },
    /// The parts of a ciphertext do not fit the parameters.
    PartsMismatch {
        /// The ring degree of the parameters.
        n: usize,
        /// The limbs a part needs (the chain length).
        limbs: usize,
        /// The degree of the part.
        found_n: usize,
        /// The limbs of the part.
        found_limbs: usize,
    },
    /// A coefficient is not below its modulus.
    CoefficientOutOfRange {
        /// The coefficient index.
        index: usize,
        /// The value.
        value: u64,
        /// The modulus it must be below.
        modulus: u64,
    },
}

impl fmt::Display for BfvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PlainModulus { t, n, source } => write!(
                f,
                "plaintext modulus {t} cannot batch {n} slots (it must be a prime ≡ 1 mod {}): {source}",
                2 * *n as u64
            ),
            Self::TooManySlots { given, slots } => {
                write!(f, "{given} values given for {slots} slots")
            }
            Self::SlotOutOfRange { slot, value, t } => {
                write!(f, "slot {slot} holds {value}, not below the plaintext modulus {t}")
            }
            Self::SignedSlotOutOfRange { slot, value, t } => write!(
                f,
                "slot {slot} holds {value}, outside the centred range of the plaintext modulus {t}"
            ),
            Self::PlainMismatch {
                n,
                t,
                found_n,
                found_t,
            } => write!(
                f,
                "plaintext of degree {found_n} modulo {found_t}, the parameters have degree {n} modulo {t}"
            ),
            Self::ForeignObject { expected, found } => write!(
                f,
                "object of other parameters: fingerprint {found:#018x}, expected {expected:#018x}"
            ),
            Self::MissingGaloisKey { element } => {
                write!(f, "no Galois key for the element {element}")
            }
            Self::LengthMismatch {
                ciphertexts,
                weights,
            } => write!(
                f,
                "{ciphertexts} ciphertexts and {weights} weights: need equal, non-zero counts"
            ),
            Self::PartsMismatch {
                n,
                limbs,
                found_n,
                found_limbs,
            } => write!(
                f,
                "a ciphertext part of degree {found_n} with {found_limbs} limbs, expected degree {n} with {limbs}"
            ),
            Self::CoefficientOutOfRange {
                index,
                value,
                modulus,
            } => write!(
                f,
                "coefficient {index} is {value}, not below its modulus {modulus}"
            ),
        }
    }
}

impl core::error::Error for BfvError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::PlainModulus { source, .. } => Some(source),
            _ => None,
        }
    }
}
