"""Two signed model versions behind KServe's own router (tools/platform/bin/kserve-router, built
from KServe v0.20.0's cmd/router by make platform-tools), with the graph `stroke-mlops deploy
--challenger-percent` emits: the measured share and the version each answer carries.

The router listens on its fixed port 8080 inside its own network namespace (see
tools/local_platform/router.py); the predictors are `stroke-mlops serve` processes on the host
side of the veth pair, on free ports.
"""

from __future__ import annotations

import http.client
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sklearn.pipeline import Pipeline

from stroke_mlops.deploy.traffic_split import build_inference_graph, resolve_service_urls
from stroke_mlops.serving.infra_validation import ServerProcess, v1_body, v2_body
from tests.serving.model_dirs import write_test_model_dir
from tools.local_platform import router as kserve_router

REASON = kserve_router.unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

CHAMPION, CHALLENGER = "champion-v1", "challenger-v2"
CHALLENGER_PERCENT = 30
REQUESTS = 2000


@dataclass
class Split:
    network: kserve_router.RouterNetwork
    servers: dict[str, ServerProcess]  # version -> its predictor
    logs: dict[str, Path]  # version -> its request-log folder
    router: kserve_router.RouterProcess
    tmp: Path


def _start(server: ServerProcess) -> ServerProcess:
    server.start()
    ready, why = server.wait_ready(90)
    if not ready:
        pytest.fail(f"{why}:\n{server.log_tail()}")
    return server


def _urls(split_servers: dict[str, ServerProcess], path: str) -> dict[str, str]:
    names = {CHAMPION: "stroke", CHALLENGER: "stroke-challenger"}
    return {
        names[version]: f"http://{server.host}:{server.port}{path}"
        for version, server in split_servers.items()
    }


@pytest.fixture(scope="module")
def split(
    tmp_path_factory: pytest.TempPathFactory,
    lr_pipeline: Pipeline,
    xgb_pipeline: Pipeline,
    signature_doc: dict[str, Any],
) -> Iterator[Split]:
    tmp = tmp_path_factory.mktemp("split")
    network = kserve_router.RouterNetwork()
    servers: dict[str, ServerProcess] = {}
    logs: dict[str, Path] = {}
    try:
        for version, pipeline in ((CHAMPION, lr_pipeline), (CHALLENGER, xgb_pipeline)):
            model = write_test_model_dir(tmp / version, pipeline, signature_doc, version=version)
            logs[version] = tmp / f"log-{version}"
            servers[version] = _start(
                ServerProcess(str(model), host=network.host_ip,
                              extra_args=["--request-log-dir", str(logs[version])])
            )  # fmt: skip
        graph = build_inference_graph("stroke", "stroke-challenger", CHALLENGER_PERCENT,
                                      name="stroke-split")  # fmt: skip
        spec = resolve_service_urls(graph, _urls(servers, "/v1/models/stroke:predict"))
        with kserve_router.running_router(network, spec, tmp / "router.log") as router:
            yield Split(network, servers, logs, router, tmp)
    finally:
        for server in servers.values():
            server.cleanup()
        network.close()


def _post(
    connection: http.client.HTTPConnection, path: str, body: bytes
) -> tuple[int, dict[str, str], dict[str, Any]]:
    connection.request("POST", path, body=body, headers={"content-type": "application/json"})
    response = connection.getresponse()
    headers = {k.lower(): v for k, v in response.getheaders()}
    return response.status, headers, json.loads(response.read())


@pytest.fixture(scope="module")
def answers(split: Split, real_instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """REQUESTS single-row V1 requests through the router, one keep-alive connection."""
    host, port = split.network.router_ip, kserve_router.ROUTER_PORT
    connection = http.client.HTTPConnection(host, port, timeout=10)
    bodies = []
    try:
        for i in range(REQUESTS):
            instance = real_instances[i % len(real_instances)]
            status, headers, body = _post(
                connection, "/v1/models/stroke:predict", v1_body([instance])
            )
            assert status == 200, body
            bodies.append({**body, "_headers": headers})
    finally:
        connection.close()
    return bodies


def test_the_challenger_gets_its_share_within_3_points(answers: list[dict[str, Any]]) -> None:
    versions = Counter(answer["model_version"] for answer in answers)
    assert set(versions) == {CHAMPION, CHALLENGER}, versions
    share = 100 * versions[CHALLENGER] / len(answers)
    assert abs(share - CHALLENGER_PERCENT) <= 3, f"challenger share {share:.1f} %"


def test_every_answer_and_its_logged_record_name_the_version_that_answered(
    split: Split, answers: list[dict[str, Any]]
) -> None:
    for answer in answers:
        assert answer["model_name"] == "stroke"
        assert len(answer["prediction_id"]) == 32
        # KServe's router passes no response header back: the body is what carries them.
        assert "x-prediction-id" not in answer["_headers"]
    for version, folder in split.logs.items():
        expected = {a["prediction_id"] for a in answers if a["model_version"] == version}
        logged: dict[str, str] = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the sink writes a batch a second
            logged = {}
            for path in folder.rglob("*.jsonl"):
                for line in path.read_text().splitlines():
                    record = json.loads(line)
                    logged[record["prediction_id"]] = record["model_version"]
            if len(logged) >= len(expected):
                break
            time.sleep(0.2)
        assert set(logged) == expected, version
        assert set(logged.values()) == {version}


def test_v2_answers_through_the_router_carry_version_and_prediction_id(
    split: Split, real_instances: list[dict[str, Any]], signature_doc: dict[str, Any]
) -> None:
    """A graph whose steps name the V2 path (the controller picks V1 for our runtime; a user
    may write serviceUrl by hand): V2's model_version and parameters.prediction_id survive."""
    spec = resolve_service_urls(
        build_inference_graph("stroke", "stroke-challenger", 50, name="stroke-split"),
        _urls(split.servers, "/v2/models/stroke/infer"),
    )
    seen: Counter[str] = Counter()
    # The predictors listen on the first network's host address: reachable from this one too.
    with (
        kserve_router.RouterNetwork() as network,
        kserve_router.running_router(network, spec, split.tmp / "router-v2.log"),
    ):
        connection = http.client.HTTPConnection(
            network.router_ip, kserve_router.ROUTER_PORT, timeout=10
        )
        try:
            for instance in real_instances[:200]:
                status, _, body = _post(connection, "/", v2_body([instance], signature_doc))
                assert status == 200, body
                assert len(body["parameters"]["prediction_id"]) == 32
                seen[body["model_version"]] += 1
        finally:
            connection.close()
    assert set(seen) == {CHAMPION, CHALLENGER}
