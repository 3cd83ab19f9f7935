//! Prompt completion: the prompt primes the state of every layer, then characters are drawn
//! one at a time (temperature, top-k, or greedy) with numpy's `RandomState`, each fed back as
//! the next input. One sequence, so the products are matrix–vector loops written to vectorise.

use super::model::{Cell, CharLm};
use crate::error::{CoreError, Result};
use crate::math::{Float, SimdKernel};
use crate::nn::recurrent::{gru_activations, lstm_activations, rnn_activations};
use crate::nn::sample::{pick, Scores};
use crate::random::RandomState;

/// How to draw characters.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleOptions {
    /// Characters to generate after the prompt.
    pub length: usize,
    /// Softmax temperature; 0 means greedy (argmax).
    pub temperature: f64,
    /// Keep only the k most likely characters (0 = all).
    pub top_k: usize,
    /// Seed of the `RandomState` used for the draws.
    pub seed: u32,
}

/// out += W·x with W given transposed (`wt`: x.len() × out.len(), row-major): a sum of
/// contiguous axpy's `out += x[c]·Wᵀ[c, :]`, in the order of c — vectorises across the
/// outputs without horizontal reductions.
struct MatvecT<'a, T> {
    out: &'a mut [T],
    wt: &'a [T],
    x: &'a [T],
}

impl<T: Float> SimdKernel for MatvecT<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let rows = self.out.len();
        for (c, &xc) in self.x.iter().enumerate() {
            let col = &self.wt[c * rows..(c + 1) * rows];
            for (o, &w) in self.out.iter_mut().zip(col) {
                *o += xc * w;
            }
        }
    }
}

/// out += W·x from Wᵀ, on the SIMD level in force.
fn matvec_t<T: Float>(out: &mut [T], wt: &[T], x: &[T]) {
    T::vectorized(MatvecT { out, wt, x })
}

/// Transpose of a row-major (rows × cols) matrix.
fn transpose<T: Float>(w: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut t = vec![T::ZERO; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}

/// The recurrent state of a [`Stepper`] (h and c of every layer), without its weights.
#[derive(Clone, Debug)]
pub struct StepperState<T> {
    h: Vec<Vec<T>>,
    c: Vec<Vec<T>>,
}

/// The running state of one sequence through the model (h and c of every layer).
#[derive(Clone, Debug)]
pub struct Stepper<'m, T: Float> {
    model: &'m CharLm<T>,
    h: Vec<Vec<T>>,
    c: Vec<Vec<T>>,
    /// Gate scratch (G·H_max).
    z: Vec<T>,
    /// Logits of the last step (V).
    logits: Vec<T>,
    /// Transposed weights per layer: W_ihᵀ (I, G·H) and W_hhᵀ (H, G·H); and W_yᵀ (H_last, V).
    w_ih_t: Vec<Vec<T>>,
    w_hh_t: Vec<Vec<T>>,
    w_y_t: Vec<T>,
    /// Scratch (H_max): previous cell state (GRU: previous hidden state) and tanh(c).
    c_prev: Vec<T>,
    tc: Vec<T>,
    /// GRU scratch (G·H_max): W_hh·h, whose n block stays apart from z.
    hz: Vec<T>,
}

impl<'m, T: Float> Stepper<'m, T> {
    /// Zero state.
    pub fn new(model: &'m CharLm<T>) -> Self {
        let hs: Vec<usize> = model.layers.iter().map(|l| l.hidden).collect();
        let g = model.config.cell.gates();
        Stepper {
            model,
            h: hs.iter().map(|&h| vec![T::ZERO; h]).collect(),
            c: hs.iter().map(|&h| vec![T::ZERO; h]).collect(),
            z: vec![T::ZERO; g * hs.iter().copied().max().unwrap_or(0)],
            logits: vec![T::ZERO; model.vocab.len()],
            w_ih_t: model
                .layers
                .iter()
                .map(|l| transpose(model.slot(l.w_ih), g * l.hidden, l.input))
                .collect(),
            w_hh_t: model
                .layers
                .iter()
                .map(|l| transpose(model.slot(l.w_hh), g * l.hidden, l.hidden))
                .collect(),
            w_y_t: transpose(
                model.slot(model.out_w),
                model.vocab.len(),
                *hs.last().unwrap_or(&0),
            ),
            c_prev: vec![T::ZERO; hs.iter().copied().max().unwrap_or(0)],
            tc: vec![T::ZERO; hs.iter().copied().max().unwrap_or(0)],
            hz: if model.config.cell == Cell::Gru {
                vec![T::ZERO; g * hs.iter().copied().max().unwrap_or(0)]
            } else {
                Vec::new()
            },
        }
    }

    /// A copy of the recurrent state (h and c of every layer), e.g. to branch a beam search.
    pub fn state(&self) -> StepperState<T> {
        StepperState {
            h: self.h.clone(),
            c: self.c.clone(),
        }
    }

    /// Continues from a state taken from a `Stepper` of the same model.
    pub fn set_state(&mut self, state: &StepperState<T>) {
        for (dst, src) in self.h.iter_mut().zip(&state.h) {
            dst.copy_from_slice(src);
        }
        for (dst, src) in self.c.iter_mut().zip(&state.c) {
            dst.copy_from_slice(src);
        }
    }

    /// Feeds character index `x` (must be < V); returns the logits for the next character.
    pub fn step(&mut self, x: u32) -> &[T] {
        let m = self.model;
        let cell = m.config.cell;
        let x = x as usize;
        for (k, l) in m.layers.iter().enumerate() {
            let gh = cell.gates() * l.hidden;
            let (b_ih, b_hh) = (m.slot(l.b_ih), m.slot(l.b_hh));
            let z = &mut self.z[..gh];
            let (below, rest) = self.h.split_at_mut(k);
            let h = &mut rest[0];
            // z = b_ih + b_hh + W_ih·x + W_hh·h (GRU: the n gate's b_hn + W_hn·h apart)
            let folded = cell.folded_bias_cols(l.hidden);
            for (g, zv) in z.iter_mut().enumerate() {
                *zv = if g < folded {
                    b_ih[g] + b_hh[g]
                } else {
                    b_ih[g]
                };
            }
            let (w_ih_t, w_hh_t) = (&self.w_ih_t[k], &self.w_hh_t[k]);
            if k == 0 && m.emb.is_none() {
                // one-hot: a column of W_ih, i.e. a row of W_ihᵀ
                for (zv, &w) in z.iter_mut().zip(&w_ih_t[x * gh..(x + 1) * gh]) {
                    *zv += w;
                }
            } else if k == 0 {
                let e = m.slot(m.emb.unwrap_or(0));
                matvec_t(z, w_ih_t, &e[x * l.input..(x + 1) * l.input]);
            } else {
                matvec_t(z, w_ih_t, &below[k - 1]);
            }
            let hs = l.hidden;
            if cell == Cell::Gru {
                let hz = &mut self.hz[..gh];
                hz[..folded].fill(T::ZERO);
                hz[folded..].copy_from_slice(&b_hh[folded..]);
                matvec_t(hz, w_hh_t, h);
                for (zv, &hv) in z[..folded].iter_mut().zip(&hz[..folded]) {
                    *zv += hv;
                }
            } else {
                matvec_t(z, w_hh_t, h);
            }
            // the same (vectorised) activations as training
            match cell {
                Cell::Rnn => rnn_activations(&z[..hs], h),
                Cell::Gru => {
                    let h_prev = &mut self.c_prev[..hs];
                    h_prev.copy_from_slice(h);
                    gru_activations(z, &self.hz[folded..gh], h_prev, h, hs);
                }
                Cell::Lstm => {
                    let c = &mut self.c[k];
                    let c_prev = &mut self.c_prev[..hs];
                    c_prev.copy_from_slice(c);
                    lstm_activations(z, c_prev, c, &mut self.tc[..hs], h, hs);
                }
            }
        }
        let top = &self.h[m.layers.len() - 1];
        let b_y = m.slot(m.out_b);
        self.logits.copy_from_slice(b_y);
        matvec_t(&mut self.logits, &self.w_y_t, top);
        &self.logits
    }
}

/// The logits after each character of `text` from a zero state ((len, V), f64), e.g. to
/// compare with another implementation.
pub fn logits_for<T: Float>(model: &CharLm<T>, text: &str) -> Result<Vec<Vec<f64>>> {
    let ids = model.vocab.encode(text, "text")?;
    let mut s = Stepper::new(model);
    Ok(ids
        .iter()
        .map(|&x| s.step(x).iter().map(|v| v.to_f64()).collect())
        .collect())
}

/// Validates sampling options.
pub fn validate_options(opts: &SampleOptions) -> Result<()> {
    if !(opts.temperature.is_finite() && opts.temperature >= 0.0) {
        return Err(CoreError::invalid(format!(
            "temperature: expected a finite number >= 0, got {}",
            opts.temperature
        )));
    }
    if opts.length > 10_000_000 {
        return Err(CoreError::invalid(format!(
            "length: expected <= 10000000, got {}",
            opts.length
        )));
    }
    Ok(())
}

/// The characters that prime the state: the prompt's, or `'\n'` (else the vocabulary's first
/// character) for an empty prompt. Never empty; the last one is fed to draw the first
/// character of the completion.
pub(crate) fn prompt_ids<T: Float>(model: &CharLm<T>, prompt: &str) -> Result<Vec<u32>> {
    let mut ids = model.vocab.encode(prompt, "prompt")?;
    if ids.is_empty() {
        ids.push(model.vocab.get('\n').unwrap_or(0));
    }
    Ok(ids)
}

/// Completes `prompt` with `opts.length` characters (returned without the prompt). An empty
/// prompt starts as [`prompt_ids`] says.
/// Characters of the prompt outside the vocabulary give an error naming them.
pub fn generate<T: Float>(model: &CharLm<T>, prompt: &str, opts: &SampleOptions) -> Result<String> {
    validate_options(opts)?;
    let ids = prompt_ids(model, prompt)?;
    let mut rng = RandomState::new(opts.seed);
    let mut stepper = Stepper::new(model);
    for &x in &ids[..ids.len() - 1] {
        stepper.step(x);
    }
    let mut x = ids[ids.len() - 1];
    let mut out = Vec::with_capacity(opts.length);
    let mut probs = Vec::with_capacity(model.vocab.len());
    for _ in 0..opts.length {
        let logits = stepper.step(x);
        x = pick(
            logits,
            Scores::Logits,
            opts.temperature,
            opts.top_k,
            &mut probs,
            &mut rng,
        )? as u32;
        out.push(x);
    }
    Ok(model.vocab.decode(&out))
}
