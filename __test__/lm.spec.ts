import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import * as path from 'node:path'

import test from 'ava'

import {
  CHAR_LM_COURSE_SETUP,
  CHAR_LM_DEFAULTS,
  CharLanguageModel,
  type FitProgress,
  vocabularyOf,
} from '../dist/index.js'
import { fixture, tempDir } from './helpers.js'

const SONNETS = readFileSync(fixture('shakespeare.txt'), 'utf8')
const TEXT = SONNETS.slice(0, 20_000)
const small = () => new CharLanguageModel({ cell: 'lstm', layers: 2, hidden: 32, dropout: 0.1, seed: 1 })
const fitOptions = { batchSize: 16, seqLength: 32, lr: 0.01, validation: 0.1, chunkSeconds: 0.02 }

test('fit trains off the JS thread: timers fire, loss falls, validation is reported', async (t) => {
  const model = small()
  let ticks = 0
  const timer = setInterval(() => ticks++, 1)
  const progress: number[] = []
  const history = await model.fit(TEXT, { ...fitOptions, epochs: 2, onProgress: (p) => progress.push(p.loss) })
  clearInterval(timer)
  t.true(ticks > 0, 'the event loop ran during training')
  t.is(history.stopped, 'epochs')
  t.is(history.epochs, 2)
  t.is(history.valLoss.length, 2)
  t.true(history.valLoss[1] < history.valLoss[0], `validation ${history.valLoss}`)
  t.true(history.valLoss[1] < Math.log(vocabularyOf(TEXT).length) - 0.5)
  t.true(history.charsPerSecond > 0)
  t.true(progress.length >= 2)
})

test('the epoch loss is the mean over the epoch, whatever the chunk size (issue 13, finding 10)', async (t) => {
  // it was the mean of the epoch's last chunk of about chunkSeconds: a different number each run
  const epochLosses = async (chunkSeconds: number) => {
    const reported: number[] = []
    const history = await small().fit(TEXT, {
      ...fitOptions,
      epochs: 2,
      chunkSeconds,
      onProgress: (p) => {
        if (p.epochEnd) reported.push(p.epochLoss!)
        else t.is(p.epochLoss, undefined)
      },
    })
    t.deepEqual(history.epochLoss, reported)
    return reported
  }
  const fine = await epochLosses(0.001)
  const coarse = await epochLosses(3600)
  t.is(fine.length, 2)
  t.true(fine.every(Number.isFinite), `${fine}`)
  t.deepEqual(fine, coarse)
})

test('an AbortSignal stops training cleanly with a checkpoint, and training resumes exactly', async (t) => {
  const dir = tempDir('lm')
  try {
    const ckpt = path.join(dir, 'run.safetensors')
    // uninterrupted reference: exactly 2 epochs
    const ref = small()
    await ref.fit(TEXT, { ...fitOptions, epochs: 2 })
    // interrupted after the first chunk, then resumed to 2 epochs
    const ac = new AbortController()
    const a = small()
    let h1: FitProgress | undefined
    // an abort rejects with an AbortError, as `fetch` does, after writing the checkpoint
    await t.throwsAsync(
      a.fit(TEXT, {
        ...fitOptions,
        epochs: 2,
        checkpoint: ckpt,
        signal: ac.signal,
        onProgress: (p) => {
          h1 = p
          ac.abort()
        },
      }),
      { name: 'AbortError', code: 'ABORT_ERR' },
    )
    t.true(h1 !== undefined && h1.step > 0 && h1.epoch < 2)
    t.true(existsSync(ckpt))
    const b = small()
    const h2 = await b.fit(TEXT, { ...fitOptions, epochs: 2, checkpoint: ckpt, resume: true })
    t.is(h2.stopped, 'epochs')
    t.deepEqual(b.logits('Shall I compare'), ref.logits('Shall I compare'))
    // resuming a run that already reached its target trains nothing more
    const c = small()
    const h3 = await c.fit(TEXT, { ...fitOptions, epochs: 2, checkpoint: ckpt, resume: true })
    t.is(h3.steps, 0)
    t.deepEqual(c.logits('Shall I compare'), ref.logits('Shall I compare'))
    // the aborted model is still usable
    t.is(a.generate({ prompt: 'Thy', length: 20, seed: 1 }).length, 20)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('generate is seeded, validates the prompt, and survives save/load', async (t) => {
  const model = small()
  await model.fit(TEXT, { ...fitOptions, epochs: 1 })
  const opts = { prompt: 'Shall I compare thee', length: 100, temperature: 0.8, seed: 7 }
  const a = model.generate(opts)
  t.is(a, model.generate(opts))
  t.is(Array.from(a).length, 100)
  t.not(a, model.generate({ ...opts, seed: 8 }))
  t.is(model.generate({ ...opts, temperature: 0 }), model.generate({ ...opts, topK: 1, seed: 3 }))
  const err = t.throws(() => model.generate({ prompt: 'Shall I ☃' }))
  t.is((err as NodeJS.ErrnoException).code, 'ERR_INVALID_ARG')
  t.regex(err!.message, /prompt.*'☃'/)
  t.throws(() => model.generate({ length: -1 }), { message: /length/ })
  const dir = tempDir('lm')
  try {
    const file = path.join(dir, 'model.safetensors')
    model.save(file)
    const loaded = CharLanguageModel.load(file)
    t.is(loaded.vocab, model.vocab)
    t.is(loaded.generate(opts), a)
    t.deepEqual(loaded.info?.hidden, [32, 32])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('bad options are reported with the option name', async (t) => {
  t.throws(() => new CharLanguageModel({ hidden: [8, 8], layers: 3 }), { message: /hidden: expected 3 sizes/ })
  t.throws(() => new CharLanguageModel({ dropout: 1.5 }), { message: /dropout/ })
  const m = small()
  await t.throwsAsync(m.fit(TEXT, { batchSize: 0 }), { message: /batchSize/ })
  await t.throwsAsync(m.fit('abcabc', { seqLength: 50, validation: 0 }), { message: /do not fill one batch/ })
})

test('rnnlab train --course is the course set-up over the defaults; flags given with it win (issue 13, finding 11)', (t) => {
  const dir = tempDir('lm')
  try {
    const textFile = path.join(dir, 'sonnets.txt')
    writeFileSync(textFile, TEXT)
    const train = (...flags: string[]) =>
      execFileSync(
        process.execPath,
        [
          'bin/rnnlab.js',
          'train',
          '--text',
          textFile,
          '--out',
          path.join(dir, 'm.safetensors'),
          '--epochs',
          '1',
        ].concat(['--hidden', '16', '--seq-length', '10'], flags),
        { encoding: 'utf8' },
      )
    const batchesPerEpoch = (out: string) => Number(/windows, (\d+) batches\/epoch/.exec(out)?.[1])
    const course = train('--course')
    t.regex(course, /lstm 16×16, .*; windows, \d+ batches\/epoch/)
    t.regex(course, /Epoch 1\/1 {2}loss \d\.\d{4} {2}val \d\.\d{4}/)
    // batches of CHAR_LM_COURSE_SETUP.batchSize: a quarter of the batches of 32
    const smaller = train('--course', '--batch-size', String(CHAR_LM_COURSE_SETUP.batchSize / 4))
    t.true(batchesPerEpoch(smaller) >= 4 * batchesPerEpoch(course))
    t.true(batchesPerEpoch(smaller) < 4 * (batchesPerEpoch(course) + 1))
    t.regex(train(), /; tbptt, \d+ batches\/epoch/)
    t.is(CHAR_LM_DEFAULTS.mode, 'tbptt')
    t.is(CHAR_LM_COURSE_SETUP.mode, 'windows')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('rnnlab train and rnnlab generate: same seed, same text', (t) => {
  const dir = tempDir('lm')
  try {
    const textFile = path.join(dir, 'sonnets.txt')
    writeFileSync(textFile, TEXT)
    const model = path.join(dir, 'model.safetensors')
    const plot = path.join(dir, 'loss.svg')
    const out = execFileSync(
      process.execPath,
      [
        'bin/rnnlab.js',
        'train',
        '--text',
        textFile,
        '--out',
        model,
        '--epochs',
        '2',
        '--hidden',
        '24',
        '--batch-size',
        '16',
        '--seq-length',
        '20',
        '--plot',
        plot,
        '--quiet',
      ],
      { encoding: 'utf8' },
    )
    t.regex(out, /wrote .*model\.safetensors: 2 epochs, \d+ steps \(epochs\).*validation \d\.\d+ nats\/char/)
    t.regex(readFileSync(plot, 'utf8'), /^<svg/)
    const gen = (seed: string) =>
      execFileSync(
        process.execPath,
        [
          'bin/rnnlab.js',
          'generate',
          '--model',
          model,
          '--prompt',
          'Shall I',
          '--length',
          '80',
          '--temperature',
          '0.8',
          '--seed',
          seed,
        ],
        { encoding: 'utf8' },
      )
    const a = gen('5')
    t.true(a.startsWith('Shall I'))
    t.is(Array.from(a).length, 'Shall I'.length + 80 + 1)
    t.is(gen('5'), a)
    t.not(gen('6'), a)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a diverging run stops with ERR_DIVERGED and keeps the last good checkpoint', async (t) => {
  const dir = tempDir('lm')
  try {
    const ckpt = path.join(dir, 'run.safetensors')
    await small().fit(TEXT, { ...fitOptions, epochs: 1, checkpoint: ckpt })
    const good = readFileSync(ckpt)
    const wild = small()
    const err = await t.throwsAsync(
      wild.fit(TEXT, { ...fitOptions, epochs: 1, optimizer: 'sgd', lr: 1e300, clip: {}, checkpoint: ckpt }),
    )
    t.is((err as NodeJS.ErrnoException).code, 'ERR_DIVERGED')
    t.regex(err!.message, /loss became/)
    t.deepEqual(readFileSync(ckpt), good)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a text file trains as its text does (streamed by the core), resumes from it, and bad files are named', async (t) => {
  const dir = tempDir('lm-file')
  try {
    const file = path.join(dir, 'sonnets.txt')
    writeFileSync(file, TEXT)
    const fromText = small()
    await fromText.fit(TEXT, { ...fitOptions, epochs: 1 })
    const fromFile = small()
    const h = await fromFile.fit({ file }, { ...fitOptions, epochs: 1 })
    t.is(h.stopped, 'epochs')
    t.deepEqual(fromFile.corpus, fromText.corpus)
    t.is(fromFile.corpus!.train + fromFile.corpus!.validation, Array.from(TEXT).length)
    t.is(fromFile.vocab, vocabularyOf(TEXT))
    const sample = { prompt: 'Shall I', length: 60, seed: 4 }
    t.is(fromFile.generate(sample), fromText.generate(sample), 'same weights')
    // resume a file run from its checkpoint: 1 + 1 epochs = 2 epochs straight
    const ckpt = path.join(dir, 'run.safetensors')
    const straight = small()
    await straight.fit({ file }, { ...fitOptions, epochs: 2 })
    const first = small()
    await first.fit({ file }, { ...fitOptions, epochs: 1, checkpoint: ckpt })
    const resumed = small()
    await resumed.fit({ file }, { ...fitOptions, epochs: 2, checkpoint: ckpt, resume: true })
    t.is(resumed.generate(sample), straight.generate(sample), 'resumed = straight')
    // errors name the file and the place
    const missing = path.join(dir, 'missing.txt')
    await t.throwsAsync(small().fit({ file: missing }, fitOptions), { message: /missing\.txt.*cannot open/ })
    const latin1 = path.join(dir, 'latin1.txt')
    writeFileSync(latin1, Buffer.from('caf\xe9 au lait\n', 'latin1'))
    await t.throwsAsync(small().fit({ file: latin1 }, fitOptions), {
      message: /latin1\.txt: not UTF-8 text: invalid byte 0xe9 at byte 3 \(line 1\)/,
    })
    const other = path.join(dir, 'other.txt')
    writeFileSync(other, TEXT.replace(/e/g, 'a'))
    await t.throwsAsync(small().fit({ file: other }, { ...fitOptions, epochs: 2, checkpoint: ckpt, resume: true }), {
      message: /differs/,
    })
    await t.throwsAsync(small().fit({ file: '' }, fitOptions), { instanceOf: TypeError })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a 100 MB corpus file is held once, at one byte per character', async (t) => {
  if (process.platform !== 'linux') return t.pass('peak memory is read from /proc (Linux)')
  const dir = tempDir('lm-big')
  try {
    const file = path.join(dir, 'big.txt')
    const block = Buffer.from(SONNETS)
    const copies = Math.ceil(100e6 / block.length)
    writeFileSync(file, Buffer.concat(Array(copies).fill(block)))
    // a fresh process, so that its peak RSS is this run's alone
    const script = `
      const { CharLanguageModel } = require(${JSON.stringify(path.resolve('dist/index.js'))})
      // peak resident set of this process in KiB (getrusage's maxRSS survives exec, VmHWM does not)
      const hwm = () => Number(/VmHWM:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1])
      const before = hwm()
      const m = new CharLanguageModel({ layers: 1, hidden: 8 })
      m.fit({ file: ${JSON.stringify(file)} }, { seconds: 0.01, batchSize: 8, seqLength: 8, validation: 0.1 }).then(() => {
        console.log(JSON.stringify({ before, after: hwm(), corpus: m.corpus }))
      })`
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }))
    const chars = copies * Array.from(SONNETS).length
    t.is(out.corpus.train + out.corpus.validation, chars)
    const growthMB = ((out.after - out.before) * 1024) / 1e6
    t.log(
      `${(chars / 1e6).toFixed(1)} M characters: peak RSS ${((out.before * 1024) / 1e6).toFixed(0)} → ${((out.after * 1024) / 1e6).toFixed(0)} MB (+${growthMB.toFixed(0)} MB)`,
    )
    t.true(
      growthMB < (1.35 * chars) / 1e6,
      `peak RSS grew ${growthMB.toFixed(0)} MB for ${(chars / 1e6).toFixed(0)} MB of text`,
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
