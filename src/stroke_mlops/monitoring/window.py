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
from itertools import chain, compress
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np

from stroke_mlops.data import schema
from stroke_mlops.monitoring import stats
from stroke_mlops.monitoring.labels import LabelIndex, id_key
from stroke_mlops.monitoring.logged import LOGGED_TYPES, ONE_ROW_TYPE
from stroke_mlops.monitoring.records import (
    BAD_PREDICTION_ID,
    PREDICTION_ID,
    all_prediction_ids,
    check_accepted_record,
)
from stroke_mlops.monitoring.reference import SCORE_COLUMN, ReferenceProfile, level_name
from stroke_mlops.monitoring.requests import prediction_row_ids, refusal_reason

__all__ = ["MAX_REASONS", "WindowCounts"]

_CHUNK_ROWS = 65_536
_FEATURES = schema.FEATURE_COLUMNS
_CATEGORICAL = (*schema.BINARY_COLUMNS, *schema.CATEGORICAL_COLUMNS)
MAX_REASONS = 64  # distinct refusal reasons kept; the rest are counted as "other"
_MASK = (1 << 64) - 1
_SIGN = 1 << 63
_INPUTS, _OUTPUTS, _ID = attrgetter("inputs"), attrgetter("outputs"), attrgetter("prediction_id")
_SCORES, _DECISIONS = attrgetter("probability"), attrgetter("decision")
_COLUMN_OF = [attrgetter(name) for name in _FEATURES]
_FIRST = itemgetter(0)
_NUMBER_COLUMNS = frozenset(i for i, name in enumerate(_FEATURES) if name not in _CATEGORICAL)
_NULLABLE_COLUMNS = frozenset(
    _FEATURES.index(f.name) for f in schema.NUMERIC_FEATURES if f.nullable
)


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
        self._hashes: list[int] = []  # as signed 64-bit values
        self._hashed: list[bool] = []
        self._counts: list[int] = []
        self._ids: list[str | None] = []
        self._pending_rows = 0
        # typed records (RequestLogReader.batches) of this version, accepted, since the last flush
        self._typed: list[Any] = []
        self._typed_hashes: list[int] = []
        # numbers and line hashes listed above, turned into arrays batch by batch while their
        # objects are still in the CPU's caches (numeric columns by index, scores, hashes)
        self._number_parts: dict[int, list[np.ndarray]] = {i: [] for i in _NUMBER_COLUMNS}
        self._score_parts: list[np.ndarray] = []
        self._hash_parts: list[np.ndarray] = []

    @property
    def invalid_count(self) -> int:
        return sum(self.invalid_records.values())

    def add(self, record: dict[str, Any], line_hash: int | None = None) -> None:
        """Count one request record (other versions and malformed records are only tallied)."""
        if record.get("model_version") != self.model_version:
            self.other_version_requests += 1
            return
        if record.get("status") != "ok":
            self._count_refusal(record)
            return
        checked = check_accepted_record(record)
        if isinstance(checked, str):
            self.invalid_records[checked] += 1
            return
        for values, column in zip(self._columns, checked.columns, strict=True):
            values.extend(column)
        self._scores.extend(checked.scores)
        self._decisions.extend(checked.decisions)
        key = 0 if line_hash is None else line_hash & _MASK
        self._hashes.append(key - _SIGN - _SIGN if key >= _SIGN else key)
        self._hashed.append(line_hash is not None)
        self._counts.append(checked.count)
        self._ids.append(checked.prediction_id)
        self._pending_rows += checked.count
        if self._pending_rows >= _CHUNK_ROWS:
            self.flush()

    def _count_refusal(self, record: dict[str, Any]) -> None:
        self.refused_requests += 1
        reason = refusal_reason(record)
        if reason in self.refusal_reasons or len(self.refusal_reasons) < MAX_REASONS:
            self.refusal_reasons[reason] += 1
        else:
            self.refusal_reasons["other"] += 1

    def add_batch(self, records: list[Any], line_hashes: list[int]) -> None:
        """Count a batch of :meth:`RequestLogReader.batches`: each record as :meth:`add` would
        (a typed record has passed the schema already, but for its id's hex digits)."""
        version = self.model_version
        keep, keep_hash = self._typed.append, self._typed_hashes.append
        rows = 0
        for record, line_hash in zip(records, line_hashes, strict=True):
            kind = type(record)
            if kind not in LOGGED_TYPES:
                self.add(record, line_hash)
            elif record.model_version != version:
                self.other_version_requests += 1
            elif record.status != "ok":
                self._count_refusal({"reason": record.reason, "error": record.error})
            else:
                keep(record)
                keep_hash(line_hash)
                rows += 1 if kind is ONE_ROW_TYPE else len(record.outputs.probability)
        self._unpack_typed(single_rows=rows == len(self._typed))  # while the batch is in cache
        self._pending_rows += rows
        if self._pending_rows >= _CHUNK_ROWS:
            self.flush()

    def _unpack_typed(self, *, single_rows: bool = False) -> None:
        """Move the pending typed records into the flat per-feature lists that :meth:`add` fills
        (``single_rows``: every record has one row, so each column is a 1-tuple)."""
        records = self._typed
        if not records:
            return
        ids = list(map(_ID, records))
        if not all_prediction_ids(ids):  # rare: leave out the records whose id is not hex
            good = [i is None or PREDICTION_ID.fullmatch(i) is not None for i in ids]
            self.invalid_records[BAD_PREDICTION_ID] += good.count(False)
            records = list(compress(records, good))
            self._typed_hashes = list(compress(self._typed_hashes, good))
            ids = list(compress(ids, good))
        self._seal()  # what add() listed goes first, as it came first
        inputs = list(map(_INPUTS, records))
        outputs = list(map(_OUTPUTS, records))
        flat: Any = (lambda columns: map(_FIRST, columns)) if single_rows else chain.from_iterable
        for index, column_of in enumerate(_COLUMN_OF):
            values = flat(map(column_of, inputs))
            if index in _NULLABLE_COLUMNS:  # None becomes NaN
                self._number_parts[index].append(np.array(list(values), dtype=np.float64))
            elif index in _NUMBER_COLUMNS:
                self._number_parts[index].append(np.fromiter(values, dtype=np.float64))
            else:
                self._columns[index].extend(values)
        self._score_parts.append(np.fromiter(flat(map(_SCORES, outputs)), dtype=np.float64))
        self._decisions.extend(flat(map(_DECISIONS, outputs)))
        # hash() values are signed 64-bit already
        self._hash_parts.append(np.array(self._typed_hashes, dtype=np.int64))
        self._hashed.extend([True] * len(records))
        if single_rows:
            self._counts.extend([1] * len(records))
        else:
            self._counts.extend(map(len, map(_SCORES, outputs)))
        self._ids.extend(ids)
        self._typed, self._typed_hashes = [], []

    def _seal(self) -> None:
        """Turn the numbers and line hashes :meth:`add` listed into arrays (None becomes NaN)."""
        for index, parts in self._number_parts.items():
            if values := self._columns[index]:
                parts.append(np.array(values, dtype=np.float64))
                values.clear()
        if self._scores:
            self._score_parts.append(np.array(self._scores, dtype=np.float64))
            self._scores.clear()
        if self._hashes:
            self._hash_parts.append(np.array(self._hashes, dtype=np.int64))
            self._hashes.clear()

    def _fresh_records(self) -> np.ndarray:
        """Which pending records were not counted before (a repeated line counts once)."""
        keys = np.concatenate(self._hash_parts).view(np.uint64)
        self._hash_parts.clear()
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
            # disjoint sorted arrays: their union is their merge (a stable sort merges runs)
            merged = np.sort(np.concatenate((self._seen.pop(), merged)), kind="stable")
        if merged.size:
            self._seen.append(merged)
        self.duplicate_records += int(keys.size - fresh.sum())
        return fresh

    def _bin(self, name: str, array: np.ndarray) -> None:
        if self.profile is None:  # a tally: features are not counted
            return
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
        self._unpack_typed()
        self._seal()
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

        def kept_numbers(parts: list[np.ndarray]) -> np.ndarray:
            numbers = np.concatenate(parts)
            parts.clear()
            return numbers if rows_kept is None else numbers[rows_kept]

        for index, (name, values) in enumerate(zip(_FEATURES, self._columns, strict=True)):
            if name in self.categorical:
                if self.profile is not None:  # a tally does not count features
                    self.categorical[name].update(kept(values))
                values.clear()
            else:
                self._bin(name, kept_numbers(self._number_parts[index]))
        scores = kept_numbers(self._score_parts)
        self._bin(SCORE_COLUMN, scores)
        self.rows += len(scores)
        self.positive_decisions += int(np.count_nonzero(np.asarray(kept(self._decisions))))
        self._scores, self._decisions = [], []
        self._hashed, self._counts, self._ids = [], [], []
        self._pending_rows = 0

    def category_counts(self, name: str) -> dict[str, int]:
        """Level → count (missing values left out; they count in :meth:`missing_count`)."""
        return {level_name(k): v for k, v in self.categorical[name].items() if k is not None}

    def missing_count(self, name: str) -> int:
        if name in self.categorical:
            return self.categorical[name].get(None, 0)
        return self.missing[name]
