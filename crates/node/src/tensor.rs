//! `Tensor` is the JS-side array: `{ shape: number[], data: Float64Array }`,
//! row-major (C order) exactly like numpy, so no transposition is needed.

use napi::bindgen_prelude::Float64Array;
use napi_derive::napi;
use ndarray::{Array, Array2, Array3, ArrayD, Dimension, IxDyn};

use crate::errors::{invalid_arg, JsResult};

/// A dense float64 array in row-major order.
#[napi(object)]
pub struct Tensor {
    pub shape: Vec<u32>,
    pub data: Float64Array,
}

fn shape_str(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("({})", parts.join(", "))
}

/// Copies a JS tensor into an owned n-d array, checking `data.length == prod(shape)`
/// and that every value is finite.
pub fn to_array_d(name: &str, t: &Tensor) -> JsResult<ArrayD<f64>> {
    let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
    let expected = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let data: &[f64] = &t.data;
    match expected {
        Some(n) if n == data.len() => {}
        _ => {
            return Err(invalid_arg(format!(
                "{name}: shape {} needs {} values but data has {}",
                shape_str(&shape),
                expected.map(|n| n.to_string()).unwrap_or_else(|| "too many".into()),
                data.len()
            )))
        }
    }
    if let Some((i, v)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(napi::Error::new(
            "ERR_NON_FINITE".to_string(),
            format!("{name}: contains a non-finite value ({v}) at flat index {i}"),
        ));
    }
    Array::from_shape_vec(IxDyn(&shape), data.to_vec())
        .map_err(|e| invalid_arg(format!("{name}: {e}")))
}

/// A 2-d array `(rows, cols)`; names the argument and both shapes on mismatch.
pub fn to_array2(name: &str, t: &Tensor) -> JsResult<Array2<f64>> {
    let a = to_array_d(name, t)?;
    let actual = a.shape().to_vec();
    a.into_dimensionality().map_err(|_| {
        napi::Error::new(
            "ERR_SHAPE_MISMATCH".to_string(),
            format!("{name}: expected a 2-d tensor, got shape {}", shape_str(&actual)),
        )
    })
}

/// A 3-d array `(n, m, T)`; names the argument and both shapes on mismatch.
pub fn to_array3(name: &str, t: &Tensor) -> JsResult<Array3<f64>> {
    let a = to_array_d(name, t)?;
    let actual = a.shape().to_vec();
    a.into_dimensionality().map_err(|_| {
        napi::Error::new(
            "ERR_SHAPE_MISMATCH".to_string(),
            format!("{name}: expected a 3-d tensor (n, m, T), got shape {}", shape_str(&actual)),
        )
    })
}

/// Copies an array back into a JS tensor (standard layout first, so the
/// flat data is row-major whatever the array's strides were).
pub fn from_array<D: Dimension>(a: &Array<f64, D>) -> Tensor {
    let shape = a.shape().iter().map(|&d| d as u32).collect();
    let data: Vec<f64> = a.as_standard_layout().iter().copied().collect();
    Tensor { shape, data: Float64Array::new(data) }
}
