#!/bin/sh
# Sweeps the property tests (fast-check) over many seeds; `npm test` runs one fixed seed.
# Usage: scripts/property-seeds.sh [FIRST [COUNT]]   (default: seeds 1..20). Needs `npm run build`.
# A failing seed is printed; replay it with FC_SEED=<seed> npx ava __test__/hardening*.spec.ts
set -u
first=${1:-1}
count=${2:-20}
failed=0
seed=$first
while [ "$seed" -lt $((first + count)) ]; do
  if FC_SEED=$seed npx ava __test__/hardening.spec.ts __test__/hardening-models.spec.ts >/tmp/rnnlab-seed-$seed.log 2>&1; then
    echo "seed $seed: passed"
  else
    echo "seed $seed: FAILED (log: /tmp/rnnlab-seed-$seed.log)"
    failed=1
  fi
  seed=$((seed + 1))
done
exit $failed
