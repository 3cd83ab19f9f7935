//! The course's `sample`: names drawn from the model one character at a time.

use rayon::prelude::*;

use super::numpy_order::step_forward_dispatch;
use super::{CharRnnParams, ParamsRef, COURSE_MAX_SAMPLE_LENGTH};
use crate::error::{CoreError, Result};
use crate::random::RandomState;

/// Options of [`sample_many`]: the course's name sampling (a prefix, a newline that ends the
/// name, the course's re-seeding before every draw). The language model's and jazz's sampling
/// options are [`crate::lm::SampleOptions`] and [`crate::nn::sample`]'s picker; names keep
/// their own procedure because the course's published samples depend on it draw for draw.
#[derive(Debug, Clone, PartialEq)]
pub struct NameSampleOptions {
    /// Seed of the first name; name `k` uses `seed + k` (taken modulo 2³², MT19937 seeds are
    /// 32-bit).
    pub seed: u64,
    /// Softmax temperature (> 0): the logits are divided by it. 1 is the course.
    pub temperature: f64,
    /// Maximum number of sampled characters per name (the course: 50).
    pub max_length: usize,
    /// Characters fed before sampling starts (the course: none). They begin every result.
    pub prefix: Vec<usize>,
    /// `true`: the course's procedure — re-seed with `counter + seed` before every draw,
    /// incrementing both, and append a newline after `max_length` characters even when the
    /// last one already was a newline. `false`: one generator per name, seeded once, and a
    /// newline appended only if missing.
    pub course_mode: bool,
    /// Draw only among the `top_k` most likely characters (renormalised; ties keep the lower
    /// index); 0 = all, the course.
    pub top_k: usize,
}

impl Default for NameSampleOptions {
    fn default() -> Self {
        NameSampleOptions {
            seed: 0,
            temperature: 1.0,
            max_length: COURSE_MAX_SAMPLE_LENGTH,
            prefix: Vec::new(),
            course_mode: false,
            top_k: 0,
        }
    }
}

/// The course's `sample(parameters, char_to_ix, seed)`: start from a zero input and zero
/// state, and at each step draw the next index from `ŷ` with `np.random.choice(p=ŷ)` after
/// `np.random.seed(counter + seed)` (both incremented per step); stop at the newline or after
/// 50 characters, then append the newline. Returns the indices, ending with `newline_ix`.
pub fn sample(params: &CharRnnParams, newline_ix: usize, seed: u32) -> Result<Vec<usize>> {
    let opts = NameSampleOptions {
        seed: seed as u64,
        course_mode: true,
        ..NameSampleOptions::default()
    };
    let p = params.view()?;
    check_sample(&p, newline_ix, &opts)?;
    sample_one(&p, newline_ix, &opts, 0)
}

/// `count` names sampled in parallel (rayon); name `k` depends only on its own seed
/// `opts.seed + k`, so the result is deterministic and independent of the thread count. With
/// `course_mode`, temperature 1 and no prefix, name `k` equals `sample(params, newline_ix,
/// seed + k)`.
pub fn sample_many(
    params: &CharRnnParams,
    newline_ix: usize,
    opts: &NameSampleOptions,
    count: usize,
) -> Result<Vec<Vec<usize>>> {
    let p = params.view()?;
    check_sample(&p, newline_ix, opts)?;
    (0..count)
        .into_par_iter()
        .map(|k| sample_one(&p, newline_ix, opts, k as u64))
        .collect()
}

pub(super) fn check_sample(
    p: &ParamsRef<'_>,
    newline_ix: usize,
    opts: &NameSampleOptions,
) -> Result<()> {
    if newline_ix >= p.n_y || newline_ix >= p.n_x {
        return Err(CoreError::invalid(format!(
            "newline_ix: index {newline_ix} out of range for a vocabulary of {}",
            p.n_y.min(p.n_x)
        )));
    }
    if p.n_x != p.n_y {
        return Err(CoreError::ShapeMismatch {
            name: "wya".into(),
            expected: format!("n_y = n_x = {} (the output feeds back as input)", p.n_x),
            actual: format!("n_y = {}", p.n_y),
        });
    }
    if !(opts.temperature > 0.0 && opts.temperature.is_finite()) {
        return Err(CoreError::invalid(format!(
            "temperature: expected a finite number > 0, got {}",
            opts.temperature
        )));
    }
    for (i, &c) in opts.prefix.iter().enumerate() {
        if c >= p.n_x {
            return Err(CoreError::invalid(format!(
                "prefix[{i}]: index {c} out of range for a vocabulary of {}",
                p.n_x
            )));
        }
    }
    Ok(())
}

/// One name (see [`NameSampleOptions`]); `k` is its position in a batch.
fn sample_one(
    p: &ParamsRef<'_>,
    newline_ix: usize,
    opts: &NameSampleOptions,
    k: u64,
) -> Result<Vec<usize>> {
    let seed = opts.seed.wrapping_add(k);
    let mut rs = RandomState::new(seed as u32);
    let mut a_prev = vec![0.0; p.n_a]; // (n_a,)
    let mut a = vec![0.0; p.n_a]; // (n_a,)
    let mut probs = vec![0.0; p.n_y]; // (n_y,)
    let mut indices = Vec::with_capacity(opts.prefix.len() + opts.max_length + 1);
    let mut order: Vec<usize> = Vec::new(); // scratch of keep_top_k
    let mut x: Option<usize> = None;
    // feed the prefix: its characters are inputs, not draws
    for &c in &opts.prefix {
        step_forward_dispatch(p, x, &a_prev, &mut a, &mut probs, opts.temperature);
        std::mem::swap(&mut a_prev, &mut a);
        indices.push(c);
        x = Some(c);
    }
    let mut counter: u64 = 0;
    let mut idx = usize::MAX;
    while idx != newline_ix && counter != opts.max_length as u64 {
        step_forward_dispatch(p, x, &a_prev, &mut a, &mut probs, opts.temperature);
        if opts.course_mode {
            // np.random.seed(counter + seed), where the course's seed also grows by one per step
            rs.seed(seed.wrapping_add(2 * counter) as u32);
        }
        if opts.top_k > 0 && opts.top_k < probs.len() {
            keep_top_k(&mut probs, opts.top_k, &mut order);
        }
        idx = rs.choice_p(&probs)?;
        indices.push(idx);
        x = Some(idx);
        std::mem::swap(&mut a_prev, &mut a);
        counter += 1;
    }
    if counter == opts.max_length as u64 && (opts.course_mode || idx != newline_ix) {
        indices.push(newline_ix);
    }
    Ok(indices)
}

/// Keeps the `k` largest probabilities (ties: the lower index first), zeroes the rest and
/// renormalises the kept ones to sum to 1.
fn keep_top_k(probs: &mut [f64], k: usize, order: &mut Vec<usize>) {
    order.clear();
    order.extend(0..probs.len());
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    let kept: f64 = order[..k].iter().map(|&i| probs[i]).sum();
    for &i in &order[k..] {
        probs[i] = 0.0;
    }
    for &i in &order[..k] {
        probs[i] /= kept;
    }
}

#[cfg(test)]
mod tests {
    use super::keep_top_k;

    #[test]
    fn keep_top_k_keeps_the_largest_and_renormalises() {
        let mut p = [0.1, 0.4, 0.2, 0.2, 0.1];
        keep_top_k(&mut p, 2, &mut Vec::new());
        // 0.4 and the first of the tied 0.2s
        let kept = 0.4 + 0.2;
        assert_eq!(p, [0.0, 0.4 / kept, 0.2 / kept, 0.0, 0.0]);
    }
}
