//! AVX2 + FMA forms of numpy's tanh, exp and max, four lanes at a time; each lane performs the
//! scalar code's operations (its FMAs where the scalar code has `mul_add`, nowhere else), so
//! the bits are the scalar code's. The table lookups load each lane's table row and transpose
//! (AVX2's gathers, one per coefficient, measured slower than the scalar code on AMD Zen 4).

use std::arch::x86_64::*;

use super::tables::{
    EXP_C1, EXP_C2, EXP_C3, EXP_C4, EXP_C5, EXP_C6, EXP_L2E, EXP_LN2HI, EXP_LN2LO, EXP_TH, EXP_THR,
    EXP_TLR, TANH_LUT,
};

/// `TANH_LUT` with each row shifted by two (`[0, 0, b, c0, …, c16]`, coefficient `k` at
/// `k + 2`) and a zero row after the last: a 4-lane load at `k + 2` or at `k` stays inside
/// the table for every even `k ≤ 16`, which `tanh_pair` needs.
static TANH_ROWS: [[u64; TANH_ROW]; 17] = {
    let mut out = [[0u64; TANH_ROW]; 17];
    let mut i = 0;
    while i < 16 {
        let mut k = 0;
        while k < 18 {
            out[i][k + 2] = TANH_LUT[i][k];
            k += 1;
        }
        i += 1;
    }
    out
};
const TANH_ROW: usize = 20;

/// `[Th_j, Tlr_j]` side by side: one 16-byte load fetches both of exp's table values.
static EXP_PAIRS: [[u64; 2]; 16] = {
    let mut out = [[0u64; 2]; 16];
    let mut j = 0;
    while j < 16 {
        out[j] = [EXP_TH[j], EXP_TLR[j]];
        j += 1;
    }
    out
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

/// Coefficients `k` and `k + 1` (`k` even) of the four lanes' tanh rows `rows` (pointers
/// to `TANH_ROWS` rows): two 4-lane loads per pair of lanes, a blend, then the 2×2
/// interleave.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn tanh_pair(rows: &[*const f64; 4], k: usize) -> (__m256d, __m256d) {
    // SAFETY: each row pointer starts a TANH_ROWS row that is followed by at least one more
    // row, so 4 values at k and at k + 2 (k ≤ 16) are inside the table.
    unsafe {
        // [r0[k], r0[k+1], r2[k], r2[k+1]] and the same for rows 1 and 3
        let a = _mm256_blend_pd::<0b1100>(
            _mm256_loadu_pd(rows[0].add(k + 2)),
            _mm256_loadu_pd(rows[2].add(k)),
        );
        let b = _mm256_blend_pd::<0b1100>(
            _mm256_loadu_pd(rows[1].add(k + 2)),
            _mm256_loadu_pd(rows[3].add(k)),
        );
        (_mm256_unpacklo_pd(a, b), _mm256_unpackhi_pd(a, b))
    }
}

/// The four lanes' row pointers into `TANH_ROWS` for interval indices `idx`.
#[target_feature(enable = "avx2")]
#[inline]
fn tanh_rows(idx: __m256i) -> [*const f64; 4] {
    let mut i = [0u64; 4];
    // SAFETY: a 32-byte store into a 4 × u64 array.
    unsafe { _mm256_storeu_si256(i.as_mut_ptr() as *mut __m256i, idx) };
    // every index is below 16
    i.map(|r| TANH_ROWS[r as usize].as_ptr() as *const f64)
}

/// exp's `(Th_j, Tlr_j)` per lane for `j` in `0..16` (one per 64-bit lane).
#[target_feature(enable = "avx2")]
#[inline]
fn exp_table(j: __m256i) -> (__m256d, __m256d) {
    let mut i = [0u64; 4];
    // SAFETY: a 32-byte store into a 4 × u64 array; then 16-byte loads of EXP_PAIRS
    // entries, every index below 16.
    unsafe {
        _mm256_storeu_si256(i.as_mut_ptr() as *mut __m256i, j);
        let pair = |l: usize| _mm_loadu_pd(EXP_PAIRS[i[l] as usize].as_ptr() as *const f64);
        // [Th, Tlr] of lanes 0 and 2, then of lanes 1 and 3
        let a = _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(pair(0)), pair(2));
        let b = _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(pair(1)), pair(3));
        (_mm256_unpacklo_pd(a, b), _mm256_unpackhi_pd(a, b))
    }
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
    let abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX));
    let mut rows = [[std::ptr::null::<f64>(); 4]; N];
    let mut y = [_mm256_setzero_pd(); N];
    let mut c0 = [_mm256_setzero_pd(); N];
    let mut r = [_mm256_setzero_pd(); N];
    // SAFETY: the masked loads/stores touch only lanes below n; `tanh_rows` gives rows of
    // TANH_ROWS, as `tanh_pair` needs.
    unsafe {
        for q in 0..N {
            let x = _mm256_maskload_pd(p.add(4 * q), mask[q]);
            rows[q] = tanh_rows(tanh_interval(x));
            let (b, c) = tanh_pair(&rows[q], 0);
            y[q] = _mm256_sub_pd(_mm256_and_pd(x, abs_mask), b);
            c0[q] = c;
            let (c15, c16) = tanh_pair(&rows[q], 16);
            r[q] = _mm256_fmadd_pd(c16, y[q], c15);
        }
        // coefficients 15 … 2 in pairs (k + 1, then k), then c0 (row index 1)
        for k in (2..=14).rev().step_by(2) {
            for q in 0..N {
                let (lo, hi) = tanh_pair(&rows[q], k);
                r[q] = _mm256_fmadd_pd(r[q], y[q], hi);
                r[q] = _mm256_fmadd_pd(r[q], y[q], lo);
            }
        }
        for q in 0..N {
            r[q] = _mm256_fmadd_pd(r[q], y[q], c0[q]);
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
            let (th, tlr) = exp_table(j);
            let p = _mm256_fmadd_pd(p16, r, tlr);
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
