//! CKKS: encoder against a naive canonical embedding, and every homomorphic operation
//! against plaintext arithmetic, within the predicted bound.

use heist_he::ckks::fft::{Complex, SpecialFft};
use heist_he::ckks::{
    decrypt, encrypt_pk, encrypt_sk, precision, Ciphertext, CkksError, CkksParams, Encoder,
    Evaluator,
};
use heist_he::galois::{conjugation_element, rotation_element};
use heist_he::keys::{GaloisKeys, PublicKey, RelinKey, SecretKey};
use heist_tests::seeded_rng;
use rand_core::RngCore;

fn uniform(rng: &mut impl RngCore, len: usize, amp: f64) -> Vec<f64> {
    (0..len)
        .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 * amp - amp)
        .collect()
}

/// `m(ζ^(5^j))` for `ζ = exp(iπ/N)`, by direct summation.
fn naive_slots(m: &[f64]) -> Vec<Complex> {
    let n = m.len();
    let two_n = 2 * n as u64;
    let mut g = 1u64;
    let mut out = Vec::new();
    for _ in 0..n / 2 {
        let mut acc = Complex::default();
        for (k, &c) in m.iter().enumerate() {
            let e = (g * k as u64) % two_n;
            let ang = std::f64::consts::PI * e as f64 / n as f64;
            acc = acc + Complex::new(c * ang.cos(), c * ang.sin());
        }
        out.push(acc);
        g = g * 5 % two_n;
    }
    out
}

#[test]
fn special_fft_matches_naive_embedding() {
    let mut rng = seeded_rng("fft", 1);
    for n in [8usize, 64, 256] {
        let m = uniform(&mut rng, n, 10.0);
        let fft = SpecialFft::new(n);
        let mut v: Vec<Complex> = (0..n / 2)
            .map(|k| Complex::new(m[k], m[k + n / 2]))
            .collect();
        fft.forward(&mut v);
        let want = naive_slots(&m);
        for (a, b) in v.iter().zip(&want) {
            assert!((*a - *b).abs() < 1e-9, "n={n}: {a:?} vs {b:?}");
        }
        fft.inverse(&mut v);
        for k in 0..n / 2 {
            assert!((v[k].re - m[k]).abs() < 1e-9 && (v[k].im - m[k + n / 2]).abs() < 1e-9);
        }
    }
}

struct Setup {
    params: CkksParams,
    enc: Encoder,
    sk: SecretKey,
    pk: PublicKey,
    rlk: RelinKey,
    gk: GaloisKeys,
    eval: Evaluator,
}

fn setup(seed: u64) -> (Setup, rand_chacha::ChaCha20Rng) {
    let mut rng = seeded_rng("ckks-setup", seed);
    let params = CkksParams::for_depth_insecure_for_tests(1024, 3, 40, 55).unwrap();
    let he = params.he();
    let sk = SecretKey::generate(he, &mut rng);
    let pk = PublicKey::generate(he, &sk, &mut rng);
    let rlk = RelinKey::generate(he, &sk, &mut rng);
    let els = [
        rotation_element(1024, 1),
        rotation_element(1024, -3),
        conjugation_element(1024),
    ];
    let gk = GaloisKeys::generate(he, &sk, &els, &mut rng).unwrap();
    let enc = Encoder::new(&params);
    let eval = Evaluator::new(&params);
    (
        Setup {
            params,
            enc,
            sk,
            pk,
            rlk,
            gk,
            eval,
        },
        rng,
    )
}

fn check(s: &Setup, ct: &Ciphertext, want: &[f64]) -> f64 {
    let p = precision(&s.enc, &s.sk, ct, want).unwrap();
    assert!(
        p.measured <= p.predicted,
        "measured {} > predicted {}",
        p.measured,
        p.predicted
    );
    assert!(
        p.predicted < 1e-3,
        "predicted bound {} is useless",
        p.predicted
    );
    p.measured
}

#[test]
fn encrypt_decrypt_and_operations() {
    let (mut s, mut rng) = setup(2);
    let slots = s.params.slots();
    let top = s.params.he().max_level();
    let delta = s.params.scale();
    let x = uniform(&mut rng, slots, 1.0);
    let y = uniform(&mut rng, slots, 1.0);
    let px = s.enc.encode(&x, delta, top).unwrap();
    let py = s.enc.encode(&y, delta, top).unwrap();
    let cx = encrypt_pk(&s.params, &s.pk, &px, &mut rng).unwrap();
    let cy = encrypt_sk(&s.params, &s.sk, &py, &mut rng).unwrap();
    check(&s, &cx, &x);
    check(&s, &cy, &y);
    let sum: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a + b).collect();
    check(&s, &s.eval.add(&cx, &cy).unwrap(), &sum);
    let diff: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a - b).collect();
    check(&s, &s.eval.sub(&cx, &cy).unwrap(), &diff);
    let neg: Vec<f64> = x.iter().map(|a| -a).collect();
    check(&s, &s.eval.neg(&cx).unwrap(), &neg);
    let prod: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a * b).collect();
    let m = s.eval.mul_relin(&cx, &cy, &s.rlk).unwrap();
    check(&s, &m, &prod);
    let m = s.eval.rescale(&m).unwrap();
    assert_eq!(m.level(), top - 1);
    check(&s, &m, &prod);
    let sq: Vec<f64> = x.iter().map(|a| a * a).collect();
    let q = s.eval.square_relin(&cx, &s.rlk).unwrap();
    let t = s.eval.rescale(&q).unwrap();
    check(&s, &t, &sq);
    let t3: Vec<f64> = x.iter().map(|a| 3.0 * a).collect();
    check(&s, &s.eval.mul_integer(&cx, 3).unwrap(), &t3);
    let r = s.eval.mul_real(&cx, 0.25, delta).unwrap();
    let quarter: Vec<f64> = x.iter().map(|a| 0.25 * a).collect();
    let t = s.eval.rescale(&r).unwrap();
    check(&s, &t, &quarter);
    let plus: Vec<f64> = x.iter().map(|a| a + 0.5).collect();
    check(&s, &s.eval.add_real(&cx, 0.5).unwrap(), &plus);
    let mp = s.eval.mul_plain(&cx, &py).unwrap();
    let t = s.eval.rescale(&mp).unwrap();
    check(&s, &t, &prod);
    check(&s, &s.eval.add_plain(&cx, &py).unwrap(), &sum);
    let rot = s.eval.rotate(&cx, 1, &s.gk).unwrap();
    let want: Vec<f64> = (0..slots).map(|j| x[(j + 1) % slots]).collect();
    check(&s, &rot, &want);
    let rot = s.eval.rotate(&cx, -3, &s.gk).unwrap();
    let want: Vec<f64> = (0..slots).map(|j| x[(j + slots - 3) % slots]).collect();
    check(&s, &rot, &want);
    let conj = s.eval.conjugate(&cx, &s.gk).unwrap();
    check(&s, &conj, &x);
    let dot = s.eval.dot_integer(&[&cx, &cy], &[2, -5]).unwrap();
    let want: Vec<f64> = x.iter().zip(&y).map(|(a, b)| 2.0 * a - 5.0 * b).collect();
    check(&s, &dot, &want);
    let dot = s.eval.dot_real(&[&cx, &cy], &[0.5, -0.125], delta).unwrap();
    let want: Vec<f64> = x.iter().zip(&y).map(|(a, b)| 0.5 * a - 0.125 * b).collect();
    let t = s.eval.rescale(&dot).unwrap();
    check(&s, &t, &want);
    let _ = decrypt(&s.params, &s.sk, &cx).unwrap();
}

#[test]
fn conjugation_of_complex_slots() {
    let (mut s, mut rng) = setup(3);
    let slots = s.params.slots();
    let re = uniform(&mut rng, slots, 1.0);
    let im = uniform(&mut rng, slots, 1.0);
    let z: Vec<Complex> = re
        .iter()
        .zip(&im)
        .map(|(&a, &b)| Complex::new(a, b))
        .collect();
    let pt = s
        .enc
        .encode_complex(&z, s.params.scale(), s.params.he().max_level())
        .unwrap();
    let ct = encrypt_sk(&s.params, &s.sk, &pt, &mut rng).unwrap();
    let c = s.eval.conjugate(&ct, &s.gk).unwrap();
    let out = s
        .enc
        .decode_complex(&decrypt(&s.params, &s.sk, &c).unwrap())
        .unwrap();
    let bound = c.predicted_error();
    for (o, w) in out.iter().zip(&z) {
        assert!((*o - w.conj()).abs() <= bound, "{o:?} vs {:?}", w.conj());
    }
}

#[test]
fn secure_default_set_multiplies_within_the_bound() {
    let mut rng = seeded_rng("ckks-secure", 4);
    let params = CkksParams::default_for(4096).unwrap();
    let he = params.he();
    let sk = SecretKey::generate(he, &mut rng);
    let pk = PublicKey::generate(he, &sk, &mut rng);
    let rlk = RelinKey::generate(he, &sk, &mut rng);
    let enc = Encoder::new(&params);
    let mut ev = Evaluator::new(&params);
    let x = uniform(&mut rng, params.slots(), 4.0);
    let pt = enc.encode(&x, params.scale(), he.max_level()).unwrap();
    let ct = encrypt_pk(&params, &pk, &pt, &mut rng).unwrap();
    let sq = ev.square_relin(&ct, &rlk).unwrap();
    let sq = ev.rescale(&sq).unwrap();
    let want: Vec<f64> = x.iter().map(|a| a * a).collect();
    let p = precision(&enc, &sk, &sq, &want).unwrap();
    assert!(p.measured <= p.predicted, "{p:?}");
    assert!(p.predicted < 1e-2, "{p:?}");
    assert_eq!(p.level, 1);
}

#[test]
fn every_ckks_error() {
    let (mut s, mut rng) = setup(5);
    let top = s.params.he().max_level();
    let delta = s.params.scale();
    let slots = s.params.slots();
    let pt = s.enc.encode(&[1.0, 2.0], delta, top).unwrap();
    let ct = encrypt_sk(&s.params, &s.sk, &pt, &mut rng).unwrap();
    let low = s.eval.mod_switch_to(&ct, 1).unwrap();
    assert_eq!(
        s.eval.add(&ct, &low).unwrap_err(),
        CkksError::LevelMismatch {
            left: top,
            right: 1
        }
    );
    assert!(matches!(
        s.eval.mul_relin(&ct, &low, &s.rlk),
        Err(CkksError::LevelMismatch { .. })
    ));
    assert!(matches!(
        s.eval
            .mul_plain(&ct, &s.enc.encode(&[1.0], delta, 1).unwrap()),
        Err(CkksError::LevelMismatch { .. })
    ));
    let other_scale = s.enc.encode(&[1.0], delta * 2.0, top).unwrap();
    assert!(matches!(
        s.eval.add_plain(&ct, &other_scale),
        Err(CkksError::ScaleMismatch { .. })
    ));
    assert_eq!(
        s.eval.rescale(&low).unwrap_err(),
        CkksError::BadLevel {
            level: 1,
            requested: 0
        }
    );
    assert!(matches!(
        s.eval.mod_switch_to(&ct, 0),
        Err(CkksError::BadLevel { .. })
    ));
    assert!(matches!(
        s.eval.mod_switch_to(&low, 2),
        Err(CkksError::BadLevel { .. })
    ));
    assert!(matches!(
        s.enc.encode(&[1.0], delta, top + 1),
        Err(CkksError::BadLevel { .. })
    ));
    let g = rotation_element(1024, 7);
    assert_eq!(
        s.eval.rotate(&ct, 7, &s.gk).unwrap_err(),
        CkksError::MissingGaloisKey { element: g }
    );
    assert_eq!(
        s.enc.encode(&vec![0.0; slots + 1], delta, top).unwrap_err(),
        CkksError::TooManySlots {
            given: slots + 1,
            slots
        }
    );
    assert!(matches!(
        s.enc.encode(&[1e30], delta, top),
        Err(CkksError::Overflow { .. })
    ));
    assert!(matches!(
        s.enc.encode(&[f64::NAN], delta, top),
        Err(CkksError::Overflow { .. })
    ));
    assert!(matches!(
        s.eval.mul_real(&ct, 1e30, delta),
        Err(CkksError::Overflow { .. })
    ));
    for bad in [0.0, -1.0, f64::INFINITY] {
        assert!(matches!(
            s.enc.encode(&[1.0], bad, top),
            Err(CkksError::BadScale { .. })
        ));
    }
    assert_eq!(
        s.eval.dot_integer(&[&ct], &[1, 2]).unwrap_err(),
        CkksError::LengthMismatch {
            ciphertexts: 1,
            weights: 2
        }
    );
    assert!(matches!(
        s.eval.dot_integer(&[], &[]),
        Err(CkksError::LengthMismatch { .. })
    ));
    // Objects of other parameters.
    let (other, mut rng2) = setup_other();
    let foreign_pt = Encoder::new(&other.0).encode(&[1.0], delta, 1).unwrap();
    let foreign = encrypt_sk(&other.0, &other.1, &foreign_pt, &mut rng2).unwrap();
    let e = s.eval.add(&low, &foreign).unwrap_err();
    assert!(matches!(e, CkksError::ForeignObject { .. }), "{e}");
    assert!(matches!(
        decrypt(&s.params, &other.1, &ct),
        Err(CkksError::ForeignObject { .. })
    ));
    assert!(e.to_string().contains("fingerprint"));
}

fn setup_other() -> ((CkksParams, SecretKey), rand_chacha::ChaCha20Rng) {
    let mut rng = seeded_rng("ckks-other", 9);
    let params = CkksParams::for_depth_insecure_for_tests(1024, 2, 40, 55).unwrap();
    let sk = SecretKey::generate(params.he(), &mut rng);
    ((params, sk), rng)
}

/// 200 terms over 61-bit primes: the u128 accumulator must fold (every 63 terms here).
#[test]
fn long_integer_dot_products_fold_their_accumulators() {
    let mut rng = seeded_rng("ckks-dot", 7);
    let params = CkksParams::for_depth_insecure_for_tests(16, 1, 40, 61).unwrap();
    let he = params.he();
    assert_eq!(he.chain()[0] >> 60, 1);
    let sk = SecretKey::generate(he, &mut rng);
    let enc = Encoder::new(&params);
    let ev = Evaluator::new(&params);
    let mut cts = Vec::new();
    let mut want = vec![0.0; params.slots()];
    let mut weights = Vec::new();
    for t in 0..200i64 {
        let x = uniform(&mut rng, params.slots(), 1.0);
        let w = (t % 7) - 3;
        for (acc, v) in want.iter_mut().zip(&x) {
            *acc += w as f64 * v;
        }
        let pt = enc.encode(&x, params.scale(), 2).unwrap();
        cts.push(encrypt_sk(&params, &sk, &pt, &mut rng).unwrap());
        weights.push(w);
    }
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    let dot = ev.dot_integer(&refs, &weights).unwrap();
    let p = precision(&enc, &sk, &dot, &want).unwrap();
    assert!(p.measured <= p.predicted && p.predicted < 1e-6, "{p:?}");
}

/// The unrounded inverse embedding against the naive embedding: a polynomial's slots map
/// back to its coefficients, and the real parts alone to `m(X) + m(X^-1)` at twice the
/// scale (the identity key recovery re-encodes released real parts with).
#[test]
fn embed_inverse_inverts_the_naive_embedding() {
    let mut rng = seeded_rng("embed-inverse", 3);
    let n = 64;
    let params = CkksParams::for_depth_insecure_for_tests(n, 1, 30, 40).unwrap();
    let enc = Encoder::new(&params);
    let m: Vec<f64> = (0..n)
        .map(|_| f64::from((rng.next_u32() % 2001) as i32 - 1000))
        .collect();
    let slots = naive_slots(&m);
    let back = enc.embed_inverse(&slots, 1.0).unwrap();
    for (b, want) in back.iter().zip(&m) {
        assert!((b - want).abs() < 1e-9, "{b} vs {want}");
    }
    let re: Vec<Complex> = slots.iter().map(|z| Complex::new(z.re, 0.0)).collect();
    let sym = enc.embed_inverse(&re, 2.0).unwrap();
    for (k, s) in sym.iter().enumerate() {
        let want = if k == 0 { 2.0 * m[0] } else { m[k] - m[n - k] };
        assert!((s - want).abs() < 1e-9, "coefficient {k}: {s} vs {want}");
    }
    assert!(matches!(
        enc.embed_inverse(&re, 0.0),
        Err(CkksError::BadScale { .. })
    ));
    assert!(matches!(
        enc.embed_inverse(&vec![Complex::default(); n], 1.0),
        Err(CkksError::TooManySlots { .. })
    ));
    assert!(matches!(
        enc.embed_inverse(&[Complex::new(f64::NAN, 0.0)], 1.0),
        Err(CkksError::Overflow { .. })
    ));
}

/// Keys and tools for one chain of primes of the given bit sizes (level = their count),
/// at scale 2^40, N = 1024, without the security check.
fn chain_setup(bits: &[u32], seed: u64) -> (Setup, rand_chacha::ChaCha20Rng) {
    let n = 1024;
    let mut rng = seeded_rng("ckks-capacity", seed);
    let mut chain = Vec::new();
    for &b in bits {
        let p = heist_core::primes::ntt_primes(b, 2 * n as u64, 1, &chain).unwrap();
        chain.extend(p);
    }
    let special = heist_core::primes::ntt_primes(61, 2 * n as u64, 1, &chain).unwrap()[0];
    let params = CkksParams::new_insecure_for_tests(n, &chain, special, 40).unwrap();
    let he = params.he();
    let sk = SecretKey::generate(he, &mut rng);
    let pk = PublicKey::generate(he, &sk, &mut rng);
    let rlk = RelinKey::generate(he, &sk, &mut rng);
    let gk = GaloisKeys::generate(he, &sk, &[], &mut rng).unwrap();
    let setup = Setup {
        enc: Encoder::new(&params),
        eval: Evaluator::new(&params),
        params,
        sk,
        pk,
        rlk,
        gk,
    };
    (setup, rng)
}

/// Two 2^40-scale operands on one 60-bit limb: their product (scale 2^80) cannot be held
/// modulo a 60-bit prime. It must be refused, not returned with a small predicted error
/// while it decrypts to garbage. On two limbs (≈ 2^100) the same product fits and is right.
#[test]
fn a_product_beyond_the_modulus_is_refused() {
    let (mut s, mut rng) = chain_setup(&[60], 1);
    let x = uniform(&mut rng, 8, 1.0);
    let pt = s.enc.encode(&x, s.params.scale(), 1).unwrap();
    let ct = encrypt_pk(&s.params, &s.pk, &pt, &mut rng).unwrap();
    let delta = s.params.scale();
    let product = s.eval.mul_relin(&ct, &ct, &s.rlk);
    let square = s.eval.square_relin(&ct, &s.rlk);
    let plain = s.eval.mul_plain(&ct, &pt);
    let real = s.eval.mul_real(&ct, 0.5, delta);
    let dot = s.eval.dot_real(&[&ct, &ct], &[0.5, 0.25], delta);
    for refused in [product, square, plain, real, dot] {
        match refused {
            Err(CkksError::Capacity {
                level,
                needed_bits,
                available_bits,
            }) => {
                assert_eq!(level, 1);
                assert!(
                    needed_bits > 70.0 && available_bits < 60.0,
                    "{needed_bits} {available_bits}"
                );
            }
            other => panic!("a 2^80 product on a 60-bit limb: {other:?}"),
        }
    }
    let (mut s, mut rng) = chain_setup(&[60, 40], 2);
    let pt = s.enc.encode(&x, s.params.scale(), 2).unwrap();
    let ct = encrypt_pk(&s.params, &s.pk, &pt, &mut rng).unwrap();
    let square = s.eval.square_relin(&ct, &s.rlk).unwrap();
    let want: Vec<f64> = x.iter().map(|v| v * v).collect();
    let rescaled = s.eval.rescale(&square).unwrap();
    check(&s, &rescaled, &want);
}

/// At level 1 (one 40-bit limb): a message of 2^20 at scale 2^40 does not fit (2^60), not
/// at encoding, not by dropping limbs from a higher level, not by adding up.
#[test]
fn a_message_beyond_the_modulus_at_level_one_is_refused() {
    let (s, mut rng) = chain_setup(&[40, 60], 3);
    let delta = s.params.scale();
    let big = [f64::from(1u32 << 20)];
    assert!(matches!(
        s.enc.encode(&big, delta, 1),
        Err(CkksError::Capacity { level: 1, .. })
    ));
    assert!(matches!(
        s.enc.encode_constant(big[0], delta, 1),
        Err(CkksError::Capacity { level: 1, .. })
    ));
    // Fits two limbs (100 bits), not one.
    let pt = s.enc.encode(&big, delta, 2).unwrap();
    let ct = encrypt_pk(&s.params, &s.pk, &pt, &mut rng).unwrap();
    assert!(matches!(
        s.eval.mod_switch_to(&ct, 1),
        Err(CkksError::Capacity { level: 1, .. })
    ));
    // Sums that outgrow level 1: 2^-2 fits (2^38), eight of them do not fit below 2^39.
    let small = s.enc.encode(&[0.25], delta, 1).unwrap();
    let mut acc = encrypt_pk(&s.params, &s.pk, &small, &mut rng).unwrap();
    let one = acc.clone();
    let mut refused = None;
    for k in 2..=8 {
        match s.eval.add_assign(&mut acc, &one) {
            Ok(()) => assert!(acc.msg_bound() <= 2.0, "sum {k} accepted beyond 2^39"),
            Err(e) => {
                refused = Some((k, e, acc.msg_bound()));
                break;
            }
        }
    }
    let (k, e, kept) = refused.expect("a sum of eight quarters at 2^40 passes 2^39");
    assert!(matches!(e, CkksError::Capacity { level: 1, .. }), "{e:?}");
    assert_eq!(
        kept,
        0.25 * (k - 1) as f64,
        "a refused sum leaves its operand unchanged"
    );
}
