// `rnnlab dinos` (train and print what the course prints) and `rnnlab sample`.
import { writeFileSync } from 'node:fs'

import { command, interruptible, intOption, numberOption, UsageError } from '../cli'
import { NameModel, capitalise } from '../nameModel'
import { lineChartSvg } from '../plot'
import { ProgressBar } from '../progress'

const DINOS_USAGE = `Usage: rnnlab dinos [options]

Trains the course's character-level RNN on dinosaur names (one example per
iteration) and prints, every --every iterations, the smoothed loss and names
sampled with seeds 0..names-1, exactly as the Dinosaurus Island notebook.

Options:
  --data FILE        one name per line (default: the npm package 'dinosaurs')
  --iterations N     train until N iterations in total (default 35000)
  --hidden N         hidden size n_a (default 50)
  --lr X             learning rate (default 0.01)
  --every N          report every N iterations (default 2000)
  --names N          names per report (default 7)
  --seed S           shuffle seed of the examples (default 0)
  --fast             sum in the fastest order, not numpy's: about twice as fast;
                     the same reports as numpy through iteration 12000, then a
                     drift in the last bits (default: numpy's order, every report)
  --save FILE        write a checkpoint at the end (atomic); on Ctrl-C too
  --resume FILE      continue from a checkpoint (bit-identical to an unbroken run)
  --plot FILE        write the smoothed-loss curve as SVG
  --quiet            no reports, only the final line`

const SAMPLE_USAGE = `Usage: rnnlab sample --model FILE [options]

Invents names with a trained model (a checkpoint from 'rnnlab dinos --save').

Options:
  --model FILE       checkpoint to load (required)
  --count N          how many names (default 20)
  --temperature T    softmax temperature (default 1)
  --prefix TEXT      start every name with TEXT
  --max-length N     at most N characters (default 50)
  --seed S           same seed, same names`

command('dinos', {
  summary: 'train the dinosaur-name RNN (Dinosaurus Island) and print names',
  usage: DINOS_USAGE,
  options: {
    data: { type: 'string' },
    iterations: { type: 'string' },
    hidden: { type: 'string' },
    lr: { type: 'string' },
    every: { type: 'string' },
    names: { type: 'string' },
    seed: { type: 'string' },
    fast: { type: 'boolean' },
    save: { type: 'string' },
    resume: { type: 'string' },
    plot: { type: 'string' },
    quiet: { type: 'boolean' },
  },
  async run(v) {
    const iterations = intOption(v, 'iterations', 35000)
    const every = intOption(v, 'every', 2000, 1)
    const nNames = intOption(v, 'names', 7)
    let model: NameModel
    if (v.resume !== undefined) {
      for (const flag of ['data', 'hidden', 'lr', 'seed', 'fast'] as const) {
        if (v[flag] !== undefined)
          throw new UsageError(`--${flag} cannot be combined with --resume (the checkpoint fixes it)`)
      }
      model = NameModel.load(String(v.resume))
    } else {
      const options = {
        hidden: intOption(v, 'hidden', 50, 1),
        learningRate: numberOption(v, 'lr', 0.01, 0),
        shuffleSeed: intOption(v, 'seed', 0),
        arithmetic: v.fast ? ('fast' as const) : ('numpy' as const),
      }
      model = v.data !== undefined ? NameModel.fromFile(String(v.data), options) : NameModel.dinosaurs(options)
    }
    const out = process.stdout
    const bar = new ProgressBar(iterations, 'it')
    const controller = new AbortController()
    const uninstall = interruptible(controller)
    const losses: number[] = []
    const iters: number[] = []
    try {
      await model.train({
        iterations,
        every,
        names: nNames,
        signal: controller.signal,
        onProgress: (p) => {
          const first = p.done - p.chunkLosses.length
          p.chunkLosses.forEach((l, k) => {
            iters.push(first + k)
            losses.push(l)
          })
          bar.update(p.done, { loss: p.loss.toFixed(4) })
        },
        onReport: v.quiet
          ? undefined
          : (r) => {
              bar.clear()
              out.write(`Iteration: ${r.iteration}, Loss: ${r.loss.toFixed(6)}\n`)
              // The course prints each sample with its terminating '\n'.
              for (const name of r.names) out.write(capitalise(name))
              out.write('\n')
            },
      })
    } catch (e) {
      bar.clear()
      // only the stop asked for is saved; a failure (a diverged run) never is, even during Ctrl-C
      if (!controller.signal.aborted || (e as Error)?.name !== 'AbortError') throw e
      const path = v.save !== undefined ? String(v.save) : 'dinos-interrupted.safetensors'
      model.save(path)
      process.stderr.write(
        `interrupted at iteration ${model.iteration}; checkpoint saved to ${path}\n` +
          `continue with: rnnlab dinos --resume ${path} --iterations ${iterations}\n`,
      )
      return 130
    } finally {
      uninstall()
    }
    bar.clear()
    if (v.save !== undefined) model.save(String(v.save))
    if (v.plot !== undefined) {
      const svg = lineChartSvg([{ label: 'smoothed loss', x: iters, y: losses }], {
        title: 'Dinosaurus Island: training loss',
        xLabel: 'iteration',
        yLabel: 'smoothed loss (nats per name)',
      })
      writeFileSync(String(v.plot), svg)
    }
    if (v.quiet) out.write(`Iteration: ${model.iteration - 1}, Loss: ${model.loss.toFixed(6)}\n`)
    return 0
  },
})

command('sample', {
  summary: 'invent names with a trained name model',
  usage: SAMPLE_USAGE,
  options: {
    model: { type: 'string' },
    count: { type: 'string' },
    temperature: { type: 'string' },
    prefix: { type: 'string' },
    'max-length': { type: 'string' },
    seed: { type: 'string' },
  },
  async run(v) {
    if (v.model === undefined) throw new UsageError('--model FILE is required')
    const model = NameModel.load(String(v.model))
    const names = model.sample({
      count: intOption(v, 'count', 20),
      temperature: numberOption(v, 'temperature', 1, Number.MIN_VALUE),
      prefix: v.prefix === undefined ? undefined : String(v.prefix),
      maxLength: intOption(v, 'max-length', 50, 1),
      seed: v.seed === undefined ? undefined : intOption(v, 'seed', 0),
    })
    for (const name of names) process.stdout.write(`${capitalise(name)}\n`)
    return 0
  },
})
