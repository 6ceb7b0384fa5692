//! `heist serve compute|trusted` and `heist query`: the service's roles as processes.
//!
//! Progress and log lines go to stderr, results to stdout. Exit codes: 0 success, 2 bad
//! input (arguments, image files, model file), 1 any other failure.

use std::net::{TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;

use super::options::{DataOptions, TlsArgs};
use crate::cli::exit::{write_json, CliError, CliResult};
use crate::inference::calibrated_ckks_plan;
use crate::model::Model;
use crate::oracle::{predicted_class, Image, Oracle, IMAGE_SIDE};
use crate::service::auth::LinkKey;
use crate::service::{
    bfv_plan, BatchCodec, BatchConfig, BfvCodec, BfvEvaluator, CkksCodec, CkksEvaluator,
    ClientConfig, ClientLink, ComputeServer, PeerConfig, PlaintextCodec, PlaintextEvaluator,
    ReleaseError, ReleasePolicy, Scheme, ServerConfig, TcpClient, TrustedServer,
};

/// Where `heist serve` takes its calibration images from (the first
/// [`CALIBRATION_IMAGES`](crate::inference::CALIBRATION_IMAGES) training images). With
/// `--scheme ckks` both roles must give the same data set to compile the same plan; with
/// `--scheme bfv` the plan depends on the model only, and the trusted party calibrates the
/// score bounds it checks every reply against on these images.
#[derive(Debug, clap::Args)]
struct PlanOptions {
    #[command(flatten)]
    data: DataOptions,
}

impl PlanOptions {
    /// The CKKS plan of `model`, calibrated on the first [`CALIBRATION_IMAGES`](crate::inference::CALIBRATION_IMAGES) training
    /// images of the data set.
    ///
    /// # Errors
    /// Bad input for unusable data; failure when no plan fits.
    fn ckks_plan(&self, model: &Model) -> Result<heist_he::nn::CkksPlan, CliError> {
        let data = self.data.load().map_err(CliError::bad_input)?;
        Ok(calibrated_ckks_plan(model, &data.train)?)
    }

    /// `codec` with its score bounds calibrated on the first
    /// [`CALIBRATION_IMAGES`](crate::inference::CALIBRATION_IMAGES) training images
    /// ([`BfvCodec::with_calibration`]).
    ///
    /// # Errors
    /// Bad input for unusable data.
    fn bfv_calibrated(&self, codec: BfvCodec) -> Result<BfvCodec, CliError> {
        let data = self.data.load().map_err(CliError::bad_input)?;
        let images =
            crate::inference::calibration_images(&data.train).map_err(CliError::bad_input)?;
        codec
            .with_calibration(&images)
            .map_err(|e| CliError::Failure(e.into()))
    }

    /// The trusted party's codec for the CKKS plan of `model`
    /// ([`crate::inference::trusted_ckks_codec`]).
    ///
    /// # Errors
    /// As [`Self::ckks_plan`].
    fn ckks_codec(&self, model: &Model, release: ReleasePolicy) -> Result<CkksCodec, CliError> {
        let data = self.data.load().map_err(CliError::bad_input)?;
        let plan = calibrated_ckks_plan(model, &data.train)?;
        Ok(crate::inference::trusted_ckks_codec(
            plan,
            &data.train,
            release,
        )?)
    }
}

/// Run one role of the three-party inference service.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples (three terminals):\n  \
    heist serve compute --listen 127.0.0.1:7001 --model mnist.safetensors --scheme plain\n  \
    heist serve trusted --listen 127.0.0.1:7000 --compute 127.0.0.1:7001 --scheme plain\n  \
    heist query --to 127.0.0.1:7000 digit.png\n\n\
    Encrypted (CKKS; both roles compile the same plan from the model and the data set's \
    first 256 training images):\n  \
    heist serve compute --listen 127.0.0.1:7001 --model mnist.safetensors --scheme ckks\n  \
    heist serve trusted --listen 127.0.0.1:7000 --compute 127.0.0.1:7001 --scheme ckks \
    --model mnist.safetensors\n\n\
    Encrypted, exact (BFV on the 8-bit quantised model; both roles compile the same plan \
    from the model alone):\n  \
    heist serve compute --listen 127.0.0.1:7001 --model mnist.safetensors --scheme bfv\n  \
    heist serve trusted --listen 127.0.0.1:7000 --compute 127.0.0.1:7001 --scheme bfv \
    --model mnist.safetensors")]
pub struct ServeArgs {
    #[command(subcommand)]
    role: Role,
}

#[derive(Debug, clap::Subcommand)]
enum Role {
    /// The compute server: holds the model and evaluates batches it cannot read.
    #[command(after_help = "Example:\n  \
        heist serve compute --listen 127.0.0.1:7001 --model mnist.safetensors --scheme plain")]
    Compute {
        /// Address to listen on for trusted parties.
        #[arg(long, value_name = "ADDR")]
        listen: String,
        /// Model file (safetensors, as written by `heist train`).
        #[arg(long, value_name = "PATH")]
        model: PathBuf,
        #[command(flatten)]
        scheme: SchemeArg,
        #[command(flatten)]
        plan: PlanOptions,
        #[command(flatten)]
        limits: Limits,
    },
    /// The trusted party: batches clients' images, encrypts, has the compute server
    /// evaluate, decrypts and answers each client.
    #[command(after_help = "Example:\n  \
        heist serve trusted --listen 127.0.0.1:7000 --compute 127.0.0.1:7001 --scheme plain \
        --slots 64 --window-ms 20")]
    Trusted {
        /// Address to listen on for clients.
        #[arg(long, value_name = "ADDR")]
        listen: String,
        /// Address of the compute server.
        #[arg(long, value_name = "ADDR")]
        compute: String,
        #[command(flatten)]
        scheme: SchemeArg,
        /// Model file the compute server evaluates (`ckks`, `bfv`: the trusted party
        /// compiles the same plan to know the parameters it encrypts with; `bfv` also
        /// quantises inputs and dequantises scores with it).
        #[arg(long, value_name = "PATH")]
        model: Option<PathBuf>,
        #[command(flatten)]
        plan: PlanOptions,
        /// Images per batch (`plain` only; an encrypting scheme batches its SIMD slots).
        #[arg(long, default_value_t = 4096)]
        slots: usize,
        /// Longest a batch waits for more images before it is sent, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 20)]
        window_ms: u64,
        /// What is released of each decrypted score: `exact`, `rounded:BITS`,
        /// `noised:SIGMA` or `flooded[:S[:TAU]]` (the last two CKKS only); see
        /// `docs/threat-model.md`. Default: CKKS `noised:0.1` (the default policy), BFV
        /// `exact`.
        #[arg(long, value_parser = parse_release)]
        release: Option<ReleasePolicy>,
        /// Longest to wait for the compute server's answer to a batch, in seconds.
        #[arg(long, value_name = "S", default_value_t = 600)]
        compute_timeout_s: u64,
        /// Serve only clients that authenticate every query with the key in this file
        /// (32 to 4096 raw bytes, shared with the clients); replies carry a tag too.
        #[arg(long, value_name = "FILE")]
        link_key: Option<PathBuf>,
        /// Serve only clients that complete mutual TLS with a certificate the CA signed.
        #[command(flatten)]
        tls: TlsArgs,
        #[command(flatten)]
        limits: Limits,
    },
}

#[derive(Debug, clap::Args)]
struct SchemeArg {
    /// Encryption scheme between trusted party and compute server. `plain` does NOT
    /// encrypt (the compute server sees every image); `ckks` encrypts (both roles then
    /// compile the same plan from the model and the calibration images); `bfv` encrypts
    /// and is exact (both roles compile the same plan from the 8-bit quantised model; the
    /// scores are those of the plaintext integer model).
    #[arg(long, value_enum)]
    scheme: Scheme,
}

#[derive(Debug, clap::Args)]
struct Limits {
    /// Connections served at once [default: trusted 64, compute 16].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Largest frame payload accepted, in bytes [default: trusted 4 MiB, compute 1 GiB].
    #[arg(long, value_name = "BYTES")]
    max_payload: Option<u32>,
    /// Seconds a connection may stay silent between frames [default: trusted 60, compute 600].
    #[arg(long, value_name = "S")]
    idle_timeout_s: Option<u64>,
    /// Seconds a frame may take to arrive once started [default: trusted 10, compute 120].
    #[arg(long, value_name = "S")]
    frame_timeout_s: Option<u64>,
}

impl Limits {
    fn apply(&self, mut config: ServerConfig) -> Result<ServerConfig, CliError> {
        if self.max_connections == Some(0) {
            return Err(CliError::bad_input(anyhow!(
                "--max-connections must be at least 1"
            )));
        }
        config.max_connections = self.max_connections.unwrap_or(config.max_connections);
        config.max_payload = self.max_payload.unwrap_or(config.max_payload);
        config.idle_timeout = self
            .idle_timeout_s
            .map_or(config.idle_timeout, Duration::from_secs);
        config.frame_timeout = self
            .frame_timeout_s
            .map_or(config.frame_timeout, Duration::from_secs);
        Ok(config)
    }
}

/// Runs `heist serve`: serves until the process is stopped.
///
/// # Errors
/// Bad input for an invalid address, model file or slot count; failure when no plan fits
/// the model, an address cannot be bound or the compute server is unreachable.
pub fn serve(args: ServeArgs) -> CliResult {
    match args.role {
        Role::Compute {
            listen,
            model,
            scheme,
            plan,
            limits,
        } => {
            let config = limits.apply(ServerConfig::compute())?;
            warn_plain(scheme.scheme);
            let model = load_model(&model)?;
            let server = match scheme.scheme {
                Scheme::Ckks => {
                    let evaluator = CkksEvaluator::new(plan.ckks_plan(&model)?)
                        .map_err(|e| CliError::Failure(e.into()))?;
                    ComputeServer::start(bind(&listen)?, evaluator, config)?
                }
                Scheme::Bfv => {
                    let (_, plan) = bfv_plan(&model)?;
                    let evaluator =
                        BfvEvaluator::new(plan).map_err(|e| CliError::Failure(e.into()))?;
                    ComputeServer::start(bind(&listen)?, evaluator, config)?
                }
                Scheme::Plain => {
                    ComputeServer::start(bind(&listen)?, PlaintextEvaluator::new(model), config)?
                }
            };
            eprintln!(
                "[compute] listening on {} (scheme {})",
                server.local_addr(),
                scheme.scheme
            );
            server.wait();
        }
        Role::Trusted {
            listen,
            compute,
            scheme,
            model,
            plan,
            slots,
            window_ms,
            release,
            compute_timeout_s,
            link_key,
            tls,
            limits,
        } => {
            let clients = ClientLink {
                key: load_link_key(link_key.as_deref())?,
                tls: tls.server()?,
            };
            let config = limits.apply(ServerConfig::trusted())?;
            warn_plain(scheme.scheme);
            let trusted = TrustedArgs {
                listen,
                compute,
                clients,
                window_ms,
                compute_timeout_s,
                config,
            };
            let model = |scheme: Scheme| -> Result<Model, CliError> {
                let path = model.as_deref().ok_or_else(|| {
                    CliError::bad_input(anyhow!("--scheme {scheme} needs --model"))
                })?;
                Model::load(path, None).map_err(CliError::bad_input)
            };
            match scheme.scheme {
                Scheme::Ckks => {
                    let model = model(Scheme::Ckks)?;
                    let codec = plan.ckks_codec(
                        &model,
                        release.unwrap_or(ReleasePolicy::default_for(Scheme::Ckks)),
                    )?;
                    start_trusted(codec, trusted)?;
                }
                Scheme::Bfv => {
                    let (quant, compiled) = bfv_plan(&model(Scheme::Bfv)?)?;
                    let codec = BfvCodec::new(quant, compiled, &mut rand_core::OsRng)
                        .map_err(|e| CliError::Failure(e.into()))?
                        .with_release(release.unwrap_or(ReleasePolicy::default_for(Scheme::Bfv)))
                        .map_err(CliError::bad_input)?;
                    start_trusted(plan.bfv_calibrated(codec)?, trusted)?;
                }
                Scheme::Plain => start_trusted(
                    PlaintextCodec::new(slots).map_err(CliError::bad_input)?,
                    trusted,
                )?,
            }
        }
    }
    Ok(())
}

/// Parses `--release`.
pub(crate) fn parse_release(text: &str) -> Result<ReleasePolicy, ReleaseError> {
    text.parse()
}

/// The trusted party's addresses and limits.
struct TrustedArgs {
    listen: String,
    compute: String,
    clients: ClientLink,
    window_ms: u64,
    compute_timeout_s: u64,
    config: ServerConfig,
}

/// Starts a trusted party batching with `codec` and serves until the process is stopped.
fn start_trusted<C: BatchCodec + 'static>(codec: C, args: TrustedArgs) -> CliResult {
    let TrustedArgs {
        listen,
        compute,
        clients,
        window_ms,
        compute_timeout_s,
        config,
    } = args;
    let scheme = codec.scheme();
    let slots = codec.slots();
    let link = PeerConfig {
        reply_timeout: Duration::from_secs(compute_timeout_s),
        max_payload: ServerConfig::compute().max_payload,
        ..ClientConfig::default().peer
    };
    let batch = BatchConfig {
        window: Duration::from_millis(window_ms),
        ..BatchConfig::default()
    };
    let listener = bind(&listen)?;
    let (authenticated, tls) = (clients.key.is_some(), clients.tls.is_some());
    let server =
        TrustedServer::start_secured(listener, codec, &compute, link, &batch, config, clients)
            .map_err(|e| CliError::Failure(e.into()))?;
    if authenticated {
        eprintln!("[trusted] every query must carry an HMAC-SHA256 tag under the link key");
    }
    if tls {
        eprintln!(
            "[trusted] every client must complete mutual TLS with a certificate the CA signed"
        );
    }
    eprintln!(
        "[trusted] listening on {} (scheme {scheme}, {slots} slots, {window_ms} ms window, compute server {compute})",
        server.local_addr(),
    );
    server.wait();
    Ok(())
}

/// The link key of `--link-key`, if given.
fn load_link_key(path: Option<&Path>) -> Result<Option<LinkKey>, CliError> {
    path.map(LinkKey::from_file)
        .transpose()
        .map_err(CliError::bad_input)
}

/// Warns that `plain` does not encrypt.
fn warn_plain(scheme: Scheme) {
    if scheme == Scheme::Plain {
        eprintln!("warning: scheme plain does NOT encrypt: the compute server sees every image");
    }
}

/// Loads the model the compute server evaluates.
fn load_model(path: &Path) -> Result<Model, CliError> {
    let model = Model::load(path, None).map_err(CliError::bad_input)?;
    eprintln!(
        "[compute] model {} ({})",
        path.display(),
        model.architecture()
    );
    Ok(model)
}

fn bind(listen: &str) -> Result<TcpListener, CliError> {
    let addrs: Vec<_> = listen
        .to_socket_addrs()
        .map_err(|e| CliError::bad_input(anyhow!("invalid address {listen}: {e}")))?
        .collect();
    TcpListener::bind(addrs.as_slice())
        .map_err(|e| CliError::Failure(anyhow!("cannot listen on {listen}: {e}")))
}

/// Classify 28x28 greyscale PNG images with a running trusted party.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  \
    heist query --to 127.0.0.1:7000 --json predictions.json digit0.png digit1.png")]
pub struct QueryArgs {
    /// Address of the trusted party.
    #[arg(long, value_name = "ADDR")]
    to: String,
    /// Also write the predictions as JSON to this file (`-`: stdout, instead of the text).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Longest to wait for the answers, in seconds.
    #[arg(long, value_name = "S", default_value_t = 60)]
    timeout_s: u64,
    /// Authenticate every query, and check every reply, with the key in this file (the
    /// trusted party's `--link-key`).
    #[arg(long, value_name = "FILE")]
    link_key: Option<PathBuf>,
    /// Speak mutual TLS to the trusted party (its certificate must name the host of --to).
    #[command(flatten)]
    tls: TlsArgs,
    /// 28x28 greyscale PNG files (8 or 16 bits per pixel).
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
}

/// One image's answer, as written to the JSON file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// The image file, as given.
    pub image: String,
    /// The predicted class (arg-max of the scores).
    pub class: usize,
    /// The raw scores.
    pub scores: Vec<f32>,
}

#[derive(serde::Serialize)]
struct Predictions {
    predictions: Vec<Prediction>,
}

/// Runs `heist query`.
///
/// # Errors
/// Bad input for an image that is not a 28x28 greyscale PNG; failure if the service does not
/// answer.
pub fn query(args: QueryArgs) -> CliResult {
    let images = args
        .images
        .iter()
        .map(|path| load_png(path).map_err(CliError::bad_input))
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = ClientConfig::default();
    config.peer.reply_timeout = Duration::from_secs(args.timeout_s);
    let key = load_link_key(args.link_key.as_deref())?;
    let mut client = TcpClient::new(&args.to, config);
    if let Some(tls) = args.tls.client()? {
        client = client.with_tls(&tls).map_err(CliError::bad_input)?;
    }
    client
        .ensure_connected()
        .map_err(|e| CliError::Failure(e.into()))?;
    if let Some(key) = key {
        client = client.with_key(key);
    }
    eprintln!("querying {} with {} image(s)", args.to, images.len());
    let scores = client
        .query(&images)
        .map_err(|e| CliError::Failure(e.into()))?;
    let predictions: Vec<Prediction> = args
        .images
        .iter()
        .zip(&scores)
        .map(|(path, scores)| Prediction {
            image: path.display().to_string(),
            class: predicted_class(scores),
            scores: scores.to_vec(),
        })
        .collect();
    let json_to_stdout = args.json.as_deref() == Some(Path::new("-"));
    if !json_to_stdout {
        for p in &predictions {
            let scores: Vec<String> = p.scores.iter().map(|s| format!("{s:.4}")).collect();
            println!(
                "{}\tclass {}\tscores [{}]",
                p.image,
                p.class,
                scores.join(", ")
            );
        }
    }
    if let Some(path) = &args.json {
        write_json(path, &Predictions { predictions })?;
    }
    Ok(())
}

/// Why a file is not a query image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PngError {
    /// The file cannot be read.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not a PNG.
    #[error("{path}: not a PNG file")]
    NotPng {
        /// The file.
        path: String,
    },
    /// The PNG does not decode (or exceeds the decoder's limits).
    #[error("{path}: {error}")]
    Decode {
        /// The file.
        path: String,
        /// Why.
        error: image::ImageError,
    },
    /// The image is not 28x28.
    #[error("{path}: image is {width}x{height}, expected {IMAGE_SIDE}x{IMAGE_SIDE}")]
    WrongSize {
        /// The file.
        path: String,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
    },
    /// The pixels do not make an image (cannot happen for a decoded 28x28 greyscale PNG;
    /// kept so that no error is hidden).
    #[error("{path}: {error}")]
    Pixels {
        /// The file.
        path: String,
        /// Why.
        error: crate::oracle::ImageError,
    },
    /// The image is not greyscale.
    #[error("{path}: colour type {color}, expected 8- or 16-bit greyscale without alpha")]
    NotGreyscale {
        /// The file.
        path: String,
        /// Its colour type.
        color: String,
    },
}

/// Largest width or height the PNG decoder accepts before refusing (the image must be
/// 28x28 anyway; this bounds the work on a hostile file).
const MAX_PNG_SIDE: u32 = 1024;

/// Reads a 28x28 greyscale PNG (8 or 16 bits) as an image, pixels scaled to `[0, 1]`.
///
/// # Errors
/// Any [`PngError`].
pub fn load_png(path: &Path) -> Result<Image, PngError> {
    let name = path.display().to_string();
    let mut reader = image::ImageReader::open(path)
        .and_then(image::ImageReader::with_guessed_format)
        .map_err(|error| PngError::Io {
            path: name.clone(),
            error,
        })?;
    if reader.format() != Some(image::ImageFormat::Png) {
        return Err(PngError::NotPng { path: name });
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_PNG_SIDE);
    limits.max_image_height = Some(MAX_PNG_SIDE);
    limits.max_alloc = Some(16 << 20);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|error| PngError::Decode {
        path: name.clone(),
        error,
    })?;
    let side = IMAGE_SIDE as u32;
    if decoded.width() != side || decoded.height() != side {
        return Err(PngError::WrongSize {
            path: name,
            width: decoded.width(),
            height: decoded.height(),
        });
    }
    let pixels: Vec<f32> = match &decoded {
        image::DynamicImage::ImageLuma8(buffer) => buffer
            .as_raw()
            .iter()
            .map(|&p| f32::from(p) / 255.0)
            .collect(),
        image::DynamicImage::ImageLuma16(buffer) => buffer
            .as_raw()
            .iter()
            .map(|&p| f32::from(p) / 65535.0)
            .collect(),
        other => {
            return Err(PngError::NotGreyscale {
                path: name,
                color: format!("{:?}", other.color()),
            })
        }
    };
    Image::new(&pixels).map_err(|error| PngError::Pixels { path: name, error })
}
