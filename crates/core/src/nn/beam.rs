//! Beam search: the `width` most likely continuations of a sequence under an autoregressive
//! model, written once over a [`Scorer`] (the character language model and the name model
//! each provide one).
//!
//! A hypothesis' score is the sum of the natural-log probabilities of its symbols (temperature
//! 1: the model's own distribution). At each step every live hypothesis is extended by every
//! symbol and the `width` best candidates are kept; a candidate that picks the `end` symbol
//! (the name model's newline) is finished and leaves the beam, its probability counted; after
//! `steps` symbols every hypothesis is finished. Finished hypotheses compete for the beam's
//! slots with the live ones, so width 1 is exactly greedy decoding. The search stops early once
//! no live hypothesis can still reach the `width` best finished ones (log-probabilities are
//! <= 0, so extending never raises a score).
//!
//! Order: score descending; equal scores are ordered by their symbol sequences,
//! lexicographically (lower symbol index first, a sequence before its extensions; a finished
//! hypothesis counts its `end` symbol). The search is sequential, so its result does not depend
//! on the thread count.

use std::cmp::Ordering;
use std::rc::Rc;

use crate::error::{CoreError, Result};

/// Largest beam accepted (each step keeps `width` states and scores `width × vocabulary`
/// candidates).
pub const MAX_BEAM_WIDTH: usize = 10_000;

/// A model seen by the search: the next symbol's log-probabilities after a state, and the
/// state after feeding a symbol.
pub trait Scorer {
    /// Everything the model needs to continue a sequence (its recurrent state and the
    /// log-probabilities of the next symbol).
    type State;
    /// `ln P(next symbol = s | state)` for every symbol `s` of the vocabulary.
    fn log_probs<'a>(&self, state: &'a Self::State) -> &'a [f64];
    /// The state after feeding `symbol` to `state`.
    fn advance(&mut self, state: &Self::State, symbol: usize) -> Self::State;
}

/// What to search for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BeamOptions {
    /// How many hypotheses to keep (and at most how many to return), 1..=[`MAX_BEAM_WIDTH`].
    pub width: usize,
    /// Symbols to add at most (the text's length; the names' maximum length after the prefix).
    pub steps: usize,
    /// The symbol that ends a sequence early (names: the newline), or none (text).
    pub end: Option<usize>,
}

/// One result of the search.
#[derive(Clone, Debug, PartialEq)]
pub struct Hypothesis {
    /// The symbols added, without the `end` symbol.
    pub symbols: Vec<usize>,
    /// Natural-log probability of the symbols (and of the `end` symbol when `ended`).
    pub log_prob: f64,
    /// True when the sequence picked the `end` symbol, false when it ran to `steps`.
    pub ended: bool,
}

/// Checks a beam width: 1..=[`MAX_BEAM_WIDTH`].
pub fn check_width(width: usize) -> Result<()> {
    if (1..=MAX_BEAM_WIDTH).contains(&width) {
        Ok(())
    } else {
        Err(CoreError::invalid(format!(
            "beamWidth: expected an integer in [1, {MAX_BEAM_WIDTH}], got {width}"
        )))
    }
}

/// `ln softmax(z)` of logits, into `out` (max subtracted, sum in order).
pub fn log_softmax_into(logits: impl Iterator<Item = f64> + Clone, out: &mut Vec<f64>) {
    let max = logits.clone().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = logits.clone().map(|z| (z - max).exp()).sum();
    let lse = max + sum.ln();
    out.clear();
    out.extend(logits.map(|z| z - lse));
}

/// The symbols of a hypothesis as a shared linked list, so that extending one is O(1).
struct Path {
    symbol: usize,
    parent: Option<Rc<Path>>,
}

impl Drop for Path {
    // iteratively, so that a long text's chain does not overflow the stack
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(rc) = next {
            match Rc::try_unwrap(rc) {
                Ok(mut p) => next = p.parent.take(),
                Err(_) => break,
            }
        }
    }
}

fn symbols_of(path: &Option<Rc<Path>>) -> Vec<usize> {
    let mut out = Vec::new();
    let mut p = path.as_deref();
    while let Some(node) = p {
        out.push(node.symbol);
        p = node.parent.as_deref();
    }
    out.reverse();
    out
}

struct Live<S> {
    state: S,
    path: Option<Rc<Path>>,
    score: f64,
}

struct Finished {
    path: Option<Rc<Path>>,
    score: f64,
    /// The `end` symbol, when the hypothesis picked it.
    end: Option<usize>,
}

impl Finished {
    /// The sequence used to order equal scores.
    fn order_key(&self) -> Vec<usize> {
        let mut s = symbols_of(&self.path);
        s.extend(self.end);
        s
    }
}

/// Score descending, then the sequence (computed only for equal scores) ascending.
fn by_score_then(a: f64, b: f64, seq: impl FnOnce() -> Ordering) -> Ordering {
    b.total_cmp(&a).then_with(seq)
}

/// The `opts.width` most likely continuations of `start`, best first (see the module's
/// documentation for the rules). `opts.steps == 0` gives the empty continuation.
pub fn beam_search<S: Scorer>(
    scorer: &mut S,
    start: S::State,
    opts: &BeamOptions,
) -> Result<Vec<Hypothesis>> {
    check_width(opts.width)?;
    let width = opts.width;
    let mut live = vec![Live {
        state: start,
        path: None,
        score: 0.0,
    }];
    let mut finished: Vec<Finished> = Vec::new();
    if opts.steps == 0 {
        finished.push(Finished {
            path: None,
            score: 0.0,
            end: None,
        });
    }
    // (score, parent index in `live`, symbol)
    let mut candidates: Vec<(f64, usize, usize)> = Vec::new();
    for step in 0..opts.steps {
        // no live hypothesis can still enter the best `width` finished ones
        if live.is_empty() || (finished.len() >= width && live[0].score < finished[width - 1].score)
        {
            break;
        }
        candidates.clear();
        for (i, h) in live.iter().enumerate() {
            for (s, &lp) in scorer.log_probs(&h.state).iter().enumerate() {
                if lp.is_nan() {
                    return Err(CoreError::invalid(format!(
                        "beam search: the model's log-probability of symbol {s} is NaN \
                         (non-finite weights?)"
                    )));
                }
                candidates.push((h.score + lp, i, s));
            }
        }
        let order = |a: &(f64, usize, usize), b: &(f64, usize, usize)| {
            by_score_then(a.0, b.0, || {
                if a.1 == b.1 {
                    a.2.cmp(&b.2)
                } else {
                    // parents of equal length differ somewhere, so the symbol never decides
                    symbols_of(&live[a.1].path).cmp(&symbols_of(&live[b.1].path))
                }
            })
        };
        if candidates.len() > width {
            candidates.select_nth_unstable_by(width - 1, order);
            candidates.truncate(width);
        }
        candidates.sort_by(order);
        let last = step + 1 == opts.steps;
        let mut next = Vec::with_capacity(candidates.len());
        for &(score, i, s) in &candidates {
            let parent = &live[i];
            if opts.end == Some(s) {
                finished.push(Finished {
                    path: parent.path.clone(),
                    score,
                    end: Some(s),
                });
                continue;
            }
            let path = Some(Rc::new(Path {
                symbol: s,
                parent: parent.path.clone(),
            }));
            if last {
                finished.push(Finished {
                    path,
                    score,
                    end: None,
                });
            } else {
                let state = scorer.advance(&parent.state, s);
                next.push(Live { state, path, score });
            }
        }
        live = next;
        finished
            .sort_by(|a, b| by_score_then(a.score, b.score, || a.order_key().cmp(&b.order_key())));
        finished.truncate(width);
    }
    Ok(finished
        .iter()
        .map(|f| Hypothesis {
            symbols: symbols_of(&f.path),
            log_prob: f.score,
            ended: f.end.is_some(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Markov chain over 3 symbols; the state is the next symbol's log-probabilities.
    struct Chain([[f64; 3]; 4]);

    impl Scorer for Chain {
        type State = Vec<f64>;
        fn log_probs<'a>(&self, state: &'a Vec<f64>) -> &'a [f64] {
            state
        }
        fn advance(&mut self, _: &Vec<f64>, symbol: usize) -> Vec<f64> {
            self.0[symbol].to_vec()
        }
    }

    fn chain() -> Chain {
        let ln = |p: [f64; 3]| p.map(f64::ln);
        Chain([
            ln([0.5, 0.3, 0.2]),
            ln([0.1, 0.6, 0.3]),
            ln([0.4, 0.4, 0.2]),
            ln([0.2, 0.5, 0.3]), // start
        ])
    }

    #[test]
    fn width_one_is_greedy_and_wide_beams_are_exhaustive() {
        let opts = |width, end| BeamOptions {
            width,
            steps: 3,
            end,
        };
        let mut c = chain();
        let start = c.0[3].to_vec();
        let greedy = beam_search(&mut c, start.clone(), &opts(1, None)).unwrap();
        assert_eq!(greedy[0].symbols, vec![1, 1, 1]);
        // 27 sequences; every candidate fits in a beam of 27
        let all = beam_search(&mut c, start.clone(), &opts(27, None)).unwrap();
        assert_eq!(all.len(), 27);
        let total: f64 = all.iter().map(|h| h.log_prob.exp()).sum();
        assert!((total - 1.0).abs() < 1e-12, "{total}");
        // ties (0.4 and 0.4 after symbol 2) keep the lower symbol first
        assert!(all.windows(2).all(|w| w[0].log_prob >= w[1].log_prob));
        // with symbol 0 as the end: the greedy first pick 1, then 1, 1
        let ended = beam_search(&mut c, start.clone(), &opts(20, Some(0))).unwrap();
        let total: f64 = ended.iter().map(|h| h.log_prob.exp()).sum();
        assert!((total - 1.0).abs() < 1e-12, "{total}");
        assert!(ended.iter().all(|h| h.ended || h.symbols.len() == 3));
        assert!(check_width(0).is_err() && check_width(MAX_BEAM_WIDTH + 1).is_err());
    }
}
