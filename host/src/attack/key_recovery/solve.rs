//! The algebra of the attack: released values back to ring elements, and `s` from them.
//!
//! # CKKS: the real parts of the slots
//!
//! The service releases only the real parts of the slots. For a real polynomial `p`, the
//! polynomial whose slots are `Re p(ζ_j)` is `(p + τ(p))/2` with `τ: X ↦ X⁻¹` (complex
//! conjugation of the slots), so re-encoding the released values at twice the scale gives
//! the integer polynomial `σ(p) = p + τ(p)` (coefficients `2p_0` and `p_i - p_{N-i}`):
//! half of `p`. Two decryptions `p_k = c_{0,k} + c_{1,k}·s` (`k = 0, 1`) give, with
//! `a_k = σ(p_k) - σ(c_{0,k})`,
//!
//! ```text
//! a_k = c_{1,k}·s + τ(c_{1,k})·τ(s),
//! ```
//!
//! two linear equations over `R_q` in `s` and `τ(s)`, solved evaluation by evaluation:
//! `s = (a_0·τ(c_{1,1}) - a_1·τ(c_{1,0})) / (c_{1,0}·τ(c_{1,1}) - c_{1,1}·τ(c_{1,0}))`. The
//! determinant is a unit for random `c_1` (with probability about `1 - 2N/q`) and for the
//! crafted pair `(1, X)`, whose determinant `X⁻¹ - X` has no root of order `2N`. The
//! solution is computed modulo `q_0` only: `s` is ternary, so its residues mod `q_0`
//! are its coefficients.
//!
//! # BFV: residues read through `f32` scores
//!
//! See [`refine_residues`].

use heist_core::rns::{Coeff, Eval, RnsBasis, RnsPoly};
use heist_he::ckks::fft::Complex;
use heist_he::ckks::{CkksError, Encoder};
use heist_he::galois::{self, GaloisError};
use heist_he::ring::{self, RingError};

/// Why the released values did not give a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SolveError {
    /// Re-encoding failed.
    #[error("re-encoding: {0}")]
    Encode(#[from] CkksError),
    /// The conjugation could not be built.
    #[error(transparent)]
    Galois(#[from] GaloisError),
    /// The 2 × 2 system is singular.
    #[error("the system is singular: {0}")]
    Singular(#[from] RingError),
    /// The solution is not a ternary polynomial: the released values were not exact.
    #[error("the solution is not ternary (coefficient {index} is {value})")]
    NotTernary {
        /// The first offending coefficient.
        index: usize,
        /// Its centred value.
        value: i64,
    },
    /// The solution is the zero polynomial: the release carried nothing.
    #[error("the solution is the zero polynomial")]
    Zero,
    /// Wrong numbers of released values or ciphertext parts.
    #[error("{what}: expected {expected}, found {found}")]
    Shape {
        /// What has the wrong size.
        what: &'static str,
        /// The size expected.
        expected: usize,
        /// The size found.
        found: usize,
    },
}

/// `σ(p) = p + τ(p)` as integers, re-encoded from the real parts `re` of all `N/2` slots
/// of a plaintext at `scale`, and the largest distance of a re-encoded coefficient to its
/// integer (0 for an exact release; at least 1/2 means the release lost information).
///
/// # Errors
/// [`SolveError::Shape`] unless `re` holds every slot; [`SolveError::Encode`] for values the
/// encoder refuses.
pub fn symmetric_part(
    encoder: &Encoder,
    re: &[f64],
    scale: f64,
) -> Result<(Vec<i64>, f64), SolveError> {
    let slots = encoder.params().slots();
    if re.len() != slots {
        return Err(SolveError::Shape {
            what: "released slots",
            expected: slots,
            found: re.len(),
        });
    }
    let values: Vec<Complex> = re.iter().map(|&x| Complex::new(x, 0.0)).collect();
    let coeffs = encoder.embed_inverse(&values, 2.0 * scale)?;
    let mut worst = 0.0f64;
    let ints = coeffs
        .iter()
        .map(|&c| {
            let r = c.round();
            worst = worst.max((c - r).abs());
            r as i64
        })
        .collect();
    Ok((ints, worst))
}

/// `τ(a)`: `X ↦ X⁻¹` (`X ↦ X^(2N-1)`) in evaluation form.
fn conjugate(a: &RnsPoly<Eval>) -> Result<RnsPoly<Eval>, GaloisError> {
    let n = a.n();
    let perm = galois::permutation(n, 2 * n as u64 - 1)?;
    let mut out = RnsPoly::zero(n, a.limbs());
    galois::apply(&perm, a, &mut out);
    Ok(out)
}

/// One decryption the solver uses: the ciphertext's parts reduced to their first limb,
/// and the re-encoded `σ(c_0 + c_1·s)`.
#[derive(Debug, Clone)]
pub struct Equation {
    /// `c_0` modulo `q_0`.
    pub c0: RnsPoly<Eval>,
    /// `c_1` modulo `q_0`.
    pub c1: RnsPoly<Eval>,
    /// `σ(c_0 + c_1·s)` from [`symmetric_part`].
    pub symmetric: Vec<i64>,
}

impl Equation {
    /// The equation of a ciphertext `(c0, c1)` (any level) and its re-encoded release.
    pub fn new(c0: &RnsPoly<Eval>, c1: &RnsPoly<Eval>, symmetric: Vec<i64>) -> Self {
        let first = |p: &RnsPoly<Eval>| {
            let mut p = p.clone();
            p.truncate(1);
            p
        };
        Self {
            c0: first(c0),
            c1: first(c1),
            symmetric,
        }
    }
}

/// Solves two equations for a ternary `s` (coefficients in `{-1, 0, 1}`), modulo the
/// first prime of `basis`.
///
/// # Errors
/// [`SolveError::Singular`] when the determinant is not a unit; [`SolveError::NotTernary`]
/// when the solution is not ternary (the releases were not exact);
/// [`SolveError::Shape`] for a re-encoding of another degree.
pub fn solve_ternary(
    basis: &RnsBasis,
    first: &Equation,
    second: &Equation,
) -> Result<Vec<i64>, SolveError> {
    let n = basis.n();
    for e in [first, second] {
        if e.symmetric.len() != n {
            return Err(SolveError::Shape {
                what: "re-encoded coefficients",
                expected: n,
                found: e.symmetric.len(),
            });
        }
    }
    // a_k = σ(p_k) - σ(c_{0,k}).
    let a = |e: &Equation| -> Result<RnsPoly<Eval>, SolveError> {
        let mut a = RnsPoly::<Coeff>::from_signed(&e.symmetric, 1, basis).into_eval(basis);
        a.sub_assign(&e.c0, basis);
        a.sub_assign(&conjugate(&e.c0)?, basis);
        Ok(a)
    };
    let (a0, a1) = (a(first)?, a(second)?);
    let (t0, t1) = (conjugate(&first.c1)?, conjugate(&second.c1)?);
    let mut det = first.c1.clone();
    det.mul_assign(&t1, basis);
    let mut other = second.c1.clone();
    other.mul_assign(&t0, basis);
    det.sub_assign(&other, basis);
    let mut s = a0;
    s.mul_assign(&t1, basis);
    let mut rhs = a1;
    rhs.mul_assign(&t0, basis);
    s.sub_assign(&rhs, basis);
    s.mul_assign(&ring::invert(&det, basis)?, basis);
    let s = s.into_coeff(basis);
    let q = basis.modulus(0);
    ternary(s.limb(0).iter().map(|&r| q.centre(r)))
}

/// The coefficients as a ternary key: each in `{-1, 0, 1}`, not all zero (the zero
/// polynomial is what a release that lost everything gives, and decrypts nothing).
///
/// # Errors
/// [`SolveError::NotTernary`] for the first coefficient outside `{-1, 0, 1}`;
/// [`SolveError::Zero`] for the zero polynomial.
pub fn ternary(coeffs: impl Iterator<Item = i64>) -> Result<Vec<i64>, SolveError> {
    let s = coeffs
        .enumerate()
        .map(|(index, value)| {
            if value.abs() <= 1 {
                Ok(value)
            } else {
                Err(SolveError::NotTernary { index, value })
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if s.iter().all(|&c| c == 0) {
        return Err(SolveError::Zero);
    }
    Ok(s)
}

/// The multipliers `μ_0 = 1 < μ_1 < …` of [`refine_residues`] for a prime `t` and a
/// measurement error of at most `eps` (in units of a residue; see there): each `μ` is the
/// largest power of two that keeps `μ·ρ + eps` below `t/2` for the current uncertainty
/// `ρ`, which it shrinks to `floor(eps/μ + 1/2)`. `None` when no multiplier makes progress
/// (`eps >= t/8`) or more than `max` would be needed.
pub fn multipliers(t: u64, eps: f64, max: usize) -> Option<Vec<u64>> {
    let half = t as f64 / 2.0;
    if !(eps >= 0.0 && eps < half / 4.0) {
        return None;
    }
    let mut out = vec![1u64];
    let mut radius = (eps + 0.5).floor();
    while radius > 0.0 {
        if out.len() >= max {
            return None;
        }
        // μ < (t/2 - eps)/ρ: the largest power of two strictly below the limit.
        let limit = (half - eps) / radius;
        let bits = (limit.log2().ceil() as i32 - 1).clamp(0, 62);
        let mu = 1u64 << bits;
        let next = (eps / mu as f64 + 0.5).floor();
        if mu < 2 || next >= radius {
            return None;
        }
        out.push(mu);
        radius = next;
    }
    Some(out)
}

/// The residues `r_j` in `[0, t)` from measurements `measured[c][j]` of the centred
/// `[μ_c·r_j]_t` (`mus` from [`multipliers`] for a bound `eps`), each within `eps` of the truth.
///
/// Stage 0 rounds the measurement of `r_j` itself (`|δ| <= ρ` for `δ = r_j - r̂_j`).
/// Stage `c` knows `μ_c·δ ≡ a_c - μ_c·r̂_j (mod t)`; as `|μ_c·δ| + eps < t/2`, the centred
/// difference `w` of the measurement and `μ_c·r̂_j` is `μ_c·δ` within `eps`, and
/// `r̂_j + round(w/μ_c)` is within `floor(eps/μ_c + 1/2)` of `r_j`.
///
/// # Ranges
/// `t < 2^62`; measurements finite → residues in `[0, t)` (exact when the bounds hold).
///
/// # Panics
/// If `measured` has fewer rows than `mus`.
pub fn refine_residues(t: u64, mus: &[u64], measured: &[Vec<f64>]) -> Vec<u64> {
    let tt = i128::from(t);
    let tf = t as f64;
    let centred = |x: i128| -> i128 {
        let r = x.rem_euclid(tt);
        if r > tt / 2 {
            r - tt
        } else {
            r
        }
    };
    let slots = measured.first().map_or(0, Vec::len);
    (0..slots)
        .map(|j| {
            let mut estimate = measured[0][j].round() as i128;
            for (c, &mu) in mus.iter().enumerate().skip(1) {
                let predicted = centred(i128::from(mu) * estimate) as f64;
                let mut w = measured[c][j] - predicted;
                w -= tf * (w / tf).round();
                estimate += (w / mu as f64).round() as i128;
            }
            estimate.rem_euclid(tt) as u64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::{RngCore, SeedableRng};

    /// `[μ·r]_t` centred, as the service releases it: times `other / scale`, through `f32`,
    /// and back.
    fn released(t: u64, mu: u64, r: u64, other: f64, scale: f64) -> f64 {
        let a = (u128::from(mu) * u128::from(r) % u128::from(t)) as i128;
        let a = if a > i128::from(t / 2) {
            a - i128::from(t)
        } else {
            a
        };
        let score = ((a as f64 * other) / scale) as f32;
        f64::from(score) * scale / other
    }

    #[test]
    fn residues_come_back_exactly_through_f32_for_primes_up_to_2_to_the_60() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(17);
        for (t, other) in [
            (65_537u64, 1.0),
            (1_073_479_681, 1_073_153_025.0),
            ((1 << 45) + 0x1d, 3.0),
            ((1 << 60) - 93, 1.0),
        ] {
            let eps = t as f64 * f64::powi(2.0, -24);
            let mus = multipliers(t, eps, 10).expect("multipliers");
            assert_eq!(mus[0], 1);
            let truth: Vec<u64> = (0..200).map(|_| rng.next_u64() % t).collect();
            let measured: Vec<Vec<f64>> = mus
                .iter()
                .map(|&mu| {
                    truth
                        .iter()
                        .map(|&r| released(t, mu, r, other, 1024.0))
                        .collect()
                })
                .collect();
            assert_eq!(refine_residues(t, &mus, &measured), truth, "t = {t}");
        }
    }

    #[test]
    fn no_multipliers_when_the_error_swamps_the_prime_or_stages_run_out() {
        assert_eq!(multipliers(1 << 20, f64::from(1 << 18), 10), None);
        assert_eq!(multipliers((1 << 60) - 93, f64::powi(2.0, 36), 2), None);
        assert_eq!(multipliers(65_537, 0.2, 10), Some(vec![1]));
    }
}
