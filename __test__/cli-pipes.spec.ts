// Finding 2 of issue 13: `rnnlab … | head` ends quietly (no EPIPE stack) for every command
// that prints, and still writes every file it was asked for.
import test from 'ava'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { cli, inPty, pipeline, rnnlabCommand, tmp } from './cli-helpers'
import { fixture } from './helpers'

const SONNETS = fixture('shakespeare.txt')
const SMALL_LM = ['--hidden', '16', '--layers', '1', '--batch-size', '32', '--seq-length', '20']
const dir = tmp()
const names = join(dir, 'names.txt')
const dinosModel = join(dir, 'names.safetensors')
const lmModel = join(dir, 'sonnets.safetensors')

test.before(() => {
  writeFileSync(names, 'aardonyx\nabelisaurus\nzuniceratops\nstegosaurus\n')
  const a = cli(['dinos', '--data', names, '--hidden', '10', '--iterations', '500', '--checkpoint', dinosModel])
  if (a.status !== 0) throw new Error(a.stderr)
  const b = cli(['train', '--text', SONNETS, ...SMALL_LM, '--epochs', '1', '--out', lmModel, '--quiet'])
  if (b.status !== 0) throw new Error(b.stderr)
})

/** A quiet end: status 0, nothing on stderr (no EPIPE, no stack). */
function quiet(t: import('ava').ExecutionContext, r: { status: number | null; stderr: string }) {
  t.is(r.status, 0, r.stderr)
  t.is(r.stderr, '')
}

test('rnnlab dinos | head -3 stops at once and quietly', (t) => {
  const r = pipeline(`${rnnlabCommand(['dinos'])} | head -3`)
  quiet(t, r)
  t.is(r.stdout.split('\n').length, 4)
  t.regex(r.stdout, /^Iteration: 0, Loss: /)
})

test('rnnlab dinos | head -3 with --checkpoint and --plot finishes and writes both', (t) => {
  const d = tmp()
  const ck = join(d, 'ck.safetensors'),
    plot = join(d, 'loss.svg')
  const args = ['dinos', '--data', names, '--hidden', '10', '--iterations', '3000', '--every', '100']
  const r = pipeline(`${rnnlabCommand([...args, '--checkpoint', ck, '--plot', plot])} | head -3`)
  quiet(t, r)
  t.true(existsSync(ck))
  t.regex(readFileSync(plot, 'utf8'), /^<svg/)
  // the same model as an unpiped run
  const ref = join(d, 'ref.safetensors')
  t.is(cli([...args, '--checkpoint', ref]).status, 0)
  t.deepEqual(readFileSync(ck), readFileSync(ref))
})

test('rnnlab sample | head -3', (t) => {
  const r = pipeline(
    `${rnnlabCommand(['sample', '--model', dinosModel, '--count', '200000', '--seed', '1'])} | head -3`,
  )
  quiet(t, r)
  t.is(r.stdout.trim().split('\n').length, 3)
})

test('rnnlab generate | head -c 40', (t) => {
  const r = pipeline(`${rnnlabCommand(['generate', '--model', lmModel, '--length', '200000'])} | head -c 40`)
  quiet(t, r)
  t.is(r.stdout.length, 40)
})

test('rnnlab jazz --out --plot | head -1 writes the solo and the piano roll', (t) => {
  const d = tmp()
  const solo = join(d, 'solo.mid'),
    roll = join(d, 'roll.svg')
  const r = pipeline(`${rnnlabCommand(['jazz', '--epochs', '20', '--out', solo, '--plot', roll])} | head -1`)
  quiet(t, r)
  t.is(r.stdout.split('\n').length, 2)
  t.is(readFileSync(solo).subarray(0, 4).toString('latin1'), 'MThd')
  t.regex(readFileSync(roll, 'utf8'), /^<svg/)
})

test('rnnlab train --out --checkpoint --plot | head -1 writes all three', (t) => {
  const d = tmp()
  const model = join(d, 'm.safetensors'),
    ck = join(d, 'ck.safetensors'),
    plot = join(d, 'loss.svg')
  const r = pipeline(
    `${rnnlabCommand(['train', '--text', SONNETS, ...SMALL_LM, '--epochs', '3', '--out', model, '--checkpoint', ck, '--plot', plot])} | head -1`,
  )
  quiet(t, r)
  t.true(existsSync(model))
  t.true(existsSync(ck))
  t.regex(readFileSync(plot, 'utf8'), /^<svg/)
})

test('in a terminal, rnnlab dinos | head -3 shows three lines and nothing else', async (t) => {
  const r = await inPty(`${rnnlabCommand(['dinos'])} | head -3`)
  t.is(r.status, 0, r.output)
  t.notRegex(r.output, /EPIPE|Error|\bat /)
  t.is(r.output.trim().split('\n').length, 3, r.output)
})
