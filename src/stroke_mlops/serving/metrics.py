"""Prometheus metrics of the predictor, served on KServe's ``GET /metrics``.

KServe 0.20's REST server answers ``/metrics`` with ``prometheus_client``'s default registry
(``kserve/protocol/rest/server.py``: ``metrics_handler`` encodes ``REGISTRY``), so registering
:class:`ServingMetrics` there is all the wiring it needs. It is one custom collector: the request
path only adds to plain counters under a lock (numpy bins the scores of a batch in one call), and
the metric families are built when Prometheus scrapes.

Every label has a bounded set of values: ``model_version`` (one per loaded model), ``decision``
(``0``/``1``), ``reason`` (:data:`REFUSAL_REASONS`), ``feature`` (the signature's inputs) and
``cause`` (:data:`DROP_CAUSES`). Nothing a client sends becomes a label value.

:data:`METRIC_NAMES` lists every name we export (as Prometheus sees it), including the monitor's
gauges (``stroke_monitor_*``) that :mod:`stroke_mlops.monitoring.prometheus_push` pushes to a
Pushgateway after each monitor run; the shipped dashboard and alert rules are checked against it.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate
from typing import Any, Protocol

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

# Upper bounds of the score histogram's buckets (P(stroke)); +Inf is added.
SCORE_BUCKETS: tuple[float, ...] = (
    0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0,
)  # fmt: skip

_SMALL_BATCH = 32  # rows up to which the score histogram is binned in plain Python

# Why a request was refused: the only values the ``reason`` label takes.
REFUSAL_REASONS: tuple[str, ...] = (
    "malformed_json",  # the body does not parse as JSON
    "malformed_body",  # JSON of the wrong shape (V1 envelope, V2 request schema)
    "missing_field",
    "unknown_field",
    "invalid_value",  # a value outside what the signature accepts
    "invalid_tensor",  # V2 datatype, shape or duplicate input
    "no_instances",
    "too_many_instances",
    "body_too_large",  # 413
    "request_timeout",  # 408: the body came too slowly
    "unknown_model",  # 404
    "method_not_allowed",  # 405
    "unsupported_media_type",  # 415
    "other",  # any other client error
)

# Why the request log lost records: the only values the ``cause`` label takes.
DROP_CAUSES: tuple[str, ...] = ("queue_full", "closed", "write_failed")

PREDICTIONS = "stroke_predictions_total"
PREDICTION_SCORE = "stroke_prediction_score"
ACCEPTED_REQUESTS = "stroke_accepted_requests_total"
REFUSED_REQUESTS = "stroke_refused_requests_total"
MISSING_VALUES = "stroke_missing_values_total"
REQUEST_LOG_WRITTEN = "stroke_request_log_written_records_total"
REQUEST_LOG_DROPPED = "stroke_request_log_dropped_records_total"
REQUEST_LOG_WRITE_FAILURES = "stroke_request_log_write_failures_total"
DRIFT_DETECTED = "stroke_monitor_drift_detected"
DRIFTED_FEATURES = "stroke_monitor_drifted_features"
MONITOR_ROWS = "stroke_monitor_window_rows"
MONITOR_LAST_RUN = "stroke_monitor_last_run_timestamp_seconds"
DRIFT_DISTANCE = "stroke_monitor_drift_distance"
DRIFT_ADJUSTED_P = "stroke_monitor_drift_adjusted_p_value"
DRIFT_CHECK_DETECTED = "stroke_monitor_drift_check_detected"
REALISED_RECALL = "stroke_monitor_realised_recall"
REALISED_PRECISION = "stroke_monitor_realised_precision"
LABELLED_POSITIVES = "stroke_monitor_labelled_positives"
RECALL_FLOOR = "stroke_monitor_recall_floor"

# Every series name a scrape can show (histograms as their _bucket/_sum/_count series).
METRIC_NAMES: frozenset[str] = frozenset(
    {
        PREDICTIONS,
        f"{PREDICTION_SCORE}_bucket",
        f"{PREDICTION_SCORE}_sum",
        f"{PREDICTION_SCORE}_count",
        ACCEPTED_REQUESTS,
        REFUSED_REQUESTS,
        MISSING_VALUES,
        REQUEST_LOG_WRITTEN,
        REQUEST_LOG_DROPPED,
        REQUEST_LOG_WRITE_FAILURES,
        DRIFT_DETECTED,
        DRIFTED_FEATURES,
        MONITOR_ROWS,
        MONITOR_LAST_RUN,
        DRIFT_DISTANCE,
        DRIFT_ADJUSTED_P,
        DRIFT_CHECK_DETECTED,
        REALISED_RECALL,
        REALISED_PRECISION,
        LABELLED_POSITIVES,
        RECALL_FLOOR,
    }
)

# What a refusal message says, mapped to its reason (first match wins; see refusal_reason).
_MESSAGE_REASONS: tuple[tuple[str, str], ...] = (
    ("not valid JSON", "malformed_json"),
    ("Unrecognized request format", "malformed_json"),
    ("malformed V2 inference request", "malformed_body"),
    ('missing "instances"', "malformed_body"),
    ('"instances" must be', "malformed_body"),
    ("unknown top-level field", "malformed_body"),
    ("expected a JSON object", "malformed_body"),
    ("instances in one request", "too_many_instances"),
    ("no instances", "no_instances"),
    ("is not an input of this model", "unknown_field"),
    ("is not an output of this model", "unknown_field"),
    ("is missing", "missing_field"),
    (": expected ", "invalid_value"),
    ("datatype must be", "invalid_tensor"),
    ("shape", "invalid_tensor"),
    ("given more than once", "invalid_tensor"),
    ("input data must be", "invalid_tensor"),
)
_STATUS_REASONS = {
    404: "unknown_model",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def refusal_reason(status: int, message: str) -> str:
    """The bounded ``reason`` of a refused request, from its HTTP status and error message."""
    if status in _STATUS_REASONS:
        return _STATUS_REASONS[status]
    for fragment, reason in _MESSAGE_REASONS:
        if fragment in message:
            return reason
    return "other"


class RequestLogStats(Protocol):
    """What the metrics read from a request-log sink (see request_log.RequestLogSink)."""

    @property
    def written(self) -> int: ...

    @property
    def write_failures(self) -> int: ...

    def dropped_by_cause(self) -> Mapping[str, int]: ...


class ServingMetrics(Collector):
    """The predictor's counters and score histogram, exported as one Prometheus collector.

    ``registry`` defaults to prometheus_client's default registry, the one KServe serves on
    ``/metrics``; pass ``None`` for metrics nobody scrapes, or a fresh ``CollectorRegistry``.
    """

    def __init__(
        self,
        features: Sequence[str] = (),
        *,
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self._lock = threading.Lock()
        self._bounds = np.array(SCORE_BUCKETS, dtype=np.float64)
        self._features = tuple(features)
        self._accepted: dict[str, int] = {}
        self._predictions: dict[tuple[str, str], int] = {}
        self._score_buckets: dict[str, list[int]] = {}
        self._score_sums: dict[str, float] = {}
        self._refused: dict[str, int] = dict.fromkeys(REFUSAL_REASONS, 0)
        self._missing: dict[str, int] = dict.fromkeys(self._features, 0)
        self._request_log: RequestLogStats | None = None
        if registry is not None:
            registry.register(self)

    def add_features(self, features: Iterable[str]) -> None:
        """Export a (zero) missing-value series for each of ``features`` from now on."""
        with self._lock:
            for feature in features:
                self._missing.setdefault(feature, 0)

    def watch_request_log(self, sink: RequestLogStats | None) -> None:
        """Export this sink's written, dropped and failed-write counts."""
        self._request_log = sink

    def observe_predictions(
        self,
        model_version: str,
        probabilities: np.ndarray,
        decisions: np.ndarray,
        missing: Mapping[str, int] | None = None,
    ) -> None:
        """Count one accepted request: its rows by decision, their scores, missing values."""
        count = len(decisions)
        if count <= _SMALL_BATCH:  # plain Python beats numpy's per-call overhead here
            scores = probabilities.tolist()
            positives = sum(decisions.tolist())
            bins = [0] * (len(SCORE_BUCKETS) + 1)
            for score in scores:
                bins[bisect_left(SCORE_BUCKETS, score)] += 1
            total = sum(scores)
        else:
            positives = int(decisions.sum())
            bins = np.bincount(
                np.searchsorted(self._bounds, probabilities, side="left"),
                minlength=len(SCORE_BUCKETS) + 1,
            ).tolist()
            total = float(probabilities.sum())
        with self._lock:
            self._accepted[model_version] = self._accepted.get(model_version, 0) + 1
            positive_key, negative_key = (model_version, "1"), (model_version, "0")
            self._predictions[positive_key] = self._predictions.get(positive_key, 0) + positives
            self._predictions[negative_key] = (
                self._predictions.get(negative_key, 0) + count - positives
            )
            buckets = self._score_buckets.get(model_version)
            if buckets is None:
                buckets = self._score_buckets[model_version] = [0] * len(bins)
            for index, number in enumerate(bins):
                if number:
                    buckets[index] += number
            self._score_sums[model_version] = self._score_sums.get(model_version, 0.0) + total
            if missing:
                for feature, number in missing.items():
                    self._missing[feature] = self._missing.get(feature, 0) + number

    def observe_refusal(self, reason: str) -> None:
        """Count one refused request (an unknown reason counts as ``other``)."""
        with self._lock:
            key = reason if reason in self._refused else "other"
            self._refused[key] += 1

    def describe(self) -> Iterable[Metric]:
        return self._families(empty=True)

    def collect(self) -> Iterable[Metric]:
        return self._families(empty=False)

    def _families(self, *, empty: bool) -> list[Metric]:
        predictions = CounterMetricFamily(
            PREDICTIONS,
            "Rows scored, by model version and decision (1: at or above the threshold)",
            labels=["model_version", "decision"],
        )
        accepted = CounterMetricFamily(
            ACCEPTED_REQUESTS,
            "Requests answered with predictions, by model version",
            labels=["model_version"],
        )
        scores = HistogramMetricFamily(
            PREDICTION_SCORE,
            "P(stroke) of each scored row, by model version",
            labels=["model_version"],
        )
        refused = CounterMetricFamily(
            REFUSED_REQUESTS,
            "Requests refused with a 4xx, by reason",
            labels=["reason"],
        )
        missing = CounterMetricFamily(
            MISSING_VALUES,
            "Null (missing) values in accepted rows, by feature",
            labels=["feature"],
        )
        written = CounterMetricFamily(
            REQUEST_LOG_WRITTEN, "Request records written to the request-log store"
        )
        dropped = CounterMetricFamily(
            REQUEST_LOG_DROPPED,
            "Request records lost before reaching the request-log store, by cause",
            labels=["cause"],
        )
        failures = CounterMetricFamily(
            REQUEST_LOG_WRITE_FAILURES, "Request-log object writes that failed"
        )
        families: list[Metric] = [
            predictions,
            accepted,
            scores,
            refused,
            missing,
            written,
            dropped,
            failures,
        ]
        if empty:
            return families
        with self._lock:
            for (version, decision), number in sorted(self._predictions.items()):
                predictions.add_metric([version, decision], number)
            for version, number in sorted(self._accepted.items()):
                accepted.add_metric([version], number)
            for version, counts in sorted(self._score_buckets.items()):
                cumulative = list(accumulate(counts))
                bounds = [*(f"{b:g}" for b in SCORE_BUCKETS), "+Inf"]
                scores.add_metric(
                    [version],
                    list(zip(bounds, cumulative, strict=True)),
                    self._score_sums[version],
                )
            for reason, number in self._refused.items():
                refused.add_metric([reason], number)
            for feature, number in sorted(self._missing.items()):
                missing.add_metric([feature], number)
        sink = self._request_log
        if sink is not None:
            written.add_metric([], sink.written)
            by_cause = sink.dropped_by_cause()
            for cause in DROP_CAUSES:
                dropped.add_metric([cause], by_cause.get(cause, 0))
            failures.add_metric([], sink.write_failures)
        return families


def count_missing(columns: Mapping[str, Sequence[Any]], features: Iterable[str]) -> dict[str, int]:
    """How many null values each of ``features`` has in request ``columns``."""
    counts: dict[str, int] = {}
    for feature in features:
        values = columns.get(feature, ())
        number = values.count(None) if isinstance(values, list) else sum(v is None for v in values)
        if number:
            counts[feature] = number
    return counts
