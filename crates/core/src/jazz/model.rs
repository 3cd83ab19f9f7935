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
//! Training speed (see [`super::network`]): `fit` computes in float32 (`fit_with_precision` also
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
use ndarray::{s, Array1, Array2, Axis};

use crate::error::{CoreError, Result};
use crate::nn::recurrent::lstm_activations;
use crate::nn::sample::{check_temperature, pick, Scores};
use crate::random::RandomState;

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

    /// One step of the cell for a single sequence, in f64, with the engine's LSTM kernel:
    /// `z = a·Wa + b + Wx[x]` (public gate order), then the activations in the engine's
    /// `[i | f | g | o]` order; `a`, `c` are updated in place.
    fn cell_step(&self, x: Option<usize>, a: &mut Array1<f64>, c: &mut Array1<f64>) {
        let n_a = self.n_a();
        let a_prev = a.view().insert_axis(Axis(0)); // (1, n_a)
        let mut z = Array2::zeros((1, 4 * n_a)); // (1, 4 n_a)
        general_mat_mul(1.0, &a_prev, &self.wa, 0.0, &mut z);
        let mut z = z.row(0).to_owned();
        z += &self.b;
        if let Some(v) = x {
            z += &self.wx.row(v);
        }
        let mut gates = vec![0.0; 4 * n_a];
        copy_gates(z.as_slice().expect("contiguous"), &mut gates, n_a, |v| v);
        let c_prev = c.to_vec();
        let mut tc = vec![0.0; n_a];
        lstm_activations(
            &mut gates,
            &c_prev,
            c.as_slice_mut().expect("contiguous"),
            &mut tc,
            a.as_slice_mut().expect("contiguous"),
            n_a,
        );
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
        self.cell_step(state.x, &mut state.a, &mut state.c);
        let mut p = state.a.dot(&self.wy) + &self.by; // (n_values)
        let max = p.fold(f64::NEG_INFINITY, |acc, &v| acc.max(v));
        p.mapv_inplace(|v| (v - max).exp());
        let sum = p.sum();
        p /= sum;
        Ok(p)
    }

    /// One step of the music inference loop: run the cell, pick the next value
    /// ([`pick_value_top_k`]; `top_k` 0 = all values) and feed its one-hot back
    /// (`state.x = Some(index)`). Returns the index.
    pub fn step_sample(
        &self,
        state: &mut InferenceState,
        temperature: f64,
        top_k: usize,
        rng: &mut RandomState,
    ) -> Result<usize> {
        let p = self.step_probs(state)?;
        let v = pick_value_top_k(p.as_slice().expect("contiguous"), temperature, top_k, rng)?;
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
            .map(|_| self.step_sample(&mut state, temperature, 0, &mut rng))
            .collect()
    }
}

/// Picks a value from the softmax `p`: `temperature == 0` takes the argmax (the course's
/// `predict_and_sample`); `temperature > 0` samples from `p^(1/T)` renormalised (deepjazz's
/// `__sample`) with one `choice` draw from `rng` (see [`crate::nn::sample`]).
pub fn pick_value(p: &[f64], temperature: f64, rng: &mut RandomState) -> Result<usize> {
    pick_value_top_k(p, temperature, 0, rng)
}

/// [`pick_value`] restricted to the `top_k` most likely values (0 = all, 1 = argmax), as the
/// language model's `top_k` (one sampler, [`crate::nn::sample::pick`]).
pub fn pick_value_top_k(
    p: &[f64],
    temperature: f64,
    top_k: usize,
    rng: &mut RandomState,
) -> Result<usize> {
    check_temperature(temperature)?;
    if p.is_empty() {
        return Err(CoreError::invalid("pick_value: p is empty"));
    }
    pick(
        p,
        Scores::Probabilities,
        temperature,
        top_k,
        &mut Vec::new(),
        rng,
    )
}

/// Copies rows of `4 n_a` gate columns from `src` to `dst`, swapping the first two blocks:
/// the public order `[f | i | c | o]` ⇄ the order `[i | f | g | o]` of rnnlab's LSTM kernels
/// (`nn::recurrent`). The swap is its own inverse.
pub(super) fn copy_gates<S: Copy, D>(src: &[S], dst: &mut [D], n_a: usize, conv: impl Fn(S) -> D) {
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
