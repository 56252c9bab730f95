"""The window of served requests, accumulated as counts in the reference's bins (bounded memory)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from stroke_mlops.data import schema
from stroke_mlops.monitoring import stats
from stroke_mlops.monitoring.feedback import Outcome
from stroke_mlops.monitoring.reference import SCORE_COLUMN, ReferenceProfile, level_name
from stroke_mlops.monitoring.requests import instance_ids, refusal_reason

__all__ = ["WindowCounts"]

_CHUNK_ROWS = 65_536
_FEATURES = schema.FEATURE_COLUMNS
_CATEGORICAL = (*schema.BINARY_COLUMNS, *schema.CATEGORICAL_COLUMNS)


class WindowCounts:
    """Counts of one model version's accepted rows, in the reference's bins (bounded memory)."""

    def __init__(
        self,
        profile: ReferenceProfile,
        model_version: str,
        feedback: dict[str, Outcome] | None = None,
    ) -> None:
        self.profile = profile
        self.model_version = model_version
        self.feedback = feedback or {}
        self.rows = 0
        self.accepted_requests = 0
        self.refused_requests = 0
        self.refusal_reasons: Counter[str] = Counter()
        self.other_version_requests = 0
        self.unreadable_records = 0
        self.numeric = {
            name: np.zeros(p.counts.size, dtype=np.int64) for name, p in profile.numeric.items()
        }
        self.missing: Counter[str] = Counter()
        self.categorical: dict[str, Counter[Any]] = {name: Counter() for name in _CATEGORICAL}
        self.positive_decisions = 0
        self.labelled: list[tuple[int, float, int]] = []  # (stroke, score, decision)
        # values since the last flush: one list per feature (schema order), then the outputs
        self._columns: list[list[Any]] = [[] for _ in _FEATURES]
        self._scores: list[Any] = []
        self._decisions: list[Any] = []
        self._pending = 0

    def add(self, record: dict[str, Any]) -> None:
        """Count one request record (other versions and malformed records are only tallied)."""
        if record.get("model_version") != self.model_version:
            self.other_version_requests += 1
            return
        if record.get("status") != "ok":
            self.refused_requests += 1
            self.refusal_reasons[refusal_reason(record)] += 1
            return
        try:
            inputs, outputs = record["inputs"], record["outputs"]
            columns = [inputs[name] for name in _FEATURES]
            scores, decisions = outputs["probability"], outputs["decision"]
            count = len(scores)
            if (
                len(decisions) != count
                or record.get("instances", count) != count
                or list(map(len, columns)).count(count) != len(columns)
            ):
                raise ValueError("column lengths differ")
        except (KeyError, TypeError, ValueError):
            self.unreadable_records += 1
            return
        self.accepted_requests += 1
        for values, column in zip(self._columns, columns, strict=True):
            values.extend(column)
        self._scores.extend(scores)
        self._decisions.extend(decisions)
        if self.feedback:
            for index, row_id in enumerate(instance_ids(record, count)):
                outcome = self.feedback.get(row_id)
                if outcome is not None:
                    self.labelled.append(
                        (outcome.stroke, float(scores[index]), int(decisions[index]))
                    )
        self.rows += count
        self._pending += count
        if self._pending >= _CHUNK_ROWS:
            self.flush()

    def _bin(self, name: str, values: list[Any]) -> None:
        array = np.array(values, dtype=np.float64)  # None (missing) becomes NaN
        self.numeric[name] += stats.bin_counts(array, self.profile.numeric[name].edges)
        self.missing[name] += int(np.isnan(array).sum())

    def flush(self) -> None:
        """Count the values collected since the last flush into the reference's bins."""
        for name, values in zip(_FEATURES, self._columns, strict=True):
            if values:
                if name in self.categorical:
                    self.categorical[name].update(values)
                else:
                    self._bin(name, values)
                values.clear()
        if self._scores:
            self._bin(SCORE_COLUMN, self._scores)
            self._scores.clear()
        if self._decisions:
            self.positive_decisions += int(np.count_nonzero(np.asarray(self._decisions)))
            self._decisions.clear()
        self._pending = 0

    def category_counts(self, name: str) -> dict[str, int]:
        """Level → count (missing values left out; they count in :meth:`missing_count`)."""
        return {level_name(k): v for k, v in self.categorical[name].items() if k is not None}

    def missing_count(self, name: str) -> int:
        if name in self.categorical:
            return self.categorical[name].get(None, 0)
        return self.missing[name]
