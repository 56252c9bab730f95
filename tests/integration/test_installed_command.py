"""The installed wheel outside a checkout: what works there, and a clear refusal for the rest.

The pipeline definitions (pipelines/, components/) stay top-level folders of the repository, not
part of the package: compile, run and submit need a checkout and say so; the other commands,
the data contract included (its suite ships in the wheel), work anywhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from stroke_mlops.project import CHECKOUT_COMMANDS

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI = "import sys; from stroke_mlops.cli import main; sys.exit(main())"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built and unpacked into a folder of its own (its dependencies are
    this environment's); returns that folder, to put first on PYTHONPATH."""
    build = tmp_path_factory.mktemp("wheel")
    source = build / "source"  # a copy: building in the checkout would leave build/ behind
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    skipped = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO_ROOT / "src", source / "src", ignore=skipped)
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--quiet", "--wheel-dir", str(build / "dist"), str(source)),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (build / "dist").glob("stroke_mlops-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "stroke_mlops/data/stroke_raw.json" in names
    assert not any(name.startswith(("pipelines/", "components/")) for name in names)
    site = build / "site"
    zipfile.ZipFile(wheel).extractall(site)
    return site


def _stroke_mlops(
    site: Path, cwd: Path, *args: str, project_root: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "STROKE_MLOPS_PROJECT_ROOT"}
    env["PYTHONPATH"] = str(site)
    if project_root is not None:
        env["STROKE_MLOPS_PROJECT_ROOT"] = str(project_root)
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_installed_package_is_the_wheel(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [sys.executable, "-c", "import stroke_mlops; print(stroke_mlops.__file__)"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(installed))


@pytest.mark.parametrize("command", CHECKOUT_COMMANDS)
def test_pipeline_commands_outside_a_checkout_say_they_need_one(
    installed: Path, tmp_path: Path, real_csv_path: Path, command: str
) -> None:
    args = {
        "compile": ["--output", str(tmp_path / "p.yaml")],
        "run": ["--data", str(real_csv_path), "--store", str(tmp_path / "store")],
        "submit": ["--data", "s3://b/d.csv", "--store", "s3://b/models"],
    }[command]
    result = _stroke_mlops(installed, tmp_path, command, *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "build the pipeline from a checkout's pipelines/ and components/" in result.stderr
    assert "set STROKE_MLOPS_PROJECT_ROOT" in result.stderr
    assert not (tmp_path / "store").exists() and not (tmp_path / "p.yaml").exists()


def test_pipeline_commands_use_the_checkout_named_by_the_environment(
    installed: Path, tmp_path: Path
) -> None:
    output = tmp_path / "pipeline.yaml"
    result = _stroke_mlops(
        installed, tmp_path, "compile", "--output", str(output), project_root=REPO_ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "pipelineInfo" in output.read_text()


def test_the_data_contract_works_outside_a_checkout(
    installed: Path, tmp_path: Path, real_csv_path: Path
) -> None:
    result = _stroke_mlops(installed, tmp_path, "validate", str(real_csv_path))
    assert result.returncode == 0, result.stderr
    assert "the data contract holds (5110 rows)" in result.stdout
