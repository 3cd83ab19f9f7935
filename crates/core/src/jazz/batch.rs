//! The training windows of the djmodel: `m` sequences of `t_x` value indices cut from a corpus.

use crate::error::{CoreError, Result};
use crate::random::RandomState;

/// Training windows: `m` sequences of `t_x` steps, stored example-major (`[i * t_x + t]`).
#[derive(Debug, Clone, PartialEq)]
pub struct JazzBatch {
    /// Number of windows.
    pub m: usize,
    /// Steps per window.
    pub t_x: usize,
    /// Input value index at each step (`None` = zero vector), length `m * t_x`.
    pub x: Vec<Option<usize>>,
    /// Target value index at each step, length `m * t_x`.
    pub y: Vec<usize>,
}

impl JazzBatch {
    /// The course's training set: `m` windows at random starts `r` (uniform over the corpus, from
    /// `RandomState(seed)`), each `x = [None, v_{r+1}, …, v_{r+t_x−1}]`, `y = [v_{r+1}, …, v_{r+t_x}]`
    /// (y is x shifted by one step; unlike the course, the last target is a real value, not a
    /// zero vector). Needs `corpus.len() > t_x`.
    pub fn windows(
        corpus: &[usize],
        n_values: usize,
        m: usize,
        t_x: usize,
        seed: u32,
    ) -> Result<Self> {
        if m == 0 || t_x == 0 {
            return Err(CoreError::invalid(format!(
                "windows: m and t_x must be >= 1, got m = {m}, t_x = {t_x}"
            )));
        }
        if corpus.len() <= t_x {
            return Err(CoreError::invalid(format!(
                "windows: the corpus must hold more than t_x = {t_x} values, got {}",
                corpus.len()
            )));
        }
        if let Some((k, &v)) = corpus.iter().enumerate().find(|(_, &v)| v >= n_values) {
            return Err(CoreError::invalid(format!(
                "windows: corpus[{k}] = {v} is not a value index < n_values = {n_values}"
            )));
        }
        let mut rng = RandomState::new(seed);
        let starts = corpus.len() - t_x; // r in [0, len − t_x) so r + t_x is inside
        let mut x = Vec::with_capacity(m * t_x);
        let mut y = Vec::with_capacity(m * t_x);
        for _ in 0..m {
            let r = rng.choice(starts)?;
            for t in 0..t_x {
                x.push(if t == 0 { None } else { Some(corpus[r + t]) });
                y.push(corpus[r + t + 1]);
            }
        }
        Ok(JazzBatch { m, t_x, x, y })
    }

    /// Checks lengths and index ranges against a model with `n_values` values.
    pub fn validate(&self, n_values: usize) -> Result<()> {
        let n = self.m * self.t_x;
        if self.m == 0 || self.t_x == 0 {
            return Err(CoreError::invalid(format!(
                "batch: m and t_x must be >= 1, got m = {}, t_x = {}",
                self.m, self.t_x
            )));
        }
        for (name, len) in [("batch.x", self.x.len()), ("batch.y", self.y.len())] {
            if len != n {
                return Err(CoreError::ShapeMismatch {
                    name: name.into(),
                    expected: format!("m·t_x = {n} entries"),
                    actual: format!("{len}"),
                });
            }
        }
        if let Some((k, v)) = self
            .x
            .iter()
            .enumerate()
            .find_map(|(k, v)| v.filter(|&v| v >= n_values).map(|v| (k, v)))
        {
            return Err(CoreError::invalid(format!(
                "batch.x[{k}] = {v}: expected a value index < n_values = {n_values}"
            )));
        }
        if let Some((k, &v)) = self.y.iter().enumerate().find(|(_, &v)| v >= n_values) {
            return Err(CoreError::invalid(format!(
                "batch.y[{k}] = {v}: expected a value index < n_values = {n_values}"
            )));
        }
        Ok(())
    }
}
