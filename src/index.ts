// rnnlab: recurrent neural networks for Node on a Rust core.
export type { Tensor } from './tensor'
export { tensor, zeros, at } from './tensor'
export { native } from './native'
