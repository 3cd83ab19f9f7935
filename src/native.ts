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
    const platform = `${process.platform}-${process.arch}`
    const err = new Error(
      `rnnlab: no native binary for ${platform}. Install the matching platform package ` +
        `(@rnnlab/binding-${platform}-…, pulled in automatically as an optional dependency unless ` +
        `optional dependencies were skipped) or build from source with \`npm run build\` ` +
        `(needs Rust). Cause: ${(cause as Error).message}`,
    )
    ;(err as NodeJS.ErrnoException).code = 'ERR_RNNLAB_NO_BINARY'
    throw err
  }
  return loaded
}
