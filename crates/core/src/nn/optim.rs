//! The optimizers of the trained models (the language model and jazz): Adam and SGD as in
//! Keras 2, generic over the float type, and gradient clipping. Element-wise work is split in
//! fixed-size chunks and every reduction runs in one fixed order, so updates are identical
//! for any thread count.
//!
//! Keras 2 (`keras.optimizers.Adam(lr, beta_1, beta_2, decay)`, the course's optimizer) does,
//! at iteration `k` (0-based, counted over all updates):
//!
//! ```text
//! lr_k  = lr / (1 + decay · k)                                  time-based decay
//! t     = k + 1
//! lr_t  = lr_k · sqrt(1 − β2^t) / (1 − β1^t)                    bias correction
//! m     = β1 m + (1 − β1) g
//! v     = β2 v + (1 − β2) g²
//! θ     = θ − lr_t · m / (sqrt(v) + ε)                          ε = 1e-7 (Keras' backend epsilon)
//! ```
//!
//! SGD is `θ = θ − lr_k · g` with the same decay.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};
use crate::math::Float;

const CHUNK: usize = 16_384;

/// Which update rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam as in Keras 2: `lr_t = lr/(1+decay·t) · √(1−β2^(t+1))/(1−β1^(t+1))`,
    /// `θ −= lr_t · m/(√v + ε)`.
    Adam,
    /// Plain SGD: `θ −= lr/(1+decay·t) · g`.
    Sgd,
}

impl OptimizerKind {
    /// Parses "adam" / "sgd".
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "adam" => Ok(OptimizerKind::Adam),
            "sgd" => Ok(OptimizerKind::Sgd),
            other => Err(CoreError::invalid(format!(
                "optimizer: expected 'adam' or 'sgd', got '{other}'"
            ))),
        }
    }
}

/// How Adam's bias correction computes `β^t`. The two differ in the last bit for some `t`;
/// each model keeps the one its results were first computed with, so they stay bit-exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BiasPower {
    /// `β.powi(t)`: repeated multiplication (the language model).
    #[default]
    Powi,
    /// `β.powf(t)`: libm's `pow` (jazz).
    Powf,
}

impl BiasPower {
    fn pow(self, beta: f64, t: u64) -> f64 {
        match self {
            BiasPower::Powi => beta.powi(t as i32),
            BiasPower::Powf => beta.powf(t as f64),
        }
    }

    fn is_powi(&self) -> bool {
        *self == BiasPower::Powi
    }
}

/// Hyperparameters of the optimizer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    /// Base learning rate.
    pub lr: f64,
    /// Keras-style time decay: the rate at step t is `lr / (1 + decay·t)`.
    pub decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Keras' ε (1e-7).
    pub epsilon: f64,
    /// How `β^t` is computed (absent from saved configs when it is the default).
    #[serde(default, skip_serializing_if = "BiasPower::is_powi")]
    pub bias_power: BiasPower,
}

impl OptimizerConfig {
    /// Adam with Keras' defaults (β1 0.9, β2 0.999, ε 1e-7) at the given rate.
    pub fn adam(lr: f64) -> Self {
        OptimizerConfig {
            kind: OptimizerKind::Adam,
            lr,
            decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            bias_power: BiasPower::Powi,
        }
    }

    /// The course's jazz optimizer: `Adam(lr=0.01, beta_1=0.9, beta_2=0.999, decay=0.01)`,
    /// ε = 1e-7.
    pub fn course_adam() -> Self {
        OptimizerConfig {
            decay: 0.01,
            bias_power: BiasPower::Powf,
            ..Self::adam(0.01)
        }
    }

    /// SGD at the given rate.
    pub fn sgd(lr: f64) -> Self {
        OptimizerConfig {
            kind: OptimizerKind::Sgd,
            ..Self::adam(lr)
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        let pos = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(CoreError::invalid(format!(
                    "{name}: expected a finite number > 0, got {v}"
                )))
            }
        };
        pos("lr", self.lr)?;
        pos("epsilon", self.epsilon)?;
        if !(self.decay.is_finite() && self.decay >= 0.0) {
            return Err(CoreError::invalid(format!(
                "decay: expected a finite number >= 0, got {}",
                self.decay
            )));
        }
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(CoreError::invalid(format!(
                    "{name}: expected 0 <= beta < 1, got {b}"
                )));
            }
        }
        Ok(())
    }
}

/// Gradient clipping: by global L2 norm first, then element-wise by value (Keras' order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Clip {
    /// Element-wise bound: every gradient to [−value, value].
    pub value: Option<f64>,
    /// Rescale all gradients together when their global L2 norm exceeds this.
    pub norm: Option<f64>,
}

/// Clips `grads` in place; returns the global L2 norm before clipping (summed in a fixed order).
pub fn clip_gradients<T: Float>(grads: &mut [T], clip: &Clip) -> f64 {
    // per-chunk sums of squares in parallel, then added in chunk order: thread-count independent
    let partial: Vec<f64> = grads
        .par_chunks(CHUNK)
        .map(|c| c.iter().map(|&g| g.to_f64() * g.to_f64()).sum::<f64>())
        .collect();
    let norm = partial.iter().sum::<f64>().sqrt();
    if let Some(max) = clip.norm {
        if norm > max {
            let scale = T::from_f64(max / norm);
            grads
                .par_chunks_mut(CHUNK)
                .for_each(|c| c.iter_mut().for_each(|g| *g *= scale));
        }
    }
    if let Some(v) = clip.value {
        let (lo, hi) = (T::from_f64(-v), T::from_f64(v));
        grads.par_chunks_mut(CHUNK).for_each(|c| {
            for g in c {
                if *g < lo {
                    *g = lo;
                } else if *g > hi {
                    *g = hi;
                }
            }
        });
    }
    norm
}

/// Optimizer state: update count and (for Adam) the first and second moments.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer<T: Float> {
    pub config: OptimizerConfig,
    /// Updates applied so far (`k`).
    pub iterations: u64,
    /// First moment (same layout as the parameters, concatenated when they come in several
    /// slices); empty for SGD, and for Adam until the first update when made by [`Self::course`].
    pub m: Vec<T>,
    /// Second moment; as `m`.
    pub v: Vec<T>,
}

/// Adam over f64 parameters (jazz).
pub type Adam = Optimizer<f64>;

impl<T: Float> Optimizer<T> {
    /// Fresh state for `n` parameters.
    pub fn new(config: OptimizerConfig, n: usize) -> Result<Self> {
        config.validate()?;
        let moments = if config.kind == OptimizerKind::Adam {
            n
        } else {
            0
        };
        Ok(Optimizer {
            config,
            iterations: 0,
            m: vec![T::ZERO; moments],
            v: vec![T::ZERO; moments],
        })
    }

    /// Fresh state whose moments are sized by the first update.
    pub fn lazy(config: OptimizerConfig) -> Result<Self> {
        Self::new(config, 0)
    }

    /// The course's Adam ([`OptimizerConfig::course_adam`]), sized at the first update.
    pub fn course() -> Self {
        Self::lazy(OptimizerConfig::course_adam()).expect("the course's settings are valid")
    }

    /// Keras' `Adam(lr, beta_1, beta_2, epsilon, decay)` with libm powers, sized at the first
    /// update; checks `lr > 0`, `0 <= β < 1`, `ε > 0`, `decay >= 0`.
    pub fn keras_adam(lr: f64, beta1: f64, beta2: f64, epsilon: f64, decay: f64) -> Result<Self> {
        Self::lazy(OptimizerConfig {
            kind: OptimizerKind::Adam,
            lr,
            decay,
            beta1,
            beta2,
            epsilon,
            bias_power: BiasPower::Powf,
        })
    }

    /// Keras' `SGD(lr, decay=decay)`.
    pub fn keras_sgd(lr: f64, decay: f64) -> Result<Self> {
        Self::lazy(OptimizerConfig {
            decay,
            ..OptimizerConfig::sgd(lr)
        })
    }

    /// The decayed rate for the next update: `lr / (1 + decay·k)`.
    pub fn current_lr(&self) -> f64 {
        self.config.lr / (1.0 + self.config.decay * self.iterations as f64)
    }

    /// Sizes the Adam moments for `n` parameters if they are still empty; checks the size.
    fn ensure_moments(&mut self, n: usize) -> Result<()> {
        if self.config.kind != OptimizerKind::Adam {
            return Ok(());
        }
        if self.m.is_empty() && self.iterations == 0 {
            self.m = vec![T::ZERO; n];
            self.v = vec![T::ZERO; n];
        }
        if self.m.len() != n || self.v.len() != n {
            return Err(CoreError::ShapeMismatch {
                name: "optimizer: parameters".into(),
                expected: format!("{} values (as the moments)", self.m.len()),
                actual: format!("{n} values"),
            });
        }
        Ok(())
    }

    /// Applies one update to one flat parameter buffer.
    ///
    /// # Panics
    /// If `grads` or the moments do not match `params` in length.
    pub fn update(&mut self, params: &mut [T], grads: &[T]) {
        assert_eq!(params.len(), grads.len(), "optimizer: gradient length");
        self.ensure_moments(params.len())
            .expect("optimizer: moments sized for another model");
        let coef = self.coefficients();
        let (m, v) = (&mut self.m[..], &mut self.v[..]);
        update_slice(&coef, params, grads, m, v);
        self.iterations += 1;
    }

    /// Applies one update to parameters held in several slices (the moments follow their
    /// concatenation). Errors if the slices do not pair up or change size between updates.
    pub fn step(&mut self, params: &mut [&mut [T]], grads: &[&[T]]) -> Result<()> {
        if params.len() != grads.len() {
            return Err(CoreError::invalid(format!(
                "optimizer: expected as many gradients as parameters ({}), got {}",
                params.len(),
                grads.len()
            )));
        }
        for (k, (p, g)) in params.iter().zip(grads).enumerate() {
            if p.len() != g.len() {
                return Err(CoreError::ShapeMismatch {
                    name: format!("optimizer: grads[{k}]"),
                    expected: format!("{} values", p.len()),
                    actual: format!("{} values", g.len()),
                });
            }
        }
        self.ensure_moments(params.iter().map(|p| p.len()).sum())?;
        let coef = self.coefficients();
        let adam = self.config.kind == OptimizerKind::Adam;
        let mut at = 0;
        for (p, g) in params.iter_mut().zip(grads) {
            let n = p.len();
            let (m, v): (&mut [T], &mut [T]) = if adam {
                (&mut self.m[at..at + n], &mut self.v[at..at + n])
            } else {
                (&mut [], &mut [])
            };
            update_slice(&coef, p, g, m, v);
            at += n;
        }
        self.iterations += 1;
        Ok(())
    }

    /// The step's constants, from the config and the update count.
    fn coefficients(&self) -> Coefficients<T> {
        let c = &self.config;
        let lr = self.current_lr();
        match c.kind {
            OptimizerKind::Sgd => Coefficients::Sgd {
                lr: T::from_f64(lr),
            },
            OptimizerKind::Adam => {
                let t = self.iterations + 1;
                let (p1, p2) = (c.bias_power.pow(c.beta1, t), c.bias_power.pow(c.beta2, t));
                let (b1, b2) = (T::from_f64(c.beta1), T::from_f64(c.beta2));
                Coefficients::Adam {
                    lr_t: T::from_f64(lr * (1.0 - p2).sqrt() / (1.0 - p1)),
                    b1,
                    b2,
                    one_b1: T::ONE - b1,
                    one_b2: T::ONE - b2,
                    eps: T::from_f64(c.epsilon),
                }
            }
        }
    }
}

/// The constants of one update.
enum Coefficients<T> {
    Sgd {
        lr: T,
    },
    Adam {
        lr_t: T,
        b1: T,
        b2: T,
        one_b1: T,
        one_b2: T,
        eps: T,
    },
}

/// One update of `params` (element-wise, in parallel chunks) with its moments `m`, `v`.
fn update_slice<T: Float>(
    coef: &Coefficients<T>,
    params: &mut [T],
    grads: &[T],
    m: &mut [T],
    v: &mut [T],
) {
    match *coef {
        Coefficients::Sgd { lr } => {
            params
                .par_chunks_mut(CHUNK)
                .zip(grads.par_chunks(CHUNK))
                .for_each(|(p, g)| {
                    for (p, &g) in p.iter_mut().zip(g) {
                        *p -= lr * g;
                    }
                });
        }
        Coefficients::Adam {
            lr_t,
            b1,
            b2,
            one_b1,
            one_b2,
            eps,
        } => {
            params
                .par_chunks_mut(CHUNK)
                .zip(grads.par_chunks(CHUNK))
                .zip(m.par_chunks_mut(CHUNK))
                .zip(v.par_chunks_mut(CHUNK))
                .for_each(|(((p, g), m), v)| {
                    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut())
                    {
                        *m = b1 * *m + one_b1 * g;
                        *v = b2 * *v + one_b2 * g * g;
                        *p -= lr_t * *m / (v.sqrt() + eps);
                    }
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_first_step_moves_each_weight_by_lr() {
        // At t = 1, m = 0.1 g and v = 0.001 g², so (Keras adds ε to sqrt(v), not sqrt(v̂)) every
        // weight moves by lr·g/(|g| + ε/sqrt(0.001)) ≈ lr·sign(g).
        let mut adam = Adam::keras_adam(0.01, 0.9, 0.999, 1e-7, 0.0).unwrap();
        let mut w = [1.0, -2.0, 0.5];
        let g = [3.0, -0.25, 1e-3];
        adam.step(&mut [&mut w[..]], &[&g[..]]).unwrap();
        let e = 1e-7 / 0.001f64.sqrt();
        let expect = [
            1.0 - 0.01 * 3.0 / (3.0 + e),
            -2.0 + 0.01 * 0.25 / (0.25 + e),
            0.5 - 0.01 * 1e-3 / (1e-3 + e),
        ];
        for (a, b) in w.iter().zip(expect) {
            assert!((a - b).abs() < 1e-14, "{a} vs {b}");
        }
    }

    #[test]
    fn keras_decay_and_bias_correction() {
        let mut adam = Adam::course();
        let mut w = [0.0];
        for _ in 0..3 {
            adam.step(&mut [&mut w[..]], &[&[1.0][..]]).unwrap();
        }
        assert_eq!(adam.iterations, 3);
        assert!((adam.current_lr() - 0.01 / 1.03).abs() < 1e-18);
        // constant gradient 1: m̂ = v̂ = 1 so each step is lr_k (up to ε): 0.01 (1 + 1/1.01 + 1/1.02)
        let expect = -0.01 * (1.0 + 1.0 / 1.01 + 1.0 / 1.02);
        assert!((w[0] - expect).abs() < 1e-6, "{} vs {expect}", w[0]);
    }

    #[test]
    fn sgd_decays_and_rejects_mismatches() {
        let mut sgd = Optimizer::<f64>::keras_sgd(0.1, 1.0).unwrap();
        let mut w = [1.0, 1.0];
        sgd.step(&mut [&mut w[..]], &[&[1.0, 2.0][..]]).unwrap();
        sgd.step(&mut [&mut w[..]], &[&[1.0, 2.0][..]]).unwrap();
        assert!((w[0] - (1.0 - 0.1 - 0.05)).abs() < 1e-15);
        assert!((w[1] - (1.0 - 0.2 - 0.1)).abs() < 1e-15);
        assert!(sgd.step(&mut [&mut w[..]], &[&[1.0][..]]).is_err());
        assert!(Optimizer::<f64>::keras_sgd(0.0, 0.0).is_err());
        assert!(Adam::keras_adam(0.01, 1.0, 0.999, 1e-7, 0.0).is_err());
    }

    #[test]
    fn adam_moments_keep_their_size() {
        let mut adam = Adam::course();
        let (mut a, mut b) = (vec![0.0; 3], vec![0.0; 2]);
        adam.step(
            &mut [&mut a[..], &mut b[..]],
            &[&[1.0; 3][..], &[1.0; 2][..]],
        )
        .unwrap();
        assert_eq!(adam.m.len(), 5);
        assert!(adam.step(&mut [&mut a[..]], &[&[1.0; 3][..]]).is_err());
    }
}
