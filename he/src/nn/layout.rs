//! The blocked layout of a layer's ciphertexts, shared by the CKKS and BFV evaluators.
//!
//! A layer of `rows` ciphertexts `(c_0, c_1)` over `level` primes is stored as one buffer
//! per (part, limb, block of `width` coefficients), each holding `rows × width` residues
//! row-major. A linear layer then maps every input buffer to the output buffer of the same
//! index with [`linear_block`]: the jobs are independent and each touches only its own
//! contiguous data.

use alloc::vec;
use alloc::vec::Vec;

use heist_core::rns::{Eval, RnsBasis, RnsPoly};

use super::kernel::{linear_block, CompiledRow};
use super::Executor;

/// Coefficients per block: a linear layer is one job per (part, limb, block). A block of
/// all rows is contiguous, so the kernel's working set (every input row of one tile)
/// streams through the cache instead of striding by a power of two, which maps the rows
/// onto a few cache sets.
const BLOCK: usize = 64;

/// A ciphertext as `(c_0, c_1)`.
pub(crate) type Pair = (RnsPoly<Eval>, RnsPoly<Eval>);

/// A layer's ciphertexts in blocked layout (see the module documentation).
pub(crate) struct Blocks {
    level: usize,
    width: usize,
    blocks: usize,
    rows: usize,
    /// Buffer `(part · level + limb) · blocks + block`.
    data: Vec<Vec<u64>>,
}

impl Blocks {
    /// Gathers ciphertexts `(c_0, c_1)` of degree `n` over `level` primes each.
    ///
    /// # Ranges
    /// Every polynomial has `level` limbs (checked by the callers).
    pub(crate) fn gather(n: usize, level: usize, cts: &[(&RnsPoly<Eval>, &RnsPoly<Eval>)]) -> Self {
        let width = BLOCK.min(n);
        let blocks = n / width;
        let rows = cts.len();
        let mut data = Vec::with_capacity(2 * level * blocks);
        for part in 0..2 {
            for limb in 0..level {
                for block in 0..blocks {
                    let mut buf = Vec::with_capacity(rows * width);
                    for &(c0, c1) in cts {
                        let poly = if part == 0 { c0 } else { c1 };
                        debug_assert_eq!(poly.limbs(), level);
                        buf.extend_from_slice(&poly.limb(limb)[block * width..(block + 1) * width]);
                    }
                    data.push(buf);
                }
            }
        }
        Self {
            level,
            width,
            blocks,
            rows,
            data,
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

    /// Ciphertext `r` as `(c_0, c_1)`.
    pub(crate) fn pair(&self, r: usize) -> Pair {
        let n = self.width * self.blocks;
        let poly = |part: usize| {
            let mut data = Vec::with_capacity(self.level * n);
            for limb in 0..self.level {
                for block in 0..self.blocks {
                    let buf = &self.data[(part * self.level + limb) * self.blocks + block];
                    data.extend_from_slice(&buf[r * self.width..(r + 1) * self.width]);
                }
            }
            RnsPoly::<Eval>::from_vec(n, self.level, data)
        };
        (poly(0), poly(1))
    }

    /// The linear layer `out_r = Σ w · in_i` on both parts, plus `bias[limb][r]` on `c_0`
    /// (`bias` empty for none), one job per buffer on `exec`.
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
        let shape = Self::empty(self.level, self.width, self.blocks, rows.len());
        shape.fill_linear(basis, rows, bias, exec, |job| {
            self.data[job].chunks_exact(self.width).collect()
        })
    }

    /// As [`Self::linear`] on ciphertexts `(c_0, c_1)` of degree `n` over `level` primes
    /// read in place (no gathered copy of the inputs).
    ///
    /// # Ranges
    /// As [`Self::linear`]; every polynomial has `level` limbs (checked by the callers).
    pub(crate) fn linear_from<E: Executor>(
        n: usize,
        level: usize,
        cts: &[(&RnsPoly<Eval>, &RnsPoly<Eval>)],
        basis: &RnsBasis,
        rows: &[CompiledRow],
        bias: &[Vec<u64>],
        exec: &E,
    ) -> Self {
        let width = BLOCK.min(n);
        let blocks = n / width;
        let shape = Self::empty(level, width, blocks, rows.len());
        shape.fill_linear(basis, rows, bias, exec, |job| {
            let (part, limb, block) = job_of(level, blocks, job);
            cts.iter()
                .map(|&(c0, c1)| {
                    let poly = if part == 0 { c0 } else { c1 };
                    &poly.limb(limb)[block * width..(block + 1) * width]
                })
                .collect()
        })
    }

    /// A layout of `rows` ciphertexts with no data yet.
    fn empty(level: usize, width: usize, blocks: usize, rows: usize) -> Self {
        Self {
            level,
            width,
            blocks,
            rows,
            data: Vec::new(),
        }
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
        let width = self.width;
        let shape = &self;
        let data = exec.map(2 * self.level * self.blocks, |job| {
            let (part, limb, _) = job_of(shape.level, shape.blocks, job);
            let b: &[u64] = match bias.get(limb) {
                Some(b) if part == 0 => b,
                _ => &[],
            };
            let mut out = vec![0u64; rows.len() * width];
            linear_block(basis.modulus(limb), rows, b, &input(job), width, &mut out);
            out
        });
        self.data = data;
        self
    }

    /// Replaces every ciphertext `r` by `f(state, r, c_0, c_1)`. Jobs of `chunk`
    /// consecutive ciphertexts run on `exec`, each with its own `state` from `init`, in
    /// waves of `jobs` jobs: at most one wave of new ciphertexts exists beside the layout.
    ///
    /// # Errors
    /// The first error of `f`; the layout is then partly updated.
    pub(crate) fn map_in_place<E: Executor, S, Err: Send>(
        &mut self,
        (chunk, jobs): (usize, usize),
        exec: &E,
        init: impl Fn() -> S + Sync,
        f: impl Fn(&mut S, usize, RnsPoly<Eval>, RnsPoly<Eval>) -> Result<Pair, Err> + Sync,
    ) -> Result<(), Err> {
        let chunk = chunk.max(1);
        let wave = chunk * jobs.max(1);
        for start in (0..self.rows).step_by(wave) {
            let end = (start + wave).min(self.rows);
            let this = &*self;
            let results = exec.map((end - start).div_ceil(chunk), |j| {
                let mut state = init();
                let first = start + j * chunk;
                (first..(first + chunk).min(end))
                    .map(|r| {
                        let (c0, c1) = this.pair(r);
                        f(&mut state, r, c0, c1)
                    })
                    .collect::<Result<Vec<Pair>, Err>>()
            });
            let mut r = start;
            for job in results {
                for (c0, c1) in job? {
                    self.set_pair(r, &c0, &c1);
                    r += 1;
                }
            }
        }
        Ok(())
    }

    /// Writes ciphertext `r`.
    fn set_pair(&mut self, r: usize, c0: &RnsPoly<Eval>, c1: &RnsPoly<Eval>) {
        let w = self.width;
        for (part, poly) in [c0, c1].into_iter().enumerate() {
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
}

/// `(part, limb, block)` of buffer `job` in a layout of `level` primes and `blocks` blocks.
fn job_of(level: usize, blocks: usize, job: usize) -> (usize, usize, usize) {
    (job / (level * blocks), (job / blocks) % level, job % blocks)
}
