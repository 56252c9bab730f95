"""Request logging: full records to a private store for monitoring, metadata only on stdout.

Each request gives one record: request id, model name and version, protocol, status, the inputs
(as columns: ``{"age": [...], ...}``, ready for ``pandas.DataFrame``), the outputs, the
server-side latency and, for refused requests, the HTTP status, a bounded ``reason`` and the
error. Patient features and scores go only to a :class:`RequestLogSink`, which batches records
into JSON-lines objects written by a background thread through a ``write(key, body)`` callable:
:class:`DirectoryStore` (files 0600 in folders 0700) or :class:`S3Store` (objects put with the
``private`` canned ACL). With ``retention_days`` the sink deletes the store's day partitions
(``dt=YYYY-MM-DD``) older than that many days, at start and once a day after.

:class:`RequestLogger` writes to stdout (what a cluster's log collector ships everywhere) only
:func:`stdout_summary` of a record: id, version, protocol, status, reason, latency, row count and
how many rows were positive; never an input value, a score or an error message (which can quote
what was sent).

The sink never blocks a response: its queue is bounded, a record that does not fit is dropped
and counted (:meth:`RequestLogSink.dropped_by_cause`), and a failing ``write`` drops its batch,
counts it and logs one warning line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import queue
import re
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO, runtime_checkable

import orjson

log = logging.getLogger(__name__)

WriteObject = Callable[[str, bytes], None]

_PARTITION = re.compile(r"dt=(\d{4}-\d{2}-\d{2})$")
MAX_REQUEST_ID_LENGTH = 128
_REQUEST_ID = re.compile(rf"[A-Za-z0-9._:@/+=-]{{1,{MAX_REQUEST_ID_LENGTH}}}")
# The only record fields stdout gets (plus ``positives``, counted from the outputs).
STDOUT_FIELDS = (
    "ts",
    "request_id",
    "request_id_replaced",
    "prediction_id",
    "model_name",
    "model_version",
    "protocol",
    "verb",  # "explain" for :explain; absent for predictions
    "status",
    "http_status",
    "reason",
    "instances",
    "latency_ms",
)


@runtime_checkable
class ExpiringStore(Protocol):
    """A request-log store that can delete whole day partitions (for the retention setting)."""

    def __call__(self, key: str, body: bytes) -> None: ...

    def delete_partitions_before(self, prefix: str, day: dt.date) -> int:
        """Delete ``{prefix}/dt=D/`` for every D before ``day``; the number of objects."""
        ...


def _json_fallback(value: Any) -> Any:
    """What orjson cannot serialize itself: bytes (V2/gRPC BYTES), other sequences, the rest."""
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    try:
        return list(value)
    except TypeError:
        return str(value)


def encode_record(record: dict[str, Any]) -> bytes:
    """One JSON line (numpy arrays and scalars serialize as plain JSON, bytes as text)."""
    return orjson.dumps(
        record,
        default=_json_fallback,
        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE,
    )


class RequestLogSink:
    """Batches request records into JSON-lines objects written from a background thread.

    ``write(key, body)`` is called with keys
    ``{prefix}/dt=YYYY-MM-DD/{HHMMSS}-{pid}-{sink}-{seq}.jsonl`` (UTC; ``sink`` is random per
    sink, so predictors sharing a store, e.g. two versions behind a router whose pods all run as
    pid 1, never write the same key). A batch is written when it holds ``batch_size`` records
    or ``flush_interval_s`` after its first record, whichever comes first, and on :meth:`close`.
    With ``retention_days`` (which needs an :class:`ExpiringStore`) the thread deletes
    partitions older than that many days when it starts and again on each new UTC day.
    """

    def __init__(
        self,
        write: WriteObject,
        *,
        prefix: str = "request-logs",
        batch_size: int = 500,
        flush_interval_s: float = 5.0,
        max_queue: int = 10_000,
        retention_days: int | None = None,
        today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
    ) -> None:
        if batch_size < 1 or max_queue < 1 or flush_interval_s <= 0:
            raise ValueError(
                "batch_size and max_queue must be >= 1 and flush_interval_s > 0; got "
                f"{batch_size}, {max_queue}, {flush_interval_s}"
            )
        if retention_days is not None:
            if retention_days < 1:
                raise ValueError(f"retention_days must be >= 1; got {retention_days}")
            if not isinstance(write, ExpiringStore):
                raise ValueError(
                    "retention_days needs a store that can delete old partitions "
                    "(DirectoryStore or S3Store)"
                )
        self._retention_days = retention_days
        self._today = today
        self._purged_on: dt.date | None = None
        self._write = write
        self._prefix = prefix.strip("/")
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._dropped: dict[str, int] = {"queue_full": 0, "closed": 0, "write_failed": 0}
        self._write_failures = 0
        self._expired_objects = 0
        self._written_records = 0
        self._written_objects = 0
        self._sequence = 0
        self._sink_id = uuid.uuid4().hex[:12]
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="request-log-sink", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        """Records lost because the queue was full, the sink closed, or a write failed."""
        with self._lock:
            return sum(self._dropped.values())

    def dropped_by_cause(self) -> dict[str, int]:
        """Records lost, by cause: ``queue_full``, ``closed``, ``write_failed``."""
        with self._lock:
            return dict(self._dropped)

    @property
    def write_failures(self) -> int:
        """Object writes that failed (each dropped its whole batch)."""
        with self._lock:
            return self._write_failures

    @property
    def expired_objects(self) -> int:
        """Objects deleted by the retention setting so far."""
        with self._lock:
            return self._expired_objects

    @property
    def written(self) -> int:
        """Records written so far."""
        with self._lock:
            return self._written_records

    @property
    def objects_written(self) -> int:
        with self._lock:
            return self._written_objects

    def submit(self, line: bytes) -> bool:
        """Queue one encoded record; never blocks. False (and counted) when it was dropped."""
        if self._closed:
            self._count_dropped("closed", 1)
            return False
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self._count_dropped("queue_full", 1)
            return False
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what is queued and stop the thread (records submitted afterwards are dropped)."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout_s
        while True:  # the end marker must get in even when the queue is full
            try:
                self._queue.put(None, timeout=max(0.01, deadline - time.monotonic()))
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))

    def _count_dropped(self, cause: str, count: int) -> None:
        with self._lock:
            self._dropped[cause] += count

    def _expire_old_partitions(self) -> None:
        """Apply the retention setting once per UTC day (failures: one warning, retried later)."""
        if self._retention_days is None or not isinstance(self._write, ExpiringStore):
            return
        today = self._today()
        if self._purged_on == today:
            return
        self._purged_on = today
        cutoff = today - dt.timedelta(days=self._retention_days)
        try:
            deleted = self._write.delete_partitions_before(self._prefix, cutoff)
        except Exception as error:  # the store may be unreachable; logging must go on
            self._purged_on = None
            log.warning("request log: deleting records before %s failed: %s", cutoff, error)
            return
        with self._lock:
            self._expired_objects += deleted
        if deleted:
            log.info(
                "request log: deleted %d objects older than %d days (before %s)",
                deleted,
                self._retention_days,
                cutoff,
            )

    def _run(self) -> None:
        batch: list[bytes] = []
        batch_deadline = 0.0
        self._expire_old_partitions()
        while True:
            timeout = None if not batch else max(0.0, batch_deadline - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = b""  # the batch is due
            if item is None:
                self._flush(batch)
                return
            if item:
                if not batch:
                    batch_deadline = time.monotonic() + self._flush_interval_s
                batch.append(item)
            if batch and (len(batch) >= self._batch_size or time.monotonic() >= batch_deadline):
                self._expire_old_partitions()
                self._flush(batch)
                batch = []

    def _flush(self, batch: list[bytes]) -> None:
        if not batch:
            return
        now = dt.datetime.now(dt.UTC)
        self._sequence += 1
        key = (
            f"{self._prefix}/dt={now:%Y-%m-%d}/"
            f"{now:%H%M%S}-{os.getpid()}-{self._sink_id}-{self._sequence:06d}.jsonl"
        )
        try:
            self._write(key, b"".join(batch))
        except Exception as error:  # any sink failure must not reach the server
            with self._lock:
                self._dropped["write_failed"] += len(batch)
                self._write_failures += 1
            log.warning(
                "request log: writing %s failed (%d records dropped): %s", key, len(batch), error
            )
            return
        with self._lock:
            self._written_records += len(batch)
            self._written_objects += 1


def _partition_day(name: str) -> dt.date | None:
    match = _PARTITION.match(name)
    if match is None:
        return None
    try:
        return dt.date.fromisoformat(match.group(1))
    except ValueError:
        return None


class DirectoryStore:
    """Request-log objects as files under ``root``: files 0600, folders we create 0700."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, key: str, body: bytes) -> None:
        path = self.root / key
        self._make_private_dirs(path.parent)
        partial = path.with_name(path.name + ".partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(body)
        partial.chmod(0o600)  # O_CREAT's mode does not apply to a leftover partial file
        partial.replace(path)

    def _make_private_dirs(self, folder: Path) -> None:
        missing: list[Path] = []
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):  # another writer made it first
                path.mkdir(mode=0o700)

    def delete_partitions_before(self, prefix: str, day: dt.date) -> int:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return 0
        deleted = 0
        for partition in base.iterdir():
            partition_day = _partition_day(partition.name)
            if partition.is_dir() and partition_day is not None and partition_day < day:
                deleted += sum(1 for p in partition.rglob("*") if p.is_file())
                shutil.rmtree(partition)
        return deleted


class S3Store:
    """Request-log objects under ``s3://bucket/prefix``, put with the ``private`` canned ACL.

    Endpoint and credentials come from the AWS_* environment (see stroke_mlops.registry.uris).
    A bucket lifecycle rule can do the retention instead; see the README.
    """

    def __init__(self, uri: str) -> None:
        from stroke_mlops.registry.uris import minio_client_from_env, parse_s3_uri

        self.bucket, prefix = parse_s3_uri(uri)
        self.prefix = prefix.strip("/")
        self._client = minio_client_from_env()

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def __call__(self, key: str, body: bytes) -> None:
        import io

        self._client.put_object(
            self.bucket,
            self._name(key),
            io.BytesIO(body),
            len(body),
            content_type="application/x-ndjson",
            metadata={"x-amz-acl": "private"},
        )

    def delete_partitions_before(self, prefix: str, day: dt.date) -> int:
        from minio.deleteobjects import DeleteObject

        base = self._name(prefix.strip("/")) if prefix else self.prefix
        base = f"{base}/" if base else ""
        expired: list[str] = []
        for entry in self._client.list_objects(self.bucket, prefix=base):  # one level: dt=…/
            name = (entry.object_name or "").removeprefix(base).rstrip("/")
            partition_day = _partition_day(name)
            if entry.is_dir and partition_day is not None and partition_day < day:
                expired.extend(
                    str(o.object_name)
                    for o in self._client.list_objects(
                        self.bucket, prefix=f"{base}{name}/", recursive=True
                    )
                )
        if not expired:
            return 0
        errors = list(
            self._client.remove_objects(self.bucket, (DeleteObject(name) for name in expired))
        )
        if errors:
            raise OSError(f"{len(errors)} of {len(expired)} objects not deleted: {errors[0]}")
        return len(expired)


def directory_writer(root: Path) -> DirectoryStore:
    """A ``write(key, body)`` that stores objects as private files under ``root``."""
    return DirectoryStore(root)


def s3_writer(uri: str) -> S3Store:
    """A ``write(key, body)`` that puts private objects under ``s3://bucket/prefix``."""
    return S3Store(uri)


def writer_for(uri: str) -> DirectoryStore | S3Store:
    """The writer for a request-log destination: a folder, ``file://`` or ``s3://`` URI."""
    if uri.startswith("s3://"):
        return s3_writer(uri)
    from stroke_mlops.registry.uris import file_uri_to_path

    return directory_writer(file_uri_to_path(uri) if uri.startswith("file://") else Path(uri))


def stdout_summary(record: dict[str, Any]) -> dict[str, Any]:
    """What stdout may show of a record: metadata and the number of positive decisions."""
    summary = {key: record[key] for key in STDOUT_FIELDS if key in record}
    outputs = record.get("outputs")
    if outputs:
        try:
            decisions = outputs["decision"]
            summary["positives"] = int(sum(getattr(decisions, "tolist", decisions.copy)()))
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
    return summary


class RequestLogger:
    """Hands each full record to the sink and its :func:`stdout_summary` to ``stream``."""

    def __init__(
        self,
        *,
        stream: TextIO | None = sys.stdout,
        sink: RequestLogSink | None = None,
    ) -> None:
        self._stream = stream
        self._sink = sink

    @property
    def sink(self) -> RequestLogSink | None:
        return self._sink

    def log(self, record: dict[str, Any]) -> None:
        """Emit one record; never raises (logging must not fail the request)."""
        if self._stream is not None:
            try:
                self._stream.write(_encode_or_explain(stdout_summary(record)).decode())
                self._stream.flush()
            except (OSError, ValueError):
                pass
        if self._sink is not None:
            self._sink.submit(_encode_or_explain(record))

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()


def _encode_or_explain(record: dict[str, Any]) -> bytes:
    try:
        return encode_record(record)
    except (TypeError, ValueError) as error:  # e.g. a float key or a too-deep structure
        return encode_record(
            {k: record.get(k) for k in ("ts", "request_id", "model_version", "status")}
            | {"log_error": f"record not serializable: {type(error).__name__}"}
        )


def new_request_id() -> str:
    return uuid.uuid4().hex


PREDICTION_ID_HEADER = "x-prediction-id"


def new_prediction_id() -> str:
    """The id of one prediction, issued here and never taken from the client: 32 hex digits
    from the OS's random source. Feedback labels join on it (``<id>:<i>`` for batch row i)."""
    return os.urandom(16).hex()


def bounded_request_id(candidate: str | None) -> tuple[str, str | None]:
    """``candidate`` if it is a sane id (1-128 of ``A-Za-z0-9._:@/+=-``), else a new one.

    Returns ``(request_id, why_replaced)``; ``why_replaced`` is None when the client's id is
    kept or none was given, and never repeats the client's value.
    """
    if candidate is None or candidate == "":
        return new_request_id(), None
    if _REQUEST_ID.fullmatch(candidate):
        return candidate, None
    if len(candidate) > MAX_REQUEST_ID_LENGTH:
        why = f"longer than {MAX_REQUEST_ID_LENGTH} characters ({len(candidate)})"
    else:
        why = "characters outside A-Za-z0-9._:@/+=-"
    return new_request_id(), why


def utc_timestamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
