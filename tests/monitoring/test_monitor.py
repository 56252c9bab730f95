"""The monitor on windows of real rows served by the real predictor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stroke_mlops.monitoring.monitor import MonitorSummary, run_monitor
from stroke_mlops.monitoring.scenarios import SCENARIOS
from tests.monitoring.conftest import VERSION, MonitoredStore, ServeRows

WINDOW_ROWS = 300


def test_an_undrifted_window_of_real_rows_is_not_drift(
    monitored_store: MonitoredStore, serve_rows: ServeRows, tmp_path: Path
) -> None:
    window = monitored_store.window_pool.sample(WINDOW_ROWS, random_state=1)
    serve_rows(window, str(tmp_path / "logs"))

    summary = run_monitor(str(monitored_store.root), str(tmp_path / "logs"), tmp_path / "out")

    assert summary.model_version == VERSION
    assert summary.rows == WINDOW_ROWS
    assert summary.drift_detected is False
    assert summary.recommendation == "none"
    assert {f.verdict for f in summary.features} == {"no drift"}
    assert summary.data_quality.accepted_requests == WINDOW_ROWS
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert MonitorSummary.from_dict(written) == summary
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "<b>No drift detected</b>" in page
    assert "<script" not in page and "src=" not in page and "href=" not in page  # self-contained


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_drifted_window_is_drift_naming_the_feature(
    scenario: str, monitored_store: MonitoredStore, serve_rows: ServeRows, tmp_path: Path
) -> None:
    drift, feature = SCENARIOS[scenario]
    window = monitored_store.window_pool.sample(WINDOW_ROWS, random_state=2)
    serve_rows(drift(window, np.random.default_rng(2)), str(tmp_path / "logs"))

    summary = run_monitor(str(monitored_store.root), str(tmp_path / "logs"), tmp_path / "out")

    assert summary.drift_detected is True
    assert summary.recommendation == "retrain"
    assert feature in summary.drifted_features
    assert any(reason.startswith(f"{feature}: drift") for reason in summary.reasons)
    page = (tmp_path / "out" / "report.html").read_text()
    assert "<b>Drift detected: retraining recommended</b>" in page
    assert f"<li>{feature}: drift" in page


def test_a_window_under_min_rows_is_insufficient_data_never_drift(
    monitored_store: MonitoredStore, serve_rows: ServeRows, tmp_path: Path
) -> None:
    drift, _ = SCENARIOS["older population"]
    window = drift(
        monitored_store.window_pool.sample(150, random_state=3), np.random.default_rng(3)
    )
    serve_rows(window, str(tmp_path / "logs"))

    summary = run_monitor(
        str(monitored_store.root), str(tmp_path / "logs"), tmp_path / "out", min_rows=200
    )

    assert summary.rows == 150
    assert summary.drift_detected is False
    assert summary.recommendation == "insufficient_data"
    assert {f.verdict for f in summary.features} == {"insufficient_data"}
    assert "<b>Insufficient data: no verdict</b>" in (tmp_path / "out" / "report.html").read_text()


def test_an_empty_log_folder_is_a_report_of_insufficient_data(
    monitored_store: MonitoredStore, tmp_path: Path
) -> None:
    (tmp_path / "logs").mkdir()
    summary = run_monitor(str(monitored_store.root), str(tmp_path / "logs"), tmp_path / "out")
    assert (summary.rows, summary.recommendation) == (0, "insufficient_data")
    assert MonitorSummary.from_json((tmp_path / "out" / "summary.json").read_text()) == summary
