//! Finite-difference gradient checking, shared by the core's tests (not part of the public API).
//!
//! `numerical_gradient` perturbs one element of one array at a time by ±eps and differentiates a
//! scalar loss by central differences; `relative_error` compares a whole gradient array with the
//! analytic one (`‖a − b‖₂ / (‖a‖₂ + ‖b‖₂)`, the usual gradient-check measure).
//! `TestRng` is a tiny deterministic generator for test inputs (no dependency).

use ndarray::{Array, Array2, Array3, ArrayView, Dimension, IntoDimension};

/// dL/dθ by central differences for every element θ of the array `field(state)`:
/// `(L(θ + eps) − L(θ − eps)) / (2 eps)`. The state is restored exactly afterwards.
pub fn numerical_gradient<T, D: Dimension>(
    state: &mut T,
    field: impl Fn(&mut T) -> &mut Array<f64, D>,
    loss: impl Fn(&T) -> f64,
    eps: f64,
) -> Array<f64, D> {
    let shape = field(state).raw_dim();
    let indices: Vec<D> = field(state)
        .indexed_iter()
        .map(|(i, _)| i.into_dimension())
        .collect();
    let mut grad = Array::zeros(shape);
    for idx in indices {
        let original = field(state)[idx.clone()];
        field(state)[idx.clone()] = original + eps;
        let plus = loss(state);
        field(state)[idx.clone()] = original - eps;
        let minus = loss(state);
        field(state)[idx.clone()] = original;
        grad[idx] = (plus - minus) / (2.0 * eps);
    }
    grad
}

/// `‖a − b‖₂ / (‖a‖₂ + ‖b‖₂)`, and 0 when both are exactly zero.
pub fn relative_error<D: Dimension>(a: ArrayView<f64, D>, b: ArrayView<f64, D>) -> f64 {
    let norm = |it: &mut dyn Iterator<Item = f64>| it.map(|v| v * v).sum::<f64>().sqrt();
    let diff = norm(&mut a.iter().zip(b.iter()).map(|(x, y)| x - y));
    let scale = norm(&mut a.iter().copied()) + norm(&mut b.iter().copied());
    if scale == 0.0 {
        0.0
    } else {
        diff / scale
    }
}

/// `Σ w ∘ a`: a random linear projection of an output, the test loss whose gradient is `w`.
pub fn project<D: Dimension>(a: ArrayView<f64, D>, w: ArrayView<f64, D>) -> f64 {
    a.iter().zip(w.iter()).map(|(x, y)| x * y).sum()
}

/// SplitMix64: a small deterministic generator for test inputs.
#[derive(Debug, Clone)]
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> Self {
        TestRng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [−scale, scale).
    pub fn uniform(&mut self, scale: f64) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        (2.0 * unit - 1.0) * scale
    }

    pub fn array2(&mut self, shape: (usize, usize), scale: f64) -> Array2<f64> {
        Array2::from_shape_simple_fn(shape, || self.uniform(scale))
    }

    pub fn array3(&mut self, shape: (usize, usize, usize), scale: f64) -> Array3<f64> {
        Array3::from_shape_simple_fn(shape, || self.uniform(scale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn numerical_gradient_of_a_known_function() {
        // L(x) = Σ x³ → dL/dx = 3x²
        let mut x = array![[1.0, -2.0], [0.5, 3.0]];
        let g = numerical_gradient(&mut x, |x| x, |x| x.iter().map(|v| v * v * v).sum(), 1e-5);
        let exact = x.mapv(|v| 3.0 * v * v);
        assert!(relative_error(g.view(), exact.view()) < 1e-10);
        assert_eq!(x, array![[1.0, -2.0], [0.5, 3.0]]); // restored
    }

    #[test]
    fn rng_is_deterministic_and_in_range() {
        let a = TestRng::new(7).array2((3, 4), 0.5);
        let b = TestRng::new(7).array2((3, 4), 0.5);
        assert_eq!(a, b);
        assert!(a.iter().all(|v| (-0.5..0.5).contains(v)));
    }
}
