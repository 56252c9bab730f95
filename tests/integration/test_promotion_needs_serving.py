"""Infra-validation stands between publish and promote: a model the server refuses is never
promoted, and production stays as it was."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from stroke_mlops import steps
from stroke_mlops.registry import signature
from stroke_mlops.registry.store import open_store
from tests.serving.model_dirs import fit_pipeline, write_test_model_dir

pytestmark = pytest.mark.integration


def _publish(
    store_uri: str, classifier: object, version: str, frame: pd.DataFrame, scratch: Path
) -> None:
    directory = write_test_model_dir(
        scratch / version,
        fit_pipeline(frame, classifier),
        signature.build_signature(signature.example_instances(frame)),
        version=version,
    )
    open_store(store_uri).publish_version(directory, version)


def test_unservable_model_is_not_promoted(real_patients: pd.DataFrame, tmp_path: Path) -> None:
    store_uri = str(tmp_path / "store")
    frame = real_patients.sample(800, random_state=0)
    _publish(store_uri, LogisticRegression(max_iter=1000), "v1-good", frame, tmp_path)
    steps.infra_validate_version(store_uri, "v1-good", tmp_path / "report-good.md")
    steps.promote_version(store_uri, "v1-good", judged_against=None)

    # Stored and checksummed correctly, but a pipeline shape the model server refuses to serve.
    _publish(store_uri, RandomForestClassifier(n_estimators=5), "v2-unservable", frame, tmp_path)
    with pytest.raises(steps.InfraValidationError, match="v2-unservable cannot be served"):
        steps.infra_validate_version(store_uri, "v2-unservable", tmp_path / "report-bad.md")
    pointer = open_store(store_uri).production()
    assert pointer is not None and pointer.version == "v1-good"
    assert "FAILED" in (tmp_path / "report-bad.md").read_text()
    assert "PASSED" in (tmp_path / "report-good.md").read_text()
