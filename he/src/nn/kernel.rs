//! The multiply-accumulate kernel of a linear layer on one block of residues.
//!
//! A dense or convolution layer applies small integer weights to ciphertext residues.
//! Each residue `x < 2^61` is split as `x = x_h 2^32 + x_l`; the kernel accumulates
//! `Σ |w| x_l` and `Σ |w| x_h` in two `u64` per column (32 × 32 → 64-bit products, which
//! compilers vectorise), and reduces once per row: `(Σ |w| x_h) 2^32 + Σ |w| x_l` modulo
//! `q`. Positive and negative weights are accumulated apart and subtracted after reduction.

use alloc::vec::Vec;

use heist_core::arith::Modulus;

use super::NnError;

/// One output of a linear map as the kernel takes it: the positive and the negative
/// integer weights kept apart (it accumulates magnitudes unsigned).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CompiledRow {
    /// `(input index, w)` for `w > 0`.
    pub(crate) pos: Vec<(u32, u32)>,
    /// `(input index, |w|)` for `w < 0`.
    pub(crate) neg: Vec<(u32, u32)>,
}

impl CompiledRow {
    /// The row of the integer terms `(input index, w)` of operation `op`; zero weights are
    /// dropped.
    ///
    /// # Errors
    /// [`NnError::TooLarge`] for an index or `|w|` above `u32::MAX`, or `Σ |w| > 2^32`
    /// (the kernel's accumulators hold `Σ |w| · (2^32 - 1)`).
    pub(crate) fn from_terms(
        op: usize,
        terms: impl IntoIterator<Item = (usize, i64)>,
    ) -> Result<Self, NnError> {
        let too_large = |value: u64| NnError::TooLarge { op, value };
        let mut row = Self {
            pos: Vec::new(),
            neg: Vec::new(),
        };
        let mut abs_sum = 0u64;
        for (i, w) in terms {
            let index = u32::try_from(i).map_err(|_| too_large(i as u64))?;
            let mag = u32::try_from(w.unsigned_abs()).map_err(|_| too_large(w.unsigned_abs()))?;
            abs_sum += u64::from(mag);
            if abs_sum > 1 << 32 {
                return Err(too_large(abs_sum));
            }
            match w.signum() {
                1 => row.pos.push((index, mag)),
                -1 => row.neg.push((index, mag)),
                _ => {}
            }
        }
        Ok(row)
    }

    /// Every `(input index, |w|)`.
    pub(crate) fn magnitudes(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        self.pos
            .iter()
            .chain(&self.neg)
            .map(|&(i, w)| (i as usize, w))
    }
}

/// Columns accumulated together (two `u64` accumulators each, kept in L1).
const TILE: usize = 64;

/// The accumulators of one tile: `Σ |w| x_l` and `Σ |w| x_h` per column.
struct Acc {
    lo: [u64; TILE],
    hi: [u64; TILE],
}

/// Sums `|w| x` over `terms` for the columns `c0..c0 + res.len()` of `input` (row-major,
/// `width` columns per input) and writes the sums modulo `q` to `res`.
///
/// # Ranges
/// Every input residue in `[0, 2^61)`, `Σ |w| <= 2^32` (checked when the row is compiled)
/// → each output in `[0, q)`. The accumulators stay below `2^32 (2^32 - 1) < 2^64`.
fn accumulate(
    q: &Modulus,
    terms: &[(u32, u32)],
    input: &[u64],
    width: usize,
    c0: usize,
    acc: &mut Acc,
    res: &mut [u64],
) {
    let Acc { lo, hi } = acc;
    let t = res.len();
    debug_assert!(t <= TILE);
    debug_assert!(terms.iter().map(|&(_, w)| u64::from(w)).sum::<u64>() <= 1 << 32);
    lo.fill(0);
    hi.fill(0);
    for &(i, w) in terms {
        let start = i as usize * width + c0;
        let x = &input[start..start + t];
        let w = u64::from(w);
        for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(x) {
            *l += w * (v & 0xffff_ffff);
            *h += w * (v >> 32);
        }
    }
    for ((r, &l), &h) in res.iter_mut().zip(lo.iter()).zip(hi.iter()) {
        *r = q.reduce_u128((u128::from(h) << 32) + u128::from(l));
    }
}

/// `out[r][c] = bias[r] + Σ_{(i, w) in rows[r]} w · input[i][c] mod q` over one block of
/// `width` columns; `bias` is empty for no bias.
///
/// # Ranges
/// `input` (`input_len × width`) residues in `[0, q)` with `q < 2^61`; `bias` in `[0, q)`
/// → `out` (`rows × width`) in `[0, q)`.
pub(crate) fn linear_block(
    q: &Modulus,
    rows: &[CompiledRow],
    bias: &[u64],
    input: &[u64],
    width: usize,
    out: &mut [u64],
) {
    debug_assert!(q.value() < 1 << 61);
    debug_assert!(input.iter().all(|&x| x < q.value()));
    debug_assert_eq!(out.len(), rows.len() * width);
    debug_assert!(bias.is_empty() || bias.len() == rows.len());
    let mut acc = Acc {
        lo: [0; TILE],
        hi: [0; TILE],
    };
    let mut pos = [0u64; TILE];
    let mut neg = [0u64; TILE];
    let mut c0 = 0;
    while c0 < width {
        let t = TILE.min(width - c0);
        for (r, row) in rows.iter().enumerate() {
            accumulate(q, &row.pos, input, width, c0, &mut acc, &mut pos[..t]);
            accumulate(q, &row.neg, input, width, c0, &mut acc, &mut neg[..t]);
            let b = bias.get(r).copied().unwrap_or(0);
            let dst = &mut out[r * width + c0..r * width + c0 + t];
            for ((o, &p), &m) in dst.iter_mut().zip(&pos[..t]).zip(&neg[..t]) {
                *o = q.add(q.sub(p, m), b);
                debug_assert!(*o < q.value());
            }
        }
        c0 += t;
    }
}
