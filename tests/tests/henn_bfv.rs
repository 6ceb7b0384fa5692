//! heist_he::nn BFV batch inference against the integer model: decrypted scores equal
//! `QuantizedModel::infer` exactly (random models and inputs by proptest, and real MNIST
//! images), every score keeps the noise budget the plan promises, the parameter choice at
//! the secure size, and errors.

use heist::data::{load, Dataset};
use heist_core::nn::{Dense, Layer, Model, QuantConfig, QuantError, QuantizedModel, Shape};
use heist_he::bfv::{BfvError, Evaluator};
use heist_he::nn::{BfvClient, BfvPlan, BfvServer, NnError, Sequential, MAX_PLAIN_PRIMES};
use heist_he::params::{max_log_q, SecurityLevel};
use heist_tests::models::{arch, mnist_model, random_model, small_paper_model, uniform};
use heist_tests::seeded_rng;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rand_core::RngCore;

fn weights(rng: &mut impl RngCore, n: usize, a: f64) -> Vec<f64> {
    (0..n).map(|_| uniform(rng, -a, a)).collect()
}

/// Encrypts `images` once per prime, evaluates, checks every score ciphertext's budget
/// (tracked estimate at least one bit and at most the measured one) and returns the
/// recombined scores.
fn run(plan: &BfvPlan, images: &[Vec<i64>], label: &str) -> Vec<Vec<i128>> {
    let mut rng = seeded_rng(label, 0);
    let client = BfvClient::new(plan.clone(), &mut rng).unwrap();
    let server = BfvServer::new(plan.clone(), client.relin_key(&mut rng)).unwrap();
    let refs: Vec<&[i64]> = images.iter().map(Vec::as_slice).collect();
    let scores: Vec<_> = (0..plan.params().len())
        .map(|j| {
            let cts = client
                .encrypt_batch(&refs, j, &mut rng, &Sequential)
                .unwrap();
            server.evaluate(cts, &Sequential).unwrap()
        })
        .collect();
    for ct in scores.iter().flatten() {
        let measured = client.noise_budget(ct).unwrap();
        let tracked = ct.noise_budget_estimate();
        assert!(tracked >= 1.0, "tracked budget {tracked}");
        assert!(
            measured >= tracked,
            "measured {measured} < tracked {tracked}"
        );
    }
    client.decrypt_scores(&scores, images.len()).unwrap()
}

/// Random quantised pixels plus the extremes (all 0, all at the bound).
fn images(rng: &mut impl RngCore, count: usize, len: usize, bound: u64) -> Vec<Vec<i64>> {
    let mut out = vec![vec![0; len], vec![bound as i64; len]];
    out.extend((2..count).map(|_| {
        (0..len)
            .map(|_| (rng.next_u64() % (bound + 1)) as i64)
            .collect()
    }));
    out
}

#[test]
fn small_model_exact() {
    let mut rng = seeded_rng("henn_bfv small", 1);
    let model = small_paper_model(&mut rng);
    let quant = QuantizedModel::new(&model, &QuantConfig::pixels(8)).unwrap();
    let plan = BfvPlan::new_insecure_for_tests(&quant, 256).unwrap();
    println!(
        "n {} primes {:?} chain {:?} guaranteed budget {:.1} bits, plaintext {:.1} of {:.1} bits needed",
        plan.n(),
        plan.plain_moduli(),
        plan.params()[0].he().chain(),
        plan.noise_budget(),
        plan.plaintext_bits(),
        (plan.needed_modulus() as f64).log2()
    );
    // 96 bits of worst case: two or more plaintext primes, recombined by CRT.
    assert!(plan.params().len() >= 2);
    let inputs = images(&mut rng, 256, 64, plan.input_bound());
    let got = run(&plan, &inputs, "henn_bfv small run");
    for (img, row) in inputs.iter().zip(&got) {
        assert_eq!(row, &quant.infer(img).unwrap());
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/henn_bfv.txt"))),
        ..heist_tests::seeded_config(48)
    })]

    /// Random architectures and weight widths: every decrypted score equals the integer
    /// model's, for random images and the extremes of the input range.
    #[test]
    fn random_models_exact(seed in any::<u64>(), p in arch(), bits in 2u32..11) {
        let mut rng = seeded_rng("henn_bfv random", seed);
        let model = random_model(&mut rng, &p);
        // Wide weights through two squares can have a worst case beyond i128 (the
        // quantiser refuses the model) or need a plaintext modulus of 2^127 or more (the
        // plan refuses it): nothing to compare then.
        let quant = QuantizedModel::new(&model, &QuantConfig::pixels(bits));
        prop_assume!(!matches!(quant, Err(QuantError::BoundExceeded { .. })));
        let quant = quant.map_err(|e| TestCaseError::fail(format!("quantiser: {e}")))?;
        let plan = BfvPlan::new_insecure_for_tests(&quant, 64);
        prop_assume!(!matches!(plan, Err(NnError::NoExactParameters { .. })));
        let plan = plan.unwrap();
        let len = model.network().input_len();
        let inputs = images(&mut rng, 16, len, plan.input_bound());
        let got = run(&plan, &inputs, "henn_bfv random run");
        for (img, row) in inputs.iter().zip(&got) {
            prop_assert_eq!(row, &quant.infer(img).unwrap());
        }
    }
}

#[test]
fn mnist_exact_on_real_images() {
    let data = load(Dataset::Mnist, None, false).unwrap();
    if let Some(notice) = data.source.notice() {
        println!("{notice}");
    }
    let mut rng = seeded_rng("henn_bfv mnist model", 0);
    let model = mnist_model(&mut rng);
    let quant = QuantizedModel::new(&model, &QuantConfig::pixels(8)).unwrap();
    let plan = BfvPlan::new_insecure_for_tests(&quant, 1024).unwrap();
    let count = data.test.len().min(plan.batch());
    // Pixels k/255 quantise to k exactly.
    let inputs: Vec<Vec<i64>> = (0..count)
        .map(|i| data.test.image(i).iter().map(|&p| i64::from(p)).collect())
        .collect();
    let got = run(&plan, &inputs, "henn_bfv mnist run");
    for (img, row) in inputs.iter().zip(&got) {
        assert_eq!(row, &quant.infer(img).unwrap());
    }
    println!("{count} real images: every score equal to the integer model's");
}

#[test]
fn mnist_secure_plan() {
    let mut rng = seeded_rng("henn_bfv mnist plan", 1);
    let model = mnist_model(&mut rng);
    let quant = QuantizedModel::new(&model, &QuantConfig::pixels(8)).unwrap();
    let plan = BfvPlan::new(&quant, SecurityLevel::Tc128).unwrap();
    let he = plan.params()[0].he();
    println!(
        "N {} plaintext primes {:?} chain bits {:?} special {} aux primes {} guaranteed budget {:.1} bits, plaintext {:.1} of {:.1} bits needed",
        plan.n(),
        plan.plain_moduli(),
        he.chain().iter().map(|q| 64 - q.leading_zeros()).collect::<Vec<_>>(),
        64 - he.special().leading_zeros(),
        plan.params()[0].aux_basis().len(),
        plan.noise_budget(),
        plan.plaintext_bits(),
        (plan.needed_modulus() as f64).log2(),
    );
    assert_eq!(he.security(), Some(SecurityLevel::Tc128));
    assert!(he.log_q() <= max_log_q(plan.n(), SecurityLevel::Tc128).unwrap());
    assert!(plan.params().len() <= MAX_PLAIN_PRIMES);
    assert!(plan.noise_budget() >= 1.0);
    let product = plan
        .plain_moduli()
        .iter()
        .fold(1u128, |acc, &t| acc * u128::from(t));
    assert!(product >= plan.needed_modulus());
    for p in plan.params() {
        assert_eq!(p.he().fingerprint(), he.fingerprint());
    }
}

#[test]
fn rejects_bad_inputs_and_foreign_objects() {
    let mut rng = seeded_rng("henn_bfv errors", 0);
    let model = small_paper_model(&mut rng);
    let quant = QuantizedModel::new(&model, &QuantConfig::pixels(8)).unwrap();
    let plan = BfvPlan::new_insecure_for_tests(&quant, 64).unwrap();
    let client = BfvClient::new(plan.clone(), &mut rng).unwrap();
    let server = BfvServer::new(plan.clone(), client.relin_key(&mut rng)).unwrap();
    let good = vec![7i64; 64];
    let short = vec![7i64; 63];
    let encrypt = |images: &[&[i64]], prime: usize, rng: &mut rand_chacha::ChaCha20Rng| {
        client.encrypt_batch(images, prime, rng, &Sequential)
    };
    assert_eq!(
        encrypt(&[&short], 0, &mut rng).err(),
        Some(NnError::InputLength {
            expected: 64,
            found: 63
        })
    );
    let mut high = good.clone();
    high[5] = 256;
    assert_eq!(
        encrypt(&[&good, &high], 0, &mut rng).err(),
        Some(NnError::InputRange { image: 1, index: 5 })
    );
    high[5] = -256;
    assert_eq!(
        encrypt(&[&high], 0, &mut rng).err(),
        Some(NnError::InputRange { image: 0, index: 5 })
    );
    assert_eq!(
        encrypt(&[], 0, &mut rng).err(),
        Some(NnError::BatchSize { given: 0, max: 64 })
    );
    let many: Vec<&[i64]> = (0..65).map(|_| good.as_slice()).collect();
    assert_eq!(
        encrypt(&many, 0, &mut rng).err(),
        Some(NnError::BatchSize { given: 65, max: 64 })
    );
    let primes = plan.params().len();
    assert_eq!(
        encrypt(&[&good], primes, &mut rng).err(),
        Some(NnError::InputLength {
            expected: primes,
            found: primes
        })
    );
    // Too few ciphertexts, ciphertexts of two primes, and of another plan.
    let cts0 = encrypt(&[&good], 0, &mut rng).unwrap();
    let cts1 = encrypt(&[&good], 1, &mut rng).unwrap();
    assert_eq!(
        server.evaluate(cts0[..63].to_vec(), &Sequential).err(),
        Some(NnError::InputLength {
            expected: 64,
            found: 63
        })
    );
    let mut mixed = cts0.clone();
    mixed[9] = cts1[9].clone();
    assert!(matches!(
        server.evaluate(mixed, &Sequential),
        Err(NnError::Bfv(BfvError::ForeignObject { .. }))
    ));
    let other_plan = BfvPlan::new_insecure_for_tests(&quant, 128).unwrap();
    let other = BfvClient::new(other_plan.clone(), &mut rng).unwrap();
    let foreign = other
        .encrypt_batch(&[&good], 0, &mut rng, &Sequential)
        .unwrap();
    assert!(matches!(
        server.evaluate(foreign, &Sequential),
        Err(NnError::Bfv(BfvError::ForeignObject { .. }))
    ));
    assert!(matches!(
        BfvServer::new(plan.clone(), other.relin_key(&mut rng)),
        Err(NnError::Bfv(BfvError::ForeignObject { .. }))
    ));
    // An input noisier than a fresh encryption (a sum of two) is refused.
    let ev = Evaluator::new(&plan.params()[0]);
    let mut noisy = cts0.clone();
    noisy[3] = ev.add(&cts0[3], &cts0[3]).unwrap();
    assert!(matches!(
        server.evaluate(noisy, &Sequential),
        Err(NnError::InputNoise { .. })
    ));
    // Decryption: a wrong number of primes or of scores, too many images.
    let scores: Vec<_> = [cts0, cts1]
        .into_iter()
        .chain((2..primes).map(|j| encrypt(&[&good], j, &mut rng).unwrap()))
        .map(|cts| server.evaluate(cts, &Sequential).unwrap())
        .collect();
    assert_eq!(
        client.decrypt_scores(&scores[1..], 1).err(),
        Some(NnError::InputLength {
            expected: primes,
            found: primes - 1
        })
    );
    let mut short_scores = scores.clone();
    short_scores[0].pop();
    assert_eq!(
        client.decrypt_scores(&short_scores, 1).err(),
        Some(NnError::InputLength {
            expected: 4,
            found: 3
        })
    );
    assert_eq!(
        client.decrypt_scores(&scores, 65).err(),
        Some(NnError::BatchSize { given: 65, max: 64 })
    );
    assert_eq!(
        client.decrypt_scores(&scores, 1).unwrap()[0],
        quant.infer(&good).unwrap()
    );
    // A score whose noise no honest evaluation reaches (the server scaled it up) is
    // refused before anything is decrypted from it, whatever it decrypts to.
    let mut scaled = scores.clone();
    let half = (plan.plain_moduli()[0] / 2) as i64;
    for _ in 0..4 {
        scaled[0][2] = ev.mul_scalar(&scaled[0][2], half).unwrap();
    }
    assert!(
        client.noise_budget(&scaled[0][2]).unwrap() < plan.noise_budget(),
        "the scaled score keeps the guaranteed budget"
    );
    assert!(matches!(
        client.decrypt_scores(&scaled, 1),
        Err(NnError::ReplyNoise {
            prime: 0,
            class: 2,
            ..
        })
    ));
}

#[test]
fn rejects_weights_the_kernel_cannot_take() {
    // 32-bit weights: five weights of about 2^30 (not all exact at a lower power of two)
    // sum beyond 2^32.
    let model = Model::new(
        Shape::Flat(5),
        vec![Layer::Dense(Dense {
            in_features: 5,
            out_features: 1,
            weight: vec![1.0, -0.999_999, 1.0, 1.0, 1.0],
            bias: None,
        })],
    )
    .unwrap();
    let quant = QuantizedModel::new(&model, &QuantConfig::pixels(32)).unwrap();
    assert!(matches!(
        BfvPlan::new_insecure_for_tests(&quant, 64),
        Err(NnError::TooLarge { op: 0, .. })
    ));
}

#[test]
fn consecutive_and_trailing_squares_exact() {
    // dense → square → square → dense → square: the squares that no linear map follows
    // are relinearised one by one; the one before the second map is fused with it.
    let mut rng = seeded_rng("henn_bfv squares", 0);
    let model = Model::new(
        Shape::Flat(8),
        vec![
            Layer::Dense(Dense {
                in_features: 8,
                out_features: 4,
                weight: weights(&mut rng, 32, 1.0),
                bias: Some(weights(&mut rng, 4, 0.5)),
            }),
            Layer::Square,
            Layer::Square,
            Layer::Dense(Dense {
                in_features: 4,
                out_features: 2,
                weight: weights(&mut rng, 8, 1.0),
                bias: Some(weights(&mut rng, 2, 0.5)),
            }),
            Layer::Square,
        ],
    )
    .unwrap();
    let config = QuantConfig {
        input_scale: 4,
        weight_bits: heist_core::nn::WeightBits::Uniform(3),
        ..QuantConfig::pixels(3)
    };
    let quant = QuantizedModel::new(&model, &config).unwrap();
    let plan = BfvPlan::new_insecure_for_tests(&quant, 64).unwrap();
    let inputs = images(&mut rng, 64, 8, plan.input_bound());
    let got = run(&plan, &inputs, "henn_bfv squares run");
    for (img, row) in inputs.iter().zip(&got) {
        assert_eq!(row, &quant.infer(img).unwrap());
    }
}
