"""Typed decoding of request-log lines: the monitor's fast path (the schema checked in C).

A line is decoded by msgspec straight into :class:`LoggedRecord`, with the request-log schema of
:mod:`stroke_mlops.monitoring.records` written as types: every feature a list of values in its
closed set or range, scores in [0, 1], decisions 0/1, an id of 32 characters, and no field the
predictor does not write. A line that decodes this way and whose row counts agree is a record
:func:`~stroke_mlops.monitoring.records.check_accepted_record` would accept with the same values
(ints read as floats count the same) once its id's characters are hex digits, which
:class:`~stroke_mlops.monitoring.window.WindowCounts` checks for a whole batch at once
(:func:`~stroke_mlops.monitoring.records.all_prediction_ids`). Any other line is parsed by
orjson and checked field by field as before, so a bad record still gets its reason: the typed
path only makes valid records cheap, it never decides what is valid.

Why the two parsers agree: every field is a typed value (nothing is skipped unparsed), so
msgspec validates all of a line's UTF-8 and numbers as orjson does; both refuse lone surrogates,
control characters, NaN and numbers beyond a double; both keep the last of repeated keys.
``tests/monitoring/test_fast_path.py`` fuzzes the two paths against each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec
import orjson

from stroke_mlops.data import schema

__all__ = ["LOGGED_TYPES", "ONE_ROW_TYPE", "LoggedRecord", "decode_line"]

# 32 characters; that they are lowercase hex digits the window checks a batch at a time
_ID = Annotated[str, msgspec.Meta(min_length=32, max_length=32)]
_SCALAR = str | float | bool | None  # fields the monitor does not read (latency, protocol, ...)
_INDICATOR = Literal[0, 1]  # decisions; 0/1 features (1.0 and 0.0 take the checked path)
_FEATURES = schema.FEATURE_COLUMNS


def _feature_type(feature: schema.Feature) -> Any:
    if isinstance(feature, schema.NumericFeature):
        number = Annotated[float, msgspec.Meta(ge=feature.minimum, le=feature.maximum)]
        return number | None if feature.nullable else number
    if isinstance(feature, schema.BinaryFeature):
        return _INDICATOR
    return Literal[feature.categories]


def _record_type(name: str, rows: Any, instances: Any) -> type[msgspec.Struct]:
    """The record as a Struct whose every column has the form ``rows(value type)``."""
    options: dict[str, Any] = {"forbid_unknown_fields": True, "gc": False}
    inputs = msgspec.defstruct(
        f"{name}Inputs",
        [(name, rows(_feature_type(schema.feature_by_name(name)))) for name in _FEATURES],
        **options,
    )
    score = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
    outputs = msgspec.defstruct(
        f"{name}Outputs",
        [
            ("probability", rows(score)),
            ("decision", rows(_INDICATOR)),
            # :explain records: the contributions behind each score
            ("base_value", list[float] | None, None),
            ("contributions", dict[str, list[float]] | None, None),
        ],
        **options,
    )
    text = str | None
    # in the order the logger writes them (msgspec looks for the next field first)
    fields: list[tuple[str, Any, Any]] = [
        ("ts", text, None),
        ("request_id", _SCALAR, None),
        ("request_id_replaced", _SCALAR, None),
        ("prediction_id", _ID | None, None),
        ("model_name", _SCALAR, None),
        ("model_version", text, None),
        ("protocol", _SCALAR, None),
        ("verb", _SCALAR, None),
        ("status", text, None),
        ("http_status", _SCALAR, None),
        ("reason", text, None),
        ("error", text, None),
        ("instances", instances | msgspec.UnsetType, msgspec.UNSET),
        ("inputs", inputs | None, None),
        ("outputs", outputs | None, None),
        ("latency_ms", _SCALAR, None),
        ("log_error", _SCALAR, None),
    ]
    return msgspec.defstruct(name, fields, **options)


def _one_value(value: Any) -> Any:
    return tuple[value]


def _values(value: Any) -> Any:
    return list[value]


# One row (nearly every request): each column a 1-tuple, so no row count needs checking.
_ONE_ROW = _record_type("OneRowRecord", _one_value, Literal[1])
# A batch of rows: lists, whose lengths are checked after decoding.
_ROWS = _record_type("RowsRecord", _values, Annotated[int, msgspec.Meta(ge=1, le=1 << 31)])
_DECODE_ONE_ROW: Callable[[bytes], Any] = msgspec.json.Decoder(_ONE_ROW).decode
_DECODE_ROWS: Callable[[bytes], Any] = msgspec.json.Decoder(_ROWS).decode

# Either Struct; callers read the same attributes of both.
LoggedRecord = Any
LOGGED_TYPES = (_ONE_ROW, _ROWS)
ONE_ROW_TYPE = _ONE_ROW


def _rows_agree(record: Any) -> bool:
    """Whether an accepted batch record's columns all have one value per score."""
    inputs, outputs = record.inputs, record.outputs
    if inputs is None or outputs is None:
        return False
    count = len(outputs.probability)
    if count == 0 or len(outputs.decision) != count:
        return False
    if record.instances is not msgspec.UNSET and record.instances != count:
        return False
    return all(len(getattr(inputs, name)) == count for name in _FEATURES)


def decode_line(line: bytes) -> Any:
    """A typed :class:`LoggedRecord` when the line passes the typed schema (and, for an accepted
    request, its row counts agree); else what ``orjson.loads`` makes of it (a dict to check
    field by field, or another JSON value). Raises ``orjson.JSONDecodeError`` for a line that
    is not JSON."""
    try:
        record = _DECODE_ONE_ROW(line)
    except msgspec.DecodeError:
        pass
    else:
        if record.status != "ok" or (record.inputs is not None and record.outputs is not None):
            return record
        return orjson.loads(line)
    try:
        record = _DECODE_ROWS(line)
    except msgspec.DecodeError:
        return orjson.loads(line)
    if record.status != "ok" or _rows_agree(record):
        return record
    return orjson.loads(line)
