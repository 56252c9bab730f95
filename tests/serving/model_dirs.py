"""Helpers for the serving tests: fit the project's pipeline on real rows, publish it as a
model directory (rows become request instances with monitoring.replay.as_instances)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline

from stroke_mlops.data.dataset import features_and_target
from stroke_mlops.registry.model_dir import write_model_dir
from stroke_mlops.registry.signing import private_key_from_env
from stroke_mlops.training.train import build_model_pipeline

TEST_VERSION = "test-1"
TEST_THRESHOLD = 0.5


def fit_pipeline(patients: pd.DataFrame, classifier: Any) -> Pipeline:
    features, target = features_and_target(patients)
    return build_model_pipeline(classifier).fit(features, target)


def write_test_model_dir(
    directory: Path,
    pipeline: Any,
    signature_doc: dict[str, Any],
    *,
    version: str = TEST_VERSION,
    threshold: float = TEST_THRESHOLD,
    signing_key: Path | None = None,
) -> Path:
    """A signed model directory (by default with the session's key, see tests/conftest.py)."""
    write_model_dir(
        directory,
        model=pipeline,
        signature=signature_doc,
        model_card="# Test model\n\nFitted by tests/serving for serving tests.\n",
        metadata={"version": version, "threshold": threshold},
        signing_key=signing_key or private_key_from_env(),
    )
    return directory


def copy_model_dir(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target
