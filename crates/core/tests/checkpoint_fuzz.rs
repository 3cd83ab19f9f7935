//! Mutation fuzzing of the checkpoint reader: real checkpoints of every kind (Dinosaurus
//! trainer, character LM model, LM trainer with Adam state) are mutated at random — bit
//! flips, byte overwrites, insertions, deletions, truncations, a tampered header length,
//! spliced JSON — and every result must load or fail with an error; never panic, hang or
//! allocate absurdly.
//!
//! Budget: `RNNLAB_FUZZ_CASES` mutations per seed file (default 3000, which runs in about a
//! second). `scripts/fuzz.sh` runs a larger budget. Any crash found becomes a regression
//! case in `regressions()` below.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;

use rnnlab_core::checkpoint::Checkpoint;
use rnnlab_core::dinos::{DinoConfig, DinoTrainer};
use rnnlab_core::lm::{
    Cell, CharLm, Clip, LmConfig, Mode, OptimizerConfig, TrainConfig, Trainer, Vocab,
};

const TEXT: &str =
    "shall i compare thee to a summer's day?\nthou art more lovely and more temperate:\n";

/// xorshift64*: a tiny deterministic generator, so every failure is reproducible by seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let vocab = "\nabcdefghijklmnopqrstuvwxyz";
    let ix = |s: &str| {
        s.chars()
            .map(|c| vocab.find(c).unwrap())
            .collect::<Vec<_>>()
    };
    let mut dinos = DinoTrainer::new(
        vocab,
        vec![ix("aardonyx"), ix("zby"), ix("abelisaurus")],
        DinoConfig {
            n_a: 6,
            ..DinoConfig::default()
        },
    )
    .unwrap();
    dinos.run(25, 0, |_| true).unwrap();

    let cfg = LmConfig {
        cell: Cell::Lstm,
        hidden: vec![8, 6],
        embedding: None,
        dropout: 0.1,
    };
    let model = CharLm::<f32>::new(cfg, Vocab::from_text(TEXT).unwrap(), 1).unwrap();
    let model_bytes = model.to_checkpoint().unwrap().to_bytes().unwrap();
    let tc = TrainConfig {
        mode: Mode::Tbptt { seq_len: 8 },
        batch_size: 4,
        optimizer: OptimizerConfig::adam(0.01),
        clip: Clip {
            value: Some(1.0),
            norm: None,
        },
        validation: 0.1,
        seed: 2,
    };
    let mut trainer = Trainer::new(model, TEXT, tc).unwrap();
    trainer.run(3, None, &AtomicBool::new(false)).unwrap();
    vec![
        ("dinos", dinos.to_checkpoint().unwrap().to_bytes().unwrap()),
        ("charlm model", model_bytes),
        (
            "charlm trainer",
            trainer.to_checkpoint().unwrap().to_bytes().unwrap(),
        ),
    ]
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    let header_end = 8 + u64::from_le_bytes(seed[..8].try_into().unwrap()) as usize;
    for _ in 0..1 + rng.below(4) {
        let len = b.len().max(1);
        match rng.below(9) {
            0 => {
                let p = rng.below(len);
                if p < b.len() {
                    b[p] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let p = rng.below(len);
                if p < b.len() {
                    b[p] = rng.next() as u8;
                }
            }
            2 => {
                let p = rng.below(len + 1);
                b.insert(p.min(b.len()), rng.next() as u8);
            }
            3 => {
                if !b.is_empty() {
                    let p = rng.below(len);
                    b.remove(p);
                }
            }
            4 => {
                let p = rng.below(len);
                b.truncate(p);
            }
            // the header length: off by a little, or absurd
            5 => {
                if b.len() >= 8 {
                    let v = match rng.below(3) {
                        0 => (header_end as u64)
                            .wrapping_add(rng.below(16) as u64)
                            .wrapping_sub(8),
                        1 => rng.next(),
                        _ => u64::MAX,
                    };
                    b[..8].copy_from_slice(&v.to_le_bytes());
                }
            }
            // inside the JSON header: a digit, quote, brace or bracket replaced
            6 => {
                if header_end <= b.len() && header_end > 8 {
                    let p = 8 + rng.below(header_end - 8);
                    b[p] = b"0123456789\"{}[],:-e."[rng.below(20)];
                }
            }
            // a number in the header made huge (shapes, offsets)
            7 => {
                if header_end <= b.len() && header_end > 8 {
                    let p = 8 + rng.below(header_end - 8);
                    if b[p].is_ascii_digit() {
                        b.splice(p..p + 1, b"18446744073709551615".iter().copied());
                    }
                }
            }
            _ => {
                let p = rng.below(len);
                let q = rng.below(len);
                if p < b.len() && q < b.len() {
                    b.swap(p, q);
                }
            }
        }
    }
    b
}

/// Every reader on one byte string; returns whether the file was accepted by the container.
fn read_all(bytes: &[u8]) -> bool {
    let Ok(ck) = Checkpoint::from_bytes(bytes) else {
        return false;
    };
    let _ = DinoTrainer::from_checkpoint(&ck);
    let _ = CharLm::<f32>::from_checkpoint(&ck, None);
    let _ = CharLm::<f64>::from_checkpoint(&ck, None);
    let _ = Trainer::<f32>::from_checkpoint(&ck, TEXT);
    true
}

#[test]
fn mutated_checkpoints_never_panic() {
    let cases: usize = std::env::var("RNNLAB_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let start = std::time::Instant::now();
    for (name, seed) in seeds() {
        assert!(read_all(&seed), "{name}: the unmutated file must load");
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed.len() as u64);
        let mut accepted = 0;
        for case in 0..cases {
            let m = mutate(&mut rng, &seed);
            match catch_unwind(AssertUnwindSafe(|| read_all(&m))) {
                Ok(ok) => accepted += ok as usize,
                Err(_) => panic!("{name}: case {case} panicked; bytes: {m:?}"),
            }
        }
        // the checksum and the header checks refuse nearly everything
        assert!(
            accepted < cases / 10 + 5,
            "{name}: {accepted} of {cases} mutations accepted"
        );
        eprintln!("{name}: {cases} mutations, {accepted} accepted, no panic");
    }
    eprintln!("checkpoint fuzz: {:.2} s", start.elapsed().as_secs_f64());
}

/// Crashes found by the fuzzer, kept as regression cases.
#[test]
fn regressions() {
    // a header length of u64::MAX and of exactly the file size
    for len in [u64::MAX, 16, 0] {
        let mut b = len.to_le_bytes().to_vec();
        b.extend_from_slice(b"{}      ");
        assert!(catch_unwind(|| read_all(&b)).is_ok());
    }
}
