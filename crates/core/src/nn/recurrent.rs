//! The time loops of one recurrent layer over a mini-batch, forward and backward: the one
//! recurrent engine of rnnlab, used by the language model and by jazz.
//!
//! Layout (batch-major rows, row-major storage): a step's rows are contiguous, row `t·B + b`.
//! - `z`  (T·B, G·H): gate pre-activations on entry (the input projection plus biases, either
//!   computed by the caller or picked per token, see [`StepInput`]), gate activations after
//!   `forward`, gate gradients dZ after `backward`. LSTM gates are in the order `[i | f | g | o]`,
//!   GRU gates `[r | z | n]`.
//! - `h`  ((T+1)·B, H): `h[0..B]` is the initial state, `h[(t+1)·B..]` the output of step t.
//! - `c`  ((T+1)·B, H) and `tc` (T·B, H) = tanh(c⟨t⟩): LSTM (the GRU's use of `tc` below).
//! - GRU: `z` holds only the input projections plus `b_ih` (and `b_hh` of r and z, see
//!   [`Cell::folded_bias_cols`]); the hidden part of the n gate, `W_hn h + b_hn`, is kept apart
//!   in `tc` (T·B, H), which the caller fills with `b_hn` before `forward`. After `backward`, `z`
//!   holds the input-side dZ (for dW_ih, db_ih, dx) and `tc` the n gate's hidden-side gradient
//!   `dn ∘ r`: the hidden-side dZ (for dW_hh, db_hh) is `[dr | dz | tc]`. `c` is unused.
//!
//! The batch is cut into blocks of [`Dims::block_rows`] sequences, each running the whole time
//! loop on one thread: one GEMM per step per block computes all gates of the layer
//! (`z⟨t⟩ += h⟨t−1⟩·W_hhᵀ`; the GRU's n gate in a second one), and the block size is a constant of the model, so results do not
//! depend on the number of threads. Nothing is allocated inside the loops.

use rayon::prelude::*;

use crate::math::gemm::{gemm_raw, Operand, SyncPtr, ROW_BLOCK};
use crate::math::{Float, SimdKernel};
use crate::nn::cells::Cell;
pub(crate) use crate::nn::cells::{
    gru_activations, gru_backward_rows, lstm_activations, lstm_backward_rows, rnn_activations,
};

/// Shapes of one layer's time loop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub t_len: usize,
    pub batch: usize,
    pub hidden: usize,
    /// Sequences per parallel block (a constant of the model, tuned to its GEMM shapes).
    pub block_rows: usize,
    /// The initial state is zero: step 0 skips the recurrent product (it would add zeros).
    pub zero_start: bool,
}

impl Dims {
    /// Blocks of [`ROW_BLOCK`] sequences, initial state read from `h[0..B]`.
    pub fn new(t_len: usize, batch: usize, hidden: usize) -> Self {
        Dims {
            t_len,
            batch,
            hidden,
            block_rows: ROW_BLOCK,
            zero_start: false,
        }
    }

    fn blocks(&self) -> usize {
        self.batch.div_ceil(self.block_rows)
    }
}

/// Whether the forward step products may read `W_hhᵀ` as contiguous rows
/// ([`RecurrentWeights::w_hh_t`]) instead of `W_hh` through strides with the same sums: true
/// when every block's product is one the `gemm` crate runs through its micro-kernel either way
/// (one fused multiply-add chain over k per output): at least 2 rows (one row is a
/// matrix-vector product, summed differently for each layout), more than 16×16 outputs per
/// product (smaller ones take horizontal sums when `W_hh`'s rows are contiguous; the GRU's
/// narrowest product is its n gate, H wide), k = H in 3..=512 (k ≤ 2 has its own path; one
/// depth block).
pub(crate) fn contiguous_whh_t_keeps_sums(cell: Cell, d: Dims) -> bool {
    let narrowest = match cell {
        Cell::Gru => d.hidden,
        other => other.gates() * d.hidden,
    };
    let smallest_block = match d.batch % d.block_rows {
        0 => d.block_rows.min(d.batch),
        rest => rest,
    };
    smallest_block >= 2 && smallest_block * narrowest > 256 && (3..=512).contains(&d.hidden)
}

/// Where each step's input projection comes from.
#[derive(Clone, Copy)]
pub(crate) enum StepInput<'a, T> {
    /// `z` already holds every step's input projection plus biases.
    Ready,
    /// One token per row (`ids`: T·B, row `t·B + b`): inside the time loop, row `r` of `z` is
    /// set to row `ids[r]` of `table` (G·H wide): the token's one-hot input times `W_ih`, plus
    /// the biases, precomputed once per token.
    Tokens { ids: &'a [u32], table: &'a [T] },
}

/// The recurrent kernel of one layer.
#[derive(Clone, Copy)]
pub(crate) struct RecurrentWeights<'a, T> {
    /// `W_hh` (G·H, H), row-major: the backward step's `dh⟨t−1⟩ = dZ⟨t⟩·W_hh`.
    pub w_hh: &'a [T],
    /// Optionally `W_hhᵀ` (H, G·H), row-major, for the forward step's `h⟨t−1⟩·W_hhᵀ`; without
    /// it the forward step reads `W_hh` through strides. The `gemm` crate packs contiguous
    /// rows more cheaply (the LM's f32 forward: −13 % CPU time, BENCHMARKS.md); both layouts
    /// give the same sums only on the shapes of [`contiguous_whh_t_keeps_sums`].
    pub w_hh_t: Option<&'a [T]>,
}

/// `rows` rows of width `width` starting at row `row0` of the buffer behind `p`.
///
/// # Safety
/// The rows must lie inside the buffer and no other live slice may overlap them.
#[inline]
unsafe fn rows<'a, T>(p: SyncPtr<T>, row0: usize, rows: usize, width: usize) -> &'a mut [T] {
    std::slice::from_raw_parts_mut(p.0.add(row0 * width), rows * width)
}

/// Forward time loop. See the module docs for the buffers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<T: Float>(
    cell: Cell,
    d: Dims,
    w: RecurrentWeights<'_, T>,
    input: StepInput<'_, T>,
    z: &mut [T],
    h: &mut [T],
    c: &mut [T],
    tc: &mut [T],
) {
    let (bsz, hs) = (d.batch, d.hidden);
    let gh = cell.gates() * hs;
    assert!(z.len() >= d.t_len * bsz * gh && h.len() >= (d.t_len + 1) * bsz * hs);
    match cell {
        Cell::Lstm => {
            assert!(c.len() >= (d.t_len + 1) * bsz * hs && tc.len() >= d.t_len * bsz * hs)
        }
        Cell::Gru => assert!(tc.len() >= d.t_len * bsz * hs),
        Cell::Rnn => {}
    }
    // B (H, G·H) of the step product h⟨t−1⟩ · W_hhᵀ
    let whh_t = match w.w_hh_t {
        Some(wt) => {
            assert!(wt.len() >= hs * gh);
            Operand {
                ptr: wt.as_ptr(),
                rs: gh as isize,
                cs: 1,
            }
        }
        None => {
            assert!(w.w_hh.len() >= hs * gh);
            Operand {
                ptr: w.w_hh.as_ptr(),
                rs: 1,
                cs: hs as isize,
            }
        }
    };
    if let StepInput::Tokens { ids, table } = input {
        assert!(ids.len() >= d.t_len * bsz);
        let rows_in_table = table.len() / gh.max(1);
        assert!(ids[..d.t_len * bsz]
            .iter()
            .all(|&id| (id as usize) < rows_in_table));
    }
    let whh_t = SyncOperand(whh_t);
    let (zp, hp, cp, tcp) = (
        SyncPtr(z.as_mut_ptr()),
        SyncPtr(h.as_mut_ptr()),
        SyncPtr(c.as_mut_ptr()),
        SyncPtr(tc.as_mut_ptr()),
    );
    (0..d.blocks()).into_par_iter().for_each(move |blk| {
        let (zp, hp, cp, tcp, whh_t) = (zp, hp, cp, tcp, whh_t);
        let b0 = blk * d.block_rows;
        let nb = d.block_rows.min(bsz - b0);
        for t in 0..d.t_len {
            // SAFETY: block `blk` only touches rows b0..b0+nb of each step; blocks are disjoint,
            // and the buffers were checked to hold every step above.
            unsafe {
                let zt = rows(zp, t * bsz + b0, nb, gh);
                if let StepInput::Tokens { ids, table } = input {
                    let ids = &ids[t * bsz + b0..t * bsz + b0 + nb];
                    for (zr, &id) in zt.chunks_exact_mut(gh).zip(ids) {
                        let id = id as usize;
                        zr.copy_from_slice(&table[id * gh..(id + 1) * gh]);
                    }
                }
                let recurrent_product = t > 0 || !d.zero_start;
                let h_prev = rows(hp, t * bsz + b0, nb, hs);
                let h_new = rows(hp, (t + 1) * bsz + b0, nb, hs);
                if cell == Cell::Gru {
                    let hn = rows(tcp, t * bsz + b0, nb, hs);
                    if recurrent_product {
                        gru_hidden_products(nb, hs, zt, hn, h_prev, whh_t.0);
                    }
                    gru_activations(zt, hn, h_prev, h_new, hs);
                    continue;
                }
                if recurrent_product {
                    // z⟨t⟩ (nb, G·H) += h⟨t−1⟩ (nb, H) · W_hhᵀ (H, G·H): all gates in one product
                    gemm_raw(
                        nb,
                        gh,
                        hs,
                        zt.as_mut_ptr(),
                        gh,
                        true,
                        Operand {
                            ptr: h_prev.as_ptr(),
                            rs: hs as isize,
                            cs: 1,
                        },
                        whh_t.0,
                    );
                }
                if cell == Cell::Lstm {
                    let c_prev = rows(cp, t * bsz + b0, nb, hs);
                    let c_new = rows(cp, (t + 1) * bsz + b0, nb, hs);
                    let tct = rows(tcp, t * bsz + b0, nb, hs);
                    lstm_activations(zt, c_prev, c_new, tct, h_new, hs);
                } else {
                    rnn_activations(zt, h_new);
                }
            }
        }
    });
}

/// The backward step's product with (rows of) `W_hh`: `dh` (nb, H) = `dz` (nb, k) · `w` (k, H),
/// or += with `accumulate`; `dz`'s rows are `dz_stride` apart, `w` is row-major.
///
/// # Safety
/// As [`gemm_raw`]: `dz` addresses `dh.len() / hs` rows of `k` values, `w` k rows of `hs`.
unsafe fn add_dz_times_whh<T: Float>(
    dh: &mut [T],
    hs: usize,
    accumulate: bool,
    dz: *const T,
    dz_stride: usize,
    k: usize,
    w: *const T,
) {
    let nb = dh.len() / hs;
    let dz = Operand {
        ptr: dz,
        rs: dz_stride as isize,
        cs: 1,
    };
    let w = Operand {
        ptr: w,
        rs: hs as isize,
        cs: 1,
    };
    gemm_raw(nb, hs, k, dh.as_mut_ptr(), hs, accumulate, dz, w);
}

/// The GRU's recurrent products of one block of `nb` rows: `z[:, r|z] += h⟨t−1⟩·W_h(r|z)ᵀ`
/// into the gate rows (stride 3·H) and `hn += h⟨t−1⟩·W_hnᵀ` apart (`hn` holds `b_hn` on entry).
///
/// # Safety
/// As [`gemm_raw`]: `whh_t` addresses W_hhᵀ (H, 3·H) and the slices hold `nb` rows.
unsafe fn gru_hidden_products<T: Float>(
    nb: usize,
    hs: usize,
    zt: &mut [T],
    hn: &mut [T],
    h_prev: &[T],
    whh_t: Operand<T>,
) {
    let h_op = Operand {
        ptr: h_prev.as_ptr(),
        rs: hs as isize,
        cs: 1,
    };
    gemm_raw(nb, 2 * hs, hs, zt.as_mut_ptr(), 3 * hs, true, h_op, whh_t);
    let whn_t = Operand {
        ptr: whh_t.ptr.offset(2 * hs as isize * whh_t.cs),
        ..whh_t
    };
    gemm_raw(nb, hs, hs, hn.as_mut_ptr(), hs, true, h_op, whn_t);
}

/// An [`Operand`] that may cross threads (read-only, alive for the whole loop).
#[derive(Clone, Copy)]
struct SyncOperand<T>(Operand<T>);
unsafe impl<T> Send for SyncOperand<T> {}
unsafe impl<T> Sync for SyncOperand<T> {}

/// Backward time loop (truncated at the initial state). `dh`: (T·B, H) gradient of the loss
/// with respect to each step's output from above; `z` holds the gate activations on entry and
/// dZ (gradient with respect to the gate pre-activations) on exit (GRU: see the module docs
/// for `z` and `tc`). Scratch (B, H) each: `dh_next`, `dc_next` (LSTM only). `w_hh` is
/// (G·H, H) row-major.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Float>(
    cell: Cell,
    d: Dims,
    w_hh: &[T],
    z: &mut [T],
    h: &[T],
    c: &[T],
    tc: &mut [T],
    dh: &[T],
    dh_next: &mut [T],
    dc_next: &mut [T],
) {
    let (bsz, hs) = (d.batch, d.hidden);
    let gh = cell.gates() * hs;
    assert!(z.len() >= d.t_len * bsz * gh && dh.len() >= d.t_len * bsz * hs);
    assert!(w_hh.len() >= gh * hs && dh_next.len() >= bsz * hs);
    match cell {
        Cell::Rnn => assert!(h.len() >= (d.t_len + 1) * bsz * hs),
        Cell::Gru => {
            assert!(h.len() >= (d.t_len + 1) * bsz * hs && tc.len() >= d.t_len * bsz * hs)
        }
        Cell::Lstm => assert!(
            c.len() >= d.t_len * bsz * hs
                && tc.len() >= d.t_len * bsz * hs
                && dc_next.len() >= bsz * hs
        ),
    }
    let zp = SyncPtr(z.as_mut_ptr());
    let (hp, cp, tcp, dhp) = (
        SyncPtr(h.as_ptr() as *mut T),
        SyncPtr(c.as_ptr() as *mut T),
        SyncPtr(tc.as_mut_ptr()),
        SyncPtr(dh.as_ptr() as *mut T),
    );
    let (dhnp, dcnp) = (SyncPtr(dh_next.as_mut_ptr()), SyncPtr(dc_next.as_mut_ptr()));
    let whh = SyncPtr(w_hh.as_ptr() as *mut T);
    (0..d.blocks()).into_par_iter().for_each(move |blk| {
        let (zp, hp, cp, tcp, dhp, dhnp, dcnp, whh) = (zp, hp, cp, tcp, dhp, dhnp, dcnp, whh);
        let b0 = blk * d.block_rows;
        let nb = d.block_rows.min(bsz - b0);
        // SAFETY: as in `forward`, each block owns rows b0..b0+nb of every buffer it writes.
        unsafe {
            let dh_nx = rows(dhnp, b0, nb, hs);
            dh_nx.fill(T::ZERO);
            let dc_nx = if cell == Cell::Lstm {
                let dc_nx = rows(dcnp, b0, nb, hs);
                dc_nx.fill(T::ZERO);
                dc_nx
            } else {
                &mut []
            };
            for t in (0..d.t_len).rev() {
                let zt = rows(zp, t * bsz + b0, nb, gh);
                let dht = rows(dhp, t * bsz + b0, nb, hs);
                match cell {
                    Cell::Gru => {
                        let h_prev = rows(hp, t * bsz + b0, nb, hs);
                        let dhn = rows(tcp, t * bsz + b0, nb, hs);
                        gru_backward_rows(zt, dhn, dht, dh_nx, h_prev, hs);
                        if t > 0 {
                            // dh⟨t−1⟩ = dh∘z + [dr | dz]·W_h(r|z) + (dn∘r)·W_hn
                            let whh = whh.0 as *const T;
                            add_dz_times_whh(dh_nx, hs, true, zt.as_ptr(), gh, 2 * hs, whh);
                            add_dz_times_whh(
                                dh_nx,
                                hs,
                                true,
                                dhn.as_ptr(),
                                hs,
                                hs,
                                whh.add(2 * hs * hs),
                            );
                        }
                        continue;
                    }
                    Cell::Rnn => {
                        let h_new = rows(hp, (t + 1) * bsz + b0, nb, hs);
                        for k in 0..nb * hs {
                            let dhv = dht[k] + dh_nx[k];
                            // a = tanh(z): dz = da · (1 − a²)
                            zt[k] = dhv * (T::ONE - h_new[k] * h_new[k]);
                        }
                    }
                    Cell::Lstm => {
                        let c_prev = rows(cp, t * bsz + b0, nb, hs);
                        let tct = rows(tcp, t * bsz + b0, nb, hs);
                        lstm_backward_rows(zt, hs, dht, dh_nx, dc_nx, tct, c_prev);
                    }
                }
                if t > 0 {
                    // dh⟨t−1⟩ (nb, H) = dZ⟨t⟩ (nb, G·H) · W_hh (G·H, H)
                    add_dz_times_whh(dh_nx, hs, false, zt.as_ptr(), gh, gh, whh.0 as *const T);
                }
            }
        }
    });
}

/// Output columns per parallel block of [`token_input_grads`] (fixed: thread-count independent).
const GRAD_COLS: usize = 64;

/// Gradients of a token input ([`StepInput::Tokens`]): for every row `r` of `dz` (`width`
/// wide), in order, `table_grad` row `ids[r]` += dZ row `r`, and, when given,
/// `bias_grad = Σ_r dZ row r`. Both are overwritten. Column blocks run in parallel; each
/// element is summed over the rows in order, so results do not depend on the thread count.
pub(crate) fn token_input_grads<T: Float>(
    dz: &[T],
    ids: &[u32],
    width: usize,
    table_grad: &mut [T],
    bias_grad: Option<&mut [T]>,
) {
    let n_rows = dz.len() / width.max(1);
    let table_rows = table_grad.len() / width.max(1);
    assert!(ids.len() >= n_rows && ids[..n_rows].iter().all(|&id| (id as usize) < table_rows));
    let with_bias = bias_grad.is_some();
    let bp = SyncPtr(bias_grad.map_or(std::ptr::null_mut(), |b| {
        assert!(b.len() >= width);
        b.as_mut_ptr()
    }));
    let tp = SyncPtr(table_grad.as_mut_ptr());
    (0..width.div_ceil(GRAD_COLS))
        .into_par_iter()
        .for_each(move |blk| {
            let (bp, tp) = (bp, tp);
            let j0 = blk * GRAD_COLS;
            T::vectorized(TokenGrads {
                dz,
                ids: &ids[..n_rows],
                width,
                j0,
                cols: GRAD_COLS.min(width - j0),
                table_rows,
                table: tp,
                bias: if with_bias { Some(bp) } else { None },
            });
        });
}

/// Columns `j0..j0 + cols` of [`token_input_grads`].
struct TokenGrads<'a, T> {
    dz: &'a [T],
    ids: &'a [u32],
    width: usize,
    j0: usize,
    cols: usize,
    table_rows: usize,
    table: SyncPtr<T>,
    bias: Option<SyncPtr<T>>,
}

impl<T: Float> SimdKernel for TokenGrads<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (w, j0, cols) = (self.width, self.j0, self.cols);
        // SAFETY: this block alone owns columns j0..j0+cols of the table gradient and of the
        // bias gradient (checked in bounds by `token_input_grads`).
        let col = |p: SyncPtr<T>, row: usize| unsafe {
            std::slice::from_raw_parts_mut(p.0.add(row * w + j0), cols)
        };
        for row in 0..self.table_rows {
            col(self.table, row).fill(T::ZERO);
        }
        let mut bias = self.bias.map(|b| col(b, 0));
        if let Some(b) = bias.as_deref_mut() {
            b.fill(T::ZERO);
        }
        for (zr, &id) in self.dz.chunks_exact(w).zip(self.ids) {
            let zr = &zr[j0..j0 + cols];
            if let Some(b) = bias.as_deref_mut() {
                for (d, &e) in b.iter_mut().zip(zr) {
                    *d += e;
                }
            }
            for (d, &e) in col(self.table, id as usize).iter_mut().zip(zr) {
                *d += e;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::RandomState;

    /// The forward pass over `W_hhᵀ` (contiguous) and over `W_hh` (strided) on random data.
    fn both_layouts<T: Float>(cell: Cell, d: Dims, seed: u32) -> (Vec<u64>, Vec<u64>) {
        let mut rng = RandomState::new(seed);
        let mut v = |n: usize, scale: f64| -> Vec<T> {
            (0..n)
                .map(|_| T::from_f64(rng.standard_normal() * scale))
                .collect()
        };
        let (hs, gh, n) = (d.hidden, cell.gates() * d.hidden, d.t_len * d.batch);
        let w_hh = v(gh * hs, 0.3);
        let mut w_hh_t = vec![T::ZERO; gh * hs];
        for j in 0..gh {
            for k in 0..hs {
                w_hh_t[k * gh + j] = w_hh[j * hs + k];
            }
        }
        let (z0, h0, c0, tc0) = (
            v(n * gh, 1.0),
            v((d.t_len + 1) * d.batch * hs, 0.5),
            v((d.t_len + 1) * d.batch * hs, 0.5),
            v(n * hs, 0.2),
        );
        let run = |wt: Option<&[T]>| {
            let (mut z, mut h, mut c, mut tc) = (z0.clone(), h0.clone(), c0.clone(), tc0.clone());
            let w = RecurrentWeights {
                w_hh: &w_hh,
                w_hh_t: wt,
            };
            forward(
                cell,
                d,
                w,
                StepInput::Ready,
                &mut z,
                &mut h,
                &mut c,
                &mut tc,
            );
            [z, h, c, tc]
                .iter()
                .flat_map(|b| b.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>())
                .collect()
        };
        (run(Some(&w_hh_t)), run(None))
    }

    #[test]
    fn contiguous_whh_t_gives_the_same_bits_where_allowed() {
        let mut tried = 0;
        for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
            for (batch, hs) in [(2, 40), (5, 16), (17, 16), (100, 8), (130, 33), (64, 3)] {
                let d = Dims::new(3, batch, hs);
                if !contiguous_whh_t_keeps_sums(cell, d) {
                    continue;
                }
                tried += 1;
                let seed = (batch * 1000 + hs) as u32;
                let (a, b) = both_layouts::<f32>(cell, d, seed);
                assert!(a == b, "{cell:?} f32 batch {batch} hs {hs}");
                let (a, b) = both_layouts::<f64>(cell, d, seed);
                assert!(a == b, "{cell:?} f64 batch {batch} hs {hs}");
            }
        }
        assert!(tried >= 10, "{tried}");
    }

    #[test]
    fn contiguous_whh_t_only_on_the_micro_kernels_shapes() {
        let ok = |cell, batch, hs| contiguous_whh_t_keeps_sums(cell, Dims::new(4, batch, hs));
        assert!(ok(Cell::Lstm, 128, 128) && ok(Cell::Gru, 128, 128));
        assert!(!ok(Cell::Lstm, 65, 128), "a last block of one row");
        assert!(!ok(Cell::Lstm, 1, 128) && !ok(Cell::Lstm, 64, 2) && !ok(Cell::Lstm, 64, 513));
        assert!(
            !ok(Cell::Lstm, 4, 16) && ok(Cell::Lstm, 5, 16),
            "16×16 outputs or fewer"
        );
        assert!(
            !ok(Cell::Gru, 16, 16) && ok(Cell::Gru, 17, 16),
            "the GRU's n gate is H wide"
        );
    }
}
