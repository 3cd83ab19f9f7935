// Dinosaurus Island: a character-level RNN that learns names one example at a
// time and invents new ones, exactly as the course's notebook does (seed 1
// initialisation, seed 0 shuffle, SGD with clip 5, smoothed loss), with the
// per-character work in the Rust core and this layer driving it in chunks.
import { native } from './native'
import { Vocabulary, defaultDinosaurNames, normaliseNames, readNames } from './corpus'
import type { Tensor } from './tensor'

type NativeTrainer = InstanceType<ReturnType<typeof native>['NativeNameTrainer']>

export interface NameModelOptions {
  /** Hidden size n_a (course: 50). */
  hidden?: number
  /** SGD learning rate (course: 0.01). */
  learningRate?: number
  /** Element-wise gradient clip (course: 5). */
  clip?: number
  /** Seed of the example shuffle (course: 0). */
  shuffleSeed?: number
  /**
   * How the training step forms its sums. `'numpy'` (default): numpy's order, bit for bit, so
   * every report equals the numpy reference's. `'fast'`: the fastest order, about twice as
   * fast; reports equal numpy's through iteration 12 000 (the part the course's own
   * implementations agree on), then drift in the last bits as any two implementations do.
   */
  arithmetic?: Arithmetic
}

export type Arithmetic = 'numpy' | 'fast'

/** One course report: the smoothed loss after iteration `iteration` and sampled names. */
export interface NameReport {
  iteration: number
  loss: number
  names: string[]
}

export interface TrainProgress {
  /** Iterations completed so far (across resumes). */
  done: number
  /** Iterations this call will have completed at the end. */
  total: number
  /** The course's smoothed loss. */
  loss: number
  /** Iterations per second of this call so far. */
  rate: number
  /** The smoothed loss after each iteration of the chunk just run (for loss curves). */
  chunkLosses: Float64Array
}

export interface TrainOptions {
  /** Train until this many iterations in total (course: 35000). */
  iterations?: number
  /** Report every this many iterations, at j % every == 0 (course: 2000). */
  every?: number
  /** Names sampled per report with seeds 0..names-1 (course: 7). */
  names?: number
  onReport?: (report: NameReport) => void
  onProgress?: (progress: TrainProgress) => void
  /** Stops training between chunks (and inside a chunk through the core's cancel flag). */
  signal?: AbortSignal
}

export interface SampleOptions {
  /** With a seed: the course's seeded semantics (reproducible). Without: random. */
  seed?: number
  /** Softmax temperature (1 = the model's distribution). */
  temperature?: number
  /** At most this many characters (course: 50). */
  maxLength?: number
  /** Characters the name starts with (must be in the vocabulary). */
  prefix?: string
  /** How many names (sampled in parallel, still deterministic for a seed). */
  count?: number
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
  ) {}

  /** A fresh model over `names` (lower-cased and stripped as the course does). */
  static fromNames(names: readonly string[], options: NameModelOptions = {}): NameModel {
    const examples = normaliseNames(names)
    if (examples.length === 0) throw new RangeError('names: no non-empty names to learn from')
    const vocab = Vocabulary.fromNames(examples)
    const encoded = examples.map((n) => Uint32Array.from(vocab.encode(n, `name '${n}'`)))
    const trainer = new (native().NativeNameTrainer)(vocab.toString(), encoded, {
      hidden: checkInt('hidden', options.hidden ?? 50, 1, 65536),
      learningRate: checkNum('learningRate', options.learningRate ?? 0.01),
      clip: checkNum('clip', options.clip ?? 5),
      shuffleSeed: checkInt('shuffleSeed', options.shuffleSeed ?? 0, 0, 0xffffffff),
      arithmetic: checkArithmetic(options.arithmetic ?? 'numpy'),
    })
    return new NameModel(trainer, vocab)
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
    const trainer = native().NativeNameTrainer.load(path)
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
   * Trains until `iterations` in total, one example per iteration, exactly the course's loop.
   * Runs off the JS thread in chunks; reports at j % every == 0 like the course.
   */
  async train(options: TrainOptions = {}): Promise<void> {
    const total = checkInt('iterations', options.iterations ?? 35000, 0)
    const every = checkInt('every', options.every ?? 2000, 1)
    const nNames = checkInt('names', options.names ?? 7, 0)
    const start = this.trainer.iteration
    const t0 = performance.now()
    const signal = options.signal
    const onAbort = () => this.trainer.cancel()
    signal?.addEventListener('abort', onAbort)
    try {
      // Progress granularity: small enough for a lively bar, large enough to amortise the hop.
      const chunk = Math.max(1, Math.min(every, 1000))
      while (this.trainer.iteration < total) {
        signal?.throwIfAborted()
        const j = this.trainer.iteration // the next iteration to run
        // Stop right after the next reporting iteration (j' % every == 0) or the chunk end.
        const nextReport = Math.ceil(j / every) * every
        const end = Math.min(total, j + chunk, nextReport + 1)
        // a failed chunk rejects with the native Error and its `code` (e.g. ERR_DIVERGED)
        const ran = await this.trainer.run(end - j)
        const chunkLosses = ran.losses
        signal?.throwIfAborted()
        const done = this.trainer.iteration
        const secs = (performance.now() - t0) / 1000
        options.onProgress?.({
          done,
          total,
          loss: this.trainer.smoothedLoss,
          rate: (done - start) / Math.max(secs, 1e-9),
          chunkLosses,
        })
        const last = done - 1
        if (last % every === 0 && options.onReport) {
          const names: string[] = []
          for (let seed = 0; seed < nNames; seed++) names.push(this.vocabulary.decode(this.trainer.sampleCourse(seed)))
          options.onReport({ iteration: last, loss: this.trainer.smoothedLoss, names })
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
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
    const count = checkInt('count', options.count ?? 1, 0, 1_000_000)
    const seed =
      options.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : checkInt('seed', options.seed, 0, 2 ** 52)
    const temperature = checkNum('temperature', options.temperature ?? 1)
    if (temperature <= 0) throw new RangeError(`temperature: must be > 0, got ${temperature}`)
    const maxLength = checkInt('maxLength', options.maxLength ?? 50, 1, 100_000)
    const prefix = (options.prefix ?? '').toLowerCase()
    const prefixIx = Uint32Array.from(this.vocabulary.encode(prefix, `prefix '${prefix}'`))
    if (prefixIx.includes(this.vocabulary.newline)) throw new RangeError('prefix: must not contain a newline')
    const out = this.trainer.sample({ seed, temperature, maxLength, prefix: prefixIx, count })
    return out.map((ix) => this.vocabulary.decode(ix).replace(/\n$/, ''))
  }
}

function checkInt(name: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(v) || v < min || v > max)
    throw new RangeError(`${name}: expected an integer in [${min}, ${max}], got ${v}`)
  return v
}

function checkArithmetic(v: string): Arithmetic {
  if (v !== 'numpy' && v !== 'fast')
    throw new RangeError(`arithmetic: expected 'numpy' or 'fast', got ${JSON.stringify(v)}`)
  return v
}

function checkNum(name: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new RangeError(`${name}: expected a finite number, got ${v}`)
  return v
}
