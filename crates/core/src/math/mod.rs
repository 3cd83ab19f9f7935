//! Numerics shared by every model: the SIMD level and its one dispatch point, the float trait
//! the batched models are generic over, and the matrix products.

pub mod float;
pub mod gemm;
pub mod simd;

pub use float::{Float, SimdKernel};
pub use simd::SimdLevel;
