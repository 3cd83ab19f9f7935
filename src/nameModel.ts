// Dinosaurus Island: a character-level RNN that learns names one example at a
// time and invents new ones, exactly as the course's notebook does (seed 1
// initialisation, seed 0 shuffle, SGD with clip 5, smoothed loss), with the
// per-character work in the Rust core and this layer driving it in chunks.
import {
  type BeamResult,
  type CommonBeamOptions,
  type CommonFitOptions,
  checkBeamOptions,
  checkFinite,
  checkInt,
  checkOptionNames,
  checkSeconds,
  checkTemperature,
  etaOf,
  invalidArg,
  type Progress,
  throwIfAborted,
  wrongKindError,
} from './contract'
import { Vocabulary, defaultDinosaurNames, normaliseNames, readNames } from './corpus'
import { greedyName } from './nameGreedy'
import { native } from './native'
import type { Tensor } from './tensor'

type NativeTrainer = InstanceType<ReturnType<typeof native>['NativeNameTrainer']>

/**
 * The defaults of `NameModel` (the course's values), which `rnnlab dinos` and `rnnlab sample`
 * use too.
 */
export const NAME_MODEL_DEFAULTS = Object.freeze({
  hidden: 50,
  learningRate: 0.01,
  clip: 5,
  seed: 0,
  arithmetic: 'numpy' as Arithmetic,
  /** `fit`: the total iterations to reach. */
  iterations: 35000,
  every: 2000,
  names: 7,
  /** `sample`. */
  temperature: 1,
  maxLength: 50,
  count: 1,
  /** `beamSearch`. */
  beamWidth: 5,
})

export interface NameModelOptions {
  /** Hidden size n_a (course: 50). */
  hidden?: number
  /** SGD learning rate (course: 0.01); a checkpoint keeps it. */
  learningRate?: number
  /** Element-wise gradient clip (course: 5). */
  clip?: number
  /** Seed of the example shuffle (course: 0; the weights use the course's seed 1). */
  seed?: number
  /** @deprecated the old name of `seed`. */
  shuffleSeed?: number
  /**
   * How the training step forms its sums. `'numpy'` (default): numpy's order, bit for bit, so
   * every report equals the numpy reference's. `'fast'`: the fastest order, about twice as
   * fast; reports equal numpy's through iteration 12 000 (the part the course's own
   * implementations agree on), then drift in the last bits as any two implementations do.
   */
  arithmetic?: Arithmetic
  /**
   * The course's `dino_names` (default 7): names per report in `fit`, and the start of the
   * smoothed loss, `−log(1/vocab)·names`, exactly as the course's `model(dino_names=…)`.
   */
  names?: number
}

export type Arithmetic = 'numpy' | 'fast'

/** One course report: the smoothed loss after iteration `iteration` and sampled names (without '\n'). */
export interface NameReport {
  iteration: number
  loss: number
  names: string[]
}

/**
 * Progress of `NameModel.fit` (`unit: 'iterations'`): `done` counts iterations across resumes,
 * `total` is the `iterations` budget, `loss` the course's smoothed loss.
 */
export interface TrainProgress extends Progress {
  unit: 'iterations'
  total: number
  /** The smoothed loss after each iteration of the chunk just run (for loss curves). */
  chunkLosses: Float64Array
}

/** Options of `NameModel.fit` (the budget is `iterations`, a total, and/or `seconds`). */
export interface TrainOptions extends CommonFitOptions<TrainProgress> {
  /** Train until this many iterations in total, so a resumed model continues (course: 35000). */
  iterations?: number
  /** Report every this many iterations, at j % every == 0 (course: 2000). */
  every?: number
  /** Names sampled per report with seeds 0..names-1 (course: 7). */
  names?: number
  onReport?: (report: NameReport) => void
}

/** The option names each call takes: a misspelt one is refused, not ignored. */
const MODEL_OPTIONS = ['hidden', 'learningRate', 'clip', 'seed', 'shuffleSeed', 'arithmetic', 'names'] as const
const FIT_OPTIONS = ['signal', 'onProgress', 'seconds', 'iterations', 'every', 'names', 'onReport'] as const

/** `NameModel.fit`'s options (the same as `TrainOptions`). */
export type NameFitOptions = TrainOptions

export interface SampleOptions {
  /** With a seed: reproducible names (name k uses seed + k). Without: random. */
  seed?: number
  /** Softmax temperature: 1 = the model's distribution, 0 = greedy (the same name every time) (default 1). */
  temperature?: number
  /**
   * Draw only among the k most likely characters (renormalised): 0 (default) = all, as the
   * course; 1 = greedy.
   */
  topK?: number
  /** At most this many characters per name, the prefix included (course: 50). */
  maxLength?: number
  /** Characters the name starts with (must be in the vocabulary). */
  prefix?: string
  /** How many names (sampled in parallel, still deterministic for a seed) (default 1). */
  count?: number
}

/** Options of `beamSearch`. */
export interface NameBeamOptions extends CommonBeamOptions {
  /** Characters the names start with (must be in the vocabulary). */
  prefix?: string
  /** At most this many characters per name, the prefix included (course: 50). */
  maxLength?: number
}

/** Parameters of the name model, keyed as in the course. */
export interface NameModelParameters {
  Wax: Tensor
  Waa: Tensor
  Wya: Tensor
  b: Tensor
  by: Tensor
}

/** Capitalises the first character, as the course's `print_sample`. */
export function capitalise(s: string): string {
  const first = String.fromCodePoint(s.codePointAt(0) ?? 32)
  return s.length === 0 ? s : first.toUpperCase() + s.slice(first.length)
}

export class NameModel {
  private constructor(
    private readonly trainer: NativeTrainer,
    readonly vocabulary: Vocabulary,
    /** `NameModelOptions.names`: the default of `fit`'s `names`. */
    private readonly namesPerReport?: number,
  ) {}

  /** A fresh model over `names` (lower-cased and stripped as the course does). */
  static fromNames(names: readonly string[], options: NameModelOptions = {}): NameModel {
    checkOptionNames('NameModel', options, MODEL_OPTIONS)
    const examples = normaliseNames(names)
    if (examples.length === 0) throw invalidArg('names: no non-empty names to learn from')
    const vocab = Vocabulary.fromNames(examples)
    const encoded = examples.map((n) => Uint32Array.from(vocab.encode(n, `name '${n}'`)))
    const d = NAME_MODEL_DEFAULTS
    const trainer = new (native().NativeNameTrainer)(vocab.toString(), encoded, {
      hidden: checkInt('hidden', options.hidden ?? d.hidden, 1, 65536),
      learningRate: checkFinite('learningRate', options.learningRate ?? d.learningRate),
      clip: checkFinite('clip', options.clip ?? d.clip),
      shuffleSeed: checkInt('seed', options.seed ?? options.shuffleSeed ?? d.seed, 0, 0xffffffff),
      arithmetic: checkArithmetic(options.arithmetic ?? d.arithmetic),
      namesPerReport: checkInt('names', options.names ?? d.names, 0, 1_000_000),
    })
    return new NameModel(trainer, vocab, options.names)
  }

  /** A fresh model over a one-name-per-line file (UTF-8). */
  static fromFile(path: string, options: NameModelOptions = {}): NameModel {
    return NameModel.fromNames(readNames(path), options)
  }

  /** A fresh model over the out-of-the-box corpus (the npm package `dinosaurs`). */
  static dinosaurs(options: NameModelOptions = {}): NameModel {
    return NameModel.fromNames(defaultDinosaurNames(), options)
  }

  /** Loads a checkpoint written by `save` (weights, state, vocabulary, iteration, loss). */
  static load(path: string): NameModel {
    let trainer: NativeTrainer
    try {
      trainer = native().NativeNameTrainer.load(path)
    } catch (e) {
      throw wrongKindError(path, e, 'dinos') ?? e
    }
    return new NameModel(trainer, Vocabulary.fromString(trainer.vocabulary))
  }

  /** Writes a checkpoint atomically (temp file + rename); `resume` continues bit-exactly. */
  save(path: string): void {
    this.trainer.save(path)
  }

  /** Iterations trained so far. */
  get iteration(): number {
    return this.trainer.iteration
  }

  /** The course's smoothed loss. */
  get loss(): number {
    return this.trainer.smoothedLoss
  }

  /** How the training step forms its sums (`'numpy'` or `'fast'`; a checkpoint keeps it). */
  get arithmetic(): Arithmetic {
    return this.trainer.arithmetic as Arithmetic
  }

  get hidden(): number {
    return this.trainer.hidden
  }

  /** A copy of the parameters, keyed as in the course. */
  parameters(): NameModelParameters {
    return this.trainer.parameters()
  }

  /**
   * Trains until `iterations` in total (and/or for `seconds`), one example per iteration,
   * exactly the course's loop, off the JS thread in chunks; reports at j % every == 0 like the
   * course. The model's names were given when it was made, so `fit(options)` and the shared
   * signature `fit(undefined, options)` are the same. On abort it rejects with an `AbortError`
   * after the last completed iteration; the model keeps that state and can `fit` again.
   */
  fit(options?: TrainOptions): Promise<void>
  fit(data: undefined, options?: TrainOptions): Promise<void>
  async fit(first?: TrainOptions, second?: TrainOptions): Promise<void> {
    if (second !== undefined && first !== undefined)
      throw invalidArg('NameModel.fit: takes no data (the names come from fromNames, fromFile or dinosaurs)')
    const options = second ?? first ?? {}
    checkOptionNames('NameModel.fit', options, FIT_OPTIONS)
    const d = NAME_MODEL_DEFAULTS
    const total = checkInt('iterations', options.iterations ?? d.iterations, 0)
    const seconds = options.seconds === undefined ? Infinity : checkSeconds(options.seconds)
    const every = checkInt('every', options.every ?? d.every, 1)
    const nNames = checkInt('names', options.names ?? this.namesPerReport ?? d.names, 0)
    const start = this.trainer.iteration
    const t0 = performance.now()
    const signal = options.signal
    const onAbort = () => this.trainer.cancel()
    signal?.addEventListener('abort', onAbort)
    try {
      // Progress granularity: small enough for a lively bar, large enough to amortise the hop.
      const chunk = Math.max(1, Math.min(every, 1000))
      while (this.trainer.iteration < total && (performance.now() - t0) / 1000 < seconds) {
        throwIfAborted('NameModel.fit', signal)
        const j = this.trainer.iteration // the next iteration to run
        // Stop right after the next reporting iteration (j' % every == 0) or the chunk end.
        const nextReport = Math.ceil(j / every) * every
        const end = Math.min(total, j + chunk, nextReport + 1)
        // a failed chunk rejects with the native Error and its `code` (e.g. ERR_DIVERGED)
        const ran = await this.trainer.run(end - j)
        const chunkLosses = ran.losses
        throwIfAborted('NameModel.fit', signal)
        const done = this.trainer.iteration
        const elapsed = (performance.now() - t0) / 1000
        const rate = (done - start) / Math.max(elapsed, 1e-9)
        options.onProgress?.({
          done,
          total,
          unit: 'iterations',
          loss: this.trainer.smoothedLoss,
          rate,
          elapsed,
          eta: etaOf(done, total, rate, elapsed, seconds),
          chunkLosses,
        })
        const last = done - 1
        if (last % every === 0 && options.onReport) {
          const names: string[] = []
          // the course's sample ends with '\n': the names here do not
          for (let seed = 0; seed < nNames; seed++)
            names.push(this.vocabulary.decode(this.trainer.sampleCourse(seed)).replace(/\n$/, ''))
          options.onReport({ iteration: last, loss: this.trainer.smoothedLoss, names })
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  /** @deprecated `fit(undefined, options)`: the old name, kept for one release. */
  train(options: TrainOptions = {}): Promise<void> {
    return this.fit(undefined, options)
  }

  /**
   * The course's `sample`: one name's indices (ending with '\n'), re-seeding with
   * `counter + seed` before each draw; stops at '\n' or 50 characters.
   */
  sampleCourse(seed: number): number[] {
    return Array.from(this.trainer.sampleCourse(checkInt('seed', seed, 0, 0xffffffff)))
  }

  /** Invents names (without the final '\n'). */
  sample(options: SampleOptions = {}): string[] {
    checkOptionNames('NameModel.sample', options, ['seed', 'temperature', 'topK', 'maxLength', 'prefix', 'count'])
    const d = NAME_MODEL_DEFAULTS
    const count = checkInt('count', options.count ?? d.count, 0, 1_000_000)
    const seed =
      options.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : checkInt('seed', options.seed, 0, 2 ** 52)
    const temperature = checkTemperature(options.temperature ?? d.temperature)
    const topK = checkInt('topK', options.topK ?? 0, 0, 0xffffffff)
    const { prefix, prefixIx, draws } = this.prefixAndDraws(options)
    if (temperature === 0 || topK === 1) {
      const name = greedyName(this.parameters(), this.vocabulary, prefix, draws)
      return Array<string>(count).fill(name)
    }
    const out = this.trainer.sample({ seed, temperature, maxLength: draws, prefix: prefixIx, count, topK })
    return out.map((ix) => this.vocabulary.decode(ix).replace(/\n$/, ''))
  }

  /**
   * The `beamWidth` most likely names after `prefix`, by beam search at temperature 1:
   * `{ text, logProb }` best first (equal log-probabilities: the name whose character indices
   * come first), the same for any seed or thread count. A name ends at the newline (whose
   * probability counts in `logProb`) or at `maxLength` characters, the prefix included (then
   * no newline is scored); `text` starts with the prefix, as in `sample`. `beamWidth: 1` is
   * `sample({ temperature: 0 })`.
   */
  beamSearch(options: NameBeamOptions = {}): BeamResult[] {
    const beamWidth = checkBeamOptions('NameModel.beamSearch', options, NAME_MODEL_DEFAULTS.beamWidth)
    checkOptionNames('NameModel.beamSearch', options, ['beamWidth', 'prefix', 'maxLength'])
    const { prefixIx, draws } = this.prefixAndDraws(options)
    const found = this.trainer.beamSearch({ prefix: prefixIx, maxLength: draws, beamWidth })
    return found.map((b) => ({ text: this.vocabulary.decode(b.indices), logProb: b.logProb }))
  }

  /** The prefix (lower-cased, as indices) and how many characters may follow it under `maxLength`. */
  private prefixAndDraws(options: { prefix?: string; maxLength?: number }) {
    const maxLength = checkInt('maxLength', options.maxLength ?? NAME_MODEL_DEFAULTS.maxLength, 1, 100_000)
    const prefix = (options.prefix ?? '').toLowerCase()
    const prefixIx = Uint32Array.from(this.vocabulary.encode(prefix, `prefix '${prefix}'`))
    if (prefixIx.includes(this.vocabulary.newline)) throw invalidArg('prefix: must not contain a newline')
    // the prefix counts toward maxLength, and at least one character is drawn after it
    if (maxLength <= prefixIx.length)
      throw invalidArg(
        `maxLength: ${maxLength} leaves no character after the prefix '${prefix}' (${prefixIx.length} characters, ` +
          `which count toward maxLength); give at least ${prefixIx.length + 1}`,
      )
    return { prefix, prefixIx, draws: maxLength - prefixIx.length }
  }
}

function checkArithmetic(v: string): Arithmetic {
  if (v !== 'numpy' && v !== 'fast')
    throw invalidArg(`arithmetic: expected 'numpy' or 'fast', got ${JSON.stringify(v)}`)
  return v
}
