// Times two checkouts of rnnlab against each other (e.g. before and after a restructuring),
// alternating them round by round so that drifting machine load hits both alike, and prints
// the medians side by side. Each checkout runs its own bench scripts with its own build
// (`npm run build` in each first: release addon and dist/).
//
//   node bench/compare-builds.js --a ../before --b . [--rounds 5] [--lstm-seconds 10]
//
// Jobs: dinos (35 000 course iterations through NameModel, numpy order and --fast; training
// seconds as the script measures them), lstm (training chars/s in windows and tbptt mode for
// --lstm-seconds each, and sampling chars/s at batch 1), jazz (100 epochs of the djmodel,
// seconds), and fixed-work runs timed by the CPU time (user + system) of the whole process,
// which a loaded machine disturbs far less than wall time: lstm-epoch (one epoch of the 2x128
// LSTM over the first 30 000 characters of the sonnets, each mode). CPU times need
// /usr/bin/time (GNU time). Inputs are this checkout's fixtures/.
const { spawnSync } = require('node:child_process')
const { existsSync, readFileSync } = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: '.' },
    rounds: { type: 'string', default: '5' },
    'lstm-seconds': { type: 'string', default: '10' },
  },
})
if (!values.a) {
  process.stderr.write('usage: node bench/compare-builds.js --a DIR --b DIR [--rounds 5] [--lstm-seconds 10]\n')
  process.exit(2)
}
const FIXTURES = path.join(__dirname, '..', 'fixtures')
const trees = { a: path.resolve(values.a), b: path.resolve(values.b) }
const rounds = Number(values.rounds)
const lstmSeconds = values['lstm-seconds']

const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined
const CPU_MARK = 'compare-builds cpu'

/** Runs `node args` in `tree`; `cpu` is the process's user + system seconds (GNU time). */
function run(tree, args) {
  const [cmd, argv] = GNU_TIME
    ? [GNU_TIME, ['-f', `${CPU_MARK} %U %S`, process.execPath, ...args]]
    : [process.execPath, args]
  const r = spawnSync(cmd, argv, { cwd: tree, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${tree}: node ${args.join(' ')} failed:\n${r.stderr}`)
  const m = new RegExp(`${CPU_MARK} ([0-9.]+) ([0-9.]+)`).exec(r.stderr)
  return { stdout: r.stdout, stderr: r.stderr, cpu: m ? Number(m[1]) + Number(m[2]) : Number.NaN }
}

// One epoch of the course's 2x128 LSTM over the first 30 000 characters: fixed work, through
// the public API of whichever checkout runs it.
const LSTM_EPOCH = `
const { CharLanguageModel } = require(require('node:path').join(process.cwd(), 'dist/index.js'))
const text = require('node:fs').readFileSync(process.argv[1], 'utf8').slice(0, 30000)
const m = new CharLanguageModel({ cell: 'lstm', layers: 2, hidden: 128, dropout: 0.2, dtype: 'float32', seed: 0 })
m.fit(text, { mode: process.argv[2], seqLength: 40, stride: 3, batchSize: 128, optimizer: 'adam', lr: 0.002, clip: 5,
  validation: 0.1, epochs: 1 })`

function lstmEpochCpu(tree, mode) {
  return run(tree, ['-e', LSTM_EPOCH, path.join(FIXTURES, 'shakespeare.txt'), mode]).cpu
}

/** Seconds of training for 35 000 course iterations, as bench/dinos/rnnlab.js --time reports. */
function dinos(tree, fast) {
  const args = ['bench/dinos/rnnlab.js', '--data', path.join(FIXTURES, 'dinos_course.txt'), '--time']
  if (fast) args.push('--fast')
  const r = run(tree, args)
  const m = / iterations in ([0-9.]+) s/.exec(r.stderr)
  if (!m) throw new Error(`dinos: no training time in the output of ${tree}`)
  return { seconds: Number(m[1]), cpu: r.cpu }
}

function lstm(tree) {
  const out = JSON.parse(
    run(tree, [
      'bench/lstm/bench.js',
      '--json',
      '--seconds',
      lstmSeconds,
      '--text',
      path.join(FIXTURES, 'shakespeare.txt'),
    ])
      .stdout.trim()
      .split('\n')
      .pop(),
  )
  const byMode = Object.fromEntries(out.train.map((t) => [t.mode, t.charsPerSecond]))
  return { windows: byMode.windows, tbptt: byMode.tbptt, sample: out.sample.charsPerSecond }
}

function jazz(tree) {
  const r = run(tree, ['bench/jazz/rnnlab.js', '--json', '--midi', path.join(FIXTURES, 'original_metheny.mid')])
  return { seconds: JSON.parse(r.stdout.trim().split('\n').pop()).seconds, cpu: r.cpu }
}

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

const results = { a: {}, b: {} }
const push = (side, key, v) => {
  results[side][key] ??= []
  results[side][key].push(v)
}
for (let k = 0; k < rounds; k++) {
  const order = k % 2 === 0 ? ['a', 'b'] : ['b', 'a']
  for (const side of order) {
    const tree = trees[side]
    const numpy = dinos(tree, false)
    const fast = dinos(tree, true)
    push(side, 'dinos numpy order, training (s)', numpy.seconds)
    push(side, 'dinos numpy order, process CPU (s)', numpy.cpu)
    push(side, 'dinos --fast, training (s)', fast.seconds)
    push(side, 'dinos --fast, process CPU (s)', fast.cpu)
    const l = lstm(tree)
    push(side, 'lstm windows (chars/s)', l.windows)
    push(side, 'lstm tbptt (chars/s)', l.tbptt)
    push(side, 'sampling batch 1 (chars/s)', l.sample)
    const j = jazz(tree)
    push(side, 'jazz 100 epochs (s)', j.seconds)
    push(side, 'jazz process CPU (s)', j.cpu)
    push(side, 'lstm one epoch windows, process CPU (s)', lstmEpochCpu(tree, 'windows'))
    push(side, 'lstm one epoch tbptt, process CPU (s)', lstmEpochCpu(tree, 'tbptt'))
  }
  process.stderr.write(
    `round ${k + 1}/${rounds} done, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`,
  )
}

console.log(`CPU: ${os.cpus()[0]?.model ?? 'unknown'}, ${os.cpus().length} logical cores; rounds ${rounds}`)
console.log(`a = ${trees.a}\nb = ${trees.b}\n`)
console.log('| job | a (median) | b (median) | b / a | a, each round | b, each round |')
console.log('|---|---:|---:|---:|---|---|')
for (const key of Object.keys(results.a)) {
  const ma = median(results.a[key])
  const mb = median(results.b[key])
  const fmt = (x) => (x >= 1000 ? Math.round(x).toString() : x.toFixed(3))
  console.log(
    `| ${key} | ${fmt(ma)} | ${fmt(mb)} | ${(mb / ma).toFixed(3)} | ${results.a[key].map(fmt).join(', ')} | ${results.b[key].map(fmt).join(', ')} |`,
  )
}
