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

    /// The terms whose input index lies in `cols`, re-indexed from `cols.start`.
    pub(crate) fn restrict(&self, cols: core::ops::Range<usize>) -> Self {
        let keep = |terms: &[(u32, u32)]| {
            terms
                .iter()
                .filter(|&&(i, _)| cols.contains(&(i as usize)))
                .map(|&(i, w)| (i - cols.start as u32, w))
                .collect()
        };
        Self {
            pos: keep(&self.pos),
            neg: keep(&self.neg),
        }
    }

    /// Every `(input index, |w|)`.
    pub(crate) fn magnitudes(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        self.pos
            .iter()
            .chain(&self.neg)
            .map(|&(i, w)| (i as usize, w))
    }
}

#[cfg(target_arch = "x86_64")]
cpufeatures::new!(cpu_avx512, "avx512f");
#[cfg(target_arch = "x86_64")]
cpufeatures::new!(cpu_avx2, "avx2");

/// Columns accumulated together (two `u64` accumulators each, kept in registers).
const TILE: usize = 64;
/// The tile for blocks narrower than [`TILE`]: every block width (a power of two of at
/// least 16, or a multiple of [`TILE`]) is a multiple of it.
const MIN_TILE: usize = 16;

/// Sums `|w| x` over `terms` for the columns `c0..c0 + T` of the `input` rows and writes
/// the sums modulo `q` to `res`.
///
/// # Ranges
/// Every input residue in `[0, 2^61)`, `Σ |w| <= 2^32` (checked when the row is compiled)
/// → each output in `[0, q)`. The accumulators stay below `2^32 (2^32 - 1) < 2^64`.
#[inline(always)]
fn accumulate<const T: usize>(
    q: &Modulus,
    terms: &[(u32, u32)],
    input: &[&[u64]],
    c0: usize,
    res: &mut [u64; T],
) {
    debug_assert!(terms.iter().map(|&(_, w)| u64::from(w)).sum::<u64>() <= 1 << 32);
    let mut lo = [0u64; T];
    let mut hi = [0u64; T];
    for &(i, w) in terms {
        let x = &input[i as usize][c0..c0 + T];
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

/// [`linear_block`] over tiles of `T` columns (`width` a multiple of `T`).
#[inline(always)]
fn tiles<const T: usize>(
    q: &Modulus,
    rows: &[CompiledRow],
    bias: &[u64],
    input: &[&[u64]],
    width: usize,
    out: &mut [u64],
    add: bool,
) {
    debug_assert_eq!(width % T, 0);
    let mut pos = [0u64; T];
    let mut neg = [0u64; T];
    for c0 in (0..width).step_by(T) {
        for (r, row) in rows.iter().enumerate() {
            accumulate(q, &row.pos, input, c0, &mut pos);
            accumulate(q, &row.neg, input, c0, &mut neg);
            let b = bias.get(r).copied().unwrap_or(0);
            let dst = &mut out[r * width + c0..r * width + c0 + T];
            for ((o, &p), &m) in dst.iter_mut().zip(&pos).zip(&neg) {
                let v = q.add(q.sub(p, m), b);
                *o = if add { q.add(*o, v) } else { v };
                debug_assert!(*o < q.value());
            }
        }
    }
}

/// `out[r][c] = bias[r] + Σ_{(i, w) in rows[r]} w · input[i][c] mod q` over one block of
/// `width` columns (every input row a slice of `width` residues); `bias` is empty for no
/// bias. With `add`, the result is added to `out` instead (modulo `q`).
///
/// The loops are plain Rust; on x86-64 they are compiled a second and third time with
/// AVX-512F and AVX2 enabled (the 32 × 32 → 64-bit products vectorise to 8 and 4 lanes)
/// and the widest the CPU supports is chosen at run time. All three compute the same
/// integers.
///
/// # Ranges
/// `input` rows of `width` residues in `[0, q)` with `q < 2^61`; `bias` (and `out`, with
/// `add`) in `[0, q)` → `out` (`rows × width`) in `[0, q)`.
pub(crate) fn linear_block(
    q: &Modulus,
    rows: &[CompiledRow],
    bias: &[u64],
    input: &[&[u64]],
    width: usize,
    out: &mut [u64],
    add: bool,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if cpu_avx512::get() {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            unsafe { linear_block_avx512(q, rows, bias, input, width, out, add) };
            return;
        }
        if cpu_avx2::get() {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { linear_block_avx2(q, rows, bias, input, width, out, add) };
            return;
        }
    }
    linear_block_generic(q, rows, bias, input, width, out, add);
}

/// Defines `$name`: [`linear_block_generic`] compiled with the target feature `$feature`.
macro_rules! compiled_with {
    ($name:ident, $feature:literal) => {
        #[doc = concat!("[`linear_block`] compiled with `", $feature, "`.")]
        ///
        /// # Safety
        /// The CPU must support the feature.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feature)]
        unsafe fn $name(
            q: &Modulus,
            rows: &[CompiledRow],
            bias: &[u64],
            input: &[&[u64]],
            width: usize,
            out: &mut [u64],
            add: bool,
        ) {
            linear_block_generic(q, rows, bias, input, width, out, add);
        }
    };
}

compiled_with!(linear_block_avx512, "avx512f");
compiled_with!(linear_block_avx2, "avx2");

/// [`linear_block`] for any target: the loops every variant compiles.
#[inline(always)]
pub(crate) fn linear_block_generic(
    q: &Modulus,
    rows: &[CompiledRow],
    bias: &[u64],
    input: &[&[u64]],
    width: usize,
    out: &mut [u64],
    add: bool,
) {
    debug_assert!(q.value() < 1 << 61);
    debug_assert!(input
        .iter()
        .all(|row| row.len() == width && row.iter().all(|&x| x < q.value())));
    debug_assert_eq!(out.len(), rows.len() * width);
    debug_assert!(bias.is_empty() || bias.len() == rows.len());
    debug_assert!(width.is_multiple_of(MIN_TILE));
    debug_assert!(!add || out.iter().all(|&x| x < q.value()));
    if width.is_multiple_of(TILE) {
        tiles::<TILE>(q, rows, bias, input, width, out, add);
    } else {
        tiles::<MIN_TILE>(q, rows, bias, input, width, out, add);
    }
}

/// `out[r][c] = bias[r] + Σ_{(i, w) in terms[r]} w · input[i][c] mod q` for every input
/// row of `width` residues (`input` row after row), by every kernel this CPU runs, named:
/// the one the layers dispatch to (`dispatched`), then `generic`, then each SIMD build the CPU
/// supports, and last the dispatched one without bias adding onto rows that hold the bias
/// (`dispatched, add`). Differential testing compares them with each other and with a
/// schoolbook sum.
///
/// Returns `None` for inputs outside the kernel's documented ranges: `q` not below `2^61`
/// (or not a valid modulus), `width` not a positive multiple of 16, a row of `Σ |w|` above
/// `2^32`, an index beyond the input rows, a residue or bias not below `q`, or a bias of
/// another length than `terms` (empty means no bias).
#[cfg(feature = "fuzzing")]
#[allow(clippy::type_complexity)]
pub fn linear_kernels(
    q: u64,
    terms: &[Vec<(usize, i64)>],
    bias: &[u64],
    input: &[u64],
    width: usize,
) -> Option<Vec<(&'static str, Vec<u64>)>> {
    let modulus = Modulus::new(q).ok()?;
    let rows_in = input.len() / width.max(1);
    let valid = q < 1 << 61
        && width > 0
        && width.is_multiple_of(MIN_TILE)
        && input.len() == rows_in * width
        && input.iter().chain(bias).all(|&x| x < q)
        && (bias.is_empty() || bias.len() == terms.len())
        && terms.iter().flatten().all(|&(i, _)| i < rows_in);
    if !valid {
        return None;
    }
    let rows = terms
        .iter()
        .map(|t| CompiledRow::from_terms(0, t.iter().copied()).ok())
        .collect::<Option<Vec<_>>>()?;
    let slices: Vec<&[u64]> = input.chunks_exact(width).collect();
    let run = |kernel: &dyn Fn(&mut [u64])| {
        let mut out = alloc::vec![0u64; rows.len() * width];
        kernel(&mut out);
        out
    };
    let mut results = alloc::vec![
        (
            "dispatched",
            run(&|out| linear_block(&modulus, &rows, bias, &slices, width, out, false)),
        ),
        (
            "generic",
            run(&|out| linear_block_generic(&modulus, &rows, bias, &slices, width, out, false)),
        ),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        if cpu_avx512::get() {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            let out = run(&|out| unsafe {
                linear_block_avx512(&modulus, &rows, bias, &slices, width, out, false);
            });
            results.push(("avx512", out));
        }
        if cpu_avx2::get() {
            // SAFETY: the CPU supports AVX2 (checked just above).
            let out = run(&|out| unsafe {
                linear_block_avx2(&modulus, &rows, bias, &slices, width, out, false);
            });
            results.push(("avx2", out));
        }
    }
    let added = run(&|out| {
        for (r, row) in out.chunks_exact_mut(width).enumerate() {
            row.fill(bias.get(r).copied().unwrap_or(0));
        }
        linear_block(&modulus, &rows, &[], &slices, width, out, true);
    });
    results.push(("dispatched, add", added));
    Some(results)
}

/// `out[r][c] = bias[r] + Σ_{(i, w) in terms[r]} w · input[i][c] mod q` in `i128`, the
/// slow obvious way the kernels are checked against (`bias` empty: no bias; `input` row
/// after row, each of `width` residues).
#[cfg(any(test, feature = "fuzzing"))]
#[cfg_attr(
    not(feature = "fuzzing"),
    allow(unreachable_pub, reason = "public for the fuzz crate only")
)]
pub fn linear_schoolbook(
    q: u64,
    terms: &[Vec<(usize, i64)>],
    bias: &[u64],
    input: &[u64],
    width: usize,
) -> Vec<u64> {
    let p = i128::from(q);
    let mut out = Vec::with_capacity(terms.len() * width);
    for (r, row) in terms.iter().enumerate() {
        let b = i128::from(bias.get(r).copied().unwrap_or(0));
        for c in 0..width {
            let sum: i128 = row
                .iter()
                .map(|&(i, w)| i128::from(w) * i128::from(input[i * width + c]))
                .sum();
            out.push((sum + b).rem_euclid(p) as u64);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use heist_core::arith::Modulus;
    use rand_chacha::rand_core::{RngCore, SeedableRng};

    use super::{linear_block, linear_block_generic, linear_schoolbook, CompiledRow};

    /// The dispatched kernel (the SIMD build on a CPU that has it) and the generic one
    /// against `Σ w x + b mod q` in `i128`, at the largest residues and weights allowed.
    #[test]
    fn kernels_match_schoolbook() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        for &(bits, width, inputs, outputs) in &[
            (61u32, 1024usize, 37usize, 5usize),
            (50, 80, 9, 3),
            (30, 16, 1, 1),
            (40, 48, 3, 2),
        ] {
            let q =
                Modulus::new(heist_core::primes::ntt_primes(bits, 32, 1, &[]).unwrap()[0]).unwrap();
            let mut input: Vec<u64> = (0..inputs * width)
                .map(|_| rng.next_u64() % q.value())
                .collect();
            input[0] = q.value() - 1;
            let terms: Vec<Vec<(usize, i64)>> = (0..outputs)
                .map(|_| {
                    (0..inputs)
                        .map(|i| (i, i64::from(rng.next_u32() >> 8) - (1 << 23)))
                        .collect()
                })
                .collect();
            let rows: Vec<CompiledRow> = terms
                .iter()
                .map(|t| CompiledRow::from_terms(0, t.iter().copied()).unwrap())
                .collect();
            let bias: Vec<u64> = (0..outputs).map(|_| rng.next_u64() % q.value()).collect();
            let mut fast = vec![0u64; outputs * width];
            let mut generic = vec![0u64; outputs * width];
            let slices: Vec<&[u64]> = input.chunks_exact(width).collect();
            linear_block(&q, &rows, &bias, &slices, width, &mut fast, false);
            // Accumulating onto a first pass with no bias gives the same sums plus the bias.
            linear_block_generic(&q, &rows, &[], &slices, width, &mut generic, false);
            linear_block_generic(&q, &rows, &bias, &slices, width, &mut generic, true);
            let want = linear_schoolbook(q.value(), &terms, &bias, &input, width);
            let sums = linear_schoolbook(q.value(), &terms, &[], &input, width);
            for (r, &b) in bias.iter().enumerate() {
                for c in 0..width {
                    let k = r * width + c;
                    let twice = q.add(q.add(sums[k], sums[k]), b);
                    assert_eq!(fast[k], want[k], "bits {bits} row {r} col {c}");
                    assert_eq!(generic[k], twice, "bits {bits} row {r} col {c}");
                }
            }
        }
    }
}
