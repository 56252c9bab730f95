"""Logging set-up shared by the CLI, the components and the model server."""

from __future__ import annotations

import logging
import os


def configure_logging(level: str | None = None) -> None:
    """Timestamped, one-line records to stderr; level from $STROKE_MLOPS_LOG_LEVEL (INFO)."""
    logging.basicConfig(
        level=(level or os.environ.get("STROKE_MLOPS_LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
