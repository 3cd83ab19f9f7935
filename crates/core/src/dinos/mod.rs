//! Dinosaurus Island: the character-level RNN of deeplearning.ai Sequence Models, week 1, with
//! the course's functions and semantics over *index sequences*: a one-hot input is a column
//! pick of `Wax`, and `None` is the course's zero input vector.
//!
//! ```text
//! a⟨t⟩ = tanh(Wax x⟨t⟩ + Waa a⟨t−1⟩ + b)        ŷ⟨t⟩ = softmax(Wya a⟨t⟩ + by)
//! loss = Σ_t −log ŷ⟨t⟩[y⟨t⟩]
//! ```
//!
//! # Exactness
//! Every floating-point operation follows the numpy reference (`bench/dinos/reference.py`)
//! in the same order, so the results are numpy's bit for bit (checked on the whole
//! 35 000-iteration course trace, see `tests/dinos_course.rs`):
//! - `np.dot(W, v)` on a matrix and a column is an OpenBLAS `dgemv`; `gemv_t` and
//!   `gemv_n` reproduce the summation order of its x86-64 kernels (the Haswell/SkylakeX
//!   ones numpy wheels use on AVX2/AVX-512 machines: four strided FMA lanes, 4-row blocks,
//!   the remainder columns folded in last) for dot lengths below 2048, single-threaded
//!   (numpy's BLAS may split gemvs of ≥ 9216 elements over threads);
//! - `np.exp` and `np.tanh` are numpy's own float64 algorithms ([`npy_exp`]: Intel SVML's,
//!   which numpy uses on AVX-512 machines; [`npy_tanh`]: numpy's SIMD tanh), not the C
//!   library's, which differ in the last bit for a few percent of arguments — enough to make
//!   a training run drift from numpy's after ~14 000 iterations;
//! - the outer products of the backward pass are single roundings, added as numpy adds;
//! - `e_x.sum(axis=0)` is numpy's pairwise summation ([`pairwise_sum`]);
//! - `clip` and the SGD update are element-wise, as numpy.
//!
//! Only the loss uses the C library's `ln` (numpy's differs in the last bit at times); it is
//! reported, never fed back.
//!
//! [`Arithmetic::Fast`] runs the same training step with the sums in the fastest order instead
//! (about twice as fast; numpy's trace through iteration 12 000, then last-bit drift).
//!
//! # Layout and speed
//! Parameters are ndarray matrices in the course's shapes (C order). The hot path works on
//! flat slices in a preallocated [`CharRnnWorkspace`] and allocates nothing per character.
//! The backward pass first runs the recurrence (keeping `dy⟨t⟩`, `daraw⟨t⟩`), then forms
//! each gradient element as its sum over `t = T−1 … 0` — numpy's additions in numpy's order,
//! with each gradient row written once — and, under the course's element-wise clip,
//! clips and applies each gradient block as soon as it is formed.
//!
//! The kernels exist at three levels chosen at run time: portable Rust (which defines every
//! result), AVX2+FMA and AVX-512F (x86-64). Every lane of the SIMD versions performs the
//! portable code's operations, so all levels give the same bits (unit-tested); the
//! environment variable `RNNLAB_SIMD=portable|avx2|avx512` caps the level for benchmarks.
//!
//! # Files
//! - `mod.rs`: the parameter and gradient types and their checks;
//! - `course.rs`: the course's functions (`initialize_parameters`, `rnn_forward`,
//!   `rnn_backward`, `clip`, `optimize`, …);
//! - `numpy_order.rs`: the workspace and the kernels in numpy's order (`numpy_order/simd.rs`:
//!   the kernels written once over `math/lanes.rs`; `numpy_order/avx2.rs`: OpenBLAS's 4-lane
//!   `gemv_t` and the 4-lane instances; `numpy_order/avx512.rs`: the 8-lane instances);
//! - `fast.rs`: [`Arithmetic::Fast`]'s packed model and kernels;
//! - `sample.rs`: `sample`, `sample_many`;
//! - `beam.rs`: `beam_names`, beam search over names (on `nn::beam`);
//! - `trainer.rs`: [`DinoTrainer`], the course's `model()` loop as a resumable trainer.

use ndarray::Array2;

use crate::error::{CoreError, Result};
#[cfg(doc)]
use crate::math::npy::{npy_exp, npy_tanh, pairwise_sum};

mod beam;
mod course;
mod fast;
mod numpy_order;
mod sample;
mod trainer;

pub use beam::{beam_names, BeamName};
pub use course::{
    clip, clip_global_norm, initial_loss, initialize_parameters, initialize_parameters_seeded,
    optimize, optimize_in, rnn_backward, rnn_forward, smooth, update_parameters, CharRnnCache,
};
pub use fast::{Arithmetic, FastCharRnn};
pub use numpy_order::CharRnnWorkspace;
pub use sample::{sample, sample_many, NameSampleOptions};
pub use trainer::*;

/// The course's cap on sampled characters (`counter != 50`).
pub const COURSE_MAX_SAMPLE_LENGTH: usize = 50;
/// The course's element-wise clip value in `optimize`.
pub const COURSE_CLIP: f64 = 5.0;

/// Parameters of the character-level RNN, in the course's shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct CharRnnParams {
    /// Input to hidden, `(n_a, n_x)`.
    pub wax: Array2<f64>,
    /// Hidden to hidden, `(n_a, n_a)`.
    pub waa: Array2<f64>,
    /// Hidden to output, `(n_y, n_a)`.
    pub wya: Array2<f64>,
    /// Hidden bias, `(n_a, 1)`.
    pub b: Array2<f64>,
    /// Output bias, `(n_y, 1)`.
    pub by: Array2<f64>,
}

/// Gradients of the loss with respect to [`CharRnnParams`], same shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct CharRnnGradients {
    /// `(n_a, n_x)`
    pub dwax: Array2<f64>,
    /// `(n_a, n_a)`
    pub dwaa: Array2<f64>,
    /// `(n_y, n_a)`
    pub dwya: Array2<f64>,
    /// `(n_a, 1)`
    pub db: Array2<f64>,
    /// `(n_y, 1)`
    pub dby: Array2<f64>,
}

/// How `optimize` limits the gradients before the update: the optimizers' one `Clip`.
/// `value` is the course's element-wise clip (every element into `[−value, value]`), `norm`
/// scales all gradients together so that their global L2 norm is at most `norm`; the name
/// model takes one of the two (or neither), not both.
pub use crate::nn::optim::Clip;

/// A clip the name model runs: each bound a number >= 0, and not both (its checkpoints
/// name one mode: `none`, `elementwise:v` or `global_norm:v`).
pub(crate) fn check_clip(clip: &Clip) -> Result<()> {
    if let (Some(value), Some(norm)) = (clip.value, clip.norm) {
        return Err(CoreError::invalid(format!(
            "clip: the name model clips by value (element-wise) or by global norm, not both; \
             got value {value} and norm {norm}"
        )));
    }
    clip.value.or(clip.norm).map_or(Ok(()), check_clip_value)
}

/// A finite learning rate (the update is `W − lr·dW`).
pub(crate) fn check_learning_rate(learning_rate: f64) -> Result<()> {
    if !learning_rate.is_finite() {
        return Err(CoreError::invalid(format!(
            "learning_rate: expected a finite number, got {learning_rate}"
        )));
    }
    Ok(())
}

pub(crate) fn check_clip_value(v: f64) -> Result<()> {
    if v.is_nan() || v < 0.0 {
        return Err(CoreError::invalid(format!(
            "clip: max value must be a number >= 0, got {v}"
        )));
    }
    Ok(())
}

/// `np.clip(v, −max_value, max_value)` for one element (NaN stays NaN).
#[inline(always)]
pub(crate) fn clip_value(v: f64, max_value: f64) -> f64 {
    if v > max_value {
        max_value
    } else if v < -max_value {
        -max_value
    } else {
        v
    }
}

/// Check an index sequence pair and the initial state against the parameter sizes.
pub(crate) fn check_sequence(
    x: &[Option<usize>],
    y: &[usize],
    a0: &[f64],
    n_a: usize,
    n_x: usize,
    n_y: usize,
) -> Result<()> {
    if x.is_empty() {
        return Err(CoreError::invalid(
            "x: expected at least one time step, got 0",
        ));
    }
    if x.len() != y.len() {
        return Err(CoreError::ShapeMismatch {
            name: "y".into(),
            expected: format!("{} indices (one per input step)", x.len()),
            actual: format!("{}", y.len()),
        });
    }
    for (t, xt) in x.iter().enumerate() {
        if let Some(ix) = *xt {
            if ix >= n_x {
                return Err(CoreError::invalid(format!(
                    "x[{t}]: index {ix} out of range for a vocabulary of {n_x}"
                )));
            }
        }
    }
    for (t, &yt) in y.iter().enumerate() {
        if yt >= n_y {
            return Err(CoreError::invalid(format!(
                "y[{t}]: index {yt} out of range for a vocabulary of {n_y}"
            )));
        }
    }
    if a0.len() != n_a {
        return Err(CoreError::ShapeMismatch {
            name: "a_prev".into(),
            expected: format!("({n_a}, 1)"),
            actual: format!("({}, 1)", a0.len()),
        });
    }
    Ok(())
}

pub(crate) fn shape_err(name: &str, expected: (usize, usize), actual: &[usize]) -> CoreError {
    CoreError::ShapeMismatch {
        name: name.to_string(),
        expected: format!("({}, {})", expected.0, expected.1),
        actual: format!("{actual:?}"),
    }
}

/// `a` must be `(rows, cols)` in standard (C) layout.
pub(crate) fn check_matrix(name: &str, a: &Array2<f64>, rows: usize, cols: usize) -> Result<()> {
    if a.dim() != (rows, cols) {
        return Err(shape_err(name, (rows, cols), a.shape()));
    }
    if !a.is_standard_layout() {
        return Err(CoreError::invalid(format!(
            "{name}: expected a C-order (standard layout) array; use .as_standard_layout()"
        )));
    }
    Ok(())
}

/// The flat data of a standard-layout matrix (checked by `check_matrix` beforehand).
pub(crate) fn flat<'a>(name: &str, a: &'a Array2<f64>) -> Result<&'a [f64]> {
    a.as_slice()
        .ok_or_else(|| CoreError::invalid(format!("{name}: expected a C-order array")))
}

pub(crate) fn flat_mut<'a>(name: &str, a: &'a mut Array2<f64>) -> Result<&'a mut [f64]> {
    a.as_slice_mut()
        .ok_or_else(|| CoreError::invalid(format!("{name}: expected a C-order array")))
}

impl CharRnnParams {
    /// Build from matrices, checking shapes and converting to C order.
    pub fn new(
        wax: Array2<f64>,
        waa: Array2<f64>,
        wya: Array2<f64>,
        b: Array2<f64>,
        by: Array2<f64>,
    ) -> Result<Self> {
        let std = |a: Array2<f64>| {
            if a.is_standard_layout() {
                a
            } else {
                a.as_standard_layout().into_owned()
            }
        };
        let p = CharRnnParams {
            wax: std(wax),
            waa: std(waa),
            wya: std(wya),
            b: std(b),
            by: std(by),
        };
        p.validate()?;
        Ok(p)
    }

    /// All-zero parameters.
    pub fn zeros(n_a: usize, n_x: usize, n_y: usize) -> Self {
        CharRnnParams {
            wax: Array2::zeros((n_a, n_x)),
            waa: Array2::zeros((n_a, n_a)),
            wya: Array2::zeros((n_y, n_a)),
            b: Array2::zeros((n_a, 1)),
            by: Array2::zeros((n_y, 1)),
        }
    }

    /// Hidden size.
    pub fn n_a(&self) -> usize {
        self.waa.nrows()
    }
    /// Input (vocabulary) size.
    pub fn n_x(&self) -> usize {
        self.wax.ncols()
    }
    /// Output (vocabulary) size.
    pub fn n_y(&self) -> usize {
        self.wya.nrows()
    }

    /// Check that the five shapes agree, the hidden size is at least 1 and the arrays are C-order.
    pub fn validate(&self) -> Result<()> {
        let (n_a, n_x, n_y) = (self.waa.nrows(), self.wax.ncols(), self.wya.nrows());
        if n_a == 0 || n_x == 0 || n_y == 0 {
            return Err(CoreError::invalid(format!(
                "CharRnnParams: n_a, n_x and n_y must be >= 1, got n_a={n_a}, n_x={n_x}, n_y={n_y}"
            )));
        }
        check_matrix("waa", &self.waa, n_a, n_a)?;
        check_matrix("wax", &self.wax, n_a, n_x)?;
        check_matrix("wya", &self.wya, n_y, n_a)?;
        check_matrix("b", &self.b, n_a, 1)?;
        check_matrix("by", &self.by, n_y, 1)?;
        Ok(())
    }

    pub(crate) fn view(&self) -> Result<ParamsRef<'_>> {
        self.validate()?;
        Ok(ParamsRef {
            wax: flat("wax", &self.wax)?,
            waa: flat("waa", &self.waa)?,
            wya: flat("wya", &self.wya)?,
            b: flat("b", &self.b)?,
            by: flat("by", &self.by)?,
            n_a: self.n_a(),
            n_x: self.n_x(),
            n_y: self.n_y(),
        })
    }
}

impl CharRnnGradients {
    /// Zero gradients for the given sizes.
    pub fn zeros(n_a: usize, n_x: usize, n_y: usize) -> Self {
        CharRnnGradients {
            dwax: Array2::zeros((n_a, n_x)),
            dwaa: Array2::zeros((n_a, n_a)),
            dwya: Array2::zeros((n_y, n_a)),
            db: Array2::zeros((n_a, 1)),
            dby: Array2::zeros((n_y, 1)),
        }
    }

    pub(crate) fn dims(&self) -> (usize, usize, usize) {
        (self.dwaa.nrows(), self.dwax.ncols(), self.dwya.nrows())
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let (n_a, n_x, n_y) = self.dims();
        check_matrix("dwaa", &self.dwaa, n_a, n_a)?;
        check_matrix("dwax", &self.dwax, n_a, n_x)?;
        check_matrix("dwya", &self.dwya, n_y, n_a)?;
        check_matrix("db", &self.db, n_a, 1)?;
        check_matrix("dby", &self.dby, n_y, 1)?;
        Ok(())
    }

    /// The five gradients in the course's order `dWax, dWaa, dWya, db, dby`.
    pub(crate) fn all_mut(&mut self) -> [&mut Array2<f64>; 5] {
        [
            &mut self.dwax,
            &mut self.dwaa,
            &mut self.dwya,
            &mut self.db,
            &mut self.dby,
        ]
    }
}

/// Flat, validated views of the parameters.
#[derive(Clone, Copy)]
pub(crate) struct ParamsRef<'a> {
    pub(crate) wax: &'a [f64], // (n_a, n_x)
    pub(crate) waa: &'a [f64], // (n_a, n_a)
    pub(crate) wya: &'a [f64], // (n_y, n_a)
    pub(crate) b: &'a [f64],   // (n_a,)
    pub(crate) by: &'a [f64],  // (n_y,)
    pub(crate) n_a: usize,
    pub(crate) n_x: usize,
    pub(crate) n_y: usize,
}

// ------------------------------------------------------------------ numpy-order kernels
