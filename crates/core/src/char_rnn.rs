//! The Dinosaurus Island character-level RNN (deeplearning.ai Sequence Models, week 1), with
//! the course's functions and semantics over *index sequences*: a one-hot input is a column
//! pick of `Wax`, and `None` is the course's zero input vector.
//!
//! ```text
//! a⟨t⟩ = tanh(Wax x⟨t⟩ + Waa a⟨t−1⟩ + b)        ŷ⟨t⟩ = softmax(Wya a⟨t⟩ + by)
//! loss = Σ_t −log ŷ⟨t⟩[y⟨t⟩]
//! ```
//!
//! # Exactness
//! Every floating-point operation follows the numpy reference (`bench/dinos/reference.py`)
//! in the same order, so the results are numpy's bit for bit (checked on the whole
//! 35 000-iteration course trace, see `tests/dinos_course.rs`):
//! - `np.dot(W, v)` on a matrix and a column is an OpenBLAS `dgemv`; `gemv_t` and
//!   `gemv_n` reproduce the summation order of its x86-64 kernels (the Haswell/SkylakeX
//!   ones numpy wheels use on AVX2/AVX-512 machines: four strided FMA lanes, 4-row blocks,
//!   the remainder columns folded in last) for dot lengths below 2048, single-threaded
//!   (numpy's BLAS may split gemvs of ≥ 9216 elements over threads);
//! - `np.exp` and `np.tanh` are numpy's own float64 algorithms ([`npy_exp`]: Intel SVML's,
//!   which numpy uses on AVX-512 machines; [`npy_tanh`]: numpy's SIMD tanh), not the C
//!   library's, which differ in the last bit for a few percent of arguments — enough to make
//!   a training run drift from numpy's after ~14 000 iterations;
//! - the outer products of the backward pass are single roundings, added as numpy adds;
//! - `e_x.sum(axis=0)` is numpy's pairwise summation ([`pairwise_sum`]);
//! - `clip` and the SGD update are element-wise, as numpy.
//!
//! Only the loss uses the C library's `ln` (numpy's differs in the last bit at times); it is
//! reported, never fed back.
//!
//! [`crate::fast_step`] runs the same training step with the sums in the fastest order instead
//! (about twice as fast; numpy's trace through iteration 12 000, then last-bit drift).
//!
//! # Layout and speed
//! Parameters are ndarray matrices in the course's shapes (C order). The hot path works on
//! flat slices in a preallocated [`CharRnnWorkspace`] and allocates nothing per character.
//! The backward pass first runs the recurrence (keeping `dy⟨t⟩`, `daraw⟨t⟩`), then forms
//! each gradient element as its sum over `t = T−1 … 0` — numpy's additions in numpy's order,
//! with each gradient row written once — and, under the course's element-wise clip,
//! clips and applies each gradient block as soon as it is formed.
//!
//! The kernels exist at three levels chosen at run time: portable Rust (which defines every
//! result), AVX2+FMA and AVX-512F (x86-64). Every lane of the SIMD versions performs the
//! portable code's operations, so all levels give the same bits (unit-tested); the
//! environment variable `RNNLAB_SIMD=portable|avx2|avx512` caps the level for benchmarks.

use ndarray::Array2;
use rayon::prelude::*;

use crate::error::{CoreError, Result};
use crate::random::RandomState;

/// The course's cap on sampled characters (`counter != 50`).
pub const COURSE_MAX_SAMPLE_LENGTH: usize = 50;
/// The course's element-wise clip value in `optimize`.
pub const COURSE_CLIP: f64 = 5.0;

/// Parameters of the character-level RNN, in the course's shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct CharRnnParams {
    /// Input to hidden, `(n_a, n_x)`.
    pub wax: Array2<f64>,
    /// Hidden to hidden, `(n_a, n_a)`.
    pub waa: Array2<f64>,
    /// Hidden to output, `(n_y, n_a)`.
    pub wya: Array2<f64>,
    /// Hidden bias, `(n_a, 1)`.
    pub b: Array2<f64>,
    /// Output bias, `(n_y, 1)`.
    pub by: Array2<f64>,
}

/// Gradients of the loss with respect to [`CharRnnParams`], same shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct CharRnnGradients {
    /// `(n_a, n_x)`
    pub dwax: Array2<f64>,
    /// `(n_a, n_a)`
    pub dwaa: Array2<f64>,
    /// `(n_y, n_a)`
    pub dwya: Array2<f64>,
    /// `(n_a, 1)`
    pub db: Array2<f64>,
    /// `(n_y, 1)`
    pub dby: Array2<f64>,
}

/// How `optimize` limits the gradients before the update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Clip {
    /// No clipping.
    None,
    /// The course's clip: every element into `[−max, max]`.
    ElementWise(f64),
    /// Scale all gradients together so that their global L2 norm is at most `max`.
    GlobalNorm(f64),
}

impl Clip {
    fn validate(self) -> Result<()> {
        match self {
            Clip::None => Ok(()),
            Clip::ElementWise(v) | Clip::GlobalNorm(v) => check_clip_value(v),
        }
    }
}

/// A finite learning rate (the update is `W − lr·dW`).
pub(crate) fn check_learning_rate(learning_rate: f64) -> Result<()> {
    if !learning_rate.is_finite() {
        return Err(CoreError::invalid(format!(
            "learning_rate: expected a finite number, got {learning_rate}"
        )));
    }
    Ok(())
}

pub(crate) fn check_clip_value(v: f64) -> Result<()> {
    if v.is_nan() || v < 0.0 {
        return Err(CoreError::invalid(format!(
            "clip: max value must be a number >= 0, got {v}"
        )));
    }
    Ok(())
}

fn shape_err(name: &str, expected: (usize, usize), actual: &[usize]) -> CoreError {
    CoreError::ShapeMismatch {
        name: name.to_string(),
        expected: format!("({}, {})", expected.0, expected.1),
        actual: format!("{actual:?}"),
    }
}

/// `a` must be `(rows, cols)` in standard (C) layout.
fn check_matrix(name: &str, a: &Array2<f64>, rows: usize, cols: usize) -> Result<()> {
    if a.dim() != (rows, cols) {
        return Err(shape_err(name, (rows, cols), a.shape()));
    }
    if !a.is_standard_layout() {
        return Err(CoreError::invalid(format!(
            "{name}: expected a C-order (standard layout) array; use .as_standard_layout()"
        )));
    }
    Ok(())
}

/// The flat data of a standard-layout matrix (checked by `check_matrix` beforehand).
fn flat<'a>(name: &str, a: &'a Array2<f64>) -> Result<&'a [f64]> {
    a.as_slice()
        .ok_or_else(|| CoreError::invalid(format!("{name}: expected a C-order array")))
}

fn flat_mut<'a>(name: &str, a: &'a mut Array2<f64>) -> Result<&'a mut [f64]> {
    a.as_slice_mut()
        .ok_or_else(|| CoreError::invalid(format!("{name}: expected a C-order array")))
}

impl CharRnnParams {
    /// Build from matrices, checking shapes and converting to C order.
    pub fn new(
        wax: Array2<f64>,
        waa: Array2<f64>,
        wya: Array2<f64>,
        b: Array2<f64>,
        by: Array2<f64>,
    ) -> Result<Self> {
        let std = |a: Array2<f64>| {
            if a.is_standard_layout() {
                a
            } else {
                a.as_standard_layout().into_owned()
            }
        };
        let p = CharRnnParams {
            wax: std(wax),
            waa: std(waa),
            wya: std(wya),
            b: std(b),
            by: std(by),
        };
        p.validate()?;
        Ok(p)
    }

    /// All-zero parameters.
    pub fn zeros(n_a: usize, n_x: usize, n_y: usize) -> Self {
        CharRnnParams {
            wax: Array2::zeros((n_a, n_x)),
            waa: Array2::zeros((n_a, n_a)),
            wya: Array2::zeros((n_y, n_a)),
            b: Array2::zeros((n_a, 1)),
            by: Array2::zeros((n_y, 1)),
        }
    }

    /// Hidden size.
    pub fn n_a(&self) -> usize {
        self.waa.nrows()
    }
    /// Input (vocabulary) size.
    pub fn n_x(&self) -> usize {
        self.wax.ncols()
    }
    /// Output (vocabulary) size.
    pub fn n_y(&self) -> usize {
        self.wya.nrows()
    }

    /// Check that the five shapes agree, the hidden size is at least 1 and the arrays are C-order.
    pub fn validate(&self) -> Result<()> {
        let (n_a, n_x, n_y) = (self.waa.nrows(), self.wax.ncols(), self.wya.nrows());
        if n_a == 0 || n_x == 0 || n_y == 0 {
            return Err(CoreError::invalid(format!(
                "CharRnnParams: n_a, n_x and n_y must be >= 1, got n_a={n_a}, n_x={n_x}, n_y={n_y}"
            )));
        }
        check_matrix("waa", &self.waa, n_a, n_a)?;
        check_matrix("wax", &self.wax, n_a, n_x)?;
        check_matrix("wya", &self.wya, n_y, n_a)?;
        check_matrix("b", &self.b, n_a, 1)?;
        check_matrix("by", &self.by, n_y, 1)?;
        Ok(())
    }

    fn view(&self) -> Result<ParamsRef<'_>> {
        self.validate()?;
        Ok(ParamsRef {
            wax: flat("wax", &self.wax)?,
            waa: flat("waa", &self.waa)?,
            wya: flat("wya", &self.wya)?,
            b: flat("b", &self.b)?,
            by: flat("by", &self.by)?,
            n_a: self.n_a(),
            n_x: self.n_x(),
            n_y: self.n_y(),
        })
    }
}

impl CharRnnGradients {
    /// Zero gradients for the given sizes.
    pub fn zeros(n_a: usize, n_x: usize, n_y: usize) -> Self {
        CharRnnGradients {
            dwax: Array2::zeros((n_a, n_x)),
            dwaa: Array2::zeros((n_a, n_a)),
            dwya: Array2::zeros((n_y, n_a)),
            db: Array2::zeros((n_a, 1)),
            dby: Array2::zeros((n_y, 1)),
        }
    }

    fn dims(&self) -> (usize, usize, usize) {
        (self.dwaa.nrows(), self.dwax.ncols(), self.dwya.nrows())
    }

    fn validate(&self) -> Result<()> {
        let (n_a, n_x, n_y) = self.dims();
        check_matrix("dwaa", &self.dwaa, n_a, n_a)?;
        check_matrix("dwax", &self.dwax, n_a, n_x)?;
        check_matrix("dwya", &self.dwya, n_y, n_a)?;
        check_matrix("db", &self.db, n_a, 1)?;
        check_matrix("dby", &self.dby, n_y, 1)?;
        Ok(())
    }

    /// The five gradients in the course's order `dWax, dWaa, dWya, db, dby`.
    fn all_mut(&mut self) -> [&mut Array2<f64>; 5] {
        [
            &mut self.dwax,
            &mut self.dwaa,
            &mut self.dwya,
            &mut self.db,
            &mut self.dby,
        ]
    }
}

/// Flat, validated views of the parameters.
#[derive(Clone, Copy)]
struct ParamsRef<'a> {
    wax: &'a [f64], // (n_a, n_x)
    waa: &'a [f64], // (n_a, n_a)
    wya: &'a [f64], // (n_y, n_a)
    b: &'a [f64],   // (n_a,)
    by: &'a [f64],  // (n_y,)
    n_a: usize,
    n_x: usize,
    n_y: usize,
}

// ------------------------------------------------------------------ numpy-order kernels

/// `y = A x` for a C-order `A` of shape `(rows, m)`: `np.dot(A, x)` as OpenBLAS's x86-64
/// `dgemv_t` computes it. Rows in blocks of four use four FMA lanes over the columns
/// `j ≡ l (mod 4)` below `m & !3`, reduced as `(l0 + l2) + (l1 + l3)`; the two- and
/// one-row remainder kernels do the same with separate multiply and add; the last `m % 4`
/// columns are folded in afterwards.
#[inline(always)]
fn gemv_t<const L: u8>(a: &[f64], rows: usize, m: usize, x: &[f64], y: &mut [f64]) {
    let nb = m & !3;
    let x_main = &x[..nb];
    #[cfg(target_arch = "x86_64")]
    if L >= AVX2 {
        // SAFETY: L >= AVX2 is only instantiated inside functions compiled with (at least)
        // avx2+fma, which `dispatch!` calls only after run-time detection of the features.
        unsafe { avx::gemv_t(a, rows, m, x, y) };
        return;
    }
    let blocks = rows & !3;
    let mut r = 0;
    while r < blocks {
        // four rows at once: sixteen independent FMA chains, lane l holds columns ≡ l (mod 4)
        let r0 = &a[r * m..r * m + nb];
        let r1 = &a[(r + 1) * m..(r + 1) * m + nb];
        let r2 = &a[(r + 2) * m..(r + 2) * m + nb];
        let r3 = &a[(r + 3) * m..(r + 3) * m + nb];
        let mut acc = [[0.0f64; 4]; 4]; // [row][lane]
        for ((((xc, c0), c1), c2), c3) in x_main
            .chunks_exact(4)
            .zip(r0.chunks_exact(4))
            .zip(r1.chunks_exact(4))
            .zip(r2.chunks_exact(4))
            .zip(r3.chunks_exact(4))
        {
            for l in 0..4 {
                acc[0][l] = c0[l].mul_add(xc[l], acc[0][l]);
                acc[1][l] = c1[l].mul_add(xc[l], acc[1][l]);
                acc[2][l] = c2[l].mul_add(xc[l], acc[2][l]);
                acc[3][l] = c3[l].mul_add(xc[l], acc[3][l]);
            }
        }
        for q in 0..4 {
            y[r + q] = (acc[q][0] + acc[q][2]) + (acc[q][1] + acc[q][3]);
        }
        r += 4;
    }
    if rows & 2 != 0 {
        for q in 0..2 {
            // two SSE lanes: even and odd columns, multiply then add
            let row = &a[(r + q) * m..(r + q) * m + nb];
            let (mut even, mut odd) = (0.0f64, 0.0f64);
            let mut c = 0;
            while c < nb {
                even += row[c] * x_main[c];
                odd += row[c + 1] * x_main[c + 1];
                c += 2;
            }
            y[r + q] = even + odd;
        }
        r += 2;
    }
    if rows & 1 != 0 {
        let row = &a[r * m..r * m + nb];
        let mut acc = [0.0f64; 4];
        let mut c = 0;
        while c < nb {
            for l in 0..4 {
                acc[l] += row[c + l] * x_main[c + l];
            }
            c += 4;
        }
        y[r] = (acc[0] + acc[2]) + (acc[1] + acc[3]);
    }
    // the m % 4 remainder columns (compiled C with contracted multiply-adds)
    match m & 3 {
        1 => {
            for (r, yr) in y.iter_mut().enumerate().take(rows) {
                *yr = a[r * m + nb].mul_add(x[nb], *yr);
            }
        }
        2 => {
            for (r, yr) in y.iter_mut().enumerate().take(rows) {
                let t = a[r * m + nb].mul_add(x[nb], a[r * m + nb + 1] * x[nb + 1]);
                *yr += t;
            }
        }
        3 => {
            for (r, yr) in y.iter_mut().enumerate().take(rows) {
                let t = a[r * m + nb].mul_add(x[nb], a[r * m + nb + 1] * x[nb + 1]);
                let t = a[r * m + nb + 2].mul_add(x[nb + 2], t);
                *yr += t;
            }
        }
        _ => {}
    }
}

/// `y = Wᵀ v` for a C-order `W` of shape `(n, m)`: `np.dot(W.T, v)` as OpenBLAS's x86-64
/// `dgemv_n` computes it. The first `m & !3` outputs accumulate the rows of `W` four at a
/// time (`fma(w3,v3, fma(w2,v2, fma(w0,v0, w1·v1)))` added to y), then a pair, then a
/// single row; the last `m % 4` outputs are plain FMA chains over all rows.
#[inline(always)]
fn gemv_n<const L: u8>(w: &[f64], n: usize, m: usize, v: &[f64], y: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if L == AVX512 {
        // SAFETY: as in `gemv_t`, with avx512f.
        unsafe { avx512::gemv_n(w, n, m, v, y) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if L >= AVX2 {
        // SAFETY: as in `gemv_t`.
        unsafe { avx::gemv_n(w, n, m, v, y) };
        return;
    }
    let nb = m & !3;
    let y_main = &mut y[..nb];
    y_main.fill(0.0);
    let mut k = 0;
    while k + 4 <= n {
        let (w0, w1) = (&w[k * m..k * m + nb], &w[(k + 1) * m..(k + 1) * m + nb]);
        let (w2, w3) = (
            &w[(k + 2) * m..(k + 2) * m + nb],
            &w[(k + 3) * m..(k + 3) * m + nb],
        );
        let (v0, v1, v2, v3) = (v[k], v[k + 1], v[k + 2], v[k + 3]);
        for ((((yi, &a0), &a1), &a2), &a3) in y_main.iter_mut().zip(w0).zip(w1).zip(w2).zip(w3) {
            *yi += a3.mul_add(v3, a2.mul_add(v2, a0.mul_add(v0, a1 * v1)));
        }
        k += 4;
    }
    if n & 2 != 0 {
        let (w0, w1) = (&w[k * m..k * m + nb], &w[(k + 1) * m..(k + 1) * m + nb]);
        let (v0, v1) = (v[k], v[k + 1]);
        for ((yi, &a0), &a1) in y_main.iter_mut().zip(w0).zip(w1) {
            *yi += a0.mul_add(v0, a1 * v1);
        }
        k += 2;
    }
    if n & 1 != 0 {
        let w0 = &w[k * m..k * m + nb];
        let v0 = v[k];
        for (yi, &a0) in y_main.iter_mut().zip(w0) {
            *yi += a0 * v0;
        }
    }
    // the m % 4 last outputs: plain FMA chains over all rows, run side by side
    if nb < m {
        let tail = m - nb;
        let mut t = [0.0f64; 3];
        for (row, &vk) in w.chunks_exact(m).zip(v).take(n) {
            for (q, tq) in t.iter_mut().enumerate().take(tail) {
                *tq = row[nb + q].mul_add(vk, *tq);
            }
        }
        y[nb..m].copy_from_slice(&t[..tail]);
    }
}

/// AVX2+FMA versions of the kernels' main loops: the same operations per element as the
/// portable code (lane `l` of a register is the portable code's `acc[l]`), so the same bits.
#[cfg(target_arch = "x86_64")]
mod avx {
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
}

/// AVX-512F versions (eight lanes) of the element-wise kernels and of `gemv_n`; like `avx`,
/// each lane performs exactly the portable code's operations.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::avx::Tail;
    use super::Fuse;
    use super::{
        EXP_C1, EXP_C2, EXP_C3, EXP_C4, EXP_C5, EXP_C6, EXP_L2E, EXP_LN2HI, EXP_LN2LO, EXP_TH,
        EXP_THR, EXP_TLR, TANH_LUT,
    };

    /// `TANH_LUT` transposed: `TANH_COEF[k]` holds coefficient `k` (`b, c0, …, c16`) of the
    /// 16 intervals, so one two-table permute looks it up for eight lanes.
    static TANH_COEF: [[u64; 16]; 18] = {
        let mut out = [[0u64; 16]; 18];
        let mut i = 0;
        while i < 16 {
            let mut k = 0;
            while k < 18 {
                out[k][i] = TANH_LUT[i][k];
                k += 1;
            }
            i += 1;
        }
        out
    };

    /// Lanes `0..cnt` of an 8-lane mask.
    #[inline(always)]
    fn lanes(cnt: usize) -> __mmask8 {
        if cnt >= 8 {
            0xff
        } else {
            (1u8 << cnt) - 1
        }
    }

    /// `table[idx]` per lane for a 16-entry table.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn lookup16(table: &[u64; 16], idx: __m512i) -> __m512d {
        // SAFETY: two 8-element loads inside a 16-element table; u64 bits read as f64.
        unsafe {
            let p = table.as_ptr() as *const f64;
            _mm512_permutex2var_pd(_mm512_loadu_pd(p), idx, _mm512_loadu_pd(p.add(8)))
        }
    }

    /// The largest element of `v` (−∞ when empty), eight lanes at a time; `None` when `v`
    /// holds a NaN (the caller then finds the first one). The maximum of ordered values does
    /// not depend on the order of comparison, except for the sign of a zero maximum, which
    /// the softmax cannot see (`z − (±0)` differ only for `z = −0`, and `exp(±0) = 1`).
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub unsafe fn max_ordered(v: &[f64]) -> Option<f64> {
        let ninf = _mm512_set1_pd(f64::NEG_INFINITY);
        let (mut mx, mut unordered) = (ninf, 0u8);
        let mut i = 0;
        while i < v.len() {
            // SAFETY: the masked load touches only lanes below len - i.
            let x = unsafe { _mm512_mask_loadu_pd(ninf, lanes(v.len() - i), v.as_ptr().add(i)) };
            unordered |= _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(x, x);
            mx = _mm512_max_pd(mx, x);
            i += 8;
        }
        (unordered == 0).then(|| _mm512_reduce_max_pd(mx))
    }

    /// `npy_tanh` on every element, up to eight vectors side by side: their Horner chains
    /// interleave, so the polynomial's latency is paid about once per group.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub unsafe fn tanh_in_place(v: &mut [f64]) {
        let nvec = v.len().div_ceil(8);
        let mut v0 = 0;
        while v0 < nvec {
            let k = (nvec - v0).min(8);
            // SAFETY: the group's masked loads/stores stay below v.len().
            unsafe {
                let p = v.as_mut_ptr().add(8 * v0);
                let n = v.len() - 8 * v0;
                match k {
                    1 => tanh_group::<1>(p, n),
                    2 => tanh_group::<2>(p, n),
                    3 => tanh_group::<3>(p, n),
                    4 => tanh_group::<4>(p, n),
                    5 => tanh_group::<5>(p, n),
                    6 => tanh_group::<6>(p, n),
                    7 => tanh_group::<7>(p, n),
                    _ => tanh_group::<8>(p, n),
                }
            }
            v0 += k;
        }
    }

    /// `N` vectors of `tanh_in_place` at `p`, with `n` elements left from `p` (the lanes
    /// past `n` masked off).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tanh_group<const N: usize>(p: *mut f64, n: usize) {
        let mut mask = [0u8; N];
        for (q, m) in mask.iter_mut().enumerate() {
            *m = lanes(n.saturating_sub(8 * q));
        }
        let mut idx = [_mm512_setzero_si512(); N];
        let mut y = [_mm512_setzero_pd(); N];
        let mut r = [_mm512_setzero_pd(); N];
        // SAFETY: the masked loads/stores touch only lanes below n.
        unsafe {
            for q in 0..N {
                let x = _mm512_maskz_loadu_pd(mask[q], p.add(8 * q));
                idx[q] = tanh_interval(x);
                y[q] = _mm512_sub_pd(_mm512_abs_pd(x), lookup16(&TANH_COEF[0], idx[q]));
                r[q] = _mm512_fmadd_pd(
                    lookup16(&TANH_COEF[17], idx[q]),
                    y[q],
                    lookup16(&TANH_COEF[16], idx[q]),
                );
            }
            for k in (1..=15).rev() {
                for q in 0..N {
                    r[q] = _mm512_fmadd_pd(r[q], y[q], lookup16(&TANH_COEF[k], idx[q]));
                }
            }
            for q in 0..N {
                let x = _mm512_maskz_loadu_pd(mask[q], p.add(8 * q));
                _mm512_mask_storeu_pd(p.add(8 * q), mask[q], tanh_finish(x, r[q]));
            }
        }
    }

    /// Which of the 16 intervals (by the exponent of `|x|`) picks tanh's polynomial, per lane.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn tanh_interval(x: __m512d) -> __m512i {
        let ndnan = _mm512_and_si512(
            _mm512_castpd_si512(x),
            _mm512_set1_epi64(0x7ff8_0000_0000_0000),
        );
        let high = _mm512_srai_epi64::<32>(_mm512_sub_epi64(
            ndnan,
            _mm512_set1_epi64(0x3fc0_0000_0000_0000),
        ));
        let high = _mm512_min_epi64(
            _mm512_max_epi64(high, _mm512_setzero_si512()),
            _mm512_set1_epi64(0x78_0000),
        );
        _mm512_srli_epi64::<19>(high)
    }

    /// tanh from the polynomial's value `r` at `|x|`: ±1 past the last interval, the sign of
    /// `x` put back, NaN kept.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn tanh_finish(x: __m512d, r: __m512d) -> __m512d {
        let bits = _mm512_castpd_si512(x);
        let ndnan = _mm512_and_si512(bits, _mm512_set1_epi64(0x7ff8_0000_0000_0000));
        let huge = _mm512_cmpgt_epi64_mask(ndnan, _mm512_set1_epi64(0x7fe0_0000_0000_0000));
        let r = _mm512_mask_blend_pd(huge, r, _mm512_set1_pd(1.0));
        let sign = _mm512_and_si512(bits, _mm512_set1_epi64(i64::MIN));
        let r = _mm512_castsi512_pd(_mm512_or_si512(_mm512_castpd_si512(r), sign));
        _mm512_mask_blend_pd(
            _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(x, x),
            r,
            _mm512_set1_pd(f64::NAN),
        )
    }

    /// `npy_exp` on every element, eight lanes at a time (lanes outside SVML's main range go
    /// through the scalar fallback).
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub unsafe fn exp_in_place(v: &mut [f64]) {
        let c = |b: u64| _mm512_set1_pd(f64::from_bits(b));
        let n = v.len();
        let mut i = 0;
        while i < n {
            let mask = lanes(n - i);
            let main: __mmask8;
            // SAFETY: the masked load/store touch only lanes below n - i.
            unsafe {
                let x = _mm512_maskz_loadu_pd(mask, v.as_ptr().add(i));
                main = mask & _mm512_cmp_pd_mask::<_CMP_LT_OQ>(_mm512_abs_pd(x), c(EXP_THR));
                // k = ⌊16·x·log2e⌋ of the exact product
                let l2e16 = _mm512_set1_pd(f64::from_bits(EXP_L2E) * 16.0);
                let y = _mm512_mul_pd(x, l2e16);
                let err = _mm512_fmsub_pd(x, l2e16, y);
                let fl = _mm512_roundscale_pd::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(y);
                let down = _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(fl, y)
                    & _mm512_cmp_pd_mask::<_CMP_LT_OQ>(err, _mm512_setzero_pd());
                let k = _mm512_mask_sub_pd(fl, down, fl, _mm512_set1_pd(1.0));
                let nn = _mm512_mul_pd(k, _mm512_set1_pd(1.0 / 16.0));
                // j = k mod 16 from the low bits of k + 1.5·2^52
                let j = _mm512_castpd_si512(_mm512_add_pd(k, _mm512_set1_pd(6755399441055744.0)));
                let r = _mm512_fnmadd_pd(nn, c(EXP_LN2HI), x);
                let r = _mm512_fnmadd_pd(nn, c(EXP_LN2LO), r);
                let r = _mm512_castsi512_pd(_mm512_and_si512(
                    _mm512_castpd_si512(r),
                    _mm512_set1_epi64(0xbfff_ffff_ffff_ffffu64 as i64),
                ));
                let r2 = _mm512_mul_pd(r, r);
                let p56 = _mm512_fmadd_pd(c(EXP_C6), r, c(EXP_C5));
                let p34 = _mm512_fmadd_pd(c(EXP_C4), r, c(EXP_C3));
                let p12 = _mm512_fmadd_pd(c(EXP_C2), r, c(EXP_C1));
                let p36 = _mm512_fmadd_pd(r2, p56, p34);
                let p16 = _mm512_fmadd_pd(r2, p36, p12);
                let p = _mm512_fmadd_pd(p16, r, lookup16(&EXP_TLR, j));
                let th = lookup16(&EXP_TH, j);
                let res = _mm512_fmadd_pd(th, p, th);
                let res = _mm512_scalef_pd(res, nn); // · 2^⌊N⌋
                _mm512_mask_storeu_pd(v.as_mut_ptr().add(i), main, res);
            }
            let rest = mask & !main;
            for l in 0..8 {
                if rest & (1 << l) != 0 {
                    v[i + l] = super::npy_exp(v[i + l]);
                }
            }
            i += 8;
        }
    }

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
            unsafe { super::avx::gemv_n(w, n, m, v, y) };
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
                super::avx::gemv_n_range(w, n, m, v, y, i0, nb, &mut Tail::none());
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
            *m = lanes(cols - *b);
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
            let mask = lanes(n - i);
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
}

// ------------------------------------------------------------------ numpy's exp and tanh

/// numpy's float64 `tanh` (`numpy/_core/src/umath/loops_hyperbolic.dispatch.cpp.src`, the
/// algorithm numpy uses on every CPU with FMA, converted from Intel SVML): `|x|` picks one of
/// 16 intervals by its exponent; on it `tanh(|x|) = P(|x| − b)`, a degree-16 polynomial
/// evaluated with FMAs; the sign is put back by OR-ing the sign bit.
#[inline(always)]
pub fn npy_tanh(x: f64) -> f64 {
    let bits = x.to_bits();
    let row = &TANH_LUT[tanh_interval(bits)];
    tanh_finish(x, bits, tanh_poly(row, x.abs() - f64::from_bits(row[0])))
}

/// The interval of `|x|`: `clamp(high word of (bits & 0x7ff8…) − 0x3fc00000, 0, 0x780000) >> 19`.
#[inline(always)]
fn tanh_interval(bits: u64) -> usize {
    let ndnan = (bits & 0x7ff8_0000_0000_0000) as i64; // exponent and first mantissa bit
    let high = ((ndnan - 0x3fc0_0000_0000_0000) >> 32) as i32;
    (high.clamp(0, 0x78_0000) >> 19) as usize
}

/// `c16·y + c15`, then `r·y + c_k` down to `c0` (row = `[b, c0, …, c16]`).
#[inline(always)]
fn tanh_poly(row: &[u64; 18], y: f64) -> f64 {
    let mut r = f64::from_bits(row[17]).mul_add(y, f64::from_bits(row[16]));
    for k in (1..=15).rev() {
        r = r.mul_add(y, f64::from_bits(row[k]));
    }
    r
}

/// NaN stays NaN, `|x| ≥ 1.5·2^1023` gives 1, then the sign of `x` is OR-ed in.
#[inline(always)]
fn tanh_finish(x: f64, bits: u64, r: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let r = if (bits & 0x7ff8_0000_0000_0000) > 0x7fe0_0000_0000_0000 {
        1.0
    } else {
        r
    };
    f64::from_bits(r.to_bits() | (bits & 0x8000_0000_0000_0000))
}

/// [`npy_tanh`] on every element, four at a time so the FMA chains interleave.
#[inline(always)]
fn npy_tanh_in_place(v: &mut [f64]) {
    let mut chunks = v.chunks_exact_mut(4);
    for c in &mut chunks {
        let bits = [
            c[0].to_bits(),
            c[1].to_bits(),
            c[2].to_bits(),
            c[3].to_bits(),
        ];
        let rows = [
            &TANH_LUT[tanh_interval(bits[0])],
            &TANH_LUT[tanh_interval(bits[1])],
            &TANH_LUT[tanh_interval(bits[2])],
            &TANH_LUT[tanh_interval(bits[3])],
        ];
        let mut y = [0.0f64; 4];
        let mut r = [0.0f64; 4];
        for l in 0..4 {
            y[l] = c[l].abs() - f64::from_bits(rows[l][0]);
            r[l] = f64::from_bits(rows[l][17]).mul_add(y[l], f64::from_bits(rows[l][16]));
        }
        for k in (1..=15).rev() {
            for l in 0..4 {
                r[l] = r[l].mul_add(y[l], f64::from_bits(rows[l][k]));
            }
        }
        for l in 0..4 {
            c[l] = tanh_finish(c[l], bits[l], r[l]);
        }
    }
    for x in chunks.into_remainder() {
        *x = npy_tanh(*x);
    }
}

/// numpy's float64 `exp` on AVX-512 machines (Intel SVML `__svml_exp8_ha`, which numpy links
/// there): `N = ⌊16·x·log2 e⌋/16`, `r = x − N·ln2` in two FMA steps, `2^(j/16)` from a table
/// (high part `Th` and relative low part `Tlr`), a degree-6 polynomial, then scaling by
/// `2^⌊N⌋`. SVML hands `|x| ≥ 707.7` (and non-finite `x`) to a scalar routine; there this
/// falls back to the C library's `exp`, which may differ from numpy in the last bit.
#[inline(always)]
pub fn npy_exp(x: f64) -> f64 {
    // SVML's main range; NaN fails the test and goes to the fallback too
    if x.abs() < f64::from_bits(EXP_THR) {
        exp_main(x)
    } else {
        x.exp()
    }
}

/// SVML's main path, valid for `|x| < 707.7`.
#[inline(always)]
fn exp_main(x: f64) -> f64 {
    // SVML: a round-toward-zero FMA x·log2e + 1.5·2^48 keeps 4 fractional bits of x·log2e,
    // i.e. k = ⌊16·x·log2e⌋ of the exact product, computed here from the rounded product
    // and its exact error.
    let l2e16 = f64::from_bits(EXP_L2E) * 16.0;
    let y = x * l2e16;
    let err = x.mul_add(l2e16, -y);
    let k = y.floor() - f64::from(u8::from(y.floor() == y && err < 0.0));
    let ki = k as i64;
    let n = k / 16.0; // exact
    let j = (ki & 15) as usize;
    let m = ki >> 4; // ⌊N⌋
    let r = (-n).mul_add(f64::from_bits(EXP_LN2HI), x);
    let r = (-n).mul_add(f64::from_bits(EXP_LN2LO), r);
    let r = f64::from_bits(r.to_bits() & 0xbfff_ffff_ffff_ffff); // SVML's "|r| < 2" mask
    let r2 = r * r;
    let c = f64::from_bits;
    let p56 = c(EXP_C6).mul_add(r, c(EXP_C5));
    let p34 = c(EXP_C4).mul_add(r, c(EXP_C3));
    let p12 = c(EXP_C2).mul_add(r, c(EXP_C1));
    let p36 = r2.mul_add(p56, p34);
    let p16 = r2.mul_add(p36, p12);
    let p = p16.mul_add(r, c(EXP_TLR[j]));
    let th = c(EXP_TH[j]);
    let res = th.mul_add(p, th);
    // scalef by 2^m: |m| ≤ 1021 here, so the power of two is normal and the product exact
    res * f64::from_bits(((m + 1023) as u64) << 52)
}

/// `np.max(z)`: the largest element, or the first NaN if there is one.
#[inline(always)]
fn max_of<const L: u8>(z: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if L == AVX512 {
        // SAFETY: as in `gemv_t`, with avx512f.
        if let Some(mx) = unsafe { avx512::max_ordered(z) } {
            return mx;
        }
    }
    let mut mx = f64::NEG_INFINITY;
    for &v in z {
        if v.is_nan() {
            return v; // np.max propagates NaN
        }
        if v > mx {
            mx = v;
        }
    }
    mx
}

/// [`npy_tanh`] on every element, with the widest kernel of level `L`.
#[inline(always)]
pub(crate) fn tanh_in_place<const L: u8>(v: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if L == AVX512 {
        // SAFETY: as in `gemv_t`, with avx512f.
        unsafe { avx512::tanh_in_place(v) };
        return;
    }
    npy_tanh_in_place(v);
}

/// [`npy_exp`] on every element, with the widest kernel of level `L`.
#[inline(always)]
pub(crate) fn exp_in_place<const L: u8>(v: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if L == AVX512 {
        // SAFETY: as in `gemv_t`, with avx512f.
        unsafe { avx512::exp_in_place(v) };
        return;
    }
    npy_exp_in_place(v);
}

/// [`npy_exp`] on every element, four at a time.
#[inline(always)]
fn npy_exp_in_place(v: &mut [f64]) {
    let thr = f64::from_bits(EXP_THR);
    let mut chunks = v.chunks_exact_mut(4);
    for c in &mut chunks {
        if c.iter().all(|x| x.abs() < thr) {
            let out = [
                exp_main(c[0]),
                exp_main(c[1]),
                exp_main(c[2]),
                exp_main(c[3]),
            ];
            c.copy_from_slice(&out);
        } else {
            for x in c.iter_mut() {
                *x = npy_exp(*x);
            }
        }
    }
    for x in chunks.into_remainder() {
        *x = npy_exp(*x);
    }
}

/// `npy_tanh`'s table: per interval `[b, c0, c1, …, c16]` (numpy's `lut18x16`).
#[rustfmt::skip]
const TANH_LUT: [[u64; 18]; 16] = [
    [
        0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x3ff0_0000_0000_0000, 0xbbf0_b3ea_3fdf_aa19, 0xbfd5_5555_5555_5555, 0xbce6_863e_e44e_d636,
        0x3fc1_1111_1111_2ab5, 0xbda1_ea19_dddd_b3b4, 0xbfab_a1ba_1990_520b, 0xbe35_1ca7_f096_011f, 0x3f96_64f9_4e6a_c14e, 0xbea8_c4c1_fd78_52fe,
        0xbf82_2404_577a_a9dd, 0xbefd_d99a_221e_d573, 0x3f6e_3be6_8942_3841, 0xbf2a_1306_713a_4f3a, 0xbf55_d7e7_6dc5_6871, 0x3f35_e67a_b76a_26e7,
    ],
    [
        0x3fcc_0000_0000_0000, 0x3fcb_8fd0_416a_7c92, 0x3fee_842c_a3f0_8532, 0xbfca_48aa_eb53_bc21, 0xbfd1_83af_c292_ba11, 0x3fc0_4dcd_0476_c75e,
        0x3fb5_c19e_fdfc_08ad, 0xbfb0_b8df_995c_e4df, 0xbf96_e37b_ba52_f6fc, 0x3f9e_aaf3_320c_3851, 0xbf94_d334_3bae_39dd, 0xbfcc_ce16_b104_6f13,
        0x403d_8b07_f7a8_2aa3, 0x4070_593a_3735_bab4, 0xc0d2_6351_1f5b_aac1, 0xc104_5e50_9116_b066, 0x4152_8c38_809c_90c7, 0x4184_8ee0_627d_8206,
    ],
    [
        0x3fd4_0000_0000_0000, 0x3fd3_5f98_a0ea_650e, 0x3fed_1157_4af5_8f1b, 0xbfd1_9921_f432_9916, 0xbfcc_1a4b_039c_9bfa, 0x3fc4_3d34_49a8_0f08,
        0x3fa7_4c98_dc34_fbac, 0xbfb2_955c_f41e_8164, 0x3ecf_f7df_1845_5399, 0x3f9c_f823_fe76_1fc1, 0xbf7b_c748_e60d_f843, 0xbf81_a16f_224b_b7b6,
        0xbf9f_44ab_92fb_ab0a, 0xbfcc_ab65_4e44_835e, 0x4016_9f73_b15e_be5c, 0x4041_fab9_2509_84ce, 0xc076_d57f_b519_0b02, 0xc0a2_16d6_18b4_89ec,
    ],
    [
        0x3fdc_0000_0000_0000, 0x3fda_5729_ee48_8037, 0x3fea_945b_9c24_e4f9, 0xbfd5_e0f0_9bef_8011, 0xbfc1_6e1e_6d8d_0be6, 0x3fc5_c26f_3699_b7e7,
        0xbf79_0d6a_8eff_0a77, 0xbfaf_9d05_c309_f7c6, 0x3f97_3628_34d3_3a4e, 0x3f90_2227_1754_ff1f, 0xbf8c_8937_2b43_ba85, 0xbf62_cbf0_0406_bc09,
        0x3fb2_eac6_0447_3d6a, 0x3fd1_3ed8_0037_dbac, 0xc025_c1dd_41cd_6cb5, 0xc045_8d09_0ec3_de95, 0x4085_f09f_888f_8ada, 0x40a5_b891_07c8_af4f,
    ],
    [
        0x3fe4_0000_0000_0000, 0x3fe1_bf47_eabb_8f95, 0x3fe6_284c_3374_f815, 0xbfd8_93b5_9c35_c882, 0xbf92_426c_751e_48a2, 0x3fc1_a686_f6ab_2533,
        0xbfac_3c02_1789_a786, 0xbf98_7d27_ccff_4291, 0x3f9e_7f83_8018_4b45, 0xbf73_1fe7_7c9c_60af, 0xbf81_29a0_92de_747a, 0x3f75_b29b_b02c_f69b,
        0x3f45_f87d_903a_aac8, 0xbf60_45b9_076c_c487, 0xbf58_fd89_fe05_e0d1, 0xbf74_949d_6011_3d63, 0x3fa2_4633_2a2f_cba5, 0x3fb6_9d83_7452_0eda,
    ],
    [
        0x3fec_0000_0000_0000, 0x3fe6_8665_0b8c_2015, 0x3fe0_2500_a09f_8d6e, 0xbfd6_ba7c_b757_6538, 0x3fb4_f152_b2ba_d124, 0x3faf_203c_316c_e730,
        0xbfae_2196_b732_6859, 0x3f8b_2ca6_2572_b098, 0x3f86_9543_e7c4_20d4, 0xbf84_a604_6865_ec7d, 0x3f60_c85b_4d53_8746, 0x3f60_7df0_f9f9_0c17,
        0xbf5e_1046_7103_6300, 0x3f20_85ee_7e8a_c170, 0x3f73_f7af_01d5_af7a, 0x3f7c_9fd6_200d_0ade, 0xbfb2_9d85_1a89_6fcd, 0xbfbd_ed51_9f98_1716,
    ],
    [
        0x3ff4_0000_0000_0000, 0x3feb_2523_bb6b_2dee, 0x3fd1_f251_31e3_a8c0, 0xbfce_7291_743d_7555, 0x3fbb_ba40_cbef_72be, 0xbf89_c7a0_2788_557c,
        0xbf93_a7a0_11ff_8c2a, 0x3f8f_1cf6_c7f5_b00a, 0xbf73_26bd_4914_222a, 0xbf4c_a3f1_f2b9_192b, 0x3f5b_e939_2199_ec18, 0xbf4b_852a_6e07_58d5,
        0x3f19_bc98_ddf0_f340, 0x3f23_5246_2261_0430, 0xbf1e_40bd_ead1_7e6b, 0x3f02_cd40_e0ad_0a9f, 0x3ed9_065a_e369_b212, 0xbef0_2d28_8b5b_3371,
    ],
    [
        0x3ffc_0000_0000_0000, 0x3fee_1fbf_97e3_3527, 0x3fbd_22ca_1c24_a139, 0xbfbb_6d85_a01e_fb80, 0x3fb0_1ba0_38be_6a3d, 0xbf98_157e_26e0_d541,
        0x3f6e_4709_c7e8_430e, 0x3f60_3798_11e4_3dd5, 0xbf5f_c15b_0a9d_98fa, 0x3f4c_77de_e0af_d227, 0xbf2a_0c68_a448_9f10, 0xbf00_78c6_3d1b_8445,
        0x3f0d_4304_bc92_46e8, 0xbeff_12a6_6269_11b4, 0x3ee2_24cd_6c45_13e5, 0xbe85_8ab8_e019_f311, 0xbeb8_e1ba_4c98_a030, 0x3eb2_9098_1209_c1a6,
    ],
    [
        0x4004_0000_0000_0000, 0x3fef_9258_260a_71c2, 0x3f9b_3afe_1fba_5c76, 0xbf9a_ddae_58c7_141a, 0x3f91_6df4_4871_efc8, 0xbf80_7b55_c1c7_d278,
        0x3f67_682a_fa61_1151, 0xbf47_9382_6f78_537e, 0x3f14_cffc_fa69_fbb6, 0x3f04_055b_ce68_597a, 0xbf00_4626_01dc_2faa, 0x3eec_12ea_dd55_be7a,
        0xbed1_3c41_5f7b_9d41, 0x3eab_9008_bca4_08af, 0xbe24_b645_e68e_eaa3, 0xbe79_2fa6_323b_7cf8, 0x3e6f_fd07_66ad_4016, 0xbe56_7e92_4bf5_ff6e,
    ],
    [
        0x400c_0000_0000_0000, 0x3fef_f112_c63a_9077, 0x3f6d_d37d_19b2_2b21, 0xbf6d_c593_76c7_aa19, 0x3f63_c686_9dfc_8870, 0xbf53_a18d_5843_190f,
        0x3f3e_f2ee_7771_7cbf, 0xbf24_0569_5e36_240f, 0x3f05_7e48_e5b7_9d10, 0xbee2_bf0c_b4a7_1647, 0x3eb7_b6a2_19de_a9f4, 0xbe6f_a600_f593_181b,
        0xbe72_2b8d_9720_cdb0, 0x3e63_4df7_1865_f620, 0xbe4a_bfeb_fb72_bc83, 0x3e2d_f04d_6787_6402, 0xbe0c_63c2_9f50_5f5b, 0x3de3_f7f7_de6b_0eb6,
    ],
    [
        0x4014_0000_0000_0000, 0x3fef_ff41_9668_df11, 0x3f27_ccec_13a9_ef96, 0xbf27_cc5e_7467_7410, 0x3f1f_b9ae_f915_d828, 0xbf0f_b6bb_c89b_1a5b,
        0x3ef9_5a44_82f1_80b7, 0xbee0_e08d_e39c_e756, 0x3ec3_3b66_d7d7_7264, 0xbea3_1eaa_fe73_efd5, 0x3e80_cbcc_8d4c_5c8a, 0xbe5a_3c93_5dce_3f7d,
        0x3e32_2666_d739_bec0, 0xbe05_bb1b_cf83_ca73, 0x3dd5_1c38_f869_5ed3, 0xbd95_c72b_e95e_4d2c, 0xbd7f_ab21_6b9e_0e49, 0x3d69_ed18_bae3_ebbc,
    ],
    [
        0x401c_0000_0000_0000, 0x3fef_fffc_8327_50f2, 0x3ecb_e6c3_f332_50ae, 0xbecb_e6c0_e8b4_cc87, 0x3ec2_99d1_e27c_6e11, 0xbeb2_99c9_c684_a963,
        0x3e9d_c2c2_7da3_b603, 0xbe83_d709_ba5f_714e, 0x3e66_ac4e_578b_9b10, 0xbe46_abb0_2c43_68ed, 0x3e24_25bb_231a_5e29, 0xbe00_1c6d_95e3_ae96,
        0x3dd7_6a55_3d7e_7918, 0xbdaf_2ac1_43fb_6762, 0x3d83_13ac_38c6_832b, 0xbd55_a89c_3020_3106, 0x3d28_26b6_2056_aa27, 0xbcf7_534c_4f3d_fa71,
    ],
    [
        0x4024_0000_0000_0000, 0x3fef_ffff_fdc9_6f35, 0x3e41_b486_5394_f75f, 0xbe41_b486_526b_0565, 0x3e37_9b5d_dcca_334c, 0xbe27_9b5d_d4fb_3d01,
        0x3e12_e2af_d9f7_433e, 0xbdf9_2e3f_c5ee_63e0, 0x3ddc_c74b_8d3d_5c42, 0xbdbc_c749_ca80_79dd, 0x3d99_92a4_beac_8662, 0xbd74_755a_00ea_1fd3,
        0x3d4d_e0fa_5941_6a39, 0xbd23_eae5_2a3d_bf57, 0x3cf7_7879_3562_6685, 0xbcca_d6b3_bb9e_ff65, 0x3ca3_13e3_1762_f523, 0xbc73_0b73_f1ea_ff20,
    ],
    [
        0x402c_0000_0000_0000, 0x3fef_ffff_ffff_cf58, 0x3d88_53f0_1bda_5f28, 0xbd88_53f0_1bef_63a4, 0x3d80_37f5_7bc6_2c9a, 0xbd70_37f5_7ae7_2aa6,
        0x3d59_f320_3486_79ba, 0xbd41_4cc0_30f2_110e, 0x3d23_c589_137f_92b4, 0xbd03_c588_3836_b9d2, 0x3ce1_91ba_5ed3_fb67, 0xbcbc_1c6c_063b_b7ac,
        0x3c94_8716_cf36_81b4, 0xbc6b_5e3e_9ca0_955e, 0x3c40_1ffc_49c6_bc29, 0xbc12_705c_cd3d_d884, 0x3bea_37aa_2189_5319, 0xbbba_2cff_8135_d462,
    ],
    [
        0x4034_0000_0000_0000, 0x3ff0_0000_0000_0000, 0x3c73_953c_0197_ef58, 0xbc73_955b_e519_be31, 0x3c6a_2d4b_50a2_cff7, 0xbc5a_2ca2_bba7_8e86,
        0x3c44_b61d_9bbc_c940, 0xbc2b_a022_e8d8_2a87, 0x3c10_7f8e_2c87_07a1, 0xbbf0_7a54_1626_4aec, 0x3bc8_9245_0bad_44c4, 0xbba3_be9a_4460_fe00,
        0x3b87_3f9f_2d2f_da99, 0xbb5e_ca68_e2c1_ba2e, 0xbabf_0b21_acfa_52ab, 0xba8e_0a4c_47ae_75f5, 0x3ae5_c7f1_fd87_1496, 0xbab5_a71b_5f7d_9035,
    ],
    [
        0x0000_0000_0000_0000, 0x3ff0_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000,
        0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000,
        0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x0000_0000_0000_0000,
    ],
];

// `npy_exp`'s constants (SVML's `__svml_dexp_ha_data_internal_avx512`), as IEEE bits.
const EXP_TH: [u64; 16] = [
    0x3ff0_0000_0000_0000,
    0x3ff0_b558_6cf9_890f,
    0x3ff1_72b8_3c7d_517b,
    0x3ff2_387a_6e75_6238,
    0x3ff3_06fe_0a31_b715,
    0x3ff3_dea6_4c12_3422,
    0x3ff4_bfda_d536_2a27,
    0x3ff5_ab07_dd48_5429,
    0x3ff6_a09e_667f_3bcd,
    0x3ff7_a114_73eb_0187,
    0x3ff8_ace5_422a_a0db,
    0x3ff9_c491_82a3_f090,
    0x3ffa_e89f_995a_d3ad,
    0x3ffc_199b_dd85_529c,
    0x3ffd_5818_dcfb_a487,
    0x3ffe_a4af_a2a4_90da,
];
const EXP_TLR: [u64; 16] = [
    0x0000_0000_0000_0000,
    0x3c97_9aa6_5d83_7b6d,
    0xbc80_1b15_eaa5_9348,
    0x3c96_8efd_e3a8_a894,
    0x3c83_4d75_4db0_abb6,
    0x3c85_9f48_a72a_4c6d,
    0x3c76_90ce_bb7a_afb0,
    0x3c90_63e1_e21c_5409,
    0xbc93_b3ef_bf5e_2228,
    0xbc7b_32dc_b94d_a51d,
    0x3c8d_b72f_c1f0_eab4,
    0x3c71_affc_2b91_ce27,
    0x3c8c_1a77_92cb_3387,
    0x3c73_6eae_30af_0cb3,
    0x3c74_a385_a63d_07a7,
    0xbc8f_f712_8fd3_91f0,
];
const EXP_L2E: u64 = 0x3ff7_1547_652b_82fe;
const EXP_LN2HI: u64 = 0x3fe6_2e42_fefa_39ef;
const EXP_LN2LO: u64 = 0x3c7a_bc9e_3b39_803f;
const EXP_C6: u64 = 0x3f57_4118_3694_0c04;
const EXP_C5: u64 = 0x3f81_101c_bbc2_65c0;
const EXP_C4: u64 = 0x3fa5_5557_242d_68fe;
const EXP_C3: u64 = 0x3fc5_5555_5393_9732;
const EXP_C2: u64 = 0x3fe0_0000_0000_d008;
const EXP_C1: u64 = 0x3fef_ffff_ffff_ff70;
const EXP_THR: u64 = 0x4086_1da0_4cba_fe44;

/// numpy's pairwise summation (`np.add.reduce` on a contiguous float64 run): eight running
/// sums for blocks up to 128 elements, halves above.
pub fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &v in a {
            res += v;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let main = n - n % 8;
        let mut i = 8;
        while i < main {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[main..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// The course's `softmax` in place: `e = exp(z − max z); e / e.sum()`.
#[inline(always)]
fn softmax_in_place<const L: u8>(z: &mut [f64]) {
    let mx = max_of::<L>(z);
    for v in z.iter_mut() {
        *v -= mx;
    }
    exp_in_place::<L>(z);
    let s = pairwise_sum(z);
    for v in z.iter_mut() {
        *v /= s;
    }
}

/// One forward step (the course's `rnn_step_forward`):
/// `a_next = tanh(np.dot(Wax, x) + np.dot(Waa, a_prev) + b)`, `p = softmax(np.dot(Wya, a_next) + by)`,
/// with the logits divided by `temperature` when it is not 1.
#[inline(always)]
fn step_forward<const L: u8>(
    p: &ParamsRef<'_>,
    x: Option<usize>,
    a_prev: &[f64],     // (n_a,)
    a_next: &mut [f64], // (n_a,)
    p_out: &mut [f64],  // (n_y,)
    temperature: f64,
) {
    hidden_step::<L>(p, x, a_prev, a_next);
    output_step::<L>(p, a_next, p_out, temperature);
}

/// The hidden-state half of [`step_forward`]: `a_next = tanh(np.dot(Wax, x) + np.dot(Waa, a_prev) + b)`.
#[inline(always)]
fn hidden_step<const L: u8>(
    p: &ParamsRef<'_>,
    x: Option<usize>,
    a_prev: &[f64],     // (n_a,)
    a_next: &mut [f64], // (n_a,)
) {
    let (n_a, n_x) = (p.n_a, p.n_x);
    gemv_t::<L>(p.waa, n_a, n_a, a_prev, a_next); // Waa a_prev
    for (i, (ai, &bi)) in a_next.iter_mut().zip(p.b).enumerate() {
        // np.dot(Wax, one_hot) is exactly the column; np.dot(Wax, zeros) is +0
        let wax_x = match x {
            Some(ix) => p.wax[i * n_x + ix],
            None => 0.0,
        };
        *ai = (wax_x + *ai) + bi;
    }
    tanh_in_place::<L>(a_next);
}

/// The output half of [`step_forward`]: `p = softmax(np.dot(Wya, a_next) + by)` (logits
/// divided by `temperature` when it is not 1).
#[inline(always)]
fn output_step<const L: u8>(
    p: &ParamsRef<'_>,
    a_next: &[f64],    // (n_a,)
    p_out: &mut [f64], // (n_y,)
    temperature: f64,
) {
    let (n_a, n_y) = (p.n_a, p.n_y);
    gemv_t::<L>(p.wya, n_y, n_a, a_next, p_out); // Wya a_next
    for (pk, &byk) in p_out.iter_mut().zip(p.by) {
        *pk += byk;
    }
    if temperature != 1.0 {
        for v in p_out.iter_mut() {
            *v /= temperature;
        }
    }
    softmax_in_place::<L>(p_out);
}

// ------------------------------------------------------------------ workspace, forward, backward

/// Preallocated buffers for forward + backward over sequences up to `capacity` steps, so
/// that training allocates nothing per example or per character.
#[derive(Debug, Clone)]
pub struct CharRnnWorkspace {
    n_a: usize,
    n_x: usize,
    n_y: usize,
    capacity: usize,
    /// Hidden states, `((T+1) · n_a)`: block 0 is `a0`, block `t+1` is `a⟨t⟩`.
    a: Vec<f64>,
    /// Softmax outputs, `(T · n_y)`.
    y_hat: Vec<f64>,
    /// `ŷ⟨t⟩ − one_hot(y⟨t⟩)` per step, `(T · n_y)`.
    dy: Vec<f64>,
    /// Gradient through tanh per step, `(T · n_a)`.
    daraw: Vec<f64>,
    da: Vec<f64>,      // (n_a,)
    da_next: Vec<f64>, // (n_a,)
    /// Gradients of the last backward pass.
    pub grads: CharRnnGradients,
    steps: usize,
}

impl CharRnnWorkspace {
    /// Buffers for `n_a, n_x, n_y` and sequences of up to `capacity` steps.
    pub fn new(n_a: usize, n_x: usize, n_y: usize, capacity: usize) -> Self {
        CharRnnWorkspace {
            n_a,
            n_x,
            n_y,
            capacity,
            a: vec![0.0; (capacity + 1) * n_a],
            y_hat: vec![0.0; capacity * n_y],
            dy: vec![0.0; capacity * n_y],
            daraw: vec![0.0; capacity * n_a],
            da: vec![0.0; n_a],
            da_next: vec![0.0; n_a],
            grads: CharRnnGradients::zeros(n_a, n_x, n_y),
            steps: 0,
        }
    }

    /// Grow (never shrink) to fit the sizes; allocates only when something changes.
    fn ensure(&mut self, n_a: usize, n_x: usize, n_y: usize, steps: usize) {
        if (self.n_a, self.n_x, self.n_y) != (n_a, n_x, n_y) {
            *self = CharRnnWorkspace::new(n_a, n_x, n_y, steps.max(self.capacity));
        } else if steps > self.capacity {
            self.capacity = steps;
            self.a.resize((steps + 1) * n_a, 0.0);
            self.y_hat.resize(steps * n_y, 0.0);
            self.dy.resize(steps * n_y, 0.0);
            self.daraw.resize(steps * n_a, 0.0);
        }
    }

    /// Number of steps of the last forward pass.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Hidden state after step `t` of the last forward pass, `(n_a,)`.
    pub fn a(&self, t: usize) -> &[f64] {
        &self.a[(t + 1) * self.n_a..(t + 2) * self.n_a]
    }

    /// The initial hidden state of the last forward pass, `(n_a,)`.
    pub fn a0(&self) -> &[f64] {
        &self.a[..self.n_a]
    }

    /// The last hidden state (the course's `a[len(X)-1]`), `(n_a,)`.
    pub fn a_last(&self) -> &[f64] {
        &self.a[self.steps * self.n_a..(self.steps + 1) * self.n_a]
    }

    /// Softmax output of step `t`, `(n_y,)`.
    pub fn y_hat(&self, t: usize) -> &[f64] {
        &self.y_hat[t * self.n_y..(t + 1) * self.n_y]
    }
}

/// Check an index sequence pair and the initial state against the parameter sizes.
pub(crate) fn check_sequence(
    x: &[Option<usize>],
    y: &[usize],
    a0: &[f64],
    n_a: usize,
    n_x: usize,
    n_y: usize,
) -> Result<()> {
    if x.is_empty() {
        return Err(CoreError::invalid(
            "x: expected at least one time step, got 0",
        ));
    }
    if x.len() != y.len() {
        return Err(CoreError::ShapeMismatch {
            name: "y".into(),
            expected: format!("{} indices (one per input step)", x.len()),
            actual: format!("{}", y.len()),
        });
    }
    for (t, xt) in x.iter().enumerate() {
        if let Some(ix) = *xt {
            if ix >= n_x {
                return Err(CoreError::invalid(format!(
                    "x[{t}]: index {ix} out of range for a vocabulary of {n_x}"
                )));
            }
        }
    }
    for (t, &yt) in y.iter().enumerate() {
        if yt >= n_y {
            return Err(CoreError::invalid(format!(
                "y[{t}]: index {yt} out of range for a vocabulary of {n_y}"
            )));
        }
    }
    if a0.len() != n_a {
        return Err(CoreError::ShapeMismatch {
            name: "a_prev".into(),
            expected: format!("({n_a}, 1)"),
            actual: format!("({}, 1)", a0.len()),
        });
    }
    Ok(())
}

/// Forward pass into the workspace; returns the loss. Inputs already validated.
#[inline(always)]
fn forward_into<const L: u8>(
    ws: &mut CharRnnWorkspace,
    p: &ParamsRef<'_>,
    x: &[Option<usize>],
    y: &[usize],
    a0: &[f64],
) -> f64 {
    let (n_a, n_y) = (p.n_a, p.n_y);
    ws.steps = x.len();
    ws.a[..n_a].copy_from_slice(a0);
    // The operations of `step_forward` for every t, in two passes: first the hidden-state
    // recurrence (the only serial dependency), then the outputs of all steps, which are
    // independent of each other, so the CPU overlaps them instead of waiting on each
    // step's chain. Every element sees the same operations, so the same bits.
    for t in 0..x.len() {
        let (before, after) = ws.a.split_at_mut((t + 1) * n_a);
        hidden_step::<L>(p, x[t], &before[t * n_a..], &mut after[..n_a]);
    }
    let mut loss = 0.0f64;
    for t in 0..x.len() {
        let a_t = &ws.a[(t + 1) * n_a..(t + 2) * n_a];
        let p_t = &mut ws.y_hat[t * n_y..(t + 1) * n_y];
        output_step::<L>(p, a_t, p_t, 1.0);
        loss -= p_t[y[t]].ln();
    }
    loss
}

/// `out[i][j] = Σ_{t=T−1…0} left[t][i] · right[t][j]` with `out` `(rows, cols)`, `left`
/// `(T, rows)`, `right` `(T, cols)`: each product rounded, then added in decreasing `t`
/// starting from 0 (numpy's `dW += np.dot(u, v.T)` step after step). Column blocks live
/// in registers across `t`.
#[inline(always)]
fn sum_outer_rev<const L: u8>(
    out: &mut [f64],
    rows: usize,
    cols: usize,
    left: &[f64],
    right: &[f64],
    steps: usize,
    fuse: Option<Fuse>,
) {
    #[cfg(target_arch = "x86_64")]
    if L == AVX512 && cols >= 8 {
        // SAFETY: as in `gemv_t`, with avx512f; `fuse.w` has `out`'s layout.
        unsafe { avx512::sum_outer_rev(out, rows, cols, left, right, steps, fuse) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if L >= AVX2 && cols >= 4 {
        // SAFETY: as in `gemv_t`; `fuse.w` has `out`'s layout.
        unsafe { avx::sum_outer_rev(out, rows, cols, left, right, steps, fuse) };
        return;
    }
    const W: usize = 16;
    for (i, row) in out.chunks_exact_mut(cols).enumerate().take(rows) {
        let mut j0 = 0;
        while j0 + W <= cols {
            let mut acc = [0.0f64; W];
            for t in (0..steps).rev() {
                let d = left[t * rows + i];
                let r = &right[t * cols + j0..t * cols + j0 + W];
                for l in 0..W {
                    acc[l] += d * r[l];
                }
            }
            row[j0..j0 + W].copy_from_slice(&acc);
            j0 += W;
        }
        while j0 + 4 <= cols {
            let mut acc = [0.0f64; 4];
            for t in (0..steps).rev() {
                let d = left[t * rows + i];
                let r = &right[t * cols + j0..t * cols + j0 + 4];
                for l in 0..4 {
                    acc[l] += d * r[l];
                }
            }
            row[j0..j0 + 4].copy_from_slice(&acc);
            j0 += 4;
        }
        for (j, o) in row.iter_mut().enumerate().skip(j0) {
            let mut acc = 0.0f64;
            for t in (0..steps).rev() {
                acc += left[t * rows + i] * right[t * cols + j];
            }
            *o = acc;
        }
        if let Some(f) = fuse {
            for (j, g) in row.iter_mut().enumerate() {
                // SAFETY: `f.w` points at a live (rows, cols) matrix distinct from `out`.
                let w = unsafe { &mut *f.w.add(i * cols + j) };
                fuse_scalar(g, w, f.max, f.neg_lr);
            }
        }
    }
}

/// `out[i] = Σ_{t=T−1…0} m[t][i]` for `m` `(T, out.len())`, added in decreasing `t`.
#[inline(always)]
fn sum_rows_rev(out: &mut [f64], m: &[f64], steps: usize) {
    let n = out.len();
    out.fill(0.0);
    for t in (0..steps).rev() {
        for (o, &v) in out.iter_mut().zip(&m[t * n..(t + 1) * n]) {
            *o += v;
        }
    }
}

/// Backward pass (the course's `rnn_backward`) into `ws.grads`. Inputs already validated.
///
/// The course adds each step's outer products to the gradients as it walks back in time;
/// here the recurrence runs first (keeping `dy⟨t⟩` and `daraw⟨t⟩`) and each gradient element
/// is then summed over `t = T−1, …, 0` in that same order: the same additions, so the same
/// bits, with each gradient row written once instead of once per step.
#[inline(always)]
fn backward_into<const L: u8>(
    ws: &mut CharRnnWorkspace,
    p: &ParamsRef<'_>,
    x: &[Option<usize>],
    y: &[usize],
) -> Result<()> {
    recurrence::<L>(ws, p, x, y);
    gradient_sums::<L>(ws, x, None)
}

/// The backward recurrence, t = T−1 … 0: `dy⟨t⟩ = ŷ⟨t⟩ − one_hot(y⟨t⟩)`,
/// `da = Wyaᵀ dy + da_next`, `daraw⟨t⟩ = (1 − a⟨t⟩²) ∘ da`, `da_next = Waaᵀ daraw⟨t⟩`.
#[inline(always)]
fn recurrence<const L: u8>(
    ws: &mut CharRnnWorkspace,
    p: &ParamsRef<'_>,
    x: &[Option<usize>],
    y: &[usize],
) {
    let (n_a, n_y) = (p.n_a, p.n_y);
    let steps = x.len();
    let CharRnnWorkspace {
        a,
        y_hat,
        dy,
        da,
        daraw,
        da_next,
        ..
    } = ws;
    let (a, y_hat) = (&a[..], &y_hat[..]);
    let (dy, daraw) = (&mut dy[..steps * n_y], &mut daraw[..steps * n_a]);
    let (da, da_next) = (&mut da[..], &mut da_next[..]);
    // First the parts that do not depend on the recurrence, for all steps (independent, so
    // the CPU overlaps them): dy⟨t⟩ and Wyaᵀ dy⟨t⟩, the latter parked in daraw⟨t⟩.
    for t in (0..steps).rev() {
        let dy_t = &mut dy[t * n_y..(t + 1) * n_y];
        dy_t.copy_from_slice(&y_hat[t * n_y..(t + 1) * n_y]);
        dy_t[y[t]] -= 1.0;
        gemv_n::<L>(p.wya, n_y, n_a, dy_t, &mut daraw[t * n_a..(t + 1) * n_a]);
    }
    // Then the serial chain through da_next, with the same operations as the course's
    // step-by-step loop: da = Wyaᵀ dy + da_next, daraw = (1 − a²) ∘ da.
    da_next.fill(0.0);
    for t in (0..steps).rev() {
        let a_t = &a[(t + 1) * n_a..(t + 2) * n_a];
        let daraw_t = &mut daraw[t * n_a..(t + 1) * n_a];
        for (((dri, dai), &dni), &ai) in daraw_t
            .iter_mut()
            .zip(da.iter_mut())
            .zip(da_next.iter())
            .zip(a_t)
        {
            *dai = *dri + dni;
            *dri = (1.0 - ai * ai) * *dai;
        }
        gemv_n::<L>(p.waa, n_a, n_a, daraw_t, da_next);
    }
}

/// Mutable flat views of the parameters, for the fused clip + update.
struct ParamsMut<'a> {
    wax: &'a mut [f64], // (n_a, n_x)
    waa: &'a mut [f64], // (n_a, n_a)
    wya: &'a mut [f64], // (n_y, n_a)
    b: &'a mut [f64],   // (n_a,)
    by: &'a mut [f64],  // (n_y,)
}

/// "Clip to ±max, then `w += neg_lr · g`", applied to gradient blocks as soon as they are
/// summed (`w` has the gradient's layout).
#[derive(Clone, Copy)]
struct Fuse {
    w: *mut f64,
    max: f64,
    neg_lr: f64,
}

/// The gradients as sums over the steps of the recurrence's `dy⟨t⟩` and `daraw⟨t⟩` (see
/// `backward_into`); with `update = Some((params, max, neg_lr))` each gradient is also clipped
/// element-wise and applied to its parameter right away.
#[inline(always)]
fn gradient_sums<const L: u8>(
    ws: &mut CharRnnWorkspace,
    x: &[Option<usize>],
    update: Option<(&mut ParamsMut<'_>, f64, f64)>,
) -> Result<()> {
    let (n_a, n_x, n_y) = (ws.n_a, ws.n_x, ws.n_y);
    let steps = x.len();
    let CharRnnWorkspace {
        a,
        dy,
        daraw,
        grads,
        ..
    } = ws;
    let (a, dy, daraw) = (&a[..], &dy[..steps * n_y], &daraw[..steps * n_a]);
    let (mut upd, max, neg_lr) = match update {
        Some((pm, max, neg_lr)) => (Some(pm), max, neg_lr),
        None => (None, 0.0, 0.0),
    };
    let fuse = |w: Option<&mut [f64]>| {
        w.map(|w| Fuse {
            w: w.as_mut_ptr(),
            max,
            neg_lr,
        })
    };
    // dWya = Σ_t dy⟨t⟩ a⟨t⟩ᵀ
    let dwya = flat_mut("dwya", &mut grads.dwya)?; // (n_y, n_a)
    sum_outer_rev::<L>(
        dwya,
        n_y,
        n_a,
        dy,
        &a[n_a..],
        steps,
        fuse(upd.as_mut().map(|p| &mut *p.wya)),
    );
    // dWaa = Σ_t daraw⟨t⟩ a⟨t−1⟩ᵀ
    let dwaa = flat_mut("dwaa", &mut grads.dwaa)?; // (n_a, n_a)
    sum_outer_rev::<L>(
        dwaa,
        n_a,
        n_a,
        daraw,
        a,
        steps,
        fuse(upd.as_mut().map(|p| &mut *p.waa)),
    );
    // dby = Σ_t dy⟨t⟩ ; db = Σ_t daraw⟨t⟩
    let dby = flat_mut("dby", &mut grads.dby)?; // (n_y,)
    sum_rows_rev(dby, dy, steps);
    let db = flat_mut("db", &mut grads.db)?; // (n_a,)
    sum_rows_rev(db, daraw, steps);
    // dWax = Σ_t daraw⟨t⟩ x⟨t⟩ᵀ: one column per one-hot input, nothing for the zero input
    let dwax = flat_mut("dwax", &mut grads.dwax)?; // (n_a, n_x)
    dwax.fill(0.0);
    for t in (0..steps).rev() {
        if let Some(ix) = x[t] {
            for (row, &d) in dwax
                .chunks_exact_mut(n_x)
                .zip(&daraw[t * n_a..(t + 1) * n_a])
            {
                row[ix] += d;
            }
        }
    }
    if let Some(pm) = upd {
        clip_update_body::<L>(pm.by, dby, max, neg_lr);
        clip_update_body::<L>(pm.b, db, max, neg_lr);
        clip_update_body::<L>(pm.wax, dwax, max, neg_lr);
    }
    Ok(())
}

/// `fuse` applied to `g[j]` and its weight `w[j]`, one element (the portable definition).
#[inline(always)]
fn fuse_scalar(g: &mut f64, w: &mut f64, max: f64, neg_lr: f64) {
    let d = clip_value(*g, max);
    *g = d;
    *w += neg_lr * d;
}

/// Kernel levels: the portable code (which defines every result), AVX2+FMA, AVX-512F.
/// All levels give the same bits; the wider ones only run the same operations on more lanes.
pub(crate) const PORTABLE: u8 = 0;
pub(crate) const AVX2: u8 = 1;
pub(crate) const AVX512: u8 = 2;

/// The widest level this CPU runs, capped by the environment variable `RNNLAB_SIMD`
/// (`portable`, `avx2` or `avx512`; for benchmarks — every level gives the same results).
pub(crate) fn simd_level() -> u8 {
    match crate::math::SimdLevel::current() {
        crate::math::SimdLevel::Portable => PORTABLE,
        crate::math::SimdLevel::Avx2 => AVX2,
        crate::math::SimdLevel::Avx512 => AVX512,
    }
}

/// `fn $name(args) -> ret` running `$body::<level>(args)` compiled for the CPU's widest level
/// (with the target features enabled, `mul_add` is one instruction and the SIMD kernels
/// inline).
macro_rules! dispatch {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty => $body:ident) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn level_avx512($($arg: $ty),*) -> $ret {
                    $body::<AVX512>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn level_avx2($($arg: $ty),*) -> $ret {
                    $body::<AVX2>($($arg),*)
                }
                match simd_level() {
                    // SAFETY: `simd_level` detected the features each function is compiled for.
                    AVX512 => return unsafe { level_avx512($($arg),*) },
                    // SAFETY: as above.
                    AVX2 => return unsafe { level_avx2($($arg),*) },
                    _ => {}
                }
            }
            $body::<PORTABLE>($($arg),*)
        }
    };
}

#[inline(always)]
fn forward_backward_body<const L: u8>(
    ws: &mut CharRnnWorkspace,
    p: &ParamsRef<'_>,
    x: &[Option<usize>],
    y: &[usize],
    a0: &[f64],
) -> Result<f64> {
    let loss = forward_into::<L>(ws, p, x, y, a0);
    backward_into::<L>(ws, p, x, y)?;
    Ok(loss)
}

dispatch! {
    /// Forward then backward pass over one sequence; returns the loss.
    fn forward_backward(ws: &mut CharRnnWorkspace, p: &ParamsRef<'_>, x: &[Option<usize>], y: &[usize], a0: &[f64]) -> Result<f64> => forward_backward_body
}
#[inline(always)]
fn forward_recurrence_body<const L: u8>(
    ws: &mut CharRnnWorkspace,
    p: &ParamsRef<'_>,
    x: &[Option<usize>],
    y: &[usize],
    a0: &[f64],
) -> f64 {
    let loss = forward_into::<L>(ws, p, x, y, a0);
    recurrence::<L>(ws, p, x, y);
    loss
}

#[inline(always)]
fn fused_update_body<const L: u8>(
    ws: &mut CharRnnWorkspace,
    x: &[Option<usize>],
    pm: &mut ParamsMut<'_>,
    max: f64,
    neg_lr: f64,
) -> Result<()> {
    gradient_sums::<L>(ws, x, Some((pm, max, neg_lr)))
}

dispatch! {
    /// Forward pass and backward recurrence; returns the loss.
    fn forward_recurrence(ws: &mut CharRnnWorkspace, p: &ParamsRef<'_>, x: &[Option<usize>], y: &[usize], a0: &[f64]) -> f64 => forward_recurrence_body
}
dispatch! {
    /// Gradient sums, each clipped to ±max and applied to its parameter as it is formed.
    fn fused_update(ws: &mut CharRnnWorkspace, x: &[Option<usize>], pm: &mut ParamsMut<'_>, max: f64, neg_lr: f64) -> Result<()> => fused_update_body
}
dispatch! {
    /// Backward pass over the forward pass held in `ws`.
    fn backward_dispatch(ws: &mut CharRnnWorkspace, p: &ParamsRef<'_>, x: &[Option<usize>], y: &[usize]) -> Result<()> => backward_into
}
dispatch! {
    /// One forward step (sampling).
    fn step_forward_dispatch(p: &ParamsRef<'_>, x: Option<usize>, a_prev: &[f64], a_next: &mut [f64], p_out: &mut [f64], temperature: f64) -> () => step_forward
}
dispatch! {
    /// Forward pass only.
    fn forward_step_only(ws: &mut CharRnnWorkspace, p: &ParamsRef<'_>, x: &[Option<usize>], y: &[usize], a0: &[f64]) -> f64 => forward_into
}

// ------------------------------------------------------------------ the course's functions

/// The course's `initialize_parameters`: `np.random.seed(1)`, then
/// `Wax, Waa, Wya = randn(n_a,n_x)·0.01, randn(n_a,n_a)·0.01, randn(n_y,n_a)·0.01` (in that
/// order) and zero biases.
pub fn initialize_parameters(n_a: usize, n_x: usize, n_y: usize) -> CharRnnParams {
    initialize_parameters_seeded(n_a, n_x, n_y, 1)
}

/// [`initialize_parameters`] with another seed than the course's 1.
pub fn initialize_parameters_seeded(
    n_a: usize,
    n_x: usize,
    n_y: usize,
    seed: u32,
) -> CharRnnParams {
    let mut rs = RandomState::new(seed);
    let wax = rs.randn2(n_a, n_x) * 0.01; // (n_a, n_x)
    let waa = rs.randn2(n_a, n_a) * 0.01; // (n_a, n_a)
    let wya = rs.randn2(n_y, n_a) * 0.01; // (n_y, n_a)
    CharRnnParams {
        wax,
        waa,
        wya,
        b: Array2::zeros((n_a, 1)),
        by: Array2::zeros((n_y, 1)),
    }
}

/// What [`rnn_forward`] keeps for [`rnn_backward`]: the inputs and every hidden state and
/// softmax output (the course's `cache = (y_hat, a, x)`).
#[derive(Debug, Clone)]
pub struct CharRnnCache {
    /// The input indices (`None` = zero vector).
    pub x: Vec<Option<usize>>,
    /// The buffers holding `a⟨t⟩` and `ŷ⟨t⟩`; see [`CharRnnWorkspace::a`] and
    /// [`CharRnnWorkspace::y_hat`].
    pub workspace: CharRnnWorkspace,
}

impl CharRnnCache {
    /// The last hidden state `a⟨T−1⟩`, `(n_a,)`.
    pub fn a_last(&self) -> &[f64] {
        self.workspace.a_last()
    }
}

/// The course's `rnn_forward(X, Y, a0, parameters)`: the cross-entropy loss
/// `Σ_t −log ŷ⟨t⟩[Y[t]]` and the cache. `x[t] = None` is the zero input vector; `a0` is
/// `(n_a,)`. Index errors name the position and the value.
pub fn rnn_forward(
    x: &[Option<usize>],
    y: &[usize],
    a0: &[f64],
    params: &CharRnnParams,
) -> Result<(f64, CharRnnCache)> {
    let p = params.view()?;
    check_sequence(x, y, a0, p.n_a, p.n_x, p.n_y)?;
    let mut ws = CharRnnWorkspace::new(p.n_a, p.n_x, p.n_y, x.len());
    let loss = forward_step_only(&mut ws, &p, x, y, a0);
    Ok((
        loss,
        CharRnnCache {
            x: x.to_vec(),
            workspace: ws,
        },
    ))
}

/// The course's `rnn_backward(X, Y, parameters, cache)`: the gradients of the loss of the
/// forward pass held in `cache` (backpropagation through time).
pub fn rnn_backward(
    x: &[Option<usize>],
    y: &[usize],
    params: &CharRnnParams,
    cache: &CharRnnCache,
) -> Result<CharRnnGradients> {
    let p = params.view()?;
    check_sequence(x, y, cache.workspace.a0(), p.n_a, p.n_x, p.n_y)?;
    let ws = &cache.workspace;
    if (ws.n_a, ws.n_x, ws.n_y) != (p.n_a, p.n_x, p.n_y) || ws.steps != x.len() || cache.x != x {
        return Err(CoreError::invalid(
            "rnn_backward: the cache does not come from rnn_forward on these x and parameters",
        ));
    }
    let mut ws = ws.clone();
    backward_dispatch(&mut ws, &p, x, y)?;
    Ok(ws.grads)
}

/// The course's `clip(gradients, maxValue)`: every element into `[−max_value, max_value]`
/// (`np.clip`, NaN stays NaN).
pub fn clip(grads: &mut CharRnnGradients, max_value: f64) -> Result<()> {
    check_clip_value(max_value)?;
    grads.validate()?;
    for g in grads.all_mut() {
        for v in flat_mut("gradients", g)? {
            *v = clip_value(*v, max_value);
        }
    }
    Ok(())
}

#[inline(always)]
fn clip_value(v: f64, max_value: f64) -> f64 {
    if v > max_value {
        max_value
    } else if v < -max_value {
        -max_value
    } else {
        v
    }
}

/// Global-norm clipping: if `‖(dWax, dWaa, dWya, db, dby)‖₂ > max_norm`, scale every
/// gradient by `max_norm / norm`. Returns the norm before clipping.
pub fn clip_global_norm(grads: &mut CharRnnGradients, max_norm: f64) -> Result<f64> {
    check_clip_value(max_norm)?;
    grads.validate()?;
    let mut sq = 0.0f64;
    for g in grads.all_mut() {
        for v in g.iter() {
            sq += v * v;
        }
    }
    let norm = sq.sqrt();
    if norm > max_norm {
        let scale = max_norm / norm;
        for g in grads.all_mut() {
            g.mapv_inplace(|v| v * scale);
        }
    }
    Ok(norm)
}

/// The course's `update_parameters`: `W += −lr · dW` for all five parameters.
pub fn update_parameters(
    params: &mut CharRnnParams,
    grads: &CharRnnGradients,
    learning_rate: f64,
) -> Result<()> {
    params.validate()?;
    grads.validate()?;
    if grads.dims() != (params.n_a(), params.n_x(), params.n_y()) {
        return Err(CoreError::ShapeMismatch {
            name: "gradients".into(),
            expected: format!(
                "n_a={}, n_x={}, n_y={}",
                params.n_a(),
                params.n_x(),
                params.n_y()
            ),
            actual: format!("{:?}", grads.dims()),
        });
    }
    check_learning_rate(learning_rate)?;
    let neg_lr = -learning_rate;
    let pairs: [(&mut Array2<f64>, &Array2<f64>); 5] = [
        (&mut params.wax, &grads.dwax),
        (&mut params.waa, &grads.dwaa),
        (&mut params.wya, &grads.dwya),
        (&mut params.b, &grads.db),
        (&mut params.by, &grads.dby),
    ];
    for (w, dw) in pairs {
        let w = w
            .as_slice_mut()
            .ok_or_else(|| CoreError::invalid("parameters: expected C-order arrays"))?;
        let dw = dw
            .as_slice()
            .ok_or_else(|| CoreError::invalid("gradients: expected C-order arrays"))?;
        for (wi, &di) in w.iter_mut().zip(dw) {
            *wi += neg_lr * di;
        }
    }
    Ok(())
}

/// Clip in place according to `mode`.
fn apply_clip(grads: &mut CharRnnGradients, mode: Clip) -> Result<()> {
    match mode {
        Clip::None => Ok(()),
        Clip::ElementWise(v) => clip(grads, v),
        Clip::GlobalNorm(v) => clip_global_norm(grads, v).map(|_| ()),
    }
}

/// The course's `optimize(X, Y, a_prev, parameters, learning_rate)`: forward, backward,
/// clip to ±5, SGD update. Returns `(loss, gradients, a_last)` with `a_last = a⟨T−1⟩`.
pub fn optimize(
    x: &[Option<usize>],
    y: &[usize],
    a_prev: &[f64],
    params: &mut CharRnnParams,
    learning_rate: f64,
) -> Result<(f64, CharRnnGradients, Vec<f64>)> {
    let mut ws = CharRnnWorkspace::new(params.n_a(), params.n_x(), params.n_y(), x.len());
    let loss = optimize_in(
        &mut ws,
        x,
        y,
        a_prev,
        params,
        learning_rate,
        Clip::ElementWise(COURSE_CLIP),
    )?;
    let a_last = ws.a_last().to_vec();
    Ok((loss, ws.grads, a_last))
}

/// [`optimize`] with buffers from `ws` (no allocation once `ws` is large enough) and a
/// choice of clipping. Leaves the clipped gradients in `ws.grads` and the last hidden state
/// in `ws.a_last()`; returns the loss.
pub fn optimize_in(
    ws: &mut CharRnnWorkspace,
    x: &[Option<usize>],
    y: &[usize],
    a_prev: &[f64],
    params: &mut CharRnnParams,
    learning_rate: f64,
    clip_mode: Clip,
) -> Result<f64> {
    optimize_step(
        ws,
        (x, y, a_prev),
        params,
        learning_rate,
        clip_mode,
        OnNonFinite::Update,
    )
}

/// What a training step does when its loss is not finite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnNonFinite {
    /// Update anyway, as the course's numpy code does.
    Update,
    /// Leave the parameters as they were (a trainer keeps its last good state).
    Keep,
}

/// [`optimize_in`] with a choice for a diverged step; returns the loss either way.
pub(crate) fn optimize_step(
    ws: &mut CharRnnWorkspace,
    (x, y, a_prev): (&[Option<usize>], &[usize], &[f64]),
    params: &mut CharRnnParams,
    learning_rate: f64,
    clip_mode: Clip,
    on_non_finite: OnNonFinite,
) -> Result<f64> {
    clip_mode.validate()?;
    check_learning_rate(learning_rate)?;
    {
        let p = params.view()?;
        check_sequence(x, y, a_prev, p.n_a, p.n_x, p.n_y)?;
        ws.ensure(p.n_a, p.n_x, p.n_y, x.len());
    }
    // the course's element-wise clip: each gradient block is clipped and applied as soon as
    // it is summed (the same operations per element as clip, then update_parameters)
    let fused = matches!(clip_mode, Clip::ElementWise(_));
    let loss = if fused {
        forward_recurrence(ws, &params.view()?, x, y, a_prev)
    } else {
        forward_backward(ws, &params.view()?, x, y, a_prev)?
    };
    if !loss.is_finite() && on_non_finite == OnNonFinite::Keep {
        return Ok(loss);
    }
    if let Clip::ElementWise(max_value) = clip_mode {
        let mut pm = ParamsMut {
            wax: flat_mut("wax", &mut params.wax)?,
            waa: flat_mut("waa", &mut params.waa)?,
            wya: flat_mut("wya", &mut params.wya)?,
            b: flat_mut("b", &mut params.b)?,
            by: flat_mut("by", &mut params.by)?,
        };
        fused_update(ws, x, &mut pm, max_value, -learning_rate)?;
    } else {
        apply_clip(&mut ws.grads, clip_mode)?;
        update_parameters(params, &ws.grads, learning_rate)?;
    }
    Ok(loss)
}

/// Element-wise clip then `w += neg_lr · d` (the same operations as `clip` then
/// `update_parameters`).
#[inline(always)]
fn clip_update_body<const L: u8>(w: &mut [f64], dw: &mut [f64], max_value: f64, neg_lr: f64) {
    #[cfg(target_arch = "x86_64")]
    if L == AVX512 {
        // SAFETY: as in `gemv_t`, with avx512f.
        unsafe { avx512::clip_update(w, dw, max_value, neg_lr) };
        return;
    }
    for (wi, di) in w.iter_mut().zip(dw.iter_mut()) {
        let d = clip_value(*di, max_value);
        *di = d;
        *wi += neg_lr * d;
    }
}

/// The course's `smooth`: `loss · 0.999 + cur_loss · 0.001`.
pub fn smooth(loss: f64, cur_loss: f64) -> f64 {
    loss * 0.999 + cur_loss * 0.001
}

/// The course's `get_initial_loss`: `−log(1/vocab_size) · seq_length`.
pub fn initial_loss(vocab_size: usize, seq_length: usize) -> f64 {
    -(1.0 / vocab_size as f64).ln() * seq_length as f64
}

// ------------------------------------------------------------------ sampling

/// Options of [`sample_many`].
#[derive(Debug, Clone, PartialEq)]
pub struct SampleOptions {
    /// Seed of the first name; name `k` uses `seed + k` (taken modulo 2³², MT19937 seeds are
    /// 32-bit).
    pub seed: u64,
    /// Softmax temperature (> 0): the logits are divided by it. 1 is the course.
    pub temperature: f64,
    /// Maximum number of sampled characters per name (the course: 50).
    pub max_length: usize,
    /// Characters fed before sampling starts (the course: none). They begin every result.
    pub prefix: Vec<usize>,
    /// `true`: the course's procedure — re-seed with `counter + seed` before every draw,
    /// incrementing both, and append a newline after `max_length` characters even when the
    /// last one already was a newline. `false`: one generator per name, seeded once, and a
    /// newline appended only if missing.
    pub course_mode: bool,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            seed: 0,
            temperature: 1.0,
            max_length: COURSE_MAX_SAMPLE_LENGTH,
            prefix: Vec::new(),
            course_mode: false,
        }
    }
}

/// The course's `sample(parameters, char_to_ix, seed)`: start from a zero input and zero
/// state, and at each step draw the next index from `ŷ` with `np.random.choice(p=ŷ)` after
/// `np.random.seed(counter + seed)` (both incremented per step); stop at the newline or after
/// 50 characters, then append the newline. Returns the indices, ending with `newline_ix`.
pub fn sample(params: &CharRnnParams, newline_ix: usize, seed: u32) -> Result<Vec<usize>> {
    let opts = SampleOptions {
        seed: seed as u64,
        course_mode: true,
        ..SampleOptions::default()
    };
    let p = params.view()?;
    check_sample(&p, newline_ix, &opts)?;
    sample_one(&p, newline_ix, &opts, 0)
}

/// `count` names sampled in parallel (rayon); name `k` depends only on its own seed
/// `opts.seed + k`, so the result is deterministic and independent of the thread count. With
/// `course_mode`, temperature 1 and no prefix, name `k` equals `sample(params, newline_ix,
/// seed + k)`.
pub fn sample_many(
    params: &CharRnnParams,
    newline_ix: usize,
    opts: &SampleOptions,
    count: usize,
) -> Result<Vec<Vec<usize>>> {
    let p = params.view()?;
    check_sample(&p, newline_ix, opts)?;
    (0..count)
        .into_par_iter()
        .map(|k| sample_one(&p, newline_ix, opts, k as u64))
        .collect()
}

fn check_sample(p: &ParamsRef<'_>, newline_ix: usize, opts: &SampleOptions) -> Result<()> {
    if newline_ix >= p.n_y || newline_ix >= p.n_x {
        return Err(CoreError::invalid(format!(
            "newline_ix: index {newline_ix} out of range for a vocabulary of {}",
            p.n_y.min(p.n_x)
        )));
    }
    if p.n_x != p.n_y {
        return Err(CoreError::ShapeMismatch {
            name: "wya".into(),
            expected: format!("n_y = n_x = {} (the output feeds back as input)", p.n_x),
            actual: format!("n_y = {}", p.n_y),
        });
    }
    if !(opts.temperature > 0.0 && opts.temperature.is_finite()) {
        return Err(CoreError::invalid(format!(
            "temperature: expected a finite number > 0, got {}",
            opts.temperature
        )));
    }
    for (i, &c) in opts.prefix.iter().enumerate() {
        if c >= p.n_x {
            return Err(CoreError::invalid(format!(
                "prefix[{i}]: index {c} out of range for a vocabulary of {}",
                p.n_x
            )));
        }
    }
    Ok(())
}

/// One name (see [`SampleOptions`]); `k` is its position in a batch.
fn sample_one(
    p: &ParamsRef<'_>,
    newline_ix: usize,
    opts: &SampleOptions,
    k: u64,
) -> Result<Vec<usize>> {
    let seed = opts.seed.wrapping_add(k);
    let mut rs = RandomState::new(seed as u32);
    let mut a_prev = vec![0.0; p.n_a]; // (n_a,)
    let mut a = vec![0.0; p.n_a]; // (n_a,)
    let mut probs = vec![0.0; p.n_y]; // (n_y,)
    let mut indices = Vec::with_capacity(opts.prefix.len() + opts.max_length + 1);
    let mut x: Option<usize> = None;
    // feed the prefix: its characters are inputs, not draws
    for &c in &opts.prefix {
        step_forward_dispatch(p, x, &a_prev, &mut a, &mut probs, opts.temperature);
        std::mem::swap(&mut a_prev, &mut a);
        indices.push(c);
        x = Some(c);
    }
    let mut counter: u64 = 0;
    let mut idx = usize::MAX;
    while idx != newline_ix && counter != opts.max_length as u64 {
        step_forward_dispatch(p, x, &a_prev, &mut a, &mut probs, opts.temperature);
        if opts.course_mode {
            // np.random.seed(counter + seed), where the course's seed also grows by one per step
            rs.seed(seed.wrapping_add(2 * counter) as u32);
        }
        idx = rs.choice_p(&probs)?;
        indices.push(idx);
        x = Some(idx);
        std::mem::swap(&mut a_prev, &mut a);
        counter += 1;
    }
    if counter == opts.max_length as u64 && (opts.course_mode || idx != newline_ix) {
        indices.push(newline_ix);
    }
    Ok(indices)
}

#[cfg(test)]
mod tests {
    //! The SIMD kernels must give the portable code's bits (the portable code defines the
    //! order of operations; on x86-64 with AVX2+FMA only the SIMD versions run in training).
    use super::*;

    fn data(rs: &mut RandomState, n: usize) -> Vec<f64> {
        (0..n).map(|_| rs.standard_normal()).collect()
    }

    type Outputs = Vec<Vec<u64>>;

    /// gemv_t, gemv_n, sum_outer_rev, tanh and exp at level `L`, as bit patterns.
    #[inline(always)]
    fn kernels<const L: u8>(
        a: &[f64],
        rows: usize,
        m: usize,
        x: &[f64],
        v: &[f64],
        steps: usize,
    ) -> Outputs {
        let mut yt = vec![f64::NAN; rows];
        gemv_t::<L>(a, rows, m, x, &mut yt);
        let mut yn = vec![f64::NAN; m];
        gemv_n::<L>(a, rows, m, v, &mut yn);
        let mut out = vec![f64::NAN; rows * m];
        sum_outer_rev::<L>(
            &mut out,
            rows,
            m,
            &a[..steps * rows],
            &x[..steps * m],
            steps,
            None,
        );
        // fused clip (at 0.5, so some elements clip) + update of a weight matrix
        let mut fused = vec![f64::NAN; rows * m];
        let mut w: Vec<f64> = a.iter().map(|t| t * 0.25).collect();
        let fuse = Fuse {
            w: w.as_mut_ptr(),
            max: 0.5,
            neg_lr: -0.01,
        };
        sum_outer_rev::<L>(
            &mut fused,
            rows,
            m,
            &a[..steps * rows],
            &x[..steps * m],
            steps,
            Some(fuse),
        );
        let mut th: Vec<f64> = x.iter().map(|t| t * 3.0).collect();
        tanh_in_place::<L>(&mut th);
        let mut ex: Vec<f64> = x.iter().map(|t| t * 30.0).collect();
        exp_in_place::<L>(&mut ex);
        [yt, yn, out, fused, w, th, ex]
            .iter()
            .map(|v| v.iter().map(|f| f.to_bits()).collect())
            .collect()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn kernels_avx2(
        a: &[f64],
        rows: usize,
        m: usize,
        x: &[f64],
        v: &[f64],
        steps: usize,
    ) -> Outputs {
        kernels::<AVX2>(a, rows, m, x, v, steps)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn kernels_avx512(
        a: &[f64],
        rows: usize,
        m: usize,
        x: &[f64],
        v: &[f64],
        steps: usize,
    ) -> Outputs {
        kernels::<AVX512>(a, rows, m, x, v, steps)
    }

    #[test]
    fn simd_kernels_equal_portable_kernels() {
        let level = simd_level();
        let mut rs = RandomState::new(11);
        for rows in 1..=21 {
            for m in 1..=41 {
                let steps = rows.min(m).min(5);
                let a = data(&mut rs, rows * m);
                let x = data(&mut rs, m.max(steps * m));
                let v = data(&mut rs, rows);
                let portable = kernels::<PORTABLE>(&a, rows, m, &x, &v, steps);
                #[cfg(target_arch = "x86_64")]
                {
                    if level >= AVX2 {
                        // SAFETY: the CPU supports avx2 and fma.
                        let simd = unsafe { kernels_avx2(&a, rows, m, &x, &v, steps) };
                        assert_eq!(simd, portable, "AVX2, rows={rows} m={m}");
                    }
                    if level >= AVX512 {
                        // SAFETY: the CPU supports avx512f, avx2 and fma.
                        let simd = unsafe { kernels_avx512(&a, rows, m, &x, &v, steps) };
                        assert_eq!(simd, portable, "AVX-512, rows={rows} m={m}");
                    }
                }
                let _ = level;
            }
        }
    }

    /// Wider shapes than the exhaustive sweep above: the course's 50 and 27 and the sizes
    /// around the kernels' block boundaries (one pass of up to 64 outputs in `gemv_n`,
    /// groups of eight column vectors in `sum_outer_rev`).
    #[test]
    fn simd_kernels_equal_portable_kernels_wide() {
        let level = simd_level();
        let mut rs = RandomState::new(12);
        for rows in [1, 2, 3, 5, 27, 50] {
            for m in [44, 50, 60, 63, 64, 65, 68, 72, 76, 100, 131] {
                let steps = 13;
                let a = data(&mut rs, rows.max(steps) * m.max(rows));
                let x = data(&mut rs, steps * m);
                let v = data(&mut rs, rows);
                let portable = kernels::<PORTABLE>(&a, rows, m, &x, &v, steps.min(rows));
                #[cfg(target_arch = "x86_64")]
                {
                    if level >= AVX2 {
                        // SAFETY: the CPU supports avx2 and fma.
                        let simd = unsafe { kernels_avx2(&a, rows, m, &x, &v, steps.min(rows)) };
                        assert_eq!(simd, portable, "AVX2, rows={rows} m={m}");
                    }
                    if level >= AVX512 {
                        // SAFETY: the CPU supports avx512f, avx2 and fma.
                        let simd = unsafe { kernels_avx512(&a, rows, m, &x, &v, steps.min(rows)) };
                        assert_eq!(simd, portable, "AVX-512, rows={rows} m={m}");
                    }
                }
                let _ = level;
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn max_avx512(z: &[f64]) -> f64 {
        max_of::<AVX512>(z)
    }

    /// The softmax's `np.max`: the largest value, or the first NaN (with its bits), at
    /// every level and length (eight-lane blocks and their masked tails).
    #[test]
    fn max_of_is_numpy_max_at_every_level() {
        let mut rs = RandomState::new(21);
        let odd_nan = f64::from_bits(0x7ff8_dead_beef_0001);
        for n in 1..=27 {
            let base: Vec<f64> = data(&mut rs, n).iter().map(|v| v * 10.0 - 30.0).collect();
            let mut cases = vec![base.clone(), vec![f64::NEG_INFINITY; n]];
            let mut with_inf = base.clone();
            with_inf[n / 2] = f64::INFINITY;
            cases.push(with_inf);
            for pos in [0, n / 2, n - 1] {
                let mut c = base.clone();
                c[pos] = odd_nan;
                if pos + 1 < n {
                    c[n - 1] = f64::NAN; // a later NaN: the first one wins
                }
                cases.push(c);
            }
            for z in &cases {
                let want = match z.iter().find(|v| v.is_nan()) {
                    Some(&nan) => nan,
                    None => z.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                };
                assert_eq!(max_of::<PORTABLE>(z).to_bits(), want.to_bits(), "{z:?}");
                #[cfg(target_arch = "x86_64")]
                if simd_level() >= AVX512 {
                    // SAFETY: the CPU supports avx512f, avx2 and fma.
                    let got = unsafe { max_avx512(z) };
                    assert_eq!(got.to_bits(), want.to_bits(), "AVX-512 {z:?}");
                }
            }
        }
    }

    #[test]
    fn batched_exp_and_tanh_equal_scalar_ones() {
        let mut rs = RandomState::new(5);
        let mut xs: Vec<f64> = (0..103).map(|_| rs.standard_normal() * 4.0).collect();
        xs.extend([0.0, -0.0, 800.0, -800.0, f64::NAN, f64::INFINITY, 1e-310]);
        let mut t = xs.clone();
        npy_tanh_in_place(&mut t);
        let mut e = xs.clone();
        npy_exp_in_place(&mut e);
        for ((&x, &tv), &ev) in xs.iter().zip(&t).zip(&e) {
            assert_eq!(tv.to_bits(), npy_tanh(x).to_bits(), "tanh({x})");
            assert!(
                ev.to_bits() == npy_exp(x).to_bits() || (ev.is_nan() && x.is_nan()),
                "exp({x})"
            );
        }
        // the AVX-512 kernels on the same values, at every length (groups of vectors and
        // their masked tails)
        #[cfg(target_arch = "x86_64")]
        if simd_level() >= AVX512 {
            for n in 0..=xs.len() {
                let mut tw = xs[..n].to_vec();
                let mut ew = xs[..n].to_vec();
                // SAFETY: the CPU supports avx512f, avx2 and fma.
                unsafe { tanh_exp_avx512(&mut tw, &mut ew) };
                for ((&tv, &ev), (&want_t, &want_e)) in tw.iter().zip(&ew).zip(t.iter().zip(&e)) {
                    assert_eq!(tv.to_bits(), want_t.to_bits(), "AVX-512 tanh, n={n}");
                    assert!(
                        ev.to_bits() == want_e.to_bits() || (ev.is_nan() && want_e.is_nan()),
                        "AVX-512 exp, n={n}"
                    );
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn tanh_exp_avx512(t: &mut [f64], e: &mut [f64]) {
        tanh_in_place::<AVX512>(t);
        exp_in_place::<AVX512>(e);
    }

    #[test]
    fn forward_backward_paths_agree() {
        let mut rs = RandomState::new(3);
        let (n_a, v) = (13, 7);
        let p = CharRnnParams {
            wax: rs.randn2(n_a, v) * 0.5,
            waa: rs.randn2(n_a, n_a) * 0.5,
            wya: rs.randn2(v, n_a) * 0.5,
            b: rs.randn2(n_a, 1),
            by: rs.randn2(v, 1),
        };
        let x = [None, Some(3), Some(6), Some(0), Some(2)];
        let y = [3, 6, 0, 2, 1];
        let a0 = data(&mut rs, n_a);
        let view = p.view().unwrap();
        let mut ws1 = CharRnnWorkspace::new(n_a, v, v, x.len());
        let l1 = forward_into::<PORTABLE>(&mut ws1, &view, &x, &y, &a0);
        backward_into::<PORTABLE>(&mut ws1, &view, &x, &y).unwrap();
        let mut ws2 = CharRnnWorkspace::new(n_a, v, v, x.len());
        let l2 = forward_backward(&mut ws2, &view, &x, &y, &a0).unwrap();
        assert_eq!(l1.to_bits(), l2.to_bits());
        assert_eq!(ws1.grads, ws2.grads);
        assert_eq!(ws1.a_last(), ws2.a_last());
    }
}
