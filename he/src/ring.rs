//! General operations on elements of `R_Q = Z_Q[X]/(X^N + 1)` in RNS evaluation form.
//!
//! Every prime `q_i` of a basis is `≡ 1 (mod 2N)`, so `X^N + 1` splits modulo `q_i` into
//! the `N` distinct linear factors `X - ψ^e` (`ψ` a primitive `2N`-th root, `e` odd), and
//! `Z_{q_i}[X]/(X^N + 1) ≅ Z_{q_i}^N` by evaluation at those roots: the negacyclic NTT,
//! whose output is the evaluation form of [`RnsPoly`]`<Eval>`. An element is therefore a
//! unit modulo `q_i` exactly when none of its `N` evaluations is zero, and its inverse is
//! the evaluation-wise inverse. Modulo `Q = Π q_i` (CRT) it is a unit when it is one
//! modulo every prime.

use core::fmt;

use heist_core::rns::{Eval, RnsBasis, RnsPoly};

/// An element that has no inverse.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RingError {
    /// An evaluation is zero: the element is not a unit modulo `prime`.
    NotInvertible {
        /// The limb (index of the prime in the basis).
        limb: usize,
        /// The prime.
        prime: u64,
        /// The evaluation position (NTT order) that is zero.
        position: usize,
    },
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInvertible {
                limb,
                prime,
                position,
            } => write!(
                f,
                "not invertible modulo q_{limb} = {prime}: evaluation {position} is zero"
            ),
        }
    }
}

impl core::error::Error for RingError {}

/// The inverse of `a` in `R_{q_0 ⋯ q_{k-1}}` (`k` = the limbs of `a`), per prime: the
/// element `b` with `a · b ≡ 1 (mod q_i)` for every limb `i`.
///
/// # Ranges
/// Residues of `a` in `[0, q_i)` → residues of the inverse in `[1, q_i)`.
///
/// # Errors
/// [`RingError::NotInvertible`] naming the first limb and evaluation that is zero.
///
/// # Panics
/// If `a` does not fit `basis` (more limbs, another degree).
pub fn invert(a: &RnsPoly<Eval>, basis: &RnsBasis) -> Result<RnsPoly<Eval>, RingError> {
    assert!(
        a.n() == basis.n() && a.limbs() <= basis.len(),
        "ring::invert: a polynomial of {} limbs of degree {} for a basis of {} primes of degree {}",
        a.limbs(),
        a.n(),
        basis.len(),
        basis.n()
    );
    let mut out = a.clone();
    for i in 0..a.limbs() {
        let q = basis.modulus(i);
        for (position, x) in out.limb_mut(i).iter_mut().enumerate() {
            *x = q.inv(*x).ok_or(RingError::NotInvertible {
                limb: i,
                prime: q.value(),
                position,
            })?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use heist_core::primes::ntt_primes;
    use heist_core::rns::Coeff;
    use rand_chacha::rand_core::{RngCore, SeedableRng};

    /// The slow obvious product: schoolbook negacyclic convolution modulo `p` in `u128`.
    fn negacyclic(a: &[u64], b: &[u64], p: u64) -> Vec<u64> {
        let n = a.len();
        let p = u128::from(p);
        let mut out = vec![0u128; n];
        for (i, &x) in a.iter().enumerate() {
            for (j, &y) in b.iter().enumerate() {
                let prod = u128::from(x) * u128::from(y) % p;
                let k = (i + j) % n;
                out[k] = if i + j < n {
                    (out[k] + prod) % p
                } else {
                    (out[k] + p - prod) % p
                };
            }
        }
        out.into_iter().map(|x| x as u64).collect()
    }

    fn basis(n: usize) -> RnsBasis {
        let primes = ntt_primes(40, 2 * n as u64, 3, &[]).expect("NTT primes");
        RnsBasis::new(n, &primes).expect("basis")
    }

    #[test]
    fn inverse_times_element_is_one_by_the_schoolbook_product() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(13);
        let mut checked = 0;
        for n in [16usize, 64] {
            let basis = basis(n);
            for _ in 0..4 {
                let coeffs: Vec<i64> = (0..n).map(|_| (rng.next_u32() % 7) as i64 - 3).collect();
                let a =
                    RnsPoly::<Coeff>::from_signed(&coeffs, basis.len(), &basis).into_eval(&basis);
                let Ok(inv) = invert(&a, &basis) else {
                    continue;
                };
                let a_c = a.clone().into_coeff(&basis);
                let inv_c = inv.into_coeff(&basis);
                for i in 0..basis.len() {
                    let p = basis.modulus(i).value();
                    let prod = negacyclic(a_c.limb(i), inv_c.limb(i), p);
                    let mut one = vec![0u64; n];
                    one[0] = 1;
                    assert_eq!(prod, one, "n = {n}, limb {i}");
                }
                checked += 1;
            }
        }
        assert!(
            checked >= 6,
            "only {checked} of 8 random elements were units"
        );
    }

    #[test]
    fn an_element_with_a_zero_evaluation_is_refused_with_its_position() {
        let basis = basis(16);
        // X - ψ vanishes at ψ: build it in coefficient form from the prime's root.
        let p = basis.modulus(1).value();
        let psi = heist_core::primes::primitive_root(p, 32).expect("root");
        let mut x = vec![0i64; 16];
        x[1] = 1;
        let mut a = RnsPoly::<Coeff>::from_signed(&x, basis.len(), &basis);
        for i in 0..basis.len() {
            let q = basis.modulus(i);
            let r = if i == 1 { q.neg(q.reduce(psi)) } else { 1 };
            a.limb_mut(i)[0] = r;
        }
        let a = a.into_eval(&basis);
        match invert(&a, &basis) {
            Err(RingError::NotInvertible {
                limb,
                prime,
                position,
            }) => {
                assert_eq!((limb, prime), (1, p));
                assert_eq!(a.limb(1)[position], 0);
            }
            other => panic!("expected NotInvertible, got {other:?}"),
        }
    }
}
