"""The request-log record schema, checked record by record before anything is counted.

A log object is input the loop did not produce itself (it may be damaged, copied or written by
hand), so every accepted record is checked against the same schema the predictor enforces on
requests: each feature a list of one value per row, numbers finite and in range, indicators 0/1,
categories from the closed set, a missing value only where the feature allows one, scores in
[0, 1], decisions 0/1. A record that fails is left out and counted under a short reason that
names the field and what was wrong, never the value.
"""

from __future__ import annotations

import math
import re
from typing import Any

from stroke_mlops.data import schema

__all__ = [
    "BAD_PREDICTION_ID",
    "PREDICTION_ID",
    "CheckedRecord",
    "all_prediction_ids",
    "check_accepted_record",
]

# What the predictor issues for each prediction: 32 lowercase hex digits (uuid4().hex).
PREDICTION_ID = re.compile(r"[0-9a-f]{32}")
BAD_PREDICTION_ID = "prediction_id: not an id the predictor issues"
_HEX_DIGITS = b"0123456789abcdef"


def all_prediction_ids(ids: list[str | None]) -> bool:
    """Whether every id given (None: no id) is one :data:`PREDICTION_ID` matches, for ids known
    to be strings of 32 characters: checked for a whole batch at once."""
    joined = "".join(filter(None, ids))
    return joined.isascii() and not joined.encode().translate(None, _HEX_DIGITS)


_NUMERIC = {f.name: (f.minimum, f.maximum, f.nullable) for f in schema.NUMERIC_FEATURES}
_BINARY = frozenset(schema.BINARY_COLUMNS)
_LEVELS = {f.name: frozenset(f.categories) for f in schema.CATEGORICAL_FEATURES}
_FEATURES = schema.FEATURE_COLUMNS


class CheckedRecord:
    """An accepted record that passed the schema: columns in schema order, outputs, row count."""

    __slots__ = ("columns", "count", "decisions", "prediction_id", "scores")

    def __init__(
        self,
        columns: list[list[Any]],
        scores: list[float],
        decisions: list[int],
        count: int,
        prediction_id: str | None,
    ) -> None:
        self.columns, self.scores, self.decisions = columns, scores, decisions
        self.count, self.prediction_id = count, prediction_id


def _number_problem(value: Any, low: float, high: float, nullable: bool) -> str | None:
    kind = type(value)
    if kind is float or kind is int:
        if low <= value <= high:
            return None
        return "out of range" if math.isfinite(value) else "not a finite number"
    if value is None:
        return None if nullable else "missing"
    return "not a number"


def _binary_problem(value: Any) -> str | None:
    if (type(value) is int or type(value) is float) and (value == 0 or value == 1):
        return None
    return "missing" if value is None else "not 0 or 1"


def _level_problem(value: Any, levels: frozenset[str]) -> str | None:
    if type(value) is str and value in levels:
        return None
    return "missing" if value is None else "not a known category"


# (name, kind, bounds or levels) in schema order: 0 number, 1 indicator, 2 category
_SPEC: list[tuple[str, int, Any]] = [
    (name, 0, _NUMERIC[name]) if name in _NUMERIC else (name, 1, None) if name in _BINARY
    else (name, 2, _LEVELS[name])
    for name in _FEATURES
]  # fmt: skip


def _column_problem(kind: int, spec: Any, column: list[Any]) -> str | None:
    if kind == 0:
        low, high, nullable = spec
        for value in column:
            if (type(value) is float or type(value) is int) and low <= value <= high:
                continue
            problem = _number_problem(value, low, high, nullable)
            if problem is not None:
                return problem
        return None
    if kind == 1:
        for value in column:
            if (problem := _binary_problem(value)) is not None:
                return problem
        return None
    for value in column:
        if type(value) is not str or value not in spec:
            return _level_problem(value, spec)
    return None


def _single_row_columns(inputs: dict[str, Any]) -> list[list[Any]] | None:
    """The fast path for a one-row record (nearly all of them): its columns when every value is
    valid, else None (the general path then finds the reason)."""
    columns = []
    for name, kind, spec in _SPEC:
        column = inputs.get(name)
        if type(column) is not list or len(column) != 1:
            return None
        value = column[0]
        if kind == 0:
            if not (
                ((type(value) is float or type(value) is int) and spec[0] <= value <= spec[1])
                or (value is None and spec[2])
            ):
                return None
        elif kind == 1:
            if not (value == 0 or value == 1) or not (type(value) is int or type(value) is float):
                return None
        elif type(value) is not str or value not in spec:
            return None
        columns.append(column)
    return columns


def check_accepted_record(record: dict[str, Any]) -> CheckedRecord | str:
    """The record's checked content, or a reason (field and problem) why it is left out."""
    inputs, outputs = record.get("inputs"), record.get("outputs")
    if type(inputs) is not dict or type(outputs) is not dict:
        return "record: inputs or outputs missing"
    scores, decisions = outputs.get("probability"), outputs.get("decision")
    if type(scores) is not list or type(decisions) is not list:
        return "outputs: not lists"
    count = len(scores)
    instances = record.get("instances", count)
    if count == 0 or len(decisions) != count or type(instances) is not int or instances != count:
        return "outputs: row counts differ"
    fast = _single_row_columns(inputs) if count == 1 else None
    columns = fast or []
    for name, kind, spec in _SPEC if fast is None else ():
        column = inputs.get(name)
        if type(column) is not list:
            return f"{name}: missing" if column is None else f"{name}: not a list"
        if len(column) != count:
            return f"{name}: row counts differ"
        problem = _column_problem(kind, spec, column)
        if problem is not None:
            return f"{name}: {problem}"
        columns.append(column)
    for score in scores:
        if not ((type(score) is float or type(score) is int) and 0.0 <= score <= 1.0):
            return "probability: not a number in [0, 1]"
    for decision in decisions:
        if type(decision) is not int or (decision != 0 and decision != 1):
            return "decision: not 0 or 1"
    prediction_id = record.get("prediction_id")
    if prediction_id is not None and (
        type(prediction_id) is not str or not PREDICTION_ID.fullmatch(prediction_id)
    ):
        return BAD_PREDICTION_ID
    return CheckedRecord(columns, scores, decisions, count, prediction_id)
