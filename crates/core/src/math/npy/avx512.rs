//! AVX-512F forms of numpy's tanh, exp and max, eight lanes at a time; each lane performs the
//! scalar code's operations, so the bits are the scalar code's.

use std::arch::x86_64::*;

use super::tables::{
    EXP_C1, EXP_C2, EXP_C3, EXP_C4, EXP_C5, EXP_C6, EXP_L2E, EXP_LN2HI, EXP_LN2LO, EXP_TH, EXP_THR,
    EXP_TLR, TANH_COEF,
};
use crate::math::lanes::mask8;

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
        let x = unsafe { _mm512_mask_loadu_pd(ninf, mask8(v.len() - i), v.as_ptr().add(i)) };
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
        *m = mask8(n.saturating_sub(8 * q));
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
        let mask = mask8(n - i);
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
