"""The shipped alert rules against real servers: each alert fires on its cause and on nothing else.

Debian's ``prometheus``, ``prometheus-pushgateway`` and ``prometheus-alertmanager`` run on
127.0.0.1 (free ports, a temporary folder; :class:`AlertStack`). Prometheus scrapes two real
predictors (``python -m stroke_mlops.serving.predictor``, the image's command): the production
version and a challenger, both logging requests to one folder, and the Pushgateway, to which the
real ``stroke-mlops monitor --pushgateway`` pushes. It loads manifests/monitoring/
prometheus-rules.yaml unchanged except that a ``for:`` longer than 1 s is shortened to 1 s
(scrape and evaluation every second); the Alertmanager's v2 API is what the test reads.

One timeline, each step adding one cause: calm traffic with consistent labels (nothing fires),
then a burst of refused requests, then labels that show the challenger missing strokes, then a
drifted window, then a broken request-log store. After each step exactly the alerts of the
causes so far are active in the Alertmanager.

Marked ``alerting`` (about a minute): ``make test-alerts`` and .ci/run run it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from stroke_mlops.data import dataset, schema
from stroke_mlops.monitoring.alert_stack import BINARIES, AlertStack
from stroke_mlops.monitoring.feedback import record_feedback
from stroke_mlops.monitoring.replay import as_instances
from stroke_mlops.monitoring.scenarios import older_patients
from stroke_mlops.registry import signature
from stroke_mlops.registry.model_dir import write_model_dir
from stroke_mlops.registry.signing import private_key_from_env
from stroke_mlops.registry.store import LocalModelStore
from stroke_mlops.serving.infra_validation import ServerProcess
from tests.monitoring.conftest import VERSION, MonitoredStore
from tests.serving.model_dirs import fit_pipeline

pytestmark = [
    pytest.mark.alerting,
    pytest.mark.skipif(
        any(shutil.which(b) is None for b in BINARIES.values()),
        reason=f"needs Debian's {', '.join(BINARIES)} (apt-get install them)",
    ),
]

CHALLENGER = "v2-challenger"
BATCH = 10  # rows per request
ROWS = 300  # rows per version in the calm window
PREDICT = f"/v1/models/{schema.MODEL_NAME}:predict"
DASHBOARD = Path(__file__).resolve().parents[2] / "manifests/monitoring/grafana-dashboard.json"


def _start(model_dir: Path, log_dir: Path) -> ServerProcess:
    server = ServerProcess(str(model_dir), extra_args=["--request-log-uri", str(log_dir)])
    server.start()
    return server


@pytest.fixture(scope="module")
def challenger_dir(
    tmp_path_factory: pytest.TempPathFactory, patients_with_ids: pd.DataFrame
) -> Path:
    """A second signed model version (another fit on the same training split)."""
    split = dataset.split_patients(patients_with_ids, seed=42)
    model = fit_pipeline(split.train, LogisticRegression(C=0.05, max_iter=2000))
    built = tmp_path_factory.mktemp("challenger") / CHALLENGER
    write_model_dir(
        built,
        model=model,
        signature=signature.build_signature(signature.example_instances(split.train)),
        model_card="# Challenger test model\n",
        metadata={"version": CHALLENGER, "threshold": 0.5, "model_name": schema.MODEL_NAME},
        signing_key=private_key_from_env(),
    )
    return built


@pytest.fixture(scope="module")
def store(monitored_store: MonitoredStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the monitored store: this test records feedback the session's store must not
    get."""
    root = tmp_path_factory.mktemp("alerting-store") / "store"
    shutil.copytree(monitored_store.root, root)
    return root


class Predictors:
    def __init__(self, production: ServerProcess, challenger: ServerProcess) -> None:
        self.production, self.challenger = production, challenger


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("request-log")


@pytest.fixture(scope="module")
def predictors(store: Path, challenger_dir: Path, log_dir: Path) -> Iterator[Predictors]:
    production_dir = LocalModelStore(store).version_dir(VERSION)
    servers = [_start(production_dir, log_dir), _start(challenger_dir, log_dir)]
    try:
        for server in servers:
            ready, why = server.wait_ready(90)
            if not ready:
                pytest.fail(f"{why}:\n{server.log_tail()}")
        yield Predictors(*servers)
    finally:
        for server in servers:
            server.cleanup()


@pytest.fixture(scope="module")
def stack(predictors: Predictors, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertStack]:
    targets = [f"127.0.0.1:{s.port}" for s in (predictors.production, predictors.challenger)]
    with AlertStack(targets, max_for="1s", work_dir=tmp_path_factory.mktemp("stack")) as running:
        yield running


def replay(server: ServerProcess, rows: pd.DataFrame) -> list[tuple[str, int]]:
    """Rows in requests of BATCH; (row id for feedback, decision) of each row."""
    answered = []
    instances = as_instances(rows)
    for start in range(0, len(instances), BATCH):
        body = json.dumps({"instances": instances[start : start + BATCH]}).encode()
        status, raw = server.request("POST", PREDICT, body)
        assert status == 200, raw[:300]
        answer = json.loads(raw)
        count = len(answer["predictions"])
        ids = [answer["prediction_id"]] if count == 1 else [
            f"{answer['prediction_id']}:{i}" for i in range(count)
        ]  # fmt: skip
        answered += [(i, p["decision"]) for i, p in zip(ids, answer["predictions"], strict=True)]
    return answered


def scraped(server: ServerProcess, name: str) -> float:
    """The sum of one counter's samples on the predictor's own /metrics."""
    status, raw = server.request("GET", "/metrics")
    assert status == 200
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in raw.decode().splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def wait(condition: Callable[[], Any], what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def monitor(store: Path, log_dir: Path, out: Path, gateway: str) -> str:
    ran = subprocess.run(
        [sys.executable, "-m", "stroke_mlops.cli", "monitor", "--store", str(store),
         "--requests", str(log_dir), "--output", str(out), "--pushgateway", gateway],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"metrics pushed to {gateway}" in ran.stdout, ran.stdout + ran.stderr
    return ran.stdout


def wait_logged(predictors: Predictors, records: int) -> None:
    def written() -> bool:
        total = sum(
            scraped(s, "stroke_request_log_written_records_total")
            for s in (predictors.production, predictors.challenger)
        )
        return total >= records

    wait(written, f"{records} request records written")


def expect_firing(stack: AlertStack, expected: set[str], newly: set[str]) -> dict[str, Any]:
    """Wait for ``newly`` to fire, let the rules run a few more rounds, then check the whole
    active set is ``expected``."""
    started = time.monotonic()
    for name in newly:
        stack.wait_firing(name, timeout_s=45)
    seconds = time.monotonic() - started
    print(f"{', '.join(sorted(newly))}: in the Alertmanager {seconds:.1f} s after the cause")
    time.sleep(4 * stack.interval_s)
    firing = stack.firing()
    assert set(firing) == expected, firing
    return firing


def test_each_shipped_alert_fires_on_its_cause_and_only_then(
    stack: AlertStack,
    predictors: Predictors,
    monitored_store: MonitoredStore,
    store: Path,
    log_dir: Path,
    tmp_path: Path,
) -> None:
    pool = monitored_store.window_pool.sample(n=ROWS, random_state=7)
    gateway = stack.pushgateway_url
    wait(stack.targets_up, "the first scrape of both predictors and the gateway")
    assert stack.query('{__name__=~"stroke_monitor_.+"}') == []  # nothing left from another run

    # 1. Calm: both versions serve the same undrifted rows; labels agree with production's
    # decisions (recall 1); the challenger has no labels yet. Nothing may fire.
    production = replay(predictors.production, pool)
    challenger = replay(predictors.challenger, pool)
    requests = 2 * ROWS // BATCH
    wait_logged(predictors, requests)
    record_feedback(str(store), {i: d for i, d in production})
    calm = monitor(store, log_dir, tmp_path / "calm", gateway)
    assert "monitor: none" in calm, calm
    wait(
        lambda: (
            stack.query(
                f'stroke_monitor_realised_recall{{model_version="{VERSION}",bound="estimate"}} == 1'
            )
            and stack.query(f"sum(stroke_accepted_requests_total) == {requests}")
            and stack.query("stroke_monitor_drift_detected == 0")
        ),
        "the calm window's series in Prometheus",
    )
    assert stack.targets_up()
    time.sleep(5 * stack.interval_s)  # five more evaluations
    assert stack.query("ALERTS") == []  # not even pending
    assert stack.firing() == {}
    expected: set[str] = set()

    # 2. A client sends malformed requests: 40 refused against 60 accepted.
    for index in range(40):
        status, _ = predictors.production.request("POST", PREDICT, b'{"instances": [{"age": 1}')
        assert status == 400, index
    expected |= {"StrokeRefusedRequestsSpike"}
    expect_firing(stack, expected, {"StrokeRefusedRequestsSpike"})

    # 3. Outcomes arrive for the challenger: 25 strokes it did not flag. Its realised recall
    # (0 of 25, upper 95% bound 0.13) is under the gate's floor (0.35); production's stays 1.
    missed = [row_id for row_id, decision in challenger if decision == 0][:25]
    assert len(missed) == 25
    record_feedback(str(store), dict.fromkeys(missed, 1))
    monitor(store, log_dir, tmp_path / "labelled", gateway)
    expected |= {"StrokeRealisedRecallBelowFloor"}
    firing = expect_firing(stack, expected, {"StrokeRealisedRecallBelowFloor"})
    assert [a["model_version"] for a in firing["StrokeRealisedRecallBelowFloor"]] == [CHALLENGER]

    # 4. An older population arrives at production: the monitor finds drift.
    drifted = older_patients(monitored_store.window_pool, np.random.default_rng(3)).head(ROWS)
    replay(predictors.production, drifted)
    wait_logged(predictors, 3 * ROWS // BATCH + 40)
    verdict = monitor(store, log_dir, tmp_path / "drifted", gateway)
    assert "monitor: retrain" in verdict and "age" in verdict, verdict
    expected |= {"StrokeDataDriftDetected"}
    expect_firing(stack, expected, {"StrokeDataDriftDetected"})

    # 5. The request-log store breaks (its folder replaced by a file): records are dropped.
    logs = log_dir / "request-logs"
    logs.rename(log_dir / "request-logs.moved")
    logs.write_text("not a folder\n")
    replay(predictors.production, pool.head(BATCH * 3))
    wait(
        lambda: scraped(predictors.production, "stroke_request_log_dropped_records_total") > 0,
        "dropped request records on /metrics",
    )
    expected |= {"StrokeRequestLogDroppingRecords", "StrokeRequestLogWritesFailing"}
    expect_firing(stack, expected, {"StrokeRequestLogDroppingRecords"})

    # The Grafana dashboard's queries run on this Prometheus; each per-version panel of the
    # predictors' metrics shows both versions (the monitor's, those with enough labels).
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "1m").replace("$__range", "5m")
            result = stack.query(expr.replace("$version", ".+"))
            if "model_version" in target["legendFormat"]:
                versions = {r["metric"].get("model_version") for r in result}
                if "stroke_monitor_" in expr:  # versions with enough labels for an estimate
                    assert versions and versions <= {VERSION, CHALLENGER}, (panel["title"], expr)
                else:
                    assert versions == {VERSION, CHALLENGER}, (panel["title"], expr)
