// The GRU cell of the character model (issue 14): trained from the API and the CLI, sampled
// (and beam-searched), saved and loaded, resumed bit for bit, read from a torch.nn.GRU state_dict, and bad cell
// names refused by name.
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import * as path from 'node:path'

import test from 'ava'

import { CHAR_LM_CELLS, CharLanguageModel, type FitProgress } from '../dist/index.js'
import { cli } from './cli-helpers'
import { fixture, tempDir, testData } from './helpers.js'

const TEXT = readFileSync(fixture('shakespeare.txt'), 'utf8').slice(0, 20_000)
const small = () => new CharLanguageModel({ cell: 'gru', layers: 2, hidden: 32, dropout: 0.1, seed: 1 })
const fitOptions = { batchSize: 16, seqLength: 32, learningRate: 0.01, validation: 0.1, chunkSeconds: 0.02 }

test('a GRU trains from the API: the loss falls, 3 gates per unit, generation is seeded and survives save/load', async (t) => {
  const model = small()
  const losses: number[] = []
  await model.fit(TEXT, { ...fitOptions, epochs: 2, onProgress: (p) => losses.push(p.loss) })
  const info = model.info!
  t.is(info.cell, 'gru')
  const v = info.vocab.length
  // W_ih (3H, I), W_hh (3H, H), two biases (3H) per layer; the dense head (V, H) + (V)
  t.is(info.numParams, 3 * 32 * (v + 32 + 2) + 3 * 32 * (32 + 32 + 2) + v * 32 + v)
  t.true(losses[losses.length - 1] < Math.log(v) - 0.5, `loss ${losses.join(' ')}`)
  const val = model.validate()
  t.true(val !== null && val < Math.log(v))
  const opts = { prompt: 'Shall I compare thee', length: 100, temperature: 0.8, seed: 7 }
  const a = model.generate(opts)
  t.is(Array.from(a).length, 100)
  t.is(model.generate(opts), a)
  t.not(model.generate({ ...opts, seed: 8 }), a)
  t.is(model.generate({ ...opts, temperature: 0 }), model.generate({ ...opts, topK: 1, seed: 3 }))
  // beam search runs on the same batch-1 step: width 1 is greedy, wider is at least as likely
  const greedy = model.generate({ prompt: 'Shall I', length: 30, temperature: 0 })
  const [beam1] = model.beamSearch({ beamWidth: 1, prompt: 'Shall I', length: 30 })
  t.is(beam1.text, greedy)
  const [beam4] = model.beamSearch({ beamWidth: 4, prompt: 'Shall I', length: 30 })
  t.true(beam4.logProb >= beam1.logProb - 1e-9)
  const dir = tempDir('gru')
  try {
    const file = path.join(dir, 'gru.safetensors')
    model.save(file)
    const loaded = CharLanguageModel.load(file)
    t.is(loaded.info?.cell, 'gru')
    t.deepEqual(loaded.info?.hidden, [32, 32])
    t.is(loaded.generate(opts), a)
    t.deepEqual(loaded.logits('Shall I'), model.logits('Shall I'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('an aborted GRU run resumes bit-identically', async (t) => {
  const dir = tempDir('gru')
  try {
    const ckpt = path.join(dir, 'run.safetensors')
    const ref = small()
    await ref.fit(TEXT, { ...fitOptions, epochs: 2 })
    const ac = new AbortController()
    let h1: FitProgress | undefined
    await t.throwsAsync(
      small().fit(TEXT, {
        ...fitOptions,
        epochs: 2,
        checkpoint: ckpt,
        signal: ac.signal,
        onProgress: (p) => {
          h1 = p
          ac.abort()
        },
      }),
      { name: 'AbortError' },
    )
    t.true(h1 !== undefined && h1.step > 0 && h1.epoch < 2)
    const b = small()
    const h2 = await b.fit(TEXT, { ...fitOptions, epochs: 2, checkpoint: ckpt, resume: true })
    t.is(h2.stopped, 'epochs')
    t.deepEqual(b.logits('Shall I compare'), ref.logits('Shall I compare'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a bad cell is refused by name, listing the cells', async (t) => {
  t.deepEqual([...CHAR_LM_CELLS], ['lstm', 'gru', 'rnn'])
  const err = t.throws(() => new CharLanguageModel({ cell: 'lstmm' as never }))
  t.is((err as NodeJS.ErrnoException).code, 'ERR_INVALID_ARG')
  t.is(err!.message, "cell: expected one of lstm, gru, rnn, got 'lstmm'")
  const r = cli(['train', '--text', fixture('shakespeare.txt'), '--out', '/tmp/never.safetensors', '--cell', 'lstmm'])
  t.is(r.status, 2)
  t.is(r.stdout, '')
  t.is(r.stderr, "rnnlab train: --cell: expected one of lstm, gru, rnn, got 'lstmm'; see 'rnnlab train --help'\n")
  t.regex(cli(['train', '--help']).stdout, /--cell lstm\|gru\|rnn/)
})

test('rnnlab train --cell gru and rnnlab generate on its file', (t) => {
  const dir = tempDir('gru')
  try {
    const textFile = path.join(dir, 'sonnets.txt')
    writeFileSync(textFile, TEXT)
    const model = path.join(dir, 'gru.safetensors')
    const train = cli([
      'train',
      '--text',
      textFile,
      '--out',
      model,
      '--cell',
      'gru',
      '--epochs',
      '1',
      '--hidden',
      '24',
      '--batch-size',
      '16',
      '--seq-length',
      '20',
      '--quiet',
    ])
    t.is(train.status, 0, train.stderr)
    t.regex(train.stdout, /wrote .*gru\.safetensors: 1 epochs?, \d+ steps/)
    t.is(CharLanguageModel.load(model).info?.cell, 'gru')
    const gen = (seed: string) =>
      cli(['generate', '--model', model, '--prompt', 'Shall I', '--length', '60', '--seed', seed]).stdout
    const a = gen('5')
    t.true(a.startsWith('Shall I'))
    t.is(Array.from(a).length, 'Shall I'.length + 60 + 1)
    t.is(gen('5'), a)
    t.not(gen('6'), a)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

/** A bare safetensors file (F64, no rnnlab metadata), as torch's `save_file(state_dict)` writes. */
function safetensors(tensors: Record<string, { shape: number[]; data: number[] }>): Buffer {
  const header: Record<string, unknown> = {}
  const parts: Buffer[] = []
  let offset = 0
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = Buffer.from(new Float64Array(t.data).buffer)
    header[name] = { dtype: 'F64', shape: t.shape, data_offsets: [offset, offset + bytes.length] }
    parts.push(bytes)
    offset += bytes.length
  }
  let json = JSON.stringify(header)
  json += ' '.repeat((8 - (json.length % 8)) % 8)
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(json.length))
  return Buffer.concat([len, Buffer.from(json), ...parts])
}

test('a torch.nn.GRU state_dict loads with its vocabulary and gives torch’s logits, in the API and the CLI', (t) => {
  const reference = JSON.parse(readFileSync(testData('gru_torch_reference.json'), 'utf8'))
  const dir = tempDir('gru')
  try {
    for (const c of reference.cases) {
      const file = path.join(dir, `${c.module}.safetensors`)
      writeFileSync(file, safetensors(c.tensors))
      const model = CharLanguageModel.load(file, { vocab: c.vocab, dtype: 'float64' })
      t.is(model.info?.cell, 'gru')
      const got = model.logits(c.text)
      const want: number[][] = c.logits
      let worst = 0
      got.forEach((row: ArrayLike<number>, i: number) => {
        Array.from(row).forEach((x, j) => {
          worst = Math.max(worst, Math.abs(x - want[i][j]))
        })
      })
      t.true(worst < 1e-9, `${c.module}: ${worst}`)
      const r = cli(['generate', '--model', file, '--vocab', c.vocab, '--prompt', 'The', '--length', '20'])
      t.is(r.status, 0, r.stderr)
      t.is(Array.from(r.stdout).length, 3 + 20 + 1)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
