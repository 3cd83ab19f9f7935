//! `Tensor` is the JS-side array: `{ shape: number[], data: Float64Array }`,
//! row-major (C order) exactly like numpy, so no transposition is needed.

use napi::bindgen_prelude::{
    Array as JsArray, Float64Array, FromNapiValue, Object, ToNapiValue, Unknown, ValidateNapiValue,
};
use napi::{check_status, sys, JsValue, Status, ValueType};
use napi_derive::napi;
use ndarray::{Array, Array2, Array3, ArrayD, Dimension, IxDyn};

use crate::errors::{invalid_arg, Result};

/// A dense float64 array in row-major order.
// Read from JS by the checked `FromNapiValue` below, not the derived one: napi's
// `u32` conversion wraps silently (-1 becomes 4294967295, 1.5 becomes 1, NaN 0).
// Written to JS by the `ToNapiValue` below, into engine-owned memory (see there).
#[napi(object, object_from_js = false, object_to_js = false)]
pub struct Tensor {
    pub shape: Vec<u32>,
    pub data: Float64Array,
}

/// Most axes a shape may have (numpy's limit): a longer list is a mistake.
pub const MAX_AXES: u32 = 32;

/// A JS value's kind for error messages (`null`, `number`, `an array`, ...).
pub fn kind_of(v: &Unknown) -> String {
    match v.get_type() {
        Ok(ValueType::Object) if v.is_array().unwrap_or(false) => "an array".into(),
        Ok(ValueType::Object) if v.is_typedarray().unwrap_or(false) => {
            "a typed array of another kind".into()
        }
        Ok(t) => format!("{t}").to_lowercase(), // "null", "number", "string", "object", ...
        Err(_) => "an unreadable value".into(),
    }
}

/// Reads a shape: a JS array of at most [`MAX_AXES`] integers in `0..=2^32-1`. The message
/// names `name` and the offending entry. The array's length is checked before anything is
/// allocated, so a sparse `[]` with `length = 2**32-1` is refused at once.
pub fn dims_from_js(name: &str, v: &Unknown) -> std::result::Result<Vec<u32>, String> {
    if !matches!(v.is_array(), Ok(true)) {
        return Err(format!(
            "{name}: expected an array of dimensions, got {}",
            kind_of(v)
        ));
    }
    let arr = unsafe { JsArray::from_napi_value(v.value().env, v.raw()) }
        .map_err(|e| format!("{name}: {}", e.reason))?;
    if arr.len() > MAX_AXES {
        return Err(format!(
            "{name}: expected at most {MAX_AXES} dimensions, got {}",
            arr.len()
        ));
    }
    let mut dims = Vec::with_capacity(arr.len() as usize);
    for i in 0..arr.len() {
        let d: Unknown = arr
            .get(i)
            .ok()
            .flatten()
            .ok_or_else(|| format!("{name}[{i}]: cannot be read"))?;
        let value = match d.get_type() {
            Ok(ValueType::Number) => unsafe { f64::from_napi_value(d.value().env, d.raw()) }.ok(),
            _ => None,
        };
        match value {
            Some(x) if x.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&x) => {
                dims.push(x as u32)
            }
            Some(x) => {
                return Err(format!(
                    "{name}[{i}]: expected an integer in 0..=4294967295, got {x}"
                ))
            }
            None => {
                return Err(format!(
                    "{name}[{i}]: expected an integer in 0..=4294967295, got {}",
                    kind_of(&d)
                ))
            }
        }
    }
    Ok(dims)
}

impl FromNapiValue for Tensor {
    unsafe fn from_napi_value(env: sys::napi_env, napi_val: sys::napi_value) -> napi::Result<Self> {
        let bad = |msg: String| napi::Error::new(Status::InvalidArg, msg);
        let v = unsafe { Unknown::from_napi_value(env, napi_val) }?;
        if !matches!(v.get_type(), Ok(ValueType::Object)) || matches!(v.is_array(), Ok(true)) {
            return Err(bad(format!(
                "expected a tensor {{ shape: number[], data: Float64Array }}, got {}",
                kind_of(&v)
            )));
        }
        let obj = Object::from_raw(env, napi_val);
        let shape: Unknown = obj
            .get("shape")?
            .ok_or_else(|| bad("Tensor.shape: missing".into()))?;
        let shape = dims_from_js("Tensor.shape", &shape).map_err(bad)?;
        let data: Unknown = obj
            .get("data")?
            .ok_or_else(|| bad("Tensor.data: missing".into()))?;
        if !matches!(data.is_typedarray(), Ok(true)) {
            return Err(bad(format!(
                "Tensor.data: expected a Float64Array, got {}",
                kind_of(&data)
            )));
        }
        let borrowed = unsafe { Float64Array::from_napi_value(env, data.raw()) }
            .map_err(|e| bad(format!("Tensor.data: {}", e.reason)))?;
        // Copy now: converting the next argument may run user code (a getter, a Proxy trap)
        // that detaches this buffer, and a borrowed pointer would then read freed memory.
        let data = Float64Array::new(borrowed.to_vec());
        Ok(Tensor { shape, data })
    }
}

impl ValidateNapiValue for Tensor {}

/// A JS `Float64Array` over an engine-owned `ArrayBuffer` holding a copy of `values`.
///
/// napi-rs hands a Rust `Vec` to JS as an *external* buffer whose finalizer Node defers to the
/// event loop (`SetImmediate`), so in a synchronous loop no result was ever freed until the loop
/// ended (60 `randn` calls of 52 MB each reached 3 GB). V8 frees its own buffers during GC.
///
/// # Safety
/// `env` must be the live environment of the current call.
unsafe fn engine_f64_array(env: sys::napi_env, values: &[f64]) -> napi::Result<sys::napi_value> {
    let bytes = std::mem::size_of_val(values);
    let mut buffer = std::ptr::null_mut();
    let mut data = std::ptr::null_mut();
    check_status!(
        unsafe { sys::napi_create_arraybuffer(env, bytes, &mut data, &mut buffer) },
        "Failed to allocate a Float64Array of {} values",
        values.len()
    )?;
    if bytes > 0 {
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), data.cast::<f64>(), values.len()) };
    }
    let mut array = std::ptr::null_mut();
    check_status!(
        unsafe {
            sys::napi_create_typedarray(
                env,
                sys::TypedarrayType::float64_array,
                values.len(),
                buffer,
                0,
                &mut array,
            )
        },
        "Failed to create a Float64Array"
    )?;
    Ok(array)
}

impl ToNapiValue for Tensor {
    unsafe fn to_napi_value(env: sys::napi_env, val: Tensor) -> napi::Result<sys::napi_value> {
        let shape = unsafe { Vec::<u32>::to_napi_value(env, val.shape) }?;
        let data = unsafe { engine_f64_array(env, &val.data) }?;
        let mut obj = std::ptr::null_mut();
        check_status!(
            unsafe { sys::napi_create_object(env, &mut obj) },
            "Failed to create a tensor object"
        )?;
        check_status!(
            unsafe { sys::napi_set_named_property(env, obj, c"shape".as_ptr(), shape) },
            "Failed to set Tensor.shape"
        )?;
        check_status!(
            unsafe { sys::napi_set_named_property(env, obj, c"data".as_ptr(), data) },
            "Failed to set Tensor.data"
        )?;
        Ok(obj)
    }
}

/// numpy-style shape text: `(5, 10)`.
pub fn shape_str(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("({})", parts.join(", "))
}

/// Copies a JS tensor into an owned n-d array, checking `data.length == prod(shape)`
/// and that every value is finite.
pub fn to_array_d(name: &str, t: &Tensor) -> Result<ArrayD<f64>> {
    let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
    let expected = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let data: &[f64] = &t.data;
    match expected {
        Some(n) if n == data.len() => {}
        _ => {
            return Err(invalid_arg(format!(
                "{name}: shape {} needs {} values but data has {}",
                shape_str(&shape),
                expected
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "too many".into()),
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
pub fn to_array2(name: &str, t: &Tensor) -> Result<Array2<f64>> {
    let a = to_array_d(name, t)?;
    let actual = a.shape().to_vec();
    a.into_dimensionality().map_err(|_| {
        napi::Error::new(
            "ERR_SHAPE_MISMATCH".to_string(),
            format!(
                "{name}: expected a 2-d tensor, got shape {}",
                shape_str(&actual)
            ),
        )
    })
}

/// A 3-d array `(n, m, T)`; names the argument and both shapes on mismatch.
pub fn to_array3(name: &str, t: &Tensor) -> Result<Array3<f64>> {
    let a = to_array_d(name, t)?;
    let actual = a.shape().to_vec();
    a.into_dimensionality().map_err(|_| {
        napi::Error::new(
            "ERR_SHAPE_MISMATCH".to_string(),
            format!(
                "{name}: expected a 3-d tensor (n, m, T), got shape {}",
                shape_str(&actual)
            ),
        )
    })
}

/// Copies an array back into a JS tensor (standard layout first, so the
/// flat data is row-major whatever the array's strides were).
pub fn from_array<D: Dimension>(a: &Array<f64, D>) -> Tensor {
    let shape = a.shape().iter().map(|&d| d as u32).collect();
    let data: Vec<f64> = a.as_standard_layout().iter().copied().collect();
    Tensor {
        shape,
        data: Float64Array::new(data),
    }
}
