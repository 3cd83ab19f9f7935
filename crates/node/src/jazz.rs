//! The jazz djmodel for JS: training off the JS thread in chunks of epochs (an `AsyncTask`
//! with a cancel flag), and the inference loop one step at a time so the TypeScript layer
//! can drive the music generation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;
use rnnlab_core::jazz::{InferenceState, JazzModel, JazzTrainer};
use rnnlab_core::random::RandomState;

use crate::errors::{core_err, guard, int_in, invalid_arg};

/// Result of one `fit` chunk. Errors come back as `errorCode`/`errorMessage` (the TS layer
/// throws them), so the core's stable codes survive the async boundary.
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
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// The course's djmodel (one LSTM cell shared over T_x steps + Dense softmax) with its
/// training windows and its Adam optimizer.
#[napi(js_name = "NativeJazzModel")]
pub struct NativeJazzModel {
    inner: Arc<Mutex<JazzTrainer>>,
    cancel: Arc<AtomicBool>,
}

/// An integer argument in `lo..=hi`.
fn whole(name: &str, v: f64, lo: usize, hi: usize) -> napi::Result<usize, String> {
    Ok(int_in(name, v, lo as f64, hi as f64)? as usize)
}

fn busy() -> napi::Error<String> {
    napi::Error::new(
        "ERR_BUSY".to_string(),
        "jazz model: busy (a fit() is running); await it first".to_string(),
    )
}

#[napi]
impl NativeJazzModel {
    /// Builds the model and the training set: `m` windows of `tX` values drawn from `corpus`
    /// (value indices < `nValues`) with `RandomState(seed)`; weights initialised from
    /// `RandomState(seed)` (Glorot-uniform, see the core docs). Adam: lr 0.01, β 0.9/0.999, decay 0.01.
    #[napi(constructor, catch_unwind)]
    pub fn new(
        corpus: Vec<f64>,
        n_values: f64,
        n_a: f64,
        t_x: f64,
        m: f64,
        seed: f64,
    ) -> napi::Result<Self, String> {
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
            .collect::<napi::Result<Vec<usize>, String>>()?;
        let trainer = JazzTrainer::new(&corpus, n_values, n_a, t_x, m, seed).map_err(core_err)?;
        Ok(NativeJazzModel {
            inner: Arc::new(Mutex::new(trainer)),
            cancel: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Trains `epochs` more full-batch epochs off the JS thread.
    #[napi(ts_return_type = "Promise<JazzFitReport>")]
    pub fn fit(&self, epochs: f64) -> napi::Result<AsyncTask<JazzFitTask>, String> {
        // a float, checked here: napi's u32 would turn -1 into four billion epochs
        let epochs = whole("epochs", epochs, 0, 1_000_000)? as u32;
        self.cancel.store(false, Ordering::SeqCst);
        Ok(AsyncTask::new(JazzFitTask {
            inner: self.inner.clone(),
            cancel: self.cancel.clone(),
            epochs,
        }))
    }

    /// Asks a running `fit` to stop after its current epoch.
    #[napi]
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Epochs trained so far.
    #[napi(getter, catch_unwind)]
    pub fn epochs_done(&self) -> napi::Result<u32, String> {
        Ok(self.inner.try_lock().map_err(|_| busy())?.epochs_done() as u32)
    }

    /// The course's `predict_and_sample`: `tY` steps from zero x, a, c; argmax when
    /// `temperature` is 0, else sampling from p^(1/T) with `RandomState(seed)`.
    #[napi(catch_unwind)]
    pub fn predict_and_sample(
        &self,
        t_y: f64,
        temperature: f64,
        seed: f64,
    ) -> napi::Result<Vec<u32>, String> {
        let t_y = whole("tY", t_y, 0, 1 << 20)? as u32;
        let seed = whole("seed", seed, 0, u32::MAX as usize)? as u32;
        if !(temperature.is_finite() && temperature >= 0.0) {
            return Err(invalid_arg(format!(
                "temperature: expected a finite number >= 0, got {temperature}"
            )));
        }
        let t = self.inner.try_lock().map_err(|_| busy())?;
        let v = t
            .model()
            .predict_and_sample(t_y as usize, temperature, seed)
            .map_err(core_err)?;
        Ok(v.into_iter().map(|i| i as u32).collect())
    }

    /// A step-by-step inference loop over a snapshot of the current weights.
    #[napi(catch_unwind)]
    pub fn sampler(&self, temperature: f64, seed: f64) -> napi::Result<NativeJazzSampler, String> {
        let seed = whole("seed", seed, 0, u32::MAX as usize)? as u32;
        if !(temperature.is_finite() && temperature >= 0.0) {
            return Err(invalid_arg(format!(
                "temperature: expected a finite number >= 0, got {temperature}"
            )));
        }
        let t = self.inner.try_lock().map_err(|_| busy())?;
        let state = t.model().zero_state();
        Ok(NativeJazzSampler {
            model: t.model().clone(),
            state,
            rng: RandomState::new(seed),
            temperature,
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
}

#[napi]
impl NativeJazzSampler {
    /// The next value index.
    #[napi(catch_unwind)]
    pub fn next(&mut self) -> napi::Result<u32, String> {
        let v = self
            .model
            .step_sample(&mut self.state, self.temperature, &mut self.rng)
            .map_err(core_err)?;
        Ok(v as u32)
    }
}

/// The training chunk run on libuv's pool.
pub struct JazzFitTask {
    inner: Arc<Mutex<JazzTrainer>>,
    cancel: Arc<AtomicBool>,
    epochs: u32,
}

pub struct FitOutput {
    loss: Vec<f64>,
    accuracy: Vec<f64>,
    epochs_done: u32,
    cancelled: bool,
    error: Option<(String, String)>,
}

impl Task for JazzFitTask {
    type Output = FitOutput;
    type JsValue = JazzFitReport;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let inner = self.inner.clone();
        let cancel = self.cancel.clone();
        let epochs = self.epochs as usize;
        let run = guard("jazz fit", move || {
            let mut trainer = inner.try_lock().map_err(|_| busy())?;
            let report = trainer
                .fit(epochs, || !cancel.load(Ordering::SeqCst))
                .map_err(core_err)?;
            Ok(FitOutput {
                loss: report.history.iter().map(|s| s.loss).collect(),
                accuracy: report.history.iter().map(|s| s.accuracy).collect(),
                epochs_done: trainer.epochs_done() as u32,
                cancelled: report.cancelled,
                error: None,
            })
        });
        Ok(run.unwrap_or_else(|e: napi::Error<String>| FitOutput {
            loss: vec![],
            accuracy: vec![],
            epochs_done: 0,
            cancelled: false,
            error: Some((e.status.clone(), e.reason.clone())),
        }))
    }

    fn resolve(&mut self, _env: Env, out: Self::Output) -> napi::Result<Self::JsValue> {
        let (error_code, error_message) = match out.error {
            Some((c, m)) => (Some(c), Some(m)),
            None => (None, None),
        };
        Ok(JazzFitReport {
            loss: out.loss,
            accuracy: out.accuracy,
            epochs_done: out.epochs_done,
            cancelled: out.cancelled,
            error_code,
            error_message,
        })
    }
}
