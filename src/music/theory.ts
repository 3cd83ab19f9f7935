// Chord and scale facts for the grammar, from `tonal`: what a chord's root and quality are,
// which pitch classes are its chord tones, scale tones and approach tones, and interval names.
import type * as Tonal from 'tonal'
import { invalidArg } from '../contract'

// tonal takes ~30 ms to load; only the jazz pipeline needs it, so it loads on first use and a
// plain `require('rnnlab')` (or `rnnlab dinos`) does not pay for it.
let tonalModule: typeof Tonal | undefined
function tonalLib(): typeof Tonal {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (tonalModule === undefined) tonalModule = require('tonal') as typeof Tonal
  return tonalModule
}

/** Note type of the deepjazz grammar. */
export type NoteType = 'C' | 'S' | 'A' | 'X' | 'R'

/** A chord of the accompaniment: simultaneous notes of the chord tracks. */
export interface Chord {
  /** Onset in quarter notes from the start of the piece. */
  start: number
  /** Length in quarter notes (the longest of its notes). */
  duration: number
  /** MIDI pitches, ascending. */
  pitches: number[]
  /** Chord symbol from tonal's detection ('' if none fits), e.g. 'Fm7'. */
  symbol: string
  /** Pitch class (0–11) of the root. */
  root: number
  /** 'major' when tonal calls the chord Major (or, undetected, the bass has a major third), else 'other'. */
  quality: 'major' | 'other'
}

/** Name of a MIDI pitch spelled like music21's default (C#, E-→Eb, F#, G#, B-→Bb), e.g. 'Eb4'. */
export function pitchName(midi: number): string {
  const pc = ((midi % 12) + 12) % 12
  return pc === 3 || pc === 10 ? tonalLib().Note.fromMidi(midi) : tonalLib().Note.fromMidiSharps(midi)
}

/** Pitch class 0–11 of a MIDI pitch. */
export const pitchClass = (midi: number): number => ((midi % 12) + 12) % 12

/** Root and quality of a set of MIDI pitches sounding together, through `tonal`'s detection. */
export function analyseChord(pitches: number[], start: number, duration: number): Chord {
  const sorted = [...new Set(pitches)].sort((a, b) => a - b)
  const names = [...new Set(sorted.map((p) => tonalLib().Note.pitchClass(pitchName(p))))]
  const found = tonalLib().Chord.detect(names)
  let symbol = ''
  let root = pitchClass(sorted[0])
  let quality: Chord['quality'] = sorted.some((p) => pitchClass(p - sorted[0]) === 4) ? 'major' : 'other'
  if (found.length > 0) {
    symbol = found[0]
    const info = tonalLib().Chord.get(symbol)
    const tonic = tonalLib().Note.chroma(info.tonic ?? '')
    if (Number.isInteger(tonic)) root = tonic as number
    quality = info.quality === 'Major' ? 'major' : 'other'
  }
  return { start, duration, pitches: sorted, symbol, root, quality }
}

const scaleCache = new Map<string, Set<number>>()

/** Pitch classes of the chord's scale: major on the root for a major chord, otherwise Dorian. */
export function scalePitchClasses(chord: Chord): Set<number> {
  const name = `${tonalLib().Note.pitchClass(pitchName(chord.root + 60))} ${chord.quality === 'major' ? 'major' : 'dorian'}`
  let pcs = scaleCache.get(name)
  if (!pcs) {
    pcs = new Set(
      tonalLib()
        .Scale.get(name)
        .notes.map((n) => tonalLib().Note.chroma(n) as number),
    )
    scaleCache.set(name, pcs)
  }
  return pcs
}

/** Pitch classes of the chord's own notes. */
export const chordPitchClasses = (chord: Chord): Set<number> => new Set(chord.pitches.map(pitchClass))

/** True when the pitch is a half step above or below one of the chord's notes. */
export function isApproachTone(chord: Chord, midi: number): boolean {
  const pcs = chordPitchClasses(chord)
  return pcs.has(pitchClass(midi + 1)) || pcs.has(pitchClass(midi - 1))
}

/** Classifies a pitch against a chord: C chord tone, S scale tone, A approach tone, X other. */
export function classify(chord: Chord, midi: number): Exclude<NoteType, 'R'> {
  if (chordPitchClasses(chord).has(pitchClass(midi))) return 'C'
  if (scalePitchClasses(chord).has(pitchClass(midi))) return 'S'
  if (isApproachTone(chord, midi)) return 'A'
  return 'X'
}

/**
 * Directed interval name of a distance in semitones, in the format of music21's `directedName`
 * (quality, then '-' when descending, then the size): 3 → 'm3', −2 → 'M-2', −5 → 'P-4', 0 → 'P1'.
 * The spelling is tonal's canonical one for that many semitones. music21 spells the interval
 * between two spelled notes instead ('d1', 'A1', 'd-4', …), so the strings are not
 * interchangeable with deepjazz's (see docs/course-differences.md; the `deepjazz` grammar,
 * src/music/music21.ts, names them as music21 does).
 */
export function intervalName(semitones: number): string {
  const tonal = tonalLib().Interval.fromSemitones(semitones) // e.g. '-2M', '3m', '1P'
  const m = /^(-?)(\d+)([a-zA-Z]+)$/.exec(tonal)
  if (!m) throw invalidArg(`intervalName: cannot name ${semitones} semitones`)
  return `${m[3]}${m[1]}${m[2]}`
}

/** Semitones of an interval name written as `intervalName` writes it ('M-2' → −2). */
export function intervalSemitones(name: string): number {
  const m = /^([a-zA-Z]+)(-?)(\d+)$/.exec(name)
  const semis = m ? tonalLib().Interval.semitones(`${m[2]}${m[3]}${m[1]}`) : undefined
  if (semis === undefined || !Number.isFinite(semis)) throw invalidArg(`bad interval name '${name}'`)
  return semis
}
