"""Run the platform checks built from upstream Go modules (make platform-tools) on our objects."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
KSERVE_ADMIT = REPO_ROOT / "tools" / "platform" / "bin" / "kserve-admit"


def require_kserve_admit() -> None:
    """Skip the calling test module, in one line saying how to build the tool, when it is absent."""
    if not KSERVE_ADMIT.is_file():
        pytest.skip(
            f"{KSERVE_ADMIT.relative_to(REPO_ROOT)} is not built: run 'make platform-tools'",
            allow_module_level=True,
        )


@dataclass(frozen=True)
class Verdict:
    """What kserve-admit said: its exit code and, per refused object, KServe's message."""

    returncode: int
    admitted: list[str]  # "Kind namespace/name"
    refused: dict[str, str]  # "Kind namespace/name" -> message
    output: str


def _object_key(line: str) -> str:
    # "admitted Kind ns/name (FILE#i)" or "REFUSED Kind ns/name (FILE#i): message"
    return " ".join(line.split(" ")[1:3])


def kserve_admit(objects: Sequence[Mapping[str, Any]], *args: str) -> Verdict:
    """kserve-admit on ``objects`` written to one multi-document YAML file."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "objects.yaml"
        path.write_text(yaml.safe_dump_all([dict(o) for o in objects]))
        done = subprocess.run(
            [str(KSERVE_ADMIT), *args, str(path)], capture_output=True, text=True, timeout=60
        )
    admitted, refused = [], {}
    for line in done.stdout.splitlines():
        if line.startswith("admitted "):
            admitted.append(_object_key(line))
        elif line.startswith("REFUSED "):
            refused[_object_key(line)] = line.split("): ", 1)[1]
    return Verdict(done.returncode, admitted, refused, done.stdout + done.stderr)
