// Line charts as standalone SVG (the course's `plt.plot` of the loss), with
// axes, ticks, labels and a legend; no dependencies.

export interface Series {
  label: string
  x: ArrayLike<number>
  y: ArrayLike<number>
  color?: string
}

export interface ChartOptions {
  title?: string
  xLabel?: string
  yLabel?: string
  width?: number
  height?: number
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728']

/** "Nice" tick values covering [lo, hi] (1, 2, 5 × 10^k steps). */
export function niceTicks(lo: number, hi: number, target = 6): number[] {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.05 : 1
    lo -= pad
    hi += pad
  }
  const raw = (hi - lo) / target
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag
  // start + k·step with a bounded k: accumulating `v += step` never ends once step < ulp(v)/2.
  const start = Math.ceil(lo / step) * step
  const ticks: number[] = []
  for (let k = 0; k <= 4 * target; k++) {
    const v = Number((start + k * step).toPrecision(12))
    if (v > hi + step * 1e-9) break
    if (ticks.length === 0 || v > ticks[ticks.length - 1]) ticks.push(v)
  }
  return ticks.length > 0 ? ticks : [lo, hi]
}

function fmt(v: number): string {
  if (v !== 0 && (Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3)) return v.toExponential(1)
  return String(Number(v.toPrecision(6)))
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** Renders one or more series as an SVG document. */
export function lineChartSvg(series: Series[], opts: ChartOptions = {}): string {
  const W = opts.width ?? 720
  const H = opts.height ?? 420
  const m = { left: 70, right: 20, top: opts.title ? 40 : 20, bottom: 55 }
  const pw = W - m.left - m.right
  const ph = H - m.top - m.bottom
  let xmin = Infinity,
    xmax = -Infinity,
    ymin = Infinity,
    ymax = -Infinity
  for (const s of series) {
    for (let i = 0; i < s.x.length; i++) {
      const x = s.x[i],
        y = s.y[i]
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue
      xmin = Math.min(xmin, x)
      xmax = Math.max(xmax, x)
      ymin = Math.min(ymin, y)
      ymax = Math.max(ymax, y)
    }
  }
  if (!Number.isFinite(xmin)) {
    xmin = 0
    xmax = 1
    ymin = 0
    ymax = 1
  }
  const xt = niceTicks(xmin, xmax)
  const yt = niceTicks(ymin, ymax)
  const x0 = Math.min(xmin, xt[0]),
    x1 = Math.max(xmax, xt[xt.length - 1])
  const y0 = Math.min(ymin, yt[0]),
    y1 = Math.max(ymax, yt[yt.length - 1])
  const sx = (x: number) => m.left + ((x - x0) / (x1 - x0 || 1)) * pw
  const sy = (y: number) => m.top + ph - ((y - y0) / (y1 - y0 || 1)) * ph
  const out: string[] = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  )
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  if (opts.title) out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="16">${esc(opts.title)}</text>`)
  for (const v of yt) {
    const y = sy(v).toFixed(1)
    out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${m.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${fmt(v)}</text>`)
  }
  for (const v of xt) {
    const x = sx(v).toFixed(1)
    out.push(`<line x1="${x}" x2="${x}" y1="${m.top + ph}" y2="${m.top + ph + 5}" stroke="#333"/>`)
    out.push(`<text x="${x}" y="${m.top + ph + 18}" text-anchor="middle">${fmt(v)}</text>`)
  }
  out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}" stroke="#333"/>`)
  out.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}" stroke="#333"/>`)
  if (opts.xLabel)
    out.push(
      `<text x="${m.left + pw / 2}" y="${H - 12}" text-anchor="middle" font-size="13">${esc(opts.xLabel)}</text>`,
    )
  if (opts.yLabel)
    out.push(
      `<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="13">${esc(opts.yLabel)}</text>`,
    )
  series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length]
    // Long runs are thinned to at most ~2 points per pixel column.
    const stride = Math.max(1, Math.floor(s.x.length / (pw * 2)))
    const pts: string[] = []
    for (let i = 0; i < s.x.length; i += stride) {
      if (Number.isFinite(s.x[i]) && Number.isFinite(s.y[i]))
        pts.push(`${sx(s.x[i]).toFixed(1)},${sy(s.y[i]).toFixed(1)}`)
    }
    const last = s.x.length - 1
    if (last >= 0 && last % stride !== 0 && Number.isFinite(s.y[last]))
      pts.push(`${sx(s.x[last]).toFixed(1)},${sy(s.y[last]).toFixed(1)}`)
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts.join(' ')}"/>`)
    const ly = m.top + 14 + k * 18
    out.push(
      `<line x1="${m.left + pw - 150}" x2="${m.left + pw - 126}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
    )
    out.push(`<text x="${m.left + pw - 120}" y="${ly}" dominant-baseline="middle">${esc(s.label)}</text>`)
  })
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
