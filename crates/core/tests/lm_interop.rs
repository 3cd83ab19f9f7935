//! PyTorch interop: weights stored as a PyTorch `state_dict` (nn.Embedding + nn.LSTM/nn.RNN +
//! nn.Linear, gates i, f, g, o) load into rnnlab and give the logits of PyTorch's documented
//! equations (numpy float64 reference from bench/lstm/torch_reference.py); and rnnlab's export
//! is that same state_dict, name for name, shape for shape, value for value.

use rnnlab_core::checkpoint::Checkpoint;
use rnnlab_core::lm::{logits_for, CharLm};
use serde_json::Value;

mod common;

fn cases() -> Vec<Value> {
    let raw = common::test_data("lm_torch_reference.json");
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
