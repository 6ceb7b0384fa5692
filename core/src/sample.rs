//! Samplers for RLWE secrets, errors and uniform residues, over `rand_core`.
//!
//! Randomness enters only through a caller-supplied `R: RngCore + CryptoRng`.
//!
//! # Distributions
//!
//! - [`ternary`]: each coefficient uniform in `{-1, 0, 1}`, by rejection from bytes
//!   (a byte `b < 255` gives `b mod 3 - 1`; `255 = 3·85`, so the map is exactly uniform).
//! - [`centred_binomial`]: `Σ_{i<η} (a_i - b_i)` for independent fair bits, variance `η/2`.
//!   With [`ETA`] `= 21` the variance is `10.5 ≈ 3.24²`, the error width of the
//!   HomomorphicEncryption.org standard (`σ ≈ 3.2`), and every sample lies in `[-21, 21]`.
//! - [`uniform_mod`]: uniform in `[0, p)` by rejection from the `bits(p)` low bits of a
//!   `u64` (expected fewer than two draws).
//!
//! Rejection loops branch on fresh random values only, never on secret data already drawn.

use alloc::vec::Vec;

use crate::arith::Modulus;
use rand_core::{CryptoRng, RngCore};

/// The parameter `η` of the centred binomial error distribution (variance `η/2 = 10.5`).
pub const ETA: u32 = 21;

/// `n` coefficients uniform in `{-1, 0, 1}`.
pub fn ternary<R: RngCore + CryptoRng>(rng: &mut R, n: usize) -> Vec<i64> {
    let mut out = Vec::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        rng.fill_bytes(&mut buf);
        for &b in buf.iter() {
            if b < 255 && out.len() < n {
                out.push(i64::from(b % 3) - 1);
            }
        }
    }
    zeroize::Zeroize::zeroize(&mut buf);
    out
}

/// `n` samples of the centred binomial distribution with parameter [`ETA`].
///
/// # Ranges
/// Every output in `[-ETA, ETA]`.
pub fn centred_binomial<R: RngCore + CryptoRng>(rng: &mut R, n: usize) -> Vec<i64> {
    let mask = (1u64 << ETA) - 1;
    (0..n)
        .map(|_| {
            let r = rng.next_u64();
            let a = (r & mask).count_ones();
            let b = ((r >> ETA) & mask).count_ones();
            let e = i64::from(a) - i64::from(b);
            debug_assert!(e.unsigned_abs() <= u64::from(ETA));
            e
        })
        .collect()
}

/// One value uniform in `[0, p)`.
///
/// # Ranges
/// Output in `[0, p)`.
pub fn uniform_mod<R: RngCore + ?Sized>(rng: &mut R, q: &Modulus) -> u64 {
    let p = q.value();
    let mask = u64::MAX >> p.leading_zeros();
    loop {
        let x = rng.next_u64() & mask;
        if x < p {
            return x;
        }
    }
}

/// Fills `out` with values uniform in `[0, p)`.
///
/// # Ranges
/// Outputs in `[0, p)`.
pub fn fill_uniform_mod<R: RngCore + ?Sized>(rng: &mut R, q: &Modulus, out: &mut [u64]) {
    for x in out.iter_mut() {
        *x = uniform_mod(rng, q);
    }
}
