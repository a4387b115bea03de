#!/usr/bin/env bash
# Gets this machine ready for lorne's docker tests, and is safe to run again:
#
#   1. installs Debian's docker.io, busybox-static and docker-registry when
#      they are missing (needs root, or sudo);
#   2. starts dockerd in the background when no engine answers on
#      /var/run/docker.sock, and waits for it;
#   3. builds the test image lorne-test-busybox:latest without any registry:
#      a root filesystem made of busybox-static and its applet links,
#      imported with `docker import`. An existing image is kept unless
#      --force-image is given.
#
# Usage: scripts/docker-setup.sh [--force-image]
#
# Environment:
#   LORNE_DOCKERD_LOG     dockerd's log when this script starts it
#                         (default /tmp/lorne-dockerd.log)
#   LORNE_DOCKERD_WAIT_S  how long to wait for dockerd to answer (default 60)
#   LORNE_DOCKERD_ARGS    extra dockerd flags, split on spaces (e.g.
#                         "--iptables=false" where iptables is not allowed)
set -euo pipefail

IMAGE=lorne-test-busybox:latest
BUSYBOX=/bin/busybox
DOCKERD_LOG=${LORNE_DOCKERD_LOG:-/tmp/lorne-dockerd.log}
DOCKERD_WAIT_S=${LORNE_DOCKERD_WAIT_S:-60}
read -r -a DOCKERD_ARGS <<<"${LORNE_DOCKERD_ARGS:-}"

force_image=0
for arg in "$@"; do
  case "$arg" in
    --force-image) force_image=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "docker-setup: unknown argument \"$arg\" (try --help)" >&2
      exit 2
      ;;
  esac
done

step() { echo "docker-setup: $*"; }
fail() {
  echo "docker-setup: error: $*" >&2
  exit 1
}

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

package_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

install_packages() {
  command -v apt-get >/dev/null ||
    fail "cannot install $* without apt-get; install them by hand"
  step "installing $* (apt-get)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

engine_answers() {
  docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# --- 1. packages --------------------------------------------------------------

if ! command -v dockerd >/dev/null; then
  install_packages docker.io busybox-static docker-registry
else
  missing=()
  # The image needs a static busybox: a dynamically linked one would find
  # no C library inside it.
  package_installed busybox-static || missing+=(busybox-static)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  if [ "${#missing[@]}" -gt 0 ]; then
    install_packages "${missing[@]}"
  fi
fi
step "packages: docker.io, busybox-static, docker-registry present"

# --- 2. engine ----------------------------------------------------------------

if engine_answers; then
  step "engine: dockerd $(docker version --format '{{.Server.Version}}') answers"
else
  step "engine: none answers; starting dockerd (log: $DOCKERD_LOG)"
  # setsid: dockerd outlives this script and its process group.
  as_root setsid dockerd "${DOCKERD_ARGS[@]}" >"$DOCKERD_LOG" 2>&1 </dev/null &
  deadline=$((SECONDS + DOCKERD_WAIT_S))
  until engine_answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 30 "$DOCKERD_LOG" >&2 || true
      fail "dockerd did not answer within ${DOCKERD_WAIT_S}s (log above)"
    fi
    sleep 0.5
  done
  step "engine: dockerd $(docker version --format '{{.Server.Version}}') answers"
fi

# --- 3. test image ------------------------------------------------------------

old_id=$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
if [ -n "$old_id" ] && [ "$force_image" -eq 0 ]; then
  step "image: $IMAGE exists (${old_id:7:12}); --force-image rebuilds it"
  exit 0
fi

[ -x "$BUSYBOX" ] || fail "$BUSYBOX not found (Debian package busybox-static)"
work=$(mktemp -d "${TMPDIR:-/tmp}/lorne-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"

step "image: building a root filesystem from $BUSYBOX"
mkdir -p "$root/bin" "$root/etc" "$root/root" "$root/tmp" "$root/www"
cp "$BUSYBOX" "$root/bin/busybox"
applets=0
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] && continue
  ln -s busybox "$root/bin/$applet"
  applets=$((applets + 1))
done
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
EOF
cat >"$root/www/index.html" <<'EOF'
<!doctype html>
<title>lorne test image</title>
<h1>Hello from lorne-test-busybox</h1>
EOF

step "image: importing $IMAGE ($applets applet links)"
tar --numeric-owner --owner=0 --group=0 -C "$root" -c . |
  docker import --change 'ENV PATH=/bin' --change 'CMD ["sh"]' - "$IMAGE" \
    >/dev/null
new_id=$(docker image inspect --format '{{.Id}}' "$IMAGE")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
  # The old image is now untagged; drop it unless a container still uses it.
  docker image rm "$old_id" >/dev/null 2>&1 || true
fi
step "image: $IMAGE built (${new_id:7:12})"
