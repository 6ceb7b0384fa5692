//! Flags shared by several subcommands.

use std::path::PathBuf;

use crate::data::{load, Data, DataError, Dataset, Images};
use crate::inference::{start_service, Service};
use crate::model::Model;
use crate::oracle::{Image, Oracle, PlainOracle, PlainOracleError, Scores};
use crate::service::{ClientConfig, InProcessClient, NetError, Scheme, ServiceError, TcpClient};

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
        let data = load(self.dataset, self.data_dir.as_deref(), self.embedded)?;
        if let Some(n) = data.source.notice() {
            eprintln!("{n}");
        }
        Ok(data)
    }
}

/// Which oracle an attack queries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OracleChoice {
    /// The plaintext model itself, no service.
    Plain,
    /// The three-party service in this process, speaking CKKS or BFV.
    InProcess(Scheme),
    /// A trusted party over TCP at this address.
    Tcp(String),
}

impl std::str::FromStr for OracleChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "plain" => Ok(OracleChoice::Plain),
            "ckks" => Ok(OracleChoice::InProcess(Scheme::Ckks)),
            "bfv" => Ok(OracleChoice::InProcess(Scheme::Bfv)),
            _ => match s.strip_prefix("tcp://") {
                Some(addr) if !addr.is_empty() => Ok(OracleChoice::Tcp(addr.to_owned())),
                _ => Err(format!("{s:?} is not plain, ckks, bfv or tcp://HOST:PORT")),
            },
        }
    }
}

impl std::fmt::Display for OracleChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OracleChoice::Plain => f.write_str("plain"),
            OracleChoice::InProcess(scheme) => write!(f, "{scheme}"),
            OracleChoice::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// The `--oracle` flag of the attacks.
#[derive(Clone, Debug, clap::Args)]
pub struct OracleOptions {
    /// What the attack queries: `plain` (the plaintext model), `ckks` or `bfv` (the
    /// three-party service in this process, every query encrypted), or `tcp://HOST:PORT`
    /// (a running trusted party).
    #[arg(long, value_name = "ORACLE", default_value = "ckks")]
    pub oracle: OracleChoice,
}

impl OracleOptions {
    /// Opens the oracle for `model`; an in-process CKKS service is calibrated on the first
    /// training images of `train` (see [`start_service`]).
    ///
    /// # Errors
    /// When the service cannot be planned or started, or the trusted party is unreachable.
    pub fn open(&self, model: &Model, train: &Images) -> anyhow::Result<AnyOracle> {
        Ok(match &self.oracle {
            OracleChoice::Plain => AnyOracle::Plain(PlainOracle::new(model.clone())),
            OracleChoice::InProcess(scheme) => {
                let service = start_service(model, train, *scheme)?;
                eprintln!(
                    "{scheme} service ready in {:.1} s (ring degree {}, {} slots)",
                    service.setup_seconds, service.ring_degree, service.slots
                );
                AnyOracle::Service {
                    client: service.service.client(),
                    _service: Box::new(service),
                }
            }
            OracleChoice::Tcp(addr) => {
                AnyOracle::Tcp(TcpClient::connect(addr, ClientConfig::default())?)
            }
        })
    }

    /// Whether the queries are encrypted between trusted party and compute server (for
    /// TCP: as far as the client can tell, yes; the trusted party decides).
    pub fn encrypted(&self) -> bool {
        !matches!(self.oracle, OracleChoice::Plain)
    }
}

/// One of the oracles `--oracle` names.
pub enum AnyOracle {
    /// The plaintext model.
    Plain(PlainOracle<Model>),
    /// A client of an in-process service, which lives as long as it.
    Service {
        /// The client (dropped before the service).
        client: InProcessClient,
        /// The running service.
        _service: Box<Service>,
    },
    /// A client of a trusted party over TCP.
    Tcp(TcpClient),
}

/// Why an [`AnyOracle`] query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnyOracleError {
    /// The plaintext oracle refused.
    #[error(transparent)]
    Plain(#[from] PlainOracleError),
    /// The in-process service failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The TCP exchange failed.
    #[error(transparent)]
    Net(#[from] NetError),
}

impl Oracle for AnyOracle {
    type Error = AnyOracleError;

    fn query(&mut self, images: &[Image]) -> Result<Vec<Scores>, AnyOracleError> {
        Ok(match self {
            AnyOracle::Plain(o) => o.query(images)?,
            AnyOracle::Service { client, .. } => client.query(images)?,
            AnyOracle::Tcp(o) => o.query(images)?,
        })
    }

    fn queries(&self) -> u64 {
        match self {
            AnyOracle::Plain(o) => o.queries(),
            AnyOracle::Service { client, .. } => client.queries(),
            AnyOracle::Tcp(o) => o.queries(),
        }
    }
}
