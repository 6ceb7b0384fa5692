//! `heist train`: train one of the paper's networks and write the model and member files.

use std::path::PathBuf;

use super::exit::{CliError, CliResult};
use super::options::DataOptions;
use super::progress::Progress;
use crate::attack::adversarial::fgsm::FgsmConfig;
use crate::attack::adversarial::pgd::PgdConfig;
use crate::attack::adversarial::training::{madry_hook, relu_twin, robustness, AdversarialConfig};
use crate::inference::to_images;
use crate::model::Architecture;
use crate::oracle::Weighted;
use crate::train::optim::OptimizerKind;
use crate::train::{members_path, train_network, train_with, Members, Perturb, TrainConfig};

/// Train one of the paper's networks.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    heist train --dataset mnist --out mnist.safetensors --json mnist.json\n  \
    heist train --dataset fashion --fraction 0.5 --seed 7 --out fashion-half.safetensors\n  \
    heist train --dataset mnist --adversarial pgd --adv-eps 0.3 --adv-steps 7 --clip-norm 1 --out mnist-pgd.safetensors")]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataOptions,
    /// Architecture (default: the paper's network for the data set).
    #[arg(long, value_enum)]
    arch: Option<Architecture>,
    /// Fraction of the training set to train on, in (0, 1]; the member indices are saved
    /// to `<out>.members.json`.
    #[arg(long, default_value_t = 1.0)]
    fraction: f64,
    /// Passes over the training data.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Examples per mini-batch.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Optimiser.
    #[arg(long, value_enum, default_value = "adam")]
    optimizer: OptimizerKind,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.0)]
    momentum: f32,
    /// Rescale any mini-batch gradient whose L2 norm exceeds this.
    #[arg(long)]
    clip_norm: Option<f32>,
    /// Seed of initialisation, member draw and shuffles.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to write the model (safetensors).
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
    /// Also write the results as JSON to this file (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Adversarial training: replace every mini-batch by its attack under the current
    /// weights (Madry et al.'s PGD).
    #[arg(long, value_enum)]
    adversarial: Option<AdversarialKind>,
    /// Adversarial training: the L∞ budget.
    #[arg(long, default_value_t = 0.3, requires = "adversarial")]
    adv_eps: f32,
    /// Adversarial training: PGD steps per mini-batch.
    #[arg(long, default_value_t = 7, requires = "adversarial")]
    adv_steps: usize,
    /// Adversarial training: PGD step size (default: 2.5 · ε / steps).
    #[arg(long, requires = "adversarial")]
    adv_step: Option<f32>,
    /// Adversarial training: epochs over which the budget ramps up linearly to --adv-eps.
    #[arg(long, default_value_t = 0, requires = "adversarial")]
    adv_warmup: usize,
    /// Also train the twin of the network with ReLU in place of every square, the same way
    /// (plaintext only: the service cannot run it), and compare the two under FGSM, BIM
    /// and PGD with their own gradients.
    #[arg(long)]
    relu_twin: bool,
    /// The budget of that comparison.
    #[arg(long, default_value_t = 0.3, requires = "relu_twin")]
    twin_eps: f32,
    /// Compare on the first K test images.
    #[arg(long, value_name = "K", default_value_t = 1000, requires = "relu_twin")]
    twin_images: usize,
}

/// `--adversarial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AdversarialKind {
    /// PGD from a random start (Madry et al., ICLR 2018).
    Pgd,
}

impl TrainArgs {
    /// The inner attack of adversarial training, if asked for.
    fn adversarial(&self) -> Option<AdversarialConfig> {
        self.adversarial
            .map(|AdversarialKind::Pgd| AdversarialConfig {
                eps: self.adv_eps,
                steps: self.adv_steps,
                step: self
                    .adv_step
                    .unwrap_or(2.5 * self.adv_eps / self.adv_steps.max(1) as f32),
                warmup: self.adv_warmup,
                seed: self.seed,
            })
    }
}

/// Runs `heist train`.
///
/// # Errors
/// Bad input (exit 2) for bad hyper-parameters or data, failure (exit 1) otherwise.
pub fn run(args: TrainArgs) -> CliResult {
    let data = args.data.load().map_err(CliError::bad_input)?;
    let config = TrainConfig {
        arch: args.arch.unwrap_or(Architecture::for_dataset(data.dataset)),
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        optimizer: args.optimizer,
        momentum: args.momentum,
        clip_norm: args.clip_norm,
        fraction: args.fraction,
        seed: args.seed,
    };
    config.validate().map_err(CliError::bad_input)?;
    let adversarial = args.adversarial();
    if let Some(adv) = &adversarial {
        adv.validate().map_err(CliError::bad_input)?;
    }
    if args.relu_twin {
        FgsmConfig { eps: args.twin_eps }
            .validate()
            .map_err(CliError::bad_input)?;
        if args.twin_images == 0 {
            return Err(CliError::bad_input(anyhow::anyhow!(
                "--twin-images must be at least 1"
            )));
        }
    }
    let bar = if args.quiet {
        Progress::hidden()
    } else {
        Progress::bar("training", 0)
    };
    let epochs = config.epochs;
    let net = config.arch.network();
    let hook = adversarial
        .as_ref()
        .map(|adv| madry_hook(&net, &data.train.labels, adv));
    let mut report = |done: usize, total: usize, s: &crate::train::EpochStats| {
        if done == 1 {
            bar.restart(total as u64, format!("epoch {}/{epochs}", s.epoch));
        }
        bar.position(
            done as u64,
            format!("loss {:.4} acc {:.4}", s.loss, s.accuracy),
        );
        if done == total {
            bar.println(&format!(
                "epoch {}/{epochs}: loss {:.4}, accuracy {:.4}",
                s.epoch, s.loss, s.accuracy
            ));
        }
    };
    let trained = train_with(&data.train, &config, as_perturb(&hook), &mut report)
        .map_err(|e| CliError::Failure(e.into()))?;
    let twin = if args.relu_twin {
        let twin_net = relu_twin(config.arch);
        let twin_hook = adversarial
            .as_ref()
            .map(|adv| madry_hook(&twin_net, &data.train.labels, adv));
        bar.println("the ReLU twin:");
        let w = train_network(
            &data.train,
            &config,
            &twin_net,
            as_perturb(&twin_hook),
            &mut report,
        )
        .map_err(|e| CliError::Failure(e.into()))?;
        Some((
            Weighted {
                network: twin_net.clone(),
                params: w.model,
            },
            w.seconds,
        ))
    } else {
        None
    };
    bar.finish();
    let members_images = data.train.select(&trained.members);
    let train_accuracy = trained.model.accuracy(&members_images);
    let test_accuracy = trained.model.accuracy(&data.test);
    let members_file = members_path(&args.out);
    let mut model = trained.model;
    let info = &mut model.info;
    info.set("dataset", data.dataset);
    info.set("dataset_checksum", data.dataset.checksum());
    info.set("data_source", data.source.label());
    info.set("seed", config.seed);
    info.set("epochs", config.epochs);
    info.set(
        "train_config",
        serde_json::to_string(&config).map_err(anyhow::Error::from)?,
    );
    if let Some(adv) = &adversarial {
        info.set(
            "adversarial",
            serde_json::to_string(adv).map_err(anyhow::Error::from)?,
        );
    }
    info.set("train_accuracy", train_accuracy);
    info.set("test_accuracy", test_accuracy);
    info.set(
        "members_file",
        members_file
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
    );
    model
        .save(&args.out)
        .map_err(|e| CliError::Failure(e.into()))?;
    super::exit::write_json(
        &members_file,
        &Members {
            dataset: data.dataset,
            data_source: data.source.label().to_owned(),
            train_size: data.train.len(),
            fraction: config.fraction,
            seed: config.seed,
            members: trained.members.clone(),
        },
    )?;
    let summary = serde_json::json!({
        "dataset": data.dataset,
        "data_source": data.source.label(),
        "architecture": config.arch,
        "train_images": trained.members.len(),
        "test_images": data.test.len(),
        "train_accuracy": train_accuracy,
        "test_accuracy": test_accuracy,
        "seconds": trained.seconds,
        "seed": config.seed,
        "config": config,
        "adversarial": adversarial,
        "history": trained.history,
        "model": args.out,
        "members_file": members_file,
        "threads": rayon::current_num_threads(),
    });
    if let Some(n) = data.source.notice() {
        println!("{n}");
    }
    println!(
        "{} ({}): trained {} on {} images, {} epochs in {:.1} s; train accuracy {:.4}, test accuracy {:.4} ({} test images)",
        data.dataset,
        data.source.label(),
        config.arch,
        trained.members.len(),
        config.epochs,
        trained.seconds,
        train_accuracy,
        test_accuracy,
        data.test.len()
    );
    println!(
        "model: {}; members: {}",
        args.out.display(),
        members_file.display()
    );
    let mut summary = summary;
    if let Some((relu, seconds)) = twin {
        let test = data.test.truncated(args.twin_images);
        let images = to_images(&test).map_err(CliError::Failure)?;
        let eps = args.twin_eps;
        let fgsm = FgsmConfig { eps };
        let bim = PgdConfig::bim(eps, 0.01, 40);
        let pgd = PgdConfig {
            random_start: true,
            seed: args.seed,
            ..bim
        };
        let square = robustness(model.clone(), &images, &test.labels, &fgsm, &bim, &pgd)
            .map_err(|e| CliError::Failure(e.into()))?;
        let relu = robustness(relu, &images, &test.labels, &fgsm, &bim, &pgd)
            .map_err(|e| CliError::Failure(e.into()))?;
        println!(
            "plaintext accuracy on the first {} test images at ε = {eps} (BIM and PGD 40 × 0.01):",
            images.len()
        );
        println!(
            "{:<10} {:>7} {:>7} {:>7} {:>7} {:>7}",
            "network", "clean", "noise", "FGSM", "BIM", "PGD"
        );
        for (name, r) in [("square", &square), ("ReLU twin", &relu)] {
            println!(
                "{name:<10} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7.4}",
                r.clean, r.noise, r.fgsm, r.bim, r.pgd
            );
        }
        if let Some(obj) = summary.as_object_mut() {
            obj.insert(
                "relu_twin".into(),
                serde_json::json!({
                    "eps": eps,
                    "square": square,
                    "relu": relu,
                    "relu_seconds": seconds,
                }),
            );
        }
    }
    if let Some(path) = &args.json {
        super::exit::write_json(path, &summary)?;
    }
    Ok(())
}

/// The hook as [`train_with`] takes it.
fn as_perturb<F: Fn(usize, &[f32], &[usize], &mut [f32]) + Sync>(
    hook: &Option<F>,
) -> Option<Perturb<'_>> {
    hook.as_ref().map(|h| h as Perturb<'_>)
}
