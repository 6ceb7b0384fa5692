//! The AVX2 kernel: four 64-bit coefficients per vector, for `p < 2^62`, with the 64-bit
//! products of Shoup's multiplication built from 32-bit multiplies.
//!
//! # Twiddle product
//! AVX2 has no 64×64-bit multiply: `vpmuludq` multiplies the low 32-bit halves of each
//! lane into 64 bits, `vpmulld` multiplies every 32-bit half into its low 32 bits. With
//! `x = xh·2^32 + xl` (and likewise `wq`, `w`, `q`, `p`), [`shoup_mul`] computes
//! - the quotient `q' = xh·wqh + floor(xh·wql / 2^32) + floor(xl·wqh / 2^32)` (three
//!   `vpmuludq`). It leaves out `xl·wql` and the low halves of the cross products, whose
//!   sum is below `3·2^64`, so `q − 2 <= q' <= q` for Shoup's `q = floor(x·wq / 2^64)`;
//! - the remainder `x·w − q'·p` modulo `2^64`: the low halves by `vpmuludq`, and the
//!   cross terms `xh·wl + xl·wh − qh·pl − ql·ph`, which only count modulo `2^32`, by
//!   `vpmulld` on `x` and `p` with swapped halves.
//!
//! Shoup's bound `x·w − q·p ∈ [0, 2p)` for `x < 2^64` becomes `[0, 4p)`, which one
//! conditional subtraction of `2p` brings back to `[0, 2p)`.
//!
//! # Structure
//! Depth first over leaves of at most [`LEAF`](depth_first::LEAF) coefficients
//! (see [`depth_first`]). In a leaf, the stages with half-blocks of at least four
//! coefficients run on whole vectors with a broadcast twiddle; the last two forward stages
//! (first two inverse stages), with half-blocks of 2 and 1 coefficients, run together on
//! 16 coefficients at a time, with the operands regrouped by 128-bit permutes and 64-bit
//! unpacks in registers.
//!
//! # Ranges
//! As the portable kernel: forward coefficients in `[0, 4p)` between stages, inverse in
//! `[0, 2p)`, fully reduced after the last stage on request; `p < 2^62`, so `4p < 2^64`,
//! and the Shoup quotients are `floor(w · 2^64 / p)`.
//!
//! # Safety
//! Every function here is `unsafe` because it executes AVX2 instructions: callers must
//! make sure the CPU supports AVX2. The public entry points carry the matching
//! `#[target_feature]`; all helpers are `#[inline(always)]` so that they are compiled
//! inside those entry points.

use core::arch::x86_64::*;

use super::depth_first::{self, tw_range, Step};
use super::{Scale, Table};

/// The modulus in every lane, and the masks the products need.
#[derive(Clone, Copy)]
struct Consts {
    p: __m256i,
    two_p: __m256i,
    /// `p` with the 32-bit halves of each lane swapped.
    p_swap: __m256i,
    /// `0xffff_ffff_0000_0000` in every lane.
    hi32: __m256i,
}

/// A twiddle factor per lane with its Shoup quotient.
#[derive(Clone, Copy)]
struct Twiddle {
    /// `w < p`.
    w: __m256i,
    /// `wq = floor(w · 2^64 / p)`.
    wq: __m256i,
    /// The high half of `wq` in the low half of each lane (the high half is not read).
    wq_hi: __m256i,
}

impl Twiddle {
    /// The same twiddle in every lane.
    ///
    /// # Safety
    /// AVX2 must be available.
    #[inline(always)]
    unsafe fn broadcast(w: u64, wq: u64) -> Self {
        // SAFETY: AVX2 is available (this function's contract).
        unsafe {
            Self {
                w: _mm256_set1_epi64x(w as i64),
                wq: _mm256_set1_epi64x(wq as i64),
                wq_hi: _mm256_set1_epi64x((wq >> 32) as i64),
            }
        }
    }

    /// A twiddle per lane, from vectors of twiddles and their quotients.
    ///
    /// # Safety
    /// AVX2 must be available.
    #[inline(always)]
    unsafe fn lanes(w: __m256i, wq: __m256i) -> Self {
        // SAFETY: AVX2 is available (this function's contract).
        unsafe {
            Self {
                w,
                wq,
                wq_hi: _mm256_shuffle_epi32::<0b11_11_01_01>(wq),
            }
        }
    }
}

/// `1/N` and `ψ^-bitrev(1)/N` with their quotients, in every lane.
#[derive(Clone, Copy)]
struct ScaleV {
    n_inv: Twiddle,
    w1: Twiddle,
}

/// # Safety
/// AVX2 must be available.
#[inline(always)]
unsafe fn consts(p: u64) -> Consts {
    // SAFETY: AVX2 is available (this function's contract).
    unsafe {
        Consts {
            p: _mm256_set1_epi64x(p as i64),
            two_p: _mm256_set1_epi64x((2 * p) as i64),
            p_swap: _mm256_set1_epi64x(p.rotate_left(32) as i64),
            hi32: _mm256_set1_epi64x(0xffff_ffff_0000_0000_u64 as i64),
        }
    }
}

/// `x − m` where `x >= m`, else `x`.
///
/// # Ranges
/// `x` in `[0, 2m)` with `m <= 2^63` → `[0, m)`. Then `x − m`, read as a signed number,
/// is negative exactly when `x < m`, and its sign bit picks the result.
///
/// # Safety
/// AVX2 must be available.
#[inline(always)]
unsafe fn csub(x: __m256i, m: __m256i) -> __m256i {
    // SAFETY: AVX2 is available (this function's contract).
    unsafe {
        let d = _mm256_sub_epi64(x, m);
        _mm256_castpd_si256(_mm256_blendv_pd(
            _mm256_castsi256_pd(d),
            _mm256_castsi256_pd(x),
            _mm256_castsi256_pd(d),
        ))
    }
}

/// Shoup's lazy product `x · w mod p` up to one `p`, lane by lane (see the module
/// documentation for the method).
///
/// # Ranges
/// `x` in `[0, 2^64)`, `w` in `[0, p)`, `p < 2^62` → `[0, 2p)`.
///
/// # Safety
/// AVX2 must be available.
#[inline(always)]
unsafe fn shoup_mul(c: &Consts, x: __m256i, tw: &Twiddle) -> __m256i {
    // SAFETY: AVX2 is available (this function's contract).
    unsafe {
        // `x` with its halves swapped: `xh` in the low half for `vpmuludq`, and the
        // pairing `(xh·wl, xl·wh)` for `vpmulld`. (A shift would give `xh` too, but then
        // the compiler may recognise a wider product that AVX2 lacks.)
        let x_swap = _mm256_shuffle_epi32::<0b10_11_00_01>(x);
        let lh = _mm256_mul_epu32(x, tw.wq_hi);
        let hl = _mm256_mul_epu32(x_swap, tw.wq);
        let hh = _mm256_mul_epu32(x_swap, tw.wq_hi);
        // q' = hh + floor(lh / 2^32) + floor(hl / 2^32) <= q < 2^64: no carry out.
        let q = _mm256_add_epi64(
            hh,
            _mm256_add_epi64(_mm256_srli_epi64::<32>(lh), _mm256_srli_epi64::<32>(hl)),
        );
        let low = _mm256_sub_epi64(_mm256_mul_epu32(x, tw.w), _mm256_mul_epu32(q, c.p));
        // Per 32-bit half: (xh·wl − ql·ph, xl·wh − qh·pl) mod 2^32.
        let cross = _mm256_sub_epi32(
            _mm256_mullo_epi32(x_swap, tw.w),
            _mm256_mullo_epi32(q, c.p_swap),
        );
        // Both halves of `cross`, moved up by 32 bits: (cross_lo + cross_hi)·2^32.
        let cross = _mm256_add_epi64(
            _mm256_slli_epi64::<32>(cross),
            _mm256_and_si256(cross, c.hi32),
        );
        // x·w − q'·p lies in [0, 4p) ⊂ [0, 2^64): its residue mod 2^64 is the value.
        csub(_mm256_add_epi64(low, cross), c.two_p)
    }
}

/// Forward (Cooley–Tukey) butterfly on four lanes; reduces fully when `LAST_R`.
///
/// # Ranges
/// `z0, z1` in `[0, 4p)` → `[0, 4p)`, or `[0, p)` when `LAST_R`.
///
/// # Safety
/// AVX2 must be available.
#[inline(always)]
unsafe fn fwd_bfly<const LAST_R: bool>(
    c: &Consts,
    z0: __m256i,
    z1: __m256i,
    tw: &Twiddle,
) -> (__m256i, __m256i) {
    // SAFETY: AVX2 is available (this function's contract).
    unsafe {
        let z0 = csub(z0, c.two_p);
        let t = shoup_mul(c, z1, tw);
        if LAST_R {
            let z0 = csub(z0, c.p);
            let t = csub(t, c.p);
            let x = csub(_mm256_add_epi64(z0, t), c.p);
            let y = csub(_mm256_sub_epi64(_mm256_add_epi64(z0, c.p), t), c.p);
            (x, y)
        } else {
            let x = _mm256_add_epi64(z0, t);
            let y = _mm256_sub_epi64(_mm256_add_epi64(z0, c.two_p), t);
            (x, y)
        }
    }
}

/// Inverse (Gentleman–Sande) butterfly on four lanes.
///
/// # Ranges
/// `z0, z1` in `[0, 2p)` → `[0, 2p)`.
///
/// # Safety
/// AVX2 must be available.
#[inline(always)]
unsafe fn inv_bfly(c: &Consts, z0: __m256i, z1: __m256i, tw: &Twiddle) -> (__m256i, __m256i) {
    // SAFETY: AVX2 is available (this function's contract).
    unsafe {
        let x = csub(_mm256_add_epi64(z0, z1), c.two_p);
        let d = _mm256_sub_epi64(_mm256_add_epi64(z0, c.two_p), z1);
        (x, shoup_mul(c, d, tw))
    }
}

/// The last inverse butterfly with `1/N` folded in; reduces fully when `R`.
///
/// # Ranges
/// `z0, z1` in `[0, 2p)` → `[0, 2p)`, or `[0, p)` when `R`.
///
/// # Safety
/// AVX2 must be available.
#[inline(always)]
unsafe fn inv_last_bfly<const R: bool>(
    c: &Consts,
    s: &ScaleV,
    z0: __m256i,
    z1: __m256i,
) -> (__m256i, __m256i) {
    // SAFETY: AVX2 is available (this function's contract).
    unsafe {
        let x = shoup_mul(c, _mm256_add_epi64(z0, z1), &s.n_inv);
        let d = _mm256_sub_epi64(_mm256_add_epi64(z0, c.two_p), z1);
        let y = shoup_mul(c, d, &s.w1);
        if R {
            (csub(x, c.p), csub(y, c.p))
        } else {
            (x, y)
        }
    }
}

/// # Safety
/// AVX2 must be available.
#[inline(always)]
unsafe fn load(a: &[u64; 4]) -> __m256i {
    // SAFETY: `a` is 32 readable bytes; unaligned loads are allowed; AVX2 by contract.
    unsafe { _mm256_loadu_si256(a.as_ptr().cast()) }
}

/// # Safety
/// AVX2 must be available.
#[inline(always)]
unsafe fn store(a: &mut [u64; 4], v: __m256i) {
    // SAFETY: `a` is 32 writable bytes; unaligned stores are allowed; AVX2 by contract.
    unsafe { _mm256_storeu_si256(a.as_mut_ptr().cast(), v) }
}

/// Which butterfly a whole-vector stage applies.
#[derive(Clone, Copy)]
enum Stage<'a> {
    Forward(u64, u64),
    Inverse(u64, u64),
    InverseLast(&'a ScaleV),
}

/// One stage on one block of length `2t`, `t` a multiple of 4, twiddle broadcast.
///
/// # Ranges
/// Those of the stage's butterfly.
///
/// # Safety
/// AVX2 must be available.
#[inline(always)]
unsafe fn block_stage<const R: bool>(c: &Consts, block: &mut [u64], stage: Stage) {
    let (lo, hi) = block.split_at_mut(block.len() / 2);
    let (lo, _) = lo.as_chunks_mut::<4>();
    let (hi, _) = hi.as_chunks_mut::<4>();
    // SAFETY: AVX2 is available (this function's contract).
    unsafe {
        match stage {
            Stage::Forward(w, wq) => {
                let tw = Twiddle::broadcast(w, wq);
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    let (a, b) = fwd_bfly::<false>(c, load(x), load(y), &tw);
                    store(x, a);
                    store(y, b);
                }
            }
            Stage::Inverse(w, wq) => {
                let tw = Twiddle::broadcast(w, wq);
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    let (a, b) = inv_bfly(c, load(x), load(y), &tw);
                    store(x, a);
                    store(y, b);
                }
            }
            Stage::InverseLast(s) => {
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    let (a, b) = inv_last_bfly::<R>(c, s, load(x), load(y));
                    store(x, a);
                    store(y, b);
                }
            }
        }
    }
}

/// The twiddles of the two short stages for the rows `HI` (1 and 3) or not (0 and 2) of
/// a group of four vectors.
///
/// `w2, q2`: the twiddles of rows 0–3 at the stage with half-blocks of 2 (one per row);
/// `w1, q1`: those at the stage with half-blocks of 1 (two per row, eight in all).
/// Returns the lanes `(r, r, r', r')` of the first and `(2r, 2r + 1, 2r', 2r' + 1)` of
/// the second, for the rows `r, r'` of the pair.
///
/// # Safety
/// AVX2 must be available.
#[inline(always)]
unsafe fn short_twiddles<const HI: bool>(
    w2: __m256i,
    q2: __m256i,
    w1: [__m256i; 2],
    q1: [__m256i; 2],
) -> (Twiddle, Twiddle) {
    // SAFETY: AVX2 is available (this function's contract).
    unsafe {
        if HI {
            (
                Twiddle::lanes(_mm256_unpackhi_epi64(w2, w2), _mm256_unpackhi_epi64(q2, q2)),
                Twiddle::lanes(
                    _mm256_permute2x128_si256::<0x31>(w1[0], w1[1]),
                    _mm256_permute2x128_si256::<0x31>(q1[0], q1[1]),
                ),
            )
        } else {
            (
                Twiddle::lanes(_mm256_unpacklo_epi64(w2, w2), _mm256_unpacklo_epi64(q2, q2)),
                Twiddle::lanes(
                    _mm256_permute2x128_si256::<0x20>(w1[0], w1[1]),
                    _mm256_permute2x128_si256::<0x20>(q1[0], q1[1]),
                ),
            )
        }
    }
}

/// The two short stages on two rows `a = [a0, a1, a2, a3]` and `c = [c0, c1, c2, c3]`
/// (two blocks of four coefficients): forward, the stage with half-blocks of 2 then the
/// one with half-blocks of 1 (the last, fully reducing when `R`); inverse, the reverse.
///
/// The operands are regrouped in registers: `(a0, a1, c0, c1 | a2, a3, c2, c3)` by 128-bit
/// permutes for the half-blocks of 2, `(a0, a2, c0, c2 | a1, a3, c1, c3)` by unpacks for
/// the half-blocks of 1; each regrouping is its own inverse.
///
/// # Ranges
/// Forward: `[0, 4p)` → `[0, 4p)`, or `[0, p)` when `R`. Inverse: `[0, 2p)` → `[0, 2p)`.
///
/// # Safety
/// AVX2 must be available.
#[inline(always)]
unsafe fn short_pair<const FWD: bool, const R: bool>(
    c: &Consts,
    a: __m256i,
    b: __m256i,
    tw2: &Twiddle,
    tw1: &Twiddle,
) -> (__m256i, __m256i) {
    // SAFETY: AVX2 is available (this function's contract).
    unsafe {
        let z0 = _mm256_permute2x128_si256::<0x20>(a, b);
        let z1 = _mm256_permute2x128_si256::<0x31>(a, b);
        let (z0, z1) = if FWD {
            let (z0, z1) = fwd_bfly::<false>(c, z0, z1, tw2);
            let (u0, u1) = (_mm256_unpacklo_epi64(z0, z1), _mm256_unpackhi_epi64(z0, z1));
            let (u0, u1) = fwd_bfly::<R>(c, u0, u1, tw1);
            (_mm256_unpacklo_epi64(u0, u1), _mm256_unpackhi_epi64(u0, u1))
        } else {
            let (u0, u1) = (_mm256_unpacklo_epi64(z0, z1), _mm256_unpackhi_epi64(z0, z1));
            let (u0, u1) = inv_bfly(c, u0, u1, tw1);
            let (z0, z1) = (_mm256_unpacklo_epi64(u0, u1), _mm256_unpackhi_epi64(u0, u1));
            inv_bfly(c, z0, z1, tw2)
        };
        (
            _mm256_permute2x128_si256::<0x20>(z0, z1),
            _mm256_permute2x128_si256::<0x31>(z0, z1),
        )
    }
}

/// The two short stages (half-blocks of 2 and 1) over a whole leaf, 16 coefficients (four
/// rows of four) at a time: rows 0 and 2 together, then rows 1 and 3.
///
/// `(w2, q2)`: the twiddles of the stage with half-blocks of 2 (one per 4 coefficients);
/// `(w1, q1)`: those of the stage with half-blocks of 1 (one per 2 coefficients).
///
/// # Ranges
/// As [`short_pair`].
///
/// # Safety
/// AVX2 must be available.
#[inline(always)]
unsafe fn short_stages<const FWD: bool, const R: bool>(
    c: &Consts,
    a: &mut [u64],
    (w2, q2): (&[u64], &[u64]),
    (w1, q1): (&[u64], &[u64]),
) {
    let (groups, _) = a.as_chunks_mut::<16>();
    let (w2, _) = w2.as_chunks::<4>();
    let (q2, _) = q2.as_chunks::<4>();
    let (w1, _) = w1.as_chunks::<8>();
    let (q1, _) = q1.as_chunks::<8>();
    // SAFETY: AVX2 is available (this function's contract).
    unsafe {
        for ((((g, w2), q2), w1), q1) in groups.iter_mut().zip(w2).zip(q2).zip(w1).zip(q1) {
            let (rows, _) = g.as_chunks_mut::<4>();
            let (w2, q2) = (load(w2), load(q2));
            let (w1, _) = w1.as_chunks::<4>();
            let (q1, _) = q1.as_chunks::<4>();
            let w1 = [load(&w1[0]), load(&w1[1])];
            let q1 = [load(&q1[0]), load(&q1[1])];
            let (tw2, tw1) = short_twiddles::<false>(w2, q2, w1, q1);
            let (r0, r2) = short_pair::<FWD, R>(c, load(&rows[0]), load(&rows[2]), &tw2, &tw1);
            store(&mut rows[0], r0);
            store(&mut rows[2], r2);
            let (tw2, tw1) = short_twiddles::<true>(w2, q2, w1, q1);
            let (r1, r3) = short_pair::<FWD, R>(c, load(&rows[1]), load(&rows[3]), &tw2, &tw1);
            store(&mut rows[1], r1);
            store(&mut rows[3], r3);
        }
    }
}

/// All forward stages of a leaf block `a` (the `h`-th block of length `a.len()` at depth `d`).
///
/// # Ranges
/// `[0, 4p)` → `[0, 4p)`, or `[0, p)` when `R`.
///
/// # Safety
/// AVX2 must be available.
#[inline(always)]
unsafe fn fwd_leaf<const R: bool>(c: &Consts, a: &mut [u64], t: &Table, d: u32, h: usize) {
    let s = a.len();
    // SAFETY: AVX2 is available (this function's contract).
    unsafe {
        let mut m = 1;
        while m < s / 4 {
            let r = tw_range(m, d, h);
            for ((block, &w), &wq) in a.chunks_exact_mut(s / m).zip(&t.w[r.clone()]).zip(&t.q[r]) {
                block_stage::<false>(c, block, Stage::Forward(w, wq));
            }
            m *= 2;
        }
        let (r2, r1) = (tw_range(s / 4, d, h), tw_range(s / 2, d, h));
        short_stages::<true, R>(
            c,
            a,
            (&t.w[r2.clone()], &t.q[r2]),
            (&t.w[r1.clone()], &t.q[r1]),
        );
    }
}

/// All inverse stages of a leaf block; the last one scales by `1/N` when `scale` is given
/// (the leaf is the whole transform).
///
/// # Ranges
/// `[0, 2p)` → `[0, 2p)`, or `[0, p)` when `R` and `scale` is given.
///
/// # Safety
/// AVX2 must be available.
#[inline(always)]
unsafe fn inv_leaf<const R: bool>(
    c: &Consts,
    a: &mut [u64],
    t: &Table,
    (d, h): (u32, usize),
    scale: Option<&ScaleV>,
) {
    let s = a.len();
    // SAFETY: AVX2 is available (this function's contract).
    unsafe {
        let (r2, r1) = (tw_range(s / 4, d, h), tw_range(s / 2, d, h));
        short_stages::<false, false>(
            c,
            a,
            (&t.w[r2.clone()], &t.q[r2]),
            (&t.w[r1.clone()], &t.q[r1]),
        );
        let mut m = s / 8;
        while m >= 1 {
            match scale {
                Some(sv) if m == 1 => block_stage::<R>(c, a, Stage::InverseLast(sv)),
                _ => {
                    let r = tw_range(m, d, h);
                    for ((block, &w), &wq) in
                        a.chunks_exact_mut(s / m).zip(&t.w[r.clone()]).zip(&t.q[r])
                    {
                        block_stage::<false>(c, block, Stage::Inverse(w, wq));
                    }
                }
            }
            m /= 2;
        }
    }
}

/// Forward transform.
///
/// # Ranges
/// Input in `[0, 4p)` → output in `[0, p)` when `R`, else `[0, 4p)`.
///
/// # Safety
/// AVX2 must be available.
#[inline(always)]
unsafe fn forward<const R: bool>(a: &mut [u64], p: u64, t: &Table) {
    // SAFETY: AVX2 is available (this function's contract).
    unsafe {
        let c = consts(p);
        for step in depth_first::forward(a.len()) {
            match step {
                Step::Join { block, k } => {
                    let stage = Stage::Forward(t.w[k], t.q[k]);
                    block_stage::<false>(&c, &mut a[block], stage);
                }
                Step::Leaf { block, d, h } => fwd_leaf::<R>(&c, &mut a[block], t, d, h),
            }
        }
    }
}

/// Inverse transform, `1/N` included.
///
/// # Ranges
/// Input in `[0, 2p)` → output in `[0, p)` when `R`, else `[0, 2p)`.
///
/// # Safety
/// AVX2 must be available.
#[inline(always)]
unsafe fn inverse<const R: bool>(a: &mut [u64], p: u64, t: &Table, s: &Scale) {
    // SAFETY: AVX2 is available (this function's contract).
    unsafe {
        let c = consts(p);
        let sv = ScaleV {
            n_inv: Twiddle::broadcast(s.n_inv, s.n_inv_q),
            w1: Twiddle::broadcast(s.n_inv_w1, s.n_inv_w1_q),
        };
        for step in depth_first::inverse(a.len()) {
            match step {
                Step::Leaf { block, d: 0, h } => {
                    inv_leaf::<R>(&c, &mut a[block], t, (0, h), Some(&sv))
                }
                Step::Leaf { block, d, h } => inv_leaf::<false>(&c, &mut a[block], t, (d, h), None),
                Step::Join { block, k: 1 } => {
                    block_stage::<R>(&c, &mut a[block], Stage::InverseLast(&sv));
                }
                Step::Join { block, k } => {
                    let stage = Stage::Inverse(t.w[k], t.q[k]);
                    block_stage::<false>(&c, &mut a[block], stage);
                }
            }
        }
    }
}

/// Forward transform on AVX2.
///
/// # Ranges
/// Input in `[0, 4p)` → output in `[0, p)` when `reduce`, else `[0, 4p)`.
///
/// # Safety
/// The CPU must support AVX2; `p < 2^62`; `t` holds 64-bit Shoup quotients.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn forward_avx2(a: &mut [u64], p: u64, t: &Table, reduce: bool) {
    debug_assert!(p < 1 << 62);
    // SAFETY: the feature is enabled on this function and present (its contract).
    unsafe {
        if reduce {
            forward::<true>(a, p, t)
        } else {
            forward::<false>(a, p, t)
        }
    }
}

/// Inverse transform on AVX2, `1/N` included.
///
/// # Ranges
/// Input in `[0, 2p)` → output in `[0, p)` when `reduce`, else `[0, 2p)`.
///
/// # Safety
/// As [`forward_avx2`].
#[target_feature(enable = "avx2")]
pub(super) unsafe fn inverse_avx2(a: &mut [u64], p: u64, t: &Table, s: &Scale, reduce: bool) {
    debug_assert!(p < 1 << 62);
    // SAFETY: the feature is enabled on this function and present (its contract).
    unsafe {
        if reduce {
            inverse::<true>(a, p, t, s)
        } else {
            inverse::<false>(a, p, t, s)
        }
    }
}
