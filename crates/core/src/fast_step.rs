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
//! [`crate::char_rnn`] reproduces numpy's order of every addition, which chains each output of a
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
//! # Same bits everywhere
//! Every result is defined by the portable 8-lane code ([`Portable`]); the AVX2 and AVX-512
//! code run the same operation on each lane, so all levels give the same bits (unit-tested)
//! and the result does not depend on the CPU. (A NaN stays a NaN at every level, but which
//! NaN payload comes out is not specified, as in Rust's own `f64` arithmetic.)
//!
//! The zero padding of the weights stays exactly zero: each gradient's padding lanes are
//! cleared before it is applied, so even an infinite gradient (∞ · 0 = NaN) cannot reach them.

use crate::char_rnn::{
    check_clip_value, check_learning_rate, check_sequence, exp_in_place, simd_level, tanh_in_place,
    CharRnnParams, AVX2, AVX512, PORTABLE,
};
use crate::error::{CoreError, Result};

/// How a training step forms its sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Arithmetic {
    /// numpy's order, bit for bit (`crate::char_rnn`): the whole course trace is numpy's.
    #[default]
    Numpy,
    /// The fastest order ([`crate::fast_step`]): numpy's trace through iteration 12 000, then
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

// ------------------------------------------------------------------ 8 lanes

/// Eight f64 lanes. The portable type defines every operation; a SIMD type must give the
/// same bits.
trait Lanes: Copy {
    fn zero() -> Self;
    fn splat(x: f64) -> Self;
    /// Eight values at `p`, 64-byte aligned.
    unsafe fn load(p: *const f64) -> Self;
    /// Store at `p`, 64-byte aligned.
    unsafe fn store(self, p: *mut f64);
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    /// `self · b + c` with one rounding.
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// x86 `maxpd`: `self` if `self > o`, else `o` (so a NaN in `o` comes through).
    fn max(self, o: Self) -> Self;
    /// x86 `minpd`: `self` if `self < o`, else `o`.
    fn min(self, o: Self) -> Self;
    /// Lane `r` = the sum of `v[r]`'s lanes as `((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7))`.
    fn sum_rows(v: [Self; 8]) -> Self;
    /// The 8×8 transpose: lane `r` of output `l` = lane `l` of `v[r]`.
    fn transpose(v: [Self; 8]) -> [Self; 8];
    /// Lanes `0..n` kept, lanes `n..8` set to +0 (`n < 8`).
    fn zero_from(self, n: usize) -> Self;
    /// numpy's tanh / exp on each element (same bits at every level).
    fn tanh_in_place(v: &mut [f64]);
    fn exp_in_place(v: &mut [f64]);
}

/// The portable definition.
#[derive(Clone, Copy)]
struct Portable([f64; 8]);

impl Portable {
    #[inline(always)]
    fn map2(self, o: Self, f: impl Fn(f64, f64) -> f64) -> Self {
        Portable(std::array::from_fn(|l| f(self.0[l], o.0[l])))
    }
}

impl Lanes for Portable {
    #[inline(always)]
    fn zero() -> Self {
        Portable([0.0; 8])
    }
    #[inline(always)]
    fn splat(x: f64) -> Self {
        Portable([x; 8])
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: the caller passes 8 readable, aligned f64.
        Portable(unsafe { *(p as *const [f64; 8]) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: the caller passes 8 writable, aligned f64.
        unsafe { *(p as *mut [f64; 8]) = self.0 }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.map2(o, |a, b| a + b)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self.map2(o, |a, b| a - b)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self.map2(o, |a, b| a * b)
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        self.map2(o, |a, b| a / b)
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        Portable(std::array::from_fn(|l| self.0[l].mul_add(b.0[l], c.0[l])))
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        self.map2(o, |a, b| if a > b { a } else { b })
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        self.map2(o, |a, b| if a < b { a } else { b })
    }
    #[inline(always)]
    fn sum_rows(v: [Self; 8]) -> Self {
        Portable(std::array::from_fn(|r| tree_sum(v[r].0)))
    }
    #[inline(always)]
    fn transpose(v: [Self; 8]) -> [Self; 8] {
        std::array::from_fn(|l| Portable(std::array::from_fn(|r| v[r].0[l])))
    }
    #[inline(always)]
    fn zero_from(self, n: usize) -> Self {
        Portable(std::array::from_fn(|l| if l < n { self.0[l] } else { 0.0 }))
    }
    #[inline(always)]
    fn tanh_in_place(v: &mut [f64]) {
        tanh_in_place::<PORTABLE>(v)
    }
    #[inline(always)]
    fn exp_in_place(v: &mut [f64]) {
        exp_in_place::<PORTABLE>(v)
    }
}

/// `((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7))`.
#[inline(always)]
fn tree_sum(l: [f64; 8]) -> f64 {
    ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Lanes;
    use std::arch::x86_64::*;

    /// One zmm register (AVX-512F); only used inside functions compiled for avx512f.
    #[derive(Clone, Copy)]
    pub(super) struct Zmm(__m512d);

    /// `fn name(self, o) -> Self` as one intrinsic on the two registers.
    macro_rules! zmm_binary {
        ($($name:ident => $op:ident),* $(,)?) => {
            $(
                #[inline(always)]
                fn $name(self, o: Self) -> Self {
                    Zmm(unsafe { $op(self.0, o.0) })
                }
            )*
        };
    }

    // SAFETY (every method): the dispatcher only runs this type on CPUs with AVX-512F, and
    // the pointers come from `Buf`s, 64-byte aligned with 8 valid lanes.
    impl Lanes for Zmm {
        #[inline(always)]
        fn zero() -> Self {
            Zmm(unsafe { _mm512_setzero_pd() })
        }
        #[inline(always)]
        fn splat(x: f64) -> Self {
            Zmm(unsafe { _mm512_set1_pd(x) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f64) -> Self {
            Zmm(unsafe { _mm512_load_pd(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f64) {
            unsafe { _mm512_store_pd(p, self.0) }
        }
        zmm_binary! {
            add => _mm512_add_pd,
            sub => _mm512_sub_pd,
            mul => _mm512_mul_pd,
            div => _mm512_div_pd,
            max => _mm512_max_pd,
            min => _mm512_min_pd,
        }
        #[inline(always)]
        fn mul_add(self, b: Self, c: Self) -> Self {
            Zmm(unsafe { _mm512_fmadd_pd(self.0, b.0, c.0) })
        }
        /// An 8×8 transpose-add: pairs of lanes (unpack), then 128-bit halves, then 256-bit
        /// halves — the tree of `tree_sum`.
        #[inline(always)]
        fn sum_rows(v: [Self; 8]) -> Self {
            unsafe {
                let pair = |a: __m512d, b: __m512d| {
                    _mm512_add_pd(_mm512_unpacklo_pd(a, b), _mm512_unpackhi_pd(a, b))
                };
                // blocks of 128 bits: (0, 2 | 0, 2) + (1, 3 | 1, 3)
                let halves = |a: __m512d, b: __m512d| {
                    _mm512_add_pd(
                        _mm512_shuffle_f64x2::<0x88>(a, b),
                        _mm512_shuffle_f64x2::<0xDD>(a, b),
                    )
                };
                let p01 = pair(v[0].0, v[1].0);
                let p23 = pair(v[2].0, v[3].0);
                let p45 = pair(v[4].0, v[5].0);
                let p67 = pair(v[6].0, v[7].0);
                Zmm(halves(halves(p01, p23), halves(p45, p67)))
            }
        }
        /// Pairs of rows interleaved (unpack), then 128-bit and 256-bit blocks regrouped.
        #[inline(always)]
        fn transpose(v: [Self; 8]) -> [Self; 8] {
            unsafe {
                let lo = |a: __m512d, b: __m512d| _mm512_unpacklo_pd(a, b);
                let hi = |a: __m512d, b: __m512d| _mm512_unpackhi_pd(a, b);
                let even = |a: __m512d, b: __m512d| _mm512_shuffle_f64x2::<0x88>(a, b);
                let odd = |a: __m512d, b: __m512d| _mm512_shuffle_f64x2::<0xDD>(a, b);
                let v: [__m512d; 8] = std::array::from_fn(|r| v[r].0);
                // t: lanes (r, r+1) of columns 0,2,4,6 (lo) or 1,3,5,7 (hi)
                let t = [
                    lo(v[0], v[1]),
                    hi(v[0], v[1]),
                    lo(v[2], v[3]),
                    hi(v[2], v[3]),
                    lo(v[4], v[5]),
                    hi(v[4], v[5]),
                    lo(v[6], v[7]),
                    hi(v[6], v[7]),
                ];
                // u: rows 0–3 (u0..u3) or 4–7 (u4..u7) of columns {0,4}, {2,6}, {1,5}, {3,7}
                let u = [
                    even(t[0], t[2]),
                    odd(t[0], t[2]),
                    even(t[1], t[3]),
                    odd(t[1], t[3]),
                    even(t[4], t[6]),
                    odd(t[4], t[6]),
                    even(t[5], t[7]),
                    odd(t[5], t[7]),
                ];
                [
                    Zmm(even(u[0], u[4])),
                    Zmm(even(u[2], u[6])),
                    Zmm(even(u[1], u[5])),
                    Zmm(even(u[3], u[7])),
                    Zmm(odd(u[0], u[4])),
                    Zmm(odd(u[2], u[6])),
                    Zmm(odd(u[1], u[5])),
                    Zmm(odd(u[3], u[7])),
                ]
            }
        }
        #[inline(always)]
        fn zero_from(self, n: usize) -> Self {
            Zmm(unsafe { _mm512_maskz_mov_pd(((1u32 << n) - 1) as u8, self.0) })
        }
        #[inline(always)]
        fn tanh_in_place(v: &mut [f64]) {
            crate::char_rnn::tanh_in_place::<{ crate::char_rnn::AVX512 }>(v)
        }
        #[inline(always)]
        fn exp_in_place(v: &mut [f64]) {
            crate::char_rnn::exp_in_place::<{ crate::char_rnn::AVX512 }>(v)
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Lanes;
    use std::arch::x86_64::*;

    /// Two ymm registers (lanes 0–3, 4–7; AVX2+FMA); only used inside functions compiled for
    /// avx2 and fma.
    #[derive(Clone, Copy)]
    pub(super) struct Ymm2(__m256d, __m256d);

    /// `fn name(self, o) -> Self` as one intrinsic on each half.
    macro_rules! ymm_binary {
        ($($name:ident => $op:ident),* $(,)?) => {
            $(
                #[inline(always)]
                fn $name(self, o: Self) -> Self {
                    unsafe { Ymm2($op(self.0, o.0), $op(self.1, o.1)) }
                }
            )*
        };
    }

    /// The 4×4 transpose of four ymm rows.
    #[inline(always)]
    unsafe fn transpose4(r: [__m256d; 4]) -> [__m256d; 4] {
        unsafe {
            let t0 = _mm256_unpacklo_pd(r[0], r[1]); // r0[0] r1[0] r0[2] r1[2]
            let t1 = _mm256_unpackhi_pd(r[0], r[1]); // r0[1] r1[1] r0[3] r1[3]
            let t2 = _mm256_unpacklo_pd(r[2], r[3]);
            let t3 = _mm256_unpackhi_pd(r[2], r[3]);
            [
                _mm256_permute2f128_pd::<0x20>(t0, t2),
                _mm256_permute2f128_pd::<0x20>(t1, t3),
                _mm256_permute2f128_pd::<0x31>(t0, t2),
                _mm256_permute2f128_pd::<0x31>(t1, t3),
            ]
        }
    }

    /// Lane r = `(x[r][0] + x[r][1]) + (x[r][2] + x[r][3])` for four rows.
    #[inline(always)]
    unsafe fn sum4(x: [__m256d; 4]) -> __m256d {
        unsafe {
            let p01 = _mm256_hadd_pd(x[0], x[1]); // r0(01) r1(01) r0(23) r1(23)
            let p23 = _mm256_hadd_pd(x[2], x[3]);
            _mm256_add_pd(
                _mm256_permute2f128_pd::<0x20>(p01, p23),
                _mm256_permute2f128_pd::<0x31>(p01, p23),
            )
        }
    }

    // SAFETY (every method): the dispatcher only runs this type on CPUs with AVX2 and FMA,
    // and the pointers come from `Buf`s, 64-byte aligned with 8 valid lanes.
    impl Lanes for Ymm2 {
        #[inline(always)]
        fn zero() -> Self {
            unsafe { Ymm2(_mm256_setzero_pd(), _mm256_setzero_pd()) }
        }
        #[inline(always)]
        fn splat(x: f64) -> Self {
            unsafe { Ymm2(_mm256_set1_pd(x), _mm256_set1_pd(x)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f64) -> Self {
            unsafe { Ymm2(_mm256_load_pd(p), _mm256_load_pd(p.add(4))) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f64) {
            unsafe {
                _mm256_store_pd(p, self.0);
                _mm256_store_pd(p.add(4), self.1);
            }
        }
        ymm_binary! {
            add => _mm256_add_pd,
            sub => _mm256_sub_pd,
            mul => _mm256_mul_pd,
            div => _mm256_div_pd,
            max => _mm256_max_pd,
            min => _mm256_min_pd,
        }
        #[inline(always)]
        fn mul_add(self, b: Self, c: Self) -> Self {
            unsafe {
                Ymm2(
                    _mm256_fmadd_pd(self.0, b.0, c.0),
                    _mm256_fmadd_pd(self.1, b.1, c.1),
                )
            }
        }
        /// Each half's pairs and quads (`sum4`), then the two halves added: `tree_sum`'s tree.
        #[inline(always)]
        fn sum_rows(v: [Self; 8]) -> Self {
            unsafe {
                let rows = |q: usize| {
                    let lo = sum4(std::array::from_fn(|r| v[4 * q + r].0));
                    let hi = sum4(std::array::from_fn(|r| v[4 * q + r].1));
                    _mm256_add_pd(lo, hi)
                };
                Ymm2(rows(0), rows(1))
            }
        }
        /// Four 4×4 transposes of the quadrants.
        #[inline(always)]
        fn transpose(v: [Self; 8]) -> [Self; 8] {
            unsafe {
                let q = |rows: usize, hi: bool| {
                    transpose4(std::array::from_fn(|r| {
                        if hi {
                            v[rows + r].1
                        } else {
                            v[rows + r].0
                        }
                    }))
                };
                let (a, b, c, d) = (q(0, false), q(4, false), q(0, true), q(4, true));
                std::array::from_fn(|l| {
                    if l < 4 {
                        Ymm2(a[l], b[l])
                    } else {
                        Ymm2(c[l - 4], d[l - 4])
                    }
                })
            }
        }
        #[inline(always)]
        fn zero_from(self, n: usize) -> Self {
            unsafe {
                // lane l kept where n > l (64-bit compares give all-ones or all-zeros masks)
                let n = _mm256_set1_epi64x(n as i64);
                let keep = |lanes: __m256i, v: __m256d| {
                    _mm256_and_pd(v, _mm256_castsi256_pd(_mm256_cmpgt_epi64(n, lanes)))
                };
                Ymm2(
                    keep(_mm256_set_epi64x(3, 2, 1, 0), self.0),
                    keep(_mm256_set_epi64x(7, 6, 5, 4), self.1),
                )
            }
        }
        #[inline(always)]
        fn tanh_in_place(v: &mut [f64]) {
            crate::char_rnn::tanh_in_place::<{ crate::char_rnn::AVX2 }>(v)
        }
        #[inline(always)]
        fn exp_in_place(v: &mut [f64]) {
            crate::char_rnn::exp_in_place::<{ crate::char_rnn::AVX2 }>(v)
        }
    }
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
            step_body::<avx512::Zmm>(m, s)
        }
        #[target_feature(enable = "avx2,fma")]
        fn level_avx2(m: &mut FastCharRnn, s: &StepArgs<'_>) -> f64 {
            step_body::<avx2::Ymm2>(m, s)
        }
        match simd_level() {
            // SAFETY: `simd_level` detected the features each function is compiled for.
            AVX512 => return unsafe { level_avx512(m, s) },
            // SAFETY: as above.
            AVX2 => return unsafe { level_avx2(m, s) },
            _ => {}
        }
    }
    step_body::<Portable>(m, s)
}

#[inline(always)]
fn step_body<V: Lanes>(m: &mut FastCharRnn, s: &StepArgs<'_>) -> f64 {
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
unsafe fn dot8<V: Lanes>(w: *const f64, ld: usize, a: *const f64, nb: usize) -> V {
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
unsafe fn dot_rows<V: Lanes>(w: *const f64, ld: usize, a: *const f64, nb: usize, rows: usize) -> V {
    #[inline(always)]
    unsafe fn first<V: Lanes, const R: usize>(
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
unsafe fn transpose_block<V: Lanes>(
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
unsafe fn forward<V: Lanes>(
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
            V::tanh_in_place(std::slice::from_raw_parts_mut(an, lda));
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
        V::exp_in_place(std::slice::from_raw_parts_mut(pyt, n_y * ts));
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
unsafe fn logits<V: Lanes, const R: usize, const NT: usize>(
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
unsafe fn logits_all<V: Lanes>(
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
    let tile_rows = [8, 6, 4][q - 1];
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
unsafe fn combine_rows<V: Lanes, const C: usize>(
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
unsafe fn combine_rows_all<V: Lanes>(
    w: *const f64,
    ld: usize,
    c: (*const f64, usize),
    n: usize,
    out: *mut f64,
    nb: usize,
) {
    let mut cb = 0;
    while cb < nb {
        let k = (nb - cb).min(8);
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
unsafe fn backward<V: Lanes>(m: &mut FastCharRnn, steps: usize) {
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
unsafe fn apply<V: Lanes>(g: V, lanes: usize, w: *mut f64, neg_lr: V, lo: V, hi: V) {
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
unsafe fn grad_rows<V: Lanes, const R: usize, const C: usize>(
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
unsafe fn grad_rows_all<V: Lanes>(
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
    let mut r0 = 0;
    while r0 < rows {
        let r = (rows - r0).min(2);
        let mut cb = 0;
        while cb < nb {
            let n = (nb - cb).min(8);
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
unsafe fn update<V: Lanes>(
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
mod tests {
    use super::*;
    use crate::char_rnn::{initialize_parameters, optimize_in, CharRnnWorkspace, Clip};
    use crate::random::RandomState;

    fn sequence(rs: &mut RandomState, steps: usize, v: usize) -> (Vec<Option<usize>>, Vec<usize>) {
        let ix: Vec<usize> = rs
            .rand(steps)
            .iter()
            .map(|u| (u * v as f64) as usize % v)
            .collect();
        let x = std::iter::once(None)
            .chain(ix[..steps - 1].iter().map(|&c| Some(c)))
            .collect();
        (x, ix)
    }

    fn params_close(a: &CharRnnParams, b: &CharRnnParams, tol: f64) {
        for (name, p, q) in [
            ("wax", &a.wax, &b.wax),
            ("waa", &a.waa, &b.waa),
            ("wya", &a.wya, &b.wya),
            ("b", &a.b, &b.b),
            ("by", &a.by, &b.by),
        ] {
            for (u, v) in p.iter().zip(q.iter()) {
                assert!((u - v).abs() <= tol * (1.0 + v.abs()), "{name}: {u} vs {v}");
            }
        }
    }

    /// Same step as the numpy-exact `optimize`, to rounding, for several sizes (blocks of
    /// 8 and the padding around them).
    #[test]
    fn fast_step_is_the_course_optimize_to_rounding() {
        // (sizes around the 8-lane blocks; in the last case the peaked softmax makes the
        // product of the step probabilities underflow, so the loss takes several logarithms)
        for (n_a, v, steps, scale) in [
            (50, 27, 13, 30.0),
            (5, 3, 1, 30.0),
            (8, 8, 9, 30.0),
            (17, 11, 30, 30.0),
            (64, 70, 4, 30.0),
            (70, 9, 5, 30.0),
            (9, 5, 40, 30000.0),
        ] {
            let mut rs = RandomState::new(7);
            let mut params = initialize_parameters(n_a, v, v);
            // larger weights than the course's start so every term matters
            params.waa.mapv_inplace(|w| w * 30.0);
            params.wya.mapv_inplace(|w| w * scale);
            let a_prev: Vec<f64> = rs.rand(n_a).iter().map(|u| u - 0.5).collect();
            let (x, y) = sequence(&mut rs, steps, v);
            let fast = FastCharRnn::pack(&params, 2).unwrap();
            for (clip, lr) in [(Some(5.0), 0.01), (Some(1e-3), 0.5), (None, 0.1)] {
                let mut exact = params.clone();
                let mode = clip.map_or(Clip::None, Clip::ElementWise);
                let mut ws = CharRnnWorkspace::new(n_a, v, v, steps);
                let loss = optimize_in(&mut ws, &x, &y, &a_prev, &mut exact, lr, mode).unwrap();
                let a_last = ws.a_last().to_vec();
                let mut f = fast.clone();
                let fl = f.step(&x, &y, &a_prev, lr, clip, false).unwrap();
                assert!((fl - loss).abs() <= 1e-12 * loss, "loss {fl} vs {loss}");
                // −log(1e-250) ≈ 576: the folding path runs
                assert!(scale < 1000.0 || loss > 2.0 * 576.0, "loss {loss}");
                for (p, q) in f.a_last().iter().zip(&a_last) {
                    assert!((p - q).abs() <= 1e-13, "a_last {p} vs {q}");
                }
                let mut got = params.clone();
                f.unpack_into(&mut got).unwrap();
                params_close(&got, &exact, 1e-13);
            }
            // pack → unpack is the identity
            let mut back = CharRnnParams::zeros(n_a, v, v);
            fast.unpack_into(&mut back).unwrap();
            assert_eq!(back, params);
        }
    }

    /// The AVX2 and AVX-512 levels give the portable code's bits, over a run of steps.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn simd_level_gives_the_portable_bits() {
        #[target_feature(enable = "avx512f,avx2,fma")]
        fn level_avx512(m: &mut FastCharRnn, s: &StepArgs<'_>) -> f64 {
            step_body::<avx512::Zmm>(m, s)
        }
        #[target_feature(enable = "avx2,fma")]
        fn level_avx2(m: &mut FastCharRnn, s: &StepArgs<'_>) -> f64 {
            step_body::<avx2::Ymm2>(m, s)
        }
        use std::arch::is_x86_feature_detected as has;
        let mut levels: Vec<(&str, StepFn)> = Vec::new();
        if has!("avx2") && has!("fma") {
            // SAFETY: the features were detected.
            levels.push(("avx2", |m, s| unsafe { level_avx2(m, s) }));
        }
        if has!("avx512f") && has!("avx2") && has!("fma") {
            // SAFETY: as above.
            levels.push(("avx512", |m, s| unsafe { level_avx512(m, s) }));
        }
        if levels.is_empty() {
            eprintln!("no AVX2 or AVX-512F here: nothing to compare");
            return;
        }
        for (name, wide) in levels {
            compare_with_portable(name, wide);
        }
    }

    #[cfg(target_arch = "x86_64")]
    type StepFn = fn(&mut FastCharRnn, &StepArgs<'_>) -> f64;

    #[cfg(target_arch = "x86_64")]
    fn compare_with_portable(name: &str, wide: StepFn) {
        let mut rs = RandomState::new(3);
        let mut params = initialize_parameters(50, 27, 27);
        params.waa.mapv_inplace(|w| w * 50.0);
        let mut a = FastCharRnn::pack(&params, 40).unwrap();
        let mut b = a.clone();
        let mut a_prev = vec![0.0; 50];
        for it in 0..300 {
            let (x, y) = sequence(&mut rs, 1 + it % 37, 27);
            let s = StepArgs {
                x: &x,
                y: &y,
                a_prev: &a_prev,
                neg_lr: -0.05,
                max: 5.0,
                keep: false,
            };
            let la = step_body::<Portable>(&mut a, &s);
            let lb = wide(&mut b, &s);
            assert_eq!(la.to_bits(), lb.to_bits(), "{name}: loss at step {it}");
            assert_eq!(a.a_last(), b.a_last());
            a_prev = a.a_last().to_vec();
        }
        for (p, q) in [
            (&a.wax_t, &b.wax_t),
            (&a.waa, &b.waa),
            (&a.wya, &b.wya),
            (&a.b, &b.b),
            (&a.by, &b.by),
        ] {
            let bits = |s: &Buf| s.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(p), bits(q), "{name}");
        }
    }

    /// Tiny step probabilities (1e-200 each, then a product in the subnormals): the loss is
    /// still the course's, to rounding.
    #[test]
    fn tiny_probabilities_keep_an_exact_loss() {
        let (n_a, v) = (3, 4);
        let a = vec![0.0; n_a];
        for (by0, x, y) in [
            (460.5, vec![None, Some(1)], vec![1, 2]),
            (360.0, vec![None, Some(1), Some(2)], vec![1, 2, 3]),
            (362.0, vec![None, Some(1)], vec![1, 2]),
            (371.0, vec![None, Some(1)], vec![1, 2]),
        ] {
            let mut params = CharRnnParams::zeros(n_a, v, v);
            params.by[[0, 0]] = by0; // class 0 takes nearly all the mass: p(y) ≈ e^-by0
            let mut exact = params.clone();
            let mut ws = CharRnnWorkspace::new(n_a, v, v, x.len());
            let le = optimize_in(
                &mut ws,
                &x,
                &y,
                &a,
                &mut exact,
                0.01,
                Clip::ElementWise(5.0),
            )
            .unwrap();
            let mut f = FastCharRnn::pack(&params, 2).unwrap();
            let lf = f.step(&x, &y, &a, 0.01, Some(5.0), true).unwrap();
            assert!(
                lf.is_finite() && (lf - le).abs() <= 1e-12 * le,
                "by0 {by0}: {lf} vs {le}"
            );
        }
    }

    /// An overflowing output layer makes some gradients infinite (∞ · 0 would be NaN in the
    /// padding): the clip keeps the step finite, as numpy's, and the padding stays 0.
    #[test]
    fn infinite_gradients_leave_the_padding_zero() {
        let (n_a, v) = (1, 3);
        let mut params = CharRnnParams::zeros(n_a, v, v);
        params.wya[[0, 0]] = -1.7e308;
        params.wya[[1, 0]] = 1.7e308;
        params.wya[[2, 0]] = 1.7e308;
        params.waa[[0, 0]] = 0.5;
        params.b[[0, 0]] = 1e-310;
        let (x, y) = ([None, Some(1), Some(2)], [0, 0, 0]);
        let a = vec![1e-310; n_a];
        let mut exact = params.clone();
        let mut ws = CharRnnWorkspace::new(n_a, v, v, 3);
        let mut f = FastCharRnn::pack(&params, 3).unwrap();
        for it in 0..3 {
            let le = optimize_in(
                &mut ws,
                &x,
                &y,
                &a,
                &mut exact,
                1e-300,
                Clip::ElementWise(5.0),
            )
            .unwrap();
            let lf = f.step(&x, &y, &a, 1e-300, Some(5.0), false).unwrap();
            assert_eq!(lf.is_finite(), le.is_finite(), "step {it}: {lf} vs {le}");
            let mut got = params.clone();
            f.unpack_into(&mut got).unwrap();
            assert!(
                got.waa.iter().all(|w| w.is_finite()),
                "step {it}: {:?}",
                got.waa
            );
            for buf in [&f.wax_t, &f.waa, &f.wya, &f.b] {
                let pad = buf.as_slice().chunks(8).flat_map(|row| &row[n_a..]);
                assert!(
                    pad.into_iter().all(|w| w.to_bits() == 0),
                    "step {it}: padding"
                );
            }
        }
    }

    /// A diverged step kept as it was: the weights and `a_last` are those from before it.
    #[test]
    fn a_kept_diverged_step_changes_nothing() {
        let params = initialize_parameters(5, 4, 4);
        let mut f = FastCharRnn::pack(&params, 0).unwrap(); // capacity 0 grows on demand
        assert_eq!(f.a_last(), &[0.0; 5]);
        let a_prev = [0.1, -0.2, 0.3, f64::NAN, 0.0];
        let loss = f
            .step(&[None, Some(1)], &[1, 2], &a_prev, 0.01, Some(5.0), true)
            .unwrap();
        assert!(loss.is_nan());
        assert_eq!(f.a_last()[..3], a_prev[..3]);
        let mut back = params.clone();
        f.unpack_into(&mut back).unwrap();
        assert_eq!(back, params);
    }

    #[test]
    fn bad_input_is_an_error() {
        let params = initialize_parameters(4, 3, 3);
        let mut f = FastCharRnn::pack(&params, 4).unwrap();
        let a = [0.0; 4];
        let err = f
            .step(&[None, Some(3)], &[1, 2], &a, 0.01, Some(5.0), true)
            .unwrap_err();
        assert!(err.to_string().contains("x[1]: index 3"), "{err}");
        let err = f
            .step(&[None], &[1], &[0.0; 3], 0.01, Some(5.0), true)
            .unwrap_err();
        assert!(err.to_string().contains("a_prev"), "{err}");
        let err = f
            .step(&[None], &[1], &a, f64::NAN, Some(5.0), true)
            .unwrap_err();
        assert!(err.to_string().contains("learning_rate"), "{err}");
        assert!(Arithmetic::parse("fastest").is_err());
    }
}
