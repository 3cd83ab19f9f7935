//! AVX2 + FMA forms of numpy's tanh, exp and max, four lanes at a time; each lane performs the
//! scalar code's operations (its FMAs where the scalar code has `mul_add`, nowhere else), so
//! the bits are the scalar code's. The table lookups load each lane's table row and transpose
//! (AVX2's gathers, one per coefficient, measured slower than the scalar code on AMD Zen 4).

use std::arch::x86_64::*;

use super::tables::{
    EXP_C1, EXP_C2, EXP_C3, EXP_C4, EXP_C5, EXP_C6, EXP_L2E, EXP_LN2HI, EXP_LN2LO, EXP_TH, EXP_THR,
    EXP_TLR, TANH_LUT,
};

/// `TANH_LUT` aligned to 16 bytes: its rows are 144 bytes, so the 16-byte loads of
/// coefficients `k, k + 1` (`k` even) in `tanh_pair` never cross a cache line.
#[repr(align(64))]
struct TanhRows([[u64; 18]; 16]);
static TANH_ROWS: TanhRows = TanhRows(TANH_LUT);

/// `[Th_j, Tlr_j]` side by side, 16-byte aligned: one aligned load fetches both of exp's
/// table values.
#[repr(align(64))]
struct ExpPairs([[u64; 2]; 16]);
static EXP_PAIRS: ExpPairs = {
    let mut out = [[0u64; 2]; 16];
    let mut j = 0;
    while j < 16 {
        out[j] = [EXP_TH[j], EXP_TLR[j]];
        j += 1;
    }
    ExpPairs(out)
};

/// All-ones 64-bit lanes for lanes `0..n` of four.
#[inline(always)]
unsafe fn first(n: usize) -> __m256i {
    // SAFETY: the caller runs on AVX2.
    unsafe {
        _mm256_cmpgt_epi64(
            _mm256_set1_epi64x(n.min(4) as i64),
            _mm256_set_epi64x(3, 2, 1, 0),
        )
    }
}

/// Coefficients `k` and `k + 1` (`k` even) of the four lanes' tanh rows `rows` (pointers
/// to `TANH_ROWS` rows): a 16-byte load per lane, two inserts, then the 2×2 interleave.
#[inline(always)]
unsafe fn tanh_pair(rows: &[*const f64; 4], k: usize) -> (__m256d, __m256d) {
    // SAFETY: each row pointer starts an 18-value TANH_ROWS row and k ≤ 16.
    unsafe {
        // [r0[k], r0[k+1], r2[k], r2[k+1]] and the same for rows 1 and 3
        let a = _mm256_insertf128_pd::<1>(
            _mm256_castpd128_pd256(_mm_load_pd(rows[0].add(k))),
            _mm_load_pd(rows[2].add(k)),
        );
        let b = _mm256_insertf128_pd::<1>(
            _mm256_castpd128_pd256(_mm_load_pd(rows[1].add(k))),
            _mm_load_pd(rows[3].add(k)),
        );
        (_mm256_unpacklo_pd(a, b), _mm256_unpackhi_pd(a, b))
    }
}

/// The row of `TANH_ROWS` for each of the four values at `p`, from their bits in the
/// general-purpose registers (a vector store and reload of the indices would stall on
/// store-to-load forwarding).
///
/// # Safety
/// `p` valid for 4 reads.
#[inline(always)]
unsafe fn tanh_rows(p: *const f64) -> [*const f64; 4] {
    // SAFETY: the caller's contract.
    let row = |l: usize| {
        let bits = unsafe { *p.add(l) }.to_bits();
        TANH_ROWS.0[super::tanh_interval(bits)].as_ptr() as *const f64
    };
    [row(0), row(1), row(2), row(3)]
}

/// exp's `(Th_j, Tlr_j)` per lane for `j` in `0..16` (one per 64-bit lane).
#[inline(always)]
unsafe fn exp_table(j: __m256i) -> (__m256d, __m256d) {
    // SAFETY: the caller runs on AVX2; every index is below 16.
    unsafe {
        let (lo, hi) = (_mm256_castsi256_si128(j), _mm256_extracti128_si256::<1>(j));
        let entry = |i: i64| EXP_PAIRS.0[i as usize].as_ptr() as *const f64;
        let p = [
            entry(_mm_cvtsi128_si64(lo)),
            entry(_mm_extract_epi64::<1>(lo)),
            entry(_mm_cvtsi128_si64(hi)),
            entry(_mm_extract_epi64::<1>(hi)),
        ];
        // [Th, Tlr] of lanes 0 and 2, then of lanes 1 and 3
        let a =
            _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(_mm_load_pd(p[0])), _mm_load_pd(p[2]));
        let b =
            _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(_mm_load_pd(p[1])), _mm_load_pd(p[3]));
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

/// `npy_tanh` on every element: whole vectors in groups of up to [`TANH_GROUP`] side by
/// side (their Horner chains interleave), the last `len % 4` one by one (AMD's masked
/// stores are slow).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn tanh_in_place(v: &mut [f64]) {
    let mut groups = v.chunks_exact_mut(4 * TANH_GROUP);
    for g in &mut groups {
        // SAFETY: TANH_GROUP whole vectors inside the chunk.
        unsafe { tanh_vectors::<TANH_GROUP>(g.as_mut_ptr()) };
    }
    let rest = groups.into_remainder();
    let mut vectors = rest.chunks_exact_mut(4);
    for c in &mut vectors {
        // SAFETY: one whole vector.
        unsafe { tanh_vectors::<1>(c.as_mut_ptr()) };
    }
    for x in vectors.into_remainder() {
        *x = super::npy_tanh(*x);
    }
}

/// How many vectors `tanh_in_place` runs side by side.
const TANH_GROUP: usize = 2;

/// `npy_tanh` on the `4·N` values at `p`, in place.
///
/// # Safety
/// AVX2 and FMA; `p` valid for `4·N` reads and writes.
#[inline(always)]
unsafe fn tanh_vectors<const N: usize>(p: *mut f64) {
    // SAFETY: the caller's contract; `tanh_rows` gives rows of TANH_ROWS, as `tanh_pair`
    // needs.
    unsafe {
        let abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX));
        let mut x = [_mm256_setzero_pd(); N];
        let mut rows = [[std::ptr::null::<f64>(); 4]; N];
        let mut y = [_mm256_setzero_pd(); N];
        let mut c0 = [_mm256_setzero_pd(); N];
        let mut r = [_mm256_setzero_pd(); N];
        for q in 0..N {
            x[q] = _mm256_loadu_pd(p.add(4 * q));
            rows[q] = tanh_rows(p.add(4 * q));
            let (b, c) = tanh_pair(&rows[q], 0);
            y[q] = _mm256_sub_pd(_mm256_and_pd(x[q], abs_mask), b);
            c0[q] = c;
            let (c15, c16) = tanh_pair(&rows[q], 16);
            r[q] = _mm256_fmadd_pd(c16, y[q], c15);
        }
        // coefficients 15 … 2 in pairs (k + 1, then k), then c0 (row index 1)
        for k in [14, 12, 10, 8, 6, 4, 2] {
            for q in 0..N {
                let (lo, hi) = tanh_pair(&rows[q], k);
                r[q] = _mm256_fmadd_pd(r[q], y[q], hi);
                r[q] = _mm256_fmadd_pd(r[q], y[q], lo);
            }
        }
        for q in 0..N {
            r[q] = _mm256_fmadd_pd(r[q], y[q], c0[q]);
            _mm256_storeu_pd(p.add(4 * q), tanh_finish(x[q], r[q]));
        }
    }
}

/// tanh from the polynomial's value `r` at `|x|`: ±1 past the last interval, the sign of
/// `x` put back, NaN kept.
#[inline(always)]
unsafe fn tanh_finish(x: __m256d, r: __m256d) -> __m256d {
    // SAFETY: the caller runs on AVX2.
    unsafe {
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
}

/// `npy_exp` on every element, four lanes at a time (lanes outside SVML's main range go
/// through the scalar fallback; the last `len % 4` one by one).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn exp_in_place(v: &mut [f64]) {
    let mut vectors = v.chunks_exact_mut(4);
    for c in &mut vectors {
        // SAFETY: one whole vector.
        unsafe { exp_vector(c) };
    }
    for x in vectors.into_remainder() {
        *x = super::npy_exp(*x);
    }
}

/// `npy_exp` on the four values of `v` (length 4), in place.
///
/// # Safety
/// AVX2 and FMA.
#[inline(always)]
unsafe fn exp_vector(v: &mut [f64]) {
    let main: i32;
    // SAFETY: AVX2 and FMA (the caller's contract); 4 values at v.
    unsafe {
        let c = |b: u64| _mm256_castsi256_pd(_mm256_set1_epi64x(b as i64));
        let x = _mm256_loadu_pd(v.as_ptr());
        let abs = _mm256_and_pd(x, _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX)));
        let in_range = _mm256_cmp_pd::<_CMP_LT_OQ>(abs, c(EXP_THR));
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
        let biased = _mm256_srli_epi64::<4>(_mm256_add_epi64(ki, _mm256_set1_epi64x(16 * 1023)));
        let scale = _mm256_castsi256_pd(_mm256_slli_epi64::<52>(biased));
        // lanes outside the main range keep x for the fallback below
        let res = _mm256_blendv_pd(x, _mm256_mul_pd(res, scale), in_range);
        _mm256_storeu_pd(v.as_mut_ptr(), res);
    }
    if main != 0b1111 {
        for (l, x) in v.iter_mut().enumerate() {
            if main & (1 << l) == 0 {
                *x = super::npy_exp(*x);
            }
        }
    }
}
