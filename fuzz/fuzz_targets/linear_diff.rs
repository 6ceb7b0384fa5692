//! Differential fuzzing of the linear-layer kernel of the encrypted networks: for a
//! modulus, a block width, weights and residues chosen by the input (the extremes of the
//! documented ranges included), every kernel this CPU runs (the dispatched one, the
//! generic loops, each SIMD build, and the accumulating mode) must give the schoolbook
//! `bias + Σ w·x mod q`.
#![no_main]

use heist_core::primes::ntt_primes;
use heist_he::nn::{linear_kernels, linear_schoolbook};
use libfuzzer_sys::fuzz_target;

/// Modulus sizes: small, the IFMA bound, and the largest the kernel takes (`q < 2^61`).
const BITS: [u32; 4] = [20, 50, 60, 61];

/// Reads bytes cyclically from the input (zeros when it is empty).
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let b = self
            .data
            .get(self.at % self.data.len().max(1))
            .copied()
            .unwrap_or(0);
        self.at += 1;
        b
    }

    fn word(&mut self) -> u64 {
        u64::from_le_bytes(core::array::from_fn(|_| self.byte()))
    }

    /// Below `bound`: an extreme (0, `bound - 1`) one time in four, else a reduced word.
    fn below(&mut self, bound: u64) -> u64 {
        match self.byte() % 8 {
            0 => 0,
            1 => bound - 1,
            _ => self.word() % bound,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = Bytes { data, at: 0 };
    let bits = BITS[usize::from(bytes.byte()) % BITS.len()];
    let Ok(primes) = ntt_primes(bits, 32, 1, &[]) else {
        return;
    };
    let q = primes[0];
    let width = 16 * (1 + usize::from(bytes.byte() % 8)); // 16 … 128: both tile sizes
    let inputs = 1 + usize::from(bytes.byte() % 12);
    let outputs = 1 + usize::from(bytes.byte() % 4);
    // |w| < 2^32 and Σ |w| ≤ 2^32 per row: each weight at most 2^32 / inputs (and below
    // 2^32), its sign from a byte.
    let cap = ((1u64 << 32) / inputs as u64).min(u64::from(u32::MAX));
    let terms: Vec<Vec<(usize, i64)>> = (0..outputs)
        .map(|_| {
            (0..inputs)
                .map(|i| {
                    let magnitude = bytes.below(cap + 1) as i64;
                    (
                        i,
                        if bytes.byte() & 1 == 0 {
                            magnitude
                        } else {
                            -magnitude
                        },
                    )
                })
                .collect()
        })
        .collect();
    let bias: Vec<u64> = if bytes.byte() & 1 == 0 {
        Vec::new()
    } else {
        (0..outputs).map(|_| bytes.below(q)).collect()
    };
    let input: Vec<u64> = (0..inputs * width).map(|_| bytes.below(q)).collect();
    let results = linear_kernels(q, &terms, &bias, &input, width)
        .expect("the generated inputs are within the kernel's ranges");
    let want = linear_schoolbook(q, &terms, &bias, &input, width);
    for (name, out) in &results {
        if let Some(k) = (0..want.len()).find(|&k| out[k] != want[k]) {
            panic!(
                "{name}: q {q}, width {width}, row {}, column {}: {} instead of {}",
                k / width,
                k % width,
                out[k],
                want[k]
            );
        }
    }
});
