//! Mini-batch training of a [`CharLm`]: batches from a text in either mode, forward/backward,
//! clipping, the optimizer step, validation, and a state that resumes exactly.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::batches::{fill_windows, window_count, window_starts, Mode, Streams};
use super::corpus::Tokens;
use super::evaluation::{EvalConfig, Evaluations, Origin};
use super::model::CharLm;
use super::network::{backward, forward, Workspace};
use crate::error::{CoreError, Result};
use crate::math::Float;
use crate::nn::optim::{clip_gradients, Clip, Optimizer, OptimizerConfig};
use crate::random::RandomState;

/// Training hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Windows (many-to-one) or truncated BPTT (many-to-many).
    pub mode: Mode,
    /// Sequences per mini-batch (B).
    pub batch_size: usize,
    pub optimizer: OptimizerConfig,
    pub clip: Clip,
    /// Fraction of the text (its end) held out for validation, 0 ≤ f < 1.
    pub validation: f64,
    /// Seed of the training generator (window shuffling and dropout masks).
    pub seed: u32,
}

impl TrainConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        self.mode.validate()?;
        self.optimizer.validate()?;
        if self.batch_size == 0 || self.batch_size > 1 << 20 {
            return Err(CoreError::invalid(format!(
                "batchSize: expected 1..=1048576, got {}",
                self.batch_size
            )));
        }
        if !(0.0..1.0).contains(&self.validation) {
            return Err(CoreError::invalid(format!(
                "validation: expected 0 <= f < 1, got {}",
                self.validation
            )));
        }
        for (name, v) in [
            ("clip.value", self.clip.value),
            ("clip.norm", self.clip.norm),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    return Err(CoreError::invalid(format!(
                        "{name}: expected a finite number > 0, got {v}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// What a call to [`Trainer::run`] did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Progress {
    /// Optimizer steps so far (all calls).
    pub step: u64,
    /// Completed epochs.
    pub epoch: u64,
    /// Batches done in the current epoch.
    pub batch_in_epoch: u64,
    /// Batches per epoch.
    pub batches_per_epoch: u64,
    /// Mean training loss (nats/char) over the batches of this call (NaN if none ran).
    pub loss: f64,
    /// When this call finished an epoch: the mean training loss (nats/char) over all of that
    /// epoch's batches, summed in batch order, so it does not depend on how the epoch was cut
    /// into calls (a per-call mean at an epoch end covers only the epoch's last calls).
    pub epoch_loss: Option<f64>,
    /// Batches run by this call.
    pub batches: u64,
    /// Input characters processed so far (T·B per batch).
    pub chars: u64,
    /// Whether this call finished an epoch (it then stops).
    pub epoch_end: bool,
    /// Whether this call ended at an evaluation point of the schedule ([`EvalConfig::every`]):
    /// the moment of a checkpoint, and of a validation evaluation when validation is on.
    pub evaluation: bool,
    /// Validation loss (nats/char), computed at an evaluation when validation is on.
    pub val_loss: Option<f64>,
    /// This evaluation's validation loss is the lowest so far.
    pub improved: bool,
    /// The best point on validation so far (its `val_loss` is set).
    pub best: Option<Origin>,
    /// Evaluations since the best one (the patience counter).
    pub evals_since_best: u32,
    /// The patience ran out (at this call or earlier): the run trains no further.
    pub stopped_early: bool,
    /// Whether the cancel flag stopped the call.
    pub cancelled: bool,
}

/// A training run in progress.
#[derive(Debug)]
pub struct Trainer<T: Float> {
    pub(crate) model: CharLm<T>,
    pub(crate) config: TrainConfig,
    pub(crate) opt: Optimizer<T>,
    pub(crate) rng: RandomState,
    pub(crate) train: Tokens,
    pub(crate) val: Tokens,
    pub(crate) ws: Workspace<T>,
    /// Completed epochs.
    pub(crate) epoch: u64,
    /// Batches done in the current epoch (0 = the epoch has not started).
    pub(crate) batch_in_epoch: u64,
    /// Window order of the current epoch (windows mode).
    pub(crate) order: Vec<u32>,
    pub(crate) chars: u64,
    /// Sum of the current epoch's batch losses, in batch order (kept in checkpoints).
    pub(crate) epoch_loss_sum: f64,
    /// The evaluation schedule, the best model so far and the patience counter.
    pub(crate) evals: Evaluations<T>,
    /// Scratch for the current batch (T·B) and its targets.
    batch_inputs: Vec<u32>,
    batch_targets: Vec<u32>,
}

impl<T: Float> Trainer<T> {
    /// A trainer for `model` on `text` (every character must be in the model's vocabulary).
    pub fn new(model: CharLm<T>, text: &str, config: TrainConfig) -> Result<Self> {
        config.validate()?;
        let tokens = Tokens::encode(&model.vocab, text, "text")?;
        Self::with_tokens(model, tokens, config)
    }

    /// A trainer for `model` on the UTF-8 text file at `path`, streamed from disk (see
    /// [`Tokens::read_file`]): the corpus is held once, at 1 byte per character for
    /// vocabularies of up to 256 characters.
    pub fn from_file(model: CharLm<T>, path: &Path, config: TrainConfig) -> Result<Self> {
        config.validate()?;
        let tokens = Tokens::read_file(&model.vocab, path)?;
        Self::with_tokens(model, tokens, config)
    }

    /// A trainer for `model` on a text already encoded with its vocabulary (every index is
    /// checked against it).
    pub fn from_tokens(model: CharLm<T>, tokens: Tokens, config: TrainConfig) -> Result<Self> {
        config.validate()?;
        if let Some(bad) = (0..tokens.len())
            .map(|i| tokens.at(i))
            .find(|&i| i as usize >= model.vocab.len())
        {
            return Err(CoreError::invalid(format!(
                "text: index {bad} out of range for a vocabulary of {}",
                model.vocab.len()
            )));
        }
        Self::with_tokens(model, tokens, config)
    }

    /// [`Self::from_tokens`] for tokens encoded here (valid by construction: not checked again).
    fn with_tokens(model: CharLm<T>, tokens: Tokens, config: TrainConfig) -> Result<Self> {
        // split in place: a large corpus is held once as indices, not copied again
        let mut train = tokens;
        let n_val = (train.len() as f64 * config.validation).round() as usize;
        let val = train.split_off(train.len() - n_val);
        let t_len = config.mode.t_len();
        let bsz = config.batch_size;
        let batches = match config.mode {
            Mode::Windows { window, stride } => window_count(train.len(), window, stride) / bsz,
            Mode::Tbptt { seq_len } => {
                Streams::new(train.len(), bsz, seq_len).map_or(0, |s| s.chunks())
            }
        };
        if batches == 0 {
            return Err(CoreError::invalid(format!(
                "text: {} training characters do not fill one batch of {bsz} sequences of {t_len} (lower batchSize/seqLength or validation)",
                train.len()
            )));
        }
        let ws = Workspace::new(&model, t_len, bsz, config.mode.last_only())?;
        let opt = Optimizer::new(config.optimizer.clone(), model.params.len())?;
        let n_targets = if config.mode.last_only() {
            bsz
        } else {
            t_len * bsz
        };
        Ok(Trainer {
            rng: RandomState::new(config.seed),
            model,
            opt,
            train,
            val,
            ws,
            config,
            epoch: 0,
            batch_in_epoch: 0,
            order: Vec::new(),
            chars: 0,
            epoch_loss_sum: 0.0,
            evals: Evaluations::new(EvalConfig::default())?,
            batch_inputs: vec![0; t_len * bsz],
            batch_targets: vec![0; n_targets],
        })
    }

    /// The model being trained.
    pub fn model(&self) -> &CharLm<T> {
        &self.model
    }

    /// The training configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Sets the evaluation schedule and early stopping of a run that has not started (the
    /// default is an evaluation at every epoch end and no early stopping).
    pub fn set_evaluation(&mut self, config: EvalConfig) -> Result<()> {
        if self.opt.iterations > 0 {
            return Err(CoreError::invalid(
                "evaluation: the schedule is set before training starts (a checkpoint keeps it)",
            ));
        }
        self.evals = Evaluations::new(config)?;
        Ok(())
    }

    /// The evaluation state: schedule, last and best evaluations, patience counter.
    pub fn evaluations(&self) -> &Evaluations<T> {
        &self.evals
    }

    /// The model to keep: the best on validation when `best` and one was evaluated, else the
    /// current one; with where it comes from (its `val_loss` as measured: the current model's
    /// only when its weights are the last evaluation's).
    pub fn kept(&self, best: bool) -> (&CharLm<T>, Origin) {
        if let Some(b) = self.evals.best.as_ref().filter(|_| best) {
            return (&b.model, b.at);
        }
        let here = self.here(None);
        let val_loss = self
            .evals
            .last
            .filter(|e| e.step == here.step)
            .and_then(|e| e.val_loss);
        (&self.model, Origin { val_loss, ..here })
    }

    /// The current point of the run.
    fn here(&self, val_loss: Option<f64>) -> Origin {
        Origin {
            step: self.opt.iterations,
            epoch: self.epoch,
            batch_in_epoch: self.batch_in_epoch,
            val_loss,
        }
    }

    /// Optimizer steps so far.
    pub fn step_count(&self) -> u64 {
        self.opt.iterations
    }

    /// Completed epochs.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Characters in the training and validation parts.
    pub fn split_sizes(&self) -> (usize, usize) {
        (self.train.len(), self.val.len())
    }

    /// Mini-batches per epoch.
    pub fn batches_per_epoch(&self) -> u64 {
        let bsz = self.config.batch_size;
        (match self.config.mode {
            Mode::Windows { window, stride } => {
                window_count(self.train.len(), window, stride) / bsz
            }
            Mode::Tbptt { seq_len } => {
                Streams::new(self.train.len(), bsz, seq_len).map_or(0, |s| s.chunks())
            }
        }) as u64
    }

    fn begin_epoch(&mut self) {
        self.epoch_loss_sum = 0.0;
        match self.config.mode {
            Mode::Windows { window, stride } => {
                self.order = window_starts(self.train.len(), window, stride);
                self.rng.shuffle(&mut self.order);
            }
            Mode::Tbptt { .. } => self.ws.reset_state(),
        }
    }

    /// One mini-batch: forward, backward, clip, update. Returns the batch loss (nats/char).
    pub fn step(&mut self) -> Result<f64> {
        if self.batch_in_epoch == 0 {
            self.begin_epoch();
        }
        let j = self.batch_in_epoch as usize;
        let bsz = self.config.batch_size;
        let t_len = self.config.mode.t_len();
        let (inputs, targets) = (&mut self.batch_inputs, &mut self.batch_targets);
        match self.config.mode {
            Mode::Windows { window, .. } => fill_windows(
                &self.train,
                &self.order[j * bsz..(j + 1) * bsz],
                window,
                inputs,
                targets,
            ),
            Mode::Tbptt { seq_len } => {
                let s = Streams::new(self.train.len(), bsz, seq_len)
                    .ok_or_else(|| CoreError::invalid("text too short"))?;
                s.fill(&self.train, j, inputs, targets);
            }
        }
        let v = self.model.vocab.len();
        self.ws
            .set_batch(&self.batch_inputs, &self.batch_targets, v)?;
        if self.config.mode.last_only() {
            // each window starts from a zero state; in BPTT mode the chunk continues the last one
            self.ws.reset_state();
        }
        let loss = forward(&self.model, &mut self.ws, true, Some(&mut self.rng));
        if !loss.is_finite() {
            return Err(CoreError::Diverged(format!(
                "training loss became {loss} at step {} (lower lr or clip gradients)",
                self.opt.iterations
            )));
        }
        backward(&self.model, &mut self.ws);
        if !self.config.mode.last_only() {
            self.ws.carry_state();
        }
        clip_gradients(&mut self.ws.grads, &self.config.clip);
        self.opt.update(&mut self.model.params, &self.ws.grads);
        self.chars += (t_len * bsz) as u64;
        self.epoch_loss_sum += loss;
        self.batch_in_epoch += 1;
        if self.batch_in_epoch >= self.batches_per_epoch() {
            self.epoch += 1;
            self.batch_in_epoch = 0;
        }
        Ok(loss)
    }

    /// Runs up to `max_batches` mini-batches, stopping early at the end of an epoch, at an
    /// evaluation point (then validating, keeping the best model and counting patience),
    /// after `max_seconds`, or when `cancel` is set (checked between batches). After the
    /// patience ran out it runs nothing.
    pub fn run(
        &mut self,
        max_batches: u64,
        max_seconds: Option<f64>,
        cancel: &AtomicBool,
    ) -> Result<Progress> {
        let start = Instant::now();
        let (mut sum, mut batches) = (0.0, 0u64);
        let mut epoch_end = false;
        let mut evaluation = false;
        let mut cancelled = false;
        while batches < max_batches && !self.evals.stopped_early {
            if cancel.load(Ordering::Relaxed) {
                cancelled = true;
                break;
            }
            if let Some(s) = max_seconds {
                if batches > 0 && start.elapsed().as_secs_f64() >= s {
                    break;
                }
            }
            let epoch_before = self.epoch;
            sum += self.step()?;
            batches += 1;
            epoch_end = self.epoch != epoch_before;
            evaluation = self
                .evals
                .config
                .every
                .due(self.opt.iterations, self.epoch, epoch_end);
            if epoch_end || evaluation {
                break;
            }
        }
        // the epoch's batches are batches_per_epoch() in number: the cursor is back at 0
        let epoch_loss = epoch_end.then(|| self.epoch_loss_sum / self.batches_per_epoch() as f64);
        let val_loss = if evaluation && !self.val.is_empty() {
            self.validate()?
        } else {
            None
        };
        let outcome = if evaluation {
            let at = self.here(val_loss);
            self.evals.record(&self.model, at)
        } else {
            Default::default()
        };
        Ok(Progress {
            step: self.opt.iterations,
            epoch: self.epoch,
            batch_in_epoch: self.batch_in_epoch,
            batches_per_epoch: self.batches_per_epoch(),
            loss: if batches > 0 {
                sum / batches as f64
            } else {
                f64::NAN
            },
            epoch_loss,
            batches,
            chars: self.chars,
            epoch_end,
            evaluation,
            val_loss,
            improved: outcome.improved,
            best: self.evals.best.as_ref().map(|b| b.at),
            evals_since_best: self.evals.since_best,
            stopped_early: self.evals.stopped_early,
            cancelled,
        })
    }

    /// Mean loss (nats/char, dropout off) on the validation part, in the training mode's form
    /// (next character after each window, or every next character with carried state);
    /// `None` when the validation part is too short for one sequence.
    pub fn validate(&self) -> Result<Option<f64>> {
        validation_loss(&self.model, &self.val, &self.config)
    }
}

/// Mean loss of `model` on `data` in the form of `config.mode` (see [`Trainer::validate`]).
pub fn validation_loss<T: Float>(
    model: &CharLm<T>,
    data: &Tokens,
    config: &TrainConfig,
) -> Result<Option<f64>> {
    let bsz = config.batch_size;
    let (mut total, mut count) = (0.0f64, 0usize);
    match config.mode {
        Mode::Windows { window, stride } => {
            let starts = window_starts(data.len(), window, stride);
            if starts.is_empty() {
                return Ok(None);
            }
            let mut ws: Option<Workspace<T>> = None;
            for chunk in starts.chunks(bsz) {
                let b = chunk.len();
                if ws.as_ref().map(|w| w.batch()) != Some(b) {
                    ws = Some(Workspace::new(model, window, b, true)?);
                }
                let w = ws.as_mut().expect("workspace just created");
                let mut inputs = vec![0u32; window * b];
                let mut targets = vec![0u32; b];
                fill_windows(data, chunk, window, &mut inputs, &mut targets);
                w.set_batch(&inputs, &targets, model.vocab.len())?;
                w.reset_state();
                total += forward(model, w, false, None) * b as f64;
                count += b;
            }
        }
        Mode::Tbptt { seq_len } => {
            let b = bsz.min(data.len().saturating_sub(1) / (seq_len + 1)).max(1);
            let Some(s) = Streams::new(data.len(), b, seq_len) else {
                return Ok(None);
            };
            let mut w = Workspace::new(model, seq_len, b, false)?;
            let mut inputs = vec![0u32; seq_len * b];
            let mut targets = vec![0u32; seq_len * b];
            w.reset_state();
            for j in 0..s.chunks() {
                s.fill(data, j, &mut inputs, &mut targets);
                w.set_batch(&inputs, &targets, model.vocab.len())?;
                total += forward(model, &mut w, false, None) * (seq_len * b) as f64;
                count += seq_len * b;
                w.carry_state();
            }
        }
    }
    Ok(Some(total / count as f64))
}
