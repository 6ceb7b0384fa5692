//! Modular arithmetic and prime generation against slow, obvious oracles.

use heist_core::arith::{csub, Modulus, ModulusError};
use heist_core::primes::{
    is_prime, ntt_primes, primes_above, primes_below, primitive_root, PrimeError,
};
use heist_tests::is_prime_trial;
use proptest::prelude::*;

/// Moduli at every boundary the code cares about: tiny, around 2^31, 2^50, 2^52, 2^62.
fn moduli() -> impl Strategy<Value = u64> {
    prop_oneof![
        2u64..1000,
        (1u64 << 31) - 100..(1u64 << 31) + 100,
        (1u64 << 50) - 100..(1u64 << 50) + 100,
        (1u64 << 62) - 1000..(1u64 << 62),
        2u64..(1u64 << 62),
    ]
}

proptest! {
    #![proptest_config(heist_tests::seeded_config(512))]

    #[test]
    fn ops_match_u128(p in moduli(), a in any::<u64>(), b in any::<u64>()) {
        let m = Modulus::new(p).unwrap();
        let (a, b) = (a % p, b % p);
        let p128 = p as u128;
        prop_assert_eq!(m.add(a, b) as u128, (a as u128 + b as u128) % p128);
        prop_assert_eq!(m.sub(a, b) as u128, (a as u128 + p128 - b as u128) % p128);
        prop_assert_eq!(m.neg(a) as u128, (p128 - a as u128) % p128);
        prop_assert_eq!(m.mul(a, b) as u128, (a as u128 * b as u128) % p128);
        let w = m.shoup(b);
        prop_assert_eq!(m.mul_shoup(a, w) as u128, (a as u128 * b as u128) % p128);
        prop_assert_eq!(w.value(), b);
        prop_assert_eq!(w.quotient() as u128, ((b as u128) << 64) / p128);
        let lazy = m.mul_shoup_lazy(a, w);
        prop_assert!(lazy < 2 * p);
        prop_assert_eq!(lazy as u128 % p128, (a as u128 * b as u128) % p128);
        let c = m.centre(a);
        prop_assert!(2 * c.unsigned_abs() <= p);
        prop_assert_eq!(m.from_i64(c), a);
    }

    #[test]
    fn reductions_match_u128(p in moduli(), x in any::<u128>(), y in any::<u64>(), s in any::<i64>()) {
        let m = Modulus::new(p).unwrap();
        prop_assert_eq!(m.reduce_u128(x) as u128, x % p as u128);
        prop_assert_eq!(m.reduce(y), y % p);
        prop_assert_eq!(m.from_i64(s) as i128, (s as i128).rem_euclid(p as i128));
        // Shoup accepts any 64-bit x, not only reduced ones.
        let w = m.shoup(y % p);
        prop_assert_eq!(m.mul_shoup(y, w) as u128, (y as u128 * (y % p) as u128) % p as u128);
    }

    #[test]
    fn pow_and_inverse(p in moduli(), a in any::<u64>(), e in any::<u64>()) {
        let m = Modulus::new(p).unwrap();
        let mut slow = 1u128 % p as u128;
        let mut base = a as u128 % p as u128;
        let mut k = e;
        while k > 0 {
            if k & 1 == 1 { slow = slow * base % p as u128; }
            base = base * base % p as u128;
            k >>= 1;
        }
        prop_assert_eq!(m.pow(a, e) as u128, slow);
        if is_prime(p) {
            match m.inv(a) {
                Some(x) => prop_assert_eq!(m.mul(x, a % p), 1),
                None => prop_assert_eq!(a % p, 0),
            }
        }
    }

    #[test]
    fn miller_rabin_matches_trial_division(n in 0u64..2_000_000) {
        prop_assert_eq!(is_prime(n), is_prime_trial(n));
    }

    #[test]
    fn csub_is_conditional_subtraction(m in 1u64..(1 << 62), x in any::<u64>()) {
        let x = x % (2 * m);
        prop_assert_eq!(csub(x, m), if x >= m { x - m } else { x });
    }
}

#[test]
fn boundary_values() {
    for p in [2u64, 3, (1 << 62) - 57, (1 << 61) - 1, 1 << 40] {
        let m = Modulus::new(p).unwrap();
        for a in [0, 1, p - 1] {
            for b in [0, 1, p - 1] {
                assert_eq!(m.mul(a, b) as u128, (a as u128 * b as u128) % p as u128);
                assert_eq!(m.add(a, b) as u128, (a as u128 + b as u128) % p as u128);
            }
        }
        assert_eq!(m.reduce_u128(u128::MAX) as u128, u128::MAX % p as u128);
        assert_eq!(m.reduce(u64::MAX), u64::MAX % p);
    }
}

#[test]
fn modulus_range_is_enforced() {
    for bad in [0u64, 1, 1 << 62, u64::MAX] {
        assert_eq!(
            Modulus::new(bad).unwrap_err(),
            ModulusError::OutOfRange { value: bad }
        );
    }
    let text = Modulus::new(1).unwrap_err().to_string();
    assert!(text.contains("2^62"), "{text}");
    assert_eq!(Modulus::new((1 << 62) - 1).unwrap().bits(), 62);
}

#[test]
fn large_known_primes() {
    // 2^61 - 1 (Mersenne), 2^62 - 57 (largest prime below 2^62), and composites next to them.
    assert!(is_prime((1 << 61) - 1));
    assert!(is_prime((1 << 62) - 57));
    assert!(!is_prime((1 << 62) - 55));
    assert!(is_prime(18_446_744_073_709_551_557)); // largest 64-bit prime
    assert!(!is_prime(3_215_031_751)); // strong pseudoprime to bases 2, 3, 5, 7
    assert!(!is_prime(3_825_123_056_546_413_051)); // strong pseudoprime to the first 9 prime bases
}

#[test]
fn ntt_primes_have_the_requested_shape() {
    for (bits, order) in [
        (20u32, 1u64 << 11),
        (31, 1 << 13),
        (50, 1 << 15),
        (62, 1 << 18),
    ] {
        let ps = ntt_primes(bits, order, 4, &[]).unwrap();
        assert_eq!(ps.len(), 4);
        for w in ps.windows(2) {
            assert!(w[0] > w[1]);
        }
        for &p in &ps {
            assert!(is_prime(p) && p % order == 1 && 64 - p.leading_zeros() == bits);
        }
        // Exclusion yields the next ones, distinct from the excluded.
        let next = ntt_primes(bits, order, 2, &ps[..2]).unwrap();
        assert_eq!(next, ps[2..4].to_vec());
    }
    // Small sizes against trial division: every 16-bit prime ≡ 1 mod 32.
    let all: Vec<u64> = (1u64 << 15..1 << 16)
        .rev()
        .filter(|&p| p % 32 == 1 && is_prime_trial(p))
        .collect();
    assert_eq!(ntt_primes(16, 32, all.len(), &[]).unwrap(), all);
    assert_eq!(
        ntt_primes(16, 32, all.len() + 1, &[]).unwrap_err(),
        PrimeError::Exhausted {
            found: all.len(),
            wanted: all.len() + 1
        }
    );
}

#[test]
fn primes_above_and_below_bounds() {
    let above = primes_above(1 << 40, 1 << 12, 3, &[]).unwrap();
    let below = primes_below(1 << 40, 1 << 12, 3, &[]).unwrap();
    assert!(above
        .iter()
        .all(|&p| p > 1 << 40 && p % (1 << 12) == 1 && is_prime(p)));
    assert!(below
        .iter()
        .all(|&p| p < 1 << 40 && p % (1 << 12) == 1 && is_prime(p)));
    // Nothing suitable was skipped between consecutive results.
    let mut c = above[0] + (1 << 12);
    while c < above[1] {
        assert!(!is_prime(c));
        c += 1 << 12;
    }
}

#[test]
fn prime_errors() {
    assert_eq!(
        ntt_primes(50, 3, 1, &[]).unwrap_err(),
        PrimeError::BadOrder { order: 3 }
    );
    assert_eq!(
        ntt_primes(50, 0, 1, &[]).unwrap_err(),
        PrimeError::BadOrder { order: 0 }
    );
    assert_eq!(
        ntt_primes(63, 1 << 10, 1, &[]).unwrap_err(),
        PrimeError::BadBitSize {
            bits: 63,
            order: 1 << 10
        }
    );
    assert_eq!(
        ntt_primes(10, 1 << 10, 1, &[]).unwrap_err(),
        PrimeError::BadBitSize {
            bits: 10,
            order: 1 << 10
        }
    );
    assert!(matches!(
        primes_below(1 << 63, 2, 1, &[]).unwrap_err(),
        PrimeError::BadBitSize { .. }
    ));
    assert_eq!(
        primitive_root(91, 2).unwrap_err(),
        PrimeError::NoRoot { p: 91, order: 2 }
    );
    assert_eq!(
        primitive_root(97, 64).unwrap_err(),
        PrimeError::NoRoot { p: 97, order: 64 }
    );
    assert_eq!(
        primitive_root(97, 1).unwrap_err(),
        PrimeError::BadOrder { order: 1 }
    );
    assert!(matches!(
        primitive_root(1, 2).unwrap_err(),
        PrimeError::Modulus(_)
    ));
    for e in [
        PrimeError::BadOrder { order: 3 },
        PrimeError::Exhausted {
            found: 1,
            wanted: 2,
        },
        PrimeError::NoRoot { p: 91, order: 2 },
    ] {
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn primitive_roots_have_exact_order() {
    for (p, order) in [(97u64, 32u64), (193, 64), (12289, 2048)] {
        let m = Modulus::new(p).unwrap();
        let r = primitive_root(p, order).unwrap();
        assert_eq!(m.pow(r, order), 1);
        // Exact order: no smaller power of two gives 1.
        assert_eq!(m.pow(r, order / 2), p - 1);
    }
}

#[cfg(debug_assertions)]
#[test]
fn out_of_range_inputs_are_caught_in_debug_builds() {
    let m = Modulus::new(97).unwrap();
    assert!(std::panic::catch_unwind(|| m.add(97, 1)).is_err());
    assert!(std::panic::catch_unwind(|| m.sub(0, 200)).is_err());
    assert!(std::panic::catch_unwind(|| m.shoup(97)).is_err());
    assert!(std::panic::catch_unwind(|| csub(200, 97)).is_err());
}
