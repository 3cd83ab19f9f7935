//! Training behaviour of the character model: determinism across thread counts, learning on
//! the sonnets, f32 vs f64, configuration errors.

use std::sync::atomic::AtomicBool;

use rnnlab_core::lm::{
    backward, forward, Cell, CharLm, Clip, LmConfig, Mode, OptimizerConfig, TrainConfig, Trainer,
    Vocab, Workspace,
};

mod common;
use common::sonnets;

fn train_cfg(mode: Mode, batch: usize) -> TrainConfig {
    TrainConfig {
        mode,
        batch_size: batch,
        optimizer: OptimizerConfig::adam(0.01),
        clip: Clip {
            value: Some(5.0),
            norm: Some(10.0),
        },
        validation: 0.1,
        seed: 4,
    }
}

fn model(
    text: &str,
    cell: Cell,
    hidden: Vec<usize>,
    embedding: Option<usize>,
    dropout: f64,
) -> CharLm<f32> {
    CharLm::new(
        LmConfig {
            cell,
            hidden,
            embedding,
            dropout,
        },
        Vocab::from_text(text).unwrap(),
        1,
    )
    .unwrap()
}

fn train_in_pool(threads: usize, text: &str, mode: Mode, steps: u64) -> Vec<f32> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let m = model(text, Cell::Lstm, vec![48, 40], Some(16), 0.3);
        let mut tr = Trainer::new(m, text, train_cfg(mode, 130)).unwrap();
        let p = tr.run(steps, None, &AtomicBool::new(false)).unwrap();
        assert_eq!(p.batches, steps);
        tr.model().params().to_vec()
    })
}

#[test]
fn identical_weights_with_1_and_2_threads() {
    let text = sonnets(30_000);
    // batch 130 = three row blocks of the parallel loops; dropout on
    for mode in [
        Mode::Tbptt { seq_len: 20 },
        Mode::Windows {
            window: 20,
            stride: 3,
        },
    ] {
        let one = train_in_pool(1, &text, mode, 4);
        let two = train_in_pool(2, &text, mode, 4);
        let same = one
            .iter()
            .zip(&two)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{mode:?}: weights differ between 1 and 2 threads");
        assert!(one.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn learns_the_sonnets_many_to_many() {
    let text = sonnets(40_000);
    let m = model(&text, Cell::Lstm, vec![64, 64], None, 0.0);
    let v = m.vocab().len();
    let mut cfg = train_cfg(Mode::Tbptt { seq_len: 32 }, 16);
    cfg.optimizer = OptimizerConfig::adam(0.01);
    let mut tr = Trainer::new(m, &text, cfg).unwrap();
    let before = tr.validate().unwrap().unwrap();
    assert!(
        (before - (v as f64).ln()).abs() < 0.3,
        "untrained loss {before} should be near ln V = {}",
        (v as f64).ln()
    );
    let mut losses = Vec::new();
    for epoch in 1..=3 {
        let p = tr.run(10_000, None, &AtomicBool::new(false)).unwrap(); // stops at the epoch end
        assert!(p.epoch_end && p.epoch == epoch && p.batch_in_epoch == 0);
        losses.push(p.val_loss.unwrap());
    }
    eprintln!(
        "val loss {before:.3} -> {losses:.3?} nats/char, {} batches/epoch",
        tr.batches_per_epoch()
    );
    assert!(
        losses[2] < losses[0] && losses[2] < 2.5,
        "validation losses {losses:?}"
    );
}

#[test]
fn f32_matches_f64() {
    let text = sonnets(5_000);
    let m32 = model(&text, Cell::Lstm, vec![32, 24], Some(8), 0.0);
    let m64: CharLm<f64> = m32.cast();
    let (t, b) = (12, 70);
    let mut w32 = Workspace::new(&m32, t, b, false).unwrap();
    let mut w64 = Workspace::new(&m64, t, b, false).unwrap();
    let ids = m32.vocab().encode(&text, "text").unwrap();
    let x: Vec<u32> = ids[..t * b].to_vec();
    let y: Vec<u32> = ids[1..t * b + 1].to_vec();
    w32.set_batch(&x, &y, m32.vocab().len()).unwrap();
    w64.set_batch(&x, &y, m64.vocab().len()).unwrap();
    let (l32, l64) = (
        forward(&m32, &mut w32, false, None),
        forward(&m64, &mut w64, false, None),
    );
    assert!(
        (l32 - l64).abs() < 1e-5 * l64,
        "loss f32 {l32} vs f64 {l64}"
    );
    backward(&m32, &mut w32);
    backward(&m64, &mut w64);
    let (mut d2, mut n2) = (0.0, 0.0);
    for (a, b) in w32.grads.iter().zip(&w64.grads) {
        d2 += (*a as f64 - b).powi(2);
        n2 += b * b;
    }
    let rel = (d2 / n2).sqrt();
    assert!(rel < 1e-4, "gradient f32 vs f64 relative difference {rel}");
}

#[test]
fn clear_errors() {
    let text = sonnets(2_000);
    let bad = LmConfig {
        cell: Cell::Lstm,
        hidden: vec![],
        embedding: None,
        dropout: 0.0,
    };
    let e = CharLm::<f32>::new(bad, Vocab::from_text(&text).unwrap(), 0).unwrap_err();
    assert!(e.to_string().contains("hidden"), "{e}");
    let bad = LmConfig {
        cell: Cell::Rnn,
        hidden: vec![8],
        embedding: None,
        dropout: 1.0,
    };
    let e = CharLm::<f32>::new(bad, Vocab::from_text(&text).unwrap(), 0).unwrap_err();
    assert!(e.to_string().contains("dropout"), "{e}");
    let m = model(&text, Cell::Lstm, vec![8], None, 0.0);
    let e = Trainer::new(
        m.clone(),
        &text,
        train_cfg(Mode::Tbptt { seq_len: 100 }, 64),
    )
    .unwrap_err();
    assert!(e.to_string().contains("do not fill one batch"), "{e}");
    let e = Trainer::new(m.clone(), "zzz€", train_cfg(Mode::Tbptt { seq_len: 2 }, 1)).unwrap_err();
    assert!(e.to_string().contains("'€'"), "{e}");
    let mut cfg = train_cfg(
        Mode::Windows {
            window: 0,
            stride: 3,
        },
        8,
    );
    assert!(Trainer::new(m.clone(), &text, cfg.clone())
        .unwrap_err()
        .to_string()
        .contains("window"));
    cfg.mode = Mode::Windows {
        window: 10,
        stride: 3,
    };
    cfg.optimizer.lr = -1.0;
    assert!(Trainer::new(m, &text, cfg)
        .unwrap_err()
        .to_string()
        .contains("lr"));
}

/// Issue 13, finding 10: the loss reported at an epoch end was the mean over the last chunk of
/// about `chunkSeconds`, so the same seed printed a different epoch-1 loss on every run. The
/// epoch's loss is now the mean over all of its batches, the same however the epoch is cut
/// into calls, and across a checkpoint taken mid-epoch.
#[test]
fn epoch_loss_does_not_depend_on_how_the_epoch_is_cut() {
    let text = sonnets(12_000);
    let epoch_losses = |calls_of: &dyn Fn(u64) -> u64, resume_at: Option<u64>| {
        let m = model(&text, Cell::Lstm, vec![24], None, 0.2);
        let mut tr = Trainer::new(m, &text, train_cfg(Mode::Tbptt { seq_len: 16 }, 8)).unwrap();
        let (mut per_epoch, mut last_call) = (Vec::new(), Vec::new());
        while per_epoch.len() < 2 {
            if Some(tr.step_count()) == resume_at {
                let ckpt = tr.to_checkpoint().unwrap().to_bytes().unwrap();
                let ckpt = rnnlab_core::checkpoint::Checkpoint::from_bytes(&ckpt).unwrap();
                tr = Trainer::from_checkpoint(&ckpt, &text).unwrap();
            }
            let p = tr
                .run(calls_of(tr.step_count()), None, &AtomicBool::new(false))
                .unwrap();
            assert_eq!(p.epoch_loss.is_some(), p.epoch_end);
            if let Some(l) = p.epoch_loss {
                per_epoch.push(l.to_bits());
                last_call.push(p.loss.to_bits());
            }
        }
        assert!(tr.batches_per_epoch() > 4);
        (per_epoch, last_call)
    };
    let (whole, whole_last) = epoch_losses(&|_| u64::MAX, None);
    let (single, single_last) = epoch_losses(&|_| 1, None);
    let (uneven, _) = epoch_losses(&|step| 1 + step % 3, Some(3));
    // over a whole epoch, the mean of one call is the epoch's mean
    assert_eq!(whole, whole_last);
    assert_eq!(single, whole, "one batch per call");
    assert_eq!(uneven, whole, "uneven calls and a resume mid-epoch");
    // what was reported before: the last call's mean, which depends on the cut
    assert_ne!(single_last, whole_last);
}
