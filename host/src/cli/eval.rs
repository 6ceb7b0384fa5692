//! `heist eval`: accuracy of a model file on a data set's test images, in plaintext or
//! through the in-process encrypted service.

use std::path::PathBuf;

use super::exit::{CliError, CliResult};
use super::options::DataOptions;
use crate::model::eval::{evaluate, Plain};
use crate::model::{Architecture, Model};

/// Evaluate a model file on a data set's test images.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    heist eval --model mnist.safetensors --dataset mnist\n  \
    heist eval --model fashion.safetensors --dataset fashion --limit 1000 --json eval.json")]
pub struct EvalArgs {
    /// The model file (safetensors).
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// Architecture, when the file's metadata does not say and its shapes should not decide.
    #[arg(long, value_enum)]
    arch: Option<Architecture>,
    #[command(flatten)]
    data: DataOptions,
    /// Evaluate only the first K test images.
    #[arg(long, value_name = "K")]
    limit: Option<usize>,
    /// Also write the results as JSON to this file (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Also classify the images through the in-process three-party service with real
    /// encryption, and report both accuracies and their agreement.
    #[arg(long)]
    encrypted: bool,
    /// The scheme of `--encrypted`.
    #[arg(long, value_enum, default_value = "ckks", requires = "encrypted")]
    scheme: crate::service::Scheme,
}

/// Runs `heist eval`.
///
/// # Errors
/// Bad input (exit 2) for an invalid model or data, failure (exit 1) otherwise.
pub fn run(args: EvalArgs) -> CliResult {
    let model = Model::load(&args.model, args.arch).map_err(CliError::bad_input)?;
    let data = args.data.load().map_err(CliError::bad_input)?;
    let images = match args.limit {
        Some(k) => data.test.truncated(k),
        None => data.test.clone(),
    };
    if args.encrypted {
        return super::demo::eval_encrypted(
            &model,
            &data,
            &images,
            args.scheme,
            args.json.as_deref(),
        );
    }
    let plain = evaluate(&mut Plain(&model), &images)?;
    if let Some(n) = data.source.notice() {
        println!("{n}");
    }
    println!(
        "{} ({}): model {} ({}), {} test images: {} accuracy {:.4} ({}/{}) in {:.2} s",
        data.dataset,
        data.source.label(),
        args.model.display(),
        model.architecture(),
        images.len(),
        plain.label,
        plain.accuracy,
        plain.correct,
        images.len(),
        plain.seconds
    );
    if let Some(path) = &args.json {
        let mut out = serde_json::json!({
            "dataset": data.dataset,
            "data_source": data.source.label(),
            "model": args.model,
            "architecture": model.architecture(),
            "images": images.len(),
        });
        if let Some(obj) = out.as_object_mut() {
            obj.insert(format!("{}_accuracy", plain.label), plain.accuracy.into());
            obj.insert(format!("{}_seconds", plain.label), plain.seconds.into());
        }
        super::exit::write_json(path, &out)?;
    }
    Ok(())
}
