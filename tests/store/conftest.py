"""Store test fixtures: small real model directories, and the S3 server fixtures.

The S3 fixtures come from ``tests/s3_server.py``; once the root conftest registers it with
``pytest_plugins = ["tests.s3_server"]`` the import below is redundant but harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from stroke_mlops.data import schema
from stroke_mlops.registry import signature, signing
from stroke_mlops.registry.model_dir import write_model_dir
from stroke_mlops.training.train import build_model_pipeline
from tests.s3_server import fault_proxy, moto_endpoint, s3_bucket  # noqa: F401

MakeModelDir = Callable[[str], Path]


@pytest.fixture(scope="session")
def small_patients(real_patients: pd.DataFrame) -> pd.DataFrame:
    """200 real rows with both classes (all strokes among the first rows are kept)."""
    strokes = real_patients[real_patients[schema.TARGET_COLUMN] == 1].head(20)
    others = real_patients[real_patients[schema.TARGET_COLUMN] == 0].head(180)
    return pd.concat([strokes, others]).sample(frac=1.0, random_state=0)


@pytest.fixture(scope="session")
def small_model(small_patients: pd.DataFrame) -> Pipeline:
    """The published model's shape (preprocess + logistic regression), fitted on 200 rows."""
    model = build_model_pipeline(LogisticRegression(max_iter=1000))
    model.fit(small_patients[list(schema.FEATURE_COLUMNS)], small_patients[schema.TARGET_COLUMN])
    return model


@pytest.fixture
def make_model_dir(
    tmp_path: Path,
    small_model: Pipeline,
    small_patients: pd.DataFrame,
    signing_keys: signing.KeyPair,
) -> MakeModelDir:
    """``make_model_dir(version)`` writes a real model directory for that version."""

    def make(version: str) -> Path:
        directory = tmp_path / "built" / version
        write_model_dir(
            directory,
            model=small_model,
            signature=signature.build_signature(signature.example_instances(small_patients)),
            model_card=f"# stroke {version}\n\nA test model fitted on 200 rows.\n",
            metadata={"version": version, "threshold": 0.5, "model_name": schema.MODEL_NAME},
            signing_key=signing_keys.private_key,
        )
        return directory

    return make
