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
//! Training speed (see [`Workspace`]): `fit` computes in float32 (`fit_with_precision` also
//! offers float64; `evaluate` and `loss_and_gradients` are always float64) over buffers
//! allocated once per call, with the language model's AVX-512 `gemm` wrapper and vectorised
//! LSTM gate kernels (`math::gemm`, `nn::recurrent`), all T outputs of the Dense layer in one
//! product, and the batch split over rayon's threads in fixed blocks, so results are identical
//! for any thread count. The parameters and the Adam moments stay float64.
//!
//! Initialisation (deterministic for a seed, drawn from rnnlab's numpy-compatible
//! [`RandomState`]): Glorot-uniform `U(−l, l)`, `l = sqrt(6 / (fan_in + fan_out))`, for `Wx`,
//! `Wa` and `Wy` in that order, each filled row-major; `b` zero except the forget block = 1
//! (Keras' `unit_forget_bias`); `by` zero. (Keras uses an orthogonal recurrent kernel; rnnlab
//! uses Glorot-uniform there too, so the numbers are not Keras' but the scale is the same.)

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::error::{CoreError, Result};
use crate::math::float::{exp_f32, Float};
use crate::math::gemm::{matmul, par_matmul_grid, Op, SyncPtr};
use crate::nn::recurrent::{lstm_activations, lstm_backward_rows};
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

/// One epoch's report: the loss and accuracy of the full batch BEFORE that epoch's update
/// (what Keras prints).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochStats {
    /// Sum over the T_x outputs of the batch-mean cross-entropy.
    pub loss: f64,
    /// Share of (example, step) pairs whose argmax equals the target.
    pub accuracy: f64,
}

/// The element type of the forward and backward passes of [`JazzModel::fit_with_precision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// float32 (the default of [`JazzModel::fit`]): AVX-512 GEMMs and vectorised gates.
    #[default]
    F32,
    /// float64: the exact path (also used by `evaluate` and `loss_and_gradients`).
    F64,
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
        Ok(JazzModel {
            wx,
            wa,
            b,
            wy,
            by: Array1::zeros(n_values),
        })
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
                return Err(CoreError::ShapeMismatch {
                    name: name.into(),
                    expected: format!("{expected:?}"),
                    actual: format!("{actual:?}"),
                });
            }
        }
        Ok(())
    }

    /// One LSTM step for a batch, in f64 (the inference loop; training runs in [`Workspace`]):
    /// `z = a_prev·Wa + Wx[x] + b`, gates written to `gates` (m, 4 n_a), new `c` and `a`
    /// written to `c_next`, `a_next` (m, n_a).
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

    /// The loss `J` (sum over steps of the batch-mean cross-entropy) and the accuracy, in f64.
    pub fn evaluate(&self, batch: &JazzBatch) -> Result<EpochStats> {
        self.validate()?;
        batch.validate(self.n_values())?;
        let mut ws = Workspace::<f64>::new(self, batch);
        ws.load_params(self);
        Ok(ws.forward())
    }

    /// Loss, accuracy and the exact gradients of the loss (backpropagation through time), in f64.
    pub fn loss_and_gradients(&self, batch: &JazzBatch) -> Result<(EpochStats, JazzGradients)> {
        self.validate()?;
        batch.validate(self.n_values())?;
        let mut ws = Workspace::<f64>::new(self, batch);
        ws.load_params(self);
        let stats = ws.forward();
        ws.backward();
        let mut g = grad_buffers(self);
        ws.store_grads(&mut g);
        let (n_a, n_v) = (self.n_a(), self.n_values());
        let [dwx, dwa, db, dwy, dby] = g;
        let grads = JazzGradients {
            dwx: Array2::from_shape_vec((n_v, 4 * n_a), dwx).expect("dwx shape"),
            dwa: Array2::from_shape_vec((n_a, 4 * n_a), dwa).expect("dwa shape"),
            db: Array1::from_vec(db),
            dwy: Array2::from_shape_vec((n_a, n_v), dwy).expect("dwy shape"),
            dby: Array1::from_vec(dby),
        };
        Ok((stats, grads))
    }

    /// Full-batch training in float32 (see [`JazzModel::fit_with_precision`]).
    pub fn fit(
        &mut self,
        batch: &JazzBatch,
        epochs: usize,
        adam: &mut Adam,
        on_epoch: impl FnMut(usize, EpochStats) -> bool,
    ) -> Result<Vec<EpochStats>> {
        self.fit_with_precision(batch, epochs, adam, Precision::F32, on_epoch)
    }

    /// Full-batch training: `epochs` Adam updates on `batch`. `on_epoch(epoch, stats)` is called
    /// after each epoch and may return `false` to stop early (cancel). Returns the stats of
    /// every epoch done; a non-finite loss stops with `CoreError::Diverged`.
    ///
    /// The forward and backward passes run in `precision`; the parameters and the Adam moments
    /// stay f64 (each epoch rounds the parameters to the compute type, and the gradients come
    /// back as f64). Results are identical for any number of rayon threads.
    pub fn fit_with_precision(
        &mut self,
        batch: &JazzBatch,
        epochs: usize,
        adam: &mut Adam,
        precision: Precision,
        on_epoch: impl FnMut(usize, EpochStats) -> bool,
    ) -> Result<Vec<EpochStats>> {
        self.validate()?;
        batch.validate(self.n_values())?;
        match precision {
            Precision::F32 => self.fit_in::<f32>(batch, epochs, adam, on_epoch),
            Precision::F64 => self.fit_in::<f64>(batch, epochs, adam, on_epoch),
        }
    }

    fn fit_in<T: Float>(
        &mut self,
        batch: &JazzBatch,
        epochs: usize,
        adam: &mut Adam,
        mut on_epoch: impl FnMut(usize, EpochStats) -> bool,
    ) -> Result<Vec<EpochStats>> {
        let mut ws = Workspace::<T>::new(self, batch);
        let mut grads = grad_buffers(self);
        let mut history = Vec::with_capacity(epochs);
        for epoch in 0..epochs {
            // One hop onto rayon's pool per epoch: the parallel loops inside then start from a
            // worker thread instead of each waking the pool from outside.
            let stats = rayon::scope(|_| -> Result<EpochStats> {
                ws.load_params(self);
                let stats = ws.forward();
                if !stats.loss.is_finite() {
                    return Err(CoreError::Diverged(format!(
                        "jazz model: loss became {} at epoch {}",
                        stats.loss,
                        epoch + 1
                    )));
                }
                ws.backward();
                ws.store_grads(&mut grads);
                let g: [&[f64]; 5] = [&grads[0], &grads[1], &grads[2], &grads[3], &grads[4]];
                adam.step(&mut self.params_mut(), &g)?;
                Ok(stats)
            })?;
            history.push(stats);
            if !on_epoch(epoch, stats) {
                break;
            }
        }
        Ok(history)
    }

    /// The start of the inference loop: zero `x`, `a`, `c`.
    pub fn zero_state(&self) -> InferenceState {
        InferenceState {
            a: Array1::zeros(self.n_a()),
            c: Array1::zeros(self.n_a()),
            x: None,
        }
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
            return Err(CoreError::invalid(format!(
                "state.x = {v}: expected a value index < {}",
                self.n_values()
            )));
        }
        let a_prev = state.a.view().insert_axis(Axis(0)); // (1, n_a)
        let c_prev = state.c.view().insert_axis(Axis(0)); // (1, n_a)
        let mut gates = Array2::zeros((1, 4 * n_a)); // (1, 4 n_a)
        let mut c_next = Array2::zeros((1, n_a));
        let mut a_next = Array2::zeros((1, n_a));
        self.cell_step(
            &[state.x],
            a_prev,
            c_prev,
            &mut gates.view_mut(),
            &mut c_next.view_mut(),
            &mut a_next.view_mut(),
        );
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
    pub fn step_sample(
        &self,
        state: &mut InferenceState,
        temperature: f64,
        rng: &mut RandomState,
    ) -> Result<usize> {
        let p = self.step_probs(state)?;
        let v = pick_value(p.as_slice().expect("contiguous"), temperature, rng)?;
        state.x = Some(v);
        Ok(v)
    }

    /// The course's `music_inference_model` + `predict_and_sample`: from zero `x`, `a`, `c`, run
    /// `t_y` steps feeding back each chosen value; returns the `t_y` value indices.
    pub fn predict_and_sample(
        &self,
        t_y: usize,
        temperature: f64,
        seed: u32,
    ) -> Result<Vec<usize>> {
        self.validate()?;
        let mut rng = RandomState::new(seed);
        let mut state = self.zero_state();
        (0..t_y)
            .map(|_| self.step_sample(&mut state, temperature, &mut rng))
            .collect()
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
        return Err(CoreError::invalid(format!(
            "temperature must be a finite number >= 0, got {temperature}"
        )));
    }
    if p.is_empty() {
        return Err(CoreError::invalid("pick_value: p is empty"));
    }
    if temperature == 0.0 {
        return Ok(argmax(p));
    }
    // p^(1/T) computed in log space, scaled by the max so it never underflows to all zeros
    let logs: Vec<f64> = p
        .iter()
        .map(|&q| q.max(1e-300).ln() / temperature)
        .collect();
    let max = logs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = logs.iter().map(|&l| (l - max).exp()).collect();
    let total: f64 = w.iter().sum();
    let q: Vec<f64> = w.iter().map(|&x| x / total).collect();
    rng.choice_p(&q)
}

/// Gradient buffers in the order and shapes of [`JazzModel::params_mut`].
fn grad_buffers(model: &JazzModel) -> [Vec<f64>; 5] {
    [
        model.wx.len(),
        model.wa.len(),
        model.b.len(),
        model.wy.len(),
        model.by.len(),
    ]
    .map(|n| vec![0.0; n])
}

/// Batch rows per parallel block of the time loops. A constant, so the work is cut the same
/// way (and every number computed in the same order) whatever the number of threads. A
/// multiple of the 6-wide tiles of the `gemm` crate's AVX-512 kernels (30 rows: 7 µs per
/// forward step product, 32 rows: 13 µs), and m = 60 gives two blocks.
const ROWS: usize = 30;
/// Rows per parallel block of the tall Dense products (T·m rows).
const TALL_ROWS: usize = 300;
/// Output columns per parallel block of the weight-gradient products (fixed, as [`ROWS`]).
const COLS: usize = 64;
/// Rows per parallel block of the softmax.
const SOFTMAX_ROWS: usize = 64;
/// `x` of a step whose input is the zero vector.
const NO_INPUT: u32 = u32::MAX;

/// Copies rows of `4 n_a` gate columns from `src` to `dst`, swapping the first two blocks:
/// the public order `[f | i | c | o]` ⇄ the order `[i | f | g | o]` of rnnlab's LSTM kernels
/// (`nn::recurrent`). The swap is its own inverse.
fn copy_gates<S: Copy, D>(src: &[S], dst: &mut [D], n_a: usize, conv: impl Fn(S) -> D) {
    for (s, d) in src.chunks_exact(4 * n_a).zip(dst.chunks_exact_mut(4 * n_a)) {
        for j in 0..n_a {
            d[j] = conv(s[n_a + j]);
            d[n_a + j] = conv(s[j]);
        }
        for j in 2 * n_a..4 * n_a {
            d[j] = conv(s[j]);
        }
    }
}

fn copy_conv<S: Copy, D>(src: &[S], dst: &mut [D], conv: impl Fn(S) -> D) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = conv(s);
    }
}

/// `rows` rows of width `width` from row `row0` of the buffer behind `p`.
///
/// # Safety
/// The rows must lie inside the buffer and no other live slice may overlap them.
#[inline]
unsafe fn rows_of<'a, T>(p: SyncPtr<T>, row0: usize, rows: usize, width: usize) -> &'a mut [T] {
    std::slice::from_raw_parts_mut(p.0.add(row0 * width), rows * width)
}

/// Lanes of the row reductions (max, sum): 16 independent partial results combined in a fixed
/// order, so the loops vectorise and the numbers do not depend on the CPU.
const LANES: usize = 16;

/// Lane-wise reduction of `row` with `op` (associative up to rounding; fixed order).
#[inline(always)]
fn reduce_lanes<T: Float>(row: &[T], init: T, op: impl Fn(T, T) -> T) -> T {
    let mut acc = [init; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for ch in &mut chunks {
        for l in 0..LANES {
            acc[l] = op(acc[l], ch[l]);
        }
    }
    for (l, &e) in chunks.remainder().iter().enumerate() {
        acc[l] = op(acc[l], e);
    }
    let mut r = acc[0];
    for &a in &acc[1..] {
        r = op(r, a);
    }
    r
}

/// For each row of logits (V wide) in `p`: add `by`, softmax, the cross-entropy
/// `log Σ e^(z − max) − (z_y − max)` into `loss`, whether the argmax (first of ties) is the
/// target into `hit`, and leave `dLogits = (ŷ − onehot(y)) · inv_m` in the row.
#[inline(always)]
fn softmax_rows_with<T: Float>(
    p: &mut [T],
    by: &[T],
    y: &[u32],
    inv_m: T,
    loss: &mut [f64],
    hit: &mut [bool],
    exp: impl Fn(T) -> T,
) {
    let v = by.len();
    // pass 1, per row: + by, max, argmax, z_y − max, z − max
    for (((row, &yi), l), h) in p
        .chunks_exact_mut(v)
        .zip(y)
        .zip(loss.iter_mut())
        .zip(hit.iter_mut())
    {
        let row = &mut row[..v];
        for (zv, &bv) in row.iter_mut().zip(by) {
            *zv += bv;
        }
        let max = reduce_lanes(row, row[0], |a, b| if b > a { b } else { a });
        let best = row.iter().position(|&zv| zv == max).unwrap_or(0);
        let yi = yi as usize;
        *h = best == yi;
        for zv in row.iter_mut() {
            *zv -= max;
        }
        *l = -row[yi].to_f64(); // completed below with log Σ e^(z − max)
    }
    // e^(z − max) over the whole block at once: full vectors, no per-row remainder
    for zv in p.iter_mut() {
        *zv = exp(*zv);
    }
    // pass 2, per row: the sum, the loss, dLogits = (ŷ − onehot(y)) · inv_m
    for ((row, &yi), l) in p.chunks_exact_mut(v).zip(y).zip(loss.iter_mut()) {
        let row = &mut row[..v];
        let sum = reduce_lanes(row, T::ZERO, |a, b| a + b);
        *l += sum.to_f64().ln();
        let scale = inv_m / sum;
        for e in row.iter_mut() {
            *e *= scale;
        }
        row[yi as usize] -= inv_m;
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn softmax_rows_avx512(
    p: &mut [f32],
    by: &[f32],
    y: &[u32],
    inv_m: f32,
    loss: &mut [f64],
    hit: &mut [bool],
) {
    softmax_rows_with(p, by, y, inv_m, loss, hit, exp_f32)
}

/// [`softmax_rows_with`] with the vectorised `exp_f32` on AVX-512 for f32, the exact `exp` otherwise.
fn softmax_rows<T: Float>(
    p: &mut [T],
    by: &[T],
    y: &[u32],
    inv_m: T,
    loss: &mut [f64],
    hit: &mut [bool],
) {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
        // SAFETY: T is f32 (checked by TypeId), so the types are identical.
        let (p, by, inv_m) = unsafe {
            (
                &mut *(p as *mut [T] as *mut [f32]),
                &*(by as *const [T] as *const [f32]),
                *(&inv_m as *const T as *const f32),
            )
        };
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            // SAFETY: the CPU has the enabled features.
            return unsafe { softmax_rows_avx512(p, by, y, inv_m, loss, hit) };
        }
        return softmax_rows_with(p, by, y, inv_m, loss, hit, exp_f32);
    }
    softmax_rows_with(p, by, y, inv_m, loss, hit, T::exp)
}

/// Everything one training epoch needs, allocated once per `fit`, in the compute type `T`.
///
/// Rows are time-major (`t·m + i`). Gate columns are in the `[i | f | g | o]` order of the
/// shared LSTM kernels (see [`copy_gates`]). The batch is cut into blocks of [`ROWS`] windows,
/// each running its whole time loop on one thread with one GEMM per step; the weight
/// gradients are products cut into blocks of [`COLS`] output columns, and every other
/// reduction runs in one fixed order: results do not depend on the number of threads.
struct Workspace<T: Float> {
    m: usize,
    t_x: usize,
    n_a: usize,
    n_v: usize,
    /// Inputs (T·m), [`NO_INPUT`] for the zero vector.
    x: Vec<u32>,
    /// Targets (T·m).
    y: Vec<u32>,
    /// Parameters in `T` (gate blocks swapped): wx (V, 4H), wa (H, 4H), b (4H), wy (H, V), by (V).
    wx: Vec<T>,
    wa: Vec<T>,
    /// Waᵀ (4H, H), for the backward step: the `gemm` crate runs dZ·Waᵀ twice as fast from a
    /// row-major copy as from strides over `wa`.
    wa_t: Vec<T>,
    b: Vec<T>,
    wy: Vec<T>,
    by: Vec<T>,
    /// Gates (T·m, 4H): pre-activations → activations → dZ.
    z: Vec<T>,
    /// a⟨0..=T⟩ ((T+1)·m, H); a⟨0⟩ = 0.
    a: Vec<T>,
    /// c⟨0..=T⟩ ((T+1)·m, H); c⟨0⟩ = 0.
    c: Vec<T>,
    /// tanh c⟨1..=T⟩ (T·m, H).
    tc: Vec<T>,
    /// Logits → dLogits = (ŷ − onehot(y)) / m (T·m, V).
    p: Vec<T>,
    /// Gradient reaching each a⟨t⟩ from ŷ⟨t⟩ (T·m, H).
    da: Vec<T>,
    /// Backward carries (m, H).
    da_next: Vec<T>,
    dc_next: Vec<T>,
    /// Per-row cross-entropy and hit (T·m).
    row_loss: Vec<f64>,
    row_hit: Vec<bool>,
    /// Gradients in `T`, same layouts as the parameters.
    dwx: Vec<T>,
    dwa: Vec<T>,
    db: Vec<T>,
    dwy: Vec<T>,
    dby: Vec<T>,
}

impl<T: Float> Workspace<T> {
    /// Buffers for `batch` (already validated against `model`).
    fn new(model: &JazzModel, batch: &JazzBatch) -> Self {
        let (m, t_x, n_a, n_v) = (batch.m, batch.t_x, model.n_a(), model.n_values());
        let n = m * t_x;
        let (mut x, mut y) = (vec![NO_INPUT; n], vec![0u32; n]);
        for i in 0..m {
            for t in 0..t_x {
                x[t * m + i] = batch.x[i * t_x + t].map_or(NO_INPUT, |v| v as u32);
                y[t * m + i] = batch.y[i * t_x + t] as u32;
            }
        }
        let zeros = |k: usize| vec![T::ZERO; k];
        Workspace {
            m,
            t_x,
            n_a,
            n_v,
            x,
            y,
            wx: zeros(n_v * 4 * n_a),
            wa: zeros(n_a * 4 * n_a),
            wa_t: zeros(n_a * 4 * n_a),
            b: zeros(4 * n_a),
            wy: zeros(n_a * n_v),
            by: zeros(n_v),
            z: zeros(n * 4 * n_a),
            a: zeros((t_x + 1) * m * n_a),
            c: zeros((t_x + 1) * m * n_a),
            tc: zeros(n * n_a),
            p: zeros(n * n_v),
            da: zeros(n * n_a),
            da_next: zeros(m * n_a),
            dc_next: zeros(m * n_a),
            row_loss: vec![0.0; n],
            row_hit: vec![false; n],
            dwx: zeros(n_v * 4 * n_a),
            dwa: zeros(n_a * 4 * n_a),
            db: zeros(4 * n_a),
            dwy: zeros(n_a * n_v),
            dby: zeros(n_v),
        }
    }

    /// Rounds the model's parameters to `T` (gate blocks swapped).
    fn load_params(&mut self, model: &JazzModel) {
        let h = self.n_a;
        // row-major views (no copy for the arrays this module builds)
        let (wx, wa, b) = (
            model.wx.as_standard_layout(),
            model.wa.as_standard_layout(),
            model.b.as_standard_layout(),
        );
        let (wy, by) = (model.wy.as_standard_layout(), model.by.as_standard_layout());
        copy_gates(
            wx.as_slice().expect("standard layout"),
            &mut self.wx,
            h,
            T::from_f64,
        );
        copy_gates(
            wa.as_slice().expect("standard layout"),
            &mut self.wa,
            h,
            T::from_f64,
        );
        for (k, row) in self.wa.chunks_exact(4 * h).enumerate() {
            for (j, &w) in row.iter().enumerate() {
                self.wa_t[j * h + k] = w;
            }
        }
        copy_gates(
            b.as_slice().expect("standard layout"),
            &mut self.b,
            h,
            T::from_f64,
        );
        copy_conv(
            wy.as_slice().expect("standard layout"),
            &mut self.wy,
            T::from_f64,
        );
        copy_conv(
            by.as_slice().expect("standard layout"),
            &mut self.by,
            T::from_f64,
        );
    }

    /// The gradients as f64, in the public layout of [`JazzModel::params_mut`].
    fn store_grads(&self, out: &mut [Vec<f64>; 5]) {
        let h = self.n_a;
        copy_gates(&self.dwx, &mut out[0], h, T::to_f64);
        copy_gates(&self.dwa, &mut out[1], h, T::to_f64);
        copy_gates(&self.db, &mut out[2], h, T::to_f64);
        copy_conv(&self.dwy, &mut out[3], T::to_f64);
        copy_conv(&self.dby, &mut out[4], T::to_f64);
    }

    /// Forward over the batch; returns the loss and accuracy and leaves dLogits in `p`.
    fn forward(&mut self) -> EpochStats {
        let (m, t_x, h, v) = (self.m, self.t_x, self.n_a, self.n_v);
        let g = 4 * h;
        let (zp, ap, cp, tcp) = (
            SyncPtr(self.z.as_mut_ptr()),
            SyncPtr(self.a.as_mut_ptr()),
            SyncPtr(self.c.as_mut_ptr()),
            SyncPtr(self.tc.as_mut_ptr()),
        );
        let (x, wx, wa, b) = (&self.x[..], &self.wx[..], &self.wa[..], &self.b[..]);
        (0..m.div_ceil(ROWS)).into_par_iter().for_each(move |blk| {
            let (zp, ap, cp, tcp) = (zp, ap, cp, tcp);
            let b0 = blk * ROWS;
            let nb = ROWS.min(m - b0);
            for t in 0..t_x {
                // SAFETY: block `blk` touches only rows b0..b0+nb of each step; blocks are disjoint.
                unsafe {
                    let zt = rows_of(zp, t * m + b0, nb, g);
                    // z⟨t⟩ = b + Wx[x⟨t⟩]  (the one-hot input as a row pick)
                    for (r, zr) in zt.chunks_exact_mut(g).enumerate() {
                        match x[t * m + b0 + r] {
                            NO_INPUT => zr.copy_from_slice(b),
                            xv => {
                                let wr = &wx[xv as usize * g..(xv as usize + 1) * g];
                                for ((zv, &bv), &wv) in zr.iter_mut().zip(b).zip(wr) {
                                    *zv = bv + wv;
                                }
                            }
                        }
                    }
                    if t > 0 {
                        // z⟨t⟩ (nb, 4H) += a⟨t−1⟩ (nb, H) · Wa (H, 4H); a⟨0⟩ = 0 adds nothing
                        let a_prev = rows_of(ap, t * m + b0, nb, h);
                        matmul(zt, nb, g, h, a_prev, Op::N, wa, Op::N, true);
                    }
                    let c_prev = rows_of(cp, t * m + b0, nb, h);
                    let c_new = rows_of(cp, (t + 1) * m + b0, nb, h);
                    let tct = rows_of(tcp, t * m + b0, nb, h);
                    let a_new = rows_of(ap, (t + 1) * m + b0, nb, h);
                    lstm_activations(zt, c_prev, c_new, tct, a_new, h);
                }
            }
        });

        // All T outputs in one product: logits = a⟨1..=T⟩ (T·m, H) · Wy (H, V)
        let n = t_x * m;
        par_matmul_grid(
            &mut self.p,
            n,
            v,
            h,
            &self.a[m * h..],
            Op::N,
            &self.wy,
            Op::N,
            TALL_ROWS,
            v,
            false,
        );
        // + by, softmax, −log ŷ[y], argmax, dLogits
        let (by, y) = (&self.by[..], &self.y[..]);
        let inv_m = T::from_f64(1.0 / m as f64);
        self.p
            .par_chunks_mut(SOFTMAX_ROWS * v)
            .zip(self.row_loss.par_chunks_mut(SOFTMAX_ROWS))
            .zip(self.row_hit.par_chunks_mut(SOFTMAX_ROWS))
            .enumerate()
            .for_each(|(blk, ((pc, lc), hc))| {
                let yc = &y[blk * SOFTMAX_ROWS..blk * SOFTMAX_ROWS + lc.len()];
                softmax_rows(pc, by, yc, inv_m, lc, hc);
            });
        let mut loss = 0.0;
        for &l in &self.row_loss {
            loss += l / m as f64;
        }
        let hits = self.row_hit.iter().filter(|&&h| h).count();
        EpochStats {
            loss,
            accuracy: hits as f64 / n as f64,
        }
    }

    /// Backward through time from the dLogits left by [`Self::forward`]; fills the gradients.
    fn backward(&mut self) {
        let (m, t_x, h, v) = (self.m, self.t_x, self.n_a, self.n_v);
        let g = 4 * h;
        let n = t_x * m;
        // da = dLogits (T·m, V) · Wyᵀ (V, H)
        par_matmul_grid(
            &mut self.da,
            n,
            h,
            v,
            &self.p,
            Op::N,
            &self.wy,
            Op::T,
            TALL_ROWS,
            h,
            false,
        );
        // dWy = a⟨1..=T⟩ᵀ (H, T·m) · dLogits (T·m, V);  dby = Σ_rows dLogits
        par_matmul_grid(
            &mut self.dwy,
            h,
            v,
            n,
            &self.a[m * h..],
            Op::T,
            &self.p,
            Op::N,
            h,
            v.div_ceil(2),
            false,
        );
        self.dby.fill(T::ZERO);
        for row in self.p.chunks_exact(v) {
            for (d, &e) in self.dby.iter_mut().zip(row) {
                *d += e;
            }
        }

        let (zp, dhnp, dcnp) = (
            SyncPtr(self.z.as_mut_ptr()),
            SyncPtr(self.da_next.as_mut_ptr()),
            SyncPtr(self.dc_next.as_mut_ptr()),
        );
        let (c, tc, da, wa_t) = (&self.c[..], &self.tc[..], &self.da[..], &self.wa_t[..]);
        (0..m.div_ceil(ROWS)).into_par_iter().for_each(move |blk| {
            let (zp, dhnp, dcnp) = (zp, dhnp, dcnp);
            let b0 = blk * ROWS;
            let nb = ROWS.min(m - b0);
            // SAFETY: as in `forward`, each block owns rows b0..b0+nb of every buffer it writes.
            unsafe {
                let da_nx = rows_of(dhnp, b0, nb, h);
                let dc_nx = rows_of(dcnp, b0, nb, h);
                da_nx.fill(T::ZERO);
                dc_nx.fill(T::ZERO);
                for t in (0..t_x).rev() {
                    let zt = rows_of(zp, t * m + b0, nb, g);
                    let r0 = (t * m + b0) * h;
                    let (dat, tct, c_prev) = (
                        &da[r0..r0 + nb * h],
                        &tc[r0..r0 + nb * h],
                        &c[r0..r0 + nb * h],
                    );
                    lstm_backward_rows(zt, h, dat, da_nx, dc_nx, tct, c_prev);
                    if t > 0 {
                        // da⟨t−1⟩ (nb, H) = dZ⟨t⟩ (nb, 4H) · Waᵀ (4H, H)
                        matmul(da_nx, nb, h, g, zt, Op::N, wa_t, Op::N, false);
                    }
                }
            }
        });

        // dWa = a⟨0..T−1⟩ᵀ · dZ; a⟨0⟩ = 0, so the sum starts at step 1
        par_matmul_grid(
            &mut self.dwa,
            h,
            g,
            n - m,
            &self.a[m * h..],
            Op::T,
            &self.z[m * g..],
            Op::N,
            h,
            COLS,
            false,
        );
        // db = Σ_rows dZ and dWx[x] += dZ rows, cut by columns, rows summed in order
        let (dbp, dwxp) = (
            SyncPtr(self.db.as_mut_ptr()),
            SyncPtr(self.dwx.as_mut_ptr()),
        );
        let (z, x) = (&self.z[..], &self.x[..]);
        (0..g.div_ceil(COLS)).into_par_iter().for_each(move |blk| {
            let (dbp, dwxp) = (dbp, dwxp);
            let j0 = blk * COLS;
            // SAFETY: block `blk` owns columns j0..j0+w of db and dWx (and `g`-wide rows of dWx).
            unsafe {
                input_grads(
                    z,
                    x,
                    dbp.0.add(j0),
                    dwxp.0.add(j0),
                    j0,
                    COLS.min(g - j0),
                    g,
                    v,
                )
            };
        });
    }
}

/// Columns `j0..j0 + w` of `db = Σ_rows dZ` and of `dWx[x⟨r⟩] += dZ[r]`, for every row `r`
/// of `z` (`g` wide) in order. `db` and `dwx` point at column `j0` of the full buffers
/// (`dwx`: `n_v` rows of width `g`).
///
/// # Safety
/// `db` (`w` values) and `dwx` (`n_v` rows × `w`, stride `g`) must be writable and touched by
/// no other thread.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn input_grads_with<T: Float>(
    z: &[T],
    x: &[u32],
    db: *mut T,
    dwx: *mut T,
    j0: usize,
    w: usize,
    g: usize,
    n_v: usize,
) {
    let db = std::slice::from_raw_parts_mut(db, w);
    db.fill(T::ZERO);
    for vi in 0..n_v {
        std::slice::from_raw_parts_mut(dwx.add(vi * g), w).fill(T::ZERO);
    }
    for (zr, &xr) in z.chunks_exact(g).zip(x) {
        let zr = &zr[j0..j0 + w];
        for (d, &e) in db.iter_mut().zip(zr) {
            *d += e;
        }
        if xr != NO_INPUT {
            let dw = std::slice::from_raw_parts_mut(dwx.add(xr as usize * g), w);
            for (d, &e) in dw.iter_mut().zip(zr) {
                *d += e;
            }
        }
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn input_grads_avx512(
    z: &[f32],
    x: &[u32],
    db: *mut f32,
    dwx: *mut f32,
    j0: usize,
    w: usize,
    g: usize,
    n_v: usize,
) {
    input_grads_with(z, x, db, dwx, j0, w, g, n_v)
}

/// [`input_grads_with`] on AVX-512 for f32 when the CPU has it (same sums, same order).
///
/// # Safety
/// As [`input_grads_with`].
#[allow(clippy::too_many_arguments)]
unsafe fn input_grads<T: Float>(
    z: &[T],
    x: &[u32],
    db: *mut T,
    dwx: *mut T,
    j0: usize,
    w: usize,
    g: usize,
    n_v: usize,
) {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512dq")
    {
        // T is f32 (checked by TypeId): the casts change nothing.
        let z = &*(z as *const [T] as *const [f32]);
        return input_grads_avx512(z, x, db as *mut f32, dwx as *mut f32, j0, w, g, n_v);
    }
    input_grads_with(z, x, db, dwx, j0, w, g, n_v)
}
