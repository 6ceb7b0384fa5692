//! The order of work shared by the SIMD kernels: depth first over blocks of at most
//! [`LEAF`] coefficients, so that the stage-by-stage work on each leaf stays in the L1
//! cache.
//!
//! A block longer than [`LEAF`] gets its top stage (forward) or its last stage (inverse)
//! as one pass over the whole block; its two halves are transformed in turn, iteratively,
//! in the order a recursion would take. The kernels supply the passes: these functions
//! only list which block gets which pass, with which twiddle.

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

/// One pass of a depth-first transform over the coefficients `block` of the transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// The radix-2 stage that joins the two halves of `block`, with twiddle index `k`
    /// (`k = 1`: the first forward stage, the last inverse one).
    Join { block: Range<usize>, k: usize },
    /// Every remaining stage of the leaf `block`, the `h`-th block of length `N >> d`
    /// (with `d = 0`, the whole transform).
    Leaf {
        block: Range<usize>,
        d: u32,
        h: usize,
    },
}

/// The leaves of a transform of length `n`: their number and its base-2 logarithm.
#[inline(always)]
fn leaves(n: usize) -> (usize, u32) {
    let leaves = (n / LEAF).max(1);
    (leaves, leaves.trailing_zeros())
}

/// The passes of a forward transform of length `n`, in order: every block's
/// [`Step::Join`] comes before the passes over its halves.
///
/// (The kernels run the passes in a loop of their own rather than in callbacks, so that
/// the passes are compiled with the kernels' CPU features.)
pub(super) fn forward(n: usize) -> impl Iterator<Item = Step> {
    let (leaves, bits) = leaves(n);
    let leaf = n / leaves;
    (0..leaves).flat_map(move |l| {
        // Enter every block whose first leaf is `l`, outermost first, then the leaf.
        (0..=bits).filter_map(move |d| {
            if d == bits {
                return Some(Step::Leaf {
                    block: l * leaf..(l + 1) * leaf,
                    d,
                    h: l,
                });
            }
            let below = bits - d;
            (l & ((1 << below) - 1) == 0).then(|| {
                let (b, len) = (l >> below, n >> d);
                Step::Join {
                    block: b * len..(b + 1) * len,
                    k: (1 << d) + b,
                }
            })
        })
    })
}

/// The passes of an inverse transform of length `n`, in order: the mirror image of
/// [`forward`], every block's [`Step::Join`] after the passes over its halves.
pub(super) fn inverse(n: usize) -> impl Iterator<Item = Step> {
    let (leaves, bits) = leaves(n);
    let leaf = n / leaves;
    (0..leaves).flat_map(move |l| {
        // The leaf, then leave every block whose last leaf is `l`, innermost first.
        (0..=bits).rev().filter_map(move |d| {
            if d == bits {
                return Some(Step::Leaf {
                    block: l * leaf..(l + 1) * leaf,
                    d,
                    h: l,
                });
            }
            let below = bits - d;
            ((l + 1) & ((1 << below) - 1) == 0).then(|| {
                let (b, len) = (l >> below, n >> d);
                Step::Join {
                    block: b * len..(b + 1) * len,
                    k: (1 << d) + b,
                }
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::{Step, LEAF};
    use alloc::vec::Vec;

    /// The passes in the order of the obvious recursion over blocks `[start, start + len)`
    /// with twiddle index `k`, at depth `d`.
    fn recursive(out: &mut Vec<Step>, n: usize, start: usize, k: usize, d: u32, fwd: bool) {
        let len = n >> d;
        if len <= LEAF {
            let h = start / len;
            out.push(Step::Leaf {
                block: start..start + len,
                d,
                h,
            });
            return;
        }
        let join = Step::Join {
            block: start..start + len,
            k,
        };
        if fwd {
            out.push(join.clone());
        }
        recursive(out, n, start, 2 * k, d + 1, fwd);
        recursive(out, n, start + len / 2, 2 * k + 1, d + 1, fwd);
        if !fwd {
            out.push(join);
        }
    }

    #[test]
    fn passes_follow_the_recursion() {
        for log_n in 4..=17 {
            let n = 1usize << log_n;
            for fwd in [true, false] {
                let mut expected = Vec::new();
                recursive(&mut expected, n, 0, 1, 0, fwd);
                let got: Vec<Step> = if fwd {
                    super::forward(n).collect()
                } else {
                    super::inverse(n).collect()
                };
                assert_eq!(got, expected, "n={n} forward={fwd}");
            }
        }
    }
}
