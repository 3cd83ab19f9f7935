//! The jazz djmodel for JS: training off the JS thread in chunks of epochs (an `AsyncTask`
//! with a cancel flag), and the inference loop one step at a time so the TypeScript layer
//! can drive the music generation.

use std::sync::atomic::{AtomicBool, Ordering};

use napi::bindgen_prelude::AsyncTask;
use napi_derive::napi;
use rnnlab_core::checkpoint::Checkpoint;
use rnnlab_core::jazz::{InferenceState, JazzModel, JazzTrainer};
use rnnlab_core::random::RandomState;

use crate::errors::{core_err, int_in, invalid_arg, Result};
use crate::task::{ChunkTask, Job, Shared};

/// Result of one `fit` chunk (a failed chunk rejects with an `Error` and its `code`).
#[napi(object)]
pub struct JazzFitReport {
    /// Loss of every epoch of this chunk (before its update, as Keras prints).
    pub loss: Vec<f64>,
    /// Accuracy of every epoch of this chunk.
    pub accuracy: Vec<f64>,
    /// Epochs done since the model was made.
    pub epochs_done: u32,
    /// True when `cancel()` stopped the chunk early.
    pub cancelled: bool,
}

/// What the model is made from: `m` windows of `tX` values drawn from `corpus`.
#[napi(object)]
pub struct JazzModelOptions {
    /// The corpus as value indices (each below `nValues`).
    pub corpus: Vec<f64>,
    /// Number of distinct values (the one-hot width).
    pub n_values: f64,
    /// Hidden size of the LSTM.
    pub n_a: f64,
    /// Steps per training window.
    pub t_x: f64,
    /// Number of training windows.
    pub m: f64,
    /// Seed of the windows and of the initial weights.
    pub seed: f64,
}

/// The course's djmodel (one LSTM cell shared over T_x steps + Dense softmax) with its
/// training windows and its Adam optimizer.
#[napi(js_name = "NativeJazzModel")]
pub struct NativeJazzModel {
    inner: Shared<JazzTrainer>,
    /// The TypeScript layer's JSON read from a checkpoint (`None` for a new model).
    meta: Option<String>,
}

/// Checkpoint metadata key of the TypeScript layer's JSON (corpus values, section, chords).
const META_KEY: &str = "improviser";

impl NativeJazzModel {
    fn wrap(trainer: JazzTrainer, meta: Option<String>) -> Self {
        NativeJazzModel {
            inner: Shared::new(
                trainer,
                "jazz model: busy (a fit() is running); await it first",
            ),
            meta,
        }
    }
}

/// An integer argument in `lo..=hi`.
fn whole(name: &str, v: f64, lo: usize, hi: usize) -> Result<usize> {
    Ok(int_in(name, v, lo as f64, hi as f64)? as usize)
}

#[napi]
impl NativeJazzModel {
    /// Builds the model and the training set: `m` windows of `tX` values drawn from `corpus`
    /// (value indices < `nValues`) with `RandomState(seed)`; weights initialised from
    /// `RandomState(seed)` (Glorot-uniform, see the core docs). Adam: lr 0.01, β 0.9/0.999, decay 0.01.
    #[napi(constructor, catch_unwind)]
    pub fn new(options: JazzModelOptions) -> Result<Self> {
        let JazzModelOptions {
            corpus,
            n_values,
            n_a,
            t_x,
            m,
            seed,
        } = options;
        let n_values = whole("nValues", n_values, 1, 1 << 16)?;
        let n_a = whole("nA", n_a, 1, 1 << 14)?;
        let t_x = whole("tX", t_x, 1, 1 << 16)?;
        let m = whole("m", m, 1, 1 << 20)?;
        let seed = whole("seed", seed, 0, u32::MAX as usize)? as u32;
        // the one-hot batch (m, T_x, n_values) and the gate weights (4·n_a, n_a + n_values)
        if m as u128 * t_x as u128 * n_values as u128 > 1 << 28
            || 4 * n_a as u128 * (n_a + n_values) as u128 > 1 << 28
        {
            return Err(invalid_arg(format!(
                "jazz model: m {m} × tX {t_x} × nValues {n_values} (or the LSTM of {n_a}) is more than the limit of 2^28 values"
            )));
        }
        let corpus = corpus
            .iter()
            .enumerate()
            .map(|(i, &v)| whole(&format!("corpus[{i}]"), v, 0, n_values - 1))
            .collect::<Result<Vec<usize>>>()?;
        let trainer = JazzTrainer::new(&corpus, n_values, n_a, t_x, m, seed).map_err(core_err)?;
        Ok(Self::wrap(trainer, None))
    }

    /// Reads a checkpoint written by `save` (kind "jazz"); a file of another kind is an
    /// `ERR_BAD_FILE` naming the kind it holds.
    #[napi(factory, catch_unwind)]
    pub fn load(path: String) -> Result<Self> {
        let ck = Checkpoint::read(&path).map_err(core_err)?;
        let trainer = JazzTrainer::from_checkpoint(&ck)
            .map_err(|e| napi::Error::new("ERR_BAD_FILE".to_string(), format!("{path}: {e}")))?;
        let meta = ck.metadata.get(META_KEY).cloned();
        Ok(Self::wrap(trainer, meta))
    }

    /// Writes the whole training state atomically (temp file + rename), with `meta` (the
    /// TypeScript layer's JSON) stored as it is in the checkpoint's metadata.
    #[napi(catch_unwind)]
    pub fn save(&self, path: String, meta: String) -> Result<()> {
        self.inner.with(|t| {
            let mut ck = t.to_checkpoint().map_err(core_err)?;
            ck.set_meta(META_KEY, &meta);
            ck.write_atomic(&path).map_err(core_err)
        })
    }

    /// The `meta` string of the checkpoint this model was loaded from (null for a new model).
    #[napi(getter)]
    pub fn meta(&self) -> Option<String> {
        self.meta.clone()
    }

    /// The seed of the windows and the initial weights.
    #[napi(getter, catch_unwind)]
    pub fn seed(&self) -> Result<u32> {
        Ok(self.inner.lock()?.seed())
    }

    /// Trains `epochs` more full-batch epochs off the JS thread.
    #[napi(ts_return_type = "Promise<JazzFitReport>")]
    pub fn fit(&self, epochs: f64) -> Result<AsyncTask<ChunkTask<JazzFitJob>>> {
        // a float, checked here: napi's u32 would turn -1 into four billion epochs
        let epochs = whole("epochs", epochs, 0, 1_000_000)?;
        self.inner.start(JazzFitJob { epochs })
    }

    /// Asks a running `fit` to stop after its current epoch.
    #[napi]
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// Epochs trained so far.
    #[napi(getter, catch_unwind)]
    pub fn epochs_done(&self) -> Result<u32> {
        Ok(self.inner.lock()?.epochs_done() as u32)
    }

    /// The course's `predict_and_sample`: `tY` steps from zero x, a, c; argmax when
    /// `temperature` is 0, else sampling from p^(1/T) with `RandomState(seed)`.
    #[napi(catch_unwind)]
    pub fn predict_and_sample(&self, t_y: f64, temperature: f64, seed: f64) -> Result<Vec<u32>> {
        let t_y = whole("tY", t_y, 0, 1 << 20)? as u32;
        let seed = whole("seed", seed, 0, u32::MAX as usize)? as u32;
        if !(temperature.is_finite() && temperature >= 0.0) {
            return Err(invalid_arg(format!(
                "temperature: expected a finite number >= 0, got {temperature}"
            )));
        }
        let t = self.inner.lock()?;
        let v = t
            .model()
            .predict_and_sample(t_y as usize, temperature, seed)
            .map_err(core_err)?;
        Ok(v.into_iter().map(|i| i as u32).collect())
    }

    /// A step-by-step inference loop over a snapshot of the current weights.
    #[napi(catch_unwind)]
    pub fn sampler(
        &self,
        temperature: f64,
        seed: f64,
        top_k: Option<f64>,
    ) -> Result<NativeJazzSampler> {
        let seed = whole("seed", seed, 0, u32::MAX as usize)? as u32;
        let top_k = whole("topK", top_k.unwrap_or(0.0), 0, u32::MAX as usize)?;
        if !(temperature.is_finite() && temperature >= 0.0) {
            return Err(invalid_arg(format!(
                "temperature: expected a finite number >= 0, got {temperature}"
            )));
        }
        let t = self.inner.lock()?;
        let state = t.model().zero_state();
        Ok(NativeJazzSampler {
            model: t.model().clone(),
            state,
            rng: RandomState::new(seed),
            temperature,
            top_k,
        })
    }
}

/// The inference loop of the course (`music_inference_model`): each `next()` runs the cell
/// once, picks a value and feeds its one-hot back.
#[napi(js_name = "NativeJazzSampler")]
pub struct NativeJazzSampler {
    model: JazzModel,
    state: InferenceState,
    rng: RandomState,
    temperature: f64,
    /// Sample among the `top_k` most likely values (0 = all).
    top_k: usize,
}

#[napi]
impl NativeJazzSampler {
    /// The next value index.
    #[napi(catch_unwind)]
    pub fn next(&mut self) -> Result<u32> {
        let v = self
            .model
            .step_sample(&mut self.state, self.temperature, self.top_k, &mut self.rng)
            .map_err(core_err)?;
        Ok(v as u32)
    }
}

/// One chunk of `fit`: `epochs` full-batch epochs, stopping early on `cancel()`.
pub struct JazzFitJob {
    epochs: usize,
}

impl Job for JazzFitJob {
    type State = JazzTrainer;
    type Output = JazzFitReport;
    type JsValue = JazzFitReport;
    const WHAT: &'static str = "jazz fit";

    fn run(&mut self, trainer: &mut JazzTrainer, cancel: &AtomicBool) -> Result<JazzFitReport> {
        let report = trainer
            .fit(self.epochs, || !cancel.load(Ordering::SeqCst))
            .map_err(core_err)?;
        Ok(JazzFitReport {
            loss: report.history.iter().map(|s| s.loss).collect(),
            accuracy: report.history.iter().map(|s| s.accuracy).collect(),
            epochs_done: trainer.epochs_done() as u32,
            cancelled: report.cancelled,
        })
    }

    fn to_js(report: JazzFitReport) -> JazzFitReport {
        report
    }
}
