"""The tests' building blocks on known numbers, and the request-log reader's window."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from stroke_mlops.monitoring import stats
from stroke_mlops.monitoring.monitor import run_monitor
from stroke_mlops.monitoring.replay import as_instances
from stroke_mlops.monitoring.requests import RequestLogReader, refusal_reason
from stroke_mlops.serving.request_log import encode_record
from tests.monitoring.conftest import MonitoredStore, ServeRows


def test_holm_adjusted_p_values() -> None:
    # step-down: 4·0.01, max(0.04, 3·0.02), max(0.06, 2·0.03), max(0.06, 0.5)
    assert stats.holm_adjust([0.03, 0.01, 0.5, 0.02]) == pytest.approx([0.06, 0.04, 0.5, 0.06])


def test_wilson_interval_matches_the_textbook_value() -> None:
    low, high = stats.wilson_interval(8, 10)
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=1e-4)


def test_binned_ks_equals_scipy_when_every_value_has_its_own_bin() -> None:
    rng = np.random.default_rng(0)
    reference, window = rng.normal(size=400), rng.normal(0.3, size=150)
    edges = np.unique(np.concatenate([reference, window]))[:-1]
    result = stats.binned_ks_test(
        stats.bin_counts(reference, edges), stats.bin_counts(window, edges)
    )
    expected = scipy_stats.ks_2samp(reference, window, method="asymp")
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-6)


def test_rare_levels_are_pooled_and_a_level_seen_only_in_the_window_joins_them() -> None:
    reference = {"Female": 600, "Male": 399, "Other": 1}
    window = {"Female": 170, "Male": 128, "Other": 1, "Unseen": 1}
    labels, table = stats.pool_rare_levels(reference, window)
    assert labels == ["Female", "Male + rare"]  # "Other"+"Unseen" too small alone
    assert table.tolist() == [[600, 400], [170, 130]]
    result = stats.contingency_test(reference, window)
    assert result.test == "chi-square" and result.p_value > 0.05


def test_two_levels_are_never_pooled_into_one_small_ones_go_to_fisher() -> None:
    result = stats.contingency_test({"missing": 3, "present": 997}, {"missing": 6, "present": 94})
    expected = scipy_stats.fisher_exact([[997, 3], [94, 6]])
    assert result.test == "Fisher exact"
    assert result.p_value == pytest.approx(expected.pvalue)


def _record(ts: str, request_id: str) -> bytes:
    return encode_record({"ts": ts, "request_id": request_id, "model_version": "v", "status": "ok"})


def test_the_reader_keeps_since_inclusive_until_exclusive_and_counts_bad_lines(
    tmp_path: Path,
) -> None:
    day = tmp_path / "request-logs" / "dt=2026-03-02"
    day.mkdir(parents=True)
    (day / "a.jsonl").write_bytes(
        _record("2026-03-02T09:59:59.999+00:00", "early")
        + _record("2026-03-02T10:00:00.000+00:00", "first")
        + b"not json\n[1, 2]\n"
        + _record("2026-03-02T11:30:00+01:00", "offset")  # 10:30 UTC, another ISO form
        + _record("2026-03-02T11:00:00.000+00:00", "late")
    )
    old = tmp_path / "request-logs" / "dt=2026-02-01"
    old.mkdir()
    (old / "b.jsonl").write_bytes(b"this object is never opened\n")

    reader = RequestLogReader(
        str(tmp_path),
        since=datetime(2026, 3, 2, 10, tzinfo=UTC),
        until=datetime(2026, 3, 2, 11),  # naive: UTC
    )
    ids = [record["request_id"] for record in reader.records()]

    assert ids == ["first", "offset"]
    assert (reader.objects_read, reader.unreadable_lines, reader.outside_window) == (1, 2, 2)


def test_refusal_reasons_name_the_field_never_the_value() -> None:
    assert refusal_reason({"error": 'instance 0: field "age": expected a number; got "x"'}) == (
        "age: invalid value"
    )
    assert refusal_reason({"error": 'instance 2: field "bmi" is missing (expected ...)'}) == (
        "bmi: missing"
    )
    assert refusal_reason({"error": "the body is not valid JSON: ..."}) == "malformed JSON"
    assert refusal_reason({"reason": "rate limited", "error": "x"}) == "rate limited"


def test_refused_requests_and_other_versions_are_counted_not_judged(
    monitored_store: MonitoredStore,
    serve_rows: ServeRows,
    served_model: object,
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    serve_rows(monitored_store.window_pool.head(20), str(logs))
    model = served_model
    from stroke_mlops.serving.request_log import RequestLogger, RequestLogSink, writer_for

    # another prefix: a second sink of the same process may reuse the first one's object keys
    sink = RequestLogSink(writer_for(str(logs)), prefix="refused", batch_size=100)
    model.request_logger = RequestLogger(stream=None, sink=sink)  # type: ignore[attr-defined]
    good = as_instances(monitored_store.window_pool.head(1))[0]
    no_gender = {k: v for k, v in good.items() if k != "gender"}
    for bad in ({**good, "age": "old"}, {**good, "age": -3}, no_gender):
        with pytest.raises(Exception, match="instance 0"):
            model.predict({"instances": [bad]})  # type: ignore[attr-defined]
    model.request_logger.close()  # type: ignore[attr-defined]
    (logs / "other.jsonl").write_bytes(
        encode_record({"model_version": "v0-old", "status": "ok", "ts": "2026-01-01T00:00:00Z"})
    )

    quality = run_monitor(str(monitored_store.root), str(logs), tmp_path / "out").data_quality

    assert (quality.accepted_requests, quality.refused_requests) == (20, 3)
    assert quality.refused_rate == pytest.approx(3 / 23)
    assert quality.refusal_reasons == {"age: invalid value": 2, "gender: missing": 1}
    assert quality.other_version_requests == 1
