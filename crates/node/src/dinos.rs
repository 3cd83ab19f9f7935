//! Dinosaurus Island for JS: the course's character-level RNN functions (`initializeParameters`,
//! `clip`, `optimize`, `sample`) and the resumable trainer behind `NameModel`, whose training
//! runs on libuv's pool in chunks with a cancel flag.

use std::sync::atomic::{AtomicBool, Ordering};

use napi::bindgen_prelude::{AsyncTask, Float64Array, Uint32Array};
use napi_derive::napi;
use rnnlab_core::checkpoint::Checkpoint;
use rnnlab_core::dinos::{
    self, Arithmetic, CharRnnGradients, CharRnnParams, Clip, DinoConfig, DinoTrainer,
};

use crate::errors::{core_err, int_in, invalid_arg, Error, Result};
use crate::record::course_record;
use crate::task::{ChunkTask, Job, Shared};
use crate::tensor::{from_array, to_array2, Tensor};

/// Most weights one matrix may hold (2^28 f64 = 2 GiB): a larger size is a mistake, and
/// refusing it here beats the allocator aborting Node.
const MAX_MATRIX: u128 = 1 << 28;

/// Empty axes count as 1: a `(2^31, 0)` weight still implies a `(2^31, 1)` bias.
fn check_matrix(name: &str, rows: u32, cols: u32) -> Result<()> {
    if rows.max(1) as u128 * cols.max(1) as u128 > MAX_MATRIX {
        return Err(invalid_arg(format!(
            "{name}: a ({rows}, {cols}) matrix is more than the limit of {MAX_MATRIX} values"
        )));
    }
    Ok(())
}

// ---- records keyed by the course's names ------------------------------------

course_record! {
    #[doc = "The character-level RNN's parameters, keyed as the course's Dinosaurus notebook."]
    pub struct CharRnnParameters for CharRnnParams {
        wax as "Wax": Tensor,
        waa as "Waa": Tensor,
        wya as "Wya": Tensor,
        b: Tensor,
        by: Tensor,
    }
}

course_record! {
    #[doc = "Gradients of the character-level RNN, keyed as the course."]
    pub struct CharRnnGradientRecord for CharRnnGradients {
        dwax as "dWax": Tensor,
        dwaa as "dWaa": Tensor,
        dwya as "dWya": Tensor,
        db: Tensor,
        dby: Tensor,
    }
}

/// An index read from JS: a finite integer in `0..limit`.
fn index(name: &str, v: f64, limit: usize) -> Result<usize> {
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
) -> Result<CharRnnParameters> {
    check_matrix("Wax", n_a, n_x)?;
    check_matrix("Waa", n_a, n_a)?;
    check_matrix("Wya", n_y, n_a)?;
    let p = dinos::initialize_parameters_seeded(
        n_a as usize,
        n_x as usize,
        n_y as usize,
        seed.unwrap_or(1),
    );
    Ok(CharRnnParameters::from_core(&p))
}

/// The course's `clip(gradients, maxValue)`: every gradient clipped element-wise to
/// `[-maxValue, maxValue]`. Returns new tensors; the inputs are untouched.
#[napi(catch_unwind)]
pub fn clip(gradients: CharRnnGradientRecord, max_value: f64) -> Result<CharRnnGradientRecord> {
    let mut g = gradients.to_core("gradients")?;
    dinos::clip(&mut g, max_value).map_err(core_err)?;
    Ok(CharRnnGradientRecord::from_core(&g))
}

/// The course's `sample(parameters, char_to_ix, seed)` given the index of `'\n'`.
#[napi(catch_unwind)]
pub fn sample_indices(
    parameters: CharRnnParameters,
    newline_index: f64,
    seed: u32,
) -> Result<Vec<u32>> {
    let p = parameters.to_core("parameters")?;
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
) -> Result<OptimizeResult> {
    let learning_rate = learning_rate.unwrap_or(0.01);
    let mut p = parameters.to_core("parameters")?;
    let v = p.wax.ncols();
    let xs = x
        .iter()
        .enumerate()
        .map(|(t, c)| c.map(|c| index(&format!("X[{t}]"), c, v)).transpose())
        .collect::<Result<Vec<_>>>()?;
    let ys = y
        .iter()
        .enumerate()
        .map(|(t, &c)| index(&format!("Y[{t}]"), c, p.by.nrows()))
        .collect::<Result<Vec<_>>>()?;
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
        gradients: CharRnnGradientRecord::from_core(&grads),
        a_last: from_array(&a_last),
        parameters: CharRnnParameters::from_core(&p),
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
    /// The course's `dino_names`: names per report, which also sets the initial smoothed loss
    /// `−log(1/vocab)·dino_names` (default 7).
    pub names_per_report: Option<f64>,
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
    /// Draw only among the k most likely characters (0 or absent = all).
    pub top_k: Option<u32>,
}

/// Options of `NativeNameTrainer.beamSearch`.
#[napi(object)]
pub struct NameBeamOptions {
    /// Characters fed first; they begin every result.
    pub prefix: Uint32Array,
    /// At most this many characters after the prefix.
    pub max_length: u32,
    /// Names kept and returned (1..=10000).
    pub beam_width: f64,
}

/// One name found by `beamSearch`.
#[napi(object)]
pub struct NameBeamResult {
    /// The prefix and the characters found, without the newline.
    pub indices: Uint32Array,
    /// Natural-log probability of the characters after the prefix (and of the newline when
    /// `ended`).
    pub log_prob: f64,
    /// True when the name ended with the newline, false when it reached `maxLength`.
    pub ended: bool,
}

/// Result of one `run` chunk (a failed chunk rejects with an `Error` and its `code`).
#[napi(object)]
pub struct NameRunReport {
    /// Smoothed loss after each iteration of the chunk.
    pub losses: Float64Array,
    /// True when `cancel()` stopped the chunk early (the state is consistent).
    pub cancelled: bool,
}

/// The course's Dinosaurus training loop, resumable: parameters, carried hidden state,
/// shuffled examples, iteration and smoothed loss.
#[napi(js_name = "NativeNameTrainer")]
pub struct NativeNameTrainer {
    trainer: Shared<DinoTrainer>,
}

impl NativeNameTrainer {
    fn with<T>(&self, f: impl FnOnce(&DinoTrainer) -> Result<T>) -> Result<T> {
        self.trainer.with(|t| f(t))
    }

    fn wrap(trainer: DinoTrainer) -> Self {
        NativeNameTrainer {
            trainer: Shared::new(
                trainer,
                "name model: busy (a train() chunk is running); await it first",
            ),
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
    ) -> Result<Self> {
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
            names_per_report: int_in(
                "namesPerReport",
                options.names_per_report.unwrap_or(7.0),
                0.0,
                1_000_000.0,
            )? as usize,
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
    pub fn load(path: String) -> Result<Self> {
        let ck = Checkpoint::read(&path).map_err(core_err)?;
        let trainer = DinoTrainer::from_checkpoint(&ck).map_err(|e| invalid_or_file(&path, e))?;
        Ok(Self::wrap(trainer))
    }

    /// Writes a checkpoint atomically (temp file + rename).
    #[napi(catch_unwind)]
    pub fn save(&self, path: String) -> Result<()> {
        self.with(|t| {
            t.to_checkpoint()
                .and_then(|ck| ck.write_atomic(&path))
                .map_err(core_err)
        })
    }

    /// Runs `iterations` more course iterations off the JS thread.
    #[napi(ts_return_type = "Promise<NameRunReport>")]
    pub fn run(&self, iterations: f64) -> Result<AsyncTask<ChunkTask<NameRunJob>>> {
        // a float, checked here: napi's u32 would turn -1 into four billion iterations
        let iterations = int_in("iterations", iterations, 0.0, 1e9)? as u64;
        self.trainer.start(NameRunJob { iterations })
    }

    /// Asks a running chunk to stop after its current iteration.
    #[napi]
    pub fn cancel(&self) {
        self.trainer.cancel();
    }

    /// Iterations done so far (the next iteration's `j`).
    #[napi(getter, catch_unwind)]
    pub fn iteration(&self) -> Result<f64> {
        self.with(|t| Ok(t.iteration() as f64))
    }

    /// The course's smoothed loss.
    #[napi(getter, catch_unwind)]
    pub fn smoothed_loss(&self) -> Result<f64> {
        self.with(|t| Ok(t.loss()))
    }

    /// `"numpy"` or `"fast"`: how the training step forms its sums.
    #[napi(getter, catch_unwind)]
    pub fn arithmetic(&self) -> Result<String> {
        self.with(|t| Ok(t.config().arithmetic.as_str().to_string()))
    }

    /// Hidden size n_a.
    #[napi(getter, catch_unwind)]
    pub fn hidden(&self) -> Result<u32> {
        self.with(|t| Ok(t.config().n_a as u32))
    }

    /// The vocabulary in index order.
    #[napi(getter, catch_unwind)]
    pub fn vocabulary(&self) -> Result<String> {
        self.with(|t| Ok(t.vocab().iter().collect()))
    }

    /// A copy of the parameters.
    #[napi(catch_unwind)]
    pub fn parameters(&self) -> Result<CharRnnParameters> {
        self.with(|t| Ok(CharRnnParameters::from_core(&t.params)))
    }

    /// The course's `sample(parameters, char_to_ix, seed)`: indices ending with `'\n'`.
    #[napi(catch_unwind)]
    pub fn sample_course(&self, seed: u32) -> Result<Uint32Array> {
        self.with(|t| {
            let ix = dinos::sample(&t.params, t.newline_ix(), seed).map_err(core_err)?;
            Ok(Uint32Array::new(ix.into_iter().map(|i| i as u32).collect()))
        })
    }

    /// `count` names sampled in parallel; name k from its own generator seeded `seed + k`.
    #[napi(catch_unwind)]
    pub fn sample(&self, options: NameSampleOptions) -> Result<Vec<Uint32Array>> {
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
            let opts = dinos::NameSampleOptions {
                seed: seed as u64,
                temperature: options.temperature,
                max_length: options.max_length as usize,
                prefix: options.prefix.iter().map(|&c| c as usize).collect(),
                course_mode: false,
                top_k: options.top_k.unwrap_or(0) as usize,
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

    /// The `beamWidth` most likely names after the prefix (beam search), best first.
    #[napi(catch_unwind)]
    pub fn beam_search(&self, options: NameBeamOptions) -> Result<Vec<NameBeamResult>> {
        let width = int_in("beamWidth", options.beam_width, 0.0, u32::MAX as f64)? as usize;
        if options.max_length == 0 || options.max_length > 1_000_000 {
            return Err(invalid_arg(format!(
                "maxLength: expected 1..=1000000, got {}",
                options.max_length
            )));
        }
        self.with(|t| {
            let prefix: Vec<usize> = options.prefix.iter().map(|&c| c as usize).collect();
            let found = dinos::beam_names(
                &t.params,
                t.newline_ix(),
                &prefix,
                options.max_length as usize,
                width,
            )
            .map_err(core_err)?;
            Ok(found
                .into_iter()
                .map(|b| NameBeamResult {
                    indices: Uint32Array::new(b.indices.into_iter().map(|i| i as u32).collect()),
                    log_prob: b.log_prob,
                    ended: b.ended,
                })
                .collect())
        })
    }
}

/// A checkpoint whose contents do not fit is a bad file, named.
fn invalid_or_file(path: &str, e: rnnlab_core::CoreError) -> Error {
    napi::Error::new("ERR_BAD_FILE".to_string(), format!("{path}: {e}"))
}

/// One chunk of `run`: `iterations` course iterations in one core call (the fast arithmetic
/// packs its weights once per call).
pub struct NameRunJob {
    iterations: u64,
}

impl Job for NameRunJob {
    type State = DinoTrainer;
    type Output = (Vec<f64>, bool);
    type JsValue = NameRunReport;
    const WHAT: &'static str = "name model training";

    fn run(&mut self, t: &mut DinoTrainer, cancel: &AtomicBool) -> Result<(Vec<f64>, bool)> {
        let mut losses = Vec::with_capacity((self.iterations as usize).min(1 << 20));
        if cancel.load(Ordering::Relaxed) {
            return Ok((losses, true));
        }
        let summary = t
            .train(self.iterations, |loss| {
                losses.push(loss);
                !cancel.load(Ordering::Relaxed)
            })
            .map_err(core_err)?;
        Ok((losses, summary.cancelled))
    }

    fn to_js((losses, cancelled): (Vec<f64>, bool)) -> NameRunReport {
        NameRunReport {
            losses: Float64Array::new(losses),
            cancelled,
        }
    }
}
