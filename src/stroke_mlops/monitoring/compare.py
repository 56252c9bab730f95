"""Two model versions side by side: per-version evidence from the same request log and outcomes.

:func:`run_compare` streams the request log once (the monitor's reader: unreadable objects and
lines are counted, never raised), checks each record of the two versions against the request-log
schema and counts it once (:class:`~stroke_mlops.monitoring.window.WindowCounts` without a
reference profile), and joins the store's feedback labels on the predictor-issued
``prediction_id`` only. Per version it reports rows, the positive-decision rate, and realised
recall and precision with Wilson 95 % intervals (the monitor's; good coverage at the few dozen
labelled strokes a live window holds, where the normal approximation is not).

The verdict (:func:`decide`) is about the challenger against the champion, on recall, the
metric the product is tuned for, with precision as a floor:

1. ``too_few_labels`` when either version has fewer than ``min_labelled_positives`` labelled
   strokes;
2. ``worse`` when the challenger's precision is clearly under the floor (its one-sided
   ``1 - alpha`` upper Wilson bound below ``precision_floor``);
3. on the recall difference d = challenger - champion (independent patients: each request went
   to one version), the two-sided ``1 - 2 alpha`` Newcombe hybrid score interval (built from the
   two Wilson intervals; it keeps its coverage with small counts where the Wald interval does
   not), i.e. three one-sided tests at level ``alpha``:
   ``worse`` when the interval lies below 0 (shown to catch fewer strokes; checked first, so a
   challenger shown worse is never "not worse");
   ``challenger_better`` when it lies above 0;
   ``not_worse`` when it lies above ``-margin`` (non-inferiority);
   otherwise ``too_few_labels``: the evidence does not decide yet, more labels will.

``benchmarks/compare_benchmark.py`` measures the verdict's error rates on simulated outcomes.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from scipy import stats as scipy_stats

from stroke_mlops.monitoring.comparison_rule import (
    VERDICTS,
    ComparisonError,
    DecisionRule,
    Verdict,
)
from stroke_mlops.monitoring.feedback import load_feedback
from stroke_mlops.monitoring.labels import LabelIndex
from stroke_mlops.monitoring.requests import RequestLogReader, as_utc
from stroke_mlops.monitoring.summary import Interval, VersionSlice
from stroke_mlops.monitoring.window import WindowCounts
from stroke_mlops.registry.store_base import VERSION_PATTERN

__all__ = [
    "COMPARISON_KIND",
    "Comparison",
    "ComparisonError",
    "DecisionRule",
    "LabelCounts",
    "VersionEvidence",
    "VersionTallies",
    "decide",
    "newcombe_interval",
    "run_compare",
    "wilson_bounds",
]

COMPARISON_KIND = "stroke-mlops/comparison"
SCHEMA_VERSION = 1
REPORTED_LEVEL = 0.95  # the per-version intervals, as the monitor reports them
MAX_TRACKED_VERSIONS = 16  # versions tallied in one window; records of more are only counted


@dataclass(frozen=True)
class LabelCounts:
    """One version's labelled rows as counts: strokes, strokes it flagged, rows it flagged."""

    positives: int
    hits: int
    flagged: int


@functools.lru_cache(maxsize=8)
def _z(two_sided_level: float) -> float:
    return float(scipy_stats.norm.ppf(0.5 + two_sided_level / 2))


def wilson_bounds(successes: int, trials: int, z: float) -> tuple[float, float]:
    """Wilson score bounds of a proportion for a given normal quantile ``z``."""
    if trials <= 0:
        return 0.0, 1.0
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(
    hits_a: int, n_a: int, hits_b: int, n_b: int, z: float
) -> tuple[float, float, float]:
    """(difference, low, high) of p_a - p_b: Newcombe's hybrid score interval (his method 10),
    from the Wilson bounds of each proportion at the same ``z``."""
    p_a, p_b = hits_a / n_a, hits_b / n_b
    low_a, high_a = wilson_bounds(hits_a, n_a, z)
    low_b, high_b = wilson_bounds(hits_b, n_b, z)
    difference = p_a - p_b
    below = math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2)
    above = math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2)
    return difference, difference - below, difference + above


@dataclass(frozen=True)
class RecallDifference:
    """Challenger minus champion recall with the interval the verdict reads."""

    value: float | None
    low: float | None
    high: float | None
    level: float  # two-sided; each bound is a one-sided test at (1 - level) / 2
    method: str = "Newcombe hybrid score (Wilson), independent samples"


def decide(
    champion: LabelCounts, challenger: LabelCounts, rule: DecisionRule
) -> tuple[Verdict, list[str], RecallDifference]:
    """The verdict, its reasons (one line each) and the recall difference (see the module doc)."""
    level = 1 - 2 * rule.alpha
    z = _z(level)
    short = [
        f"{name} has {counts.positives} labelled strokes; {rule.min_labelled_positives} needed"
        for name, counts in (("champion", champion), ("challenger", challenger))
        if counts.positives < rule.min_labelled_positives
    ]
    if short:
        return "too_few_labels", short, RecallDifference(None, None, None, level)
    value, low, high = newcombe_interval(
        challenger.hits, challenger.positives, champion.hits, champion.positives, z
    )
    difference = RecallDifference(value, low, high, level)
    shown = f"recall difference {value:+.3f} ({level:.0%} interval {low:+.3f} to {high:+.3f})"
    under = {
        name: upper
        for name, counts in (("champion", champion), ("challenger", challenger))
        if (upper := wilson_bounds(counts.hits, counts.flagged, z)[1]) < rule.precision_floor
    }
    notes = [
        f"{name} precision is clearly under the floor {rule.precision_floor:.2f} "
        f"(one-sided {1 - rule.alpha:.0%} upper bound {upper:.3f})"
        for name, upper in under.items()
    ]
    if "challenger" in under:
        return "worse", [notes[-1], shown, *notes[:-1]], difference
    if high < 0:
        return "worse", [f"{shown}: the challenger catches fewer strokes", *notes], difference
    if low > 0:
        better = [f"{shown}: the challenger catches more strokes", *notes]
        return "challenger_better", better, difference
    if low > -rule.margin:
        not_worse = [f"{shown}: not worse by more than the margin {rule.margin:.2f}", *notes]
        return "not_worse", not_worse, difference
    return (
        "too_few_labels",
        [
            f"{shown}: spans both 0 and the margin -{rule.margin:.2f}; more labels needed",
            *notes,
        ],
        difference,
    )


def _interval(hits: int, trials: int) -> Interval:
    if trials <= 0:
        return Interval(None, None, None)
    low, high = wilson_bounds(hits, trials, _z(REPORTED_LEVEL))
    return Interval(hits / trials, low, high)


def version_slice(window: WindowCounts, *, min_labelled_positives: int) -> VersionSlice:
    """One version's rows, decisions and realised performance (Wilson 95 %) for a report."""
    window.flush()
    enough = window.labelled_positives >= min_labelled_positives
    return VersionSlice(
        version=window.model_version,
        rows=window.rows,
        positive_rate=window.positive_decisions / window.rows if window.rows else None,
        labelled_rows=window.labelled_rows,
        labelled_positives=window.labelled_positives,
        recall=_interval(window.labelled_hits, window.labelled_positives)
        if enough
        else Interval(None, None, None),
        precision=_interval(window.labelled_hits, window.labelled_predicted)
        if enough
        else Interval(None, None, None),
    )


class VersionTallies:
    """Per-version counts of one pass over the log: up to ``MAX_TRACKED_VERSIONS`` versions
    (named as the registry names versions), every other record only counted."""

    def __init__(
        self, labels: LabelIndex | None, *, only: tuple[str, ...] = (), skip: str | None = None
    ) -> None:
        self.labels, self.only, self.skip = labels, only, skip
        self.windows: dict[str, WindowCounts] = {v: WindowCounts(None, v, labels) for v in only}
        self.other_version_requests = 0  # records of versions not tallied
        self.unnamed_requests = 0  # records without a usable version name

    def _window_for(self, version: Any) -> WindowCounts | None:
        """The tally of ``version``, opened on first sight; None when it is not tallied."""
        if version == self.skip:
            return None
        window = self.windows.get(version) if type(version) is str else None
        if window is None:
            if type(version) is not str or not VERSION_PATTERN.fullmatch(version):
                self.unnamed_requests += 1
                return None
            if self.only or len(self.windows) >= MAX_TRACKED_VERSIONS:
                self.other_version_requests += 1
                return None
            window = self.windows[version] = WindowCounts(None, version, self.labels)
        return window

    def add(self, record: dict[str, Any], line_hash: int | None = None) -> None:
        window = self._window_for(record.get("model_version"))
        if window is not None:
            window.add(record, line_hash)

    def add_batch(self, records: list[Any], line_hashes: list[int]) -> None:
        """A batch of :meth:`RequestLogReader.batches` (typed records or, for lines the typed
        decode refused, dicts), each record to its version's tally."""
        groups: dict[str, tuple[list[Any], list[int]]] = {}
        for record, line_hash in zip(records, line_hashes, strict=True):
            version = (
                record.get("model_version")
                if isinstance(record, dict)
                else getattr(record, "model_version", None)
            )
            window = self._window_for(version)
            if window is None:
                continue
            group = groups.setdefault(window.model_version, ([], []))
            group[0].append(record)
            group[1].append(line_hash)
        for version, (grouped, hashes) in groups.items():
            self.windows[version].add_batch(grouped, hashes)

    def flush(self) -> None:
        for window in self.windows.values():
            window.flush()


@dataclass(frozen=True)
class VersionEvidence:
    """What the log and the labels say about one version."""

    version: str
    role: Literal["champion", "challenger"]
    requests: int  # accepted and refused, each record once
    refused_requests: int
    invalid_records: int  # accepted records that failed the schema (left out)
    duplicate_records: int  # repeated lines (counted once)
    rows: int
    positive_decisions: int
    positive_rate: float | None
    labelled_rows: int
    labelled_positives: int
    labelled_flagged: int
    labelled_hits: int
    recall: Interval  # Wilson 95 %
    precision: Interval  # Wilson 95 %

    @classmethod
    def of(cls, window: WindowCounts, role: Literal["champion", "challenger"]) -> VersionEvidence:
        window.flush()
        return cls(
            version=window.model_version,
            role=role,
            requests=window.accepted_requests + window.refused_requests,
            refused_requests=window.refused_requests,
            invalid_records=window.invalid_count,
            duplicate_records=window.duplicate_records,
            rows=window.rows,
            positive_decisions=window.positive_decisions,
            positive_rate=window.positive_decisions / window.rows if window.rows else None,
            labelled_rows=window.labelled_rows,
            labelled_positives=window.labelled_positives,
            labelled_flagged=window.labelled_predicted,
            labelled_hits=window.labelled_hits,
            recall=_interval(window.labelled_hits, window.labelled_positives),
            precision=_interval(window.labelled_hits, window.labelled_predicted),
        )

    @property
    def counts(self) -> LabelCounts:
        return LabelCounts(self.labelled_positives, self.labelled_hits, self.labelled_flagged)


@dataclass(frozen=True)
class Comparison:
    """What ``compare.json`` holds; ``models promote`` and ``models rollback`` read it back."""

    champion: str
    challenger: str
    verdict: Verdict
    reasons: list[str]
    recall_difference: RecallDifference
    rule: DecisionRule
    versions: list[VersionEvidence]  # champion, then challenger
    store: str
    requests: str
    since: str | None
    until: str | None
    production: str | None  # the store's production version when compared
    production_promoted_at: str | None
    production_previous: str | None  # with promoted_at: which promotion of it was judged
    other_version_requests: int
    unreadable_lines: int
    unreadable_objects: int
    objects_read: int
    quarantined_labels: int
    conflicting_label_ids: int
    generated_at: str
    kind: str = COMPARISON_KIND
    schema_version: int = SCHEMA_VERSION
    version_intervals: str = "Wilson score, two-sided 95 %"  # each version's recall, precision
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, allow_nan=False) + "\n"

    def lines(self) -> list[str]:
        """A few readable lines: counts and rates only, never a patient's value."""
        out = [f"compare: {self.verdict}: challenger {self.challenger}, champion {self.champion}"]
        for evidence in self.versions:
            out.append(f"  {evidence.role:<10} {evidence.version}: {_evidence_line(evidence)}")
        out.extend(f"  {reason}" for reason in self.reasons)
        return out


def _shown(interval: Interval) -> str:
    if interval.value is None or interval.low is None or interval.high is None:
        return "n/a"
    return f"{interval.value:.3f} ({interval.low:.3f}–{interval.high:.3f})"


def _evidence_line(evidence: VersionEvidence) -> str:
    rate = "n/a" if evidence.positive_rate is None else f"{evidence.positive_rate:.1%}"
    return (
        f"{evidence.rows} rows, {rate} flagged; {evidence.labelled_rows} labelled "
        f"({evidence.labelled_positives} strokes); recall {_shown(evidence.recall)}, "
        f"precision {_shown(evidence.precision)}"
    )


def read_comparison(text: str, *, source: str) -> dict[str, Any]:
    """The comparison document's fields promote and rollback rely on, checked; else raise."""
    if len(text) > 1_000_000:
        raise ComparisonError(f"{source}: over 1 MB; not a comparison this tool wrote")
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ComparisonError(f"{source}: not valid JSON ({type(error).__name__})") from error
    if not isinstance(document, dict) or document.get("kind") != COMPARISON_KIND:
        raise ComparisonError(f"{source}: not a comparison (expected kind {COMPARISON_KIND!r})")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise ComparisonError(f"{source}: schema_version must be {SCHEMA_VERSION}")
    for key in ("champion", "challenger"):
        value = document.get(key)
        if not isinstance(value, str) or not VERSION_PATTERN.fullmatch(value):
            raise ComparisonError(f"{source}: field {key!r} must be a version name")
    if document.get("verdict") not in VERDICTS:
        raise ComparisonError(f"{source}: field 'verdict' must be one of {', '.join(VERDICTS)}")
    for key in ("store", "production", "production_promoted_at", "production_previous"):
        if document.get(key) is not None and not isinstance(document.get(key), str):
            raise ComparisonError(f"{source}: field {key!r} must be text or null")
    if not isinstance(document.get("store"), str):
        raise ComparisonError(f"{source}: field 'store' must name the store compared in")
    return document


def run_compare(
    store_uri: str,
    requests_uri: str,
    champion: str,
    challenger: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    rule: DecisionRule | None = None,
) -> Comparison:
    """Compare ``challenger`` with ``champion`` on the logged requests of [since, until).

    Both must be complete versions of the store. Raises ComparisonError / StorageError (one
    line) for input that cannot be used.
    """
    from stroke_mlops.registry.store import open_store

    rule = (rule or DecisionRule()).check()
    if champion == challenger:
        raise ComparisonError(f"champion and challenger are both {champion}; name two versions")
    store = open_store(store_uri)
    versions = store.list_versions()
    for version in (champion, challenger):
        if version not in versions:
            listing = ", ".join(versions[-5:]) or "none"
            raise ComparisonError(
                f"{store.uri}: no complete version {version!r} (latest versions: {listing})"
            )
    production, broken = store.production_state()
    feedback = load_feedback(store_uri)
    reader = RequestLogReader(requests_uri, since=since, until=until)
    tallies = VersionTallies(feedback.index, only=(champion, challenger))
    for record, line_hash in reader.lines():
        tallies.add(record, line_hash)
    evidence = [
        VersionEvidence.of(tallies.windows[champion], "champion"),
        VersionEvidence.of(tallies.windows[challenger], "challenger"),
    ]
    verdict, reasons, difference = decide(evidence[0].counts, evidence[1].counts, rule)
    notes = []
    if broken is not None:
        notes.append(f"the production pointer is broken: {broken}")
    elif production is None or production.version != champion:
        notes.append(
            f"the champion {champion} is not in production "
            f"({production.version if production else 'nothing'} is): promote will refuse"
        )
    if reader.unreadable_objects or reader.unreadable_lines:
        notes.append(
            f"{reader.unreadable_objects} request-log objects and {reader.unreadable_lines} "
            "lines could not be read"
        )
    return Comparison(
        champion=champion,
        challenger=challenger,
        verdict=verdict,
        reasons=reasons,
        recall_difference=difference,
        rule=rule,
        versions=evidence,
        store=store.uri,
        requests=requests_uri,
        since=None if since is None else as_utc(since).isoformat(),  # type: ignore[union-attr]
        until=None if until is None else as_utc(until).isoformat(),  # type: ignore[union-attr]
        production=production.version if production else None,
        production_promoted_at=production.promoted_at if production else None,
        production_previous=production.previous if production else None,
        other_version_requests=tallies.other_version_requests + tallies.unnamed_requests,
        unreadable_lines=reader.unreadable_lines,
        unreadable_objects=reader.unreadable_objects,
        objects_read=reader.objects_read,
        quarantined_labels=feedback.quarantined_lines,
        conflicting_label_ids=feedback.conflicting_ids,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        notes=notes,
    )


# --------------------------------------------------------------------------------------------
# Acting on a comparison: models promote / models rollback


class RefusedByEvidenceError(Exception):
    """The comparison does not allow the move asked for; production is unchanged."""


def _checked_for(store_uri: str, text: str, source: str) -> dict[str, Any]:
    document = read_comparison(text, source=source)
    if document["store"] != store_uri:
        raise RefusedByEvidenceError(
            f"{source} compared versions of {document['store']}, not of {store_uri}"
        )
    return document


def check_promotion(
    store_uri: str, version: str, text: str, *, source: str, production: Any
) -> str:
    """The champion ``version`` may be promoted over, or raise RefusedByEvidenceError (one line).

    ``production`` is the store's current pointer (or None). Allowed only when the comparison
    judged exactly this challenger, its verdict is ``challenger_better`` or ``not_worse``, and
    its champion was in production when compared and still is (same promotion)."""
    document = _checked_for(store_uri, text, source)
    champion, challenger, verdict = (document[k] for k in ("champion", "challenger", "verdict"))
    if challenger != version:
        raise RefusedByEvidenceError(
            f"{source} judged challenger {challenger}, not {version}; compare {version} first"
        )
    if verdict not in ("challenger_better", "not_worse"):
        raise RefusedByEvidenceError(
            f"{source}: verdict {verdict} for {challenger} against {champion}; promotion needs "
            "challenger_better or not_worse"
        )
    if document.get("production") != champion:
        raise RefusedByEvidenceError(
            f"{source}: the champion {champion} was not in production when compared "
            f"({document.get('production') or 'nothing'} was); compare against production"
        )
    if production is None or production.version != champion:
        current = production.version if production is not None else "nothing"
        raise RefusedByEvidenceError(
            f"production is {current}, not the champion {champion} the comparison judged "
            f"against; not promoting (compare {version} against {current})"
        )
    if (production.promoted_at, production.previous) != (
        document.get("production_promoted_at"),
        document.get("production_previous"),
    ):
        raise RefusedByEvidenceError(
            f"{champion} was promoted again at {production.promoted_at}, after the comparison "
            "was made; compare again"
        )
    return champion


def check_rollback(store_uri: str, version: str, text: str, *, source: str, production: Any) -> str:
    """Production may go back to ``version``, or raise RefusedByEvidenceError; returns the
    version being rolled back. Allowed only when the comparison's verdict is ``worse``, its
    champion is ``version`` and its challenger is what production serves now."""
    document = _checked_for(store_uri, text, source)
    champion, challenger, verdict = (document[k] for k in ("champion", "challenger", "verdict"))
    if verdict != "worse":
        raise RefusedByEvidenceError(
            f"{source}: verdict {verdict} for {challenger} against {champion}; a rollback on "
            "evidence needs worse"
        )
    if champion != version:
        raise RefusedByEvidenceError(
            f"{source} compared {challenger} with {champion}, not with {version}; "
            f"roll back to {champion} or compare again"
        )
    current = production.version if production is not None else None
    if current != challenger:
        raise RefusedByEvidenceError(
            f"production is {current or 'nothing'}, not the challenger {challenger} found worse"
            + (
                " (it was never promoted: take it out of the traffic split)"
                if current == champion
                else ""
            )
        )
    return challenger
