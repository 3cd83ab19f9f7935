// rnnlab side of the jazz benchmark (issue 5, item 8): the course's djmodel (one LSTM cell,
// n_a = 64, shared across Tx = 30 steps, Dense softmax over the values; Adam lr 0.01, decay
// 0.01), 100 full-batch epochs on m = 60 windows, timed through the JS API:
//   native — `new NativeJazzModel({ corpus, nValues, nA, tX, m, seed })` then `await fit(100)`
//   api    — `JazzImproviser.fromMidi(file)` then `await fit({ epochs: 100 })` (chunks of 10)
// Only the training is timed (building the windows and the model is not), as in the PyTorch
// and Keras scripts beside this one. rnnlab trains in float64.
//
//   npm run build:native && npm run build:ts      (release build)
//   node bench/jazz/rnnlab.js [--midi FILE] [--epochs 100] [--json]
// NAPI_RS_NATIVE_LIBRARY_PATH=/path/to/rnnlab.node points it at another build of the addon.
const path = require('node:path')
const { parseArgs } = require('node:util')

const { JazzImproviser, native } = require('../../dist/index.js')

const { values } = parseArgs({
  options: { midi: { type: 'string' }, epochs: { type: 'string' }, json: { type: 'boolean' } },
})
const midi = values.midi ?? path.join(__dirname, '..', '..', '..', 'shared', 'data', 'original_metheny.mid')
const epochs = Number(values.epochs ?? 100)

async function main() {
  // native: the binding directly, one fit call
  const jazz = JazzImproviser.fromMidi(midi)
  const idx = jazz.corpus.corpus.map((v) => jazz.corpus.indices.get(v))
  const model = new (native().NativeJazzModel)({ corpus: idx, nValues: jazz.nValues, nA: 64, tX: 30, m: 60, seed: 0 })
  let t0 = performance.now()
  const report = await model.fit(epochs)
  const nativeSecs = (performance.now() - t0) / 1000

  // api: the TypeScript class, as `rnnlab jazz` trains
  const api = JazzImproviser.fromMidi(midi)
  t0 = performance.now()
  const hist = await api.fit({ epochs })
  const apiSecs = (performance.now() - t0) / 1000

  const r = {
    peer: 'rnnlab',
    threads: native().nativeThreads(),
    dtype: 'float64',
    epochs,
    n_values: jazz.nValues,
    corpus: idx.length,
    seconds: nativeSecs,
    seconds_api: apiSecs,
    loss_first: report.loss[0],
    loss_last: report.loss[report.loss.length - 1],
    acc_last: report.accuracy[report.accuracy.length - 1],
    api_loss_last: hist.loss[hist.loss.length - 1],
  }
  if (values.json) console.log(JSON.stringify(r))
  else {
    console.log(
      `rnnlab (${r.threads} threads, n_values ${r.n_values}, corpus ${r.corpus}): ${epochs} epochs in ${nativeSecs.toFixed(3)} s ` +
        `(NativeJazzModel.fit), ${apiSecs.toFixed(3)} s (JazzImproviser.fit); loss ${r.loss_first.toFixed(3)} -> ${r.loss_last.toFixed(3)}, ` +
        `accuracy ${r.acc_last.toFixed(3)}`,
    )
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
