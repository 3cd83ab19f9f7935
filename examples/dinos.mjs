// Dinosaurus Island: train the course's character-level RNN on dinosaur names, then invent some.
// Run: node examples/dinos.mjs [names.txt]   (default corpus: the npm package `dinosaurs`)
import { NameModel } from 'rnnlab'

const file = process.argv[2]
const model = file ? NameModel.fromFile(file) : NameModel.dinosaurs()
console.log(`vocabulary of ${model.vocabulary.size} characters, hidden size ${model.hidden}`)

await model.fit({
  iterations: 35000,
  every: 5000,
  onReport: ({ iteration, loss, names }) =>
    console.log(`Iteration: ${iteration}, Loss: ${loss.toFixed(6)}  ${names.join(', ')}`),
})

// Seeded, parallel sampling: the same seed gives the same names.
console.log('\n20 new dinosaurs:', model.sample({ count: 20, seed: 42, temperature: 0.8 }).join(', '))
console.log('starting with "ste":', model.sample({ count: 5, seed: 1, prefix: 'ste' }).join(', '))
model.save('dinos.safetensors')
console.log('saved dinos.safetensors (continue with NameModel.load, or `rnnlab dinos --resume`)')
