"""Finding the repository's ``pipelines/`` and ``components/`` for compile, run and submit.

The pipeline definition lives beside the library in the repository (like a TFX template's
``pipeline/``), not inside the installed package, so the commands that compile it
(:data:`CHECKOUT_COMMANDS`) need a checkout: the current directory or a parent,
``$STROKE_MLOPS_PROJECT_ROOT``, or the checkout an editable install points at. Every other
command works from the installed package alone (the data contract's suite ships with it).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

CHECKOUT_COMMANDS = ("compile", "run", "submit")
PROJECT_ROOT_ENV = "STROKE_MLOPS_PROJECT_ROOT"


class ProjectNotFoundError(RuntimeError):
    """No stroke-mlops checkout (with pipelines/ and components/) could be found."""


def _candidates() -> list[Path]:
    found = []
    if env := os.environ.get(PROJECT_ROOT_ENV):
        found.append(Path(env))
    cwd = Path.cwd().resolve()
    found += [cwd, *cwd.parents]
    found.append(Path(__file__).resolve().parents[2])  # src/stroke_mlops/ -> checkout
    return found


def project_root() -> Path:
    for root in _candidates():
        if (root / "pipelines" / "stroke_pipeline.py").is_file() and (root / "components").is_dir():
            return root
    raise ProjectNotFoundError(
        f"stroke-mlops {', '.join(CHECKOUT_COMMANDS)} build the pipeline from a checkout's "
        f"pipelines/ and components/, which the installed package does not include; none "
        f"found in {Path.cwd()} or its parents. Run the command inside a clone of the "
        f"repository or set {PROJECT_ROOT_ENV} to one (the other commands work anywhere)"
    )


def import_project_module(name: str) -> ModuleType:
    """Import ``pipelines.<...>`` from the checkout, putting its root on sys.path if needed."""
    root = str(project_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module(name)
