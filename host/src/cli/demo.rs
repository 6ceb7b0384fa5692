//! `heist demo` and `heist eval --encrypted`: plaintext and encrypted accuracy side by side.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::exit::{write_json, CliError, CliResult};
use super::options::{DataOptions, ModelOptions, ResolvedModel};
use crate::data::Images;
use crate::inference::{compare, Comparison};
use crate::model::Model;
use crate::service::Scheme;

/// Train the paper's network (or reuse a cached one) and classify encrypted test images.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    heist demo\n  \
    heist demo --dataset fashion --limit 200 --json demo.json")]
pub struct DemoArgs {
    #[command(flatten)]
    data: DataOptions,
    /// Scheme between trusted party and compute server.
    #[arg(long, value_enum, default_value = "ckks")]
    scheme: Scheme,
    /// Classify only the first K images of the split.
    #[arg(long, value_name = "K", default_value_t = 1000)]
    limit: usize,
    /// Which images to classify: the test set, or the training set the model learnt
    /// (the paper's Table 3 reports both).
    #[arg(long, value_enum, default_value = "test")]
    split: Split,
    #[command(flatten)]
    model: ModelOptions,
    /// Seed of the training run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write the results as JSON to this file (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

/// `--split`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Split {
    /// The test images.
    Test,
    /// The training images.
    Train,
}

impl Split {
    fn name(self) -> &'static str {
        match self {
            Split::Test => "test",
            Split::Train => "train",
        }
    }
}

/// Runs `heist demo`.
///
/// # Errors
/// Bad input (exit 2) for unusable data or arguments, failure (exit 1) otherwise.
pub fn demo(args: DemoArgs) -> CliResult {
    let start = Instant::now();
    let data = args.data.load().map_err(CliError::bad_input)?;
    let ResolvedModel {
        model,
        path,
        origin,
    } = args.model.resolve(&data, args.seed)?;
    let images = match args.split {
        Split::Test => &data.test,
        Split::Train => &data.train,
    }
    .truncated(args.limit);
    let c = compare(&model, &data.train, &images, args.scheme)?;
    let seconds = start.elapsed().as_secs_f64();
    if let Some(n) = data.source.notice() {
        println!("{n}");
    }
    println!(
        "{} ({}): {} model {} ({}), {} {} images",
        data.dataset,
        data.source.label(),
        model.architecture(),
        path.display(),
        origin,
        c.images,
        args.split.name()
    );
    print_comparison(&c);
    println!("total wall time     {seconds:.1} s");
    if let Some(json) = &args.json {
        let mut out = comparison_json(&c, data.dataset, data.source.label())?;
        if let Some(obj) = out.as_object_mut() {
            obj.insert("model".to_owned(), path.display().to_string().into());
            obj.insert("cached_model".to_owned(), (origin == "cached").into());
            obj.insert("split".to_owned(), args.split.name().into());
            obj.insert("seed".to_owned(), args.seed.into());
            obj.insert("seconds".to_owned(), seconds.into());
        }
        write_json(json, &out)?;
    }
    Ok(())
}

/// Prints a comparison, one line per figure.
fn print_comparison(c: &Comparison) {
    println!(
        "plaintext accuracy  {:.4}  ({} images, {:.2} s)",
        c.plain_accuracy, c.images, c.plain_seconds
    );
    println!(
        "encrypted accuracy  {:.4}  ({}, ring degree {}, {} slots; setup {:.1} s, inference {:.1} s)",
        c.encrypted_accuracy, c.scheme, c.ring_degree, c.slots, c.setup_seconds, c.encrypted_seconds
    );
    println!("agreement           {:.4}", c.agreement);
    if let Some(i) = &c.integer {
        println!(
            "integer model       accuracy {:.4}, agreement {:.4}, identical scores {:.4} ({:.2} s)",
            i.integer_accuracy, i.integer_agreement, i.integer_scores_identical, i.integer_seconds
        );
    }
}

/// The comparison as JSON, with the data set and its source.
fn comparison_json(
    c: &Comparison,
    dataset: impl serde::Serialize,
    source: &str,
) -> anyhow::Result<serde_json::Value> {
    let mut out = serde_json::to_value(c)?;
    if let Some(obj) = out.as_object_mut() {
        obj.insert("dataset".to_owned(), serde_json::to_value(dataset)?);
        obj.insert("data_source".to_owned(), source.into());
    }
    Ok(out)
}

/// `heist eval --encrypted`: the comparison for a loaded model and data set.
///
/// # Errors
/// As [`compare`]; JSON output failures.
pub fn eval_encrypted(
    model: &Model,
    data: &crate::data::Data,
    test: &Images,
    scheme: Scheme,
    json: Option<&Path>,
) -> CliResult {
    let c = compare(model, &data.train, test, scheme)?;
    if let Some(n) = data.source.notice() {
        println!("{n}");
    }
    println!(
        "{} ({}), model {}: {} test images",
        data.dataset,
        data.source.label(),
        model.architecture(),
        c.images
    );
    print_comparison(&c);
    if let Some(path) = json {
        write_json(
            path,
            &comparison_json(&c, data.dataset, data.source.label())?,
        )?;
    }
    Ok(())
}
