//! BFV plaintexts and ciphertexts, encryption, decryption and the measured noise budget.

use alloc::vec::Vec;

use heist_core::rns::{Coeff, Eval, RnsPoly};
use rand_core::{CryptoRng, RngCore};

use super::noise::budget_bits;
use super::{BfvError, BfvParams};
use crate::keys::{zero_pk, zero_sk, PublicKey, SecretKey};

/// A plaintext: a polynomial of `Z_t[X]/(X^N + 1)`, coefficients in `[0, t)`, usually made
/// by [`super::BatchEncoder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plaintext {
    pub(crate) t: u64,
    pub(crate) coeffs: Vec<u64>,
}

impl Plaintext {
    /// The plaintext with coefficients `coeffs` modulo `t`.
    ///
    /// # Errors
    /// [`BfvError::CoefficientOutOfRange`] for a coefficient not below `t`.
    pub fn from_coeffs(t: u64, coeffs: Vec<u64>) -> Result<Self, BfvError> {
        if let Some((index, &value)) = coeffs.iter().enumerate().find(|(_, &c)| c >= t) {
            return Err(BfvError::CoefficientOutOfRange {
                index,
                value,
                modulus: t,
            });
        }
        Ok(Self { t, coeffs })
    }

    /// The plaintext modulus `t`.
    pub fn plain_modulus(&self) -> u64 {
        self.t
    }

    /// The coefficients, in `[0, t)`.
    pub fn coeffs(&self) -> &[u64] {
        &self.coeffs
    }

    /// `‖p‖₁` of the centred coefficients: the factor by which multiplying by this
    /// plaintext can grow the invariant noise.
    pub fn centred_l1(&self) -> f64 {
        self.coeffs.iter().map(|&c| c.min(self.t - c) as f64).sum()
    }
}

/// A BFV ciphertext `(c_0, c_1)` modulo the whole chain `Q`, in evaluation form, with its
/// tracked noise bound (see [`super::noise`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Ciphertext {
    pub(crate) fingerprint: u64,
    pub(crate) c0: RnsPoly<Eval>,
    pub(crate) c1: RnsPoly<Eval>,
    pub(crate) noise_bound: f64,
    /// The seed `c_1` was expanded from (fresh secret-key encryptions only).
    pub(crate) seed: Option<[u8; 32]>,
}

impl Ciphertext {
    /// The fingerprint of the BFV parameters ([`BfvParams::fingerprint`]).
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

    /// The tracked upper bound on the invariant noise `‖v‖∞`.
    pub fn noise_bound(&self) -> f64 {
        self.noise_bound
    }

    /// The noise budget the tracked bound guarantees, in bits: never more than
    /// [`noise_budget`] measures.
    pub fn noise_budget_estimate(&self) -> f64 {
        budget_bits(self.noise_bound)
    }

    /// Whether `c_1` can be sent as its 32-byte seed.
    pub fn is_seeded(&self) -> bool {
        self.seed.is_some()
    }
}

impl Ciphertext {
    /// The ciphertext `(c0, c1)` of `params`, both parts over the whole chain: what a
    /// party that computes on ciphertexts (or crafts them) hands on. Its tracked noise
    /// bound is the model's floor; nothing relates it to the parts.
    ///
    /// # Errors
    /// [`BfvError::PartsMismatch`] unless both parts have the ring degree of `params` and
    /// one limb per chain prime.
    pub fn new(params: &BfvParams, c0: RnsPoly<Eval>, c1: RnsPoly<Eval>) -> Result<Self, BfvError> {
        let he = params.he();
        for part in [&c0, &c1] {
            if part.n() != he.n() || part.limbs() != he.max_level() {
                return Err(BfvError::PartsMismatch {
                    n: he.n(),
                    limbs: he.max_level(),
                    found_n: part.n(),
                    found_limbs: part.limbs(),
                });
            }
        }
        Ok(Self::from_parts(params, c0, c1, 0.0))
    }

    /// A ciphertext of `params` from its parts and tracked noise bound (raised to the
    /// model's floor).
    pub(crate) fn from_parts(
        params: &BfvParams,
        c0: RnsPoly<Eval>,
        c1: RnsPoly<Eval>,
        noise_bound: f64,
    ) -> Self {
        Self {
            fingerprint: params.fingerprint(),
            c0,
            c1,
            noise_bound: params.noise_model().floor(noise_bound),
            seed: None,
        }
    }
}

pub(crate) fn check_fp(expected: u64, found: u64) -> Result<(), BfvError> {
    if expected == found {
        Ok(())
    } else {
        Err(BfvError::ForeignObject { expected, found })
    }
}

pub(crate) fn check_plain(params: &BfvParams, pt: &Plaintext) -> Result<(), BfvError> {
    let t = params.plain_modulus().value();
    if pt.t != t || pt.coeffs.len() != params.n() {
        return Err(BfvError::PlainMismatch {
            n: params.n(),
            t,
            found_n: pt.coeffs.len(),
            found_t: pt.t,
        });
    }
    Ok(())
}

/// `round([Q]_t·m/t)`, the part of `round(Q·m/t)` beyond `Δ·m`.
///
/// # Ranges
/// `m` in `[0, t)` → `[0, t)` (computed exactly in `u128`: `[Q]_t·m < 2^120`).
fn correction(params: &BfvParams, m: u64) -> u64 {
    let t = u128::from(params.plain_modulus().value());
    ((u128::from(params.q_mod_t()) * u128::from(m) + t / 2) / t) as u64
}

/// `round(Q·m/t)` modulo each chain prime for an integer `m`: the residues of the
/// constant plaintext `m` (the same in every slot) in every coefficient of the
/// evaluation form.
///
/// # Ranges
/// `m` in `[0, t)` → one residue in `[0, q_i)` per chain prime.
pub(crate) fn scaled_constant(params: &BfvParams, m: u64) -> Vec<u64> {
    let c = correction(params, m);
    params
        .chain_moduli()
        .iter()
        .zip(params.delta())
        .map(|(q, &d)| q.add(q.mul_shoup(m, d), q.reduce(c)))
        .collect()
}

/// `round(Q·m/t)` over the whole chain, in evaluation form: the plaintext `pt` as it
/// sits in `c_0` of an encryption (so `(0, scale_plain(p))` decrypts to `p·s`, without
/// noise).
///
/// # Ranges
/// Coefficients of `pt` in `[0, t)` → residues in `[0, q_i)`.
///
/// # Errors
/// [`BfvError::PlainMismatch`] for a plaintext of another degree or modulus.
pub fn scale_plain(params: &BfvParams, pt: &Plaintext) -> Result<RnsPoly<Eval>, BfvError> {
    check_plain(params, pt)?;
    Ok(scaled_plain(params, pt))
}

/// `round(Q·m/t)` modulo each chain prime, in evaluation form: `Δ·m + round([Q]_t·m/t)`
/// with `Δ = floor(Q/t)` (the second term is below `t`, computed exactly in `u128`).
///
/// # Ranges
/// Coefficients of `pt` in `[0, t)` → residues in `[0, q_i)`.
pub(crate) fn scaled_plain(params: &BfvParams, pt: &Plaintext) -> RnsPoly<Eval> {
    let he = params.he();
    let n = he.n();
    let l = he.max_level();
    let corr: Vec<u64> = pt.coeffs.iter().map(|&m| correction(params, m)).collect();
    let mut out = RnsPoly::<Coeff>::zero(n, l);
    for (i, q) in params.chain_moduli().iter().enumerate() {
        let d = params.delta()[i];
        for ((o, &m), &c) in out.limb_mut(i).iter_mut().zip(&pt.coeffs).zip(&corr) {
            *o = q.add(q.mul_shoup(m, d), q.reduce(c));
        }
    }
    out.into_eval(he.basis())
}

/// Encrypts under the public key: `(u·b + e_0 + round(Q m/t), u·a + e_1)`, `u` ternary.
///
/// # Errors
/// [`BfvError::ForeignObject`] for a key of other parameters; [`BfvError::PlainMismatch`].
pub fn encrypt_pk<R: RngCore + CryptoRng>(
    params: &BfvParams,
    pk: &PublicKey,
    pt: &Plaintext,
    rng: &mut R,
) -> Result<Ciphertext, BfvError> {
    let he = params.he();
    check_fp(he.fingerprint(), pk.fingerprint())?;
    check_plain(params, pt)?;
    let (mut c0, c1) = zero_pk(he, pk, rng, he.max_level());
    c0.add_assign(&scaled_plain(params, pt), he.basis());
    Ok(Ciphertext {
        fingerprint: params.fingerprint(),
        c0,
        c1,
        noise_bound: params.noise_model().fresh_pk(),
        seed: None,
    })
}

/// Encrypts under the secret key: `(-a·s + e + round(Q m/t), a)` with `a` expanded from a
/// fresh 32-byte seed, so the ciphertext can be sent seed-compressed.
///
/// # Errors
/// [`BfvError::ForeignObject`] for a key of other parameters; [`BfvError::PlainMismatch`].
pub fn encrypt_sk<R: RngCore + CryptoRng>(
    params: &BfvParams,
    sk: &SecretKey,
    pt: &Plaintext,
    rng: &mut R,
) -> Result<Ciphertext, BfvError> {
    let he = params.he();
    check_fp(he.fingerprint(), sk.fingerprint())?;
    check_plain(params, pt)?;
    let (mut c0, c1, seed) = zero_sk(he, sk, rng, he.max_level());
    c0.add_assign(&scaled_plain(params, pt), he.basis());
    Ok(Ciphertext {
        fingerprint: params.fingerprint(),
        c0,
        c1,
        noise_bound: params.noise_model().fresh_sk(),
        seed: Some(seed),
    })
}

/// `c_0 + c_1·s` in coefficient form.
fn phase(params: &BfvParams, sk: &SecretKey, ct: &Ciphertext) -> Result<RnsPoly<Coeff>, BfvError> {
    let he = params.he();
    check_fp(he.fingerprint(), sk.fingerprint())?;
    check_fp(params.fingerprint(), ct.fingerprint)?;
    let mut x = ct.c0.clone();
    x.mul_add_assign(&ct.c1, sk.poly(), he.basis());
    Ok(x.into_coeff(he.basis()))
}

/// Decrypts: `round(t/Q·(c_0 + c_1 s)) mod t` by the HPS scaling ([`super::rns`]).
///
/// # Errors
/// [`BfvError::ForeignObject`] for a key or ciphertext of other parameters.
pub fn decrypt(params: &BfvParams, sk: &SecretKey, ct: &Ciphertext) -> Result<Plaintext, BfvError> {
    let x = phase(params, sk, ct)?;
    Ok(scale_down(params, &x))
}

/// `round(t/Q·x) mod t` for a phase `x` in coefficient form.
fn scale_down(params: &BfvParams, x: &RnsPoly<Coeff>) -> Plaintext {
    let m = params.scale_dec.scale(x, None);
    Plaintext {
        t: params.plain_modulus().value(),
        coeffs: m.limb(0).to_vec(),
    }
}

/// Decrypts as [`decrypt`] and measures the noise budget of `ct` as [`noise_budget`] from
/// the same phase: what a key holder needs to refuse a ciphertext that carries more noise
/// than an honest evaluation can (a crafted one placed near the rounding boundary).
///
/// # Errors
/// [`BfvError::ForeignObject`] for a key or ciphertext of other parameters.
pub fn decrypt_measured(
    params: &BfvParams,
    sk: &SecretKey,
    ct: &Ciphertext,
) -> Result<(Plaintext, f64), BfvError> {
    let x = phase(params, sk, ct)?;
    let pt = scale_down(params, &x);
    Ok((pt, budget_of_phase(params, x)))
}

/// The measured invariant noise budget in bits, `log2 Q - 1 - log2 ‖[t·(c_0 + c_1 s)]_Q‖∞`
/// (see [`super::noise`]); decryption is correct when it is positive. A zero noise
/// polynomial reports `log2 Q - 1`.
///
/// # Errors
/// [`BfvError::ForeignObject`] for a key or ciphertext of other parameters.
pub fn noise_budget(params: &BfvParams, sk: &SecretKey, ct: &Ciphertext) -> Result<f64, BfvError> {
    Ok(budget_of_phase(params, phase(params, sk, ct)?))
}

/// `log2 Q - 1 - log2 ‖[t·x]_Q‖∞` for a phase `x` in coefficient form (at least `1` is
/// taken as the norm, so a zero polynomial reports `log2 Q - 1`). The norm is composed in
/// `f64`: relative error about `2^-50`, far below the bit the budget is read to.
fn budget_of_phase(params: &BfvParams, mut x: RnsPoly<Coeff>) -> f64 {
    let he = params.he();
    x.mul_scalar_assign(params.t_in_q(), he.basis());
    let l = he.max_level();
    let mut residues = alloc::vec![0u64; l];
    let mut scratch = alloc::vec![0u64; l];
    let mut max = 1.0f64;
    for c in 0..he.n() {
        for (i, r) in residues.iter_mut().enumerate() {
            *r = x.limb(i)[c];
        }
        max = max.max(libm::fabs(
            he.basis().compose_centred(&residues, &mut scratch),
        ));
    }
    // log2 Q - 1 - log2 max = -log2(2·max/Q).
    params.log2_q() - 1.0 - libm::log2(max)
}
