//! Which scheme a trusted party and a compute server speak.

use std::fmt;

/// The scheme a codec/evaluator pair speaks; checked when the trusted party connects to the
/// compute server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Scheme {
    /// No encryption: the compute server sees every image (for tests and comparison).
    Plain,
    /// CKKS (approximate arithmetic).
    Ckks,
    /// BFV (exact integer arithmetic).
    Bfv,
}

impl Scheme {
    /// Every scheme, in wire order.
    pub const ALL: [Scheme; 3] = [Scheme::Plain, Scheme::Ckks, Scheme::Bfv];

    /// The byte that names the scheme in a `Setup` frame.
    pub fn id(self) -> u8 {
        match self {
            Scheme::Plain => 0,
            Scheme::Ckks => 1,
            Scheme::Bfv => 2,
        }
    }

    /// The scheme with this id, if any.
    pub fn from_id(id: u8) -> Option<Self> {
        Scheme::ALL.into_iter().find(|scheme| scheme.id() == id)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Plain => "plain",
            Scheme::Ckks => "ckks",
            Scheme::Bfv => "bfv",
        })
    }
}
