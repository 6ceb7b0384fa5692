//! BFV parameters: the common [`HeParams`] plus the plaintext modulus `t` and the
//! precomputed RNS constants of encryption, decryption and multiplication.

use alloc::vec;
use alloc::vec::Vec;

use heist_core::arith::{Modulus, ShoupConst};
use heist_core::ntt::NttPlan;
use heist_core::rns::RnsBasis;

use super::noise::{budget_bits, NoiseModel};
use super::rns::{BasisExtender, ScaleRound};
use crate::params::{max_log_q, primes_for_sizes, HeParams, ParamsError, SecurityLevel};

/// The bit size of the primes of the auxiliary basis `P` of multiplication (HPS).
pub const AUX_PRIME_BITS: u32 = 61;
/// The bit size of the chain and special primes chosen by [`BfvParams::for_depth`].
pub const DEPTH_PRIME_BITS: u32 = 60;
/// The largest plaintext modulus size in bits.
pub const MAX_PLAIN_BITS: u32 = 60;

/// BFV parameters: ring degree `N`, ciphertext chain `Q = q_0 ⋯ q_{L-1}`, special prime
/// (key switching), plaintext modulus `t` (a prime `≡ 1 mod 2N`, for batching), and the
/// auxiliary basis `P` of the HPS multiplication.
///
/// BFV ciphertexts always live modulo the whole chain `Q`. `P` is chosen so that
/// `P > t·N·Q` (bit sizes: `60·|P| >= bits(t) + log2 N + bits(Q)`), which keeps the
/// tensor product (at most `N·Q²/2` in absolute value) below `Q·P/2` and its scaled
/// value below `P/2`, so both RNS representations are exact.
///
/// Sets that differ only in `t` (several plaintext primes recombined by CRT) are built
/// with [`Self::with_plain_modulus`], which reuses the common parameters.
#[derive(Debug, Clone)]
pub struct BfvParams {
    he: HeParams,
    t: Modulus,
    /// The chain as moduli, the auxiliary basis and its NTT plans.
    q_mod: Vec<Modulus>,
    aux: RnsBasis,
    /// `[Δ]_{q_i}` with `Δ = floor(Q/t)`.
    delta: Vec<ShoupConst>,
    /// `[Q]_t`.
    q_mod_t: u64,
    /// `[t]_{q_i}`, for the noise readout.
    t_in_q: Vec<ShoupConst>,
    noise: NoiseModel,
    pub(crate) extend_q_to_p: BasisExtender,
    pub(crate) extend_p_to_q: BasisExtender,
    pub(crate) scale_mul: ScaleRound,
    pub(crate) scale_dec: ScaleRound,
}

impl BfvParams {
    /// Parameters from an explicit chain, checked against the security standard.
    ///
    /// # Errors
    /// As [`HeParams::new`]; [`ParamsError::Scheme`] when `t` is not a prime `≡ 1 mod 2N`
    /// of at most [`MAX_PLAIN_BITS`] bits, is one of the primes, or is not below `Q`.
    pub fn new(
        n: usize,
        chain: &[u64],
        special: u64,
        t: u64,
        level: SecurityLevel,
    ) -> Result<Self, ParamsError> {
        Self::from_common(HeParams::new(n, chain, special, level)?, t)
    }

    /// Parameters without the security check (tests at small `N`).
    ///
    /// # Errors
    /// As [`HeParams::new_insecure_for_tests`] and [`Self::new`].
    #[cfg(any(test, feature = "insecure-params"))]
    pub fn new_insecure_for_tests(
        n: usize,
        chain: &[u64],
        special: u64,
        t: u64,
    ) -> Result<Self, ParamsError> {
        Self::unchecked(n, chain, special, t)
    }

    /// `Self::new_insecure_for_tests` for this crate's paths behind insecure entry points.
    pub(crate) fn unchecked(
        n: usize,
        chain: &[u64],
        special: u64,
        t: u64,
    ) -> Result<Self, ParamsError> {
        Self::from_common(HeParams::unchecked(n, chain, special)?, t)
    }

    /// The same chain and keys with another plaintext modulus `t`: keys generated for
    /// `self.he()` serve both.
    ///
    /// # Errors
    /// As [`Self::from_common`].
    pub fn with_plain_modulus(&self, t: u64) -> Result<Self, ParamsError> {
        Self::from_common(self.he.clone(), t)
    }

    /// Wraps common parameters with a plaintext modulus.
    ///
    /// # Errors
    /// [`ParamsError::Scheme`] when `t` is not a prime `≡ 1 mod 2N` of at most
    /// [`MAX_PLAIN_BITS`] bits, is one of the primes of the set, or is not below `Q`;
    /// [`ParamsError::Primes`] when no auxiliary primes can be found.
    pub fn from_common(he: HeParams, t: u64) -> Result<Self, ParamsError> {
        let n = he.n();
        let bad_t = |what| ParamsError::Scheme { what, value: t };
        if t < 2 || 64 - t.leading_zeros() > MAX_PLAIN_BITS || NttPlan::new(n, t).is_err() {
            return Err(bad_t(
                "plaintext modulus must be a prime ≡ 1 mod 2N of at most 60 bits, got",
            ));
        }
        let basis = he.basis();
        if basis.primes().contains(&t) {
            return Err(bad_t(
                "plaintext modulus must differ from the chain primes, got",
            ));
        }
        let q_above_t = he
            .chain()
            .iter()
            .try_fold(1u128, |acc, &q| acc.checked_mul(u128::from(q)))
            .is_none_or(|q| q > u128::from(t));
        if !q_above_t {
            return Err(bad_t("plaintext modulus must be below Q, got"));
        }
        let tm = Modulus::new(t).map_err(|_| bad_t("invalid plaintext modulus"))?;
        let l = he.max_level();
        let q_mod: Vec<Modulus> = (0..l).map(|i| *basis.modulus(i)).collect();
        let q_bits: u32 = he.log_q_at(l);
        let need = (64 - t.leading_zeros()) + n.trailing_zeros() + q_bits;
        let count = need as usize / (AUX_PRIME_BITS as usize - 1) + 1;
        let mut exclude = basis.primes();
        exclude.push(t);
        let aux_primes = primes_for_sizes(n, &vec![AUX_PRIME_BITS; count], &exclude)?;
        let aux = RnsBasis::new(n, &aux_primes)?;
        let p_mod: Vec<Modulus> = (0..count).map(|j| *aux.modulus(j)).collect();
        // Q mod t, and Δ = (Q - [Q]_t)/t modulo each q_i: (-[Q]_t)·t^-1.
        let q_mod_t = q_mod
            .iter()
            .fold(1u64, |acc, q| tm.mul(acc, tm.reduce(q.value())));
        let mut delta = Vec::with_capacity(l);
        let mut t_in_q = Vec::with_capacity(l);
        for q in &q_mod {
            let t_inv = q
                .inv(t)
                .ok_or(bad_t("plaintext modulus not invertible modulo Q"))?;
            delta.push(q.shoup(q.mul(q.neg(q.reduce(q_mod_t)), t_inv)));
            t_in_q.push(q.shoup(q.reduce(t)));
        }
        let q_max = he.chain().iter().copied().max().unwrap_or(0) as f64;
        let log2_q = q_mod.iter().map(|q| libm::log2(q.value() as f64)).sum();
        let noise = NoiseModel::new(n, t, log2_q, l, q_max, he.special() as f64);
        Ok(Self {
            noise,
            extend_q_to_p: BasisExtender::new(&q_mod, &p_mod),
            extend_p_to_q: BasisExtender::new(&p_mod, &q_mod),
            scale_mul: ScaleRound::new(&q_mod, &p_mod, t, true),
            scale_dec: ScaleRound::new(&q_mod, &[tm], t, false),
            he,
            t: tm,
            q_mod,
            aux,
            delta,
            q_mod_t,
            t_in_q,
        })
    }

    /// A secure set for `depth` sequential ciphertext multiplications with plaintext
    /// modulus `t`: the smallest chain (primes of equal size, at most 60 bits) for which
    /// the worst-case bound of [`super::noise`] leaves at least one bit of budget after
    /// `depth` squarings of a fresh public-key encryption, and a special prime of the
    /// same size.
    ///
    /// # Errors
    /// [`ParamsError::Insecure`] when that chain exceeds the security bound for `n` (the
    /// error names the sizes); otherwise as [`Self::new`].
    pub fn for_depth(
        n: usize,
        t: u64,
        depth: usize,
        level: SecurityLevel,
    ) -> Result<Self, ParamsError> {
        let max = max_log_q(n, level).ok_or(ParamsError::BadDegree {
            n,
            min: crate::params::MIN_SECURE_N,
            max: crate::params::MAX_SECURE_N,
        })?;
        let (count, bits) = chain_for_depth(n, t, depth);
        let log_q = (count as u32 + 1) * bits;
        if log_q > max {
            return Err(ParamsError::Insecure {
                log_q,
                max_log_q: max,
                n,
                level_bits: level.bits(),
            });
        }
        let mut primes = primes_for_sizes(n, &vec![bits; count + 1], &[t])?;
        // The sizes are equal and drawn downwards: the first is the largest, the special.
        let special = primes.remove(0);
        Self::new(n, &primes, special, t, level)
    }

    /// The default set for `n` in `{4096, 8192, 16384}` at 128-bit security, with the
    /// prime sizes of Microsoft SEAL's `BFVDefault` (so timings compare on equal terms) and
    /// `t = 65537` (`≡ 1 mod 2N` for every `N <= 32768`):
    /// `N = 4096`: chain `[36, 36]` + special 37 (109 bits);
    /// `N = 8192`: chain `[43, 43, 44, 44]` + special 44 (218 bits);
    /// `N = 16384`: chain `[48, 48, 48, 49, 49, 49, 49, 49]` + special 49 (438 bits).
    ///
    /// # Errors
    /// [`ParamsError::BadDegree`] for another `n`.
    pub fn default_for(n: usize) -> Result<Self, ParamsError> {
        let sizes: &[u32] = match n {
            4096 => &[36, 36, 37],
            8192 => &[43, 43, 44, 44, 44],
            16384 => &[48, 48, 48, 49, 49, 49, 49, 49, 49],
            _ => {
                return Err(ParamsError::BadDegree {
                    n,
                    min: 4096,
                    max: 16384,
                })
            }
        };
        let t = 65537;
        let mut primes = primes_for_sizes(n, sizes, &[t])?;
        // The special prime must be the largest: take it out of the drawn primes.
        let top = (0..primes.len()).max_by_key(|&i| primes[i]).unwrap_or(0);
        let special = primes.remove(top);
        Self::new(n, &primes, special, t, SecurityLevel::Tc128)
    }

    /// The common parameters (keys are generated for these).
    pub fn he(&self) -> &HeParams {
        &self.he
    }

    /// The ring degree `N` (and number of slots).
    pub fn n(&self) -> usize {
        self.he.n()
    }

    /// The plaintext modulus `t`.
    pub fn plain_modulus(&self) -> &Modulus {
        &self.t
    }

    /// The chain primes as moduli.
    pub fn chain_moduli(&self) -> &[Modulus] {
        &self.q_mod
    }

    /// The auxiliary basis `P` of the HPS multiplication.
    pub fn aux_basis(&self) -> &RnsBasis {
        &self.aux
    }

    /// `log2 Q` for the whole chain, as a real number.
    pub fn log2_q(&self) -> f64 {
        self.q_mod
            .iter()
            .map(|q| libm::log2(q.value() as f64))
            .sum()
    }

    /// The constants of the tracked noise bound.
    pub fn noise_model(&self) -> &NoiseModel {
        &self.noise
    }

    /// `[Δ]_{q_i}`, `Δ = floor(Q/t)`, one Shoup constant per chain prime.
    pub(crate) fn delta(&self) -> &[ShoupConst] {
        &self.delta
    }

    /// `[Q]_t`.
    pub(crate) fn q_mod_t(&self) -> u64 {
        self.q_mod_t
    }

    /// `[t]_{q_i}`.
    pub(crate) fn t_in_q(&self) -> &[ShoupConst] {
        &self.t_in_q
    }

    /// The fingerprint of the BFV set: FNV-1a over the common fingerprint and `t`.
    pub fn fingerprint(&self) -> u64 {
        let mut h = crate::params::Fnv1a::new();
        h.update(b"heist-bfv");
        h.update(&self.he.fingerprint().to_le_bytes());
        h.update(&self.t.value().to_le_bytes());
        h.finish()
    }
}

/// The smallest chain, as (number of primes, bits per prime), whose worst-case noise
/// bound after `depth` squarings of a fresh public-key encryption leaves at least one bit
/// of budget; sizes past any security bound end the search (the caller rejects them).
fn chain_for_depth(n: usize, t: u64, depth: usize) -> (usize, u32) {
    chain_for_noise(n, t, |model| {
        let mut v = model.fresh_pk();
        for _ in 0..depth {
            v = model.mul_relin(v, v);
        }
        v
    })
}

/// The smallest chain, as (number of primes, bits per prime ≤ [`DEPTH_PRIME_BITS`]), for
/// which `circuit` (the final noise bound of a computation under a noise model) leaves at
/// least one bit of budget. `circuit` is evaluated on a model whose `Q` and special prime
/// are lower bounds and whose largest prime is an upper bound for primes of the returned
/// size, so the bound holds for any such primes (when `circuit` grows with those).
/// Sizes past any security bound (above 1000 bits) end the search: the caller rejects
/// them.
pub(crate) fn chain_for_noise(
    n: usize,
    t: u64,
    circuit: impl Fn(&NoiseModel) -> f64,
) -> (usize, u32) {
    // Primes of NTT-friendly size: above 2N with room for a few of them.
    let min_bits = n.trailing_zeros() + 4;
    let mut log_q = min_bits;
    loop {
        let count = log_q.div_ceil(DEPTH_PRIME_BITS).max(1);
        let bits = log_q.div_ceil(count).max(min_bits);
        // Primes of `bits` bits lie in [2^(bits-1), 2^bits): bound Q and P from below,
        // q_max from above.
        let b = f64::from(bits);
        let model = NoiseModel::new(
            n,
            t,
            (b - 1.0) * f64::from(count),
            count as usize,
            libm::exp2(b),
            libm::exp2(b - 1.0),
        );
        if budget_bits(circuit(&model)) >= 1.0 || log_q > 1000 {
            return (count as usize, bits);
        }
        log_q += 1;
    }
}
