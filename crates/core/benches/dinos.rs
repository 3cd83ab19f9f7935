//! Speed of the Dinosaurus Island trainer in the core alone (no Node), to separate the core's
//! time from the binding's in `bench/dinos/bench.py`. Run on a quiet machine with
//! `cargo bench -p rnnlab-core --bench dinos`
//! (`RNNLAB_SIMD=portable|avx2` caps the kernel level; `DINOS_BENCH_REPEATS` sets the repeats;
//! `DINOS_BENCH_ITERATIONS` the iterations, 35 000 by default; `DINOS_BENCH_ARITHMETIC=numpy|fast`
//! times one arithmetic only).

use std::time::Instant;

use rnnlab_core::dinos::{Arithmetic, DinoConfig, DinoEvent, DinoTrainer};

#[path = "../tests/common/mod.rs"]
mod common;
use common::{course_corpus, env_usize};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    println!(
        "SIMD level {} (RNNLAB_SIMD caps it)",
        rnnlab_core::math::SimdLevel::current().as_str()
    );
    let (vocab, examples) = course_corpus("dinos_course.txt");
    let chars: usize = examples.iter().map(|e| e.len() + 1).sum();
    let repeats = env_usize("DINOS_BENCH_REPEATS", 5);
    let n = env_usize("DINOS_BENCH_ITERATIONS", 35_000) as u64;
    let every = 2000;
    let per_iter_chars = chars as f64 / examples.len() as f64;
    let only = std::env::var("DINOS_BENCH_ARITHMETIC").ok();
    for arithmetic in [Arithmetic::Numpy, Arithmetic::Fast] {
        if only.as_deref().is_some_and(|a| a != arithmetic.as_str()) {
            continue;
        }
        let config = DinoConfig {
            arithmetic,
            ..DinoConfig::default()
        };
        let (mut with_reports, mut steps_only) = (Vec::new(), Vec::new());
        let mut final_loss = None;
        for _ in 0..repeats {
            // the course's run: 35 000 iterations, 7 names sampled every 2000
            let mut t = DinoTrainer::new(&vocab, examples.clone(), config.clone()).unwrap();
            let start = Instant::now();
            let mut reports = 0;
            t.run(n, every, |DinoEvent::Report(_)| {
                reports += 1;
                true
            })
            .unwrap();
            with_reports.push(start.elapsed().as_secs_f64());
            assert_eq!(reports, n.div_ceil(every) as usize);
            // training steps alone
            let mut u = DinoTrainer::new(&vocab, examples.clone(), config.clone()).unwrap();
            let start = Instant::now();
            u.train(n, |_| true).unwrap();
            steps_only.push(start.elapsed().as_secs_f64());
            // both runs train the same model
            assert_eq!(t.loss().to_bits(), u.loss().to_bits());
            if let Some(l) = final_loss {
                assert_eq!(l, u.loss().to_bits(), "deterministic");
            }
            final_loss = Some(u.loss().to_bits());
        }
        let (r, s) = (median(with_reports.clone()), median(steps_only.clone()));
        println!(
            "DinoTrainer ({} arithmetic), course file, {n} iterations (≈ {per_iter_chars:.1} characters each), median of {repeats}:\n  \
             run() with reports:    {r:.3} s ({:.0} it/s)  {with_reports:.3?}\n  \
             train() only:          {s:.3} s ({:.0} it/s, {:.0} ns per character)  {steps_only:.3?}\n  \
             final loss bits:       {:016x}",
            arithmetic.as_str(),
            n as f64 / r,
            n as f64 / s,
            s * 1e9 / (n as f64 * per_iter_chars),
            final_loss.unwrap_or(0),
        );
    }
}
