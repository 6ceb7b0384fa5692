//! The negacyclic NTT against slow oracles: schoolbook products, direct evaluation, and
//! every invalid plan rejected with the right error.

use heist_core::ntt::{
    bit_reverse, Kernel, NttError, NttPath, NttPlan, IFMA_MAX_MODULUS_BITS, MAX_N, MIN_N,
};
use heist_core::primes::{ntt_primes, primes_below};
use heist_tests::{eval_poly, schoolbook_negacyclic, seeded_rng};
use proptest::prelude::*;
use rand_core::RngCore;

/// Primes for length `n`: just under 2^62, 2^50, 2^31 and a small one.
fn primes_for(n: usize) -> Vec<u64> {
    let order = 2 * n as u64;
    let mut out = Vec::new();
    for bits in [62u32, 50, 31] {
        out.push(primes_below(1 << bits, order, 1, &[]).unwrap()[0]);
    }
    out.push(primes_above_small(order));
    out
}

fn primes_above_small(order: u64) -> u64 {
    heist_core::primes::primes_above(order, order, 1, &[]).unwrap()[0]
}

fn paths() -> [NttPath; 2] {
    [NttPath::Auto, NttPath::Portable]
}

fn random_poly(rng: &mut impl RngCore, n: usize, p: u64) -> Vec<u64> {
    (0..n).map(|_| rng.next_u64() % p).collect()
}

fn bitrev(x: usize, bits: u32) -> usize {
    x.reverse_bits() >> (usize::BITS - bits)
}

#[test]
fn forward_is_evaluation_at_odd_powers_in_bit_reversed_order() {
    let mut rng = seeded_rng("ntt-eval", 1);
    for n in [16usize, 32, 256] {
        for p in primes_for(n) {
            for path in paths() {
                let plan = NttPlan::with_path(n, p, path).unwrap();
                let a = random_poly(&mut rng, n, p);
                let mut f = a.clone();
                plan.forward(&mut f);
                let psi = plan.root();
                let bits = n.trailing_zeros();
                for (j, &fj) in f.iter().enumerate() {
                    let e = 2 * bitrev(j, bits) as u64 + 1;
                    let point = plan.modulus().pow(psi, e);
                    assert_eq!(fj, eval_poly(&a, point, p), "n={n} p={p} j={j} {path:?}");
                }
            }
        }
    }
}

#[test]
fn known_answer_n16() {
    // p = 97 = 6·16 + 1... is not ≡ 1 mod 32, so use 97's neighbour 193 = 6·32 + 1.
    let p = 193;
    let plan = NttPlan::new(16, p).unwrap();
    // Smallest generator candidate: 5 has order 192 mod 193; 5^(192/32) = 5^6 = 15625 mod 193.
    assert_eq!(plan.root(), 15625 % 193);
    // a = 1 + 2X: â[j] = 1 + 2ψ^(2 bitrev(j) + 1). j = 0 → 1 + 2ψ.
    let mut a = vec![0u64; 16];
    a[0] = 1;
    a[1] = 2;
    plan.forward(&mut a);
    let psi = plan.root();
    assert_eq!(a[0], (1 + 2 * psi) % p);
    // j = 1 → bitrev = 8 → ψ^17 = -ψ (ψ^16 = -1): 1 - 2ψ.
    assert_eq!(a[1], (1 + p * 2 - 2 * psi % p) % p);
    // X^15 · X = X^16 = -1.
    let mut x15 = vec![0u64; 16];
    x15[15] = 1;
    let mut x1 = vec![0u64; 16];
    x1[1] = 1;
    let prod = plan.negacyclic_mul(&x15, &x1);
    let mut expected = vec![0u64; 16];
    expected[0] = p - 1;
    assert_eq!(prod, expected);
}

#[test]
fn boundary_values_round_trip() {
    for n in [16usize, 1024] {
        for p in primes_for(n) {
            for fill in [0, 1, p - 1] {
                for path in paths() {
                    let plan = NttPlan::with_path(n, p, path).unwrap();
                    let mut a = vec![fill; n];
                    plan.forward(&mut a);
                    assert!(a.iter().all(|&x| x < p));
                    plan.inverse(&mut a);
                    assert_eq!(a, vec![fill; n], "n={n} p={p} fill={fill}");
                }
            }
        }
    }
}

#[test]
fn largest_sizes_round_trip() {
    let mut rng = seeded_rng("ntt-large", 7);
    for n in [1 << 16, MAX_N] {
        let p = primes_below(1 << 62, 2 * n as u64, 1, &[]).unwrap()[0];
        let plan = NttPlan::new(n, p).unwrap();
        let a = random_poly(&mut rng, n, p);
        let mut b = a.clone();
        plan.forward(&mut b);
        plan.inverse(&mut b);
        assert_eq!(a, b);
    }
}

#[test]
fn lazy_variants_stay_in_range_and_agree() {
    let mut rng = seeded_rng("ntt-lazy", 3);
    let n = 512;
    for p in primes_for(n) {
        let plan = NttPlan::new(n, p).unwrap();
        // Lazy input in [0, 4p) to the forward transform.
        let a: Vec<u64> = (0..n).map(|_| rng.next_u64() % (4 * p)).collect();
        let reduced: Vec<u64> = a.iter().map(|&x| x % p).collect();
        let mut lazy = a.clone();
        plan.forward_lazy(&mut lazy);
        assert!(lazy.iter().all(|&x| x < 4 * p));
        let mut full = reduced.clone();
        plan.forward(&mut full);
        assert_eq!(lazy.iter().map(|&x| x % p).collect::<Vec<_>>(), full);
        // Inverse from [0, 2p).
        let mut inv_in: Vec<u64> = full.iter().map(|&x| x + p * (rng.next_u64() & 1)).collect();
        plan.inverse_lazy(&mut inv_in);
        assert!(inv_in.iter().all(|&x| x < 2 * p));
        assert_eq!(inv_in.iter().map(|&x| x % p).collect::<Vec<_>>(), reduced);
    }
}

#[test]
fn invalid_plans_are_rejected() {
    let p62 = primes_below(1 << 62, 1 << 18, 1, &[]).unwrap()[0];
    for n in [0usize, 1, 8, 15, 17, 24, 1000, MAX_N * 2] {
        assert_eq!(NttPlan::new(n, p62).unwrap_err(), NttError::BadLength { n });
    }
    for p in [0u64, 1, 1 << 62, u64::MAX] {
        assert!(matches!(
            NttPlan::new(16, p).unwrap_err(),
            NttError::BadModulus(_)
        ));
    }
    // 97 · 193 ≡ 1 mod 32 but composite.
    assert_eq!(
        NttPlan::new(16, 97 * 193).unwrap_err(),
        NttError::NotPrime { p: 97 * 193 }
    );
    // 97 is prime, 97 ≡ 1 mod 32 holds: 97 = 3·32 + 1; but not ≡ 1 mod 64.
    assert!(NttPlan::new(16, 97).is_ok());
    assert_eq!(
        NttPlan::new(32, 97).unwrap_err(),
        NttError::NotNttFriendly { p: 97, n: 32 }
    );
    let text = NttPlan::new(32, 97).unwrap_err().to_string();
    assert!(text.contains("97") && text.contains("64"), "{text}");
    assert_eq!(MIN_N, 16);
}

/// Every kernel this crate has; the SIMD ones only run where the CPU has them.
const KERNELS: [Kernel; 4] = [
    Kernel::Portable,
    Kernel::Avx512Ifma,
    Kernel::Avx512,
    Kernel::Avx2,
];

/// Whether `kernel` must run here: this CPU has its features (detected by the test, not by
/// the crate under test) and the build contains the SIMD kernels.
fn must_run(kernel: Kernel) -> bool {
    #[cfg(all(target_arch = "x86_64", not(heist_ntt = "portable")))]
    {
        use std::arch::is_x86_feature_detected as has;
        let avx512 = has!("avx512f") && has!("avx512dq");
        match kernel {
            Kernel::Portable => true,
            Kernel::Avx512Ifma => avx512 && has!("avx512ifma"),
            Kernel::Avx512 => avx512,
            Kernel::Avx2 => has!("avx2"),
            _ => panic!("no CPU feature check for kernel {}", kernel.name()),
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(heist_ntt = "portable"))))]
    {
        kernel == Kernel::Portable
    }
}

/// The plan for `kernel`, or `None` with a message saying why the kernel is not run.
///
/// # Panics
/// If the kernel takes `p` and this CPU has its features, but the plan refuses it: a
/// supported kernel that does not run fails the suite instead of being skipped.
fn kernel_plan(n: usize, p: u64, kernel: Kernel) -> Option<NttPlan> {
    match NttPlan::with_kernel(n, p, kernel) {
        Ok(plan) => Some(plan),
        Err(NttError::KernelUnavailable { .. }) => {
            let bits = 64 - p.leading_zeros();
            if kernel == Kernel::Avx512Ifma && bits > IFMA_MAX_MODULUS_BITS {
                println!(
                    "not run: kernel {} does not take {bits}-bit p={p}",
                    kernel.name()
                );
            } else {
                assert!(
                    !must_run(kernel),
                    "kernel {} refused n={n} p={p} although this CPU has its features",
                    kernel.name()
                );
                println!(
                    "SKIPPED: kernel {} not run for n={n} p={p}: this CPU lacks its features \
                     or the build excludes it",
                    kernel.name()
                );
            }
            None
        }
        Err(e) => panic!("plan n={n} p={p}: {e}"),
    }
}

/// Primes of many sizes for length `n`, including the extremes of each kernel's range.
fn kernel_primes(n: usize) -> Vec<u64> {
    let order = 2 * n as u64;
    let mut out = vec![primes_above_small(order)];
    for bits in [20u32, 31, 40, 49, IFMA_MAX_MODULUS_BITS, 51, 61, 62] {
        out.push(primes_below(1 << bits, order, 1, &[]).unwrap()[0]);
    }
    out
}

#[test]
fn every_kernel_agrees_with_the_portable_one() {
    let mut rng = seeded_rng("ntt-kernels", 11);
    let mut ran = [0usize; KERNELS.len()];
    // Lengths below, at and above the SIMD kernels' leaf size (1024), up to 2^15.
    for log_n in 4..=15u32 {
        let n = 1usize << log_n;
        for p in kernel_primes(n) {
            let portable = NttPlan::with_path(n, p, NttPath::Portable).unwrap();
            assert_eq!(portable.kernel(), Kernel::Portable);
            let a = random_poly(&mut rng, n, p);
            let mut expected = a.clone();
            portable.forward(&mut expected);
            for (k, kernel) in KERNELS.into_iter().enumerate() {
                let Some(plan) = kernel_plan(n, p, kernel) else {
                    continue;
                };
                ran[k] += 1;
                assert_eq!(plan.kernel(), kernel);
                let mut f = a.clone();
                plan.forward(&mut f);
                assert_eq!(f, expected, "forward n={n} p={p} {kernel:?}");
                plan.inverse(&mut f);
                assert_eq!(f, a, "inverse n={n} p={p} {kernel:?}");
            }
        }
    }
    for (&kernel, count) in KERNELS.iter().zip(ran) {
        println!("kernel {}: {count} (n, p) pairs checked", kernel.name());
        assert!(
            count > 0 || !must_run(kernel),
            "kernel {} never ran although this CPU has its features",
            kernel.name()
        );
    }
    assert!(ran[0] > 0);
}

#[test]
fn every_kernel_keeps_its_lazy_ranges_at_the_extremes() {
    let mut rng = seeded_rng("ntt-kernel-lazy", 5);
    // Below, at and above the SIMD kernels' leaf size (1024), and N = 2^15.
    for n in [16usize, 32, 64, 1024, 2048, 4096, 1 << 15] {
        for p in kernel_primes(n) {
            for kernel in KERNELS {
                let Some(plan) = kernel_plan(n, p, kernel) else {
                    continue;
                };
                // Forward input at the top of [0, 4p), and random lazy input.
                let top = vec![4 * p - 1; n];
                let lazy: Vec<u64> = (0..n).map(|_| rng.next_u64() % (4 * p)).collect();
                for input in [top, lazy] {
                    let reduced: Vec<u64> = input.iter().map(|&x| x % p).collect();
                    let mut expected = reduced.clone();
                    plan.forward(&mut expected);
                    let mut full = input.clone();
                    plan.forward(&mut full);
                    assert_eq!(
                        full, expected,
                        "forward of lazy input n={n} p={p} {kernel:?}"
                    );
                    let mut out = input.clone();
                    plan.forward_lazy(&mut out);
                    assert!(
                        out.iter().all(|&x| x < 4 * p),
                        "forward_lazy range {kernel:?}"
                    );
                    let out_mod: Vec<u64> = out.iter().map(|&x| x % p).collect();
                    assert_eq!(out_mod, expected, "forward_lazy n={n} p={p} {kernel:?}");
                    // Inverse input at the top of [0, 2p) and lifted by p at random.
                    let mut inv_top = vec![2 * p - 1; n];
                    let mut inv_expected = vec![p - 1; n];
                    plan.inverse(&mut inv_expected);
                    plan.inverse_lazy(&mut inv_top);
                    assert!(
                        inv_top.iter().all(|&x| x < 2 * p),
                        "inverse_lazy range {kernel:?}"
                    );
                    let top_mod: Vec<u64> = inv_top.iter().map(|&x| x % p).collect();
                    assert_eq!(
                        top_mod, inv_expected,
                        "inverse_lazy top n={n} p={p} {kernel:?}"
                    );
                    let mut lifted: Vec<u64> = expected
                        .iter()
                        .map(|&x| x + p * (rng.next_u64() & 1))
                        .collect();
                    plan.inverse(&mut lifted);
                    assert_eq!(
                        lifted, reduced,
                        "inverse of lifted input n={n} p={p} {kernel:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn kernel_choice_follows_path_and_modulus() {
    let n = 1024;
    let p50 = primes_below(1 << 50, 2 * n as u64, 1, &[]).unwrap()[0];
    let p51 = primes_below(1 << 51, 2 * n as u64, 1, &[]).unwrap()[0];
    assert_eq!(
        NttPlan::with_path(n, p50, NttPath::Portable)
            .unwrap()
            .kernel(),
        Kernel::Portable
    );
    // The IFMA kernel never takes p >= 2^50, whatever the CPU.
    assert_eq!(
        NttPlan::with_kernel(n, p51, Kernel::Avx512Ifma).unwrap_err(),
        NttError::KernelUnavailable {
            kernel: Kernel::Avx512Ifma,
            p: p51
        }
    );
    assert_ne!(NttPlan::new(n, p51).unwrap().kernel(), Kernel::Avx512Ifma);
    // Auto picks the first available of IFMA, AVX-512, AVX2, portable.
    let auto = NttPlan::new(n, p50).unwrap().kernel();
    let expected = KERNELS[1..]
        .iter()
        .copied()
        .find(|k| k.is_available(50))
        .unwrap_or(Kernel::Portable);
    assert_eq!(auto, expected);
    println!("auto kernel for a 50-bit prime: {}", auto.name());
    // With AVX2 and without AVX-512, auto runs AVX2 for every prime up to 62 bits.
    if must_run(Kernel::Avx2) && !must_run(Kernel::Avx512) {
        let p62 = primes_below(1 << 62, 2 * n as u64, 1, &[]).unwrap()[0];
        for p in [p50, p51, p62] {
            assert_eq!(NttPlan::new(n, p).unwrap().kernel(), Kernel::Avx2, "p={p}");
        }
    }
    for kernel in KERNELS {
        println!(
            "kernel {} available for 50-bit p: {}",
            kernel.name(),
            kernel.is_available(50)
        );
    }
}

#[test]
fn in_place_product_matches_schoolbook() {
    let mut rng = seeded_rng("ntt-product-in-place", 9);
    for n in [16usize, 64] {
        for p in kernel_primes(n) {
            let a = random_poly(&mut rng, n, p);
            let b = random_poly(&mut rng, n, p);
            let expected = schoolbook_negacyclic(&a, &b, p);
            for kernel in KERNELS {
                let Some(plan) = kernel_plan(n, p, kernel) else {
                    continue;
                };
                // Lazy inputs in [0, 4p) give the same product.
                let mut x: Vec<u64> = a.iter().map(|&v| v + 3 * p).collect();
                let mut y: Vec<u64> = b.iter().map(|&v| v + 2 * p).collect();
                plan.negacyclic_mul_in_place(&mut x, &mut y);
                assert_eq!(x, expected, "n={n} p={p} {kernel:?}");
                assert!(y.iter().all(|&v| v < 4 * p));
            }
        }
    }
}

proptest! {
    #![proptest_config(heist_tests::seeded_config(48))]

    #[test]
    fn product_matches_schoolbook(log_n in 4u32..=8, which in 0usize..4, seed in any::<u64>()) {
        let n = 1usize << log_n;
        let p = primes_for(n)[which];
        let mut rng = seeded_rng("ntt-product", seed);
        let a = random_poly(&mut rng, n, p);
        let b = random_poly(&mut rng, n, p);
        let expected = schoolbook_negacyclic(&a, &b, p);
        for path in paths() {
            let plan = NttPlan::with_path(n, p, path).unwrap();
            prop_assert_eq!(&plan.negacyclic_mul(&a, &b), &expected, "{:?}", path);
        }
    }

    #[test]
    fn round_trip_is_identity(log_n in 4u32..=13, bits in 20u32..=62, seed in any::<u64>()) {
        let n = 1usize << log_n;
        prop_assume!(bits > log_n + 2);
        // Every such (N, bits) has a prime (the scarcest case, 20 bits for N = 2^13, has
        // five ≡ 1 mod 2N): a missing one is a failure of the search, not a case to skip.
        let ps = ntt_primes(bits, 2 * n as u64, 1, &[]);
        prop_assert!(ps.is_ok(), "no {}-bit NTT prime for N = {}: {:?}", bits, n, ps);
        let p = ps.unwrap()[0];
        let mut rng = seeded_rng("ntt-roundtrip", seed);
        let a = random_poly(&mut rng, n, p);
        for path in paths() {
            let plan = NttPlan::with_path(n, p, path).unwrap();
            let mut b = a.clone();
            plan.forward(&mut b);
            prop_assert!(b.iter().all(|&x| x < p));
            plan.inverse(&mut b);
            prop_assert_eq!(&a, &b);
        }
    }
}

/// The one bit-reversal helper against its definition, from zero bits to twelve, and at the
/// full width.
#[test]
fn bit_reverse_reverses_the_low_bits() {
    for bits in 0..=12u32 {
        for x in 0..1usize << bits {
            let naive = (0..bits).fold(0, |r, i| r | ((x >> i) & 1) << (bits - 1 - i));
            assert_eq!(bit_reverse(x, bits), naive, "x {x}, bits {bits}");
        }
    }
    assert_eq!(bit_reverse(1, usize::BITS), 1 << (usize::BITS - 1));
}
