//! AVX-512 kernels: eight coefficients per vector, with the twiddle product either on
//! IFMA's 52-bit multipliers ([`Ifma`], `p < 2^50`) or on 64-bit lanes with an emulated
//! 64×64 high product ([`Wide`], `p < 2^62`).
//!
//! # Structure
//! Depth first over leaves of at most [`LEAF`](depth_first::LEAF) coefficients (see
//! [`depth_first`]). In a leaf, the stages with half-blocks of at least eight coefficients
//! run on whole vectors with a broadcast twiddle; the last three forward stages (first
//! three inverse stages), with half-blocks of 4, 2 and 1 coefficients, transpose pairs of
//! vectors in registers.
//!
//! # Ranges
//! As the portable kernel: forward coefficients in `[0, 4p)` between stages, inverse in
//! `[0, 2p)`, fully reduced after the last stage on request. For [`Ifma`], the lazy bound
//! `4p < 2^52` (from `p < 2^50`) keeps every multiplier input within the 52 bits the
//! instructions read, and the Shoup quotients are `floor(w · 2^52 / p)`; for [`Wide`] they
//! are `floor(w · 2^64 / p)` and `4p < 2^64`.
//!
//! # Safety
//! Every function here is `unsafe` because it executes AVX-512 instructions: callers must
//! make sure the CPU supports AVX-512F and AVX-512DQ, plus AVX-512IFMA for [`Ifma`]. The
//! public entry points carry the matching `#[target_feature]`; all helpers are
//! `#[inline(always)]` so that they are compiled inside those entry points.

use core::arch::x86_64::*;

use super::depth_first::{self, tw_range, Step};
use super::{Scale, Table};
/// `2^52 - 1`: the bits IFMA multiplies.
const MASK52: i64 = (1 << 52) - 1;

/// The modulus in every lane.
#[derive(Clone, Copy)]
struct Consts {
    p: __m512i,
    two_p: __m512i,
    neg_p: __m512i,
}

/// `1/N` and `ψ^-bitrev(1)/N` with their quotients, in every lane.
#[derive(Clone, Copy)]
struct ScaleV {
    n_inv: __m512i,
    n_inv_q: __m512i,
    w1: __m512i,
    w1_q: __m512i,
}

/// Shoup's lazy product `x · w mod p` up to one `p`, lane by lane.
trait ShoupMul {
    /// # Ranges
    /// `x` in `[0, 4p)`, `w` in `[0, p)`, `wq` its quotient for this kernel → `[0, 2p)`.
    ///
    /// # Safety
    /// See the module documentation.
    unsafe fn mul(c: &Consts, x: __m512i, w: __m512i, wq: __m512i) -> __m512i;
}

/// AVX-512 IFMA: `q = floor(x · wq / 2^52)`, `x·w − q·p` taken modulo `2^52`.
struct Ifma;

impl ShoupMul for Ifma {
    #[inline(always)]
    unsafe fn mul(c: &Consts, x: __m512i, w: __m512i, wq: __m512i) -> __m512i {
        // SAFETY: AVX-512F and AVX-512IFMA are available (this function's contract).
        unsafe {
            let zero = _mm512_setzero_si512();
            let q = _mm512_madd52hi_epu64(zero, x, wq);
            let xw = _mm512_madd52lo_epu64(zero, x, w);
            // x·w − q·p lies in [0, 2p) ⊂ [0, 2^52): its residue mod 2^52 is the value.
            let r = _mm512_madd52lo_epu64(xw, q, c.neg_p);
            _mm512_and_si512(r, _mm512_set1_epi64(MASK52))
        }
    }
}

/// AVX-512F/DQ: `q = floor(x · wq / 2^64)` from four 32×32 products, `x·w − q·p` mod 2^64.
struct Wide;

impl ShoupMul for Wide {
    #[inline(always)]
    unsafe fn mul(c: &Consts, x: __m512i, w: __m512i, wq: __m512i) -> __m512i {
        // SAFETY: AVX-512F and AVX-512DQ are available (this function's contract).
        unsafe {
            let q = mul_hi(x, wq);
            _mm512_sub_epi64(_mm512_mullo_epi64(x, w), _mm512_mullo_epi64(q, c.p))
        }
    }
}

/// The high words of the 128-bit lane products `x · y`.
///
/// # Safety
/// AVX-512F must be available.
#[inline(always)]
unsafe fn mul_hi(x: __m512i, y: __m512i) -> __m512i {
    // SAFETY: AVX-512F is available (this function's contract).
    unsafe {
        let lo32 = _mm512_set1_epi64(0xffff_ffff);
        // High halves moved down by swapping the 32-bit halves of each lane (the products
        // read the low halves only). A shift would do the same, but then the compiler
        // recognises a full 64×64 high product, which has no AVX-512 instruction, and
        // computes it lane by lane on scalar registers.
        let x_hi = _mm512_shuffle_epi32::<0b1011_0001>(x);
        let y_hi = _mm512_shuffle_epi32::<0b1011_0001>(y);
        let ll = _mm512_mul_epu32(x, y);
        let lh = _mm512_mul_epu32(x, y_hi);
        let hl = _mm512_mul_epu32(x_hi, y);
        let hh = _mm512_mul_epu32(x_hi, y_hi);
        // Each sum below is at most (2^32 − 1)^2 + 2·(2^32 − 1) < 2^64.
        let mid = _mm512_add_epi64(lh, _mm512_srli_epi64::<32>(ll));
        let mid2 = _mm512_add_epi64(hl, _mm512_and_si512(mid, lo32));
        let hi = _mm512_add_epi64(hh, _mm512_srli_epi64::<32>(mid));
        _mm512_add_epi64(hi, _mm512_srli_epi64::<32>(mid2))
    }
}

/// `x − m` where `x >= m`, else `x`.
///
/// # Safety
/// AVX-512F must be available.
#[inline(always)]
unsafe fn csub(x: __m512i, m: __m512i) -> __m512i {
    // SAFETY: AVX-512F is available (this function's contract).
    unsafe { _mm512_min_epu64(x, _mm512_sub_epi64(x, m)) }
}

/// # Safety
/// AVX-512F must be available.
#[inline(always)]
unsafe fn load(a: &[u64; 8]) -> __m512i {
    // SAFETY: `a` is 64 readable bytes; unaligned loads are allowed; AVX-512F by contract.
    unsafe { _mm512_loadu_si512(a.as_ptr().cast()) }
}

/// # Safety
/// AVX-512F must be available.
#[inline(always)]
unsafe fn store(a: &mut [u64; 8], v: __m512i) {
    // SAFETY: `a` is 64 writable bytes; unaligned stores are allowed; AVX-512F by contract.
    unsafe { _mm512_storeu_si512(a.as_mut_ptr().cast(), v) }
}

/// Lanes `[w[i[0]], …, w[i[7]]]` from up to eight consecutive twiddles.
///
/// # Safety
/// AVX-512F must be available.
#[inline(always)]
unsafe fn spread<const K: usize>(w: &[u64; K], idx: __m512i) -> __m512i {
    const { assert!(K >= 1 && K <= 8) };
    let mask = (0xffu32 >> (8 - K)) as __mmask8;
    // SAFETY: the masked load reads lanes 0..K only, which are `w` (faults on the masked-off
    // lanes are suppressed); AVX-512F is available (this function's contract).
    unsafe { _mm512_permutexvar_epi64(idx, _mm512_maskz_loadu_epi64(mask, w.as_ptr().cast())) }
}

/// Forward (Cooley–Tukey) butterfly on eight lanes; the last one reduces fully when `R`.
///
/// # Ranges
/// `z0, z1` in `[0, 4p)` → `[0, 4p)`, or `[0, p)` when `LAST && R`.
///
/// # Safety
/// See the module documentation.
#[inline(always)]
unsafe fn fwd_bfly<K: ShoupMul, const LAST_R: bool>(
    c: &Consts,
    z0: __m512i,
    z1: __m512i,
    w: __m512i,
    wq: __m512i,
) -> (__m512i, __m512i) {
    // SAFETY: the CPU features are available (this function's contract).
    unsafe {
        let z0 = csub(z0, c.two_p);
        let t = K::mul(c, z1, w, wq);
        if LAST_R {
            let z0 = csub(z0, c.p);
            let t = csub(t, c.p);
            let x = csub(_mm512_add_epi64(z0, t), c.p);
            let y = csub(_mm512_sub_epi64(_mm512_add_epi64(z0, c.p), t), c.p);
            (x, y)
        } else {
            let x = _mm512_add_epi64(z0, t);
            let y = _mm512_sub_epi64(_mm512_add_epi64(z0, c.two_p), t);
            (x, y)
        }
    }
}

/// Inverse (Gentleman–Sande) butterfly on eight lanes.
///
/// # Ranges
/// `z0, z1` in `[0, 2p)` → `[0, 2p)`.
///
/// # Safety
/// See the module documentation.
#[inline(always)]
unsafe fn inv_bfly<K: ShoupMul>(
    c: &Consts,
    z0: __m512i,
    z1: __m512i,
    w: __m512i,
    wq: __m512i,
) -> (__m512i, __m512i) {
    // SAFETY: the CPU features are available (this function's contract).
    unsafe {
        let x = csub(_mm512_add_epi64(z0, z1), c.two_p);
        let d = _mm512_sub_epi64(_mm512_add_epi64(z0, c.two_p), z1);
        (x, K::mul(c, d, w, wq))
    }
}

/// The last inverse butterfly with `1/N` folded in; reduces fully when `R`.
///
/// # Ranges
/// `z0, z1` in `[0, 2p)` → `[0, 2p)`, or `[0, p)` when `R`.
///
/// # Safety
/// See the module documentation.
#[inline(always)]
unsafe fn inv_last_bfly<K: ShoupMul, const R: bool>(
    c: &Consts,
    s: &ScaleV,
    z0: __m512i,
    z1: __m512i,
) -> (__m512i, __m512i) {
    // SAFETY: the CPU features are available (this function's contract).
    unsafe {
        let x = K::mul(c, _mm512_add_epi64(z0, z1), s.n_inv, s.n_inv_q);
        let d = _mm512_sub_epi64(_mm512_add_epi64(z0, c.two_p), z1);
        let y = K::mul(c, d, s.w1, s.w1_q);
        if R {
            (csub(x, c.p), csub(y, c.p))
        } else {
            (x, y)
        }
    }
}

/// Which butterfly a whole-vector stage applies.
#[derive(Clone, Copy)]
enum Stage<'a> {
    Forward(u64, u64),
    Inverse(u64, u64),
    InverseLast(&'a ScaleV),
}

/// One stage on one block of length `2t`, `t` a multiple of 8, twiddle broadcast.
///
/// # Safety
/// See the module documentation.
#[inline(always)]
unsafe fn block_stage<K: ShoupMul, const R: bool>(c: &Consts, block: &mut [u64], stage: Stage) {
    let (lo, hi) = block.split_at_mut(block.len() / 2);
    let (lo, _) = lo.as_chunks_mut::<8>();
    let (hi, _) = hi.as_chunks_mut::<8>();
    // SAFETY: the CPU features are available (this function's contract).
    unsafe {
        match stage {
            Stage::Forward(w, wq) => {
                let (w, wq) = (_mm512_set1_epi64(w as i64), _mm512_set1_epi64(wq as i64));
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    let (a, b) = fwd_bfly::<K, false>(c, load(x), load(y), w, wq);
                    store(x, a);
                    store(y, b);
                }
            }
            Stage::Inverse(w, wq) => {
                let (w, wq) = (_mm512_set1_epi64(w as i64), _mm512_set1_epi64(wq as i64));
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    let (a, b) = inv_bfly::<K>(c, load(x), load(y), w, wq);
                    store(x, a);
                    store(y, b);
                }
            }
            Stage::InverseLast(s) => {
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    let (a, b) = inv_last_bfly::<K, R>(c, s, load(x), load(y));
                    store(x, a);
                    store(y, b);
                }
            }
        }
    }
}

/// Lane permutations for the stages with half-blocks of 4, 2 and 1 coefficients: how two
/// vectors `v0, v1` (16 consecutive coefficients) are split into the butterflies' first
/// and second operands, and which twiddle each lane takes. Each split is its own inverse.
#[derive(Clone, Copy)]
enum Shuffle {
    /// `t = 4`: two blocks of 8, twiddles `(0,0,0,0,1,1,1,1)`.
    T4,
    /// `t = 2`: four blocks of 4, twiddles `(0,0,2,2,1,1,3,3)`.
    T2,
    /// `t = 1`: eight blocks of 2, twiddles `(0,4,1,5,2,6,3,7)`.
    T1,
}

impl Shuffle {
    /// # Safety
    /// AVX-512F must be available.
    #[inline(always)]
    unsafe fn split(self, v0: __m512i, v1: __m512i) -> (__m512i, __m512i) {
        // SAFETY: AVX-512F is available (this function's contract).
        unsafe {
            match self {
                Self::T4 => (
                    _mm512_permutex2var_epi64(v0, _mm512_setr_epi64(0, 1, 2, 3, 8, 9, 10, 11), v1),
                    _mm512_permutex2var_epi64(
                        v0,
                        _mm512_setr_epi64(4, 5, 6, 7, 12, 13, 14, 15),
                        v1,
                    ),
                ),
                Self::T2 => (
                    _mm512_permutex2var_epi64(v0, _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), v1),
                    _mm512_permutex2var_epi64(
                        v0,
                        _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15),
                        v1,
                    ),
                ),
                Self::T1 => (_mm512_unpacklo_epi64(v0, v1), _mm512_unpackhi_epi64(v0, v1)),
            }
        }
    }

    /// # Safety
    /// AVX-512F must be available.
    #[inline(always)]
    unsafe fn twiddle_index(self) -> __m512i {
        // SAFETY: AVX-512F is available (this function's contract).
        unsafe {
            match self {
                Self::T4 => _mm512_setr_epi64(0, 0, 0, 0, 1, 1, 1, 1),
                Self::T2 => _mm512_setr_epi64(0, 0, 2, 2, 1, 1, 3, 3),
                Self::T1 => _mm512_setr_epi64(0, 4, 1, 5, 2, 6, 3, 7),
            }
        }
    }
}

/// One of the three short stages over a whole leaf: `K` twiddles per 16 coefficients.
///
/// # Safety
/// See the module documentation.
#[inline(always)]
unsafe fn short_stage<M: ShoupMul, const K: usize, const FWD: bool, const LAST_R: bool>(
    c: &Consts,
    a: &mut [u64],
    w: &[u64],
    wq: &[u64],
    shuffle: Shuffle,
) {
    let (vectors, _) = a.as_chunks_mut::<8>();
    let (pairs, _) = vectors.as_chunks_mut::<2>();
    let (w, _) = w.as_chunks::<K>();
    let (wq, _) = wq.as_chunks::<K>();
    // SAFETY: the CPU features are available (this function's contract).
    unsafe {
        let idx = shuffle.twiddle_index();
        for (([v0, v1], w), wq) in pairs.iter_mut().zip(w).zip(wq) {
            let (z0, z1) = shuffle.split(load(v0), load(v1));
            let (w, wq) = (spread(w, idx), spread(wq, idx));
            let (z0, z1) = if FWD {
                fwd_bfly::<M, LAST_R>(c, z0, z1, w, wq)
            } else {
                inv_bfly::<M>(c, z0, z1, w, wq)
            };
            let (v0n, v1n) = shuffle.split(z0, z1);
            store(v0, v0n);
            store(v1, v1n);
        }
    }
}

/// All forward stages of a leaf block `a` (the `h`-th block of length `a.len()` at depth `d`).
///
/// # Safety
/// See the module documentation.
#[inline(always)]
unsafe fn fwd_leaf<K: ShoupMul, const R: bool>(
    c: &Consts,
    a: &mut [u64],
    t: &Table,
    d: u32,
    h: usize,
) {
    let s = a.len();
    // SAFETY: the CPU features are available (this function's contract).
    unsafe {
        let mut m = 1;
        while m < s / 8 {
            let r = tw_range(m, d, h);
            for ((block, &w), &wq) in a.chunks_exact_mut(s / m).zip(&t.w[r.clone()]).zip(&t.q[r]) {
                block_stage::<K, false>(c, block, Stage::Forward(w, wq));
            }
            m *= 2;
        }
        let r = tw_range(s / 8, d, h);
        short_stage::<K, 2, true, false>(c, a, &t.w[r.clone()], &t.q[r], Shuffle::T4);
        let r = tw_range(s / 4, d, h);
        short_stage::<K, 4, true, false>(c, a, &t.w[r.clone()], &t.q[r], Shuffle::T2);
        let r = tw_range(s / 2, d, h);
        short_stage::<K, 8, true, R>(c, a, &t.w[r.clone()], &t.q[r], Shuffle::T1);
    }
}

/// All inverse stages of a leaf block; the last one scales by `1/N` when `scale` is given
/// (the leaf is the whole transform).
///
/// # Safety
/// See the module documentation.
#[inline(always)]
unsafe fn inv_leaf<K: ShoupMul, const R: bool>(
    c: &Consts,
    a: &mut [u64],
    t: &Table,
    d: u32,
    h: usize,
    scale: Option<&ScaleV>,
) {
    let s = a.len();
    // SAFETY: the CPU features are available (this function's contract).
    unsafe {
        let r = tw_range(s / 2, d, h);
        short_stage::<K, 8, false, false>(c, a, &t.w[r.clone()], &t.q[r], Shuffle::T1);
        let r = tw_range(s / 4, d, h);
        short_stage::<K, 4, false, false>(c, a, &t.w[r.clone()], &t.q[r], Shuffle::T2);
        let r = tw_range(s / 8, d, h);
        short_stage::<K, 2, false, false>(c, a, &t.w[r.clone()], &t.q[r], Shuffle::T4);
        let mut m = s / 16;
        while m >= 1 {
            match scale {
                Some(sv) if m == 1 => block_stage::<K, R>(c, a, Stage::InverseLast(sv)),
                _ => {
                    let r = tw_range(m, d, h);
                    for ((block, &w), &wq) in
                        a.chunks_exact_mut(s / m).zip(&t.w[r.clone()]).zip(&t.q[r])
                    {
                        block_stage::<K, false>(c, block, Stage::Inverse(w, wq));
                    }
                }
            }
            m /= 2;
        }
    }
}

/// # Safety
/// See the module documentation.
#[inline(always)]
unsafe fn consts(p: u64) -> Consts {
    // SAFETY: AVX-512F is available (this function's contract).
    unsafe {
        Consts {
            p: _mm512_set1_epi64(p as i64),
            two_p: _mm512_set1_epi64((2 * p) as i64),
            neg_p: _mm512_set1_epi64(p.wrapping_neg() as i64),
        }
    }
}

/// Forward transform, depth first over leaves of [`LEAF`](depth_first::LEAF) coefficients.
///
/// # Safety
/// See the module documentation.
#[inline(always)]
unsafe fn forward<K: ShoupMul, const R: bool>(a: &mut [u64], p: u64, t: &Table) {
    // SAFETY: the CPU features are available (this function's contract).
    unsafe {
        let c = consts(p);
        for step in depth_first::forward(a.len()) {
            match step {
                Step::Join { block, k } => {
                    let stage = Stage::Forward(t.w[k], t.q[k]);
                    block_stage::<K, false>(&c, &mut a[block], stage);
                }
                Step::Leaf { block, d, h } => fwd_leaf::<K, R>(&c, &mut a[block], t, d, h),
            }
        }
    }
}

/// Inverse transform, depth first over leaves of [`LEAF`](depth_first::LEAF) coefficients.
///
/// # Safety
/// See the module documentation.
#[inline(always)]
unsafe fn inverse<K: ShoupMul, const R: bool>(a: &mut [u64], p: u64, t: &Table, s: &Scale) {
    // SAFETY: the CPU features are available (this function's contract).
    unsafe {
        let c = consts(p);
        let sv = ScaleV {
            n_inv: _mm512_set1_epi64(s.n_inv as i64),
            n_inv_q: _mm512_set1_epi64(s.n_inv_q as i64),
            w1: _mm512_set1_epi64(s.n_inv_w1 as i64),
            w1_q: _mm512_set1_epi64(s.n_inv_w1_q as i64),
        };
        for step in depth_first::inverse(a.len()) {
            match step {
                Step::Leaf { block, d: 0, h } => {
                    inv_leaf::<K, R>(&c, &mut a[block], t, 0, h, Some(&sv))
                }
                Step::Leaf { block, d, h } => {
                    inv_leaf::<K, false>(&c, &mut a[block], t, d, h, None)
                }
                Step::Join { block, k: 1 } => {
                    block_stage::<K, R>(&c, &mut a[block], Stage::InverseLast(&sv));
                }
                Step::Join { block, k } => {
                    let stage = Stage::Inverse(t.w[k], t.q[k]);
                    block_stage::<K, false>(&c, &mut a[block], stage);
                }
            }
        }
    }
}

/// Forward transform on IFMA lanes.
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512DQ and AVX-512IFMA; `p < 2^50`; `t` holds 52-bit
/// Shoup quotients.
#[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
pub(super) unsafe fn forward_ifma(a: &mut [u64], p: u64, t: &Table, reduce: bool) {
    // SAFETY: the features are enabled on this function and present (its contract).
    unsafe {
        if reduce {
            forward::<Ifma, true>(a, p, t)
        } else {
            forward::<Ifma, false>(a, p, t)
        }
    }
}

/// Inverse transform on IFMA lanes.
///
/// # Safety
/// As [`forward_ifma`].
#[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
pub(super) unsafe fn inverse_ifma(a: &mut [u64], p: u64, t: &Table, s: &Scale, reduce: bool) {
    // SAFETY: the features are enabled on this function and present (its contract).
    unsafe {
        if reduce {
            inverse::<Ifma, true>(a, p, t, s)
        } else {
            inverse::<Ifma, false>(a, p, t, s)
        }
    }
}

/// Forward transform on 64-bit lanes.
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512DQ; `p < 2^62`; `t` holds 64-bit quotients.
#[target_feature(enable = "avx512f,avx512dq")]
pub(super) unsafe fn forward_wide(a: &mut [u64], p: u64, t: &Table, reduce: bool) {
    // SAFETY: the features are enabled on this function and present (its contract).
    unsafe {
        if reduce {
            forward::<Wide, true>(a, p, t)
        } else {
            forward::<Wide, false>(a, p, t)
        }
    }
}

/// Inverse transform on 64-bit lanes.
///
/// # Safety
/// As [`forward_wide`].
#[target_feature(enable = "avx512f,avx512dq")]
pub(super) unsafe fn inverse_wide(a: &mut [u64], p: u64, t: &Table, s: &Scale, reduce: bool) {
    // SAFETY: the features are enabled on this function and present (its contract).
    unsafe {
        if reduce {
            inverse::<Wide, true>(a, p, t, s)
        } else {
            inverse::<Wide, false>(a, p, t, s)
        }
    }
}
