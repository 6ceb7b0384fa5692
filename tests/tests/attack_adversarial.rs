//! Attack 1: the vector–Jacobian product against finite differences, each attack against a
//! random perturbation of the same size on a small seeded model, the encrypted path, and
//! configurations refused with typed errors.

use heist::attack::adversarial::cw::{cw, CwConfig, CwOptimizer};
use heist::attack::adversarial::experiment::{self, AttackKind, Settings};
use heist::attack::adversarial::fgsm::{fgsm, FgsmConfig};
use heist::attack::adversarial::pgd::{pgd, PgdConfig};
use heist::attack::adversarial::square::{square, square_budgets, SquareConfig};
use heist::attack::adversarial::training::{madry_hook, relu_twin, robustness, AdversarialConfig};
use heist::attack::adversarial::transfer::{
    train_surrogate, transfer, TransferConfig, TransferError,
};
use heist::attack::adversarial::{distances, project, AttackError, Labels};
use heist::data::{subset, Dataset};
use heist::inference::{to_images, OracleSpec};
use heist::model::network::{Conv2d, Dense, LayerSpec, Network, Padding, Shape};
use heist::model::{scaled, Architecture, Model};
use heist::oracle::{
    cross_entropy_cotangent, predicted_class, Classifier, Cotangent, GradientOracle, Image, Oracle,
    PixelGradient, PlainOracle, PlainOracleError, Release, Released, Scores, Weighted, CLASSES,
    IMAGE_PIXELS,
};
use heist::service::Scheme;
use heist::train::optim::OptimizerKind;
use heist::train::{train, train_network, train_with, TrainConfig, TrainError};
use heist_tests::seeded_rng;
use rand_core::RngCore;

/// Test images attacked.
const N: usize = 100;

/// The paper's MNIST network trained for 4 epochs on the embedded subset (seed 3), and
/// the first `N` embedded test images with their labels.
fn setup() -> (Model, Vec<Image>, Vec<u8>, heist::data::Data) {
    let data = subset::load(Dataset::Mnist).expect("embedded subset");
    let config = TrainConfig {
        arch: Architecture::Mnist,
        epochs: 4,
        batch_size: 64,
        lr: 1e-3,
        optimizer: OptimizerKind::Adam,
        momentum: 0.0,
        clip_norm: None,
        fraction: 1.0,
        seed: 3,
    };
    let model = train(&data.train, &config, |_, _, _| {})
        .expect("training")
        .model;
    let test = data.test.truncated(N);
    let images = scaled(&test)
        .chunks(IMAGE_PIXELS)
        .map(|p| Image::new(p).expect("pixels in [0, 1]"))
        .collect();
    (model, images, test.labels.clone(), data)
}

fn accuracy(model: &Model, images: &[Image], labels: &[u8]) -> f64 {
    let correct = model
        .scores_batch(images)
        .iter()
        .zip(labels)
        .filter(|(z, &y)| predicted_class(z) == usize::from(y))
        .count();
    correct as f64 / images.len() as f64
}

/// Each image moved by ±eps per pixel with random signs (the same L∞ size as the attacks).
fn random_signs(images: &[Image], eps: f32, seed: u64) -> Vec<Image> {
    let mut rng = seeded_rng("random perturbation", seed);
    images
        .iter()
        .map(|im| {
            let x: Vec<f32> = im
                .pixels()
                .iter()
                .map(|&v| {
                    if rng.next_u32() & 1 == 0 {
                        v - eps
                    } else {
                        v + eps
                    }
                })
                .collect();
            project(im, &x, eps).expect("finite")
        })
        .collect()
}

/// A random perturbation of each image with the L2 norm of `like`'s perturbation.
fn random_l2_like(images: &[Image], like: &[Image], seed: u64) -> Vec<Image> {
    let mut rng = seeded_rng("random l2", seed);
    images
        .iter()
        .zip(like)
        .map(|(im, adv)| {
            let (l2, _) = distances(im, adv);
            let dir: Vec<f32> = (0..IMAGE_PIXELS)
                .map(|_| (rng.next_u32() as f32 / u32::MAX as f32) - 0.5)
                .collect();
            let norm = dir.iter().map(|d| d * d).sum::<f32>().sqrt();
            let x: Vec<f32> = im
                .pixels()
                .iter()
                .zip(&dir)
                .map(|(&v, &d)| v + l2 * d / norm)
                .collect();
            project(im, &x, 1.0).expect("finite")
        })
        .collect()
}

#[test]
fn the_vjp_matches_central_differences_in_f64() {
    let net = Network::new(
        Shape { c: 1, h: 8, w: 8 },
        &[
            LayerSpec::Conv2d(Conv2d {
                in_channels: 1,
                out_channels: 2,
                kernel: 3,
                stride: 2,
                padding: Padding::Same,
                bias: true,
            }),
            LayerSpec::Square,
            LayerSpec::Flatten,
            LayerSpec::Dense(Dense {
                inputs: 32,
                outputs: 6,
                bias: true,
            }),
            LayerSpec::Square,
            LayerSpec::Dense(Dense {
                inputs: 6,
                outputs: 10,
                bias: false,
            }),
        ],
    )
    .expect("valid network");
    let mut rng = seeded_rng("vjp", 0);
    let mut uniform = |scale: f64| (rng.next_u32() as f64 / u32::MAX as f64 - 0.5) * scale;
    let params: Vec<f64> = (0..net.param_count()).map(|_| uniform(0.6)).collect();
    let x: Vec<f64> = (0..2 * 64).map(|_| uniform(1.0) + 0.5).collect();
    let cot: Vec<Vec<f64>> = (0..2)
        .map(|_| (0..10).map(|_| uniform(2.0)).collect())
        .collect();
    let (outputs, grad) = net.vjp(&params, &x, 2, |i, _| cot[i].clone());
    assert_eq!(outputs, net.forward(&params, &x, 2));
    let objective = |x: &[f64]| -> f64 {
        net.forward(&params, x, 2)
            .chunks_exact(10)
            .zip(&cot)
            .map(|(z, c)| z.iter().zip(c).map(|(a, b)| a * b).sum::<f64>())
            .sum()
    };
    let h = 1e-5;
    for k in 0..x.len() {
        let (mut up, mut down) = (x.clone(), x.clone());
        up[k] += h;
        down[k] -= h;
        let numeric = (objective(&up) - objective(&down)) / (2.0 * h);
        assert!(
            (numeric - grad[k]).abs() <= 1e-6 * (1.0 + numeric.abs()),
            "pixel {k}: vjp {} vs central difference {numeric}",
            grad[k]
        );
    }
}

#[test]
fn the_cross_entropy_vjp_is_the_loss_gradient() {
    let (model, images, labels, _) = setup();
    let mut twin = PlainOracle::new(model.clone());
    let (scores, grads) = twin
        .vjp(&images[..8], &|i, z| {
            cross_entropy_cotangent(z, usize::from(labels[i]))
        })
        .expect("plain");
    assert_eq!(scores, model.scores_batch(&images[..8]));
    let pixels: Vec<f32> = images[..8].iter().flat_map(|i| *i.pixels()).collect();
    let reference = model.input_gradient(&pixels, &labels[..8]);
    for (g, r) in grads.iter().flat_map(|g| g.iter()).zip(&reference) {
        assert!((g - r).abs() <= 1e-5 * (1.0 + r.abs()), "{g} vs {r}");
    }
    assert_eq!(twin.queries(), 8);
}

/// The plaintext twin through the provided (one `vjp` per step) `signed_steps`.
struct Stepwise(PlainOracle<Model>);

impl Oracle for Stepwise {
    type Error = <PlainOracle<Model> as Oracle>::Error;

    fn query(&mut self, images: &[Image]) -> Result<Vec<Scores>, Self::Error> {
        self.0.query(images)
    }

    fn queries(&self) -> u64 {
        self.0.queries()
    }
}

impl GradientOracle for Stepwise {
    fn vjp(
        &mut self,
        images: &[Image],
        cotangent: Cotangent<'_>,
    ) -> Result<(Vec<Scores>, Vec<PixelGradient>), Self::Error> {
        self.0.vjp(images, cotangent)
    }

    fn loss_gradient(
        &mut self,
        images: &[Image],
        labels: &[u8],
    ) -> Result<Vec<PixelGradient>, Self::Error> {
        self.0.loss_gradient(images, labels)
    }
}

#[test]
fn the_fused_signed_steps_equal_one_vjp_per_step_bit_for_bit() {
    let (model, images, labels, _) = setup();
    // One chunk of the fused path (128 images at most) against the stepwise path's two (64
    // each at most, the second one partial), from a start inside the ball: the chunking
    // changes no result.
    assert!(images.len() > 64 && images.len() % 64 != 0 && images.len() <= 128);
    let start = random_signs(&images, 0.1, 9);
    let mut fused = PlainOracle::new(model.clone());
    let mut stepwise = Stepwise(PlainOracle::new(model.clone()));
    let a = fused
        .signed_steps(&images, &start, &labels, 0.02, 0.3, 7)
        .expect("fused");
    let b = stepwise
        .signed_steps(&images, &start, &labels, 0.02, 0.3, 7)
        .expect("stepwise");
    assert_eq!(a, b);
    assert_ne!(a, start, "the steps moved the images");
    let queries = images.len() as u64 * 7;
    assert_eq!((fused.queries(), stepwise.queries()), (queries, queries));
    let err = fused
        .signed_steps(&images, &start, &labels[..3], 0.02, 0.3, 1)
        .unwrap_err();
    assert!(
        matches!(err, PlainOracleError::LengthMismatch { .. }),
        "{err}"
    );
}

#[test]
fn white_box_attacks_beat_random_perturbations_of_the_same_size() {
    let (model, images, labels, _) = setup();
    let clean = accuracy(&model, &images, &labels);
    let noise = accuracy(&model, &random_signs(&images, 0.3, 1), &labels);
    assert!(clean > 0.7, "clean accuracy {clean}");
    let mut twin = PlainOracle::new(model.clone());
    let eps = 0.3;
    let f = fgsm(&mut twin, &images, &labels, &FgsmConfig { eps }).expect("fgsm");
    let b = pgd(&mut twin, &images, &labels, &PgdConfig::bim(eps, 0.01, 40)).expect("bim");
    let p = pgd(
        &mut twin,
        &images,
        &labels,
        &PgdConfig {
            eps,
            step: 0.01,
            iters: 40,
            random_start: true,
            restarts: 2,
            seed: 5,
        },
    )
    .expect("pgd");
    for (name, adv) in [("fgsm", &f), ("bim", &b), ("pgd", &p)] {
        let acc = accuracy(&model, adv, &labels);
        // The stated margin: 0.3 below random ±eps noise, which leaves most images right.
        assert!(
            acc <= noise - 0.3,
            "{name}: accuracy {acc}, random signs {noise}"
        );
        for (a, c) in adv.iter().zip(&images) {
            assert!(distances(a, c).1 <= eps + 1e-6, "{name} left the ball");
        }
    }
    // Iterating is at least as strong as one step.
    assert!(accuracy(&model, &b, &labels) <= accuracy(&model, &f, &labels));
    // C&W with Adam at heist's settings and with ART's line search at ART's defaults.
    let adam = CwConfig {
        binary_steps: 4,
        iters: 50,
        lr: 0.1,
        initial_const: 1.0,
        confidence: 0.0,
        optimizer: CwOptimizer::Adam,
        max_halving: 5,
        max_doubling: 5,
    };
    let art = CwConfig {
        binary_steps: 10,
        iters: 10,
        lr: 0.01,
        initial_const: 0.01,
        optimizer: CwOptimizer::LineSearch,
        ..adam
    };
    for config in [adam, art] {
        let r = cw(&mut twin, &images, &labels, &config).expect("cw");
        let acc = accuracy(&model, &r.images, &labels);
        let same_l2 = accuracy(&model, &random_l2_like(&images, &r.images, 2), &labels);
        assert!(
            acc <= same_l2 - 0.3,
            "cw {:?}: accuracy {acc}, random noise of the same L2 {same_l2}",
            config.optimizer
        );
        for (found, (a, c)) in r.found.iter().zip(r.images.iter().zip(&images)) {
            if !found {
                assert_eq!(a, c, "an image without an adversarial point stays clean");
            }
        }
    }
}

#[test]
fn the_square_attack_needs_only_scores_and_counts_its_queries() {
    let (model, images, labels, _) = setup();
    let images = &images[..40];
    let labels = &labels[..40];
    let noise = accuracy(&model, &random_signs(images, 0.3, 3), labels);
    let mut oracle = PlainOracle::new(model.clone());
    let config = SquareConfig {
        eps: 0.3,
        iters: 60,
        p_init: 0.8,
        batch: 0,
        seed: 7,
    };
    let r = square(&mut oracle, images, labels, &config).expect("square");
    let acc = accuracy(&model, &r.images, labels);
    assert!(acc <= noise - 0.3, "square: accuracy {acc}, random {noise}");
    assert_eq!(oracle.queries(), r.queries.iter().sum::<u64>());
    for (q, fooled) in r.queries.iter().zip(&r.fooled) {
        assert!((1..=61).contains(q));
        if !fooled {
            assert_eq!(*q, 61, "an unfinished image is queried every iteration");
        }
    }
    for (&q, &ran) in r.queries.iter().zip(&r.iterations) {
        assert_eq!(q, ran as u64 + 1, "one query per iteration, and the first");
    }
}

/// An oracle that records the size of every query it answers.
struct Sizes {
    inner: PlainOracle<Model>,
    sizes: Vec<usize>,
}

impl Oracle for Sizes {
    type Error = <PlainOracle<Model> as Oracle>::Error;

    fn query(&mut self, images: &[Image]) -> Result<Vec<Scores>, Self::Error> {
        self.sizes.push(images.len());
        self.inner.query(images)
    }

    fn queries(&self) -> u64 {
        self.inner.queries()
    }
}

#[test]
fn the_square_attack_fills_each_query_with_candidates_within_every_budget() {
    let (model, images, labels, _) = setup();
    let images = &images[..40];
    let labels = &labels[..40];
    let noise = accuracy(&model, &random_signs(images, 0.3, 3), labels);
    let (iters, batch) = (60, 1024);
    let mut oracle = Sizes {
        inner: PlainOracle::new(model.clone()),
        sizes: Vec::new(),
    };
    let config = SquareConfig {
        eps: 0.3,
        iters,
        p_init: 0.8,
        batch,
        seed: 7,
    };
    let r = square(&mut oracle, images, labels, &config).expect("square");
    let acc = accuracy(&model, &r.images, labels);
    assert!(acc <= noise - 0.3, "square: accuracy {acc}, random {noise}");
    assert_eq!(oracle.queries(), r.queries.iter().sum::<u64>());
    for ((&q, &ran), fooled) in r.queries.iter().zip(&r.iterations).zip(&r.fooled) {
        assert!(ran <= iters, "{ran} iterations");
        assert!(
            q > ran as u64,
            "{q} queries for {ran} iterations and the first"
        );
        if !fooled {
            assert_eq!(ran, iters, "an unfinished image runs every iteration");
        }
    }
    // The first query holds every image; each later one at most `batch` candidates (each
    // unfinished image proposes at least one), and there are far fewer queries than the
    // one per iteration of ART's attack.
    assert_eq!(oracle.sizes[0], images.len());
    assert!(oracle.sizes[1..]
        .iter()
        .all(|&n| n <= batch.max(images.len())));
    assert!(oracle.sizes[1] > images.len(), "the second query is filled");
    let sequential = r.iterations.iter().max().expect("images") + 1;
    assert!(
        oracle.sizes.len() < sequential / 2,
        "{} queries where ART would make {sequential}",
        oracle.sizes.len()
    );
}

#[test]
fn the_square_attack_runs_several_budgets_in_lockstep_each_within_its_ball() {
    let (model, images, labels, _) = setup();
    let images = &images[..24];
    let labels = &labels[..24];
    let config = SquareConfig {
        eps: 0.3,
        iters: 30,
        p_init: 0.8,
        batch: 512,
        seed: 5,
    };
    // One budget is the single attack, draw for draw.
    let mut oracle = PlainOracle::new(model.clone());
    let one = square_budgets(&mut oracle, images, labels, &[0.3], &config).expect("square");
    let single = square(
        &mut PlainOracle::new(model.clone()),
        images,
        labels,
        &config,
    )
    .expect("square");
    assert_eq!(one[0].images, single.images);
    assert_eq!(one[0].queries, single.queries);
    // Several: each result stays in its own ball, and the queries are all counted.
    let budgets = [0.05, 0.3];
    let mut oracle = PlainOracle::new(model.clone());
    let all = square_budgets(&mut oracle, images, labels, &budgets, &config).expect("square");
    assert_eq!(all.len(), budgets.len());
    let spent: u64 = all.iter().flat_map(|r| &r.queries).sum();
    assert_eq!(oracle.queries(), spent);
    for (r, &eps) in all.iter().zip(&budgets) {
        assert_eq!(r.images.len(), images.len());
        for (x, clean) in r.images.iter().zip(images) {
            let (_, linf) = distances(x, clean);
            assert!(linf <= eps + 1e-6, "L∞ {linf} beyond {eps}");
        }
    }
    let (small, large) = (
        accuracy(&model, &all[0].images, labels),
        accuracy(&model, &all[1].images, labels),
    );
    assert!(
        large < small,
        "accuracy {large} at ε 0.3, {small} at ε 0.05"
    );
}

#[test]
fn table_4_runs_through_the_encrypted_service() {
    let (model, images, labels, data) = setup();
    let images = &images[..16];
    let labels = &labels[..16];
    let mut oracle = OracleSpec::InProcess(Scheme::Ckks)
        .open(&model, &data.train)
        .expect("ckks service");
    let aux = to_images(&data.train.truncated(48)).expect("aux images");
    let settings = Settings {
        attacks: vec![AttackKind::Fgsm, AttackKind::Square, AttackKind::Transfer],
        labels: Labels::True,
        fgsm: FgsmConfig { eps: 0.3 },
        bim: PgdConfig::bim(0.3, 0.01, 40),
        pgd: PgdConfig::bim(0.3, 0.01, 40),
        cw: CwConfig {
            binary_steps: 1,
            iters: 1,
            lr: 0.1,
            initial_const: 1.0,
            confidence: 0.0,
            optimizer: CwOptimizer::Adam,
            max_halving: 5,
            max_doubling: 5,
        },
        square: SquareConfig {
            eps: 0.3,
            iters: 3,
            p_init: 0.8,
            batch: 0,
            seed: 1,
        },
        transfer: TransferConfig {
            aux: 48,
            epochs: 1,
            attack: PgdConfig::bim(0.3, 0.01, 40),
            seed: 2,
        },
        cw_limit: None,
        square_limit: Some(8),
    };
    let result = experiment::run(
        &model,
        &mut oracle,
        images,
        labels,
        &aux,
        &settings,
        &mut |_| {},
    )
    .expect("run");
    // Clean, FGSM, Square and transfer images classified once each, plus Square's own
    // queries and the transfer attack's labels of its 48 auxiliary images.
    let square = &result.outcomes[1];
    assert_eq!(square.attacked, 8);
    let square_queries = (square.queries_per_image * 8.0).round() as u64;
    assert!((8..=8 * 4).contains(&square_queries));
    let transfer = &result.outcomes[2];
    assert_eq!(transfer.name, "transfer");
    assert_eq!(transfer.queries_per_image, 48.0 / 16.0);
    let surrogate = result.surrogate.as_ref().expect("the surrogate");
    assert_eq!((surrogate.aux, surrogate.label_queries), (48, 48));
    assert_eq!(result.oracle_queries, 2 * 16 + 8 + square_queries + 48 + 16);
    assert_eq!(oracle.queries(), result.oracle_queries);
    // CKKS noise does not move a prediction of this model on these images.
    assert!(result.clean_agreement >= 0.99, "{}", result.clean_agreement);
    assert!(result.outcomes[0].encrypted_plain_agreement >= 0.99);
    assert!(result.outcomes[0].accuracy < result.clean_accuracy);
}

#[test]
fn invalid_settings_are_refused_with_typed_errors() {
    let (model, images, labels, _) = setup();
    let mut twin = PlainOracle::new(model);
    let images = &images[..2];
    let labels = &labels[..2];
    for eps in [-0.1, 0.0, 1.5, f32::NAN] {
        let err = fgsm(&mut twin, images, labels, &FgsmConfig { eps }).unwrap_err();
        assert!(
            matches!(err, AttackError::Config(ref e) if e.what == "eps"),
            "{err}"
        );
    }
    let err = pgd(&mut twin, images, labels, &PgdConfig::bim(0.3, 0.01, 0)).unwrap_err();
    assert!(matches!(err, AttackError::Config(ref e) if e.what == "iters"));
    let bad_cw = CwConfig {
        binary_steps: 0,
        iters: 10,
        lr: 0.1,
        initial_const: 1.0,
        confidence: 0.0,
        optimizer: CwOptimizer::LineSearch,
        max_halving: 5,
        max_doubling: 5,
    };
    let err = cw(&mut twin, images, labels, &bad_cw).unwrap_err();
    assert!(matches!(err, AttackError::Config(ref e) if e.what == "cw-steps"));
    let err = cw(
        &mut twin,
        images,
        labels,
        &CwConfig {
            binary_steps: 1,
            confidence: -1.0,
            ..bad_cw
        },
    )
    .unwrap_err();
    assert!(matches!(err, AttackError::Config(ref e) if e.what == "cw-confidence"));
    let err = cw(
        &mut twin,
        images,
        labels,
        &CwConfig {
            binary_steps: 1,
            max_halving: 0,
            ..bad_cw
        },
    )
    .unwrap_err();
    assert!(matches!(err, AttackError::Config(ref e) if e.what == "cw-halving"));
    let err = square(
        &mut twin,
        images,
        labels,
        &SquareConfig {
            eps: 0.3,
            iters: 5,
            p_init: 0.0,
            batch: 0,
            seed: 0,
        },
    )
    .unwrap_err();
    assert!(matches!(err, AttackError::Config(ref e) if e.what == "square-p-init"));
    let err = fgsm(&mut twin, images, &labels[..1], &FgsmConfig { eps: 0.3 }).unwrap_err();
    assert!(matches!(err, AttackError::Labels(_)), "{err}");
    let err = fgsm(
        &mut twin,
        images,
        &[1, CLASSES as u8],
        &FgsmConfig { eps: 0.3 },
    )
    .unwrap_err();
    assert!(matches!(err, AttackError::Labels(_)), "{err}");
}

#[test]
fn the_transfer_attack_beats_random_perturbations_from_labels_alone() {
    let (model, images, labels, data) = setup();
    let aux = to_images(&data.train.truncated(1000)).expect("aux images");
    let config = TransferConfig {
        aux: 1000,
        epochs: 10,
        attack: PgdConfig::bim(0.3, 0.01, 40),
        seed: 4,
    };
    // The surrogate sees only the oracle's top-1 answers: a service that releases only
    // the class gives the same surrogate as one that releases every score.
    let mut oracle = PlainOracle::new(model.clone());
    let surrogate =
        train_surrogate(&mut oracle, Architecture::Mnist, &aux, &config).expect("surrogate");
    assert_eq!(
        oracle.queries(),
        1000,
        "one label query per auxiliary image"
    );
    assert_eq!(surrogate.label_queries, 1000);
    let mut top1 = Released::new(PlainOracle::new(model.clone()), Release::TopOne).expect("top1");
    let same = train_surrogate(&mut top1, Architecture::Mnist, &aux, &config).expect("top-1");
    assert_eq!(same.model.params(), surrogate.model.params());
    assert_ne!(surrogate.model.params(), model.params());
    let x = transfer(&surrogate, &images, &labels, &config.attack).expect("transfer");
    for (a, c) in x.iter().zip(&images) {
        assert!(distances(a, c).1 <= 0.3 + 1e-6, "transfer left the ball");
    }
    let acc = accuracy(&model, &x, &labels);
    let noise = accuracy(&model, &random_signs(&images, 0.3, 1), &labels);
    eprintln!(
        "transfer {acc} random {noise} aux agreement {}",
        surrogate.aux_agreement
    );
    // The stated margin: 0.3 below random ±eps noise of the same L∞ size.
    assert!(
        acc <= noise - 0.3,
        "transfer: accuracy {acc}, random {noise}"
    );
    let err = train_surrogate(&mut oracle, Architecture::Mnist, &aux[..10], &config).unwrap_err();
    assert!(matches!(
        err,
        TransferError::TooFewAuxiliary {
            given: 10,
            wanted: 1000
        }
    ));
    for bad in [
        TransferConfig { aux: 0, ..config },
        TransferConfig {
            epochs: 0,
            ..config
        },
    ] {
        let err = train_surrogate(&mut oracle, Architecture::Mnist, &aux, &bad).unwrap_err();
        assert!(matches!(err, TransferError::Config(_)), "{err}");
    }
    assert_eq!(
        oracle.queries(),
        1000,
        "a refused configuration queries nothing"
    );
}

#[test]
fn the_eps_sweep_starts_clean_and_ends_at_the_experiment() {
    let (model, images, labels, data) = setup();
    let (images, labels) = (&images[..32], &labels[..32]);
    let mut oracle = PlainOracle::new(model.clone());
    let settings = Settings {
        attacks: vec![AttackKind::Fgsm, AttackKind::Bim, AttackKind::Cw],
        labels: Labels::True,
        fgsm: FgsmConfig { eps: 0.3 },
        bim: PgdConfig::bim(0.3, 0.01, 40),
        pgd: PgdConfig::bim(0.3, 0.01, 40),
        cw: CwConfig {
            binary_steps: 2,
            iters: 20,
            lr: 0.1,
            initial_const: 1.0,
            confidence: 0.0,
            optimizer: CwOptimizer::Adam,
            max_halving: 5,
            max_doubling: 5,
        },
        square: SquareConfig {
            eps: 0.3,
            iters: 1,
            p_init: 0.8,
            batch: 0,
            seed: 1,
        },
        transfer: TransferConfig {
            aux: 1,
            epochs: 1,
            attack: PgdConfig::bim(0.3, 0.01, 40),
            seed: 0,
        },
        cw_limit: Some(16),
        square_limit: None,
    };
    let result = experiment::run(
        &model,
        &mut oracle,
        images,
        labels,
        &[],
        &settings,
        &mut |_| {},
    )
    .expect("run");
    let before = oracle.queries();
    let grid = [0.0, 0.1, 0.3];
    let curves = experiment::eps_curve(
        &model,
        &mut oracle,
        images,
        labels,
        &settings,
        &result,
        &grid,
        &mut |_| {},
    )
    .expect("sweep");
    let names: Vec<&str> = curves.iter().map(|c| c.attack.as_str()).collect();
    assert_eq!(names, ["fgsm", "bim", "cw_projected"]);
    // Every adversarial image of the sweep is classified through the oracle once.
    assert_eq!(oracle.queries() - before, 2 * (32 + 32 + 16));
    let outcome = |name: &str| {
        result
            .outcomes
            .iter()
            .find(|o| o.name == name)
            .expect("outcome")
    };
    for c in &curves {
        assert_eq!(c.eps, grid);
        assert_eq!(
            c.accuracy[0],
            outcome(&c.attack).clean_accuracy,
            "{}",
            c.attack
        );
        // At the experiment's own budget the sweep repeats the experiment exactly.
        assert_eq!(c.accuracy[2], outcome(&c.attack).accuracy, "{}", c.attack);
        assert!(c.accuracy[2] <= c.accuracy[1] && c.accuracy[1] <= c.accuracy[0]);
    }
    assert_eq!(curves[2].images, 16);
    for bad in [&[][..], &[-0.1][..], &[1.5][..], &[f32::NAN][..]] {
        assert!(experiment::check_grid(bad).is_err(), "{bad:?}");
    }
    let err = experiment::eps_curve(
        &model,
        &mut oracle,
        images,
        labels,
        &settings,
        &result,
        &[0.1, 2.0],
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(err, experiment::ExperimentError::Config(_)),
        "{err}"
    );
    drop(data);
}

#[test]
fn adversarial_training_resists_pgd_where_plain_training_does_not() {
    let data = subset::load(Dataset::Mnist).expect("embedded subset");
    let config = TrainConfig {
        arch: Architecture::Mnist,
        epochs: 4,
        batch_size: 64,
        lr: 1e-3,
        optimizer: OptimizerKind::Adam,
        momentum: 0.0,
        clip_norm: Some(1.0),
        fraction: 1.0,
        seed: 3,
    };
    let eps = 0.1;
    let adv = AdversarialConfig {
        eps,
        steps: 5,
        step: 0.05,
        warmup: 2,
        seed: 1,
    };
    let net = Architecture::Mnist.network();
    let hook = madry_hook(&net, &data.train.labels, &adv);
    let robust = train_with(&data.train, &config, Some(&hook), |_, _, _| {})
        .expect("adversarial training")
        .model;
    let plain = train(&data.train, &config, |_, _, _| {})
        .expect("training")
        .model;
    let test = data.test.truncated(200);
    let images = to_images(&test).expect("images");
    let attack = PgdConfig {
        eps,
        step: 0.01,
        iters: 20,
        random_start: true,
        restarts: 1,
        seed: 9,
    };
    let robust_acc = |m: &Model| {
        let x = pgd(
            &mut PlainOracle::new(m.clone()),
            &images,
            &test.labels,
            &attack,
        )
        .expect("pgd");
        accuracy(m, &x, &test.labels)
    };
    let r_clean = accuracy(&robust, &images, &test.labels);
    let (r_pgd, p_pgd) = (robust_acc(&robust), robust_acc(&plain));
    assert!(
        r_clean > 0.6,
        "adversarially trained clean accuracy {r_clean}"
    );
    // The stated margin: PGD at eps 0.1 leaves at least 0.2 more accuracy on the
    // adversarially trained network than on the plainly trained one.
    assert!(r_pgd >= p_pgd + 0.2, "robust {r_pgd}, plain {p_pgd}");
    // The ReLU twin: the same layers with ReLU for every square, trained the same way
    // from the same initial weights; measured with its own gradients.
    let twin_net = relu_twin(Architecture::Mnist);
    assert_eq!(twin_net.param_count(), net.param_count());
    assert!(!twin_net.specs().contains(&LayerSpec::Square));
    let twin_hook = madry_hook(&twin_net, &data.train.labels, &adv);
    let twin = train_network(
        &data.train,
        &config,
        &twin_net,
        Some(&twin_hook),
        |_, _, _| {},
    )
    .expect("twin training");
    let fg = FgsmConfig { eps };
    let bim = PgdConfig::bim(eps, 0.01, 20);
    let relu = Weighted {
        network: twin_net.clone(),
        params: twin.model,
    };
    let r = robustness(relu, &images, &test.labels, &fg, &bim, &attack).expect("twin");
    assert_eq!(r.images, 200);
    assert!(
        r.clean > 0.6 && r.pgd <= r.clean && r.bim <= r.clean,
        "{r:?}"
    );
    let s = robustness(robust.clone(), &images, &test.labels, &fg, &bim, &attack).expect("square");
    // The same PGD, seed and images as above: the same figure.
    assert_eq!((s.clean, s.pgd), (r_clean, r_pgd));
    for bad in [
        AdversarialConfig { eps: 0.0, ..adv },
        AdversarialConfig { steps: 0, ..adv },
        AdversarialConfig { step: 1.5, ..adv },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
    let wide = Network::new(
        Shape { c: 1, h: 28, w: 28 },
        &[
            LayerSpec::Flatten,
            LayerSpec::Dense(Dense {
                inputs: IMAGE_PIXELS,
                outputs: 3,
                bias: true,
            }),
        ],
    )
    .expect("network");
    assert!(matches!(
        AdversarialConfig::check_network(&wide),
        Err(TrainError::Config(_))
    ));
}

/// A CKKS compute server and trusted party on loopback, serving `model`.
fn tcp_service(
    model: &Model,
    train_set: &heist::data::Images,
    auth: Option<heist::service::auth::LinkKey>,
) -> (heist::service::ComputeServer, heist::service::TrustedServer) {
    use heist::service::{
        BatchConfig, CkksCodec, CkksEvaluator, ClientConfig, ComputeServer, ServerConfig,
        TrustedServer,
    };
    let plan = heist::inference::calibrated_ckks_plan(model, train_set).expect("plan");
    let listener = || std::net::TcpListener::bind("127.0.0.1:0").expect("loopback port");
    let compute = ComputeServer::start(
        listener(),
        CkksEvaluator::new(plan.clone()).expect("evaluator"),
        ServerConfig::compute(),
    )
    .expect("compute server");
    let trusted = TrustedServer::start_with(
        listener(),
        CkksCodec::new(plan, &mut rand_core::OsRng).expect("codec"),
        &compute.local_addr().to_string(),
        heist::service::PeerConfig {
            max_payload: ServerConfig::compute().max_payload,
            ..ClientConfig::default().peer
        },
        &BatchConfig::default(),
        ServerConfig::trusted(),
        auth,
    )
    .expect("trusted party");
    (compute, trusted)
}

/// A relay on loopback to `upstream` through `hook`, with the trusted party's limits.
fn relay(
    upstream: String,
    hook: impl heist::service::relay::FrameHook,
) -> heist::service::relay::Relay {
    heist::service::relay::Relay::start(
        std::net::TcpListener::bind("127.0.0.1:0").expect("loopback port"),
        upstream,
        heist::service::ServerConfig::trusted(),
        heist::service::ClientConfig::default().peer,
        hook,
    )
    .expect("relay")
}

#[test]
fn a_relay_on_the_client_link_makes_the_encrypted_service_misclassify() {
    use heist::attack::adversarial::mitm::{ManInTheMiddle, Rewrite};
    use heist::service::relay::Transparent;
    use heist::service::{ClientConfig, TcpClient};
    use std::sync::atomic::Ordering;

    let (model, images, labels, data) = setup();
    let (images, labels) = (&images[..24], &labels[..24]);
    let (_compute, trusted) = tcp_service(&model, &data.train, None);
    let upstream = trusted.local_addr().to_string();
    let classes = |addr: &str| -> Vec<usize> {
        let mut client = TcpClient::connect(addr, ClientConfig::default()).expect("connects");
        let scores = client.query(images).expect("answered");
        assert_eq!(client.queries(), images.len() as u64);
        scores.iter().map(predicted_class).collect()
    };
    let direct = classes(&upstream);
    // A transparent relay changes nothing.
    let proxy = relay(upstream.clone(), Transparent);
    assert_eq!(classes(&proxy.local_addr().to_string()), direct);
    // The man in the middle rewrites every image with BIM on the twin.
    let hook = ManInTheMiddle::new(
        Rewrite::Pgd(model.clone(), PgdConfig::bim(0.3, 0.01, 40)),
        1024,
    );
    let rewritten = hook.rewritten();
    let mitm = relay(upstream, hook);
    let attacked = classes(&mitm.local_addr().to_string());
    assert_eq!(rewritten.load(Ordering::Relaxed), images.len() as u64);
    let right_without: Vec<usize> = (0..images.len())
        .filter(|&i| direct[i] == usize::from(labels[i]))
        .collect();
    assert!(right_without.len() >= 16, "{} right", right_without.len());
    let still_right = right_without
        .iter()
        .filter(|&&i| attacked[i] == usize::from(labels[i]))
        .count();
    // Of the images the service classifies correctly without the relay, at most one in
    // eight survives it.
    assert!(
        still_right * 8 <= right_without.len(),
        "{still_right} of {} still right",
        right_without.len()
    );
}

#[test]
fn an_authenticated_client_link_turns_tampering_into_errors() {
    use heist::attack::adversarial::mitm::{ManInTheMiddle, Rewrite};
    use heist::service::auth::{open_query, open_scores, seal_query, seal_scores, AuthError};
    use heist::service::auth::{LinkKey, ReplayGuard};
    use heist::service::message::ErrorCode;
    use heist::service::relay::Transparent;
    use heist::service::{ClientConfig, NetError, TcpClient};

    let (model, images, _, data) = setup();
    let images = &images[..8];
    let key = LinkKey::new(&[7u8; 32]).expect("32 bytes");
    let (_compute, trusted) = tcp_service(&model, &data.train, Some(key.clone()));
    let upstream = trusted.local_addr().to_string();
    let client = |addr: &str, key: Option<&LinkKey>| {
        let c = TcpClient::new(addr, ClientConfig::default());
        match key {
            Some(k) => c.with_key(k.clone()),
            None => c,
        }
    };
    let refused = |result: Result<Vec<heist::oracle::Scores>, NetError>| matches!(result, Err(NetError::Remote(ref e)) if e.code == ErrorCode::Unauthenticated);
    let direct = client(&upstream, Some(&key))
        .query(images)
        .expect("authenticated");
    assert!(refused(client(&upstream, None).query(images)), "no key");
    let wrong = LinkKey::new(&[8u8; 32]).expect("32 bytes");
    assert!(
        refused(client(&upstream, Some(&wrong)).query(images)),
        "wrong key"
    );
    let proxy = relay(upstream.clone(), Transparent);
    let through = client(&proxy.local_addr().to_string(), Some(&key))
        .query(images)
        .expect("a relay that changes nothing passes");
    let classes = |s: &[heist::oracle::Scores]| s.iter().map(predicted_class).collect::<Vec<_>>();
    assert_eq!(classes(&through), classes(&direct));
    let hook = ManInTheMiddle::new(Rewrite::Fgsm(model, FgsmConfig { eps: 0.3 }), 1024);
    let rewritten = hook.rewritten();
    let mitm = relay(upstream, hook);
    let mut victim = client(&mitm.local_addr().to_string(), Some(&key));
    for image in images {
        // Every tampered request is refused: an error, never a class.
        assert!(refused(victim.query(std::slice::from_ref(image))));
    }
    // The relay did rewrite every image (keeping nonce and tag): the tag check refused them.
    assert_eq!(
        rewritten.load(std::sync::atomic::Ordering::Relaxed),
        images.len() as u64
    );
    // A replayed request and a rewritten reply are caught too.
    let guard = ReplayGuard::default();
    let sealed = seal_query(&key, &[1; 16], b"images");
    assert_eq!(
        open_query(&key, &sealed, &guard),
        Ok(([1; 16], &b"images"[..]))
    );
    assert_eq!(open_query(&key, &sealed, &guard), Err(AuthError::Replay));
    let mut reply = seal_scores(&key, &[1; 16], b"scores");
    assert_eq!(open_scores(&key, &[1; 16], &reply), Ok(&b"scores"[..]));
    assert_eq!(open_scores(&key, &[2; 16], &reply), Err(AuthError::BadTag));
    let last = reply.len() - 1;
    reply[last] ^= 1;
    assert_eq!(open_scores(&key, &[1; 16], &reply), Err(AuthError::BadTag));
    assert!(matches!(
        LinkKey::new(&[0; 16]),
        Err(AuthError::KeyLength(16))
    ));
}
