//! The compute server: holds the model (inside a [`BatchEvaluator`]) and the evaluation
//! context each trusted party sends, and evaluates batches it cannot read.
//!
//! Per connection: the first frame must be `Setup` (scheme and evaluation context), answered
//! `SetupOk`; then every `Evaluate` frame is answered `Evaluated` or `Error`.

use std::net::{SocketAddr, TcpListener};

use super::codec::{BatchEvaluator, CodecError};
use super::frame::{Frame, Kind};
use super::message::{ErrorCode, ErrorReply, Setup};
use super::net::{self, Answer, ServerConfig, ServerHandle};
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

fn serve<E: BatchEvaluator>(stream: &mut Conn, config: &ServerConfig, evaluator: &E) {
    let mut session: Option<E::Session> = None;
    net::serve_connection(stream, config, "compute", |frame| {
        if let Some(session) = &session {
            return evaluate(evaluator, session, &frame);
        }
        match open_session(evaluator, &frame) {
            Ok(opened) => {
                session = Some(opened);
                Answer::Reply(Kind::SetupOk, Vec::new())
            }
            Err(reply) => Answer::RefuseAndClose(reply),
        }
    });
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
