//! The numpy-order kernels whose algorithm is the same at every SIMD width, written once over
//! [`Lanes`]: `gemv_n`'s register blocks, the outer-product sums of the gradients with their
//! fused clip + update, and the element-wise clip + update. `avx2.rs` instantiates them with
//! 4-lane `Ymm`, `avx512.rs` with 8-lane `Zmm`. Every output element goes through the portable
//! code's operations in the portable code's order, so the width changes only the speed.
//!
//! Each function is `#[inline(always)]` and only called from functions compiled for the lanes
//! type's target features (which the dispatcher runs only after detecting them).

use super::Fuse;
use crate::math::lanes::{Lanes, MaskedLanes};

/// The `m % 4` last outputs of `gemv_n` (plain FMA chains over the rows, in row order),
/// advanced inside the first block's row loop so their latency hides behind it. The
/// chains are held by value (and indexed with constants only) so that, once the block is
/// inlined, they live in registers rather than going through memory at every row.
#[derive(Clone, Copy)]
pub(super) struct Tail {
    /// `w` at column `m & !3` of row 0 (row stride `m`).
    pub(super) p: *const f64,
    pub(super) m: usize,
    /// Number of chains (0 when this block does not carry them).
    pub(super) len: usize,
    pub(super) acc: [f64; 3],
}

impl Tail {
    /// No chains (for the blocks after the first).
    pub(super) const fn none() -> Tail {
        Tail {
            p: std::ptr::null(),
            m: 0,
            len: 0,
            acc: [0.0; 3],
        }
    }

    /// Rows `k..k+cnt` of every chain.
    #[inline(always)]
    unsafe fn rows(&mut self, k: usize, cnt: usize, v: &[f64]) {
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

/// `WIDTH·V` outputs of `gemv_n` at `yp`, reading columns at `wp` (row stride `m`): rows four
/// at a time as `fma(w3,v3, fma(w2,v2, fma(w0,v0, w1·v1)))` added to the output, then a pair,
/// then a single row. Returns the number of outputs done.
///
/// # Safety
/// `n` rows of `WIDTH·V` columns at `wp`, `WIDTH·V` outputs at `yp`; the CPU runs `S`.
#[inline(always)]
pub(super) unsafe fn gemv_n_block<S: Lanes, const V: usize>(
    wp: *const f64,
    n: usize,
    m: usize,
    v: &[f64],
    yp: *mut f64,
    tail: &mut Tail,
) -> usize {
    let w = S::WIDTH;
    let mut acc = [S::zero(); V];
    let mut k = 0;
    // SAFETY: as the caller guarantees.
    unsafe {
        while k + 4 <= n {
            let (w0, w1, w2, w3) = (
                wp.add(k * m),
                wp.add((k + 1) * m),
                wp.add((k + 2) * m),
                wp.add((k + 3) * m),
            );
            let (v0, v1) = (S::splat(v[k]), S::splat(v[k + 1]));
            let (v2, v3) = (S::splat(v[k + 2]), S::splat(v[k + 3]));
            for (b, s) in acc.iter_mut().enumerate() {
                let o = w * b;
                let t = S::loadu(w1.add(o)).mul(v1);
                let t = S::loadu(w0.add(o)).mul_add(v0, t);
                let t = S::loadu(w2.add(o)).mul_add(v2, t);
                let t = S::loadu(w3.add(o)).mul_add(v3, t);
                *s = s.add(t);
            }
            tail.rows(k, 4, v);
            k += 4;
        }
        if n & 2 != 0 {
            let (w0, w1) = (wp.add(k * m), wp.add((k + 1) * m));
            let (v0, v1) = (S::splat(v[k]), S::splat(v[k + 1]));
            for (b, s) in acc.iter_mut().enumerate() {
                let o = w * b;
                let t = S::loadu(w1.add(o)).mul(v1);
                let t = S::loadu(w0.add(o)).mul_add(v0, t);
                *s = s.add(t);
            }
            tail.rows(k, 2, v);
            k += 2;
        }
        if n & 1 != 0 {
            tail.rows(k, 1, v);
            let w0 = wp.add(k * m);
            let v0 = S::splat(v[k]);
            for (b, s) in acc.iter_mut().enumerate() {
                *s = s.add(S::loadu(w0.add(w * b)).mul(v0));
            }
        }
        for (b, s) in acc.iter().enumerate() {
            s.storeu(yp.add(w * b));
        }
    }
    w * V
}

/// `out[i][j] = Σ_{t = steps−1 … 0} left[t][i] · right[t][j]` (`left` row stride `rows`,
/// `right` row stride `cols`): each product rounded, then added (no FMA), in decreasing `t`;
/// with `fuse`, each sum is then clipped, stored and applied to its weight. Two rows at a
/// time, the columns as `WIDTH`-lane vectors (the last one masked) in groups of up to `G`
/// vectors whose accumulators all stay in registers across `t`.
///
/// # Safety
/// The slices hold `rows·cols`, `steps·rows` and `steps·cols` values (asserted); `fuse.w` is
/// a distinct `(rows, cols)` matrix; the CPU runs `S`.
#[inline(always)]
pub(super) unsafe fn sum_outer_rev<S: MaskedLanes, const G: usize>(
    out: &mut [f64],
    rows: usize,
    cols: usize,
    left: &[f64],
    right: &[f64],
    steps: usize,
    fuse: Option<Fuse>,
) {
    assert!(out.len() >= rows * cols && left.len() >= steps * rows && right.len() >= steps * cols);
    let (op, lp, rp) = (out.as_mut_ptr(), left.as_ptr(), right.as_ptr());
    // SAFETY: rows i < rows, columns j < cols and steps t < steps stay inside the slices.
    unsafe {
        let mut i = 0;
        while i + 2 <= rows {
            let f = fuse.map(|f| Fuse {
                w: f.w.add(i * cols),
                ..f
            });
            outer_rows::<S, 2, G>(op.add(i * cols), lp.add(i), rows, cols, rp, steps, f);
            i += 2;
        }
        if i < rows {
            let f = fuse.map(|f| Fuse {
                w: f.w.add(i * cols),
                ..f
            });
            outer_rows::<S, 1, G>(op.add(i * cols), lp.add(i), rows, cols, rp, steps, f);
        }
    }
}

/// `R` rows of `sum_outer_rev` (output rows at `op`, left values at `lp[t·stride + q]`), the
/// column vectors in groups of up to `G`, so there are always enough independent add chains
/// to keep the FMA ports busy. (A last vector overlapping the one before it, rather than
/// masked, would make the fused update load weights just stored by a partly overlapping
/// store: a store-forwarding stall per row.)
#[inline(always)]
unsafe fn outer_rows<S: MaskedLanes, const R: usize, const G: usize>(
    op: *mut f64,
    lp: *const f64,
    stride: usize,
    cols: usize,
    rp: *const f64,
    steps: usize,
    fuse: Option<Fuse>,
) {
    let nvec = cols.div_ceil(S::WIDTH);
    let mut v0 = 0;
    // SAFETY: as in `sum_outer_rev`.
    unsafe {
        while v0 < nvec {
            let n = (nvec - v0).min(G);
            let args = (op, lp, stride, cols, rp, steps, fuse, v0);
            // only the row's last vector can be partial (then masked)
            let partial = v0 + n == nvec && !cols.is_multiple_of(S::WIDTH);
            match n {
                1 => outer_group_of::<S, R, 1>(args, partial),
                2 => outer_group_of::<S, R, 2>(args, partial),
                3 => outer_group_of::<S, R, 3>(args, partial),
                4 => outer_group_of::<S, R, 4>(args, partial),
                5 => outer_group_of::<S, R, 5>(args, partial),
                6 => outer_group_of::<S, R, 6>(args, partial),
                7 => outer_group_of::<S, R, 7>(args, partial),
                _ => outer_group_of::<S, R, 8>(args, partial),
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

/// `outer_group` with its last vector masked or not.
#[inline(always)]
unsafe fn outer_group_of<S: MaskedLanes, const R: usize, const N: usize>(
    args: OuterArgs,
    partial: bool,
) {
    // SAFETY: forwarded.
    unsafe {
        if partial {
            outer_group::<S, R, N, true>(args)
        } else {
            outer_group::<S, R, N, false>(args)
        }
    }
}

/// Column vectors `v0..v0+N` of `R` rows (see `outer_rows`): vector `v` covers columns
/// `WIDTH·v .. min(WIDTH·(v + 1), cols)`; with `PARTIAL`, the last one has lanes past `cols`,
/// masked off. (The full vectors use plain loads and stores: AVX2's masked ones are slower.)
#[inline(always)]
unsafe fn outer_group<S: MaskedLanes, const R: usize, const N: usize, const PARTIAL: bool>(
    (op, lp, stride, cols, rp, steps, fuse, v0): OuterArgs,
) {
    let start: [usize; N] = std::array::from_fn(|q| S::WIDTH * (v0 + q));
    let mask: [Option<S::Mask>; N] =
        std::array::from_fn(|q| (PARTIAL && q + 1 == N).then(|| S::first(cols - start[q])));
    // SAFETY: as in `sum_outer_rev`: every lane loaded or stored lies in columns 0..cols.
    unsafe {
        let mut acc = [[S::zero(); N]; R];
        for t in (0..steps).rev() {
            let row = rp.add(t * cols);
            let rv: [S; N] = std::array::from_fn(|q| load(row.add(start[q]), mask[q]));
            for (q, accq) in acc.iter_mut().enumerate() {
                let d = S::splat(*lp.add(t * stride + q));
                for (s, &r) in accq.iter_mut().zip(&rv) {
                    *s = s.add(d.mul(r));
                }
            }
        }
        for (q, accq) in acc.iter().enumerate() {
            for ((s, &b), &m) in accq.iter().zip(&start).zip(&mask) {
                let o = op.add(q * cols + b);
                match fuse {
                    Some(f) => fuse_lanes(*s, o, f.w.add(q * cols + b), f, m),
                    None => store(*s, o, m),
                }
            }
        }
    }
}

/// `WIDTH` values at `p`, or the lanes of `mask` only.
#[inline(always)]
unsafe fn load<S: MaskedLanes>(p: *const f64, mask: Option<S::Mask>) -> S {
    // SAFETY: the caller guarantees the lanes at p.
    unsafe {
        match mask {
            None => S::loadu(p),
            Some(m) => S::load_masked(p, m),
        }
    }
}

/// Store `WIDTH` values at `p`, or the lanes of `mask` only.
#[inline(always)]
unsafe fn store<S: MaskedLanes>(v: S, p: *mut f64, mask: Option<S::Mask>) {
    // SAFETY: the caller guarantees the lanes at p.
    unsafe {
        match mask {
            None => v.storeu(p),
            Some(m) => v.store_masked(p, m),
        }
    }
}

/// Clip the gradients `g` to `[−max, max]` (NaN kept: `min`/`max` return their second operand
/// for a NaN, like the portable `clip_value`'s comparisons), store them at `gp`, and add
/// `neg_lr ·` them to the weights at `wp`, in the lanes of `mask` only.
#[inline(always)]
unsafe fn fuse_lanes<S: MaskedLanes>(
    g: S,
    gp: *mut f64,
    wp: *mut f64,
    f: Fuse,
    mask: Option<S::Mask>,
) {
    let d = S::splat(-f.max).max(S::splat(f.max).min(g));
    // SAFETY: the caller guarantees the lanes of `mask` at gp and wp.
    unsafe {
        store(d, gp, mask);
        let w = load::<S>(wp, mask);
        store(w.add(S::splat(f.neg_lr).mul(d)), wp, mask);
    }
}

/// Element-wise clip to `[−max, max]` (NaN kept), stored back in `dw`, then `w += neg_lr · d`.
///
/// # Safety
/// The CPU runs `S`.
#[inline(always)]
pub(super) unsafe fn clip_update<S: MaskedLanes>(
    w: &mut [f64],
    dw: &mut [f64],
    max_value: f64,
    neg_lr: f64,
) {
    let n = w.len().min(dw.len());
    let f = Fuse {
        w: w.as_mut_ptr(),
        max: max_value,
        neg_lr,
    };
    let mut i = 0;
    while i < n {
        // the last vector masked when partial
        let mask = (n - i < S::WIDTH).then(|| S::first(n - i));
        // SAFETY: the loads/stores touch only lanes below n - i.
        unsafe {
            let g = load::<S>(dw.as_ptr().add(i), mask);
            fuse_lanes(g, dw.as_mut_ptr().add(i), f.w.add(i), f, mask);
        }
        i += S::WIDTH;
    }
}
