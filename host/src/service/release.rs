//! What the trusted party releases after decrypting: the release policy.
//!
//! CKKS decryption returns `m + e`, and `e` depends on the secret key; a release that
//! keeps `e` lets the compute server and a client recover the key (attack 4,
//! `crate::attack::key_recovery`). The policies:
//!
//! - [`ReleasePolicy::Exact`]: the decoded scores unchanged (then converted to the
//!   service's `f32`).
//! - [`ReleasePolicy::Rounded`]: every score rounded to a multiple of `2^-bits`, as
//!   Lattigo's `DecodePublic` (`schemes/ckks/encoder.go`) does after its FFT.
//! - [`ReleasePolicy::Noised`]: Gaussian noise of a fixed deviation; `noised:0.1` is the
//!   default: with the well-formedness check of every CKKS reply, the cheapest measured
//!   policy under which neither adversary recovers the key within 100 adversarial
//!   batches while 99.9 % of arg-maxes agree with plaintext (`docs/threat-model.md`).
//! - [`ReleasePolicy::Flooded`]: Gaussian noise of standard deviation
//!   `σ = √(12·τ) · 2^(s/2) · B` added to every released score, as OpenFHE's
//!   `NOISE_FLOODING_DECRYPT` (`logstd = s/2 + log2 √(12·τ)` over its noise estimate), with
//!   statistical security `s` (default 30), `τ` adversarial queries (default 1), and `B`
//!   the trusted party's noise estimate (`super::ckks::NoiseEstimate`): measured at setup
//!   on known inputs, as OpenFHE's `EXEC_NOISE_ESTIMATION`, or else the plan's tracked
//!   worst-case bound ([`heist_he::nn::CkksPlan::predicted_error`]); never a figure a
//!   reply carries.
//!
//! Whatever the policy, the CKKS codec refuses a reply off the plan (level, scale, parts,
//! parameters), ill formed (imaginary parts or unused slots beyond
//! [`super::ckks::WELL_FORMED_FACTOR`] times the measured error) or with a score beyond the
//! plan's bound ([`heist_he::nn::CkksPlan::score_bounds`]) before anything is released.
//!
//! The noise is added to the real parts of the slots, the only part released; the slots
//! are `√(N/2)` times a unitary image of the coefficients, so independent Gaussian noise
//! on the slots is independent Gaussian noise on the symmetric part `p(X) + p(X⁻¹)` of
//! the decrypted polynomial, which is all the release determines.

use std::fmt;
use std::str::FromStr;

use rand_core::RngCore;

/// The statistical security parameter `s` of [`ReleasePolicy::Flooded`] by default.
pub const DEFAULT_STATISTICAL_SECURITY: u32 = 30;

/// The largest rounding precision accepted (`f64` has 52 fraction bits).
pub const MAX_ROUNDING_BITS: u32 = 52;

/// What the trusted party releases of each decrypted score.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "policy", rename_all = "lowercase")]
pub enum ReleasePolicy {
    /// The decoded value.
    Exact,
    /// The decoded value rounded to a multiple of `2^-bits`.
    Rounded {
        /// Fraction bits kept.
        bits: u32,
    },
    /// The decoded value plus Gaussian noise of a fixed deviation, chosen from the measured
    /// curve of attack success and agreement rather than from a noise estimate.
    Noised {
        /// The deviation.
        sigma: f64,
    },
    /// The decoded value plus Gaussian noise of [`flooding_sigma`].
    Flooded {
        /// Statistical security `s`.
        security: u32,
        /// Adversarial queries `τ` the noise must cover.
        queries: u64,
    },
}

/// The deviation of the default policy, [`ReleasePolicy::Noised`].
pub const DEFAULT_NOISE_SIGMA: f64 = 0.1;

impl Default for ReleasePolicy {
    /// `noised:0.1` ([`DEFAULT_NOISE_SIGMA`]): with the well-formedness check of every
    /// CKKS reply, the cheapest measured policy under which neither adversary recovers the
    /// key within 100 adversarial batches while 99.9 % of arg-maxes agree with plaintext
    /// (`docs/threat-model.md`). BFV refuses noise and releases exactly, after checking
    /// every reply against an honest evaluation's (`super::bfv::BfvCodec`).
    fn default() -> Self {
        ReleasePolicy::Noised {
            sigma: DEFAULT_NOISE_SIGMA,
        }
    }
}

/// Why a release policy was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// Not one of the policies.
    #[error(
        "unknown release policy {0:?}: expected exact, rounded:BITS, noised:SIGMA or flooded[:S[:TAU]]"
    )]
    Unknown(String),
    /// A number of the policy did not parse or is out of range.
    #[error("release policy {policy:?}: {what}")]
    Bad {
        /// The policy as given.
        policy: String,
        /// What is wrong.
        what: String,
    },
}

impl FromStr for ReleasePolicy {
    type Err = ReleaseError;

    /// `exact`, `rounded:BITS` (`BITS` in `0..=52`), `noised:SIGMA` (`SIGMA > 0`), `flooded`, `flooded:S` or
    /// `flooded:S:TAU` (`S` in `1..=128`, `TAU >= 1`).
    fn from_str(text: &str) -> Result<Self, ReleaseError> {
        let bad = |what: &str| ReleaseError::Bad {
            policy: text.to_owned(),
            what: what.to_owned(),
        };
        let mut parts = text.split(':');
        let policy = match (parts.next(), parts.next(), parts.next()) {
            (Some("exact"), None, None) => ReleasePolicy::Exact,
            (Some("rounded"), Some(bits), None) => {
                let bits: u32 = bits.parse().map_err(|_| bad("BITS is not a number"))?;
                if bits > MAX_ROUNDING_BITS {
                    return Err(bad("BITS must be at most 52"));
                }
                ReleasePolicy::Rounded { bits }
            }
            (Some("noised"), Some(sigma), None) => {
                let sigma: f64 = sigma.parse().map_err(|_| bad("SIGMA is not a number"))?;
                // Written positively so that NaN is refused.
                if !(sigma > 0.0 && sigma.is_finite()) {
                    return Err(bad("SIGMA must be positive and finite"));
                }
                ReleasePolicy::Noised { sigma }
            }
            (Some("flooded"), security, queries) => {
                let security = match security {
                    Some(s) => s.parse().map_err(|_| bad("S is not a number"))?,
                    None => DEFAULT_STATISTICAL_SECURITY,
                };
                let queries = match queries {
                    Some(q) => q.parse().map_err(|_| bad("TAU is not a number"))?,
                    None => 1,
                };
                if !(1..=128).contains(&security) || queries == 0 {
                    return Err(bad("S must be in 1..=128 and TAU at least 1"));
                }
                ReleasePolicy::Flooded { security, queries }
            }
            _ => return Err(ReleaseError::Unknown(text.to_owned())),
        };
        if parts.next().is_some() {
            return Err(ReleaseError::Unknown(text.to_owned()));
        }
        Ok(policy)
    }
}

impl fmt::Display for ReleasePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleasePolicy::Exact => f.write_str("exact"),
            ReleasePolicy::Rounded { bits } => write!(f, "rounded:{bits}"),
            ReleasePolicy::Noised { sigma } => write!(f, "noised:{sigma}"),
            ReleasePolicy::Flooded { security, queries } => {
                write!(f, "flooded:{security}:{queries}")
            }
        }
    }
}

/// OpenFHE's flooding deviation: `√(12·τ) · 2^(s/2) · noise`.
pub fn flooding_sigma(noise: f64, security: u32, queries: u64) -> f64 {
    (12.0 * queries as f64).sqrt() * f64::powf(2.0, f64::from(security) / 2.0) * noise
}

/// A standard normal deviate (Box–Muller on two uniform 53-bit draws).
fn gaussian<R: RngCore + ?Sized>(rng: &mut R) -> f64 {
    let uniform = |rng: &mut R| ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let (u, v) = (uniform(rng), uniform(rng));
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

impl ReleasePolicy {
    /// What the trusted party of `scheme` releases unless told otherwise: CKKS the
    /// [`Default`] (`noised:0.1`, behind the well-formedness check); every other scheme
    /// [`ReleasePolicy::Exact`] (BFV refuses noise, and checks every reply instead).
    pub fn default_for(scheme: super::Scheme) -> Self {
        match scheme {
            super::Scheme::Ckks => Self::default(),
            _ => Self::Exact,
        }
    }

    /// The deviation of the noise this policy adds for scores whose error bound is
    /// `noise` (0 unless flooded).
    pub fn sigma(&self, noise: f64) -> f64 {
        match *self {
            ReleasePolicy::Flooded { security, queries } => {
                flooding_sigma(noise, security, queries)
            }
            ReleasePolicy::Noised { sigma } => sigma,
            _ => 0.0,
        }
    }

    /// Applies the policy to decoded scores in place; `noise` is the plan's bound on the
    /// error of every score.
    pub fn apply<R: RngCore + ?Sized>(&self, rows: &mut [Vec<f64>], noise: f64, rng: &mut R) {
        match *self {
            ReleasePolicy::Exact => {}
            ReleasePolicy::Rounded { bits } => {
                let step = f64::powi(2.0, -(bits as i32));
                for v in rows.iter_mut().flatten() {
                    *v = (*v / step).round() * step;
                }
            }
            ReleasePolicy::Flooded { .. } | ReleasePolicy::Noised { .. } => {
                let sigma = self.sigma(noise);
                for v in rows.iter_mut().flatten() {
                    *v += sigma * gaussian(rng);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn policies_parse_and_bad_ones_are_refused() {
        assert_eq!("exact".parse(), Ok(ReleasePolicy::Exact));
        assert_eq!("rounded:8".parse(), Ok(ReleasePolicy::Rounded { bits: 8 }));
        assert_eq!(
            "flooded".parse(),
            Ok(ReleasePolicy::Flooded {
                security: 30,
                queries: 1
            })
        );
        assert_eq!(
            "flooded:40:16".parse(),
            Ok(ReleasePolicy::Flooded {
                security: 40,
                queries: 16
            })
        );
        assert_eq!(
            "noised:0.25".parse(),
            Ok(ReleasePolicy::Noised { sigma: 0.25 })
        );
        for bad in [
            "rounded:x",
            "rounded:53",
            "flooded:0",
            "flooded:30:0",
            "noised:0",
            "noised:-1",
            "noised:NaN",
            "noised:inf",
        ] {
            assert!(
                matches!(bad.parse::<ReleasePolicy>(), Err(ReleaseError::Bad { .. })),
                "{bad}"
            );
        }
        for unknown in ["", "rounded", "f16", "exact:1", "flooded:30:1:2"] {
            assert!(
                matches!(
                    unknown.parse::<ReleasePolicy>(),
                    Err(ReleaseError::Unknown(_))
                ),
                "{unknown}"
            );
        }
        for text in ["exact", "rounded:12", "flooded:30:4", "noised:0.125"] {
            assert_eq!(
                text.parse::<ReleasePolicy>().map(|p| p.to_string()),
                Ok(text.to_owned())
            );
        }
    }

    #[test]
    fn flooding_sigma_follows_the_openfhe_formula_and_the_noise_has_it() {
        // logstd = s/2 + log2 sqrt(12 tau) over the noise estimate.
        let sigma = flooding_sigma(1e-6, 30, 4);
        let want = f64::powf(2.0, 15.0 + (48.0f64).log2() / 2.0) * 1e-6;
        assert!((sigma - want).abs() <= 1e-12 * want, "{sigma} vs {want}");
        let policy = ReleasePolicy::Flooded {
            security: 30,
            queries: 4,
        };
        assert_eq!(policy.sigma(1e-6), sigma);
        assert_eq!(ReleasePolicy::Rounded { bits: 3 }.sigma(1e-6), 0.0);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(29);
        let mut rows = vec![vec![1.5; 100]; 200];
        policy.apply(&mut rows, 1e-6, &mut rng);
        let n = 20_000.0;
        let mean = rows.iter().flatten().map(|v| v - 1.5).sum::<f64>() / n;
        let var = rows
            .iter()
            .flatten()
            .map(|v| (v - 1.5 - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 0.05 * sigma, "mean {mean}");
        assert!(
            (var.sqrt() / sigma - 1.0).abs() < 0.03,
            "std {} vs {sigma}",
            var.sqrt()
        );
    }

    #[test]
    fn rounding_keeps_multiples_of_two_to_the_minus_bits() {
        let mut rows = vec![vec![0.3, -1.26, 7.0]];
        ReleasePolicy::Rounded { bits: 2 }.apply(&mut rows, 0.0, &mut rand_core::OsRng);
        assert_eq!(rows, vec![vec![0.25, -1.25, 7.0]]);
    }
}
