//! AVX-512F forms (eight lanes) of `gemv_n`, the outer products and the fused clip + update;
//! like `avx2.rs`, each lane performs exactly the portable code's operations.

use super::simd::{self, Tail};
use super::Fuse;
use crate::math::lanes::Zmm;

/// The whole of `gemv_n`: leading outputs in blocks of 32 and 8 (and one of 4), then the
/// `m % 4` last ones as FMA chains.
///
/// # Safety
/// The CPU must support AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
pub unsafe fn gemv_n(w: &[f64], n: usize, m: usize, v: &[f64], y: &mut [f64]) {
    assert!(w.len() >= n * m && v.len() >= n && y.len() >= m);
    let nb = m & !3;
    if nb < 8 {
        // SAFETY: forwarded (AVX-512F implies AVX2 and FMA here; bounds checked there).
        unsafe { super::avx2::gemv_n(w, n, m, v, y) };
        return;
    }
    let (wp, yp) = (w.as_ptr(), y.as_mut_ptr());
    // SAFETY: column nb..m of every row is inside `w`.
    let mut tail = Tail {
        p: unsafe { wp.add(nb) },
        m,
        len: m - nb,
        acc: [0.0; 3],
    };
    // SAFETY: rows k < n and columns i < m are inside `w`, outputs i < m inside `y`.
    unsafe {
        // The tail is carried by the first block only (nb >= 8 here). Up to 64 outputs
        // are done in one pass over the rows (enough independent add chains to fill the
        // FMA ports); wider products continue in blocks of 32 and 8.
        let first = &mut tail;
        let mut i0 = match nb / 8 {
            1 => simd::gemv_n_block::<Zmm, 1>(wp, n, m, v, yp, first),
            2 => simd::gemv_n_block::<Zmm, 2>(wp, n, m, v, yp, first),
            3 => simd::gemv_n_block::<Zmm, 3>(wp, n, m, v, yp, first),
            4 => simd::gemv_n_block::<Zmm, 4>(wp, n, m, v, yp, first),
            5 => simd::gemv_n_block::<Zmm, 5>(wp, n, m, v, yp, first),
            6 => simd::gemv_n_block::<Zmm, 6>(wp, n, m, v, yp, first),
            7 => simd::gemv_n_block::<Zmm, 7>(wp, n, m, v, yp, first),
            8 => simd::gemv_n_block::<Zmm, 8>(wp, n, m, v, yp, first),
            _ => simd::gemv_n_block::<Zmm, 4>(wp, n, m, v, yp, first),
        };
        while i0 + 32 <= nb {
            i0 += simd::gemv_n_block::<Zmm, 4>(wp.add(i0), n, m, v, yp.add(i0), &mut Tail::none());
        }
        while i0 + 8 <= nb {
            i0 += simd::gemv_n_block::<Zmm, 1>(wp.add(i0), n, m, v, yp.add(i0), &mut Tail::none());
        }
        if i0 < nb {
            super::avx2::gemv_n_range(w, n, m, v, y, i0, nb, &mut Tail::none());
        }
    }
    y[nb..m].copy_from_slice(&tail.acc[..m - nb]);
}

/// The whole of `sum_outer_rev` (see `simd::sum_outer_rev`) with 8-lane vectors in groups of
/// up to eight (sixteen accumulators for two rows, within the 32 zmm registers).
///
/// # Safety
/// The CPU must support AVX-512F; `fuse.w` is a distinct `(rows, cols)` matrix.
#[target_feature(enable = "avx512f")]
#[inline]
pub unsafe fn sum_outer_rev(
    out: &mut [f64],
    rows: usize,
    cols: usize,
    left: &[f64],
    right: &[f64],
    steps: usize,
    fuse: Option<Fuse>,
) {
    // SAFETY: forwarded (bounds asserted there).
    unsafe { simd::sum_outer_rev::<Zmm, 8>(out, rows, cols, left, right, steps, fuse) }
}

/// Element-wise clip to `[−max, max]` (NaN kept) then `w += neg_lr · d`, eight lanes at a time.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
pub unsafe fn clip_update(w: &mut [f64], dw: &mut [f64], max_value: f64, neg_lr: f64) {
    // SAFETY: the CPU runs Zmm.
    unsafe { simd::clip_update::<Zmm>(w, dw, max_value, neg_lr) }
}
