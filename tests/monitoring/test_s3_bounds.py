"""S3 calls fail within a stated bound against a stalled endpoint (accepts, never answers)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stroke_mlops.cli import main
from stroke_mlops.registry.uris import S3Bounds, StorageError, s3_bounds_from_env


@pytest.fixture
def stalled_endpoint() -> Iterator[str]:
    """http://127.0.0.1:PORT that accepts every connection and never sends a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
        listener.close()


def test_the_default_bound_is_30_seconds_for_every_attempt_and_pause() -> None:
    bounds = s3_bounds_from_env()
    pauses = 0.4  # urllib3's back-off before the second retry (factor 0.2)
    assert bounds == S3Bounds(30.0, 2)
    assert bounds.attempt_s * (bounds.retries + 1) + pauses <= 30.0


def test_bad_bound_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for total, retries in (("0", "1"), ("nan", "1"), ("abc", "1"), ("5", "11")):
        monkeypatch.setenv("STROKE_S3_TIMEOUT_S", total)
        monkeypatch.setenv("STROKE_S3_RETRIES", retries)
        with pytest.raises(StorageError, match="STROKE_S3_"):
            s3_bounds_from_env()


def test_a_stalled_endpoint_fails_the_monitor_within_the_bound(
    stalled_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", stalled_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-only")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-only")
    monkeypatch.setenv("STROKE_S3_TIMEOUT_S", "3")
    monkeypatch.setenv("STROKE_S3_RETRIES", "2")
    started = time.monotonic()
    code = main(["monitor", "--store", "s3://models/prod", "--requests", "s3://logs/requests",
                 "--output", str(tmp_path / "out")])  # fmt: skip
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1
    assert "Traceback" not in err
    assert 2.0 <= elapsed <= 3.0 + 1.5  # three attempts of ~0.87 s plus a 0.4 s pause
