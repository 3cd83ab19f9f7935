//! The fast step against the numpy-order one (to rounding) and its levels against the
//! portable definition (bit for bit).

use super::*;
use crate::dinos::{initialize_parameters, optimize_in, CharRnnWorkspace, Clip};
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
            let mode = Clip {
                value: clip,
                norm: None,
            };
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
        step_body::<Zmm>(m, s)
    }
    #[target_feature(enable = "avx2,fma")]
    fn level_avx2(m: &mut FastCharRnn, s: &StepArgs<'_>) -> f64 {
        step_body::<Ymm2>(m, s)
    }
    let cpu = SimdLevel::detected();
    let mut levels: Vec<(&str, StepFn)> = Vec::new();
    if cpu >= SimdLevel::Avx2 {
        // SAFETY: the features were detected.
        levels.push(("avx2", |m, s| unsafe { level_avx2(m, s) }));
    }
    if cpu >= SimdLevel::Avx512 {
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
            Clip {
                value: Some(5.0),
                norm: None,
            },
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
            Clip {
                value: Some(5.0),
                norm: None,
            },
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
