// Dinosaurus Island from JS and from the CLI: the course's helper tests with their published
// numbers, the published training trace, exact resume, sampling, checkpoints, the loss plot.
import test from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { NameModel, RandomState, clip, initializeParameters, optimize, sample, type Tensor } from '../dist/index.js'
import { ROOT, fixture, tempDir, testData } from './helpers.js'

const CLI = join(ROOT, 'bin', 'rnnlab.js')
const COURSE_LIST = fixture('dinos_course.txt')
const TRACE = testData('dinos_course_trace.txt')
const tmp = () => tempDir('dinos')

const el = (t: Tensor, ...idx: number[]) => t.data[idx.reduce((flat, i, k) => flat * t.shape[k] + i, 0)]
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300)

function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 64 << 20, cwd: ROOT })
}

// ---- the course's helper tests ---------------------------------------------------

test("clip: the course's test after seed(3) gives its published values", (t) => {
  const rs = new RandomState(3)
  const times10 = (x: Tensor) => ({ shape: x.shape, data: x.data.map((v) => v * 10) })
  const dWax = times10(rs.randn(5, 3)),
    dWaa = times10(rs.randn(5, 5)),
    dWya = times10(rs.randn(2, 5))
  const db = times10(rs.randn(5, 1)),
    dby = times10(rs.randn(2, 1))
  const g = clip({ dWax, dWaa, dWya, db, dby }, 10)
  t.true(rel(el(g.dWya, 1, 2), 0.2971381536101662) < 1e-12)
  t.true(Math.abs(el(g.dby, 1, 0) - 8.45833407) < 1e-8)
  t.is(el(g.dWaa, 1, 2), 10) // clipped
  t.is(el(dWaa, 1, 2) > 10, true) // the input is untouched
  t.throws(() => clip({ dWax, dWaa, dWya, db } as never, 5), { message: /dby/ })
  t.throws(() => clip({ dWax, dWaa, dWya, db, dby }, Number.NaN), { message: /max|clip|NaN/i })
})

test("optimize: the course's test after seed(1) gives its published values", (t) => {
  const rs = new RandomState(1)
  const a_prev = rs.randn(100, 1)
  const Wax = rs.randn(100, 27),
    Waa = rs.randn(100, 100),
    Wya = rs.randn(27, 100)
  const b = rs.randn(100, 1),
    by = rs.randn(27, 1)
  const parameters = { Wax, Waa, Wya, b, by }
  const before = Waa.data[0]
  const {
    loss,
    gradients: g,
    a_last,
  } = optimize([12, 3, 5, 11, 22, 3], [4, 14, 11, 22, 25, 26], a_prev, parameters, 0.01)
  t.true(rel(loss, 126.503975721654) < 1e-9, `loss ${loss}`)
  t.true(Math.abs(el(g.dWaa, 1, 2) - 0.194709315347) < 1e-12)
  let arg = 0
  g.dWax.data.forEach((v, i) => {
    if (v > g.dWax.data[arg]) arg = i
  })
  t.is(arg, 93)
  t.true(Math.abs(el(g.dWya, 1, 2) - -0.007773876032) < 1e-12)
  t.true(Math.abs(el(g.db, 4, 0) - -0.06809825) < 1e-8)
  t.true(Math.abs(el(g.dby, 1, 0) - 0.01538192) < 1e-8)
  t.true(Math.abs(el(a_last, 4, 0) - -1) < 1e-9)
  // the course updates its parameters dict in place
  t.not(Waa.data[0], before)
  t.throws(() => optimize([null, 99], [1, 2], a_prev, parameters), { message: /X\[1\].*0\.\.27/ })
  t.throws(() => optimize([null, 1], [1], a_prev, parameters), { message: /same length/ })
})

test("sample: the course's test after seed(2) starts with its published indices and ends at '\\n'", (t) => {
  const rs = new RandomState(2)
  const Wax = rs.randn(100, 27),
    Waa = rs.randn(100, 100),
    Wya = rs.randn(27, 100)
  const b = rs.randn(100, 1),
    by = rs.randn(27, 1)
  const ix = sample({ Wax, Waa, Wya, b, by }, { '\n': 0, a: 1 }, 0)
  t.deepEqual(ix.slice(0, 12), [12, 17, 24, 14, 13, 9, 10, 22, 24, 6, 13, 11])
  t.is(ix[ix.length - 1], 0)
  t.true(ix.length <= 51)
  t.throws(() => sample({ Wax, Waa, Wya, b, by }, { a: 1 }, 0), { message: /'\\n'/ })
})

test('initializeParameters: seed(1) randn·0.01 in the course order, zero biases; huge sizes are refused', (t) => {
  const p = initializeParameters(50, 27, 27)
  const rs = new RandomState(1)
  t.deepEqual(
    Array.from(p.Wax.data),
    Array.from(rs.randn(50, 27).data, (v) => v * 0.01),
  )
  t.deepEqual(
    Array.from(p.Waa.data),
    Array.from(rs.randn(50, 50).data, (v) => v * 0.01),
  )
  t.deepEqual(p.b.shape, [50, 1])
  t.true(p.by.data.every((v) => v === 0))
  t.throws(() => initializeParameters(1 << 20, 1 << 20, 27), { message: /limit/ })
})

// ---- training: the published trace, through the CLI ------------------------------

test("rnnlab dinos prints the course's published trace (first 12 000 iterations) on the course's list", (t) => {
  t.true(existsSync(COURSE_LIST), `${COURSE_LIST} is needed (the course's exact list)`)
  const r = cli(['dinos', '--data', COURSE_LIST, '--iterations', '12001'])
  t.is(r.status, 0, r.stderr)
  const lines = (s: string) => s.split('\n').filter((l) => l.length > 0)
  const expected = lines(readFileSync(TRACE, 'utf8'))
  const upto = expected.findIndex((l) => l.startsWith('Iteration: 14000'))
  const got = lines(r.stdout)
  t.is(got.length, 7 * 8) // 7 reports (0, 2000, …, 12000) of 1 + 7 lines
  t.deepEqual(got, expected.slice(0, upto))
  t.is(got[0], 'Iteration: 0, Loss: 23.087336')
  t.is(got[6 * 8], 'Iteration: 12000, Loss: 23.291971')
  t.is(r.stderr, '') // off a TTY: plain lines only, no progress bar
})

test("--names N / { names }: the course's model(dino_names=N) starts the smoothed loss at get_initial_loss(vocab, N)", (t) => {
  // the course: loss = get_initial_loss(vocab_size, dino_names) = −log(1/vocab_size)·dino_names
  const model = NameModel.fromFile(COURSE_LIST, { names: 3 })
  t.true(Math.abs(model.loss - -Math.log(1 / 27) * 3) < 1e-12, `initial loss ${model.loss}`)
  t.true(Math.abs(NameModel.fromFile(COURSE_LIST).loss - -Math.log(1 / 27) * 7) < 1e-12)
  // the CLI: iteration 0 differs from the published 7-name trace by exactly 4·ln 27·0.999
  const r = cli(['dinos', '--data', COURSE_LIST, '--iterations', '1', '--names', '3'])
  t.is(r.status, 0, r.stderr)
  const lines = r.stdout.split('\n').filter((l) => l.length > 0)
  const m = /^Iteration: 0, Loss: ([0-9.]+)$/.exec(lines[0])
  t.truthy(m, lines[0])
  t.true(Math.abs(Number(m![1]) - (23.087336 - 4 * Math.log(27) * 0.999)) < 2e-6, lines[0])
  t.is(lines.length, 1 + 3) // the report and its 3 names
})

test('rnnlab dinos --fast prints the same first 12 000 iterations, then drifts only in the last bits', (t) => {
  const r = cli(['dinos', '--fast', '--data', COURSE_LIST, '--iterations', '16001'])
  t.is(r.status, 0, r.stderr)
  const lines = (s: string) => s.split('\n').filter((l) => l.length > 0)
  const expected = lines(readFileSync(TRACE, 'utf8'))
  const upto = expected.findIndex((l) => l.startsWith('Iteration: 14000'))
  const got = lines(r.stdout)
  t.is(got.length, 9 * 8)
  t.deepEqual(got.slice(0, upto), expected.slice(0, upto))
  // by 16 000 the two runs may differ, but only as two float64 implementations do
  const loss = (l: string) => Number(l.split('Loss: ')[1])
  t.true(Math.abs(loss(got[8 * 8]) - loss(expected[8 * 8])) < 0.2, got[8 * 8])
})

test("arithmetic: 'fast' is kept by a checkpoint and resumes bit-identically; bad values are named", async (t) => {
  const dir = tmp()
  const names = ['aardonyx', 'abelisaurus', 'zuniceratops', 'ænimasaurus', 'yangchuanosaurus', 'zby']
  const straight = NameModel.fromNames(names, { hidden: 20, arithmetic: 'fast' })
  t.is(straight.arithmetic, 'fast')
  t.is(NameModel.fromNames(names).arithmetic, 'numpy')
  await straight.train({ iterations: 3000 })
  const first = NameModel.fromNames(names, { hidden: 20, arithmetic: 'fast' })
  await first.train({ iterations: 1000 })
  first.save(join(dir, 'fast.safetensors'))
  const resumed = NameModel.load(join(dir, 'fast.safetensors'))
  t.is(resumed.arithmetic, 'fast')
  await resumed.train({ iterations: 3000 })
  const a = straight.parameters(),
    b = resumed.parameters()
  for (const k of ['Wax', 'Waa', 'Wya', 'b', 'by'] as const) t.deepEqual(b[k].data, a[k].data, k)
  // the numpy arithmetic trains the same model to rounding, not to the bit
  const numpy = NameModel.fromNames(names, { hidden: 20 })
  await numpy.train({ iterations: 3000 })
  const c = numpy.parameters()
  t.notDeepEqual(c.Waa.data, a.Waa.data)
  t.true(Math.abs(numpy.loss - straight.loss) < 1e-6)
  // @ts-expect-error: not an arithmetic
  t.throws(() => NameModel.fromNames(names, { arithmetic: 'quick' }), {
    message: /arithmetic: expected 'numpy' or 'fast', got "quick"/,
  })
  t.regex(
    cli(['dinos', '--resume', join(dir, 'fast.safetensors'), '--fast']).stderr,
    /--fast cannot be combined with --resume/,
  )
})

// ---- resume, checkpoints -------------------------------------------------------

test('2000 + 2000 iterations (save, load, resume) give bit-identical weights to 4000 straight', async (t) => {
  const dir = tmp()
  const names = ['aardonyx', 'abelisaurus', 'zuniceratops', 'ænimasaurus', 'yangchuanosaurus', 'zby']
  const straight = NameModel.fromNames(names, { hidden: 20 })
  await straight.train({ iterations: 4000 })
  const first = NameModel.fromNames(names, { hidden: 20 })
  await first.train({ iterations: 2000 })
  first.save(join(dir, 'half.safetensors'))
  const resumed = NameModel.load(join(dir, 'half.safetensors'))
  t.is(resumed.iteration, 2000)
  t.is(resumed.loss, first.loss)
  await resumed.train({ iterations: 4000 })
  const a = straight.parameters(),
    b = resumed.parameters()
  for (const k of ['Wax', 'Waa', 'Wya', 'b', 'by'] as const) t.deepEqual(b[k].data, a[k].data, k)
  t.is(resumed.loss, straight.loss)
  t.deepEqual(resumed.sample({ seed: 7, count: 5 }), straight.sample({ seed: 7, count: 5 }))
})

test('rnnlab dinos --save then --resume continues bit-identically (CLI)', (t) => {
  const dir = tmp()
  const data = join(dir, 'names.txt')
  writeFileSync(data, 'Aardonyx\nAbelisaurus\nZuniceratops\n\nYangchuanosaurus\n')
  const straight = join(dir, 'straight.safetensors'),
    half = join(dir, 'half.safetensors')
  t.is(cli(['dinos', '--data', data, '--iterations', '3000', '--every', '1000', '--save', straight]).status, 0)
  const a = cli(['dinos', '--data', data, '--iterations', '1500', '--every', '1000', '--save', half])
  t.is(a.status, 0, a.stderr)
  const b = cli(['dinos', '--resume', half, '--iterations', '3000', '--every', '1000', '--save', half])
  t.is(b.status, 0, b.stderr)
  t.true(b.stdout.startsWith('Iteration: 2000,'), b.stdout)
  t.deepEqual(readFileSync(half), readFileSync(straight))
  t.regex(cli(['dinos', '--resume', half, '--hidden', '10']).stderr, /--hidden cannot be combined with --resume/)
})

test('a corrupt, truncated or foreign checkpoint is a clear error naming the file', async (t) => {
  const dir = tmp()
  const good = join(dir, 'good.safetensors')
  const model = NameModel.fromNames(['abc', 'abd'], { hidden: 4 })
  await model.train({ iterations: 10 })
  model.save(good)
  const bytes = readFileSync(good)
  const cases: Record<string, Buffer> = {
    truncated: bytes.subarray(0, bytes.length - 17),
    empty: Buffer.alloc(0),
    foreign: Buffer.from('{"hello": "world"}\n'),
    flipped: Buffer.from(bytes.map((v, i) => (i === 20 ? v ^ 0xff : v))),
  }
  for (const [name, content] of Object.entries(cases)) {
    const path = join(dir, `${name}.safetensors`)
    writeFileSync(path, content)
    const err = t.throws(() => NameModel.load(path), undefined, name)
    t.true(
      err!.message.includes(path) || /checkpoint|safetensors|header/i.test(err!.message),
      `${name}: ${err!.message}`,
    )
  }
  t.throws(() => NameModel.load(join(dir, 'missing.safetensors')), { message: /missing\.safetensors/ })
  // a failed save leaves no half-written file behind, and the old one intact
  t.throws(() => model.save(join(dir, 'no-such-dir', 'x.safetensors')))
  t.deepEqual(readFileSync(good), bytes)
})

// ---- sampling ---------------------------------------------------------------------

test('sample: seeded, parallel yet deterministic, prefix, temperature, unknown characters named', async (t) => {
  const model = NameModel.fromNames(['brontosaurus', 'stegosaurus', 'steneosaurus', 'ankylosaurus', 'stygimoloch'], {
    hidden: 24,
  })
  await model.train({ iterations: 3000 })
  const many = model.sample({ seed: 11, count: 64 })
  t.is(many.length, 64)
  t.deepEqual(model.sample({ seed: 11, count: 64 }), many)
  // name k depends only on seed + k: one at a time gives the same names
  t.deepEqual(
    [0, 1, 2, 3].map((k) => model.sample({ seed: 11 + k, count: 1 })[0]),
    many.slice(0, 4),
  )
  t.true(new Set(many).size > 1, 'samples are not all the same name')
  for (const n of model.sample({ seed: 3, count: 20, prefix: 'Ste' })) t.true(n.startsWith('ste'), n)
  t.true(model.sample({ seed: 1, count: 20, maxLength: 5 }).every((n) => n.length <= 5))
  const cold = model.sample({ seed: 5, count: 40, temperature: 0.05 })
  t.true(new Set(cold).size < new Set(model.sample({ seed: 5, count: 40, temperature: 2 })).size)
  t.throws(() => model.sample({ prefix: 'stéx' }), { message: /"é"/ })
  // temperature 0 is greedy (the contract of every model class): the same name whatever the seed
  const greedy = model.sample({ temperature: 0, seed: 1, count: 3 })
  t.deepEqual(model.sample({ temperature: 0, seed: 9, count: 3 }), greedy)
  t.is(new Set(greedy).size, 1)
  t.throws(() => model.sample({ temperature: -1 }), { message: /temperature/, code: 'ERR_INVALID_ARG' })
  // the prefix counts toward maxLength (finding 10: `--max-length 3 --prefix stego` printed a longer name)
  t.throws(() => model.sample({ prefix: 'stego', maxLength: 3 }), { message: /maxLength/, code: 'ERR_INVALID_ARG' })
  for (const n of model.sample({ seed: 2, count: 20, prefix: 'ste', maxLength: 5 })) t.true(n.length <= 5, n)
  t.is(model.sampleCourse(0).at(-1), 0) // the course's sample ends with '\n' (index 0)
})

test('names beyond a–z (UTF-8) train and sample', async (t) => {
  const model = NameModel.fromNames(['Ænima', 'Çédric', 'Zoë', 'Łukasz', 'Ærøskøbing', 'Østergaard', '東京'], {
    hidden: 16,
  })
  t.true(model.vocabulary.chars.includes('æ'))
  t.true(model.vocabulary.chars.includes('東'))
  await model.train({ iterations: 500 })
  const names = model.sample({ seed: 0, count: 10 })
  t.is(names.length, 10)
  for (const n of names) for (const ch of n) t.true(model.vocabulary.chars.includes(ch))
})

// ---- the event loop, cancellation --------------------------------------------------

test('training runs off the JS thread (a timer fires) and an AbortSignal stops it cleanly', async (t) => {
  const model = NameModel.fromNames(['aardonyx', 'abelisaurus', 'zuniceratops'], { hidden: 64 })
  let ticks = 0
  const timer = setInterval(() => ticks++, 5)
  const controller = new AbortController()
  let reports = 0
  const run = model.train({
    iterations: 10_000_000,
    every: 1000,
    onProgress: (p) => {
      if (p.done >= 20_000) controller.abort()
    },
    onReport: () => reports++,
    signal: controller.signal,
  })
  const err = await run.then(
    () => undefined,
    (e: Error) => e,
  )
  t.is(err?.name, 'AbortError')
  clearInterval(timer)
  t.true(ticks > 3, `timer fired ${ticks} times`)
  t.true(model.iteration >= 20_000 && model.iteration < 10_000_000)
  t.true(reports >= 20)
  // still usable after the abort
  const before = model.iteration
  await model.train({ iterations: before + 10 })
  t.is(model.iteration, before + 10)
})

test('a diverging run stops with a clear error and keeps its last good state', async (t) => {
  const model = NameModel.fromNames(['aardonyx', 'abelisaurus'], { hidden: 8, learningRate: 1e300, clip: 0 })
  await t.throwsAsync(model.train({ iterations: 1000 }), { message: /loss became|lower the learning rate/ })
  // the failing step changed nothing: the model holds the iteration before it, finite loss
  const stopped = model.iteration
  t.true(stopped >= 1 && stopped < 1000)
  t.true(Number.isFinite(model.loss))
  // and it fails the same way again, from the same state
  await t.throwsAsync(model.train({ iterations: 1000 }), { message: /loss became/ })
  t.is(model.iteration, stopped)
})

// ---- CLI: plot, sample, SIGINT --------------------------------------------------

test('rnnlab dinos --plot writes an SVG loss curve; rnnlab sample reads the checkpoint', (t) => {
  const dir = tmp()
  const data = join(dir, 'names.txt')
  writeFileSync(data, 'Aardonyx\nAbelisaurus\nZuniceratops\nYangchuanosaurus\nStegosaurus\n')
  const svgPath = join(dir, 'loss.svg'),
    model = join(dir, 'm.safetensors')
  const r = cli(['dinos', '--data', data, '--iterations', '4000', '--plot', svgPath, '--save', model, '--quiet'])
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /^Iteration: 3999, Loss: \d+\.\d{6}\n$/)
  const svg = readFileSync(svgPath, 'utf8')
  t.true(svg.startsWith('<svg'))
  t.regex(svg, /<polyline|<path/)
  t.regex(svg, />iteration</)
  t.regex(svg, /smoothed loss/)
  const s = cli(['sample', '--model', model, '--count', '5', '--seed', '1', '--prefix', 'st', '--temperature', '0.7'])
  t.is(s.status, 0, s.stderr)
  const names = s.stdout.trim().split('\n')
  t.is(names.length, 5)
  for (const n of names) t.true(n.startsWith('St'), n)
  t.is(
    cli(['sample', '--model', model, '--count', '5', '--seed', '1', '--prefix', 'st', '--temperature', '0.7']).stdout,
    s.stdout,
  )
  const bad = cli(['sample', '--model', model, '--prefix', 'q!'])
  t.not(bad.status, 0)
  t.regex(bad.stderr, /"!"/)
})

test('Ctrl-C during rnnlab dinos saves a checkpoint atomically and --resume continues', async (t) => {
  const dir = tmp()
  const ckpt = join(dir, 'ck.safetensors')
  const child = spawn(
    process.execPath,
    [CLI, 'dinos', '--hidden', '100', '--iterations', '100000000', '--every', '1000', '--save', ckpt],
    { cwd: ROOT },
  )
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  let out = ''
  let sent = false
  child.stdout.on('data', (d) => {
    out += d
    // one Ctrl-C (a second one means "quit at once")
    if (!sent && out.includes('Iteration: 2000,')) {
      sent = true
      child.kill('SIGINT')
    }
  })
  let err = ''
  child.stderr.on('data', (d) => (err += d))
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  t.is(code, 130, err)
  t.regex(err, /checkpoint saved/)
  const model = NameModel.load(ckpt)
  t.true(model.iteration > 2000)
  const r = cli(['dinos', '--resume', ckpt, '--iterations', String(model.iteration + 5), '--quiet'])
  t.is(r.status, 0, r.stderr)
  t.is(r.stdout, `Iteration: ${model.iteration + 4}, Loss: ${r.stdout.split('Loss: ')[1]?.trim()}\n`)
})
