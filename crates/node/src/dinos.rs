//! Dinosaurus Island for JS: the course's character-level RNN functions (`initializeParameters`,
//! `clip`, `optimize`, `sample`) and the resumable trainer behind `NameModel`, whose training
//! runs on libuv's pool in chunks with a cancel flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{AsyncTask, Float64Array, Uint32Array};
use napi::{Env, Task};
use napi_derive::napi;
use rnnlab_core::checkpoint::Checkpoint;
use rnnlab_core::dinos::{
    self, Arithmetic, CharRnnGradients, CharRnnParams, Clip, DinoConfig, DinoTrainer, SampleOptions,
};

use crate::errors::{core_err, guard, int_in, invalid_arg, JsResult};
use crate::tensor::{from_array, to_array2, Tensor};

/// Most weights one matrix may hold (2^28 f64 = 2 GiB): a larger size is a mistake, and
/// refusing it here beats the allocator aborting Node.
const MAX_MATRIX: u128 = 1 << 28;

/// Empty axes count as 1: a `(2^31, 0)` weight still implies a `(2^31, 1)` bias.
fn check_matrix(name: &str, rows: u32, cols: u32) -> JsResult<()> {
    if rows.max(1) as u128 * cols.max(1) as u128 > MAX_MATRIX {
        return Err(invalid_arg(format!(
            "{name}: a ({rows}, {cols}) matrix is more than the limit of {MAX_MATRIX} values"
        )));
    }
    Ok(())
}

// ---- records keyed by the course's names ------------------------------------

/// The character-level RNN's parameters, keyed as the course's Dinosaurus notebook.
#[napi(object)]
pub struct CharRnnParameters {
    #[napi(js_name = "Wax")]
    pub wax: Tensor,
    #[napi(js_name = "Waa")]
    pub waa: Tensor,
    #[napi(js_name = "Wya")]
    pub wya: Tensor,
    pub b: Tensor,
    pub by: Tensor,
}

fn params_from_js(name: &str, p: &CharRnnParameters) -> JsResult<CharRnnParams> {
    let w = |key: &str, t: &Tensor| to_array2(&format!("{name}.{key}"), t);
    Ok(CharRnnParams {
        wax: w("Wax", &p.wax)?,
        waa: w("Waa", &p.waa)?,
        wya: w("Wya", &p.wya)?,
        b: w("b", &p.b)?,
        by: w("by", &p.by)?,
    })
}

fn params_to_js(p: &CharRnnParams) -> CharRnnParameters {
    CharRnnParameters {
        wax: from_array(&p.wax),
        waa: from_array(&p.waa),
        wya: from_array(&p.wya),
        b: from_array(&p.b),
        by: from_array(&p.by),
    }
}

/// Gradients of the character-level RNN, keyed as the course.
#[napi(object)]
pub struct CharRnnGradientRecord {
    #[napi(js_name = "dWax")]
    pub dwax: Tensor,
    #[napi(js_name = "dWaa")]
    pub dwaa: Tensor,
    #[napi(js_name = "dWya")]
    pub dwya: Tensor,
    pub db: Tensor,
    pub dby: Tensor,
}

fn grads_from_js(name: &str, g: &CharRnnGradientRecord) -> JsResult<CharRnnGradients> {
    let w = |key: &str, t: &Tensor| to_array2(&format!("{name}.{key}"), t);
    Ok(CharRnnGradients {
        dwax: w("dWax", &g.dwax)?,
        dwaa: w("dWaa", &g.dwaa)?,
        dwya: w("dWya", &g.dwya)?,
        db: w("db", &g.db)?,
        dby: w("dby", &g.dby)?,
    })
}

fn grads_to_js(g: &CharRnnGradients) -> CharRnnGradientRecord {
    CharRnnGradientRecord {
        dwax: from_array(&g.dwax),
        dwaa: from_array(&g.dwaa),
        dwya: from_array(&g.dwya),
        db: from_array(&g.db),
        dby: from_array(&g.dby),
    }
}

/// An index read from JS: a finite integer in `0..limit`.
fn index(name: &str, v: f64, limit: usize) -> JsResult<usize> {
    if v.fract() == 0.0 && v >= 0.0 && v < limit as f64 {
        Ok(v as usize)
    } else {
        Err(invalid_arg(format!(
            "{name}: expected an integer index in 0..{limit}, got {v}"
        )))
    }
}

// ---- the course's functions ---------------------------------------------------

/// The course's `initialize_parameters(n_a, n_x, n_y)`: `np.random.seed(1)` (or `seed`),
/// then `Wax, Waa, Wya = randn·0.01` in that order and zero biases.
#[napi(catch_unwind)]
pub fn initialize_parameters(
    n_a: u32,
    n_x: u32,
    n_y: u32,
    seed: Option<u32>,
) -> napi::Result<CharRnnParameters, String> {
    check_matrix("Wax", n_a, n_x)?;
    check_matrix("Waa", n_a, n_a)?;
    check_matrix("Wya", n_y, n_a)?;
    let p = dinos::initialize_parameters_seeded(
        n_a as usize,
        n_x as usize,
        n_y as usize,
        seed.unwrap_or(1),
    );
    Ok(params_to_js(&p))
}

/// The course's `clip(gradients, maxValue)`: every gradient clipped element-wise to
/// `[-maxValue, maxValue]`. Returns new tensors; the inputs are untouched.
#[napi(catch_unwind)]
pub fn clip(
    gradients: CharRnnGradientRecord,
    max_value: f64,
) -> napi::Result<CharRnnGradientRecord, String> {
    let mut g = grads_from_js("gradients", &gradients)?;
    dinos::clip(&mut g, max_value).map_err(core_err)?;
    Ok(grads_to_js(&g))
}

/// The course's `sample(parameters, char_to_ix, seed)` given the index of `'\n'`.
#[napi(catch_unwind)]
pub fn sample_indices(
    parameters: CharRnnParameters,
    newline_index: f64,
    seed: u32,
) -> napi::Result<Vec<u32>, String> {
    let p = params_from_js("parameters", &parameters)?;
    let nl = index("newline index", newline_index, p.by.nrows())?;
    let ix = dinos::sample(&p, nl, seed).map_err(core_err)?;
    Ok(ix.into_iter().map(|i| i as u32).collect())
}

/// What `optimize` returns: the course's `loss, gradients, a[len(X)-1]` plus the updated
/// parameters (the course updates its dict in place; the TS layer copies them back).
#[napi(object, object_from_js = false)]
pub struct OptimizeResult {
    pub loss: f64,
    pub gradients: CharRnnGradientRecord,
    #[napi(js_name = "a_last")]
    pub a_last: Tensor,
    pub parameters: CharRnnParameters,
}

/// The course's `optimize(X, Y, a_prev, parameters, learning_rate)`: forward, backward,
/// clip to ±5, SGD update. `X[t]` may be `null` (a zero input vector, the course's `None`).
#[napi(catch_unwind)]
pub fn optimize(
    x: Vec<Option<f64>>,
    y: Vec<f64>,
    a_prev: Tensor,
    parameters: CharRnnParameters,
    learning_rate: Option<f64>,
) -> napi::Result<OptimizeResult, String> {
    let learning_rate = learning_rate.unwrap_or(0.01);
    let mut p = params_from_js("parameters", &parameters)?;
    let v = p.wax.ncols();
    let xs = x
        .iter()
        .enumerate()
        .map(|(t, c)| c.map(|c| index(&format!("X[{t}]"), c, v)).transpose())
        .collect::<JsResult<Vec<_>>>()?;
    let ys = y
        .iter()
        .enumerate()
        .map(|(t, &c)| index(&format!("Y[{t}]"), c, p.by.nrows()))
        .collect::<JsResult<Vec<_>>>()?;
    let a0 = to_array2("a_prev", &a_prev)?;
    let a0 = a0.as_standard_layout();
    let a0 = a0
        .as_slice()
        .ok_or_else(|| invalid_arg("a_prev: not contiguous"))?;
    let (loss, grads, a_last) =
        dinos::optimize(&xs, &ys, a0, &mut p, learning_rate).map_err(core_err)?;
    let n_a = a_last.len();
    let a_last = ndarray::Array2::from_shape_vec((n_a, 1), a_last)
        .map_err(|e| invalid_arg(e.to_string()))?;
    Ok(OptimizeResult {
        loss,
        gradients: grads_to_js(&grads),
        a_last: from_array(&a_last),
        parameters: params_to_js(&p),
    })
}

// ---- the trainer behind NameModel ---------------------------------------------

/// Hyperparameters of a new trainer; unset fields take the course's values.
#[napi(object)]
pub struct NameTrainerOptions {
    pub hidden: Option<f64>,
    pub learning_rate: Option<f64>,
    pub clip: Option<f64>,
    pub shuffle_seed: Option<u32>,
    /// `"numpy"` (numpy's summation order, bit for bit; the default) or `"fast"`.
    pub arithmetic: Option<String>,
}

/// Options of `NativeNameTrainer.sample`.
#[napi(object)]
pub struct NameSampleOptions {
    /// Seed of the first name; name k uses seed + k (an integer below 2^53).
    pub seed: f64,
    pub temperature: f64,
    pub max_length: u32,
    pub prefix: Uint32Array,
    pub count: u32,
}

/// Result of one `run` chunk. Errors come back as `errorCode`/`errorMessage` (the TS layer
/// throws them) so the core's stable codes survive the async boundary.
#[napi(object)]
pub struct NameRunReport {
    /// Smoothed loss after each iteration of the chunk.
    pub losses: Float64Array,
    /// True when `cancel()` stopped the chunk early (the state is consistent).
    pub cancelled: bool,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// The course's Dinosaurus training loop, resumable: parameters, carried hidden state,
/// shuffled examples, iteration and smoothed loss.
#[napi(js_name = "NativeNameTrainer")]
pub struct NativeNameTrainer {
    inner: Arc<Mutex<DinoTrainer>>,
    cancel: Arc<AtomicBool>,
}

fn busy() -> napi::Error<String> {
    invalid_arg("name model: busy (a train() chunk is running); await it first")
}

impl NativeNameTrainer {
    fn with<T>(&self, f: impl FnOnce(&DinoTrainer) -> JsResult<T>) -> JsResult<T> {
        let t = self.inner.try_lock().map_err(|_| busy())?;
        f(&t)
    }

    fn wrap(trainer: DinoTrainer) -> Self {
        NativeNameTrainer {
            inner: Arc::new(Mutex::new(trainer)),
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

#[napi]
impl NativeNameTrainer {
    /// A trainer as the course starts it: `vocabulary` lists the characters in index order
    /// (it must contain `'\n'`), `examples` the names as indices in file order (shuffled here).
    #[napi(constructor, catch_unwind)]
    pub fn new(
        vocabulary: String,
        examples: Vec<Uint32Array>,
        options: NameTrainerOptions,
    ) -> napi::Result<Self, String> {
        let n_a = int_in("hidden", options.hidden.unwrap_or(50.0), 1.0, 65536.0)? as u32;
        let v = vocabulary.chars().count() as u32;
        check_matrix("Wax", n_a, v)?;
        check_matrix("Waa", n_a, n_a)?;
        let clip_value = options.clip.unwrap_or(dinos::COURSE_CLIP);
        let config = DinoConfig {
            n_a: n_a as usize,
            learning_rate: options.learning_rate.unwrap_or(0.01),
            clip: if clip_value == 0.0 {
                Clip::default()
            } else {
                Clip {
                    value: Some(clip_value),
                    norm: None,
                }
            },
            shuffle_seed: options.shuffle_seed.unwrap_or(0),
            arithmetic: Arithmetic::parse(options.arithmetic.as_deref().unwrap_or("numpy"))
                .map_err(core_err)?,
            ..DinoConfig::default()
        };
        let examples: Vec<Vec<usize>> = examples
            .iter()
            .map(|e| e.iter().map(|&c| c as usize).collect())
            .collect();
        let trainer = DinoTrainer::new(&vocabulary, examples, config).map_err(core_err)?;
        Ok(Self::wrap(trainer))
    }

    /// Loads a checkpoint written by `save`.
    #[napi(factory, catch_unwind)]
    pub fn load(path: String) -> napi::Result<Self, String> {
        let ck = Checkpoint::read(&path).map_err(core_err)?;
        let trainer = DinoTrainer::from_checkpoint(&ck).map_err(|e| invalid_or_file(&path, e))?;
        Ok(Self::wrap(trainer))
    }

    /// Writes a checkpoint atomically (temp file + rename).
    #[napi(catch_unwind)]
    pub fn save(&self, path: String) -> napi::Result<(), String> {
        self.with(|t| {
            t.to_checkpoint()
                .and_then(|ck| ck.write_atomic(&path))
                .map_err(core_err)
        })
    }

    /// Runs `iterations` more course iterations off the JS thread.
    #[napi(ts_return_type = "Promise<NameRunReport>")]
    pub fn run(&self, iterations: f64) -> napi::Result<AsyncTask<NameRunTask>, String> {
        // a float, checked here: napi's u32 would turn -1 into four billion iterations
        let iterations = int_in("iterations", iterations, 0.0, 1e9)? as u64;
        self.cancel.store(false, Ordering::SeqCst);
        Ok(AsyncTask::new(NameRunTask {
            inner: self.inner.clone(),
            cancel: self.cancel.clone(),
            iterations,
        }))
    }

    /// Asks a running chunk to stop after its current iteration.
    #[napi]
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Iterations done so far (the next iteration's `j`).
    #[napi(getter, catch_unwind)]
    pub fn iteration(&self) -> napi::Result<f64, String> {
        self.with(|t| Ok(t.iteration() as f64))
    }

    /// The course's smoothed loss.
    #[napi(getter, catch_unwind)]
    pub fn smoothed_loss(&self) -> napi::Result<f64, String> {
        self.with(|t| Ok(t.loss()))
    }

    /// `"numpy"` or `"fast"`: how the training step forms its sums.
    #[napi(getter, catch_unwind)]
    pub fn arithmetic(&self) -> napi::Result<String, String> {
        self.with(|t| Ok(t.config().arithmetic.as_str().to_string()))
    }

    /// Hidden size n_a.
    #[napi(getter, catch_unwind)]
    pub fn hidden(&self) -> napi::Result<u32, String> {
        self.with(|t| Ok(t.config().n_a as u32))
    }

    /// The vocabulary in index order.
    #[napi(getter, catch_unwind)]
    pub fn vocabulary(&self) -> napi::Result<String, String> {
        self.with(|t| Ok(t.vocab().iter().collect()))
    }

    /// A copy of the parameters.
    #[napi(catch_unwind)]
    pub fn parameters(&self) -> napi::Result<CharRnnParameters, String> {
        self.with(|t| Ok(params_to_js(&t.params)))
    }

    /// The course's `sample(parameters, char_to_ix, seed)`: indices ending with `'\n'`.
    #[napi(catch_unwind)]
    pub fn sample_course(&self, seed: u32) -> napi::Result<Uint32Array, String> {
        self.with(|t| {
            let ix = dinos::sample(&t.params, t.newline_ix(), seed).map_err(core_err)?;
            Ok(Uint32Array::new(ix.into_iter().map(|i| i as u32).collect()))
        })
    }

    /// `count` names sampled in parallel; name k from its own generator seeded `seed + k`.
    #[napi(catch_unwind)]
    pub fn sample(&self, options: NameSampleOptions) -> napi::Result<Vec<Uint32Array>, String> {
        let seed = int_in("seed", options.seed, 0.0, 9007199254740991.0)?;
        if options.count > 1_000_000 {
            return Err(invalid_arg(format!(
                "count: at most 1000000 names per call, got {}",
                options.count
            )));
        }
        if options.max_length == 0 || options.max_length > 1_000_000 {
            return Err(invalid_arg(format!(
                "maxLength: expected 1..=1000000, got {}",
                options.max_length
            )));
        }
        self.with(|t| {
            let opts = SampleOptions {
                seed: seed as u64,
                temperature: options.temperature,
                max_length: options.max_length as usize,
                prefix: options.prefix.iter().map(|&c| c as usize).collect(),
                course_mode: false,
            };
            let names =
                dinos::sample_many(&t.params, t.newline_ix(), &opts, options.count as usize)
                    .map_err(core_err)?;
            Ok(names
                .into_iter()
                .map(|n| Uint32Array::new(n.into_iter().map(|i| i as u32).collect()))
                .collect())
        })
    }
}

/// A checkpoint whose contents do not fit is a bad file, named.
fn invalid_or_file(path: &str, e: rnnlab_core::CoreError) -> napi::Error<String> {
    napi::Error::new("ERR_BAD_FILE".to_string(), format!("{path}: {e}"))
}

/// One training chunk on libuv's pool.
pub struct NameRunTask {
    inner: Arc<Mutex<DinoTrainer>>,
    cancel: Arc<AtomicBool>,
    iterations: u64,
}

pub struct RunOutput {
    losses: Vec<f64>,
    cancelled: bool,
    error: Option<(String, String)>,
}

impl Task for NameRunTask {
    type Output = RunOutput;
    type JsValue = NameRunReport;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let (inner, cancel, n) = (
            self.inner.clone(),
            self.cancel.clone(),
            self.iterations as usize,
        );
        let mut losses = Vec::with_capacity(n.min(1 << 20));
        let mut cancelled = false;
        let result = guard("name model training", || {
            let mut t = inner.try_lock().map_err(|_| busy())?;
            if cancel.load(Ordering::Relaxed) {
                cancelled = true;
                return Ok(());
            }
            // one call for the chunk: the fast arithmetic packs its weights once per call
            let summary = t
                .train(n as u64, |loss| {
                    losses.push(loss);
                    !cancel.load(Ordering::Relaxed)
                })
                .map_err(core_err)?;
            cancelled = summary.cancelled;
            Ok(())
        });
        let error = result.err().map(|e| (e.status.clone(), e.reason.clone()));
        Ok(RunOutput {
            losses,
            cancelled,
            error,
        })
    }

    fn resolve(&mut self, _env: Env, out: Self::Output) -> napi::Result<Self::JsValue> {
        let (error_code, error_message) = match out.error {
            Some((c, m)) => (Some(c), Some(m)),
            None => (None, None),
        };
        Ok(NameRunReport {
            losses: Float64Array::new(out.losses),
            cancelled: out.cancelled,
            error_code,
            error_message,
        })
    }
}
