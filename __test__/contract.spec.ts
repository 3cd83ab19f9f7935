// The model contract (issue 13, finding 9): the same test body runs against NameModel,
// CharLanguageModel and JazzImproviser. fit with a small budget; one progress shape; abort
// rejects with an AbortError after the last completed step and the model can fit again;
// save/load round trip; temperature 0 is deterministic; a bad option is an error with a code.
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'

import test from 'ava'

import { CharLanguageModel, JazzImproviser, NameModel, type Progress, RandomState, tensor } from '../dist/index.js'
import { fixture, tempDir } from './helpers.js'

const TEXT = readFileSync(fixture('shakespeare.txt'), 'utf8').slice(0, 6_000)

/** What the shared body needs to drive one model class. */
interface Subject<M> {
  name: string
  unit: Progress['unit']
  make(): M
  /** `fit` with the class's budget: `budget` units in total (plus any extra options). */
  fit(model: M, budget: number, options?: Record<string, unknown>): Promise<unknown>
  /** Units trained so far, as `Progress.done` counts them (undefined: the class has no getter). */
  trained(model: M): number | undefined
  /** Generation with temperature 0 and the given seed, as a comparable value. */
  greedy(model: M, seed: number): unknown
  /** Generation with a bad option (must throw an `ERR_INVALID_ARG`). */
  badGeneration(model: M): unknown
  /** save then load (undefined: the class has no save/load yet). */
  roundTrip?: (model: M, file: string) => M
}

const names: Subject<NameModel> = {
  name: 'NameModel',
  unit: 'iterations',
  make: () => NameModel.fromNames(['aardonyx', 'abelisaurus', 'zuniceratops', 'stegosaurus'], { hidden: 16 }),
  fit: (m, budget, options = {}) => m.fit({ iterations: budget, every: 50, ...options }),
  trained: (m) => m.iteration,
  greedy: (m, seed) => m.sample({ temperature: 0, seed, count: 2, prefix: 'st', maxLength: 12 }),
  badGeneration: (m) => m.sample({ temperature: -1 }),
  roundTrip: (m, file) => {
    m.save(file)
    return NameModel.load(file)
  },
}

const lm: Subject<CharLanguageModel> = {
  name: 'CharLanguageModel',
  unit: 'epochs',
  make: () => new CharLanguageModel({ layers: 1, hidden: 16, seed: 1 }),
  fit: (m, budget, options = {}) =>
    m.fit(TEXT, { epochs: budget, batchSize: 8, seqLength: 16, chunkSeconds: 0.01, ...options }),
  trained: () => undefined,
  greedy: (m, seed) => m.generate({ prompt: 'Shall I', length: 40, temperature: 0, seed }),
  badGeneration: (m) => m.generate({ temperature: -1 }),
  roundTrip: (m, file) => {
    m.save(file)
    return CharLanguageModel.load(file)
  },
}

const jazz: Subject<JazzImproviser> = {
  name: 'JazzImproviser',
  unit: 'epochs',
  make: () => JazzImproviser.fromMidi(undefined, { seed: 1, m: 8 }),
  fit: (m, budget, options = {}) => m.fit({ epochs: budget, chunk: 1, ...options }),
  trained: (m) => m.epochsDone,
  greedy: (m, seed) => m.improvise({ temperature: 0, seed }).indices,
  badGeneration: (m) => m.improvise({ temperature: -1 }),
  roundTrip: (m, file) => {
    m.save(file)
    return JazzImproviser.load(file)
  },
}

function contract<M>(s: Subject<M>) {
  test(`${s.name}: fit with a small budget reports the shared progress shape`, async (t) => {
    const model = s.make()
    const seen: Progress[] = []
    await s.fit(model, 2, { onProgress: (p: Progress) => seen.push(p) })
    t.true(seen.length > 0)
    let previous = -Infinity
    for (const p of seen) {
      t.is(p.unit, s.unit)
      t.true(Number.isFinite(p.done) && p.done >= previous, `done ${p.done}`)
      previous = p.done
      t.is(p.total, 2)
      t.is(typeof p.loss, 'number')
      t.true(Number.isFinite(p.rate) && p.rate >= 0, `rate ${p.rate}`)
      t.true(Number.isFinite(p.elapsed) && p.elapsed >= 0)
      t.true(p.eta === undefined || (Number.isFinite(p.eta) && p.eta >= 0), `eta ${p.eta}`)
    }
    t.is(seen[seen.length - 1].done, 2)
    t.is(seen[seen.length - 1].eta, 0)
    const trained = s.trained(model)
    if (trained !== undefined) t.is(trained, 2)
  })

  test(`${s.name}: a seconds budget resolves, and progress says the time left`, async (t) => {
    const model = s.make()
    let last: Progress | undefined
    await s.fit(model, 1_000_000_000, {
      seconds: 0.05,
      onProgress: (p: Progress) => {
        last = p
      },
    })
    t.truthy(last)
    t.true(last!.done < 1_000_000_000)
    t.true(last!.eta !== undefined && last!.eta <= 0.05)
  })

  test(`${s.name}: abort rejects with an AbortError after the last step; the model fits again`, async (t) => {
    const model = s.make()
    const ac = new AbortController()
    let doneAtAbort = -1
    const err = await t.throwsAsync(
      s.fit(model, 1_000_000, {
        signal: ac.signal,
        onProgress: (p: Progress) => {
          doneAtAbort = p.done
          ac.abort()
        },
      }),
    )
    t.is(err?.name, 'AbortError')
    t.is((err as Error & { code?: string }).code, 'ABORT_ERR')
    t.true(doneAtAbort > 0)
    const trained = s.trained(model)
    // the model keeps the state of its last completed step: nothing ran after the abort
    if (trained !== undefined) t.is(trained, doneAtAbort)
    // an already aborted signal rejects before any step
    await t.throwsAsync(s.fit(model, 1_000_000, { signal: AbortSignal.abort() }), { name: 'AbortError' })
    if (trained !== undefined) t.is(s.trained(model), doneAtAbort)
    // and the model can fit again
    const target = Math.ceil(doneAtAbort) + 1
    await s.fit(model, target)
    if (trained !== undefined) t.is(s.trained(model), target)
    t.notThrows(() => s.greedy(model, 0))
  })

  test(`${s.name}: temperature 0 is deterministic whatever the seed`, async (t) => {
    const model = s.make()
    await s.fit(model, 1)
    t.deepEqual(s.greedy(model, 1), s.greedy(model, 2))
  })

  test(`${s.name}: a bad option is an error with a code`, async (t) => {
    const model = s.make()
    await t.throwsAsync(s.fit(model, -1), { code: 'ERR_INVALID_ARG' })
    await t.throwsAsync(s.fit(model, 1, { seconds: -1 }), { code: 'ERR_INVALID_ARG' })
    await s.fit(model, 1)
    t.throws(() => s.badGeneration(model), { code: 'ERR_INVALID_ARG', message: /temperature/ })
  })

  const roundTrip = s.roundTrip
  if (roundTrip) {
    test(`${s.name}: save and load give the same generation`, async (t) => {
      const dir = tempDir('contract')
      try {
        const model = s.make()
        await s.fit(model, 1)
        const loaded = roundTrip(model, join(dir, 'model.safetensors'))
        t.deepEqual(s.greedy(loaded, 0), s.greedy(model, 0))
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })
  }
}

contract(names)
contract(lm)
contract(jazz)

test('NameModel.train is a deprecated alias of fit', async (t) => {
  const a = names.make()
  const b = names.make()
  await a.train({ iterations: 30 })
  await b.fit({ iterations: 30 })
  t.deepEqual(a.parameters(), b.parameters())
})

test("CharLanguageModel: lr is learningRate's old name; contradicting them is an error", async (t) => {
  const a = lm.make()
  const b = lm.make()
  await lm.fit(a, 1, { lr: 0.01 })
  await lm.fit(b, 1, { learningRate: 0.01 })
  t.deepEqual(a.logits('Shall'), b.logits('Shall'))
  await t.throwsAsync(lm.fit(lm.make(), 1, { lr: 0.01, learningRate: 0.02 }), { code: 'ERR_INVALID_ARG' })
})

test('validate() is null without validation data: before fit, after load, with validation 0', async (t) => {
  const dir = tempDir('contract')
  try {
    const model = lm.make()
    t.is(model.validate(), null)
    await lm.fit(model, 1, { validation: 0 })
    t.is(model.validate(), null)
    await lm.fit(model, 1)
    t.is(typeof model.validate(), 'number')
    const file = join(dir, 'lm.safetensors')
    model.save(file)
    t.is(CharLanguageModel.load(file).validate(), null)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('generation vocabulary: topK 1 is greedy everywhere; topK k restricts the draws of names, jazz and text', async (t) => {
  const nm = names.make()
  await nm.fit({ iterations: 50 })
  t.deepEqual(nm.sample({ topK: 1, seed: 3, count: 2 }), nm.sample({ temperature: 0, count: 2 }))
  // topK k: every draw among the k most likely characters. From the zero start state the first
  // draw has one fixed distribution, so a name's first character is one of only k characters.
  const first = (o: { topK?: number }) =>
    new Set(nm.sample({ count: 300, seed: 1, temperature: 1, ...o }).map((n) => n[0]))
  t.true(first({}).size > 3, `without topK: ${[...first({})].join('')}`)
  t.true(first({ topK: 3 }).size <= 3, `topK 3: ${[...first({ topK: 3 })].join('')}`)
  t.deepEqual(nm.sample({ count: 5, seed: 2, topK: nm.vocabulary.size }), nm.sample({ count: 5, seed: 2 }))
  t.throws(() => nm.sample({ topK: -1 }), { code: 'ERR_INVALID_ARG', message: /topK/ })
  const jz = jazz.make()
  await jz.fit({ epochs: 1 })
  t.deepEqual(jz.improvise({ topK: 1, temperature: 1, seed: 3 }).indices, jz.improvise({ seed: 3 }).indices)
  // jazz shares the language model's sampler: topK >= the number of values is no restriction
  // (the same draws), a smaller k restricts them; a bad k is refused with a code
  const all = jz.improvise({ temperature: 1, seed: 3 }).indices
  t.deepEqual(jz.improvise({ topK: jz.nValues, temperature: 1, seed: 3 }).indices, all)
  t.notDeepEqual(jz.improvise({ topK: 2, temperature: 1, seed: 3 }).indices, all)
  t.throws(() => jz.improvise({ topK: -1 }), { code: 'ERR_INVALID_ARG', message: /topK/ })
  const m = lm.make()
  await lm.fit(m, 1)
  t.is(m.generate({ topK: 1, temperature: 1, length: 20, seed: 4 }), m.generate({ temperature: 0, length: 20 }))
})

test('report names do not end in a newline', async (t) => {
  const model = names.make()
  const reported: string[] = []
  await model.fit({ iterations: 3, every: 1, names: 3, onReport: (r) => reported.push(...r.names) })
  t.true(reported.length > 0)
  for (const n of reported) t.false(n.endsWith('\n'), JSON.stringify(n))
})

test('argument errors of the TS layer carry a code (finding 9: "temperature: must be > 0" had none)', (t) => {
  t.throws(() => tensor([2], [1]), { instanceOf: RangeError, code: 'ERR_INVALID_ARG' })
  t.throws(() => tensor('x' as never), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => new RandomState(-1), { instanceOf: RangeError, code: 'ERR_INVALID_ARG' })
  t.throws(() => new CharLanguageModel({ dropout: 2 }), { instanceOf: RangeError, code: 'ERR_INVALID_ARG' })
  t.throws(() => NameModel.fromNames([]), { code: 'ERR_INVALID_ARG' })
  t.throws(() => JazzImproviser.fromMidi(undefined, { tX: 0 }), { code: 'ERR_INVALID_ARG' })
  t.throws(() => new CharLanguageModel().generate(), { code: 'ERR_NOT_TRAINED' })
})

test('load of another model kind names what the file is and what reads it (all three classes)', async (t) => {
  const dir = tempDir('contract-kinds')
  try {
    const files = {
      dinos: join(dir, 'names.safetensors'),
      charlm: join(dir, 'text.safetensors'),
      jazz: join(dir, 'jazz.safetensors'),
    }
    const n = names.make()
    await names.fit(n, 5)
    n.save(files.dinos)
    const l = lm.make()
    await lm.fit(l, 1)
    l.save(files.charlm)
    const j = jazz.make()
    await jazz.fit(j, 1)
    j.save(files.jazz)
    const loaders = {
      dinos: (f: string) => NameModel.load(f),
      charlm: (f: string) => CharLanguageModel.load(f),
      jazz: (f: string) => JazzImproviser.load(f),
    }
    const readers = { dinos: /NameModel\.load/, charlm: /CharLanguageModel\.load/, jazz: /JazzImproviser\.load/ }
    for (const [expected, load] of Object.entries(loaders)) {
      for (const [kind, file] of Object.entries(files)) {
        if (kind === expected) continue
        const err = t.throws(() => load(file), { code: 'ERR_BAD_FILE' })
        t.regex(err!.message, new RegExp(`kind "${kind}"`), `${expected} reading ${kind}`)
        t.regex(err!.message, readers[kind as keyof typeof readers], `${expected} reading ${kind}`)
        t.notRegex(err!.message, /vocab/, `${expected} reading ${kind}: not the misleading "no vocab" message`)
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a misspelt option name is refused by name in every class, never ignored', async (t) => {
  const bad = { code: 'ERR_INVALID_ARG' }
  const misspelt: [string, () => unknown, RegExp][] = [
    ['NameModel', () => NameModel.fromNames(['ab'], { hiden: 8 } as never), /NameModel: unknown option 'hiden'/],
    ['CharLanguageModel', () => new CharLanguageModel({ cel: 'gru' } as never), /unknown option 'cel'/],
    ['CharLanguageModel.load', () => CharLanguageModel.load('x', { vocabulary: 'ab' } as never), /'vocabulary'/],
    ['JazzImproviser.fromMidi', () => JazzImproviser.fromMidi(undefined, { grammr: 'deepjazz' } as never), /'grammr'/],
  ]
  for (const [what, call, message] of misspelt) t.throws(call, { ...bad, message }, what)
  const n = names.make()
  await t.throwsAsync(n.fit({ iteration: 5 } as never), {
    ...bad,
    message: /NameModel\.fit: unknown option 'iteration'/,
  })
  t.throws(() => n.sample({ topk: 2 } as never), { ...bad, message: /NameModel\.sample: unknown option 'topk'/ })
  t.throws(() => n.beamSearch({ beamwidth: 2 } as never), { ...bad, message: /unknown option 'beamwidth'/ })
  const l = lm.make()
  await t.throwsAsync(lm.fit(l, 1, { patiense: 2 }), {
    ...bad,
    message: /CharLanguageModel\.fit: unknown option 'patiense'/,
  })
  await lm.fit(l, 1)
  t.throws(() => l.generate({ lenght: 5 } as never), { ...bad, message: /generate: unknown option 'lenght'/ })
  t.throws(() => l.beamSearch({ promt: 'a' } as never), { ...bad, message: /beamSearch: unknown option 'promt'/ })
  // the known names still work, the deprecated aliases included
  t.is(NameModel.fromNames(['ab'], { shuffleSeed: 1 }).vocabulary.size, 3)
  t.is(l.generate({ prompt: 'a', length: 3, temperature: 0, topK: 0, seed: 1 }).length, 3)
})
