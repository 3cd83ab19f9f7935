// Beam search (issue 14): `beamSearch` on NameModel and CharLanguageModel, and `--beam K` in
// `rnnlab sample` and `rnnlab generate`. On tiny models a beam wide enough to keep every
// candidate returns the brute-force K best; width 1 is greedy decoding; the log-probabilities
// are the model's log-softmax summed here independently; bad widths are refused by name.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { CharLanguageModel, NameModel } from '../dist/index.js'
import { CLI, cli, pipeline, rnnlabCommand, rnnlabInPty, tmp } from './cli-helpers.js'
import { fixture } from './helpers.js'

const dir = tmp()
const namesModel = join(dir, 'names.safetensors')
const lmModel = join(dir, 'sonnets.safetensors')

/** A name model over '\n', 'a', 'b' (3 symbols), trained a little so its distributions differ. */
async function tinyNames(): Promise<NameModel> {
  const m = NameModel.fromNames(['ab', 'ba', 'aab', 'bba', 'abab'], { hidden: 6, seed: 3 })
  await m.fit({ iterations: 400 })
  return m
}

/** A float64 language model over '\n', 'a', 'b'. */
async function tinyLm(): Promise<CharLanguageModel> {
  const m = new CharLanguageModel({ layers: 1, hidden: 5, dtype: 'float64', seed: 2, dropout: 0 })
  await m.fit('abba\nbab\naab\nbbaa\n'.repeat(40), { epochs: 2, batchSize: 4, seqLength: 8, validation: 0 })
  return m
}

function logSoftmax(z: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(z))
  let sum = 0
  for (let i = 0; i < z.length; i++) sum += Math.exp(z[i] - max)
  const lse = max + Math.log(sum)
  return Array.from(z, (v) => v - lse)
}

/** Every string of `len` characters of `alphabet`. */
function strings(alphabet: string, len: number): string[] {
  if (len === 0) return ['']
  return strings(alphabet, len - 1).flatMap((s) => Array.from(alphabet, (c) => s + c))
}

/** The name model's log-softmax after each input (null = the course's zero first input). */
function nameScorer(m: NameModel) {
  const { Wax, Waa, Wya, b, by } = m.parameters()
  const nA = Waa.shape[0]
  const nX = Wax.shape[1]
  const nY = Wya.shape[0]
  return (inputs: (number | null)[]) => {
    let a = new Float64Array(nA)
    let lp: number[] = []
    for (const x of inputs) {
      const next = new Float64Array(nA)
      for (let i = 0; i < nA; i++) {
        let s = b.data[i] + (x === null ? 0 : Wax.data[i * nX + x])
        for (let j = 0; j < nA; j++) s += Waa.data[i * nA + j] * a[j]
        next[i] = Math.tanh(s)
      }
      a = next
      const z = new Float64Array(nY)
      for (let k = 0; k < nY; k++) {
        z[k] = by.data[k]
        for (let j = 0; j < nA; j++) z[k] += Wya.data[k * nA + j] * a[j]
      }
      lp = logSoftmax(z)
    }
    return lp
  }
}

/** ln P(name after prefix): the newline counts unless the name has `maxLength` characters. */
function nameLogProb(m: NameModel, name: string, prefix: string, maxLength: number): number {
  const vocab = m.vocabulary
  const ix = Array.from(vocab.encode(name, 'name'))
  const scorer = nameScorer(m)
  const p = Array.from(prefix).length
  let total = 0
  for (let t = p; t < ix.length; t++) total += scorer([null, ...ix.slice(0, t)])[ix[t]]
  if (ix.length < maxLength) total += scorer([null, ...ix])[vocab.newline]
  return total
}

/** The `k` best of `all` (text → log-probability) against a beam's results. */
function sameAsBruteForce(
  t: import('ava').ExecutionContext,
  beam: { text: string; logProb: number }[],
  all: Map<string, number>,
  k: number,
) {
  const best = [...all.values()].sort((x, y) => y - x).slice(0, k)
  t.is(beam.length, k)
  beam.forEach((r, i) => {
    t.true(Math.abs(r.logProb - best[i]) < 1e-9, `#${i}: ${r.logProb} vs ${best[i]}`)
    t.true(Math.abs(r.logProb - (all.get(r.text) ?? Number.NaN)) < 1e-9, `${r.text}: ${r.logProb}`)
  })
  t.is(new Set(beam.map((r) => r.text)).size, k)
}

test.before(async () => {
  writeFileSync(join(dir, 'names.txt'), 'aardonyx\nabelisaurus\nzuniceratops\nstegosaurus\nstegoceras\n')
  const a = cli([
    'dinos',
    '--data',
    join(dir, 'names.txt'),
    '--hidden',
    '10',
    '--iterations',
    '800',
    '--out',
    namesModel,
  ])
  if (a.status !== 0) throw new Error(a.stderr)
  const SMALL = ['--hidden', '16', '--layers', '1', '--batch-size', '32', '--seq-length', '20', '--epochs', '1']
  const b = cli(['train', '--text', fixture('shakespeare.txt'), ...SMALL, '--out', lmModel, '--quiet'])
  if (b.status !== 0) throw new Error(b.stderr)
})

test('NameModel.beamSearch: a beam that keeps every candidate is the brute-force K best', async (t) => {
  const m = await tinyNames()
  for (const prefix of ['', 'b']) {
    const maxLength = 4 + prefix.length
    // every name: ending with the newline before maxLength, or cut at maxLength
    const all = new Map<string, number>()
    for (let len = 0; len <= 4; len++)
      for (const s of strings('ab', len)) all.set(prefix + s, nameLogProb(m, prefix + s, prefix, maxLength))
    t.is(all.size, 31)
    // at most 3 · 2³ = 24 candidates per step: a beam of 24 keeps them all
    const beam = m.beamSearch({ beamWidth: 24, prefix, maxLength })
    sameAsBruteForce(t, beam, all, 24)
    t.true(beam.every((r) => r.text.startsWith(prefix)))
    // names that end early are among the best
    t.true(beam.slice(0, 6).some((r) => r.text.length < maxLength))
    const every = m.beamSearch({ beamWidth: 100, prefix, maxLength })
    t.is(every.length, 31)
    t.true(Math.abs(every.reduce((s, r) => s + Math.exp(r.logProb), 0) - 1) < 1e-9)
  }
})

test('CharLanguageModel.beamSearch: a beam that keeps every candidate is the brute-force K best', async (t) => {
  const m = await tinyLm()
  t.is(m.info?.vocab, '\nab')
  const prompt = 'ab'
  const all = new Map<string, number>()
  for (const s of strings('\nab', 4)) {
    const rows = m.logits(prompt + s)
    let total = 0
    Array.from(s).forEach((ch, i) => {
      total += logSoftmax(rows[prompt.length - 1 + i])['\nab'.indexOf(ch)]
    })
    all.set(s, total)
  }
  sameAsBruteForce(t, m.beamSearch({ beamWidth: 81, prompt, length: 4 }), all, 81)
  const narrow = m.beamSearch({ beamWidth: 3, prompt, length: 4 })
  t.is(narrow.length, 3)
  for (const r of narrow) t.true(Math.abs(r.logProb - (all.get(r.text) ?? Number.NaN)) < 1e-9)
})

test('beamWidth 1 is greedy decoding for both models', async (t) => {
  const names = NameModel.load(namesModel)
  for (const prefix of [undefined, 'st', 'a']) {
    const [greedy] = names.sample({ temperature: 0, prefix, maxLength: 20 })
    const [beam] = names.beamSearch({ beamWidth: 1, prefix, maxLength: 20 })
    t.is(beam.text, greedy)
    t.true(Math.abs(beam.logProb - nameLogProb(names, beam.text, prefix ?? '', 20)) < 1e-9)
  }
  const lm = CharLanguageModel.load(lmModel)
  for (const prompt of ['Shall I', '']) {
    const greedy = lm.generate({ temperature: 0, prompt, length: 60 })
    const [beam] = lm.beamSearch({ beamWidth: 1, prompt, length: 60 })
    t.is(beam.text, greedy)
  }
  // wider: best first, at least as likely as greedy
  const wide = lm.beamSearch({ beamWidth: 6, prompt: 'Shall I', length: 60 })
  t.is(wide.length, 6)
  t.true(wide.every((r, i) => i === 0 || wide[i - 1].logProb >= r.logProb))
  t.true(wide[0].logProb >= lm.beamSearch({ beamWidth: 1, prompt: 'Shall I', length: 60 })[0].logProb - 1e-12)
})

test('beamSearch refuses bad widths and the sampling options it cannot honour, by name', async (t) => {
  const names = NameModel.load(namesModel)
  const lm = CharLanguageModel.load(lmModel)
  for (const search of [(o: object) => names.beamSearch(o), (o: object) => lm.beamSearch(o)]) {
    for (const beamWidth of [0, -2, 1.5, 10_001, Number.NaN]) {
      const e = t.throws(() => search({ beamWidth }), { instanceOf: RangeError, code: 'ERR_INVALID_ARG' })
      t.regex(e?.message ?? '', /^beamWidth: /)
    }
    t.throws(() => search({ beamWidth: 'x' }), { code: 'ERR_INVALID_ARG', message: /beamWidth/ })
    for (const [name, value] of [
      ['temperature', 0.5],
      ['topK', 3],
      ['count', 2],
      ['seed', 1],
    ] as const) {
      t.throws(() => search({ beamWidth: 2, [name]: value }), {
        code: 'ERR_INVALID_ARG',
        message: new RegExp(`^${name}: .*beamSearch cannot honour it`),
      })
    }
  }
  t.throws(() => names.beamSearch({ prefix: 'stego', maxLength: 5 }), { code: 'ERR_INVALID_ARG', message: /maxLength/ })
  t.throws(() => lm.beamSearch({ prompt: '€', length: 3 }), { message: /prompt/ })
  // the default width
  t.is(names.beamSearch().length, 5)
})

test('rnnlab sample/generate --beam K in a terminal: K lines, best first, with log-probabilities', async (t) => {
  const s = await rnnlabInPty(['sample', '--model', namesModel, '--beam', '4', '--prefix', 'st'])
  t.is(s.status, 0, s.output)
  const lines = s.output.trim().split('\n')
  t.is(lines.length, 4, s.output)
  const names = NameModel.load(namesModel).beamSearch({ beamWidth: 4, prefix: 'st' })
  lines.forEach((line, i) => {
    const [lp, name] = line.split('\t')
    t.regex(line, /^-\d+\.\d{4}\tSt[a-z]*$/)
    t.is(name.toLowerCase(), names[i].text)
    t.is(lp, names[i].logProb.toFixed(4))
  })
  const g = await rnnlabInPty(['generate', '--model', lmModel, '--beam', '3', '--prompt', 'Love', '--length', '30'])
  t.is(g.status, 0, g.output)
  const texts = g.output.trim().split('\n')
  t.is(texts.length, 3, g.output)
  for (const line of texts) {
    const [lp, json] = line.split('\t')
    t.regex(lp, /^-\d+\.\d{4}$/)
    const text = JSON.parse(json) as string
    t.true(text.startsWith('Love'))
    t.is(Array.from(text).length, 34)
  }
})

test('--beam output does not depend on the thread count, and | head stays quiet', (t) => {
  const run = (threads: string, args: string[]) =>
    spawnSync(process.execPath, [CLI, ...args], {
      encoding: 'utf8',
      env: { ...process.env, RAYON_NUM_THREADS: threads },
    })
  for (const args of [
    ['sample', '--model', namesModel, '--beam', '7'],
    ['generate', '--model', lmModel, '--beam', '5', '--length', '40'],
  ]) {
    const one = run('1', args)
    t.is(one.status, 0, one.stderr)
    t.is(one.stdout, run('2', args).stdout)
  }
  for (const args of [
    ['sample', '--model', namesModel, '--beam', '300'],
    ['generate', '--model', lmModel, '--beam', '200', '--length', '30'],
  ]) {
    const r = pipeline(`${rnnlabCommand(args)} | head -2`)
    t.is(r.status, 0, r.stderr)
    t.is(r.stderr, '')
    t.is(r.stdout.trim().split('\n').length, 2)
  }
})

test('--beam refuses bad values and the flags it cannot honour in one line, exit 2', (t) => {
  for (const args of [
    ['sample', '--model', namesModel],
    ['generate', '--model', lmModel],
  ]) {
    for (const bad of ['0', '-2', 'x', '1.5', '10001']) {
      const r = cli([...args, '--beam', bad])
      t.is(r.status, 2, r.stderr)
      t.is(r.stdout, '')
      t.regex(r.stderr, new RegExp(`^rnnlab ${args[0]}: --beam: expected an integer in \\[1, 10000\\], got '${bad}'`))
      t.is(r.stderr.trim().split('\n').length, 1)
    }
    for (const [flag, value] of [
      ['--temperature', '0.5'],
      ['--top-k', '3'],
      ['--seed', '1'],
      ...(args[0] === 'sample' ? [['--count', '3']] : []),
    ]) {
      const r = cli([...args, '--beam', '3', flag, value])
      t.is(r.status, 2, r.stderr)
      t.regex(r.stderr, new RegExp(`--beam 3 cannot be combined with ${flag} ${value}`))
      t.is(r.stderr.trim().split('\n').length, 1)
    }
    t.regex(cli([args[0], '--help']).stdout, /--beam K/)
  }
})
