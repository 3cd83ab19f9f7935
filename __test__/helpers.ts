// Helpers shared by the ava specs: where the repository and its test fixtures are, and
// throw-away directories. The fixtures (third-party inputs, see fixtures/README.md) are
// committed, so the specs need nothing beside the clone.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** The repository root: ava runs the specs from the directory of package.json. */
export const ROOT = process.cwd()

/** The path of a file in `fixtures/`. */
export const fixture = (name: string): string => join(ROOT, 'fixtures', name)

/** The path of a reference output the project generated, in `crates/core/tests/data/`. */
export const testData = (name: string): string => join(ROOT, 'crates', 'core', 'tests', 'data', name)

/** A fresh directory under the system's temporary folder, named `rnnlab-<label>-XXXXXX`. */
export const tempDir = (label: string): string => mkdtempSync(join(tmpdir(), `rnnlab-${label}-`))
