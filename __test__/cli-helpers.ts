// Drives the `rnnlab` command as a user does: in a pseudo-terminal (util-linux `script`,
// which every Linux has; no native npm module to build), piped into `head`, or plainly.
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'

import { ROOT, tempDir } from './helpers'

export { ROOT }
export const CLI = join(ROOT, 'bin', 'rnnlab.js')

export function tmp(): string {
  return tempDir('cli')
}

/** The environment of a terminal user: no $CI (which turns the bar off). */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm' }
  delete env.CI
  return env
}

export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`
}

/** The shell words that run `rnnlab args…`. */
export function rnnlabCommand(args: string[]): string {
  return [process.execPath, CLI, ...args].map(shellQuote).join(' ')
}

/** Runs `rnnlab args…` with pipes (stdout not a terminal). */
export function cli(args: string[], cwd = ROOT) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 64 << 20, cwd, env: userEnv() })
}

/** Runs a shell pipeline with `pipefail`, so that its status is rnnlab's when rnnlab fails. */
export function pipeline(line: string, cwd = ROOT) {
  return spawnSync('bash', ['-c', `set -o pipefail; ${line}`], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    cwd,
    env: userEnv(),
  })
}

export interface PtyResult {
  /** Everything the terminal showed (stdout and stderr), with '\r\n' read as '\n'. */
  output: string
  /** The command's exit status. */
  status: number | null
}

export interface PtyOptions {
  /** Terminal width (default 100). */
  columns?: number
  cwd?: string
  /**
   * Called with all output so far after each piece; `interrupt()` types Ctrl-C into the
   * terminal (the line discipline sends SIGINT to the command, as a keyboard does).
   */
  onOutput?: (output: string, interrupt: () => void) => void
}

/** Runs a shell command line in a pseudo-terminal of `columns` columns. */
export function inPty(line: string, options: PtyOptions = {}): Promise<PtyResult> {
  const columns = options.columns ?? 100
  const child = spawn('script', ['-qfec', `stty cols ${columns} rows 30; ${line}`, '/dev/null'], {
    cwd: options.cwd ?? ROOT,
    env: userEnv(),
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let raw = ''
  const interrupt = () => child.stdin.write('\x03')
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (d: string) => {
    raw += d
    options.onOutput?.(raw.replace(/\r\n/g, '\n'), interrupt)
  })
  child.stderr.on('data', (d) => {
    raw += d
  })
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (status) => {
      child.stdin.destroy()
      resolve({ output: raw.replace(/\r\n/g, '\n'), status })
    })
  })
}

/** Runs `rnnlab args…` in a pseudo-terminal. */
export function rnnlabInPty(args: string[], options: PtyOptions = {}): Promise<PtyResult> {
  return inPty(`exec ${rnnlabCommand(args)}`, options)
}

/**
 * The progress-bar lines a terminal output drew: each redraw is "\r\x1b[2K" then the line,
 * which the next redraw or clear ends with "\r" (ordinary lines end with a newline).
 */
export function barLines(output: string): string[] {
  const lines: string[] = []
  for (const piece of output.split('\x1b[2K').slice(1)) {
    const cr = piece.indexOf('\r')
    const nl = piece.indexOf('\n')
    if (cr > 0 && (nl < 0 || cr < nl)) lines.push(piece.slice(0, cr))
  }
  return lines
}

/** A budget no test reaches: the run goes on until Ctrl-C. */
export const FOREVER = '100000000'

/** Presses Ctrl-C once, when `ready` matches the terminal's output. */
export function ctrlCWhen(ready: RegExp) {
  let sent = false
  return (output: string, interrupt: () => void) => {
    if (!sent && ready.test(output)) {
      sent = true
      interrupt()
    }
  }
}

/** The resume command printed after Ctrl-C, as printed (`rnnlab …`). */
export function printedResume(output: string): string {
  const m = /continue with: (rnnlab .*)\n/.exec(output)
  if (!m) throw new Error(`no resume command in: ${output}`)
  return m[1]
}

/** A printed `rnnlab …` command made runnable here (`rnnlab` → this checkout's CLI). */
export function runnable(command: string): string {
  return `exec ${shellQuote(process.execPath)} ${shellQuote(CLI)} ${command.slice('rnnlab '.length)}`
}
