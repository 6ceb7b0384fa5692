//! The three roles in one process, connected by channels: the client handle talks to the
//! trusted party's batching thread, which talks to a compute thread. No sockets, the same
//! codec and evaluator as over TCP.

use std::sync::mpsc::{self, SyncSender};
use std::thread;

use super::codec::{BatchCodec, BatchEvaluator, CodecError};
use super::trusted::{
    BatchConfig, ComputeLink, JoinOnDrop, LinkError, ServiceError, SetupError, Submitter,
    TrustedParty,
};
use crate::oracle::{Image, Oracle, Scores};

type EvaluationReply = Result<Vec<u8>, CodecError>;

/// The trusted party's link to a compute thread.
struct ChannelLink {
    requests: SyncSender<(Vec<u8>, SyncSender<EvaluationReply>)>,
}

impl ComputeLink for ChannelLink {
    fn evaluate(&mut self, payload: &[u8]) -> Result<Vec<u8>, LinkError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests
            .send((payload.to_vec(), reply))
            .map_err(|_| LinkError::Stopped)?;
        Ok(answer.recv().map_err(|_| LinkError::Stopped)??)
    }
}

/// The whole service in this process. Dropping it finishes the queued queries and joins
/// both threads.
pub struct InProcessService {
    // Field order is drop order: the trusted party (and its link) first, then the compute
    // thread, which ends when the link is gone.
    party: TrustedParty,
    _compute: JoinOnDrop,
}

impl InProcessService {
    /// Starts a compute thread running `evaluator` and a trusted party batching with `codec`.
    /// The evaluator's session is opened from the codec's evaluation context, as over TCP.
    pub fn start<C, E>(codec: C, evaluator: E, config: &BatchConfig) -> Result<Self, SetupError>
    where
        C: BatchCodec + 'static,
        E: BatchEvaluator + 'static,
    {
        if codec.scheme() != evaluator.scheme() {
            return Err(SetupError::SchemeMismatch {
                trusted: codec.scheme(),
                compute: evaluator.scheme(),
            });
        }
        let session = evaluator.open_session(&codec.evaluation_context()?)?;
        let (requests, queue) = mpsc::sync_channel::<(Vec<u8>, SyncSender<EvaluationReply>)>(1);
        let compute = thread::Builder::new()
            .name("compute".to_owned())
            .spawn(move || {
                for (payload, reply) in queue {
                    // The batching thread may have gone; nothing to do then.
                    let _ = reply.send(evaluator.evaluate(&session, &payload));
                }
            })?;
        let compute = JoinOnDrop(Some(compute));
        let party = TrustedParty::start(codec, ChannelLink { requests }, config)?;
        Ok(Self {
            party,
            _compute: compute,
        })
    }

    /// A client of the service, with its own query count.
    pub fn client(&self) -> InProcessClient {
        InProcessClient {
            submitter: self.party.submitter(),
            queries: 0,
        }
    }
}

/// A client of an [`InProcessService`]: an [`Oracle`] answered by the service.
#[derive(Debug)]
pub struct InProcessClient {
    submitter: Submitter,
    queries: u64,
}

impl Oracle for InProcessClient {
    type Error = ServiceError;

    fn query(&mut self, images: &[Image]) -> Result<Vec<Scores>, ServiceError> {
        self.queries = self.queries.saturating_add(images.len() as u64);
        self.submitter.submit(images.to_vec())
    }

    fn queries(&self) -> u64 {
        self.queries
    }
}
