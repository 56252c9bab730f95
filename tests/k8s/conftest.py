"""Fixtures for the manifest, validator and deploy tests: the overlays as rendered objects."""

from __future__ import annotations

from typing import Any

import pytest

from tests.k8s.k8s_objects import MANIFESTS, OVERLAYS
from tools.validate_k8s import render_kustomize


@pytest.fixture(scope="session", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    """(overlay name, its objects) rendered with the committed credentials.env.example."""
    name: str = request.param
    return name, render_kustomize(MANIFESTS / "overlays" / name, env_examples="always")


@pytest.fixture(scope="session")
def kind_objects() -> list[dict[str, Any]]:
    return render_kustomize(MANIFESTS / "overlays" / "kind", env_examples="always")
