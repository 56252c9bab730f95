#!/usr/bin/env bash
# Build the offline base image `stroke-mlops-base:bookworm` with debootstrap + docker import.
#
# For machines that cannot pull images: Debian bookworm (minbase) with Python 3.11 and python3-venv,
# from a Debian package mirror. Machines with registry access can skip it: the Dockerfile's default
# base is python:3.11-slim. Idempotent: does nothing if the image exists (FORCE=1 rebuilds).
#
#   scripts/base-image.sh [IMAGE]      default IMAGE: stroke-mlops-base:bookworm
#   env: DEBIAN_MIRROR (default http://deb.debian.org/debian), SUITE (default bookworm), FORCE=1
set -euo pipefail

IMAGE="${1:-${BASE_IMAGE:-stroke-mlops-base:bookworm}}"
SUITE="${SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="python3,python3-venv,ca-certificates"

say() { printf 'base-image: %s\n' "$*"; }
fail() { printf 'base-image: error: %s\n' "$*" >&2; exit 1; }

docker info >/dev/null 2>&1 || fail "no Docker engine answers (run: scripts/docker-engine.sh start)"
if [ -z "${FORCE:-}" ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  say "$IMAGE exists; skipping (FORCE=1 rebuilds)"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || fail "debootstrap needs root"
command -v debootstrap >/dev/null 2>&1 || fail "debootstrap is missing (apt-get install debootstrap)"

started=$(date +%s)
rootfs="$(mktemp -d /tmp/stroke-mlops-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT

say "debootstrap $SUITE (minbase + $PACKAGES) from $MIRROR"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" \
  >"$rootfs.log" 2>&1 || { tail -n 30 "$rootfs.log" >&2; rm -f "$rootfs.log"; fail "debootstrap failed"; }
rm -f "$rootfs.log"

# A clean image: no apt lists or caches, docs, man pages, locales other than C, logs or .pyc.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
  "$rootfs"/usr/share/locale/* "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/root/.cache
find "$rootfs"/usr/lib/python3* -name __pycache__ -type d -prune -exec rm -rf {} +
# Point apt at the public mirror (debootstrap may have used a local one).
printf 'deb %s %s main\n' "http://deb.debian.org/debian" "$SUITE" >"$rootfs/etc/apt/sources.list"

say "docker import -> $IMAGE"
tar -C "$rootfs" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  --message "debootstrap $SUITE minbase + $PACKAGES" - "$IMAGE" >/dev/null

python_version="$(docker run --rm --network host "$IMAGE" python3 --version)"
size="$(docker image inspect --format '{{.Size}}' "$IMAGE")"
say "built $IMAGE ($python_version, $((size / 1000000)) MB) in $(( $(date +%s) - started ))s"
