//! TCP plumbing shared by the three roles: timed frame reads, a listening server with a
//! bounded number of connections, and the requesting side of a connection.

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

use super::frame::{write_frame, Frame, FrameError, Kind, ReadError};
use super::message::{ErrorCode, ErrorReply, PayloadError};
use super::tls::{Conn, TlsClient, TlsServer};

/// Limits of a listening server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Connections served at once; one more is answered `Overloaded` and closed.
    pub max_connections: usize,
    /// Largest frame payload accepted, in bytes; a larger announced length is answered
    /// `BadFrame` and the connection closed, before anything is read or allocated.
    pub max_payload: u32,
    /// How long a connection may stay silent between frames before it is closed.
    pub idle_timeout: Duration,
    /// How long a frame may take to arrive once its first byte has.
    pub frame_timeout: Duration,
    /// How long a reply write may block.
    pub write_timeout: Duration,
    /// How long a compute server waits for a connection's `Setup` frame, both for its first
    /// byte and from there to its last (short: a connection that has not set up is not
    /// yet anybody's).
    pub setup_timeout: Duration,
}

impl ServerConfig {
    /// Limits for a trusted party: 64 connections, 4 MiB payloads (1337 images),
    /// 60 s idle, 10 s per frame, 10 s per write.
    pub fn trusted() -> Self {
        Self {
            max_connections: 64,
            max_payload: 4 << 20,
            idle_timeout: Duration::from_secs(60),
            frame_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            setup_timeout: Duration::from_secs(10),
        }
    }

    /// Limits for a compute server: 16 connections, 1 GiB payloads (encrypted batches
    /// are large; each state allows less, see [`super::ComputeServer`]), 600 s idle, 120 s
    /// per frame, 120 s per write, 30 s to set up.
    pub fn compute() -> Self {
        Self {
            max_connections: 16,
            max_payload: 1 << 30,
            idle_timeout: Duration::from_secs(600),
            frame_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(120),
            setup_timeout: Duration::from_secs(30),
        }
    }
}

/// Reads frames from a stream with two clocks: `idle` bounds the wait for the first byte
/// of a frame, `frame` bounds the time from that byte to the last one (so a peer that
/// trickles bytes cannot hold a connection forever). Both clocks are deadlines, not
/// per-read timeouts: under TLS, records that hold no frame bytes (or a record trickled
/// byte by byte) do not restart the idle clock.
pub(crate) struct TimedReader<'a> {
    stream: &'a mut Conn,
    idle: Duration,
    frame: Duration,
    /// When the first byte of the frame must have come (set at the first read).
    idle_deadline: Option<Instant>,
    /// When the frame must be complete (set at its first byte).
    deadline: Option<Instant>,
}

impl<'a> TimedReader<'a> {
    pub(crate) fn new(stream: &'a mut Conn, idle: Duration, frame: Duration) -> Self {
        Self {
            stream,
            idle,
            frame,
            idle_deadline: None,
            deadline: None,
        }
    }

    /// Reads the next frame, its payload bounded by `limit(kind)`.
    pub(crate) fn next_frame(
        &mut self,
        limit: impl FnOnce(Kind) -> u32,
    ) -> Result<Frame, ReadError> {
        self.idle_deadline = None;
        self.deadline = None;
        Frame::read_limited(self, limit)
    }
}

/// How long a client whose request could not be sent looks for a refusal left by the server.
const REFUSAL_WAIT: Duration = Duration::from_millis(100);

/// The shortest timeout handed to the socket (zero would mean "no timeout").
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

impl Read for TimedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let now = Instant::now();
            let until = match self.deadline {
                Some(deadline) => deadline,
                None => *self.idle_deadline.get_or_insert(now + self.idle),
            };
            let left = until.saturating_duration_since(now);
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.stream
                .tcp()
                .set_read_timeout(Some(left.max(MIN_TIMEOUT)))?;
            if let Some(n) = self.stream.read_some(buf)? {
                if n > 0 && self.deadline.is_none() {
                    self.deadline = Some(Instant::now() + self.frame);
                }
                return Ok(n);
            }
        }
    }
}

/// How a server answers one frame.
pub(crate) enum Answer {
    /// Reply with this kind and payload; keep the connection.
    Reply(Kind, Vec<u8>),
    /// Reply with an error; keep the connection.
    Refuse(ErrorReply),
    /// Reply with an error, then close the connection.
    RefuseAndClose(ErrorReply),
}

/// How a server treats the frames of one connection, state by state.
pub(crate) trait Handler {
    /// The largest payload a frame of `kind` may have now; a header announcing more is
    /// refused before a payload byte is read. By default, `config.max_payload`.
    fn max_payload(&self, kind: Kind, config: &ServerConfig) -> u32 {
        let _ = kind;
        config.max_payload
    }

    /// The idle and frame clocks for the next frame. By default, the config's.
    fn timeouts(&self, config: &ServerConfig) -> (Duration, Duration) {
        (config.idle_timeout, config.frame_timeout)
    }

    /// What the peer is told when a header does not decode or announces more than
    /// [`Handler::max_payload`]. By default, the error itself.
    fn refusal(&self, error: &FrameError) -> String {
        error.to_string()
    }

    /// The answer to one frame.
    fn answer(&mut self, frame: Frame) -> Answer;
}

/// A closure is a handler with the config's limits in every state.
impl<F: FnMut(Frame) -> Answer> Handler for F {
    fn answer(&mut self, frame: Frame) -> Answer {
        self(frame)
    }
}

/// Serves frames on one connection until it closes, fails or `handler` closes it.
/// A header that does not decode, or announces more than `handler` allows, is answered
/// `BadFrame` (request id 0) and closes the connection: the stream cannot be
/// resynchronised.
pub(crate) fn serve_connection(
    stream: &mut Conn,
    config: &ServerConfig,
    role: &str,
    mut handler: impl Handler,
) {
    let peer = peer_name(stream.tcp());
    loop {
        let (idle, frame_timeout) = handler.timeouts(config);
        let mut reader = TimedReader::new(stream, idle, frame_timeout);
        let frame = match reader.next_frame(|kind| handler.max_payload(kind, config)) {
            Ok(frame) => frame,
            Err(ReadError::Closed) => return,
            Err(ReadError::Frame(error)) => {
                eprintln!("[{role}] {peer}: {error}; closing");
                let reply = ErrorReply::new(ErrorCode::BadFrame, handler.refusal(&error));
                send_error(stream, 0, &reply);
                return;
            }
            Err(error) => {
                eprintln!("[{role}] {peer}: {error}; closing");
                return;
            }
        };
        let id = frame.request_id;
        let (reply, close) = match handler.answer(frame) {
            Answer::Reply(kind, payload) => (
                Frame {
                    kind,
                    request_id: id,
                    payload,
                },
                false,
            ),
            Answer::Refuse(reply) => (error_frame(id, &reply), false),
            Answer::RefuseAndClose(reply) => (error_frame(id, &reply), true),
        };
        if let Err(error) = reply.write_to(stream) {
            eprintln!("[{role}] {peer}: reply not sent ({error}); closing");
            return;
        }
        if close {
            return;
        }
    }
}

fn error_frame(request_id: u64, reply: &ErrorReply) -> Frame {
    Frame {
        kind: Kind::Error,
        request_id,
        payload: reply.encode(),
    }
}

/// Best effort: the connection is being dropped anyway.
fn send_error(stream: &mut impl io::Write, request_id: u64, reply: &ErrorReply) {
    let _ = error_frame(request_id, reply).write_to(stream);
}

/// The peer's address, for log lines.
fn peer_name(stream: &TcpStream) -> String {
    stream
        .peer_addr()
        .map_or_else(|_| "unknown peer".to_owned(), |a| a.to_string())
}

struct Connections {
    next_id: u64,
    open: HashMap<u64, TcpStream>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    stop: AtomicBool,
    connections: Mutex<Connections>,
}

impl Shared {
    fn connections(&self) -> MutexGuard<'_, Connections> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A listening server: one thread accepts, one thread per connection serves.
/// Dropping it (or [`ServerHandle::stop`]) closes every connection and joins every thread.
pub struct ServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

/// Starts serving `listener`; `handle` runs on its own thread for each connection, after
/// the TLS handshake when `tls` is given (a connection whose handshake fails, or takes
/// longer than `config.frame_timeout`, is logged and closed).
pub(crate) fn spawn_server<H>(
    listener: TcpListener,
    config: ServerConfig,
    tls: Option<TlsServer>,
    role: &'static str,
    handle: H,
) -> io::Result<ServerHandle>
where
    H: Fn(&mut Conn, &ServerConfig) + Send + Sync + 'static,
{
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        connections: Mutex::new(Connections {
            next_id: 0,
            open: HashMap::new(),
            threads: Vec::new(),
        }),
    });
    let state = Arc::clone(&shared);
    let acceptor = thread::Builder::new()
        .name(format!("{role}-accept"))
        .spawn(move || {
            let handle = Arc::new(handle);
            accept_loop(&listener, &config, tls.as_ref(), role, &state, &handle);
        })?;
    Ok(ServerHandle {
        addr,
        shared,
        acceptor: Some(acceptor),
    })
}

fn accept_loop<H>(
    listener: &TcpListener,
    config: &ServerConfig,
    tls: Option<&TlsServer>,
    role: &'static str,
    shared: &Arc<Shared>,
    handle: &Arc<H>,
) where
    H: Fn(&mut Conn, &ServerConfig) + Send + Sync + 'static,
{
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                eprintln!("[{role}] accept failed: {error}");
                // Out of descriptors or similar: give the connections a moment to close.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if let Err(error) = configure(&stream, config) {
            eprintln!("[{role}] cannot configure a connection: {error}");
            continue;
        }
        let mut connections = shared.connections();
        connections.threads.retain(|t| !t.is_finished());
        if connections.open.len() >= config.max_connections {
            drop(connections);
            let reply = ErrorReply::new(
                ErrorCode::Overloaded,
                format!("at the limit of {} connections", config.max_connections),
            );
            send_error(&mut &stream, 0, &reply);
            continue;
        }
        let Ok(registered) = stream.try_clone() else {
            continue;
        };
        let id = connections.next_id;
        connections.next_id += 1;
        connections.open.insert(id, registered);
        let (state, handle, config) = (Arc::clone(shared), Arc::clone(handle), config.clone());
        let tls = tls.cloned();
        let spawned = thread::Builder::new()
            .name(format!("{role}-conn-{id}"))
            .spawn(move || {
                let _slot = Slot { shared: state, id };
                let peer = peer_name(&stream);
                let conn = match tls {
                    None => Ok(Conn::Tcp(stream)),
                    Some(tls) => tls.accept(stream, config.frame_timeout),
                };
                match conn {
                    Ok(mut conn) => {
                        handle(&mut conn, &config);
                        conn.close();
                    }
                    Err(error) => eprintln!("[{role}] {peer}: TLS handshake failed: {error}"),
                }
            });
        match spawned {
            Ok(thread) => connections.threads.push(thread),
            Err(error) => {
                eprintln!("[{role}] cannot spawn a connection thread: {error}");
                connections.open.remove(&id);
            }
        }
    }
}

/// A connection's place among the open ones: freed when its thread ends, however it ends
/// (a panicking handler included), so the server never runs out of slots.
struct Slot {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.connections().open.remove(&self.id);
    }
}

fn configure(stream: &TcpStream, config: &ServerConfig) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(config.write_timeout.max(MIN_TIMEOUT)))
}

impl ServerHandle {
    /// The address the server listens on (with the actual port if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the accepting thread ends (in practice: until the process is stopped).
    pub fn wait(mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }

    /// Stops accepting, closes every connection and joins every thread.
    pub fn stop(self) {
        drop(self);
    }

    fn shutdown(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accepting thread with a connection of our own.
        let _ = TcpStream::connect_timeout(&wake_addr(self.addr), Duration::from_secs(1));
        let _ = acceptor.join();
        let threads = {
            let mut connections = self.shared.connections();
            for stream in connections.open.values() {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
            std::mem::take(&mut connections.threads)
        };
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Where to connect to reach a listener bound to `addr` (an unspecified address is
/// reached on loopback).
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// Limits of the requesting side of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long to wait for the first byte of a reply (the server's work happens here).
    pub reply_timeout: Duration,
    /// How long a reply may take to arrive once its first byte has.
    pub frame_timeout: Duration,
    /// How long a request write may block.
    pub write_timeout: Duration,
    /// Largest reply payload accepted, in bytes.
    pub max_payload: u32,
}

/// Why a request over TCP failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The address did not resolve.
    #[error("cannot resolve {addr}: {error}")]
    Resolve {
        /// The address.
        addr: String,
        /// Why.
        error: io::Error,
    },
    /// No address of the peer accepted a connection.
    #[error("cannot connect to {addr}: {error}")]
    Connect {
        /// The address.
        addr: String,
        /// The last error.
        error: io::Error,
    },
    /// The request could not be written.
    #[error("sending failed: {0}")]
    Send(io::Error),
    /// No valid reply arrived.
    #[error("no reply: {0}")]
    Receive(ReadError),
    /// The peer answered with an error.
    #[error("refused by the peer: {0}")]
    Remote(ErrorReply),
    /// The reply's payload did not decode.
    #[error("malformed {kind:?} reply: {error}")]
    Payload {
        /// The reply's kind.
        kind: Kind,
        /// Why.
        error: PayloadError,
    },
    /// The reply has another kind than expected.
    #[error("expected a {expected:?} reply, got {found:?}")]
    UnexpectedReply {
        /// The kind expected.
        expected: Kind,
        /// The kind received.
        found: Kind,
    },
    /// The reply answers another request.
    #[error("reply to request {found}, expected {expected}")]
    RequestIdMismatch {
        /// The id sent.
        expected: u64,
        /// The id received.
        found: u64,
    },
    /// The TLS handshake failed (the peer's certificate was refused, or it refused ours).
    #[error("TLS handshake with {addr} failed: {error}")]
    Handshake {
        /// The address.
        addr: String,
        /// Why.
        error: io::Error,
    },
    /// The reply's authentication tag does not match its request ([`super::auth`]).
    #[error("reply not authentic: {0}")]
    Unauthenticated(super::auth::AuthError),
    /// The reply holds another number of results than images were sent.
    #[error("{found} results for {expected} images")]
    CountMismatch {
        /// Images sent.
        expected: usize,
        /// Results received.
        found: usize,
    },
}

impl From<ReadError> for NetError {
    fn from(error: ReadError) -> Self {
        Self::Receive(error)
    }
}

impl NetError {
    /// Whether the connection broke (so a request on a connection that had been idle may
    /// be retried once on a new one).
    fn is_transport(&self) -> bool {
        matches!(
            self,
            NetError::Send(_)
                | NetError::Receive(
                    ReadError::Closed | ReadError::Truncated { .. } | ReadError::Io(_)
                )
        )
    }

    /// Whether the connection can carry another request after this error.
    fn keeps_connection(&self) -> bool {
        matches!(
            self,
            NetError::Payload { .. } | NetError::CountMismatch { .. }
        ) || matches!(self, NetError::Remote(reply) if !matches!(reply.code, ErrorCode::BadFrame | ErrorCode::Overloaded))
    }
}

/// The requesting side of a connection: connects lazily, sends an optional greeting on
/// every new connection, and retries a request once when a connection that had already
/// served breaks (the server may have closed it for idleness).
pub(crate) struct Peer {
    addr: String,
    config: PeerConfig,
    greeting: Option<(Kind, Vec<u8>, Kind)>,
    tls: Option<(TlsClient, ServerName<'static>)>,
    conn: Option<Conn>,
    next_id: u64,
}

impl Peer {
    /// A peer at `addr`; `greeting` is a (kind, payload, expected reply kind) exchanged
    /// first on every new connection.
    pub(crate) fn new(
        addr: String,
        config: PeerConfig,
        greeting: Option<(Kind, Vec<u8>, Kind)>,
    ) -> Self {
        Self {
            addr,
            config,
            greeting,
            tls: None,
            conn: None,
            next_id: 1,
        }
    }

    /// Speaks TLS to the peer from the next connection on, expecting a certificate for
    /// `name`.
    pub(crate) fn set_tls(&mut self, tls: TlsClient, name: ServerName<'static>) {
        self.tls = Some((tls, name));
        self.conn = None;
    }

    /// Connects now (with the greeting) unless connected.
    pub(crate) fn ensure_connected(&mut self) -> Result<(), NetError> {
        if self.conn.is_none() {
            self.conn = Some(self.connect()?);
        }
        Ok(())
    }

    /// Sends a request and returns the payload of its reply, which must be of kind `reply`.
    pub(crate) fn request(
        &mut self,
        kind: Kind,
        payload: &[u8],
        reply: Kind,
    ) -> Result<Vec<u8>, NetError> {
        let reused = self.conn.is_some();
        match self.request_once(kind, payload, reply) {
            Err(error) if reused && error.is_transport() => self.request_once(kind, payload, reply),
            outcome => outcome,
        }
    }

    fn request_once(
        &mut self,
        kind: Kind,
        payload: &[u8],
        reply: Kind,
    ) -> Result<Vec<u8>, NetError> {
        let mut stream = match self.conn.take() {
            Some(stream) => stream,
            None => self.connect()?,
        };
        let outcome = self.exchange(&mut stream, kind, payload, reply);
        if outcome
            .as_ref()
            .map_or_else(NetError::keeps_connection, |_| true)
        {
            self.conn = Some(stream);
        }
        outcome
    }

    fn connect(&mut self) -> Result<Conn, NetError> {
        let addrs = self
            .addr
            .to_socket_addrs()
            .map_err(|error| NetError::Resolve {
                addr: self.addr.clone(),
                error,
            })?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.config.connect_timeout.max(MIN_TIMEOUT)) {
                Ok(stream) => {
                    let configured = stream.set_nodelay(true).and_then(|()| {
                        stream.set_write_timeout(Some(self.config.write_timeout.max(MIN_TIMEOUT)))
                    });
                    if let Err(error) = configured {
                        last = error;
                        continue;
                    }
                    let mut conn = match &self.tls {
                        None => Conn::Tcp(stream),
                        Some((tls, name)) => tls
                            .connect(name, stream, self.config.connect_timeout)
                            .map_err(|error| NetError::Handshake {
                                addr: self.addr.clone(),
                                error,
                            })?,
                    };
                    if let Some((kind, payload, reply)) = self.greeting.take() {
                        let greeted = self.exchange(&mut conn, kind, &payload, reply);
                        self.greeting = Some((kind, payload, reply));
                        greeted?;
                    }
                    return Ok(conn);
                }
                Err(error) => last = error,
            }
        }
        Err(NetError::Connect {
            addr: self.addr.clone(),
            error: last,
        })
    }

    fn exchange(
        &mut self,
        stream: &mut Conn,
        kind: Kind,
        payload: &[u8],
        reply: Kind,
    ) -> Result<Vec<u8>, NetError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        if let Err(error) = write_frame(stream, kind, id, payload) {
            // A server that refused the connection (for example at its connection limit)
            // may have left an `Error` frame to read before closing.
            let wait = self.config.frame_timeout.min(REFUSAL_WAIT);
            let mut reader = TimedReader::new(stream, wait, self.config.frame_timeout);
            return Err(match reader.next_frame(|_| self.config.max_payload) {
                Ok(answer) if answer.kind == Kind::Error => {
                    match ErrorReply::decode(&answer.payload) {
                        Ok(reply) => NetError::Remote(reply),
                        Err(_) => NetError::Send(error),
                    }
                }
                _ => NetError::Send(error),
            });
        }
        let mut reader =
            TimedReader::new(stream, self.config.reply_timeout, self.config.frame_timeout);
        let answer = reader.next_frame(|_| self.config.max_payload)?;
        if answer.kind == Kind::Error {
            let error = ErrorReply::decode(&answer.payload).map_err(|error| NetError::Payload {
                kind: Kind::Error,
                error,
            })?;
            return Err(NetError::Remote(error));
        }
        if answer.request_id != id {
            return Err(NetError::RequestIdMismatch {
                expected: id,
                found: answer.request_id,
            });
        }
        if answer.kind != reply {
            return Err(NetError::UnexpectedReply {
                expected: reply,
                found: answer.kind,
            });
        }
        Ok(answer.payload)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// A handler that panics on the first connection must not keep its slot: with one slot,
    /// the next connection is served (before the guard, it was answered `Overloaded`
    /// forever).
    #[test]
    fn a_panicking_handler_frees_its_slot() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("loopback port");
        let config = ServerConfig {
            max_connections: 1,
            ..ServerConfig::trusted()
        };
        let served = Arc::new(AtomicBool::new(false));
        let first = Arc::new(AtomicBool::new(true));
        let (seen, panics) = (Arc::clone(&served), Arc::clone(&first));
        let server = spawn_server(listener, config, None, "test", move |conn, _| {
            assert!(
                !panics.swap(false, Ordering::SeqCst),
                "the first connection's handler panics"
            );
            seen.store(true, Ordering::SeqCst);
            let _ = conn.write_all(b"ok");
        })
        .expect("server starts");
        let addr = server.local_addr();
        // The first connection: its handler panics.
        let mut stream = TcpStream::connect(addr).expect("connects");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout set");
        let mut byte = [0u8; 1];
        let _ = stream.read(&mut byte);
        // Later connections: served once the first thread is gone. Without the guard each
        // is answered `Overloaded` and closed.
        let mut reply = Vec::new();
        for _ in 0..100 {
            let mut stream = TcpStream::connect(addr).expect("connects");
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout set");
            reply.clear();
            let _ = stream.read_to_end(&mut reply);
            if reply == b"ok" {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(reply, b"ok", "the one slot was freed after the panic");
        assert!(served.load(Ordering::SeqCst));
    }
}
