// Greedy decoding of a name model (`NameModel.sample` at temperature 0 or topK 1): the
// course's forward step (a = tanh(Wax x + Waa a + b), logits = Wya a + by) taking the most
// likely character at each step. The core's name sampler only draws (temperature > 0), and
// this loop is small enough to live here rather than in the binding.
import type { Vocabulary } from './corpus'
import type { NameModelParameters } from './nameModel'

/** The greedy name after `prefix`: at most `maxLength` characters drawn, without the '\n'. */
export function greedyName(
  parameters: NameModelParameters,
  vocab: Vocabulary,
  prefix: string,
  maxLength: number,
): string {
  const { Wax, Waa, Wya, b, by } = parameters
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
