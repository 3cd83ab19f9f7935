// What the commands share about the outside world: a reader that stops reading (`| head`),
// output paths checked before any work, and the kind of a checkpoint file.
import { accessSync, closeSync, constants, openSync, readSync, type Stats, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'

import { ArgumentError } from '../cli'

const closed = new Set<NodeJS.WriteStream>()
let keepWorking = false
let guarded = false

/**
 * Makes a closed pipe (`rnnlab dinos | head -3`) end quietly: without files to write, the
 * command stops at once with exit 0 (its only product was the text nobody reads any more);
 * once `keepWorkingWhenPipeCloses` was called, it finishes its work, writes its files and
 * prints nothing more.
 */
export function guardPipes(): void {
  if (guarded) return
  guarded = true
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err
      closed.add(stream)
      if (!keepWorking) process.exit(0)
    })
  }
}

/** The command has files to write: a closed pipe must not stop it (see `guardPipes`). */
export function keepWorkingWhenPipeCloses(): void {
  keepWorking = true
}

/** Writes to stdout unless its reader has gone. */
export function print(text: string): void {
  if (!closed.has(process.stdout)) process.stdout.write(text)
}

/** Writes to stderr unless its reader has gone. */
export function printError(text: string): void {
  if (!closed.has(process.stderr)) process.stderr.write(text)
}

/** Whether a stream's reader has gone. */
export function isClosed(stream: NodeJS.WriteStream): boolean {
  return closed.has(stream)
}

/**
 * Checks, before any work, that `path` can be written: its folder exists and is writable, and
 * it is not a folder itself. Throws one line naming `flag` and the path.
 */
export function checkOutputPath(flag: string, path: string): void {
  if (path === '') throw new ArgumentError(`${flag}: expected a file path, got ''`)
  const dir = dirname(resolve(path))
  let stat: Stats
  try {
    stat = statSync(dir)
  } catch {
    throw new ArgumentError(`${flag} ${path}: folder ${dirname(path)} does not exist`)
  }
  if (!stat.isDirectory()) throw new ArgumentError(`${flag} ${path}: ${dirname(path)} is not a folder`)
  try {
    accessSync(dir, constants.W_OK)
  } catch {
    throw new ArgumentError(`${flag} ${path}: folder ${dirname(path)} is not writable`)
  }
  let target: Stats
  try {
    target = statSync(path)
  } catch {
    return // a new file
  }
  if (target.isDirectory()) throw new ArgumentError(`${flag} ${path}: is a folder, not a file`)
  try {
    accessSync(path, constants.W_OK)
  } catch {
    throw new ArgumentError(`${flag} ${path}: the file is not writable`)
  }
}

/** Checks that no two output flags name the same file (one would overwrite the other). */
export function checkDistinctOutputs(outputs: [flag: string, path: string | undefined][]): void {
  const seen = new Map<string, string>()
  for (const [flag, path] of outputs) {
    if (path === undefined) continue
    const key = resolve(path)
    const other = seen.get(key)
    if (other !== undefined) throw new ArgumentError(`${other} and ${flag} name the same file ${path}`)
    seen.set(key, flag)
  }
}

/** Checks that an input file exists, naming the flag. */
export function checkInputPath(flag: string, path: string): void {
  let stat: Stats
  try {
    stat = statSync(path)
  } catch {
    throw new ArgumentError(`${flag} ${path}: no such file`)
  }
  if (stat.isDirectory()) throw new ArgumentError(`${flag} ${path}: is a folder, not a file`)
}

/** What a safetensors file says it is (`metadata.kind`, and whether it holds a training run). */
export interface FileKind {
  kind?: string
  trainingState: boolean
}

/** Reads the kind of a safetensors file from its header, or undefined when it is not one. */
export function readFileKind(path: string): FileKind | undefined {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return undefined
  }
  try {
    const head = Buffer.alloc(8)
    if (readSync(fd, head, 0, 8, 0) !== 8) return undefined
    const len = Number(head.readBigUInt64LE(0))
    if (len <= 0 || len > 100 << 20) return undefined
    const json = Buffer.alloc(len)
    if (readSync(fd, json, 0, len, 8) !== len) return undefined
    const header = JSON.parse(json.toString('utf8')) as { __metadata__?: Record<string, string> }
    const meta = header.__metadata__ ?? {}
    return { kind: meta.kind, trainingState: meta.train_config !== undefined }
  } catch {
    return undefined
  } finally {
    closeSync(fd)
  }
}

/** The commands that read each kind of file. */
const READERS: Record<string, string> = {
  dinos: "read it with 'rnnlab sample' or continue it with 'rnnlab dinos --resume'",
  charlm: "read it with 'rnnlab generate'",
  'charlm-training': "read it with 'rnnlab generate' or continue it with 'rnnlab train --resume'",
  jazz: "continue it with 'rnnlab jazz --resume' (or JazzImproviser.load)",
}

/**
 * Refuses a file of another kind than `expected` before loading it, naming its kind and the
 * command that reads it. Files without a kind (PyTorch weights) pass.
 */
export function expectFileKind(flag: string, path: string, expected: string, trainingState = false): void {
  const found = readFileKind(path)
  if (found?.kind === undefined) return
  const name = found.kind === 'charlm' && found.trainingState ? 'charlm-training' : found.kind
  const what =
    found.kind === 'dinos'
      ? 'a dinos checkpoint'
      : found.kind === 'charlm'
        ? found.trainingState
          ? 'a train checkpoint'
          : 'a train model (weights only)'
        : found.kind === 'jazz'
          ? 'a jazz checkpoint'
          : 'a checkpoint'
  if (found.kind === expected && (!trainingState || found.trainingState)) return
  const reader = READERS[name] ?? `it is not read by this command`
  throw new ArgumentError(`${flag} ${path} is ${what} (kind "${found.kind}"); ${reader}`)
}
