//! Beam search over the character language model: [`crate::nn::beam`] on the batch-1
//! [`Stepper`], the prompt priming the state as in [`super::generate()`].

use super::generate::{prompt_ids, Stepper, StepperState};
use super::model::CharLm;
use crate::error::{CoreError, Result};
use crate::math::Float;
use crate::nn::beam::{beam_search, log_softmax_into, BeamOptions, Scorer};

/// One continuation found by [`beam_generate`].
#[derive(Clone, Debug, PartialEq)]
pub struct BeamText {
    /// The characters after the prompt.
    pub text: String,
    /// Natural-log probability of `text` after the prompt, at temperature 1.
    pub log_prob: f64,
}

/// The model's state after some characters, with the next character's log-probabilities.
struct LmState<T> {
    rnn: StepperState<T>,
    log_probs: Vec<f64>,
}

/// The [`Scorer`] of a language model: one `Stepper`, moved to each hypothesis' state in turn.
struct LmScorer<'m, T: Float> {
    stepper: Stepper<'m, T>,
}

impl<T: Float> LmScorer<'_, T> {
    /// Feeds `x` from the stepper's current state.
    fn feed(&mut self, x: u32) -> LmState<T> {
        let mut log_probs = Vec::new();
        let logits = self.stepper.step(x);
        log_softmax_into(logits.iter().map(|v| v.to_f64()), &mut log_probs);
        LmState {
            rnn: self.stepper.state(),
            log_probs,
        }
    }
}

impl<T: Float> Scorer for LmScorer<'_, T> {
    type State = LmState<T>;

    fn log_probs<'a>(&self, state: &'a LmState<T>) -> &'a [f64] {
        &state.log_probs
    }

    fn advance(&mut self, state: &LmState<T>, symbol: usize) -> LmState<T> {
        self.stepper.set_state(&state.rnn);
        self.feed(symbol as u32)
    }
}

/// The `width` most likely continuations of `prompt` of exactly `length` characters, best
/// first, with their natural-log probabilities (see [`crate::nn::beam`] for the order of
/// ties). Fewer when the vocabulary has fewer sequences of that length.
pub fn beam_generate<T: Float>(
    model: &CharLm<T>,
    prompt: &str,
    length: usize,
    width: usize,
) -> Result<Vec<BeamText>> {
    if length > 10_000_000 {
        return Err(CoreError::invalid(format!(
            "length: expected <= 10000000, got {length}"
        )));
    }
    let ids = prompt_ids(model, prompt)?;
    let mut scorer = LmScorer {
        stepper: Stepper::new(model),
    };
    let (&last, primer) = ids.split_last().expect("prompt_ids is never empty");
    for &x in primer {
        scorer.stepper.step(x);
    }
    let start = scorer.feed(last);
    let opts = BeamOptions {
        width,
        steps: length,
        end: None,
    };
    Ok(beam_search(&mut scorer, start, &opts)?
        .into_iter()
        .map(|h| BeamText {
            text: model
                .vocab
                .decode(&h.symbols.iter().map(|&s| s as u32).collect::<Vec<_>>()),
            log_prob: h.log_prob,
        })
        .collect())
}
