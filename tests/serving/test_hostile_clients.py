"""The real model server against hostile and broken clients, over raw sockets on 127.0.0.1:
oversized bodies refused unread, late headers and bodies cut off, client mistakes answered 4xx
with one log line and no traceback, and a bounded flood that leaves memory and service intact."""

from __future__ import annotations

import contextlib
import json
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stroke_mlops.serving.http_limits import ServingLimits
from stroke_mlops.serving.infra_validation import ServerProcess, v1_body, v2_body
from tests.serving.hostile import (
    connect,
    exchange,
    is_closed_by_peer,
    new_log_lines,
    read_response,
    request_head,
    rss_bytes,
    stderr_lines,
)
from tests.serving.ready import ready_server

pytestmark = pytest.mark.integration

V1 = "/v1/models/stroke:predict"
V2 = "/v2/models/stroke/infer"
JSON = {"content-type": "application/json"}
HEADER_TIMEOUT_S = 1.5
BODY_TIMEOUT_S = 1.5
POD_MEMORY_LIMIT = 1024**3
LIMITS = ServingLimits()


@pytest.fixture(scope="module")
def server(lr_model_dir: Path) -> Iterator[ServerProcess]:
    """The server with the deployed size limits and short timeouts (so the tests wait less)."""
    process = ServerProcess(
        str(lr_model_dir),
        extra_args=[
            "--header-timeout-s",
            str(HEADER_TIMEOUT_S),
            "--body-timeout-s",
            str(BODY_TIMEOUT_S),
        ],
    )
    with ready_server(process):
        yield process


@pytest.fixture(scope="module")
def valid_v1(signature_doc: dict[str, Any]) -> bytes:
    return v1_body(signature_doc["examples"])


def served(server: ServerProcess, body: bytes) -> bool:
    status, _, answer = exchange(server, "POST", V1, body, JSON)
    return status == 200 and b"predictions" in answer


def pid(server: ServerProcess) -> int:
    assert server.process is not None
    return server.process.pid


# --- size ----------------------------------------------------------------------------------


def test_an_oversized_body_is_refused_before_it_is_read(server: ServerProcess) -> None:
    rss_before = rss_bytes(pid(server))
    lines_before = len(stderr_lines(server))
    with connect(server) as sock:
        sock.sendall(request_head("POST", V1, {**JSON, "content-length": str(300 * 1024**2)}))
        status, headers, answer = read_response(sock)
        assert status == 413 and headers["connection"] == "close"
        assert f"at most {LIMITS.max_body_bytes} are accepted" in json.loads(answer)["error"]
        assert is_closed_by_peer(sock, wait_s=2.0)
    assert rss_bytes(pid(server)) - rss_before < 20 * 1024**2
    (logged,) = new_log_lines(server, lines_before)
    assert "refused request (413)" in logged


def test_a_chunked_body_is_cut_off_at_the_limit(server: ServerProcess, valid_v1: bytes) -> None:
    rss_before = rss_bytes(pid(server))
    chunk = b"x" * (1024 * 1024)
    sent = 0
    with connect(server) as sock:
        sock.sendall(request_head("POST", V1, {**JSON, "transfer-encoding": "chunked"}))
        try:
            while sent < 300 * len(chunk):  # a 300 MB body, unless the server stops it
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        else:
            pytest.fail("the server read a 300 MB chunked body")
    assert sent < LIMITS.max_body_bytes + 16 * 1024**2  # cut off near the limit
    assert rss_bytes(pid(server)) - rss_before < 64 * 1024**2
    assert served(server, valid_v1)


def test_the_largest_batch_fits_under_the_body_limit(
    server: ServerProcess, signature_doc: dict[str, Any]
) -> None:
    rows = [signature_doc["examples"][i % 3] for i in range(LIMITS.max_instances)]
    body = json.dumps({"instances": rows}, indent=4).encode()
    assert len(body) < LIMITS.max_body_bytes
    status, _, answer = exchange(server, "POST", V1, body, JSON)
    assert status == 200 and len(json.loads(answer)["predictions"]) == LIMITS.max_instances
    rows.append(rows[0])
    status, _, answer = exchange(server, "POST", V1, json.dumps({"instances": rows}).encode(), JSON)
    assert status == 400 and "at most 10000 are accepted" in json.loads(answer)["error"]


# --- time ----------------------------------------------------------------------------------


def test_a_late_body_gets_408_and_the_connection_closes(server: ServerProcess) -> None:
    lines_before = len(stderr_lines(server))
    with connect(server) as sock:
        sock.sendall(request_head("POST", V1, {**JSON, "content-length": "1000"}) + b'{"inst')
        started = time.monotonic()
        status, headers, _ = read_response(sock, timeout_s=BODY_TIMEOUT_S + 3)
        assert status == 408 and headers["connection"] == "close"
        assert time.monotonic() - started < BODY_TIMEOUT_S + 4
        assert is_closed_by_peer(sock, wait_s=1.0)
    (logged,) = new_log_lines(server, lines_before)
    assert "refused request (408)" in logged


def test_huge_headers_get_431(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(request_head("GET", "/v2/health/live", {"x-filler": "a" * 100_000}))
        status, _, _ = read_response(sock)
    assert status == 431


def test_silent_and_slow_header_connections_are_closed_while_requests_get_through(
    server: ServerProcess, valid_v1: bytes
) -> None:
    silent = [connect(server) for _ in range(300)]
    slow = [connect(server) for _ in range(300)]
    try:
        for sock in slow:
            sock.sendall(b"POST /v1/models/stroke:predict HTTP/1.1\r\nhost: 1")
        opened = time.monotonic()
        assert served(server, valid_v1)  # while 600 connections hold no complete request
        while time.monotonic() - opened < HEADER_TIMEOUT_S + 1.0:
            for sock in slow:  # one header byte at a time, never finishing
                with contextlib.suppress(OSError):
                    sock.send(b"2")
            time.sleep(0.25)
        still_open = silent + slow
        deadline = time.monotonic() + 5.0  # slack for a loaded machine, not for the server
        while still_open and time.monotonic() < deadline:
            still_open = [sock for sock in still_open if not is_closed_by_peer(sock)]
            time.sleep(0.1)
        assert still_open == [], f"{len(still_open)} of 600 connections still open"
    finally:
        for sock in silent + slow:
            sock.close()
    assert served(server, valid_v1)


def test_an_idle_keep_alive_connection_is_closed(server: ServerProcess, valid_v1: bytes) -> None:
    with connect(server) as sock:
        sock.sendall(request_head("POST", V1, {**JSON, "content-length": str(len(valid_v1))}))
        sock.sendall(valid_v1)
        assert read_response(sock)[0] == 200
        assert not is_closed_by_peer(sock)
        assert is_closed_by_peer(sock, wait_s=HEADER_TIMEOUT_S + 4)


# --- client mistakes: 4xx, one log line, no traceback ----------------------------------------


def _binary_v2(
    signature: dict[str, Any], examples: list[dict[str, Any]], *, cut: int = 0
) -> tuple[bytes, dict[str, str]]:
    """A binary-tensor V2 body for ``examples`` (last ``cut`` bytes dropped)."""
    inputs, tails = [], []
    for spec in signature["inputs"]:
        values = [example[spec["name"]] for example in examples]
        if spec["datatype"] == "BYTES":
            raw = b"".join(struct.pack("<I", len(v)) + v.encode() for v in values)
        elif spec["datatype"] == "INT64":
            raw = np.array(values, "<i8").tobytes()
        else:
            raw = np.array([np.nan if v is None else v for v in values], "<f8").tobytes()
        inputs.append(
            {
                "name": spec["name"],
                "datatype": spec["datatype"],
                "shape": [len(values)],
                "parameters": {"binary_data_size": len(raw)},
            }
        )
        tails.append(raw)
    head = json.dumps({"inputs": inputs}).encode()
    body = head + b"".join(tails)
    headers = {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(head)),
    }
    return body[: len(body) - cut], headers


def test_a_binary_v2_request_is_served(
    server: ServerProcess, signature_doc: dict[str, Any]
) -> None:
    examples = [e for e in signature_doc["examples"] if e["bmi"] is not None]
    body, headers = _binary_v2(signature_doc, examples)
    status, _, answer = exchange(server, "POST", V2, body, headers)
    assert status == 200, answer
    outputs = {o["name"]: o["data"] for o in json.loads(answer)["outputs"]}
    assert len(outputs["probability"]) == len(examples)


def _mistakes(signature: dict[str, Any]) -> list[tuple[str, str, bytes, dict[str, str], int, str]]:
    examples = [e for e in signature["examples"] if e["bmi"] is not None]
    v2_valid = json.loads(v2_body(examples, signature))
    shape_text = json.loads(json.dumps(v2_valid))
    shape_text["inputs"][0]["shape"] = [str(len(examples))]
    binary, binary_headers = _binary_v2(signature, examples)
    truncated, _ = _binary_v2(signature, examples, cut=5)
    head_length = int(binary_headers["inference-header-content-length"])
    head = json.loads(binary[:head_length])
    age_at = next(i for i, s in enumerate(signature["inputs"]) if s["name"] == "age")
    head["inputs"][age_at]["parameters"]["binary_data_size"] += 8  # says more than it sends
    inconsistent_head = json.dumps(head).encode()
    gender_at = next(i for i, s in enumerate(signature["inputs"]) if s["datatype"] == "BYTES")
    head = json.loads(binary[:head_length])
    start = head_length + sum(
        t["parameters"]["binary_data_size"] for t in head["inputs"][:gender_at]
    )
    past_end = bytearray(binary)
    past_end[start : start + 4] = struct.pack("<I", 1_000_000)
    instance = json.dumps(examples[0])
    duplicate = ('{"instances": [' + instance[:-1] + ', "age": 40}]}').encode()
    text = {"content-type": "text/plain"}
    return [
        ("deep-nesting", V1, b"[" * 200_000, text, 400, "nested too deeply"),
        ("5000-digits", V1, b'{"instances": [' + b"7" * 5000 + b"]}", text, 400, "4300 digits"),
        ("v2-deep-nesting", V2, b'{"inputs": ' + b"[" * 200_000, JSON, 400, "nested too deeply"),
        (
            "bad-json-length",
            V2,
            binary,
            {**binary_headers, "inference-header-content-length": "12abc"},
            400,
            "inference-header-content-length",
        ),
        ("truncated-binary", V2, truncated, binary_headers, 400, "bytes of binary data are left"),
        (
            "bytes-length-past-data",
            V2,
            bytes(past_end),
            binary_headers,
            400,
            "says 1000000 bytes but only",
        ),
        (
            "inconsistent-binary-size",
            V2,
            inconsistent_head + binary[head_length:],
            {**binary_headers, "inference-header-content-length": str(len(inconsistent_head))},
            400,
            "binary_data_size",
        ),
        ("v2-shape-text", V2, json.dumps(shape_text).encode(), JSON, 400, '"shape" must be'),
        ("v1-duplicate-key", V1, duplicate, JSON, 400, 'the key "age" appears twice'),
        ("unknown-model", "/v1/models/nope:predict", b"{}", JSON, 404, "nope"),
        ("v2-unknown-model", "/v2/models/nope/infer", b"{}", JSON, 404, "nope"),
    ]


MISTAKE_IDS = [
    "deep-nesting",
    "5000-digits",
    "v2-deep-nesting",
    "bad-json-length",
    "truncated-binary",
    "bytes-length-past-data",
    "inconsistent-binary-size",
    "v2-shape-text",
    "v1-duplicate-key",
    "unknown-model",
    "v2-unknown-model",
]


@pytest.mark.parametrize("case", MISTAKE_IDS)
def test_a_client_mistake_is_a_4xx_with_one_log_line(
    server: ServerProcess, signature_doc: dict[str, Any], valid_v1: bytes, case: str
) -> None:
    cases = {c[0]: c[1:] for c in _mistakes(signature_doc)}
    path, body, headers, expected_status, message = cases[case]
    before = len(stderr_lines(server))
    status, _, answer = exchange(server, "POST", path, body, headers)
    logged = new_log_lines(server, before)

    assert status == expected_status, answer
    assert message in json.loads(answer)["error"]
    assert len(logged) == 1 and "Traceback" not in logged[0], logged
    assert served(server, valid_v1)


def test_get_on_predict_is_a_4xx_with_one_log_line(server: ServerProcess) -> None:
    before = len(stderr_lines(server))
    status, _, _ = exchange(server, "GET", V1)
    logged = new_log_lines(server, before)
    assert 400 <= status < 500
    assert len(logged) <= 1 and not any("Traceback" in line for line in logged), logged


def test_disconnects_mid_body_log_no_traceback(server: ServerProcess, valid_v1: bytes) -> None:
    before = len(stderr_lines(server))
    for _ in range(50):
        with connect(server) as sock:
            sock.sendall(request_head("POST", V1, {**JSON, "content-length": "5000"}) + b'{"in')
    assert served(server, valid_v1)
    time.sleep(0.3)
    assert stderr_lines(server)[before:] == []


# --- a bounded flood -----------------------------------------------------------------------


def test_a_flood_stays_under_the_memory_limit_and_a_request_gets_through(
    server: ServerProcess, valid_v1: bytes
) -> None:
    """For about 4 s: 500 idle connections, 8 clients streaming endless chunked bodies, and
    oversized Content-Lengths; the server's RSS is sampled throughout."""
    server_pid = pid(server)
    stop = threading.Event()
    start = rss_bytes(server_pid)
    peak = [start]
    refused = [0]
    chunk = b"%x\r\n" % (256 * 1024) + b"y" * (256 * 1024) + b"\r\n"

    def stream_bodies() -> None:
        while not stop.is_set():
            try:
                with connect(server) as sock:
                    sock.sendall(request_head("POST", V2, {**JSON, "transfer-encoding": "chunked"}))
                    while not stop.is_set():
                        sock.sendall(chunk)
            except OSError:
                refused[0] += 1

    def announce_huge_bodies() -> None:
        while not stop.is_set():
            try:
                with connect(server) as sock:
                    sock.sendall(request_head("POST", V1, {"content-length": str(10**12)}))
                    if read_response(sock)[0] == 413:
                        refused[0] += 1
            except OSError:
                pass

    def sample_rss() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_bytes(server_pid))
            time.sleep(0.05)

    idle = [connect(server) for _ in range(500)]
    workers = [threading.Thread(target=stream_bodies) for _ in range(8)]
    workers += [threading.Thread(target=announce_huge_bodies) for _ in range(2)]
    workers.append(threading.Thread(target=sample_rss))
    for worker in workers:
        worker.start()
    try:
        time.sleep(2.0)
        started = time.monotonic()
        answered = served(server, valid_v1)
        latency = time.monotonic() - started
        time.sleep(2.0)
    finally:
        stop.set()
        for worker in workers:
            worker.join(10)
        for sock in idle:
            sock.close()
    print(
        f"flood: server RSS {start / 1024**2:.0f} MiB before, peak {peak[0] / 1024**2:.0f} MiB; "
        f"{refused[0]} bodies refused; a normal request answered in {latency:.2f} s"
    )
    assert answered  # within the client's 5 s timeout
    assert refused[0] > 10  # the flood was real: bodies cut off, huge ones refused
    assert peak[0] < POD_MEMORY_LIMIT / 2, f"peak RSS {peak[0] / 1024**2:.0f} MiB"
    assert served(server, valid_v1)
