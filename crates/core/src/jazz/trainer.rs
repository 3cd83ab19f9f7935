//! Training the djmodel: full-batch epochs with the course's Keras Adam, and [`JazzTrainer`],
//! the whole training state (model, windows, optimizer, epoch count, seed) that the bindings
//! hold and that a checkpoint would save.

use super::batch::JazzBatch;
use super::model::JazzModel;
use super::network::{grad_buffers, EpochStats, Precision, Workspace};
use crate::error::{CoreError, Result};
use crate::math::Float;
use crate::nn::optim::Adam;

impl JazzModel {
    /// Full-batch training in float32 (see [`JazzModel::fit_with_precision`]).
    pub fn fit(
        &mut self,
        batch: &JazzBatch,
        epochs: usize,
        adam: &mut Adam,
        on_epoch: impl FnMut(usize, EpochStats) -> bool,
    ) -> Result<Vec<EpochStats>> {
        self.fit_with_precision(batch, epochs, adam, Precision::F32, on_epoch)
    }

    /// Full-batch training: `epochs` Adam updates on `batch`. `on_epoch(epoch, stats)` is called
    /// after each epoch and may return `false` to stop early (cancel). Returns the stats of
    /// every epoch done; a non-finite loss stops with `CoreError::Diverged`.
    ///
    /// The forward and backward passes run in `precision`; the parameters and the Adam moments
    /// stay f64 (each epoch rounds the parameters to the compute type, and the gradients come
    /// back as f64). Results are identical for any number of rayon threads.
    pub fn fit_with_precision(
        &mut self,
        batch: &JazzBatch,
        epochs: usize,
        adam: &mut Adam,
        precision: Precision,
        on_epoch: impl FnMut(usize, EpochStats) -> bool,
    ) -> Result<Vec<EpochStats>> {
        self.validate()?;
        batch.validate(self.n_values())?;
        match precision {
            Precision::F32 => self.fit_in::<f32>(batch, epochs, adam, on_epoch),
            Precision::F64 => self.fit_in::<f64>(batch, epochs, adam, on_epoch),
        }
    }

    fn fit_in<T: Float>(
        &mut self,
        batch: &JazzBatch,
        epochs: usize,
        adam: &mut Adam,
        mut on_epoch: impl FnMut(usize, EpochStats) -> bool,
    ) -> Result<Vec<EpochStats>> {
        let mut ws = Workspace::<T>::new(self, batch);
        let mut grads = grad_buffers(self);
        let mut history = Vec::with_capacity(epochs);
        for epoch in 0..epochs {
            // One hop onto rayon's pool per epoch: the parallel loops inside then start from a
            // worker thread instead of each waking the pool from outside.
            let stats = rayon::scope(|_| -> Result<EpochStats> {
                ws.load_params(self);
                let stats = ws.forward();
                if !stats.loss.is_finite() {
                    return Err(CoreError::Diverged(format!(
                        "jazz model: loss became {} at epoch {}",
                        stats.loss,
                        epoch + 1
                    )));
                }
                ws.backward();
                ws.store_grads(&mut grads);
                let g: [&[f64]; 5] = [&grads[0], &grads[1], &grads[2], &grads[3], &grads[4]];
                adam.step(&mut self.params_mut(), &g)?;
                Ok(stats)
            })?;
            history.push(stats);
            if !on_epoch(epoch, stats) {
                break;
            }
        }
        Ok(history)
    }
}

/// What one [`JazzTrainer::fit`] call did.
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport {
    /// Stats of every epoch done by this call (before its update, as Keras prints).
    pub history: Vec<EpochStats>,
    /// True when `keep_going` stopped the call early.
    pub cancelled: bool,
}

/// The djmodel with everything its training needs: the training windows, the course's Adam
/// (with its moments), the number of epochs done and the seed the windows and the initial
/// weights were drawn with. Every part is readable and replaceable, for save and load.
#[derive(Debug, Clone, PartialEq)]
pub struct JazzTrainer {
    model: JazzModel,
    batch: JazzBatch,
    optimizer: Adam,
    epochs_done: u64,
    seed: u32,
}

impl JazzTrainer {
    /// The course's setup: `m` windows of `t_x` values drawn from `corpus` (value indices
    /// `< n_values`) with `RandomState(seed)`, weights initialised from `RandomState(seed)`,
    /// and `Adam(lr=0.01, beta_1=0.9, beta_2=0.999, decay=0.01)`.
    pub fn new(
        corpus: &[usize],
        n_values: usize,
        n_a: usize,
        t_x: usize,
        m: usize,
        seed: u32,
    ) -> Result<Self> {
        let batch = JazzBatch::windows(corpus, n_values, m, t_x, seed)?;
        let model = JazzModel::new(n_values, n_a, seed)?;
        Self::from_parts(model, batch, Adam::course(), 0, seed)
    }

    /// A trainer from saved parts (checked against each other).
    pub fn from_parts(
        model: JazzModel,
        batch: JazzBatch,
        optimizer: Adam,
        epochs_done: u64,
        seed: u32,
    ) -> Result<Self> {
        model.validate()?;
        batch.validate(model.n_values())?;
        optimizer.config.validate()?;
        let n: usize = [
            model.wx.len(),
            model.wa.len(),
            model.b.len(),
            model.wy.len(),
            model.by.len(),
        ]
        .iter()
        .sum();
        if !optimizer.m.is_empty() && (optimizer.m.len() != n || optimizer.v.len() != n) {
            return Err(CoreError::ShapeMismatch {
                name: "optimizer moments".into(),
                expected: format!("{n} values"),
                actual: format!("{} and {}", optimizer.m.len(), optimizer.v.len()),
            });
        }
        Ok(JazzTrainer {
            model,
            batch,
            optimizer,
            epochs_done,
            seed,
        })
    }

    /// The parts, to save them.
    pub fn into_parts(self) -> (JazzModel, JazzBatch, Adam, u64, u32) {
        (
            self.model,
            self.batch,
            self.optimizer,
            self.epochs_done,
            self.seed,
        )
    }

    pub fn model(&self) -> &JazzModel {
        &self.model
    }

    pub fn batch(&self) -> &JazzBatch {
        &self.batch
    }

    pub fn optimizer(&self) -> &Adam {
        &self.optimizer
    }

    /// Epochs trained since the model was made.
    pub fn epochs_done(&self) -> u64 {
        self.epochs_done
    }

    /// The seed of the windows and the initial weights.
    pub fn seed(&self) -> u32 {
        self.seed
    }

    /// Trains up to `epochs` more full-batch epochs in float32; `keep_going()` is asked after
    /// each epoch and may return `false` to stop (the epoch just done still counts).
    pub fn fit(
        &mut self,
        epochs: usize,
        mut keep_going: impl FnMut() -> bool,
    ) -> Result<FitReport> {
        let mut cancelled = false;
        let history = self
            .model
            .fit(&self.batch, epochs, &mut self.optimizer, |_, _| {
                if keep_going() {
                    true
                } else {
                    cancelled = true;
                    false
                }
            })?;
        self.epochs_done += history.len() as u64;
        Ok(FitReport { history, cancelled })
    }
}
