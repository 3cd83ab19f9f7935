//! Mini-batch forward and backward of the whole model (embedding or one-hot input, stacked
//! recurrent layers with inverted dropout, dense softmax, mean cross-entropy in nats/char)
//! over a preallocated [`Workspace`].

use rayon::prelude::*;

use super::model::{Cell, CharLm};
use crate::error::{CoreError, Result};
use crate::math::gemm::{par_matmul, par_matmul_tn_cols, Op, ROW_BLOCK};
use crate::math::Float;
use crate::nn::recurrent::{self, token_input_grads, Dims, RecurrentWeights, StepInput};
use crate::random::RandomState;

/// Buffers of one recurrent layer (see `recurrent` for the layouts).
#[derive(Clone, Debug)]
struct LayerWs<T> {
    /// Layer input (T·B, I); empty for a one-hot first layer.
    xin: Vec<T>,
    /// Dropout scale of this layer's output (rows fed upward, H): 0 or 1/(1−p); empty if unused.
    mask: Vec<T>,
    /// Gates (T·B, G·H): pre-activations → activations → dZ.
    z: Vec<T>,
    /// Hidden states ((T+1)·B, H).
    h: Vec<T>,
    /// Cell states ((T+1)·B, H), LSTM only.
    c: Vec<T>,
    /// tanh(c) (T·B, H), LSTM; the n gate's hidden part `W_hn h + b_hn` (then its gradient), GRU.
    tc: Vec<T>,
    /// dLoss/d(output) from above (T·B, H).
    dh: Vec<T>,
    /// dLoss/d(input) (T·B, I); empty for a one-hot first layer.
    dxin: Vec<T>,
    /// `W_hhᵀ` (H, G·H), refreshed each forward pass when the step products read it (see
    /// `recurrent::contiguous_whh_t_keeps_sums`); empty otherwise.
    w_hh_t: Vec<T>,
    /// Backward scratch (B, H).
    dh_next: Vec<T>,
    dc_next: Vec<T>,
}

/// Everything one mini-batch step needs, allocated once for a (T, B) shape.
#[derive(Clone, Debug)]
pub struct Workspace<T: Float> {
    t_len: usize,
    batch: usize,
    last_only: bool,
    /// Input characters (T·B), row t·B + b.
    inputs: Vec<u32>,
    /// Targets: (B) if `last_only` (many-to-one) else (T·B).
    targets: Vec<u32>,
    layers: Vec<LayerWs<T>>,
    /// Dense input (R, H_last), R = B or T·B.
    y_in: Vec<T>,
    /// Logits → probabilities → dLogits (R, V).
    logits: Vec<T>,
    /// dLoss/d(dense input) (R, H_last).
    dy_in: Vec<T>,
    /// Per-row loss (R), summed in a fixed order.
    row_loss: Vec<f64>,
    /// One-hot first layer: the (V, G·H) table W_ihᵀ + biases (forward) / dW_ihᵀ (backward).
    onehot: Vec<T>,
    /// Whether the last forward pass applied dropout masks.
    masks_on: bool,
    /// Gradient of the mean loss for every parameter, same layout as `CharLm::params`.
    pub grads: Vec<T>,
}

impl<T: Float> Workspace<T> {
    /// Buffers for `batch` sequences of `t_len` steps. `last_only`: predict only after the last
    /// step (the course's many-to-one windows) instead of after every step (many-to-many).
    pub fn new(model: &CharLm<T>, t_len: usize, batch: usize, last_only: bool) -> Result<Self> {
        if t_len == 0 || batch == 0 {
            return Err(CoreError::invalid(format!(
                "workspace: expected seqLength >= 1 and batchSize >= 1, got {t_len} and {batch}"
            )));
        }
        let n = t_len * batch;
        let r = if last_only { batch } else { n };
        let lstm = model.config.cell == Cell::Lstm;
        let with_tc = lstm || model.config.cell == Cell::Gru;
        let n_layers = model.layers.len();
        let layers = model
            .layers
            .iter()
            .enumerate()
            .map(|(k, l)| {
                let gh = model.config.cell.gates() * l.hidden;
                let dense_in = k > 0 || model.emb.is_some();
                let mask_rows = if model.config.dropout > 0.0 {
                    if k + 1 == n_layers {
                        r
                    } else {
                        n
                    }
                } else {
                    0
                };
                LayerWs {
                    xin: if dense_in {
                        vec![T::ZERO; n * l.input]
                    } else {
                        Vec::new()
                    },
                    mask: vec![T::ZERO; mask_rows * l.hidden],
                    z: vec![T::ZERO; n * gh],
                    h: vec![T::ZERO; (t_len + 1) * batch * l.hidden],
                    c: if lstm {
                        vec![T::ZERO; (t_len + 1) * batch * l.hidden]
                    } else {
                        Vec::new()
                    },
                    tc: if with_tc {
                        vec![T::ZERO; n * l.hidden]
                    } else {
                        Vec::new()
                    },
                    dh: vec![T::ZERO; n * l.hidden],
                    dxin: if dense_in {
                        vec![T::ZERO; n * l.input]
                    } else {
                        Vec::new()
                    },
                    w_hh_t: if recurrent::contiguous_whh_t_keeps_sums(
                        model.config.cell,
                        Dims::new(t_len, batch, l.hidden),
                    ) {
                        vec![T::ZERO; gh * l.hidden]
                    } else {
                        Vec::new()
                    },
                    dh_next: vec![T::ZERO; batch * l.hidden],
                    dc_next: vec![T::ZERO; batch * l.hidden],
                }
            })
            .collect();
        let h_last = model.layers[n_layers - 1].hidden;
        let v = model.vocab.len();
        Ok(Workspace {
            t_len,
            batch,
            last_only,
            inputs: vec![0; n],
            targets: vec![0; r],
            layers,
            y_in: vec![T::ZERO; r * h_last],
            logits: vec![T::ZERO; r * v],
            dy_in: vec![T::ZERO; r * h_last],
            row_loss: vec![0.0; r],
            masks_on: false,
            onehot: if model.emb.is_none() {
                vec![T::ZERO; v * model.config.cell.gates() * model.layers[0].hidden]
            } else {
                Vec::new()
            },
            grads: vec![T::ZERO; model.params.len()],
        })
    }

    /// Steps per sequence.
    pub fn t_len(&self) -> usize {
        self.t_len
    }

    /// Sequences per batch.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Whether only the last step is predicted.
    pub fn last_only(&self) -> bool {
        self.last_only
    }

    /// Sets the batch: `inputs` (T·B, row t·B + b) and `targets` ((B) or (T·B)).
    pub fn set_batch(&mut self, inputs: &[u32], targets: &[u32], vocab: usize) -> Result<()> {
        if inputs.len() != self.inputs.len() || targets.len() != self.targets.len() {
            return Err(CoreError::ShapeMismatch {
                name: "batch".into(),
                expected: format!(
                    "{} inputs and {} targets",
                    self.inputs.len(),
                    self.targets.len()
                ),
                actual: format!("{} and {}", inputs.len(), targets.len()),
            });
        }
        if let Some(&bad) = inputs.iter().chain(targets).find(|&&i| i as usize >= vocab) {
            return Err(CoreError::invalid(format!(
                "batch: character index {bad} out of range 0..{vocab}"
            )));
        }
        self.inputs.copy_from_slice(inputs);
        self.targets.copy_from_slice(targets);
        Ok(())
    }

    /// Zeroes the initial hidden (and cell) state of every layer.
    pub fn reset_state(&mut self) {
        for l in &mut self.layers {
            let w = self.batch * (l.h.len() / ((self.t_len + 1) * self.batch));
            l.h[..w].fill(T::ZERO);
            if !l.c.is_empty() {
                l.c[..w].fill(T::ZERO);
            }
        }
    }

    /// Makes the final state of the last forward pass the initial state of the next one
    /// (truncated BPTT: values carry over, gradients do not).
    pub fn carry_state(&mut self) {
        let (t, b) = (self.t_len, self.batch);
        for l in &mut self.layers {
            let w = l.h.len() / (t + 1);
            debug_assert_eq!(w % b, 0);
            l.h.copy_within(t * w.., 0);
            if !l.c.is_empty() {
                l.c.copy_within(t * w.., 0);
            }
        }
    }

    /// The initial state (per layer: h0 (B, H) and c0 (B, H) — c0 empty for the RNN).
    pub fn initial_state(&self) -> Vec<(Vec<T>, Vec<T>)> {
        self.layers
            .iter()
            .map(|l| {
                let w = l.h.len() / (self.t_len + 1);
                (
                    l.h[..w].to_vec(),
                    if l.c.is_empty() {
                        Vec::new()
                    } else {
                        l.c[..w].to_vec()
                    },
                )
            })
            .collect()
    }

    /// Restores an initial state taken with [`Self::initial_state`].
    pub fn set_initial_state(&mut self, state: &[(Vec<T>, Vec<T>)]) -> Result<()> {
        if state.len() != self.layers.len() {
            return Err(CoreError::invalid(format!(
                "state: expected {} layers, got {}",
                self.layers.len(),
                state.len()
            )));
        }
        for (k, (l, (h0, c0))) in self.layers.iter_mut().zip(state).enumerate() {
            let w = l.h.len() / (self.t_len + 1);
            let cw = if l.c.is_empty() { 0 } else { w };
            if h0.len() != w || c0.len() != cw {
                return Err(CoreError::ShapeMismatch {
                    name: format!("state[{k}]"),
                    expected: format!("h0 of {w} and c0 of {cw} values"),
                    actual: format!("{} and {}", h0.len(), c0.len()),
                });
            }
            l.h[..w].copy_from_slice(h0);
            if cw > 0 {
                l.c[..w].copy_from_slice(c0);
            }
        }
        Ok(())
    }
}

/// Fills `mask` with inverted-dropout scales: 0 with probability p, else 1/(1−p). One 32-bit
/// MT19937 draw per element, kept when `draw < (1−p)·2³²`.
fn draw_mask<T: Float>(mask: &mut [T], p: f64, rng: &mut RandomState) {
    let keep = ((1.0 - p) * 4_294_967_296.0).min(4_294_967_295.0) as u64;
    let scale = T::from_f64(1.0 / (1.0 - p));
    for m in mask.iter_mut() {
        *m = if (rng.next_u32() as u64) < keep {
            scale
        } else {
            T::ZERO
        };
    }
}

/// out (rows, H) = src rows ∘ mask (or a plain copy when `mask` is empty).
fn apply_mask<T: Float>(out: &mut [T], src: &[T], mask: &[T]) {
    if mask.is_empty() {
        out.copy_from_slice(src);
    } else {
        out.par_chunks_mut(ROW_BLOCK * 64)
            .zip(src.par_chunks(ROW_BLOCK * 64))
            .zip(mask.par_chunks(ROW_BLOCK * 64))
            .for_each(|((o, s), m)| {
                for ((o, &s), &m) in o.iter_mut().zip(s).zip(m) {
                    *o = s * m;
                }
            });
    }
}

/// dst[j] += Σ_rows src[row, j], rows summed in order (deterministic).
fn add_column_sums<T: Float>(dst: &mut [T], src: &[T], cols: usize) {
    for row in src.chunks_exact(cols) {
        for (d, &s) in dst.iter_mut().zip(row) {
            *d += s;
        }
    }
}

/// Forward pass over the batch in `ws`; returns the mean cross-entropy (nats per predicted
/// character). `train` with `rng` draws fresh dropout masks; otherwise dropout is off.
pub fn forward<T: Float>(
    model: &CharLm<T>,
    ws: &mut Workspace<T>,
    train: bool,
    rng: Option<&mut RandomState>,
) -> f64 {
    let (t_len, bsz) = (ws.t_len, ws.batch);
    let n = t_len * bsz;
    let cell = model.config.cell;
    let p = model.config.dropout;
    let mut rng = if train && p > 0.0 { rng } else { None };
    ws.masks_on = rng.is_some();
    let n_layers = model.layers.len();
    let v = model.vocab.len();
    let r = ws.targets.len();

    if let Some(e) = model.emb {
        // layer-0 input = embedding rows (T·B, D)
        let emb = model.slot(e);
        let d = model.layers[0].input;
        let xin = &mut ws.layers[0].xin;
        for (row, &ch) in xin.chunks_exact_mut(d).zip(&ws.inputs) {
            row.copy_from_slice(&emb[ch as usize * d..(ch as usize + 1) * d]);
        }
    }

    for k in 0..n_layers {
        let l = model.layers[k];
        let gh = cell.gates() * l.hidden;
        let (w_ih, w_hh) = (model.slot(l.w_ih), model.slot(l.w_hh));
        let (b_ih, b_hh) = (model.slot(l.b_ih), model.slot(l.b_hh));
        // b_hh joins b_ih in z for every gate but the GRU's n (whose b_hn goes to tc)
        let folded = cell.folded_bias_cols(l.hidden);
        let (below, rest) = ws.layers.split_at_mut(k);
        let lw = &mut rest[0];
        if cell == Cell::Gru {
            let b_hn = &b_hh[folded..];
            lw.tc
                .par_chunks_mut(l.hidden)
                .for_each(|row| row.copy_from_slice(b_hn));
        }
        let input = if k == 0 && model.emb.is_none() {
            // one-hot input: z[row] = W_ih[:, x] + b — a column pick, no product
            // rows of table (V, G·H) = W_ihᵀ + b_ih + b_hh, so each pick is a contiguous copy
            let table = &mut ws.onehot;
            for (ch, trow) in table.chunks_exact_mut(gh).enumerate() {
                let (with_hh, input_only) = trow.split_at_mut(folded);
                for (g, tv) in with_hh.iter_mut().enumerate() {
                    *tv = w_ih[g * l.input + ch] + b_ih[g] + b_hh[g];
                }
                for (g, tv) in (folded..).zip(input_only.iter_mut()) {
                    *tv = w_ih[g * l.input + ch] + b_ih[g];
                }
            }
            StepInput::Tokens {
                ids: &ws.inputs,
                table: &ws.onehot,
            }
        } else {
            if k > 0 {
                // input = output of the layer below (steps 1..=T), dropped out
                let lb = &mut below[k - 1];
                let hb = l.input;
                if let Some(rng) = rng.as_deref_mut() {
                    draw_mask(&mut lb.mask, p, rng);
                }
                let mask: &[T] = if rng.is_some() { &lb.mask } else { &[] };
                apply_mask(&mut lw.xin, &lb.h[bsz * hb..], mask);
            }
            // all steps at once: z (T·B, G·H) = x (T·B, I) · W_ihᵀ, then + b_ih + b_hh
            par_matmul(
                &mut lw.z,
                n,
                gh,
                l.input,
                &lw.xin,
                Op::N,
                w_ih,
                Op::T,
                false,
            );
            lw.z.par_chunks_mut(gh).for_each(|zr| {
                let (with_hh, input_only) = zr.split_at_mut(folded);
                for ((zv, &bi), &bh) in with_hh.iter_mut().zip(b_ih).zip(b_hh) {
                    *zv += bi + bh;
                }
                for (zv, &bi) in input_only.iter_mut().zip(&b_ih[folded..]) {
                    *zv += bi;
                }
            });
            StepInput::Ready
        };
        let w_hh_t = if lw.w_hh_t.is_empty() {
            None
        } else {
            // W_hh (G·H, H) → W_hhᵀ (H, G·H): the step products read contiguous rows
            for (j, row) in w_hh.chunks_exact(l.hidden).enumerate() {
                for (k, &v) in row.iter().enumerate() {
                    lw.w_hh_t[k * gh + j] = v;
                }
            }
            Some(&lw.w_hh_t[..])
        };
        recurrent::forward(
            cell,
            Dims::new(t_len, bsz, l.hidden),
            RecurrentWeights { w_hh, w_hh_t },
            input,
            &mut lw.z,
            &mut lw.h,
            &mut lw.c,
            &mut lw.tc,
        );
    }

    // dense input: last layer's outputs (all steps, or the last one), dropped out
    let top = &mut ws.layers[n_layers - 1];
    let hl = model.layers[n_layers - 1].hidden;
    let src_start = if ws.last_only {
        t_len * bsz * hl
    } else {
        bsz * hl
    };
    if let Some(rng) = rng.as_deref_mut() {
        draw_mask(&mut top.mask, p, rng);
    }
    let mask: &[T] = if rng.is_some() { &top.mask } else { &[] };
    apply_mask(&mut ws.y_in, &top.h[src_start..src_start + r * hl], mask);

    // logits (R, V) = y (R, H) · W_yᵀ + b_y; softmax; loss
    let (w_y, b_y) = (model.slot(model.out_w), model.slot(model.out_b));
    par_matmul(&mut ws.logits, r, v, hl, &ws.y_in, Op::N, w_y, Op::T, false);
    let targets = &ws.targets;
    ws.logits
        .par_chunks_mut(v)
        .zip(ws.row_loss.par_iter_mut())
        .zip(targets.par_iter())
        .for_each(|((row, loss), &y)| {
            let mut max = T::from_f64(f64::NEG_INFINITY);
            for (zv, &b) in row.iter_mut().zip(b_y) {
                *zv += b;
                if *zv > max {
                    max = *zv;
                }
            }
            let target_logit = row[y as usize];
            let mut sum = T::ZERO;
            for zv in row.iter_mut() {
                *zv = (*zv - max).exp();
                sum += *zv;
            }
            let inv = T::ONE / sum;
            for zv in row.iter_mut() {
                *zv *= inv;
            }
            // −log softmax[y] = log Σ exp(z − max) − (z_y − max)
            *loss = sum.to_f64().ln() - (target_logit - max).to_f64();
        });
    ws.row_loss.iter().sum::<f64>() / r as f64
}

/// Backward pass after [`forward`] (same batch, same masks): writes the gradient of the mean
/// loss into `ws.grads` (overwriting it).
pub fn backward<T: Float>(model: &CharLm<T>, ws: &mut Workspace<T>) {
    let (t_len, bsz) = (ws.t_len, ws.batch);
    let n = t_len * bsz;
    let cell = model.config.cell;
    let n_layers = model.layers.len();
    let v = model.vocab.len();
    let r = ws.targets.len();
    let hl = model.layers[n_layers - 1].hidden;
    ws.grads.fill(T::ZERO);
    let tensors = &model.tensors;
    // Disjoint mutable views of the gradient buffer, one tensor at a time.
    macro_rules! grad {
        ($t:expr) => {{
            let info = &tensors[$t];
            &mut ws.grads[info.offset..info.offset + info.len]
        }};
    }

    // dLogits = (softmax − onehot(y)) / R
    let inv_r = T::from_f64(1.0 / r as f64);
    let targets = &ws.targets;
    ws.logits
        .par_chunks_mut(v)
        .zip(targets.par_iter())
        .for_each(|(row, &y)| {
            row[y as usize] -= T::ONE;
            for zv in row.iter_mut() {
                *zv *= inv_r;
            }
        });
    // dW_y (V, H) = dLogitsᵀ · y ; db_y = Σ rows ; dy (R, H) = dLogits · W_y
    par_matmul(
        grad!(model.out_w),
        v,
        hl,
        r,
        &ws.logits,
        Op::T,
        &ws.y_in,
        Op::N,
        false,
    );
    add_column_sums(grad!(model.out_b), &ws.logits, v);
    par_matmul(
        &mut ws.dy_in,
        r,
        hl,
        v,
        &ws.logits,
        Op::N,
        model.slot(model.out_w),
        Op::N,
        false,
    );

    // top layer: dh from the dense head (through its dropout mask)
    {
        let top = &mut ws.layers[n_layers - 1];
        let start = if ws.last_only {
            (t_len - 1) * bsz * hl
        } else {
            0
        };
        top.dh[..start].fill(T::ZERO);
        let mask: &[T] = if ws.masks_on { &top.mask } else { &[] };
        apply_mask(&mut top.dh[start..start + r * hl], &ws.dy_in, mask);
    }

    for k in (0..n_layers).rev() {
        let l = model.layers[k];
        let gh = cell.gates() * l.hidden;
        let w_ih = model.slot(l.w_ih);
        let w_hh = model.slot(l.w_hh);
        let (below, rest) = ws.layers.split_at_mut(k);
        let lw = &mut rest[0];
        let d = Dims::new(t_len, bsz, l.hidden);
        recurrent::backward(
            cell,
            d,
            w_hh,
            &mut lw.z,
            &lw.h,
            &lw.c,
            &mut lw.tc,
            &lw.dh,
            &mut lw.dh_next,
            &mut lw.dc_next,
        );
        let dz = &lw.z;
        let h_prev = &lw.h[..n * l.hidden];
        // dW_hh (G·H, H) = Σ_t dZ⟨t⟩ᵀ · h⟨t−1⟩ — one product over all steps
        if cell == Cell::Gru {
            // the hidden-side dZ is [dr | dz] from z and the n gate's dn∘r from tc
            let hs = l.hidden;
            let dw = grad!(l.w_hh);
            let (dw_rz, dw_n) = dw.split_at_mut(2 * hs * hs);
            par_matmul_tn_cols(dw_rz, 2 * hs, hs, n, dz, gh, 0, h_prev, false);
            par_matmul(dw_n, hs, hs, n, &lw.tc, Op::T, h_prev, Op::N, false);
        } else {
            let info = &tensors[l.w_hh];
            par_matmul(
                &mut ws.grads[info.offset..info.offset + info.len],
                gh,
                l.hidden,
                n,
                dz,
                Op::T,
                h_prev,
                Op::N,
                false,
            );
        }
        // db_ih = Σ rows of dZ; db_hh the same for the folded gates (GRU's b_hn: Σ rows of tc)
        add_column_sums(grad!(l.b_ih), dz, gh);
        {
            let folded = cell.folded_bias_cols(l.hidden);
            let (bi, bh) = (tensors[l.b_ih].clone(), tensors[l.b_hh].clone());
            ws.grads
                .copy_within(bi.offset..bi.offset + folded, bh.offset);
            if folded < gh {
                add_column_sums(&mut grad!(l.b_hh)[folded..], &lw.tc, gh - folded);
            }
        }
        if k == 0 && model.emb.is_none() {
            // one-hot: dW_ih[:, x] += dZ[row], rows in order, accumulated as dW_ihᵀ (V, G·H)
            // (contiguous rows, vectorised) and transposed once
            let dwt = &mut ws.onehot;
            token_input_grads(dz, &ws.inputs, gh, dwt, None);
            let info = &tensors[l.w_ih];
            let vin = l.input;
            let dw = &mut ws.grads[info.offset..info.offset + info.len];
            for (g, dwr) in dw.chunks_exact_mut(vin).enumerate() {
                for (ch, d) in dwr.iter_mut().enumerate() {
                    *d = dwt[ch * gh + g];
                }
            }
        } else {
            // dW_ih (G·H, I) = dZᵀ · x ; dx (T·B, I) = dZ · W_ih
            let info = &tensors[l.w_ih];
            par_matmul(
                &mut ws.grads[info.offset..info.offset + info.len],
                gh,
                l.input,
                n,
                dz,
                Op::T,
                &lw.xin,
                Op::N,
                false,
            );
            par_matmul(&mut lw.dxin, n, l.input, gh, dz, Op::N, w_ih, Op::N, false);
            if k > 0 {
                let lb = &mut below[k - 1];
                let mask: &[T] = if ws.masks_on { &lb.mask } else { &[] };
                apply_mask(&mut lb.dh, &lw.dxin, mask);
            } else if let Some(e) = model.emb {
                // dE[x] += dx[row], rows in order
                let info = &tensors[e];
                let dwidth = l.input;
                let de = &mut ws.grads[info.offset..info.offset + info.len];
                for (row, &ch) in lw.dxin.chunks_exact(dwidth).zip(&ws.inputs) {
                    let dst = &mut de[ch as usize * dwidth..(ch as usize + 1) * dwidth];
                    for (dv, &g) in dst.iter_mut().zip(row) {
                        *dv += g;
                    }
                }
            }
        }
    }
}
