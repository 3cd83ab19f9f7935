// `rnnlab train` and `rnnlab generate`: the stacked character language model on any text.
import { copyFileSync, existsSync, renameSync, rmSync, writeFileSync } from 'node:fs'

import {
  beamOption,
  command,
  errorCode,
  errorMessage,
  interruptible,
  intOption,
  isAbort,
  numberOption,
  resumeCommand,
  UsageError,
} from '../cli'
import {
  CHAR_LM_CELLS,
  CHAR_LM_COURSE_SETUP,
  CHAR_LM_DEFAULTS,
  CharLanguageModel,
  type EvaluateEvery,
  type FitProgress,
} from '../lm'
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
import { withUnixNewlines } from './text'

const TRAIN_USAGE = `Usage: rnnlab train --text FILE --out MODEL [options]

Train a stacked LSTM (or GRU, or RNN) character language model on a text, in mini-batches,
on the Rust core. Ctrl-C stops after the current step and writes --out, --checkpoint
and --plot. A run whose loss blows up stops with an error and writes nothing.
--out is the model with the lowest validation loss (see --keep).
The defaults are CharLanguageModel's; they learn quickly on a small text (the sonnets:
about 1.7 nats/char of validation loss in 60 s on 2 cores).

Model:
  --cell lstm|gru|rnn   recurrent cell: PyTorch's nn.LSTM, nn.GRU or nn.RNN (default lstm)
  --layers N            stacked layers (default ${CHAR_LM_DEFAULTS.layers})
  --hidden N            hidden size of every layer (default ${CHAR_LM_DEFAULTS.hidden})
  --embedding N         embedding width (default: one-hot input)
  --dropout P           dropout after each layer while training (default ${CHAR_LM_DEFAULTS.dropout})
  --dtype float32|float64   (default float32)
Training:
  --mode tbptt|windows  many-to-many truncated BPTT (char-rnn, default) or the course's
                        many-to-one windows (predict the character after each window)
  --seq-length N        steps per sequence / window length (default ${CHAR_LM_DEFAULTS.seqLength})
  --stride N            window stride in windows mode (default ${CHAR_LM_DEFAULTS.stride})
  --batch-size N        sequences per mini-batch (default ${CHAR_LM_DEFAULTS.batchSize})
  --epochs N            epochs in total (default ${CHAR_LM_DEFAULTS.epochs}; unbounded with --seconds only)
  --seconds S           wall-clock budget (> 0)
  --optimizer adam|sgd  (default adam)
  --lr X                learning rate (default ${CHAR_LM_DEFAULTS.learningRate})
  --decay X             Keras-style decay: lr/(1 + decay·step) (default 0)
  --clip X              clip gradients by value (default ${CHAR_LM_DEFAULTS.clip}; 0 = off)
  --clip-norm X         clip by global norm
  --validation F        held-out fraction of the text (default ${CHAR_LM_DEFAULTS.validation})
  --seed S              seed of weights, shuffling and dropout (default 0)
  --course              the course's Keras set-up instead of the defaults: the same as
                        --mode ${CHAR_LM_COURSE_SETUP.mode} --seq-length ${CHAR_LM_COURSE_SETUP.seqLength} --stride ${CHAR_LM_COURSE_SETUP.stride} --batch-size ${CHAR_LM_COURSE_SETUP.batchSize}
                        --layers ${CHAR_LM_COURSE_SETUP.layers} --hidden ${CHAR_LM_COURSE_SETUP.hidden} --dropout ${CHAR_LM_COURSE_SETUP.dropout} --lr ${CHAR_LM_COURSE_SETUP.learningRate} (flags given
                        with it win); it learns far less per second
Output:
  --out FILE            the trained model (safetensors, PyTorch nn.LSTM/nn.GRU names);
                        its metadata has its validation loss and the step/epoch it is from
  --keep best|last      --out is the model with the lowest validation loss at an
                        evaluation (default best), or the last one; without validation
                        data (--validation 0) the last is written and a note says so
  --checkpoint FILE     training state (with the best model so far and the patience
                        count), written at each evaluation and on stop
  --checkpoint-every N  evaluate on validation (and write --checkpoint) every N steps;
                        Ne or Nepochs: every N epochs (default 1e, each epoch end)
  --patience K          stop early after K evaluations in a row without a lower
                        validation loss (default: never)
  --resume FILE         continue from a checkpoint and write the progress back to it
                        unless --checkpoint says where; --resume alone continues from
                        --checkpoint if that file exists
  --plot FILE           SVG chart of training and validation loss
  --sample N            print N generated characters after each epoch (default 0)
  --quiet               only the final line
The text's CR and CRLF line endings are read as '\\n'.`

/**
 * A loss this far above the uniform guess (ln V nats/char, where every fresh model starts) is
 * a run that blew up, not one that learns: twice ln V is never reached by a run that learns.
 */
function divergedLoss(loss: number | undefined, vocabSize: number): boolean {
  if (loss === undefined) return false
  return !Number.isFinite(loss) || loss > 2 * Math.log(Math.max(vocabSize, 2))
}

/** Settings a training checkpoint holds: a resumed run takes them from it. */
const FIXED_BY_CHECKPOINT = [
  'cell',
  'layers',
  'hidden',
  'embedding',
  'dropout',
  'dtype',
  'mode',
  'seq-length',
  'stride',
  'batch-size',
  'optimizer',
  'lr',
  'decay',
  'clip',
  'clip-norm',
  'validation',
  'seed',
  'course',
  'checkpoint-every',
  'patience',
] as const

/** `--checkpoint-every`: `N` or `Nsteps` (steps), `Ne` or `Nepochs` (epochs), N >= 1. */
export function parseEvery(raw: string): EvaluateEvery {
  const m = /^(\d+)(steps?|e|epochs?)?$/.exec(raw)
  const n = m ? Number(m[1]) : Number.NaN
  if (m === null || n < 1 || n > 0xffffffff)
    throw new UsageError(
      `--checkpoint-every: expected N (steps) or Ne / Nepochs (epochs), N an integer >= 1, got '${raw}'`,
    )
  return m[2] === undefined || m[2].startsWith('step') ? { steps: n } : { epochs: n }
}

command('train', {
  summary: 'train a character language model (stacked LSTM/GRU/RNN) on a text',
  usage: TRAIN_USAGE,
  optionalValue: ['resume'],
  options: {
    text: { type: 'string' },
    out: { type: 'string' },
    cell: { type: 'string' },
    layers: { type: 'string' },
    hidden: { type: 'string' },
    embedding: { type: 'string' },
    dropout: { type: 'string' },
    dtype: { type: 'string' },
    mode: { type: 'string' },
    'seq-length': { type: 'string' },
    stride: { type: 'string' },
    'batch-size': { type: 'string' },
    epochs: { type: 'string' },
    seconds: { type: 'string' },
    optimizer: { type: 'string' },
    lr: { type: 'string' },
    decay: { type: 'string' },
    clip: { type: 'string' },
    'clip-norm': { type: 'string' },
    validation: { type: 'string' },
    seed: { type: 'string' },
    checkpoint: { type: 'string' },
    'checkpoint-every': { type: 'string' },
    patience: { type: 'string' },
    keep: { type: 'string' },
    resume: { type: 'string' },
    plot: { type: 'string' },
    sample: { type: 'string' },
    quiet: { type: 'boolean' },
    course: { type: 'boolean' },
  },
  async run(v, inv) {
    const textFile = v.text as string | undefined
    const out = v.out as string | undefined
    if (!textFile) throw new UsageError('--text FILE is required')
    if (!out) throw new UsageError('--out FILE is required')
    const choice = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
      const raw = (v[name] as string | undefined) ?? fallback
      if (!allowed.includes(raw as T))
        throw new UsageError(`--${name}: expected one of ${allowed.join(', ')}, got '${raw}'`)
      return raw as T
    }
    // the model class's defaults, or the course's set-up over them; explicit flags win
    const d = v.course ? { ...CHAR_LM_DEFAULTS, ...CHAR_LM_COURSE_SETUP } : CHAR_LM_DEFAULTS
    const cell = choice('cell', CHAR_LM_CELLS, d.cell)
    const mode = choice('mode', ['tbptt', 'windows'] as const, d.mode)
    const optimizer = choice('optimizer', ['adam', 'sgd'] as const, d.optimizer)
    const dtype = choice('dtype', ['float32', 'float64'] as const, d.dtype)
    const layers = intOption(v, 'layers', d.layers, 1)
    const hidden = intOption(v, 'hidden', d.hidden, 1)
    const embedding = intOption(v, 'embedding', d.embedding)
    const dropout = numberOption(v, 'dropout', d.dropout, 0)
    const seconds = v.seconds === undefined ? undefined : numberOption(v, 'seconds', 0, 0, true)
    const epochs =
      v.epochs === undefined ? (seconds !== undefined ? undefined : d.epochs) : intOption(v, 'epochs', d.epochs, 1)
    const clip = numberOption(v, 'clip', d.clip, 0)
    const clipNorm = v['clip-norm'] === undefined ? undefined : numberOption(v, 'clip-norm', 0, 0)
    const sample = intOption(v, 'sample', 0)
    const seed = intOption(v, 'seed', d.seed)
    const fitNumbers = {
      seqLength: intOption(v, 'seq-length', d.seqLength, 1),
      stride: intOption(v, 'stride', d.stride, 1),
      batchSize: intOption(v, 'batch-size', d.batchSize, 1),
      learningRate: numberOption(v, 'lr', d.learningRate, 0),
      decay: numberOption(v, 'decay', d.decay, 0),
      validation: numberOption(v, 'validation', d.validation, 0),
    }
    const keep = choice('keep', ['best', 'last'] as const, CHAR_LM_DEFAULTS.keep)
    const evaluateEvery =
      v['checkpoint-every'] === undefined ? CHAR_LM_DEFAULTS.evaluateEvery : parseEvery(String(v['checkpoint-every']))
    const patience = v.patience === undefined ? undefined : intOption(v, 'patience', 1, 1)
    if (patience !== undefined && fitNumbers.validation === 0)
      throw new UsageError('--patience: early stopping needs validation data; --validation is 0')
    const quiet = Boolean(v.quiet)
    const say = (s: string) => {
      if (!quiet) print(`${s}\n`)
    }

    // where the run starts from and where its progress goes, all checked before any work
    let resumeFrom: string | undefined
    if (v.resume === '') {
      if (v.checkpoint === undefined) throw new UsageError('--resume without a file needs --checkpoint FILE')
      if (existsSync(String(v.checkpoint))) resumeFrom = String(v.checkpoint)
      else printError(`no checkpoint at ${v.checkpoint} yet: starting from scratch\n`)
    } else if (v.resume !== undefined) {
      resumeFrom = String(v.resume)
    }
    const checkpoint = (v.checkpoint as string | undefined) ?? resumeFrom
    const checkpointFlag = v.checkpoint !== undefined ? '--checkpoint' : '--resume'
    const plot = v.plot as string | undefined
    checkOutputPath('--out', out)
    if (checkpoint !== undefined) checkOutputPath(checkpointFlag, checkpoint)
    if (plot !== undefined) checkOutputPath('--plot', plot)
    checkDistinctOutputs([
      ['--out', out],
      [checkpointFlag, checkpoint],
      ['--plot', plot],
    ])
    checkInputPath('--text', textFile)
    if (resumeFrom !== undefined) {
      checkInputPath('--resume', resumeFrom)
      expectFileKind('--resume', resumeFrom, 'charlm', true)
      const fixed = FIXED_BY_CHECKPOINT.filter((flag) => v[flag] !== undefined)
      if (fixed.length > 0)
        printError(`note: ${fixed.map((f) => `--${f}`).join(', ')} come from the checkpoint when resuming\n`)
    }
    keepWorkingWhenPipeCloses()

    // The model class writes its checkpoint at every epoch end and on stop; it writes into a
    // working file next to the real one, which replaces the real one only while the run is
    // sound, so a run that blows up leaves the last good checkpoint untouched.
    const working = checkpoint !== undefined ? `${checkpoint}.${process.pid}.running` : undefined
    const promote = () => {
      if (working !== undefined && checkpoint !== undefined && existsSync(working)) renameSync(working, checkpoint)
    }
    const discard = () => {
      if (working !== undefined) rmSync(working, { force: true })
    }
    // a second Ctrl-C quits at once: the working file goes, the last promoted checkpoint stays
    process.once('exit', discard)
    if (resumeFrom !== undefined && working !== undefined) copyFileSync(resumeFrom, working)

    const text = await withUnixNewlines(textFile)
    const model = new CharLanguageModel({ cell, layers, hidden, embedding, dropout, dtype, seed })
    const ac = new AbortController()
    const uninstall = interruptible(ac)
    const bar = new ProgressBar({ unit: 'epochs', total: epochs, seconds })
    const trainX: number[] = [],
      trainY: number[] = [],
      valX: number[] = [],
      valY: number[] = []
    let info = ''
    let vocabSize = 0
    let last: FitProgress | undefined
    let diverged: string | undefined
    let stopped: string | undefined
    try {
      try {
        const history = await model.fit(
          { file: text.path },
          {
            epochs,
            seconds,
            mode,
            ...fitNumbers,
            optimizer,
            clip: { value: clip > 0 ? clip : undefined, norm: clipNorm },
            seed,
            evaluateEvery,
            patience,
            keep,
            checkpoint: working,
            resume: resumeFrom !== undefined,
            signal: ac.signal,
            onProgress: (p) => {
              if (!info) {
                const i = model.info!
                vocabSize = Array.from(i.vocab).length
                info = `${i.cell} ${i.hidden.join('×')}, vocabulary ${vocabSize}, ${i.numParams} parameters, ${i.dtype}`
                const c = model.corpus
                say(
                  `${textFile}: ${c ? c.train + c.validation : '?'} characters; ${info}; ${mode}, ${p.batchesPerEpoch} batches/epoch`,
                )
              }
              // a chunk cut short by Ctrl-C, or of a run resumed after it stopped early, may run
              // no batch: its loss is NaN and says nothing
              const ranBatches =
                last === undefined
                  ? !ac.signal.aborted && !(p.stoppedEarly && Number.isNaN(p.loss))
                  : p.step !== last.step
              last = p
              const blewUp = (ranBatches && divergedLoss(p.loss, vocabSize)) || divergedLoss(p.valLoss, vocabSize)
              if (diverged === undefined && blewUp) {
                diverged =
                  `the training diverged at epoch ${p.epoch.toFixed(2)} (loss ${p.loss.toFixed(4)}` +
                  `${p.valLoss !== undefined ? `, validation ${p.valLoss.toFixed(4)}` : ''} nats/char, ` +
                  `where a uniform guess is ${Math.log(vocabSize).toFixed(4)}): try a smaller --lr or a --clip`
                ac.abort()
                return
              }
              if (p.evaluation) promote()
              if (Number.isFinite(p.loss)) {
                trainX.push(p.epoch)
                trainY.push(p.loss)
              }
              const fields = { loss: p.loss.toFixed(3), 'chars/s': `${(p.charsPerSecond / 1000).toFixed(1)}k` }
              if (p.epochEnd) {
                bar.clear()
                let line = `Epoch ${p.epoch.toFixed(0)}${epochs ? `/${epochs}` : ''}  loss ${(p.epochLoss ?? p.loss).toFixed(4)}`
                if (p.valLoss !== undefined) {
                  valX.push(p.epoch)
                  valY.push(p.valLoss)
                  line += `  val ${p.valLoss.toFixed(4)} nats/char (perplexity ${p.valPerplexity!.toFixed(2)})`
                  if (p.improved) line += '  best'
                }
                say(`${line}  ${(p.charsPerSecond / 1000).toFixed(1)}k chars/s  ${p.elapsed.toFixed(1)} s`)
                if (sample > 0) say(model.generate({ prompt: '', length: sample, seed }).replace(/^/gm, '    '))
              } else if (p.valLoss !== undefined) {
                // an evaluation every N steps, between epoch ends
                bar.clear()
                valX.push(p.epoch)
                valY.push(p.valLoss)
                say(
                  `Step ${p.step} (epoch ${p.epoch.toFixed(2)})  val ${p.valLoss.toFixed(4)} nats/char ` +
                    `(perplexity ${p.valPerplexity!.toFixed(2)})${p.improved ? '  best' : ''}`,
                )
              }
              // redrawn under each epoch line too, so that short epochs still show it
              if (!quiet) bar.update(p.epoch, fields, { elapsed: p.elapsed, force: p.epochEnd })
            },
          },
        )
        stopped = history.stopped
      } catch (e) {
        // the model class rejects on abort (as `fetch` does) after writing the checkpoint
        if (!(ac.signal.aborted && isAbort(e))) {
          if (errorCode(e) === 'ERR_DIVERGED' && diverged === undefined) diverged = errorMessage(e)
          else throw e
        }
        stopped = 'aborted'
      }
    } catch (e) {
      bar.clear()
      discard()
      throw e
    } finally {
      uninstall()
      text.remove()
    }
    bar.clear()
    if (diverged !== undefined) {
      discard()
      process.stderr.write(
        `rnnlab train: ${diverged}; nothing was written` +
          `${checkpoint !== undefined && existsSync(checkpoint) ? ` (${checkpoint} keeps the last good epoch)` : ''}\n`,
      )
      return 1
    }
    promote()
    model.save(out)
    const saved = model.info!
    if (plot) {
      const series = [{ label: 'training loss', x: trainX, y: trainY }]
      if (valX.length) series.push({ label: 'validation loss', x: valX, y: valY })
      writeFileSync(
        plot,
        lineChartSvg(series, { title: `rnnlab train — ${info}`, xLabel: 'epoch', yLabel: 'loss (nats/char)' }),
      )
    }
    const done = last ? `${Math.floor(last.epoch)} epochs, ${last.step} steps` : '0 epochs'
    const at = (step: number, epoch: number) => `step ${step} (epoch ${epoch.toFixed(2)})`
    const best = last?.best
    let val = ''
    if (saved.kept === 'best' && best !== undefined)
      val = `, validation ${best.valLoss.toFixed(4)} nats/char (the best, at ${at(best.step, best.epoch)})`
    else {
      const lastVal = model.validate()
      if (lastVal !== null) val = `, validation ${lastVal.toFixed(4)} nats/char (the last model)`
      if (keep === 'best') {
        const why =
          model.corpus?.validation === 0
            ? 'there is no validation data (--validation 0)'
            : lastVal === null
              ? 'the validation part is shorter than one sequence'
              : 'the run stopped before its first evaluation'
        printError(`note: ${out} is the last model: ${why}\n`)
      }
    }
    const speed = last ? `${(last.charsPerSecond / 1000).toFixed(1)}k chars/s` : ''
    print(`wrote ${out}: ${done} (${stopped}) in ${(last?.elapsed ?? 0).toFixed(1)} s, ${speed}${val}\n`)
    if (stopped === 'patience' && last !== undefined && best !== undefined)
      print(
        `stopped early at ${at(last.step, last.epoch)}: ${last.evaluationsSinceBest} evaluations without a lower ` +
          `validation loss; the best, ${best.valLoss.toFixed(4)} nats/char, at ${at(best.step, best.epoch)}\n`,
      )
    if (stopped !== 'aborted') return 0
    if (checkpoint !== undefined) {
      const again = resumeCommand(inv, ['resume'], v.checkpoint !== undefined ? [['resume']] : [['resume', checkpoint]])
      printError(`interrupted; checkpoint saved to ${checkpoint}\ncontinue with: ${again}\n`)
    } else {
      printError(
        `interrupted; no checkpoint was saved (the model so far is in ${out}): ` +
          `add --checkpoint FILE to keep the progress of the next run and continue it with --resume\n`,
      )
    }
    return 130
  },
})

const GENERATE_USAGE = `Usage: rnnlab generate --model FILE [options]

Complete a prompt with a trained character model (from rnnlab train, or PyTorch-named
safetensors with --vocab: an nn.LSTM, nn.GRU or nn.RNN state_dict, the cell read from the
file). The same seed gives the same text.

Options:
  --model FILE         model file (required)
  --prompt TEXT        text to complete (default: none)
  --length N           characters to generate (default ${CHAR_LM_DEFAULTS.length})
  --temperature T      softmax temperature; 0 = greedy (default ${CHAR_LM_DEFAULTS.temperature})
  --top-k K            sample among the K most likely characters (default: all)
  --seed S             seed of the draws (default 0)
  --beam K             instead of sampling, the K most likely continuations of
                       --length characters (beam search, temperature 1): one per
                       line, best first, as LOGPROB<tab>"TEXT" (natural log; the
                       prompt and the text as a JSON string); not with --temperature,
                       --top-k or --seed
  --vocab TEXT         vocabulary, for files without one`

command('generate', {
  summary: 'complete a prompt with a trained character model',
  usage: GENERATE_USAGE,
  options: {
    model: { type: 'string' },
    prompt: { type: 'string' },
    length: { type: 'string' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    seed: { type: 'string' },
    beam: { type: 'string' },
    vocab: { type: 'string' },
  },
  async run(v) {
    const file = v.model as string | undefined
    if (!file) throw new UsageError('--model FILE is required')
    const prompt = (v.prompt as string | undefined) ?? ''
    const beamWidth = beamOption(v, ['temperature', 'top-k', 'seed'])
    const options = {
      prompt,
      length: intOption(v, 'length', CHAR_LM_DEFAULTS.length),
      temperature: numberOption(v, 'temperature', CHAR_LM_DEFAULTS.temperature, 0),
      topK: intOption(v, 'top-k', CHAR_LM_DEFAULTS.topK),
      seed: intOption(v, 'seed', 0),
    }
    checkInputPath('--model', file)
    expectFileKind('--model', file, 'charlm')
    const model = CharLanguageModel.load(file, { vocab: v.vocab as string | undefined })
    if (beamWidth !== undefined) {
      const found = model.beamSearch({ prompt, length: options.length, beamWidth })
      print(found.map((b) => `${b.logProb.toFixed(4)}\t${JSON.stringify(prompt + b.text)}\n`).join(''))
      return 0
    }
    print(`${prompt + model.generate(options)}\n`)
    return 0
  },
})
