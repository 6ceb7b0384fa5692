//! RNS bases, polynomials and samplers against slow oracles: CRT reconstruction with
//! `i128`, rounded division by a prime with exact integers, schoolbook products.

use heist_core::primes::ntt_primes;
use heist_core::rns::{divide_round_limb, lift_centred, Coeff, Eval, RnsBasis, RnsError, RnsPoly};
use heist_core::sample::{centred_binomial, fill_uniform_mod, ternary, ETA};
use heist_tests::{schoolbook_negacyclic, seeded_rng};
use proptest::prelude::*;
use rand_core::RngCore;

const N: usize = 64;

fn basis(bits: u32, count: usize) -> RnsBasis {
    RnsBasis::new(N, &ntt_primes(bits, 2 * N as u64, count, &[]).unwrap()).unwrap()
}

fn q_product(b: &RnsBasis) -> i128 {
    b.primes().iter().map(|&q| q as i128).product()
}

proptest! {
    #![proptest_config(heist_tests::seeded_config(64))]

    /// compose_centred returns the centred CRT value (three 30-bit primes, exact in i128):
    /// exactly below 2^53, within the documented relative error above.
    #[test]
    fn compose_matches_i128(x in any::<i128>(), small in -(1i64 << 53)..(1i64 << 53)) {
        let b = basis(30, 3);
        let q = q_product(&b);
        let v = i128::from(small).rem_euclid(q);
        let res: Vec<u64> = b.primes().iter().map(|&p| v.rem_euclid(p as i128) as u64).collect();
        let mut scratch = [0u64; 3];
        prop_assert_eq!(b.compose_centred(&res, &mut scratch), small as f64);
        let b = basis(30, 3);
        let q = q_product(&b);
        let v = x.rem_euclid(q);
        let centred = if v > q / 2 { v - q } else { v };
        let res: Vec<u64> = b.primes().iter().map(|&p| v.rem_euclid(p as i128) as u64).collect();
        let mut scratch = [0u64; 3];
        let got = b.compose_centred(&res, &mut scratch);
        let want = centred as f64;
        prop_assert!((got - want).abs() <= 6.0 * f64::EPSILON / 2.0 * want.abs(), "{got} vs {want}");
    }

    /// One limb of the rounded division by the last prime equals round(x / p_last) mod q.
    #[test]
    fn divide_round_matches_exact_rounding(seed in any::<u64>()) {
        let b = basis(28, 2);
        let (q, p) = (b.modulus(0).value(), b.modulus(1).value());
        let qp = q as i128 * p as i128;
        let mut rng = seeded_rng("divide-round", seed);
        let xs: Vec<i128> = (0..N).map(|_| (rng.next_u64() as i128) % qp).collect();
        let mut target: Vec<u64> = xs.iter().map(|&x| (x % q as i128) as u64).collect();
        let last: Vec<u64> = xs.iter().map(|&x| (x % p as i128) as u64).collect();
        b.plan(0).forward(&mut target);
        let inv = b.modulus(0).shoup(b.modulus(0).inv(p).unwrap());
        let mut scratch = vec![0u64; N];
        divide_round_limb(&mut target, b.plan(0), &last, p, inv, &mut scratch);
        b.plan(0).inverse(&mut target);
        for (&x, &got) in xs.iter().zip(&target) {
            // Round half down, as the centred remainder lies in (-p/2, p/2].
            let r = x.rem_euclid(p as i128);
            let r = if r > (p / 2) as i128 { r - p as i128 } else { r };
            let want = ((x - r) / p as i128).rem_euclid(q as i128) as u64;
            prop_assert_eq!(got, want);
        }
    }

    /// lift_centred maps v to (v or v - p) mod q.
    #[test]
    fn lift_centred_matches_i128(v in any::<u64>()) {
        let b = basis(40, 2);
        let (q, p) = (b.modulus(0), b.modulus(1).value());
        let v = v % p;
        let c = if v > p / 2 { v as i128 - p as i128 } else { v as i128 };
        let want = c.rem_euclid(q.value() as i128) as u64;
        prop_assert_eq!(lift_centred(v, p, p / 2, q, q.reduce(p)), want);
    }
}

#[test]
fn polynomial_arithmetic_matches_schoolbook() {
    let b = basis(50, 3);
    let mut rng = seeded_rng("rns-poly", 5);
    let rand_poly = |rng: &mut rand_chacha::ChaCha20Rng| {
        let mut p = RnsPoly::<Coeff>::zero(N, 3);
        for i in 0..3 {
            fill_uniform_mod(rng, b.modulus(i), p.limb_mut(i));
        }
        p
    };
    let a = rand_poly(&mut rng);
    let c = rand_poly(&mut rng);
    let mut prod = a.clone().into_eval(&b);
    prod.mul_assign(&c.clone().into_eval(&b), &b);
    let mut fused = RnsPoly::<Eval>::zero(N, 3);
    fused.mul_add_assign(&a.clone().into_eval(&b), &c.clone().into_eval(&b), &b);
    let prod = prod.into_coeff(&b);
    assert_eq!(fused.into_coeff(&b), prod);
    let mut sum = a.clone();
    sum.add_assign(&c, &b);
    let mut diff = a.clone();
    diff.sub_assign(&c, &b);
    let mut neg = a.clone();
    neg.neg_assign(&b);
    for i in 0..3 {
        let q = b.modulus(i);
        let p = q.value();
        assert_eq!(
            prod.limb(i),
            schoolbook_negacyclic(a.limb(i), c.limb(i), p).as_slice()
        );
        for j in 0..N {
            assert_eq!(sum.limb(i)[j], (a.limb(i)[j] + c.limb(i)[j]) % p);
            assert_eq!(diff.limb(i)[j], (a.limb(i)[j] + p - c.limb(i)[j]) % p);
            assert_eq!(neg.limb(i)[j], (p - a.limb(i)[j]) % p);
        }
    }
    // Scalars given per limb, and the fused scaled addition.
    let w: Vec<_> = (0..3)
        .map(|i| b.modulus(i).shoup(b.modulus(i).from_i64(-7)))
        .collect();
    let mut scaled = a.clone();
    scaled.mul_scalar_assign(&w, &b);
    let mut acc = c.clone();
    acc.add_scaled_assign(&a, &w, &b);
    let mut want = c.clone();
    want.add_assign(&scaled, &b);
    assert_eq!(acc, want);
    let signed: Vec<i64> = (0..N as i64).map(|k| k - 32).collect();
    let from = RnsPoly::<Coeff>::from_signed(&signed, 2, &b);
    for i in 0..2 {
        assert_eq!(from.limb(i)[0], b.modulus(i).value() - 32);
    }
    // A right operand with more limbs is used modulo the smaller product.
    let mut two = a.clone();
    two.truncate(2);
    two.add_assign(&c, &b);
    assert_eq!(two.limb(1), sum.limb(1));
    // Checked construction refuses residues out of range and wrong lengths.
    let mut data = a.as_slice().to_vec();
    assert!(RnsPoly::<Coeff>::from_vec_checked(&b, 3, data.clone()).is_some());
    data[N] = b.modulus(1).value();
    assert!(RnsPoly::<Coeff>::from_vec_checked(&b, 3, data.clone()).is_none());
    assert!(RnsPoly::<Coeff>::from_vec_checked(&b, 2, data).is_none());
    let mut w = a.clone();
    w.wipe();
    assert!(w.as_slice().iter().all(|&x| x == 0));
}

#[test]
fn basis_errors() {
    let ps = ntt_primes(40, 2 * N as u64, 2, &[]).unwrap();
    assert_eq!(
        RnsBasis::new(N, &[]).unwrap_err(),
        RnsError::BadCount { count: 0 }
    );
    assert_eq!(
        RnsBasis::new(N, &[ps[0], ps[1], ps[0]]).unwrap_err(),
        RnsError::Duplicate { p: ps[0] }
    );
    assert!(matches!(RnsBasis::new(N, &[97]), Err(RnsError::Ntt(_))));
    assert!(RnsError::BadCount { count: 0 }
        .to_string()
        .contains("got 0"));
}

#[test]
fn samplers_have_the_stated_distributions() {
    let mut rng = seeded_rng("samplers", 6);
    let t = ternary(&mut rng, 30_000);
    let counts = [-1i64, 0, 1].map(|v| t.iter().filter(|&&x| x == v).count());
    assert_eq!(counts.iter().sum::<usize>(), 30_000);
    for c in counts {
        // 10000 expected, standard deviation about 82: 5 deviations.
        assert!((9_590..=10_410).contains(&c), "{counts:?}");
    }
    let e = centred_binomial(&mut rng, 100_000);
    assert!(e.iter().all(|&x| x.unsigned_abs() <= u64::from(ETA)));
    let mean = e.iter().sum::<i64>() as f64 / e.len() as f64;
    let var = e.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / e.len() as f64;
    // Variance 10.5; the sample variance has standard deviation about 0.05 here.
    assert!((var - 10.5).abs() < 0.25, "variance {var}");
    assert!(mean.abs() < 0.05, "mean {mean}");
    let b = basis(20, 1);
    let mut u = vec![0u64; 50_000];
    fill_uniform_mod(&mut rng, b.modulus(0), &mut u);
    let p = b.modulus(0).value();
    assert!(u.iter().all(|&x| x < p));
    let below_half = u.iter().filter(|&&x| x < p / 2).count();
    assert!((24_400..=25_600).contains(&below_half), "{below_half}");
}
