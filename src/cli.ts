// The `rnnlab` command line: one sub-command per job. Plain lines off a TTY,
// a progress bar on a TTY. Returns the process exit code.
import { parseArgs, type ParseArgsConfig } from 'node:util'

import { guardPipes } from './cli/io'
import { MAX_BEAM_WIDTH } from './contract'

type Options = NonNullable<ParseArgsConfig['options']>
export type Values = Record<string, string | boolean | undefined>

/** What a command's `run` gets besides the parsed values. */
export interface Invocation {
  /** The sub-command's name. */
  command: string
  /** The flags as given, each as `--name=value` or `--name` under its current spelling. */
  flags: string[]
  /** How the user spelled a flag (`--save` for `checkpoint` when the old spelling was used). */
  spelled(name: string): string
}

interface Command {
  summary: string
  usage: string
  options: Options
  /** Older spellings still accepted: old name → current name. */
  aliases?: Record<string, string>
  /** String flags that may also be given without a value (`--resume` alone); they then read ''. */
  optionalValue?: string[]
  run(values: Values, invocation: Invocation): Promise<number>
}

const commands: Record<string, Command> = {}

/** Registers a sub-command (each job's module adds its own). */
export function command(name: string, cmd: Command): void {
  commands[name] = cmd
}

function help(): string {
  const lines = [
    'rnnlab — recurrent neural networks on a Rust core',
    '',
    'Usage: rnnlab <command> [options]',
    '',
    'Commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`),
    '',
    'Run `rnnlab <command> --help` for the options of a command.',
  ]
  return `${lines.join('\n')}\n`
}

/** A mistake in the command line: one line naming it, then a pointer to `--help`; exit 2. */
export class UsageError extends Error {
  readonly exitCode: number = 2
  readonly pointToHelp: boolean = true
}

/** An argument that is well-formed but cannot be used (a path, a budget): one line, exit 2. */
export class ArgumentError extends UsageError {
  override readonly pointToHelp = false
}

/** Parses an integer option, naming the flag in the error. */
export function intOption(values: Values, name: string, fallback: number, min = 0): number {
  const raw = values[name]
  if (raw === undefined) return fallback
  const n = raw === '' ? Number.NaN : Number(raw)
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name}: expected an integer >= ${min}, got '${raw}'`)
  return n
}

/**
 * `--beam K` (an integer in 1..MAX_BEAM_WIDTH), or undefined without it. Beam search has no
 * randomness and prints K results, so the sampling flags in `conflicts` (given explicitly) are
 * refused with it, naming both.
 */
export function beamOption(values: Values, conflicts: readonly string[]): number | undefined {
  const raw = values.beam
  if (raw === undefined) return undefined
  const n = raw === '' ? Number.NaN : Number(raw)
  if (!Number.isInteger(n) || n < 1 || n > MAX_BEAM_WIDTH)
    throw new UsageError(`--beam: expected an integer in [1, ${MAX_BEAM_WIDTH}], got '${raw}'`)
  for (const flag of conflicts) {
    if (values[flag] !== undefined)
      throw new UsageError(
        `--beam ${raw} cannot be combined with --${flag} ${values[flag]}: beam search ranks by the model's ` +
          'own probabilities, has no randomness and prints K results',
      )
  }
  return n
}

/** Parses a number option, naming the flag in the error; `above` makes the bound strict. */
export function numberOption(values: Values, name: string, fallback: number, min = -Infinity, above = false): number {
  const raw = values[name]
  if (raw === undefined) return fallback
  const n = raw === '' ? Number.NaN : Number(raw)
  if (!Number.isFinite(n) || n < min || (above && n === min))
    throw new UsageError(`--${name}: expected a number ${above ? '>' : '>='} ${min}, got '${raw}'`)
  return n
}

/**
 * The error code of a failure: the `code` property, or the `[CODE] message` prefix errors of
 * older bindings carry in their message.
 */
export function errorCode(e: unknown): string | undefined {
  const err = e as { code?: unknown; message?: unknown } | undefined
  if (typeof err?.code === 'string') return err.code
  const m = typeof err?.message === 'string' ? /^\[([A-Z][A-Z0-9_]*)\]\s*/.exec(err.message) : null
  return m ? m[1] : undefined
}

/** The message of a failure without an old-style `[CODE] ` prefix. */
export function errorMessage(e: unknown): string {
  const msg = (e as Error | undefined)?.message
  if (typeof msg !== 'string') return String(e)
  return msg.replace(/^\[[A-Z][A-Z0-9_]*\]\s*/, '')
}

/** Whether a failure is the abort a signal asked for (whatever form a model class gives it). */
export function isAbort(e: unknown): boolean {
  return (e as Error | undefined)?.name === 'AbortError' || errorCode(e) === 'ABORT_ERR'
}

/**
 * Ctrl-C handling for long training commands: the first SIGINT aborts `controller` (the
 * command then writes its checkpoint and exits with 130); a second one quits at once, which
 * is safe because checkpoints are written atomically. Returns the function that uninstalls it.
 */
export function interruptible(controller: AbortController): () => void {
  const onSigint = () => {
    if (!controller.signal.aborted) {
      controller.abort()
      process.stderr.write('\nstopping after the current step (Ctrl-C again to quit at once)\n')
    } else {
      process.exit(130)
    }
  }
  process.on('SIGINT', onSigint)
  return () => process.removeListener('SIGINT', onSigint)
}

/** Quotes a word for a POSIX shell when it needs it. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`
}

/**
 * The command that continues an interrupted run: every flag given, except those in `drop`,
 * then `add` (flag, value) pairs.
 */
export function resumeCommand(inv: Invocation, drop: readonly string[], add: [string, string?][]): string {
  const words = ['rnnlab', inv.command]
  for (const flag of inv.flags) {
    const eq = flag.indexOf('=')
    const name = (eq < 0 ? flag : flag.slice(0, eq)).slice(2)
    if (drop.includes(name)) continue
    words.push(`--${name}`)
    if (eq >= 0) words.push(shellQuote(flag.slice(eq + 1)))
  }
  for (const [name, value] of add) {
    words.push(`--${name}`)
    if (value !== undefined) words.push(shellQuote(value))
  }
  return words.join(' ')
}

/** A numeric word (`-5`, `1e-3`), which may follow a flag as its value. */
const NUMBER_WORD = /^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i

/**
 * Rewrites the words after the command name into `--name=value` words under the current
 * spellings, so that negative numbers are values (not ambiguous flags) and optional values
 * read ''. Unknown flags pass through for `parseArgs` to name.
 */
function normaliseWords(cmd: Command, words: string[]): { words: string[]; spelling: Map<string, string> } {
  const out: string[] = []
  const spelling = new Map<string, string>()
  for (let i = 0; i < words.length; i++) {
    const word = words[i]
    if (word === '--') {
      out.push(...words.slice(i))
      break
    }
    if (!word.startsWith('--')) {
      out.push(word)
      continue
    }
    const eq = word.indexOf('=')
    const typed = eq < 0 ? word.slice(2) : word.slice(2, eq)
    const name = cmd.aliases?.[typed] ?? typed
    const option = cmd.options[name]
    if (option === undefined) {
      out.push(word)
      continue
    }
    if (spelling.has(name) && spelling.get(name) !== `--${typed}`)
      throw new UsageError(`${spelling.get(name)} and --${typed} are the same flag; give it once`)
    spelling.set(name, `--${typed}`)
    if (eq >= 0) {
      out.push(`--${name}${word.slice(eq)}`)
    } else if (option.type === 'string') {
      const next = words[i + 1]
      if (next !== undefined && (!next.startsWith('-') || NUMBER_WORD.test(next))) {
        out.push(`--${name}=${next}`)
        i++
      } else if (cmd.optionalValue?.includes(name)) {
        out.push(`--${name}=`)
      } else {
        throw new UsageError(`--${typed} needs a value`)
      }
    } else {
      out.push(`--${name}`)
    }
  }
  return { words: out, spelling }
}

/** One short line for a `parseArgs` failure. */
function parseFailure(e: unknown): string {
  const err = e as NodeJS.ErrnoException
  const unknown = /^Unknown option '([^']+)'/.exec(err.message)
  if (unknown) return `unknown option '${unknown[1]}'`
  return err.message.split(/\.\s/)[0].replace(/\.$/, '')
}

export async function main(argv: string[]): Promise<number> {
  guardPipes()
  const [name, ...rest] = argv
  // Load only the module of the command asked for: `rnnlab dinos` need not load the music
  // libraries (about 50 ms of start-up); help and unknown commands load them all.
  loadCommands(name !== undefined ? COMMAND_MODULES[name] : undefined)
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help())
    return name === undefined ? 1 : 0
  }
  if (name === '--version' || name === '-v') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    process.stdout.write(`${require('../package.json').version}\n`)
    return 0
  }
  const cmd = commands[name]
  if (!cmd) {
    process.stderr.write(`rnnlab: unknown command '${name}'; see 'rnnlab --help'\n`)
    return 2
  }
  const usageLine = (message: string) =>
    process.stderr.write(`rnnlab ${name}: ${message}; see 'rnnlab ${name} --help'\n`)
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${cmd.usage}\n`)
    return 0
  }
  let parsed: { values: Record<string, unknown>; positionals: string[] }
  let normalised: ReturnType<typeof normaliseWords>
  try {
    normalised = normaliseWords(cmd, rest)
    parsed = parseArgs({ args: normalised.words, options: cmd.options, allowPositionals: true, strict: true })
  } catch (e) {
    usageLine(e instanceof UsageError ? e.message : parseFailure(e))
    return 2
  }
  if (parsed.positionals.length > 0) {
    usageLine(`unexpected argument '${parsed.positionals[0]}'`)
    return 2
  }
  const spelling = normalised.spelling
  const invocation: Invocation = {
    command: name,
    flags: normalised.words.filter((w) => w.startsWith('--')),
    spelled: (flag) => spelling.get(flag) ?? `--${flag}`,
  }
  try {
    return await cmd.run(parsed.values as Values, invocation)
  } catch (e) {
    if (e instanceof UsageError) {
      if (e.pointToHelp) usageLine(e.message)
      else process.stderr.write(`rnnlab ${name}: ${e.message}\n`)
      return e.exitCode
    }
    const code = errorCode(e)
    process.stderr.write(`rnnlab ${name}: ${errorMessage(e)}${code ? ` [${code}]` : ''}\n`)
    return 1
  }
}

/** The module that registers each command. */
const COMMAND_MODULES: Record<string, string> = {
  dinos: './cli/dinos',
  sample: './cli/dinos',
  train: './cli/lm',
  generate: './cli/lm',
  jazz: './cli/jazz',
}

function loadCommands(only?: string): void {
  const mods = only !== undefined ? [only] : [...new Set(Object.values(COMMAND_MODULES))]
  // Each job registers its sub-commands when imported.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  for (const mod of mods) require(mod)
}
