//! The three-party inference service of the paper: client → trusted party (holds the
//! secret key, batches and encrypts) → compute server (holds the model and evaluation
//! keys, evaluates) → trusted party (decrypts) → client.
//!
//! The roles run in one process ([`InProcessService`]) or over TCP ([`TrustedServer`],
//! [`ComputeServer`], [`TcpClient`]) with the versioned binary protocol of [`frame`] and
//! [`message`]. The cryptography sits behind [`BatchCodec`] (trusted party) and
//! [`BatchEvaluator`] (compute server), whose payloads the service moves as opaque bytes;
//! [`PlaintextCodec`] and [`PlaintextEvaluator`] are the reference pair, which does **not**
//! encrypt.

pub mod auth;
pub mod bfv;
pub mod ckks;
pub mod client;
pub mod codec;
pub mod compute;
pub mod frame;
pub mod inproc;
pub mod message;
pub mod net;
pub mod relay;
pub mod release;
pub mod scheme;
pub mod tls;
pub mod trusted;

pub use bfv::{bfv_plan, BfvCodec, BfvEvaluator};
pub use ckks::{ckks_plan, CkksCodec, CkksEvaluator, HeBatchError, NoiseEstimate};
pub use client::{ClientConfig, TcpClient};
pub use codec::{
    BatchCodec, BatchEvaluator, CodecError, PlaintextCodec, PlaintextEvaluator, PlaintextSession,
};
pub use compute::ComputeServer;
pub use inproc::{InProcessClient, InProcessService};
pub use net::{NetError, PeerConfig, ServerConfig, ServerHandle};
pub use release::{flooding_sigma, ReleaseError, ReleasePolicy};
pub use scheme::Scheme;
pub use tls::{DevCertificates, Identity, TlsClient, TlsError, TlsFiles, TlsServer};
pub use trusted::{
    BatchConfig, BatchFailure, ClientLink, ComputeLink, LinkError, ServiceError, SetupError,
    Submitter, TcpComputeLink, TrustedParty, TrustedServer,
};

/// What [`decode_untrusted`] made of some bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The frame at the start of the bytes.
    pub frame: frame::Frame,
    /// Bytes the frame used.
    pub used: usize,
    /// The payload decoders that accepted the frame's payload, of `"images"`, `"scores"`,
    /// `"setup"`, `"error"` and `"empty"`, in that order.
    pub accepted_by: Vec<&'static str>,
}

/// Largest payload [`decode_untrusted`] accepts.
pub const UNTRUSTED_MAX_PAYLOAD: u32 = 1 << 20;
/// Largest item count [`decode_untrusted`] accepts in `images` and `scores` payloads.
pub const UNTRUSTED_MAX_ITEMS: usize = 64;

/// Runs every decoder of untrusted bytes on `data`: the frame decoder (payloads up to
/// [`UNTRUSTED_MAX_PAYLOAD`]), then each payload decoder on the frame's payload, whatever
/// its kind. The fuzz target of the frame decoder and the replay of its seed corpus both
/// call this.
pub fn decode_untrusted(data: &[u8]) -> Result<Decoded, frame::FrameError> {
    let (frame, used) = frame::Frame::decode(data, UNTRUSTED_MAX_PAYLOAD)?;
    let payload = frame.payload.as_slice();
    let accepted_by = [
        (
            "images",
            message::decode_images(payload, UNTRUSTED_MAX_ITEMS).is_ok(),
        ),
        (
            "scores",
            message::decode_scores(payload, UNTRUSTED_MAX_ITEMS).is_ok(),
        ),
        ("setup", message::Setup::decode(payload).is_ok()),
        ("error", message::ErrorReply::decode(payload).is_ok()),
        ("empty", message::expect_empty(payload).is_ok()),
    ]
    .into_iter()
    .filter_map(|(name, accepted)| accepted.then_some(name))
    .collect();
    Ok(Decoded {
        frame,
        used,
        accepted_by,
    })
}
