//! Attack 2 (reconstruction): the metrics against scikit-image, the inverse generator
//! against the class-mean baseline on a small seeded problem, query counting through the
//! encrypted service, and the release adapter.

use std::path::PathBuf;

use heist::attack::metrics::{mse, psnr, ssim};
use heist::attack::reconstruction::generator::{
    GeneratorConfig, GeneratorKind, InputPrep, InverseGenerator,
};
use heist::attack::reconstruction::inversion::{invert, InversionConfig};
use heist::attack::reconstruction::{query, run, to_images, ReconstructionError, Settings};
use heist::cli::attack::reconstruction::{run_reconstruction, ReconstructionArgs};
use heist::data::{load, Dataset};
use heist::model::{Architecture, Model};
use heist::oracle::{
    predicted_class, Classifier, Oracle, PlainOracle, Release, ReleaseError, Released, CLASSES,
};
use heist::service::{BatchConfig, CkksCodec, CkksEvaluator, InProcessService};
use heist::train::{self, TrainConfig};
use heist_he::nn::{CkksPlan, PlanConfig};
use heist_tests::{mnist_test_images, seeded_rng};
use serde_json::Value;

fn fixtures() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/ssim.json");
    let text = std::fs::read_to_string(&path).expect("fixture file");
    serde_json::from_str(&text).expect("fixture JSON")
}

fn number(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number"))
}

#[test]
fn ssim_psnr_and_mse_match_scikit_image() {
    let all = fixtures();
    let cases = all["cases"].as_array().expect("cases");
    assert!(cases.len() >= 5, "fixture cases");
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let (h, w) = (
            number(case, "height") as usize,
            number(case, "width") as usize,
        );
        let pixels = |key: &str| -> Vec<f64> {
            case[key]
                .as_array()
                .expect("pixels")
                .iter()
                .map(|p| p.as_f64().expect("pixel") / 255.0)
                .collect()
        };
        let (a, b) = (pixels("a"), pixels("b"));
        for (range, key) in [(1.0, "ssim_data_range_1"), (255.0, "ssim_data_range_255")] {
            let got = ssim(&a, &b, h, w, range).expect("ssim");
            let want = number(case, key);
            assert!(
                (got - want).abs() < 1e-10,
                "{name}: SSIM at range {range}: {got} vs scikit-image {want}"
            );
        }
        let (got, want) = (mse(&a, &b).expect("mse"), number(case, "mse"));
        assert!(
            (got - want).abs() <= 1e-12 * want.max(1.0),
            "{name}: MSE {got} vs {want}"
        );
        if case.get("psnr_data_range_1").is_some() {
            let (got, want) = (
                psnr(&a, &b, 1.0).expect("psnr"),
                number(case, "psnr_data_range_1"),
            );
            assert!((got - want).abs() < 1e-9, "{name}: PSNR {got} vs {want}");
        }
    }
}

/// The paper's MNIST network with Glorot-initialised weights.
fn random_model(rng: &mut impl rand_core::RngCore) -> Model {
    let arch = Architecture::Mnist;
    Model::new(arch, train::init_params(arch, rng)).expect("model")
}

/// The paper's MNIST network trained briefly on the embedded subset.
fn small_target() -> (heist::data::Data, Model) {
    let data = load(Dataset::Mnist, None, true).expect("embedded data");
    let config = TrainConfig::adam(Architecture::Mnist, 2, 5);
    let trained = train::train(&data.train, &config, |_, _, _| {}).expect("trains");
    (data, trained.model)
}

/// On the embedded subset (1,000 auxiliary test images, 150 private training images), the
/// MLP generator trained for 20 epochs must beat the class-mean image of the predicted label
/// by at least 0.03 in mean SSIM and 0.3 dB in mean PSNR, with disjoint 95 % intervals.
#[test]
fn the_generator_beats_the_class_mean_on_a_small_seeded_problem() {
    let (data, model) = small_target();
    let mut generator = GeneratorConfig::new(GeneratorKind::Mlp, InputPrep::Raw, 3);
    generator.fit.epochs = 20;
    let settings = Settings {
        aux: data.test.len(),
        targets: 150,
        generator,
        seed: 3,
        curves: false,
        inversion: None,
    };
    let mut oracle = PlainOracle::new(model.clone());
    let outcome = run(&mut oracle, &model, &data.train, &data.test, &settings).expect("runs");
    assert_eq!(outcome.queries, (data.test.len() + 150) as u64);
    assert_eq!(oracle.queries(), outcome.queries);
    let g = outcome.method("generator").expect("generator row");
    let class_mean = outcome.method("class_mean").expect("class-mean row");
    eprintln!(
        "generator SSIM {:?} PSNR {:?}; class mean SSIM {:?} PSNR {:?}",
        g.ssim, g.psnr, class_mean.ssim, class_mean.psnr
    );
    assert!(g.ssim.mean >= class_mean.ssim.mean + 0.03, "SSIM margin");
    assert!(g.psnr.mean >= class_mean.psnr.mean + 0.3, "PSNR margin");
    assert!(g.beats(class_mean), "disjoint intervals");
    // The reconstructions are images of the originals' classes, not noise.
    assert!(g.reclassification_accuracy.mean > 0.5);
    // Same seed, same generator: retrain on a slice and compare bit for bit.
    let aux = to_images(&data.test, &(0..64).collect::<Vec<_>>()).expect("images");
    let scores = model.scores_batch(&aux);
    let mut small = generator;
    small.fit.epochs = 2;
    let first = InverseGenerator::train(&aux, &scores, &small)
        .expect("trains")
        .0;
    let second = InverseGenerator::train(&aux, &scores, &small)
        .expect("trains")
        .0;
    assert_eq!(
        first.reconstruct(&scores).expect("reconstructs"),
        second.reconstruct(&scores).expect("reconstructs")
    );
}

#[test]
fn queries_through_the_encrypted_service_are_counted() {
    let mut rng = seeded_rng("reconstruction-ckks", 1);
    let model = random_model(&mut rng);
    let core = model.to_core().expect("core model");
    // An insecure small ring keeps the suite fast; the code path is the secure one's.
    let plan = CkksPlan::new_insecure_for_tests(core.network(), &PlanConfig::default(), 1024)
        .expect("plan");
    let codec = CkksCodec::new(plan.clone(), &mut rng).expect("codec");
    let evaluator = CkksEvaluator::new(plan).expect("evaluator");
    let service =
        InProcessService::start(codec, evaluator, &BatchConfig::default()).expect("service");
    let mut client = service.client();
    let images = mnist_test_images(40);
    let (aux, targets) = images.split_at(33);
    let queried = query(&mut client, aux.to_vec(), targets).expect("queries");
    assert_eq!(queried.queries, 40);
    assert_eq!(client.queries(), 40);
    assert_eq!(queried.aux_scores.len(), 33);
    assert_eq!(queried.target_scores.len(), 7);
    // The answers come from the encrypted model: the plaintext model's classes.
    let plain = model.scores_batch(&images);
    let answered = queried.aux_scores.iter().chain(&queried.target_scores);
    for (got, want) in answered.zip(&plain) {
        assert_eq!(predicted_class(got), predicted_class(want));
    }
    // A wrapped oracle counts the same queries.
    let mut released = Released::new(client, Release::Decimals(2)).expect("release");
    let again = query(&mut released, aux[..5].to_vec(), &targets[..2]).expect("queries");
    assert_eq!(again.queries, 7);
    assert_eq!(released.queries(), 47);
}

#[test]
fn the_release_adapter_releases_exactly_what_it_claims() {
    let mut rng = seeded_rng("reconstruction-release", 2);
    let model = random_model(&mut rng);
    let images = mnist_test_images(20);
    let full = model.scores_batch(&images);
    for release in [
        Release::Full,
        Release::Decimals(0),
        Release::Decimals(1),
        Release::Decimals(2),
        Release::Decimals(4),
        Release::TopOne,
    ] {
        let mut oracle =
            Released::new(PlainOracle::new(model.clone()), release).expect("valid release");
        let got = oracle.query(&images).expect("answers");
        assert_eq!(oracle.queries(), 20, "{release}");
        for (g, f) in got.iter().zip(&full) {
            match release {
                Release::Full => assert_eq!(g, f),
                Release::Decimals(d) => {
                    let unit = 10f64.powi(i32::from(d));
                    for (&gv, &fv) in g.iter().zip(f) {
                        let scaled = f64::from(gv) * unit;
                        // A multiple of 10^-d (up to the f32 it is stored in) ...
                        assert!(
                            (scaled - scaled.round()).abs() <= scaled.abs() * 1e-6 + 1e-6,
                            "{release}: {gv} has more than {d} decimals"
                        );
                        // ... and the nearest one to the full score.
                        assert!(
                            (f64::from(gv) - f64::from(fv)).abs()
                                <= 0.5 / unit + f64::from(fv).abs() * 1e-6,
                            "{release}: {gv} is not {fv} rounded"
                        );
                    }
                    assert_eq!(predicted_class(g), predicted_class(&release.apply(f)));
                }
                Release::TopOne => {
                    let mut one_hot = [0.0; CLASSES];
                    one_hot[predicted_class(f)] = 1.0;
                    assert_eq!(*g, one_hot);
                }
            }
        }
    }
    // Rounding is visible: two decimals change some of these scores.
    let two = Release::Decimals(2);
    assert!(full.iter().any(|f| two.apply(f) != *f));
    assert!(matches!(
        Released::new(PlainOracle::new(model), Release::Decimals(7)),
        Err(ReleaseError::TooManyDecimals(7))
    ));
    assert_eq!("top1".parse::<Release>(), Ok(Release::TopOne));
    assert_eq!("3".parse::<Release>(), Ok(Release::Decimals(3)));
    assert!(matches!(
        "two".parse::<Release>(),
        Err(ReleaseError::Unknown(_))
    ));
}

#[test]
fn bad_settings_are_typed_errors() {
    let data = load(Dataset::Mnist, None, true).expect("embedded data");
    let model = random_model(&mut seeded_rng("reconstruction-bad", 3));
    let generator = GeneratorConfig::new(GeneratorKind::Mlp, InputPrep::LogSoftmax, 0);
    for (aux, targets) in [
        (0, 5),
        (data.test.len() + 1, 5),
        (10, 0),
        (10, data.train.len() + 1),
    ] {
        let settings = Settings {
            aux,
            targets,
            generator,
            seed: 0,
            curves: false,
            inversion: None,
        };
        let result = run(
            &mut PlainOracle::new(model.clone()),
            &model,
            &data.train,
            &data.test,
            &settings,
        );
        assert!(
            matches!(result, Err(ReconstructionError::Config(_))),
            "aux {aux}, targets {targets}"
        );
    }
    let images = to_images(&data.test, &[0, 1]).expect("images");
    let scores = model.scores_batch(&images);
    assert!(matches!(
        InverseGenerator::train(&images, &scores[..1], &generator),
        Err(ReconstructionError::Config(_))
    ));
}

#[test]
fn model_inversion_drives_every_class_to_high_confidence_through_queries() {
    let (data, model) = small_target();
    let aux = to_images(&data.test, &(0..200).collect::<Vec<_>>()).expect("images");
    let mut mean = vec![0.0f32; heist::oracle::IMAGE_PIXELS];
    for image in &aux {
        for (m, p) in mean.iter_mut().zip(image.pixels()) {
            *m += p / aux.len() as f32;
        }
    }
    let prior = heist::oracle::Image::new(&mean).expect("mean image");
    let mut oracle = PlainOracle::new(model.clone());
    let config = InversionConfig::new(4);
    let result = invert(&mut oracle, &prior, &config).expect("inverts");
    assert_eq!(result.queries, oracle.queries());
    // At most (2q + 1) queries per class and iteration, plus the final check.
    let bound = (CLASSES * config.iterations * (2 * config.directions + 1) + CLASSES) as u64;
    assert!(result.queries <= bound && result.queries > CLASSES as u64);
    let predicted = model.scores_batch(&result.images);
    let hits = (0..CLASSES)
        .filter(|&c| predicted_class(&predicted[c]) == c)
        .count();
    assert!(hits >= 9, "{hits} of 10 classes inverted");
    let confident = result
        .confidence
        .iter()
        .filter(|&&p| p >= config.threshold)
        .count();
    assert!(confident >= 9, "confidences {:?}", result.confidence);
    // The images moved away from the prior.
    assert!(result.images.iter().all(|image| image != &prior));
}

#[derive(clap::Parser)]
struct Command {
    #[command(flatten)]
    args: ReconstructionArgs,
}

fn command(argv: &[&str]) -> Result<(), heist::cli::exit::CliError> {
    let parsed = <Command as clap::Parser>::try_parse_from(
        std::iter::once("reconstruction").chain(argv.iter().copied()),
    )
    .expect("parses");
    run_reconstruction(parsed.args)
}

#[test]
fn the_command_writes_the_json_keys_the_tensors_and_the_figure() {
    let dir = std::env::temp_dir().join(format!("heist-recon-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch");
    let model_path = dir.join("model.safetensors");
    random_model(&mut seeded_rng("reconstruction-cli", 6))
        .save(&model_path)
        .expect("saves");
    let (json, out) = (dir.join("report.json"), dir.join("out"));
    let model_arg = model_path.to_str().expect("utf-8 path");
    let common = [
        "--embedded",
        "--oracle",
        "plain",
        "--model",
        model_arg,
        "--aux",
        "200",
        "--generator-epochs",
        "1",
    ];
    let mut argv = common.to_vec();
    argv.extend([
        "--targets",
        "30",
        "--json",
        json.to_str().expect("utf-8 path"),
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    command(&argv).expect("runs");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("JSON");
    for key in [
        "dataset",
        "oracle",
        "encrypted",
        "queries",
        "targets",
        "baseline_accuracy",
        "reclassification_accuracy",
        "evaluator_reclassification_accuracy",
        "ssim",
        "ssim_ci",
        "ssim_data_range_255",
        "psnr",
        "class_mean_ssim",
        "class_mean_psnr",
        "class_mean_reclassification_accuracy",
        "nearest_aux_ssim",
        "nearest_aux_psnr",
        "generator",
        "seconds",
    ] {
        assert!(report.get(key).is_some(), "JSON key {key}");
    }
    assert_eq!(report["queries"], 230);
    assert_eq!(report["oracle"], "plain");
    assert_eq!(report["encrypted"], false);
    let bytes = std::fs::read(out.join("reconstructions.safetensors")).expect("tensors");
    let tensors = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    for name in ["original", "reconstruction"] {
        let t = tensors.tensor(name).expect(name);
        assert_eq!(t.shape(), &[30, 28, 28]);
        assert_eq!(t.dtype(), safetensors::Dtype::F32);
        assert!(t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .all(|v| (0.0..=1.0).contains(&v)));
    }
    assert!(out.join("figure4.png").is_file());
    // Bad settings are bad input (exit code 2).
    let mut bad = common.to_vec();
    bad.extend(["--targets", "0"]);
    let err = command(&bad).expect_err("no targets");
    assert_eq!(err.exit_code(), 2, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
