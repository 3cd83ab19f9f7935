// One seed for every fast-check property in a test file, printed, so a run is reproducible and
// never depends on luck: the default is fixed (the same cases on every machine and under any
// load); `FC_SEED=<n>` replays or explores another seed (scripts/property-seeds.sh sweeps many).
import fc from 'fast-check'

const DEFAULT_SEED = 20261206

function seedFromEnv(): number {
  const raw = process.env.FC_SEED
  if (raw === undefined || raw === '') return DEFAULT_SEED
  const n = Number(raw)
  if (!Number.isInteger(n) || n < -(2 ** 31) || n >= 2 ** 32)
    throw new Error(`FC_SEED: expected an integer, got '${raw}'`)
  return n | 0
}

export const PROPERTY_SEED = seedFromEnv()

fc.configureGlobal({ seed: PROPERTY_SEED })
console.log(`fast-check seed ${PROPERTY_SEED} (FC_SEED=${PROPERTY_SEED} replays it)`)

export { fc }
