//! Flags shared by several subcommands.

use std::path::PathBuf;

use crate::data::{load, Data, DataError, Dataset};

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
