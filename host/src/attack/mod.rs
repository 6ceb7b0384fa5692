//! The attacks on the encrypted inference service, one folder per attack. Each takes what
//! its adversary may touch (an [`crate::oracle::Oracle`], the plaintext twin of the model
//! for a white-box attacker, the service's roles), never more; nothing else in the library
//! depends on an attack.

pub mod adversarial;
pub mod key_recovery;
pub mod membership;
pub mod metrics;
pub mod reconstruction;
