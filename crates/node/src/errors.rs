//! The one place where core errors become JS errors. `error.code` is the
//! core's stable code (e.g. `ERR_SHAPE_MISMATCH`), `error.message` its text.

use napi::Error;
use rnnlab_core::CoreError;

/// The binding's result type: a JS error whose `code` is a string.
pub type JsResult<T> = std::result::Result<T, Error<String>>;

/// Converts a core error (the orphan rule forbids a `From` impl here).
pub fn core_err(e: CoreError) -> Error<String> {
    Error::new(e.code().to_string(), e.to_string())
}

/// An invalid argument detected in the binding itself.
pub fn invalid_arg(msg: impl Into<String>) -> Error<String> {
    Error::new("ERR_INVALID_ARG".to_string(), msg.into())
}

/// An integer argument read as f64 and checked to lie in `lo..=hi`: napi's own `u32`
/// conversion would wrap -1 to 4294967295 and truncate 1.5 silently.
pub fn int_in(name: &str, v: f64, lo: f64, hi: f64) -> JsResult<f64> {
    if v.fract() == 0.0 && v >= lo && v <= hi {
        Ok(v)
    } else {
        Err(invalid_arg(format!(
            "{name}: expected an integer in {lo}..={hi}, got {v}"
        )))
    }
}

/// Runs `f`, turning a Rust panic into a JS error instead of aborting Node.
/// Needed inside async tasks, where napi's own `catch_unwind` does not apply.
pub fn guard<T>(what: &str, f: impl FnOnce() -> JsResult<T>) -> JsResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(Error::new(
                "ERR_INTERNAL".to_string(),
                format!("{what}: internal error in the native core ({detail}); please report it"),
            ))
        }
    }
}
