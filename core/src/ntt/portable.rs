//! The portable kernel: scalar Harvey butterflies with Shoup twiddles, two stages per
//! pass over memory (radix-4 blocks of radix-2 butterflies).
//!
//! # Ranges
//! Forward: every coefficient in `[0, 4p)` before and after each stage (Harvey's lazy
//! Cooley–Tukey butterfly); with `R = true` the last stage leaves `[0, p)`. Inverse: every
//! coefficient in `[0, 2p)` before and after each stage (lazy Gentleman–Sande butterfly);
//! with `R = true` the last stage leaves `[0, p)`. Requires `p < 2^62`, so `4p < 2^64`.
//!
//! # Pairs of stages
//! The stages with `m` and `2m` blocks are done in one pass: for block `i` of the first
//! (length `4q`), the four coefficients at `j, j + q, j + 2q, j + 3q` go through the
//! butterflies `(0, 2)` and `(1, 3)` with twiddle `w[m + i]`, then `(0, 1)` with
//! `w[2m + 2i]` and `(2, 3)` with `w[2m + 2i + 1]`, exactly the two radix-2 stages
//! reordered. The inverse runs the same pairs in the opposite order.

use super::{Scale, Table};
use crate::arith::{csub, shoup_lazy};

/// Cooley–Tukey butterfly: `(x, y) ← (x + w·y, x − w·y)`, lazily.
///
/// # Ranges
/// `x, y` in `[0, 4p)` → `x, y` in `[0, 4p)`.
#[inline(always)]
fn fwd_bfly(x: &mut u64, y: &mut u64, w: u64, wq: u64, p: u64) {
    let two_p = 2 * p;
    debug_assert!(*x < 2 * two_p && *y < 2 * two_p);
    let u = csub(*x, two_p);
    let v = shoup_lazy(*y, w, wq, p);
    *x = u + v;
    *y = u + two_p - v;
}

/// Gentleman–Sande butterfly: `(x, y) ← (x + y, w·(x − y))`, lazily.
///
/// # Ranges
/// `x, y` in `[0, 2p)` → `x, y` in `[0, 2p)`.
#[inline(always)]
fn inv_bfly(x: &mut u64, y: &mut u64, w: u64, wq: u64, p: u64) {
    let two_p = 2 * p;
    debug_assert!(*x < two_p && *y < two_p);
    let (u, v) = (*x, *y);
    *x = csub(u + v, two_p);
    *y = shoup_lazy(u + two_p - v, w, wq, p);
}

/// The last Gentleman–Sande butterfly with `1/N` folded in:
/// `(x, y) ← ((x + y)/N, ψ^-bitrev(1)·(x − y)/N)`.
///
/// # Ranges
/// `x, y` in `[0, 2p)` → `[0, 2p)`, or `[0, p)` when `R`.
#[inline(always)]
fn inv_last_bfly<const R: bool>(x: &mut u64, y: &mut u64, s: &Scale, p: u64) {
    let two_p = 2 * p;
    debug_assert!(*x < two_p && *y < two_p);
    let (u, v) = (*x, *y);
    let a = shoup_lazy(u + v, s.n_inv, s.n_inv_q, p);
    let b = shoup_lazy(u + two_p - v, s.n_inv_w1, s.n_inv_w1_q, p);
    if R {
        *x = csub(a, p);
        *y = csub(b, p);
    } else {
        *x = a;
        *y = b;
    }
}

/// Reduces a forward output from `[0, 4p)` to `[0, p)`.
#[inline(always)]
fn reduce4(x: u64, p: u64) -> u64 {
    csub(csub(x, 2 * p), p)
}

/// Splits a block of length `4q` into its four quarters.
#[inline(always)]
fn quarters(block: &mut [u64]) -> [&mut [u64]; 4] {
    let q = block.len() / 4;
    let (lo, hi) = block.split_at_mut(2 * q);
    let (a0, a1) = lo.split_at_mut(q);
    let (a2, a3) = hi.split_at_mut(q);
    [a0, a1, a2, a3]
}

/// Forward transform, natural order in, bit-reversed order out.
///
/// # Ranges
/// Input in `[0, 4p)` → output in `[0, p)` when `R`, else `[0, 4p)`.
pub(super) fn forward<const R: bool>(a: &mut [u64], p: u64, t: &Table) {
    let n = a.len();
    let (w, wq) = (&t.w[..], &t.q[..]);
    let mut m = 1;
    if n.trailing_zeros() % 2 == 1 {
        let (xs, ys) = a.split_at_mut(n / 2);
        for (x, y) in xs.iter_mut().zip(ys.iter_mut()) {
            fwd_bfly(x, y, w[1], wq[1], p);
        }
        m = 2;
    }
    // Pairs of stages (m, 2m) with quarter length q = n / (4m) >= 2.
    while 4 * m < n {
        let len = n / m;
        for (i, block) in a.chunks_exact_mut(len).enumerate() {
            let (w0, q0) = (w[m + i], wq[m + i]);
            let (w1, q1) = (w[2 * m + 2 * i], wq[2 * m + 2 * i]);
            let (w2, q2) = (w[2 * m + 2 * i + 1], wq[2 * m + 2 * i + 1]);
            let [a0, a1, a2, a3] = quarters(block);
            for (((x0, x1), x2), x3) in a0.iter_mut().zip(a1).zip(a2).zip(a3) {
                fwd_bfly(x0, x2, w0, q0, p);
                fwd_bfly(x1, x3, w0, q0, p);
                fwd_bfly(x0, x1, w1, q1, p);
                fwd_bfly(x2, x3, w2, q2, p);
            }
        }
        m *= 4;
    }
    // The last pair (m = n/4): blocks of four, q = 1, with the final reduction fused.
    debug_assert_eq!(4 * m, n);
    let ws = w[m..2 * m].iter().zip(&wq[m..2 * m]);
    let ws2 = w[2 * m..].chunks_exact(2).zip(wq[2 * m..].chunks_exact(2));
    for ((block, (&w0, &q0)), (w12, q12)) in a.chunks_exact_mut(4).zip(ws).zip(ws2) {
        let (mut x0, mut x1, mut x2, mut x3) = (block[0], block[1], block[2], block[3]);
        fwd_bfly(&mut x0, &mut x2, w0, q0, p);
        fwd_bfly(&mut x1, &mut x3, w0, q0, p);
        fwd_bfly(&mut x0, &mut x1, w12[0], q12[0], p);
        fwd_bfly(&mut x2, &mut x3, w12[1], q12[1], p);
        if R {
            (x0, x1, x2, x3) = (
                reduce4(x0, p),
                reduce4(x1, p),
                reduce4(x2, p),
                reduce4(x3, p),
            );
        }
        block.copy_from_slice(&[x0, x1, x2, x3]);
    }
}

/// Inverse transform, bit-reversed order in, natural order out, `1/N` included.
///
/// # Ranges
/// Input in `[0, 2p)` → output in `[0, p)` when `R`, else `[0, 2p)`.
pub(super) fn inverse<const R: bool>(a: &mut [u64], p: u64, t: &Table, s: &Scale) {
    let n = a.len();
    let (w, wq) = (&t.w[..], &t.q[..]);
    // The first pair (m = n/2, then n/4): blocks of four (n >= 16, so it is not the last).
    let half = n / 2;
    let ws = w[half..].chunks_exact(2).zip(wq[half..].chunks_exact(2));
    let ws2 = w[half / 2..half].iter().zip(&wq[half / 2..half]);
    let single_last = n.trailing_zeros() % 2 == 1;
    for ((block, (w12, q12)), (&w0, &q0)) in a.chunks_exact_mut(4).zip(ws).zip(ws2) {
        let (mut x0, mut x1, mut x2, mut x3) = (block[0], block[1], block[2], block[3]);
        inv_bfly(&mut x0, &mut x1, w12[0], q12[0], p);
        inv_bfly(&mut x2, &mut x3, w12[1], q12[1], p);
        inv_bfly(&mut x0, &mut x2, w0, q0, p);
        inv_bfly(&mut x1, &mut x3, w0, q0, p);
        block.copy_from_slice(&[x0, x1, x2, x3]);
    }
    // Pairs (m, m/2) with quarter length q = n / (2m) >= 2.
    let mut m = n / 8;
    while m >= 2 {
        let len = 2 * n / m;
        let last = m == 2;
        for (i, block) in a.chunks_exact_mut(len).enumerate() {
            let (w1, q1) = (w[m + 2 * i], wq[m + 2 * i]);
            let (w2, q2) = (w[m + 2 * i + 1], wq[m + 2 * i + 1]);
            let (w0, q0) = (w[m / 2 + i], wq[m / 2 + i]);
            let [a0, a1, a2, a3] = quarters(block);
            if last {
                for (((x0, x1), x2), x3) in a0.iter_mut().zip(a1).zip(a2).zip(a3) {
                    inv_bfly(x0, x1, w1, q1, p);
                    inv_bfly(x2, x3, w2, q2, p);
                    inv_last_bfly::<R>(x0, x2, s, p);
                    inv_last_bfly::<R>(x1, x3, s, p);
                }
            } else {
                for (((x0, x1), x2), x3) in a0.iter_mut().zip(a1).zip(a2).zip(a3) {
                    inv_bfly(x0, x1, w1, q1, p);
                    inv_bfly(x2, x3, w2, q2, p);
                    inv_bfly(x0, x2, w0, q0, p);
                    inv_bfly(x1, x3, w0, q0, p);
                }
            }
        }
        m /= 4;
    }
    if single_last {
        let (xs, ys) = a.split_at_mut(half);
        for (x, y) in xs.iter_mut().zip(ys.iter_mut()) {
            inv_last_bfly::<R>(x, y, s, p);
        }
    }
}
