//! The compute server: holds the model (inside a [`BatchEvaluator`]) and the evaluation
//! context each trusted party sends, and evaluates batches it cannot read.
//!
//! Per connection: the first frame must be `Setup` (scheme and evaluation context), answered
//! `SetupOk`; then every `Evaluate` frame is answered `Evaluated` or `Error`. Each state
//! bounds what it reads: a `Setup` no larger than the evaluator's context, within the
//! config's `setup_timeout`; an `Evaluate` no larger than the session's batch.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use super::codec::{BatchEvaluator, CodecError};
use super::frame::{Frame, FrameError, Kind};
use super::message::{ErrorCode, ErrorReply, Setup};
use super::net::{self, Answer, Handler, ServerConfig, ServerHandle};
use super::tls::Conn;

/// A compute server listening for trusted parties over TCP.
pub struct ComputeServer {
    server: ServerHandle,
}

impl ComputeServer {
    /// Serves `listener` with `evaluator` (shared by every connection).
    pub fn start<E: BatchEvaluator + 'static>(
        listener: TcpListener,
        evaluator: E,
        config: ServerConfig,
    ) -> std::io::Result<Self> {
        let server =
            net::spawn_server(listener, config, None, "compute", move |stream, config| {
                serve(stream, config, &evaluator);
            })?;
        Ok(Self { server })
    }

    /// The address trusted parties connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves until the process is stopped.
    pub fn wait(self) {
        self.server.wait();
    }
}

/// The most a frame may carry when its kind is refused in the connection's state anyway
/// (it is read, so that the refusal can name its request).
const REFUSED_KIND_LIMIT: u32 = 64 << 10;

/// One connection's state: before `Setup`, only a `Setup` of the evaluator's context size
/// is read, within `setup_timeout`; after it, only `Evaluate` frames of the session's batch
/// size. So a peer that has not set up cannot make the server buffer more than one
/// context, and nobody can make it buffer more than one batch.
struct Connection<'a, E: BatchEvaluator> {
    evaluator: &'a E,
    session: Option<E::Session>,
}

impl<E: BatchEvaluator> Handler for Connection<'_, E> {
    fn max_payload(&self, kind: Kind, config: &ServerConfig) -> u32 {
        let allowed = match (&self.session, kind) {
            (None, Kind::Setup) => Setup::encoded_len(self.evaluator.max_context_len()),
            (Some(session), Kind::Evaluate) => self.evaluator.max_batch_len(session),
            _ => return REFUSED_KIND_LIMIT.min(config.max_payload),
        };
        u32::try_from(allowed).map_or(config.max_payload, |allowed| {
            allowed.min(config.max_payload)
        })
    }

    fn timeouts(&self, config: &ServerConfig) -> (Duration, Duration) {
        match self.session {
            None => (
                config.idle_timeout.min(config.setup_timeout),
                config.frame_timeout.min(config.setup_timeout),
            ),
            Some(_) => (config.idle_timeout, config.frame_timeout),
        }
    }

    /// Before setup, an oversized frame is most often the setup of a trusted party running
    /// another scheme or model: say which scheme this server runs.
    fn refusal(&self, error: &FrameError) -> String {
        match (&self.session, error) {
            (None, FrameError::PayloadTooLarge { .. }) => format!(
                "{error}: the largest setup this compute server's {} plan accepts \
                 (is the trusted party running another scheme or model?)",
                self.evaluator.scheme()
            ),
            _ => error.to_string(),
        }
    }

    fn answer(&mut self, frame: Frame) -> Answer {
        if let Some(session) = &self.session {
            return evaluate(self.evaluator, session, &frame);
        }
        match open_session(self.evaluator, &frame) {
            Ok(opened) => {
                self.session = Some(opened);
                Answer::Reply(Kind::SetupOk, Vec::new())
            }
            Err(reply) => Answer::RefuseAndClose(reply),
        }
    }
}

fn serve<E: BatchEvaluator>(stream: &mut Conn, config: &ServerConfig, evaluator: &E) {
    let connection = Connection {
        evaluator,
        session: None,
    };
    net::serve_connection(stream, config, "compute", connection);
}

fn open_session<E: BatchEvaluator>(evaluator: &E, frame: &Frame) -> Result<E::Session, ErrorReply> {
    if frame.kind != Kind::Setup {
        return Err(ErrorReply::new(
            ErrorCode::UnexpectedKind,
            format!("the first frame must be Setup, not {:?}", frame.kind),
        ));
    }
    let setup = Setup::decode(&frame.payload)
        .map_err(|error| ErrorReply::new(ErrorCode::BadPayload, error.to_string()))?;
    if setup.scheme != evaluator.scheme() {
        return Err(ErrorReply::new(
            ErrorCode::SchemeMismatch,
            format!(
                "this compute server runs {}, the trusted party {}",
                evaluator.scheme(),
                setup.scheme
            ),
        ));
    }
    evaluator
        .open_session(&setup.context)
        .map_err(|error| codec_reply(&error))
}

fn evaluate<E: BatchEvaluator>(evaluator: &E, session: &E::Session, frame: &Frame) -> Answer {
    if frame.kind != Kind::Evaluate {
        return Answer::Refuse(ErrorReply::new(
            ErrorCode::UnexpectedKind,
            format!(
                "a compute server answers Evaluate frames, not {:?}",
                frame.kind
            ),
        ));
    }
    match evaluator.evaluate(session, &frame.payload) {
        Ok(payload) => Answer::Reply(Kind::Evaluated, payload),
        Err(error) => Answer::Refuse(codec_reply(&error)),
    }
}

fn codec_reply(error: &CodecError) -> ErrorReply {
    let code = match error {
        CodecError::Payload(_) | CodecError::Context { .. } => ErrorCode::BadPayload,
        _ => ErrorCode::Evaluation,
    };
    ErrorReply::new(code, error.to_string())
}
