import { NameModel, RandomState, type Tensor, rnnForward, tensor } from 'rnnlab'

const rs: RandomState = new RandomState(3)
const x: Tensor = rs.randn(3, 10, 4)
const a0: Tensor = tensor([5, 10])
const parameters = {
  Wax: rs.randn(5, 3),
  Waa: rs.randn(5, 5),
  Wya: rs.randn(2, 5),
  ba: rs.randn(5, 1),
  by: rs.randn(2, 1),
}
const { a, y_pred } = rnnForward(x, a0, parameters)
const shape: number[] = a.shape
const first: number = y_pred.data[0]
const model: NameModel = NameModel.fromNames(['ab'])
const names: string[] = model.sample({ count: 2, seed: 1 })
export { shape, first, names }
