// MIDI files in and out, through the `midi-file` package (which handles running status, meta
// and sysex events). This module turns its event lists into notes measured in quarter notes,
// and checks the chunk structure itself because `midi-file` silently accepts truncated files.
import { readFileSync, writeFileSync } from 'node:fs'
import { parseMidi, writeMidi, type MidiData, type MidiEvent } from 'midi-file'
import { invalidArg } from '../contract'

/** One sounding note; times in quarter notes from the start of the piece. */
export interface Note {
  /** MIDI pitch, 0–127 (60 = C4). */
  pitch: number
  /** Onset in quarter notes. */
  start: number
  /** Length in quarter notes. */
  duration: number
  /** Velocity 1–127. */
  velocity: number
}

/** One track of a MIDI file, reduced to its notes and labels. */
export interface Track {
  /** Position in the file (0-based, counting every MTrk chunk). */
  index: number
  /** Track name meta event, '' if none. */
  name: string
  /** MIDI channel of its first note (9 = drums), -1 if no notes. */
  channel: number
  /** First program change (General MIDI instrument), -1 if none. */
  program: number
  /** Notes sorted by onset then pitch. */
  notes: Note[]
  /** The same notes in the order of their note-on events (the order music21 reads them in). */
  noteOnOrder: Note[]
}

/** A parsed MIDI file. */
export interface Song {
  /** The file it came from (for error messages). */
  path: string
  /** 0 (one track), 1 (parallel tracks) or 2. */
  format: number
  ticksPerBeat: number
  /** Tempo changes (quarter-note position, beats per minute); the first is the tempo used. */
  tempos: { at: number; bpm: number }[]
  /** Time signatures (quarter-note position, numerator/denominator). */
  timeSignatures: { at: number; numerator: number; denominator: number }[]
  tracks: Track[]
  /** End of the last note, in quarter notes. */
  length: number
}

/** An error about an input file; `code` is `ERR_BAD_MIDI` and the message names the file. */
export class MidiFileError extends Error {
  code = 'ERR_BAD_MIDI'
}

const ascii = (b: Uint8Array, at: number) => String.fromCharCode(b[at], b[at + 1], b[at + 2], b[at + 3])
const u32 = (b: Uint8Array, at: number) => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0

/** Checks the chunk layout (MThd, then complete MTrk chunks) before handing bytes to midi-file. */
function checkChunks(bytes: Uint8Array, path: string): void {
  if (bytes.length < 14 || ascii(bytes, 0) !== 'MThd') {
    throw new MidiFileError(`${path}: not a MIDI file (it does not start with an 'MThd' header)`)
  }
  const headerLength = u32(bytes, 4)
  const declared = (bytes[10] << 8) | bytes[11]
  let at = 8 + headerLength
  let found = 0
  while (at < bytes.length) {
    if (at + 8 > bytes.length)
      throw new MidiFileError(`${path}: truncated MIDI file (a chunk header is cut off at byte ${at})`)
    const length = u32(bytes, at + 4)
    if (at + 8 + length > bytes.length) {
      throw new MidiFileError(
        `${path}: truncated MIDI file (chunk ${found + 1} needs ${length} bytes, only ${bytes.length - at - 8} left)`,
      )
    }
    if (ascii(bytes, at) === 'MTrk') found++
    at += 8 + length
  }
  if (found < declared)
    throw new MidiFileError(`${path}: truncated MIDI file (header declares ${declared} tracks, found ${found})`)
}

/** Parses MIDI bytes (type 0, 1 or 2); `path` only labels errors. */
export function parseMidiBytes(bytes: Uint8Array, path = '<bytes>'): Song {
  checkChunks(bytes, path)
  let data: MidiData
  try {
    data = parseMidi(bytes)
  } catch (e) {
    throw new MidiFileError(`${path}: malformed MIDI data (${(e as Error).message})`)
  }
  const tpb = data.header.ticksPerBeat
  if (!tpb) throw new MidiFileError(`${path}: SMPTE time division is not supported (ticks per beat needed)`)
  const tempos: Song['tempos'] = []
  const timeSignatures: Song['timeSignatures'] = []
  let length = 0
  const tracks = data.tracks.map((events, index): Track => {
    let tick = 0
    let name = ''
    let channel = -1
    let program = -1
    const notes: Note[] = []
    // Open notes per channel·pitch (a stack, so repeated note-ons pair first-in first-out).
    const open = new Map<number, { tick: number; velocity: number; order: number }[]>()
    let noteOns = 0
    const orderOf = new Map<Note, number>()
    const close = (ch: number, pitch: number) => {
      const stack = open.get(ch * 128 + pitch)
      const on = stack?.shift()
      if (!on) return
      const start = on.tick / tpb
      const note = { pitch, start, duration: (tick - on.tick) / tpb, velocity: on.velocity }
      notes.push(note)
      orderOf.set(note, on.order)
      length = Math.max(length, tick / tpb)
    }
    for (const e of events as MidiEvent[]) {
      tick += e.deltaTime
      switch (e.type) {
        case 'trackName':
          if (!name) name = e.text.trim()
          break
        case 'programChange':
          if (program < 0) program = e.programNumber
          break
        case 'setTempo':
          tempos.push({ at: tick / tpb, bpm: 60_000_000 / e.microsecondsPerBeat })
          break
        case 'timeSignature':
          timeSignatures.push({ at: tick / tpb, numerator: e.numerator, denominator: e.denominator })
          break
        case 'noteOn':
          if (e.velocity === 0) {
            close(e.channel, e.noteNumber)
          } else {
            if (channel < 0) channel = e.channel
            const key = e.channel * 128 + e.noteNumber
            if (!open.has(key)) open.set(key, [])
            open.get(key)!.push({ tick, velocity: e.velocity, order: noteOns++ })
          }
          break
        case 'noteOff':
          close(e.channel, e.noteNumber)
          break
      }
    }
    const noteOnOrder = [...notes].sort((a, b) => orderOf.get(a)! - orderOf.get(b)!)
    notes.sort((a, b) => a.start - b.start || a.pitch - b.pitch)
    return { index, name, channel, program, notes, noteOnOrder }
  })
  tempos.sort((a, b) => a.at - b.at)
  if (tempos.length === 0) tempos.push({ at: 0, bpm: 120 }) // the MIDI default
  timeSignatures.sort((a, b) => a.at - b.at)
  return { path, format: data.header.format, ticksPerBeat: tpb, tempos, timeSignatures, tracks, length }
}

/** Reads and parses a MIDI file; every failure names the file. */
export function readMidiFile(path: string): Song {
  let bytes: Uint8Array
  try {
    bytes = readFileSync(path)
  } catch (e) {
    const err = new MidiFileError(`${path}: cannot read the file (${(e as Error).message})`)
    err.code = (e as NodeJS.ErrnoException).code ?? 'ERR_BAD_MIDI'
    throw err
  }
  return parseMidiBytes(bytes, path)
}

/** A track to write. */
export interface TrackOut {
  name: string
  channel: number
  /** General MIDI program (0 = piano, 26 = jazz guitar, ...). */
  program: number
  notes: Note[]
}

/** Builds a type-1 MIDI file: a conductor track (tempo, 4/4) and one track per `tracks` entry. */
export function buildMidi(tracks: TrackOut[], bpm: number, ticksPerBeat = 480): Uint8Array {
  if (!(bpm > 0 && Number.isFinite(bpm))) throw invalidArg(`bpm: expected a positive number, got ${bpm}`)
  const conductor: MidiEvent[] = [
    { deltaTime: 0, meta: true, type: 'timeSignature', numerator: 4, denominator: 4, metronome: 24, thirtyseconds: 8 },
    { deltaTime: 0, meta: true, type: 'setTempo', microsecondsPerBeat: Math.round(60_000_000 / bpm) },
    { deltaTime: 0, meta: true, type: 'endOfTrack' },
  ]
  const out: MidiEvent[][] = [conductor]
  for (const t of tracks) {
    // Absolute-tick events; note-offs sort before note-ons at the same tick.
    const timed: { tick: number; order: number; event: MidiEvent }[] = []
    for (const n of t.notes) {
      const on = Math.round(n.start * ticksPerBeat)
      const off = Math.max(on + 1, Math.round((n.start + n.duration) * ticksPerBeat))
      const velocity = Math.max(1, Math.min(127, Math.round(n.velocity)))
      timed.push({
        tick: on,
        order: 1,
        event: { deltaTime: 0, type: 'noteOn', channel: t.channel, noteNumber: n.pitch, velocity },
      })
      timed.push({
        tick: off,
        order: 0,
        event: { deltaTime: 0, type: 'noteOff', channel: t.channel, noteNumber: n.pitch, velocity: 0 },
      })
    }
    timed.sort((a, b) => a.tick - b.tick || a.order - b.order)
    const events: MidiEvent[] = [
      { deltaTime: 0, meta: true, type: 'trackName', text: t.name },
      { deltaTime: 0, type: 'programChange', channel: t.channel, programNumber: t.program },
    ]
    let last = 0
    for (const { tick, event } of timed) {
      event.deltaTime = tick - last
      last = tick
      events.push(event)
    }
    events.push({ deltaTime: 0, meta: true, type: 'endOfTrack' })
    out.push(events)
  }
  return Uint8Array.from(writeMidi({ header: { format: 1, numTracks: out.length, ticksPerBeat }, tracks: out }))
}

/** Writes a type-1 MIDI file (see `buildMidi`). */
export function writeMidiFile(path: string, tracks: TrackOut[], bpm: number): void {
  writeFileSync(path, buildMidi(tracks, bpm))
}
