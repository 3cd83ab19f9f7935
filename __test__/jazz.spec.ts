import test from 'ava'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

import { CharLanguageModel, JazzImproviser, music, NameModel } from '../dist/index.js'
import { fixture, tempDir } from './helpers.js'

const METHENY = fixture('original_metheny.mid')
const tmp = tempDir('jazz')
const require = createRequire(import.meta.url)

/** The second, independent MIDI parser (@tonejs/midi, a devDependency). */
function parseWithTone(bytes: Uint8Array) {
  const { Midi } = require('@tonejs/midi') as typeof import('@tonejs/midi')
  return new Midi(bytes)
}

/** Share of notes that are chord or scale tones of the chord governing them. */
function chordOrScaleShare(
  notes: { pitch: number; start: number }[],
  chordAtTime: (t: number) => music.Chord | undefined,
): number {
  let hits = 0
  for (const n of notes) {
    const c = chordAtTime(n.start)
    if (c && 'CS'.includes(music.classify(c, n.pitch))) hits++
  }
  return notes.length ? hits / notes.length : 0
}

async function checkSolo(t: import('ava').ExecutionContext, file: string | undefined, label: string) {
  const jazz = file ? JazzImproviser.fromMidi(file) : JazzImproviser.fromMidi()
  const progress: number[] = []
  const history = await jazz.fit({ epochs: 100, chunk: 25, onProgress: (p) => progress.push(p.epoch) })
  t.deepEqual(progress, [25, 50, 75, 100])
  t.is(history.loss.length, 100)
  t.true(history.loss[99] < 0.5 * history.loss[0], `loss ${history.loss[0]} -> ${history.loss[99]}`)
  t.true(history.accuracy[99] > history.accuracy[0])

  const solo = jazz.improvise({ length: 50, temperature: 0.5, seed: 1 })
  const out = join(tmp, `${label}.mid`)
  jazz.toMidi(out, solo)

  // 1. The file parses with an independent parser: a solo track and a chord track, the tempo.
  const tone = parseWithTone(readFileSync(out))
  const tracks = tone.tracks.filter((tr) => tr.notes.length > 0)
  t.is(tracks.length, 2)
  t.is(tracks[0].notes.length, solo.notes.length)
  t.true(Math.abs(tone.header.tempos[0].bpm - jazz.section.bpm) < 0.01)
  const ppq = tone.header.ppq
  const parsed = tracks[0].notes.map((n) => ({
    pitch: n.midi,
    start: n.ticks / ppq,
    end: (n.ticks + n.durationTicks) / ppq,
    velocity: n.velocity,
  }))

  // 2. Every solo note inside its measure and the input's pitch range; no overlaps; audible.
  const [lo, hi] = jazz.section.pitchRange
  parsed.forEach((n, k) => {
    const bar = Math.floor(n.start / 4 + 1e-9)
    t.true(n.end <= 4 * (bar + 1) + 1e-6, `note ${k} crosses its bar line`)
    t.true(n.pitch >= lo && n.pitch <= hi, `note ${k} pitch ${n.pitch} outside [${lo}, ${hi}]`)
    t.true(n.velocity > 0)
    if (k > 0) t.true(parsed[k - 1].end <= n.start + 1e-6, `notes ${k - 1} and ${k} overlap`)
  })
  t.true(solo.notes.length >= 4 * solo.values.length, 'a few notes per measure at least')

  // 3. Share of chord/scale tones, solo vs the input melody.
  const chordsBy = (chords: music.Chord[]) => (time: number) => {
    let found: music.Chord | undefined
    for (const c of chords) if (c.start <= time + 1e-9) found = c
    return found ?? chords[0]
  }
  const soloShare = chordOrScaleShare(solo.notes, chordsBy(solo.chords))
  const input = jazz.section.measures.flatMap((m) => m.melody.map((n) => ({ n, c: music.chordAt(m, n.start) })))
  const inputShare = input.filter(({ n, c }) => c && 'CS'.includes(music.classify(c, n.pitch))).length / input.length
  t.log(
    `${label}: corpus ${jazz.corpus.corpus.length} values, ${jazz.nValues} unique; loss ${history.loss[0].toFixed(2)} -> ${history.loss[99].toFixed(2)}; ` +
      `${solo.notes.length} notes in ${solo.values.length} measures; chord/scale tones: solo ${(100 * soloShare).toFixed(0)}%, input ${(100 * inputShare).toFixed(0)}%`,
  )
  t.true(soloShare >= 0.5)
  return jazz
}

test('Metheny: train 100 epochs, improvise, write a MIDI that a second parser reads', async (t) => {
  await checkSolo(t, METHENY, 'metheny')
})

test('the shipped original blues head works out of the box', async (t) => {
  const jazz = await checkSolo(t, undefined, 'blues')
  t.true(jazz.section.path.endsWith('original_blues_head.mid'))
  // same seed, same solo; argmax (temperature 0) ignores the sampling seed
  t.deepEqual(jazz.improvise({ seed: 4, temperature: 1 }).values, jazz.improvise({ seed: 4, temperature: 1 }).values)
  t.deepEqual(jazz.improvise({ seed: 1 }).indices, jazz.improvise({ seed: 2 }).indices)
  t.regex(jazz.toSvg(), /^<svg /)
})

test('fit can be aborted, and bad options are errors', async (t) => {
  const jazz = JazzImproviser.fromMidi(undefined, { seed: 2 })
  const ac = new AbortController()
  const run = jazz.fit({ epochs: 1000, chunk: 5, signal: ac.signal, onProgress: () => ac.abort() })
  await t.throwsAsync(run, { name: 'AbortError' })
  t.throws(() => jazz.improvise({ temperature: -1 }), { message: /temperature/ })
  t.throws(() => jazz.improvise({ length: 0 }), { message: /length/ })
  t.throws(() => jazz.toMidi(join(tmp, 'x.mid'), undefined), { message: /improvise\(\) first/ })
  t.throws(() => JazzImproviser.fromMidi(METHENY, { melodyTrack: 30, chordTracks: [6] }), {
    message: /track 30 does not exist/,
  })
  t.throws(() => JazzImproviser.fromMidi(METHENY, { tX: 400 }), { message: /fewer than tX \+ 1/ })
})

test('save and load keep everything: the same solos, and fit 20 + save/load + fit 20 equals fit 40', async (t) => {
  const straight = JazzImproviser.fromMidi(undefined, { seed: 3, m: 20 })
  const all = await straight.fit({ epochs: 40, chunk: 7 })

  const first = JazzImproviser.fromMidi(undefined, { seed: 3, m: 20 })
  const before = await first.fit({ epochs: 20 })
  const file = join(tmp, 'resume.safetensors')
  first.save(file)
  t.deepEqual(
    readdirSync(tmp).filter((f) => f.includes('resume.safetensors')),
    ['resume.safetensors'],
  )
  const loaded = JazzImproviser.load(file)
  t.is(loaded.epochsDone, 20)
  t.is(loaded.seed, 3)
  t.deepEqual([loaded.nA, loaded.tX, loaded.m, loaded.nValues], [first.nA, first.tX, first.m, first.nValues])
  // the section as JSON keeps it (an absent `carried` stays absent rather than `undefined`)
  t.deepEqual(loaded.section, JSON.parse(JSON.stringify(first.section)))
  t.deepEqual(loaded.corpus, first.corpus)
  for (const options of [{}, { seed: 5, temperature: 0.7 }, { seed: 9, temperature: 1, length: 20 }]) {
    t.deepEqual(loaded.improvise(options), first.improvise(options))
  }
  // budgets are totals (the model contract): continue to 40
  const after = await loaded.fit({ epochs: 40, chunk: 3 })
  t.deepEqual([...before.loss, ...after.loss], all.loss)
  t.deepEqual([...before.accuracy, ...after.accuracy], all.accuracy)
  t.is(loaded.epochsDone, 40)
  t.deepEqual(loaded.improvise({ seed: 2, temperature: 0.8 }), straight.improvise({ seed: 2, temperature: 0.8 }))
  // saving again writes the same file as the unbroken run's
  const a = join(tmp, 'a.safetensors'),
    b = join(tmp, 'b.safetensors')
  loaded.save(a)
  straight.save(b)
  t.deepEqual(readFileSync(a), readFileSync(b))
})

test('load refuses other kinds, naming the kind and what reads it, and damaged files', async (t) => {
  const dinos = join(tmp, 'names.safetensors')
  NameModel.fromNames(['stegosaurus', 'aardonyx'], { hidden: 5 }).save(dinos)
  t.throws(() => JazzImproviser.load(dinos), {
    code: 'ERR_BAD_FILE',
    message: /kind "dinos".*NameModel\.load.*'rnnlab sample'/,
  } as never)
  const lm = new CharLanguageModel({ hidden: 8, layers: 1 })
  await lm.fit('the quick brown fox jumps over the lazy dog\n'.repeat(40), { epochs: 1, batchSize: 4, seqLength: 10 })
  const charlm = join(tmp, 'lm.safetensors')
  lm.save(charlm)
  t.throws(() => JazzImproviser.load(charlm), {
    code: 'ERR_BAD_FILE',
    message: /kind "charlm".*CharLanguageModel\.load.*'rnnlab generate'/,
  } as never)

  const good = join(tmp, 'good.safetensors')
  JazzImproviser.fromMidi(undefined, { m: 5 }).save(good)
  const bytes = readFileSync(good)
  const truncated = join(tmp, 'truncated.safetensors')
  writeFileSync(truncated, bytes.subarray(0, bytes.length - 10))
  t.throws(() => JazzImproviser.load(truncated), { code: 'ERR_BAD_FILE', message: /truncated/ } as never)
  t.throws(() => JazzImproviser.load(join(tmp, 'missing.safetensors')), { code: 'ERR_BAD_FILE' } as never)
  // the save is atomic: a failed write leaves no file and no temporary behind
  t.throws(() => JazzImproviser.fromMidi(undefined, { m: 5 }).save(join(tmp, 'no', 'such', 'dir.safetensors')), {
    code: 'ERR_BAD_FILE',
  } as never)
})

test("grammar 'deepjazz': the course's 78 values, a solo decoded as generate_music decodes it, written and read back", async (t) => {
  const jazz = JazzImproviser.fromMidi(METHENY, { grammar: 'deepjazz', seed: 1 })
  t.is(jazz.grammar, 'deepjazz')
  t.is(jazz.nValues, 78)
  t.is(jazz.corpus.corpus.length, 193)
  const history = await jazz.fit({ epochs: 60, chunk: 20 })
  t.true(history.loss[59] < 0.5 * history.loss[0], `loss ${history.loss[0]} -> ${history.loss[59]}`)
  const solo = jazz.improvise({ temperature: 0.5, seed: 2 })
  t.is(solo.values.length, 18)
  // every measure's notes are the deepjazz decoding of its values over its chords, one RNG in measure order
  const rng = music.seededRng(2)
  const expected = jazz.deepjazzMeasures!.flatMap((m, k) => {
    const chords = m.chords.map((c) => ({ ...c, offset: c.offset - 4 * m.number }))
    return music.deepjazz
      .decodeDeepjazz(solo.values[k], chords, rng)
      .map((n) => [n.pitch, 4 * k + n.offset, n.quarterLength])
  })
  t.deepEqual(
    solo.notes.map((n) => [n.pitch, n.start, n.duration]),
    expected,
  )
  // a valid MIDI file: an independent parser reads the solo (velocity 90, music21's) and the tempo
  const out = join(tmp, 'deepjazz.mid')
  jazz.toMidi(out, solo)
  const tone = parseWithTone(readFileSync(out))
  const tracks = tone.tracks.filter((tr) => tr.notes.length > 0)
  t.is(tracks.length, 2)
  t.is(tracks[0].notes.length, solo.notes.length)
  t.true(tracks[0].notes.every((n) => Math.round(n.velocity * 127) === 90))
  t.true(Math.abs(tone.header.tempos[0].bpm - jazz.section.bpm) < 0.01)
  // save and load keep the grammar and its measures: the same solos
  const file = join(tmp, 'deepjazz.safetensors')
  jazz.save(file)
  const loaded = JazzImproviser.load(file)
  t.is(loaded.grammar, 'deepjazz')
  t.deepEqual(loaded.corpus.corpus, jazz.corpus.corpus)
  t.deepEqual(loaded.improvise({ temperature: 0.5, seed: 2 }), jazz.improvise({ temperature: 0.5, seed: 2 }))
  // the blues head reads too
  t.true(JazzImproviser.fromMidi(undefined, { grammar: 'deepjazz' }).nValues > 10)
})

test('unknown option names and grammars are refused by name, with a code', async (t) => {
  const bad = { code: 'ERR_INVALID_ARG' }
  t.throws(() => JazzImproviser.fromMidi(METHENY, { grammr: 'deepjazz' } as never), {
    ...bad,
    message: /JazzImproviser\.fromMidi: unknown option 'grammr'/,
  })
  t.throws(() => JazzImproviser.fromBytes(readFileSync(METHENY), { sede: 1 } as never), {
    ...bad,
    message: /unknown option 'sede'/,
  })
  t.throws(() => JazzImproviser.fromMidi(METHENY, { grammar: 'music21' as never }), {
    ...bad,
    message: /grammar: expected one of 'rnnlab', 'deepjazz', got "music21"/,
  })
  const jazz = JazzImproviser.fromMidi(undefined, { m: 5 })
  await t.throwsAsync(jazz.fit({ epoch: 3 } as never), {
    ...bad,
    message: /JazzImproviser\.fit: unknown option 'epoch'/,
  })
  t.throws(() => jazz.improvise({ temp: 1 } as never), { ...bad, message: /unknown option 'temp'/ })
  const solo = jazz.improvise()
  t.throws(() => jazz.toMidi(join(tmp, 'x.mid'), solo, { bmp: 100 } as never), {
    ...bad,
    message: /unknown option 'bmp'/,
  })
})
