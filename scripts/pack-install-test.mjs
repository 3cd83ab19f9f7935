#!/usr/bin/env node
// Installs rnnlab the way a user does and uses it: `npm pack` of the package and
// of this platform's binary package, a fresh project that installs both
// tarballs, then the CLI, an ESM import, a CommonJS require and a strict
// TypeScript consumer. A second project without the platform package checks the
// loader's error message. Needs the package built first (npm install does it).
import { execFileSync } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import assert from 'node:assert/strict'

const root = resolve(import.meta.dirname, '..')
const work = mkdtempSync(join(tmpdir(), 'rnnlab-pack-'))
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const run = (cmd, args, cwd) =>
  execFileSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    shell: process.platform === 'win32',
  })
let passed = 0
const check = (what, fn) => {
  fn()
  passed++
  console.log(`  ✔ ${what}`)
}

try {
  // 1. Tarballs: the main package (already built) and this platform's binary package.
  const binary = readdirSync(root).find((f) => /^rnnlab\..*\.node$/.test(f))
  assert.ok(binary, 'no built rnnlab.*.node at the package root: run `npm run build` first')
  const platformDir = binary.replace(/^rnnlab\./, '').replace(/\.node$/, '')
  const stage = join(work, 'platform')
  cpSync(join(root, 'npm', platformDir), stage, { recursive: true })
  cpSync(join(root, binary), join(stage, binary))
  const mainTgz = join(
    work,
    run(npm, ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], root).trim().split('\n').pop(),
  )
  const platTgz = join(work, run(npm, ['pack', '--silent', '--pack-destination', work], stage).trim().split('\n').pop())

  // 2. A fresh project that installs both.
  const app = join(work, 'app')
  cpSync(join(root, 'scripts', 'consumer'), app, { recursive: true })
  run(npm, ['install', '--no-audit', '--no-fund', '--silent', mainTgz, platTgz, '@types/node@20'], app)
  assert.ok(!existsSync(join(app, 'node_modules', 'rnnlab', binary)), 'the main tarball must not carry a binary')

  check('npx rnnlab dinos --iterations 2000 prints the course report', () => {
    const out = run(process.platform === 'win32' ? 'npx.cmd' : 'npx', ['rnnlab', 'dinos', '--iterations', '2001'], app)
    assert.match(out, /^Iteration: 0, Loss: \d+\.\d{6}\n/)
    assert.match(out, /\nIteration: 2000, Loss: \d+\.\d{6}\n/)
  })
  check('ESM import (.mjs)', () => assert.equal(run(process.execPath, ['esm.mjs'], app).trim(), 'esm ok'))
  check('CommonJS require (.cjs)', () => assert.equal(run(process.execPath, ['cjs.cjs'], app).trim(), 'cjs ok'))
  check('TypeScript consumer type-checks with tsc --strict', () => {
    run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app)
  })

  // 3. Without the platform package: a clear error naming it.
  const bare = join(work, 'bare')
  cpSync(join(root, 'scripts', 'consumer'), bare, { recursive: true })
  run(npm, ['install', '--no-audit', '--no-fund', '--silent', mainTgz], bare)
  check('missing platform package: the error names it', () => {
    const out = run(
      process.execPath,
      [
        '-e',
        "try { require('rnnlab').native(); console.log('loaded?!') } catch (e) { console.log(e.code + ' ' + e.message) }",
      ],
      bare,
    )
    assert.match(out, /ERR_RNNLAB_NO_BINARY/)
    assert.match(out, /@rnnlab\/binding-/)
  })
  console.log(`\npack-install: ${passed} passed, 0 failed`)
} catch (e) {
  console.error(`pack-install: FAILED: ${e.stack || e}\n${e.stdout || ''}${e.stderr || ''}`)
  console.log(`\npack-install: ${passed} passed, 1 failed`)
  process.exitCode = 1
} finally {
  rmSync(work, { recursive: true, force: true })
}
