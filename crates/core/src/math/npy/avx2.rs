//! AVX2 + FMA forms of numpy's tanh, exp and max, four lanes at a time; each lane performs the
//! scalar code's operations (its FMAs where the scalar code has `mul_add`, nowhere else), so
//! the bits are the scalar code's. The table lookups are gathers.

use std::arch::x86_64::*;

use super::tables::{
    EXP_C1, EXP_C2, EXP_C3, EXP_C4, EXP_C5, EXP_C6, EXP_L2E, EXP_LN2HI, EXP_LN2LO, EXP_TH, EXP_THR,
    EXP_TLR, TANH_COEF,
};

/// All-ones 64-bit lanes for lanes `0..n` of four.
#[target_feature(enable = "avx2")]
#[inline]
fn first(n: usize) -> __m256i {
    _mm256_cmpgt_epi64(
        _mm256_set1_epi64x(n.min(4) as i64),
        _mm256_set_epi64x(3, 2, 1, 0),
    )
}

/// `table[idx]` per lane (`idx` in `0..16`, one per 64-bit lane).
#[target_feature(enable = "avx2")]
#[inline]
fn lookup16(table: &[u64; 16], idx: __m256i) -> __m256d {
    // SAFETY: every index is below 16, inside the table; u64 bits read as f64.
    unsafe { _mm256_i64gather_pd::<8>(table.as_ptr() as *const f64, idx) }
}

/// The largest element of `v` (−∞ when empty), four lanes at a time; `None` when `v` holds
/// a NaN (see `avx512::max_ordered`: the order of comparison cannot change the maximum
/// except for the sign of a zero, which the softmax cannot see).
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
#[inline]
pub unsafe fn max_ordered(v: &[f64]) -> Option<f64> {
    let ninf = _mm256_set1_pd(f64::NEG_INFINITY);
    let (mut mx, mut unordered) = (ninf, _mm256_setzero_pd());
    let mut i = 0;
    while i < v.len() {
        let m = first(v.len() - i);
        // SAFETY: the masked load touches only lanes below len - i.
        let x = unsafe { _mm256_maskload_pd(v.as_ptr().add(i), m) };
        let x = _mm256_blendv_pd(ninf, x, _mm256_castsi256_pd(m));
        unordered = _mm256_or_pd(unordered, _mm256_cmp_pd::<_CMP_UNORD_Q>(x, x));
        mx = _mm256_max_pd(mx, x);
        i += 4;
    }
    if _mm256_movemask_pd(unordered) != 0 {
        return None;
    }
    let half = _mm_max_pd(_mm256_castpd256_pd128(mx), _mm256_extractf128_pd::<1>(mx));
    Some(_mm_cvtsd_f64(_mm_max_sd(half, _mm_unpackhi_pd(half, half))))
}

/// `npy_tanh` on every element, up to four vectors side by side: their Horner chains
/// interleave, so the polynomial's latency is paid about once per group.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn tanh_in_place(v: &mut [f64]) {
    let nvec = v.len().div_ceil(4);
    let mut v0 = 0;
    while v0 < nvec {
        let k = (nvec - v0).min(4);
        // SAFETY: the group's masked loads/stores stay below v.len().
        unsafe {
            let p = v.as_mut_ptr().add(4 * v0);
            let n = v.len() - 4 * v0;
            match k {
                1 => tanh_group::<1>(p, n),
                2 => tanh_group::<2>(p, n),
                3 => tanh_group::<3>(p, n),
                _ => tanh_group::<4>(p, n),
            }
        }
        v0 += k;
    }
}

/// `N` vectors of `tanh_in_place` at `p`, with `n` elements left from `p` (the lanes past
/// `n` neither read nor written).
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tanh_group<const N: usize>(p: *mut f64, n: usize) {
    let mask: [__m256i; N] = std::array::from_fn(|q| first(n.saturating_sub(4 * q)));
    let mut idx = [_mm256_setzero_si256(); N];
    let mut y = [_mm256_setzero_pd(); N];
    let mut r = [_mm256_setzero_pd(); N];
    let abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX));
    // SAFETY: the masked loads/stores touch only lanes below n.
    unsafe {
        for q in 0..N {
            let x = _mm256_maskload_pd(p.add(4 * q), mask[q]);
            idx[q] = tanh_interval(x);
            y[q] = _mm256_sub_pd(_mm256_and_pd(x, abs_mask), lookup16(&TANH_COEF[0], idx[q]));
            r[q] = _mm256_fmadd_pd(
                lookup16(&TANH_COEF[17], idx[q]),
                y[q],
                lookup16(&TANH_COEF[16], idx[q]),
            );
        }
        for k in (1..=15).rev() {
            for q in 0..N {
                r[q] = _mm256_fmadd_pd(r[q], y[q], lookup16(&TANH_COEF[k], idx[q]));
            }
        }
        for q in 0..N {
            let x = _mm256_maskload_pd(p.add(4 * q), mask[q]);
            _mm256_maskstore_pd(p.add(4 * q), mask[q], tanh_finish(x, r[q]));
        }
    }
}

/// Which of the 16 intervals (by the exponent of `|x|`) picks tanh's polynomial, per lane.
/// The scalar form's 64-bit steps on `bits & 0x7ff8…` act on its high 32-bit word only
/// (the low word is 0 throughout), so AVX2's 32-bit subtract, max and min do them.
#[target_feature(enable = "avx2")]
#[inline]
fn tanh_interval(x: __m256d) -> __m256i {
    let ndnan = _mm256_and_si256(
        _mm256_castpd_si256(x),
        _mm256_set1_epi64x(0x7ff8_0000_0000_0000),
    );
    let high = _mm256_sub_epi32(ndnan, _mm256_set1_epi64x(0x3fc0_0000_0000_0000));
    let high = _mm256_min_epi32(
        _mm256_max_epi32(high, _mm256_setzero_si256()),
        _mm256_set1_epi64x(0x0078_0000_0000_0000),
    );
    _mm256_srli_epi64::<{ 32 + 19 }>(high)
}

/// tanh from the polynomial's value `r` at `|x|`: ±1 past the last interval, the sign of
/// `x` put back, NaN kept.
#[target_feature(enable = "avx2")]
#[inline]
fn tanh_finish(x: __m256d, r: __m256d) -> __m256d {
    let bits = _mm256_castpd_si256(x);
    let ndnan = _mm256_and_si256(bits, _mm256_set1_epi64x(0x7ff8_0000_0000_0000));
    let huge = _mm256_cmpgt_epi64(ndnan, _mm256_set1_epi64x(0x7fe0_0000_0000_0000));
    let r = _mm256_blendv_pd(r, _mm256_set1_pd(1.0), _mm256_castsi256_pd(huge));
    let sign = _mm256_and_si256(bits, _mm256_set1_epi64x(i64::MIN));
    let r = _mm256_castsi256_pd(_mm256_or_si256(_mm256_castpd_si256(r), sign));
    _mm256_blendv_pd(
        r,
        _mm256_set1_pd(f64::NAN),
        _mm256_cmp_pd::<_CMP_UNORD_Q>(x, x),
    )
}

/// `npy_exp` on every element, four lanes at a time (lanes outside SVML's main range go
/// through the scalar fallback).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn exp_in_place(v: &mut [f64]) {
    let c = |b: u64| _mm256_set1_pd(f64::from_bits(b));
    let n = v.len();
    let mut i = 0;
    while i < n {
        let mask = first(n - i);
        let main: i32;
        // SAFETY: the masked load/store touch only lanes below n - i.
        unsafe {
            let x = _mm256_maskload_pd(v.as_ptr().add(i), mask);
            let abs = _mm256_and_pd(x, _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX)));
            let in_range = _mm256_and_pd(
                _mm256_castsi256_pd(mask),
                _mm256_cmp_pd::<_CMP_LT_OQ>(abs, c(EXP_THR)),
            );
            main = _mm256_movemask_pd(in_range);
            // k = ⌊16·x·log2e⌋ of the exact product
            let l2e16 = _mm256_set1_pd(f64::from_bits(EXP_L2E) * 16.0);
            let y = _mm256_mul_pd(x, l2e16);
            let err = _mm256_fmsub_pd(x, l2e16, y);
            let fl = _mm256_floor_pd(y);
            let down = _mm256_and_pd(
                _mm256_cmp_pd::<_CMP_EQ_OQ>(fl, y),
                _mm256_cmp_pd::<_CMP_LT_OQ>(err, _mm256_setzero_pd()),
            );
            let k = _mm256_sub_pd(fl, _mm256_and_pd(down, _mm256_set1_pd(1.0)));
            let nn = _mm256_mul_pd(k, _mm256_set1_pd(1.0 / 16.0));
            // k as an integer from the low bits of k + 1.5·2^52 (|k| < 2^15 in the main range)
            let magic = 6755399441055744.0f64;
            let ki = _mm256_sub_epi64(
                _mm256_castpd_si256(_mm256_add_pd(k, _mm256_set1_pd(magic))),
                _mm256_set1_epi64x(magic.to_bits() as i64),
            );
            let j = _mm256_and_si256(ki, _mm256_set1_epi64x(15));
            let r = _mm256_fnmadd_pd(nn, c(EXP_LN2HI), x);
            let r = _mm256_fnmadd_pd(nn, c(EXP_LN2LO), r);
            let r = _mm256_and_pd(r, c(0xbfff_ffff_ffff_ffff));
            let r2 = _mm256_mul_pd(r, r);
            let p56 = _mm256_fmadd_pd(c(EXP_C6), r, c(EXP_C5));
            let p34 = _mm256_fmadd_pd(c(EXP_C4), r, c(EXP_C3));
            let p12 = _mm256_fmadd_pd(c(EXP_C2), r, c(EXP_C1));
            let p36 = _mm256_fmadd_pd(r2, p56, p34);
            let p16 = _mm256_fmadd_pd(r2, p36, p12);
            let p = _mm256_fmadd_pd(p16, r, lookup16(&EXP_TLR, j));
            let th = lookup16(&EXP_TH, j);
            let res = _mm256_fmadd_pd(th, p, th);
            // · 2^⌊N⌋: the biased exponent ⌊k/16⌋ + 1023 (k + 16·1023 > 0 in the main range,
            // so a logical shift floors), a normal power of two as in the scalar code
            let biased =
                _mm256_srli_epi64::<4>(_mm256_add_epi64(ki, _mm256_set1_epi64x(16 * 1023)));
            let scale = _mm256_castsi256_pd(_mm256_slli_epi64::<52>(biased));
            let res = _mm256_mul_pd(res, scale);
            _mm256_maskstore_pd(v.as_mut_ptr().add(i), _mm256_castpd_si256(in_range), res);
        }
        for l in 0..4.min(n - i) {
            if main & (1 << l) == 0 {
                v[i + l] = super::npy_exp(v[i + l]);
            }
        }
        i += 4;
    }
}
