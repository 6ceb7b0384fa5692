//! Shokri et al.'s shadow-model attack (IEEE S&P 2017, "Membership Inference Attacks
//! Against Machine Learning Models"), as Shin, Choi and Choi ran it (Sensors 2021, §5.4).
//!
//! 1. The insider's records are shuffled and cut into `k` disjoint, equal parts (the
//!    remainder of the division is left out); each part's first half trains one shadow
//!    model of the target's architecture and hyper-parameters, the second half is its
//!    "out" data. Each shadow is a pure function of (its record indices, its seed); the
//!    `k` shadows train in parallel on rayon's pool.
//! 2. Each shadow scores its in and out records; the score vectors (raw, or their softmax)
//!    labelled in/out train one attack model per class (the record's true label), a small
//!    MLP `Dense(10→hidden) → ReLU → Dense(hidden→2)` trained with softmax cross-entropy on
//!    its two outputs (the same loss as a sigmoid with binary cross-entropy on the
//!    difference of the two outputs), by the host's one trainer ([`crate::train::fit`]).
//! 3. **Train phase**: the attack models on their own training records. **Test phase**:
//!    each target record goes to the attack model of its label; "member" when output 1
//!    beats output 0. Accuracy, recall and precision count over all classes together, as
//!    the paper's tables do.

use rayon::prelude::*;

use crate::data::{sample, Images, CLASSES};
use crate::model::network::{Dense, LayerSpec, Network, NetworkError, Shape};
use crate::train::{self, fit, init_network, FitOptions, Targets, TrainConfig, TrainError};

use super::metrics::Confusion;
use super::signals::{SignalError, Signals};
use super::{derive_seed, Features};

/// What the attack models are and how they train.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AttackModelConfig {
    /// Hidden units of the MLP.
    pub hidden: usize,
    /// Its training schedule.
    pub schedule: FitOptions,
}

impl Default for AttackModelConfig {
    /// 64 hidden units (Shokri et al.'s attack models are one-hidden-layer MLPs); Adam at
    /// 1e-3, mini-batches of 64, 100 epochs (ART's default epoch count).
    fn default() -> Self {
        Self {
            hidden: 64,
            schedule: FitOptions {
                epochs: 100,
                batch_size: 64,
                lr: 1e-3,
                optimizer: train::optim::OptimizerKind::Adam,
                momentum: 0.0,
                clip_norm: None,
            },
        }
    }
}

/// Why the attack failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShokriError {
    /// Fewer than two records per shadow model.
    #[error(
        "{records} insider records cannot be cut into {shadows} shadow splits of at least two"
    )]
    TooFewRecords {
        /// Insider records.
        records: usize,
        /// Shadows asked for.
        shadows: usize,
    },
    /// Training a shadow or an attack model failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// Scoring failed.
    #[error(transparent)]
    Signals(#[from] SignalError),
    /// The attack network is invalid (a zero hidden size).
    #[error(transparent)]
    Network(#[from] NetworkError),
}

/// Trains `shadows` shadow models on disjoint splits of `insider` (see the module docs)
/// and returns each one's signals on its own in (members) and out records.
///
/// `shadow` is the target's training configuration; its `fraction` must be 1 and its
/// `seed` is replaced by one derived from `seed` for each shadow.
///
/// # Errors
/// [`ShokriError::TooFewRecords`], or a training failure.
pub fn train_shadows(
    insider: &Images,
    shadows: usize,
    shadow: &TrainConfig,
    seed: u64,
) -> Result<Vec<Signals>, ShokriError> {
    let part = insider.len().checked_div(shadows).unwrap_or(0);
    if part < 2 {
        return Err(ShokriError::TooFewRecords {
            records: insider.len(),
            shadows,
        });
    }
    let mut order: Vec<usize> = (0..insider.len()).collect();
    sample::shuffle(
        &mut rand_chacha_rng(derive_seed(seed, 1, shadows as u64)),
        &mut order,
    );
    (0..shadows)
        .into_par_iter()
        .map(|j| {
            let records = &order[j * part..(j + 1) * part];
            let (inside, _) = records.split_at(part / 2);
            let config = TrainConfig {
                fraction: 1.0,
                seed: derive_seed(seed, 2, (shadows * 1000 + j) as u64),
                ..shadow.clone()
            };
            let trained = train::train(&insider.select(inside), &config, |_, _, _| {})?;
            let member = (0..part).map(|i| i < part / 2).collect();
            Ok(Signals::of_model(
                &trained.model,
                &insider.select(records),
                member,
            )?)
        })
        .collect()
}

fn rand_chacha_rng(seed: u64) -> rand_chacha::ChaCha20Rng {
    rand_core::SeedableRng::seed_from_u64(seed)
}

/// One attack model per class.
#[derive(Clone, Debug)]
pub struct AttackModels {
    network: Network,
    /// Parameters per class; `None` when the shadow data held no record of the class
    /// (its records are then predicted non-members).
    params: Vec<Option<Vec<f32>>>,
    features: Features,
}

/// The attack MLP for `hidden` units.
///
/// # Errors
/// [`NetworkError`] for `hidden == 0`.
pub fn attack_network(hidden: usize) -> Result<Network, NetworkError> {
    Network::new(
        Shape::chw(CLASSES, 1, 1),
        &[
            LayerSpec::Dense(Dense {
                inputs: CLASSES,
                outputs: hidden,
                bias: true,
            }),
            LayerSpec::Relu,
            LayerSpec::Dense(Dense {
                inputs: hidden,
                outputs: 2,
                bias: true,
            }),
        ],
    )
}

impl AttackModels {
    /// Trains one attack model per class on the shadows' signals (features of each record,
    /// labelled 1 for in and 0 for out).
    ///
    /// # Errors
    /// A bad configuration or a diverging model.
    pub fn fit(
        shadows: &[Signals],
        features: Features,
        config: &AttackModelConfig,
        seed: u64,
    ) -> Result<Self, ShokriError> {
        let network = attack_network(config.hidden)?;
        let (mut values, mut inside, mut classes) = (Vec::new(), Vec::new(), Vec::new());
        for s in shadows {
            for i in 0..s.len() {
                values.extend_from_slice(&s.features(i, features));
                inside.push(u8::from(s.member[i]));
                classes.push(s.labels[i]);
            }
        }
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(TrainError::Config(format!("a feature is {v}, not finite")).into());
        }
        let input = |i: usize, out: &mut Vec<f32>| {
            out.extend_from_slice(&values[i * CLASSES..(i + 1) * CLASSES]);
        };
        let params = (0..CLASSES)
            .into_par_iter()
            .map(|class| {
                let indices: Vec<usize> = (0..classes.len())
                    .filter(|&i| usize::from(classes[i]) == class)
                    .collect();
                if indices.is_empty() {
                    return Ok(None);
                }
                let class_seed = derive_seed(seed, 3, class as u64);
                let mut params = init_network(&network, &mut rand_chacha_rng(class_seed));
                let mut shuffle = rand_chacha_rng(derive_seed(class_seed, 4, 0));
                fit(
                    &network,
                    &mut params,
                    &indices,
                    &input,
                    Targets::Labels(&inside),
                    &config.schedule,
                    &mut shuffle,
                    |_, _, _| {},
                )?;
                Ok(Some(params))
            })
            .collect::<Result<Vec<_>, TrainError>>()?;
        Ok(Self {
            network,
            params,
            features,
        })
    }

    /// Whether each record of `signals` is predicted a member.
    pub fn predict(&self, signals: &Signals) -> Vec<bool> {
        (0..signals.len())
            .map(|i| {
                let class = usize::from(signals.labels[i]);
                self.params
                    .get(class)
                    .and_then(Option::as_ref)
                    .is_some_and(|p| {
                        let x = signals.features(i, self.features);
                        let out = self.network.forward(p, &x, 1);
                        out.get(1) > out.first()
                    })
            })
            .collect()
    }

    /// The counts of [`AttackModels::predict`] against each record's membership, over
    /// several signal sets.
    pub fn confusion(&self, sets: &[Signals]) -> Confusion {
        let mut c = Confusion::default();
        for s in sets {
            c.add(&Confusion::new(&self.predict(s), &s.member));
        }
        c
    }
}

/// Train- and test-phase counts of one attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phases {
    /// The attack models on their own training records.
    pub train: Confusion,
    /// The attack models against the target's records.
    pub test: Confusion,
}

/// Fits the attack models on `shadows` and scores them on the shadows and on `target`.
///
/// # Errors
/// As [`AttackModels::fit`].
pub fn attack(
    shadows: &[Signals],
    target: &Signals,
    features: Features,
    config: &AttackModelConfig,
    seed: u64,
) -> Result<Phases, ShokriError> {
    let models = AttackModels::fit(shadows, features, config, seed)?;
    Ok(Phases {
        train: models.confusion(shadows),
        test: models.confusion(std::slice::from_ref(target)),
    })
}
