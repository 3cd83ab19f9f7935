import test from 'ava'
import { writeFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

import { JazzImproviser, music } from '../dist/index.js'
import { fixture, tempDir, testData } from './helpers.js'

const METHENY = fixture('original_metheny.mid')
const tmp = tempDir('music')

test('reads the Metheny file: 25 tracks, tempo, 4/4, named tracks', (t) => {
  const song = music.readMidiFile(METHENY)
  t.is(song.format, 1)
  t.is(song.tracks.length, 25)
  t.is(Math.round(song.tempos[0].bpm), 112)
  t.deepEqual([song.timeSignatures[0].numerator, song.timeSignatures[0].denominator], [4, 4])
  t.is(song.tracks[11].name, 'Guitar')
  t.is(song.tracks[6].name, 'Piano')
  // 19 tracks hold notes: music21's 19 parts
  t.is(song.tracks.filter((tr) => tr.notes.length > 0).length, 19)
})

test('the Metheny preset gives the course section and its corpus', (t) => {
  const song = music.readMidiFile(METHENY)
  const s = music.selectSection(song)
  t.deepEqual([s.melodyTrack, s.chordTracks, s.start, s.end], [11, [6], 476, 548])
  t.is(s.measures.length, 18)
  const c = music.buildCorpus(s.measures)
  t.log(`Metheny: corpus length ${c.corpus.length}, unique values ${c.values.length} (course: 78)`)
  t.is(c.corpus.length, 263)
  t.is(c.values.length, 88) // why not the course's 78: docs/metheny-corpus.md
  for (const v of c.values) t.regex(v, /^[CSAXR],\d+\.\d{3}(,<[a-zA-Z]+-?\d+,[a-zA-Z]+-?\d+>)?$/)
  // every measure's values add up to at most 4 beats
  for (const m of c.perMeasure) {
    const total = m.reduce((a, v) => a + music.parseValue(v).duration, 0)
    t.true(total <= 4 + 1e-6, `measure sums to ${total}`)
  }
})

test('quantize: nearest 1/4 or 1/3, the quarter grid on an exact tie (as music21)', (t) => {
  t.is(music.quantize(28 / 96), 0.25) // halfway between 1/4 and 1/3: floating point used to pick 1/3
  t.is(music.quantize(500 + 28 / 96), 500.25)
  t.is(music.quantize(29 / 96), 1 / 3)
  t.is(music.quantize(27 / 96), 0.25)
  t.is(music.quantize(0.66), 2 / 3)
  t.is(music.quantize(0.74), 0.75)
})

test('grammar classes and interval names', (t) => {
  const c7 = music.analyseChord([48, 52, 55, 58], 0, 4) // C E G Bb
  t.is(c7.symbol, 'C7')
  t.is(music.classify(c7, 64), 'C') // E
  t.is(music.classify(c7, 62), 'S') // D: in C major
  t.is(music.classify(c7, 61), 'A') // C#: a half step from C
  t.is(music.classify(c7, 66), 'A') // F#: a half step below G
  const c = music.analyseChord([48, 52, 55], 0, 4) // C E G
  t.is(music.classify(c, 70), 'X') // Bb: not in C, C major, nor next to C, E, G
  const cm = music.analyseChord([48, 51, 55], 0, 4) // C Eb G: Dorian scale
  t.is(cm.quality, 'other')
  t.is(music.classify(cm, 57), 'S') // A natural is in C Dorian
  t.is(music.intervalName(3), 'm3')
  t.is(music.intervalName(-2), 'M-2')
  t.is(music.intervalName(-5), 'P-4')
  for (let s = -24; s <= 24; s++) t.is(music.intervalSemitones(music.intervalName(s)), s)
  t.deepEqual(music.parseValue('C,0.250,<M2,m-3>'), { type: 'C', duration: 0.25, window: [-3, 2] })
  t.throws(() => music.parseValue('Q,1'), { message: /bad grammar value/ })
})

test('parseMeasure encodes rests, types and interval windows', (t) => {
  const chord = music.analyseChord([53, 57, 60, 63], 0, 4) // F7
  const measure = {
    number: 0,
    start: 0,
    melody: [
      { pitch: 72, start: 0.5, duration: 0.5, velocity: 90 }, // C5 chord tone after a rest
      { pitch: 74, start: 1, duration: 1, velocity: 90 }, // D5 scale tone, up a M2
      { pitch: 71, start: 2, duration: 0.5, velocity: 90 }, // B4 = approach to C, down a m3
    ],
    chords: [chord],
  }
  t.deepEqual(music.parseMeasure(measure), ['R,0.500', 'C,0.500', 'S,1.000,<P4,m-2>', 'A,0.500,<P1,d-5>'])
})

test('unparse + tidy: notes inside the measure, the range and the window, no overlaps', (t) => {
  const chord = music.analyseChord([53, 57, 60, 63], 0, 4)
  const values = [
    'C,0.500',
    'S,0.250,<M3,m-2>',
    'C,0.333,<P4,M-2>',
    'A,0.250,<m3,M-3>',
    'R,0.500',
    'C,1.000,<P5,P1>',
    'S,2.000,<m3,m-3>',
  ].map(music.parseValue)
  for (let seed = 0; seed < 20; seed++) {
    const notes = music.tidy(music.unparseMeasure(values, [chord], { range: [60, 79], rng: music.seededRng(seed) }))
    t.true(notes.length >= 3)
    for (let k = 0; k < notes.length; k++) {
      const n = notes[k]
      t.true(n.start >= 0 && n.start + n.duration <= 4 + 1e-9)
      t.true(n.pitch >= 60 && n.pitch <= 79)
      t.true(n.duration >= 0.25 - 1e-9 || n.start + n.duration >= 4 - 1e-9)
      if (k > 0) {
        t.true(notes[k - 1].start + notes[k - 1].duration <= n.start + 1e-9, 'no overlap')
        t.not(notes[k - 1].pitch, n.pitch, 'repeats merged')
      }
    }
    t.is(music.classify(chord, notes[0].pitch), 'C')
  }
  // tidy on its own: same-onset note dropped, repeat merged, overlap cut
  const tidied = music.tidy([
    { pitch: 60, start: 0, duration: 1.5, velocity: 90 },
    { pitch: 62, start: 0, duration: 1, velocity: 90 },
    { pitch: 64, start: 1, duration: 0.1, velocity: 90 },
    { pitch: 64, start: 1.5, duration: 0.5, velocity: 90 },
  ])
  t.deepEqual(
    tidied.map((n) => [n.pitch, n.start, n.duration]),
    [
      [60, 0, 1],
      [64, 1, 1],
    ],
  )
})

test('MIDI round trip through buildMidi and parseMidiBytes', (t) => {
  const notes = [
    { pitch: 60, start: 0, duration: 1, velocity: 100 },
    { pitch: 64, start: 1, duration: 0.5, velocity: 80 },
  ]
  const bytes = music.buildMidi([{ name: 'x', channel: 0, program: 26, notes }], 130)
  const song = music.parseMidiBytes(bytes, 'mem.mid')
  t.is(Math.round(song.tempos[0].bpm), 130)
  t.is(song.tracks[1].program, 26)
  t.deepEqual(song.tracks[1].notes, notes)
})

test('bad inputs are clear errors naming the file', (t) => {
  const text = join(tmp, 'not-midi.mid')
  writeFileSync(text, 'hello, this is not a MIDI file')
  t.throws(() => music.readMidiFile(text), { message: /not-midi\.mid: not a MIDI file/ })
  const cut = join(tmp, 'cut.mid')
  writeFileSync(cut, readFileSync(METHENY).subarray(0, 5000))
  t.throws(() => music.readMidiFile(cut), { message: /cut\.mid: truncated MIDI file/ })
  t.throws(() => music.readMidiFile(join(tmp, 'missing.mid')), { message: /missing\.mid: cannot read/ })

  const empty = music.parseMidiBytes(music.buildMidi([], 120), 'empty.mid')
  t.throws(() => music.selectSection(empty), { message: /empty\.mid: the file has no notes/ })

  const mono = music.parseMidiBytes(
    music.buildMidi(
      [
        {
          name: 'solo',
          channel: 0,
          program: 0,
          notes: [60, 62, 64, 65].map((p, k) => ({ pitch: p, start: k, duration: 1, velocity: 90 })),
        },
      ],
      120,
    ),
    'mono.mid',
  )
  t.throws(() => music.selectSection(mono), { message: /mono\.mid: no chord tracks/ })
  t.throws(() => music.selectSection(mono, { melodyTrack: 1, chordTracks: [1] }), {
    message: /mono\.mid: no chords in/,
  })

  const song = music.readMidiFile(METHENY)
  t.throws(() => music.selectSection(song, { melodyTrack: 40, chordTracks: [6] }), {
    message: /melody track 40 does not exist \(the file has tracks 0–24\)/,
  })
  t.throws(() => music.selectSection(song, { melodyTrack: 2, chordTracks: [6] }), {
    message: /melody track 2 \('Pat Metheny'\) has no notes/,
  })
  t.throws(() => music.selectSection(song, { start: 5000, end: 5100 }), {
    message: /starts after the end of the piece/,
  })
  t.throws(() => music.selectSection(song, { start: 100, end: 50 }), { message: /bad time range/ })
})

test('piano roll SVG has the solo, the chords and bar lines', (t) => {
  const chord = { start: 0, duration: 4, pitches: [53, 57, 60], symbol: 'F' }
  const svg = music.pianoRollSvg([{ pitch: 72, start: 0, duration: 1, velocity: 90 }], [chord], { title: 'x' })
  t.regex(svg, /^<svg /)
  t.is((svg.match(/<rect [^>]*rx="1.5"/g) ?? []).length, 1)
  t.true(svg.includes('>F<'))
  t.is((svg.match(/<line /g) ?? []).length, 2)
})

// ---------------------------------------------------------------- the deepjazz grammar

/** scripts/deepjazz_reference.py's output: deepjazz on music21 5.1.0 over the Metheny section. */
interface Reference {
  music21: string
  corpusLength: number
  uniqueValues: number
  corpus: string[]
  measures: {
    index: number
    melody: { name?: string; midi?: number; offset: number; quarterLength: number; class: string }[]
    chords: { offset: number; pitches: { name: string }[]; root: string; quality: string; scale: string[] }[]
    grammar: string | null
  }[]
  bluesScales: Record<string, string[]>
  decoded: { values: string[]; notes: { name: string; midi: number; offset: number; quarterLength: number }[] }[]
}
const REF: Reference = JSON.parse(readFileSync(testData('deepjazz_metheny.json'), 'utf8'))
const dj = music.deepjazz
const m21 = music.music21

function methenyMeasures() {
  return dj.deepjazzMeasures(music.readMidiFile(METHENY), 11, [6], 476, 548)
}

test('deepjazz grammar: the Metheny corpus equals music21 5.1.0 deepjazz value for value (193, 78 unique)', (t) => {
  t.is(REF.music21, '5.1.0')
  const jazz = JazzImproviser.fromMidi(METHENY, { grammar: 'deepjazz' })
  t.is(jazz.grammar, 'deepjazz')
  t.is(jazz.nValues, 78)
  t.is(jazz.corpus.corpus.length, 193)
  t.is(REF.corpus.length, 193)
  // value for value: report the first difference by position
  for (let k = 0; k < REF.corpus.length; k++) t.is(jazz.corpus.corpus[k], REF.corpus[k], `value ${k}`)
  t.deepEqual(jazz.corpus.corpus, REF.corpus)
  t.deepEqual(
    jazz.corpus.perMeasure.map((m) => m.join(' ')),
    REF.measures.slice(1).map((m) => m.grammar),
  )
  t.is(new Set(REF.corpus).size, REF.uniqueValues)
})

test('deepjazz grammar: measures read as music21 reads them (spelled notes, chords, roots, qualities, derive())', (t) => {
  const measures = methenyMeasures()
  t.is(measures.length, 18)
  REF.measures.slice(1).forEach((ref, k) => {
    const m = measures[k]
    t.deepEqual(
      m.melody.map((n) => [m21.nameWithOctave(n.pitch), m21.ps(n.pitch), n.offset, n.quarterLength]),
      ref.melody.map((n) => [n.name, n.midi, n.offset, n.quarterLength]),
      `melody of measure ${k + 1}`,
    )
    t.deepEqual(
      m.chords.map((c) => {
        const quality = m21.chordQuality(c)
        const kind = quality === 'major' ? 'major' : 'dorian'
        return {
          offset: c.offset,
          pitches: c.pitches.map(m21.nameWithOctave),
          root: m21.nameOf(m21.chordRoot(c)),
          quality,
          scale: m21.scaleNames(kind, m21.deriveScale(kind, c.pitches)),
        }
      }),
      ref.chords.map((c) => ({
        offset: c.offset,
        pitches: c.pitches.map((p) => p.name),
        root: c.root,
        quality: c.quality,
        scale: c.scale,
      })),
      `chords of measure ${k + 1}`,
    )
  })
  // the blues scales the decoder draws from are music21's
  for (const [tonic, names] of Object.entries(REF.bluesScales))
    t.deepEqual(m21.scaleNames('blues', m21.parsePitch(tonic)), names, tonic)
})

test('music21 intervals: names between spelled notes, plus and minus a minor third, parsed back', (t) => {
  const cases: [string, string, string, string, string][] = [
    // start, end, directedName, add m3, subtract m3 (music21 5.1.0)
    ['C#4', 'C4', 'd1', 'd3', 'M-3'],
    ['C4', 'C#4', 'A1', 'M3', 'd-3'],
    ['C4', 'B#3', 'd-2', 'A2', 'dd-4'],
    ['G4', 'C4', 'P-5', 'M-3', 'm-7'],
    ['D5', 'C#4', 'm-9', 'm-7', 'd-11'],
    ['E-5', 'G#4', 'd-6', 'd-4', 'dd-8'],
  ]
  for (const [a, b, name, up, down] of cases) {
    const i = m21.intervalBetween(m21.parsePitch(a), m21.parsePitch(b))
    t.is(m21.directedName(i), name, `${a} → ${b}`)
    t.is(m21.directedName(m21.addMinorThird(i)), up, `${a} → ${b} + m3`)
    t.is(m21.directedName(m21.subtractMinorThird(i)), down, `${a} → ${b} − m3`)
  }
  // music21's Interval('…').semitones
  for (const [name, semitones] of [
    ['M-2', -2],
    ['d-8', -11],
    ['A1', 1],
    ['d1', -1],
    ['dd5', 5],
    ['P-4', -5],
  ] as const)
    t.is(m21.parseInterval(name).semitones, semitones, name)
  t.throws(() => m21.parseInterval('Q3'), { code: 'ERR_INVALID_ARG', message: /Q3/ })
  t.throws(() => m21.parsePitch('H4'), { code: 'ERR_INVALID_ARG', message: /H4/ })
})

test("deepjazz decoding: each measure's values decode to the notes the course's generate_music makes", (t) => {
  // The reference decodes measure k's own values over its chords with mulberry32 seeded k
  // (scripts/deepjazz_reference.py draws every random.choice from it).
  const measures = methenyMeasures()
  t.is(REF.decoded.length, 18)
  REF.decoded.forEach((ref, k) => {
    const chords = measures[k].chords.map((c) => ({ ...c, offset: c.offset % 4 }))
    const notes = dj.decodeDeepjazz(ref.values, chords, music.seededRng(k + 1))
    t.deepEqual(
      notes.map((n) => [n.name, n.pitch, n.offset, n.quarterLength]),
      ref.notes.map((n) => [n.name, n.midi, n.offset, n.quarterLength]),
      `measure ${k + 1}`,
    )
  })
})
