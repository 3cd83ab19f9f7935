// The course's building blocks ("Building a Recurrent Neural Network — Step by
// Step"): same names, same shapes, same records. Numerics run in the Rust core;
// this layer only checks that records have their keys so errors name them.
import type { LstmCacheData, LstmCellCacheData, RnnCacheData, RnnCellCacheData } from '../index'
import { native } from './native'
import { type Tensor, assertTensor, checkRecord, describe } from './tensor'
import { invalidArgType } from './contract'

/** RNN parameters, keyed as in the course. */
export interface RnnParameters {
  Wax: Tensor
  Waa: Tensor
  Wya: Tensor
  ba: Tensor
  by: Tensor
}
/** LSTM parameters, keyed as in the course; weights are `(n_a, n_a + n_x)`, concat = [a_prev; x]. */
export interface LstmParameters {
  Wf: Tensor
  bf: Tensor
  Wi: Tensor
  bi: Tensor
  Wc: Tensor
  bc: Tensor
  Wo: Tensor
  bo: Tensor
  Wy: Tensor
  by: Tensor
}

// Caches are opaque: a class per kind whose one private field holds the forward pass's
// tensors (plain data in engine-owned memory, so GC frees them even inside a synchronous
// loop; native objects would wait for the event loop). Only the forward functions make them;
// an object that merely has the right prototype fails the private-field check.
const MAKE = Symbol('rnnlab.cache')

/** What `rnnCellBackward` needs from `rnnCellForward` (opaque). */
export class RnnCellCache {
  readonly #data: RnnCellCacheData
  /** @internal made by `rnnCellForward` only */
  constructor(token: symbol, data: RnnCellCacheData) {
    if (token !== MAKE) throw invalidArgType('RnnCellCache: made by rnnCellForward only')
    this.#data = data
  }
  /** @internal */
  static unwrap(name: string, cache: unknown): RnnCellCacheData {
    if (typeof cache !== 'object' || cache === null || !(#data in cache)) throw badCache(name, cache, 'rnnCellForward')
    return (cache as RnnCellCache).#data
  }
}

/** What `rnnBackward` needs from `rnnForward` (opaque). */
export class RnnCache {
  readonly #data: RnnCacheData
  /** @internal made by `rnnForward` only */
  constructor(token: symbol, data: RnnCacheData) {
    if (token !== MAKE) throw invalidArgType('RnnCache: made by rnnForward only')
    this.#data = data
  }
  /** @internal */
  static unwrap(name: string, cache: unknown): RnnCacheData {
    if (typeof cache !== 'object' || cache === null || !(#data in cache)) throw badCache(name, cache, 'rnnForward')
    return (cache as RnnCache).#data
  }
}

/** What `lstmCellBackward` needs from `lstmCellForward` (opaque). */
export class LstmCellCache {
  readonly #data: LstmCellCacheData
  /** @internal made by `lstmCellForward` only */
  constructor(token: symbol, data: LstmCellCacheData) {
    if (token !== MAKE) throw invalidArgType('LstmCellCache: made by lstmCellForward only')
    this.#data = data
  }
  /** @internal */
  static unwrap(name: string, cache: unknown): LstmCellCacheData {
    if (typeof cache !== 'object' || cache === null || !(#data in cache)) throw badCache(name, cache, 'lstmCellForward')
    return (cache as LstmCellCache).#data
  }
}

/** What `lstmBackward` needs from `lstmForward` (opaque). */
export class LstmCache {
  readonly #data: LstmCacheData
  /** @internal made by `lstmForward` only */
  constructor(token: symbol, data: LstmCacheData) {
    if (token !== MAKE) throw invalidArgType('LstmCache: made by lstmForward only')
    this.#data = data
  }
  /** @internal */
  static unwrap(name: string, cache: unknown): LstmCacheData {
    if (typeof cache !== 'object' || cache === null || !(#data in cache)) throw badCache(name, cache, 'lstmForward')
    return (cache as LstmCache).#data
  }
}

function badCache(name: string, cache: unknown, forward: string): TypeError {
  const kind =
    cache instanceof RnnCellCache ||
    cache instanceof RnnCache ||
    cache instanceof LstmCellCache ||
    cache instanceof LstmCache
      ? `a ${cache.constructor.name}`
      : describe(cache)
  return invalidArgType(
    `${name}: expected the cache returned by the matching forward function (${forward}), got ${kind}`,
  )
}

const RNN_KEYS = ['Wax', 'Waa', 'Wya', 'ba', 'by'] as const
const LSTM_KEYS = ['Wf', 'bf', 'Wi', 'bi', 'Wc', 'bc', 'Wo', 'bo', 'Wy', 'by'] as const

/** One RNN step: `a_next = tanh(Wax xt + Waa a_prev + ba)`, `yt_pred = softmax(Wya a_next + by)`. */
export function rnnCellForward(
  xt: Tensor,
  a_prev: Tensor,
  parameters: RnnParameters,
): { a_next: Tensor; yt_pred: Tensor; cache: RnnCellCache } {
  assertTensor('xt', xt)
  assertTensor('a_prev', a_prev)
  checkRecord('parameters', parameters, RNN_KEYS)
  const { cache, ...out } = native().rnnCellForward(xt, a_prev, parameters)
  return { ...out, cache: new RnnCellCache(MAKE, cache) }
}

/** The RNN over `x` (n_x, m, T_x) from `a0` (n_a, m): `a` (n_a, m, T_x), `y_pred` (n_y, m, T_x). */
export function rnnForward(
  x: Tensor,
  a0: Tensor,
  parameters: RnnParameters,
): { a: Tensor; y_pred: Tensor; caches: RnnCache } {
  assertTensor('x', x)
  assertTensor('a0', a0)
  checkRecord('parameters', parameters, RNN_KEYS)
  const { caches, ...out } = native().rnnForward(x, a0, parameters)
  return { ...out, caches: new RnnCache(MAKE, caches) }
}

/** Backward through one RNN step from `da_next` (n_a, m): `{ dxt, da_prev, dWax, dWaa, dba }`. */
export function rnnCellBackward(da_next: Tensor, cache: RnnCellCache) {
  assertTensor('da_next', da_next)
  return native().rnnCellBackward(da_next, RnnCellCache.unwrap('cache', cache))
}

/** Backpropagation through time from `da` (n_a, m, T_x): `{ dx, da0, dWax, dWaa, dba }`. */
export function rnnBackward(da: Tensor, caches: RnnCache) {
  assertTensor('da', da)
  return native().rnnBackward(da, RnnCache.unwrap('caches', caches))
}

/** One LSTM step: `{ a_next, c_next, yt_pred, cache }`. */
export function lstmCellForward(
  xt: Tensor,
  a_prev: Tensor,
  c_prev: Tensor,
  parameters: LstmParameters,
): { a_next: Tensor; c_next: Tensor; yt_pred: Tensor; cache: LstmCellCache } {
  assertTensor('xt', xt)
  assertTensor('a_prev', a_prev)
  assertTensor('c_prev', c_prev)
  checkRecord('parameters', parameters, LSTM_KEYS)
  const { cache, ...out } = native().lstmCellForward(xt, a_prev, c_prev, parameters)
  return { ...out, cache: new LstmCellCache(MAKE, cache) }
}

/** The LSTM over `x` (n_x, m, T_x) from `a0` and `c⟨0⟩ = 0`: `{ a, y, c, caches }`. */
export function lstmForward(
  x: Tensor,
  a0: Tensor,
  parameters: LstmParameters,
): { a: Tensor; y: Tensor; c: Tensor; caches: LstmCache } {
  assertTensor('x', x)
  assertTensor('a0', a0)
  checkRecord('parameters', parameters, LSTM_KEYS)
  const { caches, ...out } = native().lstmForward(x, a0, parameters)
  return { ...out, caches: new LstmCache(MAKE, caches) }
}

/** Backward through one LSTM step: `{ dxt, da_prev, dc_prev, dWf, dWi, dWc, dWo, dbf, dbi, dbc, dbo }`. */
export function lstmCellBackward(da_next: Tensor, dc_next: Tensor, cache: LstmCellCache) {
  assertTensor('da_next', da_next)
  assertTensor('dc_next', dc_next)
  return native().lstmCellBackward(da_next, dc_next, LstmCellCache.unwrap('cache', cache))
}

/**
 * True backpropagation through time for the LSTM from `da` (n_a, m, T_x):
 * `{ dx, da0, dWf, dWi, dWc, dWo, dbf, dbi, dbc, dbo }`, summed over time. The course's own
 * `lstm_backward` omits the gradient flowing back from step t+1, so its printed numbers differ
 * (see docs/course-differences.md).
 */
export function lstmBackward(da: Tensor, caches: LstmCache) {
  assertTensor('da', da)
  return native().lstmBackward(da, LstmCache.unwrap('caches', caches))
}
