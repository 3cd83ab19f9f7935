//! Character language models: stacked LSTM/RNN layers trained in mini-batches, the course's
//! "Writing like Shakespeare" grown into a library feature.
//!
//! - [`model`]: architecture and parameters (PyTorch `nn.LSTM` layout, gates i, f, g, o).
//! - [`network`]: mini-batch forward/backward over a preallocated [`Workspace`].
//! - [`gemm`]: the matrix products (AVX-512 `gemm` crate or ndarray), split deterministically.

pub mod batches;
pub mod corpus;
pub mod export;
pub mod float;
pub mod gemm;
pub mod generate;
pub mod model;
pub mod network;
pub mod optim;
pub(crate) mod recurrent;
pub mod trainer;
pub mod vocab;

pub use batches::Mode;
pub use corpus::{vocab_of_file, Tokens};
pub use float::LmFloat;
pub use generate::{generate, logits_for, SampleOptions, Stepper};
pub use model::{Cell, CharLm, LmConfig, TensorInfo};
pub use network::{backward, forward, Workspace};
pub use optim::{Clip, OptimizerConfig, OptimizerKind};
pub use trainer::{Progress, TrainConfig, Trainer};
pub use vocab::Vocab;
