//! The djmodel's training passes on the shared recurrent engine ([`crate::nn::recurrent`]):
//! the input is given as value indices (a table row per value: `b + Wx[v]`, and `b` alone for
//! the zero vector), the LSTM time loops are the language model's, and this file adds the
//! Dense softmax head and the weight gradients.

use rayon::prelude::*;

use super::batch::JazzBatch;
use super::model::{copy_gates, JazzGradients, JazzModel};
use crate::error::Result;
use crate::math::gemm::{par_matmul_grid, Op};
use crate::math::{Float, SimdKernel};
use crate::nn::cells::Cell;
use crate::nn::recurrent::{self, token_input_grads, Dims, RecurrentWeights, StepInput};

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

impl JazzModel {
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
            dwx: ndarray::Array2::from_shape_vec((n_v, 4 * n_a), dwx).expect("dwx shape"),
            dwa: ndarray::Array2::from_shape_vec((n_a, 4 * n_a), dwa).expect("dwa shape"),
            db: ndarray::Array1::from_vec(db),
            dwy: ndarray::Array2::from_shape_vec((n_a, n_v), dwy).expect("dwy shape"),
            dby: ndarray::Array1::from_vec(dby),
        };
        Ok((stats, grads))
    }
}

/// Gradient buffers in the order and shapes of [`JazzModel::params_mut`].
pub(super) fn grad_buffers(model: &JazzModel) -> [Vec<f64>; 5] {
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

fn copy_conv<S: Copy, D>(src: &[S], dst: &mut [D], conv: impl Fn(S) -> D) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = conv(s);
    }
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

/// [`softmax_rows_with`] for one block of rows, on the SIMD level in force.
struct SoftmaxRows<'a, T> {
    p: &'a mut [T],
    by: &'a [T],
    y: &'a [u32],
    inv_m: T,
    loss: &'a mut [f64],
    hit: &'a mut [bool],
}

impl<T: Float> SimdKernel for SoftmaxRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        softmax_rows_with(
            self.p,
            self.by,
            self.y,
            self.inv_m,
            self.loss,
            self.hit,
            T::exp_fast,
        )
    }
}

/// Everything one training epoch needs, allocated once per `fit`, in the compute type `T`.
///
/// Rows are time-major (`t·m + i`), the buffers of [`crate::nn::recurrent`]. Gate columns are in
/// the engine's `[i | f | g | o]` order (see [`copy_gates`]). The batch is cut into blocks of
/// [`ROWS`] windows, each running its whole time loop on one thread; the weight gradients are
/// products cut into blocks of [`COLS`] output columns, and every other reduction runs in one
/// fixed order: results do not depend on the number of threads.
pub(super) struct Workspace<T: Float> {
    m: usize,
    t_x: usize,
    n_a: usize,
    n_v: usize,
    /// Input value of each row (T·m); `n_v` for the zero vector.
    x: Vec<u32>,
    /// Targets (T·m).
    y: Vec<u32>,
    /// The input table ((V+1), 4H): row v = b + Wx[v], row V = b (the zero vector's).
    table: Vec<T>,
    /// Wa (H, 4H) = W_hhᵀ of the engine, for the forward step.
    wa: Vec<T>,
    /// Waᵀ (4H, H) = W_hh of the engine, for the backward step: the `gemm` crate runs
    /// dZ·Waᵀ twice as fast from a row-major copy as from strides over `wa`.
    wa_t: Vec<T>,
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
    /// Gradients in `T`: of the table ((V+1), 4H; row V unused), then as the parameters.
    d_table: Vec<T>,
    dwa: Vec<T>,
    db: Vec<T>,
    dwy: Vec<T>,
    dby: Vec<T>,
}

impl<T: Float> Workspace<T> {
    /// Buffers for `batch` (already validated against `model`).
    pub(super) fn new(model: &JazzModel, batch: &JazzBatch) -> Self {
        let (m, t_x, n_a, n_v) = (batch.m, batch.t_x, model.n_a(), model.n_values());
        let n = m * t_x;
        let (mut x, mut y) = (vec![n_v as u32; n], vec![0u32; n]);
        for i in 0..m {
            for t in 0..t_x {
                x[t * m + i] = batch.x[i * t_x + t].map_or(n_v as u32, |v| v as u32);
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
            table: zeros((n_v + 1) * 4 * n_a),
            wa: zeros(n_a * 4 * n_a),
            wa_t: zeros(n_a * 4 * n_a),
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
            d_table: zeros((n_v + 1) * 4 * n_a),
            dwa: zeros(n_a * 4 * n_a),
            db: zeros(4 * n_a),
            dwy: zeros(n_a * n_v),
            dby: zeros(n_v),
        }
    }

    /// Rounds the model's parameters to `T` (gate blocks swapped) and builds the input table.
    pub(super) fn load_params(&mut self, model: &JazzModel) {
        let (h, g) = (self.n_a, 4 * self.n_a);
        // row-major views (no copy for the arrays this module builds)
        let (wx, wa, b) = (
            model.wx.as_standard_layout(),
            model.wa.as_standard_layout(),
            model.b.as_standard_layout(),
        );
        let (wy, by) = (model.wy.as_standard_layout(), model.by.as_standard_layout());
        let (wx, b) = (
            wx.as_slice().expect("standard layout"),
            b.as_slice().expect("standard layout"),
        );
        // the zero vector's row: b alone; then row v = b + Wx[v]
        let (rows, b_row) = self.table.split_at_mut(self.n_v * g);
        copy_gates(b, b_row, h, T::from_f64);
        copy_gates(wx, rows, h, T::from_f64);
        for row in rows.chunks_exact_mut(g) {
            for (zv, &bv) in row.iter_mut().zip(&*b_row) {
                *zv = bv + *zv;
            }
        }
        copy_gates(
            wa.as_slice().expect("standard layout"),
            &mut self.wa,
            h,
            T::from_f64,
        );
        for (k, row) in self.wa.chunks_exact(g).enumerate() {
            for (j, &w) in row.iter().enumerate() {
                self.wa_t[j * h + k] = w;
            }
        }
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
    pub(super) fn store_grads(&self, out: &mut [Vec<f64>; 5]) {
        let h = self.n_a;
        copy_gates(&self.d_table[..self.n_v * 4 * h], &mut out[0], h, T::to_f64);
        copy_gates(&self.dwa, &mut out[1], h, T::to_f64);
        copy_gates(&self.db, &mut out[2], h, T::to_f64);
        copy_conv(&self.dwy, &mut out[3], T::to_f64);
        copy_conv(&self.dby, &mut out[4], T::to_f64);
    }

    fn dims(&self) -> Dims {
        Dims {
            block_rows: ROWS,
            zero_start: true,
            ..Dims::new(self.t_x, self.m, self.n_a)
        }
    }

    /// Forward over the batch; returns the loss and accuracy and leaves dLogits in `p`.
    pub(super) fn forward(&mut self) -> EpochStats {
        let (m, t_x, h, v) = (self.m, self.t_x, self.n_a, self.n_v);
        recurrent::forward(
            Cell::Lstm,
            self.dims(),
            RecurrentWeights {
                w_hh: &self.wa_t,
                w_hh_t: Some(&self.wa),
            },
            StepInput::Tokens {
                ids: &self.x,
                table: &self.table,
            },
            &mut self.z,
            &mut self.a,
            &mut self.c,
            &mut self.tc,
        );

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
            .for_each(|(blk, ((p, loss), hit))| {
                let y = &y[blk * SOFTMAX_ROWS..blk * SOFTMAX_ROWS + loss.len()];
                T::vectorized(SoftmaxRows {
                    p,
                    by,
                    y,
                    inv_m,
                    loss,
                    hit,
                });
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
    pub(super) fn backward(&mut self) {
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

        recurrent::backward(
            Cell::Lstm,
            self.dims(),
            &self.wa_t,
            &mut self.z,
            &self.a,
            &self.c,
            &mut self.tc,
            &self.da,
            &mut self.da_next,
            &mut self.dc_next,
        );

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
        // db = Σ_rows dZ and dWx[x] += dZ rows (the table's gradient), rows summed in order
        token_input_grads(&self.z, &self.x, g, &mut self.d_table, Some(&mut self.db));
    }
}
