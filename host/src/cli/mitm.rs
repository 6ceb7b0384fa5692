//! `heist mitm`: the man in the middle of attack 1 as a process, a relay between client
//! and trusted party that rewrites every image in flight.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Mutex;

use super::attack::adversarial::SettingsArgs;
use super::exit::{CliError, CliResult};
use super::options::TlsArgs;
use crate::attack::adversarial::experiment::AttackKind;
use crate::attack::adversarial::mitm::{ManInTheMiddle, Rewrite};
use crate::model::Model;
use crate::service::message::IMAGE_BYTES;
use crate::service::relay::{Relay, RelayTls};
use crate::service::{ClientConfig, ServerConfig, TcpClient};

/// Relay between client and trusted party, rewriting each image into an adversarial one.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example (with a trusted party on 127.0.0.1:7000):\n  \
    heist mitm --listen 127.0.0.1:7100 --upstream 127.0.0.1:7000 --attack bim --model mnist.safetensors\n  \
    heist query --to 127.0.0.1:7100 digit.png")]
pub struct MitmArgs {
    /// Address to listen on (what the client believes is the trusted party).
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// The real trusted party.
    #[arg(long, value_name = "ADDR")]
    upstream: String,
    /// The rewrite.
    #[arg(long, value_enum)]
    attack: AttackKind,
    /// The plaintext twin of the deployed model (every attack but `square` needs it).
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    #[command(flatten)]
    settings: SettingsArgs,
    /// Seed of PGD's random starts and the Square Attack.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Speak TLS on both sides with this certificate (towards the client as a server,
    /// towards the trusted party as a client). Against mutual TLS it works only with
    /// certificates the service's CA signed: otherwise both handshakes fail.
    #[command(flatten)]
    tls: TlsArgs,
}

/// Runs `heist mitm` until the process is stopped.
///
/// # Errors
/// Bad input for invalid settings, a missing or unloadable model, or an address that cannot
/// be bound.
pub fn run(args: MitmArgs) -> CliResult {
    args.settings.validate()?;
    let tls = RelayTls {
        listen: args.tls.server()?,
        upstream: args.tls.client()?,
    };
    let model = || -> Result<Model, CliError> {
        let path = args.model.as_ref().ok_or_else(|| {
            CliError::bad_input(anyhow::anyhow!(
                "--attack {} needs --model (the plaintext twin)",
                args.attack.name()
            ))
        })?;
        Model::load(path, None).map_err(CliError::bad_input)
    };
    let s = &args.settings;
    let rewrite = match args.attack {
        AttackKind::Fgsm => Rewrite::Fgsm(model()?, s.fgsm()),
        AttackKind::Bim => Rewrite::Pgd(model()?, s.bim()),
        AttackKind::Pgd => Rewrite::Pgd(model()?, s.pgd(args.seed)),
        AttackKind::Cw => Rewrite::Cw(model()?, s.cw()),
        AttackKind::Square => {
            let mut client = TcpClient::new(&args.upstream, ClientConfig::default());
            if let Some(upstream) = &tls.upstream {
                client = client.with_tls(upstream).map_err(CliError::bad_input)?;
            }
            Rewrite::Square(Mutex::new(client), s.square(args.seed))
        }
        AttackKind::Transfer | AttackKind::Noise => {
            return Err(CliError::bad_input(anyhow::anyhow!(
                "--attack {} is not a rewrite of the relay (use heist attack adversarial)",
                args.attack.name()
            )))
        }
    };
    let config = ServerConfig::trusted();
    let max_images = config.max_payload as usize / IMAGE_BYTES;
    let listener = TcpListener::bind(&args.listen)
        .map_err(|e| CliError::bad_input(anyhow::anyhow!("--listen {}: {e}", args.listen)))?;
    let relay = Relay::start_secured(
        listener,
        args.upstream.clone(),
        config,
        ClientConfig::default().peer,
        ManInTheMiddle::new(rewrite, max_images),
        tls,
    )
    .map_err(CliError::bad_input)?;
    eprintln!(
        "[mitm] relaying {} → {}, rewriting images with {}",
        relay.local_addr(),
        args.upstream,
        args.attack.name()
    );
    relay.wait();
    Ok(())
}
