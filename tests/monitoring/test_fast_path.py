"""The monitor's fast path (typed decoding, batches) against the checked path it speeds up.

``RequestLogReader.batches`` + ``WindowCounts.add_batch`` must count a window exactly as
``RequestLogReader.lines`` + ``WindowCounts.add`` do, whatever the lines: valid records, records
one field off, JSON corner cases and plain bytes. The predictor's own records must take the
typed path (a field the logger adds without the typed schema knowing it would quietly send every
record down the slow path).
"""

from __future__ import annotations

import json
from array import array
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stroke_mlops.data import schema
from stroke_mlops.monitoring.labels import LabelIndex, id_key
from stroke_mlops.monitoring.logged import LOGGED_TYPES, decode_line
from stroke_mlops.monitoring.reference import ReferenceProfile, profile_reference
from stroke_mlops.monitoring.replay import as_instances
from stroke_mlops.monitoring.requests import RequestLogReader
from stroke_mlops.monitoring.window import WindowCounts
from tests.monitoring.conftest import MonitoredStore, ServeRows
from tests.monitoring.test_fuzz_loop_inputs import json_values

ID = "0123456789abcdef" * 2
VALID: dict[str, Any] = {
    "ts": "2026-01-01T12:00:00.000+00:00",
    "request_id": "client-1",
    "prediction_id": ID,
    "model_name": "stroke",
    "model_version": "v",
    "protocol": "v1",
    "status": "ok",
    "instances": 1,
    "inputs": {
        "gender": ["Male"], "age": [61.0], "hypertension": [0], "heart_disease": [1],
        "ever_married": ["Yes"], "work_type": ["Private"], "Residence_type": ["Urban"],
        "avg_glucose_level": [202.5], "bmi": [None], "smoking_status": ["smokes"],
    },
    "outputs": {"probability": [0.31], "decision": [1]},
    "latency_ms": 1.5,
}  # fmt: skip
BATCH: dict[str, Any] = {
    **VALID,
    "prediction_id": ID[::-1],
    "instances": 2,
    "inputs": {name: column * 2 for name, column in VALID["inputs"].items()},
    "outputs": {"probability": [0.2, 0.9], "decision": [0, 1]},
}
REFUSED = {"ts": VALID["ts"], "model_version": "v", "status": "invalid", "http_status": 400,
           "reason": "invalid value", "error": 'field "age": not a number'}  # fmt: skip
WINDOW = (datetime(2026, 1, 1, 6, tzinfo=UTC), datetime(2026, 1, 1, 18, tzinfo=UTC))


@pytest.fixture(scope="module")
def profile(monitored_store: MonitoredStore) -> ReferenceProfile:
    return profile_reference(monitored_store.reference, threshold=0.5)


def _labels() -> LabelIndex:
    keys = [id_key(i) for i in (ID, f"{ID[::-1]}:0", f"{ID[::-1]}:1")]
    index, _ = LabelIndex.build(array("Q", keys), array("b", [1, 0, 1]))
    return index


def _counted(folder: Path, profile: ReferenceProfile, *, fast: bool, bounded: bool) -> dict:
    since, until = WINDOW if bounded else (None, None)
    reader = RequestLogReader(str(folder), since=since, until=until, max_line_bytes=4000)
    window = WindowCounts(profile, "v", _labels())
    if fast:
        for records, hashes in reader.batches(size=3):
            window.add_batch(records, hashes)
    else:
        for record, line_hash in reader.lines():
            window.add(record, line_hash)
    window.flush()
    return {
        "reader": (reader.objects_read, reader.unreadable_objects, reader.unreadable_lines,
                   reader.outside_window),
        "requests": (window.rows, window.accepted_requests, window.refused_requests,
                     window.other_version_requests, window.duplicate_records,
                     window.positive_decisions),
        "reasons": (dict(window.refusal_reasons), dict(window.invalid_records)),
        "labels": (window.labelled_rows, window.labelled_positives, window.labelled_predicted,
                   window.labelled_hits),
        "numeric": {name: counts.tolist() for name, counts in window.numeric.items()},
        "levels": {name: window.category_counts(name) for name in window.categorical},
        "missing": {name: window.missing_count(name) for name in schema.FEATURE_COLUMNS},
    }  # fmt: skip


def _assert_same_counts(lines: list[bytes], folder: Path, profile: ReferenceProfile) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (folder / "b.jsonl").write_bytes(b"\n".join(lines[::2]))  # repeats, no final newline
    for bounded in (False, True):
        slow = _counted(folder, profile, fast=False, bounded=bounded)
        assert _counted(folder, profile, fast=True, bounded=bounded) == slow


def _edit(record: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    edited = json.loads(json.dumps(record))
    target = edited
    for key in path[:-1]:
        target = target.setdefault(key, {}) if isinstance(target, dict) else target
    if isinstance(target, dict):
        target[path[-1]] = value
    return edited


VALID_LINE = orjson.dumps(VALID)
CORNER_CASES = [
    VALID_LINE,
    orjson.dumps(BATCH),
    orjson.dumps(REFUSED),
    VALID_LINE.replace(b'"client-1"', b'"\\ud800"'),  # lone surrogate: not JSON to either
    VALID_LINE.replace(b'"client-1"', b'"\xff"'),  # not UTF-8
    VALID_LINE.replace(b'"client-1"', b'"caf\xc3\xa9"'),  # UTF-8
    VALID_LINE.replace(b'"latency_ms":1.5', b'"latency_ms":1e400'),  # beyond a double
    VALID_LINE.replace(b'"latency_ms":1.5', b'"latency_ms":' + b"9" * 400),
    VALID_LINE.replace(b'"latency_ms":1.5', b'"latency_ms":[1.5]'),
    VALID_LINE.replace(b'"latency_ms":1.5', b'"extra":1'),  # a field the logger never writes
    VALID_LINE.replace(b'"latency_ms":1.5', b'"extra":1e400'),
    VALID_LINE.replace(b'"latency_ms":1.5', b'"extra":"\xff"'),
    VALID_LINE.replace(b'"status":"ok"', b'"status":"invalid","status":"ok"'),  # last key wins
    VALID_LINE.replace(b'"status":"ok"', b'"status":"ok","status":"invalid"'),
    VALID_LINE.replace(b'"status":"ok"', b'"status":"ok","status":7'),
    VALID_LINE.replace(b'"hypertension":[0]', b'"hypertension":[0.0]'),  # accepted, checked
    VALID_LINE.replace(b'"hypertension":[0]', b'"hypertension":[false]'),
    VALID_LINE.replace(b'"age":[61.0]', b'"age":[61]'),  # an int where a float is logged
    VALID_LINE.replace(b'"age":[61.0]', b'"age":[-0.0]'),
    VALID_LINE.replace(b'"age":[61.0]', b'"age":[120.0000000000001]'),
    VALID_LINE.replace(b'"decision":[1]', b'"decision":[1.0]'),
    VALID_LINE.replace(b'"probability":[0.31]', b'"probability":[1]'),
    VALID_LINE.replace(b'"instances":1', b'"instances":2'),
    VALID_LINE.replace(b'"instances":1', b'"instances":true'),
    VALID_LINE.replace(b'"instances":1,', b""),
    VALID_LINE.replace(ID.encode(), ID.encode() + b"\\n"),  # an id and a newline
    VALID_LINE.replace(ID.encode(), ID.upper().encode()),  # 32 characters, not all hex digits
    VALID_LINE.replace(ID.encode(), "é".encode() * 32),
    VALID_LINE.replace(ID.encode(), ID[:-1].encode()),
    VALID_LINE.replace(b'"prediction_id":"' + ID.encode() + b'"', b'"prediction_id":null'),
    VALID_LINE.replace(b'"outputs"', b'"outputz"'),
    VALID_LINE.replace(b'"model_version":"v"', b'"model_version":"w"'),
    VALID_LINE.replace(b'"2026-01-01T12', b'"2026-01-01T05'),  # before the bounded window
    VALID_LINE.replace(b'"2026-01-01T12:00:00.000+00:00"', b'"2026-01-01T13:00:00+01:00"'),
    orjson.dumps(_edit(BATCH, ("inputs", "age"), [61.0])),  # one age for two rows
    orjson.dumps(_edit(BATCH, ("outputs", "decision"), [1])),
    VALID_LINE + b" \r",
    b" \t",
    b"[1, 2]",
    b'"text"',
    b"{" * 2000 + b"}" * 2000,
    VALID_LINE[:-9],  # truncated
]


def test_the_fast_path_counts_corner_cases_as_the_checked_path_does(
    profile: ReferenceProfile, tmp_path: Path
) -> None:
    _assert_same_counts(CORNER_CASES, tmp_path / "logs", profile)


def test_valid_records_take_the_typed_path_and_bad_ones_do_not() -> None:
    for good in (VALID, BATCH, REFUSED):
        assert type(decode_line(orjson.dumps(good))) in LOGGED_TYPES
    for bad in CORNER_CASES[3:]:
        try:
            decoded = decode_line(bad)
        except orjson.JSONDecodeError:
            continue
        if type(decoded) in LOGGED_TYPES:  # typed: then orjson reads the same record
            assert isinstance(orjson.loads(bad), dict)


def _line(edits: list[tuple[tuple[str, ...], Any]], base: dict[str, Any], kind: int) -> bytes:
    record = base
    for path, value in edits:
        record = _edit(record, path, value)
    # json (not orjson): integers beyond 64 bits, and NaN and Infinity as bare words
    return json.dumps(record, separators=(",", ":") if kind else None).encode()


_paths = st.sampled_from(
    [("inputs", name) for name in schema.FEATURE_COLUMNS]
    + [("outputs", "probability"), ("outputs", "decision"), ("instances",), ("status",),
       ("prediction_id",), ("ts",), ("model_version",), ("inputs",), ("outputs",),
       ("latency_ms",), ("reason",), ("error",), ("extra",)]
)  # fmt: skip
_lines = st.one_of(
    st.builds(
        _line,
        st.lists(st.tuples(_paths, json_values | st.lists(json_values, max_size=3)), max_size=2),
        st.sampled_from([VALID, BATCH, REFUSED]),
        st.integers(0, 1),
    ),
    st.sampled_from(CORNER_CASES),
    st.binary(max_size=60),
)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(lines=st.lists(_lines, min_size=1, max_size=8))
def test_the_fast_path_counts_any_lines_as_the_checked_path_does(
    lines: list[bytes], profile: ReferenceProfile, tmp_path_factory: pytest.TempPathFactory
) -> None:
    lines = [line.replace(b"\n", b" ") for line in lines]
    _assert_same_counts(lines, tmp_path_factory.mktemp("logs"), profile)


def test_the_predictors_own_records_take_the_typed_path(
    monitored_store: MonitoredStore, serve_rows: ServeRows, served_model: Any, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    serve_rows(monitored_store.window_pool.head(5), str(logs))
    instances = as_instances(monitored_store.window_pool.head(3))
    served_model.predict({"instances": instances})  # a batch (not logged: no sink now)
    from stroke_mlops.serving.request_log import RequestLogger, RequestLogSink, writer_for

    sink = RequestLogSink(writer_for(str(logs)), prefix="more", batch_size=100)
    served_model.request_logger = RequestLogger(stream=None, sink=sink)
    try:
        served_model.predict({"instances": instances})
        served_model.explain({"instances": instances[:1]})
        with pytest.raises(Exception, match="instance 0"):
            served_model.predict({"instances": [{**instances[0], "age": "old"}]})
    finally:
        served_model.request_logger.close()
        served_model.request_logger = RequestLogger(stream=None)
    lines = [
        line for path in sorted(logs.rglob("*.jsonl")) for line in path.read_bytes().splitlines()
    ]
    records = [orjson.loads(line) for line in lines]
    assert (
        sorted(r.get("verb", r["status"]) for r in records) == ["explain", "invalid"] + ["ok"] * 6
    )
    assert [type(decode_line(line)) in LOGGED_TYPES for line in lines] == [True] * len(lines)
