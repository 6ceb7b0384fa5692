//! Secret, public, relinearisation and Galois keys, and hybrid key switching.
//!
//! # Distributions
//!
//! The secret `s` is ternary, each coefficient uniform in `{-1, 0, 1}`
//! ([`heist_core::sample::ternary`]). Errors are centred binomial with `η = 21`
//! (variance `10.5`, [`heist_core::sample::centred_binomial`]). Uniform polynomials are
//! drawn directly in evaluation form (the NTT is a bijection, so this is uniform).
//!
//! # Key switching (hybrid, one special prime, as Microsoft SEAL)
//!
//! A [`KeySwitchKey`] from `s'` to `s` holds, for each chain prime `q_j`, a pair
//! `(b_j, a_j)` modulo `q_0 ⋯ q_{L-1} · P` with `b_j = -a_j s + e_j + P · g_j · s'`, where
//! the gadget `g_j ≡ δ_ij (mod q_i)` (CRT basis element, so `Σ_j [c]_{q_j} g_j ≡ c`). To
//! switch `c` at level `k`, each digit `[c]_{q_j}` (`j < k`), taken centred in
//! `(-q_j/2, q_j/2]`, is lifted to the primes
//! `q_0..q_{k-1}, P`, and `(u_0, u_1) = Σ_j [c]_{q_j} · (b_j, a_j)` satisfies
//! `u_0 + u_1 s ≡ P c s' + Σ_j [c]_{q_j} e_j`. Dividing by `P` with rounding
//! ([`heist_core::rns::divide_round_limb`]) gives `c s' + E` with
//!
//! ```text
//! E = (1/P) Σ_{j<k} [c]_{q_j} e_j  +  (r_0 + r_1 s),   |r_0|, |r_1| <= 1/2 per coefficient,
//! ```
//!
//! so, as `|[c]_{q_j}| <= q_j/2 <= P/2`, the first term has coefficients of size about
//! `sqrt(k N / 12) · σ` and the switch adds noise of the size of a fresh encryption.
//! [`keyswitch_noise_bound`] gives the slot bound used by precision estimates.
//!
//! # Secret material
//!
//! [`SecretKey`] wipes its polynomial on drop (`zeroize`) and is never encoded together
//! with public material: the evaluation keys ([`PublicKey`], [`RelinKey`],
//! [`GaloisKeys`]) are separate types holding no secret. It has no `Clone` and its `Debug`
//! shows only the fingerprint. Temporaries that would give the key away are wiped too: the
//! signed ternary coefficients after conversion, `a·s` in every RLWE sample, `s²` for the
//! relinearisation key; so are the sampler's byte buffer, the per-job encryption seeds and
//! the encoded key's bytes ([`SecretKey::encode`] returns a `Zeroizing` buffer).

use alloc::vec::Vec;

use heist_core::rns::{divide_round_limb, lift_centred, Eval, RnsPoly};
use heist_core::sample::{centred_binomial, fill_uniform_mod, ternary, ETA};
use rand_chacha::rand_core::SeedableRng;
use rand_core::{CryptoRng, RngCore};

use crate::params::HeParams;

/// The variance of one error coefficient (`η / 2`).
pub const ERROR_VARIANCE: f64 = ETA as f64 / 2.0;
/// The variance of one ternary secret coefficient (`2/3`).
pub const SECRET_VARIANCE: f64 = 2.0 / 3.0;

/// Why coefficients do not make a [`SecretKey`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// Not one coefficient per degree of the ring.
    Length {
        /// The ring degree `N`.
        expected: usize,
        /// The number of coefficients given.
        found: usize,
    },
    /// A coefficient is not in `{-1, 0, 1}`.
    NotTernary {
        /// Its index.
        index: usize,
        /// Its value.
        value: i64,
    },
}

impl core::fmt::Display for KeyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Length { expected, found } => {
                write!(f, "a key has {expected} coefficients, got {found}")
            }
            Self::NotTernary { index, value } => {
                write!(f, "key coefficient {index} is {value}, not in {{-1, 0, 1}}")
            }
        }
    }
}

impl core::error::Error for KeyError {}

/// The secret key `s`, ternary, kept in evaluation form over the whole basis (chain and
/// special prime). Wiped on drop.
pub struct SecretKey {
    fingerprint: u64,
    s: RnsPoly<Eval>,
}

impl core::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SecretKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.s.wipe();
    }
}

/// Converts a polynomial with small signed coefficients to evaluation form over the first
/// `limbs` primes of the basis, wiping the coefficient vector afterwards.
pub(crate) fn small_to_eval(
    params: &HeParams,
    mut coeffs: Vec<i64>,
    limbs: usize,
) -> RnsPoly<Eval> {
    let basis = params.basis();
    let p = heist_core::rns::RnsPoly::from_signed(&coeffs, limbs, basis).into_eval(basis);
    zeroize::Zeroize::zeroize(coeffs.as_mut_slice());
    p
}

/// A fresh error polynomial (centred binomial) in evaluation form over `limbs` primes.
pub(crate) fn error_eval<R: RngCore + CryptoRng>(
    params: &HeParams,
    rng: &mut R,
    limbs: usize,
) -> RnsPoly<Eval> {
    small_to_eval(params, centred_binomial(rng, params.n()), limbs)
}

/// A uniform polynomial in evaluation form over `limbs` primes.
pub(crate) fn uniform_eval<R: RngCore + ?Sized>(
    params: &HeParams,
    rng: &mut R,
    limbs: usize,
) -> RnsPoly<Eval> {
    let basis = params.basis();
    let mut a = RnsPoly::zero(params.n(), limbs);
    for i in 0..limbs {
        fill_uniform_mod(rng, basis.modulus(i), a.limb_mut(i));
    }
    a
}

impl SecretKey {
    /// A fresh ternary secret key.
    pub fn generate<R: RngCore + CryptoRng>(params: &HeParams, rng: &mut R) -> Self {
        let s = small_to_eval(params, ternary(rng, params.n()), params.basis().len());
        Self {
            fingerprint: params.fingerprint(),
            s,
        }
    }

    /// The ternary key with coefficients `coeffs` (each in `{-1, 0, 1}`), over the whole
    /// basis of `params`: a key imported from elsewhere, or recovered.
    ///
    /// # Errors
    /// [`KeyError::Length`] unless there are `N` coefficients; [`KeyError::NotTernary`]
    /// naming the first coefficient outside `{-1, 0, 1}`.
    pub fn from_ternary(params: &HeParams, coeffs: &[i64]) -> Result<Self, KeyError> {
        if coeffs.len() != params.n() {
            return Err(KeyError::Length {
                expected: params.n(),
                found: coeffs.len(),
            });
        }
        if let Some((index, &value)) = coeffs.iter().enumerate().find(|(_, c)| c.abs() > 1) {
            return Err(KeyError::NotTernary { index, value });
        }
        let s = small_to_eval(params, coeffs.to_vec(), params.basis().len());
        Ok(Self {
            fingerprint: params.fingerprint(),
            s,
        })
    }

    /// Rebuilds a key from its evaluation-form polynomial over the whole basis (decoding).
    pub(crate) fn from_eval(params: &HeParams, s: RnsPoly<Eval>) -> Self {
        Self {
            fingerprint: params.fingerprint(),
            s,
        }
    }

    /// The fingerprint of the parameters this key belongs to.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// `s` in evaluation form over the whole basis (chain and special prime).
    pub fn poly(&self) -> &RnsPoly<Eval> {
        &self.s
    }
}

/// The public key `(b, a) = (-a s + e, a)` over the whole chain (level `L`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub(crate) fingerprint: u64,
    pub(crate) b: RnsPoly<Eval>,
    pub(crate) a: RnsPoly<Eval>,
}

impl PublicKey {
    /// A public key for `sk`.
    pub fn generate<R: RngCore + CryptoRng>(
        params: &HeParams,
        sk: &SecretKey,
        rng: &mut R,
    ) -> Self {
        let l = params.max_level();
        let (b, a) = rlwe_sample(params, sk.poly(), l, rng);
        Self {
            fingerprint: params.fingerprint(),
            b,
            a,
        }
    }

    /// The fingerprint of the parameters this key belongs to.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// `b = -a s + e`.
    pub fn b(&self) -> &RnsPoly<Eval> {
        &self.b
    }

    /// `a`, uniform.
    pub fn a(&self) -> &RnsPoly<Eval> {
        &self.a
    }
}

/// `(-a s + e, a)` over `limbs` primes, `a` uniform, `e` centred binomial.
fn rlwe_sample<R: RngCore + CryptoRng>(
    params: &HeParams,
    s: &RnsPoly<Eval>,
    limbs: usize,
    rng: &mut R,
) -> (RnsPoly<Eval>, RnsPoly<Eval>) {
    let a = uniform_eval(params, rng, limbs);
    let e = error_eval(params, rng, limbs);
    (minus_as_plus(&a, s, e, params), a)
}

/// `-a·s + e` (over the limbs of `a`; `s` may have more).
///
/// # Ranges
/// Residues in `[0, q_i)` → `[0, q_i)`.
fn minus_as_plus(
    a: &RnsPoly<Eval>,
    s: &RnsPoly<Eval>,
    mut e: RnsPoly<Eval>,
    params: &HeParams,
) -> RnsPoly<Eval> {
    let mut as_ = a.clone();
    as_.mul_assign(s, params.basis());
    e.sub_assign(&as_, params.basis());
    // a·s and a (public) together give s: the product does not outlive this call.
    as_.wipe();
    e
}

/// Expands a 32-byte seed into the uniform polynomial of a seeded ciphertext (ChaCha20,
/// limb after limb, rejection sampling as [`heist_core::sample::uniform_mod`]).
pub(crate) fn expand_seed(params: &HeParams, seed: [u8; 32], limbs: usize) -> RnsPoly<Eval> {
    let mut prng = rand_chacha::ChaCha20Rng::from_seed(seed);
    uniform_eval(params, &mut prng, limbs)
}

/// A fresh encryption of zero under the secret key over `limbs` primes, in evaluation
/// form: `(-a·s + e, a)` with `a` expanded from a 32-byte seed drawn first from `rng`
/// (returned, so the ciphertext can travel seed-compressed), then `e`. A scheme adds its
/// encoded message to the first part.
pub(crate) fn zero_sk<R: RngCore + CryptoRng>(
    params: &HeParams,
    sk: &SecretKey,
    rng: &mut R,
    limbs: usize,
) -> (RnsPoly<Eval>, RnsPoly<Eval>, [u8; 32]) {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let a = expand_seed(params, seed, limbs);
    let e = error_eval(params, rng, limbs);
    (minus_as_plus(&a, sk.poly(), e, params), a, seed)
}

/// A fresh encryption of zero under the public key over `limbs` primes, in evaluation
/// form: `(u·b + e_0, u·a + e_1)` with `u` ternary (drawn first, then `e_0`, `e_1`) and
/// wiped afterwards: with it, the message could be read off the ciphertext and the public
/// key. A scheme adds its encoded message to the first part.
pub(crate) fn zero_pk<R: RngCore + CryptoRng>(
    params: &HeParams,
    pk: &PublicKey,
    rng: &mut R,
    limbs: usize,
) -> (RnsPoly<Eval>, RnsPoly<Eval>) {
    let basis = params.basis();
    let mut u = small_to_eval(params, ternary(rng, params.n()), limbs);
    let mut c0 = error_eval(params, rng, limbs);
    let mut c1 = error_eval(params, rng, limbs);
    c0.mul_add_assign(&u, pk.b(), basis);
    c1.mul_add_assign(&u, pk.a(), basis);
    u.wipe();
    (c0, c1)
}

/// A key-switching key from some `s'` to `s` (see the [module documentation](self)): one
/// pair `(b_j, a_j)` per chain prime, each over the whole basis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySwitchKey {
    pub(crate) fingerprint: u64,
    pub(crate) digits: Vec<(RnsPoly<Eval>, RnsPoly<Eval>)>,
}

impl KeySwitchKey {
    /// The key switching from `target` (a secret `s'` in evaluation form over the whole
    /// basis, chain and special prime) to `sk`.
    pub fn generate<R: RngCore + CryptoRng>(
        params: &HeParams,
        sk: &SecretKey,
        target: &RnsPoly<Eval>,
        rng: &mut R,
    ) -> Self {
        let basis = params.basis();
        let all = basis.len();
        let digits = (0..params.max_level())
            .map(|j| {
                let (mut b, a) = rlwe_sample(params, sk.poly(), all, rng);
                // Limb j gains P · s' (mod q_j); every other limb gains nothing.
                let q = basis.modulus(j);
                let w = q.shoup(params.special_mod()[j]);
                for (x, &t) in b.limb_mut(j).iter_mut().zip(target.limb(j)) {
                    *x = q.add(*x, q.mul_shoup(t, w));
                }
                (b, a)
            })
            .collect();
        Self {
            fingerprint: params.fingerprint(),
            digits,
        }
    }

    /// The fingerprint of the parameters this key belongs to.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The pairs `(b_j, a_j)`, one per chain prime.
    pub fn digits(&self) -> &[(RnsPoly<Eval>, RnsPoly<Eval>)] {
        &self.digits
    }
}

/// Reusable buffers for [`key_switch`], so repeated switches do not allocate.
#[derive(Debug, Clone, Default)]
pub struct KeySwitchScratch {
    coeff: Vec<u64>,
    digit: Vec<u64>,
    tmp: Vec<u64>,
    acc0: Vec<u128>,
    acc1: Vec<u128>,
    special0: Vec<u64>,
    special1: Vec<u64>,
}

/// `acc_0 = Σ_j d_j · b_j`, `acc_1 = Σ_j d_j · a_j` in limb `bi` of the basis, `d_j` the
/// digits `[c]_{q_j}` lifted to prime `bi` in evaluation form. Accumulates lazily in `u128`.
fn accumulate_digits(
    params: &HeParams,
    key: &KeySwitchKey,
    c: &RnsPoly<Eval>,
    bi: usize,
    s: &mut KeySwitchScratch,
) {
    let n = params.n();
    let plan = params.basis().plan(bi);
    let q = plan.modulus();
    s.acc0.fill(0);
    s.acc1.fill(0);
    for j in 0..c.limbs() {
        let digit: &[u64] = if j == bi {
            c.limb(j)
        } else {
            // The centred digit, so its size is at most q_j / 2 (see the noise bound).
            let qj = params.basis().modulus(j).value();
            let (half, qj_mod) = (qj / 2, q.reduce(qj));
            for (d, &x) in s.digit.iter_mut().zip(&s.coeff[j * n..(j + 1) * n]) {
                *d = lift_centred(x, qj, half, q, qj_mod);
            }
            plan.forward(&mut s.digit);
            &s.digit
        };
        let (kb, ka) = &key.digits[j];
        for (((a0, a1), &d), (&x, &y)) in s
            .acc0
            .iter_mut()
            .zip(s.acc1.iter_mut())
            .zip(digit)
            .zip(kb.limb(bi).iter().zip(ka.limb(bi)))
        {
            *a0 += d as u128 * x as u128;
            *a1 += d as u128 * y as u128;
        }
        // Each product is below 2^124; folding every 8 terms keeps the sums below 2^128.
        if j % 8 == 7 {
            for (a0, a1) in s.acc0.iter_mut().zip(s.acc1.iter_mut()) {
                *a0 = q.reduce_u128(*a0) as u128;
                *a1 = q.reduce_u128(*a1) as u128;
            }
        }
    }
}

/// Switches `c` (evaluation form, `k` limbs, `1 <= k <= L`) under `s'` to `(u_0, u_1)`
/// under `s` with `u_0 + u_1 s ≈ c s'`, **adding** the results to `out0` and `out1` (both
/// `k` limbs). See the [module documentation](self) for the method and its noise.
///
/// # Ranges
/// All residues in `[0, q_i)` → `out0`, `out1` in `[0, q_i)`.
///
/// # Panics
/// If the limb counts of `c`, `out0`, `out1` differ or exceed the chain, or the key
/// belongs to other parameters.
pub fn key_switch(
    params: &HeParams,
    key: &KeySwitchKey,
    c: &RnsPoly<Eval>,
    out0: &mut RnsPoly<Eval>,
    out1: &mut RnsPoly<Eval>,
    scratch: &mut KeySwitchScratch,
) {
    let basis = params.basis();
    let n = params.n();
    let k = c.limbs();
    assert!(
        k >= 1 && k <= params.max_level() && out0.limbs() == k && out1.limbs() == k,
        "key_switch: {k} limbs, outputs {} and {}",
        out0.limbs(),
        out1.limbs()
    );
    assert_eq!(
        key.fingerprint,
        params.fingerprint(),
        "key_switch: foreign key"
    );
    let s = scratch;
    s.coeff.clear();
    s.coeff.extend_from_slice(c.as_slice());
    for j in 0..k {
        basis.plan(j).inverse(&mut s.coeff[j * n..(j + 1) * n]);
    }
    for v in [&mut s.digit, &mut s.tmp, &mut s.special0, &mut s.special1] {
        v.resize(n, 0);
    }
    s.acc0.resize(n, 0);
    s.acc1.resize(n, 0);
    // The special prime first: its limb, in coefficient form, drives the division by P.
    let sp = params.special_index();
    let special = basis.plan(sp);
    accumulate_digits(params, key, c, sp, s);
    for (x, &a) in s.special0.iter_mut().zip(&s.acc0) {
        *x = special.modulus().reduce_u128(a);
    }
    for (x, &a) in s.special1.iter_mut().zip(&s.acc1) {
        *x = special.modulus().reduce_u128(a);
    }
    special.inverse(&mut s.special0);
    special.inverse(&mut s.special1);
    let p = params.special();
    for t in 0..k {
        accumulate_digits(params, key, c, t, s);
        let plan = basis.plan(t);
        let q = plan.modulus();
        let inv = params.special_inv()[t];
        for (out, acc, last) in [
            (&mut *out0, &s.acc0, &s.special0),
            (&mut *out1, &s.acc1, &s.special1),
        ] {
            for (x, &a) in s.digit.iter_mut().zip(acc.iter()) {
                *x = q.reduce_u128(a);
            }
            divide_round_limb(&mut s.digit, plan, last, p, inv, &mut s.tmp);
            for (o, &x) in out.limb_mut(t).iter_mut().zip(&s.digit) {
                *o = q.add(*o, x);
            }
        }
    }
}

/// The number of standard deviations in a high-probability slot bound (see
/// [`slot_bound`]).
pub const BETA: f64 = 6.0;

/// A bound on every slot (canonical embedding) of a polynomial with independent centred
/// coefficients of variance `var`: `BETA · sqrt(N · var)`. Each slot is a sum of `N` such
/// terms of modulus one, close to a complex Gaussian of variance `N · var`, which exceeds
/// `BETA` standard deviations with probability `exp(-BETA²) ≈ 2·10^-16`. A slot of a
/// product of two independent such polynomials is the product of their slots and is bounded
/// by the product of their bounds (not by `BETA` times the product's deviation: products
/// of Gaussians have heavier tails).
pub fn slot_bound(n: f64, var: f64) -> f64 {
    BETA * libm::sqrt(n * var)
}

/// A slot bound on the noise [`key_switch`] adds at level `k`:
/// `(1/P) Σ_j [c]_{q_j} e_j` with centred digits (variance `q_j²/12`), bounded given the
/// digits as a Gaussian of variance `Σ_j |d_j|² N σ²` with `|d_j| <=` [`slot_bound`]`(N,
/// q_j²/12)`, so `BETA² N σ sqrt(Σ_j q_j²/12) / P`; plus [`rounding_bound`] for the
/// division by `P`.
pub fn keyswitch_noise_bound(params: &HeParams, k: usize) -> f64 {
    let n = params.n() as f64;
    let p = params.special() as f64;
    let sum_q2: f64 = params.chain()[..k]
        .iter()
        .map(|&q| (q as f64 / p) * (q as f64 / p) / 12.0)
        .sum();
    BETA * BETA * n * libm::sqrt(ERROR_VARIANCE * sum_q2) + rounding_bound(n)
}

/// The variance of one slot of `r_0 + r_1 s` for `r_0, r_1` with independent coefficients
/// of variance `1/12` (round-offs): `N/12 + N · N · (2/3) / 12`. A Gaussian-style bound
/// `BETA · sqrt(·)` of this variance under-estimates the tail of the product `r_1 s`;
/// [`rounding_bound`] is the bound to use.
pub fn rounding_variance(n: f64) -> f64 {
    n / 12.0 + n * n * SECRET_VARIANCE / 12.0
}

/// A slot bound on `r_0 + r_1 s` for `r_0, r_1` with coefficients in `[-1/2, 1/2]`
/// (variance at most `1/12`), the round-off of a division by a prime:
/// [`slot_bound`]`(N, 1/12) + BETA² N sqrt((1/12)(2/3))`.
pub fn rounding_bound(n: f64) -> f64 {
    slot_bound(n, 1.0 / 12.0) + BETA * BETA * n * libm::sqrt(SECRET_VARIANCE / 12.0)
}

/// The Galois key for the automorphism `X → X^g`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaloisKey {
    pub(crate) element: u64,
    pub(crate) key: KeySwitchKey,
    /// The evaluation-position permutation of `X → X^g` (derived, not encoded).
    pub(crate) perm: Vec<u32>,
}

impl GaloisKey {
    /// The Galois element `g` (odd, below `2N`).
    pub fn element(&self) -> u64 {
        self.element
    }

    /// The key switching from `s(X^g)` to `s`.
    pub fn key(&self) -> &KeySwitchKey {
        &self.key
    }

    /// The permutation of evaluation positions realising `X → X^g`.
    pub fn permutation(&self) -> &[u32] {
        &self.perm
    }
}

/// A set of Galois keys, one per Galois element, sorted by element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaloisKeys {
    pub(crate) fingerprint: u64,
    pub(crate) keys: Vec<GaloisKey>,
}

impl GaloisKeys {
    /// Keys for the Galois elements `elements` (odd, below `2N`; duplicates dropped).
    ///
    /// # Errors
    /// [`crate::galois::GaloisError`] for an element that is even or not below `2N`.
    pub fn generate<R: RngCore + CryptoRng>(
        params: &HeParams,
        sk: &SecretKey,
        elements: &[u64],
        rng: &mut R,
    ) -> Result<Self, crate::galois::GaloisError> {
        let mut els = elements.to_vec();
        els.sort_unstable();
        els.dedup();
        let mut keys = Vec::with_capacity(els.len());
        for g in els {
            let perm = crate::galois::permutation(params.n(), g)?;
            let mut target = RnsPoly::zero(params.n(), params.basis().len());
            crate::galois::apply(&perm, sk.poly(), &mut target);
            keys.push(GaloisKey {
                element: g,
                key: KeySwitchKey::generate(params, sk, &target, rng),
                perm,
            });
            target.wipe();
        }
        Ok(Self {
            fingerprint: params.fingerprint(),
            keys,
        })
    }

    /// The fingerprint of the parameters these keys belong to.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The key for element `g`, if present.
    pub fn get(&self, g: u64) -> Option<&GaloisKey> {
        self.keys
            .binary_search_by_key(&g, |k| k.element)
            .ok()
            .map(|i| &self.keys[i])
    }

    /// All keys, sorted by element.
    pub fn keys(&self) -> &[GaloisKey] {
        &self.keys
    }
}

/// The relinearisation key: the key switching from `s²` to `s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelinKey(pub(crate) KeySwitchKey);

impl RelinKey {
    /// The relinearisation key of `sk`.
    pub fn generate<R: RngCore + CryptoRng>(
        params: &HeParams,
        sk: &SecretKey,
        rng: &mut R,
    ) -> Self {
        let mut s2 = sk.poly().clone();
        s2.mul_assign(sk.poly(), params.basis());
        let key = KeySwitchKey::generate(params, sk, &s2, rng);
        s2.wipe();
        Self(key)
    }

    /// The underlying key switching key.
    pub fn key(&self) -> &KeySwitchKey {
        &self.0
    }
}
