// Line-per-example corpora and the course's character vocabulary.
import { readFileSync } from 'node:fs'
import { invalidArg, invalidArgType } from './contract'

/** Sorted unique characters with '\n' first (the course's `chars = sorted(set(data))`). */
export class Vocabulary {
  readonly chars: string[]
  private readonly index: Map<string, number>

  constructor(chars: Iterable<string>) {
    this.chars = [...new Set(chars)]
    this.index = new Map(this.chars.map((c, i) => [c, i]))
    if (this.chars.length === 0) throw invalidArg('vocabulary: no characters')
  }

  /** The course's vocabulary: sorted unique code points of the lower-cased corpus plus '\n'. */
  static fromNames(names: readonly string[]): Vocabulary {
    const set = new Set<string>(['\n'])
    for (const name of names) for (const ch of name) set.add(ch)
    // Code-point order, as Python's sorted() on str: '\n' (10) comes first.
    return new Vocabulary([...set].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!))
  }

  get size(): number {
    return this.chars.length
  }

  /** Index of '\n', which ends a name. */
  get newline(): number {
    return this.ix('\n')
  }

  /** Index of one character; a clear error names an unknown one. */
  ix(ch: string): number {
    const i = typeof ch === 'string' ? this.index.get(ch) : undefined
    if (i === undefined) {
      const code =
        typeof ch === 'string' && ch.length > 0
          ? ` (U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})`
          : ''
      throw invalidArg(`character ${JSON.stringify(ch)}${code} is not in the vocabulary`)
    }
    return i
  }

  /** Indices of a string; names every unknown character at once. */
  encode(text: string, what = 'text'): number[] {
    const unknown = new Set<string>()
    const out: number[] = []
    for (const ch of text) {
      const i = this.index.get(ch)
      if (i === undefined) unknown.add(ch)
      else out.push(i)
    }
    if (unknown.size > 0) {
      throw invalidArg(
        `${what}: character(s) not in the vocabulary: ${[...unknown].map((c) => JSON.stringify(c)).join(', ')}`,
      )
    }
    return out
  }

  decode(indices: ArrayLike<number>): string {
    let s = ''
    for (let k = 0; k < indices.length; k++) {
      const ch = this.chars[indices[k]]
      if (ch === undefined)
        throw invalidArg(
          `decode: index ${indices[k]} at position ${k} is out of range for a vocabulary of ${this.size}`,
        )
      s += ch
    }
    return s
  }

  /** The vocabulary as one string (for checkpoints). */
  toString(): string {
    return this.chars.join('')
  }

  static fromString(s: string): Vocabulary {
    return new Vocabulary([...s])
  }
}

/** The course's preprocessing: lower-case and strip each line; empty lines are dropped. */
export function normaliseNames(lines: readonly string[]): string[] {
  return lines.map((l) => l.toLowerCase().trim()).filter((l) => l.length > 0)
}

/** Reads a one-name-per-line file (UTF-8); errors name the file. */
export function readNames(path: string): string[] {
  // A number would be read as a file descriptor (0 = stdin) and block.
  if (typeof path !== 'string' || path.length === 0)
    throw invalidArgType(`readNames: expected a file path, got ${JSON.stringify(path)}`)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    // keeps the system's code (ENOENT, EACCES…)
    throw Object.assign(new Error(`cannot read names from ${path}: ${(e as Error).message}`), {
      code: (e as NodeJS.ErrnoException).code ?? 'ERR_INVALID_ARG',
    })
  }
  if (text.includes('\u0000'))
    throw invalidArg(`${path}: looks like a binary file, expected one name per line (UTF-8 text)`)
  const names = normaliseNames(text.split(/\r?\n/))
  if (names.length === 0) throw invalidArg(`${path}: no names found (expected one name per line)`)
  return names
}

/** The out-of-the-box corpus: the npm package `dinosaurs`. */
export function defaultDinosaurNames(): string[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const list = require('dinosaurs') as string[] | { default: string[] }
  const names = Array.isArray(list) ? list : list.default
  return normaliseNames(names)
}
