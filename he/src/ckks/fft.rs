//! The CKKS canonical embedding: the "special FFT" over `f64`.
//!
//! # What is computed
//!
//! With `ζ = exp(iπ/N)` (a primitive `2N`-th root of unity) and the `N/2` slots indexed by
//! the rotation group `5^j mod 2N`, a real polynomial `m(X) = Σ m_k X^k` has slots
//!
//! ```text
//! z_j = m(ζ^(5^j)),   j = 0, …, N/2 - 1,
//! ```
//!
//! the other half of the embedding being the complex conjugates. [`SpecialFft::forward`]
//! maps the packed coefficients `v_k = m_k + i·m_{k+N/2}` to the slots `z_j`, and
//! [`SpecialFft::inverse`] maps slots back, dividing by `N/2`. Automorphism `X → X^(5^r)`
//! rotates the slots left by `r`, and `X → X^(-1)` conjugates them.
//!
//! # Algorithm and source
//!
//! The radix-2 algorithm of the HEAAN library (Cheon, Kim, Kim, Song, "Homomorphic
//! Encryption for Arithmetic of Approximate Numbers", ASIACRYPT 2017,
//! <https://eprint.iacr.org/2016/421>; `EncodingFFT::fftSpecial` / `fftSpecialInv`):
//! bit-reversal, then `log2(N/2)` butterfly stages whose twiddles are `ζ` raised to
//! `(5^j mod 4·len) · 2N / (4·len)`. Powers of `ζ` come from [`libm::cos`]/[`libm::sin`]
//! of exact multiples of `π/N`.
//!
//! The twiddle exponents are not the NTT's `ψ^bitrev`, so this loop does not share the
//! NTT butterfly skeleton; sharing it would need a second index map and would not be
//! simpler.

use alloc::vec::Vec;
use core::ops::{Add, Mul, Sub};

use heist_core::ntt::bit_reverse;

/// A complex number over `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Complex {
    /// The real part.
    pub re: f64,
    /// The imaginary part.
    pub im: f64,
}

impl Complex {
    /// `re + i·im`.
    pub const fn new(re: f64, im: f64) -> Self {
        Self { re, im }
    }

    /// The complex conjugate.
    pub fn conj(self) -> Self {
        Self::new(self.re, -self.im)
    }

    /// The modulus `|z|`.
    pub fn abs(self) -> f64 {
        libm::hypot(self.re, self.im)
    }

    /// `z · s` for a real `s`.
    pub fn scale(self, s: f64) -> Self {
        Self::new(self.re * s, self.im * s)
    }
}

impl Add for Complex {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self::new(self.re + o.re, self.im + o.im)
    }
}

impl Sub for Complex {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self::new(self.re - o.re, self.im - o.im)
    }
}

impl Mul for Complex {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        Self::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
}

/// Precomputed tables of the special FFT for ring degree `N` (`N/2` slots).
#[derive(Debug, Clone)]
pub struct SpecialFft {
    slots: usize,
    /// `5^j mod 2N` for `j < N/2`.
    rot_group: Vec<u64>,
    /// `ζ^j` for `j = 0..=2N`.
    roots: Vec<Complex>,
}

fn bit_reverse_in_place(v: &mut [Complex]) {
    let n = v.len();
    let bits = n.trailing_zeros();
    for i in 0..n {
        let j = bit_reverse(i, bits);
        if i < j {
            v.swap(i, j);
        }
    }
}

impl SpecialFft {
    /// The tables for degree `n` (a power of two, at least 4).
    ///
    /// # Panics
    /// If `n` is not a power of two of at least 4.
    pub fn new(n: usize) -> Self {
        assert!(n.is_power_of_two() && n >= 4, "SpecialFft: bad degree {n}");
        let m = 2 * n as u64;
        let slots = n / 2;
        let mut rot_group = Vec::with_capacity(slots);
        let mut g = 1u64;
        for _ in 0..slots {
            rot_group.push(g);
            g = g * 5 % m;
        }
        let roots = (0..=m)
            .map(|j| {
                let angle = 2.0 * core::f64::consts::PI * j as f64 / m as f64;
                Complex::new(libm::cos(angle), libm::sin(angle))
            })
            .collect();
        Self {
            slots,
            rot_group,
            roots,
        }
    }

    /// The number of slots `N/2`.
    pub fn slots(&self) -> usize {
        self.slots
    }

    fn check(&self, v: &[Complex]) {
        assert_eq!(v.len(), self.slots, "SpecialFft: wrong length");
    }

    /// Packed coefficients `m_k + i·m_{k+N/2}` → slots `m(ζ^(5^j))`, in place.
    ///
    /// # Panics
    /// If `v.len() != N/2`.
    pub fn forward(&self, v: &mut [Complex]) {
        self.check(v);
        let size = self.slots;
        let m = 2 * size as u64 * 2;
        bit_reverse_in_place(v);
        let mut len = 2;
        while len <= size {
            let lenh = len / 2;
            let lenq = (4 * len) as u64;
            for block in v.chunks_exact_mut(len) {
                let (lo, hi) = block.split_at_mut(lenh);
                for (j, (x, y)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                    let idx = (self.rot_group[j] % lenq) * (m / lenq);
                    let u = *x;
                    let w = *y * self.roots[idx as usize];
                    *x = u + w;
                    *y = u - w;
                }
            }
            len <<= 1;
        }
    }

    /// Slots → packed coefficients (the inverse of [`Self::forward`], `1/(N/2)` included),
    /// in place.
    ///
    /// # Panics
    /// If `v.len() != N/2`.
    pub fn inverse(&self, v: &mut [Complex]) {
        self.check(v);
        let size = self.slots;
        let m = 2 * size as u64 * 2;
        let mut len = size;
        while len >= 2 {
            let lenh = len / 2;
            let lenq = (4 * len) as u64;
            for block in v.chunks_exact_mut(len) {
                let (lo, hi) = block.split_at_mut(lenh);
                for (j, (x, y)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                    let idx = (lenq - self.rot_group[j] % lenq) * (m / lenq);
                    let u = *x + *y;
                    let w = (*x - *y) * self.roots[idx as usize];
                    *x = u;
                    *y = w;
                }
            }
            len >>= 1;
        }
        bit_reverse_in_place(v);
        let inv = 1.0 / size as f64;
        for x in v.iter_mut() {
            *x = x.scale(inv);
        }
    }
}
