// The `rnnlab` command line: one sub-command per job. Plain lines off a TTY,
// a progress bar on a TTY. Returns the process exit code.
import { parseArgs, type ParseArgsConfig } from 'node:util'

type Options = NonNullable<ParseArgsConfig['options']>
type Values = Record<string, string | boolean | undefined>

interface Command {
  summary: string
  usage: string
  options: Options
  run(values: Values, positionals: string[]): Promise<number>
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

/** Parses an integer option, naming the flag in the error. */
export function intOption(values: Values, name: string, fallback: number, min = 0): number {
  const raw = values[name]
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name}: expected an integer >= ${min}, got '${raw}'`)
  return n
}

/** Parses a number option, naming the flag in the error. */
export function numberOption(values: Values, name: string, fallback: number, min = -Infinity): number {
  const raw = values[name]
  if (raw === undefined) return fallback
  const n = Number(raw)
  if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name}: expected a number >= ${min}, got '${raw}'`)
  return n
}

export class UsageError extends Error {}

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

export async function main(argv: string[]): Promise<number> {
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
    process.stderr.write(`rnnlab: unknown command '${name}'\n\n${help()}`)
    return 2
  }
  let parsed: ReturnType<typeof parseArgs<ParseArgsConfig>>
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...cmd.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    })
  } catch (e) {
    process.stderr.write(`rnnlab ${name}: ${(e as Error).message}\n\n${cmd.usage}\n`)
    return 2
  }
  if (parsed.values.help) {
    process.stdout.write(`${cmd.usage}\n`)
    return 0
  }
  try {
    return await cmd.run(parsed.values as Values, parsed.positionals)
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`rnnlab ${name}: ${e.message}\n\n${cmd.usage}\n`)
      return 2
    }
    const err = e as NodeJS.ErrnoException
    process.stderr.write(`rnnlab ${name}: ${err.message}${err.code ? ` [${err.code}]` : ''}\n`)
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
