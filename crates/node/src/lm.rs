//! `CharLanguageModel` for JS: the stacked LSTM/GRU/RNN character model of the core. Training runs
//! off the JS thread in chunks (`train(maxBatches, maxSeconds)` is an `AsyncTask` with a
//! cancel flag); the TypeScript layer loops over chunks, reports progress, honours an
//! `AbortSignal` and writes checkpoints.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use rnnlab_core::checkpoint::Checkpoint;
use rnnlab_core::lm::{
    beam_generate, generate, logits_for, vocab_of_file, Cell, CharLm, Clip, LmConfig, Mode,
    OptimizerConfig, OptimizerKind, Progress, SampleOptions, TrainConfig, Trainer, Vocab,
};
use rnnlab_core::CoreError;

use crate::errors::{core_err, invalid_arg, Result};
use crate::task::{detached, ChunkTask, Job, Shared};

/// Architecture of a new model.
#[napi(object)]
pub struct LmModelOptions {
    /// "lstm", "gru" or "rnn".
    pub cell: String,
    /// Hidden size of each layer, bottom first.
    pub hidden: Vec<u32>,
    /// Embedding width; absent or 0 for one-hot input.
    pub embedding: Option<u32>,
    /// Dropout probability after every recurrent layer during training.
    pub dropout: f64,
    /// "float32" (default) or "float64".
    pub dtype: Option<String>,
    /// The vocabulary: its characters in index order (e.g. the sorted unique characters of the text).
    pub vocab: String,
    /// Seed of the initial weights.
    pub seed: u32,
}

/// Training options (validated again by the core).
#[napi(object)]
pub struct LmTrainOptions {
    /// "tbptt" (many-to-many, state carried) or "windows" (many-to-one, the course's model).
    pub mode: String,
    /// Steps per sequence (window length in "windows" mode).
    pub seq_length: u32,
    /// Window stride ("windows" mode).
    pub stride: u32,
    pub batch_size: u32,
    /// "adam" or "sgd".
    pub optimizer: String,
    pub lr: f64,
    /// Keras-style decay: rate lr/(1 + decay·step).
    pub decay: f64,
    pub clip_value: Option<f64>,
    pub clip_norm: Option<f64>,
    /// Fraction of the text (its end) held out.
    pub validation: f64,
    /// Seed of shuffling and dropout.
    pub seed: u32,
}

/// What `generate` samples. Integers arrive as numbers and are checked in the binding.
#[napi(object)]
pub struct LmGenerateOptions {
    /// The text to complete (every character must be in the vocabulary).
    pub prompt: String,
    /// Characters to sample.
    pub length: f64,
    /// 0 = greedy.
    pub temperature: f64,
    /// Sample among the `topK` most likely characters (0 = all).
    pub top_k: f64,
    pub seed: f64,
}

/// What `beamSearch` looks for. Integers arrive as numbers and are checked in the binding.
#[napi(object)]
pub struct LmBeamOptions {
    /// The text to complete (every character must be in the vocabulary).
    pub prompt: String,
    /// Characters of each continuation.
    pub length: f64,
    /// Continuations kept and returned (1..=10000).
    pub beam_width: f64,
}

/// One continuation found by `beamSearch`.
#[napi(object)]
pub struct LmBeamResult {
    /// The characters after the prompt.
    pub text: String,
    /// Natural-log probability of `text` after the prompt (temperature 1).
    pub log_prob: f64,
}

/// One training chunk's report.
#[napi(object)]
pub struct LmProgress {
    pub step: f64,
    pub epoch: f64,
    pub batch_in_epoch: f64,
    pub batches_per_epoch: f64,
    /// Mean training loss of the chunk (nats/char; NaN if no batch ran).
    pub loss: f64,
    /// At an epoch end: the mean training loss over all of the epoch's batches.
    pub epoch_loss: Option<f64>,
    pub batches: f64,
    /// Input characters processed so far.
    pub chars: f64,
    pub epoch_end: bool,
    /// Validation loss at an epoch end (nats/char).
    pub val_loss: Option<f64>,
    pub cancelled: bool,
}

/// Description of a model.
#[napi(object)]
pub struct LmInfo {
    pub cell: String,
    pub hidden: Vec<u32>,
    pub embedding: Option<u32>,
    pub dropout: f64,
    pub dtype: String,
    pub vocab: String,
    pub num_params: f64,
}

enum AnyModel {
    F32(CharLm<f32>),
    F64(CharLm<f64>),
}

enum AnyTrainer {
    F32(Trainer<f32>),
    F64(Trainer<f64>),
}

pub struct Inner {
    /// The model when no training is in progress (else it lives in `trainer`).
    model: Option<AnyModel>,
    trainer: Option<AnyTrainer>,
}

macro_rules! with_model {
    ($inner:expr, $m:ident => $body:expr) => {
        match (&$inner.trainer, &$inner.model) {
            (Some(AnyTrainer::F32(t)), _) => {
                let $m = t.model();
                $body
            }
            (Some(AnyTrainer::F64(t)), _) => {
                let $m = t.model();
                $body
            }
            (None, Some(AnyModel::F32($m))) => $body,
            (None, Some(AnyModel::F64($m))) => $body,
            (None, None) => unreachable!("a model always exists"),
        }
    };
}

fn read_checkpoint(path: &str) -> Result<Checkpoint> {
    let bytes =
        std::fs::read(path).map_err(|e| core_err(CoreError::BadFile(format!("{path}: {e}"))))?;
    Checkpoint::parse_safetensors(&bytes)
        .map_err(|e| core_err(CoreError::BadFile(format!("{path}: {e}"))))
}

/// The character language model (native part of `CharLanguageModel`).
#[napi(js_name = "NativeCharLm")]
pub struct NativeCharLm {
    inner: Shared<Inner>,
}

impl NativeCharLm {
    fn wrap(model: Option<AnyModel>, trainer: Option<AnyTrainer>) -> Self {
        NativeCharLm {
            inner: Shared::new(
                Inner { model, trainer },
                "CharLanguageModel: busy (a training chunk is running); await it first",
            ),
        }
    }
}

#[napi]
impl NativeCharLm {
    /// A freshly initialised model.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: LmModelOptions) -> Result<Self> {
        let config = LmConfig {
            cell: Cell::parse(&options.cell).map_err(core_err)?,
            hidden: options.hidden.iter().map(|&h| h as usize).collect(),
            embedding: options.embedding.filter(|&e| e > 0).map(|e| e as usize),
            dropout: options.dropout,
        };
        let vocab = Vocab::from_chars(options.vocab.chars().collect()).map_err(core_err)?;
        let model = match options.dtype.as_deref().unwrap_or("float32") {
            "float32" => AnyModel::F32(CharLm::new(config, vocab, options.seed).map_err(core_err)?),
            "float64" => AnyModel::F64(CharLm::new(config, vocab, options.seed).map_err(core_err)?),
            other => {
                return Err(invalid_arg(format!(
                    "dtype: expected 'float32' or 'float64', got '{other}'"
                )))
            }
        };
        Ok(Self::wrap(Some(model), None))
    }

    /// Loads a model from a safetensors file (rnnlab's, or PyTorch-named weights with `vocab`).
    /// `dtype` defaults to the file's own precision.
    #[napi(factory, catch_unwind)]
    pub fn load(path: String, vocab: Option<String>, dtype: Option<String>) -> Result<Self> {
        let ckpt = read_checkpoint(&path)?;
        let stored = ckpt.metadata.get("dtype").cloned();
        let dtype = dtype.or(stored).unwrap_or_else(|| "float32".into());
        let with_path = |e: CoreError| match e {
            CoreError::BadFile(m) => core_err(CoreError::BadFile(format!("{path}: {m}"))),
            other => core_err(other),
        };
        let model = match dtype.as_str() {
            "float32" => {
                AnyModel::F32(CharLm::from_checkpoint(&ckpt, vocab.as_deref()).map_err(with_path)?)
            }
            "float64" => {
                AnyModel::F64(CharLm::from_checkpoint(&ckpt, vocab.as_deref()).map_err(with_path)?)
            }
            other => {
                return Err(invalid_arg(format!(
                    "dtype: expected 'float32' or 'float64', got '{other}'"
                )))
            }
        };
        Ok(Self::wrap(Some(model), None))
    }

    /// Architecture, dtype and vocabulary.
    #[napi(getter, catch_unwind)]
    pub fn info(&self) -> Result<LmInfo> {
        let inner = self.inner.lock()?;
        Ok(with_model!(inner, m => {
            let c = m.config();
            LmInfo {
                cell: c.cell.name().to_string(),
                hidden: c.hidden.iter().map(|&h| h as u32).collect(),
                embedding: c.embedding.map(|e| e as u32),
                dropout: c.dropout,
                dtype: dtype_of(m),
                vocab: m.vocab().as_string(),
                num_params: m.num_params() as f64,
            }
        }))
    }

    /// Starts (or restarts) training on `text` with fresh optimizer state.
    #[napi(catch_unwind)]
    pub fn start_training(&self, text: String, options: LmTrainOptions) -> Result<()> {
        let config = train_config(&options)?;
        let mut inner = self.inner.lock()?;
        let model = take_model(&mut inner);
        let result = match model {
            AnyModel::F32(m) => Trainer::new(m.clone(), &text, config)
                .map(AnyTrainer::F32)
                .map_err(|e| (e, AnyModel::F32(m))),
            AnyModel::F64(m) => Trainer::new(m.clone(), &text, config)
                .map(AnyTrainer::F64)
                .map_err(|e| (e, AnyModel::F64(m))),
        };
        match result {
            Ok(t) => {
                inner.trainer = Some(t);
                Ok(())
            }
            Err((e, m)) => {
                inner.model = Some(m);
                Err(core_err(e))
            }
        }
    }

    /// Starts (or restarts) training on the UTF-8 text file at `path`, streamed from disk off
    /// the JS thread (the corpus is held once, at 1 byte per character for vocabularies of up
    /// to 256 characters). With `checkpoint`, resumes that run instead (same file required).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn start_training_file(
        &self,
        path: String,
        options: LmTrainOptions,
        checkpoint: Option<String>,
    ) -> Result<AsyncTask<ChunkTask<LmStartFileJob>>> {
        let config = train_config(&options)?;
        self.inner.start(LmStartFileJob {
            path: path.into(),
            config,
            checkpoint,
        })
    }

    /// Resumes training from a checkpoint written by `saveCheckpoint`, on the same `text`.
    #[napi(factory, catch_unwind)]
    pub fn resume(path: String, text: String) -> Result<Self> {
        let ckpt = read_checkpoint(&path)?;
        let trainer = match ckpt.meta("dtype").map_err(core_err)? {
            "float64" => AnyTrainer::F64(Trainer::from_checkpoint(&ckpt, &text).map_err(core_err)?),
            _ => AnyTrainer::F32(Trainer::from_checkpoint(&ckpt, &text).map_err(core_err)?),
        };
        Ok(Self::wrap(None, Some(trainer)))
    }

    /// Characters in the training and validation parts of the current run (`[train, val]`),
    /// or null when no run is in progress.
    #[napi(getter, catch_unwind)]
    pub fn split_sizes(&self) -> Result<Option<Vec<f64>>> {
        let inner = self.inner.lock()?;
        Ok(match &inner.trainer {
            Some(AnyTrainer::F32(t)) => Some(t.split_sizes()),
            Some(AnyTrainer::F64(t)) => Some(t.split_sizes()),
            None => None,
        }
        .map(|(a, b)| vec![a as f64, b as f64]))
    }

    /// Whether a training run is in progress (started and not finished).
    #[napi(getter, catch_unwind)]
    pub fn training(&self) -> Result<bool> {
        Ok(self.inner.lock()?.trainer.is_some())
    }

    /// Completed epochs of the current training run (0 when none).
    #[napi(getter, catch_unwind)]
    pub fn epochs_done(&self) -> Result<f64> {
        let inner = self.inner.lock()?;
        Ok(match &inner.trainer {
            Some(AnyTrainer::F32(t)) => t.epoch() as f64,
            Some(AnyTrainer::F64(t)) => t.epoch() as f64,
            None => 0.0,
        })
    }

    /// Runs up to `maxBatches` mini-batches off the JS thread, stopping at an epoch end (with
    /// validation), after `maxSeconds`, or on `cancel()`.
    #[napi(ts_return_type = "Promise<LmProgress>")]
    pub fn train(
        &self,
        max_batches: f64,
        max_seconds: f64,
    ) -> Result<AsyncTask<ChunkTask<LmTrainJob>>> {
        self.inner.start(LmTrainJob {
            max_batches: if max_batches.is_finite() && max_batches >= 1.0 {
                max_batches as u64
            } else {
                1
            },
            max_seconds: (max_seconds.is_finite() && max_seconds > 0.0).then_some(max_seconds),
        })
    }

    /// Validation loss (nats/char, dropout off) of the current training run, or null when
    /// validation is off or the held-out part is shorter than one sequence.
    #[napi(catch_unwind)]
    pub fn validate(&self) -> Result<Option<f64>> {
        let inner = self.inner.lock()?;
        match &inner.trainer {
            Some(AnyTrainer::F32(t)) => t.validate(),
            Some(AnyTrainer::F64(t)) => t.validate(),
            None => return Err(invalid_arg("validate: no training in progress")),
        }
        .map_err(core_err)
    }

    /// Asks a running chunk to stop after its current batch.
    #[napi]
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// Writes the full training state (weights, Adam moments, RNG, cursor) atomically.
    #[napi(catch_unwind)]
    pub fn save_checkpoint(&self, path: String) -> Result<()> {
        let inner = self.inner.lock()?;
        let ckpt = match &inner.trainer {
            Some(AnyTrainer::F32(t)) => t.to_checkpoint(),
            Some(AnyTrainer::F64(t)) => t.to_checkpoint(),
            None => {
                return Err(invalid_arg(
                    "saveCheckpoint: no training in progress (use save for the weights)",
                ))
            }
        };
        ckpt.and_then(|c| c.write_atomic(&path)).map_err(core_err)
    }

    /// Ends the training run (drops optimizer state), keeping the trained weights.
    #[napi(catch_unwind)]
    pub fn finish_training(&self) -> Result<()> {
        let mut inner = self.inner.lock()?;
        let m = take_model(&mut inner);
        inner.model = Some(m);
        Ok(())
    }

    /// Writes the weights (safetensors, PyTorch names, with architecture and vocabulary).
    #[napi(catch_unwind)]
    pub fn save(&self, path: String) -> Result<()> {
        let inner = self.inner.lock()?;
        with_model!(inner, m => m.save(&path)).map_err(core_err)
    }

    /// Completes `options.prompt` with `options.length` sampled characters.
    #[napi(catch_unwind)]
    pub fn generate(&self, options: LmGenerateOptions) -> Result<String> {
        let opts = SampleOptions {
            length: int_arg("length", options.length, 10_000_000.0)? as usize,
            temperature: options.temperature,
            top_k: int_arg("topK", options.top_k, u32::MAX as f64)? as usize,
            seed: int_arg("seed", options.seed, u32::MAX as f64)? as u32,
        };
        let inner = self.inner.lock()?;
        with_model!(inner, m => generate(m, &options.prompt, &opts)).map_err(core_err)
    }

    /// The `beamWidth` most likely continuations of `prompt` (beam search), best first.
    #[napi(catch_unwind)]
    pub fn beam_search(&self, options: LmBeamOptions) -> Result<Vec<LmBeamResult>> {
        let length = int_arg("length", options.length, 10_000_000.0)? as usize;
        let width = int_arg("beamWidth", options.beam_width, u32::MAX as f64)? as usize;
        let inner = self.inner.lock()?;
        let found = with_model!(inner, m => beam_generate(m, &options.prompt, length, width))
            .map_err(core_err)?;
        Ok(found
            .into_iter()
            .map(|b| LmBeamResult {
                text: b.text,
                log_prob: b.log_prob,
            })
            .collect())
    }

    /// Logits after each character of `text` from a zero state, flattened (len × V).
    #[napi(catch_unwind)]
    pub fn logits(&self, text: String) -> Result<Vec<f64>> {
        let inner = self.inner.lock()?;
        let rows = with_model!(inner, m => logits_for(m, &text)).map_err(core_err)?;
        Ok(rows.into_iter().flatten().collect())
    }
}

fn dtype_of<T: rnnlab_core::lm::Float>(_: &CharLm<T>) -> String {
    T::DTYPE.to_string()
}

/// The model out of `inner` (ending any training run).
fn take_model(inner: &mut Inner) -> AnyModel {
    match inner.trainer.take() {
        Some(AnyTrainer::F32(t)) => AnyModel::F32(t.model().clone()),
        Some(AnyTrainer::F64(t)) => AnyModel::F64(t.model().clone()),
        None => inner.model.take().expect("a model always exists"),
    }
}

fn int_arg(name: &str, x: f64, max: f64) -> Result<f64> {
    if x.fract() == 0.0 && (0.0..=max).contains(&x) {
        Ok(x)
    } else {
        Err(invalid_arg(format!(
            "{name}: expected an integer in 0..={max}, got {x}"
        )))
    }
}

fn train_config(o: &LmTrainOptions) -> Result<TrainConfig> {
    let mode = match o.mode.as_str() {
        "tbptt" => Mode::Tbptt {
            seq_len: o.seq_length as usize,
        },
        "windows" => Mode::Windows {
            window: o.seq_length as usize,
            stride: o.stride as usize,
        },
        other => {
            return Err(invalid_arg(format!(
                "mode: expected 'tbptt' or 'windows', got '{other}'"
            )))
        }
    };
    let kind = OptimizerKind::parse(&o.optimizer).map_err(core_err)?;
    let optimizer = OptimizerConfig {
        kind,
        lr: o.lr,
        decay: o.decay,
        ..OptimizerConfig::adam(o.lr)
    };
    Ok(TrainConfig {
        mode,
        batch_size: o.batch_size as usize,
        optimizer,
        clip: Clip {
            value: o.clip_value,
            norm: o.clip_norm,
        },
        validation: o.validation,
        seed: o.seed,
    })
}

/// One chunk of `train`: up to `max_batches` mini-batches or `max_seconds`.
pub struct LmTrainJob {
    max_batches: u64,
    max_seconds: Option<f64>,
}

impl Job for LmTrainJob {
    type State = Inner;
    type Output = Progress;
    type JsValue = LmProgress;
    const WHAT: &'static str = "CharLanguageModel.train";

    fn run(&mut self, inner: &mut Inner, cancel: &AtomicBool) -> Result<Progress> {
        let (max_batches, max_seconds) = (self.max_batches, self.max_seconds);
        match inner.trainer.as_mut() {
            Some(AnyTrainer::F32(t)) => t.run(max_batches, max_seconds, cancel),
            Some(AnyTrainer::F64(t)) => t.run(max_batches, max_seconds, cancel),
            None => return Err(invalid_arg("train: call startTraining first")),
        }
        .map_err(core_err)
    }

    fn to_js(p: Progress) -> LmProgress {
        LmProgress {
            step: p.step as f64,
            epoch: p.epoch as f64,
            batch_in_epoch: p.batch_in_epoch as f64,
            batches_per_epoch: p.batches_per_epoch as f64,
            loss: p.loss,
            epoch_loss: p.epoch_loss,
            batches: p.batches as f64,
            chars: p.chars as f64,
            epoch_end: p.epoch_end,
            val_loss: p.val_loss,
            cancelled: p.cancelled,
        }
    }
}

/// The vocabulary (sorted unique characters) of the UTF-8 text file at `path`, read in one
/// streaming pass off the JS thread.
#[napi(ts_return_type = "Promise<string>")]
pub fn vocabulary_of_file(path: String) -> AsyncTask<ChunkTask<VocabFileJob>> {
    detached(VocabFileJob { path: path.into() }, ())
}

pub struct VocabFileJob {
    path: PathBuf,
}

impl Job for VocabFileJob {
    type State = ();
    type Output = String;
    type JsValue = String;
    const WHAT: &'static str = "vocabularyOfFile";

    fn run(&mut self, _: &mut (), _: &AtomicBool) -> Result<String> {
        vocab_of_file(&self.path)
            .map(|v| v.as_string())
            .map_err(core_err)
    }

    fn to_js(vocabulary: String) -> String {
        vocabulary
    }
}

/// `startTrainingFile` on libuv's pool: reads the corpus (and the checkpoint to resume).
pub struct LmStartFileJob {
    path: PathBuf,
    config: TrainConfig,
    checkpoint: Option<String>,
}

impl Job for LmStartFileJob {
    type State = Inner;
    type Output = ();
    type JsValue = ();
    const WHAT: &'static str = "CharLanguageModel.startTrainingFile";

    fn run(&mut self, inner: &mut Inner, _: &AtomicBool) -> Result<()> {
        let (path, config) = (self.path.as_path(), self.config.clone());
        let ckpt = self
            .checkpoint
            .as_deref()
            .map(read_checkpoint)
            .transpose()?;
        let trainer = match &ckpt {
            Some(ck) => match ck.meta("dtype").map_err(core_err)? {
                "float64" => Trainer::from_checkpoint_file(ck, path).map(AnyTrainer::F64),
                _ => Trainer::from_checkpoint_file(ck, path).map(AnyTrainer::F32),
            },
            None => {
                let model = take_model(inner);
                let started = match &model {
                    AnyModel::F32(m) => {
                        Trainer::from_file(m.clone(), path, config).map(AnyTrainer::F32)
                    }
                    AnyModel::F64(m) => {
                        Trainer::from_file(m.clone(), path, config).map(AnyTrainer::F64)
                    }
                };
                if started.is_err() {
                    inner.model = Some(model); // a bad file leaves the model as it was
                }
                started
            }
        }
        .map_err(core_err)?;
        inner.model = None;
        inner.trainer = Some(trainer);
        Ok(())
    }

    fn to_js(_: ()) {}
}
