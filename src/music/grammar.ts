// The deepjazz grammar: a measure of melody over its chords becomes a list of "values"
// `TYPE,DUR` or `TYPE,DUR,<UP,DOWN>`, and values become notes again over new chords.
//
//   TYPE  C chord tone, S scale tone, A approach tone (a half step from a chord tone), X other, R rest
//   DUR   length in quarter notes, three decimals ('0.250')
//   UP, DOWN  (after the first note of a measure) the interval from the previous note widened by a
//         minor third each way, as directed interval names ('m3', 'M-2', 'P-4')
import type { Note } from './midi'
import { chordAt, type Measure } from './section'
import {
  type Chord,
  chordPitchClasses,
  classify,
  intervalName,
  intervalSemitones,
  isApproachTone,
  type NoteType,
  pitchClass,
  scalePitchClasses,
} from './theory'
import { invalidArg } from '../contract'

/** A parsed value. */
export interface Value {
  type: NoteType
  duration: number
  /** Interval window in semitones relative to the previous note, [low, high]; absent for the first note and rests. */
  window?: [number, number]
}

const EPS = 1e-9

/** Encodes one measure as values: rests for the gaps, one value per melody note. */
export function parseMeasure(measure: Measure): string[] {
  const values: string[] = []
  let cursor = measure.start
  let prev: number | undefined
  for (const n of measure.melody) {
    if (n.start > cursor + EPS) values.push(`R,${(n.start - cursor).toFixed(3)}`)
    const chord = chordAt(measure, n.start)
    const type = chord ? classify(chord, n.pitch) : 'X'
    let v = `${type},${n.duration.toFixed(3)}`
    if (prev !== undefined) {
      const d = n.pitch - prev
      v += `,<${intervalName(d + 3)},${intervalName(d - 3)}>`
    }
    values.push(v)
    prev = n.pitch
    cursor = Math.max(cursor, n.start + n.duration)
  }
  return values
}

/** Parses a value string; throws a RangeError naming the value when malformed. */
export function parseValue(value: string): Value {
  const m = /^([CSAXR]),(\d+(?:\.\d+)?)(?:,<([^,>]+),([^,>]+)>)?$/.exec(value)
  if (!m) throw invalidArg(`bad grammar value '${value}' (expected TYPE,DUR or TYPE,DUR,<UP,DOWN>)`)
  const out: Value = { type: m[1] as NoteType, duration: Number(m[2]) }
  if (m[3] !== undefined) {
    const a = intervalSemitones(m[3])
    const b = intervalSemitones(m[4])
    out.window = [Math.min(a, b), Math.max(a, b)]
  }
  return out
}

/** The training corpus: every measure with melody, its values in order. */
export interface Corpus {
  /** The values in order (the course's `corpus`). */
  corpus: string[]
  /** Sorted unique values (index = one-hot position). */
  values: string[]
  /** Value → index. */
  indices: Map<string, number>
  /** Values of each measure that has melody. */
  perMeasure: string[][]
}

/** Builds the corpus of values from the measures that hold melody notes. */
export function buildCorpus(measures: Measure[]): Corpus {
  return corpusOf(measures.filter((m) => m.melody.length > 0).map(parseMeasure))
}

/** The corpus of the values of each measure (either grammar's). */
export function corpusOf(perMeasure: string[][]): Corpus {
  const corpus = perMeasure.flat()
  const values = [...new Set(corpus)].sort()
  return { corpus, values, indices: new Map(values.map((v, i) => [v, i])), perMeasure }
}

/** Random source for the reverse grammar: `next()` uniform in [0, 1). */
export interface Rng {
  next(): number
}

/** A small seeded generator (mulberry32): reproducible choices in the reverse grammar. */
export function seededRng(seed: number): Rng {
  let s = seed >>> 0
  return {
    next() {
      s = (s + 0x6d2b79f5) >>> 0
      let t = s
      t = Math.imul(t ^ (t >>> 15), t | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    },
  }
}

const pick = <T>(rng: Rng, xs: T[]): T => xs[Math.floor(rng.next() * xs.length)]

/** Does `pitch` fit the value type over `chord`? (X counts as an approach tone, as in deepjazz.) */
function fits(type: NoteType, chord: Chord, pitch: number): boolean {
  if (type === 'C') return chordPitchClasses(chord).has(pitchClass(pitch))
  if (type === 'S') return scalePitchClasses(chord).has(pitchClass(pitch))
  return isApproachTone(chord, pitch)
}

/** Options of the reverse grammar. */
export interface UnparseOptions {
  /** Pitch range the notes must stay in, [low, high] MIDI. */
  range: [number, number]
  /** Previous note (from the measure before), anchoring the first interval window. */
  prevPitch?: number
  rng: Rng
}

/** Rounds a duration up or down (at random) to a multiple of 0.25; zero lengths become 0.25. */
export function roundDuration(d: number, rng: Rng): number {
  const down = Math.floor(d / 0.25 + 1e-9) * 0.25
  const r = Math.abs(down - d) < 1e-9 ? down : rng.next() < 0.5 ? down : down + 0.25
  return r > 0 ? r : 0.25
}

/**
 * The grammar in reverse: turns a measure's values into notes over `chords` (times relative
 * to the measure, each chord governing from its onset), inside `options.range`. Durations are
 * first rounded to multiples of 0.25; notes are laid end to end from beat 0 and cut at the bar
 * line. Chord tones come from the chord, scale tones from its scale, approach (and X) tones a
 * half step from a chord tone, chosen at random inside the interval window when there is one.
 * Returns the notes before tidying (see `tidy`).
 */
export function unparseMeasure(values: Value[], chords: Chord[], options: UnparseOptions): Note[] {
  const [lo, hi] = options.range
  const { rng } = options
  let prev = options.prevPitch
  let t = 0
  const notes: Note[] = []
  for (const v of values) {
    if (t >= 4 - EPS) break
    const duration = Math.min(roundDuration(v.duration, rng), 4 - t)
    if (v.type === 'R') {
      t += duration
      continue
    }
    let chord = chords[0]
    for (const c of chords) if (c.start <= t + EPS) chord = c
    // Candidates: the window around the previous note, else the whole range.
    const [wlo, whi] = v.window && prev !== undefined ? [prev + v.window[0], prev + v.window[1]] : [lo, hi]
    const inWindow: number[] = []
    for (let p = Math.max(lo, wlo); p <= Math.min(hi, whi); p++) if (fits(v.type, chord, p)) inWindow.push(p)
    let pitch: number
    const fresh = inWindow.filter((p) => p !== prev)
    if (fresh.length > 0) pitch = pick(rng, fresh)
    else if (inWindow.length > 0) pitch = inWindow[0]
    else if (prev !== undefined) {
      // no fitting tone in the window: a whole step from the previous note (deepjazz), kept in range
      const step = pick(rng, [-2, 2])
      pitch = prev + step >= lo && prev + step <= hi ? prev + step : prev - step
    } else
      pitch = pick(
        rng,
        chord.pitches.map((p) => moveIntoRange(p, lo, hi)),
      )
    pitch = moveIntoRange(pitch, lo, hi)
    notes.push({ pitch, start: t, duration, velocity: beatVelocity(t) })
    prev = pitch
    t += duration
  }
  return notes
}

/** Moves a pitch by octaves into [lo, hi] (clamps when the range is narrower than an octave). */
export function moveIntoRange(p: number, lo: number, hi: number): number {
  while (p < lo) p += 12
  while (p > hi) p -= 12
  return Math.max(lo, Math.min(hi, p))
}

/** Accent on the beat: 100 on beats 1 and 3, 92 on 2 and 4, 80 off the beat. */
function beatVelocity(t: number): number {
  if (Math.abs(t - Math.round(t)) > EPS) return 80
  return Math.round(t) % 2 === 0 ? 100 : 92
}

/**
 * Tidies a measure's notes (deepjazz's pruning): a note that starts where the previous one starts
 * is dropped, a repeat of the previous note's pitch is merged into it, lengths shorter than 0.25
 * become 0.25, and every note ends by the next onset and the bar line (no overlaps).
 */
export function tidy(notes: Note[], measureLength = 4): Note[] {
  const sorted = [...notes].sort((a, b) => a.start - b.start)
  const out: Note[] = []
  for (const n of sorted) {
    const last = out[out.length - 1]
    if (n.start >= measureLength - EPS) continue
    if (last && Math.abs(last.start - n.start) < EPS) continue
    if (last && last.pitch === n.pitch) {
      last.duration = n.start + n.duration - last.start
      continue
    }
    out.push({ ...n, duration: Math.max(n.duration, 0.25) })
  }
  for (let k = 0; k < out.length; k++) {
    const limit = k + 1 < out.length ? out[k + 1].start : measureLength
    out[k].duration = Math.min(out[k].duration, limit - out[k].start)
  }
  return out.filter((n) => n.duration > EPS)
}
