//! Training is seeded and reproducible whatever the thread count, learns on the embedded
//! subset, and draws member subsets that cover what they should.

use heist::data::{self, sample, Dataset, Images};
use heist::model::Architecture;
use heist::train::{self, optim::OptimizerKind, TrainConfig, Trained};
use heist_tests::seeded_rng;

fn config(arch: Architecture, seed: u64) -> TrainConfig {
    TrainConfig {
        arch,
        epochs: 1,
        batch_size: 64,
        lr: 1e-3,
        optimizer: OptimizerKind::Adam,
        momentum: 0.0,
        clip_norm: None,
        fraction: 1.0,
        seed,
    }
}

fn small_train(d: Dataset, n: usize) -> Images {
    data::load(d, None, true)
        .expect("embedded subset")
        .train
        .truncated(n)
}

fn train_with_threads(threads: usize, images: &Images, cfg: &TrainConfig) -> Trained {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
        .install(|| train::train(images, cfg, |_, _, _| {}).expect("trains"))
}

#[test]
fn same_seed_same_weights_whatever_the_thread_count() {
    let images = small_train(Dataset::Mnist, 300);
    let cfg = config(Architecture::Mnist, 5);
    let one = train_with_threads(1, &images, &cfg);
    let three = train_with_threads(3, &images, &cfg);
    assert_eq!(
        one.model.params(),
        three.model.params(),
        "weights differ by thread count"
    );
    assert_eq!(one.history, three.history);
    let other = train_with_threads(2, &images, &config(Architecture::Mnist, 6));
    assert_ne!(
        one.model.params(),
        other.model.params(),
        "seed has no effect"
    );
}

#[test]
fn both_networks_learn_on_the_embedded_subset() {
    for (d, floor) in [(Dataset::Mnist, 0.85), (Dataset::Fashion, 0.70)] {
        let data = data::load(d, None, true).expect("embedded subset");
        let mut cfg = config(Architecture::for_dataset(d), 1);
        cfg.epochs = 4;
        let t = train::train(&data.train, &cfg, |_, _, _| {}).expect("trains");
        let acc = t.model.accuracy(&data.test);
        eprintln!("{d}: embedded-subset test accuracy after 4 epochs: {acc:.4}");
        assert!(acc >= floor, "{d}: test accuracy {acc} below {floor}");
        let losses: Vec<f64> = t.history.iter().map(|s| s.loss).collect();
        assert!(
            losses.windows(2).all(|w| w[1] < w[0]),
            "{d}: loss not decreasing: {losses:?}"
        );
    }
}

#[test]
fn sgd_with_momentum_diverges_unclipped_and_trains_clipped() {
    let data = data::load(Dataset::Mnist, None, true).expect("embedded subset");
    let mut cfg = config(Architecture::Mnist, 2);
    cfg.optimizer = OptimizerKind::Sgd;
    cfg.lr = 0.02;
    cfg.momentum = 0.9;
    cfg.epochs = 3;
    // Square activations blow up under this step size...
    let err = train::train(&data.train, &cfg, |_, _, _| {}).expect_err("diverges");
    assert!(
        matches!(err, train::TrainError::Diverged { epoch: 1, .. }),
        "{err:?}"
    );
    // ...and a global-norm clip keeps the same run stable.
    cfg.clip_norm = Some(1.0);
    let t = train::train(&data.train, &cfg, |_, _, _| {}).expect("trains");
    let acc = t.model.accuracy(&data.test);
    assert!(acc >= 0.8, "clipped SGD test accuracy {acc}");
}

#[test]
fn fraction_draws_the_exact_member_subset() {
    let images = small_train(Dataset::Fashion, 200);
    let mut cfg = config(Architecture::Fashion, 9);
    cfg.epochs = 0;
    for (fraction, expected) in [(0.5, 100), (0.2, 40), (1.0, 200)] {
        cfg.fraction = fraction;
        let t = train::train(&images, &cfg, |_, _, _| {}).expect("trains");
        assert_eq!(t.members.len(), expected, "fraction {fraction}");
        assert!(
            t.members.windows(2).all(|w| w[0] < w[1]),
            "not strictly increasing"
        );
        assert!(t.members.iter().all(|&i| i < images.len()));
        let again = train::train(&images, &cfg, |_, _, _| {}).expect("trains");
        assert_eq!(t.members, again.members, "member draw not reproducible");
    }
}

#[test]
fn bad_configurations_are_rejected() {
    let images = small_train(Dataset::Mnist, 10);
    let mut cfg = config(Architecture::Mnist, 0);
    for f in [0.0, -0.1, 1.5, f64::NAN] {
        cfg.fraction = f;
        assert!(
            train::train(&images, &cfg, |_, _, _| {}).is_err(),
            "fraction {f}"
        );
    }
    cfg.fraction = 1.0;
    cfg.batch_size = 0;
    assert!(
        train::train(&images, &cfg, |_, _, _| {}).is_err(),
        "batch size 0"
    );
}

#[test]
fn sampling_helpers_are_uniform_and_exact() {
    let mut rng = seeded_rng("sampling", 3);
    let drawn = sample::sample_indices(&mut rng, 10, 10);
    assert_eq!(drawn, (0..10).collect::<Vec<_>>(), "k = n draws everything");
    let mut counts = [0usize; 5];
    for _ in 0..5000 {
        counts[sample::uniform_below(&mut rng, 5) as usize] += 1;
    }
    // Each bucket expects 1000; 6 sigma is about 170.
    assert!(
        counts.iter().all(|&c| (830..=1170).contains(&c)),
        "{counts:?}"
    );
    let mut v: Vec<u32> = (0..100).collect();
    sample::shuffle(&mut rng, &mut v);
    assert_ne!(v, (0..100).collect::<Vec<_>>());
    v.sort_unstable();
    assert_eq!(v, (0..100).collect::<Vec<_>>(), "shuffle is a permutation");
}
