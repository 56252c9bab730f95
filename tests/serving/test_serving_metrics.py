"""The predictor's Prometheus collector in-process: counts, score buckets, bounded labels."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from stroke_mlops.serving.metrics import (
    METRIC_NAMES,
    REFUSAL_REASONS,
    ServingMetrics,
    count_missing,
    refusal_reason,
)
from stroke_mlops.serving.request_log import RequestLogSink
from tests.serving.test_serving_http import BAD_BODIES


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def test_predictions_scores_and_missing_values_are_counted(registry: CollectorRegistry) -> None:
    metrics = ServingMetrics(["age", "bmi"], registry=registry)
    metrics.observe_predictions("7", np.array([0.005, 0.5, 0.97]), np.array([0, 1, 1]), {"bmi": 2})
    metrics.observe_predictions("7", np.array([0.2]), np.array([0]))

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert sample("stroke_accepted_requests_total", model_version="7") == 2
    assert sample("stroke_predictions_total", model_version="7", decision="1") == 2
    assert sample("stroke_predictions_total", model_version="7", decision="0") == 2
    buckets = {
        le: sample("stroke_prediction_score_bucket", model_version="7", le=le)
        for le in ("0.01", "0.2", "0.5", "0.95", "0.99", "+Inf")
    }
    assert buckets == {"0.01": 1, "0.2": 2, "0.5": 3, "0.95": 3, "0.99": 4, "+Inf": 4}
    assert sample("stroke_prediction_score_count", model_version="7") == 4
    assert sample("stroke_prediction_score_sum", model_version="7") == pytest.approx(1.675)
    assert sample("stroke_missing_values_total", feature="bmi") == 2
    assert sample("stroke_missing_values_total", feature="age") == 0


def test_refusal_reasons_are_a_bounded_set(registry: CollectorRegistry) -> None:
    metrics = ServingMetrics(registry=registry)
    metrics.observe_refusal("invalid_value")
    metrics.observe_refusal("something a client made up")
    found = {
        reason: registry.get_sample_value("stroke_refused_requests_total", {"reason": reason})
        for reason in REFUSAL_REASONS
    }
    assert found == {r: 1.0 if r in ("invalid_value", "other") else 0.0 for r in REFUSAL_REASONS}


@pytest.mark.parametrize("case", BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_each_known_refusal_message_gets_a_specific_reason(case: tuple[str, ...]) -> None:
    assert refusal_reason(400, case[3]) != "other"


def test_http_statuses_name_their_reason() -> None:
    assert [refusal_reason(s, "") for s in (404, 405, 413, 415, 400)] == [
        "unknown_model",
        "method_not_allowed",
        "body_too_large",
        "unsupported_media_type",
        "other",
    ]


def test_request_log_drops_and_write_failures_are_exported(registry: CollectorRegistry) -> None:
    calls = {"n": 0}

    def fails_once(key: str, body: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("store unreachable")

    sink = RequestLogSink(fails_once, batch_size=2, flush_interval_s=60)
    metrics = ServingMetrics(registry=registry)
    metrics.watch_request_log(sink)
    for _ in range(4):
        sink.submit(b"{}\n")
    sink.close()
    sink.submit(b"{}\n")  # after close: dropped as "closed"

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert sample("stroke_request_log_written_records_total") == 2
    assert sample("stroke_request_log_write_failures_total") == 1
    assert sample("stroke_request_log_dropped_records_total", cause="write_failed") == 2
    assert sample("stroke_request_log_dropped_records_total", cause="closed") == 1
    assert sample("stroke_request_log_dropped_records_total", cause="queue_full") == 0


def test_every_exported_name_is_catalogued(registry: CollectorRegistry) -> None:
    metrics = ServingMetrics(["bmi"], registry=registry)
    metrics.watch_request_log(RequestLogSink(lambda key, body: None))
    metrics.observe_predictions("1", np.array([0.3]), np.array([0]))
    names = {s.name for family in registry.collect() for s in family.samples}
    assert names - {"stroke_prediction_score_created"} <= METRIC_NAMES


def test_counting_is_thread_safe(registry: CollectorRegistry) -> None:
    metrics = ServingMetrics(registry=registry)

    def work() -> None:
        for _ in range(500):
            metrics.observe_predictions("1", np.array([0.3, 0.7]), np.array([0, 1]))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert registry.get_sample_value("stroke_prediction_score_count", {"model_version": "1"}) == (
        4 * 500 * 2
    )


def test_count_missing_counts_nulls_per_feature() -> None:
    columns: dict[str, Any] = {"bmi": [None, 20.0, None], "age": (None,), "gender": ["Male"]}
    assert count_missing(columns, ["bmi", "age", "gender", "absent"]) == {"bmi": 2, "age": 1}


def test_small_and_large_batches_are_binned_alike() -> None:
    scores = np.random.default_rng(0).random(200)
    scores[:4] = [0.0, 0.01, 0.5, 1.0]  # on bucket bounds: le is "less or equal"
    decisions = (scores >= 0.5).astype(np.int64)
    one_by_one, whole = CollectorRegistry(), CollectorRegistry()
    small, large = ServingMetrics(registry=one_by_one), ServingMetrics(registry=whole)
    for start in range(0, 200, 8):
        small.observe_predictions("1", scores[start : start + 8], decisions[start : start + 8])
    large.observe_predictions("1", scores, decisions)

    def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
        return {
            (s.name, s.labels.get("le", s.labels.get("decision", ""))): s.value
            for family in registry.collect()
            for s in family.samples
            if s.name.startswith(("stroke_prediction", "stroke_predictions"))
        }

    binned = samples(whole)
    assert binned[("stroke_prediction_score_bucket", "0.01")] == sum(scores <= 0.01)
    assert binned[("stroke_prediction_score_bucket", "0.5")] == sum(scores <= 0.5)
    assert binned[("stroke_predictions_total", "1")] == decisions.sum()
    assert samples(one_by_one) == pytest.approx(binned)
