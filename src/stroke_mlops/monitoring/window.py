"""The window of served requests, accumulated as counts in the reference's bins (bounded memory).

Each accepted record is checked against the request-log schema first
(:mod:`stroke_mlops.monitoring.records`); one that fails is counted under its reason and left
out. A record seen twice (the same line: same ids, time and inputs, e.g. a copied log object) is
counted once: every record's 64-bit line hash is kept in one sorted array (8 bytes a record).
Feedback labels are joined on the predictor-issued ``prediction_id`` only, never on the
client's ``x-request-id``, and kept as four counts.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from stroke_mlops.data import schema
from stroke_mlops.monitoring import stats
from stroke_mlops.monitoring.labels import LabelIndex, id_key
from stroke_mlops.monitoring.records import check_accepted_record
from stroke_mlops.monitoring.reference import SCORE_COLUMN, ReferenceProfile, level_name
from stroke_mlops.monitoring.requests import prediction_row_ids, refusal_reason

__all__ = ["MAX_REASONS", "WindowCounts"]

_CHUNK_ROWS = 65_536
_FEATURES = schema.FEATURE_COLUMNS
_CATEGORICAL = (*schema.BINARY_COLUMNS, *schema.CATEGORICAL_COLUMNS)
MAX_REASONS = 64  # distinct refusal reasons kept; the rest are counted as "other"
_MASK = (1 << 64) - 1


class WindowCounts:
    """Counts of one model version's accepted rows, in the reference's bins (bounded memory).

    Without a ``profile`` only rows, decisions, labels and what was left out are counted (the
    per-version tallies of :mod:`stroke_mlops.monitoring.compare`): no feature is binned."""

    def __init__(
        self,
        profile: ReferenceProfile | None,
        model_version: str,
        labels: LabelIndex | None = None,
    ) -> None:
        self.profile = profile
        self.model_version = model_version
        self.labels = labels if labels is not None and len(labels) else None
        self.rows = 0
        self.accepted_requests = 0
        self.refused_requests = 0
        self.refusal_reasons: Counter[str] = Counter()
        self.other_version_requests = 0
        self.invalid_records: Counter[str] = Counter()  # reason (field: problem) → records
        self.duplicate_records = 0
        self.numeric = {
            name: np.zeros(p.counts.size, dtype=np.int64)
            for name, p in (profile.numeric.items() if profile is not None else ())
        }
        self.missing: Counter[str] = Counter()
        self.categorical: dict[str, Counter[Any]] = {name: Counter() for name in _CATEGORICAL}
        self.positive_decisions = 0
        # realised performance on labelled rows, as counts
        self.labelled_rows = self.labelled_positives = 0
        self.labelled_predicted = self.labelled_hits = 0
        # line hashes of the records counted, as sorted arrays of growing sizes (merged like a
        # log-structured tree, so adding n hashes costs O(n log n) and a lookup ~log n arrays)
        self._seen: list[np.ndarray] = []
        # since the last flush, flat (no per-record containers kept alive): values per feature
        # (schema order), scores, decisions; per record its line hash, rows and prediction id
        self._columns: list[list[Any]] = [[] for _ in _FEATURES]
        self._scores: list[Any] = []
        self._decisions: list[Any] = []
        self._hashes: list[int] = []
        self._hashed: list[bool] = []
        self._counts: list[int] = []
        self._ids: list[str | None] = []
        self._pending_rows = 0

    @property
    def invalid_count(self) -> int:
        return sum(self.invalid_records.values())

    def add(self, record: dict[str, Any], line_hash: int | None = None) -> None:
        """Count one request record (other versions and malformed records are only tallied)."""
        if record.get("model_version") != self.model_version:
            self.other_version_requests += 1
            return
        if record.get("status") != "ok":
            self.refused_requests += 1
            reason = refusal_reason(record)
            if reason in self.refusal_reasons or len(self.refusal_reasons) < MAX_REASONS:
                self.refusal_reasons[reason] += 1
            else:
                self.refusal_reasons["other"] += 1
            return
        checked = check_accepted_record(record)
        if isinstance(checked, str):
            self.invalid_records[checked] += 1
            return
        for values, column in zip(self._columns, checked.columns, strict=True):
            values.extend(column)
        self._scores.extend(checked.scores)
        self._decisions.extend(checked.decisions)
        self._hashes.append(0 if line_hash is None else line_hash & _MASK)
        self._hashed.append(line_hash is not None)
        self._counts.append(checked.count)
        self._ids.append(checked.prediction_id)
        self._pending_rows += checked.count
        if self._pending_rows >= _CHUNK_ROWS:
            self.flush()

    def _fresh_records(self) -> np.ndarray:
        """Which pending records were not counted before (a repeated line counts once)."""
        keys = np.array(self._hashes, dtype=np.uint64)
        hashed = np.array(self._hashed, dtype=bool)
        fresh = ~hashed  # records given without a line hash are never taken for repeats
        candidates = np.flatnonzero(hashed)
        unique, first = np.unique(keys[candidates], return_index=True)
        for seen in self._seen:
            if not unique.size:
                break
            position = np.searchsorted(seen, unique)
            position[position == seen.size] = 0
            new = seen[position] != unique
            unique, first = unique[new], first[new]
        fresh[candidates[first]] = True
        merged = unique
        while self._seen and self._seen[-1].size <= merged.size:
            merged = np.union1d(self._seen.pop(), merged)
        if merged.size:
            self._seen.append(merged)
        self.duplicate_records += int(keys.size - fresh.sum())
        return fresh

    def _bin(self, name: str, values: list[Any]) -> None:
        if self.profile is None:
            return
        array = np.array(values, dtype=np.float64)  # None (missing) becomes NaN
        self.numeric[name] += stats.bin_counts(array, self.profile.numeric[name].edges)
        self.missing[name] += int(np.isnan(array).sum())

    def _join_labels(self, fresh: np.ndarray) -> None:
        assert self.labels is not None
        keys: list[int] = []
        decisions: list[int] = []
        row = 0
        for keep, count, prediction_id in zip(fresh, self._counts, self._ids, strict=True):
            if keep and prediction_id is not None:
                keys.extend(map(id_key, prediction_row_ids(prediction_id, count)))
                decisions.extend(self._decisions[row : row + count])
            row += count
        if not keys:
            return
        found = self.labels.lookup(np.fromiter(keys, dtype=np.uint64, count=len(keys)))
        labelled = found >= 0
        truth = found[labelled] == 1
        flagged = np.asarray(decisions, dtype=np.int64)[labelled] == 1
        self.labelled_rows += int(labelled.sum())
        self.labelled_positives += int(truth.sum())
        self.labelled_predicted += int(flagged.sum())
        self.labelled_hits += int((truth & flagged).sum())

    def flush(self) -> None:
        """Count the records collected since the last flush into the reference's bins."""
        if not self._counts:
            return
        fresh = self._fresh_records()
        if self.labels is not None:
            self._join_labels(fresh)
        rows_kept: np.ndarray | None = None
        if not fresh.all():
            rows_kept = np.repeat(fresh, self._counts)
        self.accepted_requests += int(fresh.sum())

        def kept(values: list[Any]) -> list[Any]:
            if rows_kept is None:
                return values
            return [value for value, keep in zip(values, rows_kept, strict=True) if keep]

        for name, values in zip(_FEATURES, self._columns, strict=True):
            if self.profile is None:
                pass  # a tally: features are not counted
            elif name in self.categorical:
                self.categorical[name].update(kept(values))
            else:
                self._bin(name, kept(values))
            values.clear()
        scores = kept(self._scores)
        self._bin(SCORE_COLUMN, scores)
        self.rows += len(scores)
        self.positive_decisions += int(np.count_nonzero(np.asarray(kept(self._decisions))))
        self._scores, self._decisions = [], []
        self._hashes, self._hashed, self._counts, self._ids = [], [], [], []
        self._pending_rows = 0

    def category_counts(self, name: str) -> dict[str, int]:
        """Level → count (missing values left out; they count in :meth:`missing_count`)."""
        return {level_name(k): v for k, v in self.categorical[name].items() if k is not None}

    def missing_count(self, name: str) -> int:
        if name in self.categorical:
            return self.categorical[name].get(None, 0)
        return self.missing[name]
