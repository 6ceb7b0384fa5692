//! The BFV batch encoder: `N` integers modulo a prime `t ≡ 1 (mod 2N)` packed into one
//! plaintext polynomial of `Z_t[X]/(X^N + 1)`.
//!
//! # Slots
//!
//! Because `t ≡ 1 (mod 2N)`, `X^N + 1` splits into `N` linear factors `X - ψ^e` modulo `t`
//! (`ψ` a primitive `2N`-th root of unity, `e` odd), and the map
//! `m(X) ↦ (m(ψ^e))_e` is a ring isomorphism (CRT). A plaintext's slots are these `N`
//! evaluations, so slot-wise sums and products of vectors are sums and products of
//! polynomials.
//!
//! # Layout (the 2 × N/2 matrix of SEAL)
//!
//! The odd residues modulo `2N` are `{±3^i : 0 <= i < N/2}`. Slot `i` of row 0 holds
//! `m(ψ^(3^i))` and slot `i` of row 1 holds `m(ψ^(-3^i))`. The Galois automorphism
//! `σ_g : X ↦ X^g` satisfies `(σ_g m)(ψ^e) = m(ψ^(g·e))`, hence
//!
//! * `σ_(3^k)` moves slot `i + k` of each row to slot `i` (both rows rotate left by `k`,
//!   cyclically, indices modulo `N/2`);
//! * `σ_(2N-1)` (`X ↦ X^-1`) swaps the two rows.
//!
//! [`heist_core::ntt::NttPlan::forward`] returns `â[j] = a(ψ^(2·bitrev(j) + 1))`, so the
//! evaluation at `ψ^e` sits at index `j = bitrev((e - 1)/2)`; [`BatchEncoder::slot_index`]
//! is that map, and the encoder writes slot values there and runs the inverse transform.
//! This is the index map of SEAL's `BatchEncoder` (`populate_matrix_reps_index_map`),
//! derived here from heist's own transform order.

use alloc::vec;
use alloc::vec::Vec;

use heist_core::arith::Modulus;
use heist_core::ntt::{bit_reverse, NttPlan};

use super::{BfvError, Plaintext};

/// The Galois element that rotates both rows left by `steps` (right for negative `steps`)
/// in ring degree `n`: `3^(steps mod N/2) mod 2N`.
///
/// # Panics
/// If `n` is not a power of two of at least 4.
pub fn rotation_galois_element(n: usize, steps: i64) -> u64 {
    assert!(
        n.is_power_of_two() && n >= 4,
        "ring degree {n} is not a power of two >= 4"
    );
    let two_n = 2 * n as u64;
    let half = (n / 2) as i64;
    let k = steps.rem_euclid(half) as u64;
    let mut g = 1u64;
    for _ in 0..k {
        g = g * 3 % two_n;
    }
    g
}

/// The Galois element `2N - 1` (`X ↦ X^-1`) that swaps the two rows.
pub fn row_swap_galois_element(n: usize) -> u64 {
    2 * n as u64 - 1
}

/// Encodes vectors of `N` integers modulo `t` into plaintext polynomials and back.
///
/// # Example
/// ```
/// use heist_he::bfv::BatchEncoder;
/// let enc = BatchEncoder::new(16, 97)?; // 97 ≡ 1 mod 32
/// let values: Vec<i64> = (0..16).map(|i| i - 8).collect();
/// let pt = enc.encode_i64(&values)?;
/// assert_eq!(enc.decode_i64(&pt)?, values);
/// # Ok::<(), heist_he::bfv::BfvError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BatchEncoder {
    plan: NttPlan,
    /// `index[s]`: the position in the forward transform of slot `s`
    /// (`s < N/2`: row 0, slot `s`; `s >= N/2`: row 1, slot `s - N/2`).
    index: Vec<usize>,
}

impl BatchEncoder {
    /// Builds the encoder for ring degree `n` and plaintext modulus `t`.
    ///
    /// # Errors
    /// [`BfvError::PlainModulus`] unless `t` is a prime `≡ 1 (mod 2n)` below `2^62` and `n` a
    /// power of two in `[16, 2^17]`.
    pub fn new(n: usize, t: u64) -> Result<Self, BfvError> {
        let plan = NttPlan::new(n, t).map_err(|source| BfvError::PlainModulus { t, n, source })?;
        let bits = n.trailing_zeros();
        let two_n = 2 * n as u64;
        let half = n / 2;
        let mut index = vec![0usize; n];
        let mut e = 1u64;
        for i in 0..half {
            // e = 3^i mod 2N; the point ψ^e sits at bitrev((e-1)/2), ψ^(2N-e) likewise.
            index[i] = bit_reverse(((e - 1) / 2) as usize, bits);
            index[half + i] = bit_reverse(((two_n - e - 1) / 2) as usize, bits);
            e = e * 3 % two_n;
        }
        Ok(Self { plan, index })
    }

    /// The ring degree `N` (number of slots).
    pub fn n(&self) -> usize {
        self.plan.n()
    }

    /// The plaintext modulus `t`.
    pub fn plain_modulus(&self) -> &Modulus {
        self.plan.modulus()
    }

    /// The position of slot `s` in the bit-reversed output of the forward transform mod `t`
    /// (`s < N/2`: row 0; otherwise row 1, slot `s - N/2`).
    ///
    /// # Panics
    /// If `s >= N`.
    pub fn slot_index(&self, s: usize) -> usize {
        self.index[s]
    }

    fn check_len(&self, len: usize) -> Result<(), BfvError> {
        if len > self.n() {
            return Err(BfvError::TooManySlots {
                given: len,
                slots: self.n(),
            });
        }
        Ok(())
    }

    /// Encodes up to `N` values in `[0, t)`, row 0 first; missing slots are zero.
    ///
    /// # Ranges
    /// Values in `[0, t)` → coefficients in `[0, t)`.
    ///
    /// # Errors
    /// [`BfvError::TooManySlots`] if more than `N` values are given;
    /// [`BfvError::SlotOutOfRange`] if a value is not below `t`.
    pub fn encode_u64(&self, values: &[u64]) -> Result<Plaintext, BfvError> {
        self.check_len(values.len())?;
        let t = self.plain_modulus().value();
        let mut poly = vec![0u64; self.n()];
        for (slot, &v) in values.iter().enumerate() {
            if v >= t {
                return Err(BfvError::SlotOutOfRange { slot, value: v, t });
            }
            poly[self.index[slot]] = v;
        }
        self.plan.inverse(&mut poly);
        Ok(Plaintext { t, coeffs: poly })
    }

    /// Encodes up to `N` signed values in `(-t/2, t/2]`, each as its residue mod `t`.
    ///
    /// # Ranges
    /// Values in `(-t/2, t/2]` → coefficients in `[0, t)`.
    ///
    /// # Errors
    /// [`BfvError::TooManySlots`]; [`BfvError::SignedSlotOutOfRange`] if a value lies outside
    /// `(-t/2, t/2]`.
    pub fn encode_i64(&self, values: &[i64]) -> Result<Plaintext, BfvError> {
        self.check_len(values.len())?;
        let t = self.plain_modulus();
        // t is an odd prime, so (-t/2, t/2] is [-(t-1)/2, (t-1)/2].
        let half = (t.value() / 2) as i64;
        let mut residues = Vec::with_capacity(values.len());
        for (slot, &v) in values.iter().enumerate() {
            if v < -half || v > half {
                return Err(BfvError::SignedSlotOutOfRange {
                    slot,
                    value: v,
                    t: t.value(),
                });
            }
            residues.push(t.from_i64(v));
        }
        self.encode_u64(&residues)
    }

    /// Decodes a plaintext into its `N` slot values in `[0, t)`, row 0 first.
    ///
    /// # Ranges
    /// Coefficients in `[0, t)` → values in `[0, t)`.
    ///
    /// # Errors
    /// [`BfvError::PlainMismatch`] if the plaintext has another degree or modulus.
    pub fn decode_u64(&self, pt: &Plaintext) -> Result<Vec<u64>, BfvError> {
        let t = self.plain_modulus().value();
        if pt.coeffs.len() != self.n() || pt.t != t {
            return Err(BfvError::PlainMismatch {
                n: self.n(),
                t,
                found_n: pt.coeffs.len(),
                found_t: pt.t,
            });
        }
        let mut evals = pt.coeffs.clone();
        self.plan.forward(&mut evals);
        Ok(self.index.iter().map(|&j| evals[j]).collect())
    }

    /// Decodes into centred values in `(-t/2, t/2]`.
    ///
    /// # Ranges
    /// Coefficients in `[0, t)` → values in `(-t/2, t/2]`.
    ///
    /// # Errors
    /// As [`Self::decode_u64`].
    pub fn decode_i64(&self, pt: &Plaintext) -> Result<Vec<i64>, BfvError> {
        let t = self.plain_modulus();
        Ok(self
            .decode_u64(pt)?
            .into_iter()
            .map(|v| t.centre(v))
            .collect())
    }
}
