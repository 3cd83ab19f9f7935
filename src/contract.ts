// The model contract the three model classes share (NameModel, CharLanguageModel,
// JazzImproviser): the progress shape of `fit`, the error an abort rejects with, and the
// `code` every argument error carries.

/** What every `fit` reports through `onProgress` (each class adds its own extra fields). */
export interface Progress {
  /** Budget units completed so far, in total (across earlier `fit` calls and resumes). */
  done: number
  /** The total this `fit` call trains to, or `undefined` when unknown (a `seconds` budget only). */
  total: number | undefined
  /** What `done` and `total` count. */
  unit: 'iterations' | 'epochs'
  /** The model's current training loss (each class says which; nats). */
  loss: number
  /** Units per second in this `fit` call (units done before it do not count). */
  rate: number
  /** Seconds since this `fit` call started. */
  elapsed: number
  /** Seconds left by the budget at the current rate, or `undefined` when unknown. */
  eta: number | undefined
}

/** Options every `fit` takes. */
export interface CommonFitOptions<P extends Progress> {
  /** Stops training after the last completed step: `fit` rejects with an `AbortError`. */
  signal?: AbortSignal
  /** Called after every chunk of steps with the current progress. */
  onProgress?: (progress: P) => void
  /** Wall-clock budget of this call in seconds (checked between chunks); `fit` resolves when it runs out. */
  seconds?: number
}

/** An argument error: a `RangeError` with `code: 'ERR_INVALID_ARG'`. */
export type InvalidArgumentError = RangeError & { code: 'ERR_INVALID_ARG' }

/** The `RangeError` (with `code: 'ERR_INVALID_ARG'`) every model class throws for a bad option. */
export function invalidArg(message: string): InvalidArgumentError {
  return Object.assign(new RangeError(message), { code: 'ERR_INVALID_ARG' as const })
}

/**
 * Refuses an options object with a key the call does not know (a misspelt `grammr` would
 * otherwise be ignored silently): an `ERR_INVALID_ARG` error naming the key and the known ones.
 */
export function checkOptionNames(what: string, options: object | undefined, known: readonly string[]): void {
  if (options === undefined || options === null || typeof options !== 'object') return
  for (const key of Object.keys(options)) {
    if (!known.includes(key))
      throw invalidArg(`${what}: unknown option '${key}' (known: ${[...known].sort().join(', ')})`)
  }
}

/** A `TypeError` for an argument of the wrong type, with `code: 'ERR_INVALID_ARG_TYPE'` as Node's own. */
export function invalidArgType(message: string): TypeError & { code: 'ERR_INVALID_ARG_TYPE' } {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_TYPE' as const })
}

/**
 * What `fit` rejects with when its `signal` aborts: `name === 'AbortError'` (as `fetch`
 * rejects) and `code === 'ABORT_ERR'` (as Node's own abortable APIs); `cause` is the signal's
 * reason. The model keeps the state of its last completed step and can `fit` again.
 */
export class AbortError extends Error {
  override readonly name = 'AbortError'
  readonly code = 'ABORT_ERR'
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options)
  }
}

/** The abort error of `what` (e.g. 'NameModel.fit'), with the signal's reason as its cause. */
export function abortError(what: string, signal?: AbortSignal): AbortError {
  return new AbortError(`${what}: aborted`, signal ? { cause: signal.reason } : undefined)
}

/** Throws `abortError(what)` when `signal` has aborted. */
export function throwIfAborted(what: string, signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(what, signal)
}

/** An integer in [min, max] or an `ERR_INVALID_ARG`. */
export function checkInt(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw invalidArg(`${name}: expected an integer in [${min}, ${max}], got ${v}`)
  return v
}

/** A number in [min, max] (not NaN) or an `ERR_INVALID_ARG`. */
export function checkNumber(name: string, v: unknown, min = -Infinity, max = Infinity): number {
  if (typeof v !== 'number' || Number.isNaN(v) || v < min || v > max)
    throw invalidArg(`${name}: expected a number in [${min}, ${max}], got ${v}`)
  return v
}

/** A finite number or an `ERR_INVALID_ARG`. */
export function checkFinite(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalidArg(`${name}: expected a finite number, got ${v}`)
  return v
}

/** A sampling temperature: finite and >= 0 (0 = greedy), or an `ERR_INVALID_ARG`. */
export function checkTemperature(v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    throw invalidArg(`temperature: expected a finite number >= 0 (0 = greedy), got ${v}`)
  return v
}

/** One result of `beamSearch` (`NameModel`, `CharLanguageModel`); the results come best first. */
export interface BeamResult {
  /** The name (prefix included) or the text's continuation (prompt excluded), as `sample`/`generate` give it. */
  text: string
  /** Natural-log probability of the characters the search chose (a name's ending newline included), at temperature 1. */
  logProb: number
}

/** Options every `beamSearch` takes. */
export interface CommonBeamOptions {
  /** How many hypotheses the beam keeps, and at most how many results (1..10000; default 5). */
  beamWidth?: number
}

/** The largest `beamWidth` (each step scores beamWidth × vocabulary candidates). */
export const MAX_BEAM_WIDTH = 10_000

/**
 * The `beamWidth` of a `beamSearch` call, after refusing the sampling options a beam search
 * cannot honour: it ranks by the model's own probabilities (no `temperature`, no `topK`), has
 * no randomness (no `seed`) and returns `beamWidth` results (no `count`).
 */
export function checkBeamOptions(what: string, options: object, fallback: number): number {
  const given = options as Record<string, unknown>
  for (const name of ['temperature', 'topK', 'count', 'seed']) {
    if (given[name] !== undefined)
      throw invalidArg(
        `${name}: ${what} cannot honour it (beam search ranks by the model's own probabilities, has no ` +
          `randomness and returns beamWidth results); leave ${name} out`,
      )
  }
  return checkInt('beamWidth', given.beamWidth ?? fallback, 1, MAX_BEAM_WIDTH)
}

/** A `seconds` budget: a number > 0 (Infinity allowed), or an `ERR_INVALID_ARG`. */
export function checkSeconds(v: unknown): number {
  if (typeof v !== 'number' || Number.isNaN(v) || v <= 0) throw invalidArg(`seconds: expected a number > 0, got ${v}`)
  return v
}

/** Seconds left of the budget at `rate`, the tighter of the unit and the time budgets. */
export function etaOf(done: number, total: number | undefined, rate: number, elapsed: number, seconds: number) {
  const byUnits = total !== undefined && rate > 0 ? Math.max(total - done, 0) / rate : undefined
  const byTime = Number.isFinite(seconds) ? Math.max(seconds - elapsed, 0) : undefined
  if (byUnits === undefined) return byTime
  return byTime === undefined ? byUnits : Math.min(byUnits, byTime)
}

/** A file error with a `code` (`ERR_BAD_FILE`), naming the file. */
export function fileError(file: string, message: string): Error & { code: 'ERR_BAD_FILE' } {
  return Object.assign(new Error(`${file}: ${message}`), { code: 'ERR_BAD_FILE' as const })
}

/** What each kind of rnnlab checkpoint is, and what reads it. */
const KIND_READERS: Record<string, string> = {
  dinos: "a name model (Dinosaurus Island): read it with NameModel.load, 'rnnlab sample' or 'rnnlab dinos --resume'",
  charlm:
    "a character language model: read it with CharLanguageModel.load, 'rnnlab generate' or 'rnnlab train --resume'",
  jazz: "a jazz model: read it with JazzImproviser.load or 'rnnlab jazz --resume'",
}

/**
 * The core's wrong-kind error (`checkpoint kind: expected "X", got "Y"`) reworded to say what
 * the file is and what reads it; undefined for any other error.
 */
export function wrongKindError(file: string, e: unknown, expected: string): Error | undefined {
  const m = /checkpoint kind: expected "([^"]*)", got "([^"]*)"/.exec(String((e as Error)?.message))
  if (m === null || m[1] !== expected) return undefined
  const kind = m[2]
  const what = KIND_READERS[kind] ?? `of kind "${kind}", which no rnnlab model reads`
  const reader = KIND_READERS[expected]?.replace(/^.*: read it with /, '') ?? `a "${expected}" reader`
  return fileError(file, `kind "${kind}" is ${what}; kind "${expected}" is what ${reader} read`)
}
