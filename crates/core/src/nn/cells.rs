//! The row kernels of the recurrent cells: LSTM, GRU and tanh-RNN activations forward, LSTM
//! and GRU gate gradients backward. One generic body each, compiled for the SIMD level in force
//! through [`Float::vectorized`] (no per-type special cases).
//!
//! Gate layout of a row of `z`, each block `hs` wide, in PyTorch's order (a model with another
//! order permutes its weights when it loads them): LSTM `[i | f | g | o]`, GRU `[r | z | n]`.

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};
use crate::math::{Float, SimdKernel};

/// The recurrent cell of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cell {
    /// LSTM, gates in PyTorch order (i, f, g, o).
    Lstm,
    /// Vanilla tanh RNN.
    Rnn,
    /// GRU, gates in PyTorch order (r, z, n).
    Gru,
}

impl Cell {
    /// Every cell, in the order error messages list them.
    pub const ALL: [Cell; 3] = [Cell::Lstm, Cell::Gru, Cell::Rnn];

    /// Gates per hidden unit: 4 for the LSTM, 3 for the GRU, 1 for the RNN.
    pub fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
            Cell::Rnn => 1,
        }
    }

    /// The PyTorch module prefix (`lstm` / `gru` / `rnn`).
    pub fn name(self) -> &'static str {
        match self {
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
            Cell::Rnn => "rnn",
        }
    }

    /// How many leading gate columns (of `gates() · hs`) take the hidden bias `b_hh` folded
    /// into `z` together with `b_ih`: all of them, except the GRU's n gate, whose hidden part
    /// `W_hn h + b_hn` is multiplied by r and so must stay separate.
    pub fn folded_bias_cols(self, hs: usize) -> usize {
        match self {
            Cell::Gru => 2 * hs,
            other => other.gates() * hs,
        }
    }

    /// Parses "lstm" / "gru" / "rnn".
    pub fn parse(s: &str) -> Result<Cell> {
        match Cell::ALL.into_iter().find(|c| c.name() == s) {
            Some(c) => Ok(c),
            None => Err(CoreError::invalid(format!(
                "cell: expected 'lstm', 'gru' or 'rnn', got '{s}'"
            ))),
        }
    }
}

/// One LSTM row forward: gate activations written over the pre-activations `zi..zo`,
/// `c = f∘c_prev + i∘g`, `tc = tanh(c)`, `h = o∘tc`. Separate `&mut` arguments tell the
/// compiler the slices do not overlap, and equal lengths remove the bounds checks: the loop
/// vectorises.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lstm_row<T: Float>(
    zi: &mut [T],
    zf: &mut [T],
    zg: &mut [T],
    zo: &mut [T],
    cp: &[T],
    cn: &mut [T],
    tc: &mut [T],
    hn: &mut [T],
) {
    let n = zi.len();
    let (zf, zg, zo, cp, cn, tc, hn) = (
        &mut zf[..n],
        &mut zg[..n],
        &mut zo[..n],
        &cp[..n],
        &mut cn[..n],
        &mut tc[..n],
        &mut hn[..n],
    );
    for j in 0..n {
        let i = zi[j].sigmoid_fast();
        let f = zf[j].sigmoid_fast();
        let g = zg[j].tanh_fast();
        let o = zo[j].sigmoid_fast();
        zi[j] = i;
        zf[j] = f;
        zg[j] = g;
        zo[j] = o;
        let cv = f * cp[j] + i * g;
        let th = cv.tanh_fast();
        cn[j] = cv;
        tc[j] = th;
        hn[j] = o * th;
    }
}

/// One LSTM row backward: from the gate activations (in `zi..zo`), the output gradient (`dh`
/// from above + `dh_nx` from step t+1) and `dc_nx`, write dZ into `zi..zo` and the cell
/// gradient for step t−1 into `dc_nx`. `h = o∘tanh(c)`, `c = f∘c_prev + i∘g`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lstm_back_row<T: Float>(
    zi: &mut [T],
    zf: &mut [T],
    zg: &mut [T],
    zo: &mut [T],
    dh: &[T],
    dh_nx: &[T],
    dc_nx: &mut [T],
    tc: &[T],
    cp: &[T],
) {
    let n = zi.len();
    let (zf, zg, zo, dh, dh_nx, dc_nx, tc, cp) = (
        &mut zf[..n],
        &mut zg[..n],
        &mut zo[..n],
        &dh[..n],
        &dh_nx[..n],
        &mut dc_nx[..n],
        &tc[..n],
        &cp[..n],
    );
    for j in 0..n {
        let dhv = dh[j] + dh_nx[j];
        let (i, f, g, o) = (zi[j], zf[j], zg[j], zo[j]);
        let th = tc[j];
        let dc = dhv * o * (T::ONE - th * th) + dc_nx[j];
        let d_o = dhv * th;
        dc_nx[j] = dc * f;
        zi[j] = dc * g * i * (T::ONE - i);
        zf[j] = dc * cp[j] * f * (T::ONE - f);
        zg[j] = dc * i * (T::ONE - g * g);
        zo[j] = d_o * o * (T::ONE - o);
    }
}

/// Splits a row of `z` into its four gate blocks.
#[inline(always)]
fn gates<T>(zr: &mut [T], hs: usize) -> (&mut [T], &mut [T], &mut [T], &mut [T]) {
    let (zi, rest) = zr.split_at_mut(hs);
    let (zf, rest) = rest.split_at_mut(hs);
    let (zg, zo) = rest.split_at_mut(hs);
    (zi, zf, zg, zo)
}

struct LstmForward<'a, T> {
    z: &'a mut [T],
    c_prev: &'a [T],
    c_new: &'a mut [T],
    tc: &'a mut [T],
    h_new: &'a mut [T],
    hs: usize,
}

impl<T: Float> SimdKernel for LstmForward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let hs = self.hs;
        for ((((zr, cp), cn), tcr), hn) in self
            .z
            .chunks_exact_mut(4 * hs)
            .zip(self.c_prev.chunks_exact(hs))
            .zip(self.c_new.chunks_exact_mut(hs))
            .zip(self.tc.chunks_exact_mut(hs))
            .zip(self.h_new.chunks_exact_mut(hs))
        {
            let (zi, zf, zg, zo) = gates(zr, hs);
            lstm_row(zi, zf, zg, zo, cp, cn, tcr, hn);
        }
    }
}

/// The LSTM step of a block of rows (see [`lstm_row`]): `z` (rows, 4·hs) holds the gate
/// pre-activations on entry and their activations on exit.
pub(crate) fn lstm_activations<T: Float>(
    z: &mut [T],
    c_prev: &[T],
    c_new: &mut [T],
    tc: &mut [T],
    h_new: &mut [T],
    hs: usize,
) {
    T::vectorized(LstmForward {
        z,
        c_prev,
        c_new,
        tc,
        h_new,
        hs,
    })
}

struct LstmBackward<'a, T> {
    z: &'a mut [T],
    hs: usize,
    dh: &'a [T],
    dh_nx: &'a [T],
    dc_nx: &'a mut [T],
    tc: &'a [T],
    c_prev: &'a [T],
}

impl<T: Float> SimdKernel for LstmBackward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let hs = self.hs;
        for (((((zr, dh), dh_nx), dc_nx), tc), cp) in self
            .z
            .chunks_exact_mut(4 * hs)
            .zip(self.dh.chunks_exact(hs))
            .zip(self.dh_nx.chunks_exact(hs))
            .zip(self.dc_nx.chunks_exact_mut(hs))
            .zip(self.tc.chunks_exact(hs))
            .zip(self.c_prev.chunks_exact(hs))
        {
            let (zi, zf, zg, zo) = gates(zr, hs);
            lstm_back_row(zi, zf, zg, zo, dh, dh_nx, dc_nx, tc, cp);
        }
    }
}

/// The LSTM backward step of a block of rows: `z` holds each row's gate activations
/// `[i | f | g | o]` (width 4·hs) and receives their gradients dZ; `dh` is the output gradient
/// from above, `dh_nx` the one from step t+1, and `dc_nx` carries the cell gradient to the
/// previous step (see [`lstm_back_row`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_backward_rows<T: Float>(
    z: &mut [T],
    hs: usize,
    dh: &[T],
    dh_nx: &[T],
    dc_nx: &mut [T],
    tc: &[T],
    c_prev: &[T],
) {
    T::vectorized(LstmBackward {
        z,
        hs,
        dh,
        dh_nx,
        dc_nx,
        tc,
        c_prev,
    })
}

struct RnnForward<'a, T> {
    z: &'a [T],
    h_new: &'a mut [T],
}

impl<T: Float> SimdKernel for RnnForward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for (hn, &zv) in self.h_new.iter_mut().zip(self.z) {
            *hn = zv.tanh_fast();
        }
    }
}

/// The tanh-RNN step of a block of rows: `h = tanh(z)`.
pub(crate) fn rnn_activations<T: Float>(z: &[T], h_new: &mut [T]) {
    T::vectorized(RnnForward { z, h_new })
}

/// One GRU row forward (PyTorch's `nn.GRU`): on entry `zr`, `zz`, `zn` hold the input parts
/// (`W_i· x + b_i·`, plus `W_hr h + b_hr` and `W_hz h + b_hz` for r and z) and `hn` holds
/// `W_hn h + b_hn`; on exit they hold r, z, n and (unchanged) `hn`, and
/// `h = (1 − z)∘n + z∘h_prev` with `n = tanh(zn + r∘hn)`.
#[inline(always)]
fn gru_row<T: Float>(
    zr: &mut [T],
    zz: &mut [T],
    zn: &mut [T],
    hn: &[T],
    hp: &[T],
    h_new: &mut [T],
) {
    let n = zr.len();
    let (zz, zn, hn, hp, h_new) = (
        &mut zz[..n],
        &mut zn[..n],
        &hn[..n],
        &hp[..n],
        &mut h_new[..n],
    );
    for j in 0..n {
        let r = zr[j].sigmoid_fast();
        let u = zz[j].sigmoid_fast();
        let nv = (zn[j] + r * hn[j]).tanh_fast();
        zr[j] = r;
        zz[j] = u;
        zn[j] = nv;
        h_new[j] = (T::ONE - u) * nv + u * hp[j];
    }
}

/// One GRU row backward: from r, z, n (in `zr..zn`), `hn = W_hn h + b_hn`, the output gradient
/// (`dh` from above + `dh_nx` from step t+1) and `h_prev`, write the input-side dZ
/// `[dr | dz | dn]` (gradients of the pre-activations) into `zr..zn`, the hidden-side gradient
/// of the n gate `dn ∘ r` over `hn`, and the direct part of dh⟨t−1⟩, `dh ∘ z`, into `dh_nx`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gru_back_row<T: Float>(
    zr: &mut [T],
    zz: &mut [T],
    zn: &mut [T],
    hn: &mut [T],
    dh: &[T],
    dh_nx: &mut [T],
    hp: &[T],
) {
    let n = zr.len();
    let (zz, zn, hn, dh, dh_nx, hp) = (
        &mut zz[..n],
        &mut zn[..n],
        &mut hn[..n],
        &dh[..n],
        &mut dh_nx[..n],
        &hp[..n],
    );
    for j in 0..n {
        let dhv = dh[j] + dh_nx[j];
        let (r, u, nv) = (zr[j], zz[j], zn[j]);
        let dn = dhv * (T::ONE - u) * (T::ONE - nv * nv);
        let du = dhv * (hp[j] - nv) * u * (T::ONE - u);
        let dr = dn * hn[j] * r * (T::ONE - r);
        zr[j] = dr;
        zz[j] = du;
        zn[j] = dn;
        hn[j] = dn * r;
        dh_nx[j] = dhv * u;
    }
}

/// Splits a GRU row of `z` into its three gate blocks.
#[inline(always)]
fn gru_gates<T>(zr: &mut [T], hs: usize) -> (&mut [T], &mut [T], &mut [T]) {
    let (r, rest) = zr.split_at_mut(hs);
    let (z, n) = rest.split_at_mut(hs);
    (r, z, n)
}

struct GruForward<'a, T> {
    z: &'a mut [T],
    hn: &'a [T],
    h_prev: &'a [T],
    h_new: &'a mut [T],
    hs: usize,
}

impl<T: Float> SimdKernel for GruForward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let hs = self.hs;
        for (((zrow, hn), hp), h_new) in self
            .z
            .chunks_exact_mut(3 * hs)
            .zip(self.hn.chunks_exact(hs))
            .zip(self.h_prev.chunks_exact(hs))
            .zip(self.h_new.chunks_exact_mut(hs))
        {
            let (zr, zz, zn) = gru_gates(zrow, hs);
            gru_row(zr, zz, zn, hn, hp, h_new);
        }
    }
}

/// The GRU step of a block of rows (see [`gru_row`]): `z` (rows, 3·hs) holds the gate
/// pre-activations on entry and r, z, n on exit; `hn` (rows, hs) is `W_hn h + b_hn`.
pub(crate) fn gru_activations<T: Float>(
    z: &mut [T],
    hn: &[T],
    h_prev: &[T],
    h_new: &mut [T],
    hs: usize,
) {
    T::vectorized(GruForward {
        z,
        hn,
        h_prev,
        h_new,
        hs,
    })
}

struct GruBackward<'a, T> {
    z: &'a mut [T],
    hn: &'a mut [T],
    dh: &'a [T],
    dh_nx: &'a mut [T],
    h_prev: &'a [T],
    hs: usize,
}

impl<T: Float> SimdKernel for GruBackward<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let hs = self.hs;
        for ((((zrow, hn), dh), dh_nx), hp) in self
            .z
            .chunks_exact_mut(3 * hs)
            .zip(self.hn.chunks_exact_mut(hs))
            .zip(self.dh.chunks_exact(hs))
            .zip(self.dh_nx.chunks_exact_mut(hs))
            .zip(self.h_prev.chunks_exact(hs))
        {
            let (zr, zz, zn) = gru_gates(zrow, hs);
            gru_back_row(zr, zz, zn, hn, dh, dh_nx, hp);
        }
    }
}

/// The GRU backward step of a block of rows (see [`gru_back_row`]): `z` holds r, z, n and
/// receives the input-side dZ; `hn` holds `W_hn h + b_hn` and receives its gradient; `dh_nx`
/// holds dh from step t+1 and receives the direct part `dh ∘ z` of dh⟨t−1⟩.
pub(crate) fn gru_backward_rows<T: Float>(
    z: &mut [T],
    hn: &mut [T],
    dh: &[T],
    dh_nx: &mut [T],
    h_prev: &[T],
    hs: usize,
) {
    T::vectorized(GruBackward {
        z,
        hn,
        dh,
        dh_nx,
        h_prev,
        hs,
    })
}
