"""The monitor's result: typed dataclasses that round-trip through ``summary.json``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Verdict = Literal["drift", "no drift", "insufficient_data", "not tested"]
Recommendation = Literal["retrain", "none", "insufficient_data", "data_quality_alarm"]


@dataclass(frozen=True)
class Distribution:
    """Shares per bin of the reference and of the window, for the report's charts."""

    labels: list[str]
    reference: list[float]
    window: list[float]


@dataclass(frozen=True)
class DriftResult:
    """One registered drift test's result (see :mod:`stroke_mlops.monitoring.drift_tests`)."""

    name: str  # the registered test's name: the feature, "bmi (missing rate)", "score", …
    kind: str  # "numeric", "categorical", "missing rate", "score", "decision rate", …
    section: str  # "features" or "prediction": where the summary and the report list it
    test: str
    statistic: float
    p_value: float
    adjusted_p_value: float  # Holm, over every test of the family
    distance: float
    distance_name: str
    verdict: Verdict
    note: str = ""
    distribution: Distribution | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftResult:
        dist = data.get("distribution")
        return cls(**{**data, "distribution": Distribution(**dist) if dist else None})


@dataclass(frozen=True)
class PredictionDrift:
    """The served scores and decisions against the reference set's."""

    checks: list[DriftResult]  # the registered tests of section "prediction"
    reference_positive_rate: float
    window_positive_rate: float
    threshold: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PredictionDrift:
        return cls(
            **{
                **data,
                "checks": [DriftResult.from_dict(c) for c in data["checks"]],
            }
        )


@dataclass(frozen=True)
class DataQuality:
    """Missing values per feature, refused requests and why, what could not be used and why
    (reasons name a field and a problem, never a value), and the alarms they raised."""

    missing_rate: dict[str, float]  # feature → share of window rows without a value
    reference_missing_rate: dict[str, float]
    accepted_requests: int
    refused_requests: int
    refused_rate: float  # refused / (accepted + refused) requests of this version
    refusal_reasons: dict[str, int]
    unreadable_records: int  # lines that are not JSON objects (or too long)
    other_version_requests: int  # logged by another model version (not judged here)
    objects_read: int
    unreadable_objects: int = 0  # not a regular file, or failed while read
    invalid_records: dict[str, int] = field(default_factory=dict)  # "field: problem" → count
    duplicate_records: int = 0  # the same record line again (counted once)
    quarantined_labels: int = 0  # stored feedback lines that are not valid labels
    conflicting_label_ids: int = 0  # ids whose stored labels disagree (left out)
    alarms: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Interval:
    value: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Performance:
    """Realised recall and precision on the window's requests that have feedback labels."""

    status: Literal["ok", "too few labels"]
    labelled_rows: int
    labelled_positives: int
    min_labelled_positives: int
    recall: Interval
    precision: Interval
    recall_floor: float
    below_floor: bool  # the whole recall interval lies under the floor
    message: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Performance:
        return cls(
            **{
                **data,
                "recall": Interval(**data["recall"]),
                "precision": Interval(**data["precision"]),
            }
        )


@dataclass(frozen=True)
class VersionSlice:
    """One model version's share of the window (the report's per-version section): its rows,
    positive-decision rate and realised performance (Wilson 95 %; n/a under the label minimum)."""

    version: str
    rows: int
    positive_rate: float | None
    labelled_rows: int
    labelled_positives: int
    recall: Interval
    precision: Interval

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VersionSlice:
        return cls(
            **{
                **data,
                "recall": Interval(**data["recall"]),
                "precision": Interval(**data["precision"]),
            }
        )


@dataclass(frozen=True)
class MonitorSummary:
    """What ``summary.json`` holds; ``drift_detected`` and ``recommendation`` drive retraining."""

    model_version: str
    since: str | None
    until: str | None
    rows: int
    min_rows: int
    reference_rows: int
    alpha: float
    correction: str
    drift_detected: bool
    recommendation: Recommendation
    reasons: list[str]
    features: list[DriftResult]
    prediction: PredictionDrift
    data_quality: DataQuality
    performance: Performance
    generated_at: str
    seconds: float = 0.0
    drifted_features: list[str] = field(default_factory=list)
    # every model version the window holds (production first), when it holds more than one
    versions: list[VersionSlice] = field(default_factory=list)
    # realised performance of each other model version in the window (a challenger beside
    # production; tallied by monitoring.compare.VersionTallies), by version
    other_versions: dict[str, Performance] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MonitorSummary:
        return cls(
            **{
                **data,
                "features": [DriftResult.from_dict(f) for f in data["features"]],
                "prediction": PredictionDrift.from_dict(data["prediction"]),
                "data_quality": DataQuality(**data["data_quality"]),
                "performance": Performance.from_dict(data["performance"]),
                "versions": [VersionSlice.from_dict(v) for v in data.get("versions", [])],
                "other_versions": {
                    version: Performance.from_dict(performance)
                    for version, performance in (data.get("other_versions") or {}).items()
                },
            }
        )

    @classmethod
    def from_json(cls, text: str) -> MonitorSummary:
        return cls.from_dict(json.loads(text))
