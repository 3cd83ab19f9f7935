// Findings 3, 4 (flag convention), 6, 8 and 10 of issue 13: every early error is one short
// line that names what is wrong, before any work; the same flags mean the same everywhere.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { cli, ROOT, tmp } from './cli-helpers'
import { fixture } from './helpers'

const SONNETS = fixture('shakespeare.txt')
const SMALL_LM = ['--hidden', '16', '--layers', '1', '--batch-size', '32', '--seq-length', '20']
const dir = tmp()
const names = join(dir, 'names.txt')
const dinosModel = join(dir, 'names.safetensors')
const lmModel = join(dir, 'sonnets.safetensors')
const lmCheckpoint = join(dir, 'sonnets-ck.safetensors')

test.before(() => {
  writeFileSync(names, 'aardonyx\nabelisaurus\nzuniceratops\nstegosaurus\nstegoceras\n')
  const a = cli(['dinos', '--data', names, '--hidden', '10', '--iterations', '1000', '--save', dinosModel])
  if (a.status !== 0) throw new Error(a.stderr)
  const b = cli([
    'train',
    '--text',
    SONNETS,
    ...SMALL_LM,
    '--epochs',
    '1',
    '--out',
    lmModel,
    '--checkpoint',
    lmCheckpoint,
    '--quiet',
  ])
  if (b.status !== 0) throw new Error(b.stderr)
})

/** One line on stderr naming the problem, then the pointer to the command's help; exit 2. */
function usageError(t: import('ava').ExecutionContext, args: string[], naming: RegExp) {
  const r = cli(args)
  t.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`)
  t.is(r.stdout, '')
  const lines = r.stderr.split('\n').filter(Boolean)
  t.is(lines.length, 1, r.stderr)
  t.regex(lines[0], naming)
  t.regex(lines[0], new RegExp(`; see 'rnnlab ${args[0]} --help'$`))
  t.notRegex(r.stderr, /Usage|Options:/)
}

test('an unknown flag is named in one line for every command, without the help', (t) => {
  for (const cmd of ['dinos', 'sample', 'train', 'generate', 'jazz']) {
    usageError(t, [cmd, '--bogus'], /^rnnlab \w+: unknown option '--bogus'/)
  }
  const r = cli(['bogus'])
  t.is(r.status, 2)
  t.is(r.stderr, "rnnlab: unknown command 'bogus'; see 'rnnlab --help'\n")
})

test('a bad number names the flag and the value (a negative one is not "ambiguous")', (t) => {
  usageError(t, ['dinos', '--iterations', '-5'], /--iterations: expected an integer >= 0, got '-5'/)
  usageError(t, ['dinos', '--every', 'x'], /--every: expected an integer >= 1, got 'x'/)
  usageError(t, ['train', '--text', SONNETS, '--out', 'm', '--lr', '-1'], /--lr: expected a number >= 0, got '-1'/)
  usageError(t, ['sample', '--model', dinosModel, '--count', '2.5'], /--count/)
  usageError(t, ['generate', '--model', lmModel, '--length', '-3'], /--length: .*'-3'/)
  usageError(t, ['sample', '--model'], /--model needs a value/)
  usageError(t, ['dinos', '--quiet=yes'], /--quiet/)
})

test('a stray positional argument is refused, not ignored', (t) => {
  usageError(t, ['dinos', 'extra'], /unexpected argument 'extra'/)
  usageError(t, ['train', '--text', SONNETS, 'more.txt', '--out', 'm'], /unexpected argument 'more\.txt'/)
  usageError(t, ['generate', '--model', lmModel, 'hello'], /unexpected argument 'hello'/)
})

test('budgets: train --epochs 0, train --seconds 0 and jazz --epochs 0 are refused alike', (t) => {
  const d = tmp()
  const out = join(d, 'm.safetensors')
  usageError(t, ['train', '--text', SONNETS, '--out', out, '--epochs', '0'], /--epochs: expected an integer >= 1/)
  usageError(t, ['train', '--text', SONNETS, '--out', out, '--seconds', '0'], /--seconds: expected a number > 0/)
  usageError(t, ['jazz', '--out', join(d, 's.mid'), '--epochs', '0'], /--epochs: expected an integer >= 1/)
  t.false(existsSync(out))
})

test('train --resume without --checkpoint is refused', (t) => {
  usageError(t, ['train', '--text', SONNETS, '--out', join(tmp(), 'm'), '--resume'], /--resume .*--checkpoint/)
})

test('dinos --resume with --iterations at or below the checkpoint says so and fails', (t) => {
  for (const n of ['100', '1000']) {
    const r = cli(['dinos', '--resume', dinosModel, '--iterations', n])
    t.is(r.status, 2, r.stderr)
    t.is(r.stdout, '')
    t.regex(r.stderr, new RegExp(`--iterations ${n}: .* is already at iteration 1000.*more than 1000`))
  }
})

test('finding 3: every output path is checked before any training, naming the flag', (t) => {
  const missing = join(tmp(), 'missing', 'dir')
  const cases: [string[], string][] = [
    [['train', '--text', SONNETS, '--epochs', '30', '--out', join(missing, 'm.safetensors')], '--out'],
    [
      ['train', '--text', SONNETS, '--epochs', '30', '--out', join(tmp(), 'm'), '--plot', join(missing, 'p.svg')],
      '--plot',
    ],
    [
      ['train', '--text', SONNETS, '--out', join(tmp(), 'm'), '--checkpoint', join(missing, 'ck.safetensors')],
      '--checkpoint',
    ],
    [['dinos', '--save', join(missing, 'ck.safetensors')], '--save'],
    [['dinos', '--checkpoint', join(missing, 'ck.safetensors')], '--checkpoint'],
    [['dinos', '--plot', join(missing, 'p.svg')], '--plot'],
    [['dinos', '--out', join(missing, 'm.safetensors')], '--out'],
    [['jazz', '--out', join(missing, 's.mid')], '--out'],
    [['jazz', '--out', join(tmp(), 's.mid'), '--plot', join(missing, 'r.svg')], '--plot'],
  ]
  for (const [args, flag] of cases) {
    const r = cli(args)
    t.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`)
    t.is(r.stdout, '', 'nothing trained')
    t.is(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr)
    t.true(r.stderr.startsWith(`rnnlab ${args[0]}: ${flag} ${missing}`), r.stderr)
    t.regex(r.stderr, /folder .* does not exist/)
  }
  // a folder given as the file
  const r = cli(['train', '--text', SONNETS, '--out', tmp()])
  t.is(r.status, 2)
  t.regex(r.stderr, /--out .*: is a folder/)
  // two flags naming one file would overwrite each other
  const same = join(tmp(), 'x.safetensors')
  const s = cli(['train', '--text', SONNETS, '--out', same, '--checkpoint', same])
  t.is(s.status, 2)
  t.regex(s.stderr, /--out and --checkpoint name the same file/)
})

test('finding 4: one flag convention, the old spellings kept and said so in --help', (t) => {
  const help = cli(['dinos', '--help'])
  t.is(help.status, 0)
  for (const flag of ['--checkpoint', '--resume', '--out', '--plot', '--seed', '--quiet'])
    t.regex(help.stdout, new RegExp(flag))
  t.regex(help.stdout, /old spelling: --save/)
  for (const cmd of ['train', 'jazz']) {
    const h = cli([cmd, '--help']).stdout
    for (const flag of ['--out', '--plot', '--seed', '--quiet']) t.regex(h, new RegExp(flag), `${cmd} ${flag}`)
  }
  for (const cmd of ['sample', 'generate']) t.regex(cli([cmd, '--help']).stdout, /--seed/)
  // --save and --checkpoint write the same file
  const d = tmp()
  const args = ['dinos', '--data', names, '--hidden', '10', '--iterations', '300', '--quiet']
  t.is(cli([...args, '--save', join(d, 'a.safetensors')]).status, 0)
  t.is(cli([...args, '--checkpoint', join(d, 'b.safetensors')]).status, 0)
  t.deepEqual(readFileSync(join(d, 'a.safetensors')), readFileSync(join(d, 'b.safetensors')))
  const both = cli([...args, '--save', join(d, 'a'), '--checkpoint', join(d, 'b')])
  t.is(both.status, 2)
  t.regex(both.stderr, /--save and --checkpoint are the same flag/)
})

test('finding 4: dinos --resume without --checkpoint writes the progress back to the checkpoint', (t) => {
  const d = tmp()
  const ck = join(d, 'ck.safetensors'),
    straight = join(d, 'straight.safetensors')
  const base = ['--iterations', '2000', '--every', '1000', '--quiet']
  t.is(cli(['dinos', '--data', names, '--hidden', '10', ...base, '--checkpoint', straight]).status, 0)
  t.is(cli(['dinos', '--data', names, '--hidden', '10', '--iterations', '1000', '--checkpoint', ck]).status, 0)
  const r = cli(['dinos', '--resume', ck, ...base])
  t.is(r.status, 0, r.stderr)
  t.deepEqual(readFileSync(ck), readFileSync(straight))
})

test('train --resume FILE continues and writes back to FILE; --resume alone reads --checkpoint', (t) => {
  const d = tmp()
  const ck = join(d, 'ck.safetensors')
  const args = ['train', '--text', SONNETS, ...SMALL_LM, '--quiet']
  // --resume alone with no checkpoint yet starts from scratch (the re-run-after-Ctrl-C idiom)
  const first = cli([...args, '--epochs', '1', '--out', join(d, 'a'), '--checkpoint', ck, '--resume'])
  t.is(first.status, 0, first.stderr)
  t.regex(first.stderr, /no checkpoint at .* yet: starting from scratch/)
  const second = cli([...args, '--epochs', '2', '--out', join(d, 'b'), '--resume', ck])
  t.is(second.status, 0, second.stderr)
  t.regex(second.stdout, /: 2 epochs/)
  const third = cli([...args, '--epochs', '3', '--out', join(d, 'c'), '--checkpoint', ck, '--resume'])
  t.is(third.status, 0, third.stderr)
  t.regex(third.stdout, /: 3 epochs/)
  // the same as three epochs straight
  const straight = cli([...args, '--epochs', '3', '--out', join(d, 's')])
  t.is(straight.status, 0)
  t.deepEqual(readFileSync(join(d, 'c')), readFileSync(join(d, 's')))
})

test('finding 7 (issue 8): a wrong-kind file names its kind and the command that reads it', (t) => {
  const gen = cli(['generate', '--model', dinosModel])
  t.is(gen.status, 2)
  t.is(
    gen.stderr,
    `rnnlab generate: --model ${dinosModel} is a dinos checkpoint (kind "dinos"); read it with 'rnnlab sample' or continue it with 'rnnlab dinos --resume'\n`,
  )
  const resume = cli(['train', '--text', SONNETS, '--out', join(tmp(), 'm'), '--resume', dinosModel])
  t.is(resume.status, 2)
  t.regex(resume.stderr, /--resume .* is a dinos checkpoint \(kind "dinos"\); read it with 'rnnlab sample'/)
  const resumeModel = cli(['train', '--text', SONNETS, '--out', join(tmp(), 'm'), '--resume', lmModel])
  t.is(resumeModel.status, 2)
  t.regex(resumeModel.stderr, /is a train model \(weights only\) \(kind "charlm"\); read it with 'rnnlab generate'/)
  const sample = cli(['sample', '--model', lmModel])
  t.is(sample.status, 2)
  t.regex(
    sample.stderr,
    /--model .* is a train model \(weights only\) \(kind "charlm"\); read it with 'rnnlab generate'/,
  )
  const sampleCk = cli(['sample', '--model', lmCheckpoint])
  t.regex(sampleCk.stderr, /is a train checkpoint \(kind "charlm"\); read it with 'rnnlab generate' or continue/)
  const dinos = cli(['dinos', '--resume', lmCheckpoint])
  t.is(dinos.status, 2)
  t.regex(dinos.stderr, /--resume .* is a train checkpoint/)
})

test('--temperature 0 is greedy in sample too: the same name whatever the seed', (t) => {
  const a = cli(['sample', '--model', dinosModel, '--temperature', '0', '--count', '3', '--seed', '1'])
  t.is(a.status, 0, a.stderr)
  const lines = a.stdout.trim().split('\n')
  t.is(lines.length, 3)
  t.is(new Set(lines).size, 1)
  t.is(cli(['sample', '--model', dinosModel, '--temperature', '0', '--count', '3', '--seed', '9']).stdout, a.stdout)
  const p = cli(['sample', '--model', dinosModel, '--temperature', '0', '--count', '1', '--prefix', 'steg'])
  t.is(p.status, 0, p.stderr)
  t.true(p.stdout.startsWith('Steg'), p.stdout)
  // generate and jazz took 0 already
  t.is(cli(['generate', '--model', lmModel, '--temperature', '0', '--length', '20']).status, 0)
})

test('--top-k means the same in sample, generate and jazz: 1 is greedy, a bad value is one line', (t) => {
  const greedy = cli(['sample', '--model', dinosModel, '--temperature', '0', '--count', '2'])
  const top1 = cli(['sample', '--model', dinosModel, '--top-k', '1', '--count', '2', '--seed', '5'])
  t.is(top1.status, 0, top1.stderr)
  t.is(top1.stdout, greedy.stdout)
  t.is(cli(['sample', '--model', dinosModel, '--top-k', '3', '--count', '4', '--seed', '5']).status, 0)
  for (const args of [
    ['sample', '--model', dinosModel],
    ['generate', '--model', lmModel],
    ['jazz', '--out', 'x.mid'],
  ]) {
    const r = cli([...args, '--top-k', '-2'])
    t.is(r.status, 2, `${args[0]}: ${r.stderr}`)
    t.regex(r.stderr, /--top-k/)
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr)
  }
})

test('finding 10: sample --max-length counts the prefix, and is refused below it', (t) => {
  const short = cli(['sample', '--model', dinosModel, '--max-length', '3', '--prefix', 'stego'])
  t.is(short.status, 2)
  t.regex(short.stderr, /--max-length 3: the prefix 'stego' is 5 characters and counts toward --max-length/)
  t.is(short.stdout, '')
  for (const temperature of ['1', '0']) {
    const r = cli([
      'sample',
      '--model',
      dinosModel,
      '--max-length',
      '7',
      '--prefix',
      'stego',
      '--count',
      '30',
      '--seed',
      '2',
      '--temperature',
      temperature,
    ])
    t.is(r.status, 0, r.stderr)
    for (const name of r.stdout.trim().split('\n')) {
      t.true(name.startsWith('Stego'), name)
      t.true(name.length <= 7, name)
    }
  }
})

test('finding 10: the jazz tempo prints rounded, in the CLI and the example', (t) => {
  const d = tmp()
  const midi = fixture('original_metheny.mid')
  const r = cli(['jazz', '--midi', midi, '--epochs', '1', '--out', join(d, 's.mid')])
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /, 112 bpm\n/)
  t.regex(r.stdout, /at 112 bpm\n/)
  t.notRegex(r.stdout, /112\.\d/)
  const ex = spawnSync(process.execPath, [join(ROOT, 'examples', 'jazz.mjs'), midi], { cwd: d, encoding: 'utf8' })
  t.is(ex.status, 0, ex.stderr)
  t.regex(ex.stdout, /at 112 bpm\n/)
})

test('finding 10: examples/shakespeare.mjs without arguments prints its usage, no stack trace', (t) => {
  const r = spawnSync(process.execPath, [join(ROOT, 'examples', 'shakespeare.mjs')], { encoding: 'utf8' })
  t.is(r.status, 2)
  t.is(r.stderr, 'usage: node examples/shakespeare.mjs TEXT_FILE [seconds]\n')
})

test('finding 10: CR and CRLF line endings train as "\\n"', (t) => {
  const d = tmp()
  // the sonnets file itself has CRLF endings
  const text = readFileSync(SONNETS, 'utf8').slice(0, 20000).replace(/\r\n?/g, '\n')
  writeFileSync(join(d, 'lf.txt'), text)
  writeFileSync(join(d, 'crlf.txt'), text.replace(/\n/g, '\r\n'))
  writeFileSync(join(d, 'cr.txt'), text.replace(/\n/g, '\r'))
  const train = (file: string) => {
    const out = join(d, `${file}.safetensors`)
    const r = cli(['train', '--text', join(d, file), ...SMALL_LM, '--epochs', '1', '--out', out, '--quiet'])
    t.is(r.status, 0, r.stderr)
    return readFileSync(out)
  }
  const lf = train('lf.txt')
  t.deepEqual(train('crlf.txt'), lf)
  t.deepEqual(train('cr.txt'), lf)
  const g = cli(['generate', '--model', join(d, 'crlf.txt.safetensors'), '--length', '300', '--temperature', '1'])
  t.notRegex(g.stdout, /\r/)
})

test('errors from the binding are read by their code, in the new and the old form', async (t) => {
  const { errorCode, errorMessage, isAbort } = await import('../dist/cli.js')
  const modern = Object.assign(new Error('checkpoint: truncated'), { code: 'ERR_BAD_FILE' })
  t.is(errorCode(modern), 'ERR_BAD_FILE')
  t.is(errorMessage(modern), 'checkpoint: truncated')
  const old = new Error('[ERR_BAD_FILE] checkpoint: truncated')
  t.is(errorCode(old), 'ERR_BAD_FILE')
  t.is(errorMessage(old), 'checkpoint: truncated')
  t.is(errorCode(new Error('plain')), undefined)
  t.true(isAbort(new DOMException('stopped', 'AbortError')))
  t.true(isAbort(Object.assign(new Error('jazz fit: aborted'), { code: 'ABORT_ERR' })))
  t.false(isAbort(new Error('x')))
})

test('a failure from the model is one line with its code, no stack', (t) => {
  const d = tmp()
  const bad = join(d, 'bad.safetensors')
  writeFileSync(bad, 'not a checkpoint at all')
  const r = cli(['sample', '--model', bad])
  t.is(r.status, 1)
  t.is(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr)
  t.regex(r.stderr, /^rnnlab sample: .*\[ERR_[A-Z_]+\]\n$/)
  t.notRegex(r.stderr, /\bat /)
})
