//! Beam search over the name model: [`crate::nn::beam`] on the course's forward step (the
//! one the sampler uses, at temperature 1); a name ends at the newline, whose probability
//! counts, or after `max_length` characters.

use super::numpy_order::step_forward_dispatch;
use super::sample::check_sample;
use super::{CharRnnParams, NameSampleOptions, ParamsRef};
use crate::error::Result;
use crate::nn::beam::{beam_search, BeamOptions, Scorer};

/// One name found by [`beam_names`].
#[derive(Clone, Debug, PartialEq)]
pub struct BeamName {
    /// The prefix then the characters found, without the newline.
    pub indices: Vec<usize>,
    /// Natural-log probability of the characters after the prefix, and of the newline when
    /// `ended`.
    pub log_prob: f64,
    /// True when the name ended with the newline, false when it ran to `max_length`.
    pub ended: bool,
}

/// The hidden state after some characters, with the next character's log-probabilities.
struct NameState {
    a: Vec<f64>,
    log_probs: Vec<f64>,
}

struct NameScorer<'p> {
    p: ParamsRef<'p>,
    /// Scratch: the softmax output of a step.
    probs: Vec<f64>,
}

impl NameScorer<'_> {
    /// One course step from hidden state `a_prev` with input `x` (`None`: the zero vector).
    fn step(&mut self, a_prev: &[f64], x: Option<usize>) -> NameState {
        let mut a = vec![0.0; self.p.n_a];
        step_forward_dispatch(&self.p, x, a_prev, &mut a, &mut self.probs, 1.0);
        NameState {
            a,
            log_probs: self.probs.iter().map(|p| p.ln()).collect(),
        }
    }
}

impl Scorer for NameScorer<'_> {
    type State = NameState;

    fn log_probs<'a>(&self, state: &'a NameState) -> &'a [f64] {
        &state.log_probs
    }

    fn advance(&mut self, state: &NameState, symbol: usize) -> NameState {
        self.step(&state.a, Some(symbol))
    }
}

/// The `width` most likely names after `prefix` with at most `max_length` characters after
/// it, best first (see [`crate::nn::beam`] for the rules and the order of ties). As the
/// sampler, the first input is the zero vector and the prefix is fed, not scored.
pub fn beam_names(
    params: &CharRnnParams,
    newline_ix: usize,
    prefix: &[usize],
    max_length: usize,
    width: usize,
) -> Result<Vec<BeamName>> {
    let p = params.view()?;
    let checked = NameSampleOptions {
        prefix: prefix.to_vec(),
        max_length,
        ..NameSampleOptions::default()
    };
    check_sample(&p, newline_ix, &checked)?;
    let mut scorer = NameScorer {
        probs: vec![0.0; p.n_y],
        p,
    };
    let mut state = scorer.step(&vec![0.0; scorer.p.n_a], None);
    for &c in prefix {
        state = scorer.advance(&state, c);
    }
    let opts = BeamOptions {
        width,
        steps: max_length,
        end: Some(newline_ix),
    };
    Ok(beam_search(&mut scorer, state, &opts)?
        .into_iter()
        .map(|h| BeamName {
            indices: prefix.iter().copied().chain(h.symbols).collect(),
            log_prob: h.log_prob,
            ended: h.ended,
        })
        .collect())
}
