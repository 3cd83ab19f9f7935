//! AVX2+FMA forms of the numpy-order kernels: the same operations per element as the portable
//! code (lane `l` of a register is the portable code's `acc[l]`), so the same bits.

use std::arch::x86_64::*;

use super::simd::{self, Tail};
use super::Fuse;
use crate::math::lanes::Ymm;

/// `(l0 + l2) + (l1 + l3)` of a 4-lane register, as OpenBLAS reduces its accumulators.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn reduce(v: __m256d) -> f64 {
    let s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
    _mm_cvtsd_f64(_mm_hadd_pd(s, s))
}

/// The whole of `gemv_t` (see the portable version for the order of operations).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn gemv_t(a: &[f64], rows: usize, m: usize, x: &[f64], y: &mut [f64]) {
    assert!(a.len() >= rows * m && x.len() >= m && y.len() >= rows);
    let nb = m & !3;
    let blocks = rows & !3;
    let (ap, xp, yp) = (a.as_ptr(), x.as_ptr(), y.as_mut_ptr());
    // SAFETY: every row r < rows and column c < m read below is inside `a` (asserted),
    // every column c < m inside `x`, every output r < rows inside `y`.
    unsafe {
        let mut r = 0;
        while r + 8 <= blocks {
            rows_fma::<8>(ap.add(r * m), m, nb, xp, yp.add(r));
            r += 8;
        }
        if r < blocks {
            rows_fma::<4>(ap.add(r * m), m, nb, xp, yp.add(r));
            r += 4;
        }
        if rows & 2 != 0 {
            // OpenBLAS's SSE2 two-row kernel: lanes are even and odd columns
            for q in 0..2 {
                let p = ap.add((r + q) * m);
                let mut s = _mm_setzero_pd();
                let mut c = 0;
                while c < nb {
                    s = _mm_add_pd(
                        s,
                        _mm_mul_pd(_mm_loadu_pd(p.add(c)), _mm_loadu_pd(xp.add(c))),
                    );
                    c += 2;
                }
                *yp.add(r + q) = _mm_cvtsd_f64(_mm_hadd_pd(s, s));
            }
            r += 2;
        }
        if rows & 1 != 0 {
            // OpenBLAS's SSE2 one-row kernel: columns ≡ 0,1 and ≡ 2,3 (mod 4)
            let p = ap.add(r * m);
            let (mut s01, mut s23) = (_mm_setzero_pd(), _mm_setzero_pd());
            let mut c = 0;
            while c < nb {
                s01 = _mm_add_pd(
                    s01,
                    _mm_mul_pd(_mm_loadu_pd(p.add(c)), _mm_loadu_pd(xp.add(c))),
                );
                s23 = _mm_add_pd(
                    s23,
                    _mm_mul_pd(_mm_loadu_pd(p.add(c + 2)), _mm_loadu_pd(xp.add(c + 2))),
                );
                c += 4;
            }
            let s = _mm_add_pd(s01, s23);
            *yp.add(r) = _mm_cvtsd_f64(_mm_hadd_pd(s, s));
        }
        // the m % 4 remainder columns
        match m & 3 {
            1 => {
                let x0 = *xp.add(nb);
                for r in 0..rows {
                    let yr = yp.add(r);
                    *yr = (*ap.add(r * m + nb)).mul_add(x0, *yr);
                }
            }
            2 => {
                let (x0, x1) = (*xp.add(nb), *xp.add(nb + 1));
                for r in 0..rows {
                    let p = ap.add(r * m + nb);
                    *yp.add(r) += (*p).mul_add(x0, *p.add(1) * x1);
                }
            }
            3 => {
                let (x0, x1, x2) = (*xp.add(nb), *xp.add(nb + 1), *xp.add(nb + 2));
                for r in 0..rows {
                    let p = ap.add(r * m + nb);
                    let t = (*p).mul_add(x0, *p.add(1) * x1);
                    *yp.add(r) += (*p.add(2)).mul_add(x2, t);
                }
            }
            _ => {}
        }
    }
}

/// `R` rows starting at `p` (row stride `m`) over columns `0..nb`, one FMA register per
/// row, reduced as OpenBLAS does, written to `y[0..R]`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn rows_fma<const R: usize>(
    p: *const f64,
    m: usize,
    nb: usize,
    xp: *const f64,
    yp: *mut f64,
) {
    let mut acc = [_mm256_setzero_pd(); R];
    // SAFETY: the caller guarantees R rows of nb columns at p, nb values at xp, R at yp.
    unsafe {
        let mut c = 0;
        while c < nb {
            let xv = _mm256_loadu_pd(xp.add(c));
            for (q, s) in acc.iter_mut().enumerate() {
                *s = _mm256_fmadd_pd(_mm256_loadu_pd(p.add(q * m + c)), xv, *s);
            }
            c += 4;
        }
        for (q, s) in acc.into_iter().enumerate() {
            *yp.add(q) = reduce(s);
        }
    }
}

/// The whole of `gemv_n`: the `m & !3` leading outputs in register blocks, then the
/// `m % 4` last ones as FMA chains over all rows, side by side.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn gemv_n(w: &[f64], n: usize, m: usize, v: &[f64], y: &mut [f64]) {
    assert!(w.len() >= n * m && v.len() >= n && y.len() >= m);
    let nb = m & !3;
    if nb == 0 {
        // SAFETY: forwarded (bounds checked there).
        unsafe { gemv_n_tail(w, n, m, v, y) };
        return;
    }
    // SAFETY: column nb..m of every row is inside `w`.
    let mut tail = Tail {
        p: unsafe { w.as_ptr().add(nb) },
        m,
        len: m - nb,
        acc: [0.0; 3],
    };
    // SAFETY: forwarded (bounds checked there).
    unsafe { gemv_n_range(w, n, m, v, y, 0, nb, &mut tail) };
    y[nb..m].copy_from_slice(&tail.acc[..m - nb]);
}

/// Outputs `i0..i1` of `gemv_n` (`i1 − i0` a multiple of 4, `i1 <= m & !3`).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemv_n_range(
    w: &[f64],
    n: usize,
    m: usize,
    v: &[f64],
    y: &mut [f64],
    i0: usize,
    i1: usize,
    tail: &mut Tail,
) {
    assert!(
        w.len() >= n * m
            && v.len() >= n
            && y.len() >= m
            && i1 <= (m & !3)
            && (i1 - i0).is_multiple_of(4)
    );
    let (wp, yp) = (w.as_ptr(), y.as_mut_ptr());
    // SAFETY: rows k < n and columns i < i1 <= m are inside `w`, outputs inside `y`.
    unsafe {
        let mut i = i0;
        // the tail is carried by the first block only
        if i + 16 <= i1 {
            simd::gemv_n_block::<Ymm, 4>(wp.add(i), n, m, v, yp.add(i), tail);
            i += 16;
        } else if i < i1 {
            simd::gemv_n_block::<Ymm, 1>(wp.add(i), n, m, v, yp.add(i), tail);
            i += 4;
        }
        while i + 16 <= i1 {
            simd::gemv_n_block::<Ymm, 4>(wp.add(i), n, m, v, yp.add(i), &mut Tail::none());
            i += 16;
        }
        while i < i1 {
            simd::gemv_n_block::<Ymm, 1>(wp.add(i), n, m, v, yp.add(i), &mut Tail::none());
            i += 4;
        }
    }
}

/// The `m % 4` last outputs of `gemv_n`: plain FMA chains over all rows, side by side.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn gemv_n_tail(w: &[f64], n: usize, m: usize, v: &[f64], y: &mut [f64]) {
    assert!(w.len() >= n * m && v.len() >= n && y.len() >= m);
    let nb = m & !3;
    let tail = m - nb;
    if tail == 0 {
        return;
    }
    let mut t = [0.0f64; 3];
    for (row, &vk) in w.chunks_exact(m).zip(v).take(n) {
        for (q, tq) in t.iter_mut().enumerate().take(tail) {
            *tq = row[nb + q].mul_add(vk, *tq);
        }
    }
    y[nb..m].copy_from_slice(&t[..tail]);
}

/// The whole of `sum_outer_rev` (see `simd::sum_outer_rev`) with 4-lane vectors in groups of
/// up to four (eight accumulators for two rows, within the sixteen ymm registers).
///
/// # Safety
/// The CPU must support AVX2 and FMA; `fuse.w` is a distinct `(rows, cols)` matrix.
#[target_feature(enable = "avx2,fma")]
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
    unsafe { simd::sum_outer_rev::<Ymm, 4>(out, rows, cols, left, right, steps, fuse) }
}

/// Element-wise clip to `[−max, max]` (NaN kept) then `w += neg_lr · d`, four lanes at a time.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn clip_update(w: &mut [f64], dw: &mut [f64], max_value: f64, neg_lr: f64) {
    // SAFETY: the CPU runs Ymm.
    unsafe { simd::clip_update::<Ymm>(w, dw, max_value, neg_lr) }
}
