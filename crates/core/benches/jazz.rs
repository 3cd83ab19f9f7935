//! Times full-batch epochs of the jazz djmodel at the Metheny shape (m = 60, Tx = 30, n_a = 64,
//! n_values = 90) on random windows; prints the median of the runs. Run on a quiet machine with
//! `cargo bench -p rnnlab-core --bench jazz` (`JAZZ_BENCH_EPOCHS`, 100 by default, and
//! `JAZZ_BENCH_REPEATS`, 5 by default, make it shorter).

use rnnlab_core::jazz::{JazzBatch, JazzModel};
use rnnlab_core::nn::optim::Adam;

#[path = "../tests/common/mod.rs"]
mod common;
use common::{env_usize, toy_corpus};

fn main() {
    println!(
        "SIMD level {} (RNNLAB_SIMD caps it)",
        rnnlab_core::math::SimdLevel::current().as_str()
    );
    let (n_values, n_a, t_x, m) = (90, 64, 30, 60);
    let epochs = env_usize("JAZZ_BENCH_EPOCHS", 100);
    let repeats = env_usize("JAZZ_BENCH_REPEATS", 5).max(1);
    let corpus = toy_corpus(n_values, 200, 11);
    let batch = JazzBatch::windows(&corpus, n_values, m, t_x, 0).unwrap();
    let mut times = Vec::new();
    let mut last = 0.0;
    for _ in 0..repeats {
        let mut model = JazzModel::new(n_values, n_a, 1).unwrap();
        let mut adam = Adam::course();
        let t0 = std::time::Instant::now();
        let hist = model.fit(&batch, epochs, &mut adam, |_, _| true).unwrap();
        times.push(t0.elapsed().as_secs_f64());
        last = hist.last().unwrap().loss;
    }
    times.sort_by(f64::total_cmp);
    println!(
        "jazz djmodel {epochs} epochs (m {m}, Tx {t_x}, n_a {n_a}, n_values {n_values}), {} threads: median {:.4} s, min {:.4} s, max {:.4} s; final loss {last:.4}",
        rayon::current_num_threads(),
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
}
