//! Primality, NTT-friendly primes and roots of unity.
//!
//! An NTT of length `N` over `Z_p` for negacyclic convolution needs a primitive `2N`-th root
//! of unity, which exists exactly when `p ≡ 1 (mod 2N)`.

use alloc::vec::Vec;
use core::fmt;

use crate::arith::{Modulus, ModulusError, MAX_MODULUS_BITS};

/// An error from prime generation or root finding.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrimeError {
    /// The requested bit size is outside `[2, 62]` or leaves no room for `p ≡ 1 mod order`.
    BadBitSize {
        /// The requested size in bits.
        bits: u32,
        /// The required order (the `2N` of `p ≡ 1 mod 2N`).
        order: u64,
    },
    /// The order is zero or not a power of two.
    BadOrder {
        /// The rejected order.
        order: u64,
    },
    /// The search range holds fewer suitable primes than requested.
    Exhausted {
        /// How many primes were found.
        found: usize,
        /// How many were requested.
        wanted: usize,
    },
    /// `p` is not a prime with `order | p - 1`, so it has no primitive root of that order.
    NoRoot {
        /// The modulus.
        p: u64,
        /// The requested order.
        order: u64,
    },
    /// The modulus itself is invalid.
    Modulus(ModulusError),
}

impl fmt::Display for PrimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadBitSize { bits, order } => write!(
                f,
                "no {bits}-bit prime can be ≡ 1 mod {order}: bit size must be in [2, {MAX_MODULUS_BITS}] and exceed log2({order})"
            ),
            Self::BadOrder { order } => {
                write!(f, "order {order} is not a positive power of two")
            }
            Self::Exhausted { found, wanted } => write!(
                f,
                "found only {found} of {wanted} requested primes in the search range"
            ),
            Self::NoRoot { p, order } => write!(
                f,
                "{p} has no primitive root of unity of order {order} (it must be prime with {order} | p - 1)"
            ),
            Self::Modulus(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for PrimeError {}

impl From<ModulusError> for PrimeError {
    fn from(e: ModulusError) -> Self {
        Self::Modulus(e)
    }
}

fn mul_mod(a: u64, b: u64, n: u64) -> u64 {
    ((a as u128 * b as u128) % n as u128) as u64
}

fn pow_mod(mut a: u64, mut e: u64, n: u64) -> u64 {
    let mut acc = 1 % n;
    a %= n;
    while e > 0 {
        if e & 1 == 1 {
            acc = mul_mod(acc, a, n);
        }
        a = mul_mod(a, a, n);
        e >>= 1;
    }
    acc
}

/// Deterministic Miller–Rabin primality test for every `u64`.
///
/// The first twelve primes as witnesses are proven sufficient for all `n < 3.3 · 10^24`
/// (Sorenson and Webster, "Strong pseudoprimes to twelve prime bases", Math. Comp. 2017),
/// which covers all 64-bit integers. Runs in variable time: its input is public.
///
/// # Example
/// ```
/// use heist_core::primes::is_prime;
/// assert!(is_prime(0x3fff_ffff_ffe8_0001)); // the largest prime < 2^62 that is ≡ 1 mod 2^18
/// assert!(!is_prime(561)); // a Carmichael number
/// ```
pub fn is_prime(n: u64) -> bool {
    const WITNESSES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    if n < 2 {
        return false;
    }
    for w in WITNESSES {
        if n.is_multiple_of(w) {
            return n == w;
        }
    }
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    'witness: for a in WITNESSES {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n - 1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

fn check_order(order: u64) -> Result<(), PrimeError> {
    if order == 0 || !order.is_power_of_two() {
        return Err(PrimeError::BadOrder { order });
    }
    Ok(())
}

/// The largest primes `p < bound` with `p ≡ 1 (mod order)`, skipping those in `exclude`,
/// in decreasing order; the search stops at `order + 1`.
///
/// # Errors
/// [`PrimeError::BadOrder`] if `order` is not a power of two, [`PrimeError::BadBitSize`] if
/// `bound > 2^62`, [`PrimeError::Exhausted`] if fewer than `count` primes exist.
pub fn primes_below(
    bound: u64,
    order: u64,
    count: usize,
    exclude: &[u64],
) -> Result<Vec<u64>, PrimeError> {
    check_order(order)?;
    if bound > 1 << MAX_MODULUS_BITS {
        return Err(PrimeError::BadBitSize {
            bits: 64 - bound.leading_zeros(),
            order,
        });
    }
    let mut out = Vec::with_capacity(count);
    if bound <= order + 1 {
        return Err(PrimeError::Exhausted {
            found: 0,
            wanted: count,
        });
    }
    // Largest candidate ≡ 1 mod order strictly below bound.
    let mut c = (bound - 2) / order * order + 1;
    while out.len() < count && c > order {
        if is_prime(c) && !exclude.contains(&c) {
            out.push(c);
        }
        c -= order;
    }
    if out.len() < count {
        return Err(PrimeError::Exhausted {
            found: out.len(),
            wanted: count,
        });
    }
    Ok(out)
}

/// The smallest primes `p > bound` with `p ≡ 1 (mod order)` and `p < 2^62`, skipping those
/// in `exclude`, in increasing order.
///
/// # Errors
/// As [`primes_below`].
pub fn primes_above(
    bound: u64,
    order: u64,
    count: usize,
    exclude: &[u64],
) -> Result<Vec<u64>, PrimeError> {
    check_order(order)?;
    let limit = 1u64 << MAX_MODULUS_BITS;
    let mut out = Vec::with_capacity(count);
    // Smallest candidate ≡ 1 mod order strictly above bound.
    let mut c = (bound / order) * order + 1;
    if c <= bound {
        c += order;
    }
    while out.len() < count && c < limit {
        if is_prime(c) && !exclude.contains(&c) {
            out.push(c);
        }
        c += order;
    }
    if out.len() < count {
        return Err(PrimeError::Exhausted {
            found: out.len(),
            wanted: count,
        });
    }
    Ok(out)
}

/// `count` distinct primes of exactly `bits` bits with `p ≡ 1 (mod order)`, the largest
/// first, none of them in `exclude`.
///
/// # Errors
/// [`PrimeError::BadBitSize`] unless `2 <= bits <= 62` and `2^(bits-1) > order`; otherwise
/// as [`primes_below`], including when the bit size holds too few such primes.
///
/// # Example
/// ```
/// use heist_core::primes::{ntt_primes, is_prime};
/// let ps = ntt_primes(50, 2 * 4096, 3, &[])?;
/// assert_eq!(ps.len(), 3);
/// for p in ps {
///     assert!(is_prime(p) && p % 8192 == 1 && p >> 49 == 1);
/// }
/// # Ok::<(), heist_core::primes::PrimeError>(())
/// ```
pub fn ntt_primes(
    bits: u32,
    order: u64,
    count: usize,
    exclude: &[u64],
) -> Result<Vec<u64>, PrimeError> {
    check_order(order)?;
    if !(2..=MAX_MODULUS_BITS).contains(&bits) || (1u64 << (bits - 1)) <= order {
        return Err(PrimeError::BadBitSize { bits, order });
    }
    let ps = primes_below(1u64 << bits, order, count, exclude)?;
    let found = ps.iter().filter(|&&p| p >> (bits - 1) == 1).count();
    if found < count {
        return Err(PrimeError::Exhausted {
            found,
            wanted: count,
        });
    }
    Ok(ps)
}

/// The primitive `order`-th root of unity modulo the prime `p` obtained from the smallest
/// generator candidate `g = 2, 3, …` with `g^((p-1)/order)` primitive; deterministic.
///
/// # Errors
/// [`PrimeError::BadOrder`] if `order` is not a power of two of at least 2,
/// [`PrimeError::NoRoot`] if `p` is not prime or `order` does not divide `p - 1`,
/// [`PrimeError::Modulus`] if `p` is not a valid [`Modulus`].
pub fn primitive_root(p: u64, order: u64) -> Result<u64, PrimeError> {
    check_order(order)?;
    if order < 2 {
        return Err(PrimeError::BadOrder { order });
    }
    let m = Modulus::new(p)?;
    if !is_prime(p) || !(p - 1).is_multiple_of(order) {
        return Err(PrimeError::NoRoot { p, order });
    }
    let cofactor = (p - 1) / order;
    // Half of all residues are non-residues, so this ends after a few candidates.
    for g in 2..p {
        let x = m.pow(g, cofactor);
        // x has order dividing `order` (a power of two); it is primitive iff x^(order/2) = -1.
        if m.pow(x, order / 2) == p - 1 {
            return Ok(x);
        }
    }
    Err(PrimeError::NoRoot { p, order })
}
