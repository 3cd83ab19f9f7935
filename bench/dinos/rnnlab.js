// rnnlab side of the Dinosaurus Island benchmark: the course's training loop through the public
// Node API (`NameModel` from dist/index.js), printing exactly what bench/dinos/reference.py
// prints (the report lines, no blank separators), so the two outputs can be diffed.
//
//   node bench/dinos/rnnlab.js --data ../shared/data/dinos_course.txt \
//       [--iterations 35000] [--hidden 50] [--seed 0] [--every 2000] [--names 7] [--fast] [--time]
//
// `--fast` trains with `arithmetic: 'fast'` (sums in the fastest order, not numpy's).
//
// `--time` writes the training time (after loading the addon and the corpus) and the number of
// `trainer.run` chunks to stderr. To use another build of the addon, set
// NAPI_RS_NATIVE_LIBRARY_PATH=/path/to/rnnlab.linux-x64-gnu.node (honoured by index.js).
// bench/dinos/bench.py runs this and the numpy reference alternately and compares them.
'use strict'
const { parseArgs } = require('node:util')

const { NameModel, capitalise } = require('../../dist/index.js')

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/data/dinos_course.txt' },
    iterations: { type: 'string', default: '35000' },
    hidden: { type: 'string', default: '50' },
    seed: { type: 'string', default: '0' },
    every: { type: 'string', default: '2000' },
    names: { type: 'string', default: '7' },
    fast: { type: 'boolean', default: false },
    time: { type: 'boolean', default: false },
  },
})

async function main() {
  const iterations = Number(values.iterations)
  const t0 = performance.now()
  const model = NameModel.fromFile(values.data, {
    hidden: Number(values.hidden),
    seed: Number(values.seed),
    arithmetic: values.fast ? 'fast' : 'numpy',
  })
  const t1 = performance.now()
  let out = ''
  let chunks = 0
  await model.fit({
    iterations,
    every: Number(values.every),
    names: Number(values.names),
    onProgress: () => {
      chunks++
    },
    onReport: (r) => {
      out += `Iteration: ${r.iteration}, Loss: ${r.loss.toFixed(6)}\n`
      // as the course's print_sample: capitalised, with the terminating '\n' of the sample
      for (const name of r.names) out += `${capitalise(name)}\n`
    },
  })
  const t2 = performance.now()
  process.stdout.write(out)
  if (values.time) {
    process.stderr.write(
      `rnnlab.js: ${iterations} iterations in ${((t2 - t1) / 1000).toFixed(3)} s ` +
        `(${chunks} chunks; model set-up ${((t1 - t0) / 1000).toFixed(3)} s)\n`,
    )
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
