//! Saving and loading character models and training runs as safetensors (the shared
//! [`Checkpoint`] container, kind `"charlm"`).
//!
//! Weights are stored under PyTorch's names — `embedding.weight`, `lstm.weight_ih_l{k}`,
//! `lstm.weight_hh_l{k}`, `lstm.bias_ih_l{k}`, `lstm.bias_hh_l{k}` (gate order i, f, g, o; `gru.`
//! with gates r, z, n for the GRU, `rnn.` for the vanilla RNN), `output.weight`, `output.bias` —
//! so a file is a valid `state_dict` for `nn.Embedding` + `nn.LSTM`/`nn.GRU`/`nn.RNN`
//! (`batch_first=False`) + `nn.Linear` (load with `strict=False` to skip the training-state
//! tensors). Any safetensors file with those names (e.g. saved from PyTorch) loads back; the
//! vocabulary comes from the metadata key `vocab` or the caller. Without rnnlab's metadata the
//! cell is read from the shapes (W_hh has 4·H rows for an LSTM, 3·H for a GRU, H for an RNN),
//! so a module named `rnn` holding an `nn.GRU` or `nn.LSTM` loads too.
//!
//! A training checkpoint adds everything needed to resume bit for bit: Adam moments
//! (`optim.m.<name>`, `optim.v.<name>`), the step, the RNG state (`rng.key`, `rng.gauss`), the
//! epoch and batch cursor, the epoch's window order (`train.order`) or the carried hidden
//! state (`state.h_l{k}`, `state.c_l{k}`), a fingerprint of the text, and the evaluation
//! state of [`super::evaluation`]: the schedule (`eval_config`), the patience counter, the
//! last evaluation (`last_eval_*`), the best one (`best_*`) with its weights (`best.<name>`),
//! and `val_loss` when the checkpoint's weights are the last evaluation's.

use std::path::Path;

use super::corpus::Tokens;
use super::evaluation::Evaluations;
use super::model::{Cell, CharLm, LmConfig};
use super::trainer::{TrainConfig, Trainer};
use super::vocab::Vocab;
use crate::checkpoint::{Checkpoint, Dtype};
use crate::error::{CoreError, Result};
use crate::math::Float;
use crate::nn::optim::Optimizer;
use crate::random::{RandomState, RandomStateSnapshot, MT_N};

/// The checkpoint kind of character models.
pub const KIND: &str = "charlm";

pub(super) fn put<T: Float>(
    ckpt: &mut Checkpoint,
    name: &str,
    shape: &[usize],
    data: &[T],
) -> Result<()> {
    if T::DTYPE == "float32" {
        let v: Vec<f32> = data.iter().map(|x| x.to_f64() as f32).collect();
        ckpt.put_f32(name, shape, &v)
    } else {
        let v: Vec<f64> = data.iter().map(|x| x.to_f64()).collect();
        ckpt.put_f64(name, shape, &v)
    }
}

/// A float tensor of either stored precision, widened to f64.
fn get_f64(ckpt: &Checkpoint, name: &str) -> Result<(Vec<usize>, Vec<f64>)> {
    let t = ckpt
        .tensors
        .get(name)
        .ok_or_else(|| CoreError::BadFile(format!("checkpoint: missing tensor \"{name}\"")))?;
    match t.dtype {
        Dtype::F32 => ckpt
            .get_f32(name)
            .map(|(s, v)| (s, v.into_iter().map(f64::from).collect())),
        Dtype::F64 => ckpt.get_f64(name),
        other => Err(CoreError::BadFile(format!(
            "checkpoint tensor \"{name}\": expected dtype F32 or F64, got {}",
            other.name()
        ))),
    }
}

pub(super) fn get_into<T: Float>(ckpt: &Checkpoint, name: &str, len: usize) -> Result<Vec<T>> {
    let (shape, v) = get_f64(ckpt, name)?;
    if v.len() != len {
        return Err(CoreError::BadFile(format!(
            "checkpoint tensor \"{name}\": expected {len} values, got {} (shape {shape:?})",
            v.len()
        )));
    }
    Ok(v.into_iter().map(T::from_f64).collect())
}

fn json<S: serde::Serialize>(v: &S) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn parse_json<S: serde::de::DeserializeOwned>(ckpt: &Checkpoint, key: &str) -> Result<S> {
    let raw = ckpt.meta(key)?;
    serde_json::from_str(raw)
        .map_err(|e| CoreError::BadFile(format!("checkpoint metadata \"{key}\": {e}")))
}

impl<T: Float> CharLm<T> {
    /// The model as a checkpoint: weights (in `T`'s precision) plus architecture and vocabulary.
    pub fn to_checkpoint(&self) -> Result<Checkpoint> {
        let mut ckpt = Checkpoint::new(KIND);
        ckpt.set_meta("dtype", T::DTYPE);
        ckpt.set_meta("config", &json(&self.config));
        ckpt.set_meta("vocab", &json(&self.vocab.as_string()));
        for info in &self.tensors {
            put(
                &mut ckpt,
                &info.name,
                &info.shape,
                &self.params[info.offset..info.offset + info.len],
            )?;
        }
        Ok(ckpt)
    }

    /// A model from a checkpoint written by [`Self::to_checkpoint`] or from any safetensors
    /// file holding PyTorch-named weights (architecture inferred from the shapes). `vocab`
    /// overrides/supplies the vocabulary (its characters in index order).
    pub fn from_checkpoint(ckpt: &Checkpoint, vocab: Option<&str>) -> Result<Self> {
        // rnnlab's own files name their kind: a name or jazz model is refused as such (a plain
        // PyTorch safetensors file has no kind and is read by its tensor names)
        if ckpt.kind().is_some() {
            ckpt.expect_kind(KIND)?;
        }
        let vocab_str: String = match vocab {
            Some(v) => v.to_string(),
            None => parse_json(ckpt, "vocab").map_err(|_| {
                CoreError::BadFile(
                    "checkpoint: no \"vocab\" metadata; pass the vocabulary explicitly".into(),
                )
            })?,
        };
        let vocab = Vocab::from_chars(vocab_str.chars().collect())?;
        let (config, prefix): (LmConfig, &str) = match ckpt.metadata.get("config") {
            Some(_) => {
                let config: LmConfig = parse_json(ckpt, "config")?;
                let prefix = config.cell.name();
                (config, prefix)
            }
            None => infer_config(ckpt)?,
        };
        let own_prefix = format!("{}.", config.cell.name());
        let mut model = CharLm::<T>::zeros(config, vocab)?;
        for t in 0..model.tensors.len() {
            let mut info = model.tensors[t].clone();
            // the file's module name for the recurrent tensors (e.g. `rnn.` holding a GRU)
            if let Some(rest) = info.name.strip_prefix(&own_prefix) {
                info.name = format!("{prefix}.{rest}");
            }
            let (shape, values) = get_f64(ckpt, &info.name)?;
            if shape != info.shape {
                return Err(CoreError::BadFile(format!(
                    "checkpoint tensor \"{}\": expected shape {:?}, got {shape:?}",
                    info.name, info.shape
                )));
            }
            if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(CoreError::NonFinite {
                    name: info.name.clone(),
                    index,
                    value,
                });
            }
            for (dst, v) in model.params[info.offset..info.offset + info.len]
                .iter_mut()
                .zip(values)
            {
                *dst = T::from_f64(v);
            }
        }
        Ok(model)
    }

    /// Writes the model atomically to `path` (safetensors).
    pub fn save(&self, path: &str) -> Result<()> {
        self.to_checkpoint()?.write_atomic(path)
    }

    /// Reads a model from a safetensors file (rnnlab's or PyTorch-named weights).
    pub fn load(path: &str, vocab: Option<&str>) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| CoreError::BadFile(format!("{path}: {e}")))?;
        let ckpt = Checkpoint::parse_safetensors(&bytes)
            .map_err(|e| CoreError::BadFile(format!("{path}: {e}")))?;
        Self::from_checkpoint(&ckpt, vocab).map_err(|e| match e {
            CoreError::BadFile(m) => CoreError::BadFile(format!("{path}: {m}")),
            other => other,
        })
    }
}

/// The architecture of PyTorch-named weights without rnnlab metadata, and the module name
/// (`lstm`, `gru` or `rnn`) their recurrent tensors are stored under. The cell comes from the
/// rows of `weight_hh_l0` (4·H: LSTM, 3·H: GRU, H: RNN); a module named `lstm` or `gru` must
/// hold that cell.
fn infer_config(ckpt: &Checkpoint) -> Result<(LmConfig, &'static str)> {
    let prefixes: Vec<&'static str> = Cell::ALL
        .iter()
        .map(|c| c.name())
        .filter(|p| ckpt.tensors.contains_key(&format!("{p}.weight_hh_l0")))
        .collect();
    let prefix = match prefixes[..] {
        [p] => p,
        [] => {
            return Err(CoreError::BadFile(
                "checkpoint: no \"lstm.weight_hh_l0\", \"gru.weight_hh_l0\" or \"rnn.weight_hh_l0\" tensor: not a character model".into(),
            ))
        }
        _ => {
            return Err(CoreError::BadFile(format!(
                "checkpoint: recurrent tensors under several names ({}): ambiguous, keep one",
                prefixes.join(", ")
            )))
        }
    };
    let w0 = &ckpt.tensors[&format!("{prefix}.weight_hh_l0")].shape;
    let by_rows = match w0[..] {
        [rows, h] if h > 0 && rows == 4 * h => Some(Cell::Lstm),
        [rows, h] if h > 0 && rows == 3 * h => Some(Cell::Gru),
        [rows, h] if h > 0 && rows == h => Some(Cell::Rnn),
        _ => None,
    };
    let cell = match by_rows {
        Some(c) if prefix == "rnn" || c.name() == prefix => c,
        Some(c) => {
            return Err(CoreError::BadFile(format!(
                "checkpoint tensor \"{prefix}.weight_hh_l0\": shape {w0:?} is a {}'s ({}·H rows), not a {prefix}'s",
                c.name(),
                c.gates()
            )))
        }
        None => {
            return Err(CoreError::BadFile(format!(
                "checkpoint tensor \"{prefix}.weight_hh_l0\": expected shape [4·H, H] (lstm), [3·H, H] (gru) or [H, H] (rnn), got {w0:?}"
            )))
        }
    };
    let mut hidden = Vec::new();
    while let Some(t) = ckpt
        .tensors
        .get(&format!("{prefix}.weight_hh_l{}", hidden.len()))
    {
        if t.shape.len() != 2 || t.shape[0] != cell.gates() * t.shape[1] {
            return Err(CoreError::BadFile(format!(
                "checkpoint tensor \"{prefix}.weight_hh_l{}\": expected shape [{}·H, H] ({}), got {:?}",
                hidden.len(),
                cell.gates(),
                cell.name(),
                t.shape
            )));
        }
        hidden.push(t.shape[1]);
    }
    let embedding = ckpt
        .tensors
        .get("embedding.weight")
        .map(|t| t.shape.get(1).copied().unwrap_or(0));
    let dropout = ckpt
        .metadata
        .get("dropout")
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    Ok((
        LmConfig {
            cell,
            hidden,
            embedding,
            dropout,
        },
        prefix,
    ))
}

/// FNV-1a over the encoded text: resuming on another text is refused.
fn fingerprint(a: &Tokens, b: &Tokens) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    // over the indices as little-endian u32, whatever their storage (stable across versions)
    for x in (0..a.len())
        .map(|i| a.at(i))
        .chain((0..b.len()).map(|i| b.at(i)))
    {
        for byte in x.to_le_bytes() {
            h ^= byte as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{:016x}:{}", h, a.len() + b.len())
}

impl<T: Float> Trainer<T> {
    /// Everything needed to resume exactly: the model checkpoint plus optimizer, RNG, cursor
    /// and (mid-epoch) the window order or the carried hidden state.
    pub fn to_checkpoint(&self) -> Result<Checkpoint> {
        let mut ckpt = self.model.to_checkpoint()?;
        ckpt.set_meta("train_config", &json(&self.config));
        ckpt.set_meta("step", &self.opt.iterations.to_string());
        ckpt.set_meta("epoch", &self.epoch.to_string());
        ckpt.set_meta("batch_in_epoch", &self.batch_in_epoch.to_string());
        ckpt.set_meta("chars", &self.chars.to_string());
        // Rust prints an f64 with the fewest digits that parse back to the same bits
        ckpt.set_meta("epoch_loss_sum", &self.epoch_loss_sum.to_string());
        ckpt.set_meta("text", &fingerprint(&self.train, &self.val));
        // the validation loss of these weights, when they are the last evaluation's
        if let Some(v) = self
            .evals
            .last
            .filter(|e| e.step == self.opt.iterations)
            .and_then(|e| e.val_loss)
        {
            ckpt.set_meta("val_loss", &v.to_string());
        }
        self.evals.write(&mut ckpt)?;
        for info in &self.model.tensors {
            if !self.opt.m.is_empty() {
                put(
                    &mut ckpt,
                    &format!("optim.m.{}", info.name),
                    &info.shape,
                    &self.opt.m[info.offset..info.offset + info.len],
                )?;
                put(
                    &mut ckpt,
                    &format!("optim.v.{}", info.name),
                    &info.shape,
                    &self.opt.v[info.offset..info.offset + info.len],
                )?;
            }
        }
        let snap = self.rng.snapshot();
        ckpt.put_u32("rng.key", &[MT_N], &snap.key)?;
        ckpt.put_f64("rng.gauss", &[1], &[snap.gauss])?;
        ckpt.set_meta("rng.pos", &snap.pos.to_string());
        ckpt.set_meta("rng.has_gauss", &snap.has_gauss.to_string());
        if self.batch_in_epoch > 0 {
            if self.config.mode.last_only() {
                ckpt.put_u32("train.order", &[self.order.len()], &self.order)?;
            } else {
                for (k, (h0, c0)) in self.ws.initial_state().iter().enumerate() {
                    put(&mut ckpt, &format!("state.h_l{k}"), &[h0.len()], h0)?;
                    if !c0.is_empty() {
                        put(&mut ckpt, &format!("state.c_l{k}"), &[c0.len()], c0)?;
                    }
                }
            }
        }
        Ok(ckpt)
    }

    /// The model to keep ([`Self::kept`]: the best on validation when `best`) as a model file
    /// whose metadata says where it comes from: `step`, `epoch`, `batch_in_epoch`, its
    /// `val_loss` (when there is validation data) and `kept` (`"best"` or `"last"`).
    pub fn kept_checkpoint(&self, best: bool) -> Result<Checkpoint> {
        let (model, mut at) = self.kept(best);
        if at.val_loss.is_none() {
            // the current weights were not evaluated: measure them now
            at.val_loss = self.validate()?;
        }
        let mut ckpt = model.to_checkpoint()?;
        at.write(&mut ckpt, "");
        let which = if best && self.evals.best.is_some() {
            "best"
        } else {
            "last"
        };
        ckpt.set_meta("kept", which);
        Ok(ckpt)
    }

    /// Resumes a run from [`Self::to_checkpoint`] on the same `text`; training then continues
    /// exactly as if it had never stopped.
    pub fn from_checkpoint(ckpt: &Checkpoint, text: &str) -> Result<Self> {
        Self::resume_with(ckpt, |model, config| Trainer::new(model, text, config))
    }

    /// [`Self::from_checkpoint`] on the same text read (streamed) from the file at `path`.
    pub fn from_checkpoint_file(ckpt: &Checkpoint, path: &Path) -> Result<Self> {
        Self::resume_with(ckpt, |model, config| {
            Trainer::from_file(model, path, config)
        })
    }

    fn resume_with(
        ckpt: &Checkpoint,
        start: impl FnOnce(CharLm<T>, TrainConfig) -> Result<Self>,
    ) -> Result<Self> {
        ckpt.expect_kind(KIND)?;
        let config: TrainConfig = parse_json(ckpt, "train_config")?;
        let model = CharLm::<T>::from_checkpoint(ckpt, None)?;
        let dtype = ckpt.meta("dtype")?;
        if dtype != T::DTYPE {
            return Err(CoreError::BadFile(format!(
                "checkpoint dtype: expected {}, got {dtype}",
                T::DTYPE
            )));
        }
        let n = model.params.len();
        let mut tr = start(model, config.clone())?;
        if fingerprint(&tr.train, &tr.val) != ckpt.meta("text")? {
            return Err(CoreError::invalid(
                "text: differs from the text this checkpoint was trained on (cannot resume exactly)",
            ));
        }
        let mut opt = Optimizer::<T>::new(config.optimizer.clone(), n)?;
        opt.iterations = ckpt.meta_parse("step")?;
        if !opt.m.is_empty() {
            for info in &tr.model.tensors {
                let m = get_into::<T>(ckpt, &format!("optim.m.{}", info.name), info.len)?;
                let v = get_into::<T>(ckpt, &format!("optim.v.{}", info.name), info.len)?;
                opt.m[info.offset..info.offset + info.len].copy_from_slice(&m);
                opt.v[info.offset..info.offset + info.len].copy_from_slice(&v);
            }
        }
        tr.opt = opt;
        let (_, key) = ckpt.get_u32("rng.key")?;
        let (_, gauss) = ckpt.get_f64("rng.gauss")?;
        tr.rng = RandomState::from_snapshot(&RandomStateSnapshot {
            key,
            pos: ckpt.meta_parse("rng.pos")?,
            has_gauss: ckpt.meta_parse("rng.has_gauss")?,
            gauss: gauss.first().copied().unwrap_or(0.0),
        })?;
        tr.evals = Evaluations::read(ckpt, &tr.model)?;
        tr.epoch = ckpt.meta_parse("epoch")?;
        tr.batch_in_epoch = ckpt.meta_parse("batch_in_epoch")?;
        tr.chars = ckpt.meta_parse("chars")?;
        // older checkpoints lack it: the epoch's mean then counts the batches before the
        // resume as 0 (only the reported loss, never the weights, depends on it)
        if ckpt.meta("epoch_loss_sum").is_ok() {
            tr.epoch_loss_sum = ckpt.meta_parse("epoch_loss_sum")?;
        }
        if tr.batch_in_epoch >= tr.batches_per_epoch() {
            return Err(CoreError::BadFile(format!(
                "checkpoint batch_in_epoch: expected < {}, got {}",
                tr.batches_per_epoch(),
                tr.batch_in_epoch
            )));
        }
        if tr.batch_in_epoch > 0 {
            if config.mode.last_only() {
                let (_, order) = ckpt.get_u32("train.order")?;
                let max = tr.train.len() as u32;
                if order.len() < tr.batches_per_epoch() as usize * config.batch_size
                    || order.iter().any(|&s| s >= max)
                {
                    return Err(CoreError::BadFile(
                        "checkpoint tensor \"train.order\": does not fit the text".into(),
                    ));
                }
                tr.order = order;
            } else {
                let state = tr.ws.initial_state();
                let mut restored = Vec::with_capacity(state.len());
                for (k, (h0, c0)) in state.iter().enumerate() {
                    let h = get_into::<T>(ckpt, &format!("state.h_l{k}"), h0.len())?;
                    let c = if c0.is_empty() {
                        Vec::new()
                    } else {
                        get_into::<T>(ckpt, &format!("state.c_l{k}"), c0.len())?
                    };
                    restored.push((h, c));
                }
                tr.ws.set_initial_state(&restored)?;
            }
        }
        Ok(tr)
    }
}
