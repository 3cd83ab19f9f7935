//! Optimizers (Adam with Keras-style decay, SGD) and gradient clipping for the language
//! model, over the flat parameter buffer. Element-wise work is split in fixed-size chunks and
//! every reduction runs in one fixed order, so updates are identical for any thread count.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::math::Float;
use crate::error::{CoreError, Result};

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

/// Optimizer state: step count and (for Adam) the first and second moments.
#[derive(Clone, Debug)]
pub struct Optimizer<T: Float> {
    pub config: OptimizerConfig,
    /// Updates applied so far.
    pub step: u64,
    /// First moment (same layout as the parameters); empty for SGD.
    pub m: Vec<T>,
    /// Second moment; empty for SGD.
    pub v: Vec<T>,
}

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
            step: 0,
            m: vec![T::ZERO; moments],
            v: vec![T::ZERO; moments],
        })
    }

    /// The decayed rate for the next update: `lr / (1 + decay·step)`.
    pub fn current_lr(&self) -> f64 {
        self.config.lr / (1.0 + self.config.decay * self.step as f64)
    }

    /// Applies one update.
    pub fn update(&mut self, params: &mut [T], grads: &[T]) {
        let lr = self.current_lr();
        match self.config.kind {
            OptimizerKind::Sgd => {
                let lr = T::from_f64(lr);
                params
                    .par_chunks_mut(CHUNK)
                    .zip(grads.par_chunks(CHUNK))
                    .for_each(|(p, g)| {
                        for (p, &g) in p.iter_mut().zip(g) {
                            *p -= lr * g;
                        }
                    });
            }
            OptimizerKind::Adam => {
                let c = &self.config;
                let t = (self.step + 1) as i32;
                let lr_t =
                    T::from_f64(lr * (1.0 - c.beta2.powi(t)).sqrt() / (1.0 - c.beta1.powi(t)));
                let (b1, b2, eps) = (
                    T::from_f64(c.beta1),
                    T::from_f64(c.beta2),
                    T::from_f64(c.epsilon),
                );
                let (one_b1, one_b2) = (T::ONE - b1, T::ONE - b2);
                params
                    .par_chunks_mut(CHUNK)
                    .zip(grads.par_chunks(CHUNK))
                    .zip(self.m.par_chunks_mut(CHUNK))
                    .zip(self.v.par_chunks_mut(CHUNK))
                    .for_each(|(((p, g), m), v)| {
                        for (((p, &g), m), v) in
                            p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut())
                        {
                            *m = b1 * *m + one_b1 * g;
                            *v = b2 * *v + one_b2 * g * g;
                            *p -= lr_t * *m / (v.sqrt() + eps);
                        }
                    });
            }
        }
        self.step += 1;
    }
}
