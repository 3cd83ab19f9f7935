//! Jazz checkpoints (kind "jazz"): a round trip is bit-identical, a resumed run equals an
//! unbroken one bit for bit, and wrong or damaged files give errors that say what is wrong.

use rnnlab_core::checkpoint::Checkpoint;
use rnnlab_core::dinos::{DinoConfig, DinoTrainer};
use rnnlab_core::jazz::{EpochStats, JazzTrainer};

mod common;
use common::toy_corpus;

fn trainer() -> JazzTrainer {
    let corpus = toy_corpus(8, 80, 6);
    JazzTrainer::new(&corpus, 8, 6, 7, 9, 3).unwrap()
}

fn bits(history: &[EpochStats]) -> Vec<(u64, u64)> {
    history
        .iter()
        .map(|s| (s.loss.to_bits(), s.accuracy.to_bits()))
        .collect()
}

fn roundtrip(t: &JazzTrainer) -> JazzTrainer {
    let bytes = t.to_checkpoint().unwrap().to_bytes().unwrap();
    JazzTrainer::from_checkpoint(&Checkpoint::from_bytes(&bytes).unwrap()).unwrap()
}

#[test]
fn round_trip_is_bit_identical() {
    // before the first update (no moments yet) and after some training
    let mut t = trainer();
    assert_eq!(roundtrip(&t), t);
    t.fit(5, || true).unwrap();
    let back = roundtrip(&t);
    assert_eq!(back, t);
    assert_eq!(
        back.to_checkpoint().unwrap().to_bytes().unwrap(),
        t.to_checkpoint().unwrap().to_bytes().unwrap()
    );
    assert_eq!(back.epochs_done(), 5);
    assert_eq!(back.optimizer().iterations, 5);
    assert_eq!(back.seed(), 3);
    assert_eq!(
        back.model().predict_and_sample(20, 1.0, 7).unwrap(),
        t.model().predict_and_sample(20, 1.0, 7).unwrap()
    );
}

#[test]
fn save_load_then_train_equals_training_straight() {
    let mut straight = trainer();
    let all = straight.fit(12, || true).unwrap().history;

    let mut first = trainer();
    let before = first.fit(5, || true).unwrap().history;
    let dir = std::env::temp_dir().join(format!("rnnlab-jazz-ck-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jazz.safetensors");
    first.to_checkpoint().unwrap().write_atomic(&path).unwrap();
    drop(first);
    let mut resumed = JazzTrainer::from_checkpoint(&Checkpoint::read(&path).unwrap()).unwrap();
    let after = resumed.fit(7, || true).unwrap().history;
    std::fs::remove_dir_all(&dir).ok();

    assert_eq!(bits(&all[..5]), bits(&before));
    assert_eq!(bits(&all[5..]), bits(&after));
    assert_eq!(resumed, straight);
    assert_eq!(resumed.epochs_done(), 12);
}

#[test]
fn wrong_kind_names_its_kind() {
    let dino = DinoTrainer::new(
        "\nab",
        vec![vec![1, 2, 0], vec![2, 1, 0]],
        DinoConfig::default(),
    )
    .unwrap();
    let ck = dino.to_checkpoint().unwrap();
    let err = JazzTrainer::from_checkpoint(&ck).unwrap_err().to_string();
    assert!(err.contains("expected \"jazz\", got \"dinos\""), "{err}");
    // and the other way round
    let err = DinoTrainer::from_checkpoint(&trainer().to_checkpoint().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("got \"jazz\""), "{err}");
}

#[test]
fn truncated_or_damaged_files_are_clear_errors() {
    let mut t = trainer();
    t.fit(2, || true).unwrap();
    let bytes = t.to_checkpoint().unwrap().to_bytes().unwrap();
    for cut in [0, 5, 100, bytes.len() / 2, bytes.len() - 1] {
        let err = Checkpoint::from_bytes(&bytes[..cut]).unwrap_err();
        assert_eq!(err.code(), "ERR_BAD_FILE");
        let msg = err.to_string();
        assert!(
            msg.contains("truncated")
                || msg.contains("not a safetensors")
                || msg.contains("corrupt"),
            "cut at {cut}: {msg}"
        );
    }

    // a tensor of the wrong shape is named
    let mut ck = t.to_checkpoint().unwrap();
    ck.put_f64("wy", &[2, 3], &[0.0; 6]).unwrap();
    let err = JazzTrainer::from_checkpoint(&ck).unwrap_err().to_string();
    assert!(err.contains("\"wy\"") && err.contains("shape"), "{err}");

    let mut ck = t.to_checkpoint().unwrap();
    ck.tensors.remove("optim.v.b");
    let err = JazzTrainer::from_checkpoint(&ck).unwrap_err().to_string();
    assert!(err.contains("optim.v.b"), "{err}");

    let mut ck = t.to_checkpoint().unwrap();
    ck.put_u32("windows.y", &[9, 7], &[99; 63]).unwrap();
    let err = JazzTrainer::from_checkpoint(&ck).unwrap_err().to_string();
    assert!(err.contains("windows.y"), "{err}");

    let mut ck = t.to_checkpoint().unwrap();
    ck.set_meta("n_a", "seven");
    let err = JazzTrainer::from_checkpoint(&ck).unwrap_err().to_string();
    assert!(err.contains("\"n_a\""), "{err}");
}
