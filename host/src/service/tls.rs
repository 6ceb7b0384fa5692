//! Mutual TLS on the client ↔ trusted-party link, with `rustls` (TLS 1.3 only, the `ring`
//! provider), shared by both sides and by the relay.
//!
//! Each side holds a certificate chain and its private key, and trusts one certificate
//! authority (CA): the trusted party accepts only clients whose certificate that CA signed,
//! and a client accepts only a trusted party whose certificate that CA signed for the host
//! it dials. A relay on the link without such a certificate (attack 1's man in the middle)
//! can neither read nor rewrite a request: the client's handshake with it fails, and so does
//! its own handshake with the trusted party. The client gets an error, never a class.
//!
//! TLS runs under the service's frames and limits: every frame is still bounded by its
//! receiver's maximum before it is read, and the handshake is bounded in time (a peer that
//! trickles handshake bytes is dropped at the deadline). The HMAC link of [`super::auth`]
//! stays available for deployments that terminate TLS before the trusted party.
//!
//! [`DevCertificates`] makes a throw-away CA with a server and a client certificate, for tests
//! and `heist certs`; it is not a way to run a deployment's PKI.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

/// The largest PEM file read, in bytes (checked before reading it).
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// The shortest timeout handed to a socket (zero would mean "no timeout").
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Why a TLS configuration could not be made, or a handshake failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("{path}: {error}")]
    File {
        /// The file.
        path: String,
        /// Why.
        error: String,
    },
    /// A PEM file is larger than [`MAX_PEM_BYTES`].
    #[error("{path}: {len} bytes, more than the {MAX_PEM_BYTES} a PEM file may have")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        len: u64,
    },
    /// A PEM file does not hold what it should.
    #[error("{what}: {error}")]
    Pem {
        /// The file (or `"certificate"`, `"key"`, `"CA"` for bytes in memory).
        what: String,
        /// Why.
        error: String,
    },
    /// rustls refused the certificates or keys (for example, a key that does not match the
    /// certificate, or a CA that is not a valid trust anchor).
    #[error("TLS configuration: {0}")]
    Config(String),
    /// The address names no host a certificate can be checked against.
    #[error("no TLS server name in address {0:?}")]
    ServerName(String),
    /// Certificates could not be generated.
    #[error("generating certificates: {0}")]
    Generate(String),
}

/// The three PEM files of one side of the link: its certificate chain, its private key,
/// and the CA it trusts for the other side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// This side's certificate chain (PEM, leaf first).
    pub cert: PathBuf,
    /// This side's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The CA certificate(s) the other side's certificate must chain to (PEM).
    pub ca: PathBuf,
}

/// One side's certificate chain and key, and the CA it trusts.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: RootCertStore,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("certificates", &self.chain.len())
            .field("trusted", &self.roots.len())
            .finish_non_exhaustive()
    }
}

/// Reads a file of at most [`MAX_PEM_BYTES`] bytes.
fn read_bounded(path: &Path) -> Result<Vec<u8>, TlsError> {
    let fail = |error: io::Error| TlsError::File {
        path: path.display().to_string(),
        error: error.to_string(),
    };
    let file = std::fs::File::open(path).map_err(fail)?;
    let len = file.metadata().map_err(fail)?.len();
    if len > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge {
            path: path.display().to_string(),
            len,
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError::TooLarge {
            path: path.display().to_string(),
            len: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// Every certificate in a PEM text; at least one.
fn certificates(what: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Pem {
            what: what.to_owned(),
            error: error.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: what.to_owned(),
            error: "no certificate".to_owned(),
        });
    }
    Ok(certs)
}

/// The provider every configuration uses: `ring`, TLS 1.3 cipher suites.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_error(error: impl std::fmt::Display) -> TlsError {
    TlsError::Config(error.to_string())
}

impl Identity {
    /// An identity from PEM text: `cert` (chain, leaf first), `key`, and `ca` (one or more
    /// trusted CA certificates).
    ///
    /// # Errors
    /// [`TlsError::Pem`] naming the part that holds no (or a malformed) certificate or key;
    /// [`TlsError::Config`] for a CA certificate that is not a usable trust anchor.
    pub fn from_pem(cert: &[u8], key: &[u8], ca: &[u8]) -> Result<Self, TlsError> {
        Self::parse(("certificate", cert), ("key", key), ("CA", ca))
    }

    /// An identity from three PEM files (each at most [`MAX_PEM_BYTES`]).
    ///
    /// # Errors
    /// An unreadable, oversized or malformed file, named in the error.
    pub fn from_files(files: &TlsFiles) -> Result<Self, TlsError> {
        let name = |p: &Path| p.display().to_string();
        let (cert, key, ca) = (
            read_bounded(&files.cert)?,
            zeroize::Zeroizing::new(read_bounded(&files.key)?),
            read_bounded(&files.ca)?,
        );
        Self::parse(
            (&name(&files.cert), &cert),
            (&name(&files.key), &key),
            (&name(&files.ca), &ca),
        )
    }

    fn parse(
        (cert_name, cert): (&str, &[u8]),
        (key_name, key): (&str, &[u8]),
        (ca_name, ca): (&str, &[u8]),
    ) -> Result<Self, TlsError> {
        let chain = certificates(cert_name, cert)?;
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|error| TlsError::Pem {
            what: key_name.to_owned(),
            error: error.to_string(),
        })?;
        let mut roots = RootCertStore::empty();
        for anchor in certificates(ca_name, ca)? {
            roots.add(anchor).map_err(|error| TlsError::Pem {
                what: ca_name.to_owned(),
                error: error.to_string(),
            })?;
        }
        Ok(Self { chain, key, roots })
    }

    /// The trusted party's side: presents this identity's certificate and requires every
    /// client to present one signed by the CA.
    ///
    /// # Errors
    /// [`TlsError::Config`] when rustls refuses the certificate, key or CA.
    pub fn server(&self) -> Result<TlsServer, TlsError> {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(self.roots.clone()), provider())
                .build()
                .map_err(config_error)?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config_error)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(config_error)?;
        // No session resumption: every connection authenticates its client anew.
        config.send_tls13_tickets = 0;
        Ok(TlsServer(Arc::new(config)))
    }

    /// The client's side: presents this identity's certificate and accepts only a server
    /// whose certificate the CA signed for the host dialled.
    ///
    /// # Errors
    /// [`TlsError::Config`] when rustls refuses the certificate or key.
    pub fn client(&self) -> Result<TlsClient, TlsError> {
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config_error)?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(config_error)?;
        Ok(TlsClient(Arc::new(config)))
    }
}

/// The accepting side of mutual TLS (a trusted party, or a relay facing clients).
#[derive(Clone, Debug)]
pub struct TlsServer(Arc<rustls::ServerConfig>);

/// The connecting side of mutual TLS (a client, or a relay facing the trusted party).
#[derive(Clone, Debug)]
pub struct TlsClient(Arc<rustls::ClientConfig>);

impl TlsServer {
    /// The rustls configuration, for callers that drive connections themselves (the link
    /// bench does, in memory).
    pub fn rustls_config(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.0)
    }

    /// Runs the server side of the handshake on an accepted connection, within `timeout`.
    pub(crate) fn accept(&self, tcp: TcpStream, timeout: Duration) -> io::Result<Conn> {
        let tls = rustls::ServerConnection::new(Arc::clone(&self.0)).map_err(io::Error::other)?;
        TlsStream::establish(rustls::Connection::Server(tls), tcp, timeout)
    }
}

impl TlsClient {
    /// The rustls configuration, for callers that drive connections themselves.
    pub fn rustls_config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.0)
    }

    /// Runs the client side of the handshake with the server `name`, within `timeout`.
    pub(crate) fn connect(
        &self,
        name: &ServerName<'static>,
        tcp: TcpStream,
        timeout: Duration,
    ) -> io::Result<Conn> {
        let tls = rustls::ClientConnection::new(Arc::clone(&self.0), name.clone())
            .map_err(io::Error::other)?;
        TlsStream::establish(rustls::Connection::Client(tls), tcp, timeout)
    }
}

/// The name a server's certificate must carry to be accepted for `addr` (`host:port`): an
/// IP address or a DNS name.
///
/// # Errors
/// [`TlsError::ServerName`] when `addr` has no valid host part.
pub fn server_name(addr: &str) -> Result<ServerName<'static>, TlsError> {
    let host = match addr.parse::<std::net::SocketAddr>() {
        Ok(socket) => return Ok(ServerName::IpAddress(socket.ip().into())),
        Err(_) => addr.rsplit_once(':').map_or(addr, |(host, _)| host),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|_| TlsError::ServerName(addr.to_owned()))
}

/// A connection of the service: plain TCP, or TLS over TCP.
pub(crate) enum Conn {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP, handshake done.
    Tls(Box<TlsStream>),
}

/// A TLS connection and its socket.
pub(crate) struct TlsStream {
    tls: rustls::Connection,
    tcp: TcpStream,
}

impl TlsStream {
    /// Runs the handshake until it completes or `timeout` passes. Each socket read waits at
    /// most for the time left, so a peer that trickles bytes cannot stretch it.
    fn establish(
        mut tls: rustls::Connection,
        mut tcp: TcpStream,
        timeout: Duration,
    ) -> io::Result<Conn> {
        let deadline = Instant::now() + timeout;
        while tls.is_handshaking() {
            while tls.wants_write() {
                tls.write_tls(&mut tcp)?;
            }
            if !tls.is_handshaking() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake timed out",
                ));
            }
            tcp.set_read_timeout(Some(left.max(MIN_TIMEOUT)))?;
            if tls.read_tls(&mut tcp)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed during the TLS handshake",
                ));
            }
            if let Err(error) = tls.process_new_packets() {
                // Tell the peer why (best effort: the connection is dropped anyway).
                let _ = tls.write_tls(&mut tcp);
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
        }
        let mut stream = Self { tls, tcp };
        stream.flush_tls()?;
        Ok(Conn::Tls(Box::new(stream)))
    }

    fn flush_tls(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            self.tls.write_tls(&mut self.tcp)?;
        }
        Ok(())
    }

    /// Plaintext already decrypted, if any: `Some(0)` once the peer has closed.
    fn buffered(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.tls.reader().read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(0)),
            Err(e) => Err(e),
        }
    }

    /// At most one socket read; see [`Conn::read_some`].
    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if let Some(n) = self.buffered(buf)? {
            return Ok(Some(n));
        }
        let got = self.tls.read_tls(&mut self.tcp)?;
        if let Err(error) = self.tls.process_new_packets() {
            let _ = self.tls.write_tls(&mut self.tcp);
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
        self.flush_tls()?;
        match self.buffered(buf)? {
            Some(n) => Ok(Some(n)),
            None if got == 0 => Ok(Some(0)),
            None => Ok(None),
        }
    }
}

impl Conn {
    /// The socket under the connection (for timeouts and shutdown).
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Tcp(tcp) => tcp,
            Conn::Tls(tls) => &tls.tcp,
        }
    }

    /// Reads with at most one read of the socket: `Some(n)` bytes of the stream (0: it has
    /// ended), or `None` when bytes arrived but none of them is plaintext yet (a TLS record
    /// still incomplete), so that the caller can check its deadline before reading again.
    pub(crate) fn read_some(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self {
            Conn::Tcp(tcp) => tcp.read(buf).map(Some),
            Conn::Tls(tls) => tls.read_some(buf),
        }
    }

    /// Says goodbye (TLS close_notify, best effort) and shuts the socket down.
    pub(crate) fn close(&mut self) {
        if let Conn::Tls(tls) = self {
            tls.tls.send_close_notify();
            let _ = tls.flush_tls();
        }
        let _ = self.tcp().shutdown(std::net::Shutdown::Both);
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(tcp) => tcp.write(buf),
            Conn::Tls(tls) => {
                let n = tls.tls.writer().write(buf)?;
                tls.flush_tls()?;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Tcp(tcp) => tcp.flush(),
            Conn::Tls(tls) => {
                tls.tls.writer().flush()?;
                tls.flush_tls()
            }
        }
    }
}

/// A throw-away certificate authority with one server and one client certificate, as PEM
/// text. For tests and `heist certs` only: the CA's key is discarded once both are signed.
#[derive(Clone)]
pub struct DevCertificates {
    /// The CA certificate both sides trust.
    pub ca: String,
    /// The trusted party's certificate, for `localhost`, `127.0.0.1`, `::1` and the extra
    /// names given.
    pub server_cert: String,
    /// Its private key (PKCS#8).
    pub server_key: String,
    /// The client's certificate.
    pub client_cert: String,
    /// Its private key (PKCS#8).
    pub client_key: String,
}

impl std::fmt::Debug for DevCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevCertificates(..)")
    }
}

/// The files [`DevCertificates::write`] makes, in order: CA, server certificate and key,
/// client certificate and key.
pub const DEV_FILES: [&str; 5] = [
    "ca.pem",
    "server.pem",
    "server.key",
    "client.pem",
    "client.key",
];

impl DevCertificates {
    /// A new CA (ECDSA P-256, valid from now for a year, as rcgen makes it) and a server
    /// and a client certificate signed by it. The server certificate names `localhost`,
    /// `127.0.0.1`, `::1` and every entry of `names` (DNS names or IP addresses).
    ///
    /// # Errors
    /// [`TlsError::Generate`] for a name that is not a valid DNS name or IP address.
    pub fn generate(names: &[String]) -> Result<Self, TlsError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        use sha2::Digest;
        let fail = |e: rcgen::Error| TlsError::Generate(e.to_string());
        let ca_key = KeyPair::generate().map_err(fail)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        // Each CA gets its own name (from its key), so that a certificate of another test
        // CA is refused as signed by an unknown issuer.
        let id: String = sha2::Sha256::digest(ca_key.public_key_raw())
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect();
        ca.distinguished_name.push(
            DnType::CommonName,
            format!("heist test CA {id} (testing only)"),
        );
        let ca_cert = ca.self_signed(&ca_key).map_err(fail)?;
        let leaf = |sans: Vec<String>, common: &str, usage| {
            let key = KeyPair::generate().map_err(fail)?;
            let mut params = CertificateParams::new(sans).map_err(fail)?;
            params.distinguished_name.push(DnType::CommonName, common);
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &ca_cert, &ca_key).map_err(fail)?;
            Ok::<_, TlsError>((cert.pem(), key.serialize_pem()))
        };
        let mut sans: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        sans.extend(names.iter().cloned());
        let (server_cert, server_key) = leaf(
            sans,
            "heist trusted party",
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let (client_cert, client_key) = leaf(
            Vec::new(),
            "heist client",
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        Ok(Self {
            ca: ca_cert.pem(),
            server_cert,
            server_key,
            client_cert,
            client_key,
        })
    }

    /// The trusted party's identity.
    ///
    /// # Errors
    /// As [`Identity::from_pem`] (not expected for generated certificates).
    pub fn server_identity(&self) -> Result<Identity, TlsError> {
        Identity::from_pem(
            self.server_cert.as_bytes(),
            self.server_key.as_bytes(),
            self.ca.as_bytes(),
        )
    }

    /// The client's identity.
    ///
    /// # Errors
    /// As [`Identity::from_pem`] (not expected for generated certificates).
    pub fn client_identity(&self) -> Result<Identity, TlsError> {
        Identity::from_pem(
            self.client_cert.as_bytes(),
            self.client_key.as_bytes(),
            self.ca.as_bytes(),
        )
    }

    /// Writes the [`DEV_FILES`] into `dir` (created if missing); the keys are made
    /// readable by their owner only on Unix. Returns the paths written.
    ///
    /// # Errors
    /// Any I/O error, with the path.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, TlsError> {
        let fail = |path: &Path, error: io::Error| TlsError::File {
            path: path.display().to_string(),
            error: error.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
        let contents = [
            &self.ca,
            &self.server_cert,
            &self.server_key,
            &self.client_cert,
            &self.client_key,
        ];
        let mut written = Vec::new();
        for (name, text) in DEV_FILES.iter().zip(contents) {
            let path = dir.join(name);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            if name.ends_with(".key") {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&path).map_err(|e| fail(&path, e))?;
            file.write_all(text.as_bytes())
                .map_err(|e| fail(&path, e))?;
            written.push(path);
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_host_part() {
        assert!(matches!(
            server_name("127.0.0.1:7000"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("[::1]:7000"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("localhost:7000"),
            Ok(ServerName::DnsName(ref n)) if n.as_ref() == "localhost"
        ));
        assert!(matches!(server_name(":7000"), Err(TlsError::ServerName(_))));
    }

    #[test]
    fn malformed_pem_is_refused_with_the_part_named() {
        let dev = DevCertificates::generate(&[]).expect("generated");
        assert!(dev.server_identity().and_then(|i| i.server()).is_ok());
        assert!(dev.client_identity().and_then(|i| i.client()).is_ok());
        let err = Identity::from_pem(b"junk", dev.client_key.as_bytes(), dev.ca.as_bytes())
            .expect_err("no certificate");
        assert!(matches!(err, TlsError::Pem { ref what, .. } if what == "certificate"));
        let err = Identity::from_pem(dev.client_cert.as_bytes(), b"", dev.ca.as_bytes())
            .expect_err("no key");
        assert!(matches!(err, TlsError::Pem { ref what, .. } if what == "key"));
        // A key that does not belong to the certificate.
        let other = DevCertificates::generate(&[]).expect("generated");
        let mixed = Identity::from_pem(
            dev.client_cert.as_bytes(),
            other.client_key.as_bytes(),
            dev.ca.as_bytes(),
        )
        .expect("parses");
        assert!(matches!(mixed.client(), Err(TlsError::Config(_))));
        assert!(matches!(
            DevCertificates::generate(&["caf\u{e9}".to_owned()]),
            Err(TlsError::Generate(_))
        ));
    }
}
