#!/usr/bin/env bash
# Runs the edgelb demo: a local etcd, two sample backends and the real controller with its
# HAProxy, plus sample routes. Ctrl-C stops everything. `--check` verifies and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node --import tsx scripts/demo.ts "$@"
