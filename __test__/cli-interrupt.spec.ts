// Findings 4 and 7 of issue 13 in a terminal: Ctrl-C writes what the user asked for, where
// they asked (never into the current folder), and prints a resume command that keeps every
// flag and continues the run; a diverged run writes nothing and keeps the last good checkpoint.
import test from 'ava'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import {
  barLines,
  cli,
  ctrlCWhen,
  FOREVER,
  inPty,
  printedResume,
  rnnlabInPty,
  runnable,
  shellQuote,
  tmp,
} from './cli-helpers'
import { fixture } from './helpers'

const SONNETS = fixture('shakespeare.txt')
const SMALL_LM = ['--hidden', '16', '--layers', '1', '--batch-size', '32', '--seq-length', '20']

function names(dir: string): string {
  const file = join(dir, 'names.txt')
  writeFileSync(file, 'aardonyx\nabelisaurus\nzuniceratops\nstegosaurus\n')
  return file
}

test('dinos: Ctrl-C writes --checkpoint and --plot, prints a resume command with every flag, which continues', async (t) => {
  const dir = tmp()
  const ck = join(dir, 'ck.safetensors'),
    plot = join(dir, 'loss.svg')
  const first = await rnnlabInPty(
    [
      'dinos',
      '--data',
      names(dir),
      '--hidden',
      '10',
      '--iterations',
      FOREVER,
      '--every',
      '1000',
      '--checkpoint',
      ck,
      '--plot',
      plot,
    ],
    { cwd: dir, onOutput: ctrlCWhen(/Iteration: 2000,/) },
  )
  t.is(first.status, 130, first.output)
  t.regex(first.output, /interrupted at iteration \d+; checkpoint saved to .*ck\.safetensors/)
  t.regex(readFileSync(plot, 'utf8'), /^<svg/)
  const again = printedResume(first.output)
  // the checkpoint fixes --data and --hidden; every other flag is kept
  t.is(again, `rnnlab dinos --iterations ${FOREVER} --every 1000 --plot ${plot} --resume ${ck}`)
  const saved = cli(['sample', '--model', ck, '--count', '1', '--seed', '0'])
  t.is(saved.status, 0, saved.stderr)
  // the printed command continues from the checkpoint: its bar starts past the saved iteration
  const { NameModel } = await import('../dist/index.js')
  const at = NameModel.load(ck).iteration
  const second = await inPty(runnable(again), { cwd: dir, onOutput: ctrlCWhen(/Iteration: \d+000,/) })
  t.is(second.status, 130, second.output)
  t.false(/Iteration: 0,/.test(second.output))
  for (const line of barLines(second.output)) t.true(Number(/(\d+)\/\d+ it/.exec(line)?.[1]) > at, line)
  t.true(NameModel.load(ck).iteration > at)
  t.deepEqual(readdirSync(dir).sort(), ['ck.safetensors', 'loss.svg', 'names.txt'])
})

test('dinos: Ctrl-C without --checkpoint saves nothing into the current folder and says how to keep progress', async (t) => {
  const dir = tmp()
  const data = names(dir)
  const r = await rnnlabInPty(['dinos', '--data', data, '--hidden', '10', '--iterations', FOREVER, '--every', '1000'], {
    cwd: dir,
    onOutput: ctrlCWhen(/Iteration: 1000,/),
  })
  t.is(r.status, 130, r.output)
  t.regex(r.output, /no checkpoint was saved.*add --checkpoint FILE/)
  t.deepEqual(readdirSync(dir), ['names.txt'])
})

test('train: Ctrl-C writes --out, --checkpoint and --plot; the printed command resumes the same run', async (t) => {
  const dir = tmp()
  const out = join(dir, 'm.safetensors'),
    ck = join(dir, 'ck.safetensors'),
    plot = join(dir, 'loss.svg')
  const args = [
    'train',
    '--text',
    SONNETS,
    ...SMALL_LM,
    '--epochs',
    '100000',
    '--out',
    out,
    '--checkpoint',
    ck,
    '--plot',
    plot,
  ]
  const first = await rnnlabInPty(args, { cwd: dir, onOutput: ctrlCWhen(/Epoch 2\/100000/) })
  t.is(first.status, 130, first.output)
  t.true(existsSync(out) && existsSync(ck))
  t.regex(readFileSync(plot, 'utf8'), /^<svg/)
  const again = printedResume(first.output)
  t.is(again, `rnnlab ${args.map(shellQuote).join(' ')} --resume`)
  const done = Number(/wrote .*: (\d+) epochs/.exec(first.output)?.[1])
  t.true(done >= 2)
  const second = await inPty(runnable(again), { cwd: dir, onOutput: ctrlCWhen(/Epoch \d+\/100000/) })
  t.is(second.status, 130, second.output)
  // the resumed run's first epoch follows the saved ones
  t.is(Number(/Epoch (\d+)\/100000/.exec(second.output)?.[1]), done + 1, second.output)
  t.deepEqual(readdirSync(dir).sort(), ['ck.safetensors', 'loss.svg', 'm.safetensors'])
})

test('train: Ctrl-C without --checkpoint says that nothing was saved to resume from', async (t) => {
  const dir = tmp()
  const r = await rnnlabInPty(
    ['train', '--text', SONNETS, ...SMALL_LM, '--epochs', '100000', '--out', join(dir, 'm.safetensors')],
    { cwd: dir, onOutput: ctrlCWhen(/Epoch 1\/100000/) },
  )
  t.is(r.status, 130, r.output)
  t.regex(r.output, /no checkpoint was saved .*add --checkpoint FILE/)
  t.deepEqual(readdirSync(dir), ['m.safetensors'])
})

test('jazz: Ctrl-C improvises with the model so far and writes --out and --plot', async (t) => {
  const dir = tmp()
  const r = await rnnlabInPty(
    ['jazz', '--epochs', '1000000', '--out', join(dir, 's.mid'), '--plot', join(dir, 's.svg')],
    { cwd: dir, onOutput: ctrlCWhen(/Epoch {2}20\//) },
  )
  t.is(r.status, 130, r.output)
  t.regex(r.output, /interrupted after \d+ of 1000000 epochs/)
  t.is(readFileSync(join(dir, 's.mid')).subarray(0, 4).toString('latin1'), 'MThd')
  t.true(existsSync(join(dir, 's.svg')))
})

test('sample and generate in a terminal print their text and nothing else', async (t) => {
  const dir = tmp()
  const ck = join(dir, 'n.safetensors'),
    lm = join(dir, 'lm.safetensors')
  t.is(cli(['dinos', '--data', names(dir), '--hidden', '10', '--iterations', '500', '--checkpoint', ck]).status, 0)
  t.is(cli(['train', '--text', SONNETS, ...SMALL_LM, '--epochs', '1', '--out', lm]).status, 0)
  const s = await rnnlabInPty(['sample', '--model', ck, '--count', '4', '--seed', '3'])
  t.is(s.status, 0, s.output)
  t.is(s.output, cli(['sample', '--model', ck, '--count', '4', '--seed', '3']).stdout)
  const g = await rnnlabInPty(['generate', '--model', lm, '--prompt', 'Shall I', '--length', '60'])
  t.is(g.status, 0, g.output)
  t.is(g.output, cli(['generate', '--model', lm, '--prompt', 'Shall I', '--length', '60']).stdout)
})

test('finding 7: a diverged train stops with a message, exit 1, no model, the last good checkpoint untouched', async (t) => {
  const dir = tmp()
  const ck = join(dir, 'ck.safetensors'),
    out = join(dir, 'm.safetensors')
  const good = cli([
    'train',
    '--text',
    SONNETS,
    ...SMALL_LM,
    '--epochs',
    '1',
    '--out',
    join(dir, 'good.safetensors'),
    '--checkpoint',
    ck,
  ])
  t.is(good.status, 0, good.stderr)
  const before = readFileSync(ck)
  // --lr 10 without clipping blows up within the first epoch
  const args = [
    'train',
    '--text',
    SONNETS,
    ...SMALL_LM,
    '--epochs',
    '3',
    '--lr',
    '10',
    '--clip',
    '0',
    '--out',
    out,
    '--checkpoint',
    ck,
  ]
  const r = cli(args)
  t.is(r.status, 1, r.stdout)
  t.regex(
    r.stderr,
    /^rnnlab train: the training diverged at epoch .*nothing was written \(.*ck\.safetensors keeps the last good epoch\)\n$/,
  )
  t.false(existsSync(out))
  t.deepEqual(readFileSync(ck), before)
  t.deepEqual(readdirSync(dir).sort(), ['ck.safetensors', 'good.safetensors'])
  // the same in a terminal
  const p = await rnnlabInPty(args)
  t.is(p.status, 1, p.output)
  t.regex(p.output, /diverged/)
  t.false(existsSync(out))
})
