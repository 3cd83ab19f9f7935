//! Numerics shared by every model: the SIMD level and its one dispatch point, the SIMD lanes
//! the kernels are written over, numpy's exp/tanh/pairwise sum, the float trait the batched
//! models are generic over, and the matrix products.

pub mod float;
pub mod gemm;
pub(crate) mod lanes;
pub mod npy;
pub mod simd;

pub use float::{Float, SimdKernel};
pub use simd::SimdLevel;
