// The Dinosaurus notebook's helpers with the course's names and semantics:
// `initializeParameters`, `clip`, `sample`, `optimize`. float64 throughout; the
// numerics run in the Rust core, this layer checks records so errors name keys.
import type { CharRnnGradientRecord, CharRnnParameters } from '../index'
import { native } from './native'
import { type Tensor, assertTensor, checkRecord } from './tensor'
import { invalidArg, invalidArgType } from './contract'

/** Parameters of the character-level RNN: `Wax` (n_a, n_x), `Waa` (n_a, n_a), `Wya` (n_y, n_a), `b` (n_a, 1), `by` (n_y, 1). */
export type CharRnnParams = CharRnnParameters
/** Gradients keyed as the course: `dWax`, `dWaa`, `dWya`, `db`, `dby`. */
export type CharRnnGradients = CharRnnGradientRecord

const PARAM_KEYS = ['Wax', 'Waa', 'Wya', 'b', 'by'] as const
const GRAD_KEYS = ['dWax', 'dWaa', 'dWya', 'db', 'dby'] as const

/**
 * The course's `initialize_parameters(n_a, n_x, n_y)`: `np.random.seed(1)`, then
 * `Wax, Waa, Wya = randn(...)·0.01` in that order, zero biases.
 */
export function initializeParameters(n_a: number, n_x: number, n_y: number, seed = 1): CharRnnParams {
  for (const [k, v] of [
    ['n_a', n_a],
    ['n_x', n_x],
    ['n_y', n_y],
    ['seed', seed],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
      throw invalidArg(`initializeParameters: ${k} must be an integer in 0..4294967295, got ${v}`)
  }
  return native().initializeParameters(n_a, n_x, n_y, seed)
}

/** The course's `clip(gradients, maxValue)`: element-wise to [−maxValue, maxValue]; returns new tensors. */
export function clip(gradients: CharRnnGradients, maxValue: number): CharRnnGradients {
  checkRecord('gradients', gradients, GRAD_KEYS)
  return native().clip(gradients, maxValue)
}

/** The course's `char_to_ix`: a record or a map from character to index. */
export type CharToIx = Readonly<Record<string, number>> | ReadonlyMap<string, number>

function newlineIndex(charToIx: CharToIx): number {
  const nl = charToIx instanceof Map ? charToIx.get('\n') : (charToIx as Record<string, number>)?.['\n']
  if (typeof nl !== 'number') throw invalidArgType("charToIx: must map '\\n' to its index (it ends every name)")
  return nl
}

/**
 * The course's `sample(parameters, char_to_ix, seed)`: from a zero input and state, draw each
 * next index with `np.random.choice(p = ŷ)` after `np.random.seed(counter + seed)`; stop at
 * '\n' or after 50 characters (then append '\n'). Returns the indices.
 */
export function sample(parameters: CharRnnParams, charToIx: CharToIx, seed: number): number[] {
  checkRecord('parameters', parameters, PARAM_KEYS)
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw invalidArg(`sample: seed must be an integer in 0..4294967295, got ${seed}`)
  return native().sampleIndices(parameters, newlineIndex(charToIx), seed)
}

/**
 * The course's `optimize(X, Y, a_prev, parameters, learning_rate)`: forward, backward,
 * clip to ±5, SGD step. Like the course it updates `parameters` in place; returns
 * `{ loss, gradients, a_last }` (`a_last` = a⟨len(X)−1⟩, shape (n_a, 1)).
 */
export function optimize(
  X: ReadonlyArray<number | null>,
  Y: readonly number[],
  a_prev: Tensor,
  parameters: CharRnnParams,
  learningRate = 0.01,
): { loss: number; gradients: CharRnnGradients; a_last: Tensor } {
  if (!Array.isArray(X) || !Array.isArray(Y))
    throw invalidArgType('optimize: X and Y must be arrays of indices (X[0] may be null)')
  if (X.length !== Y.length)
    throw invalidArg(`optimize: X and Y must have the same length, got ${X.length} and ${Y.length}`)
  assertTensor('a_prev', a_prev)
  checkRecord('parameters', parameters, PARAM_KEYS)
  const out = native().optimize([...X], [...Y], a_prev, parameters, learningRate)
  for (const k of PARAM_KEYS) parameters[k].data.set(out.parameters[k].data)
  return { loss: out.loss, gradients: out.gradients, a_last: out.a_last }
}
