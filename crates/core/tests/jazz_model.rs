//! The jazz djmodel: finite-difference check of the full-model gradients, training lowers the
//! loss, determinism for a seed, the inference loop and error cases.

use rnnlab_core::jazz::{
    pick_value, pick_value_top_k, EpochStats, JazzBatch, JazzModel, Precision,
};
use rnnlab_core::nn::optim::Adam;
use rnnlab_core::random::RandomState;

mod common;
use common::{max_abs_diff, toy_corpus};

#[test]
#[allow(clippy::needless_range_loop)] // j indexes both the parameters and the gradients
fn gradients_match_finite_differences() {
    let (n_values, n_a, t_x, m) = (7, 5, 6, 4);
    let corpus = toy_corpus(n_values, 40, 3);
    let batch = JazzBatch::windows(&corpus, n_values, m, t_x, 1).unwrap();
    let mut model = JazzModel::new(n_values, n_a, 2).unwrap();
    // Make the biases non-trivial so every gradient entry is exercised.
    let mut rng = RandomState::new(9);
    model
        .b
        .mapv_inplace(|v| v + 0.3 * (rng.random_sample() - 0.5));
    model
        .by
        .mapv_inplace(|v| v + 0.3 * (rng.random_sample() - 0.5));
    let (_, g) = model.loss_and_gradients(&batch).unwrap();
    let analytic: Vec<Vec<f64>> = vec![
        g.dwx.iter().cloned().collect(),
        g.dwa.iter().cloned().collect(),
        g.db.to_vec(),
        g.dwy.iter().cloned().collect(),
        g.dby.to_vec(),
    ];
    let names = ["wx", "wa", "b", "wy", "by"];
    let eps = 1e-5;
    let (mut num_sq, mut diff_sq, mut ana_sq) = (0.0, 0.0, 0.0);
    for k in 0..5 {
        for j in 0..analytic[k].len() {
            let orig = model.params_mut()[k][j];
            model.params_mut()[k][j] = orig + eps;
            let plus = model.evaluate(&batch).unwrap().loss;
            model.params_mut()[k][j] = orig - eps;
            let minus = model.evaluate(&batch).unwrap().loss;
            model.params_mut()[k][j] = orig;
            let numeric = (plus - minus) / (2.0 * eps);
            let a = analytic[k][j];
            // entry-wise: absolute agreement for tiny entries, relative for the rest
            assert!(
                (numeric - a).abs() <= 1e-7 + 1e-5 * a.abs(),
                "{}[{j}]: numeric {numeric} vs analytic {a}",
                names[k]
            );
            num_sq += numeric * numeric;
            ana_sq += a * a;
            diff_sq += (numeric - a) * (numeric - a);
        }
    }
    // The course's gradient-check measure: ||num − ana|| / (||num|| + ||ana||)
    let rel = diff_sq.sqrt() / (num_sq.sqrt() + ana_sq.sqrt());
    assert!(rel < 1e-6, "relative error {rel}");
    // dWx rows of values never used as input stay zero.
    let used: std::collections::HashSet<usize> = batch.x.iter().flatten().cloned().collect();
    for v in 0..n_values {
        if !used.contains(&v) {
            assert!(g.dwx.row(v).iter().all(|&d| d == 0.0));
        }
    }
}

#[test]
fn training_lowers_the_loss_and_is_deterministic() {
    let (n_values, n_a, t_x, m) = (12, 16, 10, 20);
    let corpus = toy_corpus(n_values, 200, 5);
    let batch = JazzBatch::windows(&corpus, n_values, m, t_x, 0).unwrap();
    let run = || {
        let mut model = JazzModel::new(n_values, n_a, 1).unwrap();
        let mut adam = Adam::course();
        let hist = model.fit(&batch, 60, &mut adam, |_, _| true).unwrap();
        (model, hist, adam)
    };
    let (model, hist, adam) = run();
    assert_eq!(hist.len(), 60);
    assert_eq!(adam.iterations, 60);
    // initial loss ≈ T_x · ln(n_values) for near-uniform outputs
    let uniform = t_x as f64 * (n_values as f64).ln();
    assert!(
        (hist[0].loss - uniform).abs() < 0.15 * uniform,
        "first loss {} vs {uniform}",
        hist[0].loss
    );
    let last = hist.last().unwrap();
    assert!(
        last.loss < 0.6 * hist[0].loss,
        "loss {} -> {}",
        hist[0].loss,
        last.loss
    );
    assert!(
        last.accuracy > hist[0].accuracy + 0.3,
        "accuracy {} -> {}",
        hist[0].accuracy,
        last.accuracy
    );
    // evaluate() agrees with the last update having helped
    assert!(model.evaluate(&batch).unwrap().loss < last.loss);
    let (model2, hist2, _) = run();
    assert_eq!(model, model2);
    assert_eq!(hist, hist2);
}

#[test]
fn fit_stops_when_the_callback_says_so() {
    let corpus = toy_corpus(6, 50, 1);
    let batch = JazzBatch::windows(&corpus, 6, 5, 8, 0).unwrap();
    let mut model = JazzModel::new(6, 4, 0).unwrap();
    let mut adam = Adam::course();
    let hist = model
        .fit(&batch, 100, &mut adam, |epoch, _| epoch < 2)
        .unwrap();
    assert_eq!(hist.len(), 3);
}

#[test]
fn windows_follow_the_course_layout() {
    let corpus: Vec<usize> = (0..50).map(|k| k % 10).collect();
    let b = JazzBatch::windows(&corpus, 10, 60, 30, 7).unwrap();
    assert_eq!((b.m, b.t_x, b.x.len(), b.y.len()), (60, 30, 1800, 1800));
    for i in 0..60 {
        assert_eq!(b.x[i * 30], None, "first input is the zero vector");
        for t in 1..30 {
            // y is x shifted by one: y⟨t−1⟩ = x⟨t⟩, and consecutive corpus values
            assert_eq!(Some(b.y[i * 30 + t - 1]), b.x[i * 30 + t]);
            assert_eq!(b.y[i * 30 + t], (b.y[i * 30 + t - 1] + 1) % 10);
        }
    }
    assert!(JazzBatch::windows(&corpus[..30], 10, 60, 30, 7).is_err());
    assert!(JazzBatch::windows(&[0, 1, 99, 2], 10, 1, 2, 0).is_err());
}

#[test]
fn inference_feeds_back_and_is_seeded() {
    let corpus = toy_corpus(9, 120, 2);
    let batch = JazzBatch::windows(&corpus, 9, 30, 12, 0).unwrap();
    let mut model = JazzModel::new(9, 12, 4).unwrap();
    model
        .fit(&batch, 80, &mut Adam::course(), |_, _| true)
        .unwrap();
    let greedy = model.predict_and_sample(50, 0.0, 0).unwrap();
    assert_eq!(greedy.len(), 50);
    assert_eq!(
        greedy,
        model.predict_and_sample(50, 0.0, 123).unwrap(),
        "argmax ignores the seed"
    );
    // Step by step equals the whole loop, and each step's pick is the argmax of its softmax.
    let mut state = model.zero_state();
    for &v in &greedy {
        let p = model.step_probs(&mut state).unwrap();
        let best = (0..9)
            .max_by(|&a, &b| p[a].partial_cmp(&p[b]).unwrap())
            .unwrap();
        assert_eq!(best, v);
        assert!((p.sum() - 1.0).abs() < 1e-12);
        state.x = Some(v);
    }
    let s1 = model.predict_and_sample(50, 1.0, 5).unwrap();
    assert_eq!(s1, model.predict_and_sample(50, 1.0, 5).unwrap());
    assert_ne!(s1, model.predict_and_sample(50, 1.0, 6).unwrap());
    assert!(s1.iter().all(|&v| v < 9));
}

#[test]
fn pick_value_temperature() {
    let mut rng = RandomState::new(0);
    assert_eq!(pick_value(&[0.1, 0.7, 0.2], 0.0, &mut rng).unwrap(), 1);
    // a very low temperature concentrates all mass on the mode
    for _ in 0..20 {
        assert_eq!(pick_value(&[0.1, 0.7, 0.2], 0.01, &mut rng).unwrap(), 1);
    }
    // T = 1 reproduces p: frequencies close to p
    let mut counts = [0usize; 3];
    for _ in 0..20000 {
        counts[pick_value(&[0.1, 0.7, 0.2], 1.0, &mut rng).unwrap()] += 1;
    }
    assert!(
        (counts[0] as f64 / 20000.0 - 0.1).abs() < 0.01,
        "{counts:?}"
    );
    assert!(pick_value(&[0.5, 0.5], -1.0, &mut rng).is_err());
    assert!(pick_value(&[0.5, 0.5], f64::NAN, &mut rng).is_err());
}

#[test]
fn pick_value_top_k_draws_only_among_the_k_most_likely() {
    let p = [0.1, 0.5, 0.15, 0.25];
    let mut rng = RandomState::new(1);
    let mut counts = [0usize; 4];
    for _ in 0..4000 {
        counts[pick_value_top_k(&p, 1.0, 2, &mut rng).unwrap()] += 1;
    }
    // only values 1 and 3 (the two most likely), in the ratio 0.5 : 0.25
    assert_eq!((counts[0], counts[2]), (0, 0), "{counts:?}");
    let share = counts[1] as f64 / 4000.0;
    assert!((share - 2.0 / 3.0).abs() < 0.03, "{counts:?}");
    // k = 1 is the argmax; k = 0 or k >= len is no restriction (the same draws as pick_value)
    assert_eq!(pick_value_top_k(&p, 1.0, 1, &mut rng).unwrap(), 1);
    let (mut a, mut b) = (RandomState::new(7), RandomState::new(7));
    for _ in 0..50 {
        assert_eq!(
            pick_value_top_k(&p, 0.8, 4, &mut a).unwrap(),
            pick_value(&p, 0.8, &mut b).unwrap()
        );
    }
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let model = JazzModel::new(5, 3, 0).unwrap();
    let bad = JazzBatch {
        m: 2,
        t_x: 3,
        x: vec![None; 5],
        y: vec![0; 6],
    };
    assert!(model
        .evaluate(&bad)
        .unwrap_err()
        .to_string()
        .contains("batch.x"));
    let bad = JazzBatch {
        m: 1,
        t_x: 2,
        x: vec![None, Some(5)],
        y: vec![0, 1],
    };
    assert!(model
        .evaluate(&bad)
        .unwrap_err()
        .to_string()
        .contains("n_values = 5"));
    assert!(JazzModel::new(1, 3, 0).is_err());
    let mut state = model.zero_state();
    state.x = Some(7);
    assert!(model.step_probs(&mut state).is_err());
}

/// `fit` computes in float32: its loss curve must follow the float64 path's within rounding.
#[test]
fn float32_training_follows_float64() {
    let (n_values, n_a, t_x, m, epochs) = (40, 32, 20, 60, 80);
    let corpus = toy_corpus(n_values, 300, 8);
    let batch = JazzBatch::windows(&corpus, n_values, m, t_x, 2).unwrap();
    let run = |p: Precision| {
        let mut model = JazzModel::new(n_values, n_a, 3).unwrap();
        let hist = model
            .fit_with_precision(&batch, epochs, &mut Adam::course(), p, |_, _| true)
            .unwrap();
        (model, hist)
    };
    let (m32, h32) = run(Precision::F32);
    let (m64, h64) = run(Precision::F64);
    // the float64 path is the one the finite-difference check validates: its first epoch is
    // exactly what `evaluate` reports
    assert_eq!(
        h64[0],
        JazzModel::new(n_values, n_a, 3)
            .unwrap()
            .evaluate(&batch)
            .unwrap()
    );
    let mut worst = 0.0f64;
    for (e, (a, b)) in h32.iter().zip(&h64).enumerate() {
        let rel = (a.loss - b.loss).abs() / b.loss;
        worst = worst.max(rel);
        assert!(
            rel < 1e-4,
            "epoch {e}: float32 loss {} vs float64 {}",
            a.loss,
            b.loss
        );
        assert!(
            (a.accuracy - b.accuracy).abs() <= 0.01,
            "epoch {e}: accuracy {} vs {}",
            a.accuracy,
            b.accuracy
        );
    }
    assert!(
        h64.last().unwrap().loss < 0.5 * h64[0].loss,
        "the run must actually train"
    );
    let max_dw = max_abs_diff(m32.wa.iter().copied(), m64.wa.iter().copied());
    assert!(max_dw < 1e-3, "Wa drifted by {max_dw}");
    println!("float32 vs float64 over {epochs} epochs: worst relative loss difference {worst:.2e}, max |ΔWa| {max_dw:.2e}");
}

fn fit_in_pool(threads: usize, precision: Precision) -> (JazzModel, Vec<EpochStats>) {
    // m = 70: three blocks of the time loops; T·m = 840 rows: three blocks of the Dense products
    let (n_values, n_a, t_x, m) = (20, 24, 12, 70);
    let corpus = toy_corpus(n_values, 200, 4);
    let batch = JazzBatch::windows(&corpus, n_values, m, t_x, 5).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut model = JazzModel::new(n_values, n_a, 6).unwrap();
        let hist = model
            .fit_with_precision(&batch, 6, &mut Adam::course(), precision, |_, _| true)
            .unwrap();
        (model, hist)
    })
}

#[test]
fn identical_results_with_1_and_2_threads() {
    for precision in [Precision::F32, Precision::F64] {
        let (m1, h1) = fit_in_pool(1, precision);
        let (m2, h2) = fit_in_pool(2, precision);
        assert_eq!(
            h1, h2,
            "{precision:?}: losses differ between 1 and 2 threads"
        );
        assert_eq!(
            m1, m2,
            "{precision:?}: weights differ between 1 and 2 threads"
        );
        assert!(h1.last().unwrap().loss < h1[0].loss);
    }
}

/// The trainer the bindings hold is `fit` with the course's Adam plus the bookkeeping: same
/// numbers, epochs counted (a cancelled epoch still counts), parts round-trip.
#[test]
fn trainer_is_fit_with_its_state() {
    use rnnlab_core::jazz::JazzTrainer;
    let corpus = toy_corpus(8, 80, 6);
    let mut trainer = JazzTrainer::new(&corpus, 8, 6, 7, 9, 3).unwrap();
    let first = trainer.fit(4, || true).unwrap();
    assert_eq!((first.history.len(), first.cancelled), (4, false));
    let mut calls = 0;
    let second = trainer
        .fit(10, || {
            calls += 1;
            calls < 2
        })
        .unwrap();
    assert_eq!((second.history.len(), second.cancelled), (2, true));
    assert_eq!(trainer.epochs_done(), 6);
    assert_eq!(trainer.optimizer().iterations, 6);

    let batch = JazzBatch::windows(&corpus, 8, 9, 7, 3).unwrap();
    let mut model = JazzModel::new(8, 6, 3).unwrap();
    let mut adam = Adam::course();
    let hist = model.fit(&batch, 6, &mut adam, |_, _| true).unwrap();
    assert_eq!(&model, trainer.model());
    assert_eq!(hist[4..], second.history[..]);

    let (model, batch, adam, done, seed) = trainer.clone().into_parts();
    let back = JazzTrainer::from_parts(model, batch, adam, done, seed).unwrap();
    assert_eq!(back, trainer);
    let (model, batch, mut adam, done, seed) = trainer.into_parts();
    adam.m.pop();
    assert!(JazzTrainer::from_parts(model, batch, adam, done, seed).is_err());
}
