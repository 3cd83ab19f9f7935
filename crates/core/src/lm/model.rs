//! The character language model: its configuration and its parameters, stored as one flat
//! buffer of named tensors in PyTorch's layout (`lstm.weight_ih_l{k}` …) so that optimizers,
//! clipping, checkpoints and export all work on the same slices.

use serde::{Deserialize, Serialize};

use super::vocab::Vocab;
use crate::error::{CoreError, Result};
use crate::math::Float;
use crate::random::RandomState;

pub use crate::nn::cells::Cell;

/// Architecture of a [`CharLm`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LmConfig {
    /// LSTM or RNN.
    pub cell: Cell,
    /// Hidden size of each stacked layer (bottom first).
    pub hidden: Vec<usize>,
    /// Embedding width, or `None` for one-hot input (a column pick, no matrix product).
    pub embedding: Option<usize>,
    /// Inverted-dropout probability applied to every layer's output during training
    /// (as in the course's Keras model: after each LSTM, before the next layer and the Dense).
    pub dropout: f64,
}

impl LmConfig {
    /// Checks sizes and the dropout probability.
    pub fn validate(&self) -> Result<()> {
        if self.hidden.is_empty() {
            return Err(CoreError::invalid(
                "hidden: expected at least one layer, got 0",
            ));
        }
        if let Some((k, _)) = self
            .hidden
            .iter()
            .enumerate()
            .find(|(_, &h)| h == 0 || h > 65_536)
        {
            return Err(CoreError::invalid(format!(
                "hidden[{k}]: expected 1..=65536, got {}",
                self.hidden[k]
            )));
        }
        if let Some(e) = self.embedding {
            if e == 0 || e > 65_536 {
                return Err(CoreError::invalid(format!(
                    "embedding: expected 1..=65536, got {e}"
                )));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(CoreError::invalid(format!(
                "dropout: expected 0 <= p < 1, got {}",
                self.dropout
            )));
        }
        Ok(())
    }
}

/// Where one named tensor lives in the flat parameter buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// PyTorch-style name, e.g. `lstm.weight_hh_l1`.
    pub name: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// First element in the flat buffer.
    pub offset: usize,
    /// Number of elements.
    pub len: usize,
}

/// Tensor indices of one recurrent layer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LayerSlots {
    /// Input width I (vocabulary, embedding width or the hidden size below).
    pub input: usize,
    /// Hidden width H.
    pub hidden: usize,
    /// `weight_ih_l{k}`: (G·H, I).
    pub w_ih: usize,
    /// `weight_hh_l{k}`: (G·H, H).
    pub w_hh: usize,
    /// `bias_ih_l{k}`: (G·H).
    pub b_ih: usize,
    /// `bias_hh_l{k}`: (G·H).
    pub b_hh: usize,
}

/// A stacked LSTM/RNN character model with a dense softmax head.
#[derive(Clone, Debug)]
pub struct CharLm<T: Float> {
    pub(crate) config: LmConfig,
    pub(crate) vocab: Vocab,
    pub(crate) params: Vec<T>,
    pub(crate) tensors: Vec<TensorInfo>,
    pub(crate) layers: Vec<LayerSlots>,
    /// `embedding.weight`: (V, D).
    pub(crate) emb: Option<usize>,
    /// `output.weight`: (V, H_last).
    pub(crate) out_w: usize,
    /// `output.bias`: (V).
    pub(crate) out_b: usize,
}

impl<T: Float> CharLm<T> {
    /// A freshly initialised model. Initialisation (seeded, numpy `RandomState`): recurrent
    /// weights and biases U(−1/√H, 1/√H) and the output layer U(−1/√H_last, 1/√H_last) as in
    /// PyTorch; the embedding N(0, 1) as `nn.Embedding`.
    pub fn new(config: LmConfig, vocab: Vocab, seed: u32) -> Result<Self> {
        let mut model = Self::zeros(config, vocab)?;
        let mut rng = RandomState::new(seed);
        for t in 0..model.tensors.len() {
            let info = model.tensors[t].clone();
            let slice = &mut model.params[info.offset..info.offset + info.len];
            if info.name == "embedding.weight" {
                for v in slice.iter_mut() {
                    *v = T::from_f64(rng.standard_normal());
                }
            } else {
                // fan = the hidden size of the layer this tensor belongs to / feeds from
                let fan = if info.name.starts_with("output.") {
                    *model.config.hidden.last().unwrap_or(&1)
                } else {
                    let k: usize = info
                        .name
                        .rsplit("_l")
                        .next()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    model.config.hidden[k]
                };
                let bound = 1.0 / (fan as f64).sqrt();
                for v in slice.iter_mut() {
                    *v = T::from_f64((2.0 * rng.random_sample() - 1.0) * bound);
                }
            }
        }
        Ok(model)
    }

    /// A model with every parameter zero (to be filled from a checkpoint).
    pub fn zeros(config: LmConfig, vocab: Vocab) -> Result<Self> {
        config.validate()?;
        let v = vocab.len();
        let g = config.cell.gates();
        let mut tensors: Vec<TensorInfo> = Vec::new();
        let mut offset = 0usize;
        let mut add = |name: String, shape: Vec<usize>| -> usize {
            let len = shape.iter().product();
            tensors.push(TensorInfo {
                name,
                shape,
                offset,
                len,
            });
            offset += len;
            tensors.len() - 1
        };
        let emb = config
            .embedding
            .map(|d| add("embedding.weight".into(), vec![v, d]));
        let mut layers = Vec::new();
        let mut input = config.embedding.unwrap_or(v);
        let prefix = config.cell.name();
        for (k, &h) in config.hidden.iter().enumerate() {
            let w_ih = add(format!("{prefix}.weight_ih_l{k}"), vec![g * h, input]);
            let w_hh = add(format!("{prefix}.weight_hh_l{k}"), vec![g * h, h]);
            let b_ih = add(format!("{prefix}.bias_ih_l{k}"), vec![g * h]);
            let b_hh = add(format!("{prefix}.bias_hh_l{k}"), vec![g * h]);
            layers.push(LayerSlots {
                input,
                hidden: h,
                w_ih,
                w_hh,
                b_ih,
                b_hh,
            });
            input = h;
        }
        let out_w = add("output.weight".into(), vec![v, input]);
        let out_b = add("output.bias".into(), vec![v]);
        Ok(CharLm {
            config,
            vocab,
            params: vec![T::ZERO; offset],
            tensors,
            layers,
            emb,
            out_w,
            out_b,
        })
    }

    /// The architecture.
    pub fn config(&self) -> &LmConfig {
        &self.config
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// All parameters, flat (see [`Self::tensors`] for the layout).
    pub fn params(&self) -> &[T] {
        &self.params
    }

    /// All parameters, flat and mutable.
    pub fn params_mut(&mut self) -> &mut [T] {
        &mut self.params
    }

    /// The named tensors in the flat buffer, in a fixed order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Total number of parameters.
    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// One tensor by name.
    pub fn tensor(&self, name: &str) -> Option<&[T]> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .map(|t| &self.params[t.offset..t.offset + t.len])
    }

    /// Replaces one tensor by name, checking its shape and values.
    pub fn set_tensor(&mut self, name: &str, shape: &[usize], values: &[f64]) -> Result<()> {
        let info = self
            .tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| {
                CoreError::invalid(format!("tensor '{name}': not a parameter of this model"))
            })?
            .clone();
        if info.shape != shape || values.len() != info.len {
            return Err(CoreError::ShapeMismatch {
                name: name.to_string(),
                expected: format!("{:?}", info.shape),
                actual: format!("{:?} ({} values)", shape, values.len()),
            });
        }
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(CoreError::NonFinite {
                name: name.to_string(),
                index,
                value,
            });
        }
        for (dst, &v) in self.params[info.offset..info.offset + info.len]
            .iter_mut()
            .zip(values)
        {
            *dst = T::from_f64(v);
        }
        Ok(())
    }

    /// Slice of one tensor by index.
    pub(crate) fn slot(&self, t: usize) -> &[T] {
        let info = &self.tensors[t];
        &self.params[info.offset..info.offset + info.len]
    }

    /// The same model in another float type (f32 ↔ f64).
    pub fn cast<U: Float>(&self) -> CharLm<U> {
        CharLm {
            config: self.config.clone(),
            vocab: self.vocab.clone(),
            params: self
                .params
                .iter()
                .map(|v| U::from_f64(v.to_f64()))
                .collect(),
            tensors: self.tensors.clone(),
            layers: self.layers.clone(),
            emb: self.emb,
            out_w: self.out_w,
            out_b: self.out_b,
        }
    }
}
