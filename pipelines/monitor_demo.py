"""``stroke-mlops monitor-demo``: the loop end to end on this machine, in a few readable lines.

1. Makes sure the store has a production model with a reference set (else trains one).
2. Serves it with request logging and replays an undrifted window of real rows, then runs the
   loop (monitor → decide): no drift, no retraining.
3. Replays a drifted window (the same kind of rows, avg_glucose_level × 1.15), records the true
   outcomes of those rows as feedback labels, and runs the loop again: drift → retraining on the
   kept training data plus the labelled rows → the gate → a new production version, or the
   reasons it was refused.

kfp.local's own step-by-step output goes to a log file per run, named in the output.
"""

import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TextIO

import numpy as np

from pipelines.local_runner import run_locally
from pipelines.loop_local_runner import LoopRunSummary, run_loop_locally

DEMO_ROWS = 300
DEMO_SEED = 11


class MonitorDemoError(RuntimeError):
    """The demo could not go on (training failed, a loop run failed)."""


@dataclass(frozen=True)
class DemoWindow:
    name: str
    loop: LoopRunSummary
    log_path: Path


def _has_monitored_production(store_uri: str) -> bool:
    from stroke_mlops.monitoring.monitor import MonitorError, load_production_reference

    try:
        load_production_reference(store_uri)
    except MonitorError:
        return False
    return True


def _keep_production_training_data(store_uri: str, data_path: Path) -> None:
    """A version published before datasets were kept: keep its data if ``data_path`` is it."""
    from stroke_mlops.data.dataset import sha256_bytes
    from stroke_mlops.monitoring.retraining import RetrainingError, keep_dataset, read_kept_dataset
    from stroke_mlops.registry.model_dir import verify_model_dir
    from stroke_mlops.registry.store import open_store

    store = open_store(store_uri)
    pointer = store.production()
    assert pointer is not None
    with tempfile.TemporaryDirectory(prefix="demo-") as scratch:
        local = store.download_version(pointer.version, Path(scratch) / "v")
        wanted = verify_model_dir(local).metadata["fingerprint"]["raw_sha256"]
    try:
        read_kept_dataset(store_uri, wanted)
    except RetrainingError:
        content = data_path.read_bytes()
        if sha256_bytes(content) != wanted:
            raise MonitorDemoError(
                f"production {pointer.version} was trained on data sha256 {wanted[:12]}, which is "
                f"not kept in the store and is not {data_path}; run `make demo` on a fresh store"
            ) from None
        keep_dataset(store_uri, content)


def run_monitor_demo(
    *,
    data_path: Path,
    store_uri: str,
    work_dir: Path,
    rows: int = DEMO_ROWS,
    seed: int = DEMO_SEED,
    out: TextIO | None = None,
) -> list[DemoWindow]:
    """Run the demo, printing a few lines per stage to ``out``; returns both loop runs."""
    from stroke_mlops.data import dataset
    from stroke_mlops.monitoring.feedback import record_feedback
    from stroke_mlops.monitoring.replay import replay_through_server, sample_rows
    from stroke_mlops.monitoring.scenarios import GLUCOSE_FACTOR, glucose_up

    def say(text: str) -> None:
        print(text, file=out or sys.stdout, flush=True)

    work_dir.mkdir(parents=True, exist_ok=True)
    requests_uri = str((work_dir / "requests").resolve())
    if not _has_monitored_production(store_uri):
        say(f"No production model with a reference set in {store_uri}: training one first …")
        with (work_dir / "training.log").open("w") as log:
            trained = run_locally(
                data_uri=str(data_path),
                store_uri=store_uri,
                pipeline_root=str(work_dir / "pipeline_root"),
                stream=log,
            )
        if not trained.succeeded or not _has_monitored_production(store_uri):
            raise MonitorDemoError(f"training did not promote a model: {trained.error}")
    _keep_production_training_data(store_uri, data_path)

    patients = dataset.clean_patients(dataset.read_raw_patients_file(data_path))
    chosen = sample_rows(patients, 2 * rows, seed=seed)
    undrifted = chosen.iloc[:rows].reset_index(drop=True)
    drifted = glucose_up(chosen.iloc[rows:].reset_index(drop=True), np.random.default_rng(seed))
    windows = [
        ("undrifted", undrifted, False),
        (f"drifted (avg_glucose_level × {GLUCOSE_FACTOR})", drifted, True),
    ]
    results = []
    for index, (name, frame, labelled) in enumerate(windows, start=1):
        say(f"\nWindow {index}: {len(frame)} {name} rows of the real data")
        replayed = replay_through_server(
            store_uri, frame, requests_uri, request_prefix=f"demo{seed}-w{index}"
        )
        say(
            f"  served by production {replayed.model_version}: {len(replayed.request_ids)} "
            f"requests, {replayed.positive_decisions} flagged; logs in {requests_uri}"
        )
        if labelled:  # outcomes arrive later in real life; here they are the rows' own labels
            outcomes = zip(replayed.request_ids, frame["stroke"].astype(int).tolist(), strict=True)
            where = record_feedback(store_uri, list(outcomes))
            say(f"  feedback: recorded the outcomes of these {len(frame)} requests in {where}")
        window = replayed.finished - replayed.started + timedelta(seconds=1)
        log_path = work_dir / f"loop-window-{index}.log"
        with log_path.open("w") as log:
            loop = run_loop_locally(
                store_uri=store_uri,
                requests_uri=requests_uri,
                arguments={
                    "until": replayed.finished.isoformat(),
                    "window_hours": window.total_seconds() / 3600,
                    # The demo's model was promoted moments ago; the default cool-down (24 h)
                    # would hold retraining back, which is what it is for.
                    "cooldown_hours": 0.0,
                },
                pipeline_root=str(work_dir / "pipeline_root"),
                stream=log,
            )
        if loop.report_path is not None:  # a stable name a browser opens as HTML
            report = work_dir / f"window-{index}-report.html"
            shutil.copyfile(loop.report_path, report)
            loop.report_path = report.resolve()
        say("  " + loop.render().replace("\n", "\n  "))
        say(f"  (kfp.local log: {log_path})")
        if not loop.succeeded:
            raise MonitorDemoError(f"the loop run failed: {loop.run.error}; see {log_path}")
        results.append(DemoWindow(name=name, loop=loop, log_path=log_path))
    return results
