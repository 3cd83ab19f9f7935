// Batch-1 sampling speed (`generate`, 2×128 LSTM by default, one-hot input over the sonnets'
// characters, temperature 0.8), one fresh process per measurement, alternating builds and
// thread counts round by round so that drifting load hits each alike. Prints chars/s per
// round, the medians, and a hash of each sample (the same text whatever the build or the
// number of threads).
//
//   node bench/lstm/sampling.js [--addons a.node,b.node] [--threads 1,2] [--rounds 3]
//                               [--length 50000] [--hidden 128,128] [--dtype float32] [--json]
//
// --addons: builds to compare, each a native addon (loaded by this checkout's dist/ through
// NAPI_RS_NATIVE_LIBRARY_PATH) or a checkout directory (its own dist/ and addon, e.g. an older
// commit built with `npm run build`); default this checkout.
// The model is trained for one short epoch slice once, saved, and loaded by every child.
const { spawnSync } = require('node:child_process')
const { createHash } = require('node:crypto')
const { existsSync, mkdtempSync, readFileSync, statSync } = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')

const root = path.join(__dirname, '..', '..')

if (process.argv[2] === '--child') {
  const [model, length, dir] = [process.argv[3], Number(process.argv[4]), process.argv[5] ?? root]
  const { CharLanguageModel } = require(path.join(dir, 'dist', 'index.js'))
  const m = CharLanguageModel.load(model)
  const t0 = performance.now()
  const out = m.generate({ prompt: 'Shall I compare thee to a summer', length, temperature: 0.8, seed: 1 })
  const secs = (performance.now() - t0) / 1000
  const hash = createHash('sha256').update(out).digest('hex').slice(0, 12)
  process.stdout.write(`${JSON.stringify({ charsPerSecond: length / secs, hash })}\n`)
  process.exit(0)
}

const fail = (message) => {
  process.stderr.write(`bench/lstm/sampling.js: ${message}\n`)
  process.exit(2)
}
let values
try {
  ;({ values } = parseArgs({
    options: {
      addons: { type: 'string' },
      threads: { type: 'string', default: '1,2' },
      rounds: { type: 'string', default: '3' },
      length: { type: 'string', default: '50000' },
      hidden: { type: 'string', default: '128,128' },
      dtype: { type: 'string', default: 'float32' },
      json: { type: 'boolean' },
    },
  }))
} catch (e) {
  fail(e.message)
}
const addons = values.addons ? values.addons.split(',').map((a) => path.resolve(a)) : [null]
const threads = values.threads.split(',').map(Number)
for (const a of addons) if (a && !existsSync(a)) fail(`--addons: no such file or directory: ${a}`)
for (const t of threads)
  if (!Number.isInteger(t) || t < 1) fail(`--threads: expected integers >= 1, got '${values.threads}'`)
for (const key of ['rounds', 'length']) {
  if (!/^[1-9]\d*$/.test(values[key])) fail(`--${key}: expected an integer >= 1, got '${values[key]}'`)
}
const { CharLanguageModel } = require(path.join(root, 'dist', 'index.js'))
const text = readFileSync(path.join(root, 'fixtures', 'shakespeare.txt'), 'utf8')
const hidden = values.hidden.split(',').map(Number)
const model = new CharLanguageModel({ layers: hidden.length, hidden: hidden[0], dtype: values.dtype, seed: 0 })
async function main() {
  await model.fit(text.slice(0, 20000), { epochs: 1 })
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'rnnlab-sampling-')), 'model.safetensors')
  model.save(file)

  const runs = []
  for (const addon of addons) for (const t of threads) runs.push({ addon, threads: t, rates: [], hashes: new Set() })
  for (let round = 1; round <= Number(values.rounds); round++) {
    const line = [`round ${round} (load ${os.loadavg()[0].toFixed(2)})`]
    for (const run of runs) {
      const env = { ...process.env, RAYON_NUM_THREADS: String(run.threads) }
      const args = [__filename, '--child', file, values.length]
      if (run.addon && statSync(run.addon).isDirectory()) args.push(run.addon)
      else if (run.addon) env.NAPI_RS_NATIVE_LIBRARY_PATH = run.addon
      const r = spawnSync(process.execPath, args, { env, encoding: 'utf8' })
      if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`)
      const { charsPerSecond, hash } = JSON.parse(r.stdout)
      run.rates.push(charsPerSecond)
      run.hashes.add(hash)
      line.push(`${run.addon ? path.basename(run.addon) : 'this build'} ×${run.threads}: ${Math.round(charsPerSecond)}`)
    }
    if (!values.json) console.log(line.join(' | '))
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const base = median(runs[0].rates)
  const report = runs.map((run) => ({
    addon: run.addon ? path.basename(run.addon) : 'this build',
    threads: run.threads,
    median: Math.round(median(run.rates)),
    rates: run.rates.map(Math.round),
    samples: [...run.hashes],
  }))
  if (values.json) {
    console.log(JSON.stringify({ hidden, dtype: values.dtype, length: Number(values.length), runs: report }))
    return
  }
  for (const r of report) {
    console.log(
      `${r.addon.padEnd(28)} threads ${r.threads}: median ${r.median} chars/s (${(r.median / base).toFixed(2)}× the first), sample ${r.samples.join(' ')}`,
    )
  }
}
main().catch((e) => {
  console.error(e)
  process.exit(1)
})
