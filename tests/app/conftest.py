"""App fixtures: a real store with two published versions (the second in production), a real
monitor report with realised recall, and the real predictor serving production on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import uvicorn
from sklearn.linear_model import LogisticRegression

from stroke_mlops.app.web import create_app
from stroke_mlops.data import dataset, schema
from stroke_mlops.monitoring import reference
from stroke_mlops.monitoring.feedback import record_feedback
from stroke_mlops.monitoring.monitor import MonitorSummary, run_monitor
from stroke_mlops.monitoring.replay import as_instances
from stroke_mlops.registry import signature
from stroke_mlops.registry.model_dir import write_model_dir
from stroke_mlops.registry.signing import private_key_from_env
from stroke_mlops.registry.store import LocalModelStore
from stroke_mlops.serving.infra_validation import ServerProcess
from stroke_mlops.serving.model import StrokeModel
from stroke_mlops.serving.request_log import RequestLogger, RequestLogSink, writer_for
from tests.serving.model_dirs import fit_pipeline
from tests.serving.ready import ready_server

FIRST, SECOND = "20260101T000000Z-first", "20260102T000000Z-second"
THRESHOLD = 0.5


@dataclass(frozen=True)
class AppWorld:
    store: Path
    reports: Path
    summary: MonitorSummary
    production_dir: Path


def _card(version: str, gate: str) -> str:
    intro = "Logistic regression fitted for the app tests."
    return f"# stroke {version}\n\n{intro}\n\n## Gate\n\n{gate}\n"


@pytest.fixture(scope="session")
def app_world(
    tmp_path_factory: pytest.TempPathFactory, patients_with_ids: pd.DataFrame
) -> AppWorld:
    split = dataset.split_patients(patients_with_ids, seed=42)
    model = fit_pipeline(split.train, LogisticRegression(class_weight="balanced", max_iter=2000))
    reference_set = reference.build_reference_set(model, split.test)
    decisions = model.predict_proba(split.test[list(schema.FEATURE_COLUMNS)])[:, 1] >= THRESHOLD
    strokes = split.test[schema.TARGET_COLUMN].to_numpy() == 1
    test_metrics = {
        "recall": float(decisions[strokes].mean()),
        "precision": float(strokes[decisions].mean()),
    }
    root = tmp_path_factory.mktemp("app-store")
    store = LocalModelStore(root)
    gates = {
        FIRST: "Promoted: no champion yet.",
        SECOND: f"Promoted over {FIRST}: not worse on recall at the precision floor.",
    }
    for version, gate in gates.items():
        built = tmp_path_factory.mktemp("built") / version
        write_model_dir(
            built,
            model=model,
            signature=signature.build_signature(signature.example_instances(split.train)),
            model_card=_card(version, gate),
            metadata={
                "version": version,
                "threshold": THRESHOLD,
                "model_name": schema.MODEL_NAME,
                "selected_model": "logistic_regression",
                "metrics": {"test": test_metrics},
            },
            extra_files={reference.REFERENCE_FILE: reference.reference_csv_bytes(reference_set)},
            signing_key=private_key_from_env(),
        )
        store.publish_version(built, version)
    store.promote(FIRST, expected=None)
    store.promote(SECOND, expected=FIRST)

    # a monitored window: validation rows served by the real predictor, then their outcomes
    pool = split.validation
    rows = pd.concat([pool[pool["stroke"] == 1], pool[pool["stroke"] == 0].head(300)])
    logs = tmp_path_factory.mktemp("app-logs")
    served = StrokeModel(str(store.version_dir(SECOND)), request_logger=RequestLogger(stream=None))
    served.load()
    sink = RequestLogSink(writer_for(str(logs)), batch_size=100, flush_interval_s=60)
    served.request_logger = RequestLogger(stream=None, sink=sink)
    ids = []
    for index, instance in enumerate(as_instances(rows)):
        answer = served.predict({"instances": [instance]}, headers={"x-request-id": f"app-{index}"})
        ids.append(answer["prediction_id"])  # labels join on the predictor's own id
    served.request_logger.close()
    record_feedback(str(root), dict(zip(ids, rows["stroke"].astype(int).tolist(), strict=True)))
    reports = tmp_path_factory.mktemp("app-reports")
    summary = run_monitor(str(root), str(logs), reports / "window-1")
    assert summary.performance.recall.value is not None
    assert np.isfinite(summary.performance.recall.value)
    return AppWorld(root, reports, summary, store.version_dir(SECOND))


@pytest.fixture(scope="session")
def predictor(app_world: AppWorld) -> Iterator[ServerProcess]:
    with ready_server(ServerProcess(str(app_world.production_dir))) as server:
        yield server


@dataclass(frozen=True)
class RunningApp:
    url: str


@pytest.fixture(scope="session")
def running_app(app_world: AppWorld, predictor: ServerProcess) -> Iterator[RunningApp]:
    """The app served by uvicorn on a socket bound to port 0 (no race for the port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    application = create_app(
        f"http://{predictor.host}:{predictor.port}", str(app_world.store), app_world.reports
    )
    server = uvicorn.Server(uvicorn.Config(application, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the app did not start")
        time.sleep(0.05)
    try:
        yield RunningApp(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
