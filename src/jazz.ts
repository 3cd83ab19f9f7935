// Improvise a jazz solo (the course's third notebook, on deepjazz's pipeline): a MIDI
// performance becomes a corpus of grammar values, the Rust core trains the djmodel on windows
// of them, and the music inference loop here turns the trained cell's choices back into notes
// over the source's chords.
import { writeFileSync } from 'node:fs'
import * as path from 'node:path'

import {
  abortError,
  type CommonFitOptions,
  checkInt,
  checkOptionNames,
  checkSeconds,
  checkTemperature,
  etaOf,
  invalidArg,
  type Progress,
  fileError,
  wrongKindError,
} from './contract'
import { native } from './native'
import {
  buildCorpus,
  type Corpus,
  corpusOf,
  parseValue,
  type Rng,
  seededRng,
  tidy,
  unparseMeasure,
} from './music/grammar'
import { type DeepjazzMeasure, decodeDeepjazz, deepjazzCorpus, deepjazzMeasures, toChord } from './music/deepjazz'
import type { M21Chord } from './music/music21'
import { buildMidi, type Note, parseMidiBytes, readMidiFile, type Song } from './music/midi'
import { pianoRollSvg } from './music/pianoroll'
import { type Measure, type Section, type SectionOptions, selectSection } from './music/section'
import type { Chord } from './music/theory'

/**
 * The defaults of `JazzImproviser` (the course's values), which `rnnlab jazz` uses too. The
 * core's Adam is the course's (learning rate 0.01, decay 0.01): `learningRate` is fixed.
 */
export const JAZZ_DEFAULTS = Object.freeze({
  nA: 64,
  tX: 30,
  m: 60,
  seed: 0,
  learningRate: 0.01,
  /** `fit`: the total epochs to reach, and epochs per native chunk. */
  epochs: 100,
  chunk: 10,
  /** `improvise`: values per measure at most (Ty), 0 = argmax as the course, all values. */
  length: 50,
  temperature: 0,
  topK: 0,
  /** The grammar of the values (see `JazzGrammar`; chosen from measurements, docs/course-differences.md). */
  grammar: 'rnnlab' as JazzGrammar,
})

/**
 * The grammar that turns melody into values and back. `'deepjazz'`: deepjazz's own grammar as
 * the course ran it (music21 5.1.0), value for value (the Metheny section gives the course's 193
 * values, 78 unique), decoded as the course's `generate_music` decodes. `'rnnlab'`: rnnlab's
 * grammar (notes cut at the next onset, rests, tonal's chords and interval names; decoded
 * inside each measure and the melody's range).
 */
export type JazzGrammar = 'rnnlab' | 'deepjazz'
export const JAZZ_GRAMMARS: readonly JazzGrammar[] = ['rnnlab', 'deepjazz']

/** Checks a grammar name (an `ERR_INVALID_ARG` error naming the value and the choices). */
export function checkGrammar(grammar: unknown): JazzGrammar {
  if (!JAZZ_GRAMMARS.includes(grammar as JazzGrammar))
    throw invalidArg(
      `grammar: expected one of ${JAZZ_GRAMMARS.map((g) => `'${g}'`).join(', ')}, got ${JSON.stringify(grammar)}`,
    )
  return grammar as JazzGrammar
}

const FROM_MIDI_OPTIONS = ['melodyTrack', 'chordTracks', 'start', 'end', 'nA', 'tX', 'm', 'seed', 'grammar'] as const
const FIT_OPTIONS = ['epochs', 'chunk', 'learningRate', 'signal', 'onProgress', 'seconds'] as const
const IMPROVISE_OPTIONS = ['length', 'temperature', 'topK', 'seed'] as const

/** Options of `JazzImproviser.fromMidi`: the section to learn from and the model's sizes. */
export interface JazzOptions extends SectionOptions {
  /** Hidden size of the LSTM (course: 64). */
  nA?: number
  /** Steps per training window (course: 30). */
  tX?: number
  /** Number of training windows (course: 60). */
  m?: number
  /** Seed of the windows and the initial weights. */
  seed?: number
  /** The grammar of the values: 'rnnlab' (default) or 'deepjazz' (see `JazzGrammar`). */
  grammar?: JazzGrammar
}

/**
 * Progress of `fit`, after each chunk of epochs (`unit: 'epochs'`): `done` counts epochs in
 * total, `total` is the `epochs` budget, `loss` the last epoch's categorical cross-entropy.
 */
export interface JazzProgress extends Progress {
  unit: 'epochs'
  total: number
  /** The same as `done` (kept from before the shared progress shape). */
  epoch: number
  /** The same as `total`. */
  epochs: number
  /** The last epoch's accuracy. */
  accuracy: number
}

/** Options of `JazzImproviser.fit` (the budget is `epochs`, a total, and/or `seconds`). */
export interface JazzFitOptions extends CommonFitOptions<JazzProgress> {
  /** Train until this many epochs are complete in total, so a model fitted again continues (course: 100). */
  epochs?: number
  /** Epochs per native chunk: `onProgress`, `seconds` and `signal` are checked between chunks (default 10). */
  chunk?: number
  /** Must be the course's 0.01 when given: the core's Adam has it fixed. */
  learningRate?: number
}

/** Options of `JazzImproviser.improvise`. */
export interface ImproviseOptions {
  /** Values generated per measure at most (Ty; course: 50). */
  length?: number
  /** 0 = argmax, as the course (default); > 0 samples from p^(1/T). */
  temperature?: number
  /** Sample among the k most likely values: 0 = all (default), 1 = argmax (the language model's sampler). */
  topK?: number
  /** Seeds the sampling and the reverse grammar's choices (default 0). */
  seed?: number
}

/** Per-epoch history returned by `fit`. */
export interface JazzHistory {
  loss: number[]
  accuracy: number[]
}

/** A generated solo: values and notes per measure, all times in quarter notes from 0. */
export interface Solo {
  /** The value indices picked by the model, per measure. */
  indices: number[][]
  /** The same as grammar values. */
  values: string[][]
  /** The solo notes (after tidying), absolute times. */
  notes: Note[]
  /** The chords under the solo, absolute times (measure k starts at 4k). */
  chords: Chord[]
  /** Tempo for playback. */
  bpm: number
}

/** The path of the original jazz head shipped with the package (see scripts/make_jazz_corpus.js). */
export const DEFAULT_JAZZ_MIDI = path.join(__dirname, '..', 'assets', 'jazz', 'original_blues_head.mid')

/** Trains the djmodel on a MIDI performance and improvises over its chords. */
export class JazzImproviser {
  /** The selected section, measure by measure. */
  readonly section: Section
  /** The corpus of values (`corpus.corpus`, unique `corpus.values`). */
  readonly corpus: Corpus
  readonly nA: number
  readonly tX: number
  readonly m: number
  /** The grammar of the values. */
  readonly grammar: JazzGrammar
  /** In the deepjazz grammar: the section's measures as music21 reads them (melody and chords). */
  readonly deepjazzMeasures?: DeepjazzMeasure[]
  private readonly model: NativeJazzModel
  private last?: Solo

  private constructor(section: Section, options: JazzOptions, restored?: Restored, dj?: DeepjazzMeasure[]) {
    this.section = section
    this.grammar = checkGrammar(options.grammar ?? JAZZ_DEFAULTS.grammar)
    this.deepjazzMeasures = this.grammar === 'deepjazz' ? dj : undefined
    if (this.grammar === 'deepjazz' && !dj)
      throw invalidArg('the deepjazz grammar needs the measures music21 would read')
    this.corpus = restored?.corpus ?? (dj ? corpusOf(deepjazzCorpus(dj)) : buildCorpus(section.measures))
    this.nA = checkInt('nA', options.nA ?? JAZZ_DEFAULTS.nA, 1)
    this.tX = checkInt('tX', options.tX ?? JAZZ_DEFAULTS.tX, 1)
    this.m = checkInt('m', options.m ?? JAZZ_DEFAULTS.m, 1)
    if (this.corpus.corpus.length <= this.tX) {
      throw invalidArg(
        `${section.path}: the section gives ${this.corpus.corpus.length} values, fewer than tX + 1 = ${this.tX + 1} needed for one window`,
      )
    }
    if (restored) {
      this.model = restored.model
      return
    }
    const seed = checkInt('seed', options.seed ?? JAZZ_DEFAULTS.seed, 0, 0xffffffff)
    const idx = this.corpus.corpus.map((v) => this.corpus.indices.get(v)!)
    this.model = new (native().NativeJazzModel)({
      corpus: idx,
      nValues: this.corpus.values.length,
      nA: this.nA,
      tX: this.tX,
      m: this.m,
      seed,
    })
  }

  /** Reads a MIDI file (default: the package's original blues head) and prepares the model. */
  static fromMidi(file: string = DEFAULT_JAZZ_MIDI, options: JazzOptions = {}): JazzImproviser {
    checkOptionNames('JazzImproviser.fromMidi', options, FROM_MIDI_OPTIONS)
    return JazzImproviser.fromSong(readMidiFile(file), options)
  }

  /** Same as `fromMidi` from bytes in memory (`name` labels errors). */
  static fromBytes(bytes: Uint8Array, options: JazzOptions = {}, name = '<bytes>'): JazzImproviser {
    checkOptionNames('JazzImproviser.fromBytes', options, FROM_MIDI_OPTIONS)
    return JazzImproviser.fromSong(parseMidiBytes(bytes, name), options)
  }

  /** Prepares the model from an already parsed song. */
  static fromSong(song: Song, options: JazzOptions = {}): JazzImproviser {
    checkOptionNames('JazzImproviser.fromSong', options, FROM_MIDI_OPTIONS)
    const grammar = checkGrammar(options.grammar ?? JAZZ_DEFAULTS.grammar)
    const s = selectSection(song, options)
    const dj = grammar === 'deepjazz' ? deepjazzMeasures(song, s.melodyTrack, s.chordTracks, s.start, s.end) : undefined
    return new JazzImproviser(s, options, undefined, dj)
  }

  /**
   * Reads a model written by `save`: the section (measures, chords, tempo, pitch range), the
   * corpus, the weights, the Adam state and the training windows, so `improvise` gives the
   * saved model's solos and `fit` continues exactly where it stopped. A file of another kind
   * is an `ERR_BAD_FILE` Error naming its kind and what reads it.
   */
  static load(file: string): JazzImproviser {
    let model: NativeJazzModel
    try {
      model = native().NativeJazzModel.load(file)
    } catch (e) {
      throw wrongKindError(file, e, 'jazz') ?? e
    }
    const saved = parseSaved(file, model.meta)
    const corpus: Corpus = {
      ...buildCorpus(saved.section.measures),
      corpus: saved.corpus,
      values: saved.values,
      indices: new Map(saved.values.map((v, i) => [v, i])),
    }
    return new JazzImproviser(
      saved.section,
      { nA: saved.nA, tX: saved.tX, m: saved.m, seed: model.seed, grammar: saved.grammar ?? 'rnnlab' },
      { model, corpus },
      saved.deepjazz,
    )
  }

  /**
   * Writes the whole model atomically (a temporary file renamed over `file`): section, corpus,
   * weights, optimizer and training windows, as a safetensors checkpoint of kind "jazz".
   */
  save(file: string): void {
    const saved: SavedImproviser = {
      version: 1,
      section: this.section,
      corpus: this.corpus.corpus,
      values: this.corpus.values,
      nA: this.nA,
      tX: this.tX,
      m: this.m,
      grammar: this.grammar,
      deepjazz: this.deepjazzMeasures,
    }
    this.model.save(file, JSON.stringify(saved))
  }

  /** The seed of the training windows and the initial weights (kept by `save`/`load`). */
  get seed(): number {
    return this.model.seed
  }

  /** Epochs trained since the model was made (kept by `save`/`load`). */
  get epochsDone(): number {
    return this.model.epochsDone
  }

  /** Number of unique values (the size of the one-hot vectors; the course: 78). */
  get nValues(): number {
    return this.corpus.values.length
  }

  /**
   * Full-batch Adam training (course: 100 epochs) off the JS thread, in chunks of `chunk`
   * epochs, until `epochs` are complete in total or `seconds` have passed; `onProgress` after
   * each chunk. The corpus was given when the model was made, so `fit(options)` and the shared
   * signature `fit(undefined, options)` are the same. When `signal` aborts it stops after the
   * current epoch and rejects with an `AbortError`; the model keeps that state and can `fit` again.
   */
  fit(options?: JazzFitOptions): Promise<JazzHistory>
  fit(data: undefined, options?: JazzFitOptions): Promise<JazzHistory>
  async fit(first?: JazzFitOptions, second?: JazzFitOptions): Promise<JazzHistory> {
    if (first !== undefined && second !== undefined)
      throw invalidArg('JazzImproviser.fit: takes no data (the corpus comes from fromMidi, fromBytes or fromSong)')
    const options = second ?? first ?? {}
    if (typeof options !== 'object' || options === null)
      throw invalidArg(`JazzImproviser.fit: expected an options object, got ${String(options)}`)
    checkOptionNames('JazzImproviser.fit', options, FIT_OPTIONS)
    const epochs = checkInt('epochs', options.epochs ?? JAZZ_DEFAULTS.epochs, 0)
    const chunk = checkInt('chunk', options.chunk ?? JAZZ_DEFAULTS.chunk, 1)
    const seconds = options.seconds === undefined ? Infinity : checkSeconds(options.seconds)
    if (options.learningRate !== undefined && options.learningRate !== JAZZ_DEFAULTS.learningRate)
      throw invalidArg(
        `learningRate: the jazz model's Adam has the course's ${JAZZ_DEFAULTS.learningRate} fixed, got ${options.learningRate}`,
      )
    const history: JazzHistory = { loss: [], accuracy: [] }
    const start = this.model.epochsDone
    const t0 = performance.now()
    const onAbort = () => this.model.cancel()
    options.signal?.addEventListener('abort', onAbort)
    try {
      while (this.model.epochsDone < epochs && (performance.now() - t0) / 1000 < seconds) {
        if (options.signal?.aborted) throw abortError('JazzImproviser.fit', options.signal)
        // a failed chunk rejects with the native Error and its `code`
        const report = await this.model.fit(Math.min(chunk, epochs - this.model.epochsDone))
        history.loss.push(...report.loss)
        history.accuracy.push(...report.accuracy)
        const done = this.model.epochsDone
        const k = history.loss.length - 1
        if (k >= 0) {
          const elapsed = (performance.now() - t0) / 1000
          const rate = (done - start) / Math.max(elapsed, 1e-9)
          options.onProgress?.({
            done,
            total: epochs,
            unit: 'epochs',
            loss: history.loss[k],
            rate,
            elapsed,
            eta: etaOf(done, epochs, rate, elapsed, seconds),
            epoch: done,
            epochs,
            accuracy: history.accuracy[k],
          })
        }
        if (report.cancelled || options.signal?.aborted) throw abortError('JazzImproviser.fit', options.signal)
      }
    } finally {
      options.signal?.removeEventListener('abort', onAbort)
    }
    return history
  }

  /**
   * The music inference loop: for every measure of the source section that has chords, run the
   * trained cell from where the previous measure stopped (starting from zero x, a, c), up to
   * `length` steps (course: Ty = 50) or until the values fill the measure, then turn the values
   * into notes over that measure's chords and tidy them. `temperature` 0 = argmax (the course),
   * > 0 samples from p^(1/T); `seed` fixes both the sampling and the reverse grammar's choices.
   */
  improvise(options: ImproviseOptions = {}): Solo {
    checkOptionNames('JazzImproviser.improvise', options, IMPROVISE_OPTIONS)
    const length = checkInt('length', options.length ?? JAZZ_DEFAULTS.length, 1)
    const temperature = checkTemperature(options.temperature ?? JAZZ_DEFAULTS.temperature)
    const seed = checkInt('seed', options.seed ?? 0, 0, 0xffffffff)
    const topK = checkInt('topK', options.topK ?? JAZZ_DEFAULTS.topK, 0, 0xffffffff)
    const sampler = this.model.sampler(temperature, seed, topK)
    const rng = seededRng(seed)
    if (this.deepjazzMeasures) {
      this.last = this.improviseDeepjazz(this.deepjazzMeasures, sampler, length, rng)
      return this.last
    }
    const parsed = this.corpus.values.map(parseValue)
    const solo: Solo = { indices: [], values: [], notes: [], chords: [], bpm: this.section.bpm }
    const measures = this.section.measures.filter((m) => m.chords.length > 0 || m.carried)
    let prevPitch: number | undefined
    measures.forEach((measure, k) => {
      const offset = 4 * k
      const chords = measureChords(measure)
      const indices: number[] = []
      let filled = 0
      while (indices.length < length && filled < 4 - 1e-9) {
        const v = sampler.next()
        indices.push(v)
        filled += parsed[v].duration
      }
      const notes = tidy(
        unparseMeasure(
          indices.map((i) => parsed[i]),
          chords,
          { range: this.section.pitchRange, prevPitch, rng },
        ),
      )
      if (notes.length > 0) prevPitch = notes[notes.length - 1].pitch
      solo.indices.push(indices)
      solo.values.push(indices.map((i) => this.corpus.values[i]))
      for (const n of notes) solo.notes.push({ ...n, start: n.start + offset })
      for (const c of chords) solo.chords.push({ ...c, start: c.start + offset })
    })
    this.last = solo
    return solo
  }

  /**
   * The deepjazz grammar's inference loop: for every measure of the section with chords (or a
   * chord carried into it), the sampled values (up to `length`, until they fill 4 beats) are
   * decoded as the course's `generate_music` decodes them over that measure's chords.
   */
  private improviseDeepjazz(measures: DeepjazzMeasure[], sampler: Sampler, length: number, rng: Rng): Solo {
    const durations = this.corpus.values.map((v) => Number(v.split(',')[1]))
    const solo: Solo = { indices: [], values: [], notes: [], chords: [], bpm: this.section.bpm }
    let carried: M21Chord | undefined
    let k = 0
    for (const measure of measures) {
      const own = measure.chords.map((c) => ({ ...c, offset: c.offset - 4 * measure.number }))
      const chords = own.length > 0 ? own : carried ? [{ ...carried, offset: 0 }] : []
      if (measure.chords.length > 0) carried = measure.chords[measure.chords.length - 1]
      if (chords.length === 0) continue
      const indices: number[] = []
      let filled = 0
      while (indices.length < length && filled < 4 - 1e-9) {
        const v = sampler.next()
        indices.push(v)
        filled += durations[v]
      }
      const values = indices.map((i) => this.corpus.values[i])
      const offset = 4 * k
      for (const n of decodeDeepjazz(values, chords, rng))
        solo.notes.push({
          pitch: n.pitch,
          start: offset + n.offset,
          duration: n.quarterLength,
          velocity: DEEPJAZZ_VELOCITY,
        })
      for (const c of chords) solo.chords.push(toChord(c, offset + c.offset))
      solo.indices.push(indices)
      solo.values.push(values)
      k++
    }
    return solo
  }

  /** Writes the last improvised solo (or `solo`) as a type-1 MIDI file: solo track + chord track. */
  toMidi(file: string, solo: Solo | undefined = this.last, options: { bpm?: number } = {}): void {
    checkOptionNames('JazzImproviser.toMidi', options, ['bpm'])
    if (!solo) throw notReady('toMidi: nothing to write yet (call improvise() first)')
    writeFileSync(file, soloToMidi(solo, options.bpm ?? solo.bpm))
  }

  /** The piano roll of the last improvised solo (or `solo`) as SVG text. */
  toSvg(solo: Solo | undefined = this.last): string {
    if (!solo) throw notReady('toSvg: nothing to draw yet (call improvise() first)')
    return pianoRollSvg(solo.notes, solo.chords, {
      title: `rnnlab jazz — ${path.basename(this.section.path)}, ${solo.notes.length} notes`,
    })
  }
}

/** A measure's chords relative to its start (the carried chord, if any, governs from beat 0). */
function measureChords(measure: Measure): Chord[] {
  const rel = measure.chords.map((c) => ({
    ...c,
    start: c.start - measure.start,
    duration: Math.min(c.duration, 4 - (c.start - measure.start)),
  }))
  if (measure.carried && (rel.length === 0 || rel[0].start > 1e-9)) {
    rel.unshift({ ...measure.carried, start: 0, duration: rel.length ? rel[0].start : 4 })
  }
  return rel
}

/** The MIDI bytes of a solo: track 1 jazz guitar (solo), track 2 piano (chords). */
export function soloToMidi(solo: Solo, bpm: number): Uint8Array {
  const chordNotes: Note[] = solo.chords.flatMap((c) =>
    c.pitches.map((pitch) => ({ pitch, start: c.start, duration: c.duration, velocity: 64 })),
  )
  return buildMidi(
    [
      { name: 'Solo (rnnlab)', channel: 0, program: 26, notes: solo.notes },
      { name: 'Chords', channel: 1, program: 0, notes: chordNotes },
    ],
    bpm,
  )
}

/** A call the improviser is not ready for yet (`code: 'ERR_NOT_TRAINED'`). */
function notReady(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_NOT_TRAINED' })
}

type NativeJazzModel = InstanceType<ReturnType<typeof native>['NativeJazzModel']>
type Sampler = ReturnType<NativeJazzModel['sampler']>

/** music21's velocity for a note it writes without one (the course's solos are written so). */
const DEEPJAZZ_VELOCITY = 90

/** A model read from a checkpoint, for the private constructor. */
interface Restored {
  model: NativeJazzModel
  corpus: Corpus
}

/** What a jazz checkpoint keeps for this layer (its metadata "improviser", JSON). */
interface SavedImproviser {
  version: 1
  section: Section
  /** The corpus of values in order, and the sorted unique values (index = one-hot position). */
  corpus: string[]
  values: string[]
  nA: number
  tX: number
  m: number
  /** Absent in files written before the deepjazz grammar: 'rnnlab'. */
  grammar?: JazzGrammar
  /** The deepjazz grammar's measures (music21's reading of the section). */
  deepjazz?: DeepjazzMeasure[]
}

/** The saved layer's JSON, checked enough that a damaged file fails here and not later. */
function parseSaved(file: string, raw: string | null | undefined): SavedImproviser {
  if (raw == null) throw fileError(file, 'no "improviser" metadata: not written by JazzImproviser.save')
  let saved: SavedImproviser
  try {
    saved = JSON.parse(raw)
  } catch (e) {
    throw fileError(file, `metadata "improviser" is not JSON (${(e as Error).message})`)
  }
  const ok =
    saved?.version === 1 &&
    Array.isArray(saved.section?.measures) &&
    Array.isArray(saved.corpus) &&
    Array.isArray(saved.values) &&
    saved.corpus.every((v) => saved.values.includes(v)) &&
    [saved.nA, saved.tX, saved.m].every((n) => Number.isInteger(n) && n >= 1) &&
    (saved.grammar === undefined || JAZZ_GRAMMARS.includes(saved.grammar)) &&
    (saved.grammar !== 'deepjazz' || Array.isArray(saved.deepjazz))
  if (!ok) throw fileError(file, 'metadata "improviser" does not describe a jazz model (corpus, section, sizes)')
  return saved
}
