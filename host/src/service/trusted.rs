//! The trusted party: collects the images of many clients into batches of
//! [`BatchCodec::slots`] images, encrypts each batch, has the compute server evaluate it
//! through a [`ComputeLink`], decrypts it and answers every client with its own slots.
//!
//! A batch closes when it is full or when [`BatchConfig::window`] has passed since its
//! first image arrived, whichever comes first. A query with more images than fit spreads
//! over consecutive batches; images are batched in arrival order.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::TcpListener;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::auth::{open_query, seal_scores, LinkKey, ReplayGuard};
use super::codec::{BatchCodec, CodecError};
use super::frame::{Frame, Kind};
use super::message::{self, ErrorCode, ErrorReply, Setup, IMAGE_BYTES};
use super::net::{self, Answer, NetError, Peer, PeerConfig, ServerConfig, ServerHandle};
use super::tls::TlsServer;
use crate::oracle::{Image, Scores};

/// How the trusted party forms batches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// The longest a batch stays open waiting for more images.
    pub window: Duration,
    /// Queries waiting to be batched before submitters block.
    pub queue: usize,
}

impl Default for BatchConfig {
    /// A 20 ms window and a queue of 256 queries.
    fn default() -> Self {
        Self {
            window: Duration::from_millis(20),
            queue: 256,
        }
    }
}

/// The trusted party's connection to the compute server.
pub trait ComputeLink: Send {
    /// Has the compute server evaluate one batch payload and returns its answer.
    fn evaluate(&mut self, payload: &[u8]) -> Result<Vec<u8>, LinkError>;
}

/// Why the compute server did not evaluate a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// Over TCP: the request failed or was refused.
    #[error(transparent)]
    Net(#[from] NetError),
    /// In process: the evaluator failed.
    #[error("evaluation failed: {0}")]
    Evaluation(CodecError),
    /// In process: the compute thread has stopped.
    #[error("the compute server has stopped")]
    Stopped,
}

/// Why one batch failed; every query with an image in it gets this error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchFailure {
    /// The codec could not encrypt the batch.
    #[error("encrypting the batch: {0}")]
    Encrypt(CodecError),
    /// The compute server did not evaluate it.
    #[error("compute server: {0}")]
    Compute(LinkError),
    /// The codec could not decrypt the evaluated batch.
    #[error("decrypting the batch: {0}")]
    Decrypt(CodecError),
}

/// Why a query to the service failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The trusted party has stopped.
    #[error("the service has stopped")]
    Stopped,
    /// A batch holding some of the query's images failed.
    #[error("batch failed: {0}")]
    Batch(Arc<BatchFailure>),
}

type Reply = Result<Vec<Scores>, ServiceError>;

struct Job {
    images: Vec<Image>,
    reply: SyncSender<Reply>,
}

/// Hands queries to a running trusted party; cheap to clone, usable from any thread.
#[derive(Clone, Debug)]
pub struct Submitter {
    jobs: SyncSender<Job>,
}

impl Submitter {
    /// Submits images and blocks until their scores (in order) or an error come back.
    /// An empty query answers an empty vector at once.
    pub fn submit(&self, images: Vec<Image>) -> Reply {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = mpsc::sync_channel(1);
        self.jobs
            .send(Job { images, reply })
            .map_err(|_| ServiceError::Stopped)?;
        answer.recv().map_err(|_| ServiceError::Stopped)?
    }
}

/// A running trusted party: a batching thread that owns the codec and the compute link.
/// Dropping it lets the queued queries finish, then joins the thread.
pub struct TrustedParty {
    // Field order is drop order: the queue closes, then the thread is joined.
    submitter: Submitter,
    _thread: JoinOnDrop,
}

impl TrustedParty {
    /// Starts the batching thread.
    pub fn start<C, L>(codec: C, link: L, config: &BatchConfig) -> std::io::Result<Self>
    where
        C: BatchCodec + 'static,
        L: ComputeLink + 'static,
    {
        let (jobs, queue) = mpsc::sync_channel(config.queue);
        let window = config.window;
        let thread = thread::Builder::new()
            .name("trusted-batcher".to_owned())
            .spawn(move || Batcher::new(codec, link, window).run(&queue))?;
        Ok(Self {
            submitter: Submitter { jobs },
            _thread: JoinOnDrop(Some(thread)),
        })
    }

    /// A handle to submit queries with.
    pub fn submitter(&self) -> Submitter {
        self.submitter.clone()
    }
}

/// Joins a thread when dropped.
pub(crate) struct JoinOnDrop(pub(crate) Option<JoinHandle<()>>);

impl Drop for JoinOnDrop {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

/// An image waiting for a slot.
struct Pending {
    job: u64,
    index: usize,
    image: Image,
}

/// A query some of whose images are not answered yet.
struct OpenJob {
    scores: Vec<Scores>,
    answered: usize,
    reply: SyncSender<Reply>,
}

struct Batcher<C, L> {
    codec: C,
    link: L,
    window: Duration,
    slots: usize,
    next_job: u64,
    open: HashMap<u64, OpenJob>,
    waiting: VecDeque<Pending>,
}

impl<C: BatchCodec, L: ComputeLink> Batcher<C, L> {
    fn new(codec: C, link: L, window: Duration) -> Self {
        let slots = codec.slots().max(1);
        Self {
            codec,
            link,
            window,
            slots,
            next_job: 0,
            open: HashMap::new(),
            waiting: VecDeque::new(),
        }
    }

    fn run(mut self, queue: &Receiver<Job>) {
        let mut closing = false;
        loop {
            if self.waiting.is_empty() {
                match queue.recv() {
                    Ok(job) => self.admit(job),
                    Err(_) => return,
                }
            }
            let deadline = Instant::now() + self.window;
            while self.waiting.len() < self.slots && !closing {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match queue.recv_timeout(left) {
                    Ok(job) => self.admit(job),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => closing = true,
                }
            }
            let take = self.waiting.len().min(self.slots);
            let batch: Vec<Pending> = self.waiting.drain(..take).collect();
            self.process(batch);
        }
    }

    fn admit(&mut self, job: Job) {
        let id = self.next_job;
        self.next_job += 1;
        let count = job.images.len();
        self.waiting.extend(
            job.images
                .into_iter()
                .enumerate()
                .map(|(index, image)| Pending {
                    job: id,
                    index,
                    image,
                }),
        );
        self.open.insert(
            id,
            OpenJob {
                scores: vec![[0.0; crate::oracle::CLASSES]; count],
                answered: 0,
                reply: job.reply,
            },
        );
    }

    fn process(&mut self, batch: Vec<Pending>) {
        let (places, images): (Vec<(u64, usize)>, Vec<Image>) = batch
            .into_iter()
            .map(|p| ((p.job, p.index), p.image))
            .unzip();
        match self.evaluate(&images) {
            Ok(scores) => {
                for ((job, index), scores) in places.into_iter().zip(scores) {
                    self.answer(job, index, scores);
                }
            }
            Err(failure) => {
                let failure = Arc::new(failure);
                let failed: HashSet<u64> = places.iter().map(|(job, _)| *job).collect();
                self.waiting.retain(|p| !failed.contains(&p.job));
                for job in failed {
                    if let Some(open) = self.open.remove(&job) {
                        // The client may have gone; nothing to do then.
                        let _ = open
                            .reply
                            .send(Err(ServiceError::Batch(Arc::clone(&failure))));
                    }
                }
            }
        }
    }

    fn evaluate(&mut self, images: &[Image]) -> Result<Vec<Scores>, BatchFailure> {
        let encrypted = self
            .codec
            .encrypt_batch(images)
            .map_err(BatchFailure::Encrypt)?;
        let evaluated = self
            .link
            .evaluate(&encrypted)
            .map_err(BatchFailure::Compute)?;
        let scores = self
            .codec
            .decrypt_batch(&evaluated, images.len())
            .map_err(BatchFailure::Decrypt)?;
        if scores.len() != images.len() {
            return Err(BatchFailure::Decrypt(CodecError::CountMismatch {
                expected: images.len(),
                found: scores.len(),
            }));
        }
        Ok(scores)
    }

    fn answer(&mut self, job: u64, index: usize, scores: Scores) {
        let Some(open) = self.open.get_mut(&job) else {
            return;
        };
        if let Some(slot) = open.scores.get_mut(index) {
            *slot = scores;
            open.answered += 1;
        }
        if open.answered == open.scores.len() {
            if let Some(done) = self.open.remove(&job) {
                // The client may have gone; nothing to do then.
                let _ = done.reply.send(Ok(done.scores));
            }
        }
    }
}

/// The compute server over TCP, as seen by the trusted party: a connection that opens with
/// a `Setup` frame (scheme and evaluation context) and then carries `Evaluate` requests.
pub struct TcpComputeLink {
    peer: Peer,
}

impl TcpComputeLink {
    /// Connects to the compute server at `addr` and sends the codec's setup; fails if the
    /// server is unreachable or refuses it (for example, another scheme).
    pub fn connect(
        addr: &str,
        codec: &dyn BatchCodec,
        config: PeerConfig,
    ) -> Result<Self, SetupError> {
        let setup = Setup {
            scheme: codec.scheme(),
            context: codec.evaluation_context()?,
        };
        let greeting = Some((Kind::Setup, setup.encode(), Kind::SetupOk));
        let mut peer = Peer::new(addr.to_owned(), config, greeting);
        peer.ensure_connected()?;
        Ok(Self { peer })
    }
}

impl ComputeLink for TcpComputeLink {
    fn evaluate(&mut self, payload: &[u8]) -> Result<Vec<u8>, LinkError> {
        Ok(self
            .peer
            .request(Kind::Evaluate, payload, Kind::Evaluated)?)
    }
}

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The codec and the evaluator speak different schemes.
    #[error("the trusted party uses {trusted}, the compute server {compute}")]
    SchemeMismatch {
        /// The codec's scheme.
        trusted: super::Scheme,
        /// The evaluator's scheme.
        compute: super::Scheme,
    },
    /// The codec's context was refused or could not be made.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The compute server could not be reached or refused the setup.
    #[error("compute server: {0}")]
    Net(NetError),
    /// A thread or socket could not be created.
    #[error("cannot start: {0}")]
    Io(std::io::Error),
}

impl From<NetError> for SetupError {
    fn from(error: NetError) -> Self {
        Self::Net(error)
    }
}

impl From<std::io::Error> for SetupError {
    fn from(error: std::io::Error) -> Self {
        Self::Io(error)
    }
}

impl From<CodecError> for LinkError {
    fn from(error: CodecError) -> Self {
        Self::Evaluation(error)
    }
}

/// How a trusted party protects its link with clients: an HMAC key ([`super::auth`]),
/// mutual TLS ([`super::tls`]), both, or neither (the default).
#[derive(Clone, Debug, Default)]
pub struct ClientLink {
    /// Every `Query` must carry a valid tag under this key and a fresh nonce; every
    /// `Scores` reply carries a tag.
    pub key: Option<LinkKey>,
    /// Every client connection must complete a mutual TLS handshake first.
    pub tls: Option<TlsServer>,
}

/// A trusted party serving clients over TCP.
pub struct TrustedServer {
    // Field order is drop order: connections first, then the batching thread.
    server: ServerHandle,
    _party: TrustedParty,
}

impl TrustedServer {
    /// Serves `listener`, batching with `codec` and evaluating on the compute server at
    /// `compute` (connected, and set up, before this returns).
    pub fn start<C: BatchCodec + 'static>(
        listener: TcpListener,
        codec: C,
        compute: &str,
        link: PeerConfig,
        batch: &BatchConfig,
        server: ServerConfig,
    ) -> Result<Self, SetupError> {
        Self::start_with(listener, codec, compute, link, batch, server, None)
    }

    /// As [`TrustedServer::start`]; with `auth`, every `Query` must carry a valid tag under
    /// that key and a fresh nonce, and every `Scores` reply carries a tag
    /// ([`super::auth`]). Unauthenticated, tampered or replayed requests are refused with
    /// [`ErrorCode::Unauthenticated`].
    ///
    /// # Errors
    /// As [`TrustedServer::start`].
    pub fn start_with<C: BatchCodec + 'static>(
        listener: TcpListener,
        codec: C,
        compute: &str,
        link: PeerConfig,
        batch: &BatchConfig,
        server: ServerConfig,
        auth: Option<LinkKey>,
    ) -> Result<Self, SetupError> {
        let clients = ClientLink {
            key: auth,
            tls: None,
        };
        Self::start_secured(listener, codec, compute, link, batch, server, clients)
    }

    /// As [`TrustedServer::start`], with the client link protected as `clients` says:
    /// with a key, unauthenticated, tampered or replayed requests are refused with
    /// [`ErrorCode::Unauthenticated`]; with TLS, a client whose certificate the CA did not
    /// sign fails its handshake and is never served.
    ///
    /// # Errors
    /// As [`TrustedServer::start`].
    pub fn start_secured<C: BatchCodec + 'static>(
        listener: TcpListener,
        codec: C,
        compute: &str,
        link: PeerConfig,
        batch: &BatchConfig,
        server: ServerConfig,
        clients: ClientLink,
    ) -> Result<Self, SetupError> {
        let ClientLink { key: auth, tls } = clients;
        let link = TcpComputeLink::connect(compute, &codec, link)?;
        let party = TrustedParty::start(codec, link, batch)?;
        let submitter = party.submitter();
        let max_images = server.max_payload as usize / IMAGE_BYTES;
        let replays = ReplayGuard::default();
        let server = net::spawn_server(listener, server, tls, "trusted", move |stream, config| {
            net::serve_connection(stream, config, "trusted", |frame: Frame| {
                let Some(key) = &auth else {
                    return answer_query(&submitter, frame.kind, &frame.payload, max_images);
                };
                if frame.kind != Kind::Query {
                    return answer_query(&submitter, frame.kind, &frame.payload, max_images);
                }
                match open_query(key, &frame.payload, &replays) {
                    Ok((nonce, images)) => {
                        match answer_query(&submitter, frame.kind, images, max_images) {
                            Answer::Reply(kind, scores) => {
                                Answer::Reply(kind, seal_scores(key, &nonce, &scores))
                            }
                            refused => refused,
                        }
                    }
                    Err(error) => Answer::Refuse(ErrorReply::new(
                        ErrorCode::Unauthenticated,
                        error.to_string(),
                    )),
                }
            });
        })?;
        Ok(Self {
            server,
            _party: party,
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// Serves until the process is stopped.
    pub fn wait(self) {
        let Self { server, _party } = self;
        server.wait();
    }
}

fn answer_query(submitter: &Submitter, kind: Kind, payload: &[u8], max_images: usize) -> Answer {
    if kind != Kind::Query {
        return Answer::Refuse(ErrorReply::new(
            ErrorCode::UnexpectedKind,
            format!("a trusted party answers Query frames, not {kind:?}"),
        ));
    }
    let images = match message::decode_images(payload, max_images) {
        Ok(images) => images,
        Err(error) => {
            return Answer::Refuse(ErrorReply::new(ErrorCode::BadPayload, error.to_string()))
        }
    };
    let refused = |code, error: &dyn std::fmt::Display| {
        Answer::Refuse(ErrorReply::new(code, error.to_string()))
    };
    match submitter.submit(images) {
        Ok(scores) => match message::encode_scores(&scores) {
            Ok(payload) => Answer::Reply(Kind::Scores, payload),
            Err(error) => refused(ErrorCode::Evaluation, &error),
        },
        Err(error @ ServiceError::Stopped) => refused(ErrorCode::Unavailable, &error),
        Err(ServiceError::Batch(failure)) => {
            let code = match *failure {
                BatchFailure::Compute(_) => ErrorCode::Unavailable,
                BatchFailure::Encrypt(_) | BatchFailure::Decrypt(_) => ErrorCode::Evaluation,
            };
            refused(code, &failure)
        }
    }
}
