"""Request records: one JSON line per request; the batching sink never blocks or raises."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from stroke_mlops.serving.request_log import (
    RequestLogger,
    RequestLogSink,
    directory_writer,
    writer_for,
)
from tests.s3_server import S3Bucket

WAIT_S = 30.0  # generous bound for the background thread; never asserted as a speed


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the sink thread did not get there")
        time.sleep(0.01)


class Recorder:
    """A write(key, body) that keeps what it was given."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def __call__(self, key: str, body: bytes) -> None:
        with self.lock:
            self.objects[key] = body

    def records(self) -> list[dict[str, object]]:
        with self.lock:
            bodies = [self.objects[k] for k in sorted(self.objects)]
        return [json.loads(line) for body in bodies for line in body.splitlines()]


def test_sink_gets_the_full_record_and_stdout_only_its_metadata() -> None:
    stream, recorder = io.StringIO(), Recorder()
    sink = RequestLogSink(recorder, batch_size=10, flush_interval_s=60)
    logger = RequestLogger(stream=stream, sink=sink)
    logger.log(
        {
            "request_id": "a",
            "model_version": "v1",
            "status": "ok",
            "inputs": {"age": [71.5, 33.0]},
            "outputs": {"probability": np.array([0.25, 0.5]), "decision": np.array([0, 1])},
            "latency_ms": np.float64(1.5),
        }
    )
    logger.log({"request_id": "b", "status": "invalid", "reason": "invalid_value", "error": "x"})
    logger.close()

    assert recorder.records() == [
        {
            "request_id": "a",
            "model_version": "v1",
            "status": "ok",
            "inputs": {"age": [71.5, 33.0]},
            "outputs": {"probability": [0.25, 0.5], "decision": [0, 1]},
            "latency_ms": 1.5,
        },
        {"request_id": "b", "status": "invalid", "reason": "invalid_value", "error": "x"},
    ]
    assert [json.loads(line) for line in stream.getvalue().splitlines()] == [
        {"request_id": "a", "model_version": "v1", "status": "ok", "latency_ms": 1.5}
        | {"positives": 1},
        {"request_id": "b", "status": "invalid", "reason": "invalid_value"},
    ]


def test_sink_batches_records_into_jsonl_objects_under_the_prefix() -> None:
    recorder = Recorder()
    sink = RequestLogSink(recorder, prefix="logs/stroke", batch_size=10, flush_interval_s=60)
    logger = RequestLogger(stream=None, sink=sink)
    for index in range(25):
        logger.log({"n": index})
    wait_until(lambda: sink.written >= 20)
    sink.close()

    assert [r["n"] for r in recorder.records()] == list(range(25))
    sizes = sorted(len(body.splitlines()) for body in recorder.objects.values())
    assert sizes == [5, 10, 10]
    assert all(k.startswith("logs/stroke/dt=") and k.endswith(".jsonl") for k in recorder.objects)
    assert (sink.written, sink.objects_written, sink.dropped) == (25, 3, 0)


def test_a_partial_batch_is_flushed_after_the_interval() -> None:
    recorder = Recorder()
    sink = RequestLogSink(recorder, batch_size=1000, flush_interval_s=0.05)
    for index in range(3):
        sink.submit(json.dumps({"n": index}).encode() + b"\n")
    wait_until(lambda: sink.written == 3)  # no close(): the interval alone flushed it
    assert [r["n"] for r in recorder.records()] == [0, 1, 2]
    sink.close()


def test_a_full_queue_drops_and_counts_instead_of_blocking() -> None:
    release = threading.Event()
    entered = threading.Event()

    def stuck_write(key: str, body: bytes) -> None:
        entered.set()
        release.wait(WAIT_S)

    sink = RequestLogSink(stuck_write, batch_size=1, max_queue=3, flush_interval_s=60)
    sink.submit(b"{}\n")
    wait_until(entered.is_set)  # the thread is now stuck writing the first record
    accepted = [sink.submit(b"{}\n") for _ in range(10)]
    assert accepted == [True] * 3 + [False] * 7
    assert sink.dropped == 7
    release.set()
    sink.close()
    assert sink.written == 4


def test_a_failing_write_is_counted_and_later_batches_still_go_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    calls = {"n": 0}

    def flaky(key: str, body: bytes) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("store unreachable")
        recorder(key, body)

    sink = RequestLogSink(flaky, batch_size=2, flush_interval_s=60)
    for index in range(4):
        sink.submit(json.dumps({"n": index}).encode() + b"\n")
    sink.close()

    assert sink.dropped == 2 and sink.written == 2
    assert [r["n"] for r in recorder.records()] == [2, 3]
    assert "store unreachable" in caplog.text


def test_records_after_close_are_dropped() -> None:
    sink = RequestLogSink(Recorder(), batch_size=10)
    sink.close()
    assert sink.submit(b"{}\n") is False
    assert sink.dropped == 1


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="batch_size and max_queue must be >= 1"):
        RequestLogSink(Recorder(), batch_size=0)


def test_directory_writer_stores_objects_as_files(tmp_path: Path) -> None:
    write = directory_writer(tmp_path)
    write("request-logs/dt=2024-01-01/a.jsonl", b'{"n": 1}\n')
    assert (tmp_path / "request-logs/dt=2024-01-01/a.jsonl").read_bytes() == b'{"n": 1}\n'
    assert not list(tmp_path.rglob("*.partial"))


def test_logging_never_raises_on_values_json_cannot_hold() -> None:
    recorder = Recorder()
    sink = RequestLogSink(recorder, batch_size=10, flush_interval_s=60)
    logger = RequestLogger(stream=io.StringIO(), sink=sink)
    logger.log({"request_id": "x", "inputs": {"gender": [b"Male"]}, "odd": {1.5: "float key"}})
    logger.log({"request_id": "y", "inputs": {"gender": [b"Female"]}})
    logger.close()

    first, second = recorder.records()
    assert first["request_id"] == "x" and "not serializable" in str(first["log_error"])
    assert second == {"request_id": "y", "inputs": {"gender": ["Female"]}}


def test_request_records_reach_an_s3_bucket_for_monitoring(s3_bucket: S3Bucket) -> None:
    sink = RequestLogSink(
        writer_for(s3_bucket.uri("monitoring/requests")), batch_size=2, flush_interval_s=0.1
    )
    logger = RequestLogger(stream=None, sink=sink)
    for number in range(3):
        logger.log({"request_id": f"r{number}", "model_version": "v1", "status": 200})
    logger.close()
    keys = s3_bucket.keys("monitoring/requests/")
    assert keys and all(key.endswith(".jsonl") for key in keys)
    records = [json.loads(line) for key in keys for line in s3_bucket.read(key).splitlines()]
    assert sorted(r["request_id"] for r in records) == ["r0", "r1", "r2"]
    assert sink.dropped == 0


# --------------------------------------------------------------------------------------------
# Private stores and the retention setting

TODAY = dt.date(2026, 11, 30)


def test_directory_store_writes_owner_only_files_and_folders(tmp_path: Path) -> None:
    previous = os.umask(0)  # without our modes, files would come out 0666 and folders 0777
    try:
        write = directory_writer(tmp_path / "logs")
        write("request-logs/dt=2026-11-30/a.jsonl", b'{"n": 1}\n')
    finally:
        os.umask(previous)
    written = tmp_path / "logs/request-logs/dt=2026-11-30/a.jsonl"
    assert written.stat().st_mode & 0o777 == 0o600
    for folder in (written.parent, written.parent.parent, tmp_path / "logs"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder


def test_retention_deletes_old_day_partitions_of_a_folder(tmp_path: Path) -> None:
    store = directory_writer(tmp_path)
    for day in ("2026-01-01", "2026-11-22", "2026-11-23", "2026-11-29"):
        store(f"request-logs/dt={day}/a.jsonl", b"{}\n")
        store(f"request-logs/dt={day}/b.jsonl", b"{}\n")
    (tmp_path / "request-logs" / "notes").mkdir()  # not a partition: left alone

    sink = RequestLogSink(store, retention_days=7, today=lambda: TODAY)
    sink.submit(b'{"n": 1}\n')
    sink.close()

    left = sorted(p.name for p in (tmp_path / "request-logs").iterdir())
    assert left == [
        "dt=2026-11-23",
        "dt=2026-11-29",
        f"dt={dt.datetime.now(dt.UTC):%Y-%m-%d}",
        "notes",
    ]
    assert sink.expired_objects == 4 and sink.written == 1


def test_retention_deletes_old_day_partitions_in_s3(s3_bucket: S3Bucket) -> None:
    for day in ("2025-12-31", "2026-11-01", "2026-11-29"):
        s3_bucket.put(f"monitoring/request-logs/dt={day}/a.jsonl", b"{}\n")
    s3_bucket.put("monitoring/request-logs-other/dt=2020-01-01/a.jsonl", b"{}\n")

    store = writer_for(s3_bucket.uri("monitoring"))
    sink = RequestLogSink(store, retention_days=30, today=lambda: TODAY)
    sink.close()

    assert s3_bucket.keys("monitoring/") == [
        "monitoring/request-logs-other/dt=2020-01-01/a.jsonl",
        "monitoring/request-logs/dt=2026-11-01/a.jsonl",
        "monitoring/request-logs/dt=2026-11-29/a.jsonl",
    ]
    assert sink.expired_objects == 1


def test_s3_request_log_objects_are_private(s3_bucket: S3Bucket) -> None:
    import boto3

    store = writer_for(s3_bucket.uri("monitoring"))
    store("request-logs/dt=2026-11-30/a.jsonl", b"{}\n")
    client = boto3.client(
        "s3",
        endpoint_url=s3_bucket.endpoint_url,
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    acl = client.get_object_acl(
        Bucket=s3_bucket.name, Key="monitoring/request-logs/dt=2026-11-30/a.jsonl"
    )
    assert [grant["Permission"] for grant in acl["Grants"]] == ["FULL_CONTROL"]
    assert acl["Grants"][0]["Grantee"]["ID"] == acl["Owner"]["ID"]


def test_retention_needs_a_store_that_can_delete() -> None:
    with pytest.raises(ValueError, match="retention_days needs a store"):
        RequestLogSink(Recorder(), retention_days=7)
    with pytest.raises(ValueError, match="retention_days must be >= 1"):
        RequestLogSink(Recorder(), retention_days=0)


def test_the_server_command_checks_the_retention_setting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from stroke_mlops.serving.predictor import main

    for argv in (
        ["--request-log-retention-days", "0", "--request-log-uri", "/tmp/x"],
        ["--request-log-retention-days", "7"],
    ):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
    errors = capsys.readouterr().err
    assert "expected a whole number of days >= 1; got '0'" in errors
    assert "--request-log-retention-days needs --request-log-uri" in errors

    from stroke_mlops.cli import main as stroke_mlops  # `stroke-mlops serve` passes it on

    with pytest.raises(SystemExit) as exited:
        stroke_mlops(["serve", "--model-uri", "/nowhere", "--request-log-retention-days", "-3"])
    assert exited.value.code == 2
    assert "expected a whole number of days >= 1; got '-3'" in capsys.readouterr().err


def test_two_sinks_of_one_process_sharing_a_folder_keep_every_record(tmp_path: Path) -> None:
    """Two predictors behind a router write to one store, often as the same pid (1, in their
    pods) in the same second: each sink's objects get their own keys, nothing is overwritten."""
    sinks = [
        RequestLogSink(directory_writer(tmp_path), batch_size=5, flush_interval_s=60)
        for _ in range(2)
    ]
    for index in range(10):
        for number, sink in enumerate(sinks):
            sink.submit(json.dumps({"sink": number, "n": index}).encode() + b"\n")
    for sink in sinks:
        sink.close()

    objects = sorted(tmp_path.rglob("*.jsonl"))
    records = [json.loads(line) for path in objects for line in path.read_text().splitlines()]
    assert len(objects) == 4 and len(records) == 20
    assert sorted((r["sink"], r["n"]) for r in records) == [
        (s, n) for s in (0, 1) for n in range(10)
    ]
