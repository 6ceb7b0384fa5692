//! Flags shared by several subcommands.

use std::path::PathBuf;

use super::exit::CliError;
use crate::data::{load_splits, Data, DataError, Dataset, Splits};
use crate::model::{Architecture, Model};
use crate::service::tls::{Identity, TlsClient, TlsFiles, TlsServer};
use crate::train::cache::{cache_path, cached_or_trained};
use crate::train::TrainConfig;

/// Options shared by every subcommand that reads a data set.
#[derive(Clone, Debug, clap::Args)]
pub struct DataOptions {
    /// Data set to use.
    #[arg(long, value_enum, default_value = "mnist")]
    pub dataset: Dataset,
    /// Data root holding `mnist/` and `fashion-mnist/` (default: $HEIST_DATA_DIR, then
    /// ./data, then /usr/share/datasets, then the embedded subset).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use the small subset embedded in the binary, whatever is on disk.
    #[arg(long, conflicts_with = "data_dir")]
    pub embedded: bool,
}

impl DataOptions {
    /// Loads the data set these options name, printing the subset notice to stderr.
    ///
    /// # Errors
    /// Any [`DataError`].
    pub fn load(&self) -> Result<Data, DataError> {
        self.load_splits(Splits::Both)
    }

    /// [`DataOptions::load`], reading from a directory only the `splits` asked for.
    ///
    /// # Errors
    /// Any [`DataError`].
    pub fn load_splits(&self, splits: Splits) -> Result<Data, DataError> {
        let data = load_splits(
            self.dataset,
            self.data_dir.as_deref(),
            self.embedded,
            splits,
        )?;
        if let Some(n) = data.source.notice() {
            eprintln!("{n}");
        }
        Ok(data)
    }
}

/// The model a command runs on: a model file, or the paper's network for the data set,
/// trained now or reused from the cache.
#[derive(Clone, Debug, clap::Args)]
pub struct ModelOptions {
    /// A model file (safetensors); without it, the paper's network for the data set is
    /// trained (or reused from `--cache`).
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Training epochs (when no model file is given and no cached model matches).
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Directory of trained models, keyed by data, architecture, hyper-parameters and seed.
    #[arg(long, value_name = "DIR", default_value = ".heist-cache")]
    pub cache: PathBuf,
}

/// A model and where it came from.
#[derive(Debug)]
pub struct ResolvedModel {
    /// The model.
    pub model: Model,
    /// Its file.
    pub path: PathBuf,
    /// `file`, `cached` or `trained now`.
    pub origin: &'static str,
}

impl ModelOptions {
    /// The model file, or the paper's network trained on `data` with the paper's
    /// hyper-parameters (Adam, lr 1e-3, batch 128, `--epochs`) and `seed`, from the cache
    /// when it holds one.
    ///
    /// # Errors
    /// Bad input for a model file that does not load; failure when training fails.
    pub fn resolve(&self, data: &Data, seed: u64) -> Result<ResolvedModel, CliError> {
        if let Some(path) = &self.model {
            let model = Model::load(path, None).map_err(CliError::bad_input)?;
            return Ok(ResolvedModel {
                model,
                path: path.clone(),
                origin: "file",
            });
        }
        let config = TrainConfig::adam(Architecture::for_dataset(data.dataset), self.epochs, seed);
        let path = cache_path(&self.cache, &data.train, &config)?;
        let (model, cached) = cached_or_trained(&path, &self.cache, &data.train, &config)?;
        Ok(ResolvedModel {
            model,
            path,
            origin: if cached { "cached" } else { "trained now" },
        })
    }
}

/// Sizes rayon's global pool to `threads` workers (`None`: one per core), for the
/// commands that take `--threads`.
///
/// # Errors
/// Bad input when the pool cannot be built.
pub fn use_threads(threads: Option<usize>) -> Result<(), CliError> {
    match threads {
        Some(threads) => rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .map_err(CliError::bad_input),
        None => Ok(()),
    }
}

/// Mutual TLS on the client ↔ trusted-party link (`service::tls`): the three PEM files of
/// this side, all three or none.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TlsArgs {
    /// Mutual TLS: this side's certificate chain (PEM; with --tls-key and --tls-ca).
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// Mutual TLS: this side's private key (PEM).
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: the CA certificate the other side's certificate must chain to (PEM).
    #[arg(long, value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
}

impl TlsArgs {
    /// The identity the three files hold, or `None` when no TLS flag is given.
    ///
    /// # Errors
    /// Bad input when only some of the flags are given, or a file is unreadable, oversized or
    /// malformed.
    pub fn identity(&self) -> Result<Option<Identity>, CliError> {
        match (&self.tls_cert, &self.tls_key, &self.tls_ca) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), Some(ca)) => Identity::from_files(&TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: ca.clone(),
            })
            .map(Some)
            .map_err(CliError::bad_input),
            _ => Err(CliError::bad_input(anyhow::anyhow!(
                "--tls-cert, --tls-key and --tls-ca go together"
            ))),
        }
    }

    /// The accepting side's configuration, if TLS is asked for.
    ///
    /// # Errors
    /// As [`TlsArgs::identity`]; bad input when rustls refuses the certificate or key.
    pub fn server(&self) -> Result<Option<TlsServer>, CliError> {
        self.identity()?
            .map(|id| id.server().map_err(CliError::bad_input))
            .transpose()
    }

    /// The connecting side's configuration, if TLS is asked for.
    ///
    /// # Errors
    /// As [`TlsArgs::server`].
    pub fn client(&self) -> Result<Option<TlsClient>, CliError> {
        self.identity()?
            .map(|id| id.client().map_err(CliError::bad_input))
            .transpose()
    }
}
