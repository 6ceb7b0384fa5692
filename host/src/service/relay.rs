//! A frame relay: listens like a trusted party, forwards every request to the real one
//! (upstream) and every reply back, after handing each request to a [`FrameHook`].
//!
//! The hook sees the request's kind and payload and returns the payload to forward, or an
//! error to answer the client with. An identity hook gives a transparent proxy; attack 1's
//! man in the middle is a hook that rewrites the images of `Query` frames. Upstream
//! connections are made per client connection, lazily, with the requesting side the client
//! itself uses; every reply comes back with the client's own request id.
//!
//! With [`RelayTls`], the relay speaks TLS on either side with certificates of its own: it
//! terminates the client's TLS and opens its own to the trusted party. Against a service
//! that runs mutual TLS ([`super::tls`]) this works only for a relay holding certificates
//! the two sides' CA signed; any other relay gets a failed handshake on both sides.

use std::net::TcpListener;
use std::sync::Arc;

use super::frame::{Frame, Kind};
use super::message::{ErrorCode, ErrorReply};
use super::net::{self, Answer, NetError, Peer, PeerConfig, ServerConfig, ServerHandle};
use super::tls::{server_name, TlsClient, TlsError, TlsServer};

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

/// The TLS a relay speaks on each side (none by default).
#[derive(Clone, Debug, Default)]
pub struct RelayTls {
    /// Towards clients: the certificate the relay presents, and the CA it asks clients'
    /// certificates to chain to.
    pub listen: Option<TlsServer>,
    /// Towards the trusted party: the certificate the relay presents, and the CA the
    /// trusted party's certificate must chain to.
    pub upstream: Option<TlsClient>,
}

/// Why a relay did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The upstream address names no TLS server.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The accepting thread could not start.
    #[error("cannot start the relay: {0}")]
    Io(#[from] std::io::Error),
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
        Self::start_secured(listener, upstream, config, peer, hook, RelayTls::default()).map_err(
            |error| match error {
                RelayError::Io(error) => error,
                other => std::io::Error::other(other),
            },
        )
    }

    /// As [`Relay::start`], speaking TLS as `tls` says on each side.
    ///
    /// # Errors
    /// An upstream address with no host to check a certificate against; a thread that
    /// cannot start.
    pub fn start_secured(
        listener: TcpListener,
        upstream: String,
        config: ServerConfig,
        peer: PeerConfig,
        hook: impl FrameHook,
        tls: RelayTls,
    ) -> Result<Self, RelayError> {
        let hook = Arc::new(hook);
        let upstream_tls = match tls.upstream {
            Some(client) => Some((client, server_name(&upstream)?)),
            None => None,
        };
        let server = net::spawn_server(
            listener,
            config,
            tls.listen,
            "relay",
            move |stream, config| {
                let mut upstream = Peer::new(upstream.clone(), peer.clone(), None);
                if let Some((client, name)) = &upstream_tls {
                    upstream.set_tls(client.clone(), name.clone());
                }
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
            },
        )?;
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
