//! BFV end to end: random circuits decrypt to the plaintext result modulo `t`, the noise
//! budget and its tracked bound, a pinned known answer, and every error path.

use heist_core::primes::ntt_primes;
use heist_he::bfv::{
    decrypt, encrypt_pk, encrypt_sk, noise_budget, BatchEncoder, BfvError, BfvParams, Ciphertext,
    Evaluator, Plaintext,
};
use heist_he::bfv::{rotation_galois_element, row_swap_galois_element};
use heist_he::keys::{GaloisKeys, PublicKey, RelinKey, SecretKey};
use heist_he::params::{Fnv1a, ParamsError, SecurityLevel};
use heist_tests::seeded_rng;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

const T: u64 = 65537;
const STEPS: [i64; 3] = [1, -1, 3];

/// An insecure set at `n` with three 50-bit chain primes and a 55-bit special prime.
fn small_params(n: usize, t: u64) -> BfvParams {
    small_params_bits(n, t, 50)
}

/// As [`small_params`] with chain primes of `bits` bits.
fn small_params_bits(n: usize, t: u64, bits: u32) -> BfvParams {
    let chain = ntt_primes(bits, 2 * n as u64, 3, &[t]).unwrap();
    let special = ntt_primes(55, 2 * n as u64, 1, &[t]).unwrap()[0];
    BfvParams::new_insecure_for_tests(n, &chain, special, t).unwrap()
}

struct Keys {
    sk: SecretKey,
    pk: PublicKey,
    rlk: RelinKey,
    gk: GaloisKeys,
}

fn keys(params: &BfvParams, rng: &mut ChaCha20Rng) -> Keys {
    let he = params.he();
    let sk = SecretKey::generate(he, rng);
    let pk = PublicKey::generate(he, &sk, rng);
    let rlk = RelinKey::generate(he, &sk, rng);
    let mut els: Vec<u64> = STEPS
        .iter()
        .map(|&s| rotation_galois_element(params.n(), s))
        .collect();
    els.push(row_swap_galois_element(params.n()));
    let gk = GaloisKeys::generate(he, &sk, &els, rng).unwrap();
    Keys { sk, pk, rlk, gk }
}

fn random_slots(rng: &mut impl RngCore, n: usize, t: u64) -> Vec<u64> {
    (0..n).map(|_| rng.next_u64() % t).collect()
}

fn rotate(v: &[u64], steps: i64) -> Vec<u64> {
    let half = v.len() / 2;
    let k = steps.rem_euclid(half as i64) as usize;
    let mut out = vec![0; v.len()];
    for row in 0..2 {
        for i in 0..half {
            out[row * half + i] = v[row * half + (i + k) % half];
        }
    }
    out
}

fn zip(a: &[u64], b: &[u64], f: impl Fn(u128, u128) -> u128) -> Vec<u64> {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f(x as u128, y as u128) % T as u128) as u64)
        .collect()
}

fn check(
    params: &BfvParams,
    enc: &BatchEncoder,
    sk: &SecretKey,
    ct: &Ciphertext,
    expected: &[u64],
) -> Result<f64, TestCaseError> {
    let measured = noise_budget(params, sk, ct).unwrap();
    let estimate = ct.noise_budget_estimate();
    prop_assert!(
        estimate <= measured,
        "estimate {} > measured {}",
        estimate,
        measured
    );
    prop_assert!(measured > 0.0);
    let got = enc.decode_u64(&decrypt(params, sk, ct).unwrap()).unwrap();
    prop_assert_eq!(got, expected.to_vec());
    Ok(measured)
}

proptest! {
    #![proptest_config(heist_tests::seeded_config(6))]

    #[test]
    fn random_circuits_decrypt_to_the_plaintext_result(seed in any::<u64>()) {
        let mut rng = seeded_rng("bfv-circuit", seed);
        let n = 1024;
        let params = small_params(n, T);
        let k = keys(&params, &mut rng);
        let enc = BatchEncoder::new(n, T).unwrap();
        let mut ev = Evaluator::new(&params);
        let mut pool: Vec<(Ciphertext, Vec<u64>)> = Vec::new();
        for i in 0..3 {
            let v = random_slots(&mut rng, n, T);
            let pt = enc.encode_u64(&v).unwrap();
            let ct = if i == 0 {
                encrypt_sk(&params, &k.sk, &pt, &mut rng).unwrap()
            } else {
                encrypt_pk(&params, &k.pk, &pt, &mut rng).unwrap()
            };
            check(&params, &enc, &k.sk, &ct, &v)?;
            pool.push((ct, v));
        }
        for _ in 0..14 {
            let pick = |rng: &mut ChaCha20Rng, len: usize| (rng.next_u64() % len as u64) as usize;
            let (i, j) = (pick(&mut rng, pool.len()), pick(&mut rng, pool.len()));
            let (a, va) = &pool[i];
            let (b, vb) = &pool[j];
            let op = rng.next_u64() % 10;
            let (ct, v) = match op {
                0 => (ev.add(a, b).unwrap(), zip(va, vb, |x, y| x + y)),
                1 => (ev.sub(a, b).unwrap(), zip(va, vb, |x, y| x + T as u128 - y)),
                2 => (ev.neg(a).unwrap(), va.iter().map(|&x| (T - x) % T).collect()),
                3 | 4 => {
                    let p = random_slots(&mut rng, n, T);
                    let pt = enc.encode_u64(&p).unwrap();
                    if op == 3 {
                        (ev.add_plain(a, &pt).unwrap(), zip(va, &p, |x, y| x + y))
                    } else {
                        (ev.mul_plain(a, &pt).unwrap(), zip(va, &p, |x, y| x * y))
                    }
                }
                5 => {
                    let c = (rng.next_u64() % 201) as i64 - 100;
                    let cm = c.rem_euclid(T as i64) as u128;
                    (ev.mul_scalar(a, c).unwrap(), va.iter().map(|&x| (x as u128 * cm % T as u128) as u64).collect())
                }
                6 => {
                    let w = [(rng.next_u64() % 7) as i64 - 3, (rng.next_u64() % 7) as i64 - 3];
                    let wm: Vec<u128> = w.iter().map(|&x| x.rem_euclid(T as i64) as u128).collect();
                    let v = zip(va, vb, |x, y| x * wm[0] + y * wm[1]);
                    (ev.dot_scalar(&[a, b], &w).unwrap(), v)
                }
                7 => (ev.mul(a, b, &k.rlk).unwrap(), zip(va, vb, |x, y| x * y)),
                8 => {
                    let s = STEPS[pick(&mut rng, STEPS.len())];
                    (ev.rotate_rows(a, s, &k.gk).unwrap(), rotate(va, s))
                }
                _ => {
                    let half = n / 2;
                    let v = va[half..].iter().chain(&va[..half]).copied().collect();
                    (ev.swap_rows(a, &k.gk).unwrap(), v)
                }
            };
            // The bound never claims more budget than its operands had, except where the
            // noise may shrink: negation keeps it, scalars of magnitude at most one keep or
            // cancel it.
            let inputs = if matches!(op, 0 | 1 | 7) {
                a.noise_budget_estimate().min(b.noise_budget_estimate())
            } else {
                a.noise_budget_estimate()
            };
            if !matches!(op, 2 | 5 | 6) {
                prop_assert!(ct.noise_budget_estimate() <= inputs, "op {}", op);
            }
            // Keep only results the bound still guarantees: those must decrypt exactly.
            if ct.noise_budget_estimate() > 0.0 {
                check(&params, &enc, &k.sk, &ct, &v)?;
                pool.push((ct, v));
            }
        }
    }
}

#[test]
fn budget_falls_with_each_multiplication_and_decryption_holds_while_positive() {
    let mut rng = seeded_rng("bfv-budget", 7);
    let n = 1024;
    let params = small_params(n, T);
    let k = keys(&params, &mut rng);
    let enc = BatchEncoder::new(n, T).unwrap();
    let mut ev = Evaluator::new(&params);
    let mut v = random_slots(&mut rng, n, T);
    let mut ct = encrypt_pk(&params, &k.pk, &enc.encode_u64(&v).unwrap(), &mut rng).unwrap();
    let mut last = noise_budget(&params, &k.sk, &ct).unwrap();
    let mut last_estimate = ct.noise_budget_estimate();
    assert!(last_estimate <= last);
    let mut correct_levels = 0;
    for _ in 0..6 {
        ct = ev.square(&ct, &k.rlk).unwrap();
        v = zip(&v, &v, |x, y| x * y);
        let budget = noise_budget(&params, &k.sk, &ct).unwrap();
        let estimate = ct.noise_budget_estimate();
        assert!(budget < last, "budget {budget} did not fall from {last}");
        assert!(estimate < last_estimate);
        // A wrapped noise measures about 1.44/N bits: one bit proves correctness.
        if budget >= 1.0 {
            assert!(
                estimate <= budget,
                "estimate {estimate} > measured {budget}"
            );
            let got = enc
                .decode_u64(&decrypt(&params, &k.sk, &ct).unwrap())
                .unwrap();
            assert_eq!(got, v);
            correct_levels += 1;
        } else {
            break;
        }
        last = budget;
        last_estimate = estimate;
    }
    // 150 bits of Q: two squarings at least, and the budget must run out within six.
    assert!((2..6).contains(&correct_levels), "{correct_levels} levels");
}

#[test]
fn signed_values_and_several_plaintext_moduli_recombine_by_crt() {
    // Two sets on one chain differing only in t; one key pair serves both.
    let mut rng = seeded_rng("bfv-crt", 11);
    let n = 1024;
    let t2 = 12289; // 12289 = 12·1024 + 1
    let p1 = small_params(n, T);
    let p2 = p1.with_plain_modulus(t2).unwrap();
    assert_eq!(p1.he().fingerprint(), p2.he().fingerprint());
    assert_ne!(p1.fingerprint(), p2.fingerprint());
    let k = keys(&p1, &mut rng);
    let x: Vec<i64> = (0..n as i64).map(|i| (i * 37) % 2001 - 1000).collect();
    let y: Vec<i64> = (0..n as i64).map(|i| (i * 91) % 1001 - 500).collect();
    let mut residues = Vec::new();
    for p in [&p1, &p2] {
        let t = p.plain_modulus().value();
        let enc = BatchEncoder::new(n, t).unwrap();
        let mut ev = Evaluator::new(p);
        let (cx, cy) = (
            encrypt_pk(
                p,
                &k.pk,
                &enc.encode_i64(
                    &x.iter()
                        .map(|&v| {
                            v.rem_euclid(t as i64)
                                - if v.rem_euclid(t as i64) > (t / 2) as i64 {
                                    t as i64
                                } else {
                                    0
                                }
                        })
                        .collect::<Vec<_>>(),
                )
                .unwrap(),
                &mut rng,
            )
            .unwrap(),
            encrypt_pk(
                p,
                &k.pk,
                &enc.encode_u64(
                    &y.iter()
                        .map(|&v| v.rem_euclid(t as i64) as u64)
                        .collect::<Vec<_>>(),
                )
                .unwrap(),
                &mut rng,
            )
            .unwrap(),
        );
        let prod = ev.mul(&cx, &cy, &k.rlk).unwrap();
        residues.push((
            t,
            enc.decode_u64(&decrypt(p, &k.sk, &prod).unwrap()).unwrap(),
        ));
    }
    // x·y lies in (-t1·t2/2, t1·t2/2): CRT recombination recovers it exactly.
    let (t1, r1) = &residues[0];
    let (t2, r2) = &residues[1];
    let m = (*t1 as i128) * (*t2 as i128);
    let inv = (1..*t2 as i128)
        .find(|&u| (*t1 as i128 * u) % *t2 as i128 == 1)
        .unwrap();
    for i in 0..n {
        let a = r1[i] as i128;
        let b = r2[i] as i128;
        let mut z = (a + *t1 as i128 * (((b - a).rem_euclid(*t2 as i128) * inv) % *t2 as i128)) % m;
        if z > m / 2 {
            z -= m;
        }
        assert_eq!(z, (x[i] * y[i]) as i128, "slot {i}");
    }
}

#[test]
fn pinned_known_answer() {
    let mut rng = seeded_rng("bfv-kat", 2024);
    let n = 256;
    let params = small_params(n, 7681); // 7681 = 15·512 + 1
    let k = keys(&params, &mut rng);
    let enc = BatchEncoder::new(n, 7681).unwrap();
    let mut ev = Evaluator::new(&params);
    let a: Vec<i64> = (0..n as i64).map(|i| i - 128).collect();
    let b: Vec<i64> = (0..n as i64).map(|i| 3 * i % 17 - 8).collect();
    let ca = encrypt_pk(&params, &k.pk, &enc.encode_i64(&a).unwrap(), &mut rng).unwrap();
    let cb = encrypt_sk(&params, &k.sk, &enc.encode_i64(&b).unwrap(), &mut rng).unwrap();
    let prod = ev.mul(&ca, &cb, &k.rlk).unwrap();
    let rot = ev.rotate_rows(&prod, 1, &k.gk).unwrap();
    let sum = ev.dot_scalar(&[&rot, &ca], &[2, -3]).unwrap();
    let out = enc
        .decode_i64(&decrypt(&params, &k.sk, &sum).unwrap())
        .unwrap();
    let half = n / 2;
    for row in 0..2 {
        for i in 0..half {
            let s = row * half + (i + 1) % half;
            let want = (2 * a[s] * b[s] - 3 * a[row * half + i]).rem_euclid(7681);
            let want = if want > 3840 { want - 7681 } else { want };
            assert_eq!(out[row * half + i], want);
        }
    }
    let mut h = Fnv1a::new();
    h.update(&sum.encode());
    for v in &out {
        h.update(&v.to_le_bytes());
    }
    assert_eq!(
        h.finish(),
        PINNED,
        "the seeded BFV run changed: {:#018x}",
        h.finish()
    );
}

const PINNED: u64 = 0x874f_9004_3dcb_36cc;

#[test]
fn encodings_round_trip_and_reject_bad_bytes() {
    let mut rng = seeded_rng("bfv-wire", 5);
    let n = 256;
    let params = small_params(n, 7681);
    let sk = SecretKey::generate(params.he(), &mut rng);
    let enc = BatchEncoder::new(n, 7681).unwrap();
    let pt = enc.encode_u64(&random_slots(&mut rng, n, 7681)).unwrap();
    let ct = encrypt_sk(&params, &sk, &pt, &mut rng).unwrap();

    let pb = params.encode();
    let back = BfvParams::decode_insecure_for_tests(&pb).unwrap();
    assert_eq!(back.fingerprint(), params.fingerprint());
    assert!(matches!(
        BfvParams::decode(&pb),
        Err(heist_he::wire::WireError::BadValue { .. })
    ));
    assert_eq!(Plaintext::decode(&params, &pt.encode(&params)).unwrap(), pt);
    let full = ct.encode();
    let seeded = ct.encode_seeded().unwrap();
    assert!(seeded.len() < full.len() / 2 + 64);
    let decoded = Ciphertext::decode(&params, &full).unwrap();
    assert_eq!((decoded.c0(), decoded.c1()), (ct.c0(), ct.c1()));
    assert_eq!(decoded.noise_bound(), ct.noise_bound());
    assert!(!decoded.is_seeded() && ct.is_seeded());
    assert_eq!(Ciphertext::decode(&params, &seeded).unwrap(), ct);
    let ev = Evaluator::new(&params);
    assert!(ev.add(&ct, &ct).unwrap().encode_seeded().is_none());

    use heist_he::wire::WireError as W;
    // Truncated, trailing, foreign, corrupted residue, bad bound, wrong kind, bad t.
    for cut in [0, 10, 20, full.len() - 1] {
        assert!(
            Ciphertext::decode(&params, &full[..cut]).is_err(),
            "cut {cut}"
        );
    }
    let mut long = full.clone();
    long.push(0);
    assert!(matches!(
        Ciphertext::decode(&params, &long),
        Err(W::TrailingBytes { count: 1 })
    ));
    let foreign = small_params(n, 12289);
    assert!(matches!(
        Ciphertext::decode(&foreign, &full),
        Err(W::ForeignParams { .. })
    ));
    assert!(matches!(
        Plaintext::decode(&foreign, &pt.encode(&params)),
        Err(W::ForeignParams { .. })
    ));
    let mut bad = full.clone();
    bad[20 + 8..20 + 16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        Ciphertext::decode(&params, &bad),
        Err(W::ResidueOutOfRange { limb: 0, .. })
    ));
    let mut bad = full.clone();
    bad[20..28].copy_from_slice(&(-1.0f64).to_bits().to_le_bytes());
    assert!(matches!(
        Ciphertext::decode(&params, &bad),
        Err(W::BadValue {
            what: "noise bound",
            ..
        })
    ));
    let mut bad = full.clone();
    bad[20..28].copy_from_slice(&f64::NAN.to_bits().to_le_bytes());
    assert!(matches!(
        Ciphertext::decode(&params, &bad),
        Err(W::BadValue { .. })
    ));
    assert!(matches!(
        Ciphertext::decode(&params, &pb),
        Err(W::WrongKind { .. })
    ));
    let mut bad = pt.encode(&params);
    bad[20..28].copy_from_slice(&7681u64.to_le_bytes());
    assert!(matches!(
        Plaintext::decode(&params, &bad),
        Err(W::ResidueOutOfRange { value: 7681, .. })
    ));
    let mut bad = pb.clone();
    let len = bad.len();
    bad[len - 8..].copy_from_slice(&7683u64.to_le_bytes());
    assert!(matches!(
        BfvParams::decode_insecure_for_tests(&bad),
        Err(W::Params(ParamsError::Scheme { value: 7683, .. }))
    ));
    let mut bad = pb.clone();
    bad[8] ^= 1;
    assert!(matches!(
        BfvParams::decode_insecure_for_tests(&bad),
        Err(W::ForeignParams { .. })
    ));
    let mut bad = full.clone();
    bad[16..20].copy_from_slice(&0u32.to_le_bytes());
    assert!(Ciphertext::decode(&params, &bad).is_err());
}

#[test]
fn every_error_path() {
    let mut rng = seeded_rng("bfv-errors", 3);
    let n = 256;
    let params = small_params(n, 7681);
    let other = small_params_bits(n, 12289, 45);
    let k = keys(&params, &mut rng);
    let ko = keys(&other, &mut rng);
    let enc = BatchEncoder::new(n, 7681).unwrap();
    let enc_other = BatchEncoder::new(n, 12289).unwrap();
    let pt = enc.encode_u64(&[1, 2, 3]).unwrap();
    let pt_other = enc_other.encode_u64(&[1]).unwrap();
    let ct = encrypt_pk(&params, &k.pk, &pt, &mut rng).unwrap();
    let ct_other = encrypt_pk(&other, &ko.pk, &pt_other, &mut rng).unwrap();
    let mut ev = Evaluator::new(&params);
    assert_eq!(ev.params().fingerprint(), params.fingerprint());

    let foreign = |e: BfvError| matches!(e, BfvError::ForeignObject { .. });
    assert!(foreign(ev.add(&ct, &ct_other).unwrap_err()));
    assert!(foreign(ev.add(&ct_other, &ct).unwrap_err()));
    assert!(foreign(ev.sub(&ct, &ct_other).unwrap_err()));
    assert!(foreign(ev.neg(&ct_other).unwrap_err()));
    assert!(foreign(ev.mul(&ct, &ct_other, &k.rlk).unwrap_err()));
    assert!(foreign(ev.mul(&ct, &ct, &ko.rlk).unwrap_err()));
    assert!(foreign(ev.rotate_rows(&ct, 1, &ko.gk).unwrap_err()));
    assert!(foreign(
        ev.dot_scalar(&[&ct, &ct_other], &[1, 1]).unwrap_err()
    ));
    assert!(foreign(
        encrypt_pk(&params, &ko.pk, &pt, &mut rng).unwrap_err()
    ));
    assert!(foreign(
        encrypt_sk(&params, &ko.sk, &pt, &mut rng).unwrap_err()
    ));
    assert!(foreign(decrypt(&params, &ko.sk, &ct).unwrap_err()));
    assert!(foreign(decrypt(&params, &k.sk, &ct_other).unwrap_err()));
    assert!(foreign(
        noise_budget(&params, &k.sk, &ct_other).unwrap_err()
    ));
    let e = ev.add(&ct, &ct_other).unwrap_err();
    assert!(e.to_string().contains("other parameters"));

    let plain = |e: BfvError| {
        matches!(
            e,
            BfvError::PlainMismatch {
                t: 7681,
                found_t: 12289,
                ..
            }
        )
    };
    assert!(plain(ev.add_plain(&ct, &pt_other).unwrap_err()));
    assert!(plain(ev.sub_plain(&ct, &pt_other).unwrap_err()));
    assert!(plain(ev.mul_plain(&ct, &pt_other).unwrap_err()));
    assert!(plain(
        encrypt_pk(&params, &k.pk, &pt_other, &mut rng).unwrap_err()
    ));
    assert!(plain(
        encrypt_sk(&params, &k.sk, &pt_other, &mut rng).unwrap_err()
    ));

    let e = ev.rotate_rows(&ct, 2, &k.gk).unwrap_err();
    assert_eq!(
        e,
        BfvError::MissingGaloisKey {
            element: rotation_galois_element(n, 2)
        }
    );
    assert!(e.to_string().contains("Galois"));
    let e = ev.dot_scalar(&[&ct], &[1, 2]).unwrap_err();
    assert_eq!(
        e,
        BfvError::LengthMismatch {
            ciphertexts: 1,
            weights: 2
        }
    );
    assert!(e.to_string().contains("weights"));
    assert!(matches!(
        ev.dot_scalar(&[], &[]),
        Err(BfvError::LengthMismatch { ciphertexts: 0, .. })
    ));
    // sub_plain and swap_rows on valid operands.
    let d = ev.sub_plain(&ct, &pt).unwrap();
    assert!(enc
        .decode_u64(&decrypt(&params, &k.sk, &d).unwrap())
        .unwrap()
        .iter()
        .all(|&v| v == 0));

    // Parameter errors.
    let chain = ntt_primes(50, 2 * n as u64, 2, &[]).unwrap();
    let special = ntt_primes(55, 2 * n as u64, 1, &[]).unwrap()[0];
    let scheme = |r: Result<BfvParams, ParamsError>, t: u64| matches!(r, Err(ParamsError::Scheme { value, .. }) if value == t);
    assert!(scheme(
        BfvParams::new_insecure_for_tests(n, &chain, special, 7683),
        7683
    ));
    assert!(scheme(
        BfvParams::new_insecure_for_tests(n, &chain, special, 7681 + 512 * 2),
        7681 + 1024
    ));
    assert!(scheme(
        BfvParams::new_insecure_for_tests(n, &chain, special, chain[0]),
        chain[0]
    ));
    assert!(scheme(
        BfvParams::new_insecure_for_tests(n, &chain, special, 1),
        1
    ));
    let small_q = ntt_primes(20, 2 * n as u64, 1, &[]).unwrap();
    let big_t = ntt_primes(40, 2 * n as u64, 1, &[]).unwrap()[0];
    assert!(scheme(
        BfvParams::new_insecure_for_tests(n, &small_q, special, big_t),
        big_t
    ));
    assert!(matches!(
        BfvParams::new(n, &chain, special, 7681, SecurityLevel::Tc128),
        Err(ParamsError::BadDegree { .. })
    ));
    assert!(matches!(
        BfvParams::default_for(2048),
        Err(ParamsError::BadDegree { n: 2048, .. })
    ));
    let e = BfvParams::for_depth(4096, T, 6, SecurityLevel::Tc128).unwrap_err();
    assert!(matches!(e, ParamsError::Insecure { n: 4096, .. }), "{e}");
    assert!(matches!(
        BfvParams::for_depth(1000, T, 1, SecurityLevel::Tc128),
        Err(ParamsError::BadDegree { .. })
    ));
}

#[test]
fn secure_sets_for_depth_and_defaults() {
    let p = BfvParams::for_depth(8192, T, 2, SecurityLevel::Tc128).unwrap();
    assert_eq!(p.he().security(), Some(SecurityLevel::Tc128));
    assert!(p.he().log_q() <= 218);
    for n in [4096, 8192, 16384] {
        let d = BfvParams::default_for(n).unwrap();
        assert_eq!(d.n(), n);
        assert_eq!(d.plain_modulus().value(), T);
        assert!(d.aux_basis().len() >= 2);
    }
    // Depth 2 at N = 8192 fits 218 bits and works.
    let mut rng = seeded_rng("bfv-depth", 9);
    let sk = SecretKey::generate(p.he(), &mut rng);
    let pk = PublicKey::generate(p.he(), &sk, &mut rng);
    let rlk = RelinKey::generate(p.he(), &sk, &mut rng);
    let enc = BatchEncoder::new(8192, T).unwrap();
    let mut ev = Evaluator::new(&p);
    let v = random_slots(&mut rng, 8192, T);
    let ct = encrypt_pk(&p, &pk, &enc.encode_u64(&v).unwrap(), &mut rng).unwrap();
    let sq = ev.square(&ct, &rlk).unwrap();
    let q4 = ev.square(&sq, &rlk).unwrap();
    assert!(q4.noise_budget_estimate() > 0.0);
    let want: Vec<u64> = v
        .iter()
        .map(|&x| {
            let x2 = x as u128 * x as u128 % T as u128;
            (x2 * x2 % T as u128) as u64
        })
        .collect();
    assert_eq!(
        enc.decode_u64(&decrypt(&p, &sk, &q4).unwrap()).unwrap(),
        want
    );
    assert!(noise_budget(&p, &sk, &q4).unwrap() >= q4.noise_budget_estimate());
}
