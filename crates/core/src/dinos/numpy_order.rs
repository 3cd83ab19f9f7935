//! The dinos training step in numpy's order of operations, bit for bit (see [`super`]'s
//! "Exactness"): the workspace, the forward pass, the backward recurrence and the gradient
//! sums, with the course's element-wise clip fused into the update.
//!
//! The portable code here defines every result. `simd.rs` writes the kernels whose algorithm
//! is the same at every width once, over the lanes trait (`gemv_n`'s register blocks, the
//! outer-product gradient sums with the fused clip + update, the element-wise clip + update);
//! `avx2.rs` runs them with 4-lane registers and adds what only exists at that width (`gemv_t`,
//! whose order is OpenBLAS's Haswell 4-lane order, with its SSE2 remainder kernels);
//! `avx512.rs` runs them with 8-lane registers and its own blocking of `gemv_n`. Each function
//! is generic over the SIMD level (a [`Level`] type) and `dispatch!` picks the level once per
//! call.

use super::flat_mut;
use super::{clip_value, CharRnnGradients, ParamsRef};
use crate::error::Result;
use crate::math::lanes::{level, Level};
use crate::math::npy::{exp_in_place, max_of, pairwise_sum, tanh_in_place};
use crate::math::SimdLevel;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod simd;

/// `y = A x` for a C-order `A` of shape `(rows, m)`: `np.dot(A, x)` as OpenBLAS's x86-64
/// `dgemv_t` computes it. Rows in blocks of four use four FMA lanes over the columns
/// `j ≡ l (mod 4)` below `m & !3`, reduced as `(l0 + l2) + (l1 + l3)`; the two- and
/// one-row remainder kernels do the same with separate multiply and add; the last `m % 4`
/// columns are folded in afterwards.
#[inline(always)]
fn gemv_t<L: Level>(a: &[f64], rows: usize, m: usize, x: &[f64], y: &mut [f64]) {
    let nb = m & !3;
    let x_main = &x[..nb];
    #[cfg(target_arch = "x86_64")]
    if L::SIMD >= SimdLevel::Avx2 {
        // SAFETY: L::SIMD >= SimdLevel::Avx2 is only instantiated inside functions compiled with (at least)
        // avx2+fma, which `dispatch!` calls only after run-time detection of the features.
        unsafe { avx2::gemv_t(a, rows, m, x, y) };
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
fn gemv_n<L: Level>(w: &[f64], n: usize, m: usize, v: &[f64], y: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if L::SIMD == SimdLevel::Avx512 {
        // SAFETY: as in `gemv_t`, with avx512f.
        unsafe { avx512::gemv_n(w, n, m, v, y) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if L::SIMD >= SimdLevel::Avx2 {
        // SAFETY: as in `gemv_t`.
        unsafe { avx2::gemv_n(w, n, m, v, y) };
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

/// The course's `softmax` in place: `e = exp(z − max z); e / e.sum()`.
#[inline(always)]
fn softmax_in_place<L: Level>(z: &mut [f64]) {
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
fn step_forward<L: Level>(
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
fn hidden_step<L: Level>(
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
fn output_step<L: Level>(
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
    pub(super) n_a: usize,
    pub(super) n_x: usize,
    pub(super) n_y: usize,
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
    pub(super) steps: usize,
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
    pub(super) fn ensure(&mut self, n_a: usize, n_x: usize, n_y: usize, steps: usize) {
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

/// Forward pass into the workspace; returns the loss. Inputs already validated.
#[inline(always)]
fn forward_into<L: Level>(
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
fn sum_outer_rev<L: Level>(
    out: &mut [f64],
    rows: usize,
    cols: usize,
    left: &[f64],
    right: &[f64],
    steps: usize,
    fuse: Option<Fuse>,
) {
    #[cfg(target_arch = "x86_64")]
    if L::SIMD == SimdLevel::Avx512 && cols >= 8 {
        // SAFETY: as in `gemv_t`, with avx512f; `fuse.w` has `out`'s layout.
        unsafe { avx512::sum_outer_rev(out, rows, cols, left, right, steps, fuse) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if L::SIMD >= SimdLevel::Avx2 && cols >= 4 {
        // SAFETY: as in `gemv_t`; `fuse.w` has `out`'s layout.
        unsafe { avx2::sum_outer_rev(out, rows, cols, left, right, steps, fuse) };
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
fn backward_into<L: Level>(
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
fn recurrence<L: Level>(
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
pub(super) struct ParamsMut<'a> {
    pub(super) wax: &'a mut [f64], // (n_a, n_x)
    pub(super) waa: &'a mut [f64], // (n_a, n_a)
    pub(super) wya: &'a mut [f64], // (n_y, n_a)
    pub(super) b: &'a mut [f64],   // (n_a,)
    pub(super) by: &'a mut [f64],  // (n_y,)
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
fn gradient_sums<L: Level>(
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

/// `fn $name(args) -> ret` running `$body::<level>(args)` compiled for the level
/// [`SimdLevel::current`] names (with the target features enabled, `mul_add` is one instruction
/// and the SIMD kernels inline). Every level gives the same bits.
macro_rules! dispatch {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty => $body:ident) => {
        $(#[$doc])*
        pub(super) fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn level_avx512($($arg: $ty),*) -> $ret {
                    $body::<level::Avx512>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn level_avx2($($arg: $ty),*) -> $ret {
                    $body::<level::Avx2>($($arg),*)
                }
                match SimdLevel::current() {
                    // SAFETY: `SimdLevel::current` detected the features each function is
                    // compiled for.
                    SimdLevel::Avx512 => return unsafe { level_avx512($($arg),*) },
                    // SAFETY: as above.
                    SimdLevel::Avx2 => return unsafe { level_avx2($($arg),*) },
                    SimdLevel::Portable => {}
                }
            }
            $body::<level::Portable>($($arg),*)
        }
    };
}

#[inline(always)]
fn forward_backward_body<L: Level>(
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
fn forward_recurrence_body<L: Level>(
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
fn fused_update_body<L: Level>(
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

/// Element-wise clip then `w += neg_lr · d` (the same operations as `clip` then
/// `update_parameters`).
#[inline(always)]
fn clip_update_body<L: Level>(w: &mut [f64], dw: &mut [f64], max_value: f64, neg_lr: f64) {
    #[cfg(target_arch = "x86_64")]
    if L::SIMD == SimdLevel::Avx512 {
        // SAFETY: as in `gemv_t`, with avx512f.
        unsafe { avx512::clip_update(w, dw, max_value, neg_lr) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if L::SIMD >= SimdLevel::Avx2 {
        // SAFETY: as in `gemv_t`.
        unsafe { avx2::clip_update(w, dw, max_value, neg_lr) };
        return;
    }
    for (wi, di) in w.iter_mut().zip(dw.iter_mut()) {
        let d = clip_value(*di, max_value);
        *di = d;
        *wi += neg_lr * d;
    }
}

#[cfg(test)]
mod tests;
