#!/usr/bin/env bash
# Sets the machine up (scripts/setup.sh), then runs the whole test suite.
# The exit code is vitest's. Extra arguments go to vitest (e.g. a file filter).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$#" -eq 0 ]; then
  # The whole suite also types and lints: the same bar as `npm run check`.
  echo "test: typecheck and lint (biome check)"
  npx tsc -p tsconfig.json --noEmit
  npx biome check
fi
echo "test: npx vitest run $*"
exec npx vitest run "$@"
