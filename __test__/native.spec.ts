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

test('a model is busy while a chunk is in flight, and a failed chunk rejects with an Error and its code', async (t) => {
  const n = native()
  const tr = new n.NativeNameTrainer('\nab', [Uint32Array.from([1, 2]), Uint32Array.from([2, 1])], { hidden: 4 })
  const running = tr.run(3)
  // busy from the moment the chunk is started until it settles, for every use of the model
  t.throws(() => tr.iteration, { code: 'ERR_BUSY', message: /name model: busy/ })
  t.throws(() => tr.run(1), { code: 'ERR_BUSY' })
  const report = await running
  t.is(report.losses.length, 3)
  t.false(report.cancelled)
  t.is(tr.iteration, 3)

  const lm = new n.NativeCharLm({ cell: 'lstm', hidden: [4], dropout: 0, vocab: 'ab c', seed: 0 })
  const err = await t.throwsAsync(lm.train(1, 1), {
    code: 'ERR_INVALID_ARG',
    message: 'train: call startTraining first',
  })
  t.true(err instanceof Error)
  t.is(lm.training, false, 'usable again after the rejection')
  await t.throwsAsync(n.vocabularyOfFile('/nonexistent/rnnlab-no-such-file'), { code: 'ERR_INVALID_ARG' })
})
