//! Measurements behind the GEMM choice and the training speed of the language model. Run on a
//! quiet machine with `cargo bench -p rnnlab-core --bench lm_gemm [-- NAME...]`, where NAME picks
//! some of `gemm_backends`, `training_speed`, `phase_times`, `sampling_speed`,
//! `sampling_phases`, `training_hashes` (all by default).

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use rnnlab_core::lm::{
    Cell, CharLm, Clip, LmConfig, Mode, OptimizerConfig, TrainConfig, Trainer, Vocab,
};
use rnnlab_core::math::gemm::{matmul, par_matmul, set_backend, Backend, Op};

#[path = "../tests/common/mod.rs"]
mod common;

/// An untrained model over `text`'s characters: one-hot input, seed 0.
fn model<T: rnnlab_core::math::Float>(
    cell: Cell,
    hidden: Vec<usize>,
    dropout: f64,
    text: &str,
) -> CharLm<T> {
    let cfg = LmConfig {
        cell,
        hidden,
        embedding: None,
        dropout,
    };
    CharLm::<T>::new(cfg, Vocab::from_text(text).unwrap(), 0).unwrap()
}

fn gflops(m: usize, n: usize, k: usize, op_a: Op, op_b: Op, par: bool) -> f64 {
    let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.01).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.02).collect();
    let mut c = vec![0f32; m * n];
    let flop = 2.0 * (m * n * k) as f64;
    let iters = (3e9 / flop).max(3.0) as usize;
    let run = |c: &mut [f32]| {
        if par {
            par_matmul(c, m, n, k, &a, op_a, &b, op_b, false)
        } else {
            matmul(c, m, n, k, &a, op_a, &b, op_b, false)
        }
    };
    run(&mut c);
    let t = Instant::now();
    for _ in 0..iters {
        run(&mut c);
    }
    flop * iters as f64 / t.elapsed().as_secs_f64() / 1e9
}

fn gemm_backends_on_lstm_shapes() {
    // 2×128 LSTM, batch 128, seq 40 (T·B = 5120), f32
    let shapes = [
        (
            "step z += h·W_hhᵀ (block 64)",
            64,
            512,
            128,
            Op::N,
            Op::T,
            false,
        ),
        (
            "step dh = dZ·W_hh (block 64)",
            64,
            128,
            512,
            Op::N,
            Op::N,
            false,
        ),
        (
            "input proj X·W_ihᵀ (T·B rows)",
            5120,
            512,
            128,
            Op::N,
            Op::T,
            true,
        ),
        (
            "dW_hh = dZᵀ·H (k = T·B)",
            512,
            128,
            5120,
            Op::T,
            Op::N,
            true,
        ),
        ("dX = dZ·W_ih", 5120, 128, 512, Op::N, Op::N, true),
        (
            "dense logits (T·B, V=62)",
            5120,
            62,
            128,
            Op::N,
            Op::T,
            true,
        ),
    ];
    for backend in [Backend::Gemm, Backend::Ndarray] {
        set_backend(backend);
        for (name, m, n, k, oa, ob, par) in shapes {
            let g = gflops(m, n, k, oa, ob, par);
            println!("{backend:?} {name:34} m={m:5} n={n:4} k={k:5} par={par}: {g:6.1} GFLOP/s");
        }
    }
    set_backend(Backend::Gemm);
}

fn training_speed_2x128() {
    let text = common::fixture("shakespeare.txt");
    for backend in [Backend::Gemm, Backend::Ndarray] {
        set_backend(backend);
        for mode in [
            Mode::Windows {
                window: 40,
                stride: 3,
            },
            Mode::Tbptt { seq_len: 40 },
        ] {
            let m = model::<f32>(Cell::Lstm, vec![128, 128], 0.2, &text);
            let tc = TrainConfig {
                mode,
                batch_size: 128,
                optimizer: OptimizerConfig::adam(0.01),
                clip: Clip::default(),
                validation: 0.0,
                seed: 0,
            };
            let mut tr = Trainer::new(m, &text, tc).unwrap();
            tr.run(2, None, &AtomicBool::new(false)).unwrap();
            let t = Instant::now();
            let p = tr.run(12, None, &AtomicBool::new(false)).unwrap();
            let s = t.elapsed().as_secs_f64();
            println!(
                "{backend:?} {mode:?}: {:.0} chars/s ({} batches, loss {:.3})",
                (p.batches * 40 * 128) as f64 / s,
                p.batches,
                p.loss
            );
        }
    }
    set_backend(Backend::Gemm);
}

/// Fingerprints of training (not a timing): FNV-1a over the bits of every step's loss and of
/// the final weights, for LSTM/GRU/RNN, f32/f64, windows/tbptt, batch 128 and a ragged 100 (a
/// 64-row block and a 36-row one), 2×128 with dropout. Compared before and after a change to
/// the kernels: equal hashes mean bit-identical training.
fn training_hashes() {
    let text = common::fixture("shakespeare.txt");
    fn fnv(h: &mut u64, bits: u64) {
        for b in bits.to_le_bytes() {
            *h = (*h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn run<T: rnnlab_core::math::Float>(
        text: &str,
        cell: Cell,
        mode: Mode,
        batch: usize,
        steps: usize,
    ) -> u64 {
        let m = model::<T>(cell, vec![128, 128], 0.2, text);
        let tc = TrainConfig {
            mode,
            batch_size: batch,
            optimizer: OptimizerConfig::adam(0.002),
            clip: Clip::default(),
            validation: 0.0,
            seed: 0,
        };
        let mut tr = Trainer::new(m, text, tc).unwrap();
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for _ in 0..steps {
            fnv(&mut h, tr.step().unwrap().to_bits());
        }
        for &w in tr.model().params() {
            fnv(&mut h, w.to_f64().to_bits());
        }
        h
    }
    let windows = Mode::Windows {
        window: 40,
        stride: 3,
    };
    let tbptt = Mode::Tbptt { seq_len: 40 };
    let steps: usize = std::env::var("LM_HASH_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
        for (mode, name) in [(windows, "windows"), (tbptt, "tbptt")] {
            for batch in [128, 100] {
                let n = if cell == Cell::Lstm && batch == 128 {
                    steps
                } else {
                    steps / 10
                };
                println!(
                    "hash {} {name} batch {batch}, {n} steps: f32 {:016x} f64 {:016x}",
                    cell.name(),
                    run::<f32>(&text, cell, mode, batch, n),
                    run::<f64>(&text, cell, mode, batch, n / 2)
                );
            }
        }
    }
}

fn phase_times_2x128() {
    phase_times::<f32>();
    phase_times::<f64>();
}

/// Forward and backward time of one windows batch (128 × 40, the course's shapes), and each
/// as GFLOP/s of its products (forward 3·2·512·128 per character plus the dense layer once
/// per window; backward twice that), to compare with the GEMM peak of `bench/peak.py`.
fn phase_times<T: rnnlab_core::math::Float>() {
    use rnnlab_core::lm::{backward, forward, Workspace};
    let text = common::fixture("shakespeare.txt");
    let m = model::<T>(Cell::Lstm, vec![128, 128], 0.0, &text);
    let (t, b) = (40, 128);
    let mut ws = Workspace::new(&m, t, b, false).unwrap();
    let ids = m.vocab().encode(&text, "text").unwrap();
    ws.set_batch(&ids[..t * b], &ids[1..t * b + 1], m.vocab().len())
        .unwrap();
    let n = common::env_usize("PHASE_N", 10);
    forward(&m, &mut ws, false, None);
    let (t0, cpu0) = (Instant::now(), process_cpu_seconds());
    for _ in 0..n {
        forward(&m, &mut ws, false, None);
    }
    let f = t0.elapsed().as_secs_f64() / n as f64;
    let f_cpu = (process_cpu_seconds() - cpu0) / n as f64;
    let (t0, cpu0) = (Instant::now(), process_cpu_seconds());
    for _ in 0..n {
        forward(&m, &mut ws, false, None);
        backward(&m, &mut ws);
    }
    let fb = t0.elapsed().as_secs_f64() / n as f64;
    let fb_cpu = (process_cpu_seconds() - cpu0) / n as f64;
    let chars = (t * b) as f64;
    let fwd_flop =
        chars * (3.0 * 2.0 * 512.0 * 128.0) + b as f64 * 2.0 * m.vocab().len() as f64 * 128.0;
    println!(
        "{} threads {}: forward {:.1} ms ({:.1} GFLOP/s), backward {:.1} ms ({:.1} GFLOP/s) per batch of {} chars",
        T::DTYPE,
        rayon::current_num_threads(),
        f * 1e3,
        fwd_flop / f / 1e9,
        (fb - f) * 1e3,
        2.0 * fwd_flop / (fb - f) / 1e9,
        t * b
    );
    // CPU time of all threads: steadier than wall time on a shared machine
    println!(
        "{} CPU time (all threads): forward {:.1} ms, backward {:.1} ms per batch",
        T::DTYPE,
        f_cpu * 1e3,
        (fb_cpu - f_cpu) * 1e3
    );
}

/// `generate`'s speed for a 2×128 LSTM in f32, or the sizes in `LM_BENCH_HIDDEN` (e.g.
/// `64` or `256,256`) and the dtype in `LM_BENCH_DTYPE` (`f32`/`f64`).
fn sampling_speed_2x128() {
    let hidden: Vec<usize> = std::env::var("LM_BENCH_HIDDEN")
        .map(|s| s.split(',').map(|h| h.parse().unwrap()).collect())
        .unwrap_or(vec![128, 128]);
    match std::env::var("LM_BENCH_DTYPE").as_deref() {
        Ok("f64") => sampling_speed::<f64>(hidden),
        _ => sampling_speed::<f32>(hidden),
    }
}

fn sampling_speed<T: rnnlab_core::math::Float>(hidden: Vec<usize>) {
    use rnnlab_core::lm::{generate, SampleOptions};
    let text = common::fixture("shakespeare.txt");
    let m = model::<T>(Cell::Lstm, hidden.clone(), 0.0, &text);
    let n = 50_000;
    let t = Instant::now();
    let s = generate(
        &m,
        "Shall I compare thee",
        &SampleOptions {
            length: n,
            temperature: 0.8,
            top_k: 0,
            seed: 1,
        },
    )
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    // FNV-1a of the sample: the same text whatever the thread count
    let hash = s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    println!(
        "sampling LSTM {hidden:?} {}: {:.0} chars/s ({} chars, {} threads, hash {hash:016x})",
        T::DTYPE,
        n as f64 / secs,
        s.chars().count(),
        rayon::current_num_threads()
    );
}

/// CPU time of this thread (Linux; wall time elsewhere), steadier than the wall clock on a
/// shared machine.
/// CPU time of every thread of this process so far (Linux; 0 elsewhere).
fn process_cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        * 1e-9
}

fn thread_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map(|ns| ns * 1e-9)
        .unwrap_or_else(|| {
            static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
            START.get_or_init(Instant::now).elapsed().as_secs_f64()
        })
}

/// Where a batch-1 character's time goes: the model step (products and activations) against
/// the draw (softmax at temperature 0.8 and numpy's `choice`).
fn sampling_phases_2x128() {
    use rnnlab_core::lm::Stepper;
    use rnnlab_core::nn::sample::{pick, Scores};
    use rnnlab_core::random::RandomState;
    let text = common::fixture("shakespeare.txt");
    let m = model::<f32>(Cell::Lstm, vec![128, 128], 0.0, &text);
    let n = 50_000;
    let t = thread_cpu_seconds();
    let mut s = Stepper::new(&m);
    let pack = thread_cpu_seconds() - t;
    let t = thread_cpu_seconds();
    let mut x = 0u32;
    let mut logits = Vec::new();
    for i in 0..n {
        let l = s.step(x);
        if i == 0 {
            logits = l.to_vec();
        }
        x = (i % 60) as u32;
    }
    let step = (thread_cpu_seconds() - t) / n as f64;
    let mut rng = RandomState::new(1);
    let mut work = Vec::new();
    let t = thread_cpu_seconds();
    let mut sum = 0;
    for _ in 0..n {
        sum += pick(&logits, Scores::Logits, 0.8, 0, &mut work, &mut rng).unwrap();
    }
    let draw = (thread_cpu_seconds() - t) / n as f64;
    println!(
        "sampling phases (thread CPU time): packing {:.2} ms once; step {:.2} µs, draw {:.2} µs per character ({sum})",
        pack * 1e3,
        step * 1e6,
        draw * 1e6
    );
}

fn main() {
    println!(
        "SIMD level {} (RNNLAB_SIMD caps it)",
        rnnlab_core::math::SimdLevel::current().as_str()
    );
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runs: [(&str, fn()); 6] = [
        ("gemm_backends", gemm_backends_on_lstm_shapes),
        ("training_speed", training_speed_2x128),
        ("phase_times", phase_times_2x128),
        ("sampling_speed", sampling_speed_2x128),
        ("sampling_phases", sampling_phases_2x128),
        ("training_hashes", training_hashes),
    ];
    for (name, run) in runs {
        if picked.is_empty() || picked.iter().any(|p| p == name) {
            run();
        }
    }
}
