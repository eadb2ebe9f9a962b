# Sourced by scripts/setup.sh and scripts/image-test.sh: one way to install Debian packages.
#
# apt_install <log file or -> <apt-get install argument>...: apt-get update and install, the
# output appended to the log file (- leaves it on this script's output).
# Packages such as etcd-server, nginx-light, caddy and docker.io start their service on install; a
# policy-rc.d that answers 101 ("action forbidden") stops that (invoke-rc.d and deb-systemd-invoke
# both ask it), since the scripts start what they need themselves, on their own ports. One that is
# already there is left alone. Returns apt-get's status; the policy file is removed either way.
apt_install() {
  local log="$1"
  shift
  local own_policy="" status=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    own_policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\n# temporary, from edgelb scripts/lib/apt-install.sh\nexit 101\n' >"$own_policy"
    chmod 755 "$own_policy"
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ "$log" = - ]; then
    { apt-get update -q && apt-get install -y -q "$@"; } || status=$?
  else
    { apt-get update -q && apt-get install -y -q "$@"; } >>"$log" 2>&1 || status=$?
  fi
  [ -z "$own_policy" ] || rm -f "$own_policy"
  return "$status"
}
