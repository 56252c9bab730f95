"""What a person sees while a local run goes: one line per step as it starts and as it ends.

On a terminal a status line at the bottom shows the running steps and their seconds, redrawn in
place; each finished step leaves a permanent line above it. In CI (``CI=true``), with
``TERM=dumb`` or when the output is not a terminal, the same events are plain lines, one each.
Step output never comes here: it goes to each step's log file.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

RUNNING, SUCCESS, FAILURE = "RUNNING", "SUCCESS", "FAILURE"
NAME_WIDTH = 16
LOG_TAIL_LINES = 20
_REFRESH_S = 0.25
_SPINNER = "|/-\\"


@dataclasses.dataclass
class StepRecord:
    """One step of a run: its status, duration, key figure and where its output went."""

    name: str
    status: str = RUNNING
    seconds: float = 0.0
    figure: str = ""
    log_path: Path | None = None
    started: float = dataclasses.field(default=0.0, repr=False)

    def line(self) -> str:
        figure = f"  {self.figure}" if self.figure else ""
        return f"  {self.name:<{NAME_WIDTH}} {self.status:<8} {self.seconds:6.1f} s{figure}"


def wants_live_display(stream: TextIO) -> bool:
    """A live display only on a real terminal, outside CI, with a capable TERM."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return False
    if os.environ.get("TERM", "") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class RunProgress:
    """Thread-safe start/finish events of the steps, shown live or as plain lines."""

    def __init__(self, stream: TextIO, *, live: bool | None = None) -> None:
        self.stream = stream
        self.live = wants_live_display(stream) if live is None else live
        self.steps: dict[str, StepRecord] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> RunProgress:
        if self.live:
            self._ticker = threading.Thread(target=self._tick, name="run-progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._clear_status()
            self.stream.flush()

    def start(self, name: str, log_path: Path | None = None) -> StepRecord:
        record = StepRecord(name, log_path=log_path, started=time.perf_counter())
        with self._lock:
            self.steps[name] = record
            if not self.live:
                self._write(f"  {name:<{NAME_WIDTH}} started\n")
            else:
                self._draw_status()
        return record

    def finish(self, name: str, status: str, figure: str = "") -> StepRecord:
        with self._lock:
            record = self.steps[name]
            record.status = status
            record.seconds = round(time.perf_counter() - record.started, 2)
            record.figure = figure
            self._clear_status()
            self._write(record.line() + "\n")
            self._draw_status()
        return record

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _status_text(self) -> str:
        now = time.perf_counter()
        running = [s for s in self.steps.values() if s.status == RUNNING]
        if not running:
            return ""
        spin = _SPINNER[int(now / _REFRESH_S) % len(_SPINNER)]
        return f"{spin} " + ", ".join(f"{s.name} {now - s.started:4.0f} s" for s in running)

    def _clear_status(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[K")

    def _draw_status(self) -> None:
        if self.live and (text := self._status_text()):
            self.stream.write(text)
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(_REFRESH_S):
            with self._lock:
                self._clear_status()
                self._draw_status()


def read_log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of a step's log (empty when there is none)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]


def error_line(log_lines: Sequence[str]) -> str | None:
    """The exception a failed Python step ended with: the traceback's last ``Name: message``."""
    for line in reversed(log_lines):
        head, sep, _ = line.strip().partition(":")
        name = head.rsplit(".", 1)[-1]
        if sep and name.isidentifier() and name.endswith(("Error", "Exception", "Exit")):
            return line.strip()
    return None
