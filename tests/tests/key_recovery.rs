//! Attack 4: the trusted party's secret key from its releases, at insecure small ring
//! degrees (the same code runs at the deployed parameters through `heist attack
//! key-recovery`).

use heist::attack::key_recovery::{active, passive, Adversary, Outcome};
use heist::model::{Architecture, Model};
use heist::service::{bfv, ReleasePolicy, Scheme};
use heist::train::init_params;
use heist_core::nn::{QuantConfig, QuantizedModel};
use heist_he::nn::{BfvPlan, CkksPlan, PlanConfig};
use heist_tests::{mnist_test_images, seeded_rng};

/// Ring degree of the CKKS test plan: 512 slots.
const CKKS_N: usize = 1024;
/// Ring degree of the BFV test plan: 256 slots.
const BFV_N: usize = 256;

fn model(seed: u64) -> Model {
    let mut rng = seeded_rng("key-recovery-model", seed);
    let arch = Architecture::Mnist;
    Model::new(arch, init_params(arch, &mut rng)).unwrap()
}

fn ckks_plan() -> CkksPlan {
    let core = model(1).to_core().unwrap();
    CkksPlan::new_insecure_for_tests(core.network(), &PlanConfig::default(), CKKS_N).unwrap()
}

fn bfv_plan() -> (QuantizedModel, BfvPlan) {
    let core = model(2).to_core().unwrap();
    let quant = QuantizedModel::new(&core, &QuantConfig::pixels(bfv::BFV_WEIGHT_BITS)).unwrap();
    let plan = BfvPlan::new_insecure_for_tests(&quant, BFV_N).unwrap();
    (quant, plan)
}

#[test]
fn active_server_recovers_the_ckks_key_from_one_batch() {
    let plan = ckks_plan();
    let images = mnist_test_images(12);
    let (filler, victim) = images.split_at(8);
    let mut rng = seeded_rng("key-recovery-ckks-active", 3);
    let outcome =
        active::ckks(&plan, ReleasePolicy::Exact, false, filler, victim, &mut rng).unwrap();
    assert_eq!(
        (outcome.scheme, outcome.adversary),
        (Scheme::Ckks, Adversary::Active)
    );
    assert!(outcome.recovered, "{outcome:?}");
    assert!(outcome.verified_on_unseen, "{outcome:?}");
    assert_eq!((outcome.ciphertexts_used, outcome.batches), (2, 1));
    assert_eq!(outcome.client_queries, (CKKS_N / 2) as u64);
}

/// The active BFV attack of one batch, against a trusted party with its reply check (score
/// bounds calibrated on 32 other images) or without it.
fn bfv_active(checked: bool) -> Outcome {
    let (quant, plan) = bfv_plan();
    let images = mnist_test_images(44);
    let (calibration, rest) = images.split_at(32);
    let (filler, victim) = rest.split_at(8);
    let mut rng = seeded_rng("key-recovery-bfv-active", 4);
    let party = active::BfvParty {
        release: ReleasePolicy::Exact,
        checks: checked.then_some(calibration),
    };
    active::bfv(&quant, &plan, party, filler, victim, &mut rng).unwrap()
}

#[test]
fn active_server_recovers_the_bfv_key_from_one_batch() {
    let outcome = bfv_active(false);
    assert!(outcome.recovered, "{outcome:?}");
    assert!(outcome.verified_on_unseen, "{outcome:?}");
    let cost = (
        outcome.batches,
        outcome.refused_batches,
        outcome.reply_checks,
    );
    assert_eq!(cost, (1, 0, false));
    assert_eq!(outcome.client_queries, BFV_N as u64);
}

/// The same crafted reply against a trusted party that checks every reply: the scores
/// `λ·s` decrypts to are spread over the whole plaintext range, so the reply is refused
/// and nothing is released.
#[test]
fn checked_bfv_replies_refuse_the_active_server() {
    let outcome = bfv_active(true);
    assert!(
        !outcome.recovered && !outcome.verified_on_unseen,
        "{outcome:?}"
    );
    let cost = (
        outcome.batches,
        outcome.refused_batches,
        outcome.reply_checks,
    );
    assert_eq!(cost, (1, 1, true));
}

#[test]
fn passive_server_fails_on_the_f32_release_of_the_service() {
    let plan = ckks_plan();
    let images = mnist_test_images(12);
    let (filler, victim) = images.split_at(8);
    let mut rng = seeded_rng("key-recovery-ckks-passive", 5);
    let outcome = passive::ckks(&plan, ReleasePolicy::Exact, filler, victim, &mut rng).unwrap();
    assert!(
        !outcome.recovered && !outcome.verified_on_unseen,
        "{outcome:?}"
    );
    // The f32 rounding leaves re-encoded coefficients anywhere between two integers.
    let error = outcome.reencoding_error.unwrap();
    assert!(error > 0.25, "{outcome:?}");
}

#[test]
fn passive_server_recovers_the_ckks_key_from_a_full_f64_release() {
    let plan = ckks_plan();
    let images = mnist_test_images(12);
    let (filler, victim) = images.split_at(8);
    let mut rng = seeded_rng("key-recovery-ckks-f64", 6);
    let outcome = passive::ckks_f64(&plan, filler, victim, &mut rng).unwrap();
    assert!(
        outcome.recovered && outcome.verified_on_unseen,
        "{outcome:?}"
    );
    assert!(outcome.reencoding_error.unwrap() < 0.01, "{outcome:?}");
}

/// The adversary the reply check leaves: one slot of `s` probed per batch, inside an
/// otherwise honest reply. Without the check every probe is released (the baseline); with
/// it, a probe is released only if `λ·ŝ_j` lands among honest scores, a window of about
/// 2^-15 of the plaintext range for this model, so none of these is.
#[test]
fn the_reply_check_refuses_slot_probes_that_an_unchecked_party_releases() {
    let (quant, plan) = bfv_plan();
    let images = mnist_test_images(40);
    let (calibration, filler) = images.split_at(32);
    for (checks, released) in [(None, 6), (Some(calibration), 0)] {
        let mut rng = seeded_rng("key-recovery-bfv-probes", 5);
        let party = active::BfvParty {
            release: ReleasePolicy::Exact,
            checks,
        };
        let outcome =
            active::bfv_probing(&quant, &plan, party, 6, filler, &mut rng, &mut |_, _| {}).unwrap();
        assert_eq!(outcome.probes_released, Some(released), "{outcome:?}");
        assert_eq!(outcome.refused_batches, 6 - released, "{outcome:?}");
        assert_eq!(outcome.client_queries, 6 * BFV_N as u64);
        assert!(!outcome.recovered);
    }
}

#[test]
fn passive_server_learns_nothing_from_exact_bfv_decryptions() {
    let (quant, plan) = bfv_plan();
    let images = mnist_test_images(12);
    let (filler, victim) = images.split_at(8);
    let mut rng = seeded_rng("key-recovery-bfv-passive", 7);
    let outcome = passive::bfv(
        &quant,
        &plan,
        ReleasePolicy::Exact,
        filler,
        victim,
        &mut rng,
    )
    .unwrap();
    assert!(
        !outcome.recovered && !outcome.verified_on_unseen,
        "{outcome:?}"
    );
}

/// A ternary key imported from its coefficients decrypts what the same coefficients
/// encrypted, and another key does not; malformed coefficients are refused.
#[test]
fn imported_ternary_keys_decrypt_and_malformed_ones_are_refused() {
    use heist_he::ckks::{decrypt, encrypt_sk, CkksParams, Encoder};
    use heist_he::keys::{KeyError, SecretKey};
    let params = CkksParams::for_depth_insecure_for_tests(64, 1, 30, 40).unwrap();
    let he = params.he();
    let coeffs: Vec<i64> = (0..64).map(|i| (i % 3) as i64 - 1).collect();
    let key = SecretKey::from_ternary(he, &coeffs).unwrap();
    let same = SecretKey::from_ternary(he, &coeffs).unwrap();
    let mut other = coeffs.clone();
    other[5] = -other[5] + if other[5] == 0 { 1 } else { 0 };
    let other = SecretKey::from_ternary(he, &other).unwrap();
    let enc = Encoder::new(&params);
    let mut rng = seeded_rng("key-import", 8);
    let values = [0.5, -0.25, 0.125];
    let ct = encrypt_sk(
        &params,
        &key,
        &enc.encode(&values, params.scale(), he.max_level()).unwrap(),
        &mut rng,
    )
    .unwrap();
    let good = enc.decode(&decrypt(&params, &same, &ct).unwrap()).unwrap();
    let bad = enc.decode(&decrypt(&params, &other, &ct).unwrap()).unwrap();
    assert!(values.iter().zip(&good).all(|(v, g)| (v - g).abs() < 1e-4));
    assert!(values.iter().zip(&bad).any(|(v, b)| (v - b).abs() > 1.0));
    assert_eq!(
        SecretKey::from_ternary(he, &coeffs[..63]).unwrap_err(),
        KeyError::Length {
            expected: 64,
            found: 63
        }
    );
    let mut wide = coeffs.clone();
    wide[9] = 2;
    assert_eq!(
        SecretKey::from_ternary(he, &wide).unwrap_err(),
        KeyError::NotTernary { index: 9, value: 2 }
    );
}

/// `(0, round(Q·λ/t))` decrypts exactly to `λ·s mod t`, and parts of the wrong shape are
/// refused (BFV); CKKS parts of different levels or bad bounds are refused.
#[test]
fn noiseless_ciphertexts_from_parts() {
    use heist_core::rns::RnsPoly;
    use heist_he::bfv::{self as scheme, BfvError, BfvParams, Plaintext};
    use heist_he::keys::SecretKey;
    let n = 64;
    let t = 65537;
    let params = BfvParams::new_insecure_for_tests(
        n,
        &heist_core::primes::ntt_primes(50, 2 * n as u64, 2, &[]).unwrap(),
        heist_core::primes::ntt_primes(51, 2 * n as u64, 1, &[]).unwrap()[0],
        t,
    )
    .unwrap();
    let he = params.he();
    let s: Vec<i64> = (0..n).map(|i| (i * 7 % 3) as i64 - 1).collect();
    let key = SecretKey::from_ternary(he, &s).unwrap();
    let lambda = 12345u64;
    let mut coeffs = vec![0u64; n];
    coeffs[0] = lambda;
    let c1 = scheme::scale_plain(&params, &Plaintext::from_coeffs(t, coeffs).unwrap()).unwrap();
    let level = he.max_level();
    let ct = scheme::Ciphertext::new(&params, RnsPoly::zero(n, level), c1).unwrap();
    let pt = scheme::decrypt(&params, &key, &ct).unwrap();
    let want: Vec<u64> = s
        .iter()
        .map(|&c| (i64::try_from(lambda).unwrap() * c).rem_euclid(t as i64) as u64)
        .collect();
    assert_eq!(pt.coeffs(), &want[..]);
    assert!(matches!(
        scheme::Ciphertext::new(
            &params,
            RnsPoly::zero(n, level - 1),
            RnsPoly::zero(n, level)
        ),
        Err(BfvError::PartsMismatch { .. })
    ));

    use heist_he::ckks::{Ciphertext, CkksError, CkksParams};
    let params = CkksParams::for_depth_insecure_for_tests(n, 1, 30, 40).unwrap();
    let (a, b) = (RnsPoly::zero(n, 2), RnsPoly::zero(n, 1));
    assert!(matches!(
        Ciphertext::from_parts(&params, a.clone(), b, 1.0, 0.0, 0.0),
        Err(CkksError::BadLevel { .. })
    ));
    assert!(matches!(
        Ciphertext::from_parts(&params, a.clone(), a.clone(), 1.0, -1.0, 0.0),
        Err(CkksError::Overflow { .. })
    ));
    assert!(matches!(
        Ciphertext::from_parts(&params, a.clone(), a.clone(), 0.0, 0.0, 0.0),
        Err(CkksError::BadScale { .. })
    ));
    assert!(Ciphertext::from_parts(&params, a.clone(), a, 1.0, 0.0, 0.0).is_ok());
}

/// Flooding at decryption defeats the active adversary; rounding alone to 10 bits does too
/// against the unscaled crafted pair (whose slots are about `|s(ζ)|/Δ`).
#[test]
fn active_recovery_fails_under_flooding_and_rounding() {
    let plan = ckks_plan();
    let images = mnist_test_images(12);
    let (filler, victim) = images.split_at(8);
    let mut rng = seeded_rng("key-recovery-defended", 9);
    for release in ["flooded", "rounded:10"] {
        let release: ReleasePolicy = release.parse().unwrap();
        let outcome = active::ckks(&plan, release, false, filler, victim, &mut rng).unwrap();
        assert!(
            !outcome.recovered && !outcome.verified_on_unseen,
            "{outcome:?}"
        );
        assert_eq!(outcome.release, release.to_string());
    }
}

/// The trusted party refuses replies at another level or scale than the plan's output,
/// and with another number of parts; a crafted pair at the right level and scale passes
/// (the validation does not stop the active adversary).
#[test]
fn trusted_party_refuses_replies_off_the_plan() {
    use heist::attack::key_recovery::{MaliciousCompute, Reply};
    use heist::oracle::Oracle;
    use heist::service::{BatchConfig, CkksCodec, CkksEvaluator, InProcessService};
    use heist_he::ckks::Ciphertext;
    let plan = ckks_plan();
    let mut rng = seeded_rng("key-recovery-validation", 10);
    let codec = CkksCodec::new(plan.clone(), &mut rng).unwrap();
    let (server, control) = MaliciousCompute::new(CkksEvaluator::new(plan.clone()).unwrap());
    let service = InProcessService::start(codec, server, &BatchConfig::default()).unwrap();
    let mut client = service.client();
    let images = mnist_test_images(2);
    let (level, scale) = plan.output_level_scale();
    let params = plan.params().clone();
    let n = params.he().n();
    let reply = move |level: usize, scale: f64, count: usize| -> Vec<u8> {
        let ct = |_| {
            let zero = heist_core::rns::RnsPoly::zero(n, level);
            Ciphertext::from_parts(&params, zero.clone(), zero, scale, 1.0, 1.0)
                .unwrap()
                .encode()
        };
        let items: Vec<Vec<u8>> = (0..count).map(ct).collect();
        let mut out = (count as u32).to_le_bytes().to_vec();
        for item in items {
            out.extend_from_slice(&(item.len() as u32).to_le_bytes());
            out.extend_from_slice(&item);
        }
        out
    };
    let cases = [
        (
            level + 1,
            scale,
            10,
            format!("reply ciphertext 0 at level {}", level + 1),
        ),
        (
            level,
            scale * 2.0,
            10,
            format!("at level {level}, scale {:e}", scale * 2.0),
        ),
        (
            level,
            scale,
            9,
            "payload holds 9 ciphertexts, expected 10".to_owned(),
        ),
    ];
    for (l, s, count, what) in cases {
        control.push(Reply::Fixed(reply(l, s, count)));
        let error = client.query(&images).unwrap_err().to_string();
        assert!(error.contains(&what), "{what}: {error}");
    }
    control.push(Reply::Fixed(reply(level, scale, 10)));
    let scores = client.query(&images).unwrap();
    assert!(scores.iter().flatten().all(|&v| v == 0.0));
}

/// An active server that multiplies its crafted pair by a gain chosen from the policy
/// (Li and Micciancio's counter to rounding) is refused by the well-formedness check: the
/// imaginary parts of its slots are far beyond the measured decryption error, and
/// nothing is released.
#[test]
fn the_well_formedness_check_refuses_an_amplifying_server() {
    let plan = ckks_plan();
    let images = mnist_test_images(12);
    let (filler, victim) = images.split_at(8);
    let mut rng = seeded_rng("key-recovery-amplified", 11);
    for release in ["rounded:10", "rounded:4"] {
        let release: ReleasePolicy = release.parse().unwrap();
        let outcome = active::ckks(&plan, release, true, filler, victim, &mut rng).unwrap();
        assert!(outcome.gain > 1, "{outcome:?}");
        assert_eq!(outcome.refused_batches, 1, "{outcome:?}");
        assert!(
            !outcome.recovered && !outcome.verified_on_unseen && outcome.reencoding_error.is_none(),
            "{outcome:?}"
        );
    }
}

/// The adaptive server scales its crafted ciphertexts to pass the well-formedness check:
/// through an exact release (only the `f32` conversion) one batch gives the key; through
/// noise far above what the check lets it leak, averaging over a few batches does not.
#[test]
fn the_adaptive_server_passes_the_check_and_drowns_in_release_noise() {
    let plan = calibrated_ckks_plan();
    let images = mnist_test_images(12);
    let (filler, victim) = images.split_at(8);
    let mut rng = seeded_rng("key-recovery-adaptive", 14);
    let exact =
        active::ckks_adaptive(&plan, ReleasePolicy::Exact, &[1], filler, victim, &mut rng).unwrap();
    assert_eq!(exact.len(), 1);
    let o = &exact[0];
    assert!(o.adaptive && o.gain > 1, "{o:?}");
    assert_eq!(
        (o.batches, o.refused_batches, o.ciphertexts_used),
        (1, 0, 10)
    );
    assert!(o.recovered && o.verified_on_unseen, "{o:?}");
    assert!(o.reencoding_error.unwrap() < 0.1, "{o:?}");
    let noised: ReleasePolicy = "noised:1".parse().unwrap();
    let outcomes = active::ckks_adaptive(&plan, noised, &[4, 1], filler, victim, &mut rng).unwrap();
    assert_eq!(
        outcomes.iter().map(|o| o.batches).collect::<Vec<_>>(),
        vec![1, 4]
    );
    for o in &outcomes {
        assert!(!o.recovered && !o.verified_on_unseen, "{o:?}");
        // Some coefficient lands about half-way between integers: the average is noise.
        assert!(o.reencoding_error.unwrap() > 0.45, "{o:?}");
        assert_eq!(o.refused_batches, 0, "{o:?}");
    }
}

/// The trusted party's well-formedness check: an honest reply passes (and its largest
/// deviation stays below the factor), while a crafted `(0, G·X^k)` beyond the adaptive
/// gain, an honest reply amplified by 8 (above the factor 4) and an honest reply with a
/// value in an unused slot are refused with the typed error, nothing released.
#[test]
fn the_trusted_party_refuses_ill_formed_replies() {
    use heist::attack::key_recovery::{MaliciousCompute, Reply};
    use heist::oracle::Oracle;
    use heist::service::ckks::WELL_FORMED_FACTOR;
    use heist::service::{
        BatchCodec, BatchConfig, BatchEvaluator, CkksCodec, CkksEvaluator, InProcessService,
    };
    use heist_he::ckks::{Ciphertext, Encoder};
    let plan = calibrated_ckks_plan();
    let mut rng = seeded_rng("key-recovery-form", 15);
    let images = mnist_test_images(8);
    let mut codec = CkksCodec::new(plan.clone(), &mut rng)
        .unwrap()
        .with_measured_noise(&images)
        .unwrap();
    let noise = codec.noise().value();
    // Honest batches of other images pass, well below the factor.
    let evaluator = CkksEvaluator::new(plan.clone()).unwrap();
    let session = evaluator
        .open_session(&codec.evaluation_context().unwrap())
        .unwrap();
    let others = mnist_test_images(40);
    for batch in [&others[8..40], &others[10..12]] {
        let reply = evaluator
            .evaluate(&session, &codec.encrypt_batch(batch).unwrap())
            .unwrap();
        let (rows, ratio) = codec.decrypt_measured(&reply, batch.len()).unwrap();
        assert_eq!(rows.len(), batch.len());
        assert!(0.0 < ratio && ratio < WELL_FORMED_FACTOR / 2.0, "{ratio}");
    }
    let (server, control) = MaliciousCompute::new(CkksEvaluator::new(plan.clone()).unwrap());
    let service = InProcessService::start(codec, server, &BatchConfig::default()).unwrap();
    let mut client = service.client();
    let query = &others[20..22];
    assert_eq!(client.query(query).unwrap().len(), 2);
    let params = plan.params().clone();
    let basis = params.he().basis().clone();
    let (level, scale) = plan.output_level_scale();
    let n = params.he().n();
    let refused = |error: String, what: &str| {
        assert!(
            error.contains("well-formedness bound") && error.contains(what),
            "{what}: {error}"
        );
    };
    // (0, G·X) with G ten times the adaptive gain.
    let gain = 10 * active::adaptive_gain(&plan, noise);
    let mut x = vec![0i64; n];
    x[1] = gain;
    let c1 = heist_core::rns::RnsPoly::<heist_core::rns::Coeff>::from_signed(&x, level, &basis)
        .into_eval(&basis);
    let crafted = Ciphertext::from_parts(
        &params,
        heist_core::rns::RnsPoly::zero(n, level),
        c1,
        scale,
        1.0,
        1.0,
    )
    .unwrap();
    // Full batches: every slot used, so the imaginary parts are what is refused.
    let full: Vec<_> = others.iter().cycle().take(plan.batch()).cloned().collect();
    control.push(Reply::Fixed(join(&vec![crafted; 10])));
    refused(client.query(&full).unwrap_err().to_string(), "of used slot");
    // Honest ciphertexts times 8: both parts doubled three times.
    let (p, b) = (params.clone(), basis.clone());
    control.push(Reply::Crafted(Box::new(move |honest| {
        let cts = split(&p, &honest)
            .into_iter()
            .map(|ct| {
                let (mut c0, mut c1) = (ct.c0().clone(), ct.c1().clone());
                for part in [&mut c0, &mut c1] {
                    for _ in 0..3 {
                        let twice = part.clone();
                        part.add_assign(&twice, &b);
                    }
                }
                Ciphertext::from_parts(&p, c0, c1, ct.scale(), ct.msg_bound(), ct.err_bound())
                    .unwrap()
            })
            .collect::<Vec<_>>();
        Ok(join(&cts))
    })));
    refused(client.query(&full).unwrap_err().to_string(), "of used slot");
    // An honest reply whose score 3 holds a real value in unused slot 5.
    let p = params.clone();
    control.push(Reply::Crafted(Box::new(move |honest| {
        let mut cts = split(&p, &honest);
        let mut values = vec![0.0; 6];
        values[5] = 10.0 * WELL_FORMED_FACTOR * noise;
        let pt = Encoder::new(&p).encode(&values, scale, level).unwrap();
        let ct = &cts[3];
        let mut c0 = ct.c0().clone();
        c0.add_assign(pt.poly(), p.he().basis());
        cts[3] = Ciphertext::from_parts(
            &p,
            c0,
            ct.c1().clone(),
            ct.scale(),
            ct.msg_bound(),
            ct.err_bound(),
        )
        .unwrap();
        Ok(join(&cts))
    })));
    refused(
        client.query(query).unwrap_err().to_string(),
        "decrypted score 3 of unused slot 5",
    );
    // The service goes on answering honest batches.
    assert_eq!(client.query(query).unwrap().len(), 2);
}

/// The ciphertexts of a payload of the service's list layout (count, then length-prefixed
/// ciphertexts).
fn split(params: &heist_he::ckks::CkksParams, payload: &[u8]) -> Vec<heist_he::ckks::Ciphertext> {
    let word = |at: usize| u32::from_le_bytes(payload[at..at + 4].try_into().unwrap()) as usize;
    let (count, mut at) = (word(0), 4);
    (0..count)
        .map(|_| {
            let len = word(at);
            let ct =
                heist_he::ckks::Ciphertext::decode(params, &payload[at + 4..at + 4 + len]).unwrap();
            at += 4 + len;
            ct
        })
        .collect()
}

/// `cts` in the service's list layout.
fn join(cts: &[heist_he::ckks::Ciphertext]) -> Vec<u8> {
    let mut out = (cts.len() as u32).to_le_bytes().to_vec();
    for ct in cts {
        let bytes = ct.encode();
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

/// A CKKS plan calibrated on MNIST images (at the service's margin): its score bounds
/// are the magnitudes the chain was sized for.
fn calibrated_ckks_plan() -> CkksPlan {
    use heist_he::nn::Calibration;
    let core = model(1).to_core().unwrap();
    let inputs = mnist_test_images(16)
        .iter()
        .map(|image| image.pixels().iter().map(|&p| f64::from(p)).collect())
        .collect();
    let config = PlanConfig {
        calibration: Some(Calibration {
            inputs,
            margin: heist::service::ckks::CALIBRATION_MARGIN,
        }),
        ..PlanConfig::default()
    };
    CkksPlan::new_insecure_for_tests(core.network(), &config, CKKS_N).unwrap()
}

/// The trusted party refuses a reply whose decrypted score exceeds the plan's bound on it,
/// and releases one just within (a crafted ciphertext that decodes to plausible values
/// passes: the check bounds what a reply may say, not who computed it).
#[test]
fn trusted_party_refuses_scores_beyond_the_plans_bound() {
    use heist::attack::key_recovery::{MaliciousCompute, Reply};
    use heist::oracle::Oracle;
    use heist::service::{BatchConfig, CkksCodec, CkksEvaluator, InProcessService};
    use heist_he::ckks::{Ciphertext, Encoder};
    let plan = calibrated_ckks_plan();
    let bounds = plan.score_bounds().to_vec();
    assert_eq!(bounds.len(), 10);
    assert!(
        bounds.iter().all(|b| b.is_finite() && *b > 0.0),
        "{bounds:?}"
    );
    let mut rng = seeded_rng("key-recovery-bound", 12);
    let codec = CkksCodec::new(plan.clone(), &mut rng).unwrap();
    let (server, control) = MaliciousCompute::new(CkksEvaluator::new(plan.clone()).unwrap());
    let service = InProcessService::start(codec, server, &BatchConfig::default()).unwrap();
    let mut client = service.client();
    let images = mnist_test_images(2);
    let (level, scale) = plan.output_level_scale();
    let params = plan.params().clone();
    // Every score of class `class` decrypts to `value` (c_1 = 0: noiseless), the others to 0.
    let reply = move |class: usize, value: f64| -> Vec<u8> {
        let encoder = Encoder::new(&params);
        let items: Vec<Vec<u8>> = (0..10)
            .map(|c| {
                let v = if c == class { value } else { 0.0 };
                let pt = encoder.encode(&[v; 4], scale, level).unwrap();
                let zero = heist_core::rns::RnsPoly::zero(params.he().n(), level);
                Ciphertext::from_parts(&params, pt.poly().clone(), zero, scale, 1.0, 1.0)
                    .unwrap()
                    .encode()
            })
            .collect();
        let mut out = 10u32.to_le_bytes().to_vec();
        for item in items {
            out.extend_from_slice(&(item.len() as u32).to_le_bytes());
            out.extend_from_slice(&item);
        }
        out
    };
    for class in [0, 7] {
        control.push(Reply::Fixed(reply(class, 1.5 * bounds[class])));
        let error = client.query(&images).unwrap_err().to_string();
        assert!(
            error.contains(&format!("decrypted score {class} of image 0"))
                && error.contains("beyond the plan's bound"),
            "{error}"
        );
        control.push(Reply::Fixed(reply(class, -0.9 * bounds[class])));
        let scores = client.query(&images).unwrap();
        let got = f64::from(scores[0][class]);
        assert!(
            (got + 0.9 * bounds[class]).abs() < 1e-3 * bounds[class],
            "{got}"
        );
    }
}

/// The trusted party's noise estimate is measured at setup on known inputs: far below the
/// plan's worst-case bound, and the flooding deviation is the OpenFHE formula over it.
#[test]
fn flooding_uses_the_noise_measured_at_setup() {
    use heist::service::{flooding_sigma, CkksCodec, NoiseEstimate};
    let plan = calibrated_ckks_plan();
    let mut rng = seeded_rng("key-recovery-noise", 13);
    let images = mnist_test_images(8);
    let codec = CkksCodec::new(plan.clone(), &mut rng)
        .unwrap()
        .with_measured_noise(&images)
        .unwrap();
    let NoiseEstimate::Measured {
        value,
        rms,
        samples,
        predicted,
    } = codec.noise()
    else {
        panic!("not measured: {:?}", codec.noise());
    };
    assert_eq!(samples, (CKKS_N / 2) * 10);
    assert_eq!(predicted, plan.predicted_error());
    assert!(
        0.0 < rms && rms <= value && value < predicted,
        "{:?}",
        codec.noise()
    );
    let release: ReleasePolicy = "flooded:30:4".parse().unwrap();
    assert_eq!(release.sigma(value), flooding_sigma(value, 30, 4));
    // The active attack reports the estimate its trusted party flooded with.
    let (filler, victim) = images.split_at(6);
    let outcome = active::ckks(&plan, release, false, filler, victim, &mut rng).unwrap();
    let noise = outcome.noise_estimate.unwrap();
    assert!(noise < predicted, "{outcome:?}");
    assert_eq!(outcome.release_sigma, flooding_sigma(noise, 30, 4));
}

/// The amplifying server's gain is held by the plan's score bounds: six deviations of the
/// crafted slots stay within the smaller bound of classes 0 and 1, however large the
/// release's noise; without noise it does not amplify.
#[test]
fn the_gain_is_held_by_the_score_bounds() {
    let plan = calibrated_ckks_plan();
    let (_, scale) = plan.output_level_scale();
    let bound = plan.score_bounds()[0].min(plan.score_bounds()[1]);
    let deviation = (CKKS_N as f64 / 3.0).sqrt() / scale;
    for release in ["noised:1000", "rounded:0"] {
        let release: ReleasePolicy = release.parse().unwrap();
        let gain = active::gain(&plan, release, 1.0);
        assert!(gain > 1, "{release}: {gain}");
        assert!(6.0 * deviation * gain as f64 <= bound, "{release}: {gain}");
    }
    assert_eq!(active::gain(&plan, ReleasePolicy::Exact, 1.0), 1);
}
