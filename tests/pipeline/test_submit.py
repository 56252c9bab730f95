"""`stroke-mlops submit` against a stand-in of the KFP API on 127.0.0.1 (real kfp.Client, real
HTTP): what reaches the cluster is our compiled pipeline with the run's parameters."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from stroke_mlops.cli import main


class FakeKfpApi(BaseHTTPRequestHandler):
    """Just enough of KFP's v2beta1 REST API for Client.create_run_from_pipeline_package."""

    received: ClassVar[list[tuple[str, str, dict[str, Any]]]] = []

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
                }
            )
        else:
            self._answer({"error": "not found"}, 404)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def kfp_api() -> Iterator[str]:
    FakeKfpApi.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeKfpApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


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
