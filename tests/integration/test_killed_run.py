"""SIGKILL of `stroke-mlops run` during its promote step: the step dies with it, production stays.

Before steps were tied to their run, the promote step of a killed run carried on and moved
production to the killed run's model.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stroke_mlops import step_processes
from stroke_mlops.registry.store import open_store

pytestmark = pytest.mark.integration


def _processes_under(folder: Path) -> list[int]:
    """Live processes whose command line or TMPDIR names ``folder`` (every step's does)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z":
                continue
            seen = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if str(folder).encode() in seen:
            found.append(int(proc.name))
    return found


def test_sigkill_during_promote_stops_the_step_and_production_stays(
    real_csv_path: Path, tmp_path: Path
) -> None:
    store, outputs = tmp_path / "store", tmp_path / "outputs"
    command = [
        str(Path(sys.executable).with_name("stroke-mlops")),
        "run",
        "--data",
        str(real_csv_path),
        "--store",
        str(store),
        "--pipeline-root",
        str(outputs),
    ]
    runner = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "CI": "true"},
    )
    assert runner.stdout is not None
    seen = []
    for line in runner.stdout:
        seen.append(line)
        if line.split() == ["promote", "started"]:
            break
    else:
        pytest.fail("the run ended before promote:\n" + "".join(seen))
    # Kill as soon as the promote step's process is up (it imports the library, then writes the
    # pointer: a fixed sleep could let a fast promote finish first).
    deadline = time.monotonic() + 30
    while not set(_processes_under(outputs)) - {runner.pid} and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(_processes_under(outputs)) - {runner.pid}, "no step process to kill"
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()

    deadline = time.monotonic() + 10
    while _processes_under(outputs) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = _processes_under(outputs)
    # Give a survivor the time it would need to finish, so the store check below is meaningful.
    deadline = time.monotonic() + 60
    while _processes_under(outputs) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert survivors == [], "steps outlived the killed run"
    assert open_store(str(store)).production() is None
    assert open_store(str(store)).list_versions() != []  # it was killed after publishing

    # The killed run could not remove its kfp workspace; the next run's start-up does.
    (run_dir,) = outputs.iterdir()
    assert not (run_dir / step_processes.SCRATCH_DIR / "promote").exists()
    assert step_processes.clear_stale_runs(outputs, older_than_s=3600) == [run_dir]
    assert not (run_dir / step_processes.WORKSPACE_DIR).exists()
    assert (run_dir / "logs" / "promote.log").is_file()
