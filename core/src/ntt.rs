//! The negacyclic number-theoretic transform over `Z_p[X]/(X^N + 1)`.
//!
//! # What is computed
//!
//! For `N = 2^k` (`16 <= N <= 2^17`) and a prime `p ≡ 1 (mod 2N)`, `p < 2^62`, let `ψ` be
//! the primitive `2N`-th root of unity returned by [`primitive_root`] (so `ψ^N = -1`).
//! [`NttPlan::forward`] maps the coefficients `a_0, …, a_{N-1}` of `a(X)` (natural order) to
//! the evaluations
//!
//! ```text
//! â[j] = a(ψ^(2·bitrev(j) + 1)),   j = 0, …, N-1,
//! ```
//!
//! that is, **natural order in, bit-reversed order out**, where `bitrev` reverses the `k`
//! low bits. [`NttPlan::inverse`] takes bit-reversed evaluations back to natural-order
//! coefficients and **includes the factor `1/N`**, so `inverse(forward(a)) == a` exactly.
//! Because the points `ψ^(2i+1)` are the roots of `X^N + 1`, the pointwise product of two
//! transforms is the transform of the negacyclic product.
//!
//! # Algorithm and sources
//!
//! Cooley–Tukey decimation in time forward, Gentleman–Sande decimation in frequency
//! inverse, with the merged `ψ`-twisting of Longa and Naehrig, "Speeding up the Number
//! Theoretic Transform for Faster Ideal Lattice-Based Cryptography", CANS 2016
//! (<https://eprint.iacr.org/2016/504>), Algorithms 1 and 2. Butterflies use Harvey's lazy
//! reduction, "Faster arithmetic for number-theoretic transforms", J. Symb. Comp. 2014
//! (<https://arxiv.org/abs/1205.2926>), with Shoup twiddles ([`ShoupConst`](crate::arith::ShoupConst)).
//!
//! Where heist differs from Longa–Naehrig: coefficients stay in `[0, 4p)` between forward
//! stages and in `[0, 2p)` between inverse stages; the final reduction to `[0, p)` is fused
//! into the last stage; `1/N` is folded into the last inverse stage (as in SEAL).
//!
//! # Kernels
//!
//! A plan runs one [`Kernel`], chosen when it is built ([`NttPath`]):
//!
//! | kernel | where | modulus | Shoup quotient | lazy ranges (forward / inverse) |
//! |---|---|---|---|---|
//! | [`Kernel::Portable`] | every target | `p < 2^62` | `floor(w·2^64/p)` | `[0, 4p)` / `[0, 2p)`, `4p < 2^64` |
//! | [`Kernel::Avx512Ifma`] | x86-64 with AVX-512F/DQ/IFMA | `p < 2^50` | `floor(w·2^52/p)` | `[0, 4p)` / `[0, 2p)`, `4p < 2^52` |
//! | [`Kernel::Avx512`] | x86-64 with AVX-512F/DQ | `p < 2^62` | `floor(w·2^64/p)` | `[0, 4p)` / `[0, 2p)`, `4p < 2^64` |
//! | [`Kernel::Avx2`] | x86-64 with AVX2 | `p < 2^62` | `floor(w·2^64/p)` | `[0, 4p)` / `[0, 2p)`, `4p < 2^64` |
//!
//! All kernels compute the same function and give bit-identical outputs for every valid
//! input (the lazy outputs of [`NttPlan::forward_lazy`] and [`NttPlan::inverse_lazy`] may
//! differ between kernels by multiples of `p`, within the stated ranges). The portable
//! kernel merges pairs of radix-2 stages into one pass over memory. The AVX-512 kernels
//! work depth first on blocks that fit the L1 cache and do the stages with half-blocks of
//! 4, 2 and 1 coefficients by transposing vectors in registers (the approach of
//! `tfhe-ntt`/`concrete-ntt`). The AVX2 kernel works on four 64-bit lanes in the same
//! depth-first order, builds the 64-bit products of Shoup's multiplication from 32-bit
//! multiplies, and does its stages with half-blocks of 2 and 1 coefficients together, in
//! registers; it is chosen after the AVX-512 kernels. CPU features are detected at run
//! time without `std`.
//! Building with `--cfg heist_ntt="portable"` removes the SIMD kernels altogether.
//!
//! # Twiddle tables
//!
//! `fwd[m + i] = ψ^bitrev(m + i)` for the forward butterfly of block `i` at the stage with
//! `m` blocks, and `inv[m + i] = ψ^-bitrev(m + i)` likewise for the inverse, each with its
//! Shoup quotient; index 0 is unused.
//!
//! # Example
//! ```
//! use heist_core::ntt::NttPlan;
//! use heist_core::primes::ntt_primes;
//! let n = 1024;
//! let p = ntt_primes(50, 2 * n as u64, 1, &[])?[0];
//! let plan = NttPlan::new(n, p)?;
//! let mut a: Vec<u64> = (0..n as u64).collect();
//! let original = a.clone();
//! plan.forward(&mut a);
//! plan.inverse(&mut a);
//! assert_eq!(a, original);
//! // (1 + X) * X^(N-1) = X^(N-1) + X^N = X^(N-1) - 1 in Z_p[X]/(X^N + 1)
//! let mut x = vec![0u64; n];
//! x[0] = 1;
//! x[1] = 1;
//! let mut y = vec![0u64; n];
//! y[n - 1] = 1;
//! let z = plan.negacyclic_mul(&x, &y);
//! assert_eq!((z[0], z[n - 1]), (p - 1, 1));
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::arith::{Modulus, ModulusError, MAX_MODULUS_BITS};
use crate::primes::{is_prime, primitive_root};

#[cfg(all(target_arch = "x86_64", not(heist_ntt = "portable")))]
mod avx2;
#[cfg(all(target_arch = "x86_64", not(heist_ntt = "portable")))]
mod avx512;
#[cfg(all(target_arch = "x86_64", not(heist_ntt = "portable")))]
mod depth_first;
mod portable;

#[cfg(all(target_arch = "x86_64", not(heist_ntt = "portable")))]
cpufeatures::new!(cpu_avx512, "avx512f", "avx512dq");
#[cfg(all(target_arch = "x86_64", not(heist_ntt = "portable")))]
cpufeatures::new!(cpu_avx512_ifma, "avx512f", "avx512dq", "avx512ifma");
#[cfg(all(target_arch = "x86_64", not(heist_ntt = "portable")))]
cpufeatures::new!(cpu_avx2, "avx2");

/// The largest modulus bit length the IFMA kernel takes: `p < 2^50`, so `4p < 2^52`.
pub const IFMA_MAX_MODULUS_BITS: u32 = 50;

/// The smallest supported transform length.
pub const MIN_N: usize = 16;
/// The largest supported transform length.
pub const MAX_N: usize = 1 << 17;

/// An error building an [`NttPlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NttError {
    /// `n` is not a power of two in `[16, 2^17]`.
    BadLength {
        /// The rejected length.
        n: usize,
    },
    /// `p` is not a valid modulus (below 2 or not below 2^62).
    BadModulus(ModulusError),
    /// `p` is not prime.
    NotPrime {
        /// The rejected modulus.
        p: u64,
    },
    /// `p` is prime but not `≡ 1 (mod 2n)`, so no primitive `2n`-th root of unity exists.
    NotNttFriendly {
        /// The rejected modulus.
        p: u64,
        /// The transform length.
        n: usize,
    },
    /// [`NttPlan::with_kernel`] asked for a kernel that this CPU or build lacks, or that
    /// does not take a modulus of this size.
    KernelUnavailable {
        /// The kernel asked for.
        kernel: Kernel,
        /// The modulus.
        p: u64,
    },
}

impl fmt::Display for NttError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadLength { n } => write!(
                f,
                "NTT length {n} is not a power of two in [{MIN_N}, {MAX_N}]"
            ),
            Self::BadModulus(e) => write!(f, "NTT modulus: {e}"),
            Self::NotPrime { p } => write!(f, "NTT modulus {p} is not prime"),
            Self::NotNttFriendly { p, n } => write!(
                f,
                "NTT modulus {p} is not ≡ 1 mod 2N = {}: p mod 2N = {}",
                2 * *n as u64,
                p % (2 * *n as u64)
            ),
            Self::KernelUnavailable { kernel, p } => write!(
                f,
                "NTT kernel {} is not available for modulus {p} on this CPU and build",
                kernel.name()
            ),
        }
    }
}

impl core::error::Error for NttError {}

impl From<ModulusError> for NttError {
    fn from(e: ModulusError) -> Self {
        Self::BadModulus(e)
    }
}

/// Which implementation of the butterflies a plan may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NttPath {
    /// The fastest kernel this CPU supports, detected at run time.
    #[default]
    Auto,
    /// Plain Rust, no intrinsics: what every target (including embedded ones) runs.
    Portable,
}

/// The kernel a plan runs (see the table in the [module documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kernel {
    /// Scalar Harvey butterflies with Shoup twiddles, two stages per pass.
    Portable,
    /// AVX-512 IFMA: eight 52-bit lanes, for `p < 2^50`.
    Avx512Ifma,
    /// AVX-512F/DQ: eight 64-bit lanes with an emulated 64×64 high product, for `p < 2^62`.
    Avx512,
    /// AVX2: four 64-bit lanes, products built from 32×32-bit multiplies, for `p < 2^62`.
    Avx2,
}

impl Kernel {
    /// A short human-readable name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Portable => "portable (scalar Harvey/Shoup, radix-4 passes)",
            Self::Avx512Ifma => "avx512-ifma (52-bit lanes, p < 2^50)",
            Self::Avx512 => "avx512 (64-bit lanes, emulated high product)",
            Self::Avx2 => "avx2 (4 x 64-bit lanes, products from 32-bit multiplies)",
        }
    }

    /// Whether this kernel can run here (CPU features present, kernel compiled in) for a
    /// modulus of `bits` bits.
    pub fn is_available(&self, bits: u32) -> bool {
        match self {
            Self::Portable => bits <= MAX_MODULUS_BITS,
            Self::Avx512Ifma => bits <= IFMA_MAX_MODULUS_BITS && simd_available(*self),
            Self::Avx512 | Self::Avx2 => bits <= MAX_MODULUS_BITS && simd_available(*self),
        }
    }

    /// The bit length `b` of the Shoup quotients `floor(w · 2^b / p)` this kernel uses.
    fn quotient_bits(&self) -> u32 {
        match self {
            Self::Avx512Ifma => 52,
            Self::Portable | Self::Avx512 | Self::Avx2 => 64,
        }
    }

    /// The fastest kernel allowed by `path` for a modulus of `bits` bits on this CPU.
    fn select(path: NttPath, bits: u32) -> Self {
        match path {
            NttPath::Portable => Self::Portable,
            NttPath::Auto => Self::detect(bits),
        }
    }

    fn detect(bits: u32) -> Self {
        [Self::Avx512Ifma, Self::Avx512, Self::Avx2]
            .into_iter()
            .find(|k| k.is_available(bits))
            .unwrap_or(Self::Portable)
    }
}

/// Whether the CPU runs a SIMD kernel and this build contains it.
#[cfg(all(target_arch = "x86_64", not(heist_ntt = "portable")))]
fn simd_available(kernel: Kernel) -> bool {
    match kernel {
        Kernel::Avx512Ifma => cpu_avx512_ifma::get(),
        Kernel::Avx512 => cpu_avx512::get(),
        Kernel::Avx2 => cpu_avx2::get(),
        Kernel::Portable => true,
    }
}

/// Whether the CPU runs a SIMD kernel and this build contains it: never, here.
#[cfg(not(all(target_arch = "x86_64", not(heist_ntt = "portable"))))]
fn simd_available(kernel: Kernel) -> bool {
    kernel == Kernel::Portable
}

/// Twiddle factors `w[k]` (index 0 unused) with their Shoup quotients, in two arrays.
#[derive(Debug, Clone)]
struct Table {
    w: Vec<u64>,
    q: Vec<u64>,
}

/// The constants of the last inverse stage: `1/N` and `ψ^-bitrev(1)/N`, with quotients.
#[derive(Debug, Clone, Copy)]
struct Scale {
    n_inv: u64,
    n_inv_q: u64,
    n_inv_w1: u64,
    n_inv_w1_q: u64,
}

/// Precomputed tables for the negacyclic NTT of length `n` modulo a prime `p`.
///
/// See the [module documentation](self) for the order of the evaluation domain, the
/// scaling, and the sources.
#[derive(Debug, Clone)]
pub struct NttPlan {
    n: usize,
    modulus: Modulus,
    root: u64,
    kernel: Kernel,
    /// `ψ^bitrev(k)`, quotients for the kernel's word size.
    fwd: Table,
    /// `ψ^-bitrev(k)`.
    inv: Table,
    /// `N^-1`, and `ψ^-bitrev(1) · N^-1` for the fused last inverse stage.
    scale: Scale,
}

/// The low `bits` bits of `x` in reverse order, for `x < 2^bits` and `bits ≤ usize::BITS`
/// (0 for `bits == 0`): the index permutation of every bit-reversed table in the workspace
/// (NTT twiddles, the BFV batch encoder's slot order, Galois permutations, the CKKS FFT).
pub fn bit_reverse(x: usize, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        x.reverse_bits() >> (usize::BITS - bits)
    }
}

impl NttPlan {
    /// Plans the transform of length `n` modulo `p`, with the fastest available kernel.
    ///
    /// # Errors
    /// [`NttError::BadLength`] unless `n` is a power of two in `[16, 2^17]`;
    /// [`NttError::BadModulus`] unless `2 <= p < 2^62`; [`NttError::NotPrime`];
    /// [`NttError::NotNttFriendly`] unless `p ≡ 1 (mod 2n)`.
    pub fn new(n: usize, p: u64) -> Result<Self, NttError> {
        Self::with_path(n, p, NttPath::Auto)
    }

    /// Plans the transform and restricts the choice of kernel to `path`.
    ///
    /// # Errors
    /// As [`NttPlan::new`].
    pub fn with_path(n: usize, p: u64, path: NttPath) -> Result<Self, NttError> {
        let bits = 64 - p.leading_zeros();
        Self::build(n, p, Kernel::select(path, bits))
    }

    /// Plans the transform with one given kernel (to compare kernels with each other).
    ///
    /// # Errors
    /// As [`NttPlan::new`], and [`NttError::KernelUnavailable`] unless
    /// [`Kernel::is_available`] holds for `kernel` and `p`.
    pub fn with_kernel(n: usize, p: u64, kernel: Kernel) -> Result<Self, NttError> {
        let plan = Self::build(n, p, kernel)?;
        if kernel.is_available(plan.modulus.bits()) {
            Ok(plan)
        } else {
            Err(NttError::KernelUnavailable { kernel, p })
        }
    }

    fn build(n: usize, p: u64, kernel: Kernel) -> Result<Self, NttError> {
        if !n.is_power_of_two() || !(MIN_N..=MAX_N).contains(&n) {
            return Err(NttError::BadLength { n });
        }
        let modulus = Modulus::new(p)?;
        debug_assert!(p < 1 << MAX_MODULUS_BITS);
        if !is_prime(p) {
            return Err(NttError::NotPrime { p });
        }
        let two_n = 2 * n as u64;
        if p % two_n != 1 {
            return Err(NttError::NotNttFriendly { p, n });
        }
        let root = primitive_root(p, two_n).map_err(|_| NttError::NotNttFriendly { p, n })?;
        let root_inv = modulus.inv(root).ok_or(NttError::NotNttFriendly { p, n })?;
        let bits = n.trailing_zeros();
        let mut fwd_w = vec![0u64; n];
        let mut inv_w = vec![0u64; n];
        let (mut pw, mut pw_inv) = (1u64, 1u64);
        for k in 0..n {
            let r = bit_reverse(k, bits);
            fwd_w[r] = pw;
            inv_w[r] = pw_inv;
            pw = modulus.mul(pw, root);
            pw_inv = modulus.mul(pw_inv, root_inv);
        }
        let shift = kernel.quotient_bits();
        // floor(w · 2^shift / p) < 2^shift since w < p.
        let quotient = |w: u64| (((w as u128) << shift) / p as u128) as u64;
        let table = |w: Vec<u64>| Table {
            q: w.iter().map(|&x| quotient(x)).collect(),
            w,
        };
        let n_inv = modulus.inv(n as u64).ok_or(NttError::NotPrime { p })?;
        let n_inv_w1 = modulus.mul(n_inv, inv_w[1]);
        let scale = Scale {
            n_inv,
            n_inv_q: quotient(n_inv),
            n_inv_w1,
            n_inv_w1_q: quotient(n_inv_w1),
        };
        Ok(Self {
            n,
            modulus,
            root,
            kernel,
            fwd: table(fwd_w),
            inv: table(inv_w),
            scale,
        })
    }

    /// The transform length `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The modulus `p`.
    pub fn modulus(&self) -> &Modulus {
        &self.modulus
    }

    /// The primitive `2N`-th root of unity `ψ` that defines the evaluation points.
    pub fn root(&self) -> u64 {
        self.root
    }

    /// The kernel this plan runs.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn check_len(&self, a: &[u64]) {
        assert_eq!(
            a.len(),
            self.n,
            "NTT input has {} coefficients, the plan is for {}",
            a.len(),
            self.n
        );
    }

    /// Forward transform in place, natural order in, bit-reversed order out.
    ///
    /// # Ranges
    /// Input in `[0, 4p)` (so fully reduced input is fine) → output in `[0, p)`.
    ///
    /// # Panics
    /// If `a.len() != N`.
    pub fn forward(&self, a: &mut [u64]) {
        self.check_len(a);
        self.forward_stages(a, true);
    }

    /// Forward transform in place, leaving outputs lazily reduced.
    ///
    /// # Ranges
    /// Input in `[0, 4p)` → output in `[0, 4p)`.
    ///
    /// # Panics
    /// If `a.len() != N`.
    pub fn forward_lazy(&self, a: &mut [u64]) {
        self.check_len(a);
        self.forward_stages(a, false);
    }

    /// Inverse transform in place, bit-reversed order in, natural order out, `1/N` included.
    ///
    /// # Ranges
    /// Input in `[0, 2p)` → output in `[0, p)`.
    ///
    /// # Panics
    /// If `a.len() != N`.
    pub fn inverse(&self, a: &mut [u64]) {
        self.check_len(a);
        self.inverse_stages(a, true);
    }

    /// Inverse transform in place, leaving outputs lazily reduced.
    ///
    /// # Ranges
    /// Input in `[0, 2p)` → output in `[0, 2p)`.
    ///
    /// # Panics
    /// If `a.len() != N`.
    pub fn inverse_lazy(&self, a: &mut [u64]) {
        self.check_len(a);
        self.inverse_stages(a, false);
    }

    /// The negacyclic product `a · b mod (X^N + 1, p)` of two coefficient vectors.
    ///
    /// # Ranges
    /// Inputs in `[0, p)` → output in `[0, p)`.
    ///
    /// # Panics
    /// If either length differs from `N`.
    pub fn negacyclic_mul(&self, a: &[u64], b: &[u64]) -> Vec<u64> {
        let mut fa = a.to_vec();
        let mut fb = b.to_vec();
        self.negacyclic_mul_in_place(&mut fa, &mut fb);
        fa
    }

    /// The negacyclic product without allocating: `a ← a · b mod (X^N + 1, p)`, and `b`
    /// is left holding its own (lazily reduced) forward transform.
    ///
    /// # Ranges
    /// Inputs in `[0, 4p)` → `a` in `[0, p)`, `b` in `[0, 4p)`.
    ///
    /// # Panics
    /// If either length differs from `N`.
    pub fn negacyclic_mul_in_place(&self, a: &mut [u64], b: &mut [u64]) {
        self.forward_lazy(a);
        self.forward_lazy(b);
        // Barrett on the 128-bit product: (4p)^2 < 2^128 and the result is in [0, p).
        for (x, &y) in a.iter_mut().zip(b.iter()) {
            *x = self.modulus.mul(*x, y);
        }
        self.inverse(a);
    }

    fn forward_stages(&self, a: &mut [u64], reduce: bool) {
        let p = self.modulus.value();
        debug_assert!(
            a.iter().all(|&x| x < 4 * p),
            "forward: input not in [0, 4p)"
        );
        let t = &self.fwd;
        match self.kernel {
            Kernel::Portable if reduce => portable::forward::<true>(a, p, t),
            Kernel::Portable => portable::forward::<false>(a, p, t),
            #[cfg(all(target_arch = "x86_64", not(heist_ntt = "portable")))]
            // SAFETY: the plan chose this kernel only after detecting AVX-512F/DQ/IFMA and
            // checking p < 2^50; `t` holds 52-bit quotients for it.
            Kernel::Avx512Ifma => unsafe { avx512::forward_ifma(a, p, t, reduce) },
            #[cfg(all(target_arch = "x86_64", not(heist_ntt = "portable")))]
            // SAFETY: the plan chose this kernel only after detecting AVX-512F/DQ; every
            // modulus is below 2^62 and `t` holds 64-bit quotients.
            Kernel::Avx512 => unsafe { avx512::forward_wide(a, p, t, reduce) },
            #[cfg(all(target_arch = "x86_64", not(heist_ntt = "portable")))]
            // SAFETY: the plan chose this kernel only after detecting AVX2; every modulus
            // is below 2^62 and `t` holds 64-bit quotients.
            Kernel::Avx2 => unsafe { avx2::forward_avx2(a, p, t, reduce) },
            #[cfg(not(all(target_arch = "x86_64", not(heist_ntt = "portable"))))]
            Kernel::Avx512Ifma | Kernel::Avx512 | Kernel::Avx2 => {
                unreachable!("SIMD kernels are never selected on this target")
            }
        }
        debug_assert!(
            a.iter().all(|&x| x < if reduce { p } else { 4 * p }),
            "forward: output out of range"
        );
    }

    fn inverse_stages(&self, a: &mut [u64], reduce: bool) {
        let p = self.modulus.value();
        debug_assert!(
            a.iter().all(|&x| x < 2 * p),
            "inverse: input not in [0, 2p)"
        );
        let (t, s) = (&self.inv, &self.scale);
        match self.kernel {
            Kernel::Portable if reduce => portable::inverse::<true>(a, p, t, s),
            Kernel::Portable => portable::inverse::<false>(a, p, t, s),
            #[cfg(all(target_arch = "x86_64", not(heist_ntt = "portable")))]
            // SAFETY: as in `forward_stages`.
            Kernel::Avx512Ifma => unsafe { avx512::inverse_ifma(a, p, t, s, reduce) },
            #[cfg(all(target_arch = "x86_64", not(heist_ntt = "portable")))]
            // SAFETY: as in `forward_stages`.
            Kernel::Avx512 => unsafe { avx512::inverse_wide(a, p, t, s, reduce) },
            #[cfg(all(target_arch = "x86_64", not(heist_ntt = "portable")))]
            // SAFETY: as in `forward_stages`.
            Kernel::Avx2 => unsafe { avx2::inverse_avx2(a, p, t, s, reduce) },
            #[cfg(not(all(target_arch = "x86_64", not(heist_ntt = "portable"))))]
            Kernel::Avx512Ifma | Kernel::Avx512 | Kernel::Avx2 => {
                unreachable!("SIMD kernels are never selected on this target")
            }
        }
        debug_assert!(
            a.iter().all(|&x| x < if reduce { p } else { 2 * p }),
            "inverse: output out of range"
        );
    }
}
