//! The time loops of one recurrent layer over a mini-batch, forward and backward.
//!
//! Layout (batch-major rows, row-major storage): a step's rows are contiguous, row `t·B + b`.
//! - `z`  (T·B, G·H): gate pre-activations on entry (input projection + biases, computed by the
//!   caller as one big GEMM), gate activations after `forward`, gate gradients dZ after `backward`.
//! - `h`  ((T+1)·B, H): `h[0..B]` is the initial state, `h[(t+1)·B..]` the output of step t.
//! - `c`  ((T+1)·B, H) and `tc` (T·B, H) = tanh(c⟨t⟩): LSTM only.
//!
//! The batch is cut into blocks of [`ROW_BLOCK`] sequences, each running the whole time loop on
//! one thread: one GEMM per step per block computes all gates of the layer
//! (`z⟨t⟩ += h⟨t−1⟩·W_hhᵀ`), and the block size is a constant, so results do not depend on the
//! number of threads. Nothing is allocated inside the loops.

use rayon::prelude::*;

use crate::math::Float;
use crate::math::gemm::{gemm_raw, Operand, SyncPtr, ROW_BLOCK};
use crate::lm::model::Cell;

/// Shapes of one layer's time loop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub t_len: usize,
    pub batch: usize,
    pub hidden: usize,
}

/// `rows` rows of width `width` starting at row `row0` of the buffer behind `p`.
#[inline]
unsafe fn rows<'a, T>(p: SyncPtr<T>, row0: usize, rows: usize, width: usize) -> &'a mut [T] {
    std::slice::from_raw_parts_mut(p.0.add(row0 * width), rows * width)
}

fn blocks(batch: usize) -> usize {
    batch.div_ceil(ROW_BLOCK)
}

/// LSTM step for a block of rows: gate activations (in place in `z`, layout i|f|g|o per row),
/// `c = f∘c_prev + i∘g`, `tc = tanh(c)`, `h = o∘tc`. Written as flat loops over the hidden
/// units so the compiler vectorises them (with AVX-512 when the CPU has it).
#[inline(always)]
fn lstm_kernel<T: Float>(
    z: &mut [T],
    c_prev: &[T],
    c_new: &mut [T],
    tc: &mut [T],
    h_new: &mut [T],
    hs: usize,
    row: RowFn<T>,
) {
    for ((((zr, cp), cn), tcr), hn) in z
        .chunks_exact_mut(4 * hs)
        .zip(c_prev.chunks_exact(hs))
        .zip(c_new.chunks_exact_mut(hs))
        .zip(tc.chunks_exact_mut(hs))
        .zip(h_new.chunks_exact_mut(hs))
    {
        let (zi, rest) = zr.split_at_mut(hs);
        let (zf, rest) = rest.split_at_mut(hs);
        let (zg, zo) = rest.split_at_mut(hs);
        // SAFETY: `row` was chosen for the features of this CPU.
        unsafe { row(zi, zf, zg, zo, cp, cn, tcr, hn) };
    }
}

/// One row of [`lstm_kernel`]. Separate `&mut` arguments tell the compiler the slices do
/// not overlap, and equal lengths remove the bounds checks: the loop vectorises.
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

#[inline(always)]
fn rnn_kernel<T: Float>(z: &[T], h_new: &mut [T]) {
    for (hn, &zv) in h_new.iter_mut().zip(z) {
        *hn = zv.tanh_fast();
    }
}

/// One row of the LSTM backward step: from the gate activations (in `zi..zo`), the output
/// gradient (`dh` from above + `dh_nx` from step t+1) and `dc_nx`, write dZ into `zi..zo` and
/// the cell gradient for step t−1 into `dc_nx`. `a = o∘tanh(c)`, `c = f∘c_prev + i∘g`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lstm_back_row<T: Float>(
    zi: &mut [T],
    zf: &mut [T],
    zg: &mut [T],
    zo: &mut [T],
    dh: &[T],
    dh_nx: &mut [T],
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
        &mut dh_nx[..n],
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

/// Signature of the per-row LSTM backward kernels.
type BackFn<T> =
    unsafe fn(&mut [T], &mut [T], &mut [T], &mut [T], &[T], &mut [T], &mut [T], &[T], &[T]);

#[allow(clippy::too_many_arguments)]
unsafe fn lstm_back_plain<T: Float>(
    zi: &mut [T],
    zf: &mut [T],
    zg: &mut [T],
    zo: &mut [T],
    dh: &[T],
    dh_nx: &mut [T],
    dc_nx: &mut [T],
    tc: &[T],
    cp: &[T],
) {
    lstm_back_row(zi, zf, zg, zo, dh, dh_nx, dc_nx, tc, cp)
}

/// The backward row kernel for this CPU and element type (safe to call: chosen by features).
#[allow(clippy::type_complexity)]
fn lstm_back_fn<T: Float>(
) -> impl Fn(&mut [T], &mut [T], &mut [T], &mut [T], &[T], &mut [T], &mut [T], &[T], &[T]) {
    #[allow(unused_mut)]
    let mut f: BackFn<T> = lstm_back_plain::<T>;
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512dq")
    {
        // SAFETY: T is f32 (checked by TypeId), so the two fn pointer types are identical.
        f = unsafe { std::mem::transmute::<BackFn<f32>, BackFn<T>>(f32_rows::back_avx512) };
    }
    // SAFETY: the kernel was chosen for the features of this CPU.
    move |zi, zf, zg, zo, dh, dh_nx, dc_nx, tc, cp| unsafe {
        f(zi, zf, zg, zo, dh, dh_nx, dc_nx, tc, cp)
    }
}

/// The LSTM backward step of a block of rows: `z` holds each row's gate pre-activations
/// `[i | f | g | o]` (width 4·hs) and receives their gradients; `dh_nx`, `dc_nx` carry the
/// gradients to the previous step (see [`lstm_back_row`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_backward_rows<T: Float>(
    z: &mut [T],
    hs: usize,
    dh: &[T],
    dh_nx: &mut [T],
    dc_nx: &mut [T],
    tc: &[T],
    c_prev: &[T],
) {
    let back = lstm_back_fn::<T>();
    for (r, zr) in z.chunks_exact_mut(4 * hs).enumerate() {
        let (zi, rest) = zr.split_at_mut(hs);
        let (zf, rest) = rest.split_at_mut(hs);
        let (zg, zo) = rest.split_at_mut(hs);
        let rr = r * hs..(r + 1) * hs;
        back(
            zi,
            zf,
            zg,
            zo,
            &dh[rr.clone()],
            &mut dh_nx[rr.clone()],
            &mut dc_nx[rr.clone()],
            &tc[rr.clone()],
            &c_prev[rr],
        );
    }
}

/// Signature of the per-row LSTM kernels.
type RowFn<T> =
    unsafe fn(&mut [T], &mut [T], &mut [T], &mut [T], &[T], &mut [T], &mut [T], &mut [T]);

/// The f32 row kernels, compiled here (not generic, so not monomorphised downstream) with
/// the vector features enabled; each is its own function so its slice arguments keep their
/// `noalias` guarantees. Together this is what lets the loop vectorise.
mod f32_rows {
    use super::{lstm_back_row, lstm_row};

    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn back_avx512(
        zi: &mut [f32],
        zf: &mut [f32],
        zg: &mut [f32],
        zo: &mut [f32],
        dh: &[f32],
        dh_nx: &mut [f32],
        dc_nx: &mut [f32],
        tc: &[f32],
        cp: &[f32],
    ) {
        lstm_back_row(zi, zf, zg, zo, dh, dh_nx, dc_nx, tc, cp)
    }

    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn avx512(
        zi: &mut [f32],
        zf: &mut [f32],
        zg: &mut [f32],
        zo: &mut [f32],
        cp: &[f32],
        cn: &mut [f32],
        tc: &mut [f32],
        hn: &mut [f32],
    ) {
        lstm_row(zi, zf, zg, zo, cp, cn, tc, hn)
    }

    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,fma")]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn avx2(
        zi: &mut [f32],
        zf: &mut [f32],
        zg: &mut [f32],
        zo: &mut [f32],
        cp: &[f32],
        cn: &mut [f32],
        tc: &mut [f32],
        hn: &mut [f32],
    ) {
        lstm_row(zi, zf, zg, zo, cp, cn, tc, hn)
    }
}

#[allow(clippy::too_many_arguments)]
unsafe fn lstm_row_plain<T: Float>(
    zi: &mut [T],
    zf: &mut [T],
    zg: &mut [T],
    zo: &mut [T],
    cp: &[T],
    cn: &mut [T],
    tc: &mut [T],
    hn: &mut [T],
) {
    lstm_row(zi, zf, zg, zo, cp, cn, tc, hn)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn rnn_kernel_avx512<T: Float>(z: &[T], h_new: &mut [T]) {
    rnn_kernel(z, h_new)
}

/// [`lstm_kernel`] on the widest vector unit the CPU has. Rust never fuses `a*b+c` into an
/// FMA implicitly, so every variant gives bit-identical results.
pub(crate) fn lstm_activations<T: Float>(
    z: &mut [T],
    c_prev: &[T],
    c_new: &mut [T],
    tc: &mut [T],
    h_new: &mut [T],
    hs: usize,
) {
    #[allow(unused_mut)]
    let mut row: RowFn<T> = lstm_row_plain::<T>;
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
        let f32_row: Option<RowFn<f32>> = if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            Some(f32_rows::avx512)
        } else if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            Some(f32_rows::avx2)
        } else {
            None
        };
        if let Some(f) = f32_row {
            // SAFETY: T is f32 (checked by TypeId), so the two fn pointer types are identical.
            row = unsafe { std::mem::transmute::<RowFn<f32>, RowFn<T>>(f) };
        }
    }
    lstm_kernel(z, c_prev, c_new, tc, h_new, hs, row)
}

/// [`rnn_kernel`] on the widest vector unit the CPU has.
pub(crate) fn rnn_activations<T: Float>(z: &[T], h_new: &mut [T]) {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            // SAFETY: the CPU supports the enabled features.
            return unsafe { rnn_kernel_avx512(z, h_new) };
        }
    }
    rnn_kernel(z, h_new)
}

/// Forward time loop. `w_hh`: (G·H, H). See the module docs for the buffers.
pub(crate) fn forward<T: Float>(
    cell: Cell,
    d: Dims,
    w_hh: &[T],
    z: &mut [T],
    h: &mut [T],
    c: &mut [T],
    tc: &mut [T],
) {
    let (bsz, hs) = (d.batch, d.hidden);
    let gh = cell.gates() * hs;
    debug_assert!(z.len() >= d.t_len * bsz * gh && h.len() >= (d.t_len + 1) * bsz * hs);
    let (zp, hp, cp, tcp) = (
        SyncPtr(z.as_mut_ptr()),
        SyncPtr(h.as_mut_ptr()),
        SyncPtr(c.as_mut_ptr()),
        SyncPtr(tc.as_mut_ptr()),
    );
    let whh = SyncPtr(w_hh.as_ptr() as *mut T);
    (0..blocks(bsz)).into_par_iter().for_each(move |blk| {
        let (zp, hp, cp, tcp, whh) = (zp, hp, cp, tcp, whh);
        let b0 = blk * ROW_BLOCK;
        let nb = ROW_BLOCK.min(bsz - b0);
        for t in 0..d.t_len {
            // SAFETY: block `blk` only touches rows b0..b0+nb of each step; blocks are disjoint.
            unsafe {
                let zt = rows(zp, t * bsz + b0, nb, gh);
                let h_prev = rows(hp, t * bsz + b0, nb, hs);
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
                    Operand {
                        ptr: whh.0 as *const T,
                        rs: 1,
                        cs: hs as isize,
                    },
                );
                let h_new = rows(hp, (t + 1) * bsz + b0, nb, hs);
                match cell {
                    Cell::Rnn => rnn_activations(zt, h_new),
                    Cell::Lstm => {
                        let c_prev = rows(cp, t * bsz + b0, nb, hs);
                        let c_new = rows(cp, (t + 1) * bsz + b0, nb, hs);
                        let tct = rows(tcp, t * bsz + b0, nb, hs);
                        lstm_activations(zt, c_prev, c_new, tct, h_new, hs);
                    }
                }
            }
        }
    });
}

/// Backward time loop (truncated at the initial state). `dh`: (T·B, H) gradient of the loss
/// with respect to each step's output from above; `z` holds the gate activations on entry and
/// dZ (gradient with respect to the gate pre-activations) on exit. Scratch (B, H) each:
/// `dh_cur`, `dh_next`, `dc_next`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Float>(
    cell: Cell,
    d: Dims,
    w_hh: &[T],
    z: &mut [T],
    h: &[T],
    c: &[T],
    tc: &[T],
    dh: &[T],
    dh_next: &mut [T],
    dc_next: &mut [T],
) {
    let (bsz, hs) = (d.batch, d.hidden);
    let gh = cell.gates() * hs;
    let zp = SyncPtr(z.as_mut_ptr());
    let (hp, cp, tcp, dhp) = (
        SyncPtr(h.as_ptr() as *mut T),
        SyncPtr(c.as_ptr() as *mut T),
        SyncPtr(tc.as_ptr() as *mut T),
        SyncPtr(dh.as_ptr() as *mut T),
    );
    let (dhnp, dcnp) = (SyncPtr(dh_next.as_mut_ptr()), SyncPtr(dc_next.as_mut_ptr()));
    let whh = SyncPtr(w_hh.as_ptr() as *mut T);
    (0..blocks(bsz)).into_par_iter().for_each(move |blk| {
        let (zp, hp, cp, tcp, dhp, dhnp, dcnp, whh) = (zp, hp, cp, tcp, dhp, dhnp, dcnp, whh);
        let b0 = blk * ROW_BLOCK;
        let nb = ROW_BLOCK.min(bsz - b0);
        // SAFETY: as in `forward`, each block owns rows b0..b0+nb of every buffer it writes.
        unsafe {
            let dh_nx = rows(dhnp, b0, nb, hs);
            let dc_nx = rows(dcnp, b0, nb, hs);
            dh_nx.fill(T::ZERO);
            dc_nx.fill(T::ZERO);
            for t in (0..d.t_len).rev() {
                let zt = rows(zp, t * bsz + b0, nb, gh);
                let dht = rows(dhp, t * bsz + b0, nb, hs);
                match cell {
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
                    gemm_raw(
                        nb,
                        hs,
                        gh,
                        dh_nx.as_mut_ptr(),
                        hs,
                        false,
                        Operand {
                            ptr: zt.as_ptr(),
                            rs: gh as isize,
                            cs: 1,
                        },
                        Operand {
                            ptr: whh.0 as *const T,
                            rs: hs as isize,
                            cs: 1,
                        },
                    );
                }
            }
        }
    });
}
