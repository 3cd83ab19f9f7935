//! Jazz improvisation: the course's `djmodel` (one LSTM cell shared over the steps of a window
//! of musical values and a Dense softmax), trained on the shared recurrent engine, and its
//! music inference loop.
//!
//! - [`model`]: the parameters, the inference loop and sampling.
//! - [`batch`]: the training windows.
//! - [`network`]: the forward and backward passes on [`crate::nn::recurrent`].
//! - [`trainer`]: `fit` and [`JazzTrainer`], the whole training state.
//! - [`checkpoint`]: saving and resuming a [`JazzTrainer`] (checkpoint kind `"jazz"`).

pub mod batch;
pub mod checkpoint;
pub mod model;
pub mod network;
pub mod trainer;

pub use batch::JazzBatch;
pub use model::{pick_value, pick_value_top_k, InferenceState, JazzGradients, JazzModel};
pub use network::{EpochStats, Precision};
pub use trainer::{FitReport, JazzTrainer};
