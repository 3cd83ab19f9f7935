// A text file for training with its line endings read as '\n': CRLF (Windows) and lone CR
// (old Mac) endings would otherwise become characters the model learns and generates.
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'

const CR = 13
const LF = 10

export interface UnixText {
  /** The file to train on: the original, or a converted copy. */
  path: string
  /** Whether the original had CR line endings. */
  converted: boolean
  /** Deletes the converted copy, if any. */
  remove(): void
}

/** The file itself when it has no CR, else a copy with CRLF and CR turned into LF (streamed). */
export async function withUnixNewlines(path: string): Promise<UnixText> {
  let hasCr = false
  for await (const chunk of createReadStream(path)) {
    if ((chunk as Buffer).includes(CR)) {
      hasCr = true
      break
    }
  }
  if (!hasCr) return { path, converted: false, remove() {} }
  const dir = mkdtempSync(join(tmpdir(), 'rnnlab-text-'))
  const target = join(dir, basename(path))
  const remove = () => rmSync(dir, { recursive: true, force: true })
  try {
    const out = createWriteStream(target)
    let pendingCr = false // a CR that ended the previous chunk: its LF may start this one
    for await (const chunk of createReadStream(path)) {
      const buf = chunk as Buffer
      const res = Buffer.allocUnsafe(buf.length + 1)
      let n = 0
      let i = 0
      if (pendingCr) {
        res[n++] = LF
        pendingCr = false
        if (buf[0] === LF) i = 1
      }
      for (; i < buf.length; i++) {
        const c = buf[i]
        if (c !== CR) {
          res[n++] = c
        } else if (i + 1 === buf.length) {
          pendingCr = true
        } else {
          res[n++] = LF
          if (buf[i + 1] === LF) i++
        }
      }
      if (!out.write(res.subarray(0, n))) await once(out, 'drain')
    }
    if (pendingCr) out.write(Buffer.from([LF]))
    out.end()
    await once(out, 'finish')
  } catch (e) {
    remove()
    throw e
  }
  return { path: target, converted: true, remove }
}
