//! The course's `djmodel` for jazz improvisation: ONE LSTM cell (n_a = 64) shared across the
//! T_x = 30 steps of a window of musical values, a shared Dense softmax over the values, and
//! the inference loop that feeds each chosen value back as the next input.
//!
//! The inputs are one-hot vectors of the `n_values` values (or the zero vector at the first
//! step), so the model takes value INDICES (`None` = zero vector) and adds row `x` of the
//! input kernel instead of multiplying by a one-hot vector: the same numbers, 30× less work.
//!
//! Batch-major layout (one example per row, like Keras), gate column blocks `[f | i | c | o]`
//! of width `n_a` (the SPEC's `Wf = [wa[:, f]ᵀ  wx[:, f]ᵀ]` acting on `[a_prev; x]`, and so on):
//!
//! ```text
//! z     = a_prev·Wa + Wx[x] + b                     (m, 4 n_a)
//! Γf = σ(z_f)   Γu = σ(z_i)   c̃ = tanh(z_c)   Γo = σ(z_o)
//! c⟨t⟩ = Γf∘c⟨t−1⟩ + Γu∘c̃       a⟨t⟩ = Γo∘tanh(c⟨t⟩)
//! ŷ⟨t⟩ = softmax(a⟨t⟩·Wy + by)                        (m, n_values)
//! J    = Σ_t mean_i −log ŷ⟨t⟩[i, y⟨t⟩_i]              Keras: one categorical cross-entropy per
//!                                                    output, each averaged over the batch, summed
//! ```
//!
//! Backward through time (true gradients; `da_next`, `dc_next` come back from step t+1):
//!
//! ```text
//! dlogits⟨t⟩ = (ŷ⟨t⟩ − onehot(y⟨t⟩)) / m
//! da  = dlogits⟨t⟩·Wyᵀ + da_next
//! dc  = dc_next + da∘Γo∘(1 − tanh²c⟨t⟩)
//! dz_f = dc∘c⟨t−1⟩∘Γf(1−Γf)   dz_i = dc∘c̃∘Γu(1−Γu)   dz_c = dc∘Γu∘(1−c̃²)   dz_o = da∘tanh c⟨t⟩∘Γo(1−Γo)
//! dWa += a_prevᵀ·dz   dWx[x] += dz   db += Σ_rows dz   da_next = dz·Waᵀ   dc_next = dc∘Γf
//! ```
//!
//! Initialisation (deterministic for a seed, drawn from rnnlab's numpy-compatible
//! [`RandomState`]): Glorot-uniform `U(−l, l)`, `l = sqrt(6 / (fan_in + fan_out))`, for `Wx`,
//! `Wa` and `Wy` in that order, each filled row-major; `b` zero except the forget block = 1
//! (Keras' `unit_forget_bias`); `by` zero. (Keras uses an orthogonal recurrent kernel; rnnlab
//! uses Glorot-uniform there too, so the numbers are not Keras' but the scale is the same.)

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, Array3, ArrayView2, Axis};

use crate::error::{CoreError, Result};
use crate::optim::Adam;
use crate::random::RandomState;

#[inline]
fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Glorot-uniform `(rows, cols)` matrix, filled row-major from `rng`.
fn glorot_uniform(rows: usize, cols: usize, rng: &mut RandomState) -> Array2<f64> {
    let limit = (6.0 / (rows + cols) as f64).sqrt();
    Array2::from_shape_simple_fn((rows, cols), || (2.0 * rng.random_sample() - 1.0) * limit)
}

/// The djmodel parameters: one LSTM cell and one Dense softmax layer.
#[derive(Debug, Clone, PartialEq)]
pub struct JazzModel {
    /// `Wx` (n_values, 4 n_a): input kernel; row `v` is what the one-hot of value `v` adds to `z`.
    pub wx: Array2<f64>,
    /// `Wa` (n_a, 4 n_a): recurrent kernel.
    pub wa: Array2<f64>,
    /// `b` (4 n_a): gate biases, blocks `[f | i | c | o]`.
    pub b: Array1<f64>,
    /// `Wy` (n_a, n_values): Dense kernel.
    pub wy: Array2<f64>,
    /// `by` (n_values): Dense bias.
    pub by: Array1<f64>,
}

/// Gradients of the loss, one array per parameter, same shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct JazzGradients {
    pub dwx: Array2<f64>,
    pub dwa: Array2<f64>,
    pub db: Array1<f64>,
    pub dwy: Array2<f64>,
    pub dby: Array1<f64>,
}

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
    pub fn windows(corpus: &[usize], n_values: usize, m: usize, t_x: usize, seed: u32) -> Result<Self> {
        if m == 0 || t_x == 0 {
            return Err(CoreError::invalid(format!("windows: m and t_x must be >= 1, got m = {m}, t_x = {t_x}")));
        }
        if corpus.len() <= t_x {
            return Err(CoreError::invalid(format!(
                "windows: the corpus must hold more than t_x = {t_x} values, got {}",
                corpus.len()
            )));
        }
        if let Some((k, &v)) = corpus.iter().enumerate().find(|(_, &v)| v >= n_values) {
            return Err(CoreError::invalid(format!("windows: corpus[{k}] = {v} is not a value index < n_values = {n_values}")));
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
            return Err(CoreError::invalid(format!("batch: m and t_x must be >= 1, got m = {}, t_x = {}", self.m, self.t_x)));
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
        if let Some((k, v)) = self.x.iter().enumerate().find_map(|(k, v)| v.filter(|&v| v >= n_values).map(|v| (k, v))) {
            return Err(CoreError::invalid(format!("batch.x[{k}] = {v}: expected a value index < n_values = {n_values}")));
        }
        if let Some((k, &v)) = self.y.iter().enumerate().find(|(_, &v)| v >= n_values) {
            return Err(CoreError::invalid(format!("batch.y[{k}] = {v}: expected a value index < n_values = {n_values}")));
        }
        Ok(())
    }
}

/// One epoch's report: the loss and accuracy of the full batch BEFORE that epoch's update
/// (what Keras prints).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochStats {
    /// Sum over the T_x outputs of the batch-mean cross-entropy.
    pub loss: f64,
    /// Share of (example, step) pairs whose argmax equals the target.
    pub accuracy: f64,
}

/// What the forward pass keeps for the backward pass.
struct Cache {
    /// Hidden states a⟨0..=T⟩ (T+1, m, n_a); a⟨0⟩ = 0.
    a: Array3<f64>,
    /// Cell states c⟨0..=T⟩ (T+1, m, n_a); c⟨0⟩ = 0.
    c: Array3<f64>,
    /// Gate activations [Γf | Γu | c̃ | Γo] (T, m, 4 n_a).
    gates: Array3<f64>,
    /// Softmax outputs (T·m, n_values), row `t·m + i`.
    p: Array2<f64>,
}

/// Mutable state of the inference loop for one sequence: `a`, `c` (n_a) and the input value.
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceState {
    /// Hidden state (n_a).
    pub a: Array1<f64>,
    /// Cell state (n_a).
    pub c: Array1<f64>,
    /// The value fed at the next step (`None` = zero vector).
    pub x: Option<usize>,
}

impl JazzModel {
    /// A freshly initialised model (see the module docs), deterministic for `seed`.
    pub fn new(n_values: usize, n_a: usize, seed: u32) -> Result<Self> {
        if n_values < 2 || n_a == 0 {
            return Err(CoreError::invalid(format!(
                "JazzModel::new: need n_values >= 2 and n_a >= 1, got n_values = {n_values}, n_a = {n_a}"
            )));
        }
        let mut rng = RandomState::new(seed);
        let wx = glorot_uniform(n_values, 4 * n_a, &mut rng); // (n_values, 4 n_a)
        let wa = glorot_uniform(n_a, 4 * n_a, &mut rng); // (n_a, 4 n_a)
        let wy = glorot_uniform(n_a, n_values, &mut rng); // (n_a, n_values)
        let mut b = Array1::zeros(4 * n_a); // (4 n_a)
        b.slice_mut(s![0..n_a]).fill(1.0); // forget gate open at the start
        Ok(JazzModel { wx, wa, b, wy, by: Array1::zeros(n_values) })
    }

    /// Number of values (input and output size).
    pub fn n_values(&self) -> usize {
        self.wy.ncols()
    }

    /// Hidden size.
    pub fn n_a(&self) -> usize {
        self.wa.nrows()
    }

    /// The parameters as flat mutable slices, in the order `wx, wa, b, wy, by`.
    pub fn params_mut(&mut self) -> [&mut [f64]; 5] {
        // Arrays built by this module are standard-layout, so slices always exist.
        [
            self.wx.as_slice_mut().expect("wx is contiguous"),
            self.wa.as_slice_mut().expect("wa is contiguous"),
            self.b.as_slice_mut().expect("b is contiguous"),
            self.wy.as_slice_mut().expect("wy is contiguous"),
            self.by.as_slice_mut().expect("by is contiguous"),
        ]
    }

    /// Checks that the five arrays have consistent shapes (for models built from user data).
    pub fn validate(&self) -> Result<()> {
        let (n_a, n_v) = (self.wa.nrows(), self.wy.ncols());
        let checks = [
            ("wx", self.wx.shape().to_vec(), vec![n_v, 4 * n_a]),
            ("wa", self.wa.shape().to_vec(), vec![n_a, 4 * n_a]),
            ("b", self.b.shape().to_vec(), vec![4 * n_a]),
            ("wy", self.wy.shape().to_vec(), vec![n_a, n_v]),
            ("by", self.by.shape().to_vec(), vec![n_v]),
        ];
        for (name, actual, expected) in checks {
            if actual != expected {
                return Err(CoreError::ShapeMismatch { name: name.into(), expected: format!("{expected:?}"), actual: format!("{actual:?}") });
            }
        }
        Ok(())
    }

    /// One LSTM step for a batch: `z = a_prev·Wa + Wx[x] + b`, gates written to `gates`
    /// (m, 4 n_a), new `c` and `a` written to `c_next`, `a_next` (m, n_a).
    fn cell_step(
        &self,
        x: &[Option<usize>],
        a_prev: ArrayView2<f64>,
        c_prev: ArrayView2<f64>,
        gates: &mut ndarray::ArrayViewMut2<f64>,
        c_next: &mut ndarray::ArrayViewMut2<f64>,
        a_next: &mut ndarray::ArrayViewMut2<f64>,
    ) {
        let n_a = self.n_a();
        // z = a_prev·Wa  (m, 4 n_a)
        general_mat_mul(1.0, &a_prev, &self.wa, 0.0, gates);
        for (i, mut z) in gates.axis_iter_mut(Axis(0)).enumerate() {
            z += &self.b;
            if let Some(v) = x[i] {
                z += &self.wx.row(v);
            }
            let z = z.as_slice_mut().expect("gate rows are contiguous");
            let (zf, rest) = z.split_at_mut(n_a);
            let (zi, rest) = rest.split_at_mut(n_a);
            let (zc, zo) = rest.split_at_mut(n_a);
            for j in 0..n_a {
                let f = sigmoid(zf[j]);
                let u = sigmoid(zi[j]);
                let cc = zc[j].tanh();
                let o = sigmoid(zo[j]);
                let c = f * c_prev[[i, j]] + u * cc;
                zf[j] = f;
                zi[j] = u;
                zc[j] = cc;
                zo[j] = o;
                c_next[[i, j]] = c;
                a_next[[i, j]] = o * c.tanh();
            }
        }
    }

    /// Forward over the batch, keeping the cache.
    fn forward(&self, batch: &JazzBatch) -> Cache {
        let (m, t_x, n_a, n_v) = (batch.m, batch.t_x, self.n_a(), self.n_values());
        let mut a = Array3::zeros((t_x + 1, m, n_a)); // (T+1, m, n_a)
        let mut c = Array3::zeros((t_x + 1, m, n_a)); // (T+1, m, n_a)
        let mut gates = Array3::zeros((t_x, m, 4 * n_a)); // (T, m, 4 n_a)
        let mut x_t = vec![None; m];
        for t in 0..t_x {
            for (i, xi) in x_t.iter_mut().enumerate() {
                *xi = batch.x[i * t_x + t];
            }
            let (a_prev, mut a_rest) = a.view_mut().split_at(Axis(0), t + 1);
            let (c_prev, mut c_rest) = c.view_mut().split_at(Axis(0), t + 1);
            self.cell_step(
                &x_t,
                a_prev.index_axis(Axis(0), t),
                c_prev.index_axis(Axis(0), t),
                &mut gates.index_axis_mut(Axis(0), t),
                &mut c_rest.index_axis_mut(Axis(0), 0),
                &mut a_rest.index_axis_mut(Axis(0), 0),
            );
        }
        // All T outputs in one GEMM: logits = A·Wy + by  (T·m, n_values)
        let a_out = a.slice(s![1.., .., ..]);
        let a_out = a_out.to_shape((t_x * m, n_a)).expect("contiguous slice"); // (T·m, n_a)
        let mut p = a_out.dot(&self.wy); // (T·m, n_values)
        for mut row in p.axis_iter_mut(Axis(0)) {
            row += &self.by;
            let max = row.fold(f64::NEG_INFINITY, |acc, &v| acc.max(v));
            row.mapv_inplace(|v| (v - max).exp());
            let sum = row.sum();
            row /= sum;
        }
        debug_assert_eq!(p.ncols(), n_v);
        Cache { a, c, gates, p }
    }

    /// Loss and accuracy of the cached forward pass against `batch.y`.
    fn stats(cache: &Cache, batch: &JazzBatch) -> EpochStats {
        let (m, t_x) = (batch.m, batch.t_x);
        let mut loss = 0.0;
        let mut hits = 0usize;
        for t in 0..t_x {
            for i in 0..m {
                let row = cache.p.row(t * m + i);
                let y = batch.y[i * t_x + t];
                // −log ŷ, floored so a zero probability gives a large finite loss
                loss -= row[y].max(1e-300).ln() / m as f64;
                let best = argmax(row.as_slice().expect("contiguous row"));
                hits += usize::from(best == y);
            }
        }
        EpochStats { loss, accuracy: hits as f64 / (m * t_x) as f64 }
    }

    /// The loss `J` (sum over steps of the batch-mean cross-entropy) and the accuracy.
    pub fn evaluate(&self, batch: &JazzBatch) -> Result<EpochStats> {
        self.validate()?;
        batch.validate(self.n_values())?;
        Ok(Self::stats(&self.forward(batch), batch))
    }

    /// Loss, accuracy and the exact gradients of the loss (backpropagation through time).
    pub fn loss_and_gradients(&self, batch: &JazzBatch) -> Result<(EpochStats, JazzGradients)> {
        self.validate()?;
        batch.validate(self.n_values())?;
        let cache = self.forward(batch);
        let stats = Self::stats(&cache, batch);
        Ok((stats, self.backward(&cache, batch)))
    }

    fn backward(&self, cache: &Cache, batch: &JazzBatch) -> JazzGradients {
        let (m, t_x, n_a) = (batch.m, batch.t_x, self.n_a());
        // dlogits = (ŷ − onehot(y)) / m   (T·m, n_values)
        let mut dlogits = cache.p.clone();
        for t in 0..t_x {
            for i in 0..m {
                dlogits[[t * m + i, batch.y[i * t_x + t]]] -= 1.0;
            }
        }
        dlogits /= m as f64;
        let a_out = cache.a.slice(s![1.., .., ..]);
        let a_out = a_out.to_shape((t_x * m, n_a)).expect("contiguous slice"); // (T·m, n_a)
        let dwy = a_out.t().dot(&dlogits); // (n_a, n_values)
        let dby = dlogits.sum_axis(Axis(0)); // (n_values)
        let da_out = dlogits.dot(&self.wy.t()); // (T·m, n_a): gradient reaching each a⟨t⟩ from ŷ⟨t⟩

        let mut dz_all = Array3::<f64>::zeros((t_x, m, 4 * n_a)); // (T, m, 4 n_a)
        let mut da_next = Array2::<f64>::zeros((m, n_a)); // (m, n_a)
        let mut dc_next = Array2::<f64>::zeros((m, n_a)); // (m, n_a)
        for t in (0..t_x).rev() {
            let g = cache.gates.index_axis(Axis(0), t); // (m, 4 n_a)
            let c_t = cache.c.index_axis(Axis(0), t + 1); // c⟨t⟩ (m, n_a)
            let c_prev = cache.c.index_axis(Axis(0), t); // c⟨t−1⟩ (m, n_a)
            let mut dz = dz_all.index_axis_mut(Axis(0), t); // (m, 4 n_a)
            for i in 0..m {
                for j in 0..n_a {
                    let (f, u, cc, o) = (g[[i, j]], g[[i, n_a + j]], g[[i, 2 * n_a + j]], g[[i, 3 * n_a + j]]);
                    let tc = c_t[[i, j]].tanh();
                    let da = da_out[[t * m + i, j]] + da_next[[i, j]];
                    let dc = dc_next[[i, j]] + da * o * (1.0 - tc * tc);
                    dz[[i, j]] = dc * c_prev[[i, j]] * f * (1.0 - f);
                    dz[[i, n_a + j]] = dc * cc * u * (1.0 - u);
                    dz[[i, 2 * n_a + j]] = dc * u * (1.0 - cc * cc);
                    dz[[i, 3 * n_a + j]] = da * tc * o * (1.0 - o);
                    dc_next[[i, j]] = dc * f;
                }
            }
            // da_next = dz·Waᵀ  (m, n_a)
            general_mat_mul(1.0, &dz, &self.wa.t(), 0.0, &mut da_next);
        }
        let dz_flat = dz_all.to_shape((t_x * m, 4 * n_a)).expect("contiguous"); // (T·m, 4 n_a)
        let a_prev = cache.a.slice(s![..t_x, .., ..]);
        let a_prev = a_prev.to_shape((t_x * m, n_a)).expect("contiguous slice"); // (T·m, n_a)
        let dwa = a_prev.t().dot(&dz_flat); // (n_a, 4 n_a)
        let db = dz_flat.sum_axis(Axis(0)); // (4 n_a)
        let mut dwx = Array2::<f64>::zeros(self.wx.raw_dim()); // (n_values, 4 n_a)
        for t in 0..t_x {
            for i in 0..m {
                if let Some(v) = batch.x[i * t_x + t] {
                    let mut row = dwx.row_mut(v);
                    row += &dz_flat.row(t * m + i);
                }
            }
        }
        JazzGradients { dwx, dwa, db, dwy, dby }
    }

    /// Full-batch training: `epochs` Adam updates on `batch`. `on_epoch(epoch, stats)` is called
    /// after each epoch and may return `false` to stop early (cancel). Returns the stats of
    /// every epoch done; a non-finite loss stops with `CoreError::Diverged`.
    pub fn fit(
        &mut self,
        batch: &JazzBatch,
        epochs: usize,
        adam: &mut Adam,
        mut on_epoch: impl FnMut(usize, EpochStats) -> bool,
    ) -> Result<Vec<EpochStats>> {
        self.validate()?;
        batch.validate(self.n_values())?;
        let mut history = Vec::with_capacity(epochs);
        for epoch in 0..epochs {
            let cache = self.forward(batch);
            let stats = Self::stats(&cache, batch);
            if !stats.loss.is_finite() {
                return Err(CoreError::Diverged(format!("jazz model: loss became {} at epoch {}", stats.loss, epoch + 1)));
            }
            let g = self.backward(&cache, batch);
            let grads: [&[f64]; 5] = [
                g.dwx.as_slice().expect("contiguous"),
                g.dwa.as_slice().expect("contiguous"),
                g.db.as_slice().expect("contiguous"),
                g.dwy.as_slice().expect("contiguous"),
                g.dby.as_slice().expect("contiguous"),
            ];
            adam.step(&mut self.params_mut(), &grads)?;
            history.push(stats);
            if !on_epoch(epoch, stats) {
                break;
            }
        }
        Ok(history)
    }

    /// The start of the inference loop: zero `x`, `a`, `c`.
    pub fn zero_state(&self) -> InferenceState {
        InferenceState { a: Array1::zeros(self.n_a()), c: Array1::zeros(self.n_a()), x: None }
    }

    /// One inference step: runs the cell from `state` and returns the softmax `ŷ` (n_values).
    /// `state.a`, `state.c` are updated; `state.x` is left for the caller to set.
    pub fn step_probs(&self, state: &mut InferenceState) -> Result<Array1<f64>> {
        let n_a = self.n_a();
        if state.a.len() != n_a || state.c.len() != n_a {
            return Err(CoreError::ShapeMismatch {
                name: "state".into(),
                expected: format!("a and c of length {n_a}"),
                actual: format!("{} and {}", state.a.len(), state.c.len()),
            });
        }
        if let Some(v) = state.x.filter(|&v| v >= self.n_values()) {
            return Err(CoreError::invalid(format!("state.x = {v}: expected a value index < {}", self.n_values())));
        }
        let a_prev = state.a.view().insert_axis(Axis(0)); // (1, n_a)
        let c_prev = state.c.view().insert_axis(Axis(0)); // (1, n_a)
        let mut gates = Array2::zeros((1, 4 * n_a)); // (1, 4 n_a)
        let mut c_next = Array2::zeros((1, n_a));
        let mut a_next = Array2::zeros((1, n_a));
        self.cell_step(&[state.x], a_prev, c_prev, &mut gates.view_mut(), &mut c_next.view_mut(), &mut a_next.view_mut());
        state.a = a_next.row(0).to_owned();
        state.c = c_next.row(0).to_owned();
        let mut p = state.a.dot(&self.wy) + &self.by; // (n_values)
        let max = p.fold(f64::NEG_INFINITY, |acc, &v| acc.max(v));
        p.mapv_inplace(|v| (v - max).exp());
        let sum = p.sum();
        p /= sum;
        Ok(p)
    }

    /// One step of the music inference loop: run the cell, pick the next value
    /// ([`pick_value`]) and feed its one-hot back (`state.x = Some(index)`). Returns the index.
    pub fn step_sample(&self, state: &mut InferenceState, temperature: f64, rng: &mut RandomState) -> Result<usize> {
        let p = self.step_probs(state)?;
        let v = pick_value(p.as_slice().expect("contiguous"), temperature, rng)?;
        state.x = Some(v);
        Ok(v)
    }

    /// The course's `music_inference_model` + `predict_and_sample`: from zero `x`, `a`, `c`, run
    /// `t_y` steps feeding back each chosen value; returns the `t_y` value indices.
    pub fn predict_and_sample(&self, t_y: usize, temperature: f64, seed: u32) -> Result<Vec<usize>> {
        self.validate()?;
        let mut rng = RandomState::new(seed);
        let mut state = self.zero_state();
        (0..t_y).map(|_| self.step_sample(&mut state, temperature, &mut rng)).collect()
    }
}

fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (k, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = k;
        }
    }
    best
}

/// Picks a value from the softmax `p`: `temperature == 0` takes the argmax (the course's
/// `predict_and_sample`); `temperature > 0` samples from `p^(1/T)` renormalised (deepjazz's
/// `__sample`) with one `choice` draw from `rng`.
pub fn pick_value(p: &[f64], temperature: f64, rng: &mut RandomState) -> Result<usize> {
    if !(temperature.is_finite() && temperature >= 0.0) {
        return Err(CoreError::invalid(format!("temperature must be a finite number >= 0, got {temperature}")));
    }
    if p.is_empty() {
        return Err(CoreError::invalid("pick_value: p is empty"));
    }
    if temperature == 0.0 {
        return Ok(argmax(p));
    }
    // p^(1/T) computed in log space, scaled by the max so it never underflows to all zeros
    let logs: Vec<f64> = p.iter().map(|&q| q.max(1e-300).ln() / temperature).collect();
    let max = logs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = logs.iter().map(|&l| (l - max).exp()).collect();
    let total: f64 = w.iter().sum();
    let q: Vec<f64> = w.iter().map(|&x| x / total).collect();
    rng.choice_p(&q)
}
