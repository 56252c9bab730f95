"""The published model directory: what publish writes and what the model server loads.

Layout (one directory per version, ``STORE/stroke/versions/<version>/``)::

    model.joblib     the fitted sklearn Pipeline (preprocessing + classifier)
    signature.json   the input contract requests are validated against (see signature.py)
    metadata.json    version, threshold, metrics, data fingerprint, library versions, git
                     revision, model card file name, and the sha256 of every other file
    model_card.md    the human-readable model card
    reference.csv    (when given) held-out rows with the model's scores, for the drift monitor

``metadata.json`` is written last and lists the sha256 of every other file, so a reader checks
the directory against it *before* deserializing anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # joblib and sklearn load only when a model is written or read
    from sklearn.pipeline import Pipeline

MODEL_FILE = "model.joblib"
SIGNATURE_FILE = "signature.json"
METADATA_FILE = "metadata.json"
MODEL_CARD_FILE = "model_card.md"
MODEL_FILE_SUFFIXES = (".joblib", ".pkl", ".pickle")
FORMAT = "stroke-mlops/sklearn-pipeline"
FORMAT_VERSION = 1


class ModelDirError(ValueError):
    """A model directory is missing a file, has a wrong checksum, or is ambiguous."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of what the model was built with; a server should run the same ones."""
    versions = {"python": platform.python_version()}
    for dist in (
        "stroke-mlops",
        "scikit-learn",
        "xgboost-cpu",
        "xgboost",
        "numpy",
        "pandas",
        "joblib",
    ):
        try:
            versions[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def git_revision() -> str:
    """$STROKE_MLOPS_GIT_REVISION (set in images), else ``git rev-parse HEAD``, else unknown."""
    if revision := os.environ.get("STROKE_MLOPS_GIT_REVISION"):
        return revision
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def write_model_dir(
    directory: Path,
    *,
    model: Pipeline,
    signature: dict[str, Any],
    model_card: str,
    metadata: dict[str, Any],
    extra_files: Mapping[str, bytes] | None = None,
) -> dict[str, Any]:
    """Write a complete model directory; returns the metadata written (with checksums).

    ``extra_files`` (plain file names → content) are written beside the model and listed with
    their sha256 like every other file.
    """
    import joblib

    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, directory / MODEL_FILE, compress=3)
    (directory / SIGNATURE_FILE).write_text(json.dumps(signature, indent=2) + "\n")
    (directory / MODEL_CARD_FILE).write_text(model_card)
    extra_files = dict(extra_files or {})
    for name, content in extra_files.items():
        if "/" in name or name in (MODEL_FILE, SIGNATURE_FILE, MODEL_CARD_FILE, METADATA_FILE):
            raise ModelDirError(f"extra file name {name!r} must be a new, plain file name")
        (directory / name).write_bytes(content)
    files = {
        name: sha256_file(directory / name)
        for name in (MODEL_FILE, SIGNATURE_FILE, MODEL_CARD_FILE, *sorted(extra_files))
    }
    full = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **metadata,
        "model_file": MODEL_FILE,
        "model_card_file": MODEL_CARD_FILE,
        "signature_file": SIGNATURE_FILE,
        "library_versions": library_versions(),
        "git_revision": git_revision(),
        "files": files,
    }
    (directory / METADATA_FILE).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return full


@dataclass(frozen=True)
class VerifiedModelDir:
    """A model directory whose files matched their recorded checksums."""

    directory: Path
    metadata: dict[str, Any]
    signature: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.directory / str(self.metadata["model_file"])

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    @property
    def threshold(self) -> float:
        return float(self.metadata["threshold"])

    def load_model(self) -> Pipeline:
        """Deserialize the pipeline (only call on a verified directory: joblib runs code)."""
        import joblib
        from sklearn.pipeline import Pipeline

        model = joblib.load(self.model_path)
        if not isinstance(model, Pipeline):
            raise ModelDirError(
                f"{self.model_path}: expected a sklearn Pipeline, found {type(model).__name__}"
            )
        return model


def verify_model_dir(directory: Path) -> VerifiedModelDir:
    """Check a model directory before anything in it is deserialized.

    Refuses: no metadata.json; zero or several model files; a file listed in the metadata that
    is missing or whose sha256 differs; a model file the metadata does not list.
    """
    if not directory.is_dir():
        raise ModelDirError(f"{directory}: not a directory")
    metadata_path = directory / METADATA_FILE
    if not metadata_path.is_file():
        raise ModelDirError(f"{directory}: no {METADATA_FILE}; not a published model directory")
    try:
        metadata = json.loads(metadata_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelDirError(f"{metadata_path}: not valid JSON ({error})") from error
    model_files = sorted(
        p.name for p in directory.rglob("*") if p.is_file() and p.suffix in MODEL_FILE_SUFFIXES
    )
    if len(model_files) != 1:
        found = ", ".join(model_files) or "none"
        raise ModelDirError(f"{directory}: expected exactly one model file, found {found}")
    files: dict[str, str] = metadata.get("files") or {}
    if metadata.get("model_file") != model_files[0] or model_files[0] not in files:
        raise ModelDirError(
            f"{directory}: model file {model_files[0]} is not the one {METADATA_FILE} lists"
        )
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            raise ModelDirError(f"{directory}: {name} is listed in {METADATA_FILE} but missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelDirError(
                f"{path}: sha256 {actual[:12]}… does not match {expected[:12]}… in "
                f"{METADATA_FILE}; refusing to load a modified model"
            )
    for key in ("version", "threshold", "signature_file"):
        if key not in metadata:
            raise ModelDirError(f"{metadata_path}: missing field {key!r}")
    signature = json.loads((directory / str(metadata["signature_file"])).read_text())
    return VerifiedModelDir(directory=directory, metadata=metadata, signature=signature)
