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

/// A weight matrix W (rows × cols) stored for batch-1 products `out += W·x`: cut into panels
/// of `P` consecutive rows, each panel stored column after column (`P` values of a column side
/// by side, rows past the end zero). A panel's `P` sums then stay in registers while one pass
/// over its columns streams its weights once, contiguously; every sum still adds the columns
/// in order, one rounded product at a time, so the results are those of the plain loop.
#[derive(Clone, Debug)]
struct Panels<T> {
    rows: usize,
    cols: usize,
    data: Vec<T>,
}

/// Rows per panel: 64 sums, 8 blocks of 8 lanes (8 AVX2 registers in f32, enough to keep both
/// adders busy; 16 in f64).
const P: usize = 64;

impl<T: Float> Panels<T> {
    /// Packs the columns of several row-major matrices with the same number of rows, side by
    /// side: `[A | B]` for `parts = [(A, cols_A), (B, cols_B)]`.
    fn pack(rows: usize, parts: &[(&[T], usize)]) -> Self {
        let cols: usize = parts.iter().map(|&(_, c)| c).sum();
        let mut data = vec![T::ZERO; rows.div_ceil(P) * cols * P];
        let mut c0 = 0;
        for &(w, wc) in parts {
            debug_assert_eq!(w.len(), rows * wc);
            for r in 0..rows {
                let (panel, i) = (r / P, r % P);
                for c in 0..wc {
                    data[(panel * cols + c0 + c) * P + i] = w[r * wc + c];
                }
            }
            c0 += wc;
        }
        Panels { rows, cols, data }
    }

    /// out += W·x (`out`: rows, `x`: cols), on the SIMD level in force.
    fn matvec_add(&self, out: &mut [T], x: &[T]) {
        debug_assert!(out.len() == self.rows && x.len() == self.cols);
        T::vectorized(PanelMatvec {
            out,
            panels: &self.data,
            x,
        })
    }
}

/// The kernel of [`Panels::matvec_add`].
struct PanelMatvec<'a, T> {
    out: &'a mut [T],
    panels: &'a [T],
    x: &'a [T],
}

impl<T: Float> SimdKernel for PanelMatvec<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let cols = self.x.len();
        let quads = cols / 4;
        for (out, panel) in self
            .out
            .chunks_mut(P)
            .zip(self.panels.chunks_exact(P * cols))
        {
            let mut acc = [T::ZERO; P];
            acc[..out.len()].copy_from_slice(out);
            // four columns per pass over the sums: each sum still adds its columns in order,
            // one rounded product at a time, but is loaded and stored once per four
            let (w4, w1) = panel.split_at(quads * 4 * P);
            let (x4, x1) = self.x.split_at(quads * 4);
            for (x, w) in x4.chunks_exact(4).zip(w4.chunks_exact(4 * P)) {
                let (w0, w) = w.split_at(P);
                let (w1, w) = w.split_at(P);
                let (w2, w3) = w.split_at(P);
                for i in 0..P {
                    acc[i] = acc[i] + x[0] * w0[i] + x[1] * w1[i] + x[2] * w2[i] + x[3] * w3[i];
                }
            }
            for (&xc, w) in x1.iter().zip(w1.chunks_exact(P)) {
                for i in 0..P {
                    acc[i] += xc * w[i];
                }
            }
            out.copy_from_slice(&acc[..out.len()]);
        }
    }
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

/// One layer's weights as the stepper uses them.
#[derive(Clone, Debug)]
struct StepLayer<T> {
    /// The gates' bias, added first as in training: b_ih + b_hh (GRU: b_ih alone for the n
    /// gate, whose b_hn stays with W_hn·h).
    bias: Vec<T>,
    /// One-hot input (layer 0 without embedding): W_ihᵀ (V, G·H), a row per character.
    onehot_t: Option<Vec<T>>,
    /// LSTM/RNN: `[W_ih | W_hh]` (or `W_hh` alone for one-hot input), applied to `[x; h]` in
    /// one pass: the same sums, in the same order, as `W_ih·x` followed by `W_hh·h`.
    /// GRU: `W_ih` alone (none for one-hot input).
    w: Option<Panels<T>>,
    /// GRU only: `W_hh`, applied to h apart from z (from 0 for r and z, from b_hn for n).
    w_hh_apart: Option<Panels<T>>,
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
    layers: Vec<StepLayer<T>>,
    /// The output layer W_y (V, H_last).
    w_y: Panels<T>,
    /// Scratch: the product input `[x; h]` (I_max + H_max), the previous cell state (GRU:
    /// previous hidden state) and tanh(c) (H_max).
    xh: Vec<T>,
    c_prev: Vec<T>,
    tc: Vec<T>,
    /// GRU scratch (G·H_max): W_hh·h, whose n block stays apart from z.
    hz: Vec<T>,
}

impl<'m, T: Float> Stepper<'m, T> {
    /// Zero state. Packs the weights once (a copy of the model's size).
    pub fn new(model: &'m CharLm<T>) -> Self {
        let hs: Vec<usize> = model.layers.iter().map(|l| l.hidden).collect();
        let cell = model.config.cell;
        let g = cell.gates();
        let h_max = hs.iter().copied().max().unwrap_or(0);
        let onehot = model.emb.is_none();
        let layers: Vec<StepLayer<T>> = model
            .layers
            .iter()
            .enumerate()
            .map(|(k, l)| {
                let gh = g * l.hidden;
                let (w_ih, w_hh) = (model.slot(l.w_ih), model.slot(l.w_hh));
                let (b_ih, b_hh) = (model.slot(l.b_ih), model.slot(l.b_hh));
                let folded = cell.folded_bias_cols(l.hidden);
                let bias = (0..gh)
                    .map(|r| {
                        if r < folded {
                            b_ih[r] + b_hh[r]
                        } else {
                            b_ih[r]
                        }
                    })
                    .collect();
                let onehot_t = (k == 0 && onehot).then(|| transpose(w_ih, gh, l.input));
                let input = (onehot_t.is_none()).then_some((w_ih, l.input));
                let (w, w_hh_apart) = if cell == Cell::Gru {
                    (
                        input.map(|p| Panels::pack(gh, &[p])),
                        Some(Panels::pack(gh, &[(w_hh, l.hidden)])),
                    )
                } else {
                    let parts: Vec<(&[T], usize)> =
                        input.into_iter().chain([(w_hh, l.hidden)]).collect();
                    (Some(Panels::pack(gh, &parts)), None)
                };
                StepLayer {
                    bias,
                    onehot_t,
                    w,
                    w_hh_apart,
                }
            })
            .collect();
        let in_max = model.layers.iter().map(|l| l.input).max().unwrap_or(0);
        Stepper {
            model,
            h: hs.iter().map(|&h| vec![T::ZERO; h]).collect(),
            c: hs.iter().map(|&h| vec![T::ZERO; h]).collect(),
            z: vec![T::ZERO; g * h_max],
            logits: vec![T::ZERO; model.vocab.len()],
            layers,
            w_y: Panels::pack(
                model.vocab.len(),
                &[(model.slot(model.out_w), *hs.last().unwrap_or(&0))],
            ),
            xh: vec![T::ZERO; in_max + h_max],
            c_prev: vec![T::ZERO; h_max],
            tc: vec![T::ZERO; h_max],
            hz: if cell == Cell::Gru {
                vec![T::ZERO; g * h_max]
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
        for (k, (l, sl)) in m.layers.iter().zip(&self.layers).enumerate() {
            let (gh, hs) = (cell.gates() * l.hidden, l.hidden);
            let z = &mut self.z[..gh];
            let (below, rest) = self.h.split_at_mut(k);
            let h = &mut rest[0];
            // z = b_ih + b_hh + W_ih·x + W_hh·h (GRU: the n gate's b_hn + W_hn·h apart)
            z.copy_from_slice(&sl.bias);
            let mut n_in = 0;
            if let Some(w_ih_t) = &sl.onehot_t {
                // one-hot: a column of W_ih, i.e. a row of W_ihᵀ
                for (zv, &w) in z.iter_mut().zip(&w_ih_t[x * gh..(x + 1) * gh]) {
                    *zv += w;
                }
            } else {
                let input = if k == 0 {
                    let e = m.slot(m.emb.unwrap_or(0));
                    &e[x * l.input..(x + 1) * l.input]
                } else {
                    &below[k - 1][..]
                };
                self.xh[..l.input].copy_from_slice(input);
                n_in = l.input;
            }
            let folded = cell.folded_bias_cols(hs);
            if let Some(w_hh) = &sl.w_hh_apart {
                if let Some(w) = &sl.w {
                    w.matvec_add(z, &self.xh[..n_in]);
                }
                let hz = &mut self.hz[..gh];
                hz[..folded].fill(T::ZERO);
                hz[folded..].copy_from_slice(&m.slot(l.b_hh)[folded..]);
                w_hh.matvec_add(hz, h);
                for (zv, &hv) in z[..folded].iter_mut().zip(&hz[..folded]) {
                    *zv += hv;
                }
            } else if let Some(w) = &sl.w {
                self.xh[n_in..n_in + hs].copy_from_slice(h);
                w.matvec_add(z, &self.xh[..n_in + hs]);
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
        self.logits.copy_from_slice(m.slot(m.out_b));
        self.w_y.matvec_add(&mut self.logits, top);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lm::{LmConfig, Vocab};

    /// The step of the plain loops (the stepper before its weights were packed): z = b_ih +
    /// b_hh, then `+= x_c·W[:, c]` column by column for W_ih and then W_hh, one rounded
    /// product at a time.
    fn reference_logits<T: Float>(m: &CharLm<T>, ids: &[u32]) -> Vec<Vec<T>> {
        let g = m.config.cell.gates();
        let mut h: Vec<Vec<T>> = m.layers.iter().map(|l| vec![T::ZERO; l.hidden]).collect();
        let mut c = h.clone();
        let mut out = Vec::new();
        for &x in ids {
            let x = x as usize;
            for (k, l) in m.layers.iter().enumerate() {
                let gh = g * l.hidden;
                let (w_ih, w_hh) = (m.slot(l.w_ih), m.slot(l.w_hh));
                let folded = m.config.cell.folded_bias_cols(l.hidden);
                let mut z: Vec<T> = (0..gh)
                    .map(|r| {
                        if r < folded {
                            m.slot(l.b_ih)[r] + m.slot(l.b_hh)[r]
                        } else {
                            m.slot(l.b_ih)[r]
                        }
                    })
                    .collect();
                let input: Vec<T> = match (k, m.emb) {
                    (0, None) => (0..l.input)
                        .map(|i| if i == x { T::ONE } else { T::ZERO })
                        .collect(),
                    (0, Some(e)) => m.slot(e)[x * l.input..(x + 1) * l.input].to_vec(),
                    _ => h[k - 1].clone(),
                };
                for (col, &v) in input.iter().enumerate() {
                    if k == 0 && m.emb.is_none() && col != x {
                        continue; // a one-hot input adds only its own column
                    }
                    for (r, zr) in z.iter_mut().enumerate() {
                        *zr += if k == 0 && m.emb.is_none() {
                            w_ih[r * l.input + col]
                        } else {
                            v * w_ih[r * l.input + col]
                        };
                    }
                }
                // W_hh·h into z (GRU: into hz, from 0 for r and z and from b_hn for n, then
                // the r and z blocks added to z)
                let gru = m.config.cell == Cell::Gru;
                let mut hz: Vec<T> = (0..gh)
                    .map(|r| {
                        if r < folded {
                            T::ZERO
                        } else {
                            m.slot(l.b_hh)[r]
                        }
                    })
                    .collect();
                for (col, &v) in h[k].clone().iter().enumerate() {
                    let acc = if gru { &mut hz } else { &mut z };
                    for (r, zr) in acc.iter_mut().enumerate() {
                        *zr += v * w_hh[r * l.hidden + col];
                    }
                }
                if gru {
                    for r in 0..folded {
                        z[r] += hz[r];
                    }
                }
                let hs = l.hidden;
                match m.config.cell {
                    Cell::Gru => {
                        let h_prev = h[k].clone();
                        gru_activations(&mut z, &hz[folded..gh], &h_prev, &mut h[k], hs);
                    }
                    Cell::Rnn => rnn_activations(&z[..hs], &mut h[k]),
                    Cell::Lstm => {
                        let c_prev = c[k].clone();
                        let mut tc = vec![T::ZERO; hs];
                        lstm_activations(&mut z, &c_prev, &mut c[k], &mut tc, &mut h[k], hs);
                    }
                }
            }
            let top = &h[m.layers.len() - 1];
            let w_y = m.slot(m.out_w);
            let mut y = m.slot(m.out_b).to_vec();
            for (col, &v) in top.iter().enumerate() {
                for (r, yr) in y.iter_mut().enumerate() {
                    *yr += v * w_y[r * top.len() + col];
                }
            }
            out.push(y);
        }
        out
    }

    fn same_bits_as_the_plain_loops<T: Float>() {
        let text =
            "Shall I compare thee to a summer's day? Thou art more lovely and more temperate";
        let vocab = Vocab::from_text(text).unwrap();
        for (cell, hidden, embedding) in [
            (Cell::Lstm, vec![37, 130], None),
            (Cell::Lstm, vec![16], Some(5)),
            (Cell::Rnn, vec![33, 7], None),
            (Cell::Rnn, vec![129], Some(3)),
            (Cell::Gru, vec![37, 70], None),
            (Cell::Gru, vec![20], Some(4)),
        ] {
            let cfg = LmConfig {
                cell,
                hidden,
                embedding,
                dropout: 0.0,
            };
            let m = CharLm::<T>::new(cfg.clone(), vocab.clone(), 3).unwrap();
            let ids = m.vocab.encode(text, "text").unwrap();
            let want = reference_logits(&m, &ids);
            let mut s = Stepper::new(&m);
            for (t, &x) in ids.iter().enumerate() {
                let got = s.step(x);
                assert!(
                    got.iter()
                        .zip(&want[t])
                        .all(|(a, b)| a.to_f64().to_bits() == b.to_f64().to_bits()),
                    "{cfg:?} {} step {t}",
                    T::DTYPE
                );
            }
        }
    }

    #[test]
    fn packed_stepper_gives_the_bits_of_the_plain_loops() {
        same_bits_as_the_plain_loops::<f32>();
        same_bits_as_the_plain_loops::<f64>();
    }
}
