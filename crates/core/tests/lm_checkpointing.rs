//! char-rnn's checkpointing: evaluations every N steps or epochs, the best model on
//! validation, early stopping, all of it resumed bit for bit from a checkpoint.

use std::sync::atomic::AtomicBool;

use rnnlab_core::checkpoint::Checkpoint;
use rnnlab_core::lm::trainer::validation_loss;
use rnnlab_core::lm::{
    Cell, CharLm, Clip, EvalConfig, Every, LmConfig, Mode, OptimizerConfig, Progress, TrainConfig,
    Trainer, Vocab,
};

mod common;
use common::sonnets;

fn trainer(text: &str, optimizer: OptimizerConfig, evaluation: EvalConfig) -> Trainer<f32> {
    let cfg = LmConfig {
        cell: Cell::Lstm,
        hidden: vec![16],
        embedding: None,
        dropout: 0.1,
    };
    let model = CharLm::new(cfg, Vocab::from_text(text).unwrap(), 3).unwrap();
    let tc = TrainConfig {
        mode: Mode::Tbptt { seq_len: 10 },
        batch_size: 8,
        optimizer,
        clip: Clip {
            value: Some(5.0),
            norm: None,
        },
        validation: 0.2,
        seed: 4,
    };
    let mut tr = Trainer::new(model, text, tc).unwrap();
    tr.set_evaluation(evaluation).unwrap();
    tr
}

/// Runs until the patience runs out or `max_steps` are done; the reports of every call.
fn run_until_stopped(tr: &mut Trainer<f32>, max_steps: u64) -> Vec<Progress> {
    let mut reports = Vec::new();
    while tr.step_count() < max_steps && !tr.evaluations().stopped_early {
        let left = max_steps - tr.step_count();
        reports.push(tr.run(left, None, &AtomicBool::new(false)).unwrap());
    }
    reports
}

fn bits(m: &CharLm<f32>) -> Vec<u32> {
    m.params().iter().map(|x| x.to_bits()).collect()
}

#[test]
fn evaluations_follow_the_schedule_and_keep_the_best_model() {
    let text = sonnets(3_000);
    for every in [Every::Steps(7), Every::Epochs(2)] {
        let evaluation = EvalConfig {
            every,
            patience: None,
        };
        let mut tr = trainer(&text, OptimizerConfig::adam(0.01), evaluation);
        let per_epoch = tr.batches_per_epoch();
        let reports = run_until_stopped(&mut tr, 5 * per_epoch);
        let evals: Vec<&Progress> = reports.iter().filter(|p| p.evaluation).collect();
        let expected: Vec<u64> = match every {
            Every::Steps(n) => (1..=5 * per_epoch / n).map(|k| k * n).collect(),
            Every::Epochs(n) => (1..=5 / n).map(|k| k * n * per_epoch).collect(),
        };
        assert_eq!(
            evals.iter().map(|p| p.step).collect::<Vec<_>>(),
            expected,
            "{every:?}"
        );
        assert!(reports.iter().all(|p| p.evaluation == p.val_loss.is_some()));
        // the best is the minimum over the evaluations, and its weights measure as recorded
        let losses: Vec<f64> = evals.iter().map(|p| p.val_loss.unwrap()).collect();
        let min = losses.iter().cloned().fold(f64::INFINITY, f64::min);
        let best = tr.evaluations().best.as_ref().unwrap();
        assert_eq!(best.val_loss(), min);
        let first_min = evals.iter().find(|p| p.val_loss == Some(min)).unwrap();
        assert_eq!(best.at.step, first_min.step);
        let again = validation_loss(&best.model, &tr_val(&tr, &text), tr.config()).unwrap();
        assert_eq!(again, Some(min));
        // the kept model file records where it comes from
        let kept = tr.kept_checkpoint(true).unwrap();
        assert_eq!(kept.meta("kept").unwrap(), "best");
        assert_eq!(kept.meta_parse::<f64>("val_loss").unwrap(), min);
        assert_eq!(kept.meta_parse::<u64>("step").unwrap(), first_min.step);
        let last = tr.kept_checkpoint(false).unwrap();
        assert_eq!(last.meta("kept").unwrap(), "last");
        assert_eq!(last.meta_parse::<u64>("step").unwrap(), tr.step_count());
        let loaded = CharLm::<f32>::from_checkpoint(&kept, None).unwrap();
        assert_eq!(bits(&loaded), bits(&best.model));
    }
}

/// The validation part of `text` for `tr`'s split (the end of the text).
fn tr_val(tr: &Trainer<f32>, text: &str) -> rnnlab_core::lm::Tokens {
    let (train, _) = tr.split_sizes();
    let tail: String = text.chars().skip(train).collect();
    rnnlab_core::lm::Tokens::encode(tr.model().vocab(), &tail, "text").unwrap()
}

#[test]
fn weights_that_never_change_stop_after_exactly_patience_more_evaluations() {
    // an SGD step of 1e-30 is below float32's resolution for every weight: the validation
    // loss is the same at every evaluation, so only the first one improves
    let text = sonnets(3_000);
    let evaluation = EvalConfig {
        every: Every::Steps(4),
        patience: Some(3),
    };
    let mut tr = trainer(&text, OptimizerConfig::sgd(1e-30), evaluation);
    let reports = run_until_stopped(&mut tr, 1_000);
    let evals = tr.evaluations();
    assert!(evals.stopped_early);
    assert_eq!(tr.step_count(), 4 * (1 + 3));
    assert_eq!(evals.best.as_ref().unwrap().at.step, 4);
    assert_eq!(evals.count, 4);
    assert_eq!(evals.since_best, 3);
    let last = reports.last().unwrap();
    assert!(last.stopped_early && last.evaluation && !last.improved);
    // a stopped run trains no further
    let more = tr.run(100, None, &AtomicBool::new(false)).unwrap();
    assert_eq!((more.batches, more.stopped_early), (0, true));
}

#[test]
fn early_stopping_resumes_exactly_from_any_point() {
    // a high learning rate: the validation loss stops improving after a few evaluations
    let text = sonnets(3_000);
    let evaluation = EvalConfig {
        every: Every::Steps(5),
        patience: Some(2),
    };
    let adam = OptimizerConfig::adam(0.05);
    let mut straight = trainer(&text, adam.clone(), evaluation.clone());
    run_until_stopped(&mut straight, 5_000);
    assert!(straight.evaluations().stopped_early, "no early stop");
    let stop = straight.step_count();
    let best_step = straight.evaluations().best.as_ref().unwrap().at.step;
    assert!(best_step < stop);
    let final_bytes = straight.to_checkpoint().unwrap().to_bytes().unwrap();
    let kept_bytes = straight.kept_checkpoint(true).unwrap().to_bytes().unwrap();
    // interrupted mid-interval, at an evaluation, just after the best one, and after the stop
    for at in [3, 10, best_step + 1, stop - 1, stop] {
        let mut first = trainer(&text, adam.clone(), evaluation.clone());
        run_until_stopped(&mut first, at);
        let bytes = first.to_checkpoint().unwrap().to_bytes().unwrap();
        drop(first);
        let ckpt = Checkpoint::from_bytes(&bytes).unwrap();
        let mut resumed = Trainer::<f32>::from_checkpoint(&ckpt, &text).unwrap();
        assert_eq!(resumed.evaluations().config, evaluation);
        run_until_stopped(&mut resumed, 5_000);
        assert_eq!(
            resumed.step_count(),
            stop,
            "stop step after a resume at {at}"
        );
        assert_eq!(
            resumed.to_checkpoint().unwrap().to_bytes().unwrap(),
            final_bytes,
            "checkpoint after a resume at {at}"
        );
        assert_eq!(
            resumed.kept_checkpoint(true).unwrap().to_bytes().unwrap(),
            kept_bytes,
            "best model after a resume at {at}"
        );
    }
    // the training checkpoint records the validation loss of its weights and the best one
    let ckpt = Checkpoint::from_bytes(&final_bytes).unwrap();
    let last_val: f64 = ckpt.meta_parse("val_loss").unwrap();
    assert_eq!(
        Some(last_val),
        straight.evaluations().last.unwrap().val_loss
    );
    assert_eq!(ckpt.meta_parse::<u64>("best_step").unwrap(), best_step);
    assert_eq!(ckpt.meta("stopped_early").unwrap(), "true");
}

#[test]
fn a_checkpoint_from_before_the_schedule_resumes_with_the_default() {
    let text = sonnets(3_000);
    let mut tr = trainer(&text, OptimizerConfig::adam(0.01), EvalConfig::default());
    run_until_stopped(&mut tr, 5);
    let mut ckpt = tr.to_checkpoint().unwrap();
    ckpt.metadata.retain(|k, _| {
        ![
            "eval_config",
            "evaluations",
            "evals_since_best",
            "stopped_early",
        ]
        .contains(&k.as_str())
    });
    let resumed = Trainer::<f32>::from_checkpoint(&ckpt, &text).unwrap();
    assert_eq!(resumed.evaluations().config, EvalConfig::default());
    // a schedule is set before training, not in the middle of a run
    let mut running = resumed;
    assert!(running.set_evaluation(EvalConfig::default()).is_err());
    // bad schedules are refused by name
    let bad = |every, patience| {
        EvalConfig { every, patience }
            .validate()
            .unwrap_err()
            .to_string()
    };
    assert!(bad(Every::Steps(0), None).contains("evaluateEvery.steps"));
    assert!(bad(Every::Epochs(0), None).contains("evaluateEvery.epochs"));
    assert!(bad(Every::Epochs(1), Some(0)).contains("patience"));
}
