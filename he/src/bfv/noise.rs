//! The invariant noise of BFV ciphertexts: its measurement with the secret key and a
//! worst-case bound tracked without it.
//!
//! # Definitions
//!
//! For a ciphertext `(c_0, c_1)` modulo `Q` that decrypts to `m` under `s`, the
//! *invariant noise* (Bajard et al., SAC 2016, §2; Microsoft SEAL) is the polynomial `v`
//! with real coefficients such that
//!
//! ```text
//! (t/Q)·(c_0 + c_1·s) = m + v + t·r     (r an integer polynomial, ‖v‖∞ minimal),
//! ```
//!
//! equivalently `Q·v = [t·(c_0 + c_1·s)]_Q`, the centred residue. Decryption
//! (`round(t/Q·(c_0 + c_1 s)) mod t`) returns `m` exactly when `‖v‖∞ < 1/2`. The
//! **noise budget** is `-log2(2·‖v‖∞) = log2 Q - 1 - log2 ‖[t·(c_0 + c_1 s)]_Q‖∞` bits:
//! positive exactly when decryption is correct. [`super::noise_budget`] measures it
//! (the centred residues are reconstructed exactly by
//! [`heist_core::rns::RnsBasis::compose_centred`]; only their final conversion to `f64`
//! rounds); as SEAL, it is meaningful only while it is positive. Once `‖v‖∞` has passed
//! `1/2` the residue wraps and `v` looks uniform in `(-1/2, 1/2]`, whose largest
//! coefficient out of `N` is within about `1/(2N)` of `1/2`: a measured budget below one
//! bit (about `1.44/N` bits for a wrapped noise) does not prove correctness, one of at
//! least one bit does (all `N` coefficients below `1/4` by chance has probability `2^-N`).
//!
//! # The tracked bound
//!
//! Every ciphertext carries `noise_bound`, an upper bound on `‖v‖∞` updated by each
//! operation from worst-case inequalities (no probabilistic heuristic): `‖a·b‖∞ <=
//! ‖a‖₁·‖b‖∞ <= N·‖a‖∞·‖b‖∞`, ternary `s` and `u` (`‖s‖∞ = 1`, `‖s‖₁ <= N`,
//! `‖s²‖₁ <= N²`), errors bounded by `B = η = 21` ([`heist_core::sample::ETA`]).
//!
//! | operation | bound on the new `‖v‖∞` |
//! |---|---|
//! | secret-key encryption | `t·(B + 1/2)/Q` |
//! | public-key encryption | `t·(B·(2N + 1) + 1/2)/Q` |
//! | add, sub | `v_1 + v_2` |
//! | negate, rotation before key switching | `v` |
//! | add/sub plaintext | `v + t/(2Q)` |
//! | multiply by plaintext `p` (centred) | `‖p‖₁·v` |
//! | multiply by scalar `c` (centred) | `abs(c)·v` |
//! | key switching (relinearisation, rotation) | `v + (t/Q)·(k·N·q_max·B/P + (N + 1)/2)` |
//! | ct × ct before relinearisation | `(N·t/2 + N·t·R)(v_1 + v_2) + N·v_1·v_2 + (t/Q)(1 + N + N²)` |
//!
//! Every bound is at least `2/Q` ([`NoiseModel::floor`]). The `1/2` terms come from encoding `m` as `round(Q·m/t)`. In the product, `m_i`
//! are taken centred (`‖m_i‖∞ <= t/2`) and `R = (N + 3)/2` bounds `‖r_i‖∞` (from
//! `‖t/Q·(c_0 + c_1 s)‖∞ <= t·(N + 1)/2`); the expansion of
//! `(m_1 + v_1 + t r_1)(m_2 + v_2 + t r_2)` leaves `m_1 v_2 + m_2 v_1 + v_1 v_2 +
//! t(r_1 v_2 + r_2 v_1)` beside multiples of `t`, and the three roundings of the HPS
//! scaling (each within `1` of the exact value, see [`super::rns`]) contribute
//! `(t/Q)·‖ε_0 + ε_1 s + ε_2 s²‖∞`. For key switching, `k` digits below `q_max` times
//! errors below `B`, divided by the special prime `P`, plus the rounding `r_0 + r_1 s`
//! ([`crate::keys`]). Floating-point rounding of these formulas (relative `2^-52` per
//! operation) is far inside their slack.

use heist_core::sample::ETA;

/// The error bound `B`.
const B: f64 = ETA as f64;

/// The constants of the noise bound for one parameter set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseModel {
    n: f64,
    t: f64,
    /// `t/Q`.
    t_over_q: f64,
    /// The key-switching term `(t/Q)·(k·N·q_max·B/P + (N + 1)/2)`.
    key_switch: f64,
}

impl NoiseModel {
    /// The model for degree `n`, plaintext modulus `t`, `log2 Q = log2_q`, a chain of `k`
    /// primes whose largest is `q_max`, and special prime `special`.
    pub fn new(n: usize, t: u64, log2_q: f64, k: usize, q_max: f64, special: f64) -> Self {
        let n = n as f64;
        let t = t as f64;
        let t_over_q = t * libm::exp2(-log2_q);
        let key_switch = t_over_q * (k as f64 * n * q_max * B / special + (n + 1.0) / 2.0);
        Self {
            n,
            t,
            t_over_q,
            key_switch,
        }
    }

    /// `v`, raised to at least `2/Q`: the measured budget never exceeds `log2 Q - 1` (see
    /// [`super::noise_budget`]), so a bound of zero (a product by zero) must not claim more.
    pub fn floor(&self, v: f64) -> f64 {
        v.max(2.0 * self.t_over_q / self.t)
    }

    /// After secret-key encryption.
    pub fn fresh_sk(&self) -> f64 {
        self.t_over_q * (B + 0.5)
    }

    /// After public-key encryption.
    pub fn fresh_pk(&self) -> f64 {
        self.t_over_q * (B * (2.0 * self.n + 1.0) + 0.5)
    }

    /// After adding or subtracting a plaintext.
    pub fn add_plain(&self, v: f64) -> f64 {
        v + self.t_over_q / 2.0
    }

    /// After one key switch.
    pub fn key_switch(&self, v: f64) -> f64 {
        v + self.key_switch
    }

    /// After a ciphertext product, before relinearisation.
    pub fn tensor(&self, v1: f64, v2: f64) -> f64 {
        let n = self.n;
        let r = (n + 3.0) / 2.0;
        (n * self.t / 2.0 + n * self.t * r) * (v1 + v2)
            + n * v1 * v2
            + self.t_over_q * (1.0 + n + n * n)
    }

    /// After a ciphertext product and relinearisation.
    pub fn mul_relin(&self, v1: f64, v2: f64) -> f64 {
        self.key_switch(self.tensor(v1, v2))
    }
}

/// The budget `-log2(2·v)` in bits that a noise bound `v` leaves.
pub fn budget_bits(v: f64) -> f64 {
    -libm::log2(2.0 * v)
}
