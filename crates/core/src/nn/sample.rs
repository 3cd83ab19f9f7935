//! Picking the next token from a model's output: greedy (temperature 0), or a draw from the
//! distribution sharpened or flattened by a temperature, optionally restricted to the `top_k`
//! most likely tokens, with one `choice` draw from numpy's `RandomState`. The language model
//! samples from logits, jazz from softmax probabilities (deepjazz's `p^(1/T)`).

use crate::error::{CoreError, Result};
use crate::math::Float;
use crate::random::RandomState;

/// What the model hands to [`pick`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scores {
    /// Logits `z`: the draw is from `softmax(z / T)` (`z · (1/T)`, computed as such).
    Logits,
    /// Probabilities `p`: the draw is from `p^(1/T)` renormalised (`ln p / T` in log space,
    /// with `p` floored at 1e-300 so it never underflows to all zeros).
    Probabilities,
}

/// Checks a temperature: finite and `>= 0`.
pub fn check_temperature(temperature: f64) -> Result<()> {
    if temperature.is_finite() && temperature >= 0.0 {
        Ok(())
    } else {
        Err(CoreError::invalid(format!(
            "temperature must be a finite number >= 0, got {temperature}"
        )))
    }
}

/// Index of the first largest score.
fn argmax<T: Float>(scores: &[T]) -> usize {
    let mut best = 0;
    for (i, v) in scores.iter().enumerate() {
        if *v > scores[best] {
            best = i;
        }
    }
    best
}

/// The next token from `scores` (non-empty): the argmax (first of ties) when `temperature` is
/// 0 or `top_k` is 1; otherwise one `rng.choice_p` draw from the tempered distribution over
/// the `top_k` highest scores (0 = all; ties keep the lower index). `work` is scratch.
pub fn pick<T: Float>(
    scores: &[T],
    kind: Scores,
    temperature: f64,
    top_k: usize,
    work: &mut Vec<f64>,
    rng: &mut RandomState,
) -> Result<usize> {
    if scores.is_empty() {
        return Err(CoreError::invalid("pick: no scores to pick from"));
    }
    if temperature == 0.0 || top_k == 1 {
        return Ok(argmax(scores));
    }
    work.clear();
    match kind {
        Scores::Logits => {
            let inv_t = 1.0 / temperature;
            work.extend(scores.iter().map(|v| v.to_f64() * inv_t));
        }
        Scores::Probabilities => {
            work.extend(
                scores
                    .iter()
                    .map(|v| v.to_f64().max(1e-300).ln() / temperature),
            );
        }
    }
    if top_k > 0 && top_k < work.len() {
        let mut idx: Vec<usize> = (0..work.len()).collect();
        idx.sort_by(|&a, &b| work[b].total_cmp(&work[a]).then(a.cmp(&b)));
        for &i in &idx[top_k..] {
            work[i] = f64::NEG_INFINITY;
        }
    }
    // softmax with the max subtracted, summed in order
    let max = work.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for w in work.iter_mut() {
        *w = (*w - max).exp();
        sum += *w;
    }
    for w in work.iter_mut() {
        *w /= sum;
    }
    rng.choice_p(work)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_maximum_and_ignores_the_rng() {
        let mut rng = RandomState::new(0);
        let mut work = Vec::new();
        let s = [0.1f32, 0.7, 0.7, 0.2];
        for kind in [Scores::Logits, Scores::Probabilities] {
            assert_eq!(pick(&s, kind, 0.0, 0, &mut work, &mut rng).unwrap(), 1);
            assert_eq!(pick(&s, kind, 1.5, 1, &mut work, &mut rng).unwrap(), 1);
        }
        assert!(pick::<f64>(&[], Scores::Logits, 1.0, 0, &mut work, &mut rng).is_err());
    }

    #[test]
    fn top_k_never_draws_outside_the_k_best() {
        let mut rng = RandomState::new(3);
        let mut work = Vec::new();
        let logits = [2.0f64, -1.0, 1.5, 0.0, 1.9];
        for _ in 0..200 {
            let i = pick(&logits, Scores::Logits, 5.0, 2, &mut work, &mut rng).unwrap();
            assert!(i == 0 || i == 4, "{i}");
        }
        assert!(check_temperature(-1.0).is_err() && check_temperature(f64::NAN).is_err());
    }
}
