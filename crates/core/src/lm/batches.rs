//! How a text becomes mini-batches, in the two training modes.
//!
//! - **Windows** (the course's Keras model, many-to-one): windows of `window` characters
//!   starting every `stride` characters, each predicting the character that follows it;
//!   shuffled every epoch; a batch is `B` windows (a last incomplete batch is skipped, a
//!   different one each epoch since the order is reshuffled).
//! - **Truncated BPTT** (char-rnn, many-to-many): the text is cut into `B` contiguous streams
//!   of `L = ⌊len/B⌋` characters; batch j holds characters `[j·S, (j+1)·S)` of every stream and
//!   predicts each next character; the hidden state carries from batch j to j+1.
//!
//! Batches are time-major: input row `t·B + b` is step t of sequence b.

use serde::{Deserialize, Serialize};

use super::corpus::Tokens;
use crate::error::{CoreError, Result};

/// Training mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Mode {
    /// Many-to-one windows.
    Windows { window: usize, stride: usize },
    /// Many-to-many truncated BPTT with carried state.
    Tbptt { seq_len: usize },
}

impl Mode {
    /// Steps per sequence (T).
    pub fn t_len(&self) -> usize {
        match *self {
            Mode::Windows { window, .. } => window,
            Mode::Tbptt { seq_len } => seq_len,
        }
    }

    /// Whether only the last step is predicted.
    pub fn last_only(&self) -> bool {
        matches!(self, Mode::Windows { .. })
    }

    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Mode::Windows { window, stride } if window == 0 || stride == 0 => {
                Err(CoreError::invalid(format!(
                    "windows: expected window >= 1 and stride >= 1, got {window} and {stride}"
                )))
            }
            Mode::Tbptt { seq_len: 0 } => {
                Err(CoreError::invalid("seqLength: expected >= 1, got 0"))
            }
            _ => Ok(()),
        }
    }
}

/// Start positions of every window of `data` (each needs `window + 1` characters).
pub fn window_starts(len: usize, window: usize, stride: usize) -> Vec<u32> {
    if len <= window {
        return Vec::new();
    }
    (0..len - window)
        .step_by(stride)
        .map(|s| s as u32)
        .collect()
}

/// Number of windows, `window_starts(len, window, stride).len()` without building them.
pub fn window_count(len: usize, window: usize, stride: usize) -> usize {
    if len <= window || stride == 0 {
        0
    } else {
        (len - window - 1) / stride + 1
    }
}

/// Fills a many-to-one batch from the windows starting at `starts`.
pub fn fill_windows(
    data: &Tokens,
    starts: &[u32],
    window: usize,
    inputs: &mut [u32],
    targets: &mut [u32],
) {
    let b = starts.len();
    for (j, &s) in starts.iter().enumerate() {
        let s = s as usize;
        for t in 0..window {
            inputs[t * b + j] = data.at(s + t);
        }
        targets[j] = data.at(s + window);
    }
}

/// Geometry of the truncated-BPTT streams of a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Streams {
    /// Number of streams (B).
    pub batch: usize,
    /// Characters per stream (L).
    pub stream_len: usize,
    /// Steps per chunk (S).
    pub seq_len: usize,
}

impl Streams {
    /// Streams for `len` characters; `None` when not even one chunk fits.
    pub fn new(len: usize, batch: usize, seq_len: usize) -> Option<Self> {
        let s = Streams {
            batch,
            stream_len: len / batch.max(1),
            seq_len,
        };
        (batch > 0 && s.chunks() > 0).then_some(s)
    }

    /// Chunks per epoch: `⌊(L − 1)/S⌋` (each chunk needs its next character as a target).
    pub fn chunks(&self) -> usize {
        if self.stream_len == 0 {
            0
        } else {
            (self.stream_len - 1) / self.seq_len
        }
    }

    /// Fills chunk `j` (inputs and targets both (T·B), time-major).
    pub fn fill(&self, data: &Tokens, j: usize, inputs: &mut [u32], targets: &mut [u32]) {
        let (bsz, s) = (self.batch, self.seq_len);
        for b in 0..bsz {
            let base = b * self.stream_len + j * s;
            for t in 0..s {
                inputs[t * bsz + b] = data.at(base + t);
                targets[t * bsz + b] = data.at(base + t + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_count_is_the_number_of_window_starts() {
        for len in 0..40 {
            for window in 1..8 {
                for stride in 1..5 {
                    assert_eq!(
                        window_count(len, window, stride),
                        window_starts(len, window, stride).len(),
                        "{len} {window} {stride}"
                    );
                }
            }
        }
    }
}
