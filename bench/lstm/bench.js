// rnnlab side of the Shakespeare benchmark: the course's model (2 stacked LSTM layers of 128,
// one-hot input, dropout, dense softmax over the sonnets' characters), float32, sequences of
// 40, batches of 128, Adam. Reports training characters/second in both modes, the validation
// loss reached in the same wall-clock budget, and sampling characters/second. Each training
// row also carries its floating-point work per character (`flopPerChar`, see below), so that
// bench/run-all.js can state it in GFLOP/s and as a share of the machine's GEMM peak.
//
//   npm run build:native && npm run build:ts      (release build: LTO)
//   node bench/lstm/bench.js [--seconds 20] [--json] [--dtypes float32,float64] [--cells lstm,gru | --cell gru]
//
// --cells takes every cell to train (lstm, gru); `--cell gru` is `--cells gru`. The first cell
// and dtype of the lists also give the sampling figure. Training rates are given per second of
// wall clock and per second of this process's CPU time (the machine may be shared).
//
// bench/lstm/torch_bench.py is the same benchmark in PyTorch (torch.set_num_threads(2)).
const { readFileSync } = require('node:fs')
const path = require('node:path')
const { parseArgs } = require('node:util')

const { CharLanguageModel, native } = require('../../dist/index.js')

const { values } = parseArgs({
  options: {
    seconds: { type: 'string' },
    json: { type: 'boolean' },
    text: { type: 'string' },
    dtypes: { type: 'string', default: 'float32,float64' },
    cells: { type: 'string', default: 'lstm' },
    cell: { type: 'string' },
  },
})
const dtypes = values.dtypes.split(',').map((s) => s.trim())
const cells = (values.cell ?? values.cells).split(',').map((s) => s.trim())
for (const cell of cells) {
  if (cell !== 'lstm' && cell !== 'gru') throw new Error(`--cell: expected lstm or gru, got '${cell}'`)
}
const seconds = Number(values.seconds ?? 20)
const textFile = values.text ?? path.join(__dirname, '..', '..', '..', 'shared', 'data', 'shakespeare.txt')
const text = readFileSync(textFile, 'utf8')

const LAYERS = 2
const HIDDEN = 128
const SEQ_LENGTH = 40
/** Gate blocks per cell: the rows of W_ih and W_hh are G·H. */
const GATES = { lstm: 4, gru: 3, rnn: 1 }

/**
 * Floating-point operations per input character of one training step, counting the matrix
 * products only (2 per multiply-add): forward, and twice that backward (the weight gradient and
 * the input gradient of each product have the forward's size). Per layer the forward products
 * are W_ih·x (2·G·H·I) and W_hh·h (2·G·H·H), except the first layer's one-hot input, which is a
 * column pick and no product; the dense layer (2·V·H) runs at every step in tbptt and once per
 * window in windows mode. The element-wise gate work, the softmax and Adam are left out, as a
 * GEMM peak leaves them out. For the course's 2×128 LSTM in windows mode this is
 * 3·(2·512·128 + 2·(2·512·128)) + 3·2·V·128/40 ≈ 1.18 MFLOP (V = 62), the figure.
 */
function flopPerChar({ cell, layers, hidden, vocab, mode, seqLength }) {
  const g = GATES[cell]
  if (g === undefined) throw new Error(`flopPerChar: unknown cell ${cell}`)
  let forward = 0
  for (let k = 0; k < layers; k++) {
    if (k > 0) forward += 2 * g * hidden * hidden // W_ih·x of the layer below's h
    forward += 2 * g * hidden * hidden // W_hh·h
  }
  forward += (2 * vocab * hidden) / (mode === 'windows' ? seqLength : 1)
  return 3 * forward
}

async function trainRun(cell, dtype, mode) {
  const model = new CharLanguageModel({ cell, layers: LAYERS, hidden: HIDDEN, dropout: 0.2, dtype, seed: 0 })
  const cpu0 = process.cpuUsage()
  const h = await model.fit(text, {
    mode,
    seqLength: SEQ_LENGTH,
    stride: 3,
    batchSize: 128,
    optimizer: 'adam',
    learningRate: 0.002,
    clip: 5,
    validation: 0.1,
    seconds,
    epochs: Infinity,
    chunkSeconds: 1,
  })
  const cpu = process.cpuUsage(cpu0)
  const cpuSeconds = (cpu.user + cpu.system) / 1e6
  return {
    cpuSeconds,
    charsPerCpuSecond: (h.charsPerSecond * h.seconds) / cpuSeconds,
    model,
    cell,
    dtype,
    mode,
    flopPerChar: flopPerChar({
      cell,
      layers: LAYERS,
      hidden: HIDDEN,
      vocab: new Set(text).size,
      mode,
      seqLength: SEQ_LENGTH,
    }),
    charsPerSecond: h.charsPerSecond,
    steps: h.steps,
    epochs: h.epochs,
    seconds: h.seconds,
    valLoss: model.validate(),
  }
}

async function main() {
  const results = {
    threads: native().nativeThreads(),
    seconds,
    text: path.basename(textFile),
    chars: text.length,
    train: [],
    sample: undefined,
  }
  let first
  for (const cell of cells) {
    for (const dtype of dtypes) {
      for (const mode of ['windows', 'tbptt']) {
        const r = await trainRun(cell, dtype, mode)
        first ??= r.model
        results.train.push({
          cell,
          dtype,
          mode,
          charsPerSecond: Math.round(r.charsPerSecond),
          charsPerCpuSecond: Math.round(r.charsPerCpuSecond),
          flopPerChar: r.flopPerChar,
          steps: r.steps,
          epochs: r.epochs,
          valLoss: r.valLoss,
        })
        if (!values.json) {
          console.log(
            `train ${cell} ${dtype} ${mode.padEnd(7)}: ${Math.round(r.charsPerSecond)} chars/s (${((r.charsPerSecond * r.flopPerChar) / 1e9).toFixed(1)} GFLOP/s at ${(r.flopPerChar / 1e6).toFixed(3)} MFLOP/char), ${Math.round(r.charsPerCpuSecond)} chars/cpu-s, ${r.steps} steps in ${r.seconds.toFixed(1)} s (${r.cpuSeconds.toFixed(1)} cpu-s), validation ${r.valLoss.toFixed(4)} nats/char`,
          )
        }
      }
    }
  }
  const n = 20000
  const t0 = performance.now()
  const out = first.generate({ prompt: 'Shall I compare thee to a summer', length: n, temperature: 0.8, seed: 1 })
  const secs = (performance.now() - t0) / 1000
  results.sample = { charsPerSecond: Math.round(n / secs), sample: out.slice(0, 200) }
  if (values.json) console.log(JSON.stringify(results))
  else {
    console.log(`sample         : ${Math.round(n / secs)} chars/s (batch 1, temperature 0.8)`)
    console.log(`\nShall I compare thee to a summer${out.slice(0, 300)}`)
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
