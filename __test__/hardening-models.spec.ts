// Hardening of the model-level native entry points (the name trainer, the Dinosaurus helpers,
// the character LM, the jazz model): garbage of every kind — wrong types, negative and
// fractional numbers (napi's own u32 conversion would wrap -1 to 4294967295), NaN/Infinity,
// sizes that would need terabytes, out-of-range indices — must give an Error with a message,
// or succeed; never a crash (which would kill this worker), abort or hang. Each property runs
// in this process, so a crash fails the run.
import test from 'ava'
import { fc } from './property.js'

import { native } from '../dist/index.js'

const RUNS = 120
const n = native()

/** Garbage for a numeric argument. */
const num = fc.oneof(
  fc.integer({ min: -3, max: 8 }),
  fc.constantFrom<unknown>(
    -1,
    0.5,
    NaN,
    Infinity,
    -Infinity,
    2 ** 31,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 53,
    1e300,
    null,
    undefined,
    '3',
    [],
    {},
    true,
  ),
)

/** Calls f; returns 'ok' or 'error'; anything but an Error with a message fails. */
function outcome(f: () => unknown): 'ok' | 'error' {
  try {
    f()
    return 'ok'
  } catch (e) {
    if (!(e instanceof Error) || !e.message) throw new Error(`threw a non-Error or empty message: ${String(e)}`)
    if (/panicked|internal error/i.test(e.message)) throw new Error(`a panic reached JS: ${e.message}`)
    return 'error'
  }
}

async function outcomeAsync(f: () => Promise<unknown>): Promise<'ok' | 'error'> {
  try {
    await f()
    return 'ok'
  } catch (e) {
    if (!(e instanceof Error) || !e.message) throw new Error(`threw a non-Error or empty message: ${String(e)}`)
    return 'error'
  }
}

test('NativeNameTrainer: garbage constructor arguments and sample options are refused', (t) => {
  fc.assert(
    fc.property(
      num,
      num,
      num,
      num,
      fc.constantFrom<unknown>('\nab', 'ab', '', '\n\n', 5, null),
      fc.constantFrom<unknown>([[1, 2]], [], [[9]], [new Uint32Array([1, 2])], null, 'x'),
      (hidden, lr, clip, seed, vocab, ex) => {
        const examples = Array.isArray(ex) ? ex.map((e) => (Array.isArray(e) ? Uint32Array.from(e) : e)) : ex
        const r = outcome(
          () =>
            new n.NativeNameTrainer(
              vocab as string,
              examples as Uint32Array[],
              { hidden, learningRate: lr, clip, shuffleSeed: seed } as never,
            ),
        )
        // undefined and null mean the default hidden size (50)
        const valid =
          hidden === undefined ||
          hidden === null ||
          (Number.isInteger(hidden) && (hidden as number) >= 1 && (hidden as number) <= 2 ** 16)
        if (r === 'ok' && !valid) {
          throw new Error(`hidden ${String(hidden)} accepted`)
        }
      },
    ),
    { numRuns: RUNS },
  )
  const tr = new n.NativeNameTrainer('\nab', [Uint32Array.from([1, 2])], { hidden: 4 })
  fc.assert(
    fc.property(
      num,
      num,
      num,
      num,
      fc.constantFrom<unknown>(new Uint32Array([1]), new Uint32Array([7]), new Uint32Array(0), [1], null),
      (seed, temperature, maxLength, count, prefix) => {
        outcome(() => tr.sample({ seed, temperature, maxLength, count, prefix } as never))
        outcome(() => tr.sampleCourse(seed as number))
      },
    ),
    { numRuns: RUNS },
  )
  t.throws(() => new n.NativeNameTrainer('\nab', [Uint32Array.from([1, 2])], { hidden: -1 } as never), {
    message: /hidden: expected an integer in 1..=65536, got -1/,
  })
  t.throws(() => new n.NativeNameTrainer('\nab', [Uint32Array.from([1, 2])], { hidden: 2 ** 31 } as never), {
    message: /hidden/,
  })
  t.throws(() => tr.sample({ seed: 0, temperature: 1, maxLength: 5, count: 1, prefix: Uint32Array.from([9]) }), {
    message: /prefix\[0\].*9/,
  })
  // napi's u32 used to turn -1 into 4 294 967 295 iterations (and a 32 GB loss buffer)
  for (const bad of [-1, 0.5, NaN, Infinity, 2 ** 32, 1e12])
    t.throws(() => tr.run(bad), { message: /iterations: expected an integer/ }, String(bad))
})

test('Dinosaurus helpers: garbage sizes, indices and records are refused', (t) => {
  fc.assert(
    fc.property(num, num, num, num, (a, x, y, seed) => {
      const r = outcome(() => n.initializeParameters(a as number, x as number, y as number, seed as number))
      const ok = [a, x, y].every((v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 64)
      if (
        ok &&
        (seed === undefined ||
          seed === null ||
          (Number.isInteger(seed) && (seed as number) >= 0 && (seed as number) < 2 ** 32)) &&
        r !== 'ok'
      ) {
        throw new Error(`valid sizes ${a},${x},${y} refused`)
      }
    }),
    { numRuns: RUNS },
  )
  const p = n.initializeParameters(5, 4, 4, 1)
  fc.assert(
    fc.property(
      fc.array(fc.oneof(num, fc.constant(null)), { maxLength: 6 }),
      fc.array(num, { maxLength: 6 }),
      num,
      (X, Y, lr) => {
        const a0 = { shape: [5, 1], data: new Float64Array(5) }
        const r = outcome(() => n.optimize(X as never, Y as never, a0, p, lr as number))
        const valid =
          X.length === Y.length &&
          X.length > 0 &&
          [...X].every(
            (v) => v === null || v === undefined || (Number.isInteger(v) && (v as number) >= 0 && (v as number) < 4),
          ) &&
          Y.every((v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) < 4) &&
          (lr === undefined || lr === null || Number.isFinite(lr)) // lr is optional (course: 0.01)
        if (r === 'ok' && !valid)
          throw new Error(`optimize(${JSON.stringify(X)}, ${JSON.stringify(Y)}, lr ${String(lr)}) accepted`)
        outcome(() => n.sampleIndices(p, X[0] as number, Y[0] as number))
        outcome(() => n.clip({ dWax: p.Wax, dWaa: p.Waa, dWya: p.Wya, db: p.b, dby: p.by }, lr as number))
      },
    ),
    { numRuns: RUNS },
  )
  t.throws(
    () =>
      n.optimize(
        [null, 1],
        [1, 2],
        { shape: [5, 1], data: new Float64Array(5) },
        { ...p, Waa: { shape: [5, 4], data: new Float64Array(20) } },
      ),
    { message: /Waa|waa/ },
  )
})

test('NativeCharLm: garbage architecture, training and generation options are refused', async (t) => {
  const cell = fc.constantFrom<unknown>('lstm', 'rnn', 'gru', '', 5, null)
  const hidden = fc.oneof(
    fc.array(num, { maxLength: 3 }),
    fc.constantFrom<unknown>([2 ** 20, 2 ** 20], [0], [], null, 7),
  )
  fc.assert(
    fc.property(
      cell,
      hidden,
      num,
      num,
      fc.constantFrom<unknown>('float32', 'float64', 'f16', null, undefined),
      fc.constantFrom<unknown>('abc', '', 'a', 'aa', null),
      num,
      (c, h, emb, dropout, dtype, vocab, seed) => {
        outcome(() => new n.NativeCharLm({ cell: c, hidden: h, embedding: emb, dropout, dtype, vocab, seed } as never))
      },
    ),
    { numRuns: RUNS },
  )
  const lm = new n.NativeCharLm({ cell: 'lstm', hidden: [6], dropout: 0, vocab: 'ab c', seed: 0 })
  const text = 'ab c ab ca bc '.repeat(20)
  fc.assert(
    fc.property(
      fc.constantFrom<unknown>('tbptt', 'windows', 'x', null),
      num,
      num,
      num,
      fc.constantFrom<unknown>('adam', 'sgd', 'rmsprop'),
      num,
      num,
      num,
      (mode, seqLength, stride, batchSize, optimizer, lr, validation, clip) => {
        outcome(() =>
          lm.startTraining(text, {
            mode,
            seqLength,
            stride,
            batchSize,
            optimizer,
            lr,
            decay: 0,
            clipValue: clip,
            validation,
            seed: 0,
          } as never),
        )
      },
    ),
    { numRuns: RUNS },
  )
  fc.assert(
    fc.property(
      fc.constantFrom<unknown>('ab', 'xyz', '', 'é', null),
      num,
      num,
      num,
      num,
      (prompt, length, temperature, topK, seed) => {
        const r = outcome(() => lm.generate({ prompt, length, temperature, topK, seed } as never))
        if (r === 'ok' && typeof length === 'number' && length > 1e7) throw new Error(`length ${length} accepted`)
      },
    ),
    { numRuns: RUNS },
  )
  t.throws(() => lm.generate({ prompt: 'xyz', length: 5, temperature: 1, topK: 0, seed: 0 }), { message: /x/ })
  lm.startTraining(text, {
    mode: 'tbptt',
    seqLength: 5,
    stride: 1,
    batchSize: 4,
    optimizer: 'adam',
    lr: 0.01,
    decay: 0,
    validation: 0.1,
    seed: 0,
  })
  t.is(await outcomeAsync(() => lm.train(3, 10)), 'ok')
  for (const [b, s] of [
    [-1, 1],
    [NaN, 1],
    [1, NaN],
    [1, -1],
    [2 ** 53, 0.01],
  ])
    await outcomeAsync(() => lm.train(b, s))
})

test('NativeCharLm: garbage corpus files and paths are refused', async (t) => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const dir = mkdtempSync(join(tmpdir(), 'rnnlab-garbage-'))
  try {
    const files: unknown[] = [dir, join(dir, 'none.txt'), '', null, 5, {}, '\0']
    for (const [name, bytes] of [
      ['empty', ''],
      ['one', 'aaaa'],
      ['bad', '\xff\xfe'],
      ['cut', '\xe2\x82'],
      ['ok', 'ab c ab ca'],
    ] as const) {
      writeFileSync(join(dir, name), Buffer.from(bytes, 'latin1'))
      files.push(join(dir, name))
    }
    const options = {
      mode: 'tbptt',
      seqLength: 2,
      stride: 1,
      batchSize: 1,
      optimizer: 'adam',
      lr: 0.01,
      decay: 0,
      validation: 0,
      seed: 0,
    }
    for (const f of files) {
      await outcomeAsync(() => n.vocabularyOfFile(f as string))
      const lm = new n.NativeCharLm({ cell: 'lstm', hidden: [4], dropout: 0, vocab: 'ab c', seed: 0 })
      const r = await outcomeAsync(() => lm.startTrainingFile(f as string, options as never))
      t.is(r, f === join(dir, 'ok') || f === join(dir, 'one') ? 'ok' : 'error', String(f))
      t.is(
        await outcomeAsync(() => lm.startTrainingFile(f as string, options as never, join(dir, 'ok'))),
        'error',
        'a text file is no checkpoint',
      )
    }
    t.is(await n.vocabularyOfFile(join(dir, 'ok')), ' abc')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('NativeJazzModel: garbage corpus, sizes and sampler options are refused', async (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom<unknown>([0, 1, 2, 1, 0, 2, 1], [], [5, 99], [-1], null),
      num,
      num,
      num,
      num,
      num,
      (corpus, nValues, nA, tX, m, seed) => {
        const r = outcome(() => new n.NativeJazzModel({ corpus, nValues, nA, tX, m, seed } as never))
        const big = [nValues, nA, tX, m].some((v) => typeof v === 'number' && (v > 1e6 || v < 0))
        if (r === 'ok' && big) throw new Error(`sizes ${[nValues, nA, tX, m].map(String)} accepted`)
      },
    ),
    { numRuns: RUNS },
  )
  const jm = new n.NativeJazzModel({ corpus: [0, 1, 2, 1, 0, 2, 1, 1, 2], nValues: 3, nA: 4, tX: 3, m: 2, seed: 0 })
  fc.assert(
    fc.property(num, num, num, (tY, temperature, seed) => {
      outcome(() => jm.predictAndSample(tY as number, temperature as number, seed as number))
      outcome(() => jm.sampler(temperature as number, seed as number).next())
    }),
    { numRuns: RUNS },
  )
  t.is(await outcomeAsync(() => jm.fit(2)), 'ok')
  for (const bad of [-1, 0.5, NaN, 2 ** 32])
    t.throws(() => jm.fit(bad), { message: /epochs: expected an integer/ }, String(bad))
  t.throws(() => new n.NativeJazzModel({ corpus: [0, 1, 2], nValues: 3, nA: -1, tX: 3, m: 2, seed: 0 }))
  t.throws(() => new n.NativeJazzModel({ corpus: [0, 1, 2], nValues: 3, nA: 2 ** 31, tX: 3, m: 2, seed: 0 }))
})
