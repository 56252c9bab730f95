"""What `make install` and `make image` install where: the xgboost flavour per platform and the
image's wheelhouse platform (issue 11, defects 4 and 8)."""

from __future__ import annotations

import tomllib

import pytest
from packaging.requirements import Requirement

from tests.k8s.k8s_objects import REPO_ROOT


def _xgboost_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    found = [Requirement(r) for r in project["dependencies"]]
    return [r for r in found if r.name.startswith("xgboost")]


@pytest.mark.parametrize(
    ("sys_platform", "machine", "expected"),
    [
        ("linux", "x86_64", "xgboost-cpu"),  # the image and CI
        ("win32", "AMD64", "xgboost-cpu"),
        ("darwin", "arm64", "xgboost"),  # xgboost-cpu has no macOS wheels: no source build
        ("darwin", "x86_64", "xgboost"),
        ("linux", "aarch64", "xgboost"),
    ],
)
def test_exactly_one_xgboost_with_a_wheel_installs_on_each_platform(
    sys_platform: str, machine: str, expected: str
) -> None:
    environment = {"sys_platform": sys_platform, "platform_machine": machine}
    chosen = [
        r.name for r in _xgboost_requirements() if r.marker and r.marker.evaluate(environment)
    ]
    assert chosen == [expected]


def test_the_wheelhouse_is_downloaded_for_the_image_platform_not_the_host() -> None:
    script = (REPO_ROOT / "scripts" / "wheelhouse.sh").read_text()
    assert '--platform "$tag"' in script and "manylinux_2_28_x86_64" in script
    assert "--python-version 3.11" in script
    image_mk = (REPO_ROOT / "mk" / "image.mk").read_text()
    assert "IMAGE_PLATFORM := linux/amd64" in image_mk
    assert "x86_64-manylinux_2_28" in image_mk  # the lock is resolved for the same platform
    assert "BASE_IMAGE ?= python:3.11-slim" in image_mk  # no root or debootstrap by default
