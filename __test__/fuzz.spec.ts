// Mutation fuzzing of the MIDI reader and of the whole jazz preprocessing on real files: every
// mutated file either parses or fails with an Error that names it — never a crash, a hang or
// a non-Error throw. Budget: RNNLAB_FUZZ_CASES mutations per file (default 600; scripts/fuzz.sh
// runs more). The checkpoint reader is fuzzed in crates/core/tests/checkpoint_fuzz.rs.
import test from 'ava'
import { readFileSync } from 'node:fs'

import { DEFAULT_JAZZ_MIDI, JazzImproviser, music } from '../dist/index.js'
import { fixture } from './helpers.js'

const CASES = Number(process.env.RNNLAB_FUZZ_CASES ?? 600)
const FILES: Record<string, string> = {
  metheny: fixture('original_metheny.mid'),
  blues: DEFAULT_JAZZ_MIDI,
}

// xorshift32: reproducible by seed
function rng(seed: number) {
  let s = seed >>> 0 || 1
  return (n: number) => {
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s % Math.max(1, n)
  }
}

function mutate(r: (n: number) => number, src: Uint8Array): Uint8Array {
  const b = Array.from(src)
  for (let k = 0, n = 1 + r(4); k < n; k++) {
    const p = r(b.length)
    switch (r(7)) {
      case 0:
        b[p] ^= 1 << r(8)
        break
      case 1:
        b[p] = r(256)
        break
      case 2:
        b.splice(p, 0, r(256))
        break
      case 3:
        b.splice(p, 1)
        break
      case 4:
        b.length = p
        break
      // status bytes: the parts a MIDI reader interprets (running status, meta, sysex)
      case 5:
        b[p] = [0x80, 0x90, 0xb0, 0xc0, 0xe0, 0xf0, 0xf7, 0xff, 0x7f][r(9)]
        break
      // variable-length quantities: make one long
      default:
        b.splice(p, 0, 0xff, 0xff, 0xff, 0x7f)
    }
  }
  return Uint8Array.from(b)
}

for (const [name, path] of Object.entries(FILES)) {
  test(`MIDI reader: ${CASES} mutations of the ${name} file parse or fail naming the file`, (t) => {
    const src = readFileSync(path)
    t.truthy(music.parseMidiBytes(src, name).tracks.length)
    const r = rng(name.length * 7919)
    let parsed = 0,
      prepared = 0
    for (let c = 0; c < CASES; c++) {
      const bytes = mutate(r, src)
      const label = `${name}-mutant-${c}.mid`
      let song: ReturnType<typeof music.parseMidiBytes>
      try {
        song = music.parseMidiBytes(bytes, label)
        parsed++
      } catch (e) {
        if (!(e instanceof Error) || !e.message.includes(label)) t.fail(`case ${c}: ${String(e)}`)
        continue
      }
      // the preprocessing on whatever parsed: a section, a corpus, or a clear error
      try {
        JazzImproviser.fromSong(song)
        prepared++
      } catch (e) {
        if (!(e instanceof Error) || e.message.length === 0) t.fail(`case ${c}: preprocessing threw ${String(e)}`)
      }
    }
    t.log(`${name}: ${CASES} mutants, ${parsed} parsed, ${prepared} prepared for training`)
    t.pass()
  })
}
