//! A frame relay: listens like a trusted party, forwards every request to the real one
//! (upstream) and every reply back, after handing each request to a [`FrameHook`].
//!
//! The hook sees the request's kind and payload and returns the payload to forward, or an
//! error to answer the client with. An identity hook gives a transparent proxy; attack 1's
//! man in the middle is a hook that rewrites the images of `Query` frames. Upstream
//! connections are made per client connection, lazily, with the requesting side the client
//! itself uses; every reply comes back with the client's own request id.

use std::net::TcpListener;
use std::sync::Arc;

use super::frame::{Frame, Kind};
use super::message::{ErrorCode, ErrorReply};
use super::net::{self, Answer, NetError, Peer, PeerConfig, ServerConfig, ServerHandle};

/// What a relay does to each request before forwarding it.
pub trait FrameHook: Send + Sync + 'static {
    /// The payload to forward for a request of `kind` with `payload`, or the error the
    /// client gets instead (nothing is forwarded then).
    fn request(&self, kind: Kind, payload: Vec<u8>) -> Result<Vec<u8>, ErrorReply>;
}

/// Forwards every request unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct Transparent;

impl FrameHook for Transparent {
    fn request(&self, _: Kind, payload: Vec<u8>) -> Result<Vec<u8>, ErrorReply> {
        Ok(payload)
    }
}

/// The reply kind a request of `kind` expects, if it is a request a client sends.
fn reply_kind(kind: Kind) -> Option<Kind> {
    match kind {
        Kind::Query => Some(Kind::Scores),
        Kind::Setup => Some(Kind::SetupOk),
        Kind::Evaluate => Some(Kind::Evaluated),
        _ => None,
    }
}

/// A running relay. Dropping it closes every connection and joins every thread.
pub struct Relay {
    server: ServerHandle,
}

impl Relay {
    /// Relays the connections `listener` accepts (within `config`'s limits) to `upstream`
    /// (`host:port`), through `hook`; `peer` bounds the upstream side.
    ///
    /// # Errors
    /// When the accepting thread cannot start.
    pub fn start(
        listener: TcpListener,
        upstream: String,
        config: ServerConfig,
        peer: PeerConfig,
        hook: impl FrameHook,
    ) -> std::io::Result<Self> {
        let hook = Arc::new(hook);
        let server = net::spawn_server(listener, config, "relay", move |stream, config| {
            let mut upstream = Peer::new(upstream.clone(), peer.clone(), None);
            net::serve_connection(stream, config, "relay", |frame: Frame| {
                let Some(reply) = reply_kind(frame.kind) else {
                    return Answer::Refuse(ErrorReply::new(
                        ErrorCode::UnexpectedKind,
                        format!("a relay forwards no {:?} frame", frame.kind),
                    ));
                };
                let payload = match hook.request(frame.kind, frame.payload) {
                    Ok(payload) => payload,
                    Err(error) => return Answer::Refuse(error),
                };
                match upstream.request(frame.kind, &payload, reply) {
                    Ok(answer) => Answer::Reply(reply, answer),
                    Err(NetError::Remote(error)) => Answer::Refuse(error),
                    Err(error) => Answer::Refuse(ErrorReply::new(
                        ErrorCode::Unavailable,
                        format!("upstream: {error}"),
                    )),
                }
            });
        })?;
        Ok(Self { server })
    }

    /// The address the relay listens on.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// Relays until the process is stopped.
    pub fn wait(self) {
        self.server.wait();
    }
}
