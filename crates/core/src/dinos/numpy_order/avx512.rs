//! AVX-512F forms (eight lanes) of `gemv_n`, the outer products and the fused clip + update;
//! like `avx2.rs`, each lane performs exactly the portable code's operations.

use std::arch::x86_64::*;

use super::avx2::Tail;
use super::Fuse;
use crate::math::lanes::mask8;

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
            1 => gemv_n_block::<1>(wp, n, m, v, yp, first),
            2 => gemv_n_block::<2>(wp, n, m, v, yp, first),
            3 => gemv_n_block::<3>(wp, n, m, v, yp, first),
            4 => gemv_n_block::<4>(wp, n, m, v, yp, first),
            5 => gemv_n_block::<5>(wp, n, m, v, yp, first),
            6 => gemv_n_block::<6>(wp, n, m, v, yp, first),
            7 => gemv_n_block::<7>(wp, n, m, v, yp, first),
            8 => gemv_n_block::<8>(wp, n, m, v, yp, first),
            _ => gemv_n_block::<4>(wp, n, m, v, yp, first),
        };
        while i0 + 32 <= nb {
            i0 += gemv_n_block::<4>(wp.add(i0), n, m, v, yp.add(i0), &mut Tail::none());
        }
        while i0 + 8 <= nb {
            i0 += gemv_n_block::<1>(wp.add(i0), n, m, v, yp.add(i0), &mut Tail::none());
        }
        if i0 < nb {
            super::avx2::gemv_n_range(w, n, m, v, y, i0, nb, &mut Tail::none());
        }
    }
    y[nb..m].copy_from_slice(&tail.acc[..m - nb]);
}

/// `8·V` outputs of `gemv_n` at `yp`, reading columns at `wp` (row stride `m`).
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn gemv_n_block<const V: usize>(
    wp: *const f64,
    n: usize,
    m: usize,
    v: &[f64],
    yp: *mut f64,
    tail: &mut Tail,
) -> usize {
    let mut acc = [_mm512_setzero_pd(); V];
    let mut k = 0;
    // SAFETY: the caller guarantees n rows of 8·V columns at wp and 8·V outputs at yp.
    unsafe {
        while k + 4 <= n {
            let (w0, w1, w2, w3) = (
                wp.add(k * m),
                wp.add((k + 1) * m),
                wp.add((k + 2) * m),
                wp.add((k + 3) * m),
            );
            let (v0, v1) = (_mm512_set1_pd(v[k]), _mm512_set1_pd(v[k + 1]));
            let (v2, v3) = (_mm512_set1_pd(v[k + 2]), _mm512_set1_pd(v[k + 3]));
            for (b, s) in acc.iter_mut().enumerate() {
                let o = 8 * b;
                let t = _mm512_mul_pd(_mm512_loadu_pd(w1.add(o)), v1);
                let t = _mm512_fmadd_pd(_mm512_loadu_pd(w0.add(o)), v0, t);
                let t = _mm512_fmadd_pd(_mm512_loadu_pd(w2.add(o)), v2, t);
                let t = _mm512_fmadd_pd(_mm512_loadu_pd(w3.add(o)), v3, t);
                *s = _mm512_add_pd(*s, t);
            }
            tail.rows(k, 4, v);
            k += 4;
        }
        if n & 2 != 0 {
            let (w0, w1) = (wp.add(k * m), wp.add((k + 1) * m));
            let (v0, v1) = (_mm512_set1_pd(v[k]), _mm512_set1_pd(v[k + 1]));
            for (b, s) in acc.iter_mut().enumerate() {
                let o = 8 * b;
                let t = _mm512_mul_pd(_mm512_loadu_pd(w1.add(o)), v1);
                let t = _mm512_fmadd_pd(_mm512_loadu_pd(w0.add(o)), v0, t);
                *s = _mm512_add_pd(*s, t);
            }
            tail.rows(k, 2, v);
            k += 2;
        }
        if n & 1 != 0 {
            tail.rows(k, 1, v);
            let w0 = wp.add(k * m);
            let v0 = _mm512_set1_pd(v[k]);
            for (b, s) in acc.iter_mut().enumerate() {
                *s = _mm512_add_pd(*s, _mm512_mul_pd(_mm512_loadu_pd(w0.add(8 * b)), v0));
            }
        }
        for (b, s) in acc.iter().enumerate() {
            _mm512_storeu_pd(yp.add(8 * b), *s);
        }
    }
    8 * V
}

/// The whole of `sum_outer_rev` for `cols >= 8`: two rows at a time, up to 64 columns in
/// registers (see `outer_rows`), the last 8-column vector masked. Products rounded, then
/// added, in decreasing `t`.
///
/// # Safety
/// The CPU must support AVX-512F.
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
    assert!(
        cols >= 8
            && out.len() >= rows * cols
            && left.len() >= steps * rows
            && right.len() >= steps * cols
    );
    let (op, lp, rp) = (out.as_mut_ptr(), left.as_ptr(), right.as_ptr());
    // SAFETY: rows i < rows, columns j < cols and steps t < steps stay inside the slices;
    // `fuse.w` is a distinct (rows, cols) matrix.
    unsafe {
        let mut i = 0;
        while i + 2 <= rows {
            let f = fuse.map(|f| Fuse {
                w: f.w.add(i * cols),
                ..f
            });
            outer_rows::<2>(op.add(i * cols), lp.add(i), rows, cols, rp, steps, f);
            i += 2;
        }
        if i < rows {
            let f = fuse.map(|f| Fuse {
                w: f.w.add(i * cols),
                ..f
            });
            outer_rows::<1>(op.add(i * cols), lp.add(i), rows, cols, rp, steps, f);
        }
    }
}

/// Clip the gradients `g` (NaN kept), store them at `gp`, and add `neg_lr ·` them to the
/// weights at `wp`, all in the lanes of `wmask` only.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn fuse8(g: __m512d, gp: *mut f64, wp: *mut f64, f: Fuse, wmask: __mmask8) {
    let (hi, lo) = (_mm512_set1_pd(f.max), _mm512_set1_pd(-f.max));
    let d = _mm512_mask_blend_pd(_mm512_cmp_pd_mask::<_CMP_GT_OQ>(g, hi), g, hi);
    let d = _mm512_mask_blend_pd(_mm512_cmp_pd_mask::<_CMP_LT_OQ>(d, lo), d, lo);
    // SAFETY: the caller guarantees the lanes of `wmask` at gp and wp.
    unsafe {
        _mm512_mask_storeu_pd(gp, wmask, d);
        let w = _mm512_maskz_loadu_pd(wmask, wp);
        _mm512_mask_storeu_pd(
            wp,
            wmask,
            _mm512_add_pd(w, _mm512_mul_pd(_mm512_set1_pd(f.neg_lr), d)),
        );
    }
}

/// `R` rows of `sum_outer_rev`: the columns as 8-lane vectors (the last one masked when
/// `cols` is not a multiple of 8), taken in groups of up to eight vectors whose `R × N`
/// accumulators all stay in registers across `t`, so there are always enough independent
/// add chains to keep both FMA ports busy. (A last vector overlapping the one before it,
/// as this used to be, makes the fused update load weights that were just stored by a
/// partly overlapping store: a store-forwarding stall per row.)
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn outer_rows<const R: usize>(
    op: *mut f64,
    lp: *const f64,
    stride: usize,
    cols: usize,
    rp: *const f64,
    steps: usize,
    fuse: Option<Fuse>,
) {
    let nvec = cols.div_ceil(8);
    let mut v0 = 0;
    // SAFETY: as in `sum_outer_rev`.
    unsafe {
        while v0 < nvec {
            let n = (nvec - v0).min(8);
            let args = (op, lp, stride, cols, rp, steps, fuse, v0);
            match n {
                1 => outer_group::<R, 1>(args),
                2 => outer_group::<R, 2>(args),
                3 => outer_group::<R, 3>(args),
                4 => outer_group::<R, 4>(args),
                5 => outer_group::<R, 5>(args),
                6 => outer_group::<R, 6>(args),
                7 => outer_group::<R, 7>(args),
                _ => outer_group::<R, 8>(args),
            }
            v0 += n;
        }
    }
}

type OuterArgs = (
    *mut f64,
    *const f64,
    usize,
    usize,
    *const f64,
    usize,
    Option<Fuse>,
    usize,
);

/// Column vectors `v0..v0+N` of `R` rows (see `outer_rows`): vector `v` covers columns
/// `8v .. min(8v + 8, cols)`, its lanes past `cols` masked off.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn outer_group<const R: usize, const N: usize>(
    (op, lp, stride, cols, rp, steps, fuse, v0): OuterArgs,
) {
    let mut start = [0usize; N];
    let mut wmask = [0xffu8; N];
    for (q, (b, m)) in start.iter_mut().zip(wmask.iter_mut()).enumerate() {
        *b = 8 * (v0 + q);
        *m = mask8(cols - *b);
    }
    // SAFETY: as in `sum_outer_rev`: every lane loaded or stored lies in columns 0..cols.
    unsafe {
        let mut acc = [[_mm512_setzero_pd(); N]; R];
        for t in (0..steps).rev() {
            let row = rp.add(t * cols);
            let mut rv = [_mm512_setzero_pd(); N];
            for ((r, &b), &m) in rv.iter_mut().zip(&start).zip(&wmask) {
                *r = _mm512_maskz_loadu_pd(m, row.add(b));
            }
            for (q, accq) in acc.iter_mut().enumerate() {
                let d = _mm512_set1_pd(*lp.add(t * stride + q));
                for (s, &r) in accq.iter_mut().zip(&rv) {
                    *s = _mm512_add_pd(*s, _mm512_mul_pd(d, r));
                }
            }
        }
        for (q, accq) in acc.iter().enumerate() {
            for ((s, &b), &m) in accq.iter().zip(&start).zip(&wmask) {
                let o = op.add(q * cols + b);
                match fuse {
                    Some(f) => fuse8(*s, o, f.w.add(q * cols + b), f, m),
                    None => _mm512_mask_storeu_pd(o, m, *s),
                }
            }
        }
    }
}

/// Element-wise clip to `[−max, max]` (NaN kept) then `w += neg_lr · d`.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
pub unsafe fn clip_update(w: &mut [f64], dw: &mut [f64], max_value: f64, neg_lr: f64) {
    let n = w.len().min(dw.len());
    let (hi, lo, lr) = (
        _mm512_set1_pd(max_value),
        _mm512_set1_pd(-max_value),
        _mm512_set1_pd(neg_lr),
    );
    let mut i = 0;
    while i < n {
        let mask = mask8(n - i);
        // SAFETY: the masked loads/stores touch only lanes below n - i.
        unsafe {
            let d = _mm512_maskz_loadu_pd(mask, dw.as_ptr().add(i));
            let d = _mm512_mask_blend_pd(_mm512_cmp_pd_mask::<_CMP_GT_OQ>(d, hi), d, hi);
            let d = _mm512_mask_blend_pd(_mm512_cmp_pd_mask::<_CMP_LT_OQ>(d, lo), d, lo);
            _mm512_mask_storeu_pd(dw.as_mut_ptr().add(i), mask, d);
            let wv = _mm512_maskz_loadu_pd(mask, w.as_ptr().add(i));
            _mm512_mask_storeu_pd(
                w.as_mut_ptr().add(i),
                mask,
                _mm512_add_pd(wv, _mm512_mul_pd(lr, d)),
            );
        }
        i += 8;
    }
}
