//! The one domain error of the core. The binding turns it into a JS `Error`
//! whose `code` is `CoreError::code()`.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum CoreError {
    /// An argument has the wrong shape: names the argument, expected and actual.
    #[error("{name}: expected shape {expected}, got {actual}")]
    ShapeMismatch {
        name: String,
        expected: String,
        actual: String,
    },
    /// An argument holds NaN or ±Infinity.
    #[error("{name}: contains a non-finite value ({value}) at flat index {index}")]
    NonFinite {
        name: String,
        index: usize,
        value: f64,
    },
    /// Any other invalid argument (out-of-range index, bad probability vector, ...).
    #[error("{0}")]
    InvalidArgument(String),
    /// A checkpoint or data file that cannot be read.
    #[error("{0}")]
    BadFile(String),
    /// Training produced NaN or infinite loss.
    #[error("{0}")]
    Diverged(String),
    /// Work was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
}

impl CoreError {
    /// Stable machine-readable code, surfaced as `error.code` in JS.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::ShapeMismatch { .. } => "ERR_SHAPE_MISMATCH",
            CoreError::NonFinite { .. } => "ERR_NON_FINITE",
            CoreError::InvalidArgument(_) => "ERR_INVALID_ARG",
            CoreError::BadFile(_) => "ERR_BAD_FILE",
            CoreError::Diverged(_) => "ERR_DIVERGED",
            CoreError::Cancelled => "ERR_CANCELLED",
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        CoreError::InvalidArgument(msg.into())
    }
}

pub type Result<T> = std::result::Result<T, CoreError>;
