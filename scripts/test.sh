#!/usr/bin/env bash
# Sets the machine up (scripts/setup.sh), then runs the whole test suite.
# The exit code is vitest's. Extra arguments go to vitest (e.g. a file filter).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "test: npx vitest run $*"
exec npx vitest run "$@"
