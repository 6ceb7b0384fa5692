//! Residue number system (RNS) bases and polynomials over `Z_Q[X]/(X^N + 1)`.
//!
//! # Representation
//!
//! A modulus `Q = q_0 · q_1 · … · q_{k-1}` of pairwise distinct NTT-friendly primes is held
//! as an [`RnsBasis`]: one [`NttPlan`] per prime, in chain order. An element of
//! `Z_Q[X]/(X^N + 1)` is an [`RnsPoly`]: `k` limbs of `N` residues, limb `i` holding the
//! polynomial modulo `q_i`, stored contiguously (`data[i·N .. (i+1)·N]`).
//!
//! The marker type says which representation a polynomial is in (STYLE practice 3):
//! [`Coeff`] (coefficients, natural order) or [`Eval`] (the negacyclic NTT of each limb,
//! in the bit-reversed evaluation order documented in [`crate::ntt`]). The NTT is the only
//! way between them ([`RnsPoly::into_eval`], [`RnsPoly::into_coeff`]), and the pointwise
//! product exists only on [`Eval`].
//!
//! A polynomial with `k` limbs uses the first `k` primes of the basis it is combined with
//! (a *prefix*); this is how a ciphertext at a lower level lives in the same basis. Binary
//! operations accept a right operand with more limbs than the left one and use only its
//! first limbs (its value modulo the left operand's smaller modulus).
//!
//! # Invariant and ranges
//!
//! Every residue of an [`RnsPoly`] lies in `[0, q_i)` on entry to and exit from every public
//! function; debug builds check it.
//!
//! # CRT reconstruction
//!
//! [`RnsBasis::compose_centred`] maps residues back to the centred integer in
//! `(-Q/2, Q/2]` with Garner's mixed-radix algorithm (Knuth, TAOCP vol. 2, §4.3.2), and
//! returns it as an `f64`; it decides the sign exactly with the mixed-radix digits of
//! `(Q - 1)/2`, which are `(q_i - 1)/2` for odd `q_i`.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;

use crate::arith::{csub, Modulus, ShoupConst};
use crate::ntt::{NttError, NttPlan};

/// The largest number of primes in one basis.
pub const MAX_PRIMES: usize = 64;

/// An error building an [`RnsBasis`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RnsError {
    /// The basis has no primes or more than [`MAX_PRIMES`].
    BadCount {
        /// The number of primes given.
        count: usize,
    },
    /// A prime appears twice.
    Duplicate {
        /// The repeated prime.
        p: u64,
    },
    /// A prime cannot carry a negacyclic NTT of this length.
    Ntt(NttError),
}

impl fmt::Display for RnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadCount { count } => write!(
                f,
                "an RNS basis needs between 1 and {MAX_PRIMES} primes, got {count}"
            ),
            Self::Duplicate { p } => write!(f, "prime {p} appears twice in the RNS basis"),
            Self::Ntt(e) => write!(f, "RNS prime: {e}"),
        }
    }
}

impl core::error::Error for RnsError {}

impl From<NttError> for RnsError {
    fn from(e: NttError) -> Self {
        Self::Ntt(e)
    }
}

/// A chain of distinct NTT-friendly primes for one ring degree `N`, with the constants of
/// Garner's CRT reconstruction.
#[derive(Debug, Clone)]
pub struct RnsBasis {
    n: usize,
    plans: Vec<NttPlan>,
    /// `garner_inv[i] = (q_0 ⋯ q_{i-1})^-1 mod q_i` (index 0 unused, set to 1).
    garner_inv: Vec<ShoupConst>,
    /// `garner_q[i·k + j] = q_j mod q_i` for `j < i`.
    garner_q: Vec<u64>,
}

impl RnsBasis {
    /// Plans the NTT of length `n` for every prime of `primes`, in that order.
    ///
    /// # Errors
    /// [`RnsError::BadCount`], [`RnsError::Duplicate`], or [`RnsError::Ntt`] when a prime is
    /// not an NTT prime for `n` (see [`NttPlan::new`]).
    pub fn new(n: usize, primes: &[u64]) -> Result<Self, RnsError> {
        let k = primes.len();
        if k == 0 || k > MAX_PRIMES {
            return Err(RnsError::BadCount { count: k });
        }
        for (i, &p) in primes.iter().enumerate() {
            if primes[..i].contains(&p) {
                return Err(RnsError::Duplicate { p });
            }
        }
        let plans = primes
            .iter()
            .map(|&p| NttPlan::new(n, p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut garner_inv = Vec::with_capacity(k);
        let mut garner_q = vec![0u64; k * k];
        for i in 0..k {
            let qi = plans[i].modulus();
            let mut prod = 1u64;
            for j in 0..i {
                let qj = qi.reduce(primes[j]);
                garner_q[i * k + j] = qj;
                prod = qi.mul(prod, qj);
            }
            // Distinct primes: the product of the others is invertible modulo q_i.
            let inv = qi.inv(prod).ok_or(RnsError::Duplicate { p: primes[i] })?;
            garner_inv.push(qi.shoup(inv));
        }
        Ok(Self {
            n,
            plans,
            garner_inv,
            garner_q,
        })
    }

    /// The ring degree `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The number of primes `k`.
    pub fn len(&self) -> usize {
        self.plans.len()
    }

    /// Always `false`: a basis has at least one prime.
    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }

    /// The NTT plan of prime `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn plan(&self, i: usize) -> &NttPlan {
        &self.plans[i]
    }

    /// The modulus `q_i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn modulus(&self, i: usize) -> &Modulus {
        self.plans[i].modulus()
    }

    /// All plans, in chain order.
    pub fn plans(&self) -> &[NttPlan] {
        &self.plans
    }

    /// The primes, in chain order.
    pub fn primes(&self) -> Vec<u64> {
        self.plans.iter().map(|p| p.modulus().value()).collect()
    }

    /// The centred integer `x` in `(-Q_k/2, Q_k/2]` with `x ≡ residues[i] (mod q_i)` for
    /// the first `k = residues.len()` primes, as an `f64`.
    ///
    /// Garner's algorithm yields exact mixed-radix digits `v_i` (`x = Σ v_i Π_{j<i} q_j`);
    /// the sign is decided exactly on those digits; only the final Horner evaluation in
    /// `f64` rounds: the result is exact when `|x| < 2^53` and within a relative error of
    /// `2k · 2^-53` otherwise.
    /// `scratch` must hold at least `k` words; it avoids an allocation per coefficient.
    ///
    /// # Ranges
    /// `residues[i]` in `[0, q_i)`, every prime odd → output the centred value as above.
    ///
    /// # Panics
    /// If `residues` is empty or longer than the basis, or `scratch` is shorter.
    pub fn compose_centred(&self, residues: &[u64], scratch: &mut [u64]) -> f64 {
        let k = residues.len();
        assert!(
            (1..=self.len()).contains(&k) && scratch.len() >= k,
            "compose_centred: {k} residues for a basis of {} primes, scratch {}",
            self.len(),
            scratch.len()
        );
        let kk = self.len();
        let digits = &mut scratch[..k];
        for i in 0..k {
            let qi = self.modulus(i);
            debug_assert!(
                residues[i] < qi.value(),
                "compose_centred: residue >= q_{i}"
            );
            // t = v_0 + v_1 q_0 + … + v_{i-1} q_0⋯q_{i-2}  (mod q_i), by Horner.
            let mut t = 0u64;
            for j in (0..i).rev() {
                t = qi.add(qi.mul(t, self.garner_q[i * kk + j]), qi.reduce(digits[j]));
            }
            digits[i] = if i == 0 {
                residues[0]
            } else {
                qi.mul_shoup(qi.sub(residues[i], t), self.garner_inv[i])
            };
        }
        // x > (Q-1)/2 iff the digits, read from the top, exceed (q_i - 1)/2 lexicographically.
        let mut negative = false;
        for i in (0..k).rev() {
            let half = self.modulus(i).value() / 2;
            if digits[i] != half {
                negative = digits[i] > half;
                break;
            }
        }
        let mut acc = 0.0f64;
        for i in (0..k).rev() {
            let q = self.modulus(i).value();
            // Q - 1 - x has digits q_i - 1 - v_i (no borrows); Q - x adds one below.
            let d = if negative {
                q - 1 - digits[i]
            } else {
                digits[i]
            };
            acc = acc * q as f64 + d as f64;
        }
        if negative {
            -(acc + 1.0)
        } else {
            acc
        }
    }
}

/// Marker: the polynomial holds coefficients (natural order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coeff {}

/// Marker: the polynomial holds NTT evaluations (bit-reversed order, see [`crate::ntt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eval {}

/// An element of `Z_Q[X]/(X^N + 1)` in RNS form, in the representation `R` ([`Coeff`] or
/// [`Eval`]). See the [module documentation](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RnsPoly<R> {
    n: usize,
    limbs: usize,
    data: Vec<u64>,
    _repr: PhantomData<R>,
}

impl<R> RnsPoly<R> {
    /// The zero polynomial with `limbs` limbs of degree `n`.
    pub fn zero(n: usize, limbs: usize) -> Self {
        Self {
            n,
            limbs,
            data: vec![0u64; n * limbs],
            _repr: PhantomData,
        }
    }

    /// Wraps `data` (`limbs · n` residues, limb after limb) without checking ranges.
    ///
    /// # Ranges
    /// The caller guarantees residue `data[i·n + j]` in `[0, q_i)`; debug builds check it
    /// at the next operation. Use [`Self::from_vec_checked`] for untrusted data.
    ///
    /// # Panics
    /// If `data.len() != n · limbs`.
    pub fn from_vec(n: usize, limbs: usize, data: Vec<u64>) -> Self {
        assert_eq!(data.len(), n * limbs, "RnsPoly::from_vec: wrong length");
        Self {
            n,
            limbs,
            data,
            _repr: PhantomData,
        }
    }

    /// Wraps `data` after checking its length and that every residue is below its prime;
    /// `None` otherwise.
    pub fn from_vec_checked(basis: &RnsBasis, limbs: usize, data: Vec<u64>) -> Option<Self> {
        let n = basis.n();
        if limbs == 0 || limbs > basis.len() || data.len() != n * limbs {
            return None;
        }
        let ok = data
            .chunks_exact(n)
            .enumerate()
            .all(|(i, l)| l.iter().all(|&x| x < basis.modulus(i).value()));
        ok.then(|| Self::from_vec(n, limbs, data))
    }

    /// The ring degree `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The number of limbs (primes) `k`.
    pub fn limbs(&self) -> usize {
        self.limbs
    }

    /// Limb `i`: the `N` residues modulo `q_i`.
    ///
    /// # Panics
    /// If `i >= self.limbs()`.
    pub fn limb(&self, i: usize) -> &[u64] {
        &self.data[i * self.n..(i + 1) * self.n]
    }

    /// Limb `i`, mutable. The caller keeps residues in `[0, q_i)`.
    ///
    /// # Panics
    /// If `i >= self.limbs()`.
    pub fn limb_mut(&mut self, i: usize) -> &mut [u64] {
        &mut self.data[i * self.n..(i + 1) * self.n]
    }

    /// All residues, limb after limb.
    pub fn as_slice(&self) -> &[u64] {
        &self.data
    }

    /// All residues, mutable. The caller keeps residues in `[0, q_i)`.
    pub fn as_mut_slice(&mut self) -> &mut [u64] {
        &mut self.data
    }

    /// Drops limbs from the top until `limbs` remain (the value modulo the smaller `Q`).
    ///
    /// # Panics
    /// If `limbs` is zero or more than the current count.
    pub fn truncate(&mut self, limbs: usize) {
        assert!(
            limbs >= 1 && limbs <= self.limbs,
            "truncate to {limbs} of {} limbs",
            self.limbs
        );
        self.limbs = limbs;
        self.data.truncate(limbs * self.n);
    }

    /// Overwrites every residue with zero (`zeroize`: volatile writes and a compiler
    /// fence), so the wipe of secret material is not optimised away. The shape is kept.
    pub fn wipe(&mut self) {
        zeroize::Zeroize::zeroize(self.data.as_mut_slice());
    }

    fn check(&self, basis: &RnsBasis) {
        assert!(
            self.n == basis.n() && self.limbs <= basis.len(),
            "polynomial of degree {} with {} limbs used with a basis of degree {} and {} primes",
            self.n,
            self.limbs,
            basis.n(),
            basis.len()
        );
        debug_assert!(
            self.data
                .chunks_exact(self.n)
                .enumerate()
                .all(|(i, l)| l.iter().all(|&x| x < basis.modulus(i).value())),
            "RnsPoly residue out of range"
        );
    }

    /// Checks both operands against the basis; `other` may have more limbs than `self`
    /// (only its first `self.limbs()` are used: its value modulo the smaller modulus).
    fn check_pair(&self, other: &Self, basis: &RnsBasis) {
        self.check(basis);
        other.check(basis);
        assert!(
            other.limbs >= self.limbs,
            "operand has {} limbs, fewer than {}",
            other.limbs,
            self.limbs
        );
    }

    /// `self += other` limb-wise.
    ///
    /// # Ranges
    /// Residues in `[0, q_i)` → `[0, q_i)`.
    ///
    /// # Panics
    /// If degrees differ, `other` has fewer limbs, or either exceeds the basis.
    pub fn add_assign(&mut self, other: &Self, basis: &RnsBasis) {
        self.zip_limbs(other, basis, |x, y, p| csub(x + y, p));
    }

    /// Applies `f(x, y, q_i)` to every pair of residues of limb `i` of `self` and `other`,
    /// writing the result into `self`; the length checks of [`Self::add_assign`].
    #[inline(always)]
    fn zip_limbs(&mut self, other: &Self, basis: &RnsBasis, f: impl Fn(u64, u64, u64) -> u64) {
        self.check_pair(other, basis);
        let n = self.n;
        for (i, (a, b)) in self
            .data
            .chunks_exact_mut(n)
            .zip(other.data.chunks_exact(n))
            .enumerate()
        {
            let p = basis.modulus(i).value();
            for (x, &y) in a.iter_mut().zip(b) {
                *x = f(*x, y, p);
            }
        }
    }

    /// `self -= other` limb-wise.
    ///
    /// # Ranges
    /// Residues in `[0, q_i)` → `[0, q_i)`.
    ///
    /// # Panics
    /// As [`Self::add_assign`].
    pub fn sub_assign(&mut self, other: &Self, basis: &RnsBasis) {
        self.zip_limbs(other, basis, |x, y, p| csub(x + p - y, p));
    }

    /// `self = -self` limb-wise.
    ///
    /// # Ranges
    /// Residues in `[0, q_i)` → `[0, q_i)`.
    ///
    /// # Panics
    /// If the polynomial does not fit the basis.
    pub fn neg_assign(&mut self, basis: &RnsBasis) {
        self.check(basis);
        let n = self.n;
        for (i, a) in self.data.chunks_exact_mut(n).enumerate() {
            let p = basis.modulus(i).value();
            for x in a.iter_mut() {
                *x = csub(p - *x, p);
            }
        }
    }

    /// `self *= c` for a constant given by its residue `c_i` per limb (Shoup constants
    /// made by `basis.modulus(i).shoup(c_i)`), so `c` may be any integer modulo `Q`.
    ///
    /// # Ranges
    /// Residues in `[0, q_i)` → `[0, q_i)`.
    ///
    /// # Panics
    /// If fewer constants than limbs are given, or the polynomial does not fit the basis.
    pub fn mul_scalar_assign(&mut self, c: &[ShoupConst], basis: &RnsBasis) {
        self.check(basis);
        assert!(
            c.len() >= self.limbs,
            "mul_scalar_assign: too few constants"
        );
        let n = self.n;
        for (i, a) in self.data.chunks_exact_mut(n).enumerate() {
            let q = basis.modulus(i);
            let w = c[i];
            for x in a.iter_mut() {
                *x = q.mul_shoup(*x, w);
            }
        }
    }

    /// `self += other · c`, with `c` given per limb as in [`Self::mul_scalar_assign`].
    ///
    /// # Ranges
    /// Residues in `[0, q_i)` → `[0, q_i)`.
    ///
    /// # Panics
    /// As [`Self::add_assign`], or if fewer constants than limbs are given.
    pub fn add_scaled_assign(&mut self, other: &Self, c: &[ShoupConst], basis: &RnsBasis) {
        self.check_pair(other, basis);
        assert!(
            c.len() >= self.limbs,
            "add_scaled_assign: too few constants"
        );
        let n = self.n;
        for (i, (a, b)) in self
            .data
            .chunks_exact_mut(n)
            .zip(other.data.chunks_exact(n))
            .enumerate()
        {
            let q = basis.modulus(i);
            let p = q.value();
            let w = c[i];
            for (x, &y) in a.iter_mut().zip(b) {
                *x = csub(*x + q.mul_shoup(y, w), p);
            }
        }
    }
}

impl RnsPoly<Coeff> {
    /// The polynomial with the given signed integer coefficients, reduced modulo each of
    /// the first `limbs` primes.
    ///
    /// # Ranges
    /// Any `i64` coefficients → residues in `[0, q_i)`.
    ///
    /// # Panics
    /// If `coeffs.len() != N` or `limbs` is zero or exceeds the basis.
    pub fn from_signed(coeffs: &[i64], limbs: usize, basis: &RnsBasis) -> Self {
        let n = basis.n();
        assert!(
            coeffs.len() == n && (1..=basis.len()).contains(&limbs),
            "from_signed: {} coefficients, {limbs} limbs",
            coeffs.len()
        );
        let mut out = Self::zero(n, limbs);
        for (i, limb) in out.data.chunks_exact_mut(n).enumerate() {
            let q = basis.modulus(i);
            for (x, &c) in limb.iter_mut().zip(coeffs) {
                *x = q.from_i64(c);
            }
        }
        out
    }

    /// The forward NTT of every limb.
    ///
    /// # Ranges
    /// Residues in `[0, q_i)` → `[0, q_i)`.
    ///
    /// # Panics
    /// If the polynomial does not fit the basis.
    pub fn into_eval(mut self, basis: &RnsBasis) -> RnsPoly<Eval> {
        self.check(basis);
        let n = self.n;
        for (i, limb) in self.data.chunks_exact_mut(n).enumerate() {
            basis.plan(i).forward(limb);
        }
        RnsPoly {
            n,
            limbs: self.limbs,
            data: self.data,
            _repr: PhantomData,
        }
    }
}

impl RnsPoly<Eval> {
    /// The inverse NTT of every limb.
    ///
    /// # Ranges
    /// Residues in `[0, q_i)` → `[0, q_i)`.
    ///
    /// # Panics
    /// If the polynomial does not fit the basis.
    pub fn into_coeff(mut self, basis: &RnsBasis) -> RnsPoly<Coeff> {
        self.check(basis);
        let n = self.n;
        for (i, limb) in self.data.chunks_exact_mut(n).enumerate() {
            basis.plan(i).inverse(limb);
        }
        RnsPoly {
            n,
            limbs: self.limbs,
            data: self.data,
            _repr: PhantomData,
        }
    }

    /// `self *= other` pointwise (the negacyclic product of the underlying polynomials).
    ///
    /// # Ranges
    /// Residues in `[0, q_i)` → `[0, q_i)`.
    ///
    /// # Panics
    /// As [`RnsPoly::add_assign`].
    pub fn mul_assign(&mut self, other: &Self, basis: &RnsBasis) {
        self.check_pair(other, basis);
        let n = self.n;
        for (i, (a, b)) in self
            .data
            .chunks_exact_mut(n)
            .zip(other.data.chunks_exact(n))
            .enumerate()
        {
            let q = basis.modulus(i);
            for (x, &y) in a.iter_mut().zip(b) {
                *x = q.mul(*x, y);
            }
        }
    }

    /// `self += a · b` pointwise.
    ///
    /// # Ranges
    /// Residues in `[0, q_i)` → `[0, q_i)`.
    ///
    /// # Panics
    /// As [`RnsPoly::add_assign`], for all three operands.
    pub fn mul_add_assign(&mut self, a: &Self, b: &Self, basis: &RnsBasis) {
        self.check_pair(a, basis);
        self.check_pair(b, basis);
        let n = self.n;
        for i in 0..self.limbs {
            let q = basis.modulus(i);
            let p = q.value();
            let (la, lb) = (a.limb(i), b.limb(i));
            for ((x, &y), &z) in self.data[i * n..(i + 1) * n].iter_mut().zip(la).zip(lb) {
                *x = csub(*x + q.mul(y, z), p);
            }
        }
    }
}

/// The centred representative of `v mod p`, reduced modulo `q`: `v mod q` when
/// `v <= p/2`, `(v - p) mod q` otherwise, selected without a branch. `half = p / 2` and
/// `p_mod_q = p mod q` are passed in because callers hoist them out of their loops.
///
/// # Ranges
/// `v` in `[0, p)`, `p_mod_q` in `[0, q)` → output in `[0, q)`.
#[inline(always)]
pub fn lift_centred(v: u64, p: u64, half: u64, q: &Modulus, p_mod_q: u64) -> u64 {
    debug_assert!(v < p, "lift_centred: residue {v} >= {p}");
    debug_assert!(
        half == p / 2 && p_mod_q == q.reduce(p),
        "lift_centred: constants"
    );
    let r = q.reduce(v);
    let lowered = q.sub(r, p_mod_q);
    let mask = 0u64.wrapping_sub((v > half) as u64);
    (lowered & mask) | (r & !mask)
}

/// One limb of the rounded division by the last prime of a basis, in evaluation form:
/// `target ← (target - [last]_centred) · last^-1 (mod q)`.
///
/// Given `x` modulo `q_0 ⋯ q_{k-1} · p_last`, its limb modulo `p_last` in coefficient form
/// (`last_coeff`) and one other limb modulo `q` in evaluation form (`target`), this leaves
/// in `target` the evaluation of `(x - r)/p_last mod q`, where `r` is the centred
/// representative of `x mod p_last`, that is, `round(x / p_last)` up to `±1/2` per
/// coefficient. It is the step shared by CKKS rescaling (dropping `q_{k-1}`) and the
/// modulus-down of key switching (dropping the special prime). `scratch` holds `N` words.
///
/// # Ranges
/// `last_coeff` in `[0, p_last)`, `target` in `[0, q)`, `inv` the Shoup constant of
/// `p_last^-1 mod q` → `target` in `[0, q)`.
///
/// # Panics
/// If the slice lengths differ from the plan's `N`.
pub fn divide_round_limb(
    target: &mut [u64],
    plan: &NttPlan,
    last_coeff: &[u64],
    p_last: u64,
    inv: ShoupConst,
    scratch: &mut [u64],
) {
    let n = plan.n();
    assert!(
        target.len() == n && last_coeff.len() == n && scratch.len() >= n,
        "divide_round_limb: lengths"
    );
    let q = plan.modulus();
    let qv = q.value();
    let half = p_last / 2;
    let p_mod_q = q.reduce(p_last);
    let scratch = &mut scratch[..n];
    for (s, &v) in scratch.iter_mut().zip(last_coeff) {
        *s = lift_centred(v, p_last, half, q, p_mod_q);
    }
    plan.forward(scratch);
    for (t, &s) in target.iter_mut().zip(scratch.iter()) {
        debug_assert!(*t < qv, "divide_round_limb: target residue {t} >= {qv}");
        *t = q.mul_shoup(csub(*t + qv - s, qv), inv);
    }
}
