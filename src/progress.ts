// A one-line progress bar for TTYs; off a TTY it prints nothing (plain
// report lines are printed by the caller instead).

export class ProgressBar {
  private readonly start = process.hrtime.bigint()
  private lastDraw = 0
  private readonly enabled: boolean

  constructor(
    private readonly total: number,
    private readonly unit: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.enabled = Boolean(stream.isTTY) && process.env.CI === undefined
  }

  /** Redraws (at most ~15 times a second) with `done` units and extra fields. */
  update(done: number, fields: Record<string, string> = {}, force = false): void {
    if (!this.enabled) return
    const now = Date.now()
    if (!force && now - this.lastDraw < 66) return
    this.lastDraw = now
    const secs = Number(process.hrtime.bigint() - this.start) / 1e9
    const rate = done / Math.max(secs, 1e-9)
    const eta = rate > 0 ? (this.total - done) / rate : 0
    const width = 24
    const filled = Math.round((done / Math.max(this.total, 1)) * width)
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled)
    const extra = Object.entries(fields)
      .map(([k, v]) => `${k} ${v}`)
      .join('  ')
    const line = `${bar} ${done}/${this.total}  ${formatRate(rate)} ${this.unit}/s  ETA ${eta.toFixed(0)}s  ${extra}`
    this.stream.write(`\r\x1b[2K${line}`)
  }

  /** Clears the bar so that ordinary lines can be printed. */
  clear(): void {
    if (this.enabled) this.stream.write('\r\x1b[2K')
  }
}

function formatRate(r: number): string {
  if (r >= 1e6) return `${(r / 1e6).toFixed(1)}M`
  if (r >= 1e3) return `${(r / 1e3).toFixed(1)}k`
  return r.toFixed(0)
}
