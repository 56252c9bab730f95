"""Step processes that die with the run that started them, and scratch that does not outlive it.

A local run starts each pipeline step as a child process (or a container). Killed with SIGKILL,
the run cannot stop its children itself, so each step is started like this:

* in a process group of its own (``start_new_session``), so the step and everything it starts
  (the model server of infra-validation, say) can be stopped together, and a Ctrl-C on the
  terminal reaches the run, which then stops the group itself;
* with a **watchdog**: a tiny separate process whose stdin is a pipe the run holds open. When the
  run ends in any way the kernel closes the run's end; the watchdog reads end-of-file and kills
  the step's group (and its container, under Docker), then removes the step's scratch folder.
  A step that ended normally is first announced with ``done`` and nothing is killed;
* with ``PR_SET_PDEATHSIG`` (Linux), covering the instant between the step's start and the
  watchdog learning its group.

Each step gets its own scratch folder as ``TMPDIR``, inside the run's folder, so its temporary
files (``stroke-model-*``, ``infra-validate-*``, ...) never land in the shared ``/tmp`` and go
away with the step on every exit path. :func:`clear_stale_runs` lets a later run remove what a
killed run's watchdog could not (for example when the whole machine stopped).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

RUNNER_PID_FILE = "runner.pid"
SCRATCH_DIR = "scratch"  # per-step TMPDIRs live under <run folder>/scratch/<step>
WORKSPACE_DIR = "workspace"  # kfp.local's workspace for the run
_PR_SET_PDEATHSIG = 1

# Runs as `python -c`: reads "group <pgid>" / "container <id>" / "done" lines until EOF.
_WATCHDOG_SOURCE = r"""
import os, shutil, signal, subprocess, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C and a closed terminal reach the run;
signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the watchdog stays to clean up after it
group, containers = None, []
for line in sys.stdin:
    kind, _, value = line.strip().partition(" ")
    if kind == "done":
        sys.exit(0)
    if kind == "group":
        group = int(value)
    elif kind == "container":
        containers.append(value)
if group is not None:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
for container in containers:
    subprocess.run(["docker", "rm", "--force", container], capture_output=True, check=False)
for folder in sys.argv[1:]:
    shutil.rmtree(folder, ignore_errors=True)
"""


@dataclasses.dataclass(frozen=True)
class StepContext:
    """Where the step now running on this thread writes its output and its temporary files."""

    name: str
    log: IO[str]
    scratch: Path


_current = threading.local()


def current_step() -> StepContext | None:
    """The step this thread is running (set by the local runner), if any."""
    return getattr(_current, "step", None)


@contextlib.contextmanager
def running_step(context: StepContext) -> Iterator[StepContext]:
    _current.step = context
    try:
        yield context
    finally:
        _current.step = None


class StepWatchdog:
    """The run's side of one step's watchdog: announce the group, then ``done`` or die."""

    def __init__(self, scratch: Path | None = None) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-S", "-c", _WATCHDOG_SOURCE, *([str(scratch)] if scratch else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            # Its own session: a terminal's signals and a kill of the run's group spare it.
            start_new_session=True,
        )

    def _say(self, line: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()

    def watch_group(self, pgid: int) -> None:
        self._say(f"group {pgid}")

    def watch_container(self, container_id: str) -> None:
        self._say(f"container {container_id}")

    def release(self) -> None:
        """The step is over and cleaned up: the watchdog exits without killing anything."""
        with contextlib.suppress(BrokenPipeError, ValueError):
            self._say("done")
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait()


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the thread that started it dies (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the run already died between fork and prctl
            os._exit(1)


def kill_group(pgid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)


@contextlib.contextmanager
def step_scratch(run_dir: Path, step: str) -> Iterator[Path]:
    """``<run folder>/scratch/<step>/``, removed when the step ends however it ends."""
    scratch = run_dir / SCRATCH_DIR / step
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_step_process(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    scratch: Path,
    log: IO[str],
) -> int:
    """Run one step's command to completion; its output (stdout and stderr) goes to ``log``.

    The step runs with ``TMPDIR=scratch`` in a process group watched by a :class:`StepWatchdog`;
    whatever is left of the group when the step's main process exits, or when this function is
    interrupted (KeyboardInterrupt, an exception), is killed. Returns the exit status.
    """
    watchdog = StepWatchdog(scratch)
    try:
        process = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**env, "TMPDIR": str(scratch)},
            start_new_session=True,
            preexec_fn=_die_with_parent,  # only prctl: safe between fork and exec
        )
        try:
            watchdog.watch_group(process.pid)
            return process.wait()
        finally:
            kill_group(process.pid)  # a server or helper the step left behind
            process.wait()
    finally:
        watchdog.release()


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_run_folder(run_dir: Path) -> None:
    """Record which process owns a run folder, so a later run can tell it is abandoned."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RUNNER_PID_FILE).write_text(f"{os.getpid()}\n")


def clear_run_scratch(run_dir: Path) -> None:
    """Remove a run's scratch and kfp workspace (its outputs and logs stay)."""
    for name in (SCRATCH_DIR, WORKSPACE_DIR):
        shutil.rmtree(run_dir / name, ignore_errors=True)


def clear_stale_runs(pipeline_root: Path, *, older_than_s: float) -> list[Path]:
    """Remove the scratch of runs that are gone: their runner process is dead, or their folder
    is older than ``older_than_s`` (a pid can be reused). Returns the run folders cleared."""
    cleared: list[Path] = []
    if not pipeline_root.is_dir():
        return cleared
    now = time.time()
    for run_dir in pipeline_root.iterdir():
        if not any((run_dir / name).exists() for name in (SCRATCH_DIR, WORKSPACE_DIR)):
            continue
        try:
            pid: int | None = int((run_dir / RUNNER_PID_FILE).read_text())
        except (OSError, ValueError):
            pid = None
        if pid == os.getpid():
            continue
        dead = pid is None or not process_alive(pid)
        if dead or now - run_dir.stat().st_mtime > older_than_s:
            clear_run_scratch(run_dir)
            cleared.append(run_dir)
    return cleared
