//! numpy's float64 `exp` and `tanh` and its pairwise summation, bit for bit, as the dinos
//! kernels need them to follow numpy's training trace (see `crate::dinos`):
//! - [`npy_exp`]: Intel SVML's exp, which numpy uses on AVX-512 machines; [`npy_tanh`]:
//!   numpy's SIMD tanh. Both differ from the C library's in the last bit for a few percent of
//!   arguments, enough to make a training run drift from numpy's after ~14 000 iterations.
//! - [`pairwise_sum`]: `np.add.reduce` on a contiguous run.
//!
//! The batched forms (`tanh_in_place`, `exp_in_place`, `max_of`) take the SIMD level as a
//! type; the AVX2 kernels (`avx2.rs`, gathers for the tables) and the AVX-512 ones
//! (`avx512.rs`) give the scalar code's bits lane for lane. The tables are in `tables.rs`.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod tables;

use super::lanes::Level;
#[cfg(target_arch = "x86_64")]
use super::SimdLevel;
use tables::{
    EXP_C1, EXP_C2, EXP_C3, EXP_C4, EXP_C5, EXP_C6, EXP_L2E, EXP_LN2HI, EXP_LN2LO, EXP_TH, EXP_THR,
    EXP_TLR, TANH_LUT,
};

// ------------------------------------------------------------------ numpy's exp and tanh

/// numpy's float64 `tanh` (`numpy/_core/src/umath/loops_hyperbolic.dispatch.cpp.src`, the
/// algorithm numpy uses on every CPU with FMA, converted from Intel SVML): `|x|` picks one of
/// 16 intervals by its exponent; on it `tanh(|x|) = P(|x| − b)`, a degree-16 polynomial
/// evaluated with FMAs; the sign is put back by OR-ing the sign bit.
#[inline(always)]
pub fn npy_tanh(x: f64) -> f64 {
    let bits = x.to_bits();
    let row = &TANH_LUT[tanh_interval(bits)];
    tanh_finish(x, bits, tanh_poly(row, x.abs() - f64::from_bits(row[0])))
}

/// The interval of `|x|`: `clamp(high word of (bits & 0x7ff8…) − 0x3fc00000, 0, 0x780000) >> 19`.
#[inline(always)]
fn tanh_interval(bits: u64) -> usize {
    let ndnan = (bits & 0x7ff8_0000_0000_0000) as i64; // exponent and first mantissa bit
    let high = ((ndnan - 0x3fc0_0000_0000_0000) >> 32) as i32;
    (high.clamp(0, 0x78_0000) >> 19) as usize
}

/// `c16·y + c15`, then `r·y + c_k` down to `c0` (row = `[b, c0, …, c16]`).
#[inline(always)]
fn tanh_poly(row: &[u64; 18], y: f64) -> f64 {
    let mut r = f64::from_bits(row[17]).mul_add(y, f64::from_bits(row[16]));
    for k in (1..=15).rev() {
        r = r.mul_add(y, f64::from_bits(row[k]));
    }
    r
}

/// NaN stays NaN, `|x| ≥ 1.5·2^1023` gives 1, then the sign of `x` is OR-ed in.
#[inline(always)]
fn tanh_finish(x: f64, bits: u64, r: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let r = if (bits & 0x7ff8_0000_0000_0000) > 0x7fe0_0000_0000_0000 {
        1.0
    } else {
        r
    };
    f64::from_bits(r.to_bits() | (bits & 0x8000_0000_0000_0000))
}

/// [`npy_tanh`] on every element, four at a time so the FMA chains interleave.
#[inline(always)]
fn npy_tanh_in_place(v: &mut [f64]) {
    let mut chunks = v.chunks_exact_mut(4);
    for c in &mut chunks {
        let bits = [
            c[0].to_bits(),
            c[1].to_bits(),
            c[2].to_bits(),
            c[3].to_bits(),
        ];
        let rows = [
            &TANH_LUT[tanh_interval(bits[0])],
            &TANH_LUT[tanh_interval(bits[1])],
            &TANH_LUT[tanh_interval(bits[2])],
            &TANH_LUT[tanh_interval(bits[3])],
        ];
        let mut y = [0.0f64; 4];
        let mut r = [0.0f64; 4];
        for l in 0..4 {
            y[l] = c[l].abs() - f64::from_bits(rows[l][0]);
            r[l] = f64::from_bits(rows[l][17]).mul_add(y[l], f64::from_bits(rows[l][16]));
        }
        for k in (1..=15).rev() {
            for l in 0..4 {
                r[l] = r[l].mul_add(y[l], f64::from_bits(rows[l][k]));
            }
        }
        for l in 0..4 {
            c[l] = tanh_finish(c[l], bits[l], r[l]);
        }
    }
    for x in chunks.into_remainder() {
        *x = npy_tanh(*x);
    }
}

/// numpy's float64 `exp` on AVX-512 machines (Intel SVML `__svml_exp8_ha`, which numpy links
/// there): `N = ⌊16·x·log2 e⌋/16`, `r = x − N·ln2` in two FMA steps, `2^(j/16)` from a table
/// (high part `Th` and relative low part `Tlr`), a degree-6 polynomial, then scaling by
/// `2^⌊N⌋`. SVML hands `|x| ≥ 707.7` (and non-finite `x`) to a scalar routine; there this
/// falls back to the C library's `exp`, which may differ from numpy in the last bit.
#[inline(always)]
pub fn npy_exp(x: f64) -> f64 {
    // SVML's main range; NaN fails the test and goes to the fallback too
    if x.abs() < f64::from_bits(EXP_THR) {
        exp_main(x)
    } else {
        x.exp()
    }
}

/// SVML's main path, valid for `|x| < 707.7`.
#[inline(always)]
fn exp_main(x: f64) -> f64 {
    // SVML: a round-toward-zero FMA x·log2e + 1.5·2^48 keeps 4 fractional bits of x·log2e,
    // i.e. k = ⌊16·x·log2e⌋ of the exact product, computed here from the rounded product
    // and its exact error.
    let l2e16 = f64::from_bits(EXP_L2E) * 16.0;
    let y = x * l2e16;
    let err = x.mul_add(l2e16, -y);
    let k = y.floor() - f64::from(u8::from(y.floor() == y && err < 0.0));
    let ki = k as i64;
    let n = k / 16.0; // exact
    let j = (ki & 15) as usize;
    let m = ki >> 4; // ⌊N⌋
    let r = (-n).mul_add(f64::from_bits(EXP_LN2HI), x);
    let r = (-n).mul_add(f64::from_bits(EXP_LN2LO), r);
    let r = f64::from_bits(r.to_bits() & 0xbfff_ffff_ffff_ffff); // SVML's "|r| < 2" mask
    let r2 = r * r;
    let c = f64::from_bits;
    let p56 = c(EXP_C6).mul_add(r, c(EXP_C5));
    let p34 = c(EXP_C4).mul_add(r, c(EXP_C3));
    let p12 = c(EXP_C2).mul_add(r, c(EXP_C1));
    let p36 = r2.mul_add(p56, p34);
    let p16 = r2.mul_add(p36, p12);
    let p = p16.mul_add(r, c(EXP_TLR[j]));
    let th = c(EXP_TH[j]);
    let res = th.mul_add(p, th);
    // scalef by 2^m: |m| ≤ 1021 here, so the power of two is normal and the product exact
    res * f64::from_bits(((m + 1023) as u64) << 52)
}

/// `np.max(z)`: the largest element, or the first NaN if there is one.
#[inline(always)]
pub(crate) fn max_of<L: Level>(z: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if L::SIMD == SimdLevel::Avx512 {
        // SAFETY: `L = Avx512` is only instantiated in code compiled for avx512f, run after
        // `SimdLevel::current()` found it.
        if let Some(mx) = unsafe { avx512::max_ordered(z) } {
            return mx;
        }
    }
    #[cfg(target_arch = "x86_64")]
    if L::SIMD == SimdLevel::Avx2 {
        // SAFETY: `L = Avx2` is only instantiated in code compiled for avx2 and fma, run
        // after `SimdLevel::current()` found them.
        if let Some(mx) = unsafe { avx2::max_ordered(z) } {
            return mx;
        }
    }
    let mut mx = f64::NEG_INFINITY;
    for &v in z {
        if v.is_nan() {
            return v; // np.max propagates NaN
        }
        if v > mx {
            mx = v;
        }
    }
    mx
}

/// [`npy_tanh`] on every element, with the widest kernel of level `L`.
#[inline(always)]
pub(crate) fn tanh_in_place<L: Level>(v: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if L::SIMD == SimdLevel::Avx512 {
        // SAFETY: `L = Avx512` is only instantiated in code compiled for avx512f, run after
        // `SimdLevel::current()` found it.
        unsafe { avx512::tanh_in_place(v) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if L::SIMD == SimdLevel::Avx2 {
        // SAFETY: `L = Avx2` is only instantiated in code compiled for avx2 and fma, run
        // after `SimdLevel::current()` found them.
        unsafe { avx2::tanh_in_place(v) };
        return;
    }
    npy_tanh_in_place(v);
}

/// [`npy_exp`] on every element, with the widest kernel of level `L`.
#[inline(always)]
pub(crate) fn exp_in_place<L: Level>(v: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if L::SIMD == SimdLevel::Avx512 {
        // SAFETY: `L = Avx512` is only instantiated in code compiled for avx512f, run after
        // `SimdLevel::current()` found it.
        unsafe { avx512::exp_in_place(v) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if L::SIMD == SimdLevel::Avx2 {
        // SAFETY: `L = Avx2` is only instantiated in code compiled for avx2 and fma, run
        // after `SimdLevel::current()` found them.
        unsafe { avx2::exp_in_place(v) };
        return;
    }
    npy_exp_in_place(v);
}

/// [`npy_exp`] on every element, four at a time.
#[inline(always)]
fn npy_exp_in_place(v: &mut [f64]) {
    let thr = f64::from_bits(EXP_THR);
    let mut chunks = v.chunks_exact_mut(4);
    for c in &mut chunks {
        if c.iter().all(|x| x.abs() < thr) {
            let out = [
                exp_main(c[0]),
                exp_main(c[1]),
                exp_main(c[2]),
                exp_main(c[3]),
            ];
            c.copy_from_slice(&out);
        } else {
            for x in c.iter_mut() {
                *x = npy_exp(*x);
            }
        }
    }
    for x in chunks.into_remainder() {
        *x = npy_exp(*x);
    }
}

/// numpy's pairwise summation (`np.add.reduce` on a contiguous float64 run): eight running
/// sums for blocks up to 128 elements, halves above.
pub fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &v in a {
            res += v;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let main = n - n % 8;
        let mut i = 8;
        while i < main {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[main..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::lanes::level::{Avx2, Avx512, Portable};
    use crate::math::SimdLevel;
    use crate::random::RandomState;

    fn data(rs: &mut RandomState, n: usize) -> Vec<f64> {
        (0..n).map(|_| rs.standard_normal()).collect()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn max_avx2(z: &[f64]) -> f64 {
        max_of::<Avx2>(z)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn max_avx512(z: &[f64]) -> f64 {
        max_of::<Avx512>(z)
    }

    /// The softmax's `np.max`: the largest value, or the first NaN (with its bits), at
    /// every level and length (eight-lane blocks and their masked tails).
    #[test]
    fn max_of_is_numpy_max_at_every_level() {
        let mut rs = RandomState::new(21);
        let odd_nan = f64::from_bits(0x7ff8_dead_beef_0001);
        for n in 1..=27 {
            let base: Vec<f64> = data(&mut rs, n).iter().map(|v| v * 10.0 - 30.0).collect();
            let mut cases = vec![base.clone(), vec![f64::NEG_INFINITY; n]];
            let mut with_inf = base.clone();
            with_inf[n / 2] = f64::INFINITY;
            cases.push(with_inf);
            for pos in [0, n / 2, n - 1] {
                let mut c = base.clone();
                c[pos] = odd_nan;
                if pos + 1 < n {
                    c[n - 1] = f64::NAN; // a later NaN: the first one wins
                }
                cases.push(c);
            }
            for z in &cases {
                let want = match z.iter().find(|v| v.is_nan()) {
                    Some(&nan) => nan,
                    None => z.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                };
                assert_eq!(max_of::<Portable>(z).to_bits(), want.to_bits(), "{z:?}");
                #[cfg(target_arch = "x86_64")]
                if SimdLevel::current() >= SimdLevel::Avx2 {
                    // SAFETY: the CPU supports avx2 and fma.
                    let got = unsafe { max_avx2(z) };
                    assert_eq!(got.to_bits(), want.to_bits(), "AVX2 {z:?}");
                }
                #[cfg(target_arch = "x86_64")]
                if SimdLevel::current() >= SimdLevel::Avx512 {
                    // SAFETY: the CPU supports avx512f, avx2 and fma.
                    let got = unsafe { max_avx512(z) };
                    assert_eq!(got.to_bits(), want.to_bits(), "AVX-512 {z:?}");
                }
            }
        }
    }

    /// Inputs that reach every branch of tanh and exp: ±0, subnormals, the edges of tanh's
    /// 16 intervals and of its `|x| ≥ 1.5·2^1023` cut, exp's main-range edge (±707.7), its
    /// subnormal and overflowing results, the steps of `k = ⌊16·x·log2e⌋`, infinities and
    /// NaNs with payloads and either sign.
    fn edge_cases() -> Vec<f64> {
        let mut xs = vec![
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            f64::from_bits(1),
            f64::from_bits(0x8000_0000_0000_0001),
            1e-310,
            -1e-310,
            f64::from_bits(0x000f_ffff_ffff_ffff),
            f64::EPSILON,
            1.0,
            -1.0,
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0001), // signalling NaN
            f64::from_bits(0xfff8_dead_beef_0001),
            f64::from_bits(0x7fe0_0000_0000_0000),
            f64::from_bits(0x7fe7_ffff_ffff_ffff),
            f64::from_bits(0x7fe8_0000_0000_0000), // 1.5·2^1023: tanh's cut to ±1
            f64::from_bits(0xffe8_0000_0000_0000),
            f64::from_bits(EXP_THR),
            -f64::from_bits(EXP_THR),
            f64::from_bits(EXP_THR - 1),
            -f64::from_bits(EXP_THR - 1),
            700.0,
            -700.0,
            709.7,
            -708.0,
            -720.0,
            -745.2,
            800.0,
            -800.0,
        ];
        // tanh's interval edges: exponents 0x3fc … 0x404 with the first mantissa bit, ±1 ulp
        for e in 0x3f0u64..=0x410 {
            for top in [0u64, 1] {
                let b = (e << 52) | (top << 51);
                for bits in [b - 1, b, b + 1] {
                    xs.push(f64::from_bits(bits));
                    xs.push(-f64::from_bits(bits));
                }
            }
        }
        // exp: the multiples of ln2/16 (where k steps), ±1 ulp
        let step = std::f64::consts::LN_2 / 16.0;
        for q in (-11_300i32..=11_300).step_by(97) {
            let c = f64::from(q) * step;
            xs.extend([
                c,
                f64::from_bits(c.to_bits() + 1),
                f64::from_bits(c.to_bits().wrapping_sub(1)),
            ]);
        }
        xs
    }

    /// The batched kernel of every level on `xs` at every length up to `max_len` (groups of
    /// vectors and their masked tails) and on the whole of `xs`, against the scalar
    /// functions bit for bit (`what` names the inputs in a failure).
    fn check_batched_against_scalar(xs: &[f64], max_len: usize, what: &str) {
        let want_t: Vec<u64> = xs.iter().map(|&x| npy_tanh(x).to_bits()).collect();
        let want_e: Vec<u64> = xs.iter().map(|&x| npy_exp(x).to_bits()).collect();
        let same_exp = |got: f64, want: u64| {
            got.to_bits() == want || (got.is_nan() && f64::from_bits(want).is_nan())
        };
        let mut levels: Vec<(&str, TanhExp)> = vec![("portable", tanh_exp_portable)];
        #[cfg(target_arch = "x86_64")]
        {
            if SimdLevel::current() >= SimdLevel::Avx2 {
                levels.push(("avx2", tanh_exp_avx2_safe));
            }
            if SimdLevel::current() >= SimdLevel::Avx512 {
                levels.push(("avx512", tanh_exp_avx512_safe));
            }
        }
        for (name, kernels) in levels {
            let lengths = (0..=max_len.min(xs.len())).chain([xs.len()]);
            for n in lengths {
                for start in [0, xs.len() - n] {
                    let mut t = xs[start..start + n].to_vec();
                    let mut e = t.clone();
                    kernels(&mut t, &mut e);
                    for (i, (&tv, &ev)) in t.iter().zip(&e).enumerate() {
                        let x = xs[start + i];
                        assert_eq!(
                            tv.to_bits(),
                            want_t[start + i],
                            "{name} tanh({x:e}) [{x:?} bits {:016x}], n={n}, {what}",
                            x.to_bits()
                        );
                        assert!(
                            same_exp(ev, want_e[start + i]),
                            "{name} exp({x:e}) [bits {:016x}] = {ev:e}, want {:e}, n={n}, {what}",
                            x.to_bits(),
                            f64::from_bits(want_e[start + i])
                        );
                    }
                }
            }
        }
    }

    /// tanh on the first slice, exp on the second, at one level.
    type TanhExp = fn(&mut [f64], &mut [f64]);

    fn tanh_exp_portable(t: &mut [f64], e: &mut [f64]) {
        tanh_in_place::<Portable>(t);
        exp_in_place::<Portable>(e);
    }

    #[cfg(target_arch = "x86_64")]
    fn tanh_exp_avx2_safe(t: &mut [f64], e: &mut [f64]) {
        // SAFETY: only called when the CPU supports avx2 and fma.
        unsafe { tanh_exp_avx2(t, e) }
    }

    #[cfg(target_arch = "x86_64")]
    fn tanh_exp_avx512_safe(t: &mut [f64], e: &mut [f64]) {
        // SAFETY: only called when the CPU supports avx512f, avx2 and fma.
        unsafe { tanh_exp_avx512(t, e) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn tanh_exp_avx2(t: &mut [f64], e: &mut [f64]) {
        tanh_in_place::<Avx2>(t);
        exp_in_place::<Avx2>(e);
    }

    #[test]
    fn batched_exp_and_tanh_equal_scalar_ones_on_edge_cases() {
        let xs = edge_cases();
        check_batched_against_scalar(&xs, 40, "edge cases");
        // the same values shuffled, so every kind of input meets every lane and tail
        let mut rs = RandomState::new(17);
        let mut shuffled = xs.clone();
        rs.shuffle(&mut shuffled);
        check_batched_against_scalar(&shuffled, 40, "edge cases shuffled (seed 17)");
    }

    /// Random bit patterns (every exponent, sign and NaN payload), then random values in
    /// the ranges the models use, at every level.
    #[test]
    fn batched_exp_and_tanh_equal_scalar_ones_on_random_bits() {
        let seed = 20_261_206u32;
        println!("random bit patterns from RandomState::new({seed})");
        let mut rs = RandomState::new(seed);
        let bits: Vec<f64> = (0..200_000)
            .map(|_| f64::from_bits(rs.next_u64()))
            .collect();
        check_batched_against_scalar(&bits, 9, &format!("random bits, seed {seed}"));
        let scaled: Vec<f64> = (0..200_000)
            .map(|i| rs.standard_normal() * [0.5, 4.0, 40.0, 400.0][i % 4])
            .collect();
        check_batched_against_scalar(&scaled, 9, &format!("random values, seed {seed}"));
    }

    #[test]
    fn batched_exp_and_tanh_equal_scalar_ones() {
        let mut rs = RandomState::new(5);
        let mut xs: Vec<f64> = (0..103).map(|_| rs.standard_normal() * 4.0).collect();
        xs.extend([0.0, -0.0, 800.0, -800.0, f64::NAN, f64::INFINITY, 1e-310]);
        let mut t = xs.clone();
        npy_tanh_in_place(&mut t);
        let mut e = xs.clone();
        npy_exp_in_place(&mut e);
        for ((&x, &tv), &ev) in xs.iter().zip(&t).zip(&e) {
            assert_eq!(tv.to_bits(), npy_tanh(x).to_bits(), "tanh({x})");
            assert!(
                ev.to_bits() == npy_exp(x).to_bits() || (ev.is_nan() && x.is_nan()),
                "exp({x})"
            );
        }
        // the AVX-512 kernels on the same values, at every length (groups of vectors and
        // their masked tails)
        #[cfg(target_arch = "x86_64")]
        if SimdLevel::current() >= SimdLevel::Avx512 {
            for n in 0..=xs.len() {
                let mut tw = xs[..n].to_vec();
                let mut ew = xs[..n].to_vec();
                // SAFETY: the CPU supports avx512f, avx2 and fma.
                unsafe { tanh_exp_avx512(&mut tw, &mut ew) };
                for ((&tv, &ev), (&want_t, &want_e)) in tw.iter().zip(&ew).zip(t.iter().zip(&e)) {
                    assert_eq!(tv.to_bits(), want_t.to_bits(), "AVX-512 tanh, n={n}");
                    assert!(
                        ev.to_bits() == want_e.to_bits() || (ev.is_nan() && want_e.is_nan()),
                        "AVX-512 exp, n={n}"
                    );
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn tanh_exp_avx512(t: &mut [f64], e: &mut [f64]) {
        tanh_in_place::<Avx512>(t);
        exp_in_place::<Avx512>(e);
    }
}
