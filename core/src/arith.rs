//! Word-size modular arithmetic for primes below 2^62.
//!
//! # Why 62 bits
//!
//! Every modulus `p` handled here satisfies `2 <= p < 2^62`. Hence `4p < 2^64`, so any value
//! in the lazy range `[0, 4p)` fits a `u64`, and so does the sum of two values in `[0, 2p)`.
//! The NTT keeps its coefficients in `[0, 4p)` between butterflies (Harvey's lazy
//! reduction) and relies on exactly this chain of inequalities.
//!
//! # Branch-free reductions
//!
//! Every reduction in this module is written without data-dependent branches: a conditional
//! subtraction is [`csub`], which compiles to a compare and a conditional move. This is a
//! property of the source, not a verified constant-time guarantee of the generated code.
//!
//! # Ranges
//!
//! Each function states the range its inputs must lie in and the range of its output.
//! Debug builds check both with `debug_assert!`.

use core::fmt;

/// The largest bit length a [`Modulus`] may have: `p < 2^62`.
pub const MAX_MODULUS_BITS: u32 = 62;

/// Subtracts `m` from `x` when `x >= m`, without a branch.
///
/// # Ranges
/// `x` in `[0, 2m)`, `m` in `[1, 2^63]` → output in `[0, m)`.
#[inline(always)]
pub fn csub(x: u64, m: u64) -> u64 {
    debug_assert!((1..=1 << 63).contains(&m), "csub: modulus {m} out of range");
    debug_assert!(x < m.wrapping_mul(2) || m == 1 << 63, "csub: {x} >= 2*{m}");
    // When x < m the subtraction wraps to a value >= 2^64 - m > x, so `min` keeps x.
    x.min(x.wrapping_sub(m))
}

/// An error building a [`Modulus`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModulusError {
    /// The value is below 2 or not below 2^62.
    OutOfRange {
        /// The rejected value.
        value: u64,
    },
}

impl fmt::Display for ModulusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange { value } => write!(
                f,
                "invalid modulus {value}: a modulus must be at least 2 and below 2^{MAX_MODULUS_BITS}"
            ),
        }
    }
}

impl core::error::Error for ModulusError {}

/// An odd or even modulus `p` with `2 <= p < 2^62` and its precomputed Barrett constant.
///
/// The modulus need not be prime for [`add`](Self::add), [`sub`](Self::sub),
/// [`mul`](Self::mul) and [`reduce_u128`](Self::reduce_u128); [`inv`](Self::inv) requires a
/// prime (it uses Fermat's little theorem) and says so.
///
/// # Example
/// ```
/// use heist_core::arith::Modulus;
/// let q = Modulus::new(97)?;
/// assert_eq!(q.mul(50, 3), 53);
/// assert_eq!(q.add(96, 5), 4);
/// assert_eq!(q.sub(3, 5), 95);
/// assert_eq!(q.pow(5, 96), 1);
/// assert_eq!(q.mul(q.inv(5).unwrap(), 5), 1);
/// assert!(Modulus::new(1 << 62).is_err());
/// # Ok::<(), heist_core::arith::ModulusError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modulus {
    p: u64,
    /// `floor(2^128 / p)`, split into high and low words.
    ratio_hi: u64,
    ratio_lo: u64,
}

/// A multiplicand `w < p` together with its Shoup quotient `floor(w * 2^64 / p)`.
///
/// It can only be built by [`Modulus::shoup`], so the two always belong together and to
/// the modulus that made them. Use it with [`Modulus::mul_shoup`] and
/// [`Modulus::mul_shoup_lazy`] when one factor is fixed and reused (NTT twiddles, scalars).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShoupConst {
    value: u64,
    quotient: u64,
}

impl ShoupConst {
    /// The multiplicand `w`, in `[0, p)`.
    #[inline(always)]
    pub fn value(&self) -> u64 {
        self.value
    }

    /// The precomputed quotient `floor(w * 2^64 / p)`.
    #[inline(always)]
    pub fn quotient(&self) -> u64 {
        self.quotient
    }
}

/// Shoup's lazy product on raw words: `x * w mod p` up to one `p`.
///
/// # Ranges
/// `x` in `[0, 2^64)`, `w` in `[0, p)`, `wq = floor(w * 2^64 / p)`, `p < 2^63` → output in
/// `[0, 2p)`. For the typed interface see [`Modulus::mul_shoup_lazy`]; this form serves
/// tables that keep values and quotients in separate arrays.
#[inline(always)]
pub fn shoup_lazy(x: u64, w: u64, wq: u64, p: u64) -> u64 {
    let q = mul_hi(x, wq);
    x.wrapping_mul(w).wrapping_sub(q.wrapping_mul(p))
}

/// High word of the 128-bit product `a * b`.
#[inline(always)]
fn mul_hi(a: u64, b: u64) -> u64 {
    ((a as u128 * b as u128) >> 64) as u64
}

impl Modulus {
    /// Builds the modulus `p`.
    ///
    /// # Errors
    /// [`ModulusError::OutOfRange`] unless `2 <= p < 2^62`.
    pub fn new(p: u64) -> Result<Self, ModulusError> {
        if !(2..1 << MAX_MODULUS_BITS).contains(&p) {
            return Err(ModulusError::OutOfRange { value: p });
        }
        // floor(2^128 / p) equals floor((2^128 - 1) / p) unless p divides 2^128, that is,
        // unless p is a power of two.
        let mut ratio = u128::MAX / p as u128;
        if p.is_power_of_two() {
            ratio += 1;
        }
        Ok(Self {
            p,
            ratio_hi: (ratio >> 64) as u64,
            ratio_lo: ratio as u64,
        })
    }

    /// The modulus `p`.
    #[inline(always)]
    pub fn value(&self) -> u64 {
        self.p
    }

    /// The bit length of `p` (e.g. 50 for `2^49 <= p < 2^50`).
    pub fn bits(&self) -> u32 {
        64 - self.p.leading_zeros()
    }

    /// `a + b mod p`.
    ///
    /// # Ranges
    /// `a, b` in `[0, p)` → output in `[0, p)`.
    #[inline(always)]
    pub fn add(&self, a: u64, b: u64) -> u64 {
        debug_assert!(a < self.p && b < self.p, "add: {a} or {b} >= {}", self.p);
        csub(a + b, self.p)
    }

    /// `a - b mod p`.
    ///
    /// # Ranges
    /// `a, b` in `[0, p)` → output in `[0, p)`.
    #[inline(always)]
    pub fn sub(&self, a: u64, b: u64) -> u64 {
        debug_assert!(a < self.p && b < self.p, "sub: {a} or {b} >= {}", self.p);
        csub(a + self.p - b, self.p)
    }

    /// `-a mod p`.
    ///
    /// # Ranges
    /// `a` in `[0, p)` → output in `[0, p)`.
    #[inline(always)]
    pub fn neg(&self, a: u64) -> u64 {
        debug_assert!(a < self.p, "neg: {a} >= {}", self.p);
        csub(self.p - a, self.p)
    }

    /// Reduces any 128-bit value modulo `p` with Barrett's method.
    ///
    /// The quotient estimate `q = floor(x * floor(2^128/p) / 2^128)` is computed exactly
    /// (all partial-product carries kept), so `floor(x/p) - 1 <= q <= floor(x/p)` and
    /// `x - q*p` lies in `[0, 2p)`; one branch-free subtraction finishes.
    ///
    /// # Ranges
    /// `x` in `[0, 2^128)` → output in `[0, p)`.
    #[inline(always)]
    pub fn reduce_u128(&self, x: u128) -> u64 {
        let x0 = x as u64;
        let x1 = (x >> 64) as u64;
        let lo = x0 as u128 * self.ratio_lo as u128;
        let mid1 = x1 as u128 * self.ratio_lo as u128;
        let mid2 = x0 as u128 * self.ratio_hi as u128;
        let hi = x1 as u128 * self.ratio_hi as u128;
        let carry = ((lo >> 64) + (mid1 as u64 as u128) + (mid2 as u64 as u128)) >> 64;
        let q = hi + (mid1 >> 64) + (mid2 >> 64) + carry;
        // x - q*p < 2p < 2^63: only the low word matters.
        let r = (x as u64).wrapping_sub((q as u64).wrapping_mul(self.p));
        debug_assert!(r < 2 * self.p, "reduce_u128: Barrett remainder {r} >= 2p");
        csub(r, self.p)
    }

    /// Reduces a 64-bit value modulo `p`.
    ///
    /// # Ranges
    /// `x` in `[0, 2^64)` → output in `[0, p)`.
    #[inline(always)]
    pub fn reduce(&self, x: u64) -> u64 {
        // ratio_hi = floor(floor(2^128/p) / 2^64) = floor(2^64/p) > 2^64/p - 1, so
        // x * ratio_hi / 2^64 > x/p - x/2^64 > x/p - 1 (as x < 2^64), hence
        // q >= floor(x/p) - 1 and the remainder below lies in [0, 2p).
        let q = mul_hi(x, self.ratio_hi);
        let r = x.wrapping_sub(q.wrapping_mul(self.p));
        debug_assert!(r < 2 * self.p, "reduce: remainder {r} >= 2p");
        csub(r, self.p)
    }

    /// `a * b mod p` (Barrett).
    ///
    /// # Ranges
    /// `a, b` in `[0, 2^64)` with `a * b < 2^128` (always true) → output in `[0, p)`.
    #[inline(always)]
    pub fn mul(&self, a: u64, b: u64) -> u64 {
        self.reduce_u128(a as u128 * b as u128)
    }

    /// Precomputes the Shoup quotient of `w`.
    ///
    /// # Ranges
    /// `w` in `[0, p)`; debug builds reject anything else.
    pub fn shoup(&self, w: u64) -> ShoupConst {
        debug_assert!(w < self.p, "shoup: {w} >= {}", self.p);
        ShoupConst {
            value: w,
            quotient: (((w as u128) << 64) / self.p as u128) as u64,
        }
    }

    /// `x * w mod p` up to one multiple of `p` (Shoup's multiplication).
    ///
    /// # Ranges
    /// `x` in `[0, 2^64)`, `w` made by [`Self::shoup`] of this modulus → output in `[0, 2p)`.
    #[inline(always)]
    pub fn mul_shoup_lazy(&self, x: u64, w: ShoupConst) -> u64 {
        let r = shoup_lazy(x, w.value, w.quotient, self.p);
        debug_assert!(r < 2 * self.p, "mul_shoup_lazy: {r} >= 2p");
        r
    }

    /// `x * w mod p` (Shoup's multiplication, fully reduced).
    ///
    /// # Ranges
    /// `x` in `[0, 2^64)`, `w` made by [`Self::shoup`] of this modulus → output in `[0, p)`.
    #[inline(always)]
    pub fn mul_shoup(&self, x: u64, w: ShoupConst) -> u64 {
        csub(self.mul_shoup_lazy(x, w), self.p)
    }

    /// `a^e mod p` by square-and-multiply over the bits of `e`.
    ///
    /// The loop runs over all 64 bits of `e` and multiplies unconditionally (selecting the
    /// result without a branch), so its running time does not depend on `e`.
    ///
    /// # Ranges
    /// `a` in `[0, 2^64)`, any `e` → output in `[0, p)`; `0^0 = 1`.
    pub fn pow(&self, a: u64, e: u64) -> u64 {
        let mut base = self.reduce(a);
        let mut acc = self.reduce(1);
        for i in 0..64 {
            let with = self.mul(acc, base);
            let mask = 0u64.wrapping_sub((e >> i) & 1);
            acc = (with & mask) | (acc & !mask);
            base = self.mul(base, base);
        }
        acc
    }

    /// The inverse of `a` modulo a **prime** `p`, as `a^(p-2)`; `None` when `a ≡ 0`.
    ///
    /// For a composite `p` the result is meaningless; callers with composite moduli must
    /// not use it. The result is checked (`a * a^-1 ≡ 1`) before it is returned, so a
    /// composite modulus yields `None` rather than a wrong inverse.
    ///
    /// # Ranges
    /// `a` in `[0, 2^64)` → output in `[1, p)`.
    pub fn inv(&self, a: u64) -> Option<u64> {
        let a = self.reduce(a);
        let x = self.pow(a, self.p - 2);
        (a != 0 && self.mul(a, x) == 1).then_some(x)
    }

    /// Maps a centred representative to `[0, p)`: `x mod p` for a signed `x`.
    ///
    /// # Ranges
    /// `x` in `[-2^63, 2^63)` → output in `[0, p)`.
    #[inline(always)]
    pub fn from_i64(&self, x: i64) -> u64 {
        let r = self.reduce(x.unsigned_abs());
        // Negate when x < 0, without branching on the sign.
        let neg = self.neg(r);
        let mask = 0u64.wrapping_sub((x < 0) as u64);
        (neg & mask) | (r & !mask)
    }

    /// The centred representative of `a`: the integer in `(-p/2, p/2]` congruent to `a`.
    ///
    /// # Ranges
    /// `a` in `[0, p)` → output in `(-p/2, p/2]`.
    #[inline(always)]
    pub fn centre(&self, a: u64) -> i64 {
        debug_assert!(a < self.p, "centre: {a} >= {}", self.p);
        let over = (a > self.p / 2) as u64;
        a as i64 - (self.p * over) as i64
    }
}
