#!/usr/bin/env bash
# Installs what edgelb needs on a fresh Debian 12 machine (run as root), then builds it.
# Idempotent: each step is skipped when its result is already there. Starts no services.
set -euo pipefail
cd "$(dirname "$0")/.."

# haproxy lives in /usr/sbin, which a non-login root shell may not have on PATH.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

say() { printf 'setup: %s\n' "$*"; }

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    say "$tool is missing: install Node.js 20 or newer first" >&2
    exit 1
  fi
done

# The tools the tests, the demo and the benchmarks run (wrk, nginx and caddy: npm run bench -- data-plane;
# named: the ACME DNS-01 tests' RFC 2136 server).
TOOLS=(haproxy etcd etcdctl pebble wrk nginx caddy chromium named)
missing=()
for tool in "${TOOLS[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing ${missing[*]}; run this script as root to install them" >&2
    exit 1
  fi
  say "missing ${missing[*]}: installing packages"
  # shellcheck source=lib/apt-install.sh
  . scripts/lib/apt-install.sh
  apt_install - haproxy etcd-server etcd-client pebble wrk nginx-light caddy chromium bind9
  for tool in "${TOOLS[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || { say "$tool is still missing after the install" >&2; exit 1; }
  done
  say "packages installed"
else
  say "${TOOLS[*]}: present"
fi

if [ ! -d node_modules ] || [ ! -e node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing node modules (npm ci)"
  npm ci --no-audit --no-fund
else
  say "node modules: up to date"
fi

say "building (npm run build)"
npm run --silent build
say "ready: $(node --version), $(haproxy -v 2>/dev/null | head -n 1 | cut -d' ' -f1-3), etcd $(etcd --version 2>/dev/null | head -n 1 | awk '{print $3}')"
