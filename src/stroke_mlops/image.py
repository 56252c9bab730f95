"""The one container image every component and the model server run in."""

from __future__ import annotations

import os

from stroke_mlops import __version__

IMAGE_REPOSITORY = "stroke-mlops"


def project_image() -> str:
    """``$STROKE_MLOPS_IMAGE`` if set (e.g. a registry path), else ``stroke-mlops:<version>``."""
    return os.environ.get("STROKE_MLOPS_IMAGE") or f"{IMAGE_REPOSITORY}:{__version__}"
