// Runs every side-by-side benchmark in bench/ and prints each ratio against its peer, with the
// machine facts a number needs (CPU, SIMD level in force, load average):
//   dinos  bench/dinos/bench.py   rnnlab (NameModel, CLI, fast arithmetic) vs the numpy reference
//   lstm   bench/lstm/bench.js    vs bench/lstm/torch_bench.py and bench/lstm/keras_bench.py,
//          then the same model with GRU layers (--cell gru) vs PyTorch's nn.GRU; both against
//          the machine's GEMM peak, measured in the same run (bench/peak.py: numpy's 1024²
//          matmul, 2 threads, best of 7), in GFLOP/s and as a share, f32 and f64
//   jazz   bench/jazz/run.py      rnnlab vs PyTorch and Keras on the course's djmodel
//
//   npm run bench [-- --quick] [-- --only dinos,lstm] [-- --setup]
//
// --quick runs each benchmark for a moment (a smoke test of the whole chain; its numbers mean
// nothing). Build the release addon first (`npm run build`): a debug addon times the wrong code.
// The peers run in Python virtual environments kept OUTSIDE the repository, looked up as
// venv-np (numpy), venv-torch (numpy, torch) and venv-tf (tensorflow, keras) in
// $RNNLAB_BENCH_VENVS, the repository's parent folder, its grandparent or /work; or named one by
// one with RNNLAB_BENCH_NUMPY_PYTHON, RNNLAB_BENCH_TORCH_PYTHON, RNNLAB_BENCH_TF_PYTHON.
// A peer without its interpreter is skipped with a note. --setup creates venv-np (numpy only,
// small) beside the repository and prints the commands for the two large ones.
// The inputs are the committed fixtures (the same bytes as ../shared/data).
const { spawn, spawnSync } = require('node:child_process')
const { existsSync } = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')

const ROOT = path.resolve(__dirname, '..')
const FIXTURES = path.join(ROOT, 'fixtures')
const ALL = ['dinos', 'lstm', 'jazz']

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    setup: { type: 'boolean', default: false },
  },
})
const quick = values.quick
const only = values.only ? values.only.split(',').map((s) => s.trim()) : ALL
for (const name of only) {
  if (!ALL.includes(name)) throw new Error(`--only: unknown benchmark "${name}" (known: ${ALL.join(', ')})`)
}

const venvDirs = [process.env.RNNLAB_BENCH_VENVS, path.dirname(ROOT), path.dirname(path.dirname(ROOT)), '/work'].filter(
  (d) => d !== undefined && d !== '',
)

/** The interpreter inside a venv folder, on POSIX or Windows. */
function venvPython(dir) {
  for (const p of [path.join(dir, 'bin', 'python'), path.join(dir, 'Scripts', 'python.exe')]) {
    if (existsSync(p)) return p
  }
  return undefined
}

function findPython(envVar, venvNames) {
  if (process.env[envVar]) return process.env[envVar]
  for (const name of venvNames) {
    for (const dir of venvDirs) {
      const p = venvPython(path.join(dir, name))
      if (p) return p
    }
  }
  return undefined
}

function setup() {
  const dir = path.join(path.dirname(ROOT), 'venv-np')
  if (venvPython(dir)) {
    console.log(`${dir} exists`)
  } else {
    console.log(`creating ${dir} (numpy)`)
    const python = process.platform === 'win32' ? 'python' : 'python3'
    for (const args of [
      [python, '-m', 'venv', dir],
      [venvPython(dir) ?? path.join(dir, 'bin', 'python'), '-m', 'pip', 'install', 'numpy'],
    ]) {
      const r = spawnSync(args[0], args.slice(1), { stdio: 'inherit' })
      if (r.status !== 0) throw new Error(`${args.join(' ')} failed`)
    }
  }
  const parent = path.dirname(ROOT)
  console.log(`The PyTorch and Keras peers need large venvs (several GB); create them if you want them:
  python3 -m venv ${parent}/venv-torch && ${parent}/venv-torch/bin/pip install numpy safetensors torch --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple
  python3 -m venv ${parent}/venv-tf && ${parent}/venv-tf/bin/pip install tensorflow-cpu keras numpy`)
}

/** Runs a command in ROOT, echoing its output as it comes; resolves with its stdout. */
function run(cmd, args, { echo = true, env = process.env } = {}) {
  console.log(`$ ${[cmd, ...args].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`)
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (chunk) => {
      out += chunk
      if (echo) process.stdout.write(chunk)
    })
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited with ${code}`))))
  })
}

/** A program's JSON report: its whole output, or else its last line that is a JSON object. */
function lastJson(out) {
  for (const text of [out, ...out.trim().split('\n').reverse()]) {
    if (!text.trim().startsWith('{')) continue
    try {
      return JSON.parse(text)
    } catch {
      // not the JSON report
    }
  }
  throw new Error('no JSON report in the output')
}

function simdLevel() {
  const r = spawnSync('cargo', ['run', '--quiet', '-p', 'rnnlab-core', '--example', 'simd_level'], {
    cwd: ROOT,
    encoding: 'utf8',
  })
  if (r.status === 0) return r.stdout.trim()
  return `simd unknown (cargo run --example simd_level failed); RNNLAB_SIMD ${process.env.RNNLAB_SIMD ?? 'unset'}`
}

const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')

/** Lines of the final summary: one per ratio. */
const summary = []
const ratio = (what, x) => summary.push(`${what.padEnd(58)} ${Number.isFinite(x) ? `${x.toFixed(2)}x` : 'n/a'}`)

async function dinos(pythons) {
  const python = pythons.numpy
  if (!python) {
    summary.push('dinos: skipped (no Python with numpy: see --setup)')
    return
  }
  const size = quick
    ? ['--runs', '1', '--iterations', '1000', '--every', '500', '--compare-through', '500']
    : ['--runs', '5', '--cli']
  const out = await run(
    python,
    ['bench/dinos/bench.py', '--json', '--python', python, '--data', 'fixtures/dinos_course.txt', ...size],
    { echo: false },
  )
  const report = lastJson(out)
  for (const [name, r] of Object.entries(report.speedup_vs_numpy)) {
    ratio(`dinos: ${name} vs numpy, wall`, r.wall)
    if (r.train !== undefined) ratio(`dinos: ${name} vs numpy, training`, r.train)
    ratio(`dinos: ${name} vs numpy, CPU time`, r.cpu)
  }
  for (const [name, c] of Object.entries(report.checks)) {
    if (!c.identical_through_required) summary.push(`dinos: ${name} output DIFFERS from numpy`)
  }
}

/** chars/s of the torch side, read from its text output. */
function parseTorch(out) {
  const train = {}
  let sample
  for (const line of out.split('\n')) {
    const t = /^train (\w+)\s*: (\d+) chars\/s/.exec(line)
    if (t) train[t[1]] = Number(t[2])
    const s = /^sample\s*: (\d+) chars\/s/.exec(line)
    if (s) sample = Number(s[1])
  }
  return { train, sample }
}

/** The machine's f32 and f64 GEMM peak (bench/peak.py), or undefined without numpy. */
async function gemmPeak(pythons, when) {
  const python = pythons.numpy
  if (!python) {
    summary.push('peak: skipped (no Python with numpy: see --setup)')
    return undefined
  }
  const rounds = quick ? '2' : '7'
  const peak = lastJson(await run(python, ['bench/peak.py', '--json', '--rounds', rounds], { echo: false }))
  for (const dtype of ['float32', 'float64']) {
    summary.push(
      `peak (${when}): ${dtype} GEMM ${peak[dtype].best.toFixed(1)} GFLOP/s (numpy ${peak.numpy}, ${peak.blas}, ${peak.size}², ${peak.threads} threads, best of ${peak[dtype].rounds}; median ${peak[dtype].median.toFixed(1)})`,
    )
  }
  return peak
}

async function lstm(pythons) {
  const seconds = quick ? '1' : '20'
  const text = path.join(FIXTURES, 'shakespeare.txt')
  // the peak just before the training it is compared with, so both see the same machine
  const peak = await gemmPeak(pythons, 'before training')
  const ours = lastJson(
    await run('node', ['bench/lstm/bench.js', '--json', '--seconds', seconds, '--text', text], { echo: false }),
  )
  // the GRU on the same shapes (Keras has no counterpart here), f32 and f64 as the LSTM
  const gru = lastJson(
    await run('node', ['bench/lstm/bench.js', '--json', '--cell', 'gru', '--seconds', seconds, '--text', text], {
      echo: false,
    }),
  )
  const peakAfter = await gemmPeak(pythons, 'after training')
  // f32 rows only are compared with the peers (which train in float32)
  const f32Rows = (rows) =>
    Object.fromEntries(rows.filter((r) => r.dtype === 'float32').map((r) => [r.mode, r.charsPerSecond]))
  const oursTrain = f32Rows(ours.train)
  for (const r of [...ours.train, ...gru.train]) {
    const gflops = (r.charsPerSecond * r.flopPerChar) / 1e9
    const best = Math.max(peak?.[r.dtype]?.best ?? 0, peakAfter?.[r.dtype]?.best ?? 0)
    const share = best > 0 ? ` = ${((100 * gflops) / best).toFixed(0)} % of the ${r.dtype} peak ${best.toFixed(1)}` : ''
    summary.push(
      `${r.cell}: rnnlab ${r.dtype} ${r.mode}: ${r.charsPerSecond} chars/s × ${(r.flopPerChar / 1e6).toFixed(3)} MFLOP/char = ${gflops.toFixed(1)} GFLOP/s${share}`,
    )
  }
  summary.push(`lstm: rnnlab sampling batch 1: ${ours.sample.charsPerSecond} chars/s`)
  // batch-1 sampling on one thread and on two cores, fresh processes, alternated
  const sampling = lastJson(
    await run('node', ['bench/lstm/sampling.js', '--json', '--rounds', quick ? '1' : '3', '--threads', '1,2'], {
      echo: false,
    }),
  )
  const [one, two] = sampling.runs
  summary.push(
    `lstm: rnnlab sampling batch 1 (median of ${one.rates.length}): 1 thread ${one.median} chars/s, 2 threads ${two.median} chars/s (${(two.median / one.median).toFixed(2)}×; same text: ${one.samples.join() === two.samples.join() ? 'yes' : 'NO'})`,
  )
  const peers = []
  if (pythons.torch) {
    const out = await run(pythons.torch, ['bench/lstm/torch_bench.py', '--seconds', seconds, '--text', text])
    peers.push(['pytorch', parseTorch(out)])
  } else summary.push('lstm: PyTorch skipped (no venv-torch)')
  if (pythons.tf) {
    const k = lastJson(
      await run(pythons.tf, ['bench/lstm/keras_bench.py', '--json', '--seconds', seconds, '--text', text], {
        echo: false,
      }),
    )
    peers.push([
      'keras',
      { train: Object.fromEntries(k.train.map((r) => [r.mode, r.charsPerSecond])), sample: k.sample.charsPerSecond },
    ])
  } else summary.push('lstm: Keras skipped (no venv-tf)')
  for (const [peer, r] of peers) {
    for (const mode of Object.keys(oursTrain)) {
      ratio(`lstm: rnnlab vs ${peer}, training chars/s (${mode})`, oursTrain[mode] / r.train[mode])
    }
    ratio(`lstm: rnnlab vs ${peer}, sampling chars/s`, ours.sample.charsPerSecond / r.sample)
  }
  const gruTrain = f32Rows(gru.train)
  if (pythons.torch) {
    const r = parseTorch(
      await run(pythons.torch, ['bench/lstm/torch_bench.py', '--cell', 'gru', '--seconds', seconds, '--text', text]),
    )
    for (const mode of Object.keys(gruTrain)) {
      ratio(`gru: rnnlab vs pytorch, training chars/s (${mode})`, gruTrain[mode] / r.train[mode])
    }
    ratio('gru: rnnlab vs pytorch, sampling chars/s', gru.sample.charsPerSecond / r.sample)
  } else summary.push('gru: PyTorch skipped (no venv-torch)')
}

async function jazz(pythons) {
  // run.py needs only the standard library; its peers run in their own venvs
  const python = pythons.numpy ?? pythons.torch ?? (process.platform === 'win32' ? 'python' : 'python3')
  const size = quick ? ['--rounds', '1', '--keras-rounds', '1', '--epochs', '2'] : []
  const args = ['bench/jazz/run.py', '--midi', path.join(FIXTURES, 'original_metheny.mid'), ...size]
  if (pythons.torch) args.push('--torch-python', pythons.torch)
  else summary.push('jazz: PyTorch skipped (no venv-torch)')
  if (pythons.tf) args.push('--tf-python', pythons.tf)
  else summary.push('jazz: Keras skipped (no venv-tf)')
  const out = await run(python, args)
  // run.py's summary lines: "  <name>  <median> s  x<time / rnnlab's>  (n=...)"
  for (const line of out.split('\n')) {
    const m = /^ {2}(\S.*?)\s+([\d.]+) s\s+x\s*([\d.]+)\s+\(n=/.exec(line)
    if (m && !m[1].startsWith('rnnlab')) ratio(`jazz: ${m[1]} time / rnnlab's`, Number(m[3]))
  }
}

async function main() {
  if (values.setup) {
    setup()
    return
  }
  try {
    require('../dist/index.js').native()
  } catch (e) {
    throw new Error(`rnnlab does not load (${e.message}): run \`npm run build\` (release addon) first`)
  }
  const pythons = {
    numpy: findPython('RNNLAB_BENCH_NUMPY_PYTHON', ['venv-np', 'venv-torch']),
    torch: findPython('RNNLAB_BENCH_TORCH_PYTHON', ['venv-torch']),
    tf: findPython('RNNLAB_BENCH_TF_PYTHON', ['venv-tf']),
  }
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU'
  const header = [
    `rnnlab benchmarks${quick ? ' (--quick: a smoke run, the numbers mean nothing)' : ''}`,
    `${cpu}, ${os.cpus().length} logical CPUs, ${os.platform()} ${os.arch()}, Node ${process.version}`,
    simdLevel(),
    `pythons: numpy ${pythons.numpy ?? '-'}, torch ${pythons.torch ?? '-'}, tf ${pythons.tf ?? '-'}`,
    `load average before: ${load()}`,
  ]
  console.log(`${header.join('\n')}\n`)
  const jobs = { dinos, lstm, jazz }
  let failed = false
  for (const name of only) {
    console.log(`\n=== ${name}`)
    try {
      await jobs[name](pythons)
    } catch (e) {
      failed = true
      summary.push(`${name}: FAILED (${e.message})`)
    }
  }
  console.log(`\n=== summary (ratio > 1: rnnlab is faster)\n${header.join('\n')}`)
  console.log(`load average after: ${load()}`)
  for (const line of summary) console.log(line)
  if (failed) process.exitCode = 1
}

main().catch((e) => {
  console.error(e.message)
  process.exit(1)
})
