// Writing like Shakespeare: a stacked LSTM (or GRU, or RNN) character language model trained in
// mini-batches by the Rust core, off the JS thread, that completes a prompt.
import { existsSync } from 'node:fs'

import {
  abortError,
  type BeamResult,
  type CommonBeamOptions,
  type CommonFitOptions,
  checkBeamOptions,
  checkInt,
  checkOptionNames,
  checkNumber,
  checkSeconds,
  checkTemperature,
  etaOf,
  invalidArg,
  invalidArgType,
  type Progress,
  wrongKindError,
} from './contract'
import { native } from './native'

type Native = InstanceType<ReturnType<typeof native>['NativeCharLm']>

/** The recurrent cells of `CharLanguageModel` (PyTorch's `nn.LSTM`, `nn.GRU`, `nn.RNN` with tanh). */
export const CHAR_LM_CELLS = Object.freeze(['lstm', 'gru', 'rnn'] as const)
/** One of `CHAR_LM_CELLS`. */
export type CharCell = (typeof CHAR_LM_CELLS)[number]

/**
 * The defaults of `CharLanguageModel` (architecture, `fit` and `generate`), which `rnnlab train`
 * and `rnnlab generate` use too. `epochs` applies when no `seconds` budget is given. The training
 * values are chosen to learn quickly on a small corpus: on the sonnets, 60 s on 2 cores reach
 * <= 1.8 nats/char of validation loss (BENCHMARKS.md, "Defaults that learn"); batches of 32 take
 * 4 times more optimizer steps per character than the course's 128.
 */
export const CHAR_LM_DEFAULTS = Object.freeze({
  cell: 'lstm' as CharCell,
  layers: 2,
  hidden: 128,
  dropout: 0.2,
  embedding: 0,
  dtype: 'float32' as 'float32' | 'float64',
  seed: 0,
  epochs: 10,
  mode: 'tbptt' as 'tbptt' | 'windows',
  seqLength: 40,
  stride: 3,
  batchSize: 32,
  optimizer: 'adam' as 'adam' | 'sgd',
  learningRate: 0.008,
  decay: 0,
  clip: 5,
  validation: 0.1,
  /** A validation evaluation (and checkpoint) at every epoch end. */
  evaluateEvery: Object.freeze({ epochs: 1 }) as EvaluateEvery,
  /** After `fit`, the model is the best one on validation. */
  keep: 'best' as 'best' | 'last',
  chunkSeconds: 0.25,
  /** `generate`. */
  length: 400,
  temperature: 0.8,
  topK: 0,
  /** `beamSearch`. */
  beamWidth: 5,
})

/**
 * The course's Keras set-up (`rnnlab train --course`), over `CHAR_LM_DEFAULTS`: windows of 40
 * characters every 3, predicting the next character, two LSTM layers of 128 with dropout 0.2,
 * batches of 128, Adam at 0.002. It learns far less per second than the defaults.
 */
export const CHAR_LM_COURSE_SETUP = Object.freeze({
  layers: 2,
  hidden: 128,
  dropout: 0.2,
  mode: 'windows' as 'tbptt' | 'windows',
  seqLength: 40,
  stride: 3,
  batchSize: 128,
  learningRate: 0.002,
})

/**
 * When `fit` evaluates the validation loss and writes its `checkpoint` (char-rnn's
 * `eval_val_every`): after every `steps` optimizer steps (counted over the whole run), or at
 * the end of every `epochs` epochs.
 */
export type EvaluateEvery = { steps: number; epochs?: undefined } | { epochs: number; steps?: undefined }

/** An evaluation of a run: its validation loss and where it was measured. */
export interface Evaluation {
  /** Validation loss (nats/char). */
  valLoss: number
  /** Optimizer steps done at the evaluation. */
  step: number
  /** Epochs done at the evaluation, with a fractional part mid-epoch. */
  epoch: number
}

/** Architecture of a `CharLanguageModel`. */
export interface CharModelOptions {
  /**
   * 'lstm' (default), 'gru' (PyTorch's nn.GRU: gates r, z, n; 3/4 of the LSTM's weights) or
   * 'rnn' (tanh). A loaded model keeps the cell of its file.
   */
  cell?: CharCell
  /** Number of stacked layers (default 2). */
  layers?: number
  /** Hidden size: one number for every layer, or one per layer (default 128). */
  hidden?: number | number[]
  /** Inverted-dropout probability after every recurrent layer, training only (default 0.2). */
  dropout?: number
  /** Embedding width; omit (or 0) for one-hot input. */
  embedding?: number
  /** 'float32' (default, fast) or 'float64'. */
  dtype?: 'float32' | 'float64'
  /** Seed of the initial weights (default 0). */
  seed?: number
}

/**
 * Progress reported during `fit` (after every chunk of about `chunkSeconds`), `unit: 'epochs'`:
 * `done` counts completed epochs with a fractional part for the current one, `total` is the
 * `epochs` budget (undefined with a `seconds` budget only), `rate` epochs per second of this
 * call, `loss` the chunk's mean training loss.
 */
export interface FitProgress extends Progress {
  unit: 'epochs'
  /** The same as `done` (kept from before the shared progress shape). */
  epoch: number
  /** Target epochs (Infinity with a time budget only); `total` says undefined there. */
  epochs: number
  /** Optimizer steps so far. */
  step: number
  batchInEpoch: number
  batchesPerEpoch: number
  /** Mean training loss over the chunk, nats/char. */
  loss: number
  /**
   * When an epoch just ended: the mean training loss over all of its batches (nats/char),
   * the same whatever `chunkSeconds` and the machine's speed.
   */
  epochLoss?: number
  /**
   * True when this report ends at an evaluation of the `evaluateEvery` schedule (every epoch
   * end by default): the moment `checkpoint` is written and, with validation data, `valLoss`
   * is measured.
   */
  evaluation: boolean
  /** Validation loss (nats/char) at an evaluation. */
  valLoss?: number
  /** e^valLoss. */
  valPerplexity?: number
  /** Input characters processed so far (all runs). */
  chars: number
  /** Characters/second in this `fit` call. */
  charsPerSecond: number
  /** True when this report ends an epoch. */
  epochEnd: boolean
  /** This evaluation's validation loss is the lowest so far. */
  improved: boolean
  /** The evaluation with the lowest validation loss so far (all runs). */
  best?: Evaluation
  /** Evaluations since the best one (what `patience` counts). */
  evaluationsSinceBest: number
  /** The `patience` ran out (now or before a resume): the run trains no further. */
  stoppedEarly: boolean
}

/** Options of `CharLanguageModel.fit` (the budget is `epochs`, a total, and/or `seconds`). */
export interface FitOptions extends CommonFitOptions<FitProgress> {
  /** Train until this many epochs are complete in total (default 10; unbounded with `seconds` only). */
  epochs?: number
  /** Sequences per mini-batch (default 32). */
  batchSize?: number
  /** Steps per sequence: the chunk length (tbptt) or the window (windows) (default 40). */
  seqLength?: number
  /** 'tbptt' (many-to-many, char-rnn, default) or 'windows' (many-to-one, the course's Keras model). */
  mode?: 'tbptt' | 'windows'
  /** Window stride in 'windows' mode (default 3). */
  stride?: number
  /** 'adam' (default) or 'sgd'. */
  optimizer?: 'adam' | 'sgd'
  /** Learning rate (default 0.008). */
  learningRate?: number
  /** @deprecated the old name of `learningRate`, kept for one release. */
  lr?: number
  /** Keras-style decay: the rate at step t is lr/(1 + decay·t) (default 0). */
  decay?: number
  /** Clip gradients: a number clips by value; or `{ value, norm }` (default `{ value: 5 }`). */
  clip?: number | { value?: number; norm?: number }
  /** Fraction of the text (its end) held out for validation (default 0.1). */
  validation?: number
  /** Seed of window shuffling and dropout masks (default 0). */
  seed?: number
  /**
   * When to evaluate the validation loss and write `checkpoint`: `{ steps: N }` or
   * `{ epochs: N }` (default `{ epochs: 1 }`, every epoch end). A checkpoint keeps it.
   */
  evaluateEvery?: EvaluateEvery
  /**
   * Early stopping: stop after this many evaluations in a row without a lower validation
   * loss (default: never). Needs validation data. A checkpoint keeps it.
   */
  patience?: number
  /**
   * The model this object shows after `fit` (to `generate`, `save`, `validate`, …): 'best',
   * the one with the lowest validation loss at an evaluation (default; the current one when
   * none was evaluated, e.g. with `validation: 0`), or 'last', the current weights. A new
   * `fit` on the object starts from the model shown (as Keras' `restore_best_weights`); a
   * resume from `checkpoint` continues from the current weights.
   */
  keep?: 'best' | 'last'
  /**
   * Training checkpoint written at each evaluation (`evaluateEvery`), at the end and on
   * abort (safetensors). It holds the best model and the patience counter too.
   */
  checkpoint?: string
  /** Continue from `checkpoint` if that file exists (exact resume; same text required). */
  resume?: boolean
  /** Length of one native chunk in seconds (default 0.25): the event loop runs between chunks. */
  chunkSeconds?: number
}

/** The option names each call takes: a misspelt one is refused, not ignored. */
const MODEL_OPTIONS = ['cell', 'layers', 'hidden', 'dropout', 'embedding', 'dtype', 'seed'] as const
const FIT_OPTIONS = [
  'signal',
  'onProgress',
  'seconds',
  'epochs',
  'batchSize',
  'seqLength',
  'mode',
  'stride',
  'optimizer',
  'learningRate',
  'lr',
  'decay',
  'clip',
  'validation',
  'seed',
  'evaluateEvery',
  'patience',
  'keep',
  'checkpoint',
  'resume',
  'chunkSeconds',
] as const

/**
 * A training corpus on disk, for `fit`: the core reads it in two streaming passes (its
 * vocabulary, then its characters) off the JS thread and holds it once, at 1 byte per
 * character for up to 256 distinct characters — a 100 MB text costs ≈ 100 MB, where a JS
 * string, its UTF-8 copy and 4-byte indices would cost 6 times that.
 */
export interface TextFile {
  /** Path of a UTF-8 text file. */
  file: string
}

/** What `fit` did. */
export interface FitHistory {
  /** Training loss of each chunk (nats/char) and the optimizer step it ended at. */
  loss: number[]
  step: number[]
  /** Validation loss at each evaluation in this call (nats/char), and the step of each. */
  valLoss: number[]
  valStep: number[]
  /** Mean training loss over each epoch completed in this call (nats/char). */
  epochLoss: number[]
  /** Completed epochs and steps in total. */
  epochs: number
  steps: number
  /** Characters processed in this call, seconds taken, and their ratio. */
  chars: number
  seconds: number
  charsPerSecond: number
  /**
   * Why training stopped (an abort rejects with an `AbortError` instead): the `epochs`
   * budget, the `seconds` budget, or `patience` (early stopping).
   */
  stopped: 'epochs' | 'time' | 'patience'
  /** The best evaluation of the run (all calls), when there was validation data. */
  best?: Evaluation
  /** Which model the object shows now: 'best' (the best evaluation's) or 'last'. */
  kept: 'best' | 'last'
}

/** Options of `generate`. */
export interface GenerateOptions {
  /** Text that primes the state; the completion follows it (default ''). */
  prompt?: string
  /** Characters to generate after the prompt (default 400); the prompt is not repeated. */
  length?: number
  /** Softmax temperature; 0 = greedy (default 0.8). */
  temperature?: number
  /** Sample only among the k most likely characters (default 0 = all). */
  topK?: number
  /** Seed of numpy's RandomState used for the draws (default 0): same seed, same text. */
  seed?: number
}

/** Options of `beamSearch`. */
export interface LmBeamOptions extends CommonBeamOptions {
  /** Text that primes the state; the continuations follow it (default ''). */
  prompt?: string
  /** Characters of each continuation (default 400). */
  length?: number
}

/** Sorted unique characters of a text (by code point), as the model's vocabulary. */
export function vocabularyOf(text: string): string {
  return [...new Set(Array.from(text))].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!).join('')
}

/**
 * A character language model: N stacked LSTM, GRU or RNN layers, one-hot or embedding input,
 * dropout between layers, a dense softmax over the characters. The vocabulary is taken from
 * the first text given to `fit` (or from the file given to `load`).
 */
export class CharLanguageModel {
  private readonly options: Required<Omit<CharModelOptions, 'embedding'>> & { embedding: number; hidden: number[] }
  private model?: Native
  /** True once `fit` started a training run on `model` (a loaded model has none). */
  private training = false

  constructor(options: CharModelOptions = {}) {
    checkOptionNames('CharLanguageModel', options, MODEL_OPTIONS)
    const d = CHAR_LM_DEFAULTS
    const layers = checkInt(
      'layers',
      options.layers ?? (Array.isArray(options.hidden) ? options.hidden.length : d.layers),
      1,
      64,
    )
    const hidden = Array.isArray(options.hidden) ? options.hidden : Array(layers).fill(options.hidden ?? d.hidden)
    if (hidden.length !== layers)
      throw invalidArg(`hidden: expected ${layers} sizes (one per layer), got ${hidden.length}`)
    hidden.forEach((h, k) => {
      checkInt(`hidden[${k}]`, h, 1, 65536)
    })
    const cell = options.cell ?? d.cell
    if (!CHAR_LM_CELLS.includes(cell as CharCell))
      throw invalidArg(`cell: expected one of ${CHAR_LM_CELLS.join(', ')}, got '${cell}'`)
    const dtype = options.dtype ?? d.dtype
    if (dtype !== 'float32' && dtype !== 'float64')
      throw invalidArg(`dtype: expected 'float32' or 'float64', got '${dtype}'`)
    const dropout = checkNumber('dropout', options.dropout ?? d.dropout, 0, 0.999)
    this.options = {
      cell,
      layers,
      hidden,
      dropout,
      dtype,
      embedding: checkInt('embedding', options.embedding ?? d.embedding, 0, 65536),
      seed: checkInt('seed', options.seed ?? d.seed, 0, 0xffffffff),
    }
  }

  /** Loads weights saved by `save` (or PyTorch-named safetensors with `vocab`). */
  static load(path: string, options: { vocab?: string; dtype?: 'float32' | 'float64' } = {}): CharLanguageModel {
    checkOptionNames('CharLanguageModel.load', options, ['vocab', 'dtype'])
    let m: Native
    try {
      m = native().NativeCharLm.load(path, options.vocab, options.dtype)
    } catch (e) {
      throw wrongKindError(path, e, 'charlm') ?? e
    }
    const info = m.info
    const lm = new CharLanguageModel({
      cell: info.cell as CharCell,
      hidden: info.hidden,
      dropout: info.dropout,
      embedding: info.embedding ?? 0,
      dtype: info.dtype as 'float32' | 'float64',
    })
    lm.model = m
    return lm
  }

  /** The vocabulary (characters in index order), once the model exists. */
  get vocab(): string | undefined {
    return this.model?.info.vocab
  }

  /**
   * Architecture, dtype, vocabulary and parameter count (undefined before `fit`/`load`), and
   * where the weights come from in their training run (from a file's metadata after `load`):
   * `step`, `epoch` (completed) and `batchInEpoch`, their `valLoss` when it was measured, and
   * `kept` ('best' on validation or 'last').
   */
  get info():
    | {
        cell: string
        hidden: number[]
        embedding?: number
        dropout: number
        dtype: string
        vocab: string
        numParams: number
        step?: number
        epoch?: number
        batchInEpoch?: number
        valLoss?: number
        kept?: string
      }
    | undefined {
    return this.model?.info
  }

  private createModel(vocab: string): Native {
    const o = this.options
    return new (native().NativeCharLm)({
      cell: o.cell,
      hidden: o.hidden,
      embedding: o.embedding || undefined,
      dropout: o.dropout,
      dtype: o.dtype,
      vocab,
      seed: o.seed,
    })
  }

  /** Characters in the training and validation parts of the current run (after `fit` started). */
  get corpus(): { train: number; validation: number } | undefined {
    const s = this.model?.splitSizes
    return s ? { train: s[0], validation: s[1] } : undefined
  }

  /**
   * Trains on `text` off the JS thread, in chunks of about `chunkSeconds`, until `epochs`
   * epochs are complete in total or `seconds` have passed (then it resolves with the history).
   * When `signal` aborts it stops after the current batch, writes `checkpoint` (when given) and
   * rejects with an `AbortError`; the model keeps that state and can `fit` again.
   */
  async fit(text: string | TextFile, options: FitOptions = {}): Promise<FitHistory> {
    const file = typeof text === 'string' ? undefined : text?.file
    if (typeof text === 'string' ? text.length === 0 : typeof file !== 'string' || file.length === 0) {
      throw invalidArgType('text: expected a non-empty string or { file: path }')
    }
    checkOptionNames('CharLanguageModel.fit', options, FIT_OPTIONS)
    const d = CHAR_LM_DEFAULTS
    const seconds = options.seconds === undefined ? Infinity : checkSeconds(options.seconds)
    const epochs = options.epochs ?? (options.seconds !== undefined ? Infinity : d.epochs)
    if (epochs !== Infinity) checkInt('epochs', epochs, 0)
    const chunkSeconds = checkNumber('chunkSeconds', options.chunkSeconds ?? d.chunkSeconds, 0.001, 3600)
    const clip = typeof options.clip === 'number' ? { value: options.clip } : (options.clip ?? { value: d.clip })
    if (options.lr !== undefined && options.learningRate !== undefined && options.lr !== options.learningRate)
      throw invalidArg(`lr: ${options.lr} contradicts learningRate: ${options.learningRate} (lr is its old name)`)
    const trainOptions = {
      mode: options.mode ?? d.mode,
      seqLength: checkInt('seqLength', options.seqLength ?? d.seqLength, 1, 1 << 20),
      stride: checkInt('stride', options.stride ?? d.stride, 1, 1 << 20),
      batchSize: checkInt('batchSize', options.batchSize ?? d.batchSize, 1, 1 << 20),
      optimizer: options.optimizer ?? d.optimizer,
      lr: checkNumber('learningRate', options.learningRate ?? options.lr ?? d.learningRate, 0),
      decay: checkNumber('decay', options.decay ?? d.decay, 0),
      clipValue: clip.value,
      clipNorm: clip.norm,
      validation: checkNumber('validation', options.validation ?? d.validation, 0, 0.99),
      seed: checkInt('seed', options.seed ?? d.seed, 0, 0xffffffff),
    }
    const every = options.evaluateEvery ?? d.evaluateEvery
    if (typeof every !== 'object' || every === null || (every.steps === undefined) === (every.epochs === undefined))
      throw invalidArg(`evaluateEvery: expected { steps: N } or { epochs: N }, got ${JSON.stringify(every)}`)
    const evaluateEverySteps =
      every.steps !== undefined ? checkInt('evaluateEvery.steps', every.steps, 1, 0xffffffff) : undefined
    const evaluateEveryEpochs =
      every.epochs !== undefined ? checkInt('evaluateEvery.epochs', every.epochs, 1, 0xffffffff) : undefined
    const patience = options.patience === undefined ? undefined : checkInt('patience', options.patience, 1, 0xffffffff)
    if (patience !== undefined && trainOptions.validation === 0)
      throw invalidArg('patience: early stopping needs validation data (validation > 0)')
    const keep = options.keep ?? d.keep
    if (keep !== 'best' && keep !== 'last') throw invalidArg(`keep: expected 'best' or 'last', got '${keep}'`)
    const runOptions = { ...trainOptions, evaluateEverySteps, evaluateEveryEpochs, patience }
    const resume =
      options.resume && options.checkpoint && existsSync(options.checkpoint) ? options.checkpoint : undefined
    if (typeof text === 'string') {
      if (resume) this.model = native().NativeCharLm.resume(resume, text)
      else {
        this.model ??= this.createModel(vocabularyOf(text))
        this.model.startTraining(text, runOptions)
      }
    } else {
      // streamed by the core off the JS thread: never held as a JS string
      if (resume) {
        const m = native().NativeCharLm.load(resume)
        await m.startTrainingFile(file!, runOptions, resume)
        this.model = m
      } else {
        this.model ??= this.createModel(await native().vocabularyOfFile(file!))
        await this.model.startTrainingFile(file!, runOptions)
      }
    }
    this.training = true
    const model = this.model!
    // while training, the object shows the current weights (e.g. to `generate` in onProgress)
    model.keep('last')
    const history: FitHistory = {
      loss: [],
      step: [],
      valLoss: [],
      valStep: [],
      epochLoss: [],
      epochs: 0,
      steps: 0,
      chars: 0,
      seconds: 0,
      charsPerSecond: 0,
      stopped: 'epochs',
      kept: 'last',
    }
    const onAbort = () => model.cancel()
    options.signal?.addEventListener('abort', onAbort)
    const t0 = performance.now()
    let chars0: number | undefined
    let done0: number | undefined
    let last: { epoch: number; chars: number; step: number; stoppedEarly: boolean } | undefined
    let best: Evaluation | undefined
    let failed = false
    let aborted = false
    try {
      for (;;) {
        const elapsed = (performance.now() - t0) / 1000
        if (options.signal?.aborted) {
          aborted = true
          break
        }
        if (last?.stoppedEarly) {
          history.stopped = 'patience'
          break
        }
        if ((last?.epoch ?? model.epochsDone) >= epochs) {
          history.stopped = 'epochs'
          break
        }
        if (elapsed >= seconds) {
          history.stopped = 'time'
          break
        }
        let p: Awaited<ReturnType<typeof model.train>>
        try {
          p = await model.train(1e12, Math.min(chunkSeconds, Math.max(seconds - elapsed, 1e-3)))
        } catch (e) {
          failed = true // a diverged or failed run must not overwrite the last good checkpoint
          throw e
        }
        chars0 ??= p.chars - p.batches * trainOptions.seqLength * trainOptions.batchSize
        last = p
        const now = (performance.now() - t0) / 1000
        const done = p.epoch + p.batchInEpoch / Math.max(p.batchesPerEpoch, 1)
        // where this call started: the batches of the first chunk count toward its rate
        done0 ??= done - p.batches / Math.max(p.batchesPerEpoch, 1)
        const rate = (done - done0) / Math.max(now, 1e-9)
        const total = Number.isFinite(epochs) ? epochs : undefined
        if (p.batches > 0) {
          history.loss.push(p.loss)
          history.step.push(p.step)
        }
        if (p.valLoss != null) {
          history.valLoss.push(p.valLoss)
          history.valStep.push(p.step)
        }
        if (p.epochLoss != null) history.epochLoss.push(p.epochLoss)
        if (p.bestValLoss != null)
          best = {
            valLoss: p.bestValLoss,
            step: p.bestStep!,
            epoch: p.bestEpoch! + p.bestBatchInEpoch! / Math.max(p.batchesPerEpoch, 1),
          }
        if (p.evaluation && options.checkpoint) model.saveCheckpoint(options.checkpoint)
        options.onProgress?.({
          done,
          total,
          unit: 'epochs',
          rate,
          eta: etaOf(done, total, rate, now, seconds),
          epoch: done,
          epochs,
          step: p.step,
          batchInEpoch: p.batchInEpoch,
          batchesPerEpoch: p.batchesPerEpoch,
          loss: p.loss,
          epochLoss: p.epochLoss ?? undefined,
          valLoss: p.valLoss ?? undefined,
          valPerplexity: p.valLoss != null ? Math.exp(p.valLoss) : undefined,
          chars: p.chars,
          charsPerSecond: (p.chars - chars0) / Math.max(now, 1e-9),
          elapsed: now,
          epochEnd: p.epochEnd,
          evaluation: p.evaluation,
          improved: p.improved,
          best,
          evaluationsSinceBest: p.evalsSinceBest,
          stoppedEarly: p.stoppedEarly,
        })
        if (p.cancelled) {
          aborted = true
          break
        }
      }
    } finally {
      options.signal?.removeEventListener('abort', onAbort)
      history.seconds = (performance.now() - t0) / 1000
      if (last) {
        history.epochs = last.epoch
        history.steps = last.step
        history.chars = last.chars - (chars0 ?? last.chars)
        history.charsPerSecond = history.chars / Math.max(history.seconds, 1e-9)
      }
      if (options.checkpoint && !failed) model.saveCheckpoint(options.checkpoint)
      model.keep(keep)
      history.best = best
      history.kept = keep === 'best' && best !== undefined ? 'best' : 'last'
    }
    // after the checkpoint: an abort rejects as `fetch` does, the model keeps its state
    if (aborted) throw abortError('CharLanguageModel.fit', options.signal)
    return history
  }

  /**
   * Validation loss (nats/char, dropout off) of the model shown (after `fit` with `keep:
   * 'best'`, the best one's, as measured at its evaluation) on the current run's held-out
   * text, or null when there is none: before `fit`, on a loaded model, or with `validation: 0`.
   */
  validate(): number | null {
    if (!this.model || !this.training) return null
    return this.model.validate() ?? null
  }

  /** Completes `prompt` with `length` sampled characters (the prompt is not repeated). */
  generate(options: GenerateOptions = {}): string {
    checkOptionNames('CharLanguageModel.generate', options, ['prompt', 'length', 'temperature', 'topK', 'seed'])
    if (!this.model) throw notReady('generate: the model has no vocabulary yet (fit or load it first)')
    const d = CHAR_LM_DEFAULTS
    const length = checkInt('length', options.length ?? d.length, 0, 10_000_000)
    const temperature = checkTemperature(options.temperature ?? d.temperature)
    const topK = checkInt('topK', options.topK ?? d.topK, 0, 0xffffffff)
    const seed = checkInt('seed', options.seed ?? 0, 0, 0xffffffff)
    return this.model.generate({ prompt: options.prompt ?? '', length, temperature, topK, seed })
  }

  /**
   * The `beamWidth` most likely continuations of `prompt`, each `length` characters, by beam
   * search at temperature 1: `{ text, logProb }` best first (equal log-probabilities: the text
   * whose character indices come first), the same for any seed or thread count. `text` excludes
   * the prompt, as in `generate`; `beamWidth: 1` is `generate({ temperature: 0 })`.
   */
  beamSearch(options: LmBeamOptions = {}): BeamResult[] {
    if (!this.model) throw notReady('beamSearch: the model has no vocabulary yet (fit or load it first)')
    const d = CHAR_LM_DEFAULTS
    const beamWidth = checkBeamOptions('CharLanguageModel.beamSearch', options, d.beamWidth)
    checkOptionNames('CharLanguageModel.beamSearch', options, ['beamWidth', 'prompt', 'length'])
    const length = checkInt('length', options.length ?? d.length, 0, 10_000_000)
    return this.model.beamSearch({ prompt: options.prompt ?? '', length, beamWidth })
  }

  /** Logits after each character of `text` from a zero state: `[len][vocab]`. */
  logits(text: string): number[][] {
    if (!this.model) throw notReady('logits: the model has no vocabulary yet (fit or load it first)')
    const flat = this.model.logits(text)
    const v = Array.from(this.model.info.vocab).length
    const rows: number[][] = []
    for (let i = 0; i < flat.length; i += v) rows.push(flat.slice(i, i + v))
    return rows
  }

  /**
   * Writes the weights (safetensors in PyTorch's nn.LSTM / nn.GRU / nn.RNN layout, with
   * architecture and vocabulary).
   */
  save(path: string): void {
    if (!this.model) throw notReady('save: nothing to save yet (fit or load first)')
    this.model.save(path)
  }
}

/** A call the model is not ready for yet (`code: 'ERR_NOT_TRAINED'`). */
function notReady(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_NOT_TRAINED' })
}
