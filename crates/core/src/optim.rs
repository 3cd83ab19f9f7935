//! First-order optimizers over flat parameter slices: SGD and Adam, both with Keras-style
//! time-based learning-rate decay.
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

use crate::error::{CoreError, Result};

/// Checks that parameter and gradient slices pair up one to one with equal lengths.
fn check_pairs(
    what: &str,
    params: &[&mut [f64]],
    grads: &[&[f64]],
    sizes: Option<&[usize]>,
) -> Result<()> {
    if params.len() != grads.len() {
        return Err(CoreError::invalid(format!(
            "{what}: expected as many gradients as parameters ({}), got {}",
            params.len(),
            grads.len()
        )));
    }
    for (k, (p, g)) in params.iter().zip(grads).enumerate() {
        if p.len() != g.len() {
            return Err(CoreError::ShapeMismatch {
                name: format!("{what}: grads[{k}]"),
                expected: format!("{} values", p.len()),
                actual: format!("{} values", g.len()),
            });
        }
        if let Some(sizes) = sizes {
            if sizes[k] != p.len() {
                return Err(CoreError::ShapeMismatch {
                    name: format!("{what}: params[{k}]"),
                    expected: format!("{} values (as at the first step)", sizes[k]),
                    actual: format!("{} values", p.len()),
                });
            }
        }
    }
    Ok(())
}

/// Validates a learning rate / decay pair.
fn check_rates(what: &str, lr: f64, decay: f64) -> Result<()> {
    if !(lr.is_finite() && lr > 0.0) {
        return Err(CoreError::invalid(format!(
            "{what}: lr must be a positive number, got {lr}"
        )));
    }
    if !(decay.is_finite() && decay >= 0.0) {
        return Err(CoreError::invalid(format!(
            "{what}: decay must be >= 0, got {decay}"
        )));
    }
    Ok(())
}

/// Plain gradient descent with Keras-style decay `lr_k = lr / (1 + decay·k)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sgd {
    /// Initial learning rate.
    pub lr: f64,
    /// Time-based decay per update.
    pub decay: f64,
    /// Updates done so far (`k`).
    pub iterations: u64,
}

impl Sgd {
    /// A new SGD optimizer; `lr > 0`, `decay >= 0`.
    pub fn new(lr: f64, decay: f64) -> Result<Self> {
        check_rates("Sgd", lr, decay)?;
        Ok(Sgd {
            lr,
            decay,
            iterations: 0,
        })
    }

    /// The learning rate used by the next update.
    pub fn current_lr(&self) -> f64 {
        self.lr / (1.0 + self.decay * self.iterations as f64)
    }

    /// `θ −= lr_k · g` for every parameter slice.
    pub fn step(&mut self, params: &mut [&mut [f64]], grads: &[&[f64]]) -> Result<()> {
        check_pairs("Sgd.step", params, grads, None)?;
        let lr = self.current_lr();
        for (p, g) in params.iter_mut().zip(grads) {
            for (pj, gj) in p.iter_mut().zip(g.iter()) {
                *pj -= lr * gj;
            }
        }
        self.iterations += 1;
        Ok(())
    }
}

/// Adam as in Keras 2 (see the module docs), with its moment estimates.
#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    /// Initial learning rate (course: 0.01).
    pub lr: f64,
    /// First-moment decay β1 (0.9).
    pub beta1: f64,
    /// Second-moment decay β2 (0.999).
    pub beta2: f64,
    /// ε added to `sqrt(v)` (Keras: 1e-7).
    pub epsilon: f64,
    /// Time-based decay per update (course: 0.01).
    pub decay: f64,
    /// Updates done so far (`k`).
    pub iterations: u64,
    /// First moments, one vector per parameter slice (created at the first step).
    pub m: Vec<Vec<f64>>,
    /// Second moments.
    pub v: Vec<Vec<f64>>,
}

impl Adam {
    /// A new Adam optimizer; checks `lr > 0`, `0 <= β < 1`, `ε > 0`, `decay >= 0`.
    pub fn new(lr: f64, beta1: f64, beta2: f64, epsilon: f64, decay: f64) -> Result<Self> {
        check_rates("Adam", lr, decay)?;
        for (name, b) in [("beta1", beta1), ("beta2", beta2)] {
            if !(b.is_finite() && (0.0..1.0).contains(&b)) {
                return Err(CoreError::invalid(format!(
                    "Adam: {name} must be in [0, 1), got {b}"
                )));
            }
        }
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(CoreError::invalid(format!(
                "Adam: epsilon must be > 0, got {epsilon}"
            )));
        }
        Ok(Adam {
            lr,
            beta1,
            beta2,
            epsilon,
            decay,
            iterations: 0,
            m: Vec::new(),
            v: Vec::new(),
        })
    }

    /// The course's settings: `Adam(lr=0.01, beta_1=0.9, beta_2=0.999, decay=0.01)`, ε = 1e-7.
    pub fn course() -> Self {
        Adam {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
            decay: 0.01,
            iterations: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    /// The decayed learning rate `lr / (1 + decay·k)` of the next update (before bias correction).
    pub fn current_lr(&self) -> f64 {
        self.lr / (1.0 + self.decay * self.iterations as f64)
    }

    /// One Adam update of every parameter slice with its gradient.
    pub fn step(&mut self, params: &mut [&mut [f64]], grads: &[&[f64]]) -> Result<()> {
        if self.m.is_empty() {
            check_pairs("Adam.step", params, grads, None)?;
            self.m = params.iter().map(|p| vec![0.0; p.len()]).collect();
            self.v = self.m.clone();
        } else {
            let sizes: Vec<usize> = self.m.iter().map(Vec::len).collect();
            if sizes.len() != params.len() {
                return Err(CoreError::invalid(format!(
                    "Adam.step: expected {} parameter slices (as at the first step), got {}",
                    sizes.len(),
                    params.len()
                )));
            }
            check_pairs("Adam.step", params, grads, Some(&sizes))?;
        }
        let t = (self.iterations + 1) as f64;
        // lr_t = lr_k · sqrt(1 − β2^t) / (1 − β1^t)
        let lr_t =
            self.current_lr() * (1.0 - self.beta2.powf(t)).sqrt() / (1.0 - self.beta1.powf(t));
        let (b1, b2, eps) = (self.beta1, self.beta2, self.epsilon);
        for (k, (p, g)) in params.iter_mut().zip(grads).enumerate() {
            let (m, v) = (&mut self.m[k], &mut self.v[k]);
            for j in 0..p.len() {
                let gj = g[j];
                m[j] = b1 * m[j] + (1.0 - b1) * gj;
                v[j] = b2 * v[j] + (1.0 - b2) * gj * gj;
                p[j] -= lr_t * m[j] / (v[j].sqrt() + eps);
            }
        }
        self.iterations += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_first_step_moves_each_weight_by_lr() {
        // At t = 1, m = 0.1 g and v = 0.001 g², so (Keras adds ε to sqrt(v), not sqrt(v̂)) every
        // weight moves by lr·g/(|g| + ε/sqrt(0.001)) ≈ lr·sign(g).
        let mut adam = Adam::new(0.01, 0.9, 0.999, 1e-7, 0.0).unwrap();
        let mut w = vec![1.0, -2.0, 0.5];
        let g = vec![3.0, -0.25, 1e-3];
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
        let mut w = vec![0.0];
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
        let mut sgd = Sgd::new(0.1, 1.0).unwrap();
        let mut w = vec![1.0, 1.0];
        sgd.step(&mut [&mut w[..]], &[&[1.0, 2.0][..]]).unwrap();
        sgd.step(&mut [&mut w[..]], &[&[1.0, 2.0][..]]).unwrap();
        assert!((w[0] - (1.0 - 0.1 - 0.05)).abs() < 1e-15);
        assert!((w[1] - (1.0 - 0.2 - 0.1)).abs() < 1e-15);
        assert!(sgd.step(&mut [&mut w[..]], &[&[1.0][..]]).is_err());
        assert!(Sgd::new(0.0, 0.0).is_err());
        assert!(Adam::new(0.01, 1.0, 0.999, 1e-7, 0.0).is_err());
    }
}
