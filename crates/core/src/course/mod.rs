//! The course's step-by-step RNN and LSTM (deeplearning.ai Sequence Models, week 1), written
//! to be read: one function per course function, ndarray in the course's shapes. The batched
//! and SIMD kernels elsewhere are tested against these.

pub mod activations;
#[doc(hidden)]
pub mod gradcheck;
pub mod lstm;
pub mod rnn;
