//! Attack 4: the trusted party's secret key from its releases, at insecure small ring
//! degrees (the same code runs at the deployed parameters through `heist attack
//! key-recovery`).

use heist::attack::key_recovery::{active, passive, Adversary};
use heist::model::{Architecture, Model};
use heist::service::{bfv, Scheme};
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
    let outcome = active::ckks(&plan, filler, victim, &mut rng).unwrap();
    assert_eq!(
        (outcome.scheme, outcome.adversary),
        (Scheme::Ckks, Adversary::Active)
    );
    assert!(outcome.recovered, "{outcome:?}");
    assert!(outcome.verified_on_unseen, "{outcome:?}");
    assert_eq!((outcome.ciphertexts_used, outcome.batches), (2, 1));
    assert_eq!(outcome.client_queries, (CKKS_N / 2) as u64);
}

#[test]
fn active_server_recovers_the_bfv_key_from_one_batch() {
    let (quant, plan) = bfv_plan();
    let images = mnist_test_images(12);
    let (filler, victim) = images.split_at(8);
    let mut rng = seeded_rng("key-recovery-bfv-active", 4);
    let outcome = active::bfv(&quant, &plan, filler, victim, &mut rng).unwrap();
    assert!(outcome.recovered, "{outcome:?}");
    assert!(outcome.verified_on_unseen, "{outcome:?}");
    assert_eq!(outcome.batches, 1);
    assert_eq!(outcome.client_queries, BFV_N as u64);
}

#[test]
fn passive_server_fails_on_the_f32_release_of_the_service() {
    let plan = ckks_plan();
    let images = mnist_test_images(12);
    let (filler, victim) = images.split_at(8);
    let mut rng = seeded_rng("key-recovery-ckks-passive", 5);
    let outcome = passive::ckks(&plan, filler, victim, &mut rng).unwrap();
    assert!(!outcome.recovered && !outcome.verified_on_unseen, "{outcome:?}");
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
    assert!(outcome.recovered && outcome.verified_on_unseen, "{outcome:?}");
    assert!(outcome.reencoding_error.unwrap() < 0.01, "{outcome:?}");
}

#[test]
fn passive_server_learns_nothing_from_exact_bfv_decryptions() {
    let (quant, plan) = bfv_plan();
    let images = mnist_test_images(12);
    let (filler, victim) = images.split_at(8);
    let mut rng = seeded_rng("key-recovery-bfv-passive", 7);
    let outcome = passive::bfv(&quant, &plan, filler, victim, &mut rng).unwrap();
    assert!(!outcome.recovered && !outcome.verified_on_unseen, "{outcome:?}");
}
