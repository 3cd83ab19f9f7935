//! Building blocks shared by the trained models (the language model and jazz): the batched
//! recurrent time loops ([`recurrent`]) and their row kernels ([`cells`]), the optimizers with
//! gradient clipping ([`optim`]), the next-token sampler ([`sample`]), and
//! beam search over any model that scores the next symbol ([`beam`]).

pub mod beam;
pub mod cells;
pub mod optim;
pub(crate) mod recurrent;
pub mod sample;
