//! Downloading the canonical files from a mirror (`heist data fetch`).
//!
//! Each file `<name>.gz` is fetched from `<mirror><name>.gz` into memory (at most
//! [`MAX_DOWNLOAD_BYTES`]), decompressed, checked against its SHA-256, and only then written
//! to the data directory (through a temporary file and a rename, so a failed download never
//! leaves a partial file under the canonical name). A file already present that verifies is
//! kept and not downloaded again.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{find_file, idx, read_verified, sha256_hex, DataError, FileSpec};

/// The largest download accepted, in bytes.
pub const MAX_DOWNLOAD_BYTES: usize = idx::MAX_IDX_BYTES;

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request failed (connection, TLS, protocol) or the server answered an error.
    #[error("{url}: {source}")]
    Http {
        /// The URL.
        url: String,
        /// The client's error.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The body could not be read.
    #[error("{url}: reading the body: {source}")]
    Body {
        /// The URL.
        url: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The body is larger than [`MAX_DOWNLOAD_BYTES`].
    #[error("{url}: body larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The downloaded file does not decode or verify.
    #[error("{url}: {source}")]
    Invalid {
        /// The URL.
        url: String,
        /// What is wrong with it.
        #[source]
        source: DataError,
    },
    /// The file could not be stored.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// What happened to one file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Fetched {
    /// Where the file now is.
    pub path: PathBuf,
    /// Bytes downloaded (0 when it was already present).
    pub downloaded: usize,
    /// Whether a verified copy was already present.
    pub already_present: bool,
}

/// Downloads the files `specs` from `mirror` (a base URL; a missing trailing `/` is added)
/// into `dir`, verifying each.
///
/// # Errors
/// The first [`FetchError`]; files verified before it stay in place.
pub fn fetch(
    mirror: &str,
    dir: &Path,
    specs: &[FileSpec],
    progress: bool,
) -> Result<Vec<Fetched>, FetchError> {
    let base = if mirror.ends_with('/') {
        mirror.to_owned()
    } else {
        format!("{mirror}/")
    };
    let io_err = |path: &Path| {
        let path = path.display().to_string();
        move |source| FetchError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .build();
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        if let Some(path) = find_file(dir, spec.kind) {
            if read_verified(&path, Some(spec.sha256)).is_ok() {
                out.push(Fetched {
                    path,
                    downloaded: 0,
                    already_present: true,
                });
                continue;
            }
        }
        let name = format!("{}.gz", spec.kind.base_name());
        let url = format!("{base}{name}");
        let body = download(&agent, &url, progress)?;
        let invalid = |source| FetchError::Invalid {
            url: url.clone(),
            source,
        };
        let raw = idx::decompress(body.clone(), &url, idx::MAX_IDX_BYTES)
            .map_err(|e| invalid(e.into()))?;
        let actual = sha256_hex(&raw);
        if actual != spec.sha256 {
            return Err(invalid(DataError::Checksum {
                file: url.clone(),
                expected: spec.sha256.to_owned(),
                actual,
            }));
        }
        idx::parse(raw, &url).map_err(|e| invalid(e.into()))?;
        let path = dir.join(&name);
        let tmp = dir.join(format!(".{name}.part"));
        std::fs::write(&tmp, &body).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        out.push(Fetched {
            path,
            downloaded: body.len(),
            already_present: false,
        });
    }
    Ok(out)
}

/// GETs `url` into memory with a progress bar on stderr, refusing bodies over the limit.
fn download(agent: &ureq::Agent, url: &str, progress: bool) -> Result<Vec<u8>, FetchError> {
    let resp = agent.get(url).call().map_err(|e| FetchError::Http {
        url: url.to_owned(),
        source: Box::new(e),
    })?;
    let too_large = || FetchError::TooLarge {
        url: url.to_owned(),
        limit: MAX_DOWNLOAD_BYTES,
    };
    let declared = resp
        .header("Content-Length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_DOWNLOAD_BYTES as u64) {
        return Err(too_large());
    }
    let bar = if progress {
        let bar = indicatif::ProgressBar::with_draw_target(
            declared,
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
        ) {
            bar.set_style(style);
        }
        bar.set_message(url.rsplit('/').next().unwrap_or(url).to_owned());
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut body = Vec::new();
    let mut reader = bar.wrap_read(resp.into_reader().take(MAX_DOWNLOAD_BYTES as u64 + 1));
    reader
        .read_to_end(&mut body)
        .map_err(|source| FetchError::Body {
            url: url.to_owned(),
            source,
        })?;
    bar.finish_and_clear();
    if body.len() > MAX_DOWNLOAD_BYTES {
        return Err(too_large());
    }
    Ok(body)
}
