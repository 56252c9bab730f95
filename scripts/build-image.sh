#!/usr/bin/env bash
# Build the project image from the wheelhouse (called by `make image`; prints time and size).
#
#   scripts/build-image.sh IMAGE BASE_IMAGE VERSION GIT_REVISION
set -euo pipefail

[ "$#" -eq 4 ] || { echo "usage: $0 IMAGE BASE_IMAGE VERSION GIT_REVISION" >&2; exit 2; }
IMAGE="$1" BASE_IMAGE="$2" VERSION="$3" GIT_REVISION="$4"

say() { printf 'build-image: %s\n' "$*"; }
fail() { printf 'build-image: error: %s\n' "$*" >&2; exit 1; }

[ -n "$VERSION" ] || fail "no project version (is pyproject.toml readable?)"
docker info >/dev/null 2>&1 || fail "no Docker engine answers (run: scripts/docker-engine.sh start)"
ls wheelhouse/deps/*.whl wheelhouse/project/stroke_mlops-*.whl >/dev/null 2>&1 \
  || fail "wheelhouse/ is incomplete (run: make wheelhouse)"

started=$(date +%s)
say "$IMAGE from $BASE_IMAGE (version $VERSION, revision $GIT_REVISION)"
# Host networking: the engine may run without a bridge; the build itself needs no network.
# IMAGE_PLATFORM (make image sets linux/amd64): the platform the wheelhouse was downloaded for.
docker build --network host ${IMAGE_PLATFORM:+--platform "$IMAGE_PLATFORM"} \
  --build-arg BASE_IMAGE="$BASE_IMAGE" \
  --build-arg VERSION="$VERSION" \
  --build-arg STROKE_MLOPS_GIT_REVISION="$GIT_REVISION" \
  --tag "$IMAGE" .
size="$(docker image inspect --format '{{.Size}}' "$IMAGE")"
say "built $IMAGE ($((size / 1000000)) MB) in $(( $(date +%s) - started ))s"
