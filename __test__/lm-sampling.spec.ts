// Batch-1 sampling on two cores (issue 15): `generate` on a model large enough (a 2×128 LSTM,
// ≈ 0.8 MB of float32 weights) runs each layer's two halves on two threads; the text must be
// the one a single thread draws, bit for bit, through the API and the CLI, in float32 and
// float64, for the LSTM and the GRU.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { CharLanguageModel } from '../dist/index.js'
import { CLI, tmp } from './cli-helpers.js'
import { fixture } from './helpers.js'

const dir = tmp()

test('generate draws the same text on one thread and on two', async (t) => {
  const text = readFileSync(fixture('shakespeare.txt'), 'utf8').slice(0, 6000)
  for (const [cell, dtype] of [
    ['lstm', 'float32'],
    ['gru', 'float64'],
  ] as const) {
    const m = new CharLanguageModel({ cell, layers: 2, hidden: 128, dtype, seed: 4, dropout: 0 })
    await m.fit(text, { epochs: 1, batchSize: 16, seqLength: 40, validation: 0 })
    const file = join(dir, `${cell}-${dtype}.safetensors`)
    m.save(file)
    const args = [
      'generate',
      '--model',
      file,
      '--prompt',
      'Thou',
      '--length',
      '1500',
      '--temperature',
      '1',
      '--seed',
      '9',
    ]
    const run = (threads: string) =>
      spawnSync(process.execPath, [CLI, ...args], {
        encoding: 'utf8',
        env: { ...process.env, RAYON_NUM_THREADS: threads },
      })
    const one = run('1')
    t.is(one.status, 0, one.stderr)
    const two = run('2')
    t.is(two.status, 0, two.stderr)
    t.is(two.stdout, one.stdout, `${cell} ${dtype}`)
    // the API in this process (its own thread count) draws the same text as the CLI
    const api = m.generate({ prompt: 'Thou', length: 1500, temperature: 1, seed: 9 })
    t.is(Array.from(api).length, 1500)
    t.true(one.stdout.includes(api), `${cell} ${dtype}: the CLI printed the API's text`)
  }
})
