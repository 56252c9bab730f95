"""Feedback labels: outcomes (stroke 0/1) recorded by request id, weeks after the prediction.

Each call to :func:`record_feedback` appends one new object
``STORE/stroke/feedback/<UTC timestamp, µs>-<uuid>.jsonl`` (written atomically: a temp file renamed
into place, or one S3 PUT), one JSON line per outcome: ``{"request_id", "stroke",
"recorded_at"}``. Nothing is overwritten; when an id gets several outcomes the latest recorded
wins (a correction). A request that scored several rows has one id per row, ``<request id>:<i>``.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from stroke_mlops.data import schema
from stroke_mlops.monitoring.objects import open_folder
from stroke_mlops.monitoring.requests import RequestLogReader, instance_ids
from stroke_mlops.registry.store import ROOT_DIR

FEEDBACK_DIR = f"{ROOT_DIR}/feedback"
REQUEST_ID_COLUMN = "request_id"


class FeedbackError(ValueError):
    """Outcomes that cannot be recorded; the message names the row and what was expected."""


@dataclass(frozen=True)
class Outcome:
    """One observed outcome for a logged request (row)."""

    request_id: str
    stroke: int
    recorded_at: str  # ISO-8601 UTC, when the outcome arrived


def _check_outcome(request_id: Any, stroke: Any, where: str) -> tuple[str, int]:
    if not isinstance(request_id, str) or not request_id.strip():
        raise FeedbackError(f"{where}: request_id must be a non-empty string; got {request_id!r}")
    if isinstance(stroke, str):
        stroke = stroke.strip()
    if stroke in (0, 1, "0", "1") and not isinstance(stroke, bool | float):
        return request_id.strip(), int(stroke)
    raise FeedbackError(f"{where}: stroke must be 0 or 1; got {stroke!r}")


def record_feedback(
    store_uri: str,
    outcomes: Mapping[str, int] | Iterable[tuple[str, int]],
    *,
    recorded_at: datetime | None = None,
) -> str:
    """Append outcomes (request id → stroke 0/1) to the store; returns the object's URI.

    Every outcome is checked before anything is written: a bad one raises FeedbackError naming
    its position, and nothing is recorded.
    """
    pairs = list(outcomes.items() if isinstance(outcomes, Mapping) else outcomes)
    if not pairs:
        raise FeedbackError("no outcomes given; expected at least one request_id,stroke pair")
    moment = (recorded_at or datetime.now(UTC)).astimezone(UTC)
    stamp = moment.isoformat(timespec="microseconds")
    lines = []
    for index, pair in enumerate(pairs):
        request_id, stroke = _check_outcome(*pair, where=f"outcome {index}")
        lines.append(
            orjson.dumps({"request_id": request_id, "stroke": stroke, "recorded_at": stamp})
        )
    key = f"{FEEDBACK_DIR}/{moment:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex}.jsonl"
    folder = open_folder(store_uri)
    folder.write(key, b"\n".join(lines) + b"\n")
    return f"{folder.uri}/{key}"


def load_feedback(store_uri: str) -> dict[str, Outcome]:
    """Every recorded outcome by request id (the latest recorded wins)."""
    folder = open_folder(store_uri)
    latest: dict[str, Outcome] = {}
    for key in folder.list_keys(FEEDBACK_DIR + "/"):
        if not key.endswith(".jsonl"):
            continue
        for number, line in enumerate(folder.read(key).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                document = orjson.loads(line)
                request_id, stroke = _check_outcome(
                    document["request_id"], document["stroke"], where="outcome"
                )
                outcome = Outcome(request_id, stroke, str(document["recorded_at"]))
            except (orjson.JSONDecodeError, KeyError, TypeError, FeedbackError) as error:
                raise FeedbackError(
                    f"{folder.uri}/{key} line {number}: not a feedback record "
                    f'{{"request_id", "stroke", "recorded_at"}} ({error})'
                ) from error
            previous = latest.get(outcome.request_id)
            if previous is None or outcome.recorded_at >= previous.recorded_at:
                latest[outcome.request_id] = outcome
    return latest


def read_labels_csv(path: Path) -> list[tuple[str, int]]:
    """Outcomes from a CSV with columns request_id,stroke; bad rows are named (line number)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise FeedbackError(f"{path}: cannot be read as UTF-8 text ({error})") from error
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    if REQUEST_ID_COLUMN not in columns or schema.TARGET_COLUMN not in columns:
        raise FeedbackError(
            f"{path}: expected a header with columns request_id,stroke; got {','.join(columns)}"
        )
    pairs: list[tuple[str, int]] = []
    problems: list[str] = []
    for line_number, row in enumerate(reader, start=2):
        row = {str(k).strip(): v for k, v in row.items() if k is not None}
        try:
            pairs.append(
                _check_outcome(
                    (row.get(REQUEST_ID_COLUMN) or "").strip(),
                    row.get(schema.TARGET_COLUMN),
                    where=f"{path} line {line_number}",
                )
            )
        except FeedbackError as error:
            problems.append(str(error))
    if problems:
        shown = "; ".join(problems[:5])
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise FeedbackError(f"{len(problems)} bad row(s): {shown}{more}")
    if not pairs:
        raise FeedbackError(f"{path}: no outcome rows")
    return pairs


def labelled_requests(
    store_uri: str,
    requests_uri: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """Logged, accepted request rows that have an outcome: raw-schema features, stroke, id.

    Columns are ``schema.FEATURE_COLUMNS`` typed as the cleaned data (numbers float64, bmi may be
    missing, indicators int64, categories str), then ``stroke`` (int64) and ``request_id``. Rows
    from every model version count: the outcome belongs to the patient, not the model.
    """
    feedback = load_feedback(store_uri)
    values: dict[str, list[Any]] = {name: [] for name in schema.FEATURE_COLUMNS}
    labels: list[int] = []
    ids: list[str] = []
    seen: set[str] = set()
    if feedback:
        for record in RequestLogReader(requests_uri, since=since, until=until).records():
            if record.get("status") != "ok" or not isinstance(record.get("inputs"), dict):
                continue
            inputs = record["inputs"]
            count = int(record.get("instances") or len(inputs.get(schema.FEATURE_COLUMNS[0], [])))
            for index, row_id in enumerate(instance_ids(record, count)):
                outcome = feedback.get(row_id)
                if outcome is None or row_id in seen:
                    continue
                seen.add(row_id)
                for name in schema.FEATURE_COLUMNS:
                    values[name].append(inputs[name][index])
                labels.append(outcome.stroke)
                ids.append(row_id)
    frame = pd.DataFrame(values, columns=list(schema.FEATURE_COLUMNS))
    for column in schema.NUMERIC_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in schema.BINARY_COLUMNS:
        frame[column] = pd.to_numeric(frame[column]).astype("int64")
    for column in schema.CATEGORICAL_COLUMNS:
        frame[column] = frame[column].astype(str)
    frame[schema.TARGET_COLUMN] = pd.Series(labels, dtype="int64")
    frame[REQUEST_ID_COLUMN] = pd.Series(ids, dtype="object")
    return frame
