#!/usr/bin/env node
// Writes assets/jazz/original_blues_head.mid: an ORIGINAL 12-bar blues head in F ("Blue
// Lantern", written for rnnlab, MIT like the rest of the package) with its changes, two
// choruses, so that `rnnlab jazz` works out of the box without third-party music.
//
// Regenerate:  npm run build:ts && node scripts/make_jazz_corpus.js
// Track 0: tempo 120, 4/4.  Track 1: melody (jazz guitar).  Track 2: the changes (piano,
// one voicing per chord, held for its length).
'use strict'
const { writeFileSync, mkdirSync } = require('node:fs')
const path = require('node:path')
const { Note } = require('tonal')
const { buildMidi } = require('../dist/music/midi')

// Voicings (MIDI) under the melody.
const VOICING = {
  F7: ['F3', 'A3', 'C4', 'Eb4'],
  Bb7: ['Bb2', 'D3', 'F3', 'Ab3'],
  Cm7: ['C3', 'Eb3', 'G3', 'Bb3'],
  Bdim7: ['B2', 'D3', 'F3', 'Ab3'],
  D7: ['D3', 'F#3', 'A3', 'C4'],
  Gm7: ['G2', 'Bb2', 'D3', 'F3'],
  C7: ['C3', 'E3', 'G3', 'Bb3'],
}

// The changes: one entry per bar, each [chord, beats].
const CHANGES = [
  [['F7', 4]],
  [['Bb7', 4]],
  [['F7', 4]],
  [
    ['Cm7', 2],
    ['F7', 2],
  ],
  [['Bb7', 4]],
  [['Bdim7', 4]],
  [['F7', 4]],
  [['D7', 4]],
  [['Gm7', 4]],
  [['C7', 4]],
  [
    ['F7', 2],
    ['D7', 2],
  ],
  [
    ['Gm7', 2],
    ['C7', 2],
  ],
]

// The melody, bar by bar: 'PITCH:BEATS' or 'r:BEATS' (a rest); every bar adds up to 4 beats.
const CHORUSES = [
  [
    'C5:0.5 A4:0.5 C5:0.5 D5:0.5 Eb5:1 C5:1',
    'D5:0.5 Bb4:0.5 D5:0.5 F5:0.5 Ab5:1 r:1',
    'A4:0.5 C5:0.5 F5:1 Eb5:0.5 C5:0.5 A4:1',
    'G4:0.5 Bb4:0.5 Eb5:0.5 D5:0.5 C5:0.5 A4:0.5 Eb5:1',
    'D5:1 F5:0.5 Ab5:0.5 G5:0.5 F5:0.5 D5:1',
    'B4:0.5 D5:0.5 F5:0.5 Ab5:0.5 G5:1 r:1',
    'F5:0.75 Eb5:0.25 C5:0.5 A4:0.5 C5:1 r:1',
    'F#4:0.5 A4:0.5 C5:0.5 Eb5:0.5 D5:2',
    'Bb4:0.5 D5:0.5 F5:0.5 D5:0.5 Bb4:1 A4:1',
    'G4:0.5 Bb4:0.5 E5:0.5 G5:0.5 Bb5:1 G5:1',
    'A5:1 F5:0.5 C5:0.5 F#5:1 D5:1',
    'Bb4:0.5 A4:0.5 G4:0.5 Bb4:0.5 E5:0.5 G5:0.5 E5:1',
  ],
  [
    'r:0.5 F5:0.5 Eb5:0.333 D5:0.333 C5:0.334 A4:1 C5:1',
    'Ab4:0.5 Bb4:0.5 D5:0.5 F5:1 D5:0.5 Bb4:1',
    'C5:1.5 A4:0.5 G4:0.5 A4:0.5 C5:1',
    'Eb5:0.5 D5:0.5 C5:0.5 Bb4:0.5 A4:0.5 C5:0.5 Eb5:0.5 F5:0.5',
    'D5:0.333 F5:0.333 Ab5:0.334 G5:1 F5:0.5 D5:0.5 Bb4:1',
    'Ab4:0.5 B4:0.5 D5:0.5 F5:0.5 Ab5:2',
    'A5:0.5 G5:0.5 F5:0.5 Eb5:0.5 C5:1 A4:1',
    'C5:0.5 A4:0.5 F#4:0.5 A4:0.5 C5:0.5 Eb5:0.5 D5:1',
    'D5:1 Bb4:0.5 G4:0.5 A4:0.5 Bb4:0.5 D5:1',
    'E5:0.5 G5:0.5 Bb5:0.5 A5:0.5 G5:0.5 E5:0.5 C5:1',
    'F5:0.5 C5:0.5 A4:1 Bb4:0.5 C5:0.5 F#5:1',
    'G5:0.5 F5:0.5 D5:0.5 Bb4:0.5 E5:1 r:1',
  ],
]

const midi = (name) => {
  const m = Note.midi(name)
  if (m === null) throw new Error(`bad note name ${name}`)
  return m
}

const melody = []
const chords = []
let bar = 0
for (const chorus of CHORUSES) {
  chorus.forEach((line, k) => {
    let t = 0
    for (const token of line.split(' ')) {
      const [name, beats] = token.split(':')
      const d = Number(beats)
      if (name !== 'r')
        melody.push({ pitch: midi(name), start: bar * 4 + t, duration: d * 0.95, velocity: t % 1 === 0 ? 96 : 84 })
      t += d
    }
    if (Math.abs(t - 4) > 1e-6) throw new Error(`bar ${bar + 1} adds up to ${t} beats, not 4`)
    let c = 0
    for (const [symbol, beats] of CHANGES[k]) {
      for (const name of VOICING[symbol])
        chords.push({ pitch: midi(name), start: bar * 4 + c, duration: beats, velocity: 64 })
      c += beats
    }
    bar++
  })
}

const bytes = buildMidi(
  [
    { name: 'Melody', channel: 0, program: 26, notes: melody },
    { name: 'Changes', channel: 1, program: 0, notes: chords },
  ],
  120,
)
const out = path.join(__dirname, '..', 'assets', 'jazz', 'original_blues_head.mid')
mkdirSync(path.dirname(out), { recursive: true })
writeFileSync(out, bytes)
console.log(`wrote ${out}: ${bar} bars, ${melody.length} melody notes, ${chords.length} chord notes`)
