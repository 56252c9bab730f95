"""Model loading: the model directory fetched the KServe way, verified, then compiled.

A folder such as ``/mnt/models`` (where KServe's storage initializer put ``storageUri``) is used
as is; an ``s3://`` URI is fetched with ``kserve-storage``. The directory's signature and every
file's sha256 are checked *before* deserializing (skops, allow-listed types only; see
registry/model_dir.py), then the pipeline is compiled (:mod:`stroke_mlops.serving.scoring`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from stroke_mlops.registry.model_dir import open_signed_model_dir
from stroke_mlops.serving.explain import Explainer
from stroke_mlops.serving.scoring import CompiledModel, compile_model


class ModelLoadError(RuntimeError):
    """The model could not be fetched, verified or compiled; the server must not start."""


def fetch_model_dir(model_uri: str, download_dir: Path | None = None) -> Path:
    """The local model directory for ``model_uri``: a folder as is, anything else downloaded.

    Remote URIs (``s3://bucket/prefix``, ``gs://``, ...) go through ``kserve-storage``, the
    library behind KServe's storage initializer, which reads the S3 settings from the
    environment: AWS_ENDPOINT_URL (its http:// or https:// decides TLS), AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, optionally AWS_DEFAULT_REGION and S3_VERIFY_SSL=0. The URI is
    treated as a folder (a trailing ``/`` is added),
    so ``.../versions/1`` never also picks up ``.../versions/10/``.
    """
    if model_uri.startswith("file://"):
        model_uri = model_uri.removeprefix("file://")
    if "://" not in model_uri:
        path = Path(model_uri)
        if not path.is_dir():
            raise ModelLoadError(f"{model_uri}: no such model directory")
        return path
    from kserve_storage import Storage

    target = download_dir or Path(tempfile.mkdtemp(prefix="stroke-model-"))
    folder_uri = model_uri if model_uri.endswith("/") else model_uri + "/"
    try:
        Storage.download(folder_uri, str(target))
    except Exception as error:  # kserve-storage raises bare Exception/RuntimeError subclasses
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ModelLoadError(f"{model_uri}: download failed: {reason}") from error
    return target


def load_compiled_model(model_dir: Path, public_key: Path) -> CompiledModel:
    """Verify a model directory (signature with ``public_key``, then checksums), deserialize
    the pipeline (skops, allow-listed types only) and compile it.

    Raises model_dir.ModelDirError or UnsupportedPipelineError with a one-line reason.
    """
    return load_explained_model(model_dir, public_key)[0]


def load_explained_model(model_dir: Path, public_key: Path) -> tuple[CompiledModel, Explainer]:
    """As :func:`load_compiled_model`, with the model's explainer (serving/explain.py)."""
    verified = open_signed_model_dir(model_dir, public_key)
    pipeline = verified.load_model()
    compiled = compile_model(
        pipeline,
        verified.signature,
        threshold=verified.threshold,
        version=verified.version,
    )
    return compiled, Explainer(compiled, pipeline[-1])
