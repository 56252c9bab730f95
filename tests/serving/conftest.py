"""Serving fixtures: real pipelines fitted on the real data, written as published model dirs.

Everything is session-scoped and small (a LogisticRegression and a 60-tree XGBoost fit in about
a second together), so the predictor, parity, HTTP and infra-validation tests share them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

from stroke_mlops.monitoring.replay import as_instances
from stroke_mlops.registry import signature
from stroke_mlops.serving.infra_validation import ServerProcess
from tests.serving.model_dirs import fit_pipeline, write_test_model_dir
from tests.serving.ready import ready_server


@pytest.fixture(scope="session")
def signature_doc(real_patients: pd.DataFrame) -> dict[str, Any]:
    return signature.build_signature(signature.example_instances(real_patients))


@pytest.fixture(scope="session")
def real_instances(real_patients: pd.DataFrame) -> list[dict[str, Any]]:
    """Every real patient as a request instance."""
    return as_instances(real_patients)


@pytest.fixture(scope="session")
def lr_pipeline(real_patients: pd.DataFrame) -> Pipeline:
    return fit_pipeline(real_patients, LogisticRegression(class_weight="balanced", max_iter=2000))


@pytest.fixture(scope="session")
def vote_pipeline(real_patients: pd.DataFrame) -> Pipeline:
    """What training ships when the soft vote of both families wins."""
    members = [
        ("logistic_regression", LogisticRegression(class_weight="balanced", max_iter=2000)),
        ("xgboost", XGBClassifier(n_estimators=40, max_depth=2, n_jobs=1, random_state=0)),
    ]
    return fit_pipeline(real_patients, VotingClassifier(members, voting="soft"))


@pytest.fixture(scope="session")
def xgb_pipeline(real_patients: pd.DataFrame) -> Pipeline:
    return fit_pipeline(
        real_patients,
        XGBClassifier(
            n_estimators=60,
            max_depth=3,
            learning_rate=0.1,
            scale_pos_weight=19.0,
            tree_method="hist",
            n_jobs=1,
            random_state=0,
        ),
    )


@pytest.fixture(scope="session")
def lr_model_dir(
    tmp_path_factory: pytest.TempPathFactory, lr_pipeline: Pipeline, signature_doc: dict[str, Any]
) -> Path:
    return write_test_model_dir(tmp_path_factory.mktemp("lr") / "model", lr_pipeline, signature_doc)


@pytest.fixture(scope="session")
def xgb_model_dir(
    tmp_path_factory: pytest.TempPathFactory, xgb_pipeline: Pipeline, signature_doc: dict[str, Any]
) -> Path:
    return write_test_model_dir(
        tmp_path_factory.mktemp("xgb") / "model", xgb_pipeline, signature_doc
    )


@pytest.fixture(scope="module")
def request_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where ``lr_server`` batches its request records (``--request-log-dir``)."""
    return tmp_path_factory.mktemp("request-log")


@pytest.fixture(scope="module")
def lr_server(lr_model_dir: Path, request_log_dir: Path) -> Iterator[ServerProcess]:
    """The real model server (subprocess, 127.0.0.1, free port) on the LR model directory."""
    server = ServerProcess(
        str(lr_model_dir), extra_args=["--request-log-dir", str(request_log_dir)]
    )
    with ready_server(server):
        yield server
