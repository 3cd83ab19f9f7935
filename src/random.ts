// numpy's legacy RandomState, bit-exact (the core's MT19937): the course's
// `np.random.seed`, `rand`, `randn`, `choice(p=...)` and `shuffle` in TypeScript.
import { native } from './native'
import { type Tensor, describe, show } from './tensor'
import { invalidArg, invalidArgType } from './contract'

const U32_MAX = 0xffffffff

function checkSeed(seed: number): number {
  if (!Number.isInteger(seed) || seed < 0 || seed > U32_MAX) {
    throw invalidArg(`seed: must be an integer between 0 and 2**32 - 1, got ${show(seed)}`)
  }
  return seed
}

function checkShape(name: string, shape: number[]): number[] {
  if (!Array.isArray(shape)) throw invalidArgType(`${name}: expected an array of dimensions, got ${describe(shape)}`)
  if (shape.length > 32) throw invalidArg(`${name}: expected at most 32 dimensions, got ${shape.length}`)
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0 || d > U32_MAX)
      throw invalidArg(`${name}: bad dimension ${show(d)} in shape [${shape.map(show).join(', ')}]`)
  }
  return shape
}

/** `p` as a Float64Array; names `p` when it is not an array of numbers. */
function checkProbabilities(p: unknown): Float64Array {
  if (typeof p !== 'object' || p === null || typeof (p as ArrayLike<number>).length !== 'number') {
    throw invalidArgType(`choice: p must be an array or typed array of probabilities, got ${describe(p)}`)
  }
  return Float64Array.from(p as ArrayLike<number>)
}

/** The state numpy's `get_state()` returns (MT19937 key, position, cached gauss). */
export interface RandomStateSnapshot {
  key: Uint32Array
  pos: number
  hasGauss: boolean
  gauss: number
}

export class RandomState {
  private readonly inner: InstanceType<ReturnType<typeof native>['NativeRandomState']>

  /** `new RandomState(seed)` equals `np.random.RandomState(seed)`; without a seed, one from the clock. */
  constructor(seed?: number) {
    const s = seed === undefined ? (Date.now() ^ (process.hrtime()[1] << 7)) >>> 0 : checkSeed(seed)
    this.inner = new (native().NativeRandomState)(s)
  }

  /** `np.random.seed(seed)`. */
  seed(seed: number): void {
    this.inner.seed(checkSeed(seed))
  }

  /** `random_sample()`: one double in [0, 1); with a shape, a tensor of them. */
  randomSample(): number
  randomSample(shape: number[]): Tensor
  randomSample(shape?: number[]): number | Tensor {
    if (shape === undefined) return this.inner.randomSample([1]).data[0]
    return this.inner.randomSample(checkShape('randomSample', shape))
  }

  /** `rand(d0, d1, ...)`: uniform [0, 1) of that shape; `rand()` is one number. */
  rand(): number
  rand(...shape: number[]): Tensor
  rand(...shape: number[]): number | Tensor {
    return shape.length === 0 ? this.randomSample() : this.inner.randomSample(checkShape('rand', shape))
  }

  /** Legacy `randn(d0, d1, ...)`: standard normals; `randn()` is one number. */
  randn(): number
  randn(...shape: number[]): Tensor
  randn(...shape: number[]): number | Tensor {
    if (shape.length === 0) return this.inner.randn([1]).data[0]
    return this.inner.randn(checkShape('randn', shape))
  }

  /**
   * `choice(a, p=p)`: one index (or element of `a`) drawn with probabilities `p`
   * (numpy's legacy algorithm: cumulative sum, one uniform draw, right-side search).
   */
  choice<T>(a: number | readonly T[], options: { p?: ArrayLike<number> } = {}): T | number {
    if (typeof a !== 'number' && !Array.isArray(a))
      throw invalidArgType(`choice: a must be a positive integer or a non-empty array, got ${describe(a)}`)
    const n = typeof a === 'number' ? a : a.length
    if (!Number.isInteger(n) || n <= 0 || n > U32_MAX)
      throw invalidArg(
        `choice: a must be a positive integer up to 2**32 - 1 or a non-empty array, got ${typeof a === 'number' ? a : `an array of length ${n}`}`,
      )
    if (typeof options !== 'object' || options === null)
      throw invalidArgType(`choice: options must be an object { p? }, got ${describe(options)}`)
    const p = options.p === undefined ? undefined : checkProbabilities(options.p)
    const [ix] = this.inner.choice(n, p, 1)
    return typeof a === 'number' ? ix : a[ix]
  }

  /** `shuffle(x)`: shuffles the array in place exactly as numpy's legacy `shuffle`. */
  shuffle<T>(x: T[]): T[] {
    if (!Array.isArray(x)) throw invalidArgType(`shuffle: x must be an array, got ${describe(x)}`)
    const swaps = this.inner.shuffleSwaps(x.length)
    for (let k = 0; k < swaps.length; k++) {
      const i = x.length - 1 - k
      const j = swaps[k]
      const tmp = x[i]
      x[i] = x[j]
      x[j] = tmp
    }
    return x
  }

  /** `randint(low, high)`: an integer in [low, high). */
  randint(low: number, high: number): number {
    if (!Number.isSafeInteger(low) || !Number.isSafeInteger(high))
      throw invalidArg(`randint: low and high must be safe integers, got ${show(low)}, ${show(high)}`)
    return this.inner.randint(low, high)
  }

  /** numpy's `get_state()`, for saving. */
  getState(): RandomStateSnapshot {
    return this.inner.getState()
  }

  /** Restores a state from `getState()`. */
  setState(state: RandomStateSnapshot): void {
    if (typeof state !== 'object' || state === null || !(state.key instanceof Uint32Array)) {
      throw invalidArgType(
        `setState: state must be { key: Uint32Array(624), pos, hasGauss, gauss } as getState() returns, got ${describe(state)}`,
      )
    }
    this.inner.setState(state)
  }
}
