// Improvise a jazz solo: MIDI in, an LSTM over musical values, MIDI out.
// Run: node examples/jazz.mjs [performance.mid]   (default: the original blues head shipped with rnnlab)
import { writeFileSync } from 'node:fs'
import { JazzImproviser } from 'rnnlab'

const improviser = process.argv[2] ? JazzImproviser.fromMidi(process.argv[2]) : JazzImproviser.fromMidi()
console.log(`corpus of ${improviser.nValues} unique values`)
const history = await improviser.fit({ epochs: 100 })
console.log(
  `loss ${history.loss[0].toFixed(2)} -> ${history.loss.at(-1).toFixed(2)}, accuracy ${history.accuracy.at(-1).toFixed(2)}`,
)
const solo = improviser.improvise({ temperature: 0.5, seed: 7 })
console.log(`${solo.notes.length} notes over ${solo.indices.length} measures at ${Math.round(solo.bpm)} bpm`)
improviser.toMidi('solo.mid', solo)
writeFileSync('solo.svg', improviser.toSvg(solo))
console.log('wrote solo.mid and solo.svg (piano roll)')
