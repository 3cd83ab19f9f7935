// The course's "Building a Recurrent Neural Network — Step by Step", in rnnlab.
// Run: node examples/step-by-step.mjs   (after `npm install`)
import { RandomState, rnnCellForward, rnnForward, rnnBackward, lstmForward, lstmBackward, at } from 'rnnlab'

// The course's set-up for rnn_cell_forward: np.random.seed(1), then randn in this order.
const r = new RandomState(1)
const p = {
  xt: r.randn(3, 10),
  a_prev: r.randn(5, 10),
  Waa: r.randn(5, 5),
  Wax: r.randn(5, 3),
  Wya: r.randn(2, 5),
  ba: r.randn(5, 1),
  by: r.randn(2, 1),
}
const cell = rnnCellForward(p.xt, p.a_prev, { Wax: p.Wax, Waa: p.Waa, Wya: p.Wya, ba: p.ba, by: p.by })
console.log(
  'a_next[4] =',
  Array.from(cell.a_next.data.subarray(40, 50))
    .map((v) => v.toFixed(8))
    .join(' '),
)
console.log('a_next.shape =', cell.a_next.shape, '(the course prints the same numbers)')

// A whole sequence forward and backward (x: (n_x, m, T_x)).
const s = new RandomState(1)
const x = s.randn(3, 10, 4),
  a0 = s.randn(5, 10)
const params = { Waa: s.randn(5, 5), Wax: s.randn(5, 3), Wya: s.randn(2, 5), ba: s.randn(5, 1), by: s.randn(2, 1) }
const { a, y_pred, caches } = rnnForward(x, a0, params)
console.log('rnnForward: a', a.shape, 'y_pred', y_pred.shape, 'a[4][1] =', at(a, 4, 1, 0), at(a, 4, 1, 1))
const da = s.randn(5, 10, 4)
const g = rnnBackward(da, caches)
console.log('rnnBackward: dx', g.dx.shape, 'dWax', g.dWax.shape, 'dx[1][2] =', at(g.dx, 1, 2, 0))

// LSTM: the true BPTT gradients (see docs/course-differences.md for the course's slip).
const l = new RandomState(1)
const lx = l.randn(3, 10, 7),
  la0 = l.randn(5, 10)
const lp = {
  Wf: l.randn(5, 8),
  bf: l.randn(5, 1),
  Wi: l.randn(5, 8),
  bi: l.randn(5, 1),
  Wo: l.randn(5, 8),
  bo: l.randn(5, 1),
  Wc: l.randn(5, 8),
  bc: l.randn(5, 1),
  Wy: l.randn(2, 5),
  by: l.randn(2, 1),
}
const lf = lstmForward(lx, la0, lp)
const lg = lstmBackward(l.randn(5, 10, 4 + 3), lf.caches)
console.log('lstmBackward: dWf', lg.dWf.shape, 'da0', lg.da0.shape)
