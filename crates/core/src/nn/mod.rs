//! Building blocks shared by the trained models: the batched recurrent time loops and row
//! kernels ([`recurrent`]), and the optimizers with gradient clipping ([`optim`]).

pub mod optim;
pub(crate) mod recurrent;
