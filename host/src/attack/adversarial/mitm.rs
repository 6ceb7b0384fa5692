//! The man in the middle of paper attack 1: a [`FrameHook`] for the service's relay that
//! rewrites the images of every `Query` frame between client and trusted party into
//! adversarial examples, and forwards everything else untouched.
//!
//! The relay never sees a true label, so every attack moves away from a predicted class
//! (ART's `y=None`): the plaintext twin's for the white-box attacks, the service's own for
//! the Square Attack, which queries the real (encrypted) service upstream and needs no
//! weights.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::cw::{cw, CwConfig};
use super::fgsm::{fgsm, FgsmConfig};
use super::pgd::{pgd, PgdConfig};
use super::square::{square, SquareConfig};
use super::{attack_labels, Labels};
use crate::model::Model;
use crate::oracle::{predicted_class, Image, Oracle, PlainOracle};
use crate::service::auth::{NONCE_BYTES, TAG_BYTES};
use crate::service::frame::Kind;
use crate::service::message::{self, ErrorCode, ErrorReply};
use crate::service::relay::FrameHook;
use crate::service::TcpClient;

/// Bytes before the images of an authenticated query: its nonce and tag.
const AUTH_HEADER: usize = NONCE_BYTES + TAG_BYTES;

/// The attack a relay applies, with its settings and what it needs.
pub enum Rewrite {
    /// FGSM with the twin's gradients.
    Fgsm(Model, FgsmConfig),
    /// BIM or PGD with the twin's gradients.
    Pgd(Model, PgdConfig),
    /// C&W L2 with the twin's gradients.
    Cw(Model, CwConfig),
    /// The Square Attack, querying the service upstream through this client.
    Square(Mutex<TcpClient>, SquareConfig),
}

/// A relay hook that rewrites images. Counts the images it rewrote.
pub struct ManInTheMiddle {
    rewrite: Rewrite,
    max_images: usize,
    rewritten: Arc<AtomicU64>,
}

impl ManInTheMiddle {
    /// A hook applying `rewrite` to queries of at most `max_images` images.
    pub fn new(rewrite: Rewrite, max_images: usize) -> Self {
        Self {
            rewrite,
            max_images,
            rewritten: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A shared count of the images rewritten so far.
    pub fn rewritten(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.rewritten)
    }

    fn attack(&self, images: &[Image]) -> Result<Vec<Image>, String> {
        let white_box = |model: &Model| -> Result<(PlainOracle<Model>, Vec<u8>), String> {
            let mut twin = PlainOracle::new(model.clone());
            let labels = attack_labels(&mut twin, images, &[], Labels::Predicted)
                .map_err(|e| e.to_string())?;
            Ok((twin, labels))
        };
        match &self.rewrite {
            Rewrite::Fgsm(model, config) => {
                let (mut twin, labels) = white_box(model)?;
                fgsm(&mut twin, images, &labels, config).map_err(|e| e.to_string())
            }
            Rewrite::Pgd(model, config) => {
                let (mut twin, labels) = white_box(model)?;
                pgd(&mut twin, images, &labels, config).map_err(|e| e.to_string())
            }
            Rewrite::Cw(model, config) => {
                let (mut twin, labels) = white_box(model)?;
                Ok(cw(&mut twin, images, &labels, config)
                    .map_err(|e| e.to_string())?
                    .images)
            }
            Rewrite::Square(client, config) => {
                let mut client = client.lock().unwrap_or_else(PoisonError::into_inner);
                let labels: Vec<u8> = client
                    .query(images)
                    .map_err(|e| e.to_string())?
                    .iter()
                    .map(|z| predicted_class(z) as u8)
                    .collect();
                Ok(square(&mut *client, images, &labels, config)
                    .map_err(|e| e.to_string())?
                    .images)
            }
        }
    }
}

impl FrameHook for ManInTheMiddle {
    fn request(&self, kind: Kind, payload: Vec<u8>) -> Result<Vec<u8>, ErrorReply> {
        if kind != Kind::Query {
            return Ok(payload);
        }
        // An authenticated query carries a nonce and a tag before its images
        // (`service::auth`); the relay knows the format and keeps them, as a real
        // attacker would, so the trusted party's tag check is what must stop it.
        let (header, images) = match message::decode_images(&payload, self.max_images) {
            Ok(images) => (&payload[..0], images),
            Err(plain) => payload
                .get(AUTH_HEADER..)
                .and_then(|rest| message::decode_images(rest, self.max_images).ok())
                .map(|images| (&payload[..AUTH_HEADER], images))
                .ok_or_else(|| ErrorReply::new(ErrorCode::BadPayload, plain.to_string()))?,
        };
        let adversarial = self
            .attack(&images)
            .map_err(|e| ErrorReply::new(ErrorCode::Unavailable, e))?;
        self.rewritten
            .fetch_add(adversarial.len() as u64, Ordering::Relaxed);
        let mut out = header.to_vec();
        out.extend(
            message::encode_images(&adversarial)
                .map_err(|e| ErrorReply::new(ErrorCode::BadPayload, e.to_string()))?,
        );
        Ok(out)
    }
}
