//! Matrix products of the language model, on one of two pure-Rust kernels, split across rayon
//! threads in a way that never depends on the number of threads.
//!
//! Measured on this machine (AVX-512, f32, one thread, shapes of the 2×128 LSTM at batch 128;
//! `cargo test --release -p rnnlab-core --test lm_gemm_bench -- --ignored --nocapture`):
//! the `gemm` crate (AVX-512 kernels) beats ndarray's `matrixmultiply` (AVX2) on the 64-row
//! blocks rnnlab actually issues, so `Backend::Gemm` is the default; see BENCHMARKS.md.
//!
//! Determinism: a product is cut into blocks of [`ROW_BLOCK`] rows of the output (a constant,
//! not a function of the thread count); each block is one single-threaded kernel call and
//! owns its rows, so every output element is summed in the same order whatever thread runs
//! it. No reduction ever crosses blocks.

use rayon::prelude::*;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::math::Float;

/// Rows of output per parallel block. Fixed, so results are identical for any thread count.
pub const ROW_BLOCK: usize = 64;

/// Which GEMM kernel runs the products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The `gemm` crate (AVX-512 / AVX2 / NEON kernels chosen at run time), single-threaded.
    Gemm,
    /// ndarray's `general_mat_mul` (the `matrixmultiply` crate).
    Ndarray,
}

static BACKEND: AtomicU8 = AtomicU8::new(0);

/// Selects the kernel for all later products (process-wide; for benchmarks).
pub fn set_backend(b: Backend) {
    BACKEND.store(if b == Backend::Gemm { 0 } else { 1 }, Ordering::Relaxed);
}

/// The kernel in use.
pub fn backend() -> Backend {
    if BACKEND.load(Ordering::Relaxed) == 0 {
        Backend::Gemm
    } else {
        Backend::Ndarray
    }
}

/// A raw pointer that may cross threads; used only where each thread touches disjoint rows.
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr<T>(pub *mut T);
unsafe impl<T> Send for SyncPtr<T> {}
unsafe impl<T> Sync for SyncPtr<T> {}

/// A strided matrix operand: element (i, j) is at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy)]
pub(crate) struct Operand<T> {
    pub ptr: *const T,
    pub rs: isize,
    pub cs: isize,
}

/// C (m×n, row stride `c_rs`, unit column stride) = [C +] A·B with A m×k, B k×n, one thread.
///
/// # Safety
/// All pointers must address valid memory for the given shapes and strides, and C must not
/// overlap A or B.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_raw<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    c: *mut T,
    c_rs: usize,
    accumulate: bool,
    a: Operand<T>,
    b: Operand<T>,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    *c.add(i * c_rs + j) = T::ZERO;
                }
            }
        }
        return;
    }
    match backend() {
        Backend::Gemm => gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            c_rs as isize,
            accumulate,
            a.ptr,
            a.cs,
            a.rs,
            b.ptr,
            b.cs,
            b.rs,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            gemm::Parallelism::None,
        ),
        Backend::Ndarray => {
            use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};
            // ndarray wants non-negative strides in elements, which all callers use.
            let av =
                ArrayView2::from_shape_ptr((m, k).strides((a.rs as usize, a.cs as usize)), a.ptr);
            let bv =
                ArrayView2::from_shape_ptr((k, n).strides((b.rs as usize, b.cs as usize)), b.ptr);
            let mut cv = ArrayViewMut2::from_shape_ptr((m, n).strides((c_rs, 1)), c);
            let beta = if accumulate { T::ONE } else { T::ZERO };
            ndarray::linalg::general_mat_mul(T::ONE, &av, &bv, beta, &mut cv);
        }
    }
}

/// The stored layout of an operand of `matmul`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Use the row-major matrix as stored.
    N,
    /// Use its transpose.
    T,
}

/// Row-major operand `x` that is (rows×cols) after `op` is applied.
fn operand<T>(x: &[T], op: Op, rows: usize, cols: usize) -> Operand<T> {
    match op {
        // stored rows×cols
        Op::N => Operand {
            ptr: x.as_ptr(),
            rs: cols as isize,
            cs: 1,
        },
        // stored cols×rows
        Op::T => Operand {
            ptr: x.as_ptr(),
            rs: 1,
            cs: rows as isize,
        },
    }
}

/// C (m×n) = [C +] op(A)·op(B), single-threaded. op(A) is m×k, op(B) is k×n; all row-major.
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: Float>(
    c: &mut [T],
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    op_a: Op,
    b: &[T],
    op_b: Op,
    accumulate: bool,
) {
    assert!(
        c.len() >= m * n && a.len() >= m * k && b.len() >= k * n,
        "matmul: operand too short"
    );
    unsafe {
        gemm_raw(
            m,
            n,
            k,
            c.as_mut_ptr(),
            n,
            accumulate,
            operand(a, op_a, m, k),
            operand(b, op_b, k, n),
        )
    }
}

/// Same as [`matmul`], cut into blocks of [`ROW_BLOCK`] output rows run on rayon's pool
/// (results are bit-identical for any number of threads).
#[allow(clippy::too_many_arguments)]
pub fn par_matmul<T: Float>(
    c: &mut [T],
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    op_a: Op,
    b: &[T],
    op_b: Op,
    accumulate: bool,
) {
    if m <= ROW_BLOCK {
        return matmul(c, m, n, k, a, op_a, b, op_b, accumulate);
    }
    par_matmul_grid(c, m, n, k, a, op_a, b, op_b, ROW_BLOCK, n, accumulate);
}

/// C (m×n) = [C +] op(A) (m×k) · op(B) (k×n), all row-major, cut into a grid of blocks of
/// `row_block` × `col_block` outputs run in parallel. Each block is one single-threaded kernel
/// call over the whole `k` and the grid is fixed by the arguments, so every output is summed
/// in the same order for any thread count. (`par_matmul` cuts rows only, in blocks of 64: too
/// small for the tall products here, and no split at all for the 64-row weight gradients.)
#[allow(clippy::too_many_arguments)]
pub fn par_matmul_grid<T: Float>(
    c: &mut [T],
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    op_a: Op,
    b: &[T],
    op_b: Op,
    row_block: usize,
    col_block: usize,
    accumulate: bool,
) {
    assert!(
        c.len() >= m * n && a.len() >= m * k && b.len() >= k * n,
        "par_matmul_grid: operand too short"
    );
    let (a_op, b_op) = (operand(a, op_a, m, k), operand(b, op_b, k, n));
    let (a_rs, a_cs, b_rs, b_cs) = (a_op.rs, a_op.cs, b_op.rs, b_op.cs);
    let (ap, bp, cp) = (
        SyncPtr(a.as_ptr() as *mut T),
        SyncPtr(b.as_ptr() as *mut T),
        SyncPtr(c.as_mut_ptr()),
    );
    let (row_blocks, col_blocks) = (m.div_ceil(row_block), n.div_ceil(col_block));
    (0..row_blocks * col_blocks)
        .into_par_iter()
        .for_each(move |blk| {
            let (ap, bp, cp) = (ap, bp, cp);
            let (i0, j0) = (
                (blk / col_blocks) * row_block,
                (blk % col_blocks) * col_block,
            );
            let (h, w) = (row_block.min(m - i0), col_block.min(n - j0));
            // SAFETY: block `blk` writes only its own rows i0..i0+h × columns j0..j0+w of C;
            // A and B are read-only and in bounds (checked above).
            unsafe {
                gemm_raw(
                    h,
                    w,
                    k,
                    cp.0.add(i0 * n + j0),
                    n,
                    accumulate,
                    Operand {
                        ptr: (ap.0 as *const T).offset(i0 as isize * a_rs),
                        rs: a_rs,
                        cs: a_cs,
                    },
                    Operand {
                        ptr: (bp.0 as *const T).offset(j0 as isize * b_cs),
                        rs: b_rs,
                        cs: b_cs,
                    },
                );
            }
        });
}

/// C (m×n) = [C +] Aᵀ·B where A is columns `col0..col0 + m` of a row-major (k × `lda`)
/// matrix and B is row-major (k × n): a weight gradient from one block of gate columns (the
/// GRU's r and z gates). Blocks of [`ROW_BLOCK`] output rows run in parallel, each one kernel
/// call over the whole `k`, as in [`par_matmul`] (thread-count independent).
#[allow(clippy::too_many_arguments)]
pub fn par_matmul_tn_cols<T: Float>(
    c: &mut [T],
    m: usize,
    n: usize,
    k: usize,
    a: &[T],
    lda: usize,
    col0: usize,
    b: &[T],
    accumulate: bool,
) {
    assert!(
        c.len() >= m * n
            && col0 + m <= lda
            && (k == 0 || a.len() >= (k - 1) * lda + col0 + m)
            && b.len() >= k * n,
        "par_matmul_tn_cols: operand too short"
    );
    let (ap, bp, cp) = (
        SyncPtr(a.as_ptr() as *mut T),
        SyncPtr(b.as_ptr() as *mut T),
        SyncPtr(c.as_mut_ptr()),
    );
    (0..m.div_ceil(ROW_BLOCK))
        .into_par_iter()
        .for_each(move |blk| {
            let (ap, bp, cp) = (ap, bp, cp);
            let i0 = blk * ROW_BLOCK;
            // SAFETY: block `blk` writes only rows i0..i0+h of C; A and B are read-only and in
            // bounds (checked above).
            unsafe {
                gemm_raw(
                    ROW_BLOCK.min(m - i0),
                    n,
                    k,
                    cp.0.add(i0 * n),
                    n,
                    accumulate,
                    Operand {
                        ptr: (ap.0 as *const T).add(col0 + i0),
                        rs: 1,
                        cs: lda as isize,
                    },
                    Operand {
                        ptr: bp.0 as *const T,
                        rs: n as isize,
                        cs: 1,
                    },
                );
            }
        });
}
