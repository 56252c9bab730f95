"""The published model directory: what publish writes and what the model server loads.

Layout (one directory per version, ``STORE/stroke/versions/<version>/``)::

    model.skops      the fitted sklearn Pipeline (preprocessing + classifier), in skops format
    signature.json   the input contract requests are validated against (see signature.py)
    metadata.json    version, threshold, metrics, data fingerprint, library versions, git
                     revision, model card file name, and the sha256 of every other file
    model_card.md    the human-readable model card
    reference.csv    (when given) held-out rows with the model's scores, for the drift monitor
    model.sig        the signature over every other file (see signing.py), written last

Loading is in three steps, each before the next reads anything: the signature is verified with
the public key (:func:`open_signed_model_dir`), the checksums in ``metadata.json`` are checked
(:func:`verify_model_dir`), and only then is the model deserialized, by ``skops``, which builds
nothing but scikit-learn/numpy/scipy types plus the short allow-list :data:`TRUSTED_TYPES` and
never unpickles (no ``joblib.load``, no ``pickle``).
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

from stroke_mlops.registry.signing import (
    SignatureError,
    sign_model_dir,
    verify_model_dir_signature,
)

if TYPE_CHECKING:  # skops and sklearn load only when a model is written or read
    from sklearn.pipeline import Pipeline

MODEL_FILE = "model.skops"
SIGNATURE_FILE = "signature.json"
METADATA_FILE = "metadata.json"
MODEL_CARD_FILE = "model_card.md"
# Any of these counts as a model file, so a planted pickle beside model.skops is refused.
MODEL_FILE_SUFFIXES = (".skops", ".joblib", ".pkl", ".pickle")
FORMAT = "stroke-mlops/sklearn-pipeline"
FORMAT_VERSION = 2  # 2: skops and a signature bundle (1 was an unsigned joblib pickle)
# The only non-sklearn/numpy/scipy types a model file may contain (skops refuses any other):
# a soft vote of logistic regression and XGBoost needs exactly these.
TRUSTED_TYPES = (
    "numpy.dtype",
    "sklearn.utils._bunch.Bunch",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
)


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
        "skops",
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
    signing_key: Path,
) -> dict[str, Any]:
    """Write a complete model directory and sign it with the private key ``signing_key``;
    returns the metadata written (with checksums).

    ``extra_files`` (plain file names → content) are written beside the model, listed with
    their sha256 like every other file, and signed with them.
    """
    directory.mkdir(parents=True, exist_ok=True)
    save_model(model, directory / MODEL_FILE)
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
    try:
        sign_model_dir(directory, signing_key)
    except SignatureError as error:
        raise ModelDirError(str(error)) from error
    return full


def save_model(model: Pipeline, path: Path) -> None:
    """Persist a fitted pipeline with skops (a zip of JSON and arrays, no pickle)."""
    import skops.io

    skops.io.dump(model, path)


def load_model_file(path: Path) -> Pipeline:
    """Load a pipeline saved by :func:`save_model`, building only allow-listed types.

    Never runs code from the file: a type outside scikit-learn/numpy/scipy and
    :data:`TRUSTED_TYPES` is refused before anything is built.
    """
    import skops.io
    from sklearn.pipeline import Pipeline

    try:
        untrusted = [t for t in skops.io.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
        if untrusted:
            raise ModelDirError(
                f"{path}: contains types outside the allow-list ({', '.join(untrusted[:5])}); "
                "refusing to load it"
            )
        model = skops.io.load(path, trusted=list(TRUSTED_TYPES))
    except ModelDirError:
        raise
    except FileNotFoundError as error:
        raise ModelDirError(f"{path}: no such model file") from error
    except Exception as error:  # zipfile, JSON, skops and numpy errors on a damaged file
        raise ModelDirError(
            f"{path}: not a readable skops model file ({_one_line(error)})"
        ) from error
    if not isinstance(model, Pipeline):
        raise ModelDirError(f"{path}: expected a sklearn Pipeline, found {type(model).__name__}")
    return model


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    first = text.splitlines()[0][:200] if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


@dataclass(frozen=True)
class VerifiedModelDir:
    """A model directory whose files matched their recorded checksums."""

    directory: Path
    metadata: dict[str, Any]
    signature: dict[str, Any]
    signature_verified: bool = False  # set by open_signed_model_dir only

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
        """Deserialize the pipeline; only from a directory whose signature was verified."""
        if not self.signature_verified:
            raise ModelDirError(
                f"{self.directory}: its signature was not verified; open it with "
                "open_signed_model_dir(directory, public_key) to load the model"
            )
        return load_model_file(self.model_path)


def open_signed_model_dir(directory: Path, public_key: Path) -> VerifiedModelDir:
    """Verify the signature with ``public_key``, then the checksums; ready to load the model.

    Nothing in the directory is parsed before the signature holds.
    """
    if not directory.is_dir():
        raise ModelDirError(f"{directory}: not a directory")
    try:
        verify_model_dir_signature(directory, public_key)
    except SignatureError as error:
        raise ModelDirError(str(error)) from error
    verified = verify_model_dir(directory)
    return VerifiedModelDir(
        directory=verified.directory,
        metadata=verified.metadata,
        signature=verified.signature,
        signature_verified=True,
    )


def verify_model_dir(directory: Path) -> VerifiedModelDir:
    """Check a model directory's structure and checksums (not its signature: see
    :func:`open_signed_model_dir`, the only way to a loadable model).

    Refuses: no metadata.json; zero or several model files; a file listed in the metadata that
    is missing or whose sha256 differs; a model file the metadata does not list.
    """
    if not directory.is_dir():
        raise ModelDirError(f"{directory}: not a directory")
    metadata_path = directory / METADATA_FILE
    if not metadata_path.is_file():
        raise ModelDirError(f"{directory}: no {METADATA_FILE}; not a published model directory")
    metadata = _read_json_object(metadata_path)
    model_files = sorted(
        p.name for p in directory.rglob("*") if p.is_file() and p.suffix in MODEL_FILE_SUFFIXES
    )
    if len(model_files) != 1:
        found = ", ".join(model_files) or "none"
        raise ModelDirError(f"{directory}: expected exactly one model file, found {found}")
    files = metadata.get("files") or {}
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise ModelDirError(f"{metadata_path}: field 'files' must map file names to sha256 values")
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
    signature = _read_json_object(directory / str(metadata["signature_file"]))
    return VerifiedModelDir(directory=directory, metadata=metadata, signature=signature)


def _read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; ModelDirError naming the file and what is wrong."""
    try:
        content = path.read_bytes()
    except OSError as error:
        raise ModelDirError(f"{path}: cannot be read ({error.strerror or error})") from error
    if not content.strip():
        raise ModelDirError(f"{path}: the file is empty; expected a JSON object")
    try:
        document = json.loads(content)
    except UnicodeDecodeError as error:
        raise ModelDirError(f"{path}: not UTF-8 text; expected a JSON object") from error
    except json.JSONDecodeError as error:
        raise ModelDirError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from error
    if not isinstance(document, dict):
        raise ModelDirError(f"{path}: expected a JSON object, found {type(document).__name__}")
    return document
