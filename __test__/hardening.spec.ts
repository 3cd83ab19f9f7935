// Hardening across the native boundary: every exported function and method receives wrong
// types, wrong shapes, empty arrays, NaN/±Infinity, huge sizes and out-of-range indices
// (property-based, fast-check) and must either succeed or throw an `Error` whose message names
// the offending argument — never crash, abort or hang. A crash (abort, segfault) kills this
// worker and fails the run; hangs that cannot be interrupted in-process are run in a child
// process with a timeout.
import test from 'ava'
import { fc } from './property.js'
import { spawnSync } from 'node:child_process'

import {
  RandomState,
  type LstmParameters,
  type Tensor,
  at,
  native,
  tensor,
  zeros,
  Vocabulary,
  RnnCellCache,
  RnnCache,
  LstmCellCache,
  LstmCache,
  rnnCellForward,
  rnnForward,
  rnnCellBackward,
  rnnBackward,
  lstmCellForward,
  lstmForward,
  lstmCellBackward,
  lstmBackward,
} from '../dist/index.js'

const RUNS = 150 // per property: the whole file stays well under 20 s

// ---- helpers ---------------------------------------------------------------------------

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown }

function attempt(f: () => unknown): Outcome {
  try {
    return { ok: true, value: f() }
  } catch (error) {
    return { ok: false, error }
  }
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** A clean refusal: an `Error` with a non-empty message that is no panic report. */
function cleanError(o: Outcome, what: string): Error {
  if (o.ok) throw new Error(`${what}: expected an error, the call succeeded`)
  const e = o.error
  if (!(e instanceof Error)) throw new Error(`${what}: threw a non-Error ${String(e)}`)
  if (typeof e.message !== 'string' || e.message.length === 0) throw new Error(`${what}: empty error message`)
  if (/panic|internal error/i.test(e.message)) throw new Error(`${what}: a panic reached JS: ${e.message}`)
  return e
}

/** The call must throw an Error whose message names `name` (one of the names, if an array). */
function refusedNaming(o: Outcome, name: string | string[], what: string): Error {
  const e = cleanError(o, what)
  const names = Array.isArray(name) ? name : [name]
  if (!names.some((n) => new RegExp(`(^|[^\\w.])${escapeRegExp(n)}($|[^\\w])`).test(e.message))) {
    throw new Error(`${what}: message does not name ${names.join(' or ')}: ${e.message}`)
  }
  return e
}

/** Succeeds, or refuses cleanly naming one of `names`. */
function succeedsOrNames(o: Outcome, names: string[], what: string): void {
  if (!o.ok) refusedNaming(o, names, what)
}

function timed<T>(f: () => T): [T, number] {
  const t0 = performance.now()
  const v = f()
  return [v, performance.now() - t0]
}

const isFiniteTensor = (t: Tensor, shape: number[]) =>
  JSON.stringify(t.shape) === JSON.stringify(shape) &&
  t.data.length === shape.reduce((a, b) => a * b, 1) &&
  t.data.every(Number.isFinite)

// ---- valid set-ups of every step-by-step function -------------------------------------

interface Dims {
  n_x: number
  n_a: number
  n_y: number
  m: number
  T: number
  seed: number
}

/** Small sizes including zeros (empty batches, no hidden units, empty sequences). */
const dimsArb: fc.Arbitrary<Dims> = fc.record({
  n_x: fc.integer({ min: 0, max: 4 }),
  n_a: fc.integer({ min: 0, max: 4 }),
  n_y: fc.integer({ min: 0, max: 3 }),
  m: fc.integer({ min: 0, max: 3 }),
  T: fc.integer({ min: 0, max: 3 }),
  seed: fc.integer({ min: 0, max: 1000 }),
})

const RNN_KEYS = ['Wax', 'Waa', 'Wya', 'ba', 'by']
const LSTM_KEYS = ['Wf', 'bf', 'Wi', 'bi', 'Wc', 'bc', 'Wo', 'bo', 'Wy', 'by']

function rnnParams(d: Dims, rs: RandomState) {
  return {
    Wax: rs.randn(d.n_a, d.n_x),
    Waa: rs.randn(d.n_a, d.n_a),
    Wya: rs.randn(d.n_y, d.n_a),
    ba: rs.randn(d.n_a, 1),
    by: rs.randn(d.n_y, 1),
  }
}

function lstmParams(d: Dims, rs: RandomState): LstmParameters {
  // drawn in the order f, i, c, o (weight, then bias), then Wy, by: an object literal's
  // properties are evaluated in source order
  return {
    Wf: rs.randn(d.n_a, d.n_a + d.n_x),
    bf: rs.randn(d.n_a, 1),
    Wi: rs.randn(d.n_a, d.n_a + d.n_x),
    bi: rs.randn(d.n_a, 1),
    Wc: rs.randn(d.n_a, d.n_a + d.n_x),
    bc: rs.randn(d.n_a, 1),
    Wo: rs.randn(d.n_a, d.n_a + d.n_x),
    bo: rs.randn(d.n_a, 1),
    Wy: rs.randn(d.n_y, d.n_a),
    by: rs.randn(d.n_y, 1),
  }
}

/** One exported function: its argument names (in order), a valid set-up and the call. */
interface Target {
  args: string[]
  record?: { arg: string; keys: string[] }
  cache?: string
  build: (d: Dims) => Record<string, any>
  call: (a: Record<string, any>) => any
  /** Expected shapes of the tensors in the result. */
  shapes: (d: Dims) => Record<string, number[]>
}

const TARGETS: Record<string, Target> = {
  rnnCellForward: {
    args: ['xt', 'a_prev', 'parameters'],
    record: { arg: 'parameters', keys: RNN_KEYS },
    build: (d) => {
      const rs = new RandomState(d.seed)
      return { xt: rs.randn(d.n_x, d.m), a_prev: rs.randn(d.n_a, d.m), parameters: rnnParams(d, rs) }
    },
    call: (a) => rnnCellForward(a.xt, a.a_prev, a.parameters),
    shapes: (d) => ({ a_next: [d.n_a, d.m], yt_pred: [d.n_y, d.m] }),
  },
  rnnForward: {
    args: ['x', 'a0', 'parameters'],
    record: { arg: 'parameters', keys: RNN_KEYS },
    build: (d) => {
      const rs = new RandomState(d.seed)
      return { x: rs.randn(d.n_x, d.m, d.T), a0: rs.randn(d.n_a, d.m), parameters: rnnParams(d, rs) }
    },
    call: (a) => rnnForward(a.x, a.a0, a.parameters),
    shapes: (d) => ({ a: [d.n_a, d.m, d.T], y_pred: [d.n_y, d.m, d.T] }),
  },
  rnnCellBackward: {
    args: ['da_next', 'cache'],
    cache: 'cache',
    build: (d) => {
      const rs = new RandomState(d.seed)
      const { cache } = rnnCellForward(rs.randn(d.n_x, d.m), rs.randn(d.n_a, d.m), rnnParams(d, rs))
      return { da_next: rs.randn(d.n_a, d.m), cache }
    },
    call: (a) => rnnCellBackward(a.da_next, a.cache),
    shapes: (d) => ({
      dxt: [d.n_x, d.m],
      da_prev: [d.n_a, d.m],
      dWax: [d.n_a, d.n_x],
      dWaa: [d.n_a, d.n_a],
      dba: [d.n_a, 1],
    }),
  },
  rnnBackward: {
    args: ['da', 'caches'],
    cache: 'caches',
    build: (d) => {
      const rs = new RandomState(d.seed)
      const { caches } = rnnForward(rs.randn(d.n_x, d.m, d.T), rs.randn(d.n_a, d.m), rnnParams(d, rs))
      return { da: rs.randn(d.n_a, d.m, d.T), caches }
    },
    call: (a) => rnnBackward(a.da, a.caches),
    shapes: (d) => ({
      dx: [d.n_x, d.m, d.T],
      da0: [d.n_a, d.m],
      dWax: [d.n_a, d.n_x],
      dWaa: [d.n_a, d.n_a],
      dba: [d.n_a, 1],
    }),
  },
  lstmCellForward: {
    args: ['xt', 'a_prev', 'c_prev', 'parameters'],
    record: { arg: 'parameters', keys: LSTM_KEYS },
    build: (d) => {
      const rs = new RandomState(d.seed)
      return {
        xt: rs.randn(d.n_x, d.m),
        a_prev: rs.randn(d.n_a, d.m),
        c_prev: rs.randn(d.n_a, d.m),
        parameters: lstmParams(d, rs),
      }
    },
    call: (a) => lstmCellForward(a.xt, a.a_prev, a.c_prev, a.parameters),
    shapes: (d) => ({ a_next: [d.n_a, d.m], c_next: [d.n_a, d.m], yt_pred: [d.n_y, d.m] }),
  },
  lstmForward: {
    args: ['x', 'a0', 'parameters'],
    record: { arg: 'parameters', keys: LSTM_KEYS },
    build: (d) => {
      const rs = new RandomState(d.seed)
      return { x: rs.randn(d.n_x, d.m, d.T), a0: rs.randn(d.n_a, d.m), parameters: lstmParams(d, rs) }
    },
    call: (a) => lstmForward(a.x, a.a0, a.parameters),
    shapes: (d) => ({ a: [d.n_a, d.m, d.T], y: [d.n_y, d.m, d.T], c: [d.n_a, d.m, d.T] }),
  },
  lstmCellBackward: {
    args: ['da_next', 'dc_next', 'cache'],
    cache: 'cache',
    build: (d) => {
      const rs = new RandomState(d.seed)
      const { cache } = lstmCellForward(
        rs.randn(d.n_x, d.m),
        rs.randn(d.n_a, d.m),
        rs.randn(d.n_a, d.m),
        lstmParams(d, rs),
      )
      return { da_next: rs.randn(d.n_a, d.m), dc_next: rs.randn(d.n_a, d.m), cache }
    },
    call: (a) => lstmCellBackward(a.da_next, a.dc_next, a.cache),
    shapes: (d) => ({
      dxt: [d.n_x, d.m],
      da_prev: [d.n_a, d.m],
      dc_prev: [d.n_a, d.m],
      dWf: [d.n_a, d.n_a + d.n_x],
      dWi: [d.n_a, d.n_a + d.n_x],
      dWc: [d.n_a, d.n_a + d.n_x],
      dWo: [d.n_a, d.n_a + d.n_x],
      dbf: [d.n_a, 1],
      dbi: [d.n_a, 1],
      dbc: [d.n_a, 1],
      dbo: [d.n_a, 1],
    }),
  },
  lstmBackward: {
    args: ['da', 'caches'],
    cache: 'caches',
    build: (d) => {
      const rs = new RandomState(d.seed)
      const { caches } = lstmForward(rs.randn(d.n_x, d.m, d.T), rs.randn(d.n_a, d.m), lstmParams(d, rs))
      return { da: rs.randn(d.n_a, d.m, d.T), caches }
    },
    call: (a) => lstmBackward(a.da, a.caches),
    shapes: (d) => ({
      dx: [d.n_x, d.m, d.T],
      da0: [d.n_a, d.m],
      dWf: [d.n_a, d.n_a + d.n_x],
      dWi: [d.n_a, d.n_a + d.n_x],
      dWc: [d.n_a, d.n_a + d.n_x],
      dWo: [d.n_a, d.n_a + d.n_x],
      dbf: [d.n_a, 1],
      dbi: [d.n_a, 1],
      dbc: [d.n_a, 1],
      dbo: [d.n_a, 1],
    }),
  },
}
const TARGET_NAMES = Object.keys(TARGETS)

/** Every tensor slot of a target: plain arguments and the record's keys (`parameters.Wax`). */
function tensorSlots(tg: Target): string[] {
  const slots = tg.args.filter((a) => a !== tg.record?.arg && a !== tg.cache)
  if (tg.record) for (const k of tg.record.keys) slots.push(`${tg.record.arg}.${k}`)
  return slots
}

/** A copy of the arguments with `slot` (`xt` or `parameters.Wax`) set to `value`. */
function withSlot(args: Record<string, any>, slot: string, value: unknown): Record<string, any> {
  const out = { ...args }
  const [arg, key] = slot.split('.')
  if (key === undefined) out[arg] = value
  else out[arg] = { ...out[arg], [key]: value }
  return out
}

function getSlot(args: Record<string, any>, slot: string): any {
  const [arg, key] = slot.split('.')
  return key === undefined ? args[arg] : args[arg][key]
}

// ---- garbage ---------------------------------------------------------------------------

const BAD_DIMS = [-1, -0.5, 1.5, NaN, Infinity, -Infinity, 2 ** 32, 2 ** 53, 1e300, '3', null, undefined, true, {}, [2]]

const sparseHugeArray = () => {
  const a: number[] = []
  a.length = 2 ** 32 - 1 // a shape whose copy alone would need 32 GB
  return a
}

/** Values that are not a tensor at all, or a malformed one: the error must name the slot. */
const malformedTensor: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    undefined,
    true,
    Symbol('s'),
    () => 1,
    'tensor',
    0,
    NaN,
    Infinity,
    {},
    [],
    new Float32Array(4),
    new Date(),
  ),
  fc.double(),
  fc.string({ maxLength: 8 }),
  fc.bigInt(),
  fc.array(fc.double(), { maxLength: 6 }), // a plain array instead of a tensor
  fc.float64Array({ maxLength: 6 }), // the data without its shape
  fc.record({ shape: fc.array(fc.nat(4), { maxLength: 3 }) }), // no data
  fc.record({ data: fc.float64Array({ maxLength: 6 }) }), // no shape
  fc.tuple(fc.nat(3), fc.nat(3)).map(([r, c]) => ({ shape: [r, c], data: Array.from({ length: r * c }, () => 0) })), // data as plain array
  fc.tuple(fc.nat(3), fc.nat(3)).map(([r, c]) => ({ shape: [r, c], data: new Float32Array(r * c) })), // wrong typed array
  fc.tuple(fc.nat(3), fc.nat(3)).map(([r, c]) => ({ shape: `${r},${c}`, data: new Float64Array(r * c) })), // shape not an array
  fc.tuple(fc.constantFrom(...BAD_DIMS), fc.nat(3), fc.boolean()).map(([bad, c, first]) => ({
    shape: first ? [bad, c] : [c, bad],
    data: new Float64Array(c),
  })), // a bad dimension: negative, fractional, NaN, ±Infinity, >= 2**32, not a number
  fc
    .tuple(fc.nat(3), fc.nat(3), fc.integer({ min: 1, max: 3 }))
    .map(([r, c, extra]) => ({ shape: [r, c], data: new Float64Array(r * c + extra) })), // too many values
  fc
    .tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }))
    .map(([r, c]) => ({ shape: [r, c], data: new Float64Array(r * c - 1) })), // too few values
  fc.constant({ shape: new Array(33).fill(1), data: new Float64Array(1) }), // more axes than numpy allows
  fc.constant({ shape: [1e6, 1e6], data: new Float64Array(4) }), // a terabyte shape, four values
  fc.constant({ shape: [2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1], data: new Float64Array(0) }),
  fc.constant(null).map(() => ({ shape: sparseHugeArray(), data: new Float64Array(0) })),
)

/** Well-formed tensors of arbitrary small shapes (rank 0..4): a wrong shape must be refused. */
const anyShapeTensor: fc.Arbitrary<Tensor> = fc
  .array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 4 })
  .map((shape) =>
    tensor(
      shape,
      Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i + 1)),
    ),
  )

const NON_FINITE = [NaN, Infinity, -Infinity]

// ---- the step-by-step API ----------------------------------------------------------------

test('every step-by-step function accepts any valid sizes, zeros included, with finite results of the right shapes', (t) => {
  fc.assert(
    fc.property(fc.constantFrom(...TARGET_NAMES), dimsArb, (name, d) => {
      const tg = TARGETS[name]
      const out = tg.call(tg.build(d))
      for (const [k, shape] of Object.entries(tg.shapes(d))) {
        if (!isFiniteTensor(out[k], shape))
          throw new Error(`${name} ${JSON.stringify(d)}: ${k} has shape ${out[k].shape}, expected ${shape}`)
      }
      const y = out.yt_pred ?? out.y_pred ?? out.y
      if (y && d.n_y > 0) {
        // softmax columns sum to 1
        const cols = y.data.length / d.n_y
        for (let j = 0; j < cols; j++) {
          let s = 0
          for (let i = 0; i < d.n_y; i++) s += y.data[i * cols + j]
          if (Math.abs(s - 1) > 1e-12) throw new Error(`${name}: softmax column ${j} sums to ${s}`)
        }
      }
    }),
    { numRuns: RUNS },
  )
  t.pass()
})

test('a malformed value in any tensor argument or parameter is refused with an Error naming it', (t) => {
  const cases = TARGET_NAMES.flatMap((name) => tensorSlots(TARGETS[name]).map((slot) => [name, slot] as const))
  fc.assert(
    fc.property(fc.constantFrom(...cases), dimsArb, malformedTensor, ([name, slot], d, bad) => {
      const tg = TARGETS[name]
      const [o, ms] = timed(() => attempt(() => tg.call(withSlot(tg.build(d), slot, bad))))
      refusedNaming(o, slot, `${name}(${slot} = ${describe(bad)})`)
      if (ms > 1000) throw new Error(`${name}: refusing ${slot} took ${ms.toFixed(0)} ms`)
    }),
    { numRuns: RUNS * 3 },
  )
  t.pass()
})

test('a whole argument of the wrong type, or a record missing a key, is refused naming it', (t) => {
  const garbage = fc.oneof(
    fc.constantFrom<unknown>(null, undefined, 0, 'x', true, [], () => 1),
    fc.double(),
    fc.string({ maxLength: 4 }),
  )
  fc.assert(
    fc.property(fc.constantFrom(...TARGET_NAMES), dimsArb, garbage, fc.nat(), (name, d, bad, pick) => {
      const tg = TARGETS[name]
      const args = tg.build(d)
      const arg = tg.args[pick % tg.args.length]
      refusedNaming(
        attempt(() => tg.call({ ...args, [arg]: bad })),
        arg,
        `${name}(${arg} = ${describe(bad)})`,
      )
      if (tg.record) {
        const key = tg.record.keys[pick % tg.record.keys.length]
        const partial = { ...args[tg.record.arg] }
        delete partial[key]
        const e = refusedNaming(
          attempt(() => tg.call({ ...args, [tg.record!.arg]: partial })),
          tg.record.arg,
          `${name} without ${key}`,
        )
        if (!new RegExp(`\\b${key}\\b`).test(e.message))
          throw new Error(`${name}: missing key ${key} not named: ${e.message}`)
      }
    }),
    { numRuns: RUNS },
  )
  // Too few arguments name the first missing one.
  t.throws(() => (rnnCellForward as any)(), { message: /^xt: / })
  t.throws(() => (lstmCellBackward as any)(zeros([1, 1])), { message: /^dc_next: / })
  t.throws(() => (rnnBackward as any)(zeros([1, 1, 1])), { message: /^caches: / })
})

test('a well-formed tensor of a wrong shape is refused with a shape error naming an argument', (t) => {
  const cases = TARGET_NAMES.flatMap((name) => tensorSlots(TARGETS[name]).map((slot) => [name, slot] as const))
  let refused = 0
  fc.assert(
    fc.property(fc.constantFrom(...cases), dimsArb, anyShapeTensor, ([name, slot], d, other) => {
      const tg = TARGETS[name]
      const args = tg.build(d)
      const o = attempt(() => tg.call(withSlot(args, slot, other)))
      // The mismatch may be reported on the argument it is checked against (xt's m vs a_prev).
      const names = [...tensorSlots(tg), ...tg.args]
      succeedsOrNames(o, names, `${name}(${slot}: shape [${other.shape}])`)
      if (!o.ok) {
        refused++
        const code = (o.error as any).code
        if (code !== 'ERR_SHAPE_MISMATCH' && code !== 'ERR_INVALID_ARG')
          throw new Error(`${name}: code ${code} for a shape error`)
      }
    }),
    { numRuns: RUNS * 2 },
  )
  t.true(refused > 0)
})

test('NaN or ±Infinity anywhere in a tensor argument is refused naming the argument and the index', (t) => {
  const cases = TARGET_NAMES.flatMap((name) => tensorSlots(TARGETS[name]).map((slot) => [name, slot] as const))
  const positive = fc.record({
    n_x: fc.integer({ min: 1, max: 3 }),
    n_a: fc.integer({ min: 1, max: 3 }),
    n_y: fc.integer({ min: 1, max: 3 }),
    m: fc.integer({ min: 1, max: 3 }),
    T: fc.integer({ min: 1, max: 3 }),
    seed: fc.nat(100),
  })
  fc.assert(
    fc.property(
      fc.constantFrom(...cases),
      positive,
      fc.constantFrom(...NON_FINITE),
      fc.nat(),
      ([name, slot], d, v, where) => {
        const tg = TARGETS[name]
        const args = tg.build(d)
        const orig = getSlot(args, slot) as Tensor
        const bad = tensor(orig.shape, orig.data)
        const index = where % bad.data.length
        bad.data[index] = v
        const e = refusedNaming(
          attempt(() => tg.call(withSlot(args, slot, bad))),
          slot,
          `${name}(${slot}[${index}] = ${v})`,
        )
        if ((e as any).code !== 'ERR_NON_FINITE' || !e.message.includes(`index ${index}`))
          throw new Error(`${name}: ${e.message}`)
      },
    ),
    { numRuns: RUNS },
  )
  t.pass()
})

test('a garbage, foreign or mismatched cache is refused naming the cache argument', (t) => {
  const n = native()
  const backward = TARGET_NAMES.filter((name) => TARGETS[name].cache)
  const fakeCache = fc.oneof(
    fc.constantFrom<unknown>(
      null,
      undefined,
      0,
      NaN,
      Infinity,
      -Infinity,
      'cache',
      {},
      [],
      () => 1,
      new Float64Array(3),
    ),
    fc.double(),
    fc.constantFrom<any>(RnnCellCache, RnnCache, LstmCellCache, LstmCache).map((cls) => Object.create(cls.prototype)), // right prototype, no data
    // the plain data a cache holds, without the cache around it
    fc.constantFrom('rnnCellForward', 'rnnForward', 'lstmCellForward', 'lstmForward').map((f) => {
      const out = (n as any)[f](
        ...TARGETS[f].args.map((k) => TARGETS[f].build({ n_x: 1, n_a: 1, n_y: 1, m: 1, T: 1, seed: 0 })[k]),
      )
      return out.cache ?? out.caches
    }),
    fc.constant({ shape: [1, 1], data: new Float64Array(1) }),
  )
  fc.assert(
    fc.property(fc.constantFrom(...backward), dimsArb, fakeCache, (name, d, bad) => {
      const tg = TARGETS[name]
      const slot = tg.cache!
      refusedNaming(
        attempt(() => tg.call({ ...tg.build(d), [slot]: bad })),
        slot,
        `${name}(${slot} = ${describe(bad)})`,
      )
    }),
    { numRuns: RUNS },
  )
  // A real cache of the other kind (a sequence cache for a cell, an LSTM cache for an RNN).
  const d: Dims = { n_x: 2, n_a: 3, n_y: 2, m: 2, T: 2, seed: 1 }
  for (const name of backward) {
    const tg = TARGETS[name]
    for (const other of backward.filter((o) => o !== name)) {
      const foreign = TARGETS[other].build(d)[TARGETS[other].cache!]
      refusedNaming(
        attempt(() => tg.call({ ...tg.build(d), [tg.cache!]: foreign })),
        tg.cache!,
        `${name} with a cache from ${other}`,
      )
    }
  }
  // The right kind of cache but from other sizes: the upstream gradient no longer fits it.
  fc.assert(
    fc.property(fc.constantFrom(...backward), dimsArb, dimsArb, (name, d1, d2) => {
      const tg = TARGETS[name]
      const a1 = tg.build(d1)
      const a2 = tg.build(d2)
      const mixed = { ...a1, [tg.cache!]: a2[tg.cache!] }
      const o = attempt(() => tg.call(mixed))
      succeedsOrNames(o, tg.args, `${name} with a cache of other sizes`)
    }),
    { numRuns: RUNS },
  )
  t.pass()
})

test('sizes that would need terabytes, or millions of empty steps, are refused at once', (t) => {
  const e = (s: number[]) => ({ shape: s, data: new Float64Array(s.reduce((a, b) => a * b, 1)) })
  const rnnP = (n_x: number, n_a: number, n_y: number) => ({
    Wax: e([n_a, n_x]),
    Waa: e([n_a, n_a]),
    Wya: e([n_y, n_a]),
    ba: e([n_a, 1]),
    by: e([n_y, 1]),
  })
  const lstmP = (n_x: number, n_a: number, n_y: number): LstmParameters => {
    const gate = () => e([n_a, n_a + n_x])
    const bias = () => e([n_a, 1])
    return {
      Wy: e([n_y, n_a]),
      by: e([n_y, 1]),
      Wf: gate(),
      bf: bias(),
      Wi: gate(),
      bi: bias(),
      Wc: gate(),
      bc: bias(),
      Wo: gate(),
      bo: bias(),
    }
  }
  const rs = new RandomState(0)
  const cases: Array<[string, () => unknown, RegExp]> = [
    // Empty inputs imply a (1000, 4e9) output: 32 TB.
    [
      'rnnCellForward, m = 4e9',
      () => rnnCellForward(e([0, 4e9]), e([0, 4e9]), rnnP(0, 0, 1000)),
      /rnnCellForward: .*xt.*limit/,
    ],
    [
      'lstmCellForward, m = 4e9',
      () => lstmCellForward(e([0, 4e9]), e([0, 4e9]), e([0, 4e9]), lstmP(0, 0, 1000)),
      /lstmCellForward: .*xt.*limit/,
    ],
    [
      'rnnForward, T_x = 4e9',
      () => rnnForward(e([0, 1, 4e9]), e([0, 1]), rnnP(0, 0, 1000)),
      /rnnForward: x has 4000000000 time steps/,
    ],
    [
      'lstmForward, T_x = 4e9',
      () => lstmForward(e([0, 1, 4e9]), e([0, 1]), lstmP(0, 0, 1000)),
      /lstmForward: x has 4000000000 time steps/,
    ],
    [
      'rnnForward, 2**20 + 1 empty steps',
      () => rnnForward(e([0, 0, 2 ** 20 + 1]), e([0, 0]), rnnP(0, 0, 0)),
      /x has 1048577 time steps/,
    ],
    [
      'rnnForward, y_pred (1000, 1e6, 1000)',
      () => rnnForward(e([0, 1e6, 1000]), e([0, 1e6]), rnnP(0, 0, 1000)),
      /rnnForward: .*limit/,
    ],
    // A hidden size of 1e6 needs 8 TB for Waa: its data cannot match its shape.
    [
      'hidden size 1e6',
      () =>
        rnnCellForward(e([1, 1]), e([1, 1]), {
          ...rnnP(1, 1, 1),
          Waa: { shape: [1e6, 1e6], data: new Float64Array(1) },
        }),
      /parameters\.Waa.*needs 1000000000000 values/,
    ],
    ['tensor([1e6, 1e6])', () => tensor([1e6, 1e6]), /tensor: shape \[1000000,1000000\] needs 1000000000000 values/],
    ['zeros of 2**96 values', () => zeros([2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1]), /tensor: shape/],
    ['RandomState.randn(1e6, 1e6)', () => rs.randn(1e6, 1e6), /randn: shape .* more than 268435456 values/],
    ['RandomState.rand(2**32-1, 2**32-1)', () => rs.rand(2 ** 32 - 1, 2 ** 32 - 1), /randomSample: shape .* more than/],
    [
      'RandomState.randomSample(sparse 2**32-1 axes)',
      () => rs.randomSample(sparseHugeArray()),
      /bad dimension|dimensions/,
    ],
    [
      'native randn(sparse 2**32-1 axes)',
      () => new (native().NativeRandomState)(1).randn(sparseHugeArray()),
      /shape: expected at most 32 dimensions/,
    ],
    [
      'native choice: 4e9 draws',
      () => new (native().NativeRandomState)(1).choice(5, null, 4e9),
      /size: expected an integer in 0\.\.=268435456/,
    ],
    [
      'native shuffleSwaps(4e9)',
      () => new (native().NativeRandomState)(1).shuffleSwaps(4e9),
      /n: expected an integer in 0\.\.=268435456/,
    ],
    ['RandomState.choice(2**40)', () => rs.choice(2 ** 40), /choice: a must be/],
  ]
  for (const [what, f, re] of cases) {
    const [o, ms] = timed(() => attempt(f))
    const err = cleanError(o, what)
    t.regex(err.message, re, what)
    t.true(ms < 1000, `${what} took ${ms.toFixed(0)} ms`)
  }
})

// ---- the raw native layer (exported as `native()`): garbage must never crash it -------------

test('the raw native functions refuse garbage arguments with an Error, never a crash', (t) => {
  const n = native() as any
  const d: Dims = { n_x: 2, n_a: 2, n_y: 2, m: 2, T: 2, seed: 3 }
  const valid: Record<string, any[]> = {}
  for (const name of TARGET_NAMES) {
    const tg = TARGETS[name]
    const a = tg.build(d)
    valid[name] = tg.args.map((k) => a[k])
  }
  const garbage = fc.oneof(malformedTensor, anyShapeTensor, fc.anything({ maxDepth: 2 }))
  fc.assert(
    fc.property(fc.constantFrom(...TARGET_NAMES), fc.nat(), garbage, (name, pick, bad) => {
      const args = [...valid[name]]
      args[pick % args.length] = bad
      const o = attempt(() => n[name](...args))
      if (!o.ok) cleanError(o, `native.${name}`)
    }),
    { numRuns: RUNS * 2 },
  )
  // Messages from the native conversion name the field and the offending entry.
  const ok = valid.rnnCellForward
  t.throws(() => n.rnnCellForward({ shape: [-1, 2], data: new Float64Array(2) }, ok[1], ok[2]), {
    message: /Tensor\.shape\[0\]: expected an integer in 0\.\.=4294967295, got -1/,
  })
  t.throws(() => n.rnnCellForward({ shape: [2, 2 ** 32 + 2], data: new Float64Array(4) }, ok[1], ok[2]), {
    message: /Tensor\.shape\[1\].*got 4294967298/,
  })
  t.throws(() => n.rnnCellForward({ shape: [2, 2], data: [0, 0, 0, 0] }, ok[1], ok[2]), {
    message: /Tensor\.data: expected a Float64Array, got an array/,
  })
  t.throws(() => n.rnnCellForward(null, ok[1], ok[2]), { message: /expected a tensor .* got null/ })
  t.throws(() => n.rnnCellForward(ok[0], ok[1], { ...ok[2], Waa: undefined }), { message: /Waa/ })
})

test('the raw native backward functions re-check a tampered cache record, naming the field', (t) => {
  // Caches are plain records at the native layer (the TS layer keeps them opaque), so backward
  // must not trust them: every array is checked for shape and finiteness again.
  const n = native() as any
  const d: Dims = { n_x: 2, n_a: 3, n_y: 2, m: 2, T: 3, seed: 4 }
  const { caches } = n.lstmForward(...TARGETS.lstmForward.args.map((k) => TARGETS.lstmForward.build(d)[k]))
  const da = zeros([3, 2, 3])
  t.truthy(n.lstmBackward(da, caches).dWf)
  const nan = { ...caches, ft: tensor(caches.ft.shape, caches.ft.data) }
  nan.ft.data[5] = NaN
  t.throws(() => n.lstmBackward(da, nan), {
    message: /caches\.ft: contains a non-finite value \(NaN\) at flat index 5/,
  })
  t.throws(() => n.lstmBackward(da, { ...caches, c: zeros([3, 2, 2]) }), {
    message: /cache\.c: expected shape \(3, 2, 3\), got \(3, 2, 2\)/,
  })
  t.throws(() => n.lstmBackward(da, { ...caches, parameters: { ...caches.parameters, Wo: zeros([3, 4]) } }), {
    message: /Wo/,
  })
  const { caches: rc } = n.rnnForward(...TARGETS.rnnForward.args.map((k) => TARGETS.rnnForward.build(d)[k]))
  t.throws(() => n.rnnBackward(da, { ...rc, a0: undefined }), { message: /a0/ })
  const { cache: cc } = n.rnnCellForward(...TARGETS.rnnCellForward.args.map((k) => TARGETS.rnnCellForward.build(d)[k]))
  t.throws(() => n.rnnCellBackward(zeros([3, 2]), { ...cc, xt: zeros([2, 3]) }), {
    message: /cache\.(xt|a_prev|a_next): expected shape/,
  })
})

test('a getter that detaches an input buffer during argument conversion cannot make native code read freed memory', (t) => {
  // Regression: inputs used to be borrowed until the call ran; a getter on a later argument could
  // transfer (detach) an earlier tensor's buffer and the core then read freed memory.
  const n = native()
  const N = 1 << 16
  const xt = { shape: [N, 1], data: new Float64Array(N).fill(0.5) }
  const one = (s: number[]) => ({ shape: s, data: new Float64Array(s.reduce((a, b) => a * b, 1)) })
  const parameters = {
    get Wax() {
      structuredClone(xt.data.buffer, { transfer: [xt.data.buffer] }) // detaches xt.data
      return { shape: [1, N], data: new Float64Array(N).fill(1e-5) }
    },
    Waa: one([1, 1]),
    Wya: one([1, 1]),
    ba: one([1, 1]),
    by: one([1, 1]),
  }
  const { a_next } = n.rnnCellForward(xt, one([1, 1]), parameters as any)
  t.is(xt.data.length, 0) // the buffer really was detached
  t.true(Math.abs(a_next.data[0] - Math.tanh(0.5 * 1e-5 * N)) < 1e-12, `a_next = ${a_next.data[0]}`)
})

// ---- RandomState -------------------------------------------------------------------------

const U32_MAX = 2 ** 32 - 1
const anyNumberish = fc.oneof(
  fc.integer({ min: -10, max: 10 }),
  fc.integer({ min: -(2 ** 34), max: 2 ** 34 }),
  fc.double(),
  fc.constantFrom<unknown>(
    NaN,
    Infinity,
    -Infinity,
    -0,
    0.5,
    U32_MAX,
    U32_MAX + 1,
    2 ** 53,
    -(2 ** 53),
    null,
    '1',
    [1],
    {},
    true,
    1n,
  ),
)
const isSeed = (s: unknown) => Number.isInteger(s) && (s as number) >= 0 && (s as number) <= U32_MAX

test('RandomState: constructor and seed accept exactly the integers 0..2**32-1, naming the seed otherwise', (t) => {
  fc.assert(
    fc.property(anyNumberish, (s) => {
      const o = attempt(() => new RandomState(s as number))
      if (isSeed(s)) {
        if (!o.ok) throw new Error(`seed ${String(s)} refused: ${(o.error as Error).message}`)
      } else refusedNaming(o, 'seed', `new RandomState(${String(s)})`)
      const rs = new RandomState(1)
      const o2 = attempt(() => rs.seed(s as number))
      if (isSeed(s)) {
        if (!o2.ok) throw new Error(`seed(${String(s)}) refused`)
      } else refusedNaming(o2, 'seed', `seed(${String(s)})`)
      // The raw native class refuses the same values instead of wrapping them (-1 → 2**32-1).
      const o3 = attempt(() => new (native().NativeRandomState)(s as number))
      if (isSeed(s) !== o3.ok)
        throw new Error(`NativeRandomState(${String(s)}): ${o3.ok ? 'accepted' : (o3.error as Error).message}`)
    }),
    { numRuns: RUNS * 2 },
  )
  // A negative or fractional seed is never silently wrapped or truncated.
  t.throws(() => new RandomState(-1), { message: /seed/ })
  t.throws(() => new RandomState(1.5), { message: /seed/ })
  t.throws(() => new (native().NativeRandomState)(-1), {
    message: /seed: expected an integer in 0\.\.=4294967295, got -1/,
  })
  t.throws(() => new (native().NativeRandomState)(1.5), { message: /got 1\.5/ })
})

test('RandomState: rand, randn and randomSample take valid shapes only and name the bad dimension', (t) => {
  const dim = fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom<unknown>(...BAD_DIMS, 2 ** 31, U32_MAX))
  fc.assert(
    fc.property(fc.array(dim, { maxLength: 4 }), fc.constantFrom('rand', 'randn', 'randomSample'), (shape, method) => {
      const rs = new RandomState(0)
      const o = attempt(() =>
        method === 'randomSample' ? rs.randomSample(shape as number[]) : (rs as any)[method](...shape),
      )
      const valid = shape.every((d) => Number.isInteger(d) && (d as number) >= 0 && (d as number) <= U32_MAX)
      const n = valid ? (shape as number[]).reduce((a, b) => a * b, 1) : NaN
      if (valid && n <= 2 ** 28) {
        if (!o.ok) throw new Error(`${method}(${shape}) refused: ${(o.error as Error).message}`)
        if (shape.length > 0 || method === 'randomSample') {
          const out = o.value as Tensor
          if (out.data.length !== n || !out.data.every(Number.isFinite))
            throw new Error(`${method}(${shape}): bad result`)
        }
      } else {
        refusedNaming(o, [method, 'randomSample'], `${method}(${shape.map(String)})`)
      }
    }),
    { numRuns: RUNS * 2 },
  )
  const rs = new RandomState(0)
  for (const bad of [null, undefined, 5, 'ab', {}]) {
    if (bad === undefined) continue // randomSample() is one number
    t.throws(() => rs.randomSample(bad as any), { message: /randomSample/ })
  }
})

test('RandomState: choice validates a, p and options, naming them; valid draws are in range', (t) => {
  const pArb = fc.oneof(
    fc.integer({ min: 1, max: 6 }).map((n) => Array.from({ length: n }, () => 1 / n)), // valid
    fc.array(fc.double(), { maxLength: 6 }), // NaN, negative, not summing to 1
    fc.constantFrom<unknown>(
      null,
      5,
      'abc',
      {},
      [],
      [1],
      [0.5, 0.5],
      [-1, 2],
      [NaN, 1],
      [Infinity],
      new Float64Array([1]),
    ),
  )
  fc.assert(
    fc.property(
      fc.oneof(anyNumberish, fc.array(fc.string(), { maxLength: 6 })),
      pArb,
      fc.boolean(),
      (a, p, withOptions) => {
        const rs = new RandomState(0)
        const o = attempt(() => (withOptions ? rs.choice(a as any, { p: p as any }) : rs.choice(a as any)))
        if (o.ok) {
          const n = typeof a === 'number' ? a : (a as string[]).length
          if (
            typeof a === 'number'
              ? !(Number.isInteger(o.value) && (o.value as number) >= 0 && (o.value as number) < n)
              : !(a as string[]).includes(o.value as string)
          ) {
            throw new Error(`choice(${String(a)}) returned ${String(o.value)}`)
          }
        } else refusedNaming(o, ['choice', 'a', 'p'], `choice(${String(a)}, p = ${String(p)})`)
      },
    ),
    { numRuns: RUNS * 2 },
  )
  const rs = new RandomState(0)
  t.throws(() => rs.choice(3, null as any), { message: /choice: options/ })
  t.throws(() => rs.choice(3, { p: 7 as any }), { message: /choice: p/ })
  t.throws(() => rs.choice(3, { p: [0.2, 0.2, NaN] }), { message: /p.*non-finite/ })
  t.throws(() => rs.choice(2 ** 32), { message: /choice: a/ })
})

test('RandomState: shuffle and randint refuse bad arguments; randint stays in [low, high)', (t) => {
  fc.assert(
    fc.property(anyNumberish, anyNumberish, (low, high) => {
      const rs = new RandomState(0)
      const o = attempt(() => rs.randint(low as number, high as number))
      const valid = Number.isSafeInteger(low) && Number.isSafeInteger(high) && (low as number) < (high as number)
      if (valid) {
        if (!o.ok) throw new Error(`randint(${low}, ${high}) refused: ${(o.error as Error).message}`)
        const v = o.value as number
        if (!(Number.isInteger(v) && v >= (low as number) && v < (high as number)))
          throw new Error(`randint(${low}, ${high}) = ${v}`)
      } else refusedNaming(o, 'randint', `randint(${String(low)}, ${String(high)})`)
      // The raw method refuses instead of truncating (1.5 → 1) or reading NaN as 0.
      const raw = attempt(() => new (native().NativeRandomState)(0).randint(low as number, high as number))
      if (raw.ok !== valid)
        throw new Error(
          `native randint(${String(low)}, ${String(high)}): ${raw.ok ? 'accepted' : (raw.error as Error).message}`,
        )
    }),
    { numRuns: RUNS * 2 },
  )
  const rs = new RandomState(0)
  for (const bad of [null, undefined, 5, 'abc', { length: 4e9 }, new Float64Array(3)]) {
    t.throws(() => rs.shuffle(bad as any), { message: /shuffle: x/ })
  }
  t.deepEqual(rs.shuffle([]), [])
  t.deepEqual(rs.shuffle([7]), [7])
})

test('RandomState: setState refuses malformed or corrupt snapshots, naming the field, and stays usable', (t) => {
  const good = new RandomState(5).getState()
  const mutation = fc.oneof(
    fc.constantFrom<unknown>(null, undefined, 5, 'state', [], {}),
    fc
      .constantFrom('key', 'pos', 'hasGauss', 'gauss')
      .chain((field) =>
        fc
          .oneof(
            fc.constantFrom<unknown>(
              undefined,
              null,
              'x',
              NaN,
              Infinity,
              -1,
              625,
              1.5,
              2 ** 32,
              true,
              [],
              new Uint32Array(3),
              new Uint32Array(625),
              new Float64Array(624),
            ),
            fc.double(),
          )
          .map((v) => ({ ...good, [field]: v, __field: field })),
      ),
    fc.constant({ ...good, key: new Uint32Array(624), __field: 'key' }), // all zero: the generator would emit only zeros
    fc.constant({
      ...good,
      key: Uint32Array.from({ length: 624 }, (_, i) => (i === 0 ? 0x7fffffff : 0)),
      __field: 'key',
    }),
  )
  fc.assert(
    fc.property(mutation, (state: any) => {
      const rs = new RandomState(9)
      const before = rs.getState()
      const o = attempt(() => rs.setState(state))
      if (!o.ok) {
        refusedNaming(
          o,
          ['setState', 'RandomStateSnapshot', state?.__field && `RandomStateSnapshot.${state.__field}`].filter(
            Boolean,
          ) as string[],
          `setState(${describe(state)})`,
        )
        // A refused snapshot leaves the generator as it was.
        const after = rs.getState()
        if (after.pos !== before.pos || !after.key.every((w, i) => w === before.key[i]))
          throw new Error('setState changed the state before refusing')
      }
      rs.randn(3) // never hangs, whatever was accepted
    }),
    { numRuns: RUNS },
  )
  const rs = new RandomState(1)
  t.throws(() => rs.setState({ ...good, pos: 1.5 }), {
    message: /RandomStateSnapshot\.pos: expected an integer in 0\.\.=624, got 1\.5/,
  })
  t.throws(() => rs.setState({ ...good, pos: -1 }), { message: /RandomStateSnapshot\.pos/ })
  t.throws(() => rs.setState({ ...good, gauss: NaN }), { message: /RandomStateSnapshot\.gauss/ })
  t.throws(() => rs.setState({ ...good, hasGauss: 'yes' as any }), {
    message: /RandomStateSnapshot\.hasGauss: expected a boolean/,
  })
  t.throws(() => rs.setState({ ...good, key: new Uint32Array(624) }), {
    message: /RandomStateSnapshot\.key: a degenerate MT19937 state/,
  })
  t.throws(() => rs.setState({ ...good, key: new Uint32Array(10) }), {
    message: /RandomStateSnapshot\.key: expected 624 words, got 10/,
  })
})

test('a degenerate all-zero generator state used to make randn loop forever (regression, in a child process)', (t) => {
  // Before the fix, setState accepted an all-zero key; randn's polar rejection loop never ends.
  const script = `
    const { RandomState } = require(${JSON.stringify(`${process.cwd()}/dist/index.js`)})
    const rs = new RandomState(1)
    try { rs.setState({ key: new Uint32Array(624), pos: 624, hasGauss: false, gauss: 0 }) } catch (e) { console.log('refused'); process.exit(0) }
    rs.randn(); console.log('returned')`
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 60_000, encoding: 'utf8' })
  t.is(r.signal, null, 'the child hung (killed after 60 s: a hang detector, far above a loaded start-up)')
  t.is(r.stdout.trim(), 'refused')
})

// ---- tensor helpers -------------------------------------------------------------------------

test('tensor, zeros and at: bad shapes, data and indices are refused naming them', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constantFrom<unknown>(...BAD_DIMS)), { maxLength: 4 }),
      fc.option(
        fc.oneof(
          fc.array(fc.double(), { maxLength: 20 }),
          fc.constantFrom<unknown>(null, 5, 'abc', {}, new Float32Array(4)),
        ),
      ),
      (shape, data) => {
        const o = attempt(() => tensor(shape as number[], data === null ? undefined : (data as any)))
        const valid = shape.every((d) => Number.isInteger(d) && (d as number) >= 0)
        if (!valid) refusedNaming(o, 'tensor', `tensor([${shape.map(String)}])`)
        else if (!o.ok) refusedNaming(o, 'tensor', `tensor([${shape}], ${describe(data)})`)
        else {
          const n = (shape as number[]).reduce((a, b) => a * b, 1)
          if ((o.value as Tensor).data.length !== n) throw new Error('wrong length')
        }
      },
    ),
    { numRuns: RUNS },
  )
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
      fc.array(fc.oneof(fc.integer({ min: -2, max: 5 }), fc.double(), fc.constantFrom<unknown>('1', null)), {
        maxLength: 4,
      }),
      (shape, idx) => {
        const x = tensor(
          shape,
          Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i),
        )
        const o = attempt(() => at(x, ...(idx as number[])))
        const valid =
          idx.length === shape.length &&
          idx.every((v, k) => Number.isInteger(v) && (v as number) >= 0 && (v as number) < shape[k])
        if (valid) {
          const flat = (idx as number[]).reduce((f, v, k) => f * shape[k] + v, 0)
          if (!o.ok || o.value !== flat)
            throw new Error(`at([${shape}], ${idx}) = ${o.ok ? o.value : (o.error as Error).message}`)
        } else refusedNaming(o, 'at', `at([${shape}], ${idx.map(String)})`)
      },
    ),
    { numRuns: RUNS },
  )
  t.throws(() => at(null as any, 0), { message: /at: tensor/ })
  t.throws(() => zeros('3' as any), { message: /tensor: shape/ })
})

// ---- corpus and plot helpers (TypeScript only) -------------------------------------------------

test('Vocabulary: garbage input throws an Error (or succeeds), never anything else', (t) => {
  const v = Vocabulary.fromNames(['ab', 'ba'])
  fc.assert(
    fc.property(fc.anything({ maxDepth: 1 }), (bad) => {
      for (const f of [
        () => new Vocabulary(bad as any),
        () => Vocabulary.fromNames(bad as any),
        () => v.ix(bad as any),
        () => v.encode(bad as any),
        () => Vocabulary.fromString(bad as any),
      ]) {
        const o = attempt(f)
        if (!o.ok && !(o.error instanceof Error)) throw new Error(`threw a non-Error ${String(o.error)}`)
      }
    }),
    { numRuns: RUNS },
  )
  t.throws(() => v.encode('abz', 'name'), { message: /name: character\(s\) not in the vocabulary: "z"/ })
  t.throws(() => v.ix('z'), { message: /"z"/ })
})

// Known defects in files this suite does not own: `test.failing` passes while the defect is there
// and fails (asking for `.failing` to be removed) once it is fixed.

test('Vocabulary.decode refuses out-of-range and fractional indices', (t) => {
  const v = Vocabulary.fromNames(['ab'])
  t.throws(() => v.decode([7]))
  t.throws(() => v.decode([1.5]))
})

test('lineChartSvg returns even when the x range is narrower than the spacing of doubles', (t) => {
  // niceTicks' `v += step` stops advancing when step < ulp(v)/2 (here 5 < 8 at 1e17): an endless loop.
  const script = `
    const { lineChartSvg } = require(${JSON.stringify(`${process.cwd()}/dist/index.js`)})
    lineChartSvg([{ label: 'loss', x: [1e17, 1e17 + 16], y: [0, 1] }]); console.log('returned')`
  // A hang detector, not a timing test: the limit is far above a loaded machine's start-up time.
  const r = spawnSync(process.execPath, ['-e', script], { timeout: 60_000, encoding: 'utf8', maxBuffer: 1 << 20 })
  t.is(r.signal, null, 'lineChartSvg hung (killed after 60 s)')
  t.is(r.stdout.trim(), 'returned')
})

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return `array(${v.length})`
  if (ArrayBuffer.isView(v)) return v.constructor.name
  if (typeof v === 'object') return `{${Object.keys(v as object).join(',')}}`
  if (typeof v === 'symbol' || typeof v === 'bigint') return typeof v
  return `${typeof v} ${String(v)}`
}
