"""The monitor's verdict as Prometheus gauges, pushed to a Pushgateway after each run.

The monitor is a batch job (a KFP step or a ``stroke-mlops monitor`` run) that exits in seconds,
so Prometheus cannot scrape it: the Pushgateway is Prometheus' documented path for a batch job's
result ("service-level batch jobs", https://prometheus.io/docs/practices/pushing/). Each run
*replaces* the group ``job="stroke-mlops-monitor"`` (HTTP PUT), so the series of a version that
left the window disappear with the next run; Prometheus scrapes the gateway with
``honor_labels: true`` and the rules read the gauges below.

Gauges (names in :mod:`stroke_mlops.serving.metrics`; every label value comes from a bounded
set: the registered drift checks, at most 1 + ``compare.MAX_TRACKED_VERSIONS`` versions):

- ``stroke_monitor_drift_detected{model_version}``: 1 drift, 0 none, -1 insufficient data
- ``stroke_monitor_drifted_features``, ``stroke_monitor_window_rows``,
  ``stroke_monitor_last_run_timestamp_seconds``
- ``stroke_monitor_drift_distance{check}``, ``stroke_monitor_drift_adjusted_p_value{check}``,
  ``stroke_monitor_drift_check_detected{check}`` for each check that ran (features, bmi's
  missing rate, score, decision rate)
- ``stroke_monitor_realised_recall{model_version,bound}`` and ``..._precision`` with ``bound``
  ``estimate``/``low``/``high`` (the Wilson 95 % interval), for each version with enough
  labelled strokes; ``stroke_monitor_labelled_positives{model_version}`` and
  ``stroke_monitor_recall_floor{model_version}`` for every version judged
"""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Iterable
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, generate_latest, push_to_gateway
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stroke_mlops.monitoring.summary import MonitorSummary, Performance
from stroke_mlops.serving import metrics as names

__all__ = [
    "DEFAULT_PUSH_TIMEOUT_S",
    "PUSH_JOB",
    "PushError",
    "check_gateway_url",
    "monitor_metric_families",
    "monitor_metrics_text",
    "push_summary",
]

PUSH_JOB = "stroke-mlops-monitor"
DEFAULT_PUSH_TIMEOUT_S = 10.0


class PushError(RuntimeError):
    """The Pushgateway could not take the metrics (one line: the URL and what went wrong)."""


def check_gateway_url(url: str) -> str:
    """``url`` without a trailing slash when it is an http(s) URL with a host, else ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s)://host[:port] Pushgateway URL; got {url!r}")
    return url.rstrip("/")


def _verdict_value(summary: MonitorSummary) -> float:
    if summary.recommendation == "insufficient_data" or summary.rows < summary.min_rows:
        return -1.0
    return float(summary.drift_detected)


def _add_performance(
    families: dict[str, GaugeMetricFamily], version: str, performance: Performance
) -> None:
    families["positives"].add_metric([version], float(performance.labelled_positives))
    families["floor"].add_metric([version], performance.recall_floor)
    if performance.status != "ok":
        return  # too few labelled strokes: no estimate to show
    for key, interval in (("recall", performance.recall), ("precision", performance.precision)):
        for bound, value in (
            ("estimate", interval.value),
            ("low", interval.low),
            ("high", interval.high),
        ):
            if value is not None:
                families[key].add_metric([version, bound], value)


def monitor_metric_families(summary: MonitorSummary, *, now: float | None = None) -> list[Metric]:
    """The gauges of one monitor run (see the module docstring)."""
    verdict = GaugeMetricFamily(
        names.DRIFT_DETECTED,
        "Monitor verdict on the last window: 1 drift, 0 none, -1 insufficient data",
        labels=["model_version"],
    )
    verdict.add_metric([summary.model_version], _verdict_value(summary))
    drifted = GaugeMetricFamily(
        names.DRIFTED_FEATURES, "Features judged drifted in the last window"
    )
    drifted.add_metric([], float(len(summary.drifted_features)))
    rows = GaugeMetricFamily(names.MONITOR_ROWS, "Rows of the production version in the window")
    rows.add_metric([], float(summary.rows))
    last_run = GaugeMetricFamily(names.MONITOR_LAST_RUN, "When the monitor last produced a verdict")
    last_run.add_metric([], time.time() if now is None else now)
    distance = GaugeMetricFamily(
        names.DRIFT_DISTANCE, "Each drift check's distance (see its test)", labels=["check"]
    )
    p_value = GaugeMetricFamily(
        names.DRIFT_ADJUSTED_P, "Each drift check's Holm-adjusted p-value", labels=["check"]
    )
    detected = GaugeMetricFamily(
        names.DRIFT_CHECK_DETECTED, "1 when this check found drift, else 0", labels=["check"]
    )
    for check in [*summary.features, *summary.prediction.checks]:
        if check.verdict not in ("drift", "no drift"):
            continue
        distance.add_metric([check.name], check.distance)
        p_value.add_metric([check.name], check.adjusted_p_value)
        detected.add_metric([check.name], float(check.verdict == "drift"))
    performance = {
        "recall": GaugeMetricFamily(
            names.REALISED_RECALL,
            "Realised recall on labelled rows of the window (bound: estimate, low, high of the "
            "95% Wilson interval)",
            labels=["model_version", "bound"],
        ),
        "precision": GaugeMetricFamily(
            names.REALISED_PRECISION,
            "Realised precision on labelled rows of the window (bound as for recall)",
            labels=["model_version", "bound"],
        ),
        "positives": GaugeMetricFamily(
            names.LABELLED_POSITIVES,
            "Labelled strokes among the window's rows",
            labels=["model_version"],
        ),
        "floor": GaugeMetricFamily(
            names.RECALL_FLOOR, "The promotion gate's recall floor", labels=["model_version"]
        ),
    }
    _add_performance(performance, summary.model_version, summary.performance)
    for version, other in summary.other_versions.items():
        _add_performance(performance, version, other)
    return [verdict, drifted, rows, last_run, distance, p_value, detected, *performance.values()]


class _Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _registry(summary: MonitorSummary, now: float | None) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(_Fixed(monitor_metric_families(summary, now=now)))
    return registry


def monitor_metrics_text(summary: MonitorSummary, *, now: float | None = None) -> bytes:
    """The gauges in Prometheus' text format (what the gateway receives; a textfile collector
    reads the same)."""
    return generate_latest(_registry(summary, now))


def push_summary(
    summary: MonitorSummary,
    gateway_url: str,
    *,
    timeout_s: float = DEFAULT_PUSH_TIMEOUT_S,
    job: str = PUSH_JOB,
) -> None:
    """Replace the ``job`` group on the Pushgateway with this run's gauges; PushError if not."""
    url = check_gateway_url(gateway_url)
    try:
        push_to_gateway(url, job=job, registry=_registry(summary, None), timeout=timeout_s)
    except urllib.error.HTTPError as error:
        raise PushError(f"Pushgateway {url} answered {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise PushError(f"Pushgateway {url} could not be reached: {reason}") from None
