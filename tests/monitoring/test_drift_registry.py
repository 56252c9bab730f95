"""The drift-test registry: a new test is one function plus one registration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stroke_mlops.monitoring import drift_tests, stats
from stroke_mlops.monitoring.drift_tests import Comparison
from stroke_mlops.monitoring.monitor import MonitorSummary, run_monitor
from stroke_mlops.monitoring.reference import ReferenceProfile
from stroke_mlops.monitoring.summary import Distribution
from stroke_mlops.monitoring.window import WindowCounts
from tests.monitoring.conftest import MonitoredStore, ServeRows

NAME = "always drifted (test)"


def always_drifted(profile: ReferenceProfile, window: WindowCounts) -> Comparison:
    outcome = stats.TwoSampleResult(
        test="made up", statistic=99.0, p_value=1e-30, distance=1.0, distance_name="made up"
    )
    return Comparison(outcome, Distribution(labels=["a"], reference=[1.0], window=[0.0]))


@pytest.fixture
def registered_test() -> Iterator[None]:
    drift_tests.register(NAME, "categorical", "prediction", always_drifted)
    yield
    drift_tests.unregister(NAME)


def test_the_default_family_is_every_feature_the_bmi_missing_rate_and_two_prediction_checks() -> (
    None
):
    names = [t.name for t in drift_tests.registered()]
    assert len(names) == 13 and names[-2:] == ["score", "positive-decision rate"]
    assert "bmi (missing rate)" in names
    with pytest.raises(ValueError, match="already registered"):
        drift_tests.register("age", "numeric", "features", always_drifted)


def test_a_registered_test_is_judged_summarised_and_reported(
    registered_test: None, monitored_store: MonitoredStore, serve_rows: ServeRows, tmp_path: Path
) -> None:
    serve_rows(monitored_store.window_pool.sample(250, random_state=5), str(tmp_path / "logs"))

    summary = run_monitor(str(monitored_store.root), str(tmp_path / "logs"), tmp_path / "out")

    added = next(r for r in summary.prediction.checks if r.name == NAME)
    assert added.verdict == "drift" and added.section == "prediction"
    assert added.adjusted_p_value == pytest.approx(1e-30 * 14)  # Holm over 14 tests
    assert summary.recommendation == "retrain" and summary.reasons[0].startswith(NAME)
    saved = MonitorSummary.from_json((tmp_path / "out" / "summary.json").read_text())
    assert NAME in [r.name for r in saved.prediction.checks]
    assert f"<b>{NAME}</b>" in (tmp_path / "out" / "report.html").read_text()
