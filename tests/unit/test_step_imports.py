"""Every pipeline step is its own process: the steps that do not fit or score a model must not
pay for importing scikit-learn, XGBoost and SciPy (about a second of CPU each, eleven steps)."""

from __future__ import annotations

import subprocess
import sys


def test_the_steps_module_and_evaluation_records_load_without_the_model_libraries() -> None:
    code = (
        "import sys\n"
        "from stroke_mlops import steps\n"
        "from stroke_mlops.training.evaluate import Evaluation, render_model_card\n"
        "heavy = sorted(m for m in ('sklearn', 'xgboost', 'scipy') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "", f"importing the steps loaded {loaded}"
