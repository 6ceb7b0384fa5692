//! How `heist` subcommands fail: exit code 2 for bad input (arguments, missing or corrupt
//! data, invalid model files), 1 for any other failure, 0 for success.

/// A subcommand's failure, classified for the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The input was wrong: the user can fix it (exit code 2).
    #[error("{0:#}")]
    BadInput(anyhow::Error),
    /// Something failed while doing valid work (exit code 1).
    #[error("{0:#}")]
    Failure(anyhow::Error),
}

impl CliError {
    /// Wraps an error as bad input.
    pub fn bad_input(e: impl Into<anyhow::Error>) -> Self {
        CliError::BadInput(e.into())
    }

    /// The process exit code: 2 for bad input, 1 for a failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::BadInput(_) => 2,
            CliError::Failure(_) => 1,
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::Failure(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Failure(e.into())
    }
}

/// What a subcommand's `run` returns.
pub type CliResult = Result<(), CliError>;

/// Turns a subcommand's result into the process exit code, printing the error to stderr.
pub fn finish(result: CliResult) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}

/// Writes `value` as pretty JSON to `path`, or to stdout when `path` is `-`.
///
/// # Errors
/// If the file cannot be written.
pub fn write_json<T: serde::Serialize>(path: &std::path::Path, value: &T) -> CliResult {
    let text = serde_json::to_string_pretty(value).map_err(anyhow::Error::from)? + "\n";
    if path == std::path::Path::new("-") {
        print!("{text}");
    } else {
        std::fs::write(path, text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    Ok(())
}
