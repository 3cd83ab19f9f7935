// The `deepjazz` grammar mode: deepjazz's own grammar as the course ran it (music21 5.1.0),
// value for value. A section is read as music21 reads a MIDI file (notes in note-on order,
// notes that start and end together within 1/16 of a quarter become a chord, offsets and
// lengths quantised separately), each measure's melody becomes values as deepjazz's
// `parse_melody` writes them, and values become notes again as the course's `generate_music`
// does (`prune_grammar`, `unparse_grammar`, `prune_notes`, `clean_up_notes`).
// The reference is scripts/deepjazz_reference.py; the differences from rnnlab's own grammar
// are in docs/course-differences.md.
import type { Note, Song, Track } from './midi'
import {
  addMinorThird,
  chordQuality,
  chordRoot,
  deriveScale,
  directedName,
  intervalBetween,
  type M21Chord,
  nameOf,
  nameWithOctave,
  parseInterval,
  parsePitch,
  ps,
  scaleNames,
  type Spelled,
  spell,
  subtractMinorThird,
} from './music21'
import { quantize } from './section'
import type { Rng } from './grammar'
import type { Chord } from './theory'
import { invalidArg } from '../contract'

/** A melody note as music21 holds it: spelled pitch, quantised offset and length. */
export interface M21Note {
  pitch: Spelled
  offset: number
  quarterLength: number
}

/** One 4-beat measure of the section in deepjazz's terms. */
export interface DeepjazzMeasure {
  /** Measure number in the piece (offset / 4). */
  number: number
  /** The melody's single notes (chords of the melody track are left out, as deepjazz does). */
  melody: M21Note[]
  /** The chords that start in the measure (absolute offsets). */
  chords: M21Chord[]
}

const EPS = 1e-9

/** A track read as music21 5 reads it: single notes and chords (notes starting and ending together within 1/16 quarter). */
export function music21Elements(track: Track): { notes: M21Note[]; chords: M21Chord[] } {
  // music21 walks the notes in note-on order.
  const raw = track.noteOnOrder
  const tolerance = 1 / 16 + EPS
  const gathered = new Set<number>()
  const notes: M21Note[] = []
  const chords: M21Chord[] = []
  const qlOf = (n: Note) => quantize(n.duration)
  for (let i = 0; i < raw.length; i++) {
    if (gathered.has(i)) continue
    const on = raw[i].start
    const off = on + raw[i].duration
    const group: Note[] = []
    for (let j = i + 1; j < raw.length; j++) {
      if (Math.abs(raw[j].start - on) > tolerance) break
      if (Math.abs(raw[j].start + raw[j].duration - off) > tolerance) continue
      if (group.length === 0) {
        group.push(raw[i])
        gathered.add(i)
      }
      group.push(raw[j])
      gathered.add(j)
    }
    if (group.length > 0) {
      chords.push({
        offset: quantize(on),
        quarterLength: qlOf(group[0]),
        pitches: group.map((n) => spell(n.pitch)),
      })
    } else {
      notes.push({ pitch: spell(raw[i].pitch), offset: quantize(on), quarterLength: qlOf(raw[i]) })
    }
  }
  // music21 keeps a stream sorted by offset; equal offsets stay in insertion order.
  const byOffset = <T extends { offset: number }>(xs: T[]) =>
    xs
      .map((x, k) => ({ x, k }))
      .sort((a, b) => a.x.offset - b.x.offset || a.k - b.k)
      .map((e) => e.x)
  return { notes: byOffset(notes), chords: byOffset(chords) }
}

/** The section's measures in deepjazz's terms: melody notes and chords with offsets in [start, end). */
export function deepjazzMeasures(
  song: Song,
  melodyTrack: number,
  chordTracks: number[],
  start: number,
  end: number,
): DeepjazzMeasure[] {
  const inRange = (o: number) => o >= start - EPS && o < end - EPS
  const melody = music21Elements(song.tracks[melodyTrack]).notes.filter((n) => inRange(n.offset))
  for (const n of melody) if (n.quarterLength === 0) n.quarterLength = 0.25
  const chords = chordTracks
    .flatMap((t) => music21Elements(song.tracks[t]).chords)
    .filter((c) => inRange(c.offset))
    .sort((a, b) => a.offset - b.offset)
  const measures: DeepjazzMeasure[] = []
  for (let bar = Math.floor(start / 4); bar * 4 < end - EPS; bar++) {
    const inBar = <T extends { offset: number }>(x: T) => Math.floor(x.offset / 4 + EPS) === bar
    measures.push({ number: bar, melody: melody.filter(inBar), chords: chords.filter(inBar) })
  }
  return measures
}

/** The chord governing `offset`: the last one at or before it, else the first (deepjazz moves it to the bar line). */
function lastChord(chords: M21Chord[], offset: number): M21Chord {
  let found = chords[0]
  for (const c of chords) if (c.offset <= offset + EPS) found = c
  return found
}

const chordNames = (chord: M21Chord) => new Set(chord.pitches.map(nameOf))
const isMajor = (chord: M21Chord) => chordQuality(chord) === 'major'

/** deepjazz's `__is_scale_tone`: the note's name is in the major (major chords) or Dorian scale music21 derives from the chord. */
export function isScaleTone(chord: M21Chord, p: Spelled): boolean {
  const kind = isMajor(chord) ? 'major' : 'dorian'
  return scaleNames(kind, deriveScale(kind, chord.pitches)).includes(nameOf(p))
}

/** deepjazz's `__is_approach_tone`: a half step from one of the chord's pitches. */
export function isApproachTone(chord: M21Chord, p: Spelled): boolean {
  const pc = ((ps(p) % 12) + 12) % 12
  return chord.pitches.some((q) => {
    const d = (((ps(q) - pc) % 12) + 12) % 12
    return d === 1 || d === 11
  })
}

/** deepjazz's element type of a note over a chord: C, S, A or X. */
export function noteType(chord: M21Chord, p: Spelled): 'C' | 'S' | 'A' | 'X' {
  if (chordNames(chord).has(nameOf(p))) return 'C'
  if (isScaleTone(chord, p)) return 'S'
  if (isApproachTone(chord, p)) return 'A'
  return 'X'
}

/**
 * deepjazz's `parse_melody`: one value per melody note, `TYPE,LENGTH` with the note's own
 * quantised length, then (after the first note) `<UP,DOWN>`, the interval from the previous
 * note plus and minus a minor third, named by music21 from the spelled notes. `chords` falls
 * back to `carried` (the chord sounding at the bar line) when the measure has none.
 */
export function parseMeasureDeepjazz(measure: DeepjazzMeasure, carried?: M21Chord): string[] {
  const chords = measure.chords.length > 0 ? measure.chords : carried ? [carried] : []
  if (chords.length === 0) throw invalidArg(`measure ${measure.number} has melody but no chord to read it over`)
  const values: string[] = []
  let prev: Spelled | undefined
  for (const n of measure.melody) {
    let v = `${noteType(lastChord(chords, n.offset), n.pitch)},${n.quarterLength.toFixed(3)}`
    if (prev !== undefined) {
      const dist = intervalBetween(prev, n.pitch)
      v += `,<${directedName(addMinorThird(dist))},${directedName(subtractMinorThird(dist))}>`
    }
    values.push(v)
    prev = n.pitch
  }
  return values
}

/** The values of every measure with melody, in order (measures without chords read over the last chord before them). */
export function deepjazzCorpus(measures: DeepjazzMeasure[]): string[][] {
  const perMeasure: string[][] = []
  let carried: M21Chord | undefined
  for (const m of measures) {
    if (m.melody.length > 0) perMeasure.push(parseMeasureDeepjazz(m, carried))
    if (m.chords.length > 0) carried = m.chords[m.chords.length - 1]
  }
  return perMeasure
}

// ---------------------------------------------------------------- values back to notes

const choice = <T>(rng: Rng, xs: T[]): T => xs[Math.floor(rng.next() * xs.length)]

/** A decoded element: a note (spelled) or a rest. */
interface Element {
  pitch?: Spelled
  offset: number
  quarterLength: number
}

/** qa.py's `prune_grammar`: each length rounded down or up (at random) to a multiple of 0.25. */
export function pruneGrammar(values: string[], rng: Rng): string[] {
  return values.map((v) => {
    const terms = v.split(',')
    const x = Number(terms[1])
    const down = x - (x % 0.25)
    terms[1] = String(choice(rng, [-1, 1]) < 0 ? down : down + 0.25)
    return terms.join(',')
  })
}

function chordTone(chord: M21Chord, rng: Rng): Spelled {
  return parsePitch(choice(rng, chord.pitches.map(nameWithOctave)))
}

/** grammar.py's `__generate_scale_tone`: a name of the derived major (major chords) or weighted hexatonic blues scale, at an octave of the chord. */
function scaleTone(chord: M21Chord, rng: Rng): Spelled {
  const kind = isMajor(chord) ? 'major' : 'blues'
  // deepjazz draws from list(set(pitches)), whose order Python's hash seed changes; the
  // reference and rnnlab both draw from getPitches()' order, the same names equally likely.
  const name = choice(rng, scaleNames(kind, deriveScale(kind, chord.pitches)))
  const octaves = [...chord.pitches].sort((a, b) => ps(a) - ps(b)).map((p) => p.octave)
  return parsePitch(`${name}${choice(rng, octaves)}`)
}

const withOctave = (p: Spelled, octave: number): Spelled => ({ ...p, octave })

/**
 * grammar.py's `unparse_grammar` over a measure's chords (offsets within the measure): each
 * value adds its length to the running offset and then places its note there (deepjazz's
 * order), a first note (no `<>`) from the chord or scale, later ones among the tones of the
 * type inside the interval window around the previous note.
 */
function unparse(values: string[], chordsIn: M21Chord[], rng: Rng): Element[] {
  const chords = chordsIn.map((c) => ({ ...c }))
  const out: Element[] = []
  let offset = 0
  let prev: Spelled | undefined
  for (const value of values) {
    const terms = value.split(',')
    const length = Number(terms[1])
    offset += length
    if (terms[0] === 'R') {
      out.push({ offset, quarterLength: length })
      continue
    }
    if (!chords.some((c) => c.offset <= offset + EPS)) chords[0].offset = 0
    const chord = lastChord(chords, offset)
    let p: Spelled
    if (terms.length === 2 || prev === undefined) {
      if (terms[0] === 'C') p = chordTone(chord, rng)
      else if (terms[0] === 'S') p = scaleTone(chord, rng)
      else p = spell(ps(scaleTone(chord, rng)) + choice(rng, [1, -1]))
      if (p.octave < 4) p = withOctave(p, 4)
    } else {
      const a = parseInterval(terms[2].replace('<', ''))
      const b = parseInterval(terms[3].replace('>', ''))
      const [upper, lower] = a.semitones > b.semitones ? [a, b] : [b, a]
      const low = ps(prev) + lower.semitones
      const count = ps(prev) + upper.semitones - low + 1
      const fits =
        terms[0] === 'C'
          ? (q: Spelled) => chordNames(chord).has(nameOf(q))
          : terms[0] === 'S'
            ? (q: Spelled) => isScaleTone(chord, q)
            : (q: Spelled) => isApproachTone(chord, q)
      const candidates: Spelled[] = []
      for (let i = 0; i < count; i++) {
        const q = spell(low + i)
        if (fits(q)) candidates.push(q)
      }
      const prevName = nameWithOctave(prev)
      if (candidates.length > 1)
        p = choice(
          rng,
          candidates.filter((q) => nameWithOctave(q) !== prevName),
        )
      else if (candidates.length === 1) p = candidates[0]
      else p = spell(ps(prev) + choice(rng, [-2, 2]))
      if (p.octave < 3) p = withOctave(p, 3)
    }
    out.push({ pitch: p, offset, quarterLength: length })
    prev = p
  }
  return out
}

/** qa.py's `prune_notes`: in pairs (0,1), (2,3), …, the second of two notes of the same name and octave is dropped. */
function pruneNotes(elements: Element[]): Element[] {
  const drop = new Set<number>()
  for (let k = 0; k + 1 < elements.length; k += 2) {
    const [a, b] = [elements[k].pitch, elements[k + 1].pitch]
    if (a && b && nameWithOctave(a) === nameWithOctave(b)) drop.add(k + 1)
  }
  return elements.filter((_, k) => !drop.has(k))
}

/** qa.py's `clean_up_notes`: zero lengths become 0.25, and a note at the same offset as the element before it is dropped. */
function cleanUpNotes(elements: Element[]): Element[] {
  const drop = new Set<number>()
  elements.forEach((e, k) => {
    if (e.quarterLength === 0) e.quarterLength = 0.25
    const next = elements[k + 1]
    if (next && next.offset === e.offset && next.pitch) drop.add(k + 1)
  })
  return elements.filter((_, k) => !drop.has(k))
}

/** A decoded note: MIDI pitch, music21's spelled name, offset and length in the measure. */
export interface DecodedNote {
  pitch: number
  name: string
  offset: number
  quarterLength: number
}

/**
 * The course's `generate_music` for one measure: 'C,0.25' put first, A and X read as C,
 * lengths pruned, the values unparsed over `chords` (offsets within the measure), repeated
 * and simultaneous notes removed. Notes may reach past beat 4, as the course's do.
 */
export function decodeDeepjazz(values: string[], chords: M21Chord[], rng: Rng): DecodedNote[] {
  if (chords.length === 0) throw invalidArg('decodeDeepjazz: a measure needs at least one chord')
  const tones = ['C,0.25', ...values].map((v, k) => (k > 0 && (v[0] === 'A' || v[0] === 'X') ? `C${v.slice(1)}` : v))
  const elements = cleanUpNotes(pruneNotes(unparse(pruneGrammar(tones, rng), chords, rng)))
  return elements
    .filter((e) => e.pitch !== undefined)
    .map((e) => ({
      pitch: ps(e.pitch!),
      name: nameWithOctave(e.pitch!),
      offset: e.offset,
      quarterLength: e.quarterLength,
    }))
}

/** A music21 chord as the rest of the pipeline draws and writes it. */
export function toChord(c: M21Chord, start: number): Chord {
  const root = chordRoot(c)
  return {
    start,
    duration: c.quarterLength || 0.25,
    pitches: [...new Set(c.pitches.map(ps))].sort((a, b) => a - b),
    symbol: '',
    root: ((ps(root) % 12) + 12) % 12,
    quality: isMajor(c) ? 'major' : 'other',
  }
}
