"""The project image: what every KFP component and the predictor rely on."""

from __future__ import annotations

from typing import Any

import pytest

from stroke_mlops import __version__
from tests.containers.docker_cli import run_once

pytestmark = pytest.mark.containers

STACK = ("stroke_mlops", "kfp", "kserve", "xgboost", "sklearn", "great_expectations")
BUILD_TOOLS = ("gcc", "cc", "c++", "g++", "clang", "make", "ld", "pip", "pip3")


def test_the_whole_stack_imports_as_the_non_root_user(image: str) -> None:
    script = (
        f"import os, {', '.join(STACK)}; print(os.getuid(), os.getgid(), stroke_mlops.__version__)"
    )
    result = run_once(image, ["python3", "-c", script])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1000", "1000", __version__]


def test_python3_on_path_is_the_venv_with_the_kfp_executor(image: str) -> None:
    # KFP lightweight components run `sh -c ... python3 -m kfp.dsl.executor_main ...`.
    script = (
        "command -v python3 && python3 -c 'import kfp.dsl.executor_main, sys; print(sys.prefix)'"
    )
    result = run_once(image, ["sh", "-c", script])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["/opt/venv/bin/python3", "/opt/venv"]


def test_the_image_has_no_compilers_build_tools_or_installer(image: str) -> None:
    script = f"for tool in {' '.join(BUILD_TOOLS)}; do command -v $tool; done; true"
    result = run_once(image, ["sh", "-c", script])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [], "build tools found in the image"


def test_the_cli_answers(image: str) -> None:
    result = run_once(image, ["stroke-mlops", "--version"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"stroke-mlops {__version__}"


def test_workdir_and_home_are_writable_by_the_user(image: str) -> None:
    result = run_once(image, ["sh", "-c", 'touch ./probe "$HOME/probe" && pwd && echo "$HOME"'])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["/app", "/home/stroke"]


def test_image_metadata_names_version_revision_user_port_and_server(
    image_config_doc: dict[str, Any],
) -> None:
    env = dict(item.split("=", 1) for item in image_config_doc["Env"])
    labels = image_config_doc["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert env["STROKE_MLOPS_VERSION"] == __version__
    revision = env["STROKE_MLOPS_GIT_REVISION"]
    assert revision  # the git revision, or "unknown" outside a checkout
    assert labels["org.opencontainers.image.revision"] == revision
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert image_config_doc["User"] == "1000:1000"
    assert "8080/tcp" in image_config_doc["ExposedPorts"]
    assert image_config_doc["Cmd"] == [
        "stroke-mlops",
        "serve",
        "--model-uri",
        "/mnt/models",
        "--port",
        "8080",
        "--host",
        "0.0.0.0",
    ]
