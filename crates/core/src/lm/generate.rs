//! Prompt completion: the prompt primes the state of every layer, then characters are drawn
//! one at a time (temperature, top-k, or greedy) with numpy's `RandomState`, each fed back as
//! the next input. One sequence, so the products are matrix–vector loops written to vectorise.

use super::model::{Cell, CharLm};
use crate::error::{CoreError, Result};
use crate::math::{Float, SimdKernel};
use crate::nn::recurrent::{gru_activations, lstm_activations, rnn_activations};
use crate::nn::sample::{pick, Scores};
use crate::random::RandomState;
use std::ops::Range;

mod two_cores;

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

/// The rows of a layer's gate matrices that compute the units `units`: every gate's rows of
/// those units, gate after gate (all rows, in order, when `units` is the whole layer).
fn part_rows(gates: usize, hidden: usize, units: &Range<usize>) -> Vec<usize> {
    (0..gates)
        .flat_map(|g| units.clone().map(move |j| g * hidden + j))
        .collect()
}

/// The rows `rows` of a row-major matrix with `cols` columns, as a row-major matrix.
fn select_rows<T: Float>(w: &[T], cols: usize, rows: &[usize]) -> Vec<T> {
    rows.iter()
        .flat_map(|&r| w[r * cols..(r + 1) * cols].iter().copied())
        .collect()
}

/// The rows `rows` of a row-major matrix with `cols` columns, transposed: a row per column
/// (a one-hot input's W_ihᵀ, restricted to a part's rows, so that character x is one row).
fn select_rows_transposed<T: Float>(w: &[T], cols: usize, rows: &[usize]) -> Vec<T> {
    (0..cols)
        .flat_map(|c| rows.iter().map(move |&r| w[r * cols + c]))
        .collect()
}

/// The weights that compute the units `units` of one layer (the whole layer, or one core's
/// share of it): every gate's rows of those units. Each row's sum is the whole layer's, in
/// the same order, so splitting a layer changes no bit.
#[derive(Clone, Debug)]
struct LayerPart<T> {
    units: Range<usize>,
    /// The gates' bias, added first as in training: b_ih + b_hh (GRU: b_ih alone for the n
    /// gate, whose b_hn stays with W_hn·h).
    bias: Vec<T>,
    /// One-hot input (layer 0 without embedding): W_ihᵀ, a row per character.
    onehot_t: Option<Vec<T>>,
    /// LSTM/RNN: `[W_ih | W_hh]` (or `W_hh` alone for one-hot input), applied to `[x; h]` in
    /// one pass: the same sums, in the same order, as `W_ih·x` followed by `W_hh·h`.
    /// GRU: `W_ih` alone (none for one-hot input).
    w: Option<Panels<T>>,
    /// GRU only: `W_hh`, applied to h apart from z, starting from `hz_start` (0 for r and z,
    /// b_hn for n).
    w_hh_apart: Option<Panels<T>>,
    hz_start: Vec<T>,
}

impl<T: Float> LayerPart<T> {
    fn pack(model: &CharLm<T>, k: usize, units: Range<usize>) -> Self {
        let l = &model.layers[k];
        let cell = model.config.cell;
        let rows = part_rows(cell.gates(), l.hidden, &units);
        let (w_ih, w_hh) = (model.slot(l.w_ih), model.slot(l.w_hh));
        let (b_ih, b_hh) = (model.slot(l.b_ih), model.slot(l.b_hh));
        let folded = cell.folded_bias_cols(l.hidden);
        let bias = rows
            .iter()
            .map(|&r| {
                if r < folded {
                    b_ih[r] + b_hh[r]
                } else {
                    b_ih[r]
                }
            })
            .collect();
        let onehot = k == 0 && model.emb.is_none();
        let onehot_t = onehot.then(|| select_rows_transposed(w_ih, l.input, &rows));
        let w_ih = (!onehot).then(|| select_rows(w_ih, l.input, &rows));
        let w_hh = select_rows(w_hh, l.hidden, &rows);
        let input = w_ih.as_deref().map(|w| (w, l.input));
        let n = rows.len();
        let (w, w_hh_apart, hz_start) = if cell == Cell::Gru {
            let hz_start = rows
                .iter()
                .map(|&r| if r < folded { T::ZERO } else { b_hh[r] })
                .collect();
            (
                input.map(|p| Panels::pack(n, &[p])),
                Some(Panels::pack(n, &[(&w_hh, l.hidden)])),
                hz_start,
            )
        } else {
            let parts: Vec<(&[T], usize)> =
                input.into_iter().chain([(&w_hh[..], l.hidden)]).collect();
            (Some(Panels::pack(n, &parts)), None, Vec::new())
        };
        LayerPart {
            units,
            bias,
            onehot_t,
            w,
            w_hh_apart,
            hz_start,
        }
    }

    /// This part's units of one step of the layer: from character `x` (one-hot input) or the
    /// layer's `input`, and the whole layer's previous state `h_old`, writes its units' new
    /// hidden state into `h_new` and (LSTM) cell state into `c` (both this part's units only).
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        cell: Cell,
        x: usize,
        input: Option<&[T]>,
        h_old: &[T],
        c: &mut [T],
        h_new: &mut [T],
        s: &mut Scratch<T>,
    ) {
        let m = self.units.len();
        let gm = cell.gates() * m;
        let z = &mut s.z[..gm];
        // z = b_ih + b_hh + W_ih·x + W_hh·h (GRU: the n gate's b_hn + W_hn·h apart)
        z.copy_from_slice(&self.bias);
        let mut n_in = 0;
        if let Some(w_ih_t) = &self.onehot_t {
            // one-hot: a column of W_ih, i.e. a row of W_ihᵀ
            for (zv, &w) in z.iter_mut().zip(&w_ih_t[x * gm..(x + 1) * gm]) {
                *zv += w;
            }
        } else if let Some(input) = input {
            s.xh[..input.len()].copy_from_slice(input);
            n_in = input.len();
        }
        let folded = cell.folded_bias_cols(m);
        if let Some(w_hh) = &self.w_hh_apart {
            if let Some(w) = &self.w {
                w.matvec_add(z, &s.xh[..n_in]);
            }
            let hz = &mut s.hz[..gm];
            hz.copy_from_slice(&self.hz_start);
            w_hh.matvec_add(hz, h_old);
            for (zv, &hv) in z[..folded].iter_mut().zip(&hz[..folded]) {
                *zv += hv;
            }
        } else if let Some(w) = &self.w {
            s.xh[n_in..n_in + h_old.len()].copy_from_slice(h_old);
            w.matvec_add(z, &s.xh[..n_in + h_old.len()]);
        }
        // the same (vectorised) activations as training, element by element
        match cell {
            Cell::Rnn => rnn_activations(&z[..m], h_new),
            Cell::Gru => {
                gru_activations(z, &s.hz[folded..gm], &h_old[self.units.clone()], h_new, m)
            }
            Cell::Lstm => {
                let c_prev = &mut s.c_prev[..m];
                c_prev.copy_from_slice(c);
                lstm_activations(z, c_prev, c, &mut s.tc[..m], h_new, m);
            }
        }
    }
}

/// Per-thread scratch of a step: gates (G·H_max), GRU's W_hh·h (G·H_max), the product input
/// `[x; h]` (I_max + H_max), the previous cell state and tanh(c) (H_max).
#[derive(Clone, Debug)]
struct Scratch<T> {
    z: Vec<T>,
    hz: Vec<T>,
    xh: Vec<T>,
    c_prev: Vec<T>,
    tc: Vec<T>,
}

impl<T: Float> Scratch<T> {
    fn new(model: &CharLm<T>) -> Self {
        let h_max = model.layers.iter().map(|l| l.hidden).max().unwrap_or(0);
        let in_max = model.layers.iter().map(|l| l.input).max().unwrap_or(0);
        let gh = model.config.cell.gates() * h_max;
        Scratch {
            z: vec![T::ZERO; gh],
            hz: vec![T::ZERO; gh],
            xh: vec![T::ZERO; in_max + h_max],
            c_prev: vec![T::ZERO; h_max],
            tc: vec![T::ZERO; h_max],
        }
    }
}

/// The recurrent state of a [`Stepper`] (h and c of every layer), without its weights.
#[derive(Clone, Debug)]
pub struct StepperState<T> {
    h: Vec<Vec<T>>,
    c: Vec<Vec<T>>,
}

/// The running state of one sequence through the model (h and c of every layer).
///
/// h is kept twice per layer, the step's old and new state, so that the units of a layer can
/// be computed by two threads at once: each reads the whole old h and writes its own units of
/// the new one (`generate` on two cores, see [`Stepper::drive`]).
#[derive(Clone, Debug)]
pub struct Stepper<'m, T: Float> {
    model: &'m CharLm<T>,
    /// Per layer, its parts: one (the whole layer) or two (one per core).
    layers: Vec<Vec<LayerPart<T>>>,
    /// The output layer W_y (V, H_last).
    w_y: Panels<T>,
    /// h of every layer, twice: `h[k][cur]` is the current state.
    h: Vec<[Vec<T>; 2]>,
    cur: usize,
    c: Vec<Vec<T>>,
    /// Logits of the last step (V).
    logits: Vec<T>,
    scratch: Scratch<T>,
}

impl<'m, T: Float> Stepper<'m, T> {
    /// Zero state. Packs the weights once (a copy of the model's size).
    pub fn new(model: &'m CharLm<T>) -> Self {
        Self::with_parts(model, 1)
    }

    /// Zero state, each layer's units cut into `parts` (1 or 2) shares of whole SIMD blocks.
    fn with_parts(model: &'m CharLm<T>, parts: usize) -> Self {
        let hs: Vec<usize> = model.layers.iter().map(|l| l.hidden).collect();
        let layers = model
            .layers
            .iter()
            .enumerate()
            .map(|(k, l)| {
                let cut = if parts == 2 {
                    (l.hidden / 2).next_multiple_of(16).min(l.hidden)
                } else {
                    l.hidden
                };
                [0..cut, cut..l.hidden]
                    .into_iter()
                    .filter(|u| !u.is_empty())
                    .map(|u| LayerPart::pack(model, k, u))
                    .collect()
            })
            .collect();
        Stepper {
            model,
            layers,
            w_y: Panels::pack(
                model.vocab.len(),
                &[(model.slot(model.out_w), *hs.last().unwrap_or(&0))],
            ),
            h: hs
                .iter()
                .map(|&h| [vec![T::ZERO; h], vec![T::ZERO; h]])
                .collect(),
            cur: 0,
            c: hs.iter().map(|&h| vec![T::ZERO; h]).collect(),
            logits: vec![T::ZERO; model.vocab.len()],
            scratch: Scratch::new(model),
        }
    }

    /// A copy of the recurrent state (h and c of every layer), e.g. to branch a beam search.
    pub fn state(&self) -> StepperState<T> {
        StepperState {
            h: self.h.iter().map(|h| h[self.cur].clone()).collect(),
            c: self.c.clone(),
        }
    }

    /// Continues from a state taken from a `Stepper` of the same model.
    pub fn set_state(&mut self, state: &StepperState<T>) {
        for (dst, src) in self.h.iter_mut().zip(&state.h) {
            dst[self.cur].copy_from_slice(src);
        }
        for (dst, src) in self.c.iter_mut().zip(&state.c) {
            dst.copy_from_slice(src);
        }
    }

    /// Feeds character index `x` (must be < V); returns the logits for the next character.
    pub fn step(&mut self, x: u32) -> &[T] {
        let (cur, new) = (self.cur, 1 - self.cur);
        let cell = self.model.config.cell;
        for (k, parts) in self.layers.iter().enumerate() {
            let (below, rest) = self.h.split_at_mut(k);
            let [h0, h1] = &mut rest[0];
            let (h_old, h_new) = if cur == 0 { (&*h0, h1) } else { (&*h1, h0) };
            let input = layer_input(self.model, k, x as usize, below.last().map(|b| &b[new][..]));
            for p in parts {
                let u = p.units.clone();
                p.step(
                    cell,
                    x as usize,
                    input,
                    h_old,
                    &mut self.c[k][u.clone()],
                    &mut h_new[u],
                    &mut self.scratch,
                );
            }
        }
        self.cur = new;
        self.logits_of_top()
    }

    fn logits_of_top(&mut self) -> &[T] {
        let top = &self.h[self.layers.len() - 1][self.cur];
        output_logits(self.model, &self.w_y, top, &mut self.logits);
        &self.logits
    }

    /// Feeds `first`, then whatever `next` returns from each step's logits, until it returns
    /// `None` (or an error). A stepper packed in two parts runs each layer's two parts on two
    /// threads: this one and a helper that spins between steps (a step is a few µs, too short
    /// to sleep and wake a thread). Same bits as [`Stepper::step`] in a loop.
    fn drive<F>(&mut self, first: u32, next: F) -> Result<()>
    where
        F: FnMut(&[T]) -> Result<Option<u32>>,
    {
        if self.layers.iter().all(|parts| parts.len() == 1) {
            let mut next = next;
            let mut x = first;
            loop {
                match next(self.step(x))? {
                    Some(nx) => x = nx,
                    None => return Ok(()),
                }
            }
        }
        two_cores::drive(self, first, next)
    }
}

/// logits = b_y + W_y·h of the top layer.
fn output_logits<T: Float>(model: &CharLm<T>, w_y: &Panels<T>, top: &[T], logits: &mut [T]) {
    logits.copy_from_slice(model.slot(model.out_b));
    w_y.matvec_add(logits, top);
}

/// The input of layer `k` for character `x`: none for a one-hot first layer (a row pick), the
/// embedding's row, or the layer below's new state.
fn layer_input<'a, T: Float>(
    model: &'a CharLm<T>,
    k: usize,
    x: usize,
    below_new: Option<&'a [T]>,
) -> Option<&'a [T]> {
    match (k, model.emb) {
        (0, None) => None,
        (0, Some(e)) => {
            let width = model.layers[0].input;
            Some(&model.slot(e)[x * width..(x + 1) * width])
        }
        _ => below_new,
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
    if opts.length == 0 {
        return Ok(String::new());
    }
    let mut rng = RandomState::new(opts.seed);
    let parts = if two_cores::pay_off(model, ids.len() + opts.length) {
        2
    } else {
        1
    };
    let mut stepper = Stepper::with_parts(model, parts);
    let mut out = Vec::with_capacity(opts.length);
    let mut probs = Vec::with_capacity(model.vocab.len());
    // the prompt primes the state; its last character's logits give the first draw
    let mut fed = 1;
    stepper.drive(ids[0], |logits| {
        if fed < ids.len() {
            fed += 1;
            return Ok(Some(ids[fed - 1]));
        }
        let x = pick(
            logits,
            Scores::Logits,
            opts.temperature,
            opts.top_k,
            &mut probs,
            &mut rng,
        )? as u32;
        out.push(x);
        Ok((out.len() < opts.length).then_some(x))
    })?;
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

    /// A stepper split in two parts per layer, driven on two threads, gives the one-part
    /// stepper's logits and state, bit for bit (odd sizes: parts of unequal width, a layer too
    /// narrow to split).
    fn two_cores_same_bits<T: Float>() {
        let text = "To be, or not to be, that is the question: whether 'tis nobler in the mind";
        let vocab = Vocab::from_text(text).unwrap();
        for (cell, hidden, embedding) in [
            (Cell::Lstm, vec![130, 37], None),
            (Cell::Lstm, vec![48], Some(5)),
            (Cell::Rnn, vec![33, 12], None),
            (Cell::Gru, vec![37, 70], None),
            (Cell::Gru, vec![40], Some(4)),
        ] {
            let cfg = LmConfig {
                cell,
                hidden: hidden.clone(),
                embedding,
                dropout: 0.0,
            };
            let m = CharLm::<T>::new(cfg.clone(), vocab.clone(), 5).unwrap();
            let ids = m.vocab.encode(text, "text").unwrap();
            let mut one = Stepper::new(&m);
            let want: Vec<Vec<T>> = ids.iter().map(|&x| one.step(x).to_vec()).collect();
            let mut two = Stepper::with_parts(&m, 2);
            for (parts, &h) in two.layers.iter().zip(&hidden) {
                assert_eq!(parts.len(), if h > 16 { 2 } else { 1 }, "{cfg:?}");
            }
            let mut got = Vec::new();
            two.drive(ids[0], |logits| {
                got.push(logits.to_vec());
                Ok(ids.get(got.len()).copied())
            })
            .unwrap();
            assert_eq!(got.len(), ids.len());
            let bits = |v: &[T]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
            for (t, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(bits(g), bits(w), "{cfg:?} {} step {t}", T::DTYPE);
            }
            let (s1, s2) = (one.state(), two.state());
            for (a, b) in s1.h.iter().zip(&s2.h).chain(s1.c.iter().zip(&s2.c)) {
                assert_eq!(bits(a), bits(b), "{cfg:?} state");
            }
            // and the same stepper, one thread, continues with the same bits
            assert_eq!(bits(two.step(ids[3])), bits(one.step(ids[3])), "{cfg:?}");
        }
    }

    #[test]
    fn two_cores_give_the_bits_of_one() {
        two_cores_same_bits::<f32>();
        two_cores_same_bits::<f64>();
    }

    /// `generate` with two threads allowed (so on two cores for a model this size) draws the
    /// same text as one `Stepper` stepping alone with the same draws.
    #[test]
    fn generate_on_two_cores_draws_what_one_core_draws() {
        let text = "It was the best of times, it was the worst of times, it was the age of wisdom";
        let cfg = LmConfig {
            cell: Cell::Lstm,
            hidden: vec![128, 128],
            embedding: None,
            dropout: 0.0,
        };
        let m = CharLm::<f32>::new(cfg, Vocab::from_text(text).unwrap(), 11).unwrap();
        let opts = SampleOptions {
            length: 400,
            temperature: 1.5,
            top_k: 0,
            seed: 7,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        assert!(pool.install(|| two_cores::pay_off(&m, 400)));
        let two = pool.install(|| generate(&m, "It was", &opts)).unwrap();
        let mut one = Stepper::new(&m);
        let ids = m.vocab.encode("It was", "prompt").unwrap();
        for &x in &ids[..ids.len() - 1] {
            one.step(x);
        }
        let (mut x, mut out, mut probs) = (ids[ids.len() - 1], Vec::new(), Vec::new());
        let mut rng = RandomState::new(7);
        for _ in 0..400 {
            let logits = one.step(x);
            x = pick(logits, Scores::Logits, 1.5, 0, &mut probs, &mut rng).unwrap() as u32;
            out.push(x);
        }
        assert_eq!(two, m.vocab.decode(&out));
        assert_eq!(two.chars().count(), 400);
    }

    #[test]
    fn an_error_while_driving_two_cores_stops_the_helper() {
        let vocab = Vocab::from_text("abcdef\n").unwrap();
        let cfg = LmConfig {
            cell: Cell::Lstm,
            hidden: vec![64, 64],
            embedding: None,
            dropout: 0.0,
        };
        let m = CharLm::<f32>::new(cfg, vocab, 1).unwrap();
        let mut s = Stepper::with_parts(&m, 2);
        let mut n = 0;
        let err = s
            .drive(0, |_| {
                n += 1;
                if n == 5 {
                    Err(CoreError::invalid("stop here"))
                } else {
                    Ok(Some(1))
                }
            })
            .unwrap_err();
        assert!(err.to_string().contains("stop here"));
        assert_eq!(n, 5);
    }

    #[test]
    fn packed_stepper_gives_the_bits_of_the_plain_loops() {
        same_bits_as_the_plain_loops::<f32>();
        same_bits_as_the_plain_loops::<f64>();
    }
}
