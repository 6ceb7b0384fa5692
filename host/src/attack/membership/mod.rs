//! Attack 3: membership inference by a semi-honest insider (paper §4.3, §5.4, Tables 6–7).
//!
//! A party that helped train the model knows its architecture and hyper-parameters and
//! holds data like the training data. It asks whether given records were in the training
//! set. The target answers through the service (raw scores, no softmax); the insider's
//! shadow models are its own plaintext models.
//!
//! * [`split`]: the member and non-member records, by index, balanced, and the insider's
//!   records;
//! * [`signals`]: each target's scores on those records, collected once through its
//!   [`crate::oracle::Oracle`]; every attack then runs offline;
//! * [`shokri`]: Shokri et al.'s shadow models and per-class attack models (the paper's
//!   attack);
//! * [`lira`]: LiRA online and offline, and the loss-threshold attack;
//! * [`metrics`]: accuracy, recall and precision with Wilson intervals; ROC, AUC, TPR at a
//!   fixed FPR;
//! * [`experiment`]: all of it over several targets, with the paper's cells ([`paper`]);
//! * [`sweep`]: the overfitting sweep, targets trained longer and on less data, the
//!   attacks' advantage against the train–test gap.
//!
//! Every attack runs on raw scores and on their softmax: the softmax is a function of the
//! raw scores that the insider can compute itself, so its absence from the service's output
//! cannot hide more than the raw scores already show.

pub mod experiment;
pub mod lira;
pub mod metrics;
pub mod paper;
pub mod shokri;
pub mod signals;
pub mod split;
pub mod sweep;

/// What an attack reads from a score vector.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Features {
    /// The raw scores the service returns.
    Raw,
    /// Their softmax, computed by the attacker.
    Softmax,
}

impl Features {
    /// Both, raw first.
    pub const ALL: [Features; 2] = [Features::Raw, Features::Softmax];

    /// The name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Features::Raw => "raw",
            Features::Softmax => "softmax",
        }
    }
}

/// A seed for item `index` of kind `domain`, derived from `seed` by SplitMix64 (Steele,
/// Lea, Flood 2014) applied to the three words in turn, so that every model of an
/// experiment has its own seed and depends on nothing else.
pub fn derive_seed(seed: u64, domain: u64, index: u64) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    mix(mix(mix(seed) ^ domain) ^ index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_seeds_differ() {
        let a = derive_seed(1, 2, 3);
        assert_eq!(a, derive_seed(1, 2, 3));
        assert_ne!(a, derive_seed(1, 2, 4));
        assert_ne!(a, derive_seed(1, 3, 3));
        assert_ne!(a, derive_seed(2, 2, 3));
    }
}
