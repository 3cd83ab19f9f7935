// The progress bar (findings 1 and 5 of issue 13): drawn in a terminal by every training
// command without crashing, right with a seconds budget and after a resume, never wider
// than the terminal, and not drawn when stdout is not a terminal.
import test from 'ava'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { ProgressBar } from '../dist/progress.js'
import { barLines, cli, rnnlabInPty, tmp } from './cli-helpers'
import { fixture } from './helpers'

const SONNETS = fixture('shakespeare.txt')
const SMALL_LM = ['--hidden', '16', '--layers', '1', '--batch-size', '32', '--seq-length', '20']

/** A bar that draws into a string, on a clock the test sets. */
function fakeBar(options: { total?: number; seconds?: number; startDone?: number; columns?: number }) {
  let now = 0
  let drawn = ''
  const stream = {
    isTTY: true,
    writable: true,
    columns: options.columns ?? 100,
    write: (s: string) => {
      drawn += s
      return true
    },
  } as unknown as NodeJS.WriteStream
  const bar = new ProgressBar({
    unit: 'epochs',
    ...options,
    stream,
    enabled: true,
    columns: () => options.columns ?? 100,
    now: () => now,
  })
  return {
    bar,
    at: (seconds: number) => {
      now = seconds * 1000
    },
    drawn: () => drawn,
  }
}

test('with a seconds budget and no epoch total the bar shows no total, a rate and a positive ETA', (t) => {
  const f = fakeBar({ seconds: 12 })
  f.at(1)
  f.bar.render(0.25, {})
  f.at(3)
  const line = f.bar.render(0.8125, { loss: '3.100' })
  t.notRegex(line, /\/0\b/) // was '0.8125/0'
  t.notRegex(line, /ETA -/) // was 'ETA -2s'
  t.regex(line, /0\.81 epochs {2}0\.28 epochs\/s {2}ETA 9s {2}loss 3\.100/)
  // the bar fills with the time spent
  t.regex(line, /^█{6}░{18} /)
  // past the budget: full, ETA 0, never a negative repeat count (the crash of finding 1)
  f.at(20)
  t.regex(f.bar.render(1.5, {}), /^█{24} .*ETA 0s/)
})

test('more work done than the total (an epoch count exceeded) still draws a full bar', (t) => {
  const f = fakeBar({ total: 2 })
  f.at(1)
  t.notThrows(() => f.bar.update(2.5, {}, { force: true }))
  t.regex(f.drawn(), /█{24} 2\.50\/2 epochs/)
})

test('after a resume the rate counts only this run', (t) => {
  const f = fakeBar({ total: 30000, startDone: 20000 })
  f.at(2)
  // 1000 iterations in 2 s: 500/s, not (21000)/2
  const line = f.bar.render(21000, {})
  t.regex(line, /21000\/30000 epochs {2}500 epochs\/s {2}ETA 18s/)
  // without a known start, the first update is the baseline
  const g = fakeBar({ total: 10 })
  g.at(1)
  t.notRegex(g.bar.render(4, {}), /epochs\/s/)
  g.at(3)
  t.regex(g.bar.render(5, {}), /0\.50 epochs\/s {2}ETA 10s/)
})

test('the bar never reaches the last column of a narrow terminal', (t) => {
  for (const columns of [20, 40, 50, 80]) {
    const f = fakeBar({ total: 35000, columns })
    f.at(1)
    f.bar.render(100, {})
    f.at(2)
    const line = f.bar.render(12345, { loss: '23.456789' })
    t.true(Array.from(line).length <= columns - 1, `${columns}: ${line}`)
  }
  // a bar narrower than six cells is left out rather than drawn meaningless
  const f = fakeBar({ total: 10, columns: 30 })
  t.notRegex(f.bar.render(5, { loss: '1.000' }), /[█░]/)
})

test('finding 1: rnnlab train in a terminal draws its bar with an epoch budget and a seconds budget', async (t) => {
  const dir = tmp()
  const epochs = await rnnlabInPty(
    ['train', '--text', SONNETS, ...SMALL_LM, '--epochs', '2', '--out', join(dir, 'e.safetensors')],
    { columns: 100 },
  )
  t.is(epochs.status, 0, epochs.output)
  t.notRegex(epochs.output, /Invalid count|Error/)
  t.true(
    barLines(epochs.output).some((l) => /\/2 epochs/.test(l)),
    epochs.output,
  )
  t.true(existsSync(join(dir, 'e.safetensors')))
  const secs = await rnnlabInPty(
    ['train', '--text', SONNETS, ...SMALL_LM, '--seconds', '1', '--out', join(dir, 's.safetensors')],
    { columns: 100 },
  )
  t.is(secs.status, 0, secs.output)
  t.notRegex(secs.output, /Invalid count|Error/)
  const lines = barLines(secs.output)
  t.true(lines.length > 0, secs.output)
  for (const line of lines) {
    t.notRegex(line, /\/0\b|ETA -/, line)
  }
  t.true(existsSync(join(dir, 's.safetensors')))
})

test('finding 5: in a 40-column terminal no command draws a line that wraps', async (t) => {
  const dir = tmp()
  const names = join(dir, 'names.txt')
  writeFileSync(names, 'aardonyx\nabelisaurus\nzuniceratops\nstegosaurus\n')
  const runs = [
    ['dinos', '--data', names, '--hidden', '10', '--iterations', '3000', '--every', '1000'],
    ['train', '--text', SONNETS, ...SMALL_LM, '--epochs', '2', '--out', join(dir, 'm.safetensors')],
    ['jazz', '--epochs', '12', '--out', join(dir, 'solo.mid')],
  ]
  for (const args of runs) {
    const r = await rnnlabInPty(args, { columns: 40 })
    t.is(r.status, 0, r.output)
    const lines = barLines(r.output)
    t.true(lines.length > 0, `${args[0]} drew no bar: ${JSON.stringify(r.output)}`)
    for (const line of lines) t.true(Array.from(line).length <= 39, `${args[0]}: ${line}`)
  }
})

test('dinos in a terminal: the bar counts the run, and a resumed run starts from the checkpoint', async (t) => {
  const dir = tmp()
  const names = join(dir, 'names.txt')
  const ck = join(dir, 'ck.safetensors')
  writeFileSync(names, 'aardonyx\nabelisaurus\nzuniceratops\nstegosaurus\n')
  const first = await rnnlabInPty(
    ['dinos', '--data', names, '--hidden', '10', '--iterations', '2000', '--every', '1000', '--checkpoint', ck],
    { columns: 100 },
  )
  t.is(first.status, 0, first.output)
  t.true(
    barLines(first.output).some((l) => /\d+\/2000 it/.test(l)),
    first.output,
  )
  const second = await rnnlabInPty(['dinos', '--resume', ck, '--iterations', '4000', '--every', '1000'], {
    columns: 100,
  })
  t.is(second.status, 0, second.output)
  const lines = barLines(second.output)
  t.true(lines.length > 0)
  // every draw is past the resumed iteration
  for (const line of lines) {
    const done = Number(/(\d+)\/4000 it/.exec(line)?.[1])
    t.true(done > 2000, line)
  }
})

test('no bar when stdout is not a terminal (piped), even with stderr a terminal', async (t) => {
  const dir = tmp()
  const piped = cli(['train', '--text', SONNETS, ...SMALL_LM, '--epochs', '1', '--out', join(dir, 'm.safetensors')])
  t.is(piped.status, 0, piped.stderr)
  t.false((piped.stderr + piped.stdout).includes('\x1b[2K'))
  t.false((piped.stderr + piped.stdout).includes('█'))
  const { inPty, rnnlabCommand } = await import('./cli-helpers')
  const r = await inPty(
    `${rnnlabCommand(['train', '--text', SONNETS, ...SMALL_LM, '--epochs', '1', '--out', join(dir, 'n.safetensors')])} | cat`,
  )
  t.is(r.status, 0, r.output)
  t.regex(r.output, /Epoch 1\/1/)
  t.false(r.output.includes('\x1b[2K'))
  t.false(r.output.includes('█'))
})
