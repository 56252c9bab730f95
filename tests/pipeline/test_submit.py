"""`stroke-mlops submit` and the plain `kfp` CLI against a stand-in of the KFP API on 127.0.0.1
(real kfp.Client, real HTTP): what reaches the cluster is our compiled pipeline with the run's
parameters, and `submit --wait` reports how the run ended."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from stroke_mlops.cli import main

CREATED_AT = "2026-01-01T00:00:00Z"


class FakeKfpApi(BaseHTTPRequestHandler):
    """Just enough of KFP's v2beta1 REST API for Client.create_run_from_pipeline_package."""

    received: ClassVar[list[tuple[str, str, dict[str, Any]]]] = []
    # What GET /runs/run-1 answers, one entry per poll (the last one repeats).
    run_states: ClassVar[list[dict[str, Any]]] = []

    def _answer(self, body: dict[str, Any], status: int = 200) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self.received.append(("GET", self.path, {}))
        if self.path.startswith("/apis/v2beta1/healthz"):
            self._answer({"multi_user": False})
        elif self.path.startswith("/apis/v2beta1/experiments"):
            self._answer({"experiments": [], "total_size": 0})
        elif self.path.startswith("/apis/v2beta1/runs/run-1"):
            states = type(self).run_states or [{"state": "PENDING"}]
            answer = states.pop(0) if len(states) > 1 else states[0]
            self._answer(
                {"run_id": "run-1", "display_name": "stroke", "created_at": CREATED_AT, **answer}
            )
        else:
            self._answer({"error": "not found"}, 404)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        self.received.append(("POST", self.path, body))
        if self.path.startswith("/apis/v2beta1/experiments"):
            self._answer({"experiment_id": "exp-1", "display_name": body.get("display_name")})
        elif self.path.startswith("/apis/v2beta1/runs"):
            self._answer(
                {
                    "run_id": "run-1",
                    "display_name": body.get("display_name"),
                    "experiment_id": body.get("experiment_id"),
                    "created_at": CREATED_AT,
                }
            )
        else:
            self._answer({"error": "not found"}, 404)

    def log_message(self, *_: Any) -> None:
        pass


@contextlib.contextmanager
def serving(api: type[FakeKfpApi]) -> Iterator[str]:
    """The stand-in ``api`` on 127.0.0.1 (a free port), emptied of earlier requests; its URL."""
    FakeKfpApi.received = []
    FakeKfpApi.run_states = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def kfp_api() -> Iterator[str]:
    with serving(FakeKfpApi) as url:
        yield url


def test_submit_creates_a_run_of_our_pipeline_with_its_parameters(
    kfp_api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "submit",
            "--host",
            kfp_api,
            "--ui-url",
            "http://127.0.0.1:8080",
            "--experiment",
            "stroke-mlops",
            "--min-recall",
            "0.7",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "run run-1 created in experiment 'stroke-mlops'" in out
    assert "http://127.0.0.1:8080/#/runs/details/run-1" in out
    posts = {
        path.split("?")[0]: body for method, path, body in FakeKfpApi.received if method == "POST"
    }
    assert posts["/apis/v2beta1/experiments"]["display_name"] == "stroke-mlops"
    run = posts["/apis/v2beta1/runs"]
    assert run["experiment_id"] == "exp-1"
    spec = run["pipeline_spec"]
    pipeline = spec.get("pipeline_spec", spec)
    assert pipeline["pipelineInfo"]["name"] == "stroke-mlops"
    parameters = run["runtime_config"]["parameters"]
    assert parameters["data_uri"] == "s3://stroke-mlops/data/healthcare-dataset-stroke-data.csv"
    assert parameters["store_uri"] == "s3://stroke-mlops/models"
    assert parameters["min_recall"] == 0.7
    # The cluster wiring travels with the run: the MinIO Secret for the pipeline pods.
    assert "stroke-mlops-s3" in json.dumps(spec)


def _task(name: str, state: str, message: str = "", children: int = 0) -> dict[str, Any]:
    task: dict[str, Any] = {"display_name": name, "state": state}
    if message:
        task["error"] = {"message": message}
    if children:
        task["child_tasks"] = [{"task_id": f"{name}-{i}"} for i in range(children)]
    return task


def _submit_and_wait(kfp_api: str) -> int:
    return main(["submit", "--host", kfp_api, "--wait", "--poll-seconds", "0.05"])


def test_submit_wait_succeeds_when_the_run_succeeds_and_says_it_deployed(
    kfp_api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    FakeKfpApi.run_states = [
        {"state": "RUNNING"},
        {"state": "SUCCEEDED", "run_details": {"task_details": [
            _task("stroke-mlops", "SUCCEEDED", children=2), _task("deploy", "SUCCEEDED")]}},
    ]  # fmt: skip
    assert _submit_and_wait(kfp_api) == 0
    assert "run run-1 succeeded: the new model is deployed" in capsys.readouterr().out
    polls = [p for m, p, _ in FakeKfpApi.received if m == "GET" and "/runs/run-1" in p]
    assert len(polls) == 2


def test_submit_wait_says_when_the_gate_refused_and_nothing_was_deployed(
    kfp_api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    FakeKfpApi.run_states = [{"state": "SUCCEEDED"}]
    assert _submit_and_wait(kfp_api) == 0
    assert "the gate did not bless the model, so nothing was deployed" in capsys.readouterr().out


def test_submit_wait_fails_naming_the_failed_step(
    kfp_api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = (
        "deploy of v1 failed: not applied: create InferenceService stroke-mlops/stroke failed "
        "with HTTP 400: admission webhook denied the request"
    )
    FakeKfpApi.run_states = [
        {"state": "RUNNING"},
        {"state": "FAILED", "error": {"message": "DAG failed"}, "run_details": {"task_details": [
            _task("stroke-mlops", "FAILED", "DAG failed", children=2),
            _task("condition-1", "FAILED", "DAG failed", children=1),
            _task("train", "SUCCEEDED"),
            _task("deploy", "FAILED", refused),
        ]}},
    ]  # fmt: skip
    assert _submit_and_wait(kfp_api) == 1
    err = capsys.readouterr().err
    assert f"run run-1 ended FAILED: step 'deploy' failed: {refused}" in err
    assert "condition-1" not in err  # the DAGs around the step are not "failed steps"


def test_submit_wait_gives_up_after_the_timeout(
    kfp_api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    FakeKfpApi.run_states = [{"state": "RUNNING"}]
    code = main(
        ["submit", "--host", kfp_api, "--wait", "--timeout", "0.2", "--poll-seconds", "0.05"]
    )
    assert code == 1
    assert "run run-1 is still RUNNING after 0.2 s" in capsys.readouterr().err


def test_plain_kfp_cli_submits_the_compiled_yaml_with_the_readme_parameters(
    kfp_api: str, tmp_path: Path
) -> None:
    kfp = shutil.which("kfp", path=str(Path(sys.executable).parent))
    assert kfp, "the kfp CLI is installed with kfp"
    package = tmp_path / "stroke_pipeline.yaml"
    assert main(["compile", "--output", str(package)]) == 0
    FakeKfpApi.run_states = [{"state": "RUNNING"}]
    # The command README "Run on kind" shows, with --endpoint pointing at the stand-in.
    result = subprocess.run(
        [kfp, "--endpoint", kfp_api, "run", "create", "--experiment-name", "stroke-mlops",
         "--run-name", "stroke-by-kfp-cli", "--package-file", str(package),
         "data_uri=s3://stroke-mlops/data/healthcare-dataset-stroke-data.csv",
         "store_uri=s3://stroke-mlops/models", "min_recall=0.75"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    posts = {p.split("?")[0]: b for m, p, b in FakeKfpApi.received if m == "POST"}
    run = posts["/apis/v2beta1/runs"]
    assert run["display_name"] == "stroke-by-kfp-cli"
    assert run["runtime_config"]["parameters"] == {
        "data_uri": "s3://stroke-mlops/data/healthcare-dataset-stroke-data.csv",
        "store_uri": "s3://stroke-mlops/models",
        "min_recall": 0.75,
    }
    spec = run["pipeline_spec"]
    assert spec.get("pipeline_spec", spec)["pipelineInfo"]["name"] == "stroke-mlops"
    assert "stroke-mlops-s3" in json.dumps(run)  # compiled with the cluster wiring
