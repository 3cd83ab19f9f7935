// `rnnlab train` and `rnnlab generate`: the stacked character language model on any text.
import { writeFileSync } from 'node:fs'

import { command, interruptible, intOption, numberOption, UsageError } from '../cli'
import { CharLanguageModel } from '../lm'
import { lineChartSvg } from '../plot'
import { ProgressBar } from '../progress'

const TRAIN_USAGE = `Usage: rnnlab train --text FILE --out MODEL [options]

Train a stacked LSTM (or RNN) character language model on a text, in mini-batches,
on the Rust core. Ctrl-C stops cleanly (the checkpoint and the model are written).

Model:
  --cell lstm|rnn       recurrent cell (default lstm)
  --layers N            stacked layers (default 2)
  --hidden N            hidden size of every layer (default 128)
  --embedding N         embedding width (default: one-hot input)
  --dropout P           dropout after each layer while training (default 0.2)
  --dtype float32|float64   (default float32)
Training:
  --mode tbptt|windows  many-to-many truncated BPTT (char-rnn, default) or the course's
                        many-to-one windows (predict the character after each window)
  --seq-length N        steps per sequence / window length (default 40)
  --stride N            window stride in windows mode (default 3)
  --batch-size N        sequences per mini-batch (default 128)
  --epochs N            epochs in total (default 10; unbounded with --seconds only)
  --seconds S           wall-clock budget
  --optimizer adam|sgd  (default adam)
  --lr X                learning rate (default 0.002)
  --decay X             Keras-style decay: lr/(1 + decay·step) (default 0)
  --clip X              clip gradients by value (default 5; 0 = off)
  --clip-norm X         clip by global norm
  --validation F        held-out fraction of the text (default 0.1)
  --seed S              seed of weights, shuffling and dropout (default 0)
Output:
  --out FILE            the trained model (safetensors, PyTorch nn.LSTM names)
  --checkpoint FILE     training state, written each epoch and on stop
  --resume              continue from --checkpoint when it exists
  --plot FILE           SVG chart of training and validation loss
  --sample N            print N generated characters after each epoch (default 0)
  --quiet               only the final line`

command('train', {
  summary: 'train a character language model (stacked LSTM/RNN) on a text',
  usage: TRAIN_USAGE,
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
    resume: { type: 'boolean' },
    plot: { type: 'string' },
    sample: { type: 'string' },
    quiet: { type: 'boolean' },
  },
  async run(v) {
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
    const cell = choice('cell', ['lstm', 'rnn'] as const, 'lstm')
    const mode = choice('mode', ['tbptt', 'windows'] as const, 'tbptt')
    const optimizer = choice('optimizer', ['adam', 'sgd'] as const, 'adam')
    const dtype = choice('dtype', ['float32', 'float64'] as const, 'float32')
    const layers = intOption(v, 'layers', 2, 1)
    const hidden = intOption(v, 'hidden', 128, 1)
    const embedding = intOption(v, 'embedding', 0)
    const dropout = numberOption(v, 'dropout', 0.2, 0)
    const seconds = v.seconds === undefined ? undefined : numberOption(v, 'seconds', 0, 0)
    const epochs = v.epochs === undefined ? (seconds !== undefined ? undefined : 10) : intOption(v, 'epochs', 10, 1)
    const clip = numberOption(v, 'clip', 5, 0)
    const clipNorm = v['clip-norm'] === undefined ? undefined : numberOption(v, 'clip-norm', 0, 0)
    const sample = intOption(v, 'sample', 0)
    const seed = intOption(v, 'seed', 0)
    const quiet = Boolean(v.quiet)
    const say = (s: string) => {
      if (!quiet) process.stdout.write(`${s}\n`)
    }
    const model = new CharLanguageModel({ cell, layers, hidden, embedding, dropout, dtype, seed })
    const ac = new AbortController()
    const uninstall = interruptible(ac)
    const bar = new ProgressBar(epochs ?? 0, 'epochs')
    const trainX: number[] = [],
      trainY: number[] = [],
      valX: number[] = [],
      valY: number[] = []
    let info = ''
    try {
      const history = await model.fit(
        { file: textFile },
        {
          epochs,
          seconds,
          mode,
          seqLength: intOption(v, 'seq-length', 40, 1),
          stride: intOption(v, 'stride', 3, 1),
          batchSize: intOption(v, 'batch-size', 128, 1),
          optimizer,
          lr: numberOption(v, 'lr', 0.002, 0),
          decay: numberOption(v, 'decay', 0, 0),
          clip: { value: clip > 0 ? clip : undefined, norm: clipNorm },
          validation: numberOption(v, 'validation', 0.1, 0),
          seed,
          checkpoint: v.checkpoint as string | undefined,
          resume: Boolean(v.resume),
          signal: ac.signal,
          onProgress: (p) => {
            if (!info) {
              const i = model.info!
              info = `${i.cell} ${i.hidden.join('×')}, vocabulary ${Array.from(i.vocab).length}, ${i.numParams} parameters, ${i.dtype}`
              const c = model.corpus
              say(
                `${textFile}: ${c ? c.train + c.validation : '?'} characters; ${info}; ${mode}, ${p.batchesPerEpoch} batches/epoch`,
              )
            }
            if (Number.isFinite(p.loss)) {
              trainX.push(p.epoch)
              trainY.push(p.loss)
            }
            const fields: Record<string, string> = { loss: p.loss.toFixed(3), 'chars/s': p.charsPerSecond.toFixed(0) }
            if (p.epochEnd) {
              bar.clear()
              let line = `Epoch ${p.epoch.toFixed(0)}${epochs ? `/${epochs}` : ''}  loss ${p.loss.toFixed(4)}`
              if (p.valLoss !== undefined) {
                valX.push(p.epoch)
                valY.push(p.valLoss)
                line += `  val ${p.valLoss.toFixed(4)} nats/char (perplexity ${p.valPerplexity!.toFixed(2)})`
              }
              say(`${line}  ${(p.charsPerSecond / 1000).toFixed(1)}k chars/s  ${p.elapsed.toFixed(1)} s`)
              if (sample > 0)
                say(model.generate({ prompt: '', length: sample, temperature: 0.8, seed }).replace(/^/gm, '    '))
            } else if (!quiet) {
              bar.update(p.epoch, fields)
            }
          },
        },
      )
      bar.clear()
      model.save(out)
      if (v.plot) {
        const series = [{ label: 'training loss', x: trainX, y: trainY }]
        if (valX.length) series.push({ label: 'validation loss', x: valX, y: valY })
        writeFileSync(
          String(v.plot),
          lineChartSvg(series, { title: `rnnlab train — ${info}`, xLabel: 'epoch', yLabel: 'loss (nats/char)' }),
        )
      }
      const val = history.valLoss.length
        ? `, validation ${history.valLoss[history.valLoss.length - 1].toFixed(4)} nats/char`
        : ''
      process.stdout.write(
        `wrote ${out}: ${history.epochs} epochs, ${history.steps} steps (${history.stopped}) in ${history.seconds.toFixed(1)} s, ` +
          `${(history.charsPerSecond / 1000).toFixed(1)}k chars/s${val}\n`,
      )
      return 0
    } finally {
      uninstall()
    }
  },
})

const GENERATE_USAGE = `Usage: rnnlab generate --model FILE [options]

Complete a prompt with a trained character model (from rnnlab train, or PyTorch-named
safetensors with --vocab). The same seed gives the same text.

Options:
  --model FILE         model file (required)
  --prompt TEXT        text to complete (default: none)
  --length N           characters to generate (default 400)
  --temperature T      softmax temperature; 0 = greedy (default 0.8)
  --top-k K            sample among the K most likely characters (default: all)
  --seed S             seed of the draws (default 0)
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
    vocab: { type: 'string' },
  },
  async run(v) {
    const file = v.model as string | undefined
    if (!file) throw new UsageError('--model FILE is required')
    const model = CharLanguageModel.load(file, { vocab: v.vocab as string | undefined })
    const prompt = (v.prompt as string | undefined) ?? ''
    const text = model.generate({
      prompt,
      length: intOption(v, 'length', 400),
      temperature: numberOption(v, 'temperature', 0.8, 0),
      topK: intOption(v, 'top-k', 0),
      seed: intOption(v, 'seed', 0),
    })
    process.stdout.write(`${prompt + text}\n`)
    return 0
  },
})
