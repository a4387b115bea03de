#!/usr/bin/env bash
# Gets this machine ready for lorne's cluster tests, and is safe to run
# again: installs Debian's etcd-server when no `etcd` binary is found
# (needs root, or sudo). It does not start etcd: the tests start their own
# members on free loopback ports, with data in temp dirs, and stop them.
#
# Debian's package enables an etcd service; where systemd runs, that
# service listens on 127.0.0.1:2379, which the tests do not use.
#
# Usage: scripts/etcd-setup.sh
set -euo pipefail

step() { echo "etcd-setup: $*"; }
fail() {
  echo "etcd-setup: error: $*" >&2
  exit 1
}

case "${1:-}" in
  "") ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "etcd-setup: unknown argument \"$1\" (try --help)" >&2
    exit 2
    ;;
esac

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    fail "need root (or sudo) to run: $*"
  fi
}

if ! command -v etcd >/dev/null; then
  command -v apt-get >/dev/null ||
    fail "cannot install etcd-server without apt-get; install etcd by hand"
  step "installing etcd-server (apt-get)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
fi
command -v etcd >/dev/null || fail "etcd-server installed but no etcd binary"
step "etcd: $(etcd --version | head -n 1)"
