// The compiled Rust core, loaded through napi-rs's generated loader (index.js
// at the package root picks the right prebuilt or locally built binary).
// Every call into it goes through this module so the types live in one place.

// eslint-disable-next-line @typescript-eslint/no-require-imports
import type * as Binding from '../index'

let loaded: typeof Binding | undefined

/** The native binding; throws a clear error when no binary fits this platform. */
export function native(): typeof Binding {
  if (loaded) return loaded
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require('../index.js') as typeof Binding
  } catch (cause) {
    const pkg = platformPackage()
    const err = new Error(
      `rnnlab: no native binary for ${process.platform}-${process.arch}: install the platform package ` +
        `${pkg} (an optional dependency of rnnlab: it is skipped by --no-optional / --omit=optional ` +
        `and must have the same version as rnnlab), or build from source with \`npm run build\` ` +
        `(needs Rust). Cause: ${(cause as Error).message}`,
    )
    ;(err as NodeJS.ErrnoException).code = 'ERR_RNNLAB_NO_BINARY'
    throw err
  }
  return loaded
}

/** The napi-rs platform package that carries the binary for this machine. */
export function platformPackage(): string {
  let abi = ''
  if (process.platform === 'linux') {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
    abi = report?.header?.glibcVersionRuntime ? '-gnu' : '-musl'
  } else if (process.platform === 'win32') {
    abi = '-msvc'
  }
  return `@rnnlab/binding-${process.platform}-${process.arch}${abi}`
}
