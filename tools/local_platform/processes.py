"""Start, watch and stop the control plane's processes; free ports; readiness polling.

Every process is started in its own session with its output in ``logs/<name>.log``; its pid and
binary are recorded in ``processes.json`` so that ``stop_all`` ends exactly the processes this
data directory started (a pid whose executable is not ours any more is left alone).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

STATE_FILE = "processes.json"


class ComponentNotReadyError(RuntimeError):
    """A component did not come up in time; the message names it and quotes its log."""


@dataclass(frozen=True)
class Started:
    name: str
    pid: int
    binary: str
    log: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _read_state(directory: Path) -> list[Started]:
    path = directory / STATE_FILE
    if not path.is_file():
        return []
    return [Started(**entry) for entry in json.loads(path.read_text())]


def _write_state(directory: Path, started: list[Started]) -> None:
    (directory / STATE_FILE).write_text(json.dumps([s.__dict__ for s in started], indent=2))


def _is_ours(entry: Started) -> bool:
    """True while ``entry.pid`` is alive and still runs ``entry.binary`` (not a reused pid)."""
    try:
        exe = str(Path(f"/proc/{entry.pid}/exe").readlink())
    except OSError:
        return False
    return exe.removesuffix(" (deleted)") == entry.binary


def running(directory: Path) -> list[Started]:
    return [entry for entry in _read_state(directory) if _is_ours(entry)]


def start(
    directory: Path,
    name: str,
    command: Sequence[str],
    *,
    env: dict[str, str] | None = None,
) -> Started:
    """Start ``command`` in the background (own session), output to ``logs/<name>.log``."""
    logs = directory / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    with log_path.open("ab") as log:
        log.write(f"\n==> {time.strftime('%H:%M:%S')} {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=directory,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    entry = Started(name, process.pid, str(Path(command[0]).resolve()), str(log_path))
    _write_state(directory, [*_read_state(directory), entry])
    return entry


def log_tail(entry: Started, lines: int = 15) -> str:
    try:
        text = Path(entry.log).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def wait_until(
    entry: Started, what: str, check: Callable[[], bool], *, deadline: float, poll: float = 0.25
) -> None:
    """Poll ``check`` until it is true; raise ComponentNotReadyError naming ``entry`` otherwise."""
    last_error = ""
    while True:
        if not _is_ours(entry):
            raise ComponentNotReadyError(
                f"{entry.name} exited before it was ready ({what}); last lines of {entry.log}:\n"
                + log_tail(entry)
            )
        try:
            if check():
                return
        except Exception as error:  # the component is still starting: keep the reason
            last_error = f"{type(error).__name__}: {error}"
        if time.monotonic() > deadline:
            raise ComponentNotReadyError(
                f"{entry.name} did not become ready ({what}) in time"
                + (f"; last check said: {last_error}" if last_error else "")
                + f"; last lines of {entry.log}:\n"
                + log_tail(entry)
            )
        time.sleep(poll)


def stop_all(directory: Path, *, grace_seconds: float = 15.0) -> list[str]:
    """Stop every process this directory started, newest first; return the names stopped."""
    stopped = []
    for entry in reversed(_read_state(directory)):
        if not _is_ours(entry):
            continue
        os.kill(entry.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while _is_ours(entry) and time.monotonic() < deadline:
            _reap(entry.pid)
            time.sleep(0.1)
        if _is_ours(entry):
            os.kill(entry.pid, signal.SIGKILL)
            while _is_ours(entry):
                _reap(entry.pid)
                time.sleep(0.05)
        stopped.append(entry.name)
    (directory / STATE_FILE).unlink(missing_ok=True)
    return stopped


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our child (a zombie still has /proc/<pid>/exe unreadable)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
