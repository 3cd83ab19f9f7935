// Writing like Shakespeare: a 2×128 LSTM character model trained in mini-batches, then prompt completion.
// Run: node examples/shakespeare.mjs path/to/shakespeare.txt [seconds]
import { readFileSync } from 'node:fs'
import { CharLanguageModel } from 'rnnlab'

const [file, secs = '60'] = process.argv.slice(2)
if (!file) {
  process.stderr.write('usage: node examples/shakespeare.mjs TEXT_FILE [seconds]\n')
  process.exit(2)
}
const text = readFileSync(file, 'utf8')

const model = new CharLanguageModel({ cell: 'lstm', layers: 2, hidden: 128, dropout: 0.2 })
const history = await model.fit(text, {
  seconds: Number(secs),
  batchSize: 128,
  seqLength: 40,
  optimizer: 'adam',
  learningRate: 0.002,
  onProgress: (p) =>
    process.stdout.write(
      `\repoch ${p.epoch.toFixed(2)}  loss ${p.loss.toFixed(3)}  ${Math.round(p.charsPerSecond ?? 0)} chars/s   `,
    ),
})
console.log(`\n${history.charsPerSecond.toFixed(0)} chars/s; validation loss ${model.validate()?.toFixed(3)} nats/char`)
console.log(
  model.generate({ prompt: "Shall I compare thee to a summer's day?\n", length: 400, temperature: 0.8, seed: 1 }),
)
model.save('shakespeare.safetensors')
