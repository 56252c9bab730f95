#!/usr/bin/env bash
# Fill a wheelhouse folder with the image's wheels: every pin of a lock, for the IMAGE's platform
# (not the host's), so `make image` works the same on an x86_64 or arm64 Linux host or a Mac.
#
#   scripts/wheelhouse.sh LOCK OUT_DIR PIP
#
# The lock is resolved for CPython 3.11 on manylinux_2_28 x86_64 (mk/image.mk LOCK_FLAGS), so the
# image platform is linux/amd64. Binary wheels are downloaded for that platform explicitly; a pin
# published only as an sdist is built here and must come out pure Python (py3-none-any), or the
# script fails naming it.
set -euo pipefail

[ "$#" -eq 3 ] || { echo "usage: $0 LOCK OUT_DIR PIP" >&2; exit 2; }
LOCK="$1" OUT="$2" PIP="$3"
say() { printf 'wheelhouse: %s\n' "$*"; }
fail() { printf 'wheelhouse: error: %s\n' "$*" >&2; exit 1; }

# manylinux_2_28 is glibc 2.28 (Debian bookworm has 2.36); pip does not expand PEP 600 tags to
# the older ones they include, so each is listed.
PLATFORM_FLAGS=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 \
           manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux2010_x86_64 manylinux1_x86_64; do
  PLATFORM_FLAGS+=(--platform "$tag")
done

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
rm -rf "$OUT"
mkdir -p "$OUT"
# --no-deps: the lock pins every distribution. Without --only-binary pip may pick an sdist when
# no wheel fits the platform; those are built and checked below.
"$PIP" download --quiet --no-deps --dest "$scratch" "${PLATFORM_FLAGS[@]}" \
  --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
  -r "$LOCK"
mv "$scratch"/*.whl "$OUT"/ 2>/dev/null || true
shopt -s nullglob
sdists=("$scratch"/*.tar.gz "$scratch"/*.zip)
if [ "${#sdists[@]}" -gt 0 ]; then
  say "building ${#sdists[@]} sdist(s) without a wheel: ${sdists[*]##*/}"
  "$PIP" wheel --quiet --no-deps --wheel-dir "$scratch/built" "${sdists[@]}"
  for wheel in "$scratch"/built/*.whl; do
    case "$wheel" in
      *-none-any.whl) mv "$wheel" "$OUT"/ ;;
      *) fail "${wheel##*/} is not pure Python and has no wheel for linux/amd64" ;;
    esac
  done
fi
pins=$(grep -cE '^[A-Za-z0-9_.-]+==' "$LOCK")
wheels=$(ls "$OUT"/*.whl | wc -l)
[ "$wheels" -eq "$pins" ] || fail "$wheels wheels for $pins pins in $LOCK"
say "$OUT: $wheels wheels for linux/amd64 CPython 3.11, $(du -sh "$OUT" | cut -f1)"
