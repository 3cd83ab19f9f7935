#!/usr/bin/env node
'use strict'
// The `rnnlab` command; the implementation is compiled from src/cli.ts.
require('../dist/cli.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code
  })
  .catch((err) => {
    process.stderr.write(`rnnlab: ${err?.message ? err.message : String(err)}\n`)
    process.exitCode = 1
  })
