"""Start a real model server for a test and fail the test, with its log tail, unless it gets
ready."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from stroke_mlops.serving.infra_validation import ServerProcess


@contextlib.contextmanager
def ready_server(server: ServerProcess, timeout_s: float = 90) -> Iterator[ServerProcess]:
    """Start ``server``; yield it once it answers its readiness check, else fail the test with
    the server's log tail. The process is stopped and its files removed afterwards."""
    server.start()
    try:
        ready, why = server.wait_ready(timeout_s)
        if not ready:
            pytest.fail(f"{why}:\n{server.log_tail()}")
        yield server
    finally:
        server.cleanup()
