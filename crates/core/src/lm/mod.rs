//! Character language models: stacked LSTM/RNN layers trained in mini-batches, the course's
//! "Writing like Shakespeare" grown into a library feature.
//!
//! - [`model`]: architecture and parameters (PyTorch `nn.LSTM` layout, gates i, f, g, o).
//! - [`network`]: mini-batch forward/backward over a preallocated [`Workspace`].
//!
//! The float trait and matrix products live in [`crate::math`], the recurrent time loops, the
//! optimizers and the sampler in [`crate::nn`].

pub mod batches;
pub mod beam;
pub mod corpus;
pub mod evaluation;
pub mod export;
pub mod generate;
pub mod model;
pub mod network;
pub mod trainer;
pub mod vocab;

pub use crate::math::Float;
pub use crate::nn::optim::{Clip, OptimizerConfig, OptimizerKind};
pub use batches::Mode;
pub use beam::{beam_generate, BeamText};
pub use corpus::{vocab_of_file, Tokens};
pub use evaluation::{Best, EvalConfig, Every, Origin};
pub use generate::{generate, logits_for, SampleOptions, Stepper, StepperState};
pub use model::{Cell, CharLm, LmConfig, TensorInfo};
pub use network::{backward, forward, Workspace};
pub use trainer::{Progress, TrainConfig, Trainer};
pub use vocab::Vocab;
