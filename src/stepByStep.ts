// The course's building blocks ("Building a Recurrent Neural Network — Step by
// Step"): same names, same shapes, same records. Numerics run in the Rust core;
// this layer only checks that records have their keys so errors name them.
import { native } from './native'
import { Tensor, assertTensor, describe } from './tensor'

/** RNN parameters, keyed as in the course. */
export interface RnnParameters { Wax: Tensor; Waa: Tensor; Wya: Tensor; ba: Tensor; by: Tensor }
/** LSTM parameters, keyed as in the course; weights are `(n_a, n_a + n_x)`, concat = [a_prev; x]. */
export interface LstmParameters {
  Wf: Tensor; bf: Tensor; Wi: Tensor; bi: Tensor; Wc: Tensor; bc: Tensor; Wo: Tensor; bo: Tensor; Wy: Tensor; by: Tensor
}

type Native = ReturnType<typeof native>
export type RnnCellCache = InstanceType<Native['RnnCellCache']>
export type RnnCache = InstanceType<Native['RnnCache']>
export type LstmCellCache = InstanceType<Native['LstmCellCache']>
export type LstmCache = InstanceType<Native['LstmCache']>

const RNN_KEYS = ['Wax', 'Waa', 'Wya', 'ba', 'by'] as const
const LSTM_KEYS = ['Wf', 'bf', 'Wi', 'bi', 'Wc', 'bc', 'Wo', 'bo', 'Wy', 'by'] as const

function checkRecord(name: string, rec: unknown, keys: readonly string[]): void {
  if (typeof rec !== 'object' || rec === null) throw new TypeError(`${name}: expected an object with keys ${keys.join(', ')}, got ${describe(rec)}`)
  const missing = keys.filter((k) => !(k in rec))
  if (missing.length > 0) throw new TypeError(`${name}: missing key(s) ${missing.join(', ')} (expected ${keys.join(', ')})`)
  for (const k of keys) assertTensor(`${name}.${k}`, (rec as Record<string, unknown>)[k])
}

function checkCache(name: string, cache: unknown, cls: Function): void {
  if (!(cache instanceof cls)) throw new TypeError(`${name}: expected the cache returned by the matching forward function, got ${describe(cache)}`)
}

/** One RNN step: `a_next = tanh(Wax xt + Waa a_prev + ba)`, `yt_pred = softmax(Wya a_next + by)`. */
export function rnnCellForward(xt: Tensor, a_prev: Tensor, parameters: RnnParameters): { a_next: Tensor; yt_pred: Tensor; cache: RnnCellCache } {
  assertTensor('xt', xt)
  assertTensor('a_prev', a_prev)
  checkRecord('parameters', parameters, RNN_KEYS)
  return native().rnnCellForward(xt, a_prev, parameters)
}

/** The RNN over `x` (n_x, m, T_x) from `a0` (n_a, m): `a` (n_a, m, T_x), `y_pred` (n_y, m, T_x). */
export function rnnForward(x: Tensor, a0: Tensor, parameters: RnnParameters): { a: Tensor; y_pred: Tensor; caches: RnnCache } {
  assertTensor('x', x)
  assertTensor('a0', a0)
  checkRecord('parameters', parameters, RNN_KEYS)
  return native().rnnForward(x, a0, parameters)
}

/** Backward through one RNN step from `da_next` (n_a, m): `{ dxt, da_prev, dWax, dWaa, dba }`. */
export function rnnCellBackward(da_next: Tensor, cache: RnnCellCache) {
  assertTensor('da_next', da_next)
  checkCache('cache', cache, native().RnnCellCache)
  return native().rnnCellBackward(da_next, cache)
}

/** Backpropagation through time from `da` (n_a, m, T_x): `{ dx, da0, dWax, dWaa, dba }`. */
export function rnnBackward(da: Tensor, caches: RnnCache) {
  assertTensor('da', da)
  checkCache('caches', caches, native().RnnCache)
  return native().rnnBackward(da, caches)
}

/** One LSTM step: `{ a_next, c_next, yt_pred, cache }`. */
export function lstmCellForward(xt: Tensor, a_prev: Tensor, c_prev: Tensor, parameters: LstmParameters): { a_next: Tensor; c_next: Tensor; yt_pred: Tensor; cache: LstmCellCache } {
  assertTensor('xt', xt)
  assertTensor('a_prev', a_prev)
  assertTensor('c_prev', c_prev)
  checkRecord('parameters', parameters, LSTM_KEYS)
  return native().lstmCellForward(xt, a_prev, c_prev, parameters)
}

/** The LSTM over `x` (n_x, m, T_x) from `a0` and `c⟨0⟩ = 0`: `{ a, y, c, caches }`. */
export function lstmForward(x: Tensor, a0: Tensor, parameters: LstmParameters): { a: Tensor; y: Tensor; c: Tensor; caches: LstmCache } {
  assertTensor('x', x)
  assertTensor('a0', a0)
  checkRecord('parameters', parameters, LSTM_KEYS)
  return native().lstmForward(x, a0, parameters)
}

/** Backward through one LSTM step: `{ dxt, da_prev, dc_prev, dWf, dWi, dWc, dWo, dbf, dbi, dbc, dbo }`. */
export function lstmCellBackward(da_next: Tensor, dc_next: Tensor, cache: LstmCellCache) {
  assertTensor('da_next', da_next)
  assertTensor('dc_next', dc_next)
  checkCache('cache', cache, native().LstmCellCache)
  return native().lstmCellBackward(da_next, dc_next, cache)
}

/**
 * True backpropagation through time for the LSTM from `da` (n_a, m, T_x):
 * `{ dx, da0, dWf, dWi, dWc, dWo, dbf, dbi, dbc, dbo }`, summed over time. The course's own
 * `lstm_backward` omits the gradient flowing back from step t+1, so its printed numbers differ
 * (see docs/course-differences.md).
 */
export function lstmBackward(da: Tensor, caches: LstmCache) {
  assertTensor('da', da)
  checkCache('caches', caches, native().LstmCache)
  return native().lstmBackward(da, caches)
}
