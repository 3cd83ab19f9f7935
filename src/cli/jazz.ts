// `rnnlab jazz`: train the djmodel on a MIDI performance and write an improvised solo.
import { writeFileSync } from 'node:fs'

import { command, interruptible, intOption, isAbort, numberOption, UsageError } from '../cli'
import { DEFAULT_JAZZ_MIDI, JAZZ_DEFAULTS, JazzImproviser } from '../jazz'
import { ProgressBar } from '../progress'
import {
  checkDistinctOutputs,
  checkInputPath,
  checkOutputPath,
  keepWorkingWhenPipeCloses,
  print,
  printError,
} from './io'

const USAGE = `Usage: rnnlab jazz --out solo.mid [options]

Improvise a jazz solo (the course's third notebook, deepjazz's pipeline): the
melody of a MIDI performance becomes a corpus of grammar values, one LSTM cell
(n_a = 64) is trained over windows of 30 values with Adam, and the trained cell
improvises value after value over the source's chords. Ctrl-C stops the training
after the current epoch and improvises with the model as trained so far.

Options:
  --out FILE          MIDI file to write (required): solo track + chord track
  --midi FILE         performance to learn from (default: the package's original
                      blues head; the Metheny file of the course uses its preset)
  --melody-track N    melody track index in the file (default: preset or automatic)
  --chord-tracks LIST comma-separated chord track indices
  --start Q --end Q   section in quarter notes
  --epochs N          training epochs, at least 1 (default ${JAZZ_DEFAULTS.epochs})
  --length N          values generated per measure at most, Ty (default ${JAZZ_DEFAULTS.length})
  --temperature T     0 = argmax as the course (default), > 0 samples
  --seed S            seed of windows, weights, sampling and note choices (default 0)
  --plot FILE         write a piano roll of the solo over the chords (SVG)
  --quiet             only the final line`

command('jazz', {
  summary: 'improvise a jazz solo with an LSTM (MIDI in, MIDI out)',
  usage: USAGE,
  options: {
    out: { type: 'string' },
    midi: { type: 'string' },
    'melody-track': { type: 'string' },
    'chord-tracks': { type: 'string' },
    start: { type: 'string' },
    end: { type: 'string' },
    epochs: { type: 'string' },
    length: { type: 'string' },
    temperature: { type: 'string' },
    seed: { type: 'string' },
    plot: { type: 'string' },
    quiet: { type: 'boolean' },
  },
  async run(v) {
    const out = v.out as string | undefined
    if (!out) throw new UsageError('--out FILE is required')
    const d = JAZZ_DEFAULTS
    const epochs = intOption(v, 'epochs', d.epochs, 1)
    const length = intOption(v, 'length', d.length, 1)
    const temperature = numberOption(v, 'temperature', d.temperature, 0)
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
    const quiet = Boolean(v.quiet)
    const say = (s: string) => {
      if (!quiet) print(`${s}\n`)
    }
    const plot = v.plot as string | undefined
    checkOutputPath('--out', out)
    if (plot !== undefined) checkOutputPath('--plot', plot)
    checkDistinctOutputs([
      ['--out', out],
      ['--plot', plot],
    ])
    if (v.midi !== undefined) checkInputPath('--midi', String(v.midi))
    keepWorkingWhenPipeCloses()

    const file = (v.midi as string | undefined) ?? DEFAULT_JAZZ_MIDI
    const jazz = JazzImproviser.fromMidi(file, { melodyTrack, chordTracks, start, end, seed })
    const s = jazz.section
    say(
      `${file}: melody track ${s.melodyTrack}, chord tracks ${s.chordTracks.join(',')}, quarter notes ${s.start}–${s.end}, ${Math.round(s.bpm)} bpm`,
    )
    say(
      `corpus length: ${jazz.corpus.corpus.length}, unique values: ${jazz.nValues}, measures: ${jazz.corpus.perMeasure.length}`,
    )
    const t0 = Date.now()
    const bar = new ProgressBar({ unit: 'epochs', total: epochs, startDone: 0 })
    const controller = new AbortController()
    const uninstall = interruptible(controller)
    let trained = 0
    let interrupted = false
    try {
      await jazz.fit({
        epochs,
        // a lively bar in a terminal; the course's report every 10 epochs either way
        chunk: bar.active ? 1 : 10,
        signal: controller.signal,
        onProgress: (p) => {
          trained = p.epoch
          if (p.epoch % 10 === 0 || p.epoch === p.epochs) {
            bar.clear()
            say(
              `Epoch ${String(p.epoch).padStart(3)}/${p.epochs}  loss ${p.loss.toFixed(4)}  accuracy ${p.accuracy.toFixed(4)}`,
            )
          }
          if (!quiet) bar.update(p.epoch, { loss: p.loss.toFixed(4) })
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
    const solo = jazz.improvise({ length, temperature, seed })
    jazz.toMidi(out, solo)
    if (plot) writeFileSync(plot, jazz.toSvg(solo))
    print(
      `wrote ${out}: ${solo.notes.length} solo notes over ${solo.values.length} measures at ${Math.round(solo.bpm)} bpm` +
        (plot ? `; piano roll ${plot}` : '') +
        '\n',
    )
    if (!interrupted) return 0
    printError(`interrupted after ${trained} of ${epochs} epochs: the solo comes from the model trained so far\n`)
    return 130
  },
})
