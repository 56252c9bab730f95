"""`make ab-demo` end to end (tools/ab_demo.py): two fitted versions behind KServe's router, the
held-out patients replayed, their outcomes recorded as feedback, the share per version printed,
compare's verdict on the two, and the refused-requests alert firing in a real Alertmanager."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stroke_mlops.monitoring.alert_stack import BINARIES
from tools.local_platform import router as kserve_router

REASON = kserve_router.unavailable_reason()
ALERT_STACK_READY = all(shutil.which(b) for b in BINARIES.values())
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def test_ab_demo_splits_replays_and_records_the_outcomes(
    tmp_path: Path, real_csv_path: Path
) -> None:
    work = tmp_path / "ab"
    done = subprocess.run(
        [sys.executable, "-m", "tools.ab_demo", "--data", str(real_csv_path), "--work-dir",
         str(work), "--challenger-percent", "30"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    shares = dict(
        re.findall(r"ab-demo: (champion|challenger) .*answered +(\d+) of 1022", done.stdout)
    )
    assert set(shares) == {"champion", "challenger"}, done.stdout
    assert int(shares["champion"]) + int(shares["challenger"]) == 1022
    assert "1022 matched a logged prediction, 0 unknown" in done.stdout
    labels = (work / "outcomes.csv").read_text().splitlines()
    assert labels[0] == "prediction_id,stroke" and len(labels) == 1023
    assert list((work / "store" / "stroke" / "feedback").glob("*.jsonl"))
    # stroke-mlops compare judged the two on the recorded outcomes
    compared = json.loads((work / "compare.json").read_text())
    assert compared["verdict"] in re.findall(r"ab-demo: compare: (\w+):", done.stdout)
    # the malformed burst fired the refused-requests alert in the real Alertmanager
    if ALERT_STACK_READY:
        assert "alerts firing after the replay: none" in done.stdout
        assert "alert firing in the Alertmanager: StrokeRefusedRequestsSpike" in done.stdout
