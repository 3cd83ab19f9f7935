// A piano-roll SVG: time across (one column per quarter note), pitch up, the chords as grey
// blocks behind the solo, bar lines and chord symbols on top.
import type { Note } from './midi'
import { pitchName } from './theory'

/** A chord block of the roll. */
export interface RollChord {
  start: number
  duration: number
  pitches: number[]
  symbol: string
}

/** Renders the solo over its chords as an SVG document (a string). */
export function pianoRollSvg(
  solo: Note[],
  chords: RollChord[],
  options: { title?: string; beatsPerBar?: number } = {},
): string {
  const bar = options.beatsPerBar ?? 4
  const all = [...solo.map((n) => n.pitch), ...chords.flatMap((c) => c.pitches)]
  const lo = (all.length ? Math.min(...all) : 60) - 2
  const hi = (all.length ? Math.max(...all) : 72) + 2
  const end = Math.max(bar, ...solo.map((n) => n.start + n.duration), ...chords.map((c) => c.start + c.duration))
  const bars = Math.ceil(end / bar - 1e-9)
  const qw = 28 // px per quarter note
  const rh = 7 // px per semitone
  const left = 44
  const top = 48
  const width = left + bars * bar * qw + 10
  const height = top + (hi - lo + 1) * rh + 24
  const y = (p: number) => top + (hi - p) * rh
  const x = (t: number) => left + t * qw
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;')
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
  ]
  if (options.title) out.push(`<text x="${left}" y="16" font-size="13" fill="#222">${esc(options.title)}</text>`)
  // C rows shaded lightly, labelled on the left
  for (let p = lo; p <= hi; p++) {
    if (p % 12 === 0) {
      out.push(`<rect x="${left}" y="${y(p)}" width="${bars * bar * qw}" height="${rh}" fill="#f1f3f6"/>`)
      out.push(`<text x="4" y="${y(p) + rh}" font-size="9" fill="#666">${pitchName(p)}</text>`)
    }
  }
  chords.forEach((c, k) => {
    for (const p of c.pitches) {
      out.push(
        `<rect x="${x(c.start)}" y="${y(p)}" width="${Math.max(1, c.duration * qw - 1)}" height="${rh}" fill="#c9ced6"/>`,
      )
    }
    // labels alternate between two rows so close chords stay readable
    if (c.symbol)
      out.push(
        `<text x="${x(c.start) + 1}" y="${top - 6 - (k % 2) * 10}" font-size="9" fill="#556">${esc(c.symbol)}</text>`,
      )
  })
  for (let b = 0; b <= bars; b++) {
    out.push(
      `<line x1="${x(b * bar)}" y1="${top - 2}" x2="${x(b * bar)}" y2="${y(lo) + rh}" stroke="#99a" stroke-width="1"/>`,
    )
    if (b < bars)
      out.push(`<text x="${x(b * bar) + 2}" y="${y(lo) + rh + 14}" font-size="9" fill="#889">${b + 1}</text>`)
  }
  for (const n of solo) {
    const shade = Math.round(200 - n.velocity)
    out.push(
      `<rect x="${x(n.start)}" y="${y(n.pitch)}" width="${Math.max(2, n.duration * qw - 1)}" height="${rh}" rx="1.5" fill="rgb(${shade},40,40)" stroke="#600" stroke-width="0.5"><title>${pitchName(n.pitch)} @ ${n.start.toFixed(2)}</title></rect>`,
    )
  }
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
