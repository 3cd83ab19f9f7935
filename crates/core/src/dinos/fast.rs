//! The course's training step (forward, backward, element-wise clip, SGD) with the sums formed
//! in the order that is fastest here, not numpy's: [`Arithmetic::Fast`].
//!
//! ```text
//! a⟨t⟩ = tanh(Wax x⟨t⟩ + Waa a⟨t−1⟩ + b)        ŷ⟨t⟩ = softmax(Wya a⟨t⟩ + by)
//! dy⟨t⟩ = ŷ⟨t⟩ − onehot(y⟨t⟩)
//! daraw⟨t⟩ = (1 − a⟨t⟩²) ⊙ (Wyaᵀ dy⟨t⟩ + Waaᵀ daraw⟨t+1⟩)
//! dWaa = Σ_t daraw⟨t⟩ a⟨t−1⟩ᵀ   dWya = Σ_t dy⟨t⟩ a⟨t⟩ᵀ   dWax[:, c] = Σ_{x⟨t⟩=c} daraw⟨t⟩
//! db = Σ_t daraw⟨t⟩             dby = Σ_t dy⟨t⟩
//! W ← W − lr · clip(dW, ±max)   for each of the five
//! ```
//!
//! # Why it differs from numpy, and by how much
//! [`Arithmetic::Numpy`] reproduces numpy's order of every addition, which chains each output of a
//! matrix-vector product through 50 dependent FMAs and forbids FMA in the gradient sums. Here
//! the same values are summed in another order (dot products as 8 partial sums, FMA
//! everywhere), the softmax multiplies by `1 / Σ e` where numpy divides, the update
//! `W − lr·d` is one FMA where numpy rounds twice, and the loss is the logarithm of a product
//! of probabilities rather than a sum of logarithms. So each result differs from numpy's by
//! a few units in the last place. A training run amplifies those differences slowly: the course's printed trace (losses to 6
//! decimals and the sampled names) still matches numpy's through iteration 12 000, the part
//! the course's own implementations agree on (`tests/dinos_course.rs`); later iterations
//! drift, as numpy's `@` and `einsum` already do. `tanh` and `exp` are numpy's algorithms,
//! as in the exact kernel.
//!
//! # Layout
//! The weights live here in packed copies ([`FastCharRnn::pack`] / [`FastCharRnn::unpack_into`])
//! whose rows are padded with zeros to whole 8-lane blocks and 64-byte aligned:
//! `wax_t[c] = Wax[:, c]` (a one-hot input reads one row), `waa[i] = Waa[i, :]`,
//! `wya[k] = Wya[k, :]`.
//! - `Waa a` is 8 rows' dot products at a time, reduced by one 8×8 transpose-add;
//! - `Waaᵀ v = Σ_i v_i Waa[i, :]` is a sum of broadcast rows;
//! - each gradient row `Σ_t d⟨t⟩_i m⟨t⟩` is summed in registers, clipped and applied at once,
//!   so no gradient is ever stored.
//!
//! The register tiles (blocks per pass in those sums, rows per tile of the logits) are sized
//! by [`Lanes8::REGS`]: AVX-512's 32 zmm hold 8-block passes, AVX2's 16 ymm (each 8-lane
//! block is two of them) only 2–3, or the accumulators spill to memory and the AVX2 step is
//! slower than numpy's order. A tile only groups independent sums, so the bits do not change.
//!
//! # Same bits everywhere
//! Every result is defined by the portable 8-lane code ([`Portable`]); the AVX2 and AVX-512
//! code run the same operation on each lane, so all levels give the same bits (unit-tested)
//! and the result does not depend on the CPU. (A NaN stays a NaN at every level, but which
//! NaN payload comes out is not specified, as in Rust's own `f64` arithmetic.)
//!
//! The zero padding of the weights stays exactly zero: each gradient's padding lanes are
//! cleared before it is applied, so even an infinite gradient (∞ · 0 = NaN) cannot reach them.

use super::{check_clip_value, check_learning_rate, check_sequence, CharRnnParams};
use crate::error::{CoreError, Result};
use crate::math::lanes::{Lanes8, Portable};
#[cfg(target_arch = "x86_64")]
use crate::math::lanes::{Ymm2, Zmm};
use crate::math::npy::{exp_in_place, tanh_in_place};
use crate::math::SimdLevel;

/// How a training step forms its sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Arithmetic {
    /// numpy's order, bit for bit (`dinos/numpy_order.rs`): the whole course trace is numpy's.
    #[default]
    Numpy,
    /// The fastest order (`dinos/fast.rs`): numpy's trace through iteration 12 000, then
    /// a drift in the last bits, like any other implementation.
    Fast,
}

impl Arithmetic {
    /// The name used in checkpoints and options: `"numpy"` or `"fast"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arithmetic::Numpy => "numpy",
            Arithmetic::Fast => "fast",
        }
    }

    /// The inverse of [`Arithmetic::as_str`].
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "numpy" => Ok(Arithmetic::Numpy),
            "fast" => Ok(Arithmetic::Fast),
            _ => Err(CoreError::invalid(format!(
                "arithmetic: expected \"numpy\" or \"fast\", got {s:?}"
            ))),
        }
    }
}

// ------------------------------------------------------------------ aligned storage

/// Eight f64 on one 64-byte cache line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Block([f64; 8]);

/// A zero-initialised, 64-byte aligned array of whole blocks.
#[derive(Debug, Clone, Default)]
struct Buf(Vec<Block>);

impl Buf {
    fn zeros(len: usize) -> Self {
        debug_assert_eq!(len % 8, 0);
        Buf(vec![Block::default(); len / 8])
    }
    fn as_slice(&self) -> &[f64] {
        // SAFETY: `Block` is 8 f64 with no padding, so the blocks are 8·len contiguous f64.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast(), self.0.len() * 8) }
    }
    fn as_mut_slice(&mut self) -> &mut [f64] {
        // SAFETY: as in `as_slice`.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast(), self.0.len() * 8) }
    }
}

fn round8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

// ------------------------------------------------------------------ the model

/// Packed weights and the buffers of one training step. The buffers grow to the longest
/// sequence seen (or the capacity given to [`FastCharRnn::pack`]); a step no longer than that
/// allocates nothing.
#[derive(Debug, Clone)]
pub struct FastCharRnn {
    n_a: usize,
    n_x: usize,
    n_y: usize,
    /// `n_a` rounded up to whole blocks.
    lda: usize,
    wax_t: Buf, // (n_x, lda)
    waa: Buf,   // (lda, lda)
    wya: Buf,   // (n_y, lda)
    b: Buf,     // (lda,)
    by: Buf,    // (n_y,), padded to a block
    /// Steps the buffers hold.
    capacity: usize,
    a: Buf,   // (capacity + 1, lda): a[0] = a_prev, a[t + 1] = a⟨t⟩
    at: Buf,  // (lda, ts): Aᵀ, column t = a⟨t⟩
    dyt: Buf, // (n_y, ts): column t = ŷ⟨t⟩, then dy⟨t⟩
    /// Row stride of `at` and `dyt` in the current step: its length rounded up to a block.
    ts: usize,
    daraw: Buf,      // (capacity, lda)
    da_next: Buf,    // (lda,)
    gwax: Buf,       // (n_x, lda): dWax columns being summed, zero between steps
    seen: Vec<bool>, // (n_x,): which gwax rows hold a sum
    steps: usize,
}

impl FastCharRnn {
    /// Packed copies of `params`, with buffers for sequences of up to `capacity` steps.
    pub fn pack(params: &CharRnnParams, capacity: usize) -> Result<Self> {
        params.validate()?;
        let (n_a, n_x, n_y) = (params.n_a(), params.n_x(), params.n_y());
        let lda = round8(n_a);
        let mut m = FastCharRnn {
            n_a,
            n_x,
            n_y,
            lda,
            wax_t: Buf::zeros(n_x * lda),
            waa: Buf::zeros(lda * lda),
            wya: Buf::zeros(n_y * lda),
            b: Buf::zeros(lda),
            by: Buf::zeros(round8(n_y)),
            capacity: 0,
            a: Buf::default(),
            at: Buf::default(),
            dyt: Buf::default(),
            ts: 0,
            daraw: Buf::default(),
            da_next: Buf::zeros(lda),
            gwax: Buf::zeros(n_x * lda),
            seen: vec![false; n_x],
            steps: 0,
        };
        m.reserve(capacity.max(1));
        m.load_weights(params)?;
        Ok(m)
    }

    /// Copies `params` (same shapes as packed) into the packed weights, zero padding
    /// included; allocates nothing.
    pub fn load_weights(&mut self, params: &CharRnnParams) -> Result<()> {
        self.check_shapes(params)?;
        let lda = self.lda;
        for buf in [
            &mut self.wax_t,
            &mut self.waa,
            &mut self.wya,
            &mut self.b,
            &mut self.by,
        ] {
            buf.as_mut_slice().fill(0.0);
        }
        let (wax_t, waa, wya) = (
            self.wax_t.as_mut_slice(),
            self.waa.as_mut_slice(),
            self.wya.as_mut_slice(),
        );
        for ((i, j), &v) in params.wax.indexed_iter() {
            wax_t[j * lda + i] = v;
        }
        for ((i, j), &v) in params.waa.indexed_iter() {
            waa[i * lda + j] = v;
        }
        for ((k, j), &v) in params.wya.indexed_iter() {
            wya[k * lda + j] = v;
        }
        for (dst, &v) in self.b.as_mut_slice().iter_mut().zip(params.b.iter()) {
            *dst = v;
        }
        for (dst, &v) in self.by.as_mut_slice().iter_mut().zip(params.by.iter()) {
            *dst = v;
        }
        Ok(())
    }

    fn check_shapes(&self, params: &CharRnnParams) -> Result<()> {
        params.validate()?;
        if (params.n_a(), params.n_x(), params.n_y()) != (self.n_a, self.n_x, self.n_y) {
            return Err(CoreError::invalid(format!(
                "packed weights are (n_a, n_x, n_y) = ({}, {}, {}), the parameters ({}, {}, {})",
                self.n_a,
                self.n_x,
                self.n_y,
                params.n_a(),
                params.n_x(),
                params.n_y()
            )));
        }
        Ok(())
    }

    /// Writes the packed weights back into `params` (same shapes as packed).
    pub fn unpack_into(&self, params: &mut CharRnnParams) -> Result<()> {
        self.check_shapes(params)?;
        let lda = self.lda;
        let (wax_t, waa, wya) = (
            self.wax_t.as_slice(),
            self.waa.as_slice(),
            self.wya.as_slice(),
        );
        for ((i, j), v) in params.wax.indexed_iter_mut() {
            *v = wax_t[j * lda + i];
        }
        for ((i, j), v) in params.waa.indexed_iter_mut() {
            *v = waa[i * lda + j];
        }
        for ((k, j), v) in params.wya.indexed_iter_mut() {
            *v = wya[k * lda + j];
        }
        for (v, &src) in params.b.iter_mut().zip(self.b.as_slice()) {
            *v = src;
        }
        for (v, &src) in params.by.iter_mut().zip(self.by.as_slice()) {
            *v = src;
        }
        Ok(())
    }

    /// Buffers for sequences of up to `steps` steps.
    fn reserve(&mut self, steps: usize) {
        if steps > self.capacity {
            self.capacity = steps;
            self.a = Buf::zeros((steps + 1) * self.lda);
            let ts = round8(steps);
            self.at = Buf::zeros(self.lda * ts);
            self.dyt = Buf::zeros(self.n_y * ts);
            self.daraw = Buf::zeros(steps * self.lda);
        }
    }

    /// The hidden state after the last step, `(n_a,)`: zeros before any step, and the step's
    /// `a_prev` after a step whose non-finite loss left the weights untouched.
    pub fn a_last(&self) -> &[f64] {
        let start = self.steps * self.lda;
        &self.a.as_slice()[start..start + self.n_a]
    }

    /// One course `optimize` step on `x`/`y` from hidden state `a_prev`: forward, backward,
    /// every gradient clipped to ±`clip` (`None`: not clipped), `W −= lr·dW`. Returns the
    /// loss. A non-finite loss leaves the weights untouched when `keep_on_non_finite`.
    pub fn step(
        &mut self,
        x: &[Option<usize>],
        y: &[usize],
        a_prev: &[f64],
        learning_rate: f64,
        clip: Option<f64>,
        keep_on_non_finite: bool,
    ) -> Result<f64> {
        check_sequence(x, y, a_prev, self.n_a, self.n_x, self.n_y)?;
        check_learning_rate(learning_rate)?;
        if let Some(max) = clip {
            check_clip_value(max)?;
        }
        let max = clip.unwrap_or(f64::INFINITY);
        self.reserve(x.len());
        let args = StepArgs {
            x,
            y,
            a_prev,
            neg_lr: -learning_rate,
            max,
            keep: keep_on_non_finite,
        };
        Ok(dispatch_step(self, &args))
    }
}

struct StepArgs<'a> {
    x: &'a [Option<usize>],
    y: &'a [usize],
    a_prev: &'a [f64],
    neg_lr: f64,
    max: f64,
    keep: bool,
}

fn dispatch_step(m: &mut FastCharRnn, s: &StepArgs<'_>) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx2,fma")]
        fn level_avx512(m: &mut FastCharRnn, s: &StepArgs<'_>) -> f64 {
            step_body::<Zmm>(m, s)
        }
        #[target_feature(enable = "avx2,fma")]
        fn level_avx2(m: &mut FastCharRnn, s: &StepArgs<'_>) -> f64 {
            step_body::<Ymm2>(m, s)
        }
        match SimdLevel::current() {
            // SAFETY: `SimdLevel::current` detected the features each function is compiled for.
            SimdLevel::Avx512 => return unsafe { level_avx512(m, s) },
            // SAFETY: as above.
            SimdLevel::Avx2 => return unsafe { level_avx2(m, s) },
            SimdLevel::Portable => {}
        }
    }
    step_body::<Portable>(m, s)
}

#[inline(always)]
fn step_body<V: Lanes8>(m: &mut FastCharRnn, s: &StepArgs<'_>) -> f64 {
    let steps = s.x.len();
    // SAFETY: `step` checked the indices against the vocabulary and a_prev's length, and
    // `reserve` sized every buffer for `steps`; all pointers below stay inside them.
    unsafe {
        let loss = forward::<V>(m, s.x, s.y, s.a_prev);
        if !loss.is_finite() && s.keep {
            m.steps = 0; // a_last() = a_prev (forward's row 0): nothing moved
            return loss;
        }
        m.steps = steps;
        backward::<V>(m, steps);
        update::<V>(m, s.x, steps, s.neg_lr, s.max);
        loss
    }
}

/// `$call` with the const `$N` equal to the run-time count `$n`: one of the listed values,
/// the value after `;` for anything else. (The kernels take their register-tile sizes as const
/// generics, so each size compiles to code with every accumulator in a register.)
macro_rules! const_count {
    ($n:expr, $N:ident in [$($v:literal),* ; $last:literal] => $call:expr) => {
        match $n {
            $($v => {
                const $N: usize = $v;
                $call
            })*
            _ => {
                const $N: usize = $last;
                $call
            }
        }
    };
}

/// Σ over 8 rows of `w` (row stride `ld`, `nb` blocks each) dotted with `a`: lane r = row r.
#[inline(always)]
unsafe fn dot8<V: Lanes8>(w: *const f64, ld: usize, a: *const f64, nb: usize) -> V {
    unsafe {
        let a0 = V::load(a);
        let mut acc: [V; 8] = std::array::from_fn(|r| V::load(w.add(r * ld)).mul(a0));
        for cb in 1..nb {
            let av = V::load(a.add(8 * cb));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                *acc_r = V::load(w.add(r * ld + 8 * cb)).mul_add(av, *acc_r);
            }
        }
        V::sum_rows(acc)
    }
}

/// [`dot8`] for the first `rows` (< 8) rows only; the other lanes are 0.
#[inline(always)]
unsafe fn dot_rows<V: Lanes8>(
    w: *const f64,
    ld: usize,
    a: *const f64,
    nb: usize,
    rows: usize,
) -> V {
    #[inline(always)]
    unsafe fn first<V: Lanes8, const R: usize>(
        w: *const f64,
        ld: usize,
        a: *const f64,
        nb: usize,
    ) -> V {
        unsafe {
            let a0 = V::load(a);
            let mut acc: [V; R] = std::array::from_fn(|r| V::load(w.add(r * ld)).mul(a0));
            for cb in 1..nb {
                let av = V::load(a.add(8 * cb));
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    *acc_r = V::load(w.add(r * ld + 8 * cb)).mul_add(av, *acc_r);
                }
            }
            V::sum_rows(std::array::from_fn(
                |r| if r < R { acc[r] } else { V::zero() },
            ))
        }
    }
    // SAFETY: the caller's rows exist.
    unsafe { const_count!(rows, R in [1, 2, 3, 4, 5, 6; 7] => first::<V, R>(w, ld, a, nb)) }
}

/// Block `tb` of Aᵀ (steps 8·tb … 8·tb + 7; those past `steps` zero) from `a`'s rows.
#[inline(always)]
unsafe fn transpose_block<V: Lanes8>(
    pa: *const f64,
    lda: usize,
    pat: *mut f64,
    ts: usize,
    tb: usize,
    steps: usize,
    nba: usize,
) {
    let rows = (steps - 8 * tb).min(8);
    unsafe {
        for cb in 0..nba {
            let tile: [V; 8] = std::array::from_fn(|r| {
                if r < rows {
                    V::load(pa.add((8 * tb + r + 1) * lda + 8 * cb))
                } else {
                    V::zero()
                }
            });
            for (l, col) in V::transpose(tile).into_iter().enumerate() {
                col.store(pat.add((8 * cb + l) * ts + 8 * tb));
            }
        }
    }
}

/// The forward pass: a⟨t⟩ into `a` (one step after the other), then the outputs of all
/// steps at once, with time along the lanes: Yᵀ = Wya Aᵀ + by, a softmax down each column,
/// dy⟨t⟩ = ŷ⟨t⟩ − onehot(y⟨t⟩) into `dyt`. Returns the loss.
#[inline(always)]
unsafe fn forward<V: Lanes8>(
    m: &mut FastCharRnn,
    x: &[Option<usize>],
    y: &[usize],
    a_prev: &[f64],
) -> f64 {
    let (lda, n_a, n_y) = (m.lda, m.n_a, m.n_y);
    let nba = lda / 8;
    let steps = x.len();
    let ts = round8(steps);
    m.ts = ts;
    let a = m.a.as_mut_slice();
    a[..n_a].copy_from_slice(a_prev);
    a[n_a..lda].fill(0.0);
    let pa = a.as_mut_ptr();
    let (wax, waa, wya) = (
        m.wax_t.as_slice().as_ptr(),
        m.waa.as_slice().as_ptr(),
        m.wya.as_slice().as_ptr(),
    );
    let (b, by) = (m.b.as_slice().as_ptr(), m.by.as_slice().as_ptr());
    unsafe {
        // a⟨t⟩ = tanh(Wax x⟨t⟩ + Waa a⟨t−1⟩ + b)
        for (t, &xt) in x.iter().enumerate() {
            let (ap, an) = (pa.add(t * lda), pa.add((t + 1) * lda));
            for rb in 0..nba {
                let rows = n_a - 8 * rb;
                let mut z = if rows < 8 {
                    dot_rows::<V>(waa.add(8 * rb * lda), lda, ap, nba, rows)
                } else {
                    dot8::<V>(waa.add(8 * rb * lda), lda, ap, nba)
                };
                if let Some(c) = xt {
                    z = V::load(wax.add(c * lda + 8 * rb)).add(z);
                }
                z.add(V::load(b.add(8 * rb))).store(an.add(8 * rb));
            }
            // (the padding lanes are +0 already: zero weights and bias, and tanh(+0) = +0)
            tanh_in_place::<V::At>(std::slice::from_raw_parts_mut(an, n_a));
        }
        // Aᵀ by 8×8 tiles (the lanes past `steps` zero: their outputs are computed, then ignored)
        let pat = m.at.as_mut_slice().as_mut_ptr();
        for tb in 0..ts / 8 {
            transpose_block::<V>(pa, lda, pat, ts, tb, steps, nba);
        }
        // Yᵀ = Wya Aᵀ + by
        let (pat, pyt) = (m.at.as_slice().as_ptr(), m.dyt.as_mut_slice().as_mut_ptr());
        logits_all::<V>(wya, lda, pat, ts, n_a, n_y, by, pyt);
        // ŷ = softmax down each column: e = exp(z − max), ŷ = e · (1 / Σ e)
        for tb in 0..ts / 8 {
            let col = pyt.add(8 * tb);
            let mut mx = V::load(col);
            for k in 1..n_y {
                mx = V::load(col.add(k * ts)).max(mx);
            }
            for k in 0..n_y {
                V::load(col.add(k * ts)).sub(mx).store(col.add(k * ts));
            }
        }
        // the real steps only (the lanes past `steps` are never read after the softmax)
        for k in 0..n_y {
            exp_in_place::<V::At>(std::slice::from_raw_parts_mut(pyt.add(k * ts), steps));
        }
        for tb in 0..ts / 8 {
            let col = pyt.add(8 * tb);
            let mut sum = V::load(col);
            for k in 1..n_y {
                sum = sum.add(V::load(col.add(k * ts)));
            }
            let inv = V::splat(1.0).div(sum);
            for k in 0..n_y {
                V::load(col.add(k * ts)).mul(inv).store(col.add(k * ts));
            }
        }
        // loss = Σ_t −log ŷ⟨t⟩[y⟨t⟩] = −log Π_t ŷ⟨t⟩[y⟨t⟩]: the product stays above 1e-300
        // (a probability below 1e-50 gets its own logarithm; the product is folded into the
        // loss once below 1e-250), so it never loses digits to subnormals or underflows; 0 and
        // NaN still come through;  dy⟨t⟩ = ŷ⟨t⟩ − onehot(y⟨t⟩)
        let mut loss = 0.0;
        let mut prod = 1.0f64;
        for (t, &yt) in y.iter().enumerate() {
            let pp = pyt.add(yt * ts + t);
            let p = *pp;
            if p < 1e-50 {
                loss -= p.ln();
            } else {
                prod *= p;
                if prod < 1e-250 {
                    loss -= prod.ln();
                    prod = 1.0;
                }
            }
            *pp = p - 1.0;
        }
        loss - prod.ln()
    }
}

/// Rows `0..R` of `out` (stride `ts`, `NT` blocks) = `bias[r] + Σ_{j<n} w[r][j] · at[j]`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn logits<V: Lanes8, const R: usize, const NT: usize>(
    w: *const f64,
    ldw: usize,
    at: *const f64,
    ts: usize,
    n: usize,
    bias: *const f64,
    out: *mut f64,
) {
    unsafe {
        let mut acc = [[V::zero(); NT]; R];
        for j in 0..n {
            let a: [V; NT] = std::array::from_fn(|q| V::load(at.add(j * ts + 8 * q)));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let wr = V::splat(*w.add(r * ldw + j));
                for (q, aq) in a.iter().enumerate() {
                    acc_r[q] = wr.mul_add(*aq, acc_r[q]);
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            let br = V::splat(*bias.add(r));
            for (q, v) in acc_r.iter().enumerate() {
                v.add(br).store(out.add(r * ts + 8 * q));
            }
        }
    }
}

/// [`logits`] for rows `0..rows` and all `ts / 8` blocks, in tiles of 8 rows × 1 block,
/// 6 × 2 or 4 × 3 (by the number of blocks).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn logits_all<V: Lanes8>(
    w: *const f64,
    ldw: usize,
    at: *const f64,
    ts: usize,
    n: usize,
    rows: usize,
    bias: *const f64,
    out: *mut f64,
) {
    let nbt = ts / 8;
    // about 12 accumulators per tile: enough independent FMA chains, all in registers
    let q = nbt.min(3);
    // (R·q sums and q loaded blocks within V::REGS on narrower registers)
    let tile_rows = [8, 6, 4][q - 1].min((V::REGS - q) / q).max(1);
    let mut r0 = 0;
    while r0 < rows {
        let r = (rows - r0).min(tile_rows);
        let mut q0 = 0;
        while q0 < nbt {
            let q = (nbt - q0).min(3);
            // SAFETY: rows r0..r0 + r and blocks q0..q0 + q are inside `w`, `at`, `out`.
            unsafe {
                let (w, at, bias, out) = (
                    w.add(r0 * ldw),
                    at.add(8 * q0),
                    bias.add(r0),
                    out.add(r0 * ts + 8 * q0),
                );
                const_count!(q, NT in [3, 2; 1] => const_count!(r, R in [8, 7, 6, 5, 4, 3, 2; 1] =>
                    logits::<V, R, NT>(w, ldw, at, ts, n, bias, out)))
            }
            q0 += q;
        }
        r0 += r;
    }
}

/// `out[0..8C] = Σ_{i<n} c[i] · w[i]` (rows of stride `ld`), even and odd `i` in two
/// accumulator sets so the FMA chains are half as long.
#[inline(always)]
unsafe fn combine_rows<V: Lanes8, const C: usize>(
    w: *const f64,
    ld: usize,
    (c, cs): (*const f64, usize),
    n: usize,
    out: *mut f64,
) {
    unsafe {
        let mut even = [V::zero(); C];
        let mut odd = [V::zero(); C];
        let mut i = 0;
        while i + 1 < n {
            let (ce, co) = (V::splat(*c.add(i * cs)), V::splat(*c.add((i + 1) * cs)));
            for j in 0..C {
                even[j] = ce.mul_add(V::load(w.add(i * ld + 8 * j)), even[j]);
                odd[j] = co.mul_add(V::load(w.add((i + 1) * ld + 8 * j)), odd[j]);
            }
            i += 2;
        }
        if i < n {
            let ce = V::splat(*c.add(i * cs));
            for (j, e) in even.iter_mut().enumerate() {
                *e = ce.mul_add(V::load(w.add(i * ld + 8 * j)), *e);
            }
        }
        for j in 0..C {
            even[j].add(odd[j]).store(out.add(8 * j));
        }
    }
}

/// [`combine_rows`] over `nb` blocks of columns, up to 8 blocks per pass.
#[inline(always)]
unsafe fn combine_rows_all<V: Lanes8>(
    w: *const f64,
    ld: usize,
    c: (*const f64, usize),
    n: usize,
    out: *mut f64,
    nb: usize,
) {
    // 2 accumulator sets of k blocks and a loaded block within V::REGS (8 blocks at most)
    let max = ((V::REGS - 2) / 2).clamp(1, 8);
    let mut cb = 0;
    while cb < nb {
        // the remaining blocks spread evenly over the passes left
        let passes = (nb - cb).div_ceil(max);
        let k = (nb - cb).div_ceil(passes);
        // SAFETY: columns cb..cb + k blocks exist in every row and in `out`.
        unsafe {
            let (w, out) = (w.add(8 * cb), out.add(8 * cb));
            const_count!(k, C in [1, 2, 3, 4, 5, 6, 7; 8] =>
                combine_rows::<V, C>(w, ld, c, n, out))
        }
        cb += k;
    }
}

/// The backward recurrence: daraw⟨t⟩ for t = T−1 … 0.
#[inline(always)]
unsafe fn backward<V: Lanes8>(m: &mut FastCharRnn, steps: usize) {
    let (lda, ts, n_a, n_y) = (m.lda, m.ts, m.n_a, m.n_y);
    let nba = lda / 8;
    let pa = m.a.as_slice().as_ptr();
    let pdy = m.dyt.as_slice().as_ptr();
    let pdr = m.daraw.as_mut_slice().as_mut_ptr();
    let da_next = m.da_next.as_mut_slice();
    da_next.fill(0.0);
    let pdn = da_next.as_mut_ptr();
    let (waa, wya) = (m.waa.as_slice().as_ptr(), m.wya.as_slice().as_ptr());
    let one = V::splat(1.0);
    unsafe {
        for t in (0..steps).rev() {
            let (at, dr) = (pa.add((t + 1) * lda), pdr.add(t * lda));
            // da = Wyaᵀ dy⟨t⟩ + da_next;  daraw = (1 − a⟨t⟩²) ⊙ da
            combine_rows_all::<V>(wya, lda, (pdy.add(t), ts), n_y, dr, nba);
            for cb in 0..nba {
                let a = V::load(at.add(8 * cb));
                let da = V::load(dr.add(8 * cb)).add(V::load(pdn.add(8 * cb)));
                one.sub(a.mul(a)).mul(da).store(dr.add(8 * cb));
            }
            // da_next = Waaᵀ daraw
            combine_rows_all::<V>(waa, lda, (dr, 1), n_a, pdn, nba);
        }
    }
}

/// `w ← w − lr · clip(g)` on a block whose first `lanes` lanes are real; the padding lanes'
/// gradient is cleared first, so the weights' padding stays 0 even if `g` is infinite there.
#[inline(always)]
unsafe fn apply<V: Lanes8>(g: V, lanes: usize, w: *mut f64, neg_lr: V, lo: V, hi: V) {
    unsafe {
        let g = if lanes < 8 { g.zero_from(lanes) } else { g };
        let d = hi.min(lo.max(g));
        neg_lr.mul_add(d, V::load(w)).store(w);
    }
}

/// Rows `r < R` of `w` (stride `ldw`, `C` blocks) ← w − lr·clip(Σ_t c[r·crs + t·cs] · m[t·ms ..]):
/// R rows at once, so R·C independent FMA chains hide the FMA latency.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn grad_rows<V: Lanes8, const R: usize, const C: usize>(
    (c, crs, cs): (*const f64, usize, usize),
    m: *const f64,
    ms: usize,
    steps: usize,
    w: *mut f64,
    ldw: usize,
    tail: usize,
    (neg_lr, lo, hi): (V, V, V),
) {
    unsafe {
        let mut g = [[V::zero(); C]; R];
        for t in 0..steps {
            let mt: [V; C] = std::array::from_fn(|j| V::load(m.add(t * ms + 8 * j)));
            for (r, gr) in g.iter_mut().enumerate() {
                let ct = V::splat(*c.add(r * crs + t * cs));
                for (gj, mj) in gr.iter_mut().zip(&mt) {
                    *gj = ct.mul_add(*mj, *gj);
                }
            }
        }
        for (r, gr) in g.iter().enumerate() {
            for (j, gj) in gr.iter().enumerate() {
                let lanes = if j + 1 == C { tail } else { 8 };
                apply(*gj, lanes, w.add(r * ldw + 8 * j), neg_lr, lo, hi);
            }
        }
    }
}

/// [`grad_rows`] for rows `0..rows` over `nb` blocks: pairs of rows, up to 8 blocks per pass
/// (2 × 8 sums and 8 loaded blocks fit in AVX-512's 32 registers).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn grad_rows_all<V: Lanes8>(
    (c, crs, cs): (*const f64, usize, usize),
    m: *const f64,
    ms: usize,
    steps: usize,
    w: *mut f64,
    ldw: usize,
    rows: usize,
    (nb, last_lanes): (usize, usize),
    k: (V, V, V),
) {
    // 2 rows × n sums and n loaded blocks within V::REGS (8 blocks at most)
    let max = (V::REGS / 3).clamp(1, 8);
    let mut r0 = 0;
    while r0 < rows {
        let r = (rows - r0).min(2);
        let mut cb = 0;
        while cb < nb {
            let passes = (nb - cb).div_ceil(max);
            let n = (nb - cb).div_ceil(passes);
            let tail = if cb + n == nb { last_lanes } else { 8 };
            // SAFETY: rows r0..r0 + r and blocks cb..cb + n exist in `w`, `c` and `m`.
            unsafe {
                let (cp, m, w) = (c.add(r0 * crs), m.add(8 * cb), w.add(r0 * ldw + 8 * cb));
                const_count!(r, R in [2; 1] => const_count!(n, C in [1, 2, 3, 4, 5, 6, 7; 8] =>
                    grad_rows::<V, R, C>((cp, crs, cs), m, ms, steps, w, ldw, tail, k)))
            }
            cb += n;
        }
        r0 += r;
    }
}

/// Every gradient summed, clipped and applied.
#[inline(always)]
unsafe fn update<V: Lanes8>(
    m: &mut FastCharRnn,
    x: &[Option<usize>],
    steps: usize,
    neg_lr: f64,
    max: f64,
) {
    let (lda, ts, n_a, n_y) = (m.lda, m.ts, m.n_a, m.n_y);
    let nba = lda / 8;
    let k = (V::splat(neg_lr), V::splat(-max), V::splat(max));
    // real lanes of hidden-size block cb (the last one may be part padding)
    let last_lanes = n_a - 8 * (nba - 1);
    let lanes = |cb: usize| if cb + 1 == nba { last_lanes } else { 8 };
    let pa = m.a.as_slice().as_ptr();
    let pdy = m.dyt.as_slice().as_ptr();
    let pdr = m.daraw.as_slice().as_ptr();
    unsafe {
        // dWaa[i, :] = Σ_t daraw⟨t⟩[i] a⟨t−1⟩
        let waa = m.waa.as_mut_slice().as_mut_ptr();
        grad_rows_all::<V>(
            (pdr, 1, lda),
            pa,
            lda,
            steps,
            waa,
            lda,
            n_a,
            (nba, last_lanes),
            k,
        );
        // dWya[k, :] = Σ_t dy⟨t⟩[k] a⟨t⟩
        let wya = m.wya.as_mut_slice().as_mut_ptr();
        grad_rows_all::<V>(
            (pdy, ts, 1),
            pa.add(lda),
            lda,
            steps,
            wya,
            lda,
            n_y,
            (nba, last_lanes),
            k,
        );
        // db = Σ_t daraw⟨t⟩
        let b = m.b.as_mut_slice().as_mut_ptr();
        for cb in 0..nba {
            let mut g = V::load(pdr.add(8 * cb));
            for t in 1..steps {
                g = g.add(V::load(pdr.add(t * lda + 8 * cb)));
            }
            apply(g, lanes(cb), b.add(8 * cb), k.0, k.1, k.2);
        }
        // dby = Σ_t dy⟨t⟩ (a row of dyt each; the same scalar code at every level)
        for (r, w) in m.by.as_mut_slice()[..n_y].iter_mut().enumerate() {
            let g = std::slice::from_raw_parts(pdy.add(r * ts), steps)
                .iter()
                .sum::<f64>();
            let d = if max < g {
                max
            } else if -max > g {
                -max
            } else {
                g
            };
            *w = neg_lr.mul_add(d, *w);
        }
        // dWax[:, c] = Σ_{x⟨t⟩ = c} daraw⟨t⟩ (the other columns' gradients are 0, which
        // leaves their weights as they are)
        let gw = m.gwax.as_mut_slice().as_mut_ptr();
        for (t, xt) in x.iter().enumerate() {
            if let Some(c) = *xt {
                m.seen[c] = true;
                for cb in 0..nba {
                    let g = gw.add(c * lda + 8 * cb);
                    V::load(g).add(V::load(pdr.add(t * lda + 8 * cb))).store(g);
                }
            }
        }
        let wax = m.wax_t.as_mut_slice().as_mut_ptr();
        for xt in x {
            if let Some(c) = *xt {
                if std::mem::take(&mut m.seen[c]) {
                    for cb in 0..nba {
                        let g = gw.add(c * lda + 8 * cb);
                        apply(
                            V::load(g),
                            lanes(cb),
                            wax.add(c * lda + 8 * cb),
                            k.0,
                            k.1,
                            k.2,
                        );
                        V::zero().store(g);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
