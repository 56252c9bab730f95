"""Hypothesis fuzzing of the loop's parsers: request-log records and objects, label files and
stored labels. Whatever the bytes, the outcome is a count or a one-line FeedbackError; never a
traceback."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stroke_mlops.data import schema
from stroke_mlops.monitoring.feedback import (
    FEEDBACK_DIR,
    FeedbackError,
    load_feedback,
    read_labels_csv,
)
from stroke_mlops.monitoring.records import CheckedRecord, check_accepted_record
from stroke_mlops.monitoring.reference import ReferenceProfile, profile_reference
from stroke_mlops.monitoring.requests import RequestLogReader
from stroke_mlops.monitoring.window import WindowCounts
from tests.monitoring.conftest import MonitoredStore


@pytest.fixture(scope="module")
def profile(monitored_store: MonitoredStore) -> ReferenceProfile:
    return profile_reference(monitored_store.reference, threshold=0.5)


FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["Male", "Private", "Urban", "never smoked", "Yes"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _record(features: dict[str, Any], outputs: Any, instances: Any) -> dict[str, Any]:
    return {"model_version": "v", "status": "ok", "instances": instances, "inputs": features,
            "outputs": outputs, "prediction_id": "0" * 32}  # fmt: skip


@FUZZ
@given(
    features=st.dictionaries(
        st.sampled_from(schema.FEATURE_COLUMNS), st.lists(json_values, max_size=3) | json_values
    ),
    outputs=st.dictionaries(
        st.sampled_from(["probability", "decision"]),
        st.lists(json_values, max_size=3) | json_values,
    )
    | json_values,
    instances=json_values,
)
def test_any_record_is_checked_or_given_a_reason_that_names_no_value(
    features: dict[str, Any], outputs: Any, instances: Any, profile: ReferenceProfile
) -> None:
    record = _record(features, outputs, instances)
    window = WindowCounts(profile, "v")
    window.add(record, line_hash=hash(repr(record)))
    window.flush()  # counted or left out, never raised
    assert window.accepted_requests + window.invalid_count == 1
    result = check_accepted_record(record)
    if isinstance(result, CheckedRecord):
        assert result.count >= 1 and len(result.columns) == len(schema.FEATURE_COLUMNS)
        for column in result.columns:
            for value in column:
                assert value is None or isinstance(value, str) or math.isfinite(value)
    else:
        field = result.partition(": ")[0]
        assert field in (*schema.FEATURE_COLUMNS, "record", "outputs", "probability", "decision",
                         "prediction_id")  # fmt: skip
        assert len(result) < 80


@FUZZ
@given(
    content=st.binary(max_size=2000)
    | st.lists(json_values, max_size=5).map(
        lambda values: b"\n".join(json.dumps(v).encode() for v in values)
    )
)
def test_any_log_object_is_read_as_records_or_counted(content: bytes, tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir(exist_ok=True)
    (folder / "object.jsonl").write_bytes(content)
    reader = RequestLogReader(str(folder), max_line_bytes=500)
    records = list(reader.records())
    assert all(isinstance(r, dict) for r in records)
    assert reader.unreadable_objects == 0


@FUZZ
@given(content=st.binary(max_size=600) | st.text(max_size=600).map(str.encode))
def test_any_labels_file_is_read_or_refused_with_one_line(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(b"prediction_id,stroke\n" + content if content[:1] != b"p" else content)
    try:
        pairs = read_labels_csv(path)
    except FeedbackError as error:
        assert "\n" not in str(error)
    else:
        assert pairs and all(stroke in (0, 1) and len(pid) >= 32 for pid, stroke in pairs)


@FUZZ
@given(content=st.binary(max_size=600))
def test_any_stored_label_object_is_loaded_or_quarantined(content: bytes, tmp_path: Path) -> None:
    folder = tmp_path / FEEDBACK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "x.jsonl").write_bytes(content)
    loaded = load_feedback(str(tmp_path))
    assert len(loaded.index) + loaded.quarantined_lines + loaded.conflicting_ids >= 0
