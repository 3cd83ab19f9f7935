//! The one place where core errors become JS errors. `error.code` is the
//! core's stable code (e.g. `ERR_SHAPE_MISMATCH`), `error.message` its text.

use rnnlab_core::CoreError;

/// A binding error: a JS `Error` whose `code` is a string (`ERR_INVALID_ARG`, ...).
pub type Error = napi::Error<String>;

/// The binding's result type, for helpers and napi entry points alike. It is named `Result`
/// (imported over std's, which stays reachable with an explicit error type) because
/// napi-derive recognises a fallible entry point only by that last path segment.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Converts a core error (the orphan rule forbids a `From` impl here).
pub fn core_err(e: CoreError) -> Error {
    napi::Error::new(e.code().to_string(), e.to_string())
}

/// An invalid argument detected in the binding itself.
pub fn invalid_arg(msg: impl Into<String>) -> Error {
    napi::Error::new("ERR_INVALID_ARG".to_string(), msg.into())
}

/// An integer argument read as f64 and checked to lie in `lo..=hi`: napi's own `u32`
/// conversion would wrap -1 to 4294967295 and truncate 1.5 silently.
pub fn int_in(name: &str, v: f64, lo: f64, hi: f64) -> Result<f64> {
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
pub fn guard<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let detail = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(napi::Error::new(
                "ERR_INTERNAL".to_string(),
                format!("{what}: internal error in the native core ({detail}); please report it"),
            ))
        }
    }
}
