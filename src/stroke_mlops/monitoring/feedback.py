"""Feedback labels: outcomes (stroke 0/1) recorded by prediction id, weeks after the prediction.

Labels join on the ``prediction_id`` the predictor issues for every prediction (returned in the
``x-prediction-id`` response header and logged): 32 lowercase hex digits, ``<id>:<i>`` for row
``i`` of a batch. A client's ``x-request-id`` is only a correlation field, so reusing or forging
one cannot attach a label to anybody else's prediction.

Each call to :func:`record_feedback` appends one new object
``STORE/stroke/feedback/<UTC timestamp, µs>-<uuid>.jsonl`` (written atomically), one JSON line per
outcome ``{"prediction_id", "stroke", "recorded_at"}``. Nothing is overwritten. A file whose
labels conflict (one id, two outcomes), among themselves or with a label already stored, is
refused; a label repeated with the same outcome is stored once. Reading the store
(:func:`load_feedback`) never stops on a bad line: it is quarantined (counted, with its object
and line number) and left out; ids that still carry two outcomes are left out and counted.
"""

from __future__ import annotations

import csv
import io
import os
import stat
import tempfile
import uuid
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from stroke_mlops.data import schema
from stroke_mlops.monitoring.labels import LabelIndex, id_key
from stroke_mlops.monitoring.objects import open_folder
from stroke_mlops.monitoring.records import PREDICTION_ID, check_accepted_record
from stroke_mlops.monitoring.requests import RequestLogReader, prediction_row_ids
from stroke_mlops.registry.store import ROOT_DIR

FEEDBACK_DIR = f"{ROOT_DIR}/feedback"
ID_COLUMN = "prediction_id"
REQUEST_ID_COLUMN = ID_COLUMN  # the id column of labelled_requests' frame
MAX_ID_LENGTH = 32 + 1 + 6  # "<32 hex>:<row>"
MAX_LABEL_LINE_BYTES = 4096
_SHOWN_PROBLEMS = 5


class FeedbackError(ValueError):
    """Outcomes that cannot be recorded; the message names the row and what was expected."""


def check_prediction_id(value: Any) -> str | None:
    """The id if it is one the predictor could have issued (``<32 hex>`` or ``<32 hex>:<row>``)."""
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
        return None
    head, colon, row = value.partition(":")
    if not PREDICTION_ID.fullmatch(head):
        return None
    if colon and not (row.isascii() and row.isdigit() and len(row) <= 6):
        return None
    return value


def _check_outcome(prediction_id: Any, stroke: Any, where: str) -> tuple[str, int]:
    if check_prediction_id(prediction_id) is None:
        shown = f"{len(prediction_id)} characters" if isinstance(prediction_id, str) else "not text"
        raise FeedbackError(
            f"{where}: prediction_id must be an id the predictor issued (32 lowercase hex "
            f"digits, ':<row>' for a batch row; the x-prediction-id response header); got {shown}"
        )
    if isinstance(stroke, str):
        stroke = stroke.strip()
    if stroke in (0, 1, "0", "1") and not isinstance(stroke, bool | float):
        return prediction_id, int(stroke)
    raise FeedbackError(f"{where}: stroke must be 0 or 1")


@dataclass
class FeedbackReport:
    """What a labels file held, checked against the store (and the logs when given)."""

    rows: int = 0
    positives: int = 0
    duplicates: int = 0  # the same id with the same outcome again in the file: stored once
    already_stored: int = 0  # the same outcome is already in the store: not stored again
    matched: int | None = None  # ids found in the request logs (None: logs not checked)
    unknown: int | None = None  # ids no logged prediction has
    stored: int = 0
    uri: str = ""

    def line(self) -> str:
        logs = (
            "request logs not checked (--requests)"
            if self.matched is None
            else f"{self.matched} matched a logged prediction, {self.unknown} unknown"
        )
        return (
            f"{self.rows} outcome rows ({self.positives} strokes): {self.duplicates} duplicate, "
            f"{self.already_stored} already stored, 0 conflicting; {logs}; recorded {self.stored}"
            + (f" in {self.uri}" if self.uri else "")
        )


@dataclass
class LoadedFeedback:
    """The store's labels as a compact index, and what was left out."""

    index: LabelIndex
    duplicates: int = 0
    conflicting_ids: int = 0
    quarantined_lines: int = 0
    quarantined: list[str] = field(default_factory=list)  # the first few: "<object> line <n>"


def _regular_text_file(path: Path) -> io.TextIOWrapper:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise FeedbackError(f"{path}: cannot be read ({error.strerror})") from error
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise FeedbackError(f"{path}: not a regular file; expected a CSV file")
    return io.TextIOWrapper(os.fdopen(descriptor, "rb"), encoding="utf-8-sig", newline="")


def iter_labels_csv(path: Path) -> Iterator[tuple[int, str, int]]:
    """(line number, prediction id, stroke) of each row of a labels CSV, streamed.

    The header must name ``prediction_id`` and ``stroke`` once each and nothing else; a row with
    more or fewer fields, a bad id or outcome, a line over 4 KiB or bytes that are not UTF-8
    raises FeedbackError naming the line (collected: see :func:`read_labels_csv`).
    """
    with _regular_text_file(path) as handle:
        lines = _capped_lines(handle, path)
        reader = csv.reader(lines)
        try:
            header = [c.strip() for c in next(reader, [])]
        except (csv.Error, UnicodeDecodeError) as error:
            raise FeedbackError(f"{path} line 1: not a CSV header ({error})") from error
        if sorted(header) != sorted([ID_COLUMN, schema.TARGET_COLUMN]):
            hint = (
                " (labels join on the predictor's prediction_id)" if "request_id" in header else ""
            )
            raise FeedbackError(
                f"{path}: expected a header with exactly the columns {ID_COLUMN},"
                f"{schema.TARGET_COLUMN}; got {len(header)} column(s){hint}"
            )
        id_at, stroke_at = header.index(ID_COLUMN), header.index(schema.TARGET_COLUMN)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as error:
                raise FeedbackError(f"{path} line {reader.line_num}: not CSV ({error})") from error
            where = f"{path} line {reader.line_num}"
            if not row:
                continue
            if len(row) != 2:
                yield reader.line_num, "", -len(row)  # reported by read_labels_csv
                continue
            try:
                prediction_id, stroke = _check_outcome(row[id_at].strip(), row[stroke_at], where)
            except FeedbackError as error:
                yield reader.line_num, str(error), -1
                continue
            yield reader.line_num, prediction_id, stroke


def _capped_lines(handle: io.TextIOWrapper, path: Path) -> Iterator[str]:
    number = 0
    while True:
        try:
            line = handle.readline(MAX_LABEL_LINE_BYTES + 1)
        except UnicodeDecodeError as error:
            raise FeedbackError(f"{path} line {number + 1}: not UTF-8 text") from error
        if not line:
            return
        number += 1
        if len(line) > MAX_LABEL_LINE_BYTES:
            raise FeedbackError(f"{path} line {number}: longer than {MAX_LABEL_LINE_BYTES} bytes")
        yield line


def read_labels_csv(path: Path) -> list[tuple[str, int]]:
    """Every (prediction id, stroke) of a labels CSV; bad rows are named by line number."""
    _check_labels_file(path)
    return list(_good_rows(path))


def _good_rows(path: Path) -> Iterator[tuple[str, int]]:
    for _, prediction_id, stroke in iter_labels_csv(path):
        if stroke >= 0:
            yield prediction_id, stroke


def _check_labels_file(path: Path) -> None:
    """Raise FeedbackError naming the first bad rows (and how many) of a labels CSV."""
    problems: list[str] = []
    count = rows = 0
    for line, text, stroke in iter_labels_csv(path):
        rows += 1
        if stroke >= 0:
            continue
        count += 1
        if len(problems) < _SHOWN_PROBLEMS:
            problems.append(
                text if stroke == -1 else f"{path} line {line}: {-stroke} fields; expected 2"
            )
    if count:
        more = f"; and {count - len(problems)} more" if count > len(problems) else ""
        raise FeedbackError(f"{count} bad row(s): {'; '.join(problems)}{more}")
    if not rows:
        raise FeedbackError(f"{path}: no outcome rows")


def record_labels_file(
    store_uri: str, path: Path, *, requests_uri: str | None = None, strict: bool = False
) -> FeedbackReport:
    """:func:`record_feedback` for a labels CSV, streamed twice (memory: 9 bytes a row)."""
    _check_labels_file(path)
    return _record(store_uri, lambda: _good_rows(path), requests_uri=requests_uri, strict=strict)


def record_feedback(
    store_uri: str,
    outcomes: Mapping[str, int] | Iterable[tuple[str, int]],
    *,
    recorded_at: datetime | None = None,
    requests_uri: str | None = None,
    strict: bool = False,
) -> FeedbackReport:
    """Check outcomes (prediction id → stroke 0/1) and append the new ones to the store.

    Nothing is written when any outcome is bad, when two outcomes (in ``outcomes`` or against
    the store) give one id different labels, or, with ``strict``, when an id is not in the
    request logs at ``requests_uri``.
    """
    pairs = list(outcomes.items() if isinstance(outcomes, Mapping) else outcomes)
    checked = [_check_outcome(*pair, where=f"outcome {i}") for i, pair in enumerate(pairs)]
    if not checked:
        raise FeedbackError("no outcomes given; expected at least one prediction_id,stroke pair")
    return _record(
        store_uri,
        lambda: iter(checked),
        recorded_at=recorded_at,
        requests_uri=requests_uri,
        strict=strict,
    )


def _record(
    store_uri: str,
    rows: Callable[[], Iterator[tuple[str, int]]],
    *,
    recorded_at: datetime | None = None,
    requests_uri: str | None = None,
    strict: bool = False,
) -> FeedbackReport:
    if strict and requests_uri is None:
        raise FeedbackError("--strict needs --requests: the logs to check the ids against")
    report = FeedbackReport()
    keys, labels = array("Q"), array("b")
    for prediction_id, stroke in rows():
        keys.append(id_key(prediction_id))
        labels.append(stroke)
    report.rows, report.positives = len(keys), sum(labels)
    given, counts = LabelIndex.build(keys, labels)
    if counts.conflicting_ids:
        raise FeedbackError(
            f"{counts.conflicting_ids} prediction id(s) are given both outcomes in this file; "
            "nothing recorded (send one outcome per prediction)"
        )
    report.duplicates = counts.duplicates
    key_array = np.frombuffer(keys, dtype=np.uint64)
    before = load_feedback(store_uri).index.lookup(key_array)
    clash = (before >= 0) & (before != np.frombuffer(labels, dtype=np.int8))
    if clash.any():
        raise FeedbackError(
            f"{int(clash.sum())} prediction id(s) already have the other outcome in the store; "
            "nothing recorded (a recorded outcome is not overwritten)"
        )
    if requests_uri is not None:
        known = logged_prediction_keys(requests_uri).lookup(given.keys) >= 0
        report.matched, report.unknown = int(known.sum()), int((~known).sum())
        if strict and report.unknown:
            raise FeedbackError(
                f"{report.unknown} prediction id(s) are in no request log under {requests_uri}; "
                "nothing recorded (--strict)"
            )
    write = np.zeros(key_array.size, dtype=bool)
    write[np.unique(key_array, return_index=True)[1]] = True  # first occurrence of each id
    report.already_stored = int((write & (before >= 0)).sum())
    write &= before < 0
    del key_array, before, keys, labels, given
    moment = (recorded_at or datetime.now(UTC)).astimezone(UTC)
    stamp = moment.isoformat(timespec="microseconds")
    report.stored = int(write.sum())
    if not report.stored:
        return report
    with tempfile.TemporaryFile() as spool:
        for position, (prediction_id, stroke) in enumerate(rows()):
            if write[position]:
                document = {"prediction_id": prediction_id, "stroke": stroke, "recorded_at": stamp}
                spool.write(orjson.dumps(document) + b"\n")
        length = spool.tell()
        spool.seek(0)
        name = f"{FEEDBACK_DIR}/{moment:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex}.jsonl"
        folder = open_folder(store_uri)
        folder.write_stream(name, spool, length)
        report.uri = f"{folder.uri}/{name}"
    return report


def logged_prediction_keys(requests_uri: str) -> LabelIndex:
    """Every prediction-row id in the request logs, as an index (label 0: only presence counts)."""
    keys, labels = array("Q"), array("b")
    for record in RequestLogReader(requests_uri).records():
        if record.get("status") != "ok":
            continue
        prediction_id = check_prediction_id(record.get("prediction_id"))
        count = record.get("instances")
        if prediction_id is None or type(count) is not int or count < 1:
            continue
        for row_id in prediction_row_ids(prediction_id, min(count, 100_000)):
            keys.append(id_key(row_id))
            labels.append(0)
    return LabelIndex.build(keys, labels)[0]


def load_feedback(store_uri: str) -> LoadedFeedback:
    """Every stored outcome as a :class:`LabelIndex`; bad lines quarantined, never raised."""
    folder = open_folder(store_uri)
    keys, labels = array("Q"), array("b")
    quarantined: list[str] = []
    bad = 0
    for key in folder.list_keys(FEEDBACK_DIR + "/"):
        if not key.endswith(".jsonl"):
            continue
        number = 0
        try:
            for number, line in enumerate(folder.read_lines(key, MAX_LABEL_LINE_BYTES), start=1):
                if line is not None and not line.strip():
                    continue
                try:
                    if line is None:
                        raise ValueError("line too long")
                    document = orjson.loads(line)
                    prediction_id, stroke = _check_outcome(
                        document["prediction_id"], document["stroke"], where="outcome"
                    )
                except (ValueError, KeyError, TypeError):  # JSON, FeedbackError, shape
                    bad += 1
                    if len(quarantined) < _SHOWN_PROBLEMS:
                        quarantined.append(f"{folder.uri}/{key} line {number}")
                    continue
                keys.append(id_key(prediction_id))
                labels.append(stroke)
        except Exception as error:  # an unreadable object is quarantined whole
            from stroke_mlops.registry.uris import StorageError

            if not isinstance(error, StorageError):
                raise
            bad += 1
            if len(quarantined) < _SHOWN_PROBLEMS:
                quarantined.append(f"{folder.uri}/{key} (unreadable)")
    index, counts = LabelIndex.build(keys, labels)
    return LoadedFeedback(
        index=index,
        duplicates=counts.duplicates,
        conflicting_ids=counts.conflicting_ids,
        quarantined_lines=bad,
        quarantined=quarantined,
    )


def labelled_requests(
    store_uri: str,
    requests_uri: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """Logged, accepted request rows that have an outcome: raw-schema features, stroke, id.

    Columns are ``schema.FEATURE_COLUMNS`` typed as the cleaned data (numbers float64, bmi may be
    missing, indicators int64, categories str), then ``stroke`` (int64) and ``prediction_id``.
    Rows from every model version count: the outcome belongs to the patient, not the model. Only
    records that pass the request-log schema are used; each prediction row once.
    """
    feedback = load_feedback(store_uri).index
    values: dict[str, list[Any]] = {name: [] for name in schema.FEATURE_COLUMNS}
    labels: list[int] = []
    ids: list[str] = []
    seen: set[str] = set()
    if len(feedback):
        for record in RequestLogReader(requests_uri, since=since, until=until).records():
            if record.get("status") != "ok":
                continue
            checked = check_accepted_record(record)
            if isinstance(checked, str) or checked.prediction_id is None:
                continue
            row_ids = prediction_row_ids(checked.prediction_id, checked.count)
            found = feedback.lookup(np.fromiter(map(id_key, row_ids), dtype=np.uint64))
            for index, row_id in enumerate(row_ids):
                if found[index] < 0 or row_id in seen:
                    continue
                seen.add(row_id)
                for position, name in enumerate(schema.FEATURE_COLUMNS):
                    values[name].append(checked.columns[position][index])
                labels.append(int(found[index]))
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
