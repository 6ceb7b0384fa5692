//! Optimisers: Adam (Kingma and Ba 2015, with PyTorch's defaults) and SGD with momentum.

/// Which optimiser to train with.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam, beta1 = 0.9, beta2 = 0.999, eps = 1e-8.
    Adam,
    /// Stochastic gradient descent with optional momentum (PyTorch's form).
    Sgd,
}

/// An optimiser's state for a flat parameter vector.
#[derive(Clone, Debug)]
pub enum Optimizer {
    /// Adam: first and second moment estimates and the step count.
    Adam {
        /// Learning rate.
        lr: f32,
        /// First moments.
        m: Vec<f32>,
        /// Second moments.
        v: Vec<f32>,
        /// Steps taken.
        t: i32,
    },
    /// SGD: velocity `buf = momentum * buf + g`, `p -= lr * buf`.
    Sgd {
        /// Learning rate.
        lr: f32,
        /// Momentum in [0, 1).
        momentum: f32,
        /// Velocity.
        buf: Vec<f32>,
    },
}

/// Adam's decay of the first moment.
pub const ADAM_BETA1: f32 = 0.9;
/// Adam's decay of the second moment.
pub const ADAM_BETA2: f32 = 0.999;
/// Adam's denominator guard.
pub const ADAM_EPS: f32 = 1e-8;

impl Optimizer {
    /// A fresh optimiser for `n` parameters.
    pub fn new(kind: OptimizerKind, n: usize, lr: f32, momentum: f32) -> Self {
        match kind {
            OptimizerKind::Adam => Optimizer::Adam {
                lr,
                m: vec![0.0; n],
                v: vec![0.0; n],
                t: 0,
            },
            OptimizerKind::Sgd => Optimizer::Sgd {
                lr,
                momentum,
                buf: vec![0.0; n],
            },
        }
    }

    /// Takes one step on `params` along the gradient `grad` (of the mean loss).
    ///
    /// # Panics
    /// If the lengths differ from the optimiser's.
    pub fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        match self {
            Optimizer::Adam { lr, m, v, t } => {
                assert!(
                    params.len() == m.len() && grad.len() == m.len(),
                    "optimizer length"
                );
                *t = t.saturating_add(1);
                let c1 = 1.0 - ADAM_BETA1.powi(*t);
                let c2 = 1.0 - ADAM_BETA2.powi(*t);
                for (((p, &g), m), v) in params
                    .iter_mut()
                    .zip(grad)
                    .zip(m.iter_mut())
                    .zip(v.iter_mut())
                {
                    *m = ADAM_BETA1 * *m + (1.0 - ADAM_BETA1) * g;
                    *v = ADAM_BETA2 * *v + (1.0 - ADAM_BETA2) * g * g;
                    *p -= *lr * (*m / c1) / ((*v / c2).sqrt() + ADAM_EPS);
                }
            }
            Optimizer::Sgd { lr, momentum, buf } => {
                assert!(
                    params.len() == buf.len() && grad.len() == buf.len(),
                    "optimizer length"
                );
                for ((p, &g), b) in params.iter_mut().zip(grad).zip(buf.iter_mut()) {
                    *b = *momentum * *b + g;
                    *p -= *lr * *b;
                }
            }
        }
    }
}
