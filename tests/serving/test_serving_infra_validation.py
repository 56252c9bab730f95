"""Infra-validation serves a candidate with the real server: passes a good directory, and
blocks (passed=False, never raises) one that cannot be served."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.naive_bayes import GaussianNB

from stroke_mlops.registry.model_dir import SIGNATURE_FILE
from stroke_mlops.registry.signing import public_key_from_env
from stroke_mlops.serving.infra_validation import validate_model_server
from tests.serving.model_dirs import copy_model_dir, fit_pipeline, write_test_model_dir

pytestmark = pytest.mark.integration


def test_a_good_model_directory_passes(xgb_model_dir: Path) -> None:
    result = validate_model_server(xgb_model_dir, public_key=public_key_from_env(), timeout_s=90)

    assert result.passed, result.reasons
    assert result.reasons == []
    assert set(result.request_ms) == {"v1_predict", "v2_infer", "malformed", "after_malformed"}
    assert result.startup_seconds is not None and result.startup_seconds > 0
    assert result.summary()["passed"] is True


def test_a_tampered_directory_is_blocked(xgb_model_dir: Path, tmp_path: Path) -> None:
    tampered = copy_model_dir(xgb_model_dir, tmp_path / "tampered")
    signature_path = tampered / SIGNATURE_FILE
    signature_path.write_text(
        signature_path.read_text().replace('"maximum": 120.0', '"maximum": 999.0')
    )

    result = validate_model_server(tampered, public_key=public_key_from_env(), timeout_s=90)

    assert not result.passed
    assert any("exited with status 1 before it was ready" in r for r in result.reasons)
    assert any("changed since signing: signature.json" in r for r in result.reasons)


def test_an_unknown_pipeline_shape_is_blocked(
    real_patients: pd.DataFrame, signature_doc: dict[str, Any], tmp_path: Path
) -> None:
    naive_bayes = fit_pipeline(real_patients, GaussianNB())
    directory = write_test_model_dir(tmp_path / "naive-bayes", naive_bayes, signature_doc)

    result = validate_model_server(directory, public_key=public_key_from_env(), timeout_s=90)

    assert not result.passed
    assert len(result.reasons) == 1
    assert "cannot compile classifier GaussianNB" in result.reasons[0]


def test_a_folder_that_is_not_a_model_directory_is_blocked(tmp_path: Path) -> None:
    result = validate_model_server(tmp_path, public_key=public_key_from_env(), timeout_s=90)
    assert not result.passed
    assert any("no model.sig; refusing to load an unsigned model" in r for r in result.reasons)
