// `rnnlab dinos` (train and print what the course prints) and `rnnlab sample`.
import { existsSync, writeFileSync } from 'node:fs'

import {
  ArgumentError,
  beamOption,
  command,
  interruptible,
  intOption,
  isAbort,
  numberOption,
  resumeCommand,
  UsageError,
  type Values,
} from '../cli'
import { NAME_MODEL_DEFAULTS, NameModel, capitalise } from '../nameModel'
import { lineChartSvg } from '../plot'
import { ProgressBar } from '../progress'
import {
  checkDistinctOutputs,
  checkInputPath,
  checkOutputPath,
  expectFileKind,
  keepWorkingWhenPipeCloses,
  print,
  printError,
} from './io'

const DINOS_USAGE = `Usage: rnnlab dinos [options]

Trains the course's character-level RNN on dinosaur names (one example per
iteration) and prints, every --every iterations, the smoothed loss and names
sampled with seeds 0..names-1, exactly as the Dinosaurus Island notebook.
Ctrl-C stops after the current step and writes --checkpoint and --plot.

Options:
  --data FILE        one name per line (default: the npm package 'dinosaurs')
  --iterations N     train until N iterations in total (default ${NAME_MODEL_DEFAULTS.iterations})
  --hidden N         hidden size n_a (default ${NAME_MODEL_DEFAULTS.hidden})
  --lr X             learning rate (default ${NAME_MODEL_DEFAULTS.learningRate})
  --every N          report every N iterations (default ${NAME_MODEL_DEFAULTS.every})
  --names N          names per report (default ${NAME_MODEL_DEFAULTS.names})
  --seed S           shuffle seed of the examples (default 0)
  --fast             sum in the fastest order, not numpy's: about twice as fast;
                     the same reports as numpy through iteration 12000, then a
                     drift in the last bits (default: numpy's order, every report)
  --checkpoint FILE  training state, written at the end and on Ctrl-C (atomic);
                     'rnnlab sample' reads it (old spelling: --save)
  --resume FILE      continue from a checkpoint (bit-identical to an unbroken run)
                     and write the progress back to it unless --checkpoint says
                     where; --resume alone continues from --checkpoint if it exists
  --out FILE         the trained model at the end (a checkpoint 'rnnlab sample' reads)
  --plot FILE        write the smoothed-loss curve as SVG (this run's iterations)
  --quiet            no reports, only the final line`

const SAMPLE_USAGE = `Usage: rnnlab sample --model FILE [options]

Invents names with a trained model (a checkpoint from 'rnnlab dinos --checkpoint').

Options:
  --model FILE       checkpoint to load (required)
  --count N          how many names (default 20)
  --temperature T    softmax temperature; 0 = greedy, the most likely character
                     at each step (the same name every time) (default ${NAME_MODEL_DEFAULTS.temperature})
  --top-k K          draw among the K most likely characters (default: all)
  --prefix TEXT      start every name with TEXT
  --max-length N     at most N characters, the prefix included (default ${NAME_MODEL_DEFAULTS.maxLength})
  --seed S           same seed, same names
  --beam K           instead of sampling, the K most likely names (beam search,
                     temperature 1): one per line, best first, as LOGPROB<tab>NAME
                     (natural log, the ending newline's probability included); not
                     with --count, --temperature, --top-k or --seed`

/** Names `rnnlab sample` prints by default (the API's `sample` returns one unless asked). */
const SAMPLE_COUNT = 20

/** Flags a checkpoint fixes: refused with --resume, left out of the resume command. */
const FIXED_BY_CHECKPOINT = ['data', 'hidden', 'lr', 'seed', 'fast'] as const

command('dinos', {
  summary: 'train the dinosaur-name RNN (Dinosaurus Island) and print names',
  usage: DINOS_USAGE,
  aliases: { save: 'checkpoint' },
  optionalValue: ['resume'],
  options: {
    data: { type: 'string' },
    iterations: { type: 'string' },
    hidden: { type: 'string' },
    lr: { type: 'string' },
    every: { type: 'string' },
    names: { type: 'string' },
    seed: { type: 'string' },
    fast: { type: 'boolean' },
    checkpoint: { type: 'string' },
    resume: { type: 'string' },
    out: { type: 'string' },
    plot: { type: 'string' },
    quiet: { type: 'boolean' },
  },
  async run(v, inv) {
    const d = NAME_MODEL_DEFAULTS
    const iterations = intOption(v, 'iterations', d.iterations)
    const every = intOption(v, 'every', d.every, 1)
    const nNames = intOption(v, 'names', d.names)
    const resumeFrom = resumeSource(v, inv.spelled('checkpoint'))
    if (resumeFrom !== undefined) {
      for (const flag of FIXED_BY_CHECKPOINT) {
        if (v[flag] !== undefined)
          throw new UsageError(`--${flag} cannot be combined with --resume (the checkpoint fixes it)`)
      }
    }
    // a resume writes its progress back to the checkpoint it came from unless told otherwise
    const checkpoint = str(v.checkpoint) ?? resumeFrom
    const checkpointFlag = v.checkpoint !== undefined ? inv.spelled('checkpoint') : '--resume'
    const out = str(v.out)
    const plot = str(v.plot)
    if (checkpoint !== undefined) checkOutputPath(checkpointFlag, checkpoint)
    if (out !== undefined) checkOutputPath('--out', out)
    if (plot !== undefined) checkOutputPath('--plot', plot)
    checkDistinctOutputs([
      [checkpointFlag, checkpoint],
      ['--out', out],
      ['--plot', plot],
    ])
    let model: NameModel
    if (resumeFrom !== undefined) {
      checkInputPath('--resume', resumeFrom)
      expectFileKind('--resume', resumeFrom, 'dinos')
      model = NameModel.load(resumeFrom)
      if (iterations <= model.iteration)
        throw new ArgumentError(
          `--iterations ${iterations}: ${resumeFrom} is already at iteration ${model.iteration}, and --iterations ` +
            `is the total to reach; ask for more than ${model.iteration}`,
        )
    } else {
      if (v.data !== undefined) checkInputPath('--data', String(v.data))
      const options = {
        hidden: intOption(v, 'hidden', d.hidden, 1),
        learningRate: numberOption(v, 'lr', d.learningRate, 0),
        seed: intOption(v, 'seed', d.seed),
        arithmetic: v.fast ? ('fast' as const) : ('numpy' as const),
        // the course's dino_names: names per report and the smoothed loss's start
        names: nNames,
      }
      model = v.data !== undefined ? NameModel.fromFile(String(v.data), options) : NameModel.dinosaurs(options)
    }
    if (checkpoint !== undefined || out !== undefined || plot !== undefined) keepWorkingWhenPipeCloses()
    const bar = new ProgressBar({ unit: 'it', total: iterations, startDone: model.iteration })
    const controller = new AbortController()
    const uninstall = interruptible(controller)
    const losses: number[] = []
    const iters: number[] = []
    const writePlot = () => {
      if (plot === undefined) return
      const svg = lineChartSvg([{ label: 'smoothed loss', x: iters, y: losses }], {
        title: 'Dinosaurus Island: training loss',
        xLabel: 'iteration',
        yLabel: 'smoothed loss (nats per name)',
      })
      writeFileSync(plot, svg)
    }
    try {
      await model.fit({
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
              let text = `Iteration: ${r.iteration}, Loss: ${r.loss.toFixed(6)}\n`
              // The course prints each sample with its terminating '\n'.
              for (const name of r.names) text += `${capitalise(name)}\n`
              print(`${text}\n`)
            },
      })
    } catch (e) {
      bar.clear()
      // only the stop asked for is saved; a failure (a diverged run) never is, even during Ctrl-C
      if (!controller.signal.aborted || !isAbort(e)) throw e
      if (checkpoint !== undefined) model.save(checkpoint)
      if (out !== undefined) model.save(out)
      writePlot()
      const wrote = [checkpoint, out, plot].filter((p) => p !== undefined)
      if (checkpoint !== undefined) {
        const again = resumeCommand(inv, ['resume', 'checkpoint', ...FIXED_BY_CHECKPOINT], [['resume', checkpoint]])
        printError(
          `interrupted at iteration ${model.iteration}; checkpoint saved to ${checkpoint}` +
            `${wrote.length > 1 ? ` (also wrote ${wrote.slice(1).join(', ')})` : ''}\ncontinue with: ${again}\n`,
        )
      } else {
        printError(
          `interrupted at iteration ${model.iteration}; no checkpoint was saved` +
            `${wrote.length > 0 ? ` (wrote ${wrote.join(', ')})` : ''}: ` +
            `add --checkpoint FILE to keep the progress of the next run\n`,
        )
      }
      return 130
    } finally {
      uninstall()
    }
    bar.clear()
    if (checkpoint !== undefined) model.save(checkpoint)
    if (out !== undefined) model.save(out)
    writePlot()
    if (v.quiet) print(`Iteration: ${model.iteration - 1}, Loss: ${model.loss.toFixed(6)}\n`)
    return 0
  },
})

/** The checkpoint `--resume` reads: its value, or --checkpoint's for `--resume` alone. */
function resumeSource(v: Values, checkpointSpelling: string): string | undefined {
  if (v.resume === undefined) return undefined
  if (v.resume !== '') return String(v.resume)
  if (v.checkpoint === undefined || v.checkpoint === '')
    throw new UsageError(`--resume without a file needs ${checkpointSpelling} FILE (or give --resume FILE)`)
  const path = String(v.checkpoint)
  if (existsSync(path)) return path
  printError(`no checkpoint at ${path} yet: starting from scratch\n`)
  return undefined
}

function str(value: string | boolean | undefined): string | undefined {
  return value === undefined ? undefined : String(value)
}

command('sample', {
  summary: 'invent names with a trained name model',
  usage: SAMPLE_USAGE,
  options: {
    model: { type: 'string' },
    count: { type: 'string' },
    temperature: { type: 'string' },
    prefix: { type: 'string' },
    'max-length': { type: 'string' },
    'top-k': { type: 'string' },
    seed: { type: 'string' },
    beam: { type: 'string' },
  },
  async run(v) {
    if (v.model === undefined) throw new UsageError('--model FILE is required')
    const beamWidth = beamOption(v, ['count', 'temperature', 'top-k', 'seed'])
    const topK = intOption(v, 'top-k', 0)
    const count = intOption(v, 'count', SAMPLE_COUNT)
    const temperature = numberOption(v, 'temperature', NAME_MODEL_DEFAULTS.temperature, 0)
    const prefix = v.prefix === undefined ? '' : String(v.prefix)
    const maxLength = intOption(v, 'max-length', NAME_MODEL_DEFAULTS.maxLength, 1)
    const seed = v.seed === undefined ? undefined : intOption(v, 'seed', 0)
    // the prefix counts toward --max-length, and at least one character is drawn after it
    const prefixLength = Array.from(prefix).length
    if (maxLength <= prefixLength)
      throw new ArgumentError(
        `--max-length ${maxLength}: the prefix '${prefix}' is ${prefixLength} characters and counts toward ` +
          `--max-length; give at least ${prefixLength + 1}`,
      )
    const file = String(v.model)
    checkInputPath('--model', file)
    expectFileKind('--model', file, 'dinos')
    const model = NameModel.load(file)
    if (beamWidth !== undefined) {
      const found = model.beamSearch({ beamWidth, prefix: prefix || undefined, maxLength })
      print(found.map((b) => `${b.logProb.toFixed(4)}\t${capitalise(b.text)}\n`).join(''))
      return 0
    }
    // the prefix counts toward maxLength in the API too
    const names = model.sample({ count, temperature, topK, prefix: prefix || undefined, maxLength, seed })
    print(names.map((name) => `${capitalise(name)}\n`).join(''))
    return 0
  },
})
