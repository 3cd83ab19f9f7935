//! The vanilla RNN of the course, step by step: one cell forward/backward and the whole
//! sequence forward/backward, with the course's names and shapes (float64).
//!
//! ```text
//! a⟨t⟩ = tanh(Wax x⟨t⟩ + Waa a⟨t−1⟩ + ba)        x⟨t⟩ (n_x, m), a⟨t⟩ (n_a, m)
//! ŷ⟨t⟩ = softmax(Wya a⟨t⟩ + by)                  ŷ⟨t⟩ (n_y, m), softmax over each column
//! ```
//!
//! Backward (`dz = (1 − a⟨t⟩²) ∘ da⟨t⟩`, the gradient before the tanh):
//! `dxt = Waxᵀ dz`, `da_prev = Waaᵀ dz`, `dWax = dz x⟨t⟩ᵀ`, `dWaa = dz a⟨t−1⟩ᵀ`, `dba = Σ_m dz`.
//! The sequence backward feeds each step `da[:, :, t] + da_prev` (the hidden state reaches the
//! loss both directly and through step t+1) and sums the parameter gradients over time.
//!
//! Every function validates shapes and finiteness first and returns a [`CoreError`] naming the
//! argument (`xt`, `a_prev`, `parameters.Waa`, ...), the expected and the actual shape.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, Array3, ArrayView, ArrayView2, ArrayView3, Axis, Dimension, Zip};

use crate::course::activations::softmax_inplace;
use crate::error::{CoreError, Result};

// ------------------------------------------------------------------------------------------
// Argument checks (shared with lstm.rs)
// ------------------------------------------------------------------------------------------

/// numpy-style shape text: `(5, 10)`, `(3, 10, 4)`.
pub(crate) fn shape_text(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `name` must have exactly the shape `expected`.
pub(crate) fn expect_shape(name: &str, actual: &[usize], expected: &[usize]) -> Result<()> {
    if actual == expected {
        Ok(())
    } else {
        Err(CoreError::ShapeMismatch {
            name: name.to_string(),
            expected: shape_text(expected),
            actual: shape_text(actual),
        })
    }
}

/// Every value of `name` must be finite (no NaN, no ±∞); the error gives the flat C-order index.
pub(crate) fn expect_finite<D: Dimension>(name: &str, a: ArrayView<f64, D>) -> Result<()> {
    match a.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        None => Ok(()),
        Some((index, &value)) => Err(CoreError::NonFinite {
            name: name.to_string(),
            index,
            value,
        }),
    }
}

/// Shape, then finiteness.
pub(crate) fn expect_array<D: Dimension>(
    name: &str,
    a: ArrayView<f64, D>,
    expected: &[usize],
) -> Result<()> {
    expect_shape(name, a.shape(), expected)?;
    expect_finite(name, a)
}

// ------------------------------------------------------------------------------------------
// Parameters
// ------------------------------------------------------------------------------------------

/// Sizes of a vanilla RNN: input `n_x`, hidden `n_a`, output `n_y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RnnDims {
    pub n_x: usize,
    pub n_a: usize,
    pub n_y: usize,
}

/// The course's `parameters` dictionary for the RNN (`Wax`, `Waa`, `Wya`, `ba`, `by`).
#[derive(Debug, Clone, PartialEq)]
pub struct RnnParams {
    /// `Wax` (n_a, n_x): input → hidden.
    pub wax: Array2<f64>,
    /// `Waa` (n_a, n_a): hidden → hidden.
    pub waa: Array2<f64>,
    /// `Wya` (n_y, n_a): hidden → output.
    pub wya: Array2<f64>,
    /// `ba` (n_a, 1): hidden bias.
    pub ba: Array2<f64>,
    /// `by` (n_y, 1): output bias.
    pub by: Array2<f64>,
}

impl RnnParams {
    /// All-zero parameters of the given sizes.
    pub fn zeros(dims: RnnDims) -> Self {
        let RnnDims { n_x, n_a, n_y } = dims;
        RnnParams {
            wax: Array2::zeros((n_a, n_x)),
            waa: Array2::zeros((n_a, n_a)),
            wya: Array2::zeros((n_y, n_a)),
            ba: Array2::zeros((n_a, 1)),
            by: Array2::zeros((n_y, 1)),
        }
    }

    /// Sizes read from `Wax` (n_a, n_x) and `Wya` (n_y, ·), as the course does. Use
    /// [`validate`](Self::validate) to check that the other matrices agree.
    pub fn dims(&self) -> RnnDims {
        RnnDims {
            n_x: self.wax.ncols(),
            n_a: self.wax.nrows(),
            n_y: self.wya.nrows(),
        }
    }

    /// Checks that every matrix has the shape implied by [`dims`](Self::dims) and holds only
    /// finite values; errors name the matrix as `parameters.Waa` etc.
    pub fn validate(&self) -> Result<RnnDims> {
        let d = self.dims();
        expect_array("parameters.Wax", self.wax.view(), &[d.n_a, d.n_x])?;
        expect_array("parameters.Waa", self.waa.view(), &[d.n_a, d.n_a])?;
        expect_array("parameters.Wya", self.wya.view(), &[d.n_y, d.n_a])?;
        expect_array("parameters.ba", self.ba.view(), &[d.n_a, 1])?;
        expect_array("parameters.by", self.by.view(), &[d.n_y, 1])?;
        Ok(d)
    }
}

// ------------------------------------------------------------------------------------------
// One cell
// ------------------------------------------------------------------------------------------

/// What one cell's backward pass needs. As in the course, it also holds the parameters, so
/// [`rnn_cell_backward`] takes only the cache.
#[derive(Debug, Clone, PartialEq)]
pub struct RnnCellCache {
    /// a⟨t⟩ (n_a, m)
    pub a_next: Array2<f64>,
    /// a⟨t−1⟩ (n_a, m)
    pub a_prev: Array2<f64>,
    /// x⟨t⟩ (n_x, m)
    pub xt: Array2<f64>,
    pub params: RnnParams,
}

/// Gradients of one RNN cell (course names `dxt`, `da_prev`, `dWax`, `dWaa`, `dba`).
#[derive(Debug, Clone, PartialEq)]
pub struct RnnCellGradients {
    /// (n_x, m)
    pub dxt: Array2<f64>,
    /// (n_a, m)
    pub da_prev: Array2<f64>,
    /// (n_a, n_x)
    pub dwax: Array2<f64>,
    /// (n_a, n_a)
    pub dwaa: Array2<f64>,
    /// (n_a, 1)
    pub dba: Array2<f64>,
}

/// One step forward: `a_next = tanh(Wax xt + Waa a_prev + ba)`, `yt_pred = softmax(Wya a_next + by)`.
///
/// Shapes: `xt` (n_x, m), `a_prev` (n_a, m) → `a_next` (n_a, m), `yt_pred` (n_y, m).
pub fn rnn_cell_forward(
    xt: ArrayView2<f64>,
    a_prev: ArrayView2<f64>,
    p: &RnnParams,
) -> Result<(Array2<f64>, Array2<f64>, RnnCellCache)> {
    let d = p.validate()?;
    let m = xt.ncols();
    expect_array("xt", xt, &[d.n_x, m])?;
    expect_array("a_prev", a_prev, &[d.n_a, m])?;

    let a_next = step_forward(xt, a_prev, p);
    let yt_pred = output(a_next.view(), p);
    let cache = RnnCellCache {
        a_next: a_next.clone(),
        a_prev: a_prev.to_owned(),
        xt: xt.to_owned(),
        params: p.clone(),
    };
    Ok((a_next, yt_pred, cache))
}

/// One step backward from `da_next` = dJ/da⟨t⟩ (n_a, m), everything else from the cache.
pub fn rnn_cell_backward(
    da_next: ArrayView2<f64>,
    cache: &RnnCellCache,
) -> Result<RnnCellGradients> {
    let d = cache.params.validate()?;
    let m = cache.xt.ncols();
    expect_shape("cache.xt", cache.xt.shape(), &[d.n_x, m])?;
    expect_shape("cache.a_prev", cache.a_prev.shape(), &[d.n_a, m])?;
    expect_shape("cache.a_next", cache.a_next.shape(), &[d.n_a, m])?;
    expect_array("da_next", da_next, &[d.n_a, m])?;

    let mut dwax = Array2::zeros((d.n_a, d.n_x));
    let mut dwaa = Array2::zeros((d.n_a, d.n_a));
    let mut dba = Array2::zeros((d.n_a, 1));
    let (dxt, da_prev) = step_backward(
        da_next,
        cache.a_next.view(),
        cache.a_prev.view(),
        cache.xt.view(),
        &cache.params,
        (&mut dwax, &mut dwaa, &mut dba),
    );
    Ok(RnnCellGradients {
        dxt,
        da_prev,
        dwax,
        dwaa,
        dba,
    })
}

/// `tanh(Wax xt + Waa a_prev + ba)` (n_a, m); inputs already validated.
fn step_forward(xt: ArrayView2<f64>, a_prev: ArrayView2<f64>, p: &RnnParams) -> Array2<f64> {
    let mut z = p.waa.dot(&a_prev); // (n_a, m)
    general_mat_mul(1.0, &p.wax, &xt, 1.0, &mut z); // z += Wax xt
    z += &p.ba; // (n_a, 1) broadcasts over the m columns
    z.mapv_inplace(f64::tanh);
    z
}

/// `softmax(Wya a + by)` (n_y, m).
fn output(a: ArrayView2<f64>, p: &RnnParams) -> Array2<f64> {
    let mut z = p.wya.dot(&a); // (n_y, m)
    z += &p.by;
    softmax_inplace(z.view_mut());
    z
}

/// The one-step backward formulas. Parameter gradients are ADDED to `acc` (dWax, dWaa, dba), so
/// the sequence backward sums over time without temporaries. Returns `(dxt, da_prev)`.
fn step_backward(
    da_next: ArrayView2<f64>,
    a_next: ArrayView2<f64>,
    a_prev: ArrayView2<f64>,
    xt: ArrayView2<f64>,
    p: &RnnParams,
    acc: (&mut Array2<f64>, &mut Array2<f64>, &mut Array2<f64>),
) -> (Array2<f64>, Array2<f64>) {
    let (dwax, dwaa, dba) = acc;
    // dz = (1 − a_next²) ∘ da_next: gradient before the tanh (n_a, m)
    let mut dz = Array2::zeros(a_next.raw_dim());
    Zip::from(&mut dz)
        .and(&a_next)
        .and(&da_next)
        .for_each(|dz, &a, &da| *dz = (1.0 - a * a) * da);

    general_mat_mul(1.0, &dz, &xt.t(), 1.0, dwax); // dWax += dz xtᵀ
    general_mat_mul(1.0, &dz, &a_prev.t(), 1.0, dwaa); // dWaa += dz a_prevᵀ
    let mut dba_col = dba.column_mut(0);
    dba_col += &dz.sum_axis(Axis(1)); // dba += Σ_m dz

    let dxt = p.wax.t().dot(&dz); // (n_x, m)
    let da_prev = p.waa.t().dot(&dz); // (n_a, m)
    (dxt, da_prev)
}

// ------------------------------------------------------------------------------------------
// Whole sequence
// ------------------------------------------------------------------------------------------

/// What [`rnn_backward`] needs from [`rnn_forward`]: the parameters once, the inputs and every
/// hidden state (instead of the course's list of per-step caches, which would copy the
/// parameters T_x times; [`RnnCache::step`] rebuilds any step's cell cache).
#[derive(Debug, Clone, PartialEq)]
pub struct RnnCache {
    pub params: RnnParams,
    /// x (n_x, m, T_x)
    pub x: Array3<f64>,
    /// a⟨0⟩ (n_a, m)
    pub a0: Array2<f64>,
    /// a⟨1⟩ … a⟨T_x⟩ stacked on the last axis (n_a, m, T_x)
    pub a: Array3<f64>,
}

impl RnnCache {
    /// Number of time steps T_x.
    pub fn t_x(&self) -> usize {
        self.x.len_of(Axis(2))
    }

    /// The cell cache of step `t` (0-based), as `rnn_cell_forward` would have returned it.
    pub fn step(&self, t: usize) -> Result<RnnCellCache> {
        if t >= self.t_x() {
            return Err(CoreError::invalid(format!(
                "t: expected a step in 0..{}, got {t}",
                self.t_x()
            )));
        }
        let a_prev = if t == 0 {
            self.a0.clone()
        } else {
            self.a.index_axis(Axis(2), t - 1).to_owned()
        };
        Ok(RnnCellCache {
            a_next: self.a.index_axis(Axis(2), t).to_owned(),
            a_prev,
            xt: self.x.index_axis(Axis(2), t).to_owned(),
            params: self.params.clone(),
        })
    }
}

/// Gradients of the whole sequence (course names `dx`, `da0`, `dWax`, `dWaa`, `dba`),
/// parameter gradients summed over time.
#[derive(Debug, Clone, PartialEq)]
pub struct RnnGradients {
    /// (n_x, m, T_x)
    pub dx: Array3<f64>,
    /// (n_a, m)
    pub da0: Array2<f64>,
    /// (n_a, n_x)
    pub dwax: Array2<f64>,
    /// (n_a, n_a)
    pub dwaa: Array2<f64>,
    /// (n_a, 1)
    pub dba: Array2<f64>,
}

/// Runs the cell over the T_x steps of `x` (n_x, m, T_x) from `a0` (n_a, m).
///
/// Returns `a` (n_a, m, T_x), `y_pred` (n_y, m, T_x) and the cache for [`rnn_backward`].
pub fn rnn_forward(
    x: ArrayView3<f64>,
    a0: ArrayView2<f64>,
    p: &RnnParams,
) -> Result<(Array3<f64>, Array3<f64>, RnnCache)> {
    let d = p.validate()?;
    let (_, m, t_x) = x.dim();
    expect_array("x", x, &[d.n_x, m, t_x])?;
    expect_array("a0", a0, &[d.n_a, m])?;

    let mut a = Array3::zeros((d.n_a, m, t_x));
    let mut y_pred = Array3::zeros((d.n_y, m, t_x));
    let mut a_next = a0.to_owned(); // (n_a, m)
    for t in 0..t_x {
        a_next = step_forward(x.index_axis(Axis(2), t), a_next.view(), p);
        y_pred
            .slice_mut(s![.., .., t])
            .assign(&output(a_next.view(), p));
        a.slice_mut(s![.., .., t]).assign(&a_next);
    }
    let cache = RnnCache {
        params: p.clone(),
        x: x.to_owned(),
        a0: a0.to_owned(),
        a: a.clone(),
    };
    Ok((a, y_pred, cache))
}

/// Backward through time from `da` (n_a, m, T_x), the upstream gradient of every hidden state
/// (e.g. from the outputs). Step t receives `da[:, :, t] + da_prev` from step t+1.
pub fn rnn_backward(da: ArrayView3<f64>, cache: &RnnCache) -> Result<RnnGradients> {
    let d = cache.params.validate()?;
    let (_, m, t_x) = cache.x.dim();
    expect_shape("cache.x", cache.x.shape(), &[d.n_x, m, t_x])?;
    expect_shape("cache.a0", cache.a0.shape(), &[d.n_a, m])?;
    expect_shape("cache.a", cache.a.shape(), &[d.n_a, m, t_x])?;
    expect_array("da", da, &[d.n_a, m, t_x])?;

    let p = &cache.params;
    let mut dx = Array3::zeros((d.n_x, m, t_x));
    let mut dwax = Array2::zeros((d.n_a, d.n_x));
    let mut dwaa = Array2::zeros((d.n_a, d.n_a));
    let mut dba = Array2::zeros((d.n_a, 1));
    let mut da_prev = Array2::zeros((d.n_a, m)); // gradient flowing back from step t+1
    for t in (0..t_x).rev() {
        let da_next = &da.index_axis(Axis(2), t) + &da_prev; // (n_a, m)
        let a_prev = if t == 0 {
            cache.a0.view()
        } else {
            cache.a.index_axis(Axis(2), t - 1)
        };
        let (dxt, da_prev_t) = step_backward(
            da_next.view(),
            cache.a.index_axis(Axis(2), t),
            a_prev,
            cache.x.index_axis(Axis(2), t),
            p,
            (&mut dwax, &mut dwaa, &mut dba),
        );
        dx.slice_mut(s![.., .., t]).assign(&dxt);
        da_prev = da_prev_t;
    }
    Ok(RnnGradients {
        dx,
        da0: da_prev,
        dwax,
        dwaa,
        dba,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array};

    fn small_params() -> RnnParams {
        // n_x = 2, n_a = 2, n_y = 3
        RnnParams {
            wax: array![[0.5, -0.3], [0.1, 0.2]],
            waa: array![[0.4, 0.0], [-0.2, 0.3]],
            wya: array![[1.0, -1.0], [0.5, 0.5], [0.0, 2.0]],
            ba: array![[0.1], [-0.1]],
            by: array![[0.0], [0.1], [-0.1]],
        }
    }

    #[test]
    fn cell_forward_matches_hand_computation() {
        let p = small_params();
        let xt = array![[1.0], [2.0]]; // (2, 1)
        let a_prev = array![[0.5], [-0.5]]; // (2, 1)
        let (a_next, y, cache) = rnn_cell_forward(xt.view(), a_prev.view(), &p).unwrap();
        // z0 = 0.5*1 - 0.3*2 + 0.4*0.5 + 0.1 = 0.2 ; z1 = 0.1 + 0.4 - 0.1 - 0.15 - 0.1 = 0.15
        assert!((a_next[[0, 0]] - 0.2f64.tanh()).abs() < 1e-15);
        assert!((a_next[[1, 0]] - 0.15f64.tanh()).abs() < 1e-15);
        assert!((y.sum() - 1.0).abs() < 1e-15);
        assert_eq!(cache.a_next, a_next);
        assert_eq!(cache.params, p);
    }

    #[test]
    fn forward_equals_repeated_cell_forward_and_backward_equals_cells() {
        let p = small_params();
        let x = Array::from_shape_fn((2, 3, 4), |(i, j, t)| {
            ((i + 2 * j + 3 * t) as f64 * 0.37).sin()
        });
        let a0 = Array::from_shape_fn((2, 3), |(i, j)| (i as f64 - j as f64) * 0.2);
        let (a, y, cache) = rnn_forward(x.view(), a0.view(), &p).unwrap();
        let mut a_prev = a0.clone();
        for t in 0..4 {
            let (a_t, y_t, c) =
                rnn_cell_forward(x.index_axis(Axis(2), t), a_prev.view(), &p).unwrap();
            assert_eq!(a.index_axis(Axis(2), t), a_t);
            assert_eq!(y.index_axis(Axis(2), t), y_t);
            assert_eq!(cache.step(t).unwrap(), c);
            a_prev = a_t;
        }
        // Sequence backward equals the cell backward chained by hand.
        let da = Array::from_shape_fn((2, 3, 4), |(i, j, t)| {
            ((i * 7 + j * 3 + t) as f64 * 0.11).cos()
        });
        let g = rnn_backward(da.view(), &cache).unwrap();
        let mut da_prev = Array2::zeros((2, 3));
        let mut dwaa = Array2::zeros((2, 2));
        for t in (0..4).rev() {
            let da_next = &da.index_axis(Axis(2), t) + &da_prev;
            let gt = rnn_cell_backward(da_next.view(), &cache.step(t).unwrap()).unwrap();
            assert!((&g.dx.index_axis(Axis(2), t) - &gt.dxt)
                .iter()
                .all(|v| v.abs() < 1e-15));
            dwaa += &gt.dwaa;
            da_prev = gt.da_prev;
        }
        assert!((&g.da0 - &da_prev).iter().all(|v| v.abs() < 1e-15));
        assert!((&g.dwaa - &dwaa).iter().all(|v| v.abs() < 1e-14));
        assert!(cache.step(4).is_err());
    }

    #[test]
    fn empty_sequence_is_fine() {
        let p = small_params();
        let x = Array3::<f64>::zeros((2, 3, 0));
        let a0 = Array2::<f64>::ones((2, 3));
        let (a, y, cache) = rnn_forward(x.view(), a0.view(), &p).unwrap();
        assert_eq!(a.dim(), (2, 3, 0));
        assert_eq!(y.dim(), (3, 3, 0));
        let g = rnn_backward(Array3::zeros((2, 3, 0)).view(), &cache).unwrap();
        assert_eq!(g.da0, Array2::<f64>::zeros((2, 3)));
    }

    #[test]
    fn shape_text_is_numpy_style() {
        assert_eq!(shape_text(&[5, 10]), "(5, 10)");
        assert_eq!(shape_text(&[3, 10, 4]), "(3, 10, 4)");
        assert_eq!(shape_text(&[7]), "(7,)");
    }
}
