//! `heist certs`: a throw-away certificate authority with a trusted-party and a client
//! certificate, to try mutual TLS on the client link. For testing only.

use std::path::PathBuf;

use super::exit::{CliError, CliResult};
use crate::service::tls::DevCertificates;

/// Write a test CA, a trusted-party certificate and a client certificate (PEM).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "FOR TESTING ONLY: the CA's key is thrown away and the keys are written \
    unencrypted. A deployment uses certificates from its own PKI.\n\n\
    Example (mutual TLS between client and trusted party):\n  \
    heist certs --out tls/\n  \
    heist serve trusted --listen 127.0.0.1:7000 --compute 127.0.0.1:7001 --scheme plain \
    --tls-cert tls/server.pem --tls-key tls/server.key --tls-ca tls/ca.pem\n  \
    heist query --to 127.0.0.1:7000 --tls-cert tls/client.pem --tls-key tls/client.key \
    --tls-ca tls/ca.pem digit.png"
)]
pub struct CertsArgs {
    /// Directory to write ca.pem, server.pem, server.key, client.pem and client.key into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Another host name or IP address the trusted party's certificate names (besides
    /// localhost, 127.0.0.1 and ::1); repeat for several.
    #[arg(long = "name", value_name = "HOST")]
    names: Vec<String>,
}

/// Runs `heist certs`.
///
/// # Errors
/// Bad input for a name that is not a DNS name or IP address; failure when a file cannot
/// be written.
pub fn run(args: CertsArgs) -> CliResult {
    let certs = DevCertificates::generate(&args.names).map_err(CliError::bad_input)?;
    let written = certs
        .write(&args.out)
        .map_err(|e| CliError::Failure(e.into()))?;
    for path in written {
        println!("{}", path.display());
    }
    eprintln!("test certificates only: do not use them in a deployment");
    Ok(())
}
