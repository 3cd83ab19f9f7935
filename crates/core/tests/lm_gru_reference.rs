//! The GRU character model against an independent numpy implementation of PyTorch's `nn.GRU`
//! equations (scripts/gru_reference.py, golden data in tests/data/gru_reference.json): the
//! loss and every parameter's gradient of a mini-batch with a non-zero initial state
//! (one-hot and embedding input, 2 and 3 layers, many-to-many and many-to-one), and the
//! logits of batch-1 generation, in float64 and float32.

use rnnlab_core::lm::{
    backward, forward, logits_for, Cell, CharLm, Float, LmConfig, Vocab, Workspace,
};
use serde_json::Value;

mod common;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn ints(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn reference() -> Value {
    serde_json::from_str(&common::test_data("gru_reference.json")).unwrap()
}

/// The case's model with its weights, and a workspace holding its batch and initial state.
fn setup<T: Float>(vocab: &str, case: &Value) -> (CharLm<T>, Workspace<T>) {
    let config = LmConfig {
        cell: Cell::Gru,
        hidden: ints(&case["hidden"]),
        embedding: case["embedding"].as_u64().map(|e| e as usize),
        dropout: 0.0,
    };
    let vocab = Vocab::from_chars(vocab.chars().collect()).unwrap();
    let mut model = CharLm::<T>::zeros(config, vocab).unwrap();
    let mut names: Vec<&str> = model.tensors().iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    let given: Vec<&str> = case["tensors"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, given, "tensor names");
    for (name, t) in case["tensors"].as_object().unwrap() {
        model
            .set_tensor(name, &ints(&t["shape"]), &floats(&t["data"]))
            .unwrap();
    }
    let (t_len, batch) = (
        case["t_len"].as_u64().unwrap() as usize,
        case["batch"].as_u64().unwrap() as usize,
    );
    let mut ws =
        Workspace::new(&model, t_len, batch, case["last_only"].as_bool().unwrap()).unwrap();
    let to_u32 = |v: &Value| ints(v).into_iter().map(|i| i as u32).collect::<Vec<_>>();
    ws.set_batch(
        &to_u32(&case["inputs"]),
        &to_u32(&case["targets"]),
        model.vocab().len(),
    )
    .unwrap();
    let state: Vec<(Vec<T>, Vec<T>)> = case["h0"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (floats(h).into_iter().map(T::from_f64).collect(), Vec::new()))
        .collect();
    ws.set_initial_state(&state).unwrap();
    (model, ws)
}

/// Largest |a − b| relative to the largest |b| (at least 1).
fn rel_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    common::max_abs_diff(a.iter().copied(), b.iter().copied()) / scale
}

fn check<T: Float>(tolerance: f64) {
    let reference = reference();
    let vocab = reference["vocab"].as_str().unwrap();
    for case in reference["cases"].as_array().unwrap() {
        let (model, mut ws) = setup::<T>(vocab, case);
        let loss = forward(&model, &mut ws, false, None);
        let want = case["loss"].as_f64().unwrap();
        let label = format!("{} seed {}", T::DTYPE, case["seed"]);
        assert!(
            (loss - want).abs() <= tolerance * want.abs(),
            "{label}: loss {loss} vs numpy {want}"
        );
        backward(&model, &mut ws);
        for info in model.tensors() {
            let got: Vec<f64> = ws.grads[info.offset..info.offset + info.len]
                .iter()
                .map(|v| v.to_f64())
                .collect();
            let want = floats(&case["grads"][&info.name]);
            let d = rel_diff(&got, &want);
            eprintln!("{label} d{}: {d:.1e}", info.name);
            assert!(d <= tolerance, "{label}: d{} differs by {d:e}", info.name);
            assert!(
                want.iter().any(|&v| v != 0.0),
                "{}: zero gradient",
                info.name
            );
        }
        let logits = logits_for(&model, case["text"].as_str().unwrap()).unwrap();
        let want: Vec<f64> = case["logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(floats)
            .collect();
        let got: Vec<f64> = logits.into_iter().flatten().collect();
        let d = rel_diff(&got, &want);
        eprintln!("{label} logits: {d:.1e}");
        assert!(d <= tolerance, "{label}: logits differ by {d:e}");
    }
}

#[test]
fn float64_matches_numpy() {
    check::<f64>(1e-12);
}

#[test]
fn float32_matches_numpy_within_rounding() {
    check::<f32>(2e-5);
}
