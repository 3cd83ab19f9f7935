//! rnnlab-core: the numerics of rnnlab, with no Node dependency.
//!
//! Shapes follow the deeplearning.ai course: an input sequence is `(n_x, m, T_x)`,
//! a hidden state `(n_a, m)`, stored C-order (row-major) exactly like numpy.

pub mod checkpoint;
pub mod course;
pub mod dinos;
pub mod error;
pub mod jazz;
pub mod lm;
pub mod math;
pub mod nn;
pub mod random;

pub use error::{CoreError, Result};
