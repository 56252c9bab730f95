"""Request logging for monitoring: one JSON record per request, to stdout and/or an object store.

Each record holds the request id, model name and version, protocol, the inputs (as columns:
``{"age": [...], ...}``, ready for ``pandas.DataFrame``), the outputs, the server-side latency
and, for refused requests, the error. :class:`RequestLogger` writes the record as one line to
stdout (what a cluster's log collector picks up) and, optionally, hands it to a
:class:`RequestLogSink`, which batches records into JSON-lines objects written by a background
thread through any ``write(key, body)`` callable (an S3 ``put_object``, a local folder, ...).

The sink never blocks a response: its queue is bounded, a record that does not fit is dropped
and counted (:attr:`RequestLogSink.dropped`), and a failing ``write`` drops its batch, counts it
and logs one warning line.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import orjson

log = logging.getLogger(__name__)

WriteObject = Callable[[str, bytes], None]


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

    ``write(key, body)`` is called with keys ``{prefix}/dt=YYYY-MM-DD/{HHMMSS}-{pid}-{seq}.jsonl``
    (UTC). A batch is written when it holds ``batch_size`` records or ``flush_interval_s``
    after its first record, whichever comes first, and on :meth:`close`.
    """

    def __init__(
        self,
        write: WriteObject,
        *,
        prefix: str = "request-logs",
        batch_size: int = 500,
        flush_interval_s: float = 5.0,
        max_queue: int = 10_000,
    ) -> None:
        if batch_size < 1 or max_queue < 1 or flush_interval_s <= 0:
            raise ValueError(
                "batch_size and max_queue must be >= 1 and flush_interval_s > 0; got "
                f"{batch_size}, {max_queue}, {flush_interval_s}"
            )
        self._write = write
        self._prefix = prefix.strip("/")
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._dropped = 0
        self._written_records = 0
        self._written_objects = 0
        self._sequence = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="request-log-sink", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        """Records lost because the queue was full, the sink closed, or a write failed."""
        with self._lock:
            return self._dropped

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
            self._count_dropped(1)
            return False
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self._count_dropped(1)
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

    def _count_dropped(self, count: int) -> None:
        with self._lock:
            self._dropped += count

    def _run(self) -> None:
        batch: list[bytes] = []
        batch_deadline = 0.0
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
                self._flush(batch)
                batch = []

    def _flush(self, batch: list[bytes]) -> None:
        if not batch:
            return
        now = dt.datetime.now(dt.UTC)
        self._sequence += 1
        key = (
            f"{self._prefix}/dt={now:%Y-%m-%d}/"
            f"{now:%H%M%S}-{os.getpid()}-{self._sequence:06d}.jsonl"
        )
        try:
            self._write(key, b"".join(batch))
        except Exception as error:  # any sink failure must not reach the server
            self._count_dropped(len(batch))
            log.warning(
                "request log: writing %s failed (%d records dropped): %s", key, len(batch), error
            )
            return
        with self._lock:
            self._written_records += len(batch)
            self._written_objects += 1


def directory_writer(root: Path) -> WriteObject:
    """A ``write(key, body)`` that stores objects as files under ``root`` (local runs, tests)."""

    def write(key: str, body: bytes) -> None:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(body)
        partial.replace(path)

    return write


def s3_writer(uri: str) -> WriteObject:
    """A ``write(key, body)`` that puts objects under ``s3://bucket/prefix`` (MinIO, monitoring).

    Endpoint and credentials come from the AWS_* environment (see stroke_mlops.registry.uris).
    """
    import io

    from stroke_mlops.registry.uris import minio_client_from_env, parse_s3_uri

    bucket, prefix = parse_s3_uri(uri)
    client = minio_client_from_env()

    def write(key: str, body: bytes) -> None:
        name = f"{prefix.rstrip('/')}/{key}" if prefix else key
        client.put_object(
            bucket, name, io.BytesIO(body), len(body), content_type="application/x-ndjson"
        )

    return write


def writer_for(uri: str) -> WriteObject:
    """The writer for a request-log destination: a folder, ``file://`` or ``s3://`` URI."""
    if uri.startswith("s3://"):
        return s3_writer(uri)
    from stroke_mlops.registry.uris import file_uri_to_path

    return directory_writer(file_uri_to_path(uri) if uri.startswith("file://") else Path(uri))


class RequestLogger:
    """Writes each request record as a JSON line to ``stream`` (stdout) and/or a sink."""

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
        try:
            line = encode_record(record)
        except (TypeError, ValueError) as error:  # e.g. a float key or a too-deep structure
            line = encode_record(
                {k: record.get(k) for k in ("ts", "request_id", "model_version", "status")}
                | {"log_error": f"record not serializable: {error}"}
            )
        if self._stream is not None:
            try:
                self._stream.write(line.decode())
                self._stream.flush()
            except (OSError, ValueError):
                pass
        if self._sink is not None:
            self._sink.submit(line)

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()


def new_request_id() -> str:
    return uuid.uuid4().hex


def utc_timestamp() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
