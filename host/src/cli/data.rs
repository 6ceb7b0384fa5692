//! `heist data`: fetch, inspect and verify the data sets, and regenerate the embedded subset.

use std::path::{Path, PathBuf};

use crate::cli::exit::{CliError, CliResult};

use crate::data::{
    candidates, fetch, find_file, read_verified, subset, Candidate, Dataset, FileKind, Origin,
    DATA_DIR_ENV,
};

/// Manage the MNIST and Fashion-MNIST data files.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    heist data fetch --dataset mnist --data-dir ./data\n  \
    heist data info\n  \
    heist data verify --dataset fashion --data-dir /usr/share/datasets\n  \
    heist data make-subset --data-dir ./data --out host/data")]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DataCommand {
    /// Download the canonical files from their public mirror and verify them.
    #[command(after_help = "Example:\n  heist data fetch --dataset fashion --data-dir ./data")]
    Fetch {
        /// Data set to fetch (default: both).
        #[arg(long, value_enum)]
        dataset: Option<Dataset>,
        /// Data root to store into (default: $HEIST_DATA_DIR, else ./data).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Base URL to fetch `<name>.gz` from instead of the data set's canonical mirror.
        #[arg(long, value_name = "URL", requires = "dataset")]
        mirror: Option<String>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Show where each data set is looked for and what was found (no checksums).
    #[command(after_help = "Example:\n  heist data info --dataset mnist")]
    Info(LookArgs),
    /// Like `info`, and check every file's SHA-256; exit code 2 if any fails.
    #[command(after_help = "Example:\n  heist data verify --data-dir ./data")]
    Verify(LookArgs),
    /// Regenerate the embedded subset from the canonical files.
    #[command(after_help = "Example (from the repository root):\n  \
        heist data make-subset --data-dir ./data --out host/data")]
    MakeSubset {
        /// Data root holding the canonical `mnist/` and `fashion-mnist/`.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Where to write `<dir>/*.gz` and `<dir>/subset.json`.
        #[arg(long, value_name = "DIR", default_value = "host/data")]
        out: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct LookArgs {
    /// Data set to look at (default: both).
    #[arg(long, value_enum)]
    dataset: Option<Dataset>,
    /// Data root holding `mnist/` and `fashion-mnist/`.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Also write the findings as JSON to this file (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

fn selected(dataset: Option<Dataset>) -> Vec<Dataset> {
    dataset.map_or_else(|| Dataset::ALL.to_vec(), |d| vec![d])
}

/// Runs `heist data`.
///
/// # Errors
/// Bad input (exit 2) for missing or corrupt files, failure (exit 1) otherwise.
pub fn run(args: DataArgs) -> CliResult {
    match args.command {
        DataCommand::Fetch {
            dataset,
            data_dir,
            mirror,
            quiet,
        } => {
            let root = data_dir
                .or_else(|| std::env::var_os(DATA_DIR_ENV).map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("data"));
            for d in selected(dataset) {
                let dir = root.join(d.dir_name());
                let url = mirror.as_deref().unwrap_or(d.mirror());
                eprintln!("fetching {d} from {url} into {}", dir.display());
                let done = fetch::fetch(url, &dir, d.files(), !quiet)
                    .map_err(|e| CliError::Failure(e.into()))?;
                for f in done {
                    let what = if f.already_present {
                        "already present, verified".to_owned()
                    } else {
                        format!("downloaded {} bytes, verified", f.downloaded)
                    };
                    println!("{d}: {}: {what}", f.path.display());
                }
            }
            Ok(())
        }
        DataCommand::Info(look) => look_at(&look, false),
        DataCommand::Verify(look) => look_at(&look, true),
        DataCommand::MakeSubset { data_dir, out } => {
            for d in Dataset::ALL {
                let data = crate::data::load(d, data_dir.as_deref(), false)
                    .map_err(CliError::bad_input)?;
                let m = subset::write(&data, &out).map_err(CliError::bad_input)?;
                println!(
                    "{d}: wrote {} train + {} test images (seed {:#x}) from {} to {}",
                    m.train_indices.len(),
                    m.test_indices.len(),
                    m.seed,
                    data.source,
                    out.join(d.dir_name()).display()
                );
            }
            Ok(())
        }
    }
}

/// What `info`/`verify` found about one file.
#[derive(Debug, serde::Serialize)]
struct FileReport {
    name: &'static str,
    path: Option<PathBuf>,
    /// `None` when not checked, else whether it verified.
    verified: Option<bool>,
    error: Option<String>,
}

/// What `info`/`verify` found about one candidate directory.
#[derive(Debug, serde::Serialize)]
struct DirReport {
    dir: PathBuf,
    origin: Origin,
    complete: bool,
    files: Vec<FileReport>,
}

#[derive(Debug, serde::Serialize)]
struct DatasetReport {
    dataset: Dataset,
    /// The directory that `load` would use, or `None` for the embedded subset.
    selected: Option<PathBuf>,
    data_source: &'static str,
    candidates: Vec<DirReport>,
}

fn look_dir(d: Dataset, c: &Candidate, verify: bool) -> DirReport {
    let files = d
        .files()
        .iter()
        .map(|spec| {
            let path = find_file(&c.dir, spec.kind);
            let (verified, error) = match (&path, verify) {
                (Some(p), true) => match read_verified(p, Some(spec.sha256)) {
                    Ok(_) => (Some(true), None),
                    Err(e) => (Some(false), Some(e.to_string())),
                },
                _ => (None, None),
            };
            FileReport {
                name: spec.kind.base_name(),
                path,
                verified,
                error,
            }
        })
        .collect();
    DirReport {
        dir: c.dir.clone(),
        origin: c.origin,
        complete: crate::data::is_complete(&c.dir),
        files,
    }
}

fn look_at(look: &LookArgs, verify: bool) -> CliResult {
    let mut reports = Vec::new();
    let mut failed = false;
    for d in selected(look.dataset) {
        let cands = candidates(d, look.data_dir.as_deref());
        let dirs: Vec<DirReport> = cands.iter().map(|c| look_dir(d, c, verify)).collect();
        let explicit = dirs
            .iter()
            .find(|r| matches!(r.origin, Origin::Flag | Origin::Env));
        let chosen = explicit.or_else(|| dirs.iter().find(|r| r.complete));
        println!("{d} ({} files in {}/):", FileKind::ALL.len(), d.dir_name());
        for r in &dirs {
            let mark = if chosen.is_some_and(|c| c.dir == r.dir) {
                "*"
            } else {
                " "
            };
            let state = if r.complete { "complete" } else { "incomplete" };
            println!(" {mark} {} (from {}): {state}", r.dir.display(), r.origin);
            for f in &r.files {
                let status = match (&f.path, f.verified) {
                    (None, _) => "missing".to_owned(),
                    (Some(_), None) => "present".to_owned(),
                    (Some(_), Some(true)) => "verified (SHA-256 ok)".to_owned(),
                    (Some(_), Some(false)) => {
                        failed = true;
                        format!("FAILED: {}", f.error.as_deref().unwrap_or("?"))
                    }
                };
                let shown = f
                    .path
                    .as_deref()
                    .map_or_else(|| f.name.to_owned(), display_name);
                println!("     {shown}: {status}");
            }
            if verify && r.complete && chosen.is_some_and(|c| c.dir == r.dir) {
                failed |= r.files.iter().any(|f| f.verified != Some(true));
            }
        }
        if let Some(c) = explicit.filter(|c| !c.complete) {
            failed |= verify;
            println!(
                "   the directory given by {} is incomplete: commands will fail",
                c.origin
            );
        }
        let selected = chosen.map(|c| c.dir.clone());
        if selected.is_none() {
            println!(
                "   not found on disk: commands use the EMBEDDED SUBSET ({} train + {} test images)",
                subset::TRAIN_SIZE,
                subset::TEST_SIZE
            );
        }
        reports.push(DatasetReport {
            dataset: d,
            data_source: if selected.is_some() {
                "canonical"
            } else {
                "embedded-subset"
            },
            selected,
            candidates: dirs,
        });
    }
    if let Some(path) = &look.json {
        crate::cli::exit::write_json(path, &reports)?;
    }
    if failed {
        return Err(CliError::bad_input(anyhow::anyhow!(
            "verification failed (see above)"
        )));
    }
    Ok(())
}

fn display_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
