// Greedy decoding of a name model (`rnnlab sample --temperature 0`) for model classes whose
// `sample` still refuses a temperature of 0: the course's forward step (a = tanh(Wax x +
// Waa a + b), logits = Wya a + by) taking the most likely character at each step.
import type { NameModel } from '../nameModel'

/** The greedy name after `prefix`: at most `maxLength` characters drawn, without the '\n'. */
export function greedyNames(model: NameModel, prefix: string, maxLength: number): string {
  const { Wax, Waa, Wya, b, by } = model.parameters()
  const vocab = model.vocabulary
  const nA = Waa.shape[0]
  const nX = Wax.shape[1]
  const nY = Wya.shape[0]
  const newline = vocab.newline
  let a = new Float64Array(nA)
  let x = -1 // the course's first input is a zero vector
  const step = () => {
    const next = new Float64Array(nA)
    for (let i = 0; i < nA; i++) {
      let s = b.data[i] + (x >= 0 ? Wax.data[i * nX + x] : 0)
      for (let j = 0; j < nA; j++) s += Waa.data[i * nA + j] * a[j]
      next[i] = Math.tanh(s)
    }
    a = next
  }
  const lower = prefix.toLowerCase()
  const chars = Array.from(vocab.encode(lower, `prefix '${lower}'`))
  for (const c of chars) {
    step()
    x = c
  }
  const drawn: number[] = []
  while (drawn.length < maxLength) {
    step()
    let best = 0
    let bestLogit = -Infinity
    for (let k = 0; k < nY; k++) {
      let s = by.data[k]
      for (let j = 0; j < nA; j++) s += Wya.data[k * nA + j] * a[j]
      if (s > bestLogit) {
        bestLogit = s
        best = k
      }
    }
    if (best === newline) break
    drawn.push(best)
    x = best
  }
  return vocab.decode([...chars, ...drawn])
}
