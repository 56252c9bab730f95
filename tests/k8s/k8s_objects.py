"""Helpers for the k8s tests: where the manifests are, and finding one rendered object."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = REPO_ROOT / "manifests"
OVERLAYS = ("kind", "minikube")


def find(objects: list[dict[str, Any]], kind: str, name: str, namespace: str | None = None) -> Any:
    """A deep copy of the one object with that kind/name (and namespace, when given)."""
    matches = [
        o
        for o in objects
        if o["kind"] == kind
        and o["metadata"]["name"] == name
        and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]
    assert len(matches) == 1, f"expected one {kind} {namespace}/{name}, found {len(matches)}"
    return copy.deepcopy(matches[0])
