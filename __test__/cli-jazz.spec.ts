// `rnnlab jazz --checkpoint/--resume` (issue 13): the checkpoint is written at the end and on
// Ctrl-C, the printed resume command keeps every flag and continues the run, a resumed run
// equals an unbroken one byte for byte, and wrong files and flags are refused before any work.
import test from 'ava'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

import { JazzImproviser, music, NameModel } from '../dist/index.js'
import { fixture } from './helpers.js'
import { cli, ctrlCWhen, FOREVER, inPty, printedResume, rnnlabInPty, runnable, tmp } from './cli-helpers'

test('jazz: Ctrl-C writes --checkpoint and prints a resume command with every flag, which continues', async (t) => {
  const dir = tmp()
  const ck = join(dir, 'ck.safetensors'),
    out = join(dir, 'solo.mid')
  const args = ['jazz', '--seed', '4', '--epochs', FOREVER, '--temperature', '0.5', '--out', out, '--checkpoint', ck]
  const first = await rnnlabInPty(args, { cwd: dir, onOutput: ctrlCWhen(/Epoch +20\//) })
  t.is(first.status, 130, first.output)
  t.regex(first.output, /interrupted after \d+ of 100000000 epochs/)
  t.regex(first.output, /checkpoint saved to .*ck\.safetensors/)
  const again = printedResume(first.output)
  // the checkpoint fixes --seed (and the section); every other flag is kept
  t.is(again, `rnnlab jazz --epochs ${FOREVER} --temperature 0.5 --out ${out} --resume ${ck}`)
  const at = JazzImproviser.load(ck).epochsDone
  t.true(at >= 20)
  const second = await inPty(runnable(again), { cwd: dir, onOutput: ctrlCWhen(/Epoch +\d+\/.*\n.*Epoch +\d+\//) })
  t.is(second.status, 130, second.output)
  t.regex(second.output, new RegExp(`resuming from .*ck\\.safetensors at epoch ${at}`))
  const epochs = [...second.output.matchAll(/Epoch +(\d+)\//g)].map((m) => Number(m[1]))
  t.true(epochs.length > 0 && epochs.every((e) => e > at), second.output)
  t.true(JazzImproviser.load(ck).epochsDone > at)
  t.deepEqual(readdirSync(dir).sort(), ['ck.safetensors', 'solo.mid'])
})

test('jazz: --epochs 20 --checkpoint, then --resume --epochs 40, equals --epochs 40 byte for byte', (t) => {
  const dir = tmp()
  const ck = join(dir, 'ck.safetensors'),
    straightCk = join(dir, 'straight.safetensors')
  const common = ['--temperature', '0.7', '--quiet']
  let r = cli(['jazz', '--seed', '2', '--epochs', '20', '--out', join(dir, 'a.mid'), '--checkpoint', ck, ...common])
  t.is(r.status, 0, r.stderr)
  r = cli(['jazz', '--resume', ck, '--epochs', '40', '--out', join(dir, 'b.mid'), ...common])
  t.is(r.status, 0, r.stderr)
  r = cli(['jazz', '--seed', '2', '--epochs', '40', '--out', join(dir, 'c.mid'), '--checkpoint', straightCk, ...common])
  t.is(r.status, 0, r.stderr)
  t.deepEqual(readFileSync(join(dir, 'b.mid')), readFileSync(join(dir, 'c.mid')))
  // the resume wrote its progress back to the file it came from
  t.deepEqual(readFileSync(ck), readFileSync(straightCk))
  // --resume alone continues from --checkpoint
  r = cli(['jazz', '--checkpoint', ck, '--resume', '--epochs', '41', '--out', join(dir, 'd.mid'), ...common])
  t.is(r.status, 0, r.stderr)
})

test('jazz: wrong files and flags with --resume are refused before any work', (t) => {
  const dir = tmp()
  const out = join(dir, 's.mid')
  const ck = join(dir, 'ck.safetensors')
  t.is(cli(['jazz', '--epochs', '1', '--out', out, '--checkpoint', ck]).status, 0)
  const names = join(dir, 'names.safetensors')
  const refused = (args: string[], naming: RegExp) => {
    const r = cli(['jazz', '--out', out, ...args])
    t.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`)
    t.is(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr)
    t.regex(r.stderr, naming)
  }
  refused(['--resume', ck, '--seed', '3'], /--seed cannot be combined with --resume/)
  refused(['--resume', ck, '--epochs', '1'], /already at epoch 1.*ask for more than 1/)
  refused(['--resume', join(dir, 'none.safetensors')], /--resume .*none\.safetensors: no such file/)
  refused(['--checkpoint', join(dir, 'missing', 'ck.safetensors')], /--checkpoint/)
  refused(['--resume'], /--resume without a file needs --checkpoint/)
  refused(['--checkpoint', out], /same file/)
  NameModel.fromNames(['stegosaurus', 'aardonyx'], { hidden: 5 }).save(names)
  refused(['--resume', names], /is a dinos checkpoint \(kind "dinos"\); .*'rnnlab sample'/)
  // and the commands that read other kinds name jazz files
  const s = cli(['sample', '--model', ck])
  t.is(s.status, 2, s.stderr)
  t.regex(s.stderr, /is a jazz checkpoint \(kind "jazz"\); continue it with 'rnnlab jazz --resume'/)
})

test('jazz --grammar deepjazz writes a valid solo; a bad --grammar is one line, exit 2', (t) => {
  const dir = tmp()
  const out = join(dir, 'solo.mid')
  const metheny = fixture('original_metheny.mid')
  const r = cli(['jazz', '--grammar', 'deepjazz', '--midi', metheny, '--epochs', '5', '--out', out])
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /corpus length: 193, unique values: 78, measures: 18, grammar: deepjazz/)
  const song = music.readMidiFile(out)
  const solo = song.tracks.find((tr) => tr.name === 'Solo (rnnlab)')!
  t.true(solo.notes.length > 18)
  t.true(solo.notes.every((n) => n.velocity === 90))
  t.is(Math.round(song.tempos[0].bpm), 112)
  const bad = cli(['jazz', '--grammar', 'music21', '--out', join(dir, 'x.mid')])
  t.is(bad.status, 2)
  t.is(bad.stderr.trim().split('\n').length, 1, bad.stderr)
  t.regex(bad.stderr, /--grammar: expected rnnlab or deepjazz, got 'music21'/)
  t.deepEqual(readdirSync(dir), ['solo.mid'])
  // the checkpoint fixes the grammar
  const resumed = cli(['jazz', '--resume', join(dir, 'ck.safetensors'), '--grammar', 'deepjazz', '--out', out])
  t.is(resumed.status, 2)
  t.regex(resumed.stderr, /--grammar cannot be combined with --resume/)
})
