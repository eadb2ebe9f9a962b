#!/usr/bin/env bash
# Builds docker/Dockerfile and runs the image against a real etcd (.ci/run's image step):
#   bash scripts/image-test.sh
# 1. Docker: installs docker.io and debootstrap when missing (as root) and starts dockerd when no
#    engine answers (stopped again at the end). Where no engine can start (not root, no overlay
#    file system, no cgroups...) it prints one line saying so and exits 0: the image is not tested.
# 2. Bases: the official haproxy:2.6-bookworm and node:20-bookworm-slim when the engine has them
#    (or EDGELB_IMAGE_BASES=official, to pull them); otherwise local stand-ins built from Debian's
#    packages and the npm registry (scripts/image/local-bases.sh), cached by content.
# 3. Builds docker/Dockerfile unchanged, with the bases as build arguments, and reports its size.
# 4. Runs test/image/*.spec.ts (vitest) in the network namespace of a holder container: etcd, the
#    backends, the clients and every edgelb container share that namespace's loopback, so nothing
#    leaves the machine and ports 80/443 are the container's own (step 4 below says more).
# README.md, "Building and testing the image", lists what the tests check.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

say() { printf 'image-test: %s\n' "$*"; }
skip() {
  say "SKIPPED, the image is not built or tested here: $*"
  exit 0
}
began=$SECONDS
IMAGE="${EDGELB_TEST_IMAGE:-edgelb:image-test}"
work="$(mktemp -d /tmp/edgelb-image-test.XXXXXX)"
own_dockerd=""
holder=""

cleanup() {
  if [ -n "$holder" ]; then docker rm -f -v "$holder" >/dev/null 2>&1 || true; fi
  if [ -n "$own_dockerd" ]; then
    # Stopped by its pid; it stops its containerd itself.
    kill -TERM "$own_dockerd" 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "$own_dockerd" 2>/dev/null || break; sleep 0.1; done
    # dockerd leaves its default network namespace mounted in its exec root.
    if [ -n "${EDGELB_DOCKERD_ROOT:-}" ]; then umount "$EDGELB_DOCKERD_ROOT/exec/netns/default" 2>/dev/null || true; fi
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# ---- 1. a Docker engine
[ "$(id -u)" -eq 0 ] || skip "not root, so no Docker engine can be installed or started"
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap debian-archive-keyring)
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  # docker.io would start its own service: apt_install stops that (this script starts its own
  # dockerd below and stops it at the end).
  # shellcheck source=lib/apt-install.sh
  . scripts/lib/apt-install.sh
  apt_install "$work/apt.log" --no-install-recommends "${missing[@]}" || {
    tail -n 20 "$work/apt.log"
    say "FAILED: apt-get install ${missing[*]}"
    exit 1
  }
fi

# The engine this script starts needs no bridge and touches no iptables rules: the builds use the
# host's network and the test containers a namespace of their own (step 4).
dockerd_args=(--bridge=none --iptables=false)
if [ -n "${EDGELB_DOCKERD_ROOT:-}" ]; then
  # A private engine under this directory, beside any other (how the start path itself is tested,
  # and a cold run with no cached image measured, on a machine whose engine already runs).
  mkdir -p "$EDGELB_DOCKERD_ROOT"
  export DOCKER_HOST="unix://$EDGELB_DOCKERD_ROOT/docker.sock"
  dockerd_args+=(--data-root "$EDGELB_DOCKERD_ROOT/data" --exec-root "$EDGELB_DOCKERD_ROOT/exec"
    --pidfile "$EDGELB_DOCKERD_ROOT/dockerd.pid" --host "$DOCKER_HOST")
fi
if ! docker info >/dev/null 2>&1; then
  # Said only once it is up: where it cannot start, the SKIPPED line is the one line printed.
  setsid dockerd "${dockerd_args[@]}" >"$work/dockerd.log" 2>&1 </dev/null &
  own_dockerd=$!
  deadline=$((SECONDS + 60))
  until docker info >/dev/null 2>&1; do
    if ! kill -0 "$own_dockerd" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      reason="$(grep -m1 -iE 'level=(fatal|error)' "$work/dockerd.log" | sed 's/.*msg="\([^"]*\)".*/\1/' || true)"
      if kill -0 "$own_dockerd" 2>/dev/null; then what="did not answer within 60 s"; else what="exited"; fi
      kill -TERM "$own_dockerd" 2>/dev/null || true
      own_dockerd=""
      skip "no Docker engine answers and dockerd $what (${reason:-no error in its log})"
    fi
    sleep 0.5
  done
  say "no Docker engine answered: started dockerd (pid $own_dockerd, log $work/dockerd.log)"
fi
say "Docker engine $(docker version -f '{{.Server.Version}}' 2>/dev/null)"

# ---- 2. base images
# The official bases are the Dockerfile's defaults for its two build arguments.
official_haproxy="$(sed -n 's/^ARG HAPROXY_IMAGE=//p' docker/Dockerfile)"
official_node="$(sed -n 's/^ARG NODE_IMAGE=//p' docker/Dockerfile)"
if [ "${EDGELB_IMAGE_BASES:-}" = official ]; then
  docker pull -q "$official_haproxy" >/dev/null
  docker pull -q "$official_node" >/dev/null
fi
if docker image inspect "$official_haproxy" "$official_node" >/dev/null 2>&1; then
  bases=("HAPROXY_IMAGE=$official_haproxy" "NODE_IMAGE=$official_node")
  say "bases: the official $official_haproxy and $official_node"
else
  t=$SECONDS
  mapfile -t bases < <(bash scripts/image/local-bases.sh)
  [ "${#bases[@]}" -eq 2 ] || { say "FAILED: building the local base images"; exit 1; }
  say "bases: local, ${bases[*]} ($((SECONDS - t)) s)"
fi

# ---- 3. the image, from docker/Dockerfile as it is
# The classic builder: BuildKit would first fetch the Dockerfile's `# syntax=` frontend image from
# a registry, and it is what a docker.io engine without the buildx plugin runs anyway.
export DOCKER_BUILDKIT=0
# --network host: the build steps reach Debian's mirror and the npm registry the way the host
# does, without depending on the engine's NAT set-up.
t=$SECONDS
build_args=()
for base in "${bases[@]}"; do build_args+=(--build-arg "$base"); done
if ! docker build --force-rm --network host "${build_args[@]}" -f docker/Dockerfile -t "$IMAGE" . >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log"
  say "FAILED: docker build -f docker/Dockerfile"
  exit 1
fi
size="$(docker image inspect -f '{{.Size}}' "$IMAGE")"
say "built $IMAGE in $((SECONDS - t)) s: $((size / 1000 / 1000)) MB ($size bytes, docker image inspect)"

# ---- 4. the image running
# The network: a holder container with no network but its own loopback (--network none), whose
# namespace every container of the test joins (--network container:<holder>) and in which the
# tests themselves run (nsenter --net: etcd, the backends and the clients are children of vitest).
# So everything talks over that loopback: nothing goes beyond the machine, no private-range
# address is used (a bridge would put the container on 172.17.x), and ports 80 and 443 are the
# container's own, which --network host could not give (the host's 80/443 may be taken, and
# other tests run beside this one). The docker CLI reaches the engine over its Unix socket,
# which a network namespace does not hide.
# Docker lets unprivileged users bind any port in a container's own namespace (it sets
# net.ipv4.ip_unprivileged_port_start=0); the holder puts back the kernel's default, 1024, so the
# haproxy binary's CAP_NET_BIND_SERVICE is what lets the non-root user bind 80 and 443, as on a
# host network.
holder="edgelb-image-net-$$"
docker run -d --name "$holder" --network none --no-healthcheck --sysctl net.ipv4.ip_unprivileged_port_start=1024 \
  --entrypoint sleep "$IMAGE" infinity >/dev/null
holder_pid="$(docker inspect -f '{{.State.Pid}}' "$holder")"
say "running test/image in the network namespace of container $holder"
status=0
EDGELB_TEST_IMAGE="$IMAGE" EDGELB_TEST_NETWORK="container:$holder" \
  nsenter --net="/proc/$holder_pid/ns/net" -- npx vitest run --config test/image/vitest.config.ts --reporter=verbose || status=$?
say "image size: $((size / 1000 / 1000)) MB ($IMAGE)"
say "took $((SECONDS - began)) s"
exit "$status"
