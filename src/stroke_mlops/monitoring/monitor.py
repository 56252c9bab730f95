"""The monitor: judge a window of served requests against the production version's reference.

:func:`run_monitor` streams the request-log objects of the window, keeps the production
version's accepted requests, and tests each feature, the bmi missing rate, the score
distribution and the positive-decision rate against the reference set published with that
version (see :mod:`stroke_mlops.monitoring.stats` for the tests). The tests form one family:
Holm's correction keeps the chance of any false alarm on an undrifted window at or under
``alpha``. A window with fewer than ``min_rows`` rows is ``insufficient_data``, never drift.
Feedback labels joined to the window give realised recall and precision with Wilson intervals
once ``min_labelled_positives`` labelled strokes exist.

It writes ``summary.json`` (:class:`MonitorSummary`) and ``report.html`` to ``output_dir``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stroke_mlops.data import schema
from stroke_mlops.monitoring import drift_tests, stats
from stroke_mlops.monitoring.compare import VersionTallies, version_slice
from stroke_mlops.monitoring.drift_tests import Comparison, DriftTest
from stroke_mlops.monitoring.feedback import load_feedback
from stroke_mlops.monitoring.reference import (
    REFERENCE_FILE,
    ReferenceProfile,
    profile_reference,
    read_reference,
)
from stroke_mlops.monitoring.requests import RequestLogReader, as_utc
from stroke_mlops.monitoring.summary import (
    DataQuality,
    DriftResult,
    Interval,
    MonitorSummary,
    Performance,
    PredictionDrift,
    Recommendation,
    Verdict,
    VersionSlice,
)
from stroke_mlops.monitoring.window import WindowCounts
from stroke_mlops.training.promotion_gate import GateThresholds

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MIN_LABELLED_POSITIVES",
    "DEFAULT_MIN_ROWS",
    "REPORT_FILE",
    "SUMMARY_FILE",
    "MonitorError",
    "MonitorSummary",
    "WindowCounts",
    "judge_window",
    "load_production_reference",
    "run_monitor",
]

log = logging.getLogger(__name__)

DEFAULT_MIN_ROWS = 200
DEFAULT_ALPHA = 0.05
DEFAULT_MIN_LABELLED_POSITIVES = 20
DEFAULT_MAX_BAD_SHARE = 0.01  # more records of the version unusable than this: an alarm
MISSING_MARGIN = 0.10  # a feature missing this much more often than in the reference: an alarm
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"


class MonitorError(ValueError):
    """The monitor cannot run: no production model, or its version has no reference set."""


# --------------------------------------------------------------------------------------------
# Judging the window


def _result(test: DriftTest, comparison: Comparison) -> DriftResult:
    outcome = comparison.outcome
    return DriftResult(
        name=test.name,
        kind=test.kind,
        section=test.section,
        test=outcome.test,
        statistic=outcome.statistic,
        p_value=outcome.p_value,
        adjusted_p_value=outcome.p_value,
        distance=outcome.distance,
        distance_name=outcome.distance_name,
        verdict="not tested" if outcome.note.endswith("no test") else "no drift",
        note=outcome.note,
        distribution=comparison.distribution,
    )


def judge_window(
    profile: ReferenceProfile,
    window: WindowCounts,
    *,
    min_rows: int = DEFAULT_MIN_ROWS,
    alpha: float = DEFAULT_ALPHA,
) -> list[DriftResult]:
    """Every registered drift test (:mod:`.drift_tests`) as one Holm-adjusted family."""
    window.flush()
    family = [_result(test, test.compare(profile, window)) for test in drift_tests.registered()]
    tested = [i for i, r in enumerate(family) if r.verdict != "not tested"]
    adjusted = stats.holm_adjust([family[i].p_value for i in tested])
    for index, p_adjusted in zip(tested, adjusted, strict=True):
        verdict: Verdict = "drift" if p_adjusted < alpha else "no drift"
        family[index] = replace(family[index], adjusted_p_value=p_adjusted, verdict=verdict)
    if window.rows < min_rows:  # too few rows: no verdict at all, whatever the statistics say
        family = [replace(r, verdict="insufficient_data") for r in family]
    return family


def assess_performance(
    window: WindowCounts,
    *,
    min_labelled_positives: int,
    recall_floor: float,
) -> Performance:
    """Realised recall and precision with Wilson intervals, or "too few labels"."""
    labelled_rows, positives = window.labelled_rows, window.labelled_positives
    predicted, hits = window.labelled_predicted, window.labelled_hits
    if positives < min_labelled_positives:
        empty = Interval(None, None, None)
        return Performance(
            status="too few labels",
            labelled_rows=labelled_rows,
            labelled_positives=positives,
            min_labelled_positives=min_labelled_positives,
            recall=empty,
            precision=empty,
            recall_floor=recall_floor,
            below_floor=False,
            message=f"too few labels: {positives} labelled strokes in the window, "
            f"{min_labelled_positives} needed",
        )
    recall_low, recall_high = stats.wilson_interval(hits, positives)
    precision_low, precision_high = stats.wilson_interval(hits, predicted)
    recall = Interval(hits / positives, recall_low, recall_high)
    precision = Interval(hits / predicted if predicted else None, precision_low, precision_high)
    below = recall_high < recall_floor
    return Performance(
        status="ok",
        labelled_rows=labelled_rows,
        labelled_positives=positives,
        min_labelled_positives=min_labelled_positives,
        recall=recall,
        precision=precision,
        recall_floor=recall_floor,
        below_floor=below,
        message=f"realised recall {recall.value:.3f} (95% CI {recall_low:.3f}–{recall_high:.3f}) "
        f"on {positives} labelled strokes"
        + (f": below the gate's floor {recall_floor:.2f}" if below else ""),
    )


# --------------------------------------------------------------------------------------------
# The production version and its reference set


def load_production_reference(store_uri: str) -> tuple[str, dict[str, Any], ReferenceProfile]:
    """(version, metadata, reference profile) of the store's production version (verified)."""
    from stroke_mlops.registry.store import open_store

    store = open_store(store_uri)
    pointer = store.production()
    if pointer is None:
        raise MonitorError(f"{store.uri}: no production model yet; there is nothing to monitor")
    with tempfile.TemporaryDirectory(prefix="monitor-reference-") as scratch:
        local = store.download_version(pointer.version, Path(scratch) / "version")
        metadata: dict[str, Any] = json.loads((local / "metadata.json").read_text())
        name = str((metadata.get("monitoring") or {}).get("reference_file", REFERENCE_FILE))
        if name not in (metadata.get("files") or {}):
            raise MonitorError(
                f"{pointer.uri}: version {pointer.version} has no {REFERENCE_FILE} (published "
                "before monitoring existed); publish a new version to monitor it"
            )
        reference = read_reference(local / name, source=f"{pointer.uri}{name}")
    profile = profile_reference(reference, threshold=float(metadata["threshold"]))
    return pointer.version, metadata, profile


def quality_alarms(
    window: WindowCounts,
    reader: RequestLogReader,
    profile: ReferenceProfile,
    *,
    min_rows: int = DEFAULT_MIN_ROWS,
    max_bad_share: float = DEFAULT_MAX_BAD_SHARE,
) -> list[str]:
    """Why the window's data cannot be trusted (empty when it can): a data-quality alarm.

    More than ``max_bad_share`` of the records unusable, any unreadable object, or (in a window
    of at least ``min_rows`` rows) a feature missing ``MISSING_MARGIN`` more often than in the
    reference."""
    alarms = []
    bad = window.invalid_count + reader.unreadable_lines
    records = bad + window.accepted_requests
    if bad and bad > max_bad_share * records:
        reasons = ", ".join(f"{r} ({n})" for r, n in window.invalid_records.most_common(3))
        unreadable = (
            f"{reader.unreadable_lines} unreadable lines" if reader.unreadable_lines else ""
        )
        shown = "; ".join(part for part in (reasons, unreadable) if part)
        alarms.append(
            f"data quality: {bad} of {records} logged records could not be used "
            f"({bad / records:.1%}, more than {max_bad_share:.0%}): {shown}"
        )
    if reader.unreadable_objects:
        alarms.append(
            f"data quality: {reader.unreadable_objects} request-log object(s) could not be read"
        )
    if window.rows >= min_rows:
        for name in schema.FEATURE_COLUMNS:
            reference_rate = (
                profile.numeric[name].missing / profile.rows if name in profile.numeric else 0.0
            )
            rate = window.missing_count(name) / window.rows
            if rate > reference_rate + MISSING_MARGIN:
                alarms.append(
                    f"data quality: {name} is missing in {rate:.1%} of rows "
                    f"(reference {reference_rate:.1%})"
                )
    return alarms


def _reasons(
    rows: int,
    min_rows: int,
    results: list[DriftResult],
    performance: Performance,
) -> list[str]:
    if rows < min_rows:
        return [f"{rows} rows in the window; at least {min_rows} are needed to judge drift"]
    reasons = [
        f"{r.name}: drift ({r.test}, {r.distance_name} {r.distance:.3f}, "
        f"Holm-adjusted p {r.adjusted_p_value:.2g})"
        for r in sorted(results, key=lambda r: r.adjusted_p_value)
        if r.verdict == "drift"
    ]
    if performance.below_floor:
        reasons.append(performance.message)
    return reasons or ["no test rejected its hypothesis of no drift"]


@contextlib.contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Python's cycle collector off while the window is read: reading makes millions of small
    containers and no cycles, so the collector's passes over them would be wasted time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _version_slices(
    window: WindowCounts, others: VersionTallies, min_labelled_positives: int
) -> list[VersionSlice]:
    """Production first, then the other versions by rows; empty when the window holds one."""
    others.flush()
    if not any(other.rows for other in others.windows.values()):
        return []
    ranked = sorted(others.windows.values(), key=lambda w: (-w.rows, w.model_version))
    return [
        version_slice(w, min_labelled_positives=min_labelled_positives)
        for w in (window, *ranked)
        if w is window or w.rows
    ]


def run_monitor(
    store_uri: str,
    requests_uri: str,
    output_dir: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    min_rows: int = DEFAULT_MIN_ROWS,
    alpha: float = DEFAULT_ALPHA,
    min_labelled_positives: int = DEFAULT_MIN_LABELLED_POSITIVES,
    recall_floor: float | None = None,
    max_bad_share: float = DEFAULT_MAX_BAD_SHARE,
) -> MonitorSummary:
    """Judge the window [since, until) of the production version's logged requests.

    Writes ``output_dir/summary.json`` and ``output_dir/report.html``; returns the summary.
    Raises StorageError / MonitorError / ReferenceError (one line) for unreadable input.
    """
    from stroke_mlops.monitoring.report import render_report

    if min_rows < 1 or not 0 < alpha < 1:
        raise MonitorError(f"min_rows must be >= 1 and alpha in (0, 1); got {min_rows}, {alpha}")
    started = time.perf_counter()
    version, metadata, profile = load_production_reference(store_uri)
    reader = RequestLogReader(requests_uri, since=since, until=until)
    feedback = load_feedback(store_uri)
    window = WindowCounts(profile, version, feedback.index)
    others = VersionTallies(feedback.index, skip=version)  # the per-version section
    with cycle_collection_paused():
        for records, line_hashes in reader.batches():
            window.add_batch(records, line_hashes)
            others.add_batch(records, line_hashes)
    family = judge_window(profile, window, min_rows=min_rows, alpha=alpha)
    features = [r for r in family if r.section == "features"]
    floor = recall_floor
    if floor is None:
        floor = float((metadata.get("gate") or {}).get("min_recall", GateThresholds().min_recall))
    performance = assess_performance(
        window, min_labelled_positives=min_labelled_positives, recall_floor=floor
    )
    drift = any(r.verdict == "drift" for r in family)
    alarms = quality_alarms(window, reader, profile, min_rows=min_rows, max_bad_share=max_bad_share)
    recommendation: Recommendation
    if alarms:
        recommendation = "data_quality_alarm"
    elif window.rows < min_rows:
        recommendation = "insufficient_data"
    elif drift or performance.below_floor:
        recommendation = "retrain"
    else:
        recommendation = "none"
    requests = window.accepted_requests + window.refused_requests
    summary = MonitorSummary(
        model_version=version,
        since=None if since is None else as_utc(since).isoformat(),  # type: ignore[union-attr]
        until=None if until is None else as_utc(until).isoformat(),  # type: ignore[union-attr]
        rows=window.rows,
        min_rows=min_rows,
        reference_rows=profile.rows,
        alpha=alpha,
        correction="holm",
        drift_detected=drift,
        recommendation=recommendation,
        reasons=alarms + _reasons(window.rows, min_rows, family, performance),
        features=features,
        prediction=PredictionDrift(
            checks=[r for r in family if r.section == "prediction"],
            reference_positive_rate=profile.positive_decisions / profile.rows,
            window_positive_rate=window.positive_decisions / window.rows if window.rows else 0.0,
            threshold=profile.threshold,
        ),
        data_quality=DataQuality(
            missing_rate={
                name: window.missing_count(name) / window.rows if window.rows else 0.0
                for name in schema.FEATURE_COLUMNS
            },
            reference_missing_rate={
                name: (
                    profile.numeric[name].missing / profile.rows if name in profile.numeric else 0.0
                )
                for name in schema.FEATURE_COLUMNS
            },
            accepted_requests=window.accepted_requests,
            refused_requests=window.refused_requests,
            refused_rate=window.refused_requests / requests if requests else 0.0,
            refusal_reasons=dict(window.refusal_reasons.most_common()),
            unreadable_records=reader.unreadable_lines,
            unreadable_objects=reader.unreadable_objects,
            invalid_records=dict(window.invalid_records.most_common()),
            duplicate_records=window.duplicate_records,
            quarantined_labels=feedback.quarantined_lines,
            conflicting_label_ids=feedback.conflicting_ids,
            alarms=alarms,
            other_version_requests=window.other_version_requests,
            objects_read=reader.objects_read,
        ),
        performance=performance,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - started, 3),
        drifted_features=[r.name for r in features if r.verdict == "drift"],
        versions=_version_slices(window, others, min_labelled_positives),
        other_versions={
            other: assess_performance(
                counts, min_labelled_positives=min_labelled_positives, recall_floor=floor
            )
            for other, counts in sorted(others.windows.items())
            if counts.rows
        },
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / SUMMARY_FILE).write_text(summary.to_json())
    (output_dir / REPORT_FILE).write_text(render_report(summary))
    log.info(
        "monitor: %s on %d rows of %s (%s)",
        summary.recommendation,
        summary.rows,
        version,
        "; ".join(summary.reasons),
    )
    return summary
