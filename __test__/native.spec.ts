import test from 'ava'

import { native, tensor, at } from '../dist/index.js'

test('the native core loads and reports its thread pool', (t) => {
  const n = native()
  t.regex(n.nativeVersion(), /^\d+\.\d+\.\d+$/)
  t.true(n.nativeThreads() >= 1)
})

test('tensor checks its length and reads row-major', (t) => {
  const x = tensor([2, 3], [1, 2, 3, 4, 5, 6])
  t.is(at(x, 1, 0), 4)
  t.throws(() => tensor([2, 2], [1, 2, 3]), { message: /needs 4 values, got 3/ })
  t.throws(() => at(x, 2, 0), { message: /out of range/ })
})
