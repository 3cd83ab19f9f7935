//! Helpers shared by the cargo tests (each test file is its own crate and includes this module
//! with `mod common;`), and by the benchmarks in `benches/` (through `#[path]`).
//!
//! Inputs come from two committed folders, so the tests pass in a clone with nothing beside it:
//! - `fixtures/` at the repository root: third-party data (the course's dinosaur lists, the
//!   sonnets, the Metheny MIDI), shared with the ava tests; see `fixtures/README.md`.
//! - `crates/core/tests/data/`: reference outputs the project generated itself (numpy traces,
//!   PyTorch logits), each naming the script that wrote it.

// Each test crate uses only some of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;

use rnnlab_core::random::RandomState;

/// The repository's `fixtures/` folder.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// A text file from `fixtures/`.
pub fn fixture(name: &str) -> String {
    let path = fixtures_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A text file from `crates/core/tests/data/`.
pub fn test_data(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The first `chars` characters of Shakespeare's sonnets (`fixtures/shakespeare.txt`).
pub fn sonnets(chars: usize) -> String {
    fixture("shakespeare.txt").chars().take(chars).collect()
}

/// The course's corpus handling for Dinosaurus Island: vocabulary = sorted unique characters of
/// the lower-cased text ('\n' first); examples = lines lower-cased and stripped, as indices.
pub fn course_corpus(file: &str) -> (String, Vec<Vec<usize>>) {
    let data = fixture(file).to_lowercase();
    let mut chars: Vec<char> = data.chars().collect();
    chars.sort_unstable();
    chars.dedup();
    let vocab: String = chars.iter().collect();
    let examples = data
        .lines()
        .map(|l| {
            l.trim()
                .chars()
                .map(|c| chars.binary_search(&c).expect("char in vocab"))
                .collect()
        })
        .collect();
    (vocab, examples)
}

/// A small jazz corpus with structure (a repeating pattern plus noise) over `n_values` values.
pub fn toy_corpus(n_values: usize, len: usize, seed: u32) -> Vec<usize> {
    let mut rng = RandomState::new(seed);
    (0..len)
        .map(|k| {
            if rng.random_sample() < 0.8 {
                (k * 3) % n_values
            } else {
                rng.choice(n_values).unwrap()
            }
        })
        .collect()
}

/// Reads an integer setting of a benchmark from the environment.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The largest absolute difference between two sequences of floats, compared pairwise.
pub fn max_abs_diff(a: impl IntoIterator<Item = f64>, b: impl IntoIterator<Item = f64>) -> f64 {
    a.into_iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}
