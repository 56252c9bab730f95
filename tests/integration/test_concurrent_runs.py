"""Two runs at once into one pipeline root: each summary reports its own run.

The runner once summarised "the newest folder" of the pipeline root, so a run could report
another's steps and artifacts. Each run now has a folder of its own and reads its outputs from
what kfp.local returned to it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_concurrent_runs_each_report_their_own_run(real_csv_bytes: bytes, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    lines = real_csv_bytes.decode("utf-8-sig").split("\r\n")
    runs = {}
    for bad in ("Pirate", "Zeppelin"):
        broken = list(lines)
        row = next(i for i, line in enumerate(broken) if ",Private," in line)
        broken[row] = broken[row].replace(",Private,", f",{bad},")
        csv = tmp_path / f"{bad}.csv"
        csv.write_text("\r\n".join(broken))
        summary = tmp_path / f"{bad}.json"
        command = [
            str(Path(sys.executable).with_name("stroke-mlops")),
            *("run", "--data", str(csv), "--store", str(tmp_path / f"store-{bad}")),
            *("--pipeline-root", str(outputs), "--summary-json", str(summary)),
        ]
        runs[bad] = (
            subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "CI": "true"},
            ),
            summary,
        )
    folders = set()
    for bad, (process, summary_path) in runs.items():
        assert process.wait(timeout=600) == 1  # the contract refuses both files
        summary = json.loads(summary_path.read_text())
        run_dir = Path(summary["run_dir"])
        folders.add(run_dir)
        assert run_dir.parent == outputs
        report = next(run_dir.glob("stroke-mlops-*/validate-data/report")).read_text()
        other = "Zeppelin" if bad == "Pirate" else "Pirate"
        assert bad in report and other not in report
        assert f"{bad}.csv" in (run_dir / "logs" / "ingest.log").read_text()
        steps = {step["name"]: step["status"] for step in summary["steps"]}
        assert steps["enforce-contract"] == "FAILURE" and "train" not in steps
    assert len(folders) == 2
