//! heist_he::nn CKKS batch inference against the f64 model: every decrypted score within
//! the bound tracked on the ciphertexts (plus the f64 model's own rounding bound), arg-max
//! agreement on real MNIST images, the parameter choice at the secure size, and errors.

use heist::data::{load, Dataset};
use heist_core::nn::{Model, Rounding};
use heist_he::nn::{
    Calibration, CkksClient, CkksPlan, CkksServer, NnError, PlanConfig, Sequential,
};
use heist_he::params::max_log_q;
use heist_he::params::SecurityLevel;
use heist_tests::models::{mnist_model, small_paper_model, uniform};
use heist_tests::seeded_rng;

/// Bound on |f64 reference - exact real network| for inputs in [-1, 1].
fn f64_bound(model: &Model) -> f64 {
    let net = model.network();
    net.error_bound(1.0, &Rounding::f64_arithmetic(net))
        .unwrap()
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Encrypts `images`, evaluates, decrypts; returns the scores and the tracked bound.
fn run(
    model: &Model,
    config: &PlanConfig,
    n: usize,
    images: &[Vec<f64>],
    label: &str,
) -> (Vec<Vec<f64>>, f64) {
    let mut rng = seeded_rng(label, 1);
    let plan = CkksPlan::new_insecure_for_tests(model.network(), config, n).unwrap();
    let he = plan.params().he();
    println!(
        "N {n}: chain {:?} special {}, input scale 2^{}, weight exponents {:?}",
        he.chain()
            .iter()
            .map(|q| 64 - q.leading_zeros())
            .collect::<Vec<_>>(),
        64 - he.special().leading_zeros(),
        plan.input_scale().log2(),
        plan.weight_log2()
    );
    let client = CkksClient::new(plan.clone(), &mut rng);
    let server = CkksServer::new(plan, client.relin_key(&mut rng)).unwrap();
    let refs: Vec<&[f64]> = images.iter().map(Vec::as_slice).collect();
    let cts = client.encrypt_batch(&refs, &mut rng, &Sequential).unwrap();
    let scores = server.evaluate(cts, &Sequential).unwrap();
    let bound = client.error_bound(&scores);
    assert!(
        bound <= client.plan().predicted_error() * (1.0 + 1e-9),
        "tracked {bound:e} above planned {:e}",
        client.plan().predicted_error()
    );
    (client.decrypt_scores(&scores, images.len()).unwrap(), bound)
}

#[test]
fn small_model_scores_within_tracked_bound() {
    let mut rng = seeded_rng("henn_ckks small model", 0);
    for trial in 0..3 {
        let model = small_paper_model(&mut rng);
        let images: Vec<Vec<f64>> = (0..512)
            .map(|_| (0..64).map(|_| uniform(&mut rng, -1.0, 1.0)).collect())
            .collect();
        let (scores, bound) = run(
            &model,
            &PlanConfig::default(),
            1024,
            &images,
            "henn_ckks small run",
        );
        let bound = bound + f64_bound(&model);
        let mut worst = 0.0f64;
        for (image, got) in images.iter().zip(&scores) {
            let want = model.infer(image).unwrap();
            for (g, w) in got.iter().zip(&want) {
                let e = (g - w).abs();
                assert!(
                    e <= bound,
                    "trial {trial}: score {g} vs {w}, error {e:e} > bound {bound:e}"
                );
                worst = worst.max(e);
            }
        }
        println!("trial {trial}: worst error {worst:e}, bound {bound:e}");
    }
}

#[test]
fn mnist_argmax_agrees_on_real_images() {
    let data = load(Dataset::Mnist, None, false).unwrap();
    if let Some(notice) = data.source.notice() {
        println!("{notice}");
    }
    let count = data.test.len().min(1024);
    let images: Vec<Vec<f64>> = (0..count)
        .map(|i| {
            data.test
                .image(i)
                .iter()
                .map(|&p| f64::from(p) / 255.0)
                .collect()
        })
        .collect();
    let mut rng = seeded_rng("henn_ckks mnist model", 0);
    let model = mnist_model(&mut rng);
    // The chain is sized for the magnitudes seen on 200 training images, times 4.
    let config = PlanConfig {
        calibration: Some(Calibration {
            inputs: (0..200)
                .map(|i| {
                    data.train
                        .image(i)
                        .iter()
                        .map(|&p| f64::from(p) / 255.0)
                        .collect()
                })
                .collect(),
            margin: 4.0,
        }),
        ..PlanConfig::default()
    };
    let (scores, bound) = run(&model, &config, 2048, &images, "henn_ckks mnist run");
    let bound = bound + f64_bound(&model);
    let mut agree = 0;
    let mut worst = 0.0f64;
    for (image, got) in images.iter().zip(&scores) {
        let want = model.infer(image).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() <= bound,
                "score {g} vs {w} beyond bound {bound:e}"
            );
            worst = worst.max((g - w).abs());
        }
        if argmax(got) == argmax(&want) {
            agree += 1;
        } else {
            let mut sorted = want.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            println!(
                "disagreement: plaintext gap {:e}, scores {want:?}",
                sorted[0] - sorted[1]
            );
        }
    }
    println!("arg-max agreement {agree}/{count}, worst error {worst:e}, bound {bound:e}");
    assert!(agree * 1000 >= count * 999, "{agree}/{count}");
}

#[test]
fn mnist_plan_is_secure_at_8192() {
    let mut rng = seeded_rng("henn_ckks mnist plan", 0);
    let model = mnist_model(&mut rng);
    let plan = CkksPlan::new(model.network(), &PlanConfig::default()).unwrap();
    let he = plan.params().he();
    println!(
        "N {} chain {:?} special {} log q {} input scale 2^{} predicted error {:e}",
        he.n(),
        he.chain(),
        he.special(),
        he.log_q(),
        plan.input_scale().log2(),
        plan.predicted_error()
    );
    assert_eq!(he.n(), 8192);
    assert_eq!(he.chain().len(), 3);
    assert_eq!(he.security(), Some(SecurityLevel::Tc128));
    assert!(he.log_q() <= max_log_q(8192, SecurityLevel::Tc128).unwrap());
}

#[test]
fn rejects_bad_inputs_and_foreign_keys() {
    let mut rng = seeded_rng("henn_ckks errors", 0);
    let model = small_paper_model(&mut rng);
    let plan =
        CkksPlan::new_insecure_for_tests(model.network(), &PlanConfig::default(), 1024).unwrap();
    let client = CkksClient::new(plan.clone(), &mut rng);
    let short = vec![0.5; 63];
    assert_eq!(
        client.encrypt_batch(&[&short], &mut rng, &Sequential),
        Err(NnError::InputLength {
            expected: 64,
            found: 63
        })
    );
    let mut wide = vec![0.5; 64];
    wide[7] = 1.5;
    assert_eq!(
        client.encrypt_batch(&[&wide], &mut rng, &Sequential),
        Err(NnError::InputRange { image: 0, index: 7 })
    );
    let too_many = vec![wide.as_slice(); 513];
    assert_eq!(
        client.encrypt_batch(&too_many, &mut rng, &Sequential),
        Err(NnError::BatchSize {
            given: 513,
            max: 512
        })
    );
    let config = PlanConfig {
        weight_bits: Some(1),
        ..PlanConfig::default()
    };
    assert_eq!(
        CkksPlan::new(model.network(), &config).unwrap_err(),
        NnError::Config
    );
    let other_plan =
        CkksPlan::new_insecure_for_tests(model.network(), &PlanConfig::default(), 2048).unwrap();
    let other = CkksClient::new(other_plan, &mut rng);
    assert!(matches!(
        CkksServer::new(plan, other.relin_key(&mut rng)),
        Err(NnError::Ckks(_))
    ));
    assert!(NnError::InputRange { image: 0, index: 7 }
        .to_string()
        .contains("input 7"));
}
