"""Raw-socket clients for the hostile-client tests: what a browser or SDK would never send."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from stroke_mlops.serving.infra_validation import ServerProcess


def connect(server: ServerProcess, timeout_s: float = 5.0) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=timeout_s)


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket, timeout_s: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one response with a Content-Length."""
    sock.settimeout(timeout_s)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a complete response head: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(status_line.split()[1]), headers, rest[:length]


def exchange(
    server: ServerProcess,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection, with exactly the headers given (plus its length)."""
    with connect(server) as sock:
        all_headers = {**(headers or {}), "content-length": str(len(body))}
        sock.sendall(request_head(method, path, all_headers) + body)
        return read_response(sock)


def is_closed_by_peer(sock: socket.socket, wait_s: float = 0.0) -> bool:
    """Whether the server closed ``sock`` (EOF or reset) within ``wait_s``."""
    sock.settimeout(max(wait_s, 0.001))
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (TimeoutError, BlockingIOError):
        return False


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def stderr_lines(server: ServerProcess) -> list[str]:
    return server.stderr_path.read_text(errors="replace").splitlines()


def new_log_lines(server: ServerProcess, before: int, settle_s: float = 0.3) -> list[str]:
    """Lines the server logged after the first ``before``, once it has been quiet a moment."""
    deadline = time.monotonic() + 3.0
    lines = stderr_lines(server)
    while len(lines) == before and time.monotonic() < deadline:
        time.sleep(0.05)
        lines = stderr_lines(server)
    time.sleep(settle_s)
    return stderr_lines(server)[before:]
