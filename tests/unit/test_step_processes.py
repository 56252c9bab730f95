"""Steps die with the run that started them; scratch does not outlive them."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stroke_mlops import step_processes
from stroke_mlops.registry.store import LocalModelStore
from stroke_mlops.run_progress import RunProgress, error_line, wants_live_display


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_a_step_leaves_no_process_behind(tmp_path: Path) -> None:
    # The step starts a helper in the background and exits: the helper goes with it.
    pid_file = tmp_path / "helper.pid"
    step = f"sleep 300 & echo $! > {pid_file}; echo step output; exit 3"
    with (tmp_path / "step.log").open("w") as log:
        code = step_processes.run_step_process(
            ["sh", "-c", step], env=dict(os.environ), scratch=tmp_path, log=log
        )
    assert code == 3
    assert _wait_gone(int(pid_file.read_text()))
    assert (tmp_path / "step.log").read_text() == "step output\n"


def test_sigkill_of_the_runner_kills_its_step_and_removes_its_scratch(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch" / "promote"
    scratch.mkdir(parents=True)
    pid_file = tmp_path / "step.pid"
    step = f"echo $TMPDIR > {tmp_path}/tmpdir; sleep 300 & echo $! > {pid_file}; wait"
    runner_source = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from stroke_mlops.step_processes import run_step_process
        with open(os.devnull, "w") as log:
            run_step_process(
                ["sh", "-c", "{step}"],
                env=dict(os.environ), scratch=Path("{scratch}"), log=log,
            )
        """
    )
    runner = subprocess.Popen([sys.executable, "-c", runner_source])
    deadline = time.monotonic() + 30
    while not (pid_file.is_file() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.05)
    step_pid = int(pid_file.read_text())  # a process the step started: the group must go
    assert (tmp_path / "tmpdir").read_text().strip() == str(scratch)
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    assert _wait_gone(step_pid), "the step outlived the run"
    deadline = time.monotonic() + 10
    while scratch.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not scratch.exists()


def test_a_later_run_clears_scratch_of_dead_runs_only(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    abandoned, alive, finished = tmp_path / "run-a", tmp_path / "run-b", tmp_path / "run-c"
    for run_dir, pid in ((abandoned, dead.pid), (alive, os.getppid()), (finished, dead.pid)):
        run_dir.mkdir()
        (run_dir / step_processes.RUNNER_PID_FILE).write_text(f"{pid}\n")
        (run_dir / "logs").mkdir()
    for run_dir in (abandoned, alive):
        (run_dir / step_processes.SCRATCH_DIR / "train" / "stroke-model-x").mkdir(parents=True)
        (run_dir / step_processes.WORKSPACE_DIR).mkdir()
    cleared = step_processes.clear_stale_runs(tmp_path, older_than_s=3600)
    assert cleared == [abandoned]
    assert not (abandoned / step_processes.SCRATCH_DIR).exists()
    assert not (abandoned / step_processes.WORKSPACE_DIR).exists()
    assert (abandoned / "logs").is_dir()  # what a person reads stays
    assert (alive / step_processes.SCRATCH_DIR / "train").is_dir()
    # A live pid does not keep scratch forever: a pid can be reused.
    assert step_processes.clear_stale_runs(tmp_path, older_than_s=-1) == [alive]


def test_folder_store_clears_only_old_publishing_leftovers(tmp_path: Path) -> None:
    store = LocalModelStore(tmp_path)
    store.versions_dir.mkdir(parents=True)
    old = store.versions_dir / ".20260101T000000Z-aaaaaaaa.publishing-x1"
    fresh = store.versions_dir / ".20260101T000000Z-bbbbbbbb.publishing-x2"
    for folder in (old, fresh):
        folder.mkdir()
        (folder / "model.joblib").write_bytes(b"partial")
    hours_ago = time.time() - 7200
    os.utime(old, (hours_ago, hours_ago))
    assert store.clear_stale_scratch(older_than_s=3600) == [str(old)]
    assert not old.exists() and fresh.is_dir()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_plain_lines_in_ci_and_live_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert wants_live_display(_Terminal()) and not wants_live_display(io.StringIO())
    monkeypatch.setenv("CI", "true")
    assert not wants_live_display(_Terminal())

    plain = io.StringIO()
    with RunProgress(plain) as progress:
        progress.start("train")
        progress.finish("train", "SUCCESS", "selected soft_vote")
    lines = plain.getvalue().splitlines()
    assert lines[0].split() == ["train", "started"]
    assert lines[1].split()[:2] == ["train", "SUCCESS"] and lines[1].endswith("selected soft_vote")
    assert "\r" not in plain.getvalue() and "\x1b" not in plain.getvalue()

    terminal = _Terminal()
    with RunProgress(terminal, live=True) as progress:
        progress.start("train")
        progress.finish("train", "FAILURE")
    assert "\r\x1b[K" in terminal.getvalue()
    assert terminal.getvalue().rstrip("\r\x1b[K").endswith("s\n")
    assert "train" in terminal.getvalue().split("\r\x1b[K")[1]  # the live status line


def test_error_line_is_the_exception_a_step_ended_with() -> None:
    tail = [
        "Traceback (most recent call last):",
        '  File "x.py", line 3, in <module>',
        "stroke_mlops.data.enforcement.DataContractError: the data contract failed:",
        "  - gender: expected one of Female, Male, Other; found 'F' (line 7)",
    ]
    assert error_line(tail) == tail[2]
    assert error_line(["all fine", "INFO: done"]) is None
