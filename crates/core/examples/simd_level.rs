//! Prints the SIMD level rnnlab's kernels run at on this machine, and what the CPU offers:
//! `cargo run -p rnnlab-core --example simd_level` (used by `npm run bench`).

use rnnlab_core::math::SimdLevel;

fn main() {
    let cap = std::env::var("RNNLAB_SIMD").unwrap_or_else(|_| "unset".to_string());
    println!(
        "simd {} (CPU offers {}; RNNLAB_SIMD {cap})",
        SimdLevel::current().as_str(),
        SimdLevel::detected().as_str()
    );
}
