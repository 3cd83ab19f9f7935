//! AVX2+FMA forms of the numpy-order kernels: the same operations per element as the portable
//! code (lane `l` of a register is the portable code's `acc[l]`), so the same bits.

use std::arch::x86_64::*;

use super::Fuse;

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

/// The `m % 4` last outputs of `gemv_n` (plain FMA chains over the rows, in row order),
/// advanced inside the first block's row loop so their latency hides behind it. The
/// chains are held by value (and indexed with constants only) so that, once the block is
/// inlined, they live in registers rather than going through memory at every row.
#[derive(Clone, Copy)]
pub struct Tail {
    /// `w` at column `m & !3` of row 0 (row stride `m`).
    pub p: *const f64,
    pub m: usize,
    /// Number of chains (0 when this block does not carry them).
    pub len: usize,
    pub acc: [f64; 3],
}

impl Tail {
    /// No chains (for the blocks after the first).
    pub const fn none() -> Tail {
        Tail {
            p: std::ptr::null(),
            m: 0,
            len: 0,
            acc: [0.0; 3],
        }
    }

    /// Rows `k..k+cnt` of every chain.
    #[inline(always)]
    pub unsafe fn rows(&mut self, k: usize, cnt: usize, v: &[f64]) {
        if self.len == 0 {
            return;
        }
        let [mut a0, mut a1, mut a2] = self.acc;
        // SAFETY: the caller (gemv_n) made p and m valid for rows < n, columns < len.
        unsafe {
            for (kk, &vk) in v.iter().enumerate().skip(k).take(cnt) {
                let row = self.p.add(kk * self.m);
                a0 = (*row).mul_add(vk, a0);
                if self.len > 1 {
                    a1 = (*row.add(1)).mul_add(vk, a1);
                }
                if self.len > 2 {
                    a2 = (*row.add(2)).mul_add(vk, a2);
                }
            }
        }
        self.acc = [a0, a1, a2];
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
            gemv_n_block::<4>(wp.add(i), n, m, v, yp.add(i), tail);
            i += 16;
        } else if i < i1 {
            gemv_n_block::<1>(wp.add(i), n, m, v, yp.add(i), tail);
            i += 4;
        }
        while i + 16 <= i1 {
            gemv_n_block::<4>(wp.add(i), n, m, v, yp.add(i), &mut Tail::none());
            i += 16;
        }
        while i < i1 {
            gemv_n_block::<1>(wp.add(i), n, m, v, yp.add(i), &mut Tail::none());
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

/// `4·V` outputs of `gemv_n` at `yp`, reading columns at `wp` (row stride `m`).
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn gemv_n_block<const V: usize>(
    wp: *const f64,
    n: usize,
    m: usize,
    v: &[f64],
    yp: *mut f64,
    tail: &mut Tail,
) {
    let mut acc = [_mm256_setzero_pd(); V];
    let mut k = 0;
    // SAFETY: the caller guarantees n rows of 4·V columns at wp and 4·V outputs at yp.
    unsafe {
        while k + 4 <= n {
            let (w0, w1, w2, w3) = (
                wp.add(k * m),
                wp.add((k + 1) * m),
                wp.add((k + 2) * m),
                wp.add((k + 3) * m),
            );
            let (v0, v1) = (_mm256_set1_pd(v[k]), _mm256_set1_pd(v[k + 1]));
            let (v2, v3) = (_mm256_set1_pd(v[k + 2]), _mm256_set1_pd(v[k + 3]));
            for (b, s) in acc.iter_mut().enumerate() {
                let o = 4 * b;
                let t = _mm256_mul_pd(_mm256_loadu_pd(w1.add(o)), v1);
                let t = _mm256_fmadd_pd(_mm256_loadu_pd(w0.add(o)), v0, t);
                let t = _mm256_fmadd_pd(_mm256_loadu_pd(w2.add(o)), v2, t);
                let t = _mm256_fmadd_pd(_mm256_loadu_pd(w3.add(o)), v3, t);
                *s = _mm256_add_pd(*s, t);
            }
            tail.rows(k, 4, v);
            k += 4;
        }
        if n & 2 != 0 {
            let (w0, w1) = (wp.add(k * m), wp.add((k + 1) * m));
            let (v0, v1) = (_mm256_set1_pd(v[k]), _mm256_set1_pd(v[k + 1]));
            for (b, s) in acc.iter_mut().enumerate() {
                let o = 4 * b;
                let t = _mm256_mul_pd(_mm256_loadu_pd(w1.add(o)), v1);
                let t = _mm256_fmadd_pd(_mm256_loadu_pd(w0.add(o)), v0, t);
                *s = _mm256_add_pd(*s, t);
            }
            tail.rows(k, 2, v);
            k += 2;
        }
        if n & 1 != 0 {
            tail.rows(k, 1, v);
            let w0 = wp.add(k * m);
            let v0 = _mm256_set1_pd(v[k]);
            for (b, s) in acc.iter_mut().enumerate() {
                *s = _mm256_add_pd(*s, _mm256_mul_pd(_mm256_loadu_pd(w0.add(4 * b)), v0));
            }
        }
        for (b, s) in acc.iter().enumerate() {
            _mm256_storeu_pd(yp.add(4 * b), *s);
        }
    }
}

/// The whole of `sum_outer_rev` for `cols >= 4`: two rows at a time, 16 columns in
/// registers, then 4-column blocks; a last partial block is recomputed as the 4-column
/// block ending at `cols` (same values on the overlap). Each product is rounded, then
/// added (no FMA), in decreasing `t`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
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
    assert!(
        cols >= 4
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

/// Clip the four gradients at `gp`, store them back, and add `neg_lr ·` them to the
/// weights at `wp`, skipping the first `skip` lanes (already updated by an earlier block).
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn fuse4(gp: *mut f64, wp: *mut f64, f: Fuse, skip: usize) {
    // SAFETY: the caller guarantees four elements at gp and wp.
    unsafe {
        let (hi, lo) = (_mm256_set1_pd(f.max), _mm256_set1_pd(-f.max));
        let d = _mm256_loadu_pd(gp);
        let d = _mm256_blendv_pd(d, hi, _mm256_cmp_pd::<_CMP_GT_OQ>(d, hi));
        let d = _mm256_blendv_pd(d, lo, _mm256_cmp_pd::<_CMP_LT_OQ>(d, lo));
        _mm256_storeu_pd(gp, d);
        if skip == 0 {
            let w = _mm256_loadu_pd(wp);
            _mm256_storeu_pd(
                wp,
                _mm256_add_pd(w, _mm256_mul_pd(_mm256_set1_pd(f.neg_lr), d)),
            );
        } else {
            for l in skip..4 {
                *wp.add(l) += f.neg_lr * *gp.add(l);
            }
        }
    }
}

/// `R` consecutive rows of `sum_outer_rev` (output rows at `op`, left values at
/// `lp[t·stride + q]`).
#[target_feature(enable = "avx2,fma")]
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
    // SAFETY: as in `sum_outer_rev`.
    unsafe {
        let mut j0 = 0;
        while j0 + 16 <= cols {
            let mut acc = [[_mm256_setzero_pd(); 4]; R];
            for t in (0..steps).rev() {
                let p = rp.add(t * cols + j0);
                let rv = [
                    _mm256_loadu_pd(p),
                    _mm256_loadu_pd(p.add(4)),
                    _mm256_loadu_pd(p.add(8)),
                    _mm256_loadu_pd(p.add(12)),
                ];
                for (q, accq) in acc.iter_mut().enumerate() {
                    let d = _mm256_set1_pd(*lp.add(t * stride + q));
                    for (s, r) in accq.iter_mut().zip(rv) {
                        *s = _mm256_add_pd(*s, _mm256_mul_pd(d, r));
                    }
                }
            }
            for (q, accq) in acc.iter().enumerate() {
                let o = op.add(q * cols + j0);
                for (b, s) in accq.iter().enumerate() {
                    _mm256_storeu_pd(o.add(4 * b), *s);
                    if let Some(f) = fuse {
                        fuse4(o.add(4 * b), f.w.add(q * cols + j0 + 4 * b), f, 0);
                    }
                }
            }
            j0 += 16;
        }
        while j0 < cols {
            let b = j0.min(cols - 4);
            let mut acc = [_mm256_setzero_pd(); R];
            for t in (0..steps).rev() {
                let r = _mm256_loadu_pd(rp.add(t * cols + b));
                for (q, s) in acc.iter_mut().enumerate() {
                    *s = _mm256_add_pd(
                        *s,
                        _mm256_mul_pd(_mm256_set1_pd(*lp.add(t * stride + q)), r),
                    );
                }
            }
            for (q, s) in acc.iter().enumerate() {
                let o = op.add(q * cols + b);
                _mm256_storeu_pd(o, *s);
                if let Some(f) = fuse {
                    // columns b..j0 were done by the previous block: clipping them again
                    // gives the same values, but their weights must not move twice
                    fuse4(o, f.w.add(q * cols + b), f, j0 - b);
                }
            }
            j0 = b + 4;
        }
    }
}
