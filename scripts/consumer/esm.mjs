import { RandomState, NameModel, rnnCellForward } from 'rnnlab'

const rs = new RandomState(1)
if (rs.randn() !== 1.6243453636632417) throw new Error('numpy mismatch')
if (typeof NameModel.fromNames !== 'function' || typeof rnnCellForward !== 'function') throw new Error('missing export')
console.log('esm ok')
