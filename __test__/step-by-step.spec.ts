// The step-by-step API from JS, on the course's own set-ups (drawn with
// rnnlab's numpy-compatible RandomState), against the numbers the course printed.
import test from 'ava'

import {
  RandomState,
  type Tensor,
  at,
  tensor,
  zeros,
  rnnCellForward,
  rnnForward,
  rnnCellBackward,
  rnnBackward,
  lstmCellForward,
  lstmForward,
  lstmCellBackward,
  lstmBackward,
} from '../dist/index.js'

const close = (actual: number, printed: string) => {
  const digits = (printed.split('.')[1] ?? '').length
  return Math.abs(actual - Number(printed)) <= 0.6 * 10 ** -digits
}

function row(t: Tensor, i: number): number[] {
  const cols = t.shape[1]
  return Array.from(t.data.subarray(i * cols, (i + 1) * cols))
}

function rnnSetup() {
  const rs = new RandomState(1)
  const xt = rs.randn(3, 10),
    a_prev = rs.randn(5, 10)
  const Waa = rs.randn(5, 5),
    Wax = rs.randn(5, 3),
    Wya = rs.randn(2, 5),
    ba = rs.randn(5, 1),
    by = rs.randn(2, 1)
  return { rs, xt, a_prev, parameters: { Wax, Waa, Wya, ba, by } }
}

function lstmSetup(xShape: number[], withC: boolean, wyRandom: boolean) {
  const rs = new RandomState(1)
  const x = rs.randn(...xShape),
    a0 = rs.randn(5, 10)
  const c0 = withC ? rs.randn(5, 10) : zeros([5, 10])
  const p: Record<string, Tensor> = {}
  for (const k of ['Wf', 'bf', 'Wi', 'bi', 'Wo', 'bo', 'Wc', 'bc'])
    p[k] = k[0] === 'W' ? rs.randn(5, 8) : rs.randn(5, 1)
  p.Wy = wyRandom ? rs.randn(2, 5) : zeros([2, 5])
  p.by = wyRandom ? rs.randn(2, 1) : zeros([2, 1])
  return { rs, x, a0, c0, parameters: p as any }
}

test("rnnCellForward gives the course's printed a_next[4] and yt_pred[1]", (t) => {
  const { xt, a_prev, parameters } = rnnSetup()
  const { a_next, yt_pred } = rnnCellForward(xt, a_prev, parameters)
  t.deepEqual(a_next.shape, [5, 10])
  const want =
    '0.59584544 0.18141802 0.61311866 0.99808218 0.85016201 0.99980978 -0.18887155 0.99815551 0.6531151 0.82872037'.split(
      ' ',
    )
  row(a_next, 4).forEach((v, i) => {
    t.true(close(v, want[i]), `a_next[4][${i}] = ${v}`)
  })
  const wantY =
    '0.9888161 0.01682021 0.21140899 0.36817467 0.98988387 0.88945212 0.36920224 0.9966312 0.9982559 0.17746526'.split(
      ' ',
    )
  row(yt_pred, 1).forEach((v, i) => {
    t.true(close(v, wantY[i]), `yt_pred[1][${i}] = ${v}`)
  })
})

test("lstmCellForward and lstmCellBackward give the course's printed values", (t) => {
  const { rs, x, a0, c0, parameters } = lstmSetup([3, 10], true, true)
  const { a_next, c_next, cache } = lstmCellForward(x, a0, c0, parameters)
  const wantA =
    '-0.66408471 0.0036921 0.02088357 0.22834167 -0.85575339 0.00138482 0.76566531 0.34631421 -0.00215674 0.43827275'.split(
      ' ',
    )
  row(a_next, 4).forEach((v, i) => {
    t.true(close(v, wantA[i]), `a_next[4][${i}]`)
  })
  const wantC =
    '0.63267805 1.00570849 0.35504474 0.20690913 -1.64566718 0.11832942 0.76449811 -0.0981561 -0.74348425 -0.26810932'.split(
      ' ',
    )
  row(c_next, 2).forEach((v, i) => {
    t.true(close(v, wantC[i]), `c_next[2][${i}]`)
  })
  const g = lstmCellBackward(rs.randn(5, 10), rs.randn(5, 10), cache)
  t.true(close(at(g.dxt, 1, 2), '3.23055911511'))
  t.true(close(at(g.da_prev, 2, 3), '-0.0639621419711'))
  t.true(close(at(g.dc_prev, 2, 3), '0.797522038797'))
  t.true(close(at(g.dWf, 3, 1), '-0.147954838164'))
  t.true(close(at(g.dWi, 1, 2), '1.05749805523'))
  t.true(close(at(g.dWc, 3, 1), '2.30456216369'))
  t.true(close(at(g.dWo, 1, 2), '0.331311595289'))
  t.true(close(at(g.dbo, 4, 0), '0.13893342'))
})

test("lstmBackward gives the true gradients (the current course's printed values)", (t) => {
  const { rs, x, a0, parameters } = lstmSetup([3, 10, 7], false, false)
  const { a, caches } = lstmForward(x, a0, parameters)
  t.deepEqual(a.shape, [5, 10, 7])
  // The course's da has 4 steps; steps 4..6 get zero upstream gradient.
  const da4 = rs.randn(5, 10, 4)
  const da = zeros([5, 10, 7])
  for (let i = 0; i < 50; i++) for (let s = 0; s < 4; s++) da.data[i * 7 + s] = da4.data[i * 4 + s]
  const g = lstmBackward(da, caches)
  t.true(close(at(g.da0, 2, 3), '0.312770310257'))
  t.true(close(at(g.dWf, 3, 1), '-0.0809802310938'))
  t.true(close(at(g.dWi, 1, 2), '0.40512433093'))
  t.true(close(at(g.dWc, 3, 1), '-0.0793746735512'))
  t.true(close(at(g.dWo, 1, 2), '0.038948775763'))
  t.true(close(at(g.dbi, 4, 0), '-0.50848333'))
})

test('rnnBackward matches finite differences of J = sum(da * a)', (t) => {
  const rs = new RandomState(7)
  const x = rs.randn(3, 2, 4),
    a0 = rs.randn(5, 2)
  const parameters = {
    Wax: rs.randn(5, 3),
    Waa: rs.randn(5, 5),
    Wya: rs.randn(2, 5),
    ba: rs.randn(5, 1),
    by: rs.randn(2, 1),
  }
  const da = rs.randn(5, 2, 4)
  const J = () => rnnForward(x, a0, parameters).a.data.reduce((s, v, i) => s + v * da.data[i], 0)
  const g = rnnBackward(da, rnnForward(x, a0, parameters).caches)
  const eps = 1e-6
  for (const [name, param, grad] of [
    ['Waa', parameters.Waa, g.dWaa],
    ['Wax', parameters.Wax, g.dWax],
    ['x', x, g.dx],
    ['a0', a0, g.da0],
  ] as const) {
    for (let i = 0; i < param.data.length; i += 3) {
      const old = param.data[i]
      param.data[i] = old + eps
      const jp = J()
      param.data[i] = old - eps
      const jm = J()
      param.data[i] = old
      const num = (jp - jm) / (2 * eps)
      const rel = Math.abs(num - grad.data[i]) / Math.max(1e-8, Math.abs(num) + Math.abs(grad.data[i]))
      t.true(rel < 1e-6, `${name}[${i}]: numeric ${num} vs analytic ${grad.data[i]}`)
    }
  }
  const gc = rnnCellBackward(rs.randn(5, 2), rnnCellForward(rs.randn(3, 2), a0, parameters).cache)
  t.deepEqual(gc.dWax.shape, [5, 3])
})

test('wrong shapes, missing keys, NaN and foreign caches throw errors that name the argument', (t) => {
  const { xt, a_prev, parameters } = rnnSetup()
  const e1 = t.throws(() => rnnCellForward(tensor([4, 10]), a_prev, parameters))
  t.regex(e1!.message, /xt/)
  t.regex(e1!.message, /\(3, 10\)|3, 10/)
  t.is((e1 as any).code, 'ERR_SHAPE_MISMATCH')
  const { Waa: _omit, ...partial } = parameters
  t.throws(() => rnnCellForward(xt, a_prev, partial as any), { message: /missing key\(s\) Waa/ })
  const bad = tensor(a_prev.shape, a_prev.data)
  bad.data[7] = NaN
  const e2 = t.throws(() => rnnCellForward(xt, bad, parameters))
  t.regex(e2!.message, /a_prev.*non-finite.*7/)
  t.throws(() => rnnCellBackward(zeros([5, 10]), {} as any), { message: /cache: expected the cache/ })
  t.throws(() => rnnForward(xt, a_prev, parameters), { message: /x: expected a 3-d tensor/ })
  t.throws(() => rnnCellForward({ shape: [3, 10], data: [1, 2] } as any, a_prev, parameters), {
    message: /xt: expected a tensor/,
  })
})

test('RandomState reproduces numpy: seed(1) randn, choice with p, shuffle', (t) => {
  const rs = new RandomState(1)
  // np.random.seed(1); np.random.randn() == 1.6243453636632417
  t.is(rs.randn(), 1.6243453636632417)
  rs.seed(0)
  // np.random.seed(0); np.random.rand() == 0.5488135039273248
  t.is(rs.rand(), 0.5488135039273248)
  rs.seed(0)
  const xs = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
  rs.shuffle(xs)
  // np.random.seed(0); x = list(range(10)); np.random.shuffle(x) -> [2, 8, 4, 9, 1, 6, 7, 3, 0, 5]
  t.deepEqual(xs, [2, 8, 4, 9, 1, 6, 7, 3, 0, 5])
  t.throws(() => rs.choice(3, { p: [0.5, 0.5, 0.5] }), { message: /sum to 1|sum/ })
  const state = rs.getState()
  const a = rs.randn(4)
  rs.setState(state)
  t.deepEqual(rs.randn(4), a)
  t.throws(() => rs.seed(-1), { message: /seed/ })
})
