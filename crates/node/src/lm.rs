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
    beam_generate, generate, logits_for, vocab_of_file, Cell, CharLm, Clip, EvalConfig, Every,
    LmConfig, Mode, OptimizerConfig, OptimizerKind, Origin, Progress, SampleOptions, TrainConfig,
    Trainer, Vocab,
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
    /// Evaluate (and checkpoint) after every this many steps (exclusive with
    /// `evaluateEveryEpochs`; neither: every epoch).
    pub evaluate_every_steps: Option<u32>,
    /// Evaluate (and checkpoint) at the end of every this many epochs.
    pub evaluate_every_epochs: Option<u32>,
    /// Stop after this many evaluations in a row without a lower validation loss.
    pub patience: Option<u32>,
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
    /// The chunk ended at an evaluation point of the schedule (a checkpoint moment).
    pub evaluation: bool,
    /// Validation loss at an evaluation (nats/char).
    pub val_loss: Option<f64>,
    /// This evaluation's validation loss is the lowest so far.
    pub improved: bool,
    /// The best evaluation so far: its validation loss, step, epoch and batch in the epoch.
    pub best_val_loss: Option<f64>,
    pub best_step: Option<f64>,
    pub best_epoch: Option<f64>,
    pub best_batch_in_epoch: Option<f64>,
    /// Evaluations since the best one (the patience counter).
    pub evals_since_best: f64,
    /// The patience ran out: the run trains no further.
    pub stopped_early: bool,
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
    /// Where the weights come from in their training run (absent for foreign files): optimizer
    /// steps, completed epochs and batches into the next.
    pub step: Option<f64>,
    pub epoch: Option<f64>,
    pub batch_in_epoch: Option<f64>,
    /// The validation loss of these weights (nats/char), when it was measured.
    pub val_loss: Option<f64>,
    /// "best" (the best on validation) or "last" (the end of the run), for a kept model.
    pub kept: Option<String>,
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
    /// Show the run's best model on validation (when it has one) instead of its current one.
    keep_best: bool,
    /// Where a loaded model comes from (its file's metadata) and which it was ("best"/"last").
    loaded: Option<(Origin, Option<String>)>,
}

/// The model a run shows: its best on validation when `best` and it has one, else its current.
fn kept_model<T: rnnlab_core::lm::Float>(t: &Trainer<T>, best: bool) -> &CharLm<T> {
    t.kept(best).0
}

macro_rules! with_model {
    ($inner:expr, $m:ident => $body:expr) => {
        match (&$inner.trainer, &$inner.model) {
            (Some(AnyTrainer::F32(t)), _) => {
                let $m = kept_model(t, $inner.keep_best);
                $body
            }
            (Some(AnyTrainer::F64(t)), _) => {
                let $m = kept_model(t, $inner.keep_best);
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
                Inner {
                    model,
                    trainer,
                    keep_best: false,
                    loaded: None,
                },
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
        let origin = Origin::read(&ckpt, "").map_err(with_path)?;
        let kept = ckpt.metadata.get("kept").cloned();
        let lm = Self::wrap(Some(model), None);
        lm.inner.lock()?.loaded = origin.map(|o| (o, kept));
        Ok(lm)
    }

    /// Architecture, dtype, vocabulary, and where the weights come from.
    #[napi(getter, catch_unwind)]
    pub fn info(&self) -> Result<LmInfo> {
        let inner = self.inner.lock()?;
        let (origin, kept) = match &inner.trainer {
            Some(AnyTrainer::F32(t)) => kept_origin(t, inner.keep_best),
            Some(AnyTrainer::F64(t)) => kept_origin(t, inner.keep_best),
            None => inner
                .loaded
                .clone()
                .map_or((None, None), |(o, k)| (Some(o), k)),
        };
        Ok(with_model!(inner, m => {
            let c = m.config();
            LmInfo {
                step: origin.map(|o| o.step as f64),
                epoch: origin.map(|o| o.epoch as f64),
                batch_in_epoch: origin.map(|o| o.batch_in_epoch as f64),
                val_loss: origin.and_then(|o| o.val_loss),
                kept: kept.clone(),
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

    /// Starts (or restarts) training on `text` with fresh optimizer state, from the model
    /// shown (the best one when `keep('best')` chose it).
    #[napi(catch_unwind)]
    pub fn start_training(&self, text: String, options: LmTrainOptions) -> Result<()> {
        let config = train_config(&options)?;
        let evaluation = eval_config(&options)?;
        let mut inner = self.inner.lock()?;
        let model = take_model(&mut inner);
        let result = match model {
            AnyModel::F32(m) => Trainer::new(m.clone(), &text, config)
                .and_then(|mut t| t.set_evaluation(evaluation).map(|_| t))
                .map(AnyTrainer::F32)
                .map_err(|e| (e, AnyModel::F32(m))),
            AnyModel::F64(m) => Trainer::new(m.clone(), &text, config)
                .and_then(|mut t| t.set_evaluation(evaluation).map(|_| t))
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
        let evaluation = eval_config(&options)?;
        self.inner.start(LmStartFileJob {
            path: path.into(),
            config,
            evaluation,
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

    /// Validation loss (nats/char, dropout off) of the model shown (the run's best, as it was
    /// measured, after `keep('best')`), or null when validation is off or the held-out part is
    /// shorter than one sequence.
    #[napi(catch_unwind)]
    pub fn validate(&self) -> Result<Option<f64>> {
        let inner = self.inner.lock()?;
        let best = inner.keep_best;
        match &inner.trainer {
            Some(AnyTrainer::F32(t)) => kept_validation(t, best),
            Some(AnyTrainer::F64(t)) => kept_validation(t, best),
            None => return Err(invalid_arg("validate: no training in progress")),
        }
        .map_err(core_err)
    }

    /// Which model of a run `generate`, `logits`, `save`, `info` and `validate` show, and a new
    /// run starts from: "best" (the lowest validation loss at an evaluation, when there was
    /// one) or "last" (the current weights, the default).
    #[napi(catch_unwind)]
    pub fn keep(&self, which: String) -> Result<()> {
        let best = match which.as_str() {
            "best" => true,
            "last" => false,
            other => {
                return Err(invalid_arg(format!(
                    "keep: expected 'best' or 'last', got '{other}'"
                )))
            }
        };
        self.inner.lock()?.keep_best = best;
        Ok(())
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

    /// Writes the weights shown (safetensors, PyTorch names, with architecture and
    /// vocabulary; from a run, also where they come from and their validation loss).
    #[napi(catch_unwind)]
    pub fn save(&self, path: String) -> Result<()> {
        let inner = self.inner.lock()?;
        match &inner.trainer {
            Some(AnyTrainer::F32(t)) => t
                .kept_checkpoint(inner.keep_best)
                .and_then(|c| c.write_atomic(&path)),
            Some(AnyTrainer::F64(t)) => t
                .kept_checkpoint(inner.keep_best)
                .and_then(|c| c.write_atomic(&path)),
            None => with_model!(inner, m => m.save(&path)),
        }
        .map_err(core_err)
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

/// The model shown out of `inner` (ending any training run).
fn take_model(inner: &mut Inner) -> AnyModel {
    let best = inner.keep_best;
    inner.loaded = None;
    match inner.trainer.take() {
        Some(AnyTrainer::F32(t)) => AnyModel::F32(kept_model(&t, best).clone()),
        Some(AnyTrainer::F64(t)) => AnyModel::F64(kept_model(&t, best).clone()),
        None => inner.model.take().expect("a model always exists"),
    }
}

/// Where the model a run shows comes from, and which it is ("best" or "last").
fn kept_origin<T: rnnlab_core::lm::Float>(
    t: &Trainer<T>,
    best: bool,
) -> (Option<Origin>, Option<String>) {
    let origin = t.kept(best).1;
    let which = if best && t.evaluations().best.is_some() {
        "best"
    } else {
        "last"
    };
    (Some(origin), Some(which.to_string()))
}

/// The validation loss of the model a run shows: the best's as measured, or the current's now.
fn kept_validation<T: rnnlab_core::lm::Float>(
    t: &Trainer<T>,
    best: bool,
) -> rnnlab_core::Result<Option<f64>> {
    match t.evaluations().best.as_ref().filter(|_| best) {
        Some(b) => Ok(b.at.val_loss),
        None => t.validate(),
    }
}

/// The evaluation schedule and patience of `fit`'s options.
fn eval_config(o: &LmTrainOptions) -> Result<EvalConfig> {
    let every = match (o.evaluate_every_steps, o.evaluate_every_epochs) {
        (Some(_), Some(_)) => {
            return Err(invalid_arg("evaluateEvery: give steps or epochs, not both"))
        }
        (Some(n), None) => Every::Steps(n as u64),
        (None, Some(n)) => Every::Epochs(n as u64),
        (None, None) => Every::Epochs(1),
    };
    let config = EvalConfig {
        every,
        patience: o.patience,
    };
    config.validate().map_err(core_err)?;
    Ok(config)
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
            evaluation: p.evaluation,
            val_loss: p.val_loss,
            improved: p.improved,
            best_val_loss: p.best.and_then(|b| b.val_loss),
            best_step: p.best.map(|b| b.step as f64),
            best_epoch: p.best.map(|b| b.epoch as f64),
            best_batch_in_epoch: p.best.map(|b| b.batch_in_epoch as f64),
            evals_since_best: p.evals_since_best as f64,
            stopped_early: p.stopped_early,
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
    evaluation: EvalConfig,
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
                let evaluation = self.evaluation.clone();
                let started = match &model {
                    AnyModel::F32(m) => Trainer::from_file(m.clone(), path, config)
                        .and_then(|mut t| t.set_evaluation(evaluation).map(|_| t))
                        .map(AnyTrainer::F32),
                    AnyModel::F64(m) => Trainer::from_file(m.clone(), path, config)
                        .and_then(|mut t| t.set_evaluation(evaluation).map(|_| t))
                        .map(AnyTrainer::F64),
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
