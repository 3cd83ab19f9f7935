// Picks the melody and the chords of one section of a song and cuts them into 4-beat measures.
import type { Note, Song, Track } from './midi'
import { analyseChord, type Chord } from './theory'
import { invalidArg } from '../contract'

/** Which tracks and which stretch of the song to learn from. */
export interface SectionOptions {
  /** Index of the melody track in the file (MTrk chunk order, 0-based). */
  melodyTrack?: number
  /** Tracks whose simultaneous notes give the chords. */
  chordTracks?: number[]
  /** Start of the section in quarter notes (inclusive). */
  start?: number
  /** End of the section in quarter notes (exclusive). */
  end?: number
}

/** A 4-beat measure: its melody line and its chords, times in quarter notes from the piece start. */
export interface Measure {
  /** Measure number in the piece (start / 4). */
  number: number
  /** Onset of the measure. */
  start: number
  /** Monophonic melody notes that start in this measure, each clipped to the next onset and the bar line. */
  melody: Note[]
  /** Chords that start in this measure (onset quantized). */
  chords: Chord[]
  /** The chord sounding at the bar line (the last one before it), if any. */
  carried?: Chord
}

/** The selected section, measure by measure. */
export interface Section {
  path: string
  melodyTrack: number
  chordTracks: number[]
  start: number
  end: number
  /** Tempo at the start of the piece, beats per minute. */
  bpm: number
  measures: Measure[]
  /** Lowest and highest melody pitch of the section. */
  pitchRange: [number, number]
}

/**
 * The course's choice for deepjazz's Metheny file ('And Then I Knew'): music21 parts 5
 * ('Guitar', melody) and 0 ('Piano', chords), quarter notes 476–548. music21 numbers only the
 * 19 tracks that hold notes; the file has 6 leading tracks of meta data, so part k is MIDI
 * track k + 6. (The course also played parts 1, 6, 7 — Bass, Trumpet, French Horn — as
 * accompaniment; they do not enter the values.)
 */
export const METHENY_PRESET: Required<SectionOptions> = { melodyTrack: 11, chordTracks: [6], start: 476, end: 548 }

/** The preset for a song when it is recognised (the Metheny file), else undefined. */
export function presetFor(song: Song): Required<SectionOptions> | undefined {
  const t = song.tracks
  const isMetheny =
    t.length === 25 && t[1]?.name === 'AND THEN I KNEW' && t[11]?.name === 'Guitar' && t[6]?.name === 'Piano'
  return isMetheny ? METHENY_PRESET : undefined
}

/**
 * Nearest multiple of 1/4 or 1/3 (music21's default quantization of MIDI, divisors 4 and 3);
 * on a tie the quarter grid wins, as in music21. The tie needs a tolerance: 28/96 is exactly
 * halfway between 1/4 and 1/3, but in floating point its distance to 1/4 comes out larger.
 */
export function quantize(x: number): number {
  const q4 = Math.round(x * 4) / 4
  const q3 = Math.round(x * 3) / 3
  return Math.abs(q4 - x) <= Math.abs(q3 - x) + 1e-9 ? q4 : q3
}

const isDrums = (t: Track) => t.channel === 9
const EPS = 1e-9

/** Share of a track's onsets where 3 or more notes start together. */
function chordiness(t: Track): number {
  const counts = new Map<number, number>()
  for (const n of t.notes) counts.set(quantize(n.start), (counts.get(quantize(n.start)) ?? 0) + 1)
  if (counts.size === 0) return 0
  return [...counts.values()].filter((c) => c >= 3).length / counts.size
}

function checkTrack(song: Song, index: number, what: string): Track {
  if (!Number.isInteger(index) || index < 0 || index >= song.tracks.length) {
    throw invalidArg(
      `${song.path}: ${what} track ${index} does not exist (the file has tracks 0–${song.tracks.length - 1})`,
    )
  }
  const t = song.tracks[index]
  if (t.notes.length === 0)
    throw invalidArg(`${song.path}: ${what} track ${index}${t.name ? ` ('${t.name}')` : ''} has no notes`)
  return t
}

/** Chooses tracks automatically: chords = tracks where ≥ 20% of onsets are 3-note chords; melody = the busiest other pitched track. */
export function autoTracks(song: Song): { melodyTrack: number; chordTracks: number[] } {
  const pitched = song.tracks.filter((t) => t.notes.length > 0 && !isDrums(t))
  if (pitched.length === 0) throw invalidArg(`${song.path}: the file has no notes (outside the drum channel)`)
  const chordal = pitched.filter((t) => chordiness(t) >= 0.2)
  const melodic = pitched.filter((t) => !chordal.includes(t))
  const melody = (melodic.length > 0 ? melodic : pitched).reduce((a, b) => (b.notes.length > a.notes.length ? b : a))
  const chordTracks = chordal.filter((t) => t !== melody).map((t) => t.index)
  return { melodyTrack: melody.index, chordTracks }
}

/** Cuts the song into the selected section's measures (see `SectionOptions`; unset fields are the preset's or automatic). */
export function selectSection(song: Song, options: SectionOptions = {}): Section {
  const preset = presetFor(song)
  const auto =
    options.melodyTrack === undefined || options.chordTracks === undefined ? (preset ?? autoTracks(song)) : undefined
  const melodyTrack = options.melodyTrack ?? auto!.melodyTrack
  const chordTracks = options.chordTracks ?? auto!.chordTracks
  const melodyT = checkTrack(song, melodyTrack, 'melody')
  if (chordTracks.length === 0)
    throw invalidArg(`${song.path}: no chord tracks (no track plays chords; pass chordTracks)`)
  const chordTs = chordTracks.map((i) => checkTrack(song, i, 'chord'))
  const usePreset =
    preset && options.start === undefined && options.end === undefined && options.melodyTrack === undefined
  const firstBar = Math.floor(melodyT.notes[0].start / 4) * 4
  const start = options.start ?? (usePreset ? preset!.start : firstBar)
  const end = options.end ?? (usePreset ? preset!.end : Math.ceil(song.length / 4) * 4)
  if (!(Number.isFinite(start) && Number.isFinite(end) && start >= 0 && end > start)) {
    throw invalidArg(`${song.path}: bad time range [${start}, ${end}) (quarter notes; need 0 <= start < end)`)
  }
  if (start >= song.length) {
    throw invalidArg(
      `${song.path}: time range [${start}, ${end}) starts after the end of the piece (${song.length.toFixed(2)} quarter notes)`,
    )
  }

  // Melody: quantized, inside [start, end), one note per onset (the highest), zero lengths → 0.25.
  const byOnset = new Map<number, Note>()
  for (const n of melodyT.notes) {
    const s = quantize(n.start)
    if (s < start - EPS || s >= end - EPS) continue
    const q: Note = { ...n, start: s, duration: quantize(n.duration) || 0.25 }
    const prev = byOnset.get(s)
    if (!prev || q.pitch > prev.pitch) byOnset.set(s, q)
  }
  const melody = [...byOnset.values()].sort((a, b) => a.start - b.start)
  if (melody.length === 0)
    throw invalidArg(`${song.path}: the melody track ${melodyTrack} has no notes in [${start}, ${end})`)

  // Chords: notes of the chord tracks grouped by quantized onset; groups of 2+ pitch classes.
  const groups = new Map<number, Note[]>()
  for (const t of chordTs) {
    for (const n of t.notes) {
      const s = quantize(n.start)
      if (s < start - 4 - EPS || s >= end - EPS) continue // one bar before: the chord sounding at the start
      if (!groups.has(s)) groups.set(s, [])
      groups.get(s)!.push(n)
    }
  }
  const chords: Chord[] = [...groups.entries()]
    .filter(([, ns]) => new Set(ns.map((n) => n.pitch % 12)).size >= 2)
    .sort((a, b) => a[0] - b[0])
    .map(([s, ns]) =>
      analyseChord(
        ns.map((n) => n.pitch),
        s,
        Math.max(...ns.map((n) => quantize(n.duration) || 0.25)),
      ),
    )
  if (!chords.some((c) => c.start >= start - EPS)) {
    throw invalidArg(
      `${song.path}: no chords in [${start}, ${end}) on tracks ${chordTracks.join(', ')} (need notes sounding together)`,
    )
  }

  const measures: Measure[] = []
  for (let bar = Math.floor(start / 4) * 4; bar < end - EPS; bar += 4) {
    const inBar = melody.filter((n) => n.start >= bar - EPS && n.start < bar + 4 - EPS && n.start >= start - EPS)
    const line = inBar.map((n, k) => {
      const next = k + 1 < inBar.length ? inBar[k + 1].start : bar + 4
      return { ...n, duration: Math.min(n.duration, next - n.start) }
    })
    const barChords = chords.filter((c) => c.start >= bar - EPS && c.start < bar + 4 - EPS)
    const before = chords.filter((c) => c.start < bar - EPS)
    measures.push({ number: bar / 4, start: bar, melody: line, chords: barChords, carried: before[before.length - 1] })
  }
  const pitches = melody.map((n) => n.pitch)
  return {
    path: song.path,
    melodyTrack,
    chordTracks,
    start,
    end,
    bpm: song.tempos[0].bpm,
    measures,
    pitchRange: [Math.min(...pitches), Math.max(...pitches)],
  }
}

/** The chord that governs onset `t` (quarter notes, absolute) in a measure: the last one at or before it, else the carried one, else the first. */
export function chordAt(measure: Measure, t: number): Chord | undefined {
  let found: Chord | undefined
  for (const c of measure.chords) if (c.start <= t + EPS) found = c
  return found ?? measure.carried ?? measure.chords[0]
}
