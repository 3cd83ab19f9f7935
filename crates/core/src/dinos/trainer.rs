//! Dinosaurus Island: the course's `model()` training loop as a resumable trainer.
//!
//! One iteration `j` (the course, step for step):
//! ```text
//! name = examples[j mod N]                  (examples shuffled once: seed(0); shuffle)
//! X = [None] + ix(name)    Y = X[1:] + [ix('\n')]
//! loss_j, a_prev = optimize(X, Y, a_prev)   (forward, backward, clip ±5, SGD lr 0.01)
//! loss = loss·0.999 + loss_j·0.001          (starts at −log(1/vocab)·7)
//! every `every` iterations (j % every == 0): report loss and 7 names sampled with seeds 0..6
//! ```
//! The hidden state carries over between iterations. All buffers are sized once for the
//! longest example, so an iteration allocates nothing.

use ndarray::Array2;

use super::course::{
    initial_loss, initialize_parameters_seeded, optimize_step, smooth, OnNonFinite,
};
use super::fast::{Arithmetic, FastCharRnn};
use super::sample::{sample_many, NameSampleOptions};
use super::{
    check_clip, CharRnnParams, CharRnnWorkspace, Clip, COURSE_CLIP, COURSE_MAX_SAMPLE_LENGTH,
};
use crate::checkpoint::Checkpoint;
use crate::error::{CoreError, Result};
use crate::random::RandomState;

/// `metadata["kind"]` of a Dinosaurus checkpoint.
pub const CHECKPOINT_KIND: &str = "dinos";

/// Hyperparameters; the defaults are the course's.
#[derive(Debug, Clone, PartialEq)]
pub struct DinoConfig {
    /// Hidden size (course: 50).
    pub n_a: usize,
    /// SGD learning rate (course: 0.01).
    pub learning_rate: f64,
    /// Gradient clipping (course: element-wise ±5).
    pub clip: Clip,
    /// Seed of the one-time example shuffle (course: 0).
    pub shuffle_seed: u32,
    /// Seed of the parameter initialisation (course: 1).
    pub init_seed: u32,
    /// Names sampled per report (course: 7, which also sets the initial smoothed loss
    /// `−log(1/vocab)·names_per_report`, as the course does).
    pub names_per_report: usize,
    /// Sampled characters per name before the newline is forced (course: 50).
    pub sample_max_length: usize,
    /// numpy's summation order bit for bit (the default), or the fastest order (numpy's
    /// trace through iteration 12 000; element-wise or no clipping only).
    pub arithmetic: Arithmetic,
}

impl Default for DinoConfig {
    fn default() -> Self {
        DinoConfig {
            n_a: 50,
            learning_rate: 0.01,
            clip: Clip {
                value: Some(COURSE_CLIP),
                norm: None,
            },
            shuffle_seed: 0,
            init_seed: 1,
            names_per_report: 7,
            sample_max_length: COURSE_MAX_SAMPLE_LENGTH,
            arithmetic: Arithmetic::Numpy,
        }
    }
}

impl DinoConfig {
    fn validate(&self) -> Result<()> {
        if self.n_a == 0 {
            return Err(CoreError::invalid(
                "n_a: expected a hidden size >= 1, got 0",
            ));
        }
        if !self.learning_rate.is_finite() || self.learning_rate < 0.0 {
            return Err(CoreError::invalid(format!(
                "learning_rate: expected a finite number >= 0, got {}",
                self.learning_rate
            )));
        }
        check_clip(&self.clip)?;
        if self.arithmetic == Arithmetic::Fast {
            if let Some(v) = self.clip.norm {
                return Err(CoreError::invalid(format!(
                    "clip: the fast arithmetic clips element-wise (or not at all), got a \
                     global-norm clip of {v}; use arithmetic numpy for it"
                )));
            }
        }
        Ok(())
    }
}

/// The report emitted every `every` iterations.
#[derive(Debug, Clone, PartialEq)]
pub struct DinoReport {
    /// The iteration just completed (the course's `j`).
    pub iteration: u64,
    /// Smoothed loss after it.
    pub loss: f64,
    /// Loss of that iteration's example alone.
    pub current_loss: f64,
    /// Sampled names as indices, each ending with the newline index (course `sample`).
    pub samples: Vec<Vec<usize>>,
    /// The same names as text, first letter capitalised, newlines removed.
    pub names: Vec<String>,
}

/// Events of [`DinoTrainer::run`].
#[derive(Debug, Clone, PartialEq)]
pub enum DinoEvent {
    /// A progress report (loss and sampled names).
    Report(DinoReport),
}

/// What [`DinoTrainer::run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    /// Iterations completed by this call.
    pub iterations_run: u64,
    /// `true` if the callback asked to stop (the trainer state is consistent and resumable).
    pub cancelled: bool,
}

/// The Dinosaurus Island trainer: parameters, carried hidden state, shuffled examples,
/// iteration counter and smoothed loss.
#[derive(Debug, Clone)]
pub struct DinoTrainer {
    /// The model.
    pub params: CharRnnParams,
    /// Hidden state carried to the next iteration, `(n_a,)`.
    a_prev: Vec<f64>,
    /// Training names as vocabulary indices, in (shuffled) training order.
    examples: Vec<Vec<usize>>,
    /// Next iteration to run (the course's `j`).
    iteration: u64,
    /// Smoothed loss.
    loss: f64,
    config: DinoConfig,
    /// Vocabulary in index order.
    vocab: Vec<char>,
    newline_ix: usize,
    workspace: CharRnnWorkspace,
    x_buf: Vec<Option<usize>>, // (T_max,)
    y_buf: Vec<usize>,         // (T_max,)
    /// Packed weights of [`Arithmetic::Fast`] (kept between runs so a run allocates nothing);
    /// they hold the live weights only inside a run, `params` holds them between calls.
    fast: Option<Box<FastCharRnn>>,
}

impl DinoTrainer {
    /// A trainer as the course starts it. `vocab` lists the characters in index order and
    /// must contain `'\n'` (the course: sorted unique characters of the lower-cased corpus,
    /// so `'\n'` is 0); `examples` are the names as indices, in file order — they are
    /// shuffled here with `config.shuffle_seed` exactly like `np.random.seed(0);
    /// np.random.shuffle(examples)`.
    pub fn new(vocab: &str, mut examples: Vec<Vec<usize>>, config: DinoConfig) -> Result<Self> {
        config.validate()?;
        let vocab: Vec<char> = vocab.chars().collect();
        let newline_ix = check_vocab(&vocab)?;
        check_examples(&examples, vocab.len())?;
        RandomState::new(config.shuffle_seed).shuffle(&mut examples);
        let v = vocab.len();
        let params = initialize_parameters_seeded(config.n_a, v, v, config.init_seed);
        let loss = initial_loss(v, config.names_per_report);
        let a_prev = vec![0.0; config.n_a];
        Ok(Self::assemble(
            params, a_prev, examples, 0, loss, config, vocab, newline_ix,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        params: CharRnnParams,
        a_prev: Vec<f64>,
        examples: Vec<Vec<usize>>,
        iteration: u64,
        loss: f64,
        config: DinoConfig,
        vocab: Vec<char>,
        newline_ix: usize,
    ) -> Self {
        // X = [None] + name has one step more than the name
        let t_max = examples.iter().map(Vec::len).max().unwrap_or(0) + 1;
        let v = vocab.len();
        DinoTrainer {
            workspace: CharRnnWorkspace::new(config.n_a, v, v, t_max),
            x_buf: Vec::with_capacity(t_max),
            y_buf: Vec::with_capacity(t_max),
            fast: None,
            params,
            a_prev,
            examples,
            iteration,
            loss,
            config,
            vocab,
            newline_ix,
        }
    }

    /// Next iteration to run (= iterations done so far).
    pub fn iteration(&self) -> u64 {
        self.iteration
    }
    /// Current smoothed loss.
    pub fn loss(&self) -> f64 {
        self.loss
    }
    /// Hidden state carried into the next iteration, `(n_a,)`.
    pub fn a_prev(&self) -> &[f64] {
        &self.a_prev
    }
    /// Training names in training (shuffled) order.
    pub fn examples(&self) -> &[Vec<usize>] {
        &self.examples
    }
    /// The hyperparameters.
    pub fn config(&self) -> &DinoConfig {
        &self.config
    }
    /// The vocabulary in index order.
    pub fn vocab(&self) -> &[char] {
        &self.vocab
    }
    /// Index of `'\n'`.
    pub fn newline_ix(&self) -> usize {
        self.newline_ix
    }

    /// One course iteration; returns that example's (unsmoothed) loss. (Under
    /// [`Arithmetic::Fast`] each call packs and unpacks the weights: loops should use
    /// [`DinoTrainer::run`] or [`DinoTrainer::train`], which do it once.)
    pub fn step(&mut self) -> Result<f64> {
        self.with_kernel(|t, kernel| t.step_with(kernel))
    }

    /// Runs `f` with the fast kernel holding the live weights (`None` under numpy
    /// arithmetic), then writes them back to `params` whatever `f` returned.
    fn with_kernel<R>(
        &mut self,
        f: impl FnOnce(&mut Self, Option<&mut FastCharRnn>) -> Result<R>,
    ) -> Result<R> {
        if self.config.arithmetic == Arithmetic::Numpy {
            return f(self, None);
        }
        let mut kernel = match self.fast.take() {
            Some(mut k) => {
                k.load_weights(&self.params)?;
                k
            }
            None => {
                let t_max = self.examples.iter().map(Vec::len).max().unwrap_or(0) + 1;
                Box::new(FastCharRnn::pack(&self.params, t_max)?)
            }
        };
        let result = f(self, Some(&mut kernel));
        let written = kernel.unpack_into(&mut self.params);
        self.fast = Some(kernel);
        let r = result?;
        written?;
        Ok(r)
    }

    fn step_with(&mut self, mut kernel: Option<&mut FastCharRnn>) -> Result<f64> {
        let j = self.iteration;
        let example = &self.examples[(j % self.examples.len() as u64) as usize];
        // X = [None] + ix(name); Y = X[1:] + [ix('\n')]  (buffers reused: no allocation)
        self.x_buf.clear();
        self.x_buf.push(None);
        self.x_buf.extend(example.iter().map(|&c| Some(c)));
        self.y_buf.clear();
        self.y_buf.extend_from_slice(example);
        self.y_buf.push(self.newline_ix);
        // a diverged step changes nothing: the parameters stay those of the last good one
        let lr = self.config.learning_rate;
        let cur = match kernel.as_deref_mut() {
            Some(k) => {
                // `validate` allows only element-wise or no clipping with the fast kernel
                let clip = self.config.clip.value;
                k.step(&self.x_buf, &self.y_buf, &self.a_prev, lr, clip, true)?
            }
            None => optimize_step(
                &mut self.workspace,
                (&self.x_buf, &self.y_buf, &self.a_prev),
                &mut self.params,
                lr,
                self.config.clip,
                OnNonFinite::Keep,
            )?,
        };
        if !cur.is_finite() {
            return Err(CoreError::Diverged(format!(
                "dinos: loss became {cur} at iteration {j}; lower the learning rate or clip harder"
            )));
        }
        let a_last = match kernel {
            Some(k) => k.a_last(),
            None => self.workspace.a_last(),
        };
        self.a_prev.copy_from_slice(a_last);
        self.loss = smooth(self.loss, cur);
        self.iteration += 1;
        Ok(cur)
    }

    /// The course's report for the current parameters: `names_per_report` names sampled with
    /// seeds `0, 1, …` by the course's `sample` (in parallel; deterministic).
    pub fn report(&self, current_loss: f64) -> Result<DinoReport> {
        let opts = NameSampleOptions {
            seed: 0,
            temperature: 1.0,
            max_length: self.config.sample_max_length,
            prefix: Vec::new(),
            course_mode: true,
            top_k: 0,
        };
        let samples = sample_many(
            &self.params,
            self.newline_ix,
            &opts,
            self.config.names_per_report,
        )?;
        let names = samples.iter().map(|s| self.display_name(s)).collect();
        Ok(DinoReport {
            iteration: self.iteration.saturating_sub(1),
            loss: self.loss,
            current_loss,
            samples,
            names,
        })
    }

    /// Run `iterations` course iterations; after iteration `j` with `j % every == 0`
    /// (`every > 0`) emit a report. `on_event` returning `false` stops the run after that
    /// event (state stays consistent; `run` can be called again to continue).
    pub fn run(
        &mut self,
        iterations: u64,
        every: u64,
        mut on_event: impl FnMut(DinoEvent) -> bool,
    ) -> Result<RunSummary> {
        self.with_kernel(|t, kernel| {
            t.drive(kernel, iterations, every, &mut |_| true, &mut on_event)
        })
    }

    /// Run `iterations` course iterations without reports; after each one `on_step` gets the
    /// smoothed loss and returning `false` stops the run there (state consistent, resumable).
    pub fn train(
        &mut self,
        iterations: u64,
        mut on_step: impl FnMut(f64) -> bool,
    ) -> Result<RunSummary> {
        self.with_kernel(|t, kernel| t.drive(kernel, iterations, 0, &mut on_step, &mut |_| true))
    }

    fn drive(
        &mut self,
        mut kernel: Option<&mut FastCharRnn>,
        iterations: u64,
        every: u64,
        on_step: &mut dyn FnMut(f64) -> bool,
        on_event: &mut dyn FnMut(DinoEvent) -> bool,
    ) -> Result<RunSummary> {
        let mut done = 0;
        while done < iterations {
            let j = self.iteration;
            let cur = self.step_with(kernel.as_deref_mut())?;
            done += 1;
            let mut go_on = on_step(self.loss);
            if every > 0 && j.is_multiple_of(every) {
                if let Some(k) = kernel.as_deref() {
                    k.unpack_into(&mut self.params)?; // the report samples from `params`
                }
                let report = self.report(cur)?;
                go_on &= on_event(DinoEvent::Report(report));
            }
            if !go_on {
                return Ok(RunSummary {
                    iterations_run: done,
                    cancelled: true,
                });
            }
        }
        Ok(RunSummary {
            iterations_run: done,
            cancelled: false,
        })
    }

    /// A sampled name as the course prints it (`print_sample`): characters joined, first one
    /// upper-cased, here without the newline(s).
    pub fn display_name(&self, sample: &[usize]) -> String {
        let text: String = sample.iter().filter_map(|&i| self.vocab.get(i)).collect();
        capitalize(text.trim_end_matches('\n'))
    }

    /// The course's printout of a report in rnnlab's plain format (the same as
    /// `bench/dinos/reference.py`): `Iteration: j, Loss: x.xxxxxx`, then each name exactly as
    /// `print_sample` prints it (capitalised, with its terminating newline).
    pub fn format_report(&self, report: &DinoReport) -> String {
        let mut out = format!(
            "Iteration: {}, Loss: {:.6}\n",
            report.iteration, report.loss
        );
        for s in &report.samples {
            let text: String = s.iter().filter_map(|&i| self.vocab.get(i)).collect();
            out.push_str(&capitalize(&text));
        }
        out
    }

    /// Everything needed to resume bit-identically: weights, `a_prev`, iteration, smoothed
    /// loss, the examples in training order, vocabulary and hyperparameters.
    pub fn to_checkpoint(&self) -> Result<Checkpoint> {
        let mut ck = Checkpoint::new(CHECKPOINT_KIND);
        let p = &self.params;
        let put = |ck: &mut Checkpoint, name: &str, a: &Array2<f64>| -> Result<()> {
            let data = a.as_standard_layout();
            let slice = data
                .as_slice()
                .ok_or_else(|| CoreError::invalid(format!("{name}: not contiguous")))?;
            ck.put_f64(name, a.shape(), slice)
        };
        put(&mut ck, "wax", &p.wax)?;
        put(&mut ck, "waa", &p.waa)?;
        put(&mut ck, "wya", &p.wya)?;
        put(&mut ck, "b", &p.b)?;
        put(&mut ck, "by", &p.by)?;
        ck.put_f64("a_prev", &[self.a_prev.len(), 1], &self.a_prev)?;
        ck.put_f64("loss", &[1], &[self.loss])?;
        let mut flat = Vec::with_capacity(self.examples.iter().map(Vec::len).sum());
        let mut offsets = Vec::with_capacity(self.examples.len() + 1);
        offsets.push(0i64);
        for e in &self.examples {
            flat.extend(e.iter().map(|&c| c as u32));
            offsets.push(flat.len() as i64);
        }
        ck.put_u32("examples.indices", &[flat.len()], &flat)?;
        ck.put_i64("examples.offsets", &[offsets.len()], &offsets)?;
        let vocab: String = self.vocab.iter().collect();
        let c = &self.config;
        ck.set_meta("vocab", &vocab);
        ck.set_meta("iteration", &self.iteration.to_string());
        ck.set_meta("n_a", &c.n_a.to_string());
        ck.set_meta("learning_rate", &c.learning_rate.to_string());
        ck.set_meta("clip", &clip_to_string(c.clip));
        ck.set_meta("shuffle_seed", &c.shuffle_seed.to_string());
        ck.set_meta("init_seed", &c.init_seed.to_string());
        ck.set_meta("names_per_report", &c.names_per_report.to_string());
        ck.set_meta("sample_max_length", &c.sample_max_length.to_string());
        ck.set_meta("arithmetic", c.arithmetic.as_str());
        ck.set_meta(
            "created_by",
            concat!("rnnlab-core ", env!("CARGO_PKG_VERSION")),
        );
        Ok(ck)
    }

    /// Rebuild a trainer from [`DinoTrainer::to_checkpoint`]'s output; every field is
    /// validated (kind, shapes against the vocabulary and `n_a`, index ranges).
    pub fn from_checkpoint(ck: &Checkpoint) -> Result<Self> {
        ck.expect_kind(CHECKPOINT_KIND)?;
        let vocab: Vec<char> = ck.meta("vocab")?.chars().collect();
        let newline_ix = check_vocab(&vocab)
            .map_err(|e| CoreError::BadFile(format!("checkpoint vocab: {e}")))?;
        let config = DinoConfig {
            n_a: ck.meta_parse("n_a")?,
            learning_rate: ck.meta_parse("learning_rate")?,
            clip: clip_from_string(ck.meta("clip")?)?,
            shuffle_seed: ck.meta_parse("shuffle_seed")?,
            init_seed: ck.meta_parse("init_seed")?,
            names_per_report: ck.meta_parse("names_per_report")?,
            sample_max_length: ck.meta_parse("sample_max_length")?,
            // absent from checkpoints written before the fast arithmetic existed
            arithmetic: match ck.meta("arithmetic") {
                Ok(s) => Arithmetic::parse(s)
                    .map_err(|e| CoreError::BadFile(format!("checkpoint metadata: {e}")))?,
                Err(_) => Arithmetic::Numpy,
            },
        };
        config
            .validate()
            .map_err(|e| CoreError::BadFile(format!("checkpoint hyperparameters: {e}")))?;
        let iteration: u64 = ck.meta_parse("iteration")?;
        let (n_a, v) = (config.n_a, vocab.len());
        let matrix = |name: &str, rows: usize, cols: usize| -> Result<Array2<f64>> {
            let data = ck.get_f64_shaped(name, &[rows, cols])?;
            Array2::from_shape_vec((rows, cols), data)
                .map_err(|e| CoreError::BadFile(format!("checkpoint tensor \"{name}\": {e}")))
        };
        let params = CharRnnParams {
            wax: matrix("wax", n_a, v)?,
            waa: matrix("waa", n_a, n_a)?,
            wya: matrix("wya", v, n_a)?,
            b: matrix("b", n_a, 1)?,
            by: matrix("by", v, 1)?,
        };
        let a_prev = ck.get_f64_shaped("a_prev", &[n_a, 1])?;
        let loss = ck.get_f64_shaped("loss", &[1])?[0];
        let (_, flat) = ck.get_u32("examples.indices")?;
        let (_, offsets) = ck.get_i64("examples.offsets")?;
        let mut examples = Vec::with_capacity(offsets.len().saturating_sub(1));
        for w in offsets.windows(2) {
            let (start, end) = (w[0], w[1]);
            if start < 0 || end < start || end as usize > flat.len() {
                return Err(CoreError::BadFile(format!(
                    "checkpoint examples.offsets: bad range [{start}, {end}] for {} indices",
                    flat.len()
                )));
            }
            examples.push(
                flat[start as usize..end as usize]
                    .iter()
                    .map(|&c| c as usize)
                    .collect(),
            );
        }
        if offsets.first() != Some(&0) || offsets.last().map(|&e| e as usize) != Some(flat.len()) {
            return Err(CoreError::BadFile(
                "checkpoint examples.offsets: must start at 0 and end at the number of indices"
                    .into(),
            ));
        }
        check_examples(&examples, v)
            .map_err(|e| CoreError::BadFile(format!("checkpoint examples: {e}")))?;
        Ok(Self::assemble(
            params, a_prev, examples, iteration, loss, config, vocab, newline_ix,
        ))
    }
}

/// First character upper-cased (Python's `txt[0].upper() + txt[1:]`).
fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Unique characters including `'\n'`; returns the newline index.
fn check_vocab(vocab: &[char]) -> Result<usize> {
    for (i, c) in vocab.iter().enumerate() {
        if vocab[..i].contains(c) {
            return Err(CoreError::invalid(format!(
                "vocab: character {c:?} appears twice (index {i})"
            )));
        }
    }
    vocab
        .iter()
        .position(|&c| c == '\n')
        .ok_or_else(|| CoreError::invalid("vocab: must contain '\\n' (it ends every name)"))
}

fn check_examples(examples: &[Vec<usize>], vocab_size: usize) -> Result<()> {
    if examples.is_empty() {
        return Err(CoreError::invalid(
            "examples: expected at least one name, got 0",
        ));
    }
    for (n, e) in examples.iter().enumerate() {
        for (t, &c) in e.iter().enumerate() {
            if c >= vocab_size {
                return Err(CoreError::invalid(format!(
                    "examples[{n}][{t}]: index {c} out of range for a vocabulary of {vocab_size}"
                )));
            }
        }
    }
    Ok(())
}

/// `none`, `elementwise:v` or `global_norm:v` (a clip passed `check_clip`: at most one bound).
fn clip_to_string(clip: Clip) -> String {
    match (clip.value, clip.norm) {
        (Some(v), _) => format!("elementwise:{v}"),
        (None, Some(v)) => format!("global_norm:{v}"),
        (None, None) => "none".into(),
    }
}

fn clip_from_string(s: &str) -> Result<Clip> {
    let bad = || {
        CoreError::BadFile(format!(
            "checkpoint metadata \"clip\": cannot parse \"{s}\""
        ))
    };
    if s == "none" {
        return Ok(Clip::default());
    }
    let (mode, value) = s.split_once(':').ok_or_else(bad)?;
    let v: f64 = value.parse().map_err(|_| bad())?;
    match mode {
        "elementwise" => Ok(Clip {
            value: Some(v),
            norm: None,
        }),
        "global_norm" => Ok(Clip {
            value: None,
            norm: Some(v),
        }),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_strings_read_and_write_as_before() {
        for s in ["none", "elementwise:5", "elementwise:0.25", "global_norm:5"] {
            let clip = clip_from_string(s).unwrap();
            assert_eq!(clip_to_string(clip), s);
        }
        let course = clip_from_string("elementwise:5").unwrap();
        assert_eq!((course.value, course.norm), (Some(5.0), None));
        let norm = clip_from_string("global_norm:1.5").unwrap();
        assert_eq!((norm.value, norm.norm), (None, Some(1.5)));
        assert!(clip_from_string("both:1").is_err());
    }

    #[test]
    fn a_clip_by_value_and_norm_is_refused() {
        let config = DinoConfig {
            clip: Clip {
                value: Some(5.0),
                norm: Some(1.0),
            },
            ..DinoConfig::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("not both"), "{err}");
        let negative = DinoConfig {
            clip: Clip {
                value: None,
                norm: Some(-1.0),
            },
            ..DinoConfig::default()
        };
        assert!(negative.validate().is_err());
    }
}
