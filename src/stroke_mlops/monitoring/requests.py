"""Reading the predictor's request-log objects as a stream, one object at a time.

Records are those :mod:`stroke_mlops.serving.request_log` writes: ``ts``, ``request_id`` (the
client's correlation id), ``prediction_id`` (issued by the predictor), ``model_version``,
``status`` ("ok" or "invalid"), and for accepted requests ``instances``, ``inputs`` (feature →
list of values) and ``outputs`` (``probability``, ``decision``); for refused ones ``error`` (and
possibly a ``reason``). Unknown fields are ignored.

Objects are streamed line by line (one line at most ``max_line_bytes``), so memory does not grow
with an object or the window. What cannot be read is counted, never raised: an object that is
not a regular file or fails mid-read (:attr:`RequestLogReader.unreadable_objects`), a line that
is too long, not JSON, not UTF-8 or not an object (:attr:`RequestLogReader.unreadable_lines`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from stroke_mlops.monitoring.logged import LOGGED_TYPES, decode_line
from stroke_mlops.monitoring.objects import DEFAULT_MAX_LINE_BYTES, ObjectFolder, open_folder
from stroke_mlops.registry.uris import StorageError

log = logging.getLogger(__name__)

_PARTITION = re.compile(r"(?:^|/)dt=(\d{4}-\d{2}-\d{2})/")
_FIELD = re.compile(r'field "([^"]+)"')
_FAST_TS_LENGTH = len("2026-01-01T00:00:00.000+00:00")


def as_utc(moment: datetime | None) -> datetime | None:
    """A datetime in UTC; a naive one is taken to be UTC already."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _ts_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds")


def refusal_reason(record: dict[str, Any]) -> str:
    """A short, countable reason for a refused request (never the values the patient sent)."""
    given = record.get("reason")
    error = str(record.get("error") or "")
    field = _FIELD.search(error)
    # The field a refusal names says more than the server's bounded category; the field set is
    # bounded by the signature, so the count stays small.
    if field:
        if "is missing" in error:
            return f"{field.group(1)}: missing"
        if "is not an input" in error:
            return "unknown field"
        return f"{field.group(1)}: invalid value"
    if isinstance(given, str) and given and len(given) <= 64 and given.isprintable():
        return given
    if not error:
        return "refused (no reason logged)"
    if "JSON" in error:
        return "malformed JSON"
    if "instances" in error:
        return "malformed body"
    return "other"


class RequestLogReader:
    """Streams the records of every log object under a folder or ``s3://`` prefix.

    ``since``/``until`` bound the records' ``ts`` as [since, until); objects in a ``dt=`` date
    partition that cannot hold such records are not read. Lines that are not JSON objects are
    counted in :attr:`unreadable_lines`, not raised.
    """

    def __init__(
        self,
        requests_uri: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        folder: ObjectFolder | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        self.folder = folder or open_folder(requests_uri)
        self.since, self.until = as_utc(since), as_utc(until)
        if self.since and self.until and self.since >= self.until:
            raise StorageError(f"empty window: since {self.since} is not before until {self.until}")
        self.max_line_bytes = max_line_bytes
        self.objects_read = 0
        self.unreadable_objects = 0
        self.unreadable_lines = 0
        self.outside_window = 0

    def _partition_may_hold(self, key: str) -> bool:
        match = _PARTITION.search(key)
        if not match:
            return True
        try:
            day = datetime.strptime(match.group(1), "%Y-%m-%d").replace(tzinfo=UTC)
            after_since = not self.since or day + timedelta(days=1) > self.since
            # a batch is written a little after its records: allow a day's slack at the end
            before_until = not self.until or day <= self.until + timedelta(days=1)
        except (ValueError, OverflowError):  # not a real day, or at the calendar's edge
            return True  # read it: its records' own times decide
        return after_since and before_until

    def keys(self) -> list[str]:
        if not self.folder.exists():
            raise StorageError(f"{self.folder.uri}: no such folder or bucket of request logs")
        return [
            key
            for key in self.folder.list_keys()
            if key.endswith((".jsonl", ".json", ".ndjson")) and self._partition_may_hold(key)
        ]

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record of the window (see :meth:`lines` for the line hash as well)."""
        for record, _ in self.lines():
            yield record

    def lines(self) -> Iterator[tuple[dict[str, Any], int]]:
        """(record, hash of its line) for every record of the window; the hash (Python's, so
        only comparable within this process) lets a repeated line be counted once."""
        for records, hashes in self.batches(size=1, typed=False):
            yield records[0], hashes[0]

    def batches(
        self, size: int = 128, *, typed: bool = True
    ) -> Iterator[tuple[list[Any], list[int]]]:
        """The records of the window in lists of up to ``size``, beside their line hashes (see
        :meth:`lines`). With ``typed``, a record that passes the typed schema comes as a
        :data:`~stroke_mlops.monitoring.logged.LoggedRecord` (the fast path: see
        :mod:`stroke_mlops.monitoring.logged`); every other record is a dict."""
        decode = decode_line if typed else orjson.loads
        since, until = _ts_text(self.since), _ts_text(self.until)
        bounded = since is not None or until is not None
        records: list[Any] = []
        hashes: list[int] = []
        for key in self.keys():
            self.objects_read += 1
            try:
                for line in self.folder.read_lines(key, self.max_line_bytes):
                    if line is None:
                        self.unreadable_lines += 1
                        continue
                    try:
                        record = decode(line)
                    except orjson.JSONDecodeError:  # also invalid UTF-8, or too deeply nested
                        if line.strip():  # a blank line is no record
                            self.unreadable_lines += 1
                        continue
                    if type(record) is dict:
                        ts = record.get("ts")
                    elif type(record) in LOGGED_TYPES:
                        ts = record.ts
                    else:
                        self.unreadable_lines += 1
                        continue
                    if bounded and not self._in_window(ts, since, until):
                        self.outside_window += 1
                        continue
                    records.append(record)
                    hashes.append(hash(line))
                    if len(records) >= size:
                        yield records, hashes
                        records, hashes = [], []
            except StorageError as error:
                self.unreadable_objects += 1
                log.warning("request log object skipped: %s", error)
        if records:
            yield records, hashes

    def _in_window(self, ts: Any, since: str | None, until: str | None) -> bool:
        if not isinstance(ts, str):
            return False
        if len(ts) != _FAST_TS_LENGTH or not ts.endswith("+00:00"):  # not the logger's own form
            try:
                parsed = as_utc(datetime.fromisoformat(ts))
            except (ValueError, OverflowError):
                return False
            ts = _ts_text(parsed) or ""
        return (since is None or ts >= since) and (until is None or ts < until)


def prediction_row_ids(prediction_id: str, count: int) -> list[str]:
    """The ids feedback uses for a prediction's rows: the predictor-issued ``prediction_id``
    for one row, ``<prediction_id>:<i>`` for each row of a batch."""
    if count == 1:
        return [prediction_id]
    return [f"{prediction_id}:{index}" for index in range(count)]
