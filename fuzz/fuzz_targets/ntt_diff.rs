//! Differential fuzzing of the NTT kernels: for a ring degree, an NTT prime and
//! coefficients chosen by the input (lazy-range extremes included), every kernel this CPU
//! runs must agree with the portable one, each transform must keep its documented output
//! range, the inverse must undo the forward, and the NTT product must equal the schoolbook
//! negacyclic product.
#![no_main]

use heist_core::ntt::{Kernel, NttPlan};
use heist_core::primes::ntt_primes;
use libfuzzer_sys::fuzz_target;

/// Prime sizes: the IFMA bound (50), just above it, and the largest the plans take.
const BITS: [u32; 6] = [20, 36, 50, 51, 60, 62];
/// Every SIMD kernel; those this CPU lacks are skipped by `with_kernel`.
const KERNELS: [Kernel; 3] = [Kernel::Avx512Ifma, Kernel::Avx512, Kernel::Avx2];

/// Coefficient `i` from the input: a byte picks an extreme (0, `bound - 1`) or a value
/// reduced below `bound`.
fn coefficients(data: &[u8], n: usize, bound: u64) -> Vec<u64> {
    (0..n)
        .map(|i| {
            let at = |k: usize| {
                data.get((9 * i + k) % data.len().max(1))
                    .copied()
                    .unwrap_or(0)
            };
            let word = u64::from_le_bytes(core::array::from_fn(|k| at(k + 1)));
            match at(0) % 8 {
                0 => 0,
                1 => bound - 1,
                _ => word % bound,
            }
        })
        .collect()
}

/// `a · b mod (X^n + 1, p)`, the slow obvious way.
fn schoolbook(a: &[u64], b: &[u64], p: u64) -> Vec<u64> {
    let n = a.len();
    let mut out = vec![0u64; n];
    for (i, &x) in a.iter().enumerate() {
        for (j, &y) in b.iter().enumerate() {
            let prod = (u128::from(x) * u128::from(y) % u128::from(p)) as u64;
            let k = (i + j) % n;
            out[k] = if i + j < n {
                (out[k] + prod) % p
            } else {
                (out[k] + p - prod) % p
            };
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [log_n, bits, rest @ ..] = data else {
        return;
    };
    let n = 1usize << (4 + log_n % 7); // 16 … 1024
    let bits = BITS[usize::from(*bits) % BITS.len()];
    let Ok(primes) = ntt_primes(bits, 2 * n as u64, 1, &[]) else {
        return;
    };
    let p = primes[0];
    let portable = NttPlan::with_kernel(n, p, Kernel::Portable).expect("portable plan");

    // Forward: input in [0, 4p) → [0, p) (lazy: [0, 4p)).
    let input = coefficients(rest, n, 4 * p);
    let mut expected = input.clone();
    portable.forward(&mut expected);
    assert!(
        expected.iter().all(|&x| x < p),
        "portable forward left [0, p)"
    );
    let mut lazy = input.clone();
    portable.forward_lazy(&mut lazy);
    assert!(
        lazy.iter().all(|&x| x < 4 * p),
        "portable lazy forward left [0, 4p)"
    );
    assert!(lazy.iter().zip(&expected).all(|(&x, &e)| x % p == e));

    // Inverse: input in [0, 2p) → [0, p); the round trip gives the input mod p.
    let mut back = expected.clone();
    portable.inverse(&mut back);
    assert!(
        back.iter().zip(&input).all(|(&x, &i)| x == i % p),
        "inverse ∘ forward ≠ id"
    );
    let spectrum = coefficients(rest, n, 2 * p);
    let mut inv_expected = spectrum.clone();
    portable.inverse(&mut inv_expected);
    assert!(inv_expected.iter().all(|&x| x < p));

    for kernel in KERNELS {
        let Ok(plan) = NttPlan::with_kernel(n, p, kernel) else {
            continue;
        };
        let mut got = input.clone();
        plan.forward(&mut got);
        assert_eq!(got, expected, "{kernel:?} forward, n {n}, p {p}");
        let mut got = input.clone();
        plan.forward_lazy(&mut got);
        assert!(got
            .iter()
            .zip(&expected)
            .all(|(&x, &e)| x < 4 * p && x % p == e));
        let mut got = spectrum.clone();
        plan.inverse(&mut got);
        assert_eq!(got, inv_expected, "{kernel:?} inverse, n {n}, p {p}");
        let mut got = spectrum.clone();
        plan.inverse_lazy(&mut got);
        assert!(got
            .iter()
            .zip(&inv_expected)
            .all(|(&x, &e)| x < 2 * p && x % p == e));
    }

    // The NTT product against the schoolbook one (small rings only: it is quadratic).
    if n <= 256 {
        let a: Vec<u64> = input.iter().map(|&x| x % p).collect();
        let b: Vec<u64> = spectrum.iter().map(|&x| x % p).collect();
        assert_eq!(portable.negacyclic_mul(&a, &b), schoolbook(&a, &b, p));
    }
});
