#!/usr/bin/env bash
# Print an overlay's objects with the project image replaced by IMAGE (kustomize `images:`), so
# one IMAGE variable reaches the ServingRuntime as well as the pipeline (make cluster-app).
#
#   scripts/render-overlay.sh OVERLAY_DIR IMAGE      IMAGE: [registry/]name:tag
set -euo pipefail

[ "$#" -eq 2 ] || { echo "usage: $0 OVERLAY_DIR IMAGE" >&2; exit 2; }
OVERLAY="$1" IMAGE="$2"
fail() { printf 'render-overlay: error: %s\n' "$*" >&2; exit 1; }

[ -d "$OVERLAY" ] || fail "$OVERLAY is not a folder"
name="${IMAGE%:*}" tag="${IMAGE##*:}"
# The tag is what follows the last ':' after the last '/' (a registry may have a :port).
case "$IMAGE" in *@*) fail "IMAGE '$IMAGE': use name:tag, not a digest";; esac
{ [ "$name" != "$IMAGE" ] && [ -n "$tag" ] && [[ "$tag" != */* ]]; } \
  || fail "IMAGE '$IMAGE' has no tag: expected [registry/]name:tag"

# kustomize refuses absolute paths to a base: refer to the overlay relative to the scratch folder.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cat >"$scratch/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$OVERLAY" "$scratch")
images:
  - name: stroke-mlops  # the image name in manifests/base/serving-runtime.yaml
    newName: "$name"
    newTag: "$tag"
YAML
if command -v kubectl >/dev/null 2>&1; then kubectl kustomize "$scratch"
else kustomize build "$scratch"; fi
