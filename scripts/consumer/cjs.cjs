const { RandomState, NameModel } = require('rnnlab')

const rs = new RandomState(1)
if (rs.randn() !== 1.6243453636632417) throw new Error('numpy mismatch')
const model = NameModel.fromNames(['ab', 'abc', 'b'], { hidden: 4 })
if (model.vocabulary.size !== 4) throw new Error('vocabulary')
console.log('cjs ok')
