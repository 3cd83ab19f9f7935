//! rnnlab-core: the numerics of rnnlab, with no Node dependency.
//!
//! Shapes follow the deeplearning.ai course: an input sequence is `(n_x, m, T_x)`,
//! a hidden state `(n_a, m)`, stored C-order (row-major) exactly like numpy.

pub mod error;
pub mod random;
pub mod char_rnn;
pub mod dinos;
pub mod fast_step;
pub mod checkpoint;
pub mod activations;
pub mod rnn;
pub mod lstm;
pub mod optim;
pub mod jazz_model;
pub mod lm;
#[doc(hidden)]
pub mod gradcheck;

pub use error::{CoreError, Result};
