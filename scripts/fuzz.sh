#!/usr/bin/env bash
# Fuzz the two file readers with a larger budget than `npm test` does:
#   - checkpoints (Rust, crates/core/tests/checkpoint_fuzz.rs): RNNLAB_FUZZ_CASES mutations
#     of a Dinosaurus, a language-model and a trainer checkpoint;
#   - MIDI (TypeScript, __test__/fuzz.spec.ts): mutations of the Metheny file and the shipped
#     blues head through the reader and the jazz preprocessing.
# Usage: scripts/fuzz.sh [checkpoint cases (default 200000)] [midi cases (default 5000)]
set -euo pipefail
cd "$(dirname "$0")/.."
RNNLAB_FUZZ_CASES="${1:-200000}" cargo test -p rnnlab-core --test checkpoint_fuzz -- --nocapture 2>&1 | grep -E "mutations|fuzz:|test result"
npm run build:ts >/dev/null
RNNLAB_FUZZ_CASES="${2:-5000}" npx ava __test__/fuzz.spec.ts --verbose --timeout 20m
