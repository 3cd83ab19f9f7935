// rnnlab side of the Shakespeare benchmark: the course's model (2 stacked LSTM layers of 128,
// one-hot input, dropout, dense softmax over the sonnets' characters), float32, sequences of
// 40, batches of 128, Adam. Reports training characters/second in both modes, the validation
// loss reached in the same wall-clock budget, and sampling characters/second. `--cell gru`
// runs the same model with GRU layers (PyTorch's nn.GRU). Training rates are given per second
// of wall clock and per second of this process's CPU time (the machine may be shared).
//
//   npm run build:native && npm run build:ts      (release build: LTO)
//   node bench/lstm/bench.js [--seconds 20] [--json] [--cell lstm|gru]
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
    cell: { type: 'string' },
  },
})
const cell = values.cell ?? 'lstm'
if (cell !== 'lstm' && cell !== 'gru') throw new Error(`--cell: expected lstm or gru, got '${cell}'`)
const seconds = Number(values.seconds ?? 20)
const textFile = values.text ?? path.join(__dirname, '..', '..', '..', 'shared', 'data', 'shakespeare.txt')
const text = readFileSync(textFile, 'utf8')

async function trainRun(mode) {
  const model = new CharLanguageModel({ cell, layers: 2, hidden: 128, dropout: 0.2, dtype: 'float32', seed: 0 })
  const cpu0 = process.cpuUsage()
  const h = await model.fit(text, {
    mode,
    seqLength: 40,
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
    mode,
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
    cell,
    seconds,
    text: path.basename(textFile),
    chars: text.length,
    train: [],
    sample: undefined,
  }
  let last
  for (const mode of ['windows', 'tbptt']) {
    const r = await trainRun(mode)
    last = r.model
    results.train.push({
      mode,
      charsPerSecond: Math.round(r.charsPerSecond),
      charsPerCpuSecond: Math.round(r.charsPerCpuSecond),
      steps: r.steps,
      epochs: r.epochs,
      valLoss: r.valLoss,
    })
    if (!values.json) {
      console.log(
        `train ${mode.padEnd(7)}: ${Math.round(r.charsPerSecond)} chars/s, ${Math.round(r.charsPerCpuSecond)} chars/cpu-s, ${r.steps} steps in ${r.seconds.toFixed(1)} s (${r.cpuSeconds.toFixed(1)} cpu-s), validation ${r.valLoss.toFixed(4)} nats/char`,
      )
    }
  }
  const n = 20000
  const t0 = performance.now()
  const out = last.generate({ prompt: 'Shall I compare thee to a summer', length: n, temperature: 0.8, seed: 1 })
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
