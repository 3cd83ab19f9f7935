// A small typed tensor: row-major (C order) like numpy, so `data` equals
// numpy's `arr.ravel()` and shapes read as in the course, e.g. (n_x, m, T_x).

export interface Tensor {
  shape: number[]
  data: Float64Array
}

/** Makes a tensor, checking that `data` has exactly `prod(shape)` values. */
export function tensor(shape: number[], data?: ArrayLike<number>): Tensor {
  const n = shape.reduce((a, d) => a * d, 1)
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`tensor: bad dimension ${d} in shape [${shape}]`)
  }
  const out = data === undefined ? new Float64Array(n) : Float64Array.from(data)
  if (out.length !== n) {
    throw new RangeError(`tensor: shape [${shape}] needs ${n} values, got ${out.length}`)
  }
  return { shape: [...shape], data: out }
}

/** A tensor of zeros. */
export const zeros = (shape: number[]): Tensor => tensor(shape)

/** Reads element `idx` (one index per axis). */
export function at(t: Tensor, ...idx: number[]): number {
  if (idx.length !== t.shape.length) throw new RangeError(`at: expected ${t.shape.length} indices, got ${idx.length}`)
  let flat = 0
  for (let k = 0; k < idx.length; k++) {
    if (idx[k] < 0 || idx[k] >= t.shape[k]) throw new RangeError(`at: index ${idx[k]} out of range for axis ${k} of size ${t.shape[k]}`)
    flat = flat * t.shape[k] + idx[k]
  }
  return t.data[flat]
}

/** Checks that `value` looks like a Tensor; names `name` in the error. */
export function assertTensor(name: string, value: unknown): asserts value is Tensor {
  const t = value as Tensor
  if (typeof value !== 'object' || value === null || !Array.isArray(t.shape) || !(t.data instanceof Float64Array)) {
    throw new TypeError(`${name}: expected a tensor { shape: number[], data: Float64Array }, got ${describe(value)}`)
  }
}

export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return `an array of length ${value.length}`
  if (ArrayBuffer.isView(value)) return value.constructor.name
  return typeof value
}
