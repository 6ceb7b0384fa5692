//! Common parameters: the security table, refusal of insecure sets, chain helpers,
//! fingerprints, and every constructor error.

use heist_core::primes::ntt_primes;
use heist_he::ckks::CkksParams;
use heist_he::galois::{permutation, rotation_element, GaloisError};
use heist_he::params::{max_log_q, HeParams, ParamsError, SecurityLevel};

#[test]
fn table_matches_the_standard() {
    let rows = [
        (SecurityLevel::Tc128, [27, 54, 109, 218, 438, 881]),
        (SecurityLevel::Tc192, [19, 37, 75, 152, 305, 611]),
        (SecurityLevel::Tc256, [14, 29, 58, 118, 237, 476]),
    ];
    for (level, row) in rows {
        for (i, &want) in row.iter().enumerate() {
            assert_eq!(max_log_q(1024 << i, level), Some(want));
        }
        assert_eq!(max_log_q(512, level), None);
        assert_eq!(max_log_q(65536, level), None);
        assert_eq!(max_log_q(3000, level), None);
        assert_eq!(SecurityLevel::from_code(level.code()), Some(level));
    }
    assert_eq!(SecurityLevel::from_code(0), None);
}

#[test]
fn insecure_sets_are_refused_naming_both_numbers() {
    // N = 1024 allows 27 bits; two 20-bit primes and a 20-bit special prime make 60.
    let ps = ntt_primes(20, 2048, 3, &[]).unwrap();
    let err = HeParams::new(1024, &ps[1..], ps[0], SecurityLevel::Tc128).unwrap_err();
    assert_eq!(
        err,
        ParamsError::Insecure {
            log_q: 60,
            max_log_q: 27,
            n: 1024,
            level_bits: 128
        }
    );
    let text = err.to_string();
    assert!(text.contains("60") && text.contains("27"), "{text}");
    // The same primes pass the insecure constructor, and report no security level.
    let p = HeParams::new_insecure_for_tests(1024, &ps[1..], ps[0]).unwrap();
    assert_eq!(p.security(), None);
    assert_eq!(p.log_q(), 60);
    // The chain helper refuses depths that do not fit.
    let err = CkksParams::for_depth(4096, 3, 30, 38, SecurityLevel::Tc128).unwrap_err();
    assert!(
        matches!(
            err,
            ParamsError::Insecure {
                log_q: 166,
                max_log_q: 109,
                ..
            }
        ),
        "{err}"
    );
    // 192-bit security is stricter than 128-bit for the same chain.
    let ok = CkksParams::for_depth(8192, 2, 40, 60, SecurityLevel::Tc128).unwrap();
    assert_eq!(ok.he().log_q(), 200);
    let err = CkksParams::for_depth(8192, 2, 40, 60, SecurityLevel::Tc192).unwrap_err();
    assert!(matches!(err, ParamsError::Insecure { max_log_q: 152, .. }));
}

#[test]
fn default_sets_are_secure_and_shaped_as_documented() {
    for (n, depth, log_q) in [(4096, 1, 106), (8192, 2, 200), (16384, 5, 320)] {
        let p = CkksParams::default_for(n).unwrap();
        assert_eq!(p.depth(), depth);
        assert_eq!(p.he().log_q(), log_q);
        assert_eq!(p.he().security(), Some(SecurityLevel::Tc128));
        assert!(p.he().log_q() <= max_log_q(n, SecurityLevel::Tc128).unwrap());
        for &q in p.he().chain() {
            assert_eq!(q % (2 * n as u64), 1);
        }
    }
    assert!(matches!(
        CkksParams::default_for(2048),
        Err(ParamsError::BadDegree { n: 2048, .. })
    ));
}

#[test]
fn fingerprints_are_stable_and_distinguish_sets() {
    let a = CkksParams::for_depth_insecure_for_tests(1024, 2, 30, 40).unwrap();
    let b = CkksParams::for_depth_insecure_for_tests(1024, 2, 30, 40).unwrap();
    let c = CkksParams::for_depth_insecure_for_tests(1024, 3, 30, 40).unwrap();
    let d = CkksParams::for_depth_insecure_for_tests(2048, 2, 30, 40).unwrap();
    assert_eq!(a.he().fingerprint(), b.he().fingerprint());
    assert_ne!(a.he().fingerprint(), c.he().fingerprint());
    assert_ne!(a.he().fingerprint(), d.he().fingerprint());
    // FNV-1a 64 of the canonical bytes, recomputed here from its definition.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in &a.he().canonical_bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    assert_eq!(a.he().fingerprint(), h);
    // Secure and insecure constructions of the same primes differ in the security byte.
    let s = CkksParams::default_for(4096).unwrap();
    let i = HeParams::new_insecure_for_tests(4096, s.he().chain(), s.he().special()).unwrap();
    assert_ne!(s.he().fingerprint(), i.fingerprint());
}

#[test]
fn every_constructor_error() {
    let ps = ntt_primes(30, 2048, 4, &[]).unwrap();
    let e = HeParams::new_insecure_for_tests(1000, &ps[..1], ps[1]).unwrap_err();
    assert!(matches!(e, ParamsError::BadDegree { n: 1000, .. }), "{e}");
    let e = HeParams::new_insecure_for_tests(8, &ps[..1], ps[1]).unwrap_err();
    assert!(matches!(e, ParamsError::BadDegree { n: 8, .. }));
    let e = HeParams::new(512, &ps[..1], ps[1], SecurityLevel::Tc128).unwrap_err();
    assert!(matches!(e, ParamsError::BadDegree { n: 512, .. }));
    let e = HeParams::new_insecure_for_tests(1024, &[], ps[1]).unwrap_err();
    assert_eq!(e, ParamsError::BadChainLength { len: 0 });
    let long = vec![ps[0]; 33];
    let e = HeParams::new_insecure_for_tests(1024, &long, ps[1]).unwrap_err();
    assert_eq!(e, ParamsError::BadChainLength { len: 33 });
    let small = ntt_primes(20, 2048, 1, &[]).unwrap()[0];
    let e = HeParams::new_insecure_for_tests(1024, &ps[..1], small).unwrap_err();
    assert_eq!(
        e,
        ParamsError::SpecialTooSmall {
            special: small,
            largest: ps[0]
        }
    );
    let e = HeParams::new_insecure_for_tests(1024, &[ps[1], ps[1]], ps[0]).unwrap_err();
    assert!(matches!(e, ParamsError::Basis(_)), "{e}");
    // A prime that is not ≡ 1 mod 2N.
    let e = HeParams::new_insecure_for_tests(1024, &[1_000_000_007], ps[0]).unwrap_err();
    assert!(matches!(e, ParamsError::Basis(_)), "{e}");
    let e = CkksParams::new_insecure_for_tests(1024, &ps[1..3], ps[0], 0).unwrap_err();
    assert!(matches!(e, ParamsError::Scheme { value: 0, .. }), "{e}");
    let e = CkksParams::new_insecure_for_tests(1024, &ps[1..3], ps[0], 61).unwrap_err();
    assert!(matches!(e, ParamsError::Scheme { value: 61, .. }));
    let e = CkksParams::for_depth_insecure_for_tests(1024, 1, 40, 40).unwrap_err();
    assert!(matches!(e, ParamsError::Scheme { value: 40, .. }));
    let e = CkksParams::for_depth_insecure_for_tests(1024, 40, 30, 40).unwrap_err();
    assert!(matches!(e, ParamsError::BadChainLength { len: 41 }));
    let e = CkksParams::for_depth_insecure_for_tests(16, 1, 3, 4).unwrap_err();
    assert!(matches!(e, ParamsError::Primes(_)), "{e}");
    for e in [
        permutation(1024, 4).unwrap_err(),
        permutation(1024, 2049).unwrap_err(),
    ] {
        assert!(matches!(e, GaloisError::BadElement { n: 1024, .. }));
        assert!(e.to_string().contains("2048"));
    }
    assert_eq!(rotation_element(1024, 0), 1);
    assert_eq!(rotation_element(1024, 1), 5);
    assert_eq!(rotation_element(1024, 512), 1);
    assert_eq!(rotation_element(1024, -1), rotation_element(1024, 511));
}
