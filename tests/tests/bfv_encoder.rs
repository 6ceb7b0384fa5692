//! The BFV batch encoder against direct evaluation, schoolbook products and explicit
//! Galois automorphisms; every error path.

use heist_core::ntt::{NttError, NttPlan};
use heist_core::primes::primes_above;
use heist_he::bfv::{
    rotation_galois_element, row_swap_galois_element, BatchEncoder, BfvError, Plaintext,
};
use heist_tests::{eval_poly, schoolbook_negacyclic, seeded_rng};
use proptest::prelude::*;
use rand_core::RngCore;

/// The smallest plaintext prime `≡ 1 mod 2n` above `2^bits`.
fn plain_prime(n: usize, bits: u32) -> u64 {
    primes_above(1 << bits, 2 * n as u64, 1, &[]).unwrap()[0]
}

/// `m(X^g)` in `Z_t[X]/(X^N + 1)`, coefficient by coefficient.
fn apply_galois(m: &[u64], g: u64, t: u64) -> Vec<u64> {
    let n = m.len();
    let two_n = 2 * n as u64;
    let mut out = vec![0u64; n];
    for (i, &c) in m.iter().enumerate() {
        let e = (i as u64 * g) % two_n;
        if e < n as u64 {
            out[e as usize] = c;
        } else {
            out[(e - n as u64) as usize] = (t - c) % t;
        }
    }
    out
}

fn random_slots(rng: &mut impl RngCore, n: usize, t: u64) -> Vec<u64> {
    (0..n).map(|_| rng.next_u64() % t).collect()
}

#[test]
fn slots_are_evaluations_at_powers_of_three_and_their_negatives() {
    let mut rng = seeded_rng("bfv-encoder-eval", 1);
    for n in [16usize, 64] {
        let t = plain_prime(n, 16);
        let enc = BatchEncoder::new(n, t).unwrap();
        let psi = NttPlan::new(n, t).unwrap().root();
        let values = random_slots(&mut rng, n, t);
        let poly = enc.encode_u64(&values).unwrap().coeffs().to_vec();
        let two_n = 2 * n as u64;
        let mut e = 1u64;
        for i in 0..n / 2 {
            let point = pow_mod(psi, e, t);
            let neg_point = pow_mod(psi, two_n - e, t);
            assert_eq!(eval_poly(&poly, point, t), values[i], "row 0 slot {i}");
            assert_eq!(
                eval_poly(&poly, neg_point, t),
                values[n / 2 + i],
                "row 1 slot {i}"
            );
            e = e * 3 % two_n;
        }
    }
}

fn pow_mod(b: u64, e: u64, m: u64) -> u64 {
    let mut acc = 1u128;
    let mut b = b as u128 % m as u128;
    let mut e = e;
    while e > 0 {
        if e & 1 == 1 {
            acc = acc * b % m as u128;
        }
        b = b * b % m as u128;
        e >>= 1;
    }
    acc as u64
}

#[test]
fn slot_index_is_a_permutation() {
    let enc = BatchEncoder::new(256, plain_prime(256, 20)).unwrap();
    let mut seen = vec![false; 256];
    for s in 0..256 {
        let j = enc.slot_index(s);
        assert!(!seen[j], "index {j} repeated");
        seen[j] = true;
    }
}

#[test]
fn product_of_polynomials_is_product_of_slots() {
    let mut rng = seeded_rng("bfv-encoder-mul", 2);
    for n in [16usize, 128] {
        let t = plain_prime(n, 20);
        let enc = BatchEncoder::new(n, t).unwrap();
        let a = random_slots(&mut rng, n, t);
        let b = random_slots(&mut rng, n, t);
        let pa = enc.encode_u64(&a).unwrap();
        let pb = enc.encode_u64(&b).unwrap();
        let prod =
            Plaintext::from_coeffs(t, schoolbook_negacyclic(pa.coeffs(), pb.coeffs(), t)).unwrap();
        let expected: Vec<u64> = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| ((x as u128 * y as u128) % t as u128) as u64)
            .collect();
        assert_eq!(enc.decode_u64(&prod).unwrap(), expected);
    }
}

#[test]
fn powers_of_three_rotate_rows_and_minus_one_swaps_them() {
    let mut rng = seeded_rng("bfv-encoder-galois", 3);
    let n = 64usize;
    let half = n / 2;
    let t = plain_prime(n, 17);
    let enc = BatchEncoder::new(n, t).unwrap();
    let values = random_slots(&mut rng, n, t);
    let poly = enc.encode_u64(&values).unwrap().coeffs().to_vec();
    let galois = |g: u64| Plaintext::from_coeffs(t, apply_galois(&poly, g, t)).unwrap();
    for steps in [0i64, 1, 2, 5, 31, -1, -7, 33] {
        let g = rotation_galois_element(n, steps);
        let rotated = enc.decode_u64(&galois(g)).unwrap();
        let k = steps.rem_euclid(half as i64) as usize;
        for row in 0..2 {
            for i in 0..half {
                assert_eq!(
                    rotated[row * half + i],
                    values[row * half + (i + k) % half],
                    "steps {steps}, row {row}, slot {i}"
                );
            }
        }
    }
    let swapped = enc.decode_u64(&galois(row_swap_galois_element(n))).unwrap();
    assert_eq!(&swapped[..half], &values[half..]);
    assert_eq!(&swapped[half..], &values[..half]);
}

#[test]
fn galois_elements_are_powers_of_three() {
    assert_eq!(rotation_galois_element(16, 0), 1);
    assert_eq!(rotation_galois_element(16, 1), 3);
    assert_eq!(rotation_galois_element(16, 2), 9);
    // 3 has order N/2 = 8 modulo 32: a right rotation by one is 3^7 mod 32 = 11.
    assert_eq!(rotation_galois_element(16, -1), 2187 % 32);
    assert_eq!(rotation_galois_element(16, 8), 1);
    assert_eq!(row_swap_galois_element(16), 31);
}

proptest! {
    #![proptest_config(heist_tests::seeded_config(32))]

    #[test]
    fn unsigned_round_trip(seed in any::<u64>(), len in 0usize..=256) {
        let mut rng = seeded_rng("bfv-encoder-u64", seed);
        let n = 256;
        let t = plain_prime(n, 30);
        let enc = BatchEncoder::new(n, t).unwrap();
        let values = random_slots(&mut rng, len, t);
        let decoded = enc.decode_u64(&enc.encode_u64(&values).unwrap()).unwrap();
        prop_assert_eq!(&decoded[..len], &values[..]);
        prop_assert!(decoded[len..].iter().all(|&v| v == 0));
    }

    #[test]
    fn signed_round_trip(seed in any::<u64>()) {
        let mut rng = seeded_rng("bfv-encoder-i64", seed);
        let n = 128;
        let t = plain_prime(n, 12);
        let enc = BatchEncoder::new(n, t).unwrap();
        let half = (t / 2) as i64;
        let mut values: Vec<i64> = (0..n)
            .map(|_| (rng.next_u64() % t) as i64 - half)
            .collect();
        values[0] = half;
        values[1] = -half;
        let poly = enc.encode_i64(&values).unwrap();
        prop_assert!(poly.coeffs().iter().all(|&c| c < t));
        prop_assert_eq!(poly.plain_modulus(), t);
        prop_assert_eq!(enc.decode_i64(&poly).unwrap(), values);
    }
}

#[test]
fn errors_carry_the_offending_values() {
    let n = 16;
    let t = plain_prime(n, 10);
    let enc = BatchEncoder::new(n, t).unwrap();
    assert_eq!(enc.n(), n);
    assert_eq!(enc.plain_modulus().value(), t);

    let e = BatchEncoder::new(n, 91).unwrap_err();
    assert!(matches!(
        e,
        BfvError::PlainModulus {
            t: 91,
            n: 16,
            source: NttError::NotPrime { p: 91 }
        }
    ));
    assert!(e.to_string().contains("91"));
    assert!(core::error::Error::source(&e).is_some());
    let e = BatchEncoder::new(n, 101).unwrap_err();
    assert!(matches!(
        e,
        BfvError::PlainModulus {
            source: NttError::NotNttFriendly { .. },
            ..
        }
    ));
    let e = BatchEncoder::new(24, 97).unwrap_err();
    assert!(matches!(
        e,
        BfvError::PlainModulus {
            source: NttError::BadLength { n: 24 },
            ..
        }
    ));

    let e = enc.encode_u64(&[0; 17]).unwrap_err();
    assert_eq!(
        e,
        BfvError::TooManySlots {
            given: 17,
            slots: 16
        }
    );
    assert_eq!(e.to_string(), "17 values given for 16 slots");
    assert!(core::error::Error::source(&e).is_none());
    let e = enc.encode_i64(&[0; 17]).unwrap_err();
    assert_eq!(
        e,
        BfvError::TooManySlots {
            given: 17,
            slots: 16
        }
    );
    let e = enc.encode_u64(&[1, t]).unwrap_err();
    assert_eq!(
        e,
        BfvError::SlotOutOfRange {
            slot: 1,
            value: t,
            t
        }
    );
    assert!(e.to_string().contains(&t.to_string()));
    let half = (t / 2) as i64;
    let e = enc.encode_i64(&[0, 0, half + 1]).unwrap_err();
    assert_eq!(
        e,
        BfvError::SignedSlotOutOfRange {
            slot: 2,
            value: half + 1,
            t
        }
    );
    let e = enc.encode_i64(&[-half - 1]).unwrap_err();
    assert_eq!(
        e,
        BfvError::SignedSlotOutOfRange {
            slot: 0,
            value: -half - 1,
            t
        }
    );
    assert!(e.to_string().contains("centred"));
    let short = Plaintext::from_coeffs(t, vec![0; 15]).unwrap();
    let e = enc.decode_u64(&short).unwrap_err();
    assert_eq!(
        e,
        BfvError::PlainMismatch {
            n: 16,
            t,
            found_n: 15,
            found_t: t
        }
    );
    assert!(e.to_string().contains("degree 15"));
    let other_t = Plaintext::from_coeffs(t + 2, vec![0; 16]).unwrap();
    let e = enc.decode_i64(&other_t).unwrap_err();
    assert_eq!(
        e,
        BfvError::PlainMismatch {
            n: 16,
            t,
            found_n: 16,
            found_t: t + 2
        }
    );
    let mut poly = vec![0u64; 16];
    poly[3] = t;
    let e = Plaintext::from_coeffs(t, poly).unwrap_err();
    assert_eq!(
        e,
        BfvError::CoefficientOutOfRange {
            index: 3,
            value: t,
            modulus: t
        }
    );
    assert!(e.to_string().contains("coefficient 3"));
}
