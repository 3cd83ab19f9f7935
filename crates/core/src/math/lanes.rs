//! f64 SIMD lanes: one trait over a register (or register pair) of f64 lanes, implemented once
//! per CPU path, so that a kernel is written once and compiled at every level.
//!
//! - [`Lanes`]: element-wise operations at any width (AVX2's 4-lane `Ymm`, the 8-lane types);
//! - [`Lanes8`]: eight lanes with the reductions and transposes of the fast dinos kernels
//!   ([`Portable`] defines every result; `Ymm2` = two ymm registers, `Zmm` = one zmm register).
//!
//! Every SIMD type must give the portable definition's bits lane for lane. The types are only
//! used inside functions compiled for their target features, which are only called after
//! [`SimdLevel::current`] says the CPU has them; [`Level`] names that level at compile time.

use super::SimdLevel;

/// A SIMD level known at compile time (kernels are generic over it, so each level compiles
/// to its own code with its own target features).
pub(crate) trait Level: Copy + 'static {
    const SIMD: SimdLevel;
}

/// The compile-time levels, one marker type per [`SimdLevel`].
pub(crate) mod level {
    use super::{Level, SimdLevel};

    /// Plain Rust (defines every result).
    #[derive(Clone, Copy)]
    pub(crate) struct Portable;
    /// AVX2 + FMA.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx2;
    /// AVX-512F (+ AVX2, FMA).
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512;

    impl Level for Portable {
        const SIMD: SimdLevel = SimdLevel::Portable;
    }
    impl Level for Avx2 {
        const SIMD: SimdLevel = SimdLevel::Avx2;
    }
    impl Level for Avx512 {
        const SIMD: SimdLevel = SimdLevel::Avx512;
    }
}

/// Lanes `0..cnt` of an 8-lane AVX-512 mask.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn mask8(cnt: usize) -> u8 {
    if cnt >= 8 {
        0xff
    } else {
        (1u8 << cnt) - 1
    }
}

/// `WIDTH` f64 lanes. Element-wise operations only, so a kernel written over them gives
/// the same bits per element at every width.
pub(crate) trait Lanes: Copy {
    /// The SIMD level this type's code needs (and the numpy tanh/exp kernels to pair it with).
    type At: Level;
    const WIDTH: usize;
    fn zero() -> Self;
    fn splat(x: f64) -> Self;
    /// `WIDTH` values at `p`, aligned to the register width.
    unsafe fn load(p: *const f64) -> Self;
    /// Store at `p`, aligned to the register width.
    unsafe fn store(self, p: *mut f64);
    /// `WIDTH` values at `p`, any alignment.
    unsafe fn loadu(p: *const f64) -> Self;
    /// Store at `p`, any alignment.
    unsafe fn storeu(self, p: *mut f64);
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
}

/// Lanes with partial loads and stores: a kernel covers a row of any length with whole
/// vectors, the last one masked (x86-64 SIMD types only).
#[cfg(target_arch = "x86_64")]
pub(crate) trait MaskedLanes: Lanes {
    type Mask: Copy;
    /// Lanes `0..n` (all of them when `n >= WIDTH`).
    fn first(n: usize) -> Self::Mask;
    /// The lanes of `mask` at `p` (any alignment), the others +0; only those lanes are read.
    unsafe fn load_masked(p: *const f64, mask: Self::Mask) -> Self;
    /// Store the lanes of `mask` at `p`; the others are not touched.
    unsafe fn store_masked(self, p: *mut f64, mask: Self::Mask);
}

/// Eight f64 lanes with the reductions of the fast dinos kernels. The portable type defines
/// every operation; a SIMD type must give the same bits.
pub(crate) trait Lanes8: Lanes {
    /// How many `Self` values a kernel may keep live in registers at once (the vector
    /// registers, each `Self` taking `8 / WIDTH` of them): sizes the register tiles.
    const REGS: usize;
    /// Lane `r` = the sum of `v[r]`'s lanes as `((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7))`.
    fn sum_rows(v: [Self; 8]) -> Self;
    /// The 8×8 transpose: lane `r` of output `l` = lane `l` of `v[r]`.
    fn transpose(v: [Self; 8]) -> [Self; 8];
    /// Lanes `0..n` kept, lanes `n..8` set to +0 (`n < 8`).
    fn zero_from(self, n: usize) -> Self;
}

/// The portable definition of eight lanes.
#[derive(Clone, Copy)]
pub(crate) struct Portable([f64; 8]);

impl Portable {
    #[inline(always)]
    fn map2(self, o: Self, f: impl Fn(f64, f64) -> f64) -> Self {
        Portable(std::array::from_fn(|l| f(self.0[l], o.0[l])))
    }
}

impl Lanes for Portable {
    type At = level::Portable;
    const WIDTH: usize = 8;
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
    unsafe fn loadu(p: *const f64) -> Self {
        // SAFETY: the caller passes 8 readable f64.
        Portable(unsafe { std::ptr::read_unaligned(p as *const [f64; 8]) })
    }
    #[inline(always)]
    unsafe fn storeu(self, p: *mut f64) {
        // SAFETY: the caller passes 8 writable f64.
        unsafe { std::ptr::write_unaligned(p as *mut [f64; 8], self.0) }
    }
}

impl Lanes8 for Portable {
    const REGS: usize = 32;
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
}

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::{Ymm, Ymm2};
#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::Zmm;

/// `((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7))`.
#[inline(always)]
fn tree_sum(l: [f64; 8]) -> f64 {
    ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Lanes, Lanes8};
    use std::arch::x86_64::*;

    /// One zmm register (AVX-512F); only used inside functions compiled for avx512f.
    #[derive(Clone, Copy)]
    pub(crate) struct Zmm(__m512d);

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
        type At = super::level::Avx512;
        const WIDTH: usize = 8;
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
        #[inline(always)]
        unsafe fn loadu(p: *const f64) -> Self {
            Zmm(unsafe { _mm512_loadu_pd(p) })
        }
        #[inline(always)]
        unsafe fn storeu(self, p: *mut f64) {
            unsafe { _mm512_storeu_pd(p, self.0) }
        }
    }

    // SAFETY (every method): as for `Lanes`; masked lanes are neither read nor written.
    impl super::MaskedLanes for Zmm {
        type Mask = __mmask8;
        #[inline(always)]
        fn first(n: usize) -> __mmask8 {
            super::mask8(n)
        }
        #[inline(always)]
        unsafe fn load_masked(p: *const f64, mask: __mmask8) -> Self {
            Zmm(unsafe { _mm512_maskz_loadu_pd(mask, p) })
        }
        #[inline(always)]
        unsafe fn store_masked(self, p: *mut f64, mask: __mmask8) {
            unsafe { _mm512_mask_storeu_pd(p, mask, self.0) }
        }
    }

    impl Lanes8 for Zmm {
        const REGS: usize = 32;
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
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Lanes, Lanes8};
    use std::arch::x86_64::*;

    /// Two ymm registers (lanes 0–3, 4–7; AVX2+FMA); only used inside functions compiled for
    /// avx2 and fma.
    #[derive(Clone, Copy)]
    pub(crate) struct Ymm2(__m256d, __m256d);

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
        type At = super::level::Avx2;
        const WIDTH: usize = 8;
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
        #[inline(always)]
        unsafe fn loadu(p: *const f64) -> Self {
            unsafe { Ymm2(_mm256_loadu_pd(p), _mm256_loadu_pd(p.add(4))) }
        }
        #[inline(always)]
        unsafe fn storeu(self, p: *mut f64) {
            unsafe {
                _mm256_storeu_pd(p, self.0);
                _mm256_storeu_pd(p.add(4), self.1);
            }
        }
    }

    impl Lanes8 for Ymm2 {
        const REGS: usize = 7; // 16 ymm, one kept for a broadcast or a loaded operand
        /// Each half's pairs and quads (`sum4`), then the two halves added: `tree_sum`'s tree.
        #[inline(always)]
        fn sum_rows(v: [Self; 8]) -> Self {
            // No closures here: a closure is compiled without the caller's target features,
            // so its intrinsics became out-of-line calls (the AVX2 fast step ran 1.5× slower).
            unsafe {
                let lo0 = sum4([v[0].0, v[1].0, v[2].0, v[3].0]);
                let hi0 = sum4([v[0].1, v[1].1, v[2].1, v[3].1]);
                let lo1 = sum4([v[4].0, v[5].0, v[6].0, v[7].0]);
                let hi1 = sum4([v[4].1, v[5].1, v[6].1, v[7].1]);
                Ymm2(_mm256_add_pd(lo0, hi0), _mm256_add_pd(lo1, hi1))
            }
        }
        /// Four 4×4 transposes of the quadrants.
        #[inline(always)]
        fn transpose(v: [Self; 8]) -> [Self; 8] {
            // (no closures: see `sum_rows`)
            unsafe {
                let a = transpose4([v[0].0, v[1].0, v[2].0, v[3].0]);
                let b = transpose4([v[4].0, v[5].0, v[6].0, v[7].0]);
                let c = transpose4([v[0].1, v[1].1, v[2].1, v[3].1]);
                let d = transpose4([v[4].1, v[5].1, v[6].1, v[7].1]);
                [
                    Ymm2(a[0], b[0]),
                    Ymm2(a[1], b[1]),
                    Ymm2(a[2], b[2]),
                    Ymm2(a[3], b[3]),
                    Ymm2(c[0], d[0]),
                    Ymm2(c[1], d[1]),
                    Ymm2(c[2], d[2]),
                    Ymm2(c[3], d[3]),
                ]
            }
        }
        #[inline(always)]
        fn zero_from(self, n: usize) -> Self {
            unsafe {
                // lane l kept where n > l (64-bit compares give all-ones or all-zeros masks)
                // (no closures: see `sum_rows`)
                let n = _mm256_set1_epi64x(n as i64);
                let keep_lo = _mm256_cmpgt_epi64(n, _mm256_set_epi64x(3, 2, 1, 0));
                let keep_hi = _mm256_cmpgt_epi64(n, _mm256_set_epi64x(7, 6, 5, 4));
                Ymm2(
                    _mm256_and_pd(self.0, _mm256_castsi256_pd(keep_lo)),
                    _mm256_and_pd(self.1, _mm256_castsi256_pd(keep_hi)),
                )
            }
        }
    }

    /// One ymm register (4 lanes, AVX2+FMA): the width of OpenBLAS's Haswell kernels, whose
    /// order the numpy-order dinos kernels reproduce.
    #[derive(Clone, Copy)]
    pub(crate) struct Ymm(__m256d);

    /// `fn name(self, o) -> Self` as one intrinsic.
    macro_rules! ymm1_binary {
        ($($name:ident => $op:ident),* $(,)?) => {
            $(
                #[inline(always)]
                fn $name(self, o: Self) -> Self {
                    Ymm(unsafe { $op(self.0, o.0) })
                }
            )*
        };
    }

    // SAFETY (every method): only used in code compiled for, and run on, AVX2 and FMA; the
    // caller of a load or store passes four valid (aligned, for `load`/`store`) f64.
    impl Lanes for Ymm {
        type At = super::level::Avx2;
        const WIDTH: usize = 4;
        #[inline(always)]
        fn zero() -> Self {
            Ymm(unsafe { _mm256_setzero_pd() })
        }
        #[inline(always)]
        fn splat(x: f64) -> Self {
            Ymm(unsafe { _mm256_set1_pd(x) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f64) -> Self {
            Ymm(unsafe { _mm256_load_pd(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f64) {
            unsafe { _mm256_store_pd(p, self.0) }
        }
        #[inline(always)]
        unsafe fn loadu(p: *const f64) -> Self {
            Ymm(unsafe { _mm256_loadu_pd(p) })
        }
        #[inline(always)]
        unsafe fn storeu(self, p: *mut f64) {
            unsafe { _mm256_storeu_pd(p, self.0) }
        }
        ymm1_binary! {
            add => _mm256_add_pd,
            sub => _mm256_sub_pd,
            mul => _mm256_mul_pd,
            div => _mm256_div_pd,
            max => _mm256_max_pd,
            min => _mm256_min_pd,
        }
        #[inline(always)]
        fn mul_add(self, b: Self, c: Self) -> Self {
            Ymm(unsafe { _mm256_fmadd_pd(self.0, b.0, c.0) })
        }
    }

    // SAFETY (every method): as for `Lanes`; `vmaskmovpd` neither reads nor writes (nor
    // faults on) the masked lanes.
    impl super::MaskedLanes for Ymm {
        /// All-ones 64-bit lanes where the lane is in.
        type Mask = __m256i;
        #[inline(always)]
        fn first(n: usize) -> __m256i {
            unsafe {
                _mm256_cmpgt_epi64(
                    _mm256_set1_epi64x(n.min(4) as i64),
                    _mm256_set_epi64x(3, 2, 1, 0),
                )
            }
        }
        #[inline(always)]
        unsafe fn load_masked(p: *const f64, mask: __m256i) -> Self {
            Ymm(unsafe { _mm256_maskload_pd(p, mask) })
        }
        #[inline(always)]
        unsafe fn store_masked(self, p: *mut f64, mask: __m256i) {
            unsafe { _mm256_maskstore_pd(p, mask, self.0) }
        }
    }
}
