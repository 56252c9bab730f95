"""A few typed calls of the ``docker`` command line, for the container tests.

The CLI rather than the docker SDK: it is what users and CI run, and it needs no extra package.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ENGINE_TIMEOUT_S = 15


class DockerError(RuntimeError):
    """A docker command failed; the message carries its stderr."""


def docker(
    *args: str, timeout_s: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``docker ARGS``; raise DockerError (with stderr) on a non-zero exit when ``check``."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if check and result.returncode != 0:
        raise DockerError(
            f"docker {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}"
        )
    return result


def engine_problem() -> str | None:
    """None when a Docker engine answers, else why not."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    try:
        result = docker(
            "info", "--format", "{{.ServerVersion}}", timeout_s=ENGINE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return f"`docker info` did not answer within {ENGINE_TIMEOUT_S}s"
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        return f"no Docker engine answers ({lines[-1] if lines else f'exit {result.returncode}'})"
    return None


def image_config(image: str) -> dict[str, Any] | None:
    """The image's ``Config`` (Cmd, Env, Labels, User, ...), or None if the engine lacks it."""
    result = docker("image", "inspect", image, timeout_s=ENGINE_TIMEOUT_S, check=False)
    if result.returncode != 0:
        return None
    config: dict[str, Any] = json.loads(result.stdout)[0]["Config"]
    return config


def run_once(
    image: str, command: Sequence[str], *, docker_args: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """``docker run --rm --network host [docker_args] IMAGE COMMAND``; returns the finished run."""
    return docker(
        "run",
        "--rm",
        "--network",
        "host",
        *docker_args,
        image,
        *command,
        timeout_s=300,
        check=False,
    )


@dataclass
class Container:
    """A detached container started by :func:`start_detached`."""

    name: str

    def is_running(self) -> bool:
        result = docker("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return result.stdout.strip() == "true"

    def logs(self, tail: int = 40) -> str:
        result = docker("logs", "--tail", str(tail), self.name, check=False)
        return result.stdout + result.stderr

    def remove(self) -> None:
        docker("rm", "--force", self.name, check=False)


def new_container() -> Container:
    """A unique name for a test container (register it for removal before starting it)."""
    return Container(f"stroke-mlops-ctest-{uuid.uuid4().hex[:12]}")


def start_detached(
    container: Container,
    image: str,
    command: Sequence[str] | None = None,
    *,
    docker_args: Sequence[str] = (),
) -> None:
    """``docker run --detach --network host --name <container.name> ...``."""
    docker(
        "run",
        "--detach",
        "--name",
        container.name,
        "--network",
        "host",
        *docker_args,
        image,
        *(command or ()),
    )
