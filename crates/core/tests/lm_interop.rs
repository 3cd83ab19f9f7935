//! PyTorch interop: weights stored as a PyTorch `state_dict` (nn.Embedding + nn.LSTM/nn.RNN +
//! nn.Linear, gates i, f, g, o) load into rnnlab and give the logits of PyTorch's documented
//! equations (numpy float64 reference from bench/lstm/torch_reference.py); and rnnlab's export
//! is that same state_dict, name for name, shape for shape, value for value. GRU models made by
//! torch.nn.GRU itself (bench/lstm/torch_gru_reference.py) give torch's logits, the cell read
//! from the shapes.

use rnnlab_core::checkpoint::Checkpoint;
use rnnlab_core::lm::{logits_for, Cell, CharLm};
use serde_json::Value;

mod common;

fn cases() -> Vec<Value> {
    cases_in("lm_torch_reference.json")
}

fn cases_in(file: &str) -> Vec<Value> {
    let raw = common::test_data(file);
    let v: Value = serde_json::from_str(&raw).unwrap();
    v["cases"].as_array().unwrap().clone()
}

/// The reference tensors as a bare safetensors file (no rnnlab metadata), as PyTorch's
/// `safetensors.torch.save_file(model.state_dict(), ...)` would write it (here in F64).
fn torch_file(case: &Value) -> Vec<u8> {
    let mut ckpt = Checkpoint::default();
    for (name, t) in case["tensors"].as_object().unwrap() {
        let shape: Vec<usize> = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let data: Vec<f64> = t["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_f64().unwrap())
            .collect();
        ckpt.put_f64(name, &shape, &data).unwrap();
    }
    ckpt.to_bytes().unwrap()
}

#[test]
fn pytorch_state_dict_gives_pytorch_logits() {
    for case in cases() {
        let parsed = Checkpoint::parse_safetensors(&torch_file(&case)).unwrap();
        let model =
            CharLm::<f64>::from_checkpoint(&parsed, Some(case["vocab"].as_str().unwrap())).unwrap();
        let got = logits_for(&model, case["text"].as_str().unwrap()).unwrap();
        let want = case["logits"].as_array().unwrap();
        assert_eq!(got.len(), want.len());
        let mut worst = 0.0f64;
        for (g, w) in got.iter().zip(want) {
            for (a, b) in g.iter().zip(w.as_array().unwrap()) {
                worst = worst.max((a - b.as_f64().unwrap()).abs());
            }
        }
        eprintln!(
            "{} {:?}: max |logit − PyTorch equations| = {worst:.1e}",
            case["cell"],
            model.config().hidden
        );
        assert!(worst < 1e-12, "{}: logits differ by {worst}", case["cell"]);
        // f32 model from the same file: within float32 rounding
        let m32 =
            CharLm::<f32>::from_checkpoint(&parsed, Some(case["vocab"].as_str().unwrap())).unwrap();
        let got32 = logits_for(&m32, case["text"].as_str().unwrap()).unwrap();
        let worst32 = common::max_abs_diff(
            got32.iter().flatten().copied(),
            got.iter().flatten().copied(),
        );
        assert!(worst32 < 1e-4, "f32 logits differ from f64 by {worst32}");
    }
}

#[test]
fn export_is_the_pytorch_state_dict() {
    for case in cases() {
        let parsed = Checkpoint::parse_safetensors(&torch_file(&case)).unwrap();
        let model =
            CharLm::<f64>::from_checkpoint(&parsed, Some(case["vocab"].as_str().unwrap())).unwrap();
        let exported =
            Checkpoint::parse_safetensors(&model.to_checkpoint().unwrap().to_bytes().unwrap())
                .unwrap();
        let want = case["tensors"].as_object().unwrap();
        let names: Vec<&String> = exported.tensors.keys().collect();
        let want_names: Vec<&String> = want.keys().collect();
        assert_eq!(names, want_names, "exported tensor names");
        for (name, t) in want {
            let (shape, data) = exported.get_f64(name).unwrap();
            let want_shape: Vec<usize> = t["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(shape, want_shape, "{name}");
            let want_data: Vec<f64> = t["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_f64().unwrap())
                .collect();
            assert_eq!(data, want_data, "{name}");
        }
        assert_eq!(
            exported.metadata.get("vocab").map(String::as_str),
            Some(
                serde_json::to_string(case["vocab"].as_str().unwrap())
                    .unwrap()
                    .as_str()
            )
        );
    }
}

#[test]
fn torch_gru_state_dict_gives_torch_logits() {
    for case in cases_in("gru_torch_reference.json") {
        let module = case["module"].as_str().unwrap();
        let vocab = case["vocab"].as_str().unwrap();
        let parsed = Checkpoint::parse_safetensors(&torch_file(&case)).unwrap();
        let model = CharLm::<f64>::from_checkpoint(&parsed, Some(vocab)).unwrap();
        assert_eq!(model.config().cell, Cell::Gru, "module {module}");
        let got = logits_for(&model, case["text"].as_str().unwrap()).unwrap();
        let want: Vec<f64> = case["logits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
            .collect();
        let worst = common::max_abs_diff(got.iter().flatten().copied(), want.iter().copied());
        eprintln!("torch.nn.GRU in module '{module}': max |logit − torch| = {worst:.1e}");
        assert!(worst < 1e-12, "{module}: logits differ by {worst}");
        // the export is torch's state_dict under rnnlab's module name `gru`
        let exported =
            Checkpoint::parse_safetensors(&model.to_checkpoint().unwrap().to_bytes().unwrap())
                .unwrap();
        for (name, t) in case["tensors"].as_object().unwrap() {
            let ours = name.replacen(&format!("{module}."), "gru.", 1);
            let (_, data) = exported.get_f64(&ours).unwrap();
            let want: Vec<f64> = t["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(data, want, "{ours}");
        }
    }
}

#[test]
fn a_cell_that_the_shapes_contradict_is_refused_by_name() {
    let case = &cases_in("gru_torch_reference.json")[0];
    let vocab = case["vocab"].as_str().unwrap();
    // a GRU's tensors stored under `lstm.`: 3·H rows are not an LSTM's
    let renamed: serde_json::Map<String, Value> = case["tensors"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.replacen("gru.", "lstm.", 1), v.clone()))
        .collect();
    let mut as_lstm = case.clone();
    as_lstm["tensors"] = Value::Object(renamed.clone());
    let err = CharLm::<f64>::from_checkpoint(
        &Checkpoint::parse_safetensors(&torch_file(&as_lstm)).unwrap(),
        Some(vocab),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("lstm.weight_hh_l0") && err.contains("gru's"),
        "{err}"
    );
    // both names at once: ambiguous
    let mut both = case.clone();
    let mut all = case["tensors"].as_object().unwrap().clone();
    all.extend(renamed);
    both["tensors"] = Value::Object(all);
    let err = CharLm::<f64>::from_checkpoint(
        &Checkpoint::parse_safetensors(&torch_file(&both)).unwrap(),
        Some(vocab),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("ambiguous") && err.contains("lstm, gru"),
        "{err}"
    );
}
