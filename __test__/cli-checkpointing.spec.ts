// `rnnlab train` with char-rnn's checkpointing (issue 14): --checkpoint-every, --patience and
// --keep, piped and in a terminal, interrupted with Ctrl-C and resumed to the same bytes.
import test from 'ava'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { CharLanguageModel } from '../dist/index.js'
import { cli, ctrlCWhen, inPty, printedResume, rnnlabInPty, runnable, tmp } from './cli-helpers'
import { fixture } from './helpers'

const SONNETS = fixture('shakespeare.txt')
const SMALL_LM = ['--hidden', '16', '--layers', '1', '--batch-size', '32', '--seq-length', '20']
// a high learning rate: the validation loss stops improving after some evaluations
const STALLING = [...SMALL_LM, '--lr', '0.03', '--checkpoint-every', '20', '--patience', '3', '--epochs', '1000']

const stopLine = (output: string) => /stopped early at .*\n/.exec(output)?.[0]

test.serial(
  'train --patience stops early with a final line; Ctrl-C + resume in a terminal gives the same files',
  async (t) => {
    const dir = tmp()
    const straight = cli([
      'train',
      '--text',
      SONNETS,
      ...STALLING,
      '--out',
      join(dir, 'straight.safetensors'),
      '--checkpoint',
      join(dir, 'straight.ckpt'),
    ])
    t.is(straight.status, 0, straight.stderr)
    // piped: plain lines, an evaluation line every 20 steps, the early stop as the last line
    t.regex(straight.stdout, /^Step 20 \(epoch 0\.\d\d\) {2}val \d\.\d{4} nats\/char \(perplexity [\d.]+\) {2}best$/m)
    const stop = stopLine(straight.stdout)
    t.truthy(stop, straight.stdout)
    t.regex(
      stop!,
      /^stopped early at step (\d+) \(epoch [\d.]+\): 3 evaluations without a lower validation loss; the best, \d\.\d{4} nats\/char, at step \d+ \(epoch [\d.]+\)\n$/,
    )
    t.true(straight.stdout.endsWith(stop!))
    t.regex(
      straight.stdout,
      /wrote .*straight\.safetensors: .*\(patience\).*validation \d\.\d{4} nats\/char \(the best, at step/,
    )
    const steps = Number(/stopped early at step (\d+)/.exec(stop!)?.[1])
    t.is(steps % 20, 0)
    // --out is the best model, its metadata says which
    const best = Number(/the best, (\d\.\d{4}) nats\/char, at step (\d+)/.exec(stop!)?.[1])
    const info = CharLanguageModel.load(join(dir, 'straight.safetensors')).info!
    t.is(info.kept, 'best')
    t.is(info.valLoss!.toFixed(4), best.toFixed(4))
    t.is(info.step, Number(/the best, .*, at step (\d+)/.exec(stop!)?.[1]))

    // interrupted in a terminal after the first evaluation, then resumed with the printed command
    const out = join(dir, 'm.safetensors'),
      ck = join(dir, 'm.ckpt')
    const first = await rnnlabInPty(['train', '--text', SONNETS, ...STALLING, '--out', out, '--checkpoint', ck], {
      cwd: dir,
      onOutput: ctrlCWhen(/Step 20 /),
    })
    t.is(first.status, 130, first.output)
    const again = printedResume(first.output)
    const second = await inPty(runnable(again), { cwd: dir })
    t.is(second.status, 0, second.output)
    t.is(stopLine(second.output), stop)
    t.deepEqual(readFileSync(out), readFileSync(join(dir, 'straight.safetensors')))
    t.deepEqual(readFileSync(ck), readFileSync(join(dir, 'straight.ckpt')))
  },
)

test.serial('train --keep last writes the last model; --validation 0 writes the last with a note', (t) => {
  const dir = tmp()
  const last = cli([
    'train',
    '--text',
    SONNETS,
    ...SMALL_LM,
    '--epochs',
    '1',
    '--checkpoint-every',
    '50steps',
    '--keep',
    'last',
    '--out',
    join(dir, 'last.safetensors'),
  ])
  t.is(last.status, 0, last.stderr)
  t.regex(last.stdout, /validation \d\.\d{4} nats\/char \(the last model\)/)
  const info = CharLanguageModel.load(join(dir, 'last.safetensors')).info!
  t.is(info.kept, 'last')
  t.is(info.batchInEpoch, 0)
  t.is(info.epoch, 1)
  t.is(typeof info.valLoss, 'number')
  const none = cli([
    'train',
    '--text',
    SONNETS,
    ...SMALL_LM,
    '--epochs',
    '1',
    '--validation',
    '0',
    '--out',
    join(dir, 'none.safetensors'),
  ])
  t.is(none.status, 0, none.stderr)
  t.regex(
    none.stderr,
    /^note: .*none\.safetensors is the last model: there is no validation data \(--validation 0\)\n$/,
  )
  t.is(CharLanguageModel.load(join(dir, 'none.safetensors')).info?.kept, 'last')
})

test.serial('bad checkpointing flags are one line naming the flag and the value, exit 2, before any work', (t) => {
  const dir = tmp()
  const cases: [string[], RegExp][] = [
    [['--patience', '-1'], /--patience: expected an integer >= 1, got '-1'/],
    [['--patience', '0'], /--patience: expected an integer >= 1, got '0'/],
    [['--patience', 'x'], /--patience: expected an integer >= 1, got 'x'/],
    [['--checkpoint-every', '0'], /--checkpoint-every: expected N \(steps\) or Ne \/ Nepochs \(epochs\).*got '0'/],
    [['--checkpoint-every', 'x'], /--checkpoint-every: .*got 'x'/],
    [['--checkpoint-every', '-1'], /--checkpoint-every: .*got '-1'/],
    [['--checkpoint-every', '2x'], /--checkpoint-every: .*got '2x'/],
    [['--checkpoint-every', '1.5e'], /--checkpoint-every: .*got '1\.5e'/],
    [['--keep', 'first'], /--keep: expected one of best, last, got 'first'/],
    [['--patience', '2', '--validation', '0'], /--patience: early stopping needs validation data; --validation is 0/],
  ]
  for (const [flags, message] of cases) {
    const r = cli(['train', '--text', SONNETS, '--out', join(dir, 'm.safetensors'), ...flags])
    t.is(r.status, 2, `${flags.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, message)
    t.regex(r.stderr, /^rnnlab train: [^\n]*\n$/, flags.join(' '))
    t.is(r.stdout, '')
  }
  const help = cli(['train', '--help'])
  for (const flag of ['--checkpoint-every N', '--patience K', '--keep best|last'])
    t.true(help.stdout.includes(flag), flag)
})
