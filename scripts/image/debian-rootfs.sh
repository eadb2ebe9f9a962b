#!/usr/bin/env bash
# Makes a small Debian root file system with debootstrap and imports it as a Docker image:
#   bash scripts/image/debian-rootfs.sh <release> <image tag>
# Used by scripts/image-test.sh where no registry serves the official base images: it stands in
# for `debian:<release>-slim`, the base under both official images the Dockerfile names.
# Small like the official slim images: the minbase variant (essential packages and apt), no
# recommended packages, and dpkg told never to unpack documentation, man pages or translations.
set -euo pipefail
release="$1"
tag="$2"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

root="$(mktemp -d /tmp/edgelb-rootfs.XXXXXX)"
trap 'rm -rf "$root"' EXIT

# The dpkg and apt settings go in before any package is unpacked, so no docs land at all.
mkdir -p "$root/etc/dpkg/dpkg.cfg.d" "$root/etc/apt/apt.conf.d"
cat >"$root/etc/dpkg/dpkg.cfg.d/01-edgelb-slim" <<'EOF'
# As the official slim images: no documentation, man pages or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
# The keyring named, so that a missing one fails here instead of an unverified download.
debootstrap --variant=minbase --merged-usr --keyring=/usr/share/keyrings/debian-archive-keyring.gpg "$release" "$root" "$mirror" >"$root.log" 2>&1 || {
  tail -n 20 "$root.log" >&2
  rm -f "$root.log"
  exit 1
}
rm -f "$root.log"

cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $release main
deb $mirror $release-updates main
deb $security $release-security main
EOF
cat >"$root/etc/apt/apt.conf.d/01-edgelb-slim" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
# As the official Debian images' docker-clean: apt keeps no package cache or downloaded .deb in a
# layer (without it, `apt-get update` alone leaves some 70 MB of *.bin caches in an image).
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
# Package scripts must not start services in an image build (invoke-rc.d and deb-systemd-invoke
# ask this script; 101 means "action forbidden"), as in the official Debian images.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

# Security and point-release updates, as the official images carry them.
chroot "$root" sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get -y -q upgrade' >"$root.log" 2>&1 || {
  tail -n 20 "$root.log" >&2
  rm -f "$root.log"
  exit 1
}
rm -f "$root.log"

# What debootstrap leaves behind that an image does not need.
# (debootstrap unpacks its first packages without dpkg, so the path-exclude above missed them.)
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
  "$root"/var/log/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/usr/share/info/* \
  "$root"/usr/share/lintian/* "$root"/tmp/* "$root"/root/.cache
find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
# Files the engine provides at run time.
: >"$root/etc/hostname"
: >"$root/etc/resolv.conf"

tar --numeric-owner --xattrs -C "$root" -c . |
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    - "$tag" >/dev/null
