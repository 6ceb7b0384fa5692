//! Galois automorphisms `X → X^g` on polynomials in evaluation form.
//!
//! With the NTT order of [`heist_core::ntt`], position `j` holds `a(ψ^(2·bitrev(j)+1))`.
//! Since `σ_g(a)(ψ^e) = a(ψ^(e·g))`, the automorphism is the permutation
//! `out[j] = in[π(j)]` with `2·bitrev(π(j)) + 1 ≡ (2·bitrev(j) + 1)·g (mod 2N)`; no NTT is
//! needed. For CKKS the slot rotation by `r` to the left is `g = 5^r mod 2N` and complex
//! conjugation is `g = 2N - 1`.

use alloc::vec::Vec;
use core::fmt;

use heist_core::ntt::bit_reverse;
use heist_core::rns::{Eval, RnsPoly};

/// An invalid Galois element.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GaloisError {
    /// The element is even or not below `2N`.
    BadElement {
        /// The rejected element.
        g: u64,
        /// The ring degree.
        n: usize,
    },
}

impl fmt::Display for GaloisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadElement { g, n } => write!(
                f,
                "Galois element {g} is not an odd number below 2N = {}",
                2 * *n as u64
            ),
        }
    }
}

impl core::error::Error for GaloisError {}

/// The permutation `π` of evaluation positions realising `X → X^g` for degree `n`.
///
/// # Errors
/// [`GaloisError::BadElement`] unless `g` is odd and below `2n`.
pub fn permutation(n: usize, g: u64) -> Result<Vec<u32>, GaloisError> {
    let two_n = 2 * n as u64;
    if g.is_multiple_of(2) || g >= two_n || !n.is_power_of_two() {
        return Err(GaloisError::BadElement { g, n });
    }
    let bits = n.trailing_zeros();
    Ok((0..n)
        .map(|j| {
            let e = 2 * bit_reverse(j, bits) as u64 + 1;
            let eg = (e * g) % two_n;
            bit_reverse(((eg - 1) / 2) as usize, bits) as u32
        })
        .collect())
}

/// `out = σ_g(a)` limb by limb, with `perm` from [`permutation`]; `out` must have at least
/// the limbs of `a` (extra limbs are left untouched).
///
/// # Ranges
/// Residues in `[0, q_i)` → `[0, q_i)` (a permutation).
///
/// # Panics
/// If `perm.len()` differs from `N` or `out` is smaller than `a`.
pub fn apply(perm: &[u32], a: &RnsPoly<Eval>, out: &mut RnsPoly<Eval>) {
    assert!(
        perm.len() == a.n() && out.n() == a.n() && out.limbs() >= a.limbs(),
        "galois::apply: sizes"
    );
    for i in 0..a.limbs() {
        let src = a.limb(i);
        for (o, &p) in out.limb_mut(i).iter_mut().zip(perm) {
            *o = src[p as usize];
        }
    }
}

/// The Galois element rotating CKKS slots left by `steps` (negative: right) for degree `n`:
/// `5^(steps mod N/2) mod 2N`.
pub fn rotation_element(n: usize, steps: i64) -> u64 {
    let two_n = 2 * n as u64;
    let half = (n / 2) as i64;
    let r = steps.rem_euclid(half) as u64;
    let mut g = 1u64;
    for _ in 0..r {
        g = g * 5 % two_n;
    }
    g
}

/// The Galois element of complex conjugation, `2N - 1`.
pub fn conjugation_element(n: usize) -> u64 {
    2 * n as u64 - 1
}
