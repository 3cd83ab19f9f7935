//! The SIMD kernels must give the portable code's bits (the portable code defines the
//! order of operations; on x86-64 with AVX2+FMA only the SIMD versions run in training).
use super::*;
use crate::dinos::CharRnnParams;
use crate::random::RandomState;

fn data(rs: &mut RandomState, n: usize) -> Vec<f64> {
    (0..n).map(|_| rs.standard_normal()).collect()
}

type Outputs = Vec<Vec<u64>>;

/// gemv_t, gemv_n, sum_outer_rev, clip + update, tanh and exp at level `L`, as bit patterns.
#[inline(always)]
fn kernels<L: Level>(
    a: &[f64],
    rows: usize,
    m: usize,
    x: &[f64],
    v: &[f64],
    steps: usize,
) -> Outputs {
    let mut yt = vec![f64::NAN; rows];
    gemv_t::<L>(a, rows, m, x, &mut yt);
    let mut yn = vec![f64::NAN; m];
    gemv_n::<L>(a, rows, m, v, &mut yn);
    let mut out = vec![f64::NAN; rows * m];
    sum_outer_rev::<L>(
        &mut out,
        rows,
        m,
        &a[..steps * rows],
        &x[..steps * m],
        steps,
        None,
    );
    // fused clip (at 0.5, so some elements clip) + update of a weight matrix
    let mut fused = vec![f64::NAN; rows * m];
    let mut w: Vec<f64> = a.iter().map(|t| t * 0.25).collect();
    let fuse = Fuse {
        w: w.as_mut_ptr(),
        max: 0.5,
        neg_lr: -0.01,
    };
    sum_outer_rev::<L>(
        &mut fused,
        rows,
        m,
        &a[..steps * rows],
        &x[..steps * m],
        steps,
        Some(fuse),
    );
    // the element-wise clip + update of the biases (at 0.5, with a NaN and both infinities)
    let mut g: Vec<f64> = x.iter().map(|t| t * 2.0).collect();
    g.extend([f64::NAN, f64::INFINITY, f64::NEG_INFINITY]);
    let mut wb: Vec<f64> = g.iter().map(|t| t * 0.5).collect();
    wb.iter_mut().rev().take(3).for_each(|w| *w = 1.0);
    clip_update_body::<L>(&mut wb, &mut g, 0.5, -0.01);
    let mut th: Vec<f64> = x.iter().map(|t| t * 3.0).collect();
    tanh_in_place::<L>(&mut th);
    let mut ex: Vec<f64> = x.iter().map(|t| t * 30.0).collect();
    exp_in_place::<L>(&mut ex);
    [yt, yn, out, fused, w, g, wb, th, ex]
        .iter()
        .map(|v| v.iter().map(|f| f.to_bits()).collect())
        .collect()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn kernels_avx2(a: &[f64], rows: usize, m: usize, x: &[f64], v: &[f64], steps: usize) -> Outputs {
    kernels::<level::Avx2>(a, rows, m, x, v, steps)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn kernels_avx512(a: &[f64], rows: usize, m: usize, x: &[f64], v: &[f64], steps: usize) -> Outputs {
    kernels::<level::Avx512>(a, rows, m, x, v, steps)
}

#[test]
fn simd_kernels_equal_portable_kernels() {
    let level = SimdLevel::current();
    let mut rs = RandomState::new(11);
    for rows in 1..=21 {
        for m in 1..=41 {
            let steps = rows.min(m).min(5);
            let a = data(&mut rs, rows * m);
            let x = data(&mut rs, m.max(steps * m));
            let v = data(&mut rs, rows);
            let portable = kernels::<level::Portable>(&a, rows, m, &x, &v, steps);
            #[cfg(target_arch = "x86_64")]
            {
                if level >= SimdLevel::Avx2 {
                    // SAFETY: the CPU supports avx2 and fma.
                    let simd = unsafe { kernels_avx2(&a, rows, m, &x, &v, steps) };
                    assert_eq!(simd, portable, "AVX2, rows={rows} m={m}");
                }
                if level >= SimdLevel::Avx512 {
                    // SAFETY: the CPU supports avx512f, avx2 and fma.
                    let simd = unsafe { kernels_avx512(&a, rows, m, &x, &v, steps) };
                    assert_eq!(simd, portable, "AVX-512, rows={rows} m={m}");
                }
            }
            let _ = level;
        }
    }
}

/// Wider shapes than the exhaustive sweep above: the course's 50 and 27 and the sizes
/// around the kernels' block boundaries (one pass of up to 64 outputs in `gemv_n`,
/// groups of eight column vectors in `sum_outer_rev`).
#[test]
fn simd_kernels_equal_portable_kernels_wide() {
    let level = SimdLevel::current();
    let mut rs = RandomState::new(12);
    for rows in [1, 2, 3, 5, 27, 50] {
        for m in [44, 50, 60, 63, 64, 65, 68, 72, 76, 100, 131] {
            let steps = 13;
            let a = data(&mut rs, rows.max(steps) * m.max(rows));
            let x = data(&mut rs, steps * m);
            let v = data(&mut rs, rows);
            let portable = kernels::<level::Portable>(&a, rows, m, &x, &v, steps.min(rows));
            #[cfg(target_arch = "x86_64")]
            {
                if level >= SimdLevel::Avx2 {
                    // SAFETY: the CPU supports avx2 and fma.
                    let simd = unsafe { kernels_avx2(&a, rows, m, &x, &v, steps.min(rows)) };
                    assert_eq!(simd, portable, "AVX2, rows={rows} m={m}");
                }
                if level >= SimdLevel::Avx512 {
                    // SAFETY: the CPU supports avx512f, avx2 and fma.
                    let simd = unsafe { kernels_avx512(&a, rows, m, &x, &v, steps.min(rows)) };
                    assert_eq!(simd, portable, "AVX-512, rows={rows} m={m}");
                }
            }
            let _ = level;
        }
    }
}

#[test]
fn forward_backward_paths_agree() {
    let mut rs = RandomState::new(3);
    let (n_a, v) = (13, 7);
    let p = CharRnnParams {
        wax: rs.randn2(n_a, v) * 0.5,
        waa: rs.randn2(n_a, n_a) * 0.5,
        wya: rs.randn2(v, n_a) * 0.5,
        b: rs.randn2(n_a, 1),
        by: rs.randn2(v, 1),
    };
    let x = [None, Some(3), Some(6), Some(0), Some(2)];
    let y = [3, 6, 0, 2, 1];
    let a0 = data(&mut rs, n_a);
    let view = p.view().unwrap();
    let mut ws1 = CharRnnWorkspace::new(n_a, v, v, x.len());
    let l1 = forward_into::<level::Portable>(&mut ws1, &view, &x, &y, &a0);
    backward_into::<level::Portable>(&mut ws1, &view, &x, &y).unwrap();
    let mut ws2 = CharRnnWorkspace::new(n_a, v, v, x.len());
    let l2 = forward_backward(&mut ws2, &view, &x, &y, &a0).unwrap();
    assert_eq!(l1.to_bits(), l2.to_bits());
    assert_eq!(ws1.grads, ws2.grads);
    assert_eq!(ws1.a_last(), ws2.a_last());
}
