"""The loop end to end under kfp.local: the real training pipeline makes production; the real model
server (``python -m stroke_mlops.serving.predictor --request-log-uri …``) serves windows of real
rows and logs them to a folder or to the S3 stand-in; monitor_and_retrain judges each window and
retrains only when it should, through the real gate, which promotes or refuses.

The tests share one production model and run in file order (the last one promotes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.local_runner import run_locally
from pipelines.loop_local_runner import LoopRunSummary, run_loop_locally
from stroke_mlops.data import dataset
from stroke_mlops.monitoring import retraining
from stroke_mlops.monitoring.feedback import record_feedback
from stroke_mlops.monitoring.replay import ReplayedWindow, replay_through_server, sample_rows
from stroke_mlops.monitoring.scenarios import glucose_up
from stroke_mlops.registry.model_dir import verify_model_dir
from stroke_mlops.registry.store import open_store
from tests.s3_server import S3Bucket

pytestmark = pytest.mark.integration

WINDOW_ROWS = 300
TRAINING_STEPS = {"ingest", "validate-data", "train", "gate"}
# A gate no candidate passes, and one every candidate passes: both branches, from arguments.
IMPOSSIBLE_GATE = {"min_roc_auc": 0.999}
LENIENT_GATE = {
    "min_recall": 0.0,
    "min_precision": 0.0,
    "min_roc_auc": 0.5,
    "champion_tolerance": 1.0,
}


@pytest.fixture(scope="module")
def store(real_csv_path: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A folder store whose production version the real training pipeline published."""
    root = tmp_path_factory.mktemp("loop")
    trained = run_locally(
        data_uri=str(real_csv_path),
        store_uri=str(root / "store"),
        pipeline_root=str(root / "outputs"),
    )
    assert trained.succeeded and "published" in trained.outputs, trained.render()
    return str(root / "store")


@pytest.fixture(scope="module")
def windows(real_patients: pd.DataFrame) -> dict[str, pd.DataFrame]:
    rows = sample_rows(real_patients, 2 * WINDOW_ROWS, seed=3)
    drifted = glucose_up(rows.iloc[WINDOW_ROWS:].reset_index(drop=True), np.random.default_rng(3))
    return {"undrifted": rows.iloc[:WINDOW_ROWS].reset_index(drop=True), "drifted": drifted}


def _loop(
    store: str, logs: str, replayed: ReplayedWindow, root: Path, **arguments: object
) -> LoopRunSummary:
    """One loop run over exactly the replayed window."""
    seconds = (replayed.finished - replayed.started).total_seconds() + 1
    return run_loop_locally(
        store_uri=store,
        requests_uri=logs,
        arguments={
            "until": replayed.finished.isoformat(),
            "window_hours": seconds / 3600,
            **arguments,
        },
        pipeline_root=str(root / "outputs"),
    )


def _ran(summary: LoopRunSummary) -> set[str]:
    return {step.name for step in summary.run.steps}


def _label(store: str, replayed: ReplayedWindow, rows: pd.DataFrame) -> None:
    outcomes = zip(replayed.request_ids, rows["stroke"].astype(int).tolist(), strict=True)
    record_feedback(store, list(outcomes))


def test_an_undrifted_window_does_not_retrain(
    store: str, windows: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    logs = str(tmp_path / "logs")
    replayed = replay_through_server(store, windows["undrifted"], logs, request_prefix="calm")
    loop = _loop(store, logs, replayed, tmp_path, cooldown_hours=0.0)
    assert loop.succeeded, loop.render()
    assert loop.monitor["rows"] == WINDOW_ROWS
    assert loop.monitor["recommendation"] == "none", loop.monitor["reasons"]
    assert not loop.retrained and loop.decision.startswith("monitor: none")
    assert "assemble-training-data" not in _ran(loop) and not TRAINING_STEPS & _ran(loop)
    assert loop.production_after == loop.production_before
    assert loop.report_path is not None
    assert loop.report_path.read_text().lstrip().lower().startswith("<!doctype html")


def test_a_window_under_the_minimum_size_never_retrains(
    store: str, windows: dict[str, pd.DataFrame], s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    logs = s3_bucket.uri("request-logs")
    few = windows["drifted"].head(80).assign(avg_glucose_level=250.0)  # blatant, but too few
    replayed = replay_through_server(store, few, logs, request_prefix="few")
    assert s3_bucket.keys("request-logs/")  # the server wrote its log objects to S3
    loop = _loop(store, logs, replayed, tmp_path, cooldown_hours=0.0, min_rows=200)
    assert loop.succeeded, loop.render()
    assert (loop.monitor["rows"], loop.monitor["recommendation"]) == (80, "insufficient_data")
    assert not loop.retrained
    assert "assemble-training-data" not in _ran(loop) and not TRAINING_STEPS & _ran(loop)


def test_a_drifted_window_retrains_the_gate_refuses_and_the_cool_down_holds(
    store: str, windows: dict[str, pd.DataFrame], s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    logs = s3_bucket.uri("request-logs")
    replayed = replay_through_server(store, windows["drifted"], logs, request_prefix="hot")
    _label(store, replayed, windows["drifted"])
    loop = _loop(store, logs, replayed, tmp_path, cooldown_hours=0.0, **IMPOSSIBLE_GATE)
    assert loop.succeeded, loop.render()
    assert loop.monitor["recommendation"] == "retrain"
    assert "avg_glucose_level" in loop.monitor["drifted_features"]
    assert loop.retrained
    steps = {step.name: step.status for step in loop.run.steps}
    assert {steps[name] for name in TRAINING_STEPS | {"assemble-training-data"}} == {"SUCCESS"}
    assert "publish" not in steps and "promote" not in steps
    assert "roc_auc" in loop.run.outputs["gate"]
    assert loop.production_after == loop.production_before  # refused: production as it was
    # The training set is kept by its sha256: the production data plus the labelled rows.
    assert loop.dataset["added_rows"] == WINDOW_ROWS
    kept = retraining.read_kept_dataset(store, loop.dataset["sha256"])
    assert dataset.sha256_bytes(kept) == loop.dataset["sha256"]
    assert len(dataset.read_raw_patients(kept)) == loop.dataset["rows"]
    assert retraining.last_attempt_at(store) is not None

    # The next run on the same window: the attempt just made holds retraining back.
    held = _loop(store, logs, replayed, tmp_path, cooldown_hours=24.0)
    assert held.succeeded, held.render()
    assert held.monitor["recommendation"] == "retrain" and not held.retrained
    assert "cool-down: the last retraining attempt started" in held.decision
    assert "assemble-training-data" not in _ran(held)


def test_a_drifted_window_retrains_and_the_blessed_candidate_is_promoted(
    store: str, windows: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    logs = str(tmp_path / "logs")
    replayed = replay_through_server(store, windows["drifted"], logs, request_prefix="hot2")
    _label(store, replayed, windows["drifted"])
    loop = _loop(store, logs, replayed, tmp_path, cooldown_hours=0.0, **LENIENT_GATE)
    assert loop.succeeded, loop.render()
    assert loop.retrained and loop.promoted, loop.render()
    assert loop.production_after == loop.run.outputs["published"]
    # The new production version names the kept data it was trained on.
    new = open_store(store)
    local = new.download_version(str(loop.production_after), tmp_path / "new")
    fingerprint = verify_model_dir(local).metadata["fingerprint"]
    assert fingerprint["raw_sha256"] == loop.dataset["sha256"]
    lineage = Path(store) / "stroke" / "datasets" / f"{loop.dataset['sha256']}.json"
    assert set(json.loads(lineage.read_text())["request_ids"]) >= set(replayed.request_ids)
