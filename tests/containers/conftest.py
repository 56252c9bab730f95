"""Container tier: the project image, run by a real Docker engine (``pytest -m containers``).

Without an engine or the image the tests skip with the reason; ``make test-containers`` (and CI)
sets ``STROKE_MLOPS_REQUIRE_CONTAINERS=1``, which turns those skips into failures.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from stroke_mlops.image import project_image
from tests.containers.docker_cli import (
    Container,
    engine_problem,
    image_config,
    new_container,
    start_detached,
)

REQUIRE_ENV = "STROKE_MLOPS_REQUIRE_CONTAINERS"


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} (and {REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def image() -> str:
    """The project image tag (``stroke_mlops.image.project_image()``), present in the engine."""
    problem = engine_problem()
    if problem:
        _unavailable(f"{problem}: start one with `make docker-engine`")
    tag = project_image()
    if image_config(tag) is None:
        _unavailable(f"image {tag} is not built: run `make image`")
    return tag


@pytest.fixture(scope="session")
def image_config_doc(image: str) -> dict[str, Any]:
    config = image_config(image)
    assert config is not None
    return config


@pytest.fixture
def start_container(image: str) -> Iterator[Callable[..., Container]]:
    """Start detached containers of the image; every one is removed when the test ends."""
    started: list[Container] = []

    def start(
        command: Sequence[str] | None = None, *, docker_args: Sequence[str] = ()
    ) -> Container:
        container = new_container()
        started.append(container)  # removed even if `docker run` fails half-way
        start_detached(container, image, command, docker_args=docker_args)
        return container

    yield start
    for container in started:
        container.remove()
