//! Speed of the Dinosaurus Island trainer in the core alone (no Node), to separate the core's
//! time from the binding's in `bench/dinos/bench.py`. Ignored by default; run with
//! `cargo test --release -p rnnlab-core --test dinos_bench -- --ignored --nocapture --test-threads 1`
//! (`RNNLAB_SIMD=portable|avx2` caps the kernel level; `DINOS_BENCH_REPEATS` sets the repeats;
//! `DINOS_BENCH_ARITHMETIC=numpy|fast` times one arithmetic only).

use std::path::PathBuf;
use std::time::Instant;

use rnnlab_core::dinos::{Arithmetic, DinoConfig, DinoEvent, DinoTrainer};

/// The course's corpus handling (as tests/dinos_course.rs): vocabulary = sorted unique
/// characters of the lower-cased text, examples = stripped lines as indices.
fn course_corpus(file: &str) -> (String, Vec<Vec<usize>>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(file);
    let data = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .to_lowercase();
    let mut chars: Vec<char> = data.chars().collect();
    chars.sort_unstable();
    chars.dedup();
    let examples = data
        .lines()
        .map(|l| {
            l.trim()
                .chars()
                .map(|c| chars.binary_search(&c).expect("char in vocab"))
                .collect()
        })
        .collect();
    (chars.iter().collect(), examples)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
#[ignore = "benchmark; run with --ignored --nocapture"]
fn dinos_course_35000_iterations() {
    let (vocab, examples) = course_corpus("dinos_course.txt");
    let chars: usize = examples.iter().map(|e| e.len() + 1).sum();
    let repeats: usize = std::env::var("DINOS_BENCH_REPEATS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    const N: u64 = 35_000;
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
            t.run(N, 2000, |DinoEvent::Report(_)| {
                reports += 1;
                true
            })
            .unwrap();
            with_reports.push(start.elapsed().as_secs_f64());
            assert_eq!(reports, 18);
            // training steps alone
            let mut u = DinoTrainer::new(&vocab, examples.clone(), config.clone()).unwrap();
            let start = Instant::now();
            u.train(N, |_| true).unwrap();
            steps_only.push(start.elapsed().as_secs_f64());
            // both runs train the same model
            assert_eq!(t.loss().to_bits(), u.loss().to_bits());
            if let Some(l) = final_loss {
                assert_eq!(l, u.loss().to_bits(), "deterministic");
            }
            final_loss = Some(u.loss().to_bits());
        }
        let (r, s) = (median(with_reports.clone()), median(steps_only.clone()));
        eprintln!(
            "DinoTrainer ({} arithmetic), course file, {N} iterations (≈ {per_iter_chars:.1} characters each), median of {repeats}:\n  \
             run() with 18 reports: {r:.3} s ({:.0} it/s)  {with_reports:.3?}\n  \
             train() only:          {s:.3} s ({:.0} it/s, {:.0} ns per character)  {steps_only:.3?}",
            arithmetic.as_str(),
            N as f64 / r,
            N as f64 / s,
            s * 1e9 / (N as f64 * per_iter_chars),
        );
    }
}
