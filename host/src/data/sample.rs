//! Seeded, unbiased sampling of indices (for subsets, member splits and mini-batches).

use rand_core::RngCore;

/// A uniform integer in `0..n` by rejection sampling (no modulo bias).
///
/// # Ranges
/// `n` in `1..=u64::MAX`; output in `0..n`.
///
/// # Panics
/// If `n == 0`.
pub fn uniform_below<R: RngCore>(rng: &mut R, n: u64) -> u64 {
    assert!(n > 0, "uniform_below(0)");
    // The largest multiple of n that fits, minus one: values above it are redrawn.
    let zone = u64::MAX - (u64::MAX - n + 1) % n;
    loop {
        let v = rng.next_u64();
        if v <= zone {
            return v % n;
        }
    }
}

/// Shuffles `items` in place (Fisher-Yates).
pub fn shuffle<T, R: RngCore>(rng: &mut R, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = uniform_below(rng, i as u64 + 1);
        // j <= i < items.len(), so the cast and the swap are in range.
        items.swap(i, j as usize);
    }
}

/// `k` distinct indices drawn uniformly from `0..n`, in increasing order.
///
/// # Panics
/// If `k > n`.
pub fn sample_indices<R: RngCore>(rng: &mut R, n: usize, k: usize) -> Vec<usize> {
    assert!(k <= n, "cannot draw {k} distinct indices from {n}");
    let mut all: Vec<usize> = (0..n).collect();
    // Partial Fisher-Yates: the first k positions receive a uniform k-subset.
    for i in 0..k {
        let j = i + uniform_below(rng, (n - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(k);
    all.sort_unstable();
    all
}
