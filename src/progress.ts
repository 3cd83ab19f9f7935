// A one-line progress bar for terminals. It is drawn on stderr only when stdout and stderr
// both are a terminal (off a terminal the caller's plain report lines are the whole output),
// never wider than the terminal (a line that wraps would scroll at every redraw), and its
// rate counts only this run's work (a resumed run does not count what came before).

export interface ProgressBarOptions {
  /** Name of the unit of work ('it', 'epochs'). */
  unit: string
  /** Units to reach, when known (a total, so a resumed run counts from where it started). */
  total?: number
  /** Wall-clock budget in seconds, when there is one. */
  seconds?: number
  /** Units done before this run; without it the first update is the baseline of the rate. */
  startDone?: number
  /** Where to draw (default: stderr). */
  stream?: NodeJS.WriteStream
  /** Whether to draw (default: stdout and the stream are terminals and $CI is unset). */
  enabled?: boolean
  /** Terminal width (default: the narrower of stdout and the stream, 80 when unknown). */
  columns?: () => number
  /** Clock in milliseconds (tests). */
  now?: () => number
}

const BAR_WIDTH = 24
/** A bar narrower than this says nothing; the numbers alone are drawn. */
const MIN_BAR = 6

export class ProgressBar {
  private readonly stream: NodeJS.WriteStream
  private readonly enabled: boolean
  private readonly now: () => number
  private readonly columns: () => number
  private readonly start: number
  private base?: { done: number; secs: number }
  private lastDraw = -Infinity
  private drawn = false

  constructor(private readonly options: ProgressBarOptions) {
    this.stream = options.stream ?? process.stderr
    this.enabled =
      options.enabled ?? (Boolean(process.stdout.isTTY && this.stream.isTTY) && process.env.CI === undefined)
    this.now = options.now ?? (() => performance.now())
    this.columns =
      options.columns ??
      (() => Math.min(process.stdout.columns || 80, this.stream.columns || process.stdout.columns || 80))
    this.start = this.now()
    if (options.startDone !== undefined) this.base = { done: options.startDone, secs: 0 }
  }

  get active(): boolean {
    return this.enabled
  }

  /**
   * Redraws (at most ~15 times a second unless `force`) with `done` units and extra fields;
   * `elapsed` overrides the bar's own clock (seconds since this run started).
   */
  update(done: number, fields: Record<string, string> = {}, opts: { force?: boolean; elapsed?: number } = {}): void {
    if (!this.enabled) return
    const t = this.now()
    if (!opts.force && t - this.lastDraw < 66) return
    this.lastDraw = t
    const line = this.render(done, fields, opts.elapsed)
    if (this.stream.writable) {
      this.stream.write(`\r\x1b[2K${line}`)
      this.drawn = true
    }
  }

  /** The line drawn for `done` units (no control characters), fitted to the terminal. */
  render(done: number, fields: Record<string, string> = {}, elapsed?: number): string {
    const { unit, total, seconds } = this.options
    const secs = elapsed ?? (this.now() - this.start) / 1000
    this.base ??= { done, secs }
    const span = secs - this.base.secs
    const rate = span > 0 ? (done - this.base.done) / span : undefined
    const fractions: number[] = []
    const etas: number[] = []
    if (total !== undefined && total > 0) {
      fractions.push(done / total)
      if (rate !== undefined && rate > 0) etas.push((total - done) / rate)
    }
    if (seconds !== undefined && seconds > 0) {
      fractions.push(secs / seconds)
      etas.push(seconds - secs)
    }
    const fraction = fractions.length > 0 ? Math.min(1, Math.max(0, ...fractions)) : undefined
    const eta = etas.length > 0 ? Math.max(0, Math.min(...etas)) : undefined
    const parts = [total !== undefined ? `${amount(done)}/${amount(total)} ${unit}` : `${amount(done)} ${unit}`]
    if (rate !== undefined) parts.push(`${formatRate(rate)} ${unit}/s`)
    if (eta !== undefined) parts.push(`ETA ${formatDuration(eta)}`)
    for (const [k, v] of Object.entries(fields)) parts.push(`${k} ${v}`)
    const text = parts.join('  ')
    // One column short of the width: writing the last column wraps in many terminals.
    const width = Math.max(1, this.columns() - 1)
    const barWidth = fraction === undefined ? 0 : Math.min(BAR_WIDTH, width - text.length - 1)
    let line = text
    if (barWidth >= MIN_BAR) {
      const filled = Math.min(barWidth, Math.max(0, Math.round(fraction! * barWidth)))
      line = `${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)} ${text}`
    }
    return Array.from(line).slice(0, width).join('')
  }

  /** Clears the bar so that ordinary lines can be printed. */
  clear(): void {
    if (this.enabled && this.drawn && this.stream.writable) this.stream.write('\r\x1b[2K')
    this.drawn = false
  }
}

/** Whole numbers as they are, fractions (epochs) with two decimals. */
function amount(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2)
}

export function formatRate(r: number): string {
  if (r >= 1e6) return `${(r / 1e6).toFixed(1)}M`
  if (r >= 1e3) return `${(r / 1e3).toFixed(1)}k`
  if (r >= 10) return r.toFixed(0)
  return r.toFixed(2)
}

export function formatDuration(s: number): string {
  const t = Math.round(s)
  if (t < 60) return `${t}s`
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`
  return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, '0')}m`
}
