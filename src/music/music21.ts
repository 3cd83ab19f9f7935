// The few pieces of music21 (version 5.1.0, the one the course ran) that deepjazz's grammar
// relies on, rewritten for the `deepjazz` grammar mode: spelled pitches (a MIDI note is spelled
// C C# D E- E F F# G G# A B- B), intervals between spelled pitches and their names ('d1', 'A1',
// 'd-4'), interval arithmetic (`add`, `subtract`), a chord's root and quality, and
// `Scale.derive` (the first of 15 spelled tonics whose scale holds most of the chord's pitches).
// Checked against music21 itself by the reference in scripts/deepjazz_reference.py.
import { invalidArg } from '../contract'

/** A spelled pitch: letter step (0 = C … 6 = B), alteration in semitones, octave. */
export interface Spelled {
  step: number
  alter: number
  octave: number
}

const LETTERS = 'CDEFGAB'
const STEP_SEMITONES = [0, 2, 4, 5, 7, 9, 11]
/** music21's spelling of a MIDI pitch class (`Pitch.midi = n`, `Pitch.transpose(int)`). */
const DEFAULT_SPELLING: [number, number][] = [
  [0, 0],
  [0, 1],
  [1, 0],
  [2, -1],
  [2, 0],
  [3, 0],
  [3, 1],
  [4, 0],
  [4, 1],
  [5, 0],
  [6, -1],
  [6, 0],
]

/** MIDI number (music21's `ps`) of a spelled pitch. */
export const ps = (p: Spelled): number => 12 * (p.octave + 1) + STEP_SEMITONES[p.step] + p.alter

/** The name without octave, as music21 writes it ('E-', 'C#', 'F##'). */
export const nameOf = (p: Spelled): string =>
  LETTERS[p.step] + (p.alter > 0 ? '#'.repeat(p.alter) : '-'.repeat(-p.alter))

/** The name with octave ('E-5'). */
export const nameWithOctave = (p: Spelled): string => `${nameOf(p)}${p.octave}`

/** A MIDI pitch spelled as music21 spells it. */
export function spell(midi: number): Spelled {
  const pc = ((midi % 12) + 12) % 12
  const [step, alter] = DEFAULT_SPELLING[pc]
  return { step, alter, octave: Math.floor(midi / 12) - 1 }
}

/** Parses 'E-4', 'C#', 'B--3' (octave 4 when absent, music21's implicit octave). */
export function parsePitch(name: string): Spelled {
  const m = /^([A-G])(#+|-+)?(\d+)?$/.exec(name)
  if (!m) throw invalidArg(`bad pitch name '${name}'`)
  const accidentals = m[2] ?? ''
  const alter = accidentals.startsWith('#') ? accidentals.length : -accidentals.length
  return { step: LETTERS.indexOf(m[1]), alter, octave: m[3] === undefined ? 4 : Number(m[3]) }
}

const diatonic = (p: Spelled): number => p.step + 7 * p.octave

/** A spelled interval: directed generic size (1 unison, ±2 second, …) and semitones. */
export interface Interval {
  generic: number
  semitones: number
}

/** The interval from `a` to `b` (music21's `Interval(noteStart=a, noteEnd=b)`). */
export function intervalBetween(a: Spelled, b: Spelled): Interval {
  const d = diatonic(b) - diatonic(a)
  return { generic: d >= 0 ? d + 1 : d - 1, semitones: ps(b) - ps(a) }
}

/** Transposes a spelled pitch by a spelled interval: the letter moves by the generic size, the accidental makes up the semitones. */
export function transpose(p: Spelled, i: Interval): Spelled {
  const dn = diatonic(p) + (i.generic > 0 ? i.generic - 1 : i.generic + 1)
  const step = ((dn % 7) + 7) % 7
  const octave = Math.floor(dn / 7)
  const natural = 12 * (octave + 1) + STEP_SEMITONES[step]
  return { step, alter: ps(p) + i.semitones - natural, octave }
}

const PERFECT = ['dddd', 'ddd', 'dd', 'd', 'P', 'A', 'AA', 'AAA', 'AAAA'] // offset 0 at index 4
const IMPERFECT = ['dddd', 'ddd', 'dd', 'd', 'm', 'M', 'A', 'AA', 'AAA', 'AAAA'] // M at index 5
const isPerfectable = (simple: number) => simple === 1 || simple === 4 || simple === 5

/** music21's `directedName` of an interval ('M-2', 'd1', 'A1', 'dd-8'). */
export function directedName(i: Interval): string {
  const size = Math.abs(i.generic)
  const simple = ((size - 1) % 7) + 1
  const normal = STEP_SEMITONES[simple - 1] + 12 * Math.floor((size - 1) / 7)
  const gDir = size === 1 ? 0 : Math.sign(i.generic)
  const cDir = Math.sign(i.semitones)
  // music21's _getSpecifierFromGenericChromatic
  const these =
    gDir !== cDir && gDir !== 0 && cDir !== 0
      ? -Math.abs(i.semitones)
      : size === 1
        ? i.semitones
        : Math.abs(i.semitones)
  const offset = these - normal
  const spec = isPerfectable(simple) ? PERFECT[4 + offset] : IMPERFECT[5 + offset]
  if (spec === undefined) throw invalidArg(`cannot name an interval of ${i.semitones} semitones over ${size} steps`)
  return `${spec}${i.generic < 0 ? '-' : ''}${size}`
}

/** Parses a directed interval name ('M-2', 'd1', 'P5'), as music21's `Interval('M-2')`. */
export function parseInterval(name: string): Interval {
  const m = /^(d+|A+|P|M|m)(-?)(\d+)$/.exec(name)
  if (!m || Number(m[3]) < 1) throw invalidArg(`bad interval name '${name}'`)
  const size = Number(m[3])
  const simple = ((size - 1) % 7) + 1
  const normal = STEP_SEMITONES[simple - 1] + 12 * Math.floor((size - 1) / 7)
  const table = isPerfectable(simple) ? PERFECT : IMPERFECT
  const at = table.indexOf(m[1])
  if (at < 0) throw invalidArg(`bad interval name '${name}' (no '${m[1]}' quality for a ${size})`)
  const offset = at - (isPerfectable(simple) ? 4 : 5)
  const down = m[2] === '-'
  // a unison's direction is its quality's (d1 falls, A1 rises); other sizes carry '-'
  const semitones = size === 1 ? offset : (down ? -1 : 1) * (normal + offset)
  return { generic: down ? -size : size, semitones }
}

const C4: Spelled = { step: 0, alter: 0, octave: 4 }
const M3_UP = parseInterval('m3')
const M3_DOWN = parseInterval('m-3')

/** music21's `interval.add([i, 'm3'])`: C4 moved by `i`, then up a minor third, named from C4. */
export const addMinorThird = (i: Interval): Interval => intervalBetween(C4, transpose(transpose(C4, i), M3_UP))

/** music21's `interval.subtract([i, 'm3'])`: C4 moved by `i`, then down a minor third. */
export const subtractMinorThird = (i: Interval): Interval => intervalBetween(C4, transpose(transpose(C4, i), M3_DOWN))

/** A chord as music21 holds one read from MIDI: its pitches in the order of their note-on events. */
export interface M21Chord {
  /** Offset in quarter notes (quantised). */
  offset: number
  /** Length in quarter notes (quantised). */
  quarterLength: number
  pitches: Spelled[]
}

/** The step (1–7) of `p` above `root` counted on letters, as music21's `generic.mod7`. */
const mod7 = (root: Spelled, p: Spelled): number => ((((p.step - root.step) % 7) + 7) % 7) + 1

/** The first pitch of the chord at chord step `n` above `root` (music21's `getChordStep`). */
const chordStep = (pitches: Spelled[], n: number, root: Spelled): Spelled | undefined =>
  pitches.find((p) => mod7(root, p) === n)

/** music21 5's `Chord.findRoot`: the pitch with the most thirds stacked above it. */
export function chordRoot(chord: M21Chord): Spelled {
  const distinct: Spelled[] = []
  for (const p of chord.pitches) if (!distinct.some((q) => q.step === p.step)) distinct.push(p)
  if (distinct.length === 0) throw invalidArg('a chord without pitches has no root')
  if (distinct.length === 1) return chord.pitches[0]
  let bass = distinct[0]
  for (const p of distinct) if (ps(p) < ps(bass)) bass = p
  const perfect: number[] = []
  const scores = distinct.map((root, i) => {
    const found = [3, 5, 7, 2, 4, 6].map((n) => chordStep(distinct, n, root) !== undefined)
    if (found.slice(0, distinct.length - 1).every((x) => x)) perfect.push(i)
    return found.reduce((s, f, k) => (f ? s + 1 / (k + 6) : s), 0)
  })
  if (perfect.length === 1) return distinct[perfect[0]]
  if (perfect.length === distinct.length) return bass
  return distinct[scores.indexOf(Math.max(...scores))]
}

/** music21 5's `Chord.quality`: 'major', 'minor', 'diminished', 'augmented' or 'other'. */
export function chordQuality(chord: M21Chord): string {
  const root = chordRoot(chord)
  const semis = (p: Spelled) => (((ps(p) - ps(root)) % 12) + 12) % 12
  const stepOf = (n: number) => chordStep(chord.pitches, n, root)
  const repeated = (n: number) => {
    const first = stepOf(n)
    return first !== undefined && chord.pitches.some((p) => mod7(root, p) === n && semis(p) !== semis(first))
  }
  const third = stepOf(3)
  const fifth = stepOf(5)
  if (third === undefined || repeated(3)) return 'other'
  const t = semis(third)
  if (fifth === undefined) return t === 4 ? 'major' : t === 3 ? 'minor' : 'other'
  if (repeated(5)) return 'other'
  const f = semis(fifth)
  if (f === 7 && t === 4) return 'major'
  if (f === 7 && t === 3) return 'minor'
  if (f === 8 && t === 4) return 'augmented'
  if (f === 6 && t === 3) return 'diminished'
  return 'other'
}

/** The scales deepjazz derives. */
export type ScaleKind = 'major' | 'dorian' | 'blues'

// The tonics music21's IntervalNetwork.find tries, in its order.
const TONICS = ['C', 'C#', 'D-', 'D', 'D#', 'E-', 'E', 'F', 'F#', 'G', 'G#', 'A', 'B-', 'B', 'C-'].map((n) =>
  parsePitch(n),
)
const MAJOR_STEPS = [2, 2, 1, 2, 2, 2, 1]
const DORIAN_STEPS = [2, 1, 2, 2, 2, 1, 2]
const BLUES_PCS = [0, 3, 5, 6, 7, 10]
// music21 5.1.0's `WeightedHexatonicBlues(tonic).getPitches()` names, tonic by tonic, along the
// network's hexatonic path. (music21 mixes in the minor pentatonic at random on every use; the
// reference, scripts/deepjazz_reference.py, fixes the hexatonic path and writes this table.)
const BLUES_NAMES: Record<string, string[]> = {
  C: ['C', 'E-', 'F', 'F#', 'G', 'B-', 'C'],
  'C#': ['C#', 'E', 'F#', 'G', 'A-', 'C-', 'D-'],
  'D-': ['D-', 'F-', 'G-', 'G', 'A-', 'C-', 'D-'],
  D: ['D', 'F', 'G', 'G#', 'A', 'C', 'D'],
  'D#': ['D#', 'F#', 'G#', 'A', 'B-', 'D-', 'E-'],
  'E-': ['E-', 'G-', 'A-', 'A', 'B-', 'D-', 'E-'],
  E: ['E', 'G', 'A', 'A#', 'B', 'D', 'E'],
  F: ['F', 'A-', 'B-', 'B', 'C', 'E-', 'F'],
  'F#': ['F#', 'A', 'B', 'B#', 'C#', 'E', 'F#'],
  G: ['G', 'B-', 'C', 'C#', 'D', 'F', 'G'],
  'G#': ['G#', 'B', 'C#', 'D', 'E-', 'G-', 'A-'],
  A: ['A', 'C', 'D', 'D#', 'E', 'G', 'A'],
  'B-': ['B-', 'D-', 'E-', 'E', 'F', 'A-', 'B-'],
  B: ['B', 'D', 'E', 'E#', 'F#', 'A', 'B'],
  'C-': ['C-', 'D', 'E', 'E#', 'F#', 'A', 'B'],
}

/** The names of `getPitches()` of the scale of `kind` on `tonic`, tonic to tonic (music21's order). */
export function scaleNames(kind: ScaleKind, tonic: Spelled): string[] {
  if (kind === 'blues') {
    const names = BLUES_NAMES[nameOf(tonic)]
    if (!names) throw invalidArg(`no blues scale on ${nameOf(tonic)}`)
    return names
  }
  const steps = kind === 'major' ? MAJOR_STEPS : DORIAN_STEPS
  const out = [tonic]
  for (const s of steps) out.push(transpose(out[out.length - 1], { generic: 2, semitones: s }))
  return out.map(nameOf)
}

const scalePcs = (kind: ScaleKind): number[] => {
  if (kind === 'blues') return BLUES_PCS
  const steps = kind === 'major' ? MAJOR_STEPS : DORIAN_STEPS
  const pcs = [0]
  for (const s of steps.slice(0, 6)) pcs.push(pcs[pcs.length - 1] + s)
  return pcs
}

/**
 * music21's `Scale.derive(chord)`: for each of the 15 tonics, count the chord's distinct pitch
 * classes that are in the scale; the most wins, ties going to the higher tonic and then to the
 * later one in the list (music21 sorts (count, pitch) pairs and reverses them).
 */
export function deriveScale(kind: ScaleKind, chordPitches: Spelled[]): Spelled {
  const pcs = scalePcs(kind)
  const pitches = chordPitches.filter((p, k) => chordPitches.findIndex((q) => (ps(q) - ps(p)) % 12 === 0) === k)
  let best = TONICS[0]
  let bestCount = -1
  for (const t of TONICS) {
    const count = pitches.filter((p) => pcs.includes((((ps(p) - ps(t)) % 12) + 12) % 12)).length
    if (count > bestCount || (count === bestCount && ps(t) >= ps(best))) {
      best = t
      bestCount = count
    }
  }
  return best
}
