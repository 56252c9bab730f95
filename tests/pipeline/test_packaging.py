"""What `make install` and `make image` install where: the xgboost flavour per platform, the
image's wheelhouse platform and the storage backends the image leaves out (issue 11)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from tests.k8s.k8s_objects import REPO_ROOT
from tests.s3_server import S3Bucket


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


def _image_requirements() -> object:
    spec = importlib.util.spec_from_file_location(
        "image_requirements", REPO_ROOT / "scripts" / "image_requirements.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _omitted_distributions() -> set[str]:
    module: Any = _image_requirements()
    return set(module.omitted(module.parse_lock((REPO_ROOT / LOCK).read_text())))


LOCK = "requirements/runtime.lock"


def test_the_image_leaves_out_only_kserve_storages_unused_backends() -> None:
    omitted = _omitted_distributions()
    assert {"azure-identity", "azure-storage-blob", "huggingface-hub", "dulwich"} <= omitted
    # What S3/MinIO and the rest of the project need stays.
    kept = {"boto3", "botocore", "certifi", "requests", "pyyaml", "google-cloud-storage",
            "kserve-storage", "kserve", "minio", "kfp", "aiohttp", "cryptography"}  # fmt: skip
    assert not kept & omitted


# Runs kserve-storage with every omitted distribution unimportable, as in the image.
_BLOCKED_DOWNLOAD = """
import importlib.abc, json, sys
blocked = set(json.loads(sys.argv[1]))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is not in the image")
        return None

sys.meta_path.insert(0, Block())
from kserve_storage import Storage
Storage.download(sys.argv[2], sys.argv[3])
print(sorted(m for m in sys.modules if m.split(".")[0] in blocked))
"""


def test_kserve_storage_downloads_from_s3_without_the_omitted_backends(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    distributions = importlib.metadata.packages_distributions()
    omitted = _omitted_distributions()
    blocked = sorted(
        module
        for module, dists in distributions.items()
        if any(d.lower().replace("_", "-") in omitted for d in dists)
    )
    assert {"azure", "huggingface_hub", "dulwich"} <= set(blocked)
    s3_bucket.put("models/v1/model.bin", b"weights")
    s3_bucket.put("models/v1/metadata.json", b"{}")
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKED_DOWNLOAD, json.dumps(blocked),
         s3_bucket.uri("models/v1/"), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metadata.json", "model.bin"]
