//! Element-wise activations and the column-wise softmax used by the course's cells.
//!
//! The formulas are the course's own (`rnn_utils.py`): `σ(z) = 1 / (1 + e^{−z})` and a softmax
//! over axis 0 (one distribution per example column) with the column max subtracted first, so
//! large logits never overflow.

use ndarray::{Array, Array2, ArrayView, ArrayView2, ArrayViewMut, ArrayViewMut2, Axis, Dimension};

/// Logistic sigmoid of one number, `1 / (1 + e^{−z})`.
///
/// For very negative `z`, `e^{−z}` overflows to `+∞` and the result is exactly `0.0` (never NaN).
#[inline]
pub fn sigmoid_scalar(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Element-wise sigmoid, any shape.
pub fn sigmoid<D: Dimension>(z: ArrayView<f64, D>) -> Array<f64, D> {
    z.mapv(sigmoid_scalar)
}

/// Element-wise sigmoid in place.
pub fn sigmoid_inplace<D: Dimension>(mut z: ArrayViewMut<f64, D>) {
    z.mapv_inplace(sigmoid_scalar);
}

/// Element-wise `tanh` in place.
pub fn tanh_inplace<D: Dimension>(mut z: ArrayViewMut<f64, D>) {
    z.mapv_inplace(f64::tanh);
}

/// Column-wise softmax of `z` `(n, m)`: every column `j` becomes
/// `exp(z[:, j] − max z[:, j]) / Σ exp(z[:, j] − max z[:, j])`.
///
/// ```
/// use ndarray::array;
/// let p = rnnlab_core::course::activations::softmax(array![[0.0, 1000.0], [0.0, 1000.0]].view());
/// assert_eq!(p, array![[0.5, 0.5], [0.5, 0.5]]);
/// ```
pub fn softmax(z: ArrayView2<f64>) -> Array2<f64> {
    let mut p = z.to_owned(); // (n, m)
    softmax_inplace(p.view_mut());
    p
}

/// Column-wise softmax in place (see [`softmax`]). A column of length 0 is left as is.
pub fn softmax_inplace(mut z: ArrayViewMut2<f64>) {
    for mut column in z.axis_iter_mut(Axis(1)) {
        let max = column.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        column.mapv_inplace(|v| (v - max).exp());
        let sum = column.sum();
        column.mapv_inplace(|e| e / sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn sigmoid_matches_formula_and_saturates_without_nan() {
        let s = sigmoid(array![-800.0, 0.0, 2.0, 800.0].view());
        assert_eq!(s[0], 0.0);
        assert_eq!(s[1], 0.5);
        assert_eq!(s[2], 1.0 / (1.0 + (-2.0f64).exp()));
        assert_eq!(s[3], 1.0);
    }

    #[test]
    fn softmax_is_column_wise_and_shift_invariant() {
        let z = array![[1.0, -3.0, 700.0], [2.0, -3.0, 710.0], [3.0, -3.0, 705.0]]; // (3, 3)
        let p = softmax(z.view());
        for j in 0..3 {
            let col = p.column(j);
            assert!((col.sum() - 1.0).abs() < 1e-15);
        }
        // column 0 by hand
        let e: Vec<f64> = [1.0f64, 2.0, 3.0].iter().map(|v| (v - 3.0).exp()).collect();
        let s: f64 = e.iter().sum();
        for i in 0..3 {
            assert!((p[[i, 0]] - e[i] / s).abs() < 1e-16);
            assert!((p[[i, 1]] - 1.0 / 3.0).abs() < 1e-16);
        }
        // huge logits do not overflow
        assert!(p.iter().all(|v| v.is_finite()));
        assert!(p[[1, 2]] > 0.99);
    }

    #[test]
    fn softmax_of_empty_matrix_is_empty() {
        let z = Array2::<f64>::zeros((3, 0));
        assert_eq!(softmax(z.view()).dim(), (3, 0));
    }
}
