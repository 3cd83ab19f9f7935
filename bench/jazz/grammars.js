// Which grammar should `JazzImproviser` use by default? Trains the djmodel on the Metheny
// section and on the shipped blues head with each grammar (same seeds, same epochs), improvises
// solos and measures them: note lengths (distinct lengths, share of sixteenths), notes outside
// the chord and its scale, notes crossing a bar line or overlapping the next note, notes outside
// the source melody's range, and the training loss.
//
//   npm run build:ts && node bench/jazz/grammars.js [--seeds 0,1,2] [--epochs 100]
//
// The Metheny file is fixtures/original_metheny.mid; the blues head is the package's default.
const { JazzImproviser, music } = require('../../dist/index.js')
const path = require('node:path')

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : fallback
}
const seeds = arg('seeds', '0,1,2').split(',').map(Number)
const epochs = Number(arg('epochs', '100'))
const temperatures = arg('temperatures', '0,0.5').split(',').map(Number)
const files = [
  ['Metheny', path.join(__dirname, '..', '..', 'fixtures', 'original_metheny.mid')],
  ['blues head', undefined],
]

/** One judge for both grammars: rnnlab's classification (tonal) over the chord sounding at the note. */
function outside(solo) {
  let out = 0
  for (const n of solo.notes) {
    let chord = solo.chords[0]
    for (const c of solo.chords) if (c.start <= n.start + 1e-9) chord = c
    if (!'CS'.includes(music.classify(chord, n.pitch))) out++
  }
  return out
}

function measure(solo, range) {
  const notes = [...solo.notes].sort((a, b) => a.start - b.start)
  const lengths = new Set(notes.map((n) => n.duration.toFixed(3)))
  const sixteenths = notes.filter((n) => Math.abs(n.duration - 0.25) < 1e-9).length
  const crossing = notes.filter(
    (n) => Math.floor(n.start / 4 + 1e-9) !== Math.floor((n.start + n.duration) / 4 - 1e-9),
  ).length
  let overlapping = 0
  for (let k = 1; k < notes.length; k++)
    if (notes[k - 1].start + notes[k - 1].duration > notes[k].start + 1e-9) overlapping++
  const outOfRange = notes.filter((n) => n.pitch < range[0] || n.pitch > range[1]).length
  return {
    notes: notes.length,
    lengths: lengths.size,
    sixteenths,
    outside: outside(solo),
    crossing,
    overlapping,
    outOfRange,
  }
}

async function main() {
  const rows = []
  for (const [label, file] of files) {
    for (const grammar of ['rnnlab', 'deepjazz']) {
      const sum = {}
      let runs = 0
      const losses = []
      let corpus
      let input
      for (const seed of seeds) {
        const jazz = JazzImproviser.fromMidi(file, { grammar, seed })
        corpus = `${jazz.corpus.corpus.length} / ${jazz.nValues}`
        // the source melody as the grammar sees it: the lengths of its note values
        const lengths = jazz.corpus.corpus.filter((v) => v[0] !== 'R').map((v) => Number(v.split(',')[1]))
        const share = lengths.filter((d) => Math.abs(d - 0.25) < 1e-9).length / lengths.length
        input = `${new Set(lengths.map((d) => d.toFixed(3))).size} lengths, ${(100 * share).toFixed(0)} % sixteenths`
        const history = await jazz.fit({ epochs })
        losses.push(history.loss[history.loss.length - 1])
        for (const temperature of temperatures) {
          const solo = jazz.improvise({ temperature, seed })
          const m = measure(solo, jazz.section.pitchRange)
          for (const [k, v] of Object.entries(m)) sum[k] = (sum[k] ?? 0) + v
          runs++
        }
      }
      const pct = (k) => `${((100 * sum[k]) / sum.notes).toFixed(0)} %`
      rows.push([
        label,
        grammar,
        corpus,
        input,
        (sum.notes / runs).toFixed(0),
        (sum.lengths / runs).toFixed(1),
        pct('sixteenths'),
        pct('outside'),
        pct('crossing'),
        pct('overlapping'),
        pct('outOfRange'),
        (losses.reduce((a, b) => a + b, 0) / losses.length).toFixed(2),
        `${(losses.reduce((a, b) => a + b, 0) / losses.length / 30).toFixed(2)}`,
      ])
    }
  }
  const head = [
    'file',
    'grammar',
    'values / unique',
    'source melody',
    'notes per solo',
    'distinct lengths',
    'sixteenths',
    'outside chord+scale',
    'crossing a bar line',
    'overlapping the next',
    'outside the melody range',
    `loss after ${epochs} epochs`,
    'per step',
  ]
  console.log(
    `seeds ${seeds.join(',')}, ${epochs} epochs, temperatures ${temperatures.join(',')} (means over ${seeds.length * temperatures.length} solos)`,
  )
  console.log(`| ${head.join(' | ')} |`)
  console.log(`|${head.map(() => '---').join('|')}|`)
  for (const r of rows) console.log(`| ${r.join(' | ')} |`)
}
main()
