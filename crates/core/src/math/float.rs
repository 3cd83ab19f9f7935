//! The element type of the language model: `f32` (default, fast) or `f64` (for gradient checks).

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use super::simd::SimdLevel;

/// A hot loop written once, generically, and compiled for each SIMD level by
/// [`Float::vectorized`]. Implementations mark [`SimdKernel::run`] `#[inline(always)]`, so
/// the loop is compiled inside the level's `target_feature` function and vectorised for it.
pub trait SimdKernel {
    type Output;
    /// The loop itself.
    fn run(self) -> Self::Output;
}

/// What the model needs from a float: arithmetic, a few transcendental functions and exact
/// conversion to/from `f64` (losses, learning rates and checkpoints go through `f64`).
pub trait Float:
    Copy
    + Send
    + Sync
    + 'static
    + Default
    + Debug
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + ndarray::LinalgScalar
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// "float32" or "float64" (the dtype name used in checkpoints and the JS API).
    const DTYPE: &'static str;
    /// Nearest representable value.
    fn from_f64(v: f64) -> Self;
    /// Exact widening.
    fn to_f64(self) -> f64;
    /// e^x.
    fn exp(self) -> Self;
    /// tanh(x).
    fn tanh(self) -> Self;
    /// √x.
    fn sqrt(self) -> Self;
    /// |x|.
    fn abs(self) -> Self;
    /// The logistic function σ(x) = 1 / (1 + e^−x).
    #[inline]
    fn sigmoid(self) -> Self {
        Self::ONE / (Self::ONE + (-self).exp())
    }
    /// σ(x) for the hot loops: exact for f64; for f32 a branch-free polynomial `exp` that the
    /// compiler vectorises (max relative error ≈ 2e-7, see tests).
    fn sigmoid_fast(self) -> Self;
    /// tanh(x) for the hot loops (as [`Float::sigmoid_fast`]; absolute error ≈ 1e-7 for f32).
    fn tanh_fast(self) -> Self;
    /// e^x for the hot loops: [`exp_f32`] for f32, the exact `exp` for f64.
    fn exp_fast(self) -> Self;
    /// Runs `kernel` compiled for the SIMD level in force ([`SimdLevel::current`]): the one
    /// place where the hot loops of the recurrent engine, the samplers and the models choose
    /// their CPU path. Rust never fuses `a*b+c` into an FMA on its own and the kernels reduce
    /// in a fixed order, so every level gives bit-identical results.
    #[inline]
    fn vectorized<K: SimdKernel>(kernel: K) -> K::Output {
        run_at_level(SimdLevel::current(), kernel)
    }
}

/// Runs `kernel` compiled for `level` (which must not exceed [`SimdLevel::current`]).
#[inline]
fn run_at_level<K: SimdKernel>(level: SimdLevel, kernel: K) -> K::Output {
    match level {
        // SAFETY: `SimdLevel::current` only reports levels whose features this CPU has.
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => unsafe { run_avx512(kernel) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => unsafe { run_avx2(kernel) },
        _ => kernel.run(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
unsafe fn run_avx512<K: SimdKernel>(kernel: K) -> K::Output {
    kernel.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<K: SimdKernel>(kernel: K) -> K::Output {
    kernel.run()
}

/// e^x in f32 without branches or libm calls (Cephes `expf`: range reduction by ln 2 with a
/// two-part constant, degree-6 polynomial, exponent built from bits), so loops vectorise.
#[inline(always)]
#[allow(clippy::manual_clamp)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    // 1.5·2^23: adding and subtracting it rounds to the nearest integer (no floor call)
    const ROUND: f32 = 12_582_912.0;
    // max/min rather than clamp: NaN-propagation-free selects that vectorise
    let x = x.max(-87.0).min(88.0);
    let fx = (x * LOG2E + ROUND) - ROUND;
    let r = x - fx * C1 - fx * C2;
    let r2 = r * r;
    let mut y = 1.987_569_1e-4f32;
    y = y * r + 1.398_199_9e-3;
    y = y * r + 8.333_452e-3;
    y = y * r + 4.166_579_6e-2;
    y = y * r + 0.166_666_65;
    y = y * r + 0.5;
    y = y * r2 + r + 1.0;
    // SAFETY: x is clamped, so fx is an integer in [-126, 127]: in range for i32.
    let e = unsafe { fx.to_int_unchecked::<i32>() };
    let scale = f32::from_bits((e.wrapping_add(127) as u32) << 23); // wrapping: no overflow-check branch
    y * scale
}

macro_rules! impl_float {
    ($t:ty, $name:expr, $fast_sigmoid:expr, $fast_tanh:expr, $fast_exp:expr) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const DTYPE: &'static str = $name;
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn sigmoid_fast(self) -> Self {
                ($fast_sigmoid)(self)
            }
            #[inline(always)]
            fn tanh_fast(self) -> Self {
                ($fast_tanh)(self)
            }
            #[inline(always)]
            fn exp_fast(self) -> Self {
                ($fast_exp)(self)
            }
        }
    };
}
impl_float!(
    f32,
    "float32",
    |x: f32| 1.0 / (1.0 + exp_f32(-x)),
    |x: f32| 1.0 - 2.0 / (exp_f32(2.0 * x) + 1.0),
    exp_f32
);
impl_float!(
    f64,
    "float64",
    |x: f64| 1.0 / (1.0 + (-x).exp()),
    f64::tanh,
    f64::exp
);
