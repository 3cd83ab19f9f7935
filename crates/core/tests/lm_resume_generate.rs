//! Exact resume from a checkpoint, save/load, PyTorch-named import, and generation.

use std::sync::atomic::AtomicBool;

use rnnlab_core::checkpoint::Checkpoint;
use rnnlab_core::lm::{
    forward, generate, logits_for, Cell, CharLm, Clip, LmConfig, Mode, OptimizerConfig,
    SampleOptions, TrainConfig, Trainer, Vocab, Workspace,
};

mod common;
use common::sonnets;

fn trainer(text: &str, mode: Mode) -> Trainer<f32> {
    let cfg = LmConfig {
        cell: Cell::Lstm,
        hidden: vec![24, 16],
        embedding: None,
        dropout: 0.25,
    };
    let model = CharLm::new(cfg, Vocab::from_text(text).unwrap(), 5).unwrap();
    let mut oc = OptimizerConfig::adam(0.01);
    oc.decay = 0.01;
    let tc = TrainConfig {
        mode,
        batch_size: 8,
        optimizer: oc,
        clip: Clip {
            value: Some(1.0),
            norm: None,
        },
        validation: 0.1,
        seed: 9,
    };
    Trainer::new(model, text, tc).unwrap()
}

fn run(tr: &mut Trainer<f32>, steps: u64) {
    let mut done = 0;
    while done < steps {
        done += tr
            .run(steps - done, None, &AtomicBool::new(false))
            .unwrap()
            .batches;
    }
}

#[test]
fn resume_is_exact_in_both_modes() {
    let text = sonnets(3_000);
    for mode in [
        Mode::Tbptt { seq_len: 10 },
        Mode::Windows {
            window: 12,
            stride: 3,
        },
    ] {
        let mut straight = trainer(&text, mode);
        let per_epoch = straight.batches_per_epoch();
        let total = per_epoch + per_epoch / 2 + 3; // crosses an epoch boundary
        run(&mut straight, total);
        // stop mid-epoch and at an epoch boundary
        for stop in [per_epoch / 2, per_epoch] {
            let mut first = trainer(&text, mode);
            run(&mut first, stop);
            let bytes = first.to_checkpoint().unwrap().to_bytes().unwrap();
            drop(first);
            let ckpt = Checkpoint::from_bytes(&bytes).unwrap();
            let mut resumed = Trainer::<f32>::from_checkpoint(&ckpt, &text).unwrap();
            assert_eq!(resumed.step_count(), stop);
            run(&mut resumed, total - stop);
            let same = straight
                .model()
                .params()
                .iter()
                .zip(resumed.model().params())
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same,
                "{mode:?}: resumed at {stop} differs from the uninterrupted run"
            );
        }
        // another text is refused
        let ckpt = straight.to_checkpoint().unwrap();
        let other: String = text.chars().rev().collect();
        let e = Trainer::<f32>::from_checkpoint(&ckpt, &other).unwrap_err();
        assert!(e.to_string().contains("differs"), "{e}");
    }
}

#[test]
fn save_load_and_torch_named_import() {
    let text = sonnets(3_000);
    let mut tr = trainer(&text, Mode::Tbptt { seq_len: 10 });
    run(&mut tr, 5);
    let dir = std::env::temp_dir().join(format!("rnnlab-lm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let path = path.to_str().unwrap();
    tr.model().save(path).unwrap();
    let loaded = CharLm::<f32>::load(path, None).unwrap();
    assert_eq!(loaded.params(), tr.model().params());
    assert_eq!(loaded.config(), tr.model().config());

    // a bare safetensors file with PyTorch names only (no rnnlab metadata): shapes give the
    // architecture, the caller gives the vocabulary
    let mut bare = Checkpoint::default();
    for info in tr.model().tensors() {
        let v: Vec<f32> = tr.model().tensor(&info.name).unwrap().to_vec();
        bare.put_f32(&info.name, &info.shape, &v).unwrap();
    }
    let bytes = bare.to_bytes().unwrap();
    let parsed = Checkpoint::parse_safetensors(&bytes).unwrap();
    let e = CharLm::<f32>::from_checkpoint(&parsed, None).unwrap_err();
    assert!(e.to_string().contains("vocab"), "{e}");
    let vocab = tr.model().vocab().as_string();
    let imported = CharLm::<f64>::from_checkpoint(&parsed, Some(&vocab)).unwrap();
    assert_eq!(imported.config().hidden, vec![24, 16]);
    assert_eq!(imported.config().cell, Cell::Lstm);
    let back: Vec<f32> = imported.params().iter().map(|&v| v as f32).collect();
    assert_eq!(back, tr.model().params());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn stepper_matches_batch_forward() {
    let text = sonnets(2_000);
    for cell in [Cell::Lstm, Cell::Rnn] {
        let cfg = LmConfig {
            cell,
            hidden: vec![20, 12],
            embedding: Some(6),
            dropout: 0.5,
        };
        let model = CharLm::<f64>::new(cfg, Vocab::from_text(&text).unwrap(), 2).unwrap();
        let sample: String = text.chars().take(31).collect();
        let ids = model.vocab().encode(&sample, "text").unwrap();
        // loss from the one-sequence stepper
        let logits = logits_for(&model, &sample[..sample.len() - 1]).unwrap();
        let mut loss = 0.0;
        for (t, row) in logits.iter().enumerate() {
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = row.iter().map(|v| (v - max).exp()).sum::<f64>().ln() + max;
            loss += lse - row[ids[t + 1] as usize];
        }
        loss /= logits.len() as f64;
        // loss from the mini-batch path (B = 1, dropout off at inference)
        let mut ws = Workspace::new(&model, 30, 1, false).unwrap();
        ws.set_batch(&ids[..30], &ids[1..31], model.vocab().len())
            .unwrap();
        let batch_loss = forward(&model, &mut ws, false, None);
        assert!(
            (loss - batch_loss).abs() < 1e-12,
            "{cell:?}: stepper {loss} vs batch {batch_loss}"
        );
    }
}

#[test]
fn generation_is_seeded_and_validated() {
    let text = sonnets(3_000);
    let mut tr = trainer(&text, Mode::Tbptt { seq_len: 10 });
    run(&mut tr, 10);
    let m = tr.model();
    let opts = SampleOptions {
        length: 200,
        temperature: 0.8,
        top_k: 0,
        seed: 3,
    };
    let a = generate(m, "Shall I compare thee", &opts).unwrap();
    let b = generate(m, "Shall I compare thee", &opts).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.chars().count(), 200);
    let c = generate(
        m,
        "Shall I compare thee",
        &SampleOptions {
            seed: 4,
            ..opts.clone()
        },
    )
    .unwrap();
    assert_ne!(a, c);
    let greedy = generate(
        m,
        "Shall",
        &SampleOptions {
            temperature: 0.0,
            ..opts.clone()
        },
    )
    .unwrap();
    let top1 = generate(
        m,
        "Shall",
        &SampleOptions {
            top_k: 1,
            seed: 99,
            ..opts.clone()
        },
    )
    .unwrap();
    assert_eq!(greedy, top1);
    // top-k = 3: every draw is among the 3 most likely next characters
    let top3 = generate(
        m,
        "Shall",
        &SampleOptions {
            top_k: 3,
            length: 40,
            ..opts.clone()
        },
    )
    .unwrap();
    let mut prefix = String::from("Shall");
    for ch in top3.chars() {
        let logits = logits_for(m, &prefix).unwrap();
        let last = logits.last().unwrap();
        let idx = m.vocab().get(ch).unwrap() as usize;
        let better = last.iter().filter(|&&v| v > last[idx]).count();
        assert!(better < 3, "drew {ch:?} ranked {}", better + 1);
        prefix.push(ch);
    }
    let e = generate(m, "Shall I ☃ thee, Ω?", &opts).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("prompt") && msg.contains('☃') && msg.contains('Ω'),
        "{msg}"
    );
    assert_eq!(e.code(), "ERR_INVALID_ARG");
    let e = generate(
        m,
        "x",
        &SampleOptions {
            temperature: -1.0,
            ..opts
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("temperature"));
}

/// Training from a file (streamed, 1 byte per character) is training on its text: the same
/// weights, a checkpoint from one resumes on the other, and the file's vocabulary is the text's.
#[test]
fn a_streamed_file_trains_and_resumes_as_its_text() {
    use rnnlab_core::lm::vocab_of_file;
    let text = sonnets(3_000);
    let path = std::env::temp_dir().join(format!("rnnlab-lm-file-{}.txt", std::process::id()));
    std::fs::write(&path, &text).unwrap();
    assert_eq!(
        vocab_of_file(&path).unwrap(),
        Vocab::from_text(&text).unwrap()
    );
    let mode = Mode::Tbptt { seq_len: 10 };
    let mut from_text = trainer(&text, mode);
    let t = trainer(&text, mode); // same model and config, rebuilt on the file
    let (model, config) = (t.model().clone(), t.config().clone());
    let mut from_file = Trainer::from_file(model, &path, config).unwrap();
    assert_eq!(from_file.split_sizes(), from_text.split_sizes());
    run(&mut from_text, 7);
    run(&mut from_file, 7);
    assert_eq!(from_text.model().params(), from_file.model().params());
    let ckpt = from_text.to_checkpoint().unwrap();
    let mut resumed = Trainer::<f32>::from_checkpoint_file(&ckpt, &path).unwrap();
    run(&mut resumed, 5);
    run(&mut from_text, 5);
    assert_eq!(from_text.model().params(), resumed.model().params());
    // a file that is not the checkpoint's text is refused, naming the problem
    let other = path.with_extension("other.txt");
    std::fs::write(&other, text.replace('e', "a")).unwrap();
    let e = Trainer::<f32>::from_checkpoint_file(&ckpt, &other).unwrap_err();
    assert!(e.to_string().contains("differs"), "{e}");
    std::fs::write(&other, format!("{text}\u{263a}")).unwrap();
    let e = Trainer::<f32>::from_checkpoint_file(&ckpt, &other)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("other.txt") && e.contains("'☺'") && e.contains("vocabulary"),
        "{e}"
    );
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(&other).unwrap();
}
