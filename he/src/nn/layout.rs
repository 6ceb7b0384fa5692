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

/// Coefficients per block: a linear layer is one job per (part, limb, block).
const BLOCK: usize = 1024;

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
    pub(crate) fn pair(&self, r: usize) -> (RnsPoly<Eval>, RnsPoly<Eval>) {
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
        let width = self.width;
        let data = exec.map(self.data.len(), |job| {
            let part = job / (self.level * self.blocks);
            let limb = (job / self.blocks) % self.level;
            let b: &[u64] = match bias.get(limb) {
                Some(b) if part == 0 => b,
                _ => &[],
            };
            let mut out = vec![0u64; rows.len() * width];
            linear_block(
                basis.modulus(limb),
                rows,
                b,
                &self.data[job],
                width,
                &mut out,
            );
            out
        });
        Self {
            level: self.level,
            width,
            blocks: self.blocks,
            rows: rows.len(),
            data,
        }
    }
}
