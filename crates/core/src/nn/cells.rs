//! The row kernels of the recurrent cells: LSTM and tanh-RNN activations forward, LSTM gate
//! gradients backward. One generic body each, compiled for the SIMD level in force through
//! [`Float::vectorized`] (no per-type special cases).
//!
//! Gate layout of a row of `z`: `[i | f | g | o]`, each block `hs` wide (PyTorch's order; a
//! model with another order permutes its weights when it loads them).

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
}

impl Cell {
    /// Gates per hidden unit: 4 for the LSTM, 1 for the RNN.
    pub fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Rnn => 1,
        }
    }

    /// The PyTorch module prefix (`lstm` / `rnn`).
    pub fn name(self) -> &'static str {
        match self {
            Cell::Lstm => "lstm",
            Cell::Rnn => "rnn",
        }
    }

    /// Parses "lstm" / "rnn".
    pub fn parse(s: &str) -> Result<Cell> {
        match s {
            "lstm" => Ok(Cell::Lstm),
            "rnn" => Ok(Cell::Rnn),
            other => Err(CoreError::invalid(format!(
                "cell: expected 'lstm' or 'rnn', got '{other}'"
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
