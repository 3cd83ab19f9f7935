// `rnnlab jazz`: train the djmodel on a MIDI performance and write an improvised solo.
import { existsSync, writeFileSync } from 'node:fs'

import {
  ArgumentError,
  command,
  interruptible,
  intOption,
  isAbort,
  numberOption,
  resumeCommand,
  UsageError,
  type Values,
} from '../cli'
import { DEFAULT_JAZZ_MIDI, JAZZ_DEFAULTS, JAZZ_GRAMMARS, type JazzGrammar, JazzImproviser } from '../jazz'
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

const USAGE = `Usage: rnnlab jazz --out solo.mid [options]

Improvise a jazz solo (the course's third notebook, deepjazz's pipeline): the
melody of a MIDI performance becomes a corpus of grammar values, one LSTM cell
(n_a = 64) is trained over windows of 30 values with Adam, and the trained cell
improvises value after value over the source's chords. Ctrl-C stops the training
after the current epoch, writes --checkpoint and improvises with the model as
trained so far.

Options:
  --out FILE          MIDI file to write (required): solo track + chord track
  --midi FILE         performance to learn from (default: the package's original
                      blues head; the Metheny file of the course uses its preset)
  --melody-track N    melody track index in the file (default: preset or automatic)
  --chord-tracks LIST comma-separated chord track indices
  --start Q --end Q   section in quarter notes
  --grammar G         grammar of the values: rnnlab (default) or deepjazz (the
                      course's values: 193 values, 78 unique on the Metheny section)
  --epochs N          train until N epochs in total, at least 1 (default ${JAZZ_DEFAULTS.epochs})
  --length N          values generated per measure at most, Ty (default ${JAZZ_DEFAULTS.length})
  --temperature T     0 = argmax as the course (default), > 0 samples
  --top-k K           sample among the K most likely values (default: all)
  --seed S            seed of windows, weights, sampling and note choices (default 0)
  --checkpoint FILE   the whole model (section, corpus, weights, optimizer), written
                      at the end and on Ctrl-C (atomic); JazzImproviser.load reads it
  --resume FILE       continue from a checkpoint (bit-identical to an unbroken run)
                      and write the progress back to it unless --checkpoint says
                      where; --resume alone continues from --checkpoint if it exists
  --plot FILE         write a piano roll of the solo over the chords (SVG)
  --quiet             only the final line`

/** Flags a checkpoint fixes: refused with --resume, left out of the resume command. */
const FIXED_BY_CHECKPOINT = ['midi', 'melody-track', 'chord-tracks', 'start', 'end', 'seed', 'grammar'] as const

command('jazz', {
  summary: 'improvise a jazz solo with an LSTM (MIDI in, MIDI out)',
  usage: USAGE,
  optionalValue: ['resume'],
  options: {
    out: { type: 'string' },
    midi: { type: 'string' },
    'melody-track': { type: 'string' },
    'chord-tracks': { type: 'string' },
    start: { type: 'string' },
    end: { type: 'string' },
    grammar: { type: 'string' },
    epochs: { type: 'string' },
    length: { type: 'string' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    seed: { type: 'string' },
    checkpoint: { type: 'string' },
    resume: { type: 'string' },
    plot: { type: 'string' },
    quiet: { type: 'boolean' },
  },
  async run(v, inv) {
    const out = v.out as string | undefined
    if (!out) throw new UsageError('--out FILE is required')
    const d = JAZZ_DEFAULTS
    const epochs = intOption(v, 'epochs', d.epochs, 1)
    const length = intOption(v, 'length', d.length, 1)
    const temperature = numberOption(v, 'temperature', d.temperature, 0)
    const topK = intOption(v, 'top-k', d.topK)
    const seed = intOption(v, 'seed', d.seed)
    const melodyTrack = v['melody-track'] === undefined ? undefined : intOption(v, 'melody-track', 0)
    const chordTracks =
      v['chord-tracks'] === undefined
        ? undefined
        : String(v['chord-tracks'])
            .split(',')
            .map((s) => {
              const n = Number(s)
              if (!Number.isInteger(n) || n < 0)
                throw new UsageError(`--chord-tracks: expected integers >= 0, got '${v['chord-tracks']}'`)
              return n
            })
    const start = v.start === undefined ? undefined : numberOption(v, 'start', 0, 0)
    const end = v.end === undefined ? undefined : numberOption(v, 'end', 0, 0)
    const grammar = v.grammar === undefined ? d.grammar : String(v.grammar)
    if (!JAZZ_GRAMMARS.includes(grammar as JazzGrammar))
      throw new UsageError(`--grammar: expected ${JAZZ_GRAMMARS.join(' or ')}, got '${grammar}'`)
    const quiet = Boolean(v.quiet)
    const say = (s: string) => {
      if (!quiet) print(`${s}\n`)
    }
    const plot = v.plot as string | undefined
    const resumeFrom = resumeSource(v)
    if (resumeFrom !== undefined) {
      for (const flag of FIXED_BY_CHECKPOINT) {
        if (v[flag] !== undefined)
          throw new UsageError(`--${flag} cannot be combined with --resume (the checkpoint fixes it)`)
      }
    }
    // a resume writes its progress back to the checkpoint it came from unless told otherwise
    const checkpoint = v.checkpoint === undefined ? resumeFrom : String(v.checkpoint)
    const checkpointFlag = v.checkpoint !== undefined ? '--checkpoint' : '--resume'
    checkOutputPath('--out', out)
    if (plot !== undefined) checkOutputPath('--plot', plot)
    if (checkpoint !== undefined) checkOutputPath(checkpointFlag, checkpoint)
    checkDistinctOutputs([
      ['--out', out],
      ['--plot', plot],
      [checkpointFlag, checkpoint],
    ])
    if (v.midi !== undefined) checkInputPath('--midi', String(v.midi))
    let jazz: JazzImproviser
    if (resumeFrom !== undefined) {
      checkInputPath('--resume', resumeFrom)
      expectFileKind('--resume', resumeFrom, 'jazz')
      jazz = JazzImproviser.load(resumeFrom)
      if (epochs <= jazz.epochsDone)
        throw new ArgumentError(
          `--epochs ${epochs}: ${resumeFrom} is already at epoch ${jazz.epochsDone}, and --epochs ` +
            `is the total to reach; ask for more than ${jazz.epochsDone}`,
        )
    } else {
      const file = (v.midi as string | undefined) ?? DEFAULT_JAZZ_MIDI
      jazz = JazzImproviser.fromMidi(file, {
        melodyTrack,
        chordTracks,
        start,
        end,
        seed,
        grammar: grammar as JazzGrammar,
      })
    }
    keepWorkingWhenPipeCloses()

    // a resumed run improvises with the seed it was started with, as the unbroken run does
    const soloSeed = resumeFrom !== undefined ? jazz.seed : seed
    const before = jazz.epochsDone
    const s = jazz.section
    say(
      `${s.path}: melody track ${s.melodyTrack}, chord tracks ${s.chordTracks.join(',')}, quarter notes ${s.start}–${s.end}, ${Math.round(s.bpm)} bpm`,
    )
    say(
      `corpus length: ${jazz.corpus.corpus.length}, unique values: ${jazz.nValues}, measures: ${jazz.corpus.perMeasure.length}, grammar: ${jazz.grammar}`,
    )
    const t0 = Date.now()
    if (before > 0) say(`resuming from ${resumeFrom} at epoch ${before}`)
    const bar = new ProgressBar({ unit: 'epochs', total: epochs, startDone: before })
    const controller = new AbortController()
    const uninstall = interruptible(controller)
    let trained = 0
    let interrupted = false
    try {
      await jazz.fit({
        // the total to reach (the contract's budgets are totals, as --epochs is)
        epochs,
        // a lively bar in a terminal; the course's report every 10 epochs either way
        chunk: bar.active ? 1 : 10,
        signal: controller.signal,
        onProgress: (p) => {
          trained = p.epoch - before
          const epoch = p.epoch
          if (epoch % 10 === 0 || epoch === p.epochs) {
            bar.clear()
            say(
              `Epoch ${String(epoch).padStart(3)}/${epochs}  loss ${p.loss.toFixed(4)}  accuracy ${p.accuracy.toFixed(4)}`,
            )
          }
          if (!quiet) bar.update(epoch, { loss: p.loss.toFixed(4) })
        },
      })
    } catch (e) {
      if (!(controller.signal.aborted && isAbort(e))) throw e
      interrupted = true
    } finally {
      bar.clear()
      uninstall()
    }
    if (trained > 0) say(`trained ${trained} epochs in ${((Date.now() - t0) / 1000).toFixed(2)} s`)
    // only the stop asked for is saved; a failure (a diverged run) was thrown above
    if (checkpoint !== undefined) jazz.save(checkpoint)
    const solo = jazz.improvise({ length, temperature, topK, seed: soloSeed })
    jazz.toMidi(out, solo)
    if (plot) writeFileSync(plot, jazz.toSvg(solo))
    print(
      `wrote ${out}: ${solo.notes.length} solo notes over ${solo.values.length} measures at ${Math.round(solo.bpm)} bpm` +
        (plot ? `; piano roll ${plot}` : '') +
        '\n',
    )
    if (!interrupted) return 0
    printError(
      `interrupted after ${before + trained} of ${epochs} epochs: the solo comes from the model trained so far\n`,
    )
    if (checkpoint !== undefined) {
      const again = resumeCommand(inv, ['resume', 'checkpoint', ...FIXED_BY_CHECKPOINT], [['resume', checkpoint]])
      printError(`checkpoint saved to ${checkpoint}\ncontinue with: ${again}\n`)
    }
    return 130
  },
})

/** The checkpoint `--resume` reads: its value, or --checkpoint's for `--resume` alone. */
function resumeSource(v: Values): string | undefined {
  if (v.resume === undefined) return undefined
  if (v.resume !== '') return String(v.resume)
  if (v.checkpoint === undefined || v.checkpoint === '')
    throw new UsageError('--resume without a file needs --checkpoint FILE (or give --resume FILE)')
  const path = String(v.checkpoint)
  if (existsSync(path)) return path
  printError(`no checkpoint at ${path} yet: starting from scratch\n`)
  return undefined
}
