// A small typed tensor: row-major (C order) like numpy, so `data` equals
// numpy's `arr.ravel()` and shapes read as in the course, e.g. (n_x, m, T_x).
import { invalidArg, invalidArgType } from './contract'

export interface Tensor {
  shape: number[]
  data: Float64Array
}

/** Most axes a shape may have (numpy's limit). */
const MAX_AXES = 32
const U32_MAX = 0xffffffff

/** Checks a shape (an array of at most 32 integers in 0..2**32-1) and returns its element count. */
function shapeSize(name: string, shape: unknown): number {
  if (!Array.isArray(shape)) throw invalidArgType(`${name}: expected an array of dimensions, got ${describe(shape)}`)
  if (shape.length > MAX_AXES) throw invalidArg(`${name}: expected at most ${MAX_AXES} dimensions, got ${shape.length}`)
  let n = 1
  for (let k = 0; k < shape.length; k++) {
    const d = shape[k]
    if (!Number.isInteger(d) || d < 0 || d > U32_MAX) {
      throw invalidArg(
        `${name}: dimension ${k} must be an integer in 0..${U32_MAX}, got ${show(d)} (shape [${shape.map(show).join(', ')}])`,
      )
    }
    n *= d
  }
  return n
}

/** Makes a tensor, checking that `data` has exactly `prod(shape)` values. */
export function tensor(shape: number[], data?: ArrayLike<number>): Tensor {
  const n = shapeSize('tensor: shape', shape)
  if (data !== undefined && (typeof data !== 'object' || data === null || typeof data.length !== 'number')) {
    throw invalidArgType(`tensor: data must be an array or typed array of numbers, got ${describe(data)}`)
  }
  if (data !== undefined && data.length !== n) {
    throw invalidArg(`tensor: shape [${shape}] needs ${n} values, got ${data.length}`)
  }
  let out: Float64Array
  try {
    out = data === undefined ? new Float64Array(n) : Float64Array.from(data)
  } catch (cause) {
    throw invalidArg(
      `tensor: shape [${shape}] needs ${n} values, more than can be allocated (${(cause as Error).message})`,
    )
  }
  return { shape: [...shape], data: out }
}

/** A tensor of zeros. */
export const zeros = (shape: number[]): Tensor => tensor(shape)

/** Reads element `idx` (one integer index per axis). */
export function at(t: Tensor, ...idx: number[]): number {
  assertTensor('at: tensor', t)
  if (idx.length !== t.shape.length) throw invalidArg(`at: expected ${t.shape.length} indices, got ${idx.length}`)
  let flat = 0
  for (let k = 0; k < idx.length; k++) {
    if (!Number.isInteger(idx[k]) || idx[k] < 0 || idx[k] >= t.shape[k]) {
      throw invalidArg(`at: index ${show(idx[k])} out of range for axis ${k} of size ${t.shape[k]}`)
    }
    flat = flat * t.shape[k] + idx[k]
  }
  return t.data[flat]
}

/**
 * Checks that `value` is a Tensor: a valid shape and a Float64Array of exactly `prod(shape)`
 * values; names `name` in the error. (Finiteness is checked by the native core.)
 */
export function assertTensor(name: string, value: unknown): asserts value is Tensor {
  const t = value as Tensor
  const expected = `${name}: expected a tensor { shape: number[], data: Float64Array }`
  if (typeof value !== 'object' || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw invalidArgType(`${expected}, got ${describe(value)}`)
  }
  if (!Array.isArray(t.shape)) throw invalidArgType(`${expected}, but ${name}.shape is ${describe(t.shape)}`)
  if (!(t.data instanceof Float64Array)) throw invalidArgType(`${expected}, but ${name}.data is ${describe(t.data)}`)
  const n = shapeSize(`${name}.shape`, t.shape)
  if (t.data.length !== n)
    throw invalidArg(`${name}: shape [${t.shape}] needs ${n} values but data has ${t.data.length}`)
}

/** A number as itself, anything else by its kind (safe for symbols, huge arrays, ...). */
export function show(value: unknown): string {
  return typeof value === 'number' ? String(value) : describe(value)
}

export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return `an array of length ${value.length}`
  if (ArrayBuffer.isView(value)) return value.constructor.name
  return typeof value
}

/** Checks that `rec` is an object holding a tensor under every key; errors name `name.key`. */
export function checkRecord(name: string, rec: unknown, keys: readonly string[]): void {
  if (typeof rec !== 'object' || rec === null)
    throw invalidArgType(`${name}: expected an object with keys ${keys.join(', ')}, got ${describe(rec)}`)
  const missing = keys.filter((k) => !(k in rec))
  if (missing.length > 0)
    throw invalidArgType(`${name}: missing key(s) ${missing.join(', ')} (expected ${keys.join(', ')})`)
  for (const k of keys) assertTensor(`${name}.${k}`, (rec as Record<string, unknown>)[k])
}
