//! The blocked layout of a layer's ciphertexts, shared by the CKKS and BFV evaluators.
//!
//! A layer of `rows` ciphertexts of `parts` polynomials (2, or 3 for a BFV product not
//! yet relinearised) over `level` primes is stored as one buffer per (part, limb, block
//! of `width` coefficients), each holding `rows × width` residues row-major. A linear
//! layer then maps every input buffer to the output buffer of the same index with
//! [`linear_block`]: the jobs are independent and each touches only its own contiguous
//! data.

use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use heist_core::rns::{Eval, RnsBasis, RnsPoly};

use super::kernel::{linear_block, CompiledRow};
use super::Executor;

/// Coefficients per block: a linear layer is one job per (part, limb, block). A block of
/// all rows is contiguous, so the kernel's working set (every input row of one tile)
/// streams through the cache instead of striding by a power of two, which maps the rows
/// onto a few cache sets.
const BLOCK: usize = 64;

/// A layer's ciphertexts in blocked layout (see the module documentation).
pub(crate) struct Blocks {
    parts: usize,
    level: usize,
    width: usize,
    blocks: usize,
    rows: usize,
    /// Buffer `(part · level + limb) · blocks + block`.
    data: Vec<Vec<u64>>,
}

impl Blocks {
    /// Gathers ciphertexts of `P` polynomials of degree `n` over `level` primes each, one
    /// job per buffer on `exec`.
    ///
    /// # Ranges
    /// Every polynomial has `level` limbs (checked by the callers).
    pub(crate) fn gather<E: Executor, const P: usize>(
        n: usize,
        level: usize,
        cts: &[[&RnsPoly<Eval>; P]],
        exec: &E,
    ) -> Self {
        let mut out = Self::empty(P, level, n, cts.len());
        let (width, blocks) = (out.width, out.blocks);
        out.data = exec.map(P * level * blocks, |job| {
            let (part, limb, block) = job_of(level, blocks, job);
            let mut buf = Vec::with_capacity(cts.len() * width);
            for ct in cts {
                debug_assert_eq!(ct[part].limbs(), level);
                buf.extend_from_slice(&ct[part].limb(limb)[block * width..(block + 1) * width]);
            }
            buf
        });
        out
    }

    /// A layout of `rows` ciphertexts with no data yet.
    fn empty(parts: usize, level: usize, n: usize, rows: usize) -> Self {
        let width = BLOCK.min(n);
        Self {
            parts,
            level,
            width,
            blocks: n / width,
            rows,
            data: Vec::new(),
        }
    }

    /// Number of ciphertexts.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Number of primes.
    pub(crate) fn level(&self) -> usize {
        self.level
    }

    /// Part `part` of ciphertext `r`.
    fn poly(&self, r: usize, part: usize) -> RnsPoly<Eval> {
        let n = self.width * self.blocks;
        let mut data = Vec::with_capacity(self.level * n);
        for limb in 0..self.level {
            for block in 0..self.blocks {
                let buf = &self.data[(part * self.level + limb) * self.blocks + block];
                data.extend_from_slice(&buf[r * self.width..(r + 1) * self.width]);
            }
        }
        RnsPoly::<Eval>::from_vec(n, self.level, data)
    }

    /// Ciphertext `r` of a two-part layout as `(c_0, c_1)`.
    pub(crate) fn pair(&self, r: usize) -> (RnsPoly<Eval>, RnsPoly<Eval>) {
        debug_assert_eq!(self.parts, 2);
        (self.poly(r, 0), self.poly(r, 1))
    }

    /// Ciphertext `r` of a three-part layout.
    pub(crate) fn triple(&self, r: usize) -> [RnsPoly<Eval>; 3] {
        debug_assert_eq!(self.parts, 3);
        [self.poly(r, 0), self.poly(r, 1), self.poly(r, 2)]
    }

    /// The ciphertexts `rows` as a layout of their own.
    pub(crate) fn select(&self, rows: Range<usize>) -> Self {
        let w = self.width;
        Self {
            rows: rows.len(),
            data: self
                .data
                .iter()
                .map(|buf| buf[rows.start * w..rows.end * w].to_vec())
                .collect(),
            ..*self
        }
    }

    /// Writes ciphertext `r`.
    fn set(&mut self, r: usize, polys: &[RnsPoly<Eval>]) {
        debug_assert_eq!(polys.len(), self.parts);
        let w = self.width;
        for (part, poly) in polys.iter().enumerate() {
            debug_assert_eq!(poly.limbs(), self.level);
            for limb in 0..self.level {
                for block in 0..self.blocks {
                    let buf = &mut self.data[(part * self.level + limb) * self.blocks + block];
                    buf[r * w..(r + 1) * w]
                        .copy_from_slice(&poly.limb(limb)[block * w..(block + 1) * w]);
                }
            }
        }
    }

    /// The linear layer `out_r = Σ w · in_i` on every part, plus `bias[limb][r]` on the
    /// first (`bias` empty for none), one job per buffer on `exec`.
    ///
    /// # Ranges
    /// Residues in `[0, q)` with every `q < 2^61`; `bias[limb]` has one residue in
    /// `[0, q_limb)` per row → residues in `[0, q)`.
    pub(crate) fn linear<E: Executor>(
        &self,
        basis: &RnsBasis,
        rows: &[CompiledRow],
        bias: &[Vec<u64>],
        exec: &E,
    ) -> Self {
        let n = self.width * self.blocks;
        let out = Self::empty(self.parts, self.level, n, rows.len());
        out.fill_linear(basis, rows, bias, exec, |job| {
            self.data[job].chunks_exact(self.width).collect()
        })
    }

    /// As [`Self::linear`] on ciphertexts of `P` polynomials of degree `n` over `level`
    /// primes, read in place (no gathered copy of the inputs).
    ///
    /// # Ranges
    /// As [`Self::linear`]; every polynomial has `level` limbs (checked by the callers).
    pub(crate) fn linear_from<E: Executor, const P: usize>(
        n: usize,
        level: usize,
        cts: &[[&RnsPoly<Eval>; P]],
        basis: &RnsBasis,
        rows: &[CompiledRow],
        bias: &[Vec<u64>],
        exec: &E,
    ) -> Self {
        let out = Self::empty(P, level, n, rows.len());
        let (width, blocks) = (out.width, out.blocks);
        out.fill_linear(basis, rows, bias, exec, |job| {
            let (part, limb, block) = job_of(level, blocks, job);
            cts.iter()
                .map(|ct| &ct[part].limb(limb)[block * width..(block + 1) * width])
                .collect()
        })
    }

    /// Fills this layout's buffers with the linear layer over the input rows of each
    /// buffer, `input(job)`.
    fn fill_linear<'a, E: Executor>(
        mut self,
        basis: &RnsBasis,
        rows: &[CompiledRow],
        bias: &[Vec<u64>],
        exec: &E,
        input: impl Fn(usize) -> Vec<&'a [u64]> + Sync,
    ) -> Self {
        let (width, level, blocks) = (self.width, self.level, self.blocks);
        self.data = exec.map(self.parts * level * blocks, |job| {
            let (part, limb, _) = job_of(level, blocks, job);
            let b: &[u64] = match bias.get(limb) {
                Some(b) if part == 0 => b,
                _ => &[],
            };
            let mut out = vec![0u64; rows.len() * width];
            linear_block(
                basis.modulus(limb),
                rows,
                b,
                &input(job),
                width,
                &mut out,
                false,
            );
            out
        });
        self
    }

    /// `self += ` the linear layer of `input` (as [`Self::linear`]), in place.
    ///
    /// # Ranges
    /// As [`Self::linear`], and `self`'s residues in `[0, q)`.
    pub(crate) fn add_linear<E: Executor>(
        &mut self,
        input: &Self,
        basis: &RnsBasis,
        rows: &[CompiledRow],
        bias: &[Vec<u64>],
        exec: &E,
    ) {
        debug_assert!(
            (self.parts, self.level, self.blocks, self.rows)
                == (input.parts, input.level, input.blocks, rows.len())
        );
        let (width, level, blocks) = (self.width, self.level, self.blocks);
        exec.for_each_mut(&mut self.data, |job, out| {
            let (part, limb, _) = job_of(level, blocks, job);
            let b: &[u64] = match bias.get(limb) {
                Some(b) if part == 0 => b,
                _ => &[],
            };
            let rows_in: Vec<&[u64]> = input.data[job].chunks_exact(width).collect();
            linear_block(basis.modulus(limb), rows, b, &rows_in, width, out, true);
        });
    }

    /// `f(state, self, r)` for every `r` in `rows`, in jobs of `chunk` consecutive rows run
    /// on `exec`, each with its own `state` from `init`; results in order.
    ///
    /// # Errors
    /// The first error of `f`.
    pub(crate) fn map_rows<E: Executor, S, T: Send, Err: Send>(
        &self,
        rows: Range<usize>,
        chunk: usize,
        exec: &E,
        init: impl Fn() -> S + Sync,
        f: impl Fn(&mut S, &Self, usize) -> Result<T, Err> + Sync,
    ) -> Result<Vec<T>, Err> {
        let chunk = chunk.max(1);
        let jobs = exec.map(rows.len().div_ceil(chunk), |j| {
            let mut state = init();
            let first = rows.start + j * chunk;
            (first..(first + chunk).min(rows.end))
                .map(|r| f(&mut state, self, r))
                .collect::<Result<Vec<T>, Err>>()
        });
        let mut out = Vec::with_capacity(rows.len());
        for job in jobs {
            out.extend(job?);
        }
        Ok(out)
    }

    /// Replaces every ciphertext `r` by `f(state, self, r)` (as many parts), in
    /// waves of `wave` ciphertexts run by [`Self::map_rows`]: at most one wave of new
    /// ciphertexts exists beside the layout.
    ///
    /// # Errors
    /// The first error of `f`; the layout is then partly updated.
    pub(crate) fn map_in_place<E: Executor, S, Err: Send>(
        &mut self,
        (chunk, wave): (usize, usize),
        exec: &E,
        init: impl Fn() -> S + Sync,
        f: impl Fn(&mut S, &Self, usize) -> Result<Vec<RnsPoly<Eval>>, Err> + Sync,
    ) -> Result<(), Err> {
        for start in (0..self.rows).step_by(wave.max(1)) {
            let end = (start + wave.max(1)).min(self.rows);
            let new = self.map_rows(start..end, chunk, exec, &init, &f)?;
            for (r, polys) in (start..end).zip(new) {
                self.set(r, &polys);
            }
        }
        Ok(())
    }
}

/// `(part, limb, block)` of buffer `job` in a layout of `level` primes and `blocks` blocks.
fn job_of(level: usize, blocks: usize, job: usize) -> (usize, usize, usize) {
    (job / (level * blocks), (job / blocks) % level, job % blocks)
}
