//! Thin napi-rs binding of rnnlab-core. Every function validates its arguments
//! and turns core errors into JS errors; no numerics live here.
#![deny(clippy::all)]
// napi-derive registers the exports only outside `cfg(test)`, so in the test build that
// `clippy --all-targets` checks, every exported function would look unused.
#![cfg_attr(test, allow(dead_code))]

mod dinos;
mod errors;
mod jazz;
mod lm;
mod random;
mod record;
mod step_by_step;
mod task;
mod tensor;

use napi_derive::napi;

/// Version of the native core.
#[napi]
pub fn native_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Number of threads in the native worker pool.
#[napi]
pub fn native_threads() -> u32 {
    rayon::current_num_threads() as u32
}
