//! char-rnn's checkpointing: a validation evaluation every N steps or epochs (each one is a
//! checkpoint moment), the best model on validation kept aside, and early stopping after K
//! evaluations in a row without a lower validation loss. The whole state is part of a
//! training checkpoint, so a resumed run evaluates, keeps and stops exactly as an unbroken one.

use serde::{Deserialize, Serialize};

use super::export::{get_into, put};
use super::model::CharLm;
use crate::checkpoint::Checkpoint;
use crate::error::{CoreError, Result};
use crate::math::Float;

/// When evaluations (and checkpoints) happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Every {
    /// After every optimizer step that is a multiple of N (counted over the whole run).
    Steps(u64),
    /// At the end of every epoch that is a multiple of N.
    Epochs(u64),
}

impl Every {
    /// Whether the state after `step` steps (and `epoch` completed epochs, `epoch_end` when the
    /// step just finished one) is an evaluation point.
    pub fn due(self, step: u64, epoch: u64, epoch_end: bool) -> bool {
        match self {
            Every::Steps(n) => step.is_multiple_of(n),
            Every::Epochs(n) => epoch_end && epoch.is_multiple_of(n),
        }
    }
}

/// The evaluation schedule and early stopping of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalConfig {
    pub every: Every,
    /// Stop after this many evaluations in a row without a lower validation loss (None: never).
    pub patience: Option<u32>,
}

impl Default for EvalConfig {
    /// Every epoch, no early stopping (what runs did before the schedule existed).
    fn default() -> Self {
        EvalConfig {
            every: Every::Epochs(1),
            patience: None,
        }
    }
}

impl EvalConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        let (name, n) = match self.every {
            Every::Steps(n) => ("evaluateEvery.steps", n),
            Every::Epochs(n) => ("evaluateEvery.epochs", n),
        };
        if n == 0 {
            return Err(CoreError::invalid(format!(
                "{name}: expected an integer >= 1, got 0"
            )));
        }
        if self.patience == Some(0) {
            return Err(CoreError::invalid(
                "patience: expected an integer >= 1, got 0",
            ));
        }
        Ok(())
    }
}

/// A point of a run: the state after `step` optimizer steps, with the validation loss of the
/// weights at that point when it was measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Origin {
    pub step: u64,
    /// Completed epochs and batches into the next one.
    pub epoch: u64,
    pub batch_in_epoch: u64,
    pub val_loss: Option<f64>,
}

impl Origin {
    /// Writes the point under `{prefix}step`, `{prefix}epoch`, `{prefix}batch_in_epoch` and
    /// `{prefix}val_loss` (floats in Rust's shortest form, which parses back to the same bits).
    pub fn write(&self, ckpt: &mut Checkpoint, prefix: &str) {
        ckpt.set_meta(&format!("{prefix}step"), &self.step.to_string());
        ckpt.set_meta(&format!("{prefix}epoch"), &self.epoch.to_string());
        ckpt.set_meta(
            &format!("{prefix}batch_in_epoch"),
            &self.batch_in_epoch.to_string(),
        );
        if let Some(v) = self.val_loss {
            ckpt.set_meta(&format!("{prefix}val_loss"), &v.to_string());
        }
    }

    /// The point [`Self::write`] wrote under `prefix`, or None when there is none.
    pub fn read(ckpt: &Checkpoint, prefix: &str) -> Result<Option<Origin>> {
        let step = format!("{prefix}step");
        if !ckpt.metadata.contains_key(&step) {
            return Ok(None);
        }
        let val = format!("{prefix}val_loss");
        Ok(Some(Origin {
            step: ckpt.meta_parse(&step)?,
            epoch: ckpt.meta_parse(&format!("{prefix}epoch"))?,
            batch_in_epoch: ckpt.meta_parse(&format!("{prefix}batch_in_epoch"))?,
            val_loss: match ckpt.metadata.contains_key(&val) {
                true => Some(ckpt.meta_parse(&val)?),
                false => None,
            },
        }))
    }
}

/// The best model on validation so far.
#[derive(Clone, Debug)]
pub struct Best<T: Float> {
    pub model: CharLm<T>,
    /// Where it comes from (its `val_loss` is always set).
    pub at: Origin,
}

impl<T: Float> Best<T> {
    pub fn val_loss(&self) -> f64 {
        self.at.val_loss.unwrap_or(f64::NAN)
    }
}

/// What one evaluation changed.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Outcome {
    /// The validation loss is the lowest so far (strictly lower than the best before it).
    pub improved: bool,
    /// The patience ran out: training stops here.
    pub stopped_early: bool,
}

/// The evaluation state of a run.
#[derive(Clone, Debug)]
pub struct Evaluations<T: Float> {
    pub config: EvalConfig,
    /// Evaluations so far.
    pub count: u64,
    /// The last evaluation.
    pub last: Option<Origin>,
    pub best: Option<Best<T>>,
    /// Evaluations since the best one (the patience counter).
    pub since_best: u32,
    /// The patience ran out: the run trains no further.
    pub stopped_early: bool,
}

impl<T: Float> Evaluations<T> {
    pub fn new(config: EvalConfig) -> Result<Self> {
        config.validate()?;
        Ok(Evaluations {
            config,
            count: 0,
            last: None,
            best: None,
            since_best: 0,
            stopped_early: false,
        })
    }

    /// Records an evaluation of `model` at `at` (`at.val_loss` None: no validation data,
    /// which neither improves nor uses up patience).
    pub fn record(&mut self, model: &CharLm<T>, at: Origin) -> Outcome {
        self.count += 1;
        self.last = Some(at);
        let Some(loss) = at.val_loss else {
            return Outcome::default();
        };
        let lower = match &self.best {
            None => true,
            Some(b) => loss < b.val_loss(),
        };
        if lower {
            self.best = Some(Best {
                model: model.clone(),
                at,
            });
            self.since_best = 0;
            return Outcome {
                improved: true,
                stopped_early: false,
            };
        }
        self.since_best += 1;
        self.stopped_early = self.config.patience.is_some_and(|k| self.since_best >= k);
        Outcome {
            improved: false,
            stopped_early: self.stopped_early,
        }
    }

    /// Adds the state to a training checkpoint: the schedule, counters, the last evaluation
    /// (`val_*`), the best one (`best_*`) and its weights (`best.<tensor name>`).
    pub fn write(&self, ckpt: &mut Checkpoint) -> Result<()> {
        ckpt.set_meta(
            "eval_config",
            &serde_json::to_string(&self.config).unwrap_or_default(),
        );
        ckpt.set_meta("evaluations", &self.count.to_string());
        ckpt.set_meta("evals_since_best", &self.since_best.to_string());
        ckpt.set_meta("stopped_early", &self.stopped_early.to_string());
        if let Some(last) = &self.last {
            last.write(ckpt, "last_eval_")
        }
        if let Some(best) = &self.best {
            best.at.write(ckpt, "best_");
            for info in &best.model.tensors {
                put(
                    ckpt,
                    &format!("best.{}", info.name),
                    &info.shape,
                    &best.model.params[info.offset..info.offset + info.len],
                )?;
            }
        }
        Ok(())
    }

    /// The state [`Self::write`] stored, for a run of `model`'s architecture (checkpoints
    /// from before evaluations had a schedule read as the default: every epoch, none yet).
    pub fn read(ckpt: &Checkpoint, model: &CharLm<T>) -> Result<Self> {
        if !ckpt.metadata.contains_key("eval_config") {
            return Self::new(EvalConfig::default());
        }
        let config: EvalConfig = serde_json::from_str(ckpt.meta("eval_config")?)
            .map_err(|e| CoreError::BadFile(format!("checkpoint metadata \"eval_config\": {e}")))?;
        let mut evals = Self::new(config).map_err(|e| CoreError::BadFile(e.to_string()))?;
        evals.count = ckpt.meta_parse("evaluations")?;
        evals.since_best = ckpt.meta_parse("evals_since_best")?;
        evals.stopped_early = ckpt.meta_parse("stopped_early")?;
        evals.last = Origin::read(ckpt, "last_eval_")?;
        if let Some(at) = Origin::read(ckpt, "best_")? {
            if at.val_loss.is_none() {
                return Err(CoreError::BadFile(
                    "checkpoint metadata: missing \"best_val_loss\"".into(),
                ));
            }
            let mut best = model.clone();
            for info in &model.tensors {
                let v = get_into::<T>(ckpt, &format!("best.{}", info.name), info.len)?;
                best.params[info.offset..info.offset + info.len].copy_from_slice(&v);
            }
            evals.best = Some(Best { model: best, at });
        }
        Ok(evals)
    }
}
