//! The order of work shared by the SIMD kernels: depth first over blocks of at most
//! [`LEAF`] coefficients, so that the stage-by-stage work on each leaf stays in the L1
//! cache.
//!
//! A block longer than [`LEAF`] gets its top stage (forward) or its last stage (inverse)
//! as one pass over the whole block; its two halves are transformed in turn, iteratively,
//! in the order a recursion would take. The kernels supply the passes: these functions
//! only decide which block gets which pass, with which twiddle.

use core::ops::Range;

/// The largest block transformed stage by stage (8 KiB of coefficients).
pub(super) const LEAF: usize = 1024;

/// The twiddle indices of the stage with `m` local blocks in the leaf `h` at depth `d`
/// (the leaf is the `h`-th block of length `N >> d`).
#[inline(always)]
pub(super) fn tw_range(m: usize, d: u32, h: usize) -> Range<usize> {
    let base = (m << d) + h * m;
    base..base + m
}

/// Runs a forward transform depth first.
///
/// `top(block, k)` must apply the radix-2 stage that joins the two halves of `block`
/// with twiddle index `k`; `leaf(block, d, h)` must apply every remaining stage of the
/// `h`-th block of length `N >> d` (with `d = 0`, the whole transform). Both see
/// disjoint, consecutive parts of `a` and are called in the order of the stages.
#[inline(always)]
pub(super) fn forward(
    a: &mut [u64],
    mut top: impl FnMut(&mut [u64], usize),
    mut leaf: impl FnMut(&mut [u64], u32, usize),
) {
    let n = a.len();
    if n <= LEAF {
        return leaf(a, 0, 0);
    }
    let leaves = n / LEAF;
    let bits = leaves.trailing_zeros();
    for l in 0..leaves {
        // Enter every block whose first leaf is `l`, outermost first.
        for d in 0..bits {
            let below = bits - d;
            if l & ((1 << below) - 1) == 0 {
                let b = l >> below;
                let len = n >> d;
                top(&mut a[b * len..(b + 1) * len], (1 << d) + b);
            }
        }
        leaf(&mut a[l * LEAF..(l + 1) * LEAF], bits, l);
    }
}

/// Runs an inverse transform depth first: the mirror image of [`forward`].
///
/// `leaf(block, d, h)` must apply the first stages of the `h`-th block of length
/// `N >> d` (with `d = 0`, the whole transform, last stage included); `top(block, k)`
/// must apply the stage that joins the two halves of `block` with twiddle index `k`
/// (`k = 1`: the last stage of the transform).
#[inline(always)]
pub(super) fn inverse(
    a: &mut [u64],
    mut leaf: impl FnMut(&mut [u64], u32, usize),
    mut top: impl FnMut(&mut [u64], usize),
) {
    let n = a.len();
    if n <= LEAF {
        return leaf(a, 0, 0);
    }
    let leaves = n / LEAF;
    let bits = leaves.trailing_zeros();
    for l in 0..leaves {
        leaf(&mut a[l * LEAF..(l + 1) * LEAF], bits, l);
        // Leave every block whose last leaf is `l`, innermost first.
        for d in (0..bits).rev() {
            let below = bits - d;
            if (l + 1) & ((1 << below) - 1) == 0 {
                let b = l >> below;
                let len = n >> d;
                top(&mut a[b * len..(b + 1) * len], (1 << d) + b);
            }
        }
    }
}
