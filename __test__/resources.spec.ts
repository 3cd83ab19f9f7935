// Resources: thousands of create/use/free cycles from JS keep resident memory bounded.
// The cycles run in a child `node --expose-gc` (ava's nodeArguments are fixed) so that the
// measurement can force full collections: RSS is read after a warm-up and at the end, with
// `gc()` and a few event-loop turns first so napi finalizers (which free the Rust-owned
// tensors) have run. One cycle allocates ~40 KB of tensors and caches, so leaking them over
// 10 000 cycles would be ~400 MB, far above the 50 MB bound. The cycles themselves run in a
// synchronous loop, as a user's own training loop would: results and caches live in
// engine-owned memory, which GC frees without waiting for the event loop.
import test from 'ava'
import { spawn } from 'node:child_process'
import * as path from 'node:path'

import * as api from '../dist/index.js'

const DIST = path.join(process.cwd(), 'dist', 'index.js')
const BOUND_MB = 50

/** The child: runs `cycle(i)` `warmup` times, measures, runs it `cycles` times, measures. */
const CHILD = `
const api = require(process.argv[1])
const mode = process.argv[2]
const cycles = Number(process.argv[3])
const warmup = Number(process.argv[4])
const MB = 1024 * 1024

async function settle() {
  // Full collections, with event-loop turns between them so napi finalizers run.
  for (let k = 0; k < 4; k++) {
    global.gc()
    await new Promise((r) => setImmediate(r))
  }
}

function refused(f) {
  try { f() } catch (e) { if (!(e instanceof Error)) throw e; return }
  throw new Error('expected a refusal')
}

const { RandomState, zeros, tensor } = api

// One step-by-step cycle: a RandomState, forward and backward through RNN and LSTM cells and
// sequences (the caches are native objects freed by GC), its state saved and restored, and two
// refused calls (the error paths must not leak their argument copies either).
// (n_x, n_a, n_y, m, T_x) = (4, 8, 4, 4, 6): ~40 KB of tensors and caches per cycle.
function stepCycle(i) {
  const rs = new RandomState(i)
  const n_x = 4, n_a = 8, n_y = 4, m = 4, T = 6
  const rnnP = { Wax: rs.randn(n_a, n_x), Waa: rs.randn(n_a, n_a), Wya: rs.randn(n_y, n_a), ba: rs.randn(n_a, 1), by: rs.randn(n_y, 1) }
  const x = rs.randn(n_x, m, T), a0 = rs.randn(n_a, m)
  const f = api.rnnForward(x, a0, rnnP)
  const g = api.rnnBackward(f.a, f.caches)
  const c = api.rnnCellForward(rs.randn(n_x, m), a0, rnnP)
  api.rnnCellBackward(c.a_next, c.cache)
  const lstmP = {}
  for (const k of ['f', 'i', 'c', 'o']) { lstmP['W' + k] = rs.randn(n_a, n_a + n_x); lstmP['b' + k] = rs.randn(n_a, 1) }
  lstmP.Wy = rs.randn(n_y, n_a); lstmP.by = rs.randn(n_y, 1)
  const lf = api.lstmForward(x, a0, lstmP)
  const lg = api.lstmBackward(lf.a, lf.caches)
  const lc = api.lstmCellForward(rs.randn(n_x, m), a0, zeros([n_a, m]), lstmP)
  api.lstmCellBackward(lc.a_next, lc.c_next, lc.cache)
  const state = rs.getState()
  rs.choice(5, { p: [0.1, 0.2, 0.3, 0.2, 0.2] })
  rs.shuffle([1, 2, 3, 4, 5])
  rs.setState(state)
  refused(() => api.rnnForward(x, zeros([n_a + 1, m]), rnnP))
  const bad = tensor(x.shape, x.data); bad.data[3] = NaN
  refused(() => api.lstmForward(bad, a0, lstmP))
  if (!Number.isFinite(g.da0.data[0] + lg.da0.data[0])) throw new Error('non-finite gradient')
}

const NAMES = ['aachenosaurus', 'aardonyx', 'abdallahsaurus', 'abelisaurus', 'abrictosaurus', 'abrosaurus', 'acanthopholis']

// One NameModel cycle: create, train 10 iterations, sample, drop.
async function nameCycle(i) {
  const model = api.NameModel.fromNames(NAMES)
  await model.train({ iterations: 10 })
  const names = model.sample({ seed: i, count: 3 })
  if (names.length !== 3) throw new Error('sample returned ' + names.length)
}

// A synchronous loop with large results and caches (26 MB of cache per lstmForward call) and
// no event-loop turn at all: the peak RSS is what matters here.
function syncPeak() {
  const rs = new RandomState(1)
  const n_x = 32, n_a = 128, n_y = 32, m = 64, T = 50
  const p = { Wy: rs.randn(n_y, n_a), by: rs.randn(n_y, 1) }
  for (const k of ['f', 'i', 'c', 'o']) { p['W' + k] = rs.randn(n_a, n_a + n_x); p['b' + k] = rs.randn(n_a, 1) }
  const x = rs.randn(n_x, m, T), a0 = rs.randn(n_a, m)
  global.gc()
  const base = process.memoryUsage().rss
  let peak = base
  const t0 = Date.now()
  for (let i = 0; i < cycles; i++) {
    api.lstmForward(x, a0, p)
    rs.randn(n_a, m, T)
    peak = Math.max(peak, process.memoryUsage().rss)
  }
  console.log(JSON.stringify({ mode, cycles, warmup: 0, rssBaseMB: base / MB, rssPeakMB: peak / MB, cyclesMs: Date.now() - t0 }))
}

async function main() {
  if (mode === 'sync') return syncPeak()
  const cycle = mode === 'names' ? nameCycle : stepCycle
  const t0 = Date.now()
  for (let i = 0; i < warmup; i++) await cycle(i)
  await settle()
  const base = process.memoryUsage()
  const samples = []
  const t1 = Date.now()
  for (let i = 0; i < cycles; i++) {
    await cycle(warmup + i)
    if ((i + 1) % Math.ceil(cycles / 5) === 0) {
      await settle()
      samples.push(Math.round(process.memoryUsage().rss / MB * 10) / 10)
    }
  }
  await settle()
  const end = process.memoryUsage()
  console.log(JSON.stringify({
    mode, cycles, warmup,
    rssBaseMB: base.rss / MB, rssEndMB: end.rss / MB, rssSamplesMB: samples,
    heapUsedBaseMB: base.heapUsed / MB, heapUsedEndMB: end.heapUsed / MB,
    heapTotalBaseMB: base.heapTotal / MB, heapTotalEndMB: end.heapTotal / MB,
    externalBaseMB: base.external / MB, externalEndMB: end.external / MB,
    warmupMs: t1 - t0, cyclesMs: Date.now() - t1,
  }))
}
main().catch((e) => { console.error(e && e.stack || e); process.exit(1) })
`

interface Report {
  mode: string
  cycles: number
  warmup: number
  rssPeakMB: number
  rssBaseMB: number
  rssEndMB: number
  rssSamplesMB: number[]
  heapUsedBaseMB: number
  heapUsedEndMB: number
  heapTotalBaseMB: number
  heapTotalEndMB: number
  externalBaseMB: number
  externalEndMB: number
  warmupMs: number
  cyclesMs: number
}

function runChild(mode: string, cycles: number, warmup: number, timeoutMs: number): Promise<Report> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '-e', CHILD, DIST, mode, String(cycles), String(warmup)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code !== 0) return reject(new Error(`child exited with ${code ?? signal}: ${err.slice(-2000)}`))
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!))
      } catch {
        reject(new Error(`bad child output: ${out.slice(-500)} ${err.slice(-500)}`))
      }
    })
  })
}

const fmt = (r: Report) =>
  `${r.mode}: ${r.cycles} cycles in ${(r.cyclesMs / 1000).toFixed(1)} s (warm-up ${r.warmup} in ${(r.warmupMs / 1000).toFixed(1)} s); ` +
  `RSS ${r.rssBaseMB.toFixed(1)} → ${r.rssEndMB.toFixed(1)} MB (growth ${(r.rssEndMB - r.rssBaseMB).toFixed(1)} MB; samples ${r.rssSamplesMB.join(', ')}); ` +
  `heapUsed ${r.heapUsedBaseMB.toFixed(1)} → ${r.heapUsedEndMB.toFixed(1)} MB; heapTotal ${r.heapTotalBaseMB.toFixed(1)} → ${r.heapTotalEndMB.toFixed(1)} MB; external ${r.externalBaseMB.toFixed(1)} → ${r.externalEndMB.toFixed(1)} MB`

test('10 000 RandomState + step-by-step forward/backward cycles keep resident memory bounded', async (t) => {
  const r = await runChild('step', 10_000, 1_000, 120_000)
  t.log(fmt(r))
  t.true(r.rssEndMB - r.rssBaseMB < BOUND_MB, `RSS grew by ${(r.rssEndMB - r.rssBaseMB).toFixed(1)} MB`)
  // No steady climb either: the last sample is within the bound of the first.
  t.true(r.rssSamplesMB[r.rssSamplesMB.length - 1] - r.rssSamplesMB[0] < BOUND_MB)
  // What JS holds (live heap objects and external buffers) returns to its base level; RSS may
  // still step up a little as V8 enlarges its young generation (heapTotal) under allocation load.
  t.true(
    r.heapUsedEndMB - r.heapUsedBaseMB < 10,
    `live JS heap grew by ${(r.heapUsedEndMB - r.heapUsedBaseMB).toFixed(1)} MB`,
  )
  t.true(
    r.externalEndMB - r.externalBaseMB < 10,
    `external memory grew by ${(r.externalEndMB - r.externalBaseMB).toFixed(1)} MB`,
  )
})

test('a synchronous loop of large forward passes frees its results and caches without waiting for the event loop', async (t) => {
  // Regression: results were external buffers and caches native objects, whose finalizers Node
  // runs only when the event loop turns; this loop then held every result until it ended
  // (~35 MB per iteration: over 1 GB after 30 iterations).
  const r = await runChild('sync', 30, 0, 120_000)
  t.log(
    `sync: ${r.cycles} lstmForward (26 MB cache each) + randn in ${(r.cyclesMs / 1000).toFixed(1)} s, RSS ${r.rssBaseMB.toFixed(1)} → peak ${r.rssPeakMB.toFixed(1)} MB`,
  )
  t.true(r.rssPeakMB - r.rssBaseMB < 400, `peak RSS grew by ${(r.rssPeakMB - r.rssBaseMB).toFixed(1)} MB`)
})

const hasNameModel = typeof (api as any).NameModel === 'function'
;(hasNameModel ? test : test.skip)(
  '10 000 NameModel create/train(10)/sample cycles keep resident memory bounded',
  async (t) => {
    const r = await runChild('names', 10_000, 500, 300_000)
    t.log(fmt(r))
    t.true(r.rssEndMB - r.rssBaseMB < BOUND_MB, `RSS grew by ${(r.rssEndMB - r.rssBaseMB).toFixed(1)} MB`)
  },
)
