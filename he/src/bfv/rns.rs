//! The RNS tools of BFV multiplication and decryption, after Halevi, Polyakov and Shoup,
//! "An Improved RNS Variant of the BFV Homomorphic Encryption Scheme", CT-RSA 2019
//! (<https://eprint.iacr.org/2018/117>), HPS below.
//!
//! # What is computed
//!
//! * [`BasisExtender`] (HPS §2.2, "CRT basis extension"): from the residues of an integer
//!   `x` modulo the primes `q_i` of `Q`, its residues modulo the primes `p_j` of another
//!   basis `P`, for the **centred** representative `x ∈ (-Q/2, Q/2)`:
//!   `x = Σ_i y_i·(Q/q_i) - v·Q` with `y_i = [x_i·(Q/q_i)^-1]_{q_i}` and
//!   `v = round(Σ_i y_i/q_i)`, so `x mod p_j = Σ_i y_i·[Q/q_i]_{p_j} - v·[Q]_{p_j}`.
//!   Computing `v` exactly removes the `Q`-overflow of the fast base conversion.
//! * [`ScaleRound`] (HPS §2.3 for decryption and §4.2 for multiplication): from the residues
//!   of `x` modulo `Q` (and modulo `P`, for multiplication), `round(t·x/Q)` modulo each
//!   output prime `o` (the primes of `P`, or `t` itself for decryption). With `R = Q·P`
//!   (`P = 1` for decryption), `h_i = [(R/q_i)^-1]_{q_i}` and the real constants
//!   `t·h_i·P/q_i = ω_i + θ_i` (`ω_i` an integer, `θ_i = r_i/q_i ∈ [0, 1)`,
//!   `r_i = [t·(Q/q_i)^-1]_{q_i}`):
//!
//!   ```text
//!   round(t·x/Q) ≡ Σ_i x_i·[ω_i]_o + x_o·[t·Q^-1]_o + round(Σ_i x_i·θ_i)   (mod o)
//!   ```
//!
//!   where `[ω_i]_o = -r_i·q_i^-1 mod o` (because `t·h_i·P ≡ 0 mod o`), and the middle
//!   term exists only when `o` is a prime of `P` (`x_o` the residue modulo `o`). The result
//!   is the same for every representative of `x` modulo `R`, since they differ by multiples
//!   of `R` and `t·R/Q = t·P ≡ 0 (mod o)`.
//!
//! # Where heist differs from HPS
//!
//! HPS evaluates `Σ y_i/q_i` and `Σ x_i·θ_i` in double precision and restricts the size
//! of the primes accordingly. heist stores each fraction as a 128-bit fixed-point number
//! `⌊2^128·r/q⌋/2^128` and accumulates the products exactly in 192 bits, so each term is
//! off by less than `x_i·2^-128 < 2^-66` (always downwards) and a sum of `k` terms by less
//! than `k·2^-66`. A rounding can therefore differ from the exact one only when the exact
//! sum lies within `k·2^-66` of a half-integer: for the extension, when `|x|` is within
//! `k·2^-66·Q` of `Q/2` (the parameters keep values far below); for the scaling, the result
//! may be off by one, which is noise of at most 1 added to an already rounded value
//! (HPS Lemma 4.1 allows the same).
//!
//! # Ranges
//!
//! All inputs are residues in `[0, q_i)`; all outputs in `[0, o)`. Every prime is below
//! `2^62`, so a product of two residues is below `2^124` and sixteen of them fit a `u128`.

use alloc::vec;
use alloc::vec::Vec;

use heist_core::arith::{Modulus, ShoupConst};
use heist_core::rns::{Coeff, RnsPoly};

/// A fraction `f ∈ [0, 1)` in 128-bit fixed point: `f = (hi·2^64 + lo) / 2^128`.
#[derive(Debug, Clone, Copy)]
struct Frac128 {
    hi: u64,
    lo: u64,
}

impl Frac128 {
    /// `⌊2^128·num/den⌋ / 2^128`, the fraction `num/den` rounded down.
    ///
    /// # Ranges
    /// `num` in `[0, den)`, `den` in `[1, 2^64)`.
    fn new(num: u64, den: u64) -> Self {
        debug_assert!(num < den, "Frac128::new: {num} >= {den}");
        let d = u128::from(den);
        let first = u128::from(num) << 64;
        let hi = first / d;
        let rem = first % d;
        let lo = (rem << 64) / d;
        // num < den, so both quotient words are below 2^64.
        Self {
            hi: hi as u64,
            lo: lo as u64,
        }
    }
}

/// An exact accumulator of `Σ x_i·f_i` for words `x_i` and [`Frac128`] fractions `f_i`:
/// integer part and a 128-bit fractional part.
#[derive(Debug, Clone, Copy, Default)]
struct FracSum {
    int: u128,
    frac: u128,
}

impl FracSum {
    /// Adds `x·f` exactly.
    #[inline(always)]
    fn add(&mut self, x: u64, f: Frac128) {
        // x·f·2^128 = b·2^64 + a, a = x·lo, b = x·hi, both below 2^128.
        let a = u128::from(x) * u128::from(f.lo);
        let b = u128::from(x) * u128::from(f.hi);
        let mid = (a >> 64) + u128::from(b as u64);
        let int = (b >> 64) + (mid >> 64);
        let frac = (u128::from(mid as u64) << 64) | u128::from(a as u64);
        let (sum, carry) = self.frac.overflowing_add(frac);
        self.frac = sum;
        self.int += int + u128::from(carry);
    }

    /// The sum rounded to the nearest integer (halves up).
    #[inline(always)]
    fn round(&self) -> u128 {
        self.int + (self.frac >> 127)
    }
}

/// `out[c] = Σ_i limbs[i][c]·ws[i] mod m` for every coefficient `c`, limb after limb
/// (contiguous inner loops), accumulating sixteen products at a time in a `u128` per
/// coefficient (`acc` is scratch of the output's length).
///
/// # Ranges
/// Residues and `ws[i]` in `[0, 2^62)` → `out` in `[0, m)`.
fn dot_limbs<'a>(
    limbs: impl Iterator<Item = &'a [u64]>,
    ws: &[u64],
    m: &Modulus,
    acc: &mut [u128],
    out: &mut [u64],
) {
    acc.fill(0);
    for (i, (limb, &w)) in limbs.zip(ws).enumerate() {
        debug_assert!(w < 1 << 62, "dot_limbs: weight >= 2^62");
        let w = u128::from(w);
        for (a, &x) in acc.iter_mut().zip(limb) {
            debug_assert!(x < 1 << 62, "dot_limbs: residue >= 2^62");
            *a += u128::from(x) * w;
        }
        if i % 16 == 15 {
            for a in acc.iter_mut() {
                *a = u128::from(m.reduce_u128(*a));
            }
        }
    }
    for (o, &a) in out.iter_mut().zip(acc.iter()) {
        *o = m.reduce_u128(a);
    }
}

/// `round(Σ_i limbs[i][c]·fs[i])` for every coefficient `c`, limb after limb.
fn round_sums<'a>(limbs: impl Iterator<Item = &'a [u64]>, fs: &[Frac128], n: usize) -> Vec<u128> {
    let mut sums = vec![FracSum::default(); n];
    for (limb, &f) in limbs.zip(fs) {
        for (s, &x) in sums.iter_mut().zip(limb) {
            s.add(x, f);
        }
    }
    sums.iter().map(FracSum::round).collect()
}

/// The product of `primes` modulo `m`, skipping index `skip` (pass `usize::MAX` for none).
fn product_mod(primes: &[u64], skip: usize, m: &Modulus) -> u64 {
    primes
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != skip)
        .fold(m.reduce(1), |acc, (_, &q)| m.mul(acc, m.reduce(q)))
}

/// The inverse of `a` modulo the prime `m`, for `a` coprime to it.
///
/// # Panics
/// If `a ≡ 0 (mod m)`: callers pass products of primes distinct from `m`, checked when
/// the bases are built.
fn inv_coprime(m: &Modulus, a: u64) -> u64 {
    m.inv(a)
        .unwrap_or_else(|| panic!("{a} is not invertible modulo {}", m.value()))
}

/// Exact extension of centred values from the basis `Q` to the basis `P` (HPS §2.2);
/// see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct BasisExtender {
    from: Vec<Modulus>,
    to: Vec<Modulus>,
    /// `[(Q/q_i)^-1]_{q_i}`.
    qhat_inv: Vec<ShoupConst>,
    /// `1/q_i` as a fraction.
    q_inv_frac: Vec<Frac128>,
    /// `qhat_mod[j·k + i] = [Q/q_i]_{p_j}`.
    qhat_mod: Vec<u64>,
    /// `[Q]_{p_j}`.
    q_mod: Vec<u64>,
}

impl BasisExtender {
    /// Precomputes the extension from the primes `from` to the primes `to`.
    ///
    /// # Panics
    /// If a prime of `from` is also in `to` or appears twice, or either list is empty: the
    /// callers build both lists from disjoint sets of distinct primes.
    pub fn new(from: &[Modulus], to: &[Modulus]) -> Self {
        assert!(!from.is_empty() && !to.is_empty(), "empty RNS basis");
        let q: Vec<u64> = from.iter().map(Modulus::value).collect();
        let k = q.len();
        let qhat_inv = from
            .iter()
            .enumerate()
            .map(|(i, qi)| qi.shoup(inv_coprime(qi, product_mod(&q, i, qi))))
            .collect();
        let q_inv_frac = q.iter().map(|&qi| Frac128::new(1, qi)).collect();
        let mut qhat_mod = Vec::with_capacity(to.len() * k);
        for pj in to {
            assert!(
                !q.contains(&pj.value()),
                "prime {} in both bases",
                pj.value()
            );
            qhat_mod.extend((0..k).map(|i| product_mod(&q, i, pj)));
        }
        let q_mod = to
            .iter()
            .map(|pj| product_mod(&q, usize::MAX, pj))
            .collect();
        Self {
            from: from.to_vec(),
            to: to.to_vec(),
            qhat_inv,
            q_inv_frac,
            qhat_mod,
            q_mod,
        }
    }

    /// The residues modulo every prime of `P` of the centred value of `x` (whose limbs are
    /// its residues modulo the primes of `Q`).
    ///
    /// # Ranges
    /// `x` limb `i` in `[0, q_i)` → output limb `j` in `[0, p_j)`.
    ///
    /// # Panics
    /// If `x` does not have one limb per prime of `Q`.
    pub fn extend(&self, x: &RnsPoly<Coeff>) -> RnsPoly<Coeff> {
        let k = self.from.len();
        assert_eq!(x.limbs(), k, "basis extension: wrong number of limbs");
        let n = x.n();
        let mut y = vec![0u64; k * n];
        for (i, (qi, &h)) in self.from.iter().zip(&self.qhat_inv).enumerate() {
            for (dst, &src) in y[i * n..(i + 1) * n].iter_mut().zip(x.limb(i)) {
                debug_assert!(src < qi.value(), "extend: residue out of range");
                *dst = qi.mul_shoup(src, h);
            }
        }
        let v = round_sums(y.chunks_exact(n), &self.q_inv_frac, n);
        let mut out = RnsPoly::zero(n, self.to.len());
        let mut acc = vec![0u128; n];
        for (j, pj) in self.to.iter().enumerate() {
            let w = &self.qhat_mod[j * k..(j + 1) * k];
            let qm = pj.shoup(self.q_mod[j]);
            let limb = out.limb_mut(j);
            dot_limbs(y.chunks_exact(n), w, pj, &mut acc, limb);
            for (o, &vc) in limb.iter_mut().zip(&v) {
                // Σ y_i/q_i < k <= 64, so the rounded value fits a word.
                *o = pj.sub(*o, pj.mul_shoup(vc as u64, qm));
            }
        }
        out
    }
}

/// `round(t·x/Q)` modulo output primes (HPS §2.3 and §4.2); see the
/// [module documentation](self).
#[derive(Debug, Clone)]
pub struct ScaleRound {
    q: Vec<Modulus>,
    out: Vec<Modulus>,
    /// Whether the input also carries the residues modulo the output primes (`P`).
    with_aux: bool,
    /// `θ_i = r_i/q_i`.
    theta: Vec<Frac128>,
    /// `omega[o·k + i] = [ω_i]_o`.
    omega: Vec<u64>,
    /// `[t·Q^-1]_{p_j}` (only with auxiliary residues).
    t_q_inv: Vec<ShoupConst>,
}

impl ScaleRound {
    /// Precomputes `round(t·x/Q) mod o` for `x` given modulo `Q` and (when `with_aux`) also
    /// modulo the output primes `out`, which then are the primes of `P`.
    ///
    /// # Panics
    /// If a prime repeats or lies in both lists, `t` is a multiple of a prime of `Q`, or a
    /// list is empty: the callers build them from disjoint sets of distinct primes.
    pub fn new(q: &[Modulus], out: &[Modulus], t: u64, with_aux: bool) -> Self {
        assert!(!q.is_empty() && !out.is_empty(), "empty RNS basis");
        let qs: Vec<u64> = q.iter().map(Modulus::value).collect();
        let k = qs.len();
        let r: Vec<u64> = q
            .iter()
            .enumerate()
            .map(|(i, qi)| {
                let h = inv_coprime(qi, product_mod(&qs, i, qi));
                qi.mul(qi.reduce(t), h)
            })
            .collect();
        let theta = r
            .iter()
            .zip(&qs)
            .map(|(&ri, &qi)| Frac128::new(ri, qi))
            .collect();
        let mut omega = Vec::with_capacity(out.len() * k);
        for o in out {
            assert!(
                !qs.contains(&o.value()),
                "prime {} in both bases",
                o.value()
            );
            omega.extend(
                r.iter()
                    .zip(&qs)
                    .map(|(&ri, &qi)| o.neg(o.mul(o.reduce(ri), inv_coprime(o, o.reduce(qi))))),
            );
        }
        let t_q_inv = if with_aux {
            out.iter()
                .map(|o| {
                    let qm = product_mod(&qs, usize::MAX, o);
                    o.shoup(o.mul(o.reduce(t), inv_coprime(o, qm)))
                })
                .collect()
        } else {
            Vec::new()
        };
        Self {
            q: q.to_vec(),
            out: out.to_vec(),
            with_aux,
            theta,
            omega,
            t_q_inv,
        }
    }

    /// `round(t·x/Q)` modulo every output prime, limb after limb, for `x` given by its
    /// limbs modulo `Q` (`xq`) and, with auxiliary residues, modulo `P` (`xp`).
    ///
    /// # Ranges
    /// Input limbs in `[0, q_i)` (`[0, p_j)`) → output limb `o` in `[0, o)`.
    ///
    /// # Panics
    /// If the limb counts do not match the bases, or `xp` is given exactly when the scaler
    /// was built without auxiliary residues.
    pub fn scale(&self, xq: &RnsPoly<Coeff>, xp: Option<&RnsPoly<Coeff>>) -> RnsPoly<Coeff> {
        let k = self.q.len();
        let n = xq.n();
        assert_eq!(xq.limbs(), k, "scale: wrong number of limbs modulo Q");
        assert_eq!(
            xp.is_some(),
            self.with_aux,
            "scale: auxiliary residues mismatch"
        );
        if let Some(xp) = xp {
            assert!(
                xp.limbs() == self.out.len() && xp.n() == n,
                "scale: wrong shape modulo P"
            );
        }
        for (i, qi) in self.q.iter().enumerate() {
            debug_assert!(xq.limb(i).iter().all(|&x| x < qi.value()), "scale: range");
        }
        let rounded = round_sums((0..k).map(|i| xq.limb(i)), &self.theta, n);
        let mut out = RnsPoly::zero(n, self.out.len());
        let mut acc = vec![0u128; n];
        for (j, o) in self.out.iter().enumerate() {
            let w = &self.omega[j * k..(j + 1) * k];
            let limb = out.limb_mut(j);
            dot_limbs((0..k).map(|i| xq.limb(i)), w, o, &mut acc, limb);
            for (s, &r) in limb.iter_mut().zip(&rounded) {
                *s = o.add(*s, o.reduce_u128(r));
            }
            if let Some(xp) = xp {
                let tq = self.t_q_inv[j];
                for (s, &x) in limb.iter_mut().zip(xp.limb(j)) {
                    debug_assert!(x < o.value(), "scale: auxiliary residue out of range");
                    *s = o.add(*s, o.mul_shoup(x, tq));
                }
            }
        }
        out
    }
}
