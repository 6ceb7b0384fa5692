//! The client over TCP: an [`Oracle`] whose queries go to a trusted party.

use std::time::Duration;

use rand_core::RngCore;

use super::auth::{open_scores, seal_query, LinkKey, NONCE_BYTES};
use super::frame::Kind;
use super::message;
use super::net::{NetError, Peer, PeerConfig};
use super::tls::{server_name, TlsClient, TlsError};
use crate::oracle::{Image, Oracle, Scores};

/// Limits of a [`TcpClient`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Timeouts and the largest reply accepted.
    pub peer: PeerConfig,
    /// Images per `Query` frame; a larger query is sent as several frames.
    pub images_per_frame: usize,
}

impl Default for ClientConfig {
    /// 10 s to connect, 60 s for a reply to start, 10 s for it to arrive, 10 s per write,
    /// replies up to 1 MiB, 256 images per frame (about 800 KB, under the trusted party's
    /// default 4 MiB limit).
    fn default() -> Self {
        Self {
            peer: PeerConfig {
                connect_timeout: Duration::from_secs(10),
                reply_timeout: Duration::from_secs(60),
                frame_timeout: Duration::from_secs(10),
                write_timeout: Duration::from_secs(10),
                max_payload: 1 << 20,
            },
            images_per_frame: 256,
        }
    }
}

/// A client of a trusted party over TCP. Connects on first use and reconnects when the
/// connection is lost.
pub struct TcpClient {
    addr: String,
    peer: Peer,
    images_per_frame: usize,
    queries: u64,
    auth: Option<LinkKey>,
}

impl TcpClient {
    /// A client of the trusted party at `addr` (connected lazily).
    pub fn new(addr: &str, config: ClientConfig) -> Self {
        let fits = (config.peer.max_payload as usize / message::SCORES_BYTES).max(1);
        Self {
            addr: addr.to_owned(),
            peer: Peer::new(addr.to_owned(), config.peer, None),
            images_per_frame: config.images_per_frame.clamp(1, fits),
            queries: 0,
            auth: None,
        }
    }

    /// Connects now, to report an unreachable server before the first query.
    pub fn connect(addr: &str, config: ClientConfig) -> Result<Self, NetError> {
        let mut client = Self::new(addr, config);
        client.peer.ensure_connected()?;
        Ok(client)
    }

    /// Images sent per frame (the configured value, bounded so that the reply fits).
    pub fn images_per_frame(&self) -> usize {
        self.images_per_frame
    }

    /// Speaks mutual TLS to the trusted party ([`super::tls`]) from the next connection on:
    /// presents `tls`'s certificate and accepts only a server certificate for the host of
    /// the address, signed by `tls`'s CA.
    ///
    /// # Errors
    /// [`TlsError::ServerName`] when the address has no host a certificate can name.
    pub fn with_tls(mut self, tls: &TlsClient) -> Result<Self, TlsError> {
        let name = server_name(&self.addr)?;
        self.peer.set_tls(tls.clone(), name);
        Ok(self)
    }

    /// Connects now unless connected (with the TLS handshake, if any), to report an
    /// unreachable or refusing server before the first query.
    ///
    /// # Errors
    /// The connection or handshake failure.
    pub fn ensure_connected(&mut self) -> Result<(), NetError> {
        self.peer.ensure_connected()
    }

    /// Authenticates every query and checks every reply under `key` ([`super::auth`]),
    /// for a trusted party started with the same key.
    #[must_use]
    pub fn with_key(mut self, key: LinkKey) -> Self {
        self.auth = Some(key);
        self
    }

    fn query_frame(&mut self, images: &[Image]) -> Result<Vec<Scores>, NetError> {
        let payload = message::encode_images(images).map_err(|error| NetError::Payload {
            kind: Kind::Query,
            error,
        })?;
        let reply = match &self.auth {
            None => self.peer.request(Kind::Query, &payload, Kind::Scores)?,
            Some(key) => {
                let mut nonce = [0u8; NONCE_BYTES];
                rand_core::OsRng.fill_bytes(&mut nonce);
                let sealed = seal_query(key, &nonce, &payload);
                let reply = self.peer.request(Kind::Query, &sealed, Kind::Scores)?;
                open_scores(key, &nonce, &reply)
                    .map_err(NetError::Unauthenticated)?
                    .to_vec()
            }
        };
        let scores =
            message::decode_scores(&reply, images.len()).map_err(|error| NetError::Payload {
                kind: Kind::Scores,
                error,
            })?;
        if scores.len() != images.len() {
            return Err(NetError::CountMismatch {
                expected: images.len(),
                found: scores.len(),
            });
        }
        Ok(scores)
    }
}

impl Oracle for TcpClient {
    type Error = NetError;

    fn query(&mut self, images: &[Image]) -> Result<Vec<Scores>, NetError> {
        self.queries = self.queries.saturating_add(images.len() as u64);
        let mut scores = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.images_per_frame) {
            scores.extend(self.query_frame(chunk)?);
        }
        Ok(scores)
    }

    fn queries(&self) -> u64 {
        self.queries
    }
}
