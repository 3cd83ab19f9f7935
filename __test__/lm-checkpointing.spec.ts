// char-rnn's checkpointing in CharLanguageModel.fit (issue 14): an evaluation every N steps
// or epochs, the best model on validation kept, early stopping, and exact resume of it all.
import { readFileSync, rmSync } from 'node:fs'
import * as path from 'node:path'

import test from 'ava'

import { CharLanguageModel, type FitOptions, type FitProgress } from '../dist/index.js'
import { fixture, tempDir } from './helpers.js'

const TEXT = readFileSync(fixture('shakespeare.txt'), 'utf8').slice(0, 8_000)
const tiny = () => new CharLanguageModel({ layers: 1, hidden: 16, dropout: 0.1, seed: 2 })
// a high learning rate: the validation loss stops improving after a few evaluations
const stalling: FitOptions = {
  batchSize: 16,
  seqLength: 20,
  learningRate: 0.05,
  validation: 0.2,
  chunkSeconds: 0.01,
  evaluateEvery: { steps: 5 },
  patience: 2,
  epochs: 200,
}

test('patience stops at the same step every time; the kept model is the best evaluation', async (t) => {
  const dir = tempDir('lm-ckpt')
  try {
    const model = tiny()
    const evaluations: FitProgress[] = []
    const history = await model.fit(TEXT, {
      ...stalling,
      onProgress: (p) => {
        if (p.evaluation) evaluations.push(p)
        t.is(p.valLoss !== undefined, p.evaluation)
      },
    })
    t.is(history.stopped, 'patience')
    t.is(history.kept, 'best')
    // every 5 steps, and the last evaluation is where it stopped
    t.deepEqual(
      evaluations.map((p) => p.step),
      evaluations.map((_, k) => 5 * (k + 1)),
    )
    t.is(history.steps, evaluations[evaluations.length - 1].step)
    t.true(evaluations[evaluations.length - 1].stoppedEarly)
    t.deepEqual(
      history.valLoss,
      evaluations.map((p) => p.valLoss),
    )
    // the best is the minimum over the evaluations reported, and the last two did not improve
    const losses = evaluations.map((p) => p.valLoss!)
    const min = Math.min(...losses)
    t.is(history.best?.valLoss, min)
    t.is(history.best?.step, evaluations[losses.indexOf(min)].step)
    t.deepEqual(
      evaluations.slice(-2).map((p) => p.improved),
      [false, false],
    )
    t.is(model.validate(), min)
    t.log(`stopped at step ${history.steps}, best ${min.toFixed(4)} at step ${history.best?.step}`)
    // the same set-up stops at the same step
    const again = await tiny().fit(TEXT, stalling)
    t.is(again.steps, history.steps)
    t.deepEqual(again.best, history.best)
    // the saved model is the best one, and its metadata says so
    const file = path.join(dir, 'best.safetensors')
    model.save(file)
    const loaded = CharLanguageModel.load(file)
    t.is(loaded.info?.valLoss, min)
    t.is(loaded.info?.step, history.best?.step)
    t.is(loaded.info?.kept, 'best')
    t.deepEqual(loaded.logits('Shall I'), model.logits('Shall I'))
    // keep: 'last' shows the weights where training stopped
    const last = tiny()
    const h = await last.fit(TEXT, { ...stalling, keep: 'last' })
    t.is(h.kept, 'last')
    t.is(last.info?.step, history.steps)
    t.is(last.validate(), losses[losses.length - 1])
    t.notDeepEqual(last.logits('Shall I'), model.logits('Shall I'))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('weights that cannot change stop exactly patience evaluations after the first', async (t) => {
  // an SGD step of 1e-30 is below float32's resolution: every evaluation measures the same
  // loss, so only the first improves and the run stops after 1 + patience evaluations
  const history = await tiny().fit(TEXT, {
    ...stalling,
    optimizer: 'sgd',
    learningRate: 1e-30,
    evaluateEvery: { steps: 4 },
    patience: 3,
  })
  t.is(history.stopped, 'patience')
  t.is(history.steps, 4 * (1 + 3))
  t.is(history.best?.step, 4)
  t.deepEqual(history.valLoss, Array(4).fill(history.best?.valLoss))
})

test('an aborted run resumed from its checkpoint stops, keeps and saves exactly as a straight one', async (t) => {
  const dir = tempDir('lm-ckpt')
  try {
    const straightCkpt = path.join(dir, 'straight.ckpt')
    const straight = tiny()
    const ref = await straight.fit(TEXT, { ...stalling, checkpoint: straightCkpt })
    straight.save(path.join(dir, 'straight.safetensors'))
    // the checkpoint, written at the evaluation that stopped the run, records its validation loss
    const ckptInfo = CharLanguageModel.load(straightCkpt).info!
    t.is(ckptInfo.step, ref.steps)
    t.is(ckptInfo.valLoss, ref.valLoss[ref.valLoss.length - 1])
    // abort at the first evaluation, in the middle, and at the last before the stop
    const n = ref.valLoss.length
    for (const abortAt of new Set([1, Math.floor(n / 2), n - 1])) {
      const ckpt = path.join(dir, `run${abortAt}.ckpt`)
      const ac = new AbortController()
      let evaluations = 0
      await t.throwsAsync(
        tiny().fit(TEXT, {
          ...stalling,
          checkpoint: ckpt,
          signal: ac.signal,
          onProgress: (p) => {
            if (p.evaluation && ++evaluations === abortAt) ac.abort()
          },
        }),
        { name: 'AbortError' },
      )
      const resumed = tiny()
      const h = await resumed.fit(TEXT, { ...stalling, checkpoint: ckpt, resume: true })
      t.is(h.stopped, 'patience')
      t.is(h.steps, ref.steps)
      t.deepEqual(h.best, ref.best)
      const out = path.join(dir, `run${abortAt}.safetensors`)
      resumed.save(out)
      t.deepEqual(readFileSync(out), readFileSync(path.join(dir, 'straight.safetensors')), `--out, abort at ${abortAt}`)
      t.deepEqual(readFileSync(ckpt), readFileSync(straightCkpt), `checkpoint, abort at ${abortAt}`)
      // a run that already stopped early trains no further
      const after = await tiny().fit(TEXT, { ...stalling, checkpoint: ckpt, resume: true })
      t.is(after.stopped, 'patience')
      t.is(after.chars, 0)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('evaluateEvery epochs: an evaluation at every Nth epoch end; without validation the last model is kept', async (t) => {
  const evaluatedAt: number[] = []
  const history = await tiny().fit(TEXT, {
    ...stalling,
    patience: undefined,
    evaluateEvery: { epochs: 2 },
    epochs: 5,
    onProgress: (p) => {
      if (p.evaluation) evaluatedAt.push(p.epoch)
    },
  })
  t.deepEqual(evaluatedAt, [2, 4])
  t.is(history.valLoss.length, 2)
  const none = tiny()
  const h = await none.fit(TEXT, { ...stalling, patience: undefined, validation: 0, epochs: 1 })
  t.is(h.kept, 'last')
  t.is(h.best, undefined)
  t.is(none.info?.kept, 'last')
})

test('bad checkpointing options are errors naming the option', async (t) => {
  const bad = async (options: FitOptions, name: RegExp) => {
    const err = await t.throwsAsync(tiny().fit(TEXT, { ...stalling, ...options }))
    t.is((err as NodeJS.ErrnoException).code, 'ERR_INVALID_ARG', err?.message)
    t.regex(err!.message, name)
  }
  await bad({ patience: -1 }, /^patience: .*got -1/)
  await bad({ patience: 0 }, /^patience: .*got 0/)
  await bad({ patience: 1.5 }, /^patience: .*got 1\.5/)
  await bad({ patience: 2, validation: 0 }, /^patience: early stopping needs validation data/)
  await bad({ evaluateEvery: { steps: 0 } }, /^evaluateEvery\.steps: .*got 0/)
  await bad({ evaluateEvery: { epochs: -2 } }, /^evaluateEvery\.epochs: .*got -2/)
  await bad({ evaluateEvery: {} as never }, /^evaluateEvery: expected \{ steps: N \} or \{ epochs: N \}/)
  await bad({ evaluateEvery: { steps: 1, epochs: 1 } as never }, /^evaluateEvery: expected/)
  await bad({ keep: 'first' as never }, /^keep: expected 'best' or 'last', got 'first'/)
})
