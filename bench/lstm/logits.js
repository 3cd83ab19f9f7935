// Prints, as JSON, the logits an rnnlab character model gives after each character of a text
// (from a zero state): {"vocab": "...", "text": "...", "logits": [[...V], ...]}. Used by
// torch_interop.py to compare rnnlab with PyTorch on the same weights.
//
//   node bench/lstm/logits.js MODEL.safetensors "some text" [VOCAB]
const { CharLanguageModel } = require('../../dist/index.js')

const [file, text, vocab] = process.argv.slice(2)
if (!file || text === undefined) {
  console.error('usage: node bench/lstm/logits.js MODEL.safetensors TEXT [VOCAB]')
  process.exit(2)
}
const model = CharLanguageModel.load(file, { vocab, dtype: 'float64' })
process.stdout.write(`${JSON.stringify({ vocab: model.vocab, text, logits: model.logits(text) })}\n`)
