//! The parameters shared by BFV and CKKS: ring degree, RNS chain, special prime, security
//! level, fingerprint, NTT plans and precomputed RNS constants.
//!
//! # Security check
//!
//! [`HeParams::new`] refuses any set whose total modulus size (chain and special prime,
//! counted as the sum of the primes' bit lengths, which over-estimates `log2 Q` by less
//! than one bit per prime) exceeds the HomomorphicEncryption.org bound for its ring degree
//! and level ([`max_log_q`]). The only way around the check is
//! `HeParams::new_insecure_for_tests`, compiled only with the cargo feature
//! `insecure-params` (enabled by the test, bench and fuzz crates, never by `heist`).
//!
//! # Fingerprint
//!
//! [`HeParams::fingerprint`] is FNV-1a 64 (offset basis `0xcbf29ce484222325`, prime
//! `0x100000001b3`) over the canonical encoding of the parameters: the ASCII tag
//! `heist-he-params`, then `N` (u32), the security level byte ([`SecurityLevel::code`]),
//! the chain length (u32), each chain prime (u64), and the special prime (u64), all
//! little-endian. FNV-1a is not collision-resistant: the fingerprint catches mistakes
//! (objects of other parameters), not forgeries.

use alloc::vec::Vec;
use core::fmt;

use heist_core::arith::ShoupConst;
use heist_core::primes::{ntt_primes, PrimeError};
use heist_core::rns::{RnsBasis, RnsError};

/// The smallest ring degree with a standard security bound.
pub const MIN_SECURE_N: usize = 1024;
/// The largest ring degree with a standard security bound.
pub const MAX_SECURE_N: usize = 32768;
/// The smallest ring degree accepted without the security check (feature `insecure-params`).
pub const MIN_N: usize = 16;
/// The largest ring degree accepted at all.
pub const MAX_N: usize = 32768;
/// The most primes in a chain.
pub const MAX_CHAIN: usize = 32;

/// A security level of the HomomorphicEncryption.org standard (classical, ternary secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityLevel {
    /// 128-bit classical security (the default).
    Tc128,
    /// 192-bit classical security.
    Tc192,
    /// 256-bit classical security.
    Tc256,
}

impl SecurityLevel {
    /// The byte that encodes this level (128, 192, 255 for 256); 0 stands for "unchecked".
    pub fn code(self) -> u8 {
        match self {
            Self::Tc128 => 128,
            Self::Tc192 => 192,
            Self::Tc256 => 255,
        }
    }

    /// The level encoded by `code`, if any.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            128 => Some(Self::Tc128),
            192 => Some(Self::Tc192),
            255 => Some(Self::Tc256),
            _ => None,
        }
    }

    /// The level in bits.
    pub fn bits(self) -> u32 {
        match self {
            Self::Tc128 => 128,
            Self::Tc192 => 192,
            Self::Tc256 => 256,
        }
    }
}

/// Maximum total `log2 Q` (special primes included) for `N = 1024, 2048, …, 32768`, ternary
/// secret, from Albrecht et al., "Homomorphic Encryption Security Standard", v1.1, 2018,
/// Table 1 (identical to Microsoft SEAL `native/src/seal/util/hestdparms.h`).
const HE_STD_TABLE: [[u32; 6]; 3] = [
    [27, 54, 109, 218, 438, 881],
    [19, 37, 75, 152, 305, 611],
    [14, 29, 58, 118, 237, 476],
];

/// The largest total modulus size in bits allowed for ring degree `n` at `level`, or `None`
/// when the standard has no entry for `n` (not a power of two in `[1024, 32768]`).
pub fn max_log_q(n: usize, level: SecurityLevel) -> Option<u32> {
    if !n.is_power_of_two() || !(MIN_SECURE_N..=MAX_SECURE_N).contains(&n) {
        return None;
    }
    let row = match level {
        SecurityLevel::Tc128 => 0,
        SecurityLevel::Tc192 => 1,
        SecurityLevel::Tc256 => 2,
    };
    let col = (n.trailing_zeros() - MIN_SECURE_N.trailing_zeros()) as usize;
    Some(HE_STD_TABLE[row][col])
}

/// An error building parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParamsError {
    /// `N` is not a power of two in the accepted range.
    BadDegree {
        /// The rejected degree.
        n: usize,
        /// The smallest accepted degree.
        min: usize,
        /// The largest accepted degree.
        max: usize,
    },
    /// The chain is empty or longer than [`MAX_CHAIN`].
    BadChainLength {
        /// The number of chain primes given.
        len: usize,
    },
    /// The special prime is smaller than a chain prime, so key switching would not reduce
    /// its noise below the chain prime's size.
    SpecialTooSmall {
        /// The special prime.
        special: u64,
        /// The largest chain prime.
        largest: u64,
    },
    /// The total modulus exceeds the security bound.
    Insecure {
        /// The total size in bits (sum of the primes' bit lengths).
        log_q: u32,
        /// The largest size the standard allows for this `N` and level.
        max_log_q: u32,
        /// The ring degree.
        n: usize,
        /// The requested level in bits.
        level_bits: u32,
    },
    /// The primes do not form a valid RNS basis for `N` (duplicates, not prime, not
    /// `≡ 1 mod 2N`).
    Basis(RnsError),
    /// A chain could not be generated.
    Primes(PrimeError),
    /// A scheme-specific value is out of range.
    Scheme {
        /// What is wrong.
        what: &'static str,
        /// The offending value.
        value: u64,
    },
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadDegree { n, min, max } => write!(
                f,
                "ring degree {n} is not a power of two in [{min}, {max}]"
            ),
            Self::BadChainLength { len } => write!(
                f,
                "the chain must hold between 1 and {MAX_CHAIN} primes, got {len}"
            ),
            Self::SpecialTooSmall { special, largest } => write!(
                f,
                "special prime {special} is smaller than the largest chain prime {largest}"
            ),
            Self::Insecure {
                log_q,
                max_log_q,
                n,
                level_bits,
            } => write!(
                f,
                "insecure parameters: total log2 q = {log_q} exceeds {max_log_q}, the {level_bits}-bit bound for N = {n} (HomomorphicEncryption.org standard)"
            ),
            Self::Basis(e) => write!(f, "invalid RNS basis: {e}"),
            Self::Primes(e) => write!(f, "cannot generate the prime chain: {e}"),
            Self::Scheme { what, value } => write!(f, "{what}: {value}"),
        }
    }
}

impl core::error::Error for ParamsError {}

impl From<RnsError> for ParamsError {
    fn from(e: RnsError) -> Self {
        Self::Basis(e)
    }
}

impl From<PrimeError> for ParamsError {
    fn from(e: PrimeError) -> Self {
        Self::Primes(e)
    }
}

/// FNV-1a 64-bit hash state, used for parameter fingerprints and pinned known answers.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv1a {
    /// The empty state (offset basis `0xcbf29ce484222325`).
    pub fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    /// Absorbs `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash of everything absorbed.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// Parameters shared by both schemes. See the [module documentation](self).
///
/// The RNS basis is the chain `q_0, …, q_{L-1}` followed by the special prime `P`; a
/// ciphertext at level `k` (`1 <= k <= L`) lives modulo `q_0 ⋯ q_{k-1}`.
#[derive(Debug, Clone)]
pub struct HeParams {
    n: usize,
    chain: Vec<u64>,
    special: u64,
    security: Option<SecurityLevel>,
    basis: RnsBasis,
    fingerprint: u64,
    /// `rescale_inv[l][i] = q_l^-1 mod q_i` for `i < l`.
    rescale_inv: Vec<Vec<ShoupConst>>,
    /// `P^-1 mod q_i`.
    special_inv: Vec<ShoupConst>,
    /// `P mod q_i`.
    special_mod: Vec<u64>,
}

impl HeParams {
    /// Parameters checked against the security standard at `level`.
    ///
    /// # Errors
    /// [`ParamsError::BadDegree`] unless `n` is a power of two in `[1024, 32768]`;
    /// [`ParamsError::Insecure`] when the total size exceeds [`max_log_q`];
    /// [`ParamsError::BadChainLength`]; [`ParamsError::SpecialTooSmall`];
    /// [`ParamsError::Basis`] for primes that are not distinct NTT primes for `n`.
    pub fn new(
        n: usize,
        chain: &[u64],
        special: u64,
        level: SecurityLevel,
    ) -> Result<Self, ParamsError> {
        let max = max_log_q(n, level).ok_or(ParamsError::BadDegree {
            n,
            min: MIN_SECURE_N,
            max: MAX_SECURE_N,
        })?;
        let log_q = total_bits(chain, special);
        if log_q > max {
            return Err(ParamsError::Insecure {
                log_q,
                max_log_q: max,
                n,
                level_bits: level.bits(),
            });
        }
        Self::build(n, chain, special, Some(level))
    }

    /// Parameters **without** the security check, for fast tests at small `N`.
    ///
    /// # Errors
    /// [`ParamsError::BadDegree`] unless `n` is a power of two in `[16, 32768]`;
    /// [`ParamsError::BadChainLength`]; [`ParamsError::SpecialTooSmall`];
    /// [`ParamsError::Basis`] for primes that are not distinct NTT primes for `n`.
    #[cfg(any(test, feature = "insecure-params"))]
    pub fn new_insecure_for_tests(
        n: usize,
        chain: &[u64],
        special: u64,
    ) -> Result<Self, ParamsError> {
        Self::unchecked(n, chain, special)
    }

    /// `Self::new_insecure_for_tests` for this crate's own paths that reach it only from
    /// insecure entry points (feature `insecure-params`) or from bytes marked insecure.
    pub(crate) fn unchecked(n: usize, chain: &[u64], special: u64) -> Result<Self, ParamsError> {
        Self::build(n, chain, special, None)
    }

    fn build(
        n: usize,
        chain: &[u64],
        special: u64,
        security: Option<SecurityLevel>,
    ) -> Result<Self, ParamsError> {
        if !n.is_power_of_two() || !(MIN_N..=MAX_N).contains(&n) {
            return Err(ParamsError::BadDegree {
                n,
                min: MIN_N,
                max: MAX_N,
            });
        }
        if chain.is_empty() || chain.len() > MAX_CHAIN {
            return Err(ParamsError::BadChainLength { len: chain.len() });
        }
        let largest = chain.iter().copied().max().unwrap_or(0);
        if special < largest {
            return Err(ParamsError::SpecialTooSmall { special, largest });
        }
        let mut all = chain.to_vec();
        all.push(special);
        let basis = RnsBasis::new(n, &all)?;
        let l = chain.len();
        let rescale_inv = (0..l)
            .map(|last| {
                (0..last)
                    .map(|i| inverse_shoup(&basis, i, chain[last]))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let special_inv = (0..l)
            .map(|i| inverse_shoup(&basis, i, special))
            .collect::<Result<Vec<_>, _>>()?;
        let special_mod = (0..l).map(|i| basis.modulus(i).reduce(special)).collect();
        let mut params = Self {
            n,
            chain: chain.to_vec(),
            special,
            security,
            basis,
            fingerprint: 0,
            rescale_inv,
            special_inv,
            special_mod,
        };
        let mut h = Fnv1a::new();
        h.update(&params.canonical_bytes());
        params.fingerprint = h.finish();
        Ok(params)
    }

    /// The canonical encoding the fingerprint hashes (see the module documentation).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + 8 * self.chain.len());
        out.extend_from_slice(b"heist-he-params");
        out.extend_from_slice(&(self.n as u32).to_le_bytes());
        out.push(self.security.map_or(0, SecurityLevel::code));
        out.extend_from_slice(&(self.chain.len() as u32).to_le_bytes());
        for &q in &self.chain {
            out.extend_from_slice(&q.to_le_bytes());
        }
        out.extend_from_slice(&self.special.to_le_bytes());
        out
    }

    /// The ring degree `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The ciphertext primes `q_0, …, q_{L-1}`.
    pub fn chain(&self) -> &[u64] {
        &self.chain
    }

    /// The number of chain primes `L` (the top level).
    pub fn max_level(&self) -> usize {
        self.chain.len()
    }

    /// The special prime `P` used by key switching.
    pub fn special(&self) -> u64 {
        self.special
    }

    /// The index of the special prime in [`Self::basis`] (equal to `L`).
    pub fn special_index(&self) -> usize {
        self.chain.len()
    }

    /// The checked security level, or `None` for insecure test parameters.
    pub fn security(&self) -> Option<SecurityLevel> {
        self.security
    }

    /// The total modulus size in bits (sum of the bit lengths of all primes).
    pub fn log_q(&self) -> u32 {
        total_bits(&self.chain, self.special)
    }

    /// The size in bits of the ciphertext modulus at level `k` (sum of `q_0..q_{k-1}` bit
    /// lengths).
    pub fn log_q_at(&self, k: usize) -> u32 {
        self.chain[..k.min(self.chain.len())]
            .iter()
            .map(|q| 64 - q.leading_zeros())
            .sum()
    }

    /// The RNS basis: chain primes then the special prime.
    pub fn basis(&self) -> &RnsBasis {
        &self.basis
    }

    /// The fingerprint (FNV-1a 64 of [`Self::canonical_bytes`]).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// `q_last^-1 mod q_i` for `i < last`, the constants of rescaling from level `last + 1`.
    ///
    /// # Panics
    /// If `last >= L`.
    pub fn rescale_inv(&self, last: usize) -> &[ShoupConst] {
        &self.rescale_inv[last]
    }

    /// `P^-1 mod q_i` for every chain prime.
    pub fn special_inv(&self) -> &[ShoupConst] {
        &self.special_inv
    }

    /// `P mod q_i` for every chain prime.
    pub fn special_mod(&self) -> &[u64] {
        &self.special_mod
    }

    /// Checks that an object fingerprint matches these parameters.
    pub fn check_fingerprint(&self, fingerprint: u64) -> Result<(), ParamsError> {
        if fingerprint == self.fingerprint {
            Ok(())
        } else {
            Err(ParamsError::Scheme {
                what: "object belongs to other parameters, fingerprint",
                value: fingerprint,
            })
        }
    }
}

fn inverse_shoup(basis: &RnsBasis, i: usize, x: u64) -> Result<ShoupConst, ParamsError> {
    let q = basis.modulus(i);
    let inv = q
        .inv(x)
        .ok_or(ParamsError::Basis(RnsError::Duplicate { p: x }))?;
    Ok(q.shoup(inv))
}

fn total_bits(chain: &[u64], special: u64) -> u32 {
    chain
        .iter()
        .chain(core::iter::once(&special))
        .map(|q| 64 - q.leading_zeros())
        .sum()
}

/// Distinct NTT primes for degree `n`: one of each size in `bits`, in that order, none in
/// `exclude`. Several primes of one size are drawn downwards from `2^bits`.
///
/// # Errors
/// [`ParamsError::Primes`] when a size holds too few primes.
pub fn primes_for_sizes(n: usize, bits: &[u32], exclude: &[u64]) -> Result<Vec<u64>, ParamsError> {
    let mut out: Vec<u64> = Vec::with_capacity(bits.len());
    for &b in bits {
        let mut ex = exclude.to_vec();
        ex.extend_from_slice(&out);
        let p = ntt_primes(b, 2 * n as u64, 1, &ex)?;
        out.push(p[0]);
    }
    Ok(out)
}
