"""What `stroke-mlops run --verbose` adds: kfp.local's own output and every step's log."""

from __future__ import annotations

from pathlib import Path

import pytest

from stroke_mlops.cli import main

pytestmark = pytest.mark.integration


def test_verbose_shows_kfp_and_step_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    headers_only = tmp_path / "headers.csv"
    headers_only.write_text("id,gender\n")
    args = ["run", "--data", str(headers_only), "--store", str(tmp_path / "store")]
    assert main([*args, "--pipeline-root", str(tmp_path / "out"), "--verbose"]) == 1
    printed = capsys.readouterr().out
    assert "Executing task" in printed  # kfp.local's own lines
    assert "ingested " in printed and "10 bytes" in printed  # the ingest step's own log
    assert "  enforce-contract FAILURE" in printed


def test_a_progress_line_never_stops_a_run() -> None:
    from pipelines.local_runner import key_figure

    class Odd:
        metadata = {"bytes": "not a number"}  # noqa: RUF012

    assert key_figure("ingest", {"raw_data": Odd()}) == ""
    assert key_figure("promote", {"Output": "v1"}) == "production -> v1"
