"""The traffic split on the real platform code: `stroke-mlops deploy --challenger-percent --apply`
goes through KServe v0.20.0's webhooks, and KServe's graph controller (Standard mode) turns the
InferenceGraph into the router Deployment, with each step resolved to the predictor URL of its
InferenceService."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stroke_mlops.deploy import kserve_objects
from tests.platform.conftest import stroke_mlops

pytestmark = pytest.mark.platform

NAMESPACE = kserve_objects.NAMESPACE
URIS = (
    "s3://stroke-mlops/models/stroke/versions/20260101T000000Z-aaaa1111/",
    "s3://stroke-mlops/models/stroke/versions/20260201T000000Z-bbbb2222/",
)


def _split(cli_env: dict[str, str], *extra: str) -> Any:
    split = ("--challenger-uri", URIS[1], "--challenger-percent", "30")
    return stroke_mlops(cli_env, "deploy", "--name", "stroke-ab", "--model-uri", URIS[0], *split,
                        *extra)  # fmt: skip


def test_the_split_is_applied_and_kserve_runs_the_router_on_both_predictors(
    applied_overlays: dict[str, str], api: Any, cli_env: dict[str, str]
) -> None:
    from kubernetes.client import AppsV1Api, CoreV1Api

    result = _split(cli_env, "--apply")
    assert result.returncode == 0, result.stderr
    for line in (
        "applied InferenceService stroke-mlops/stroke-ab",
        "applied InferenceService stroke-mlops/stroke-ab-challenger",
        "applied InferenceGraph stroke-mlops/stroke-ab-split",
        "reconciled InferenceService stroke-mlops/stroke-ab-challenger into Deployment "
        "stroke-ab-challenger-predictor",
        "reconciled InferenceGraph stroke-mlops/stroke-ab-split into router Deployment "
        "stroke-ab-split",
    ):
        assert line in result.stdout, result.stdout

    router = AppsV1Api(api).read_namespaced_deployment("stroke-ab-split", NAMESPACE)
    (container,) = router.spec.template.spec.containers
    assert container.image == "kserve/router:latest"  # KServe's shipped inferenceservice-config
    assert container.args[0] == "--graph-json"
    steps = json.loads(container.args[1])["nodes"]["root"]["steps"]
    assert [(s["name"], s["weight"]) for s in steps] == [("champion", 70), ("challenger", 30)]
    # What the router will POST to: each predictor's Service and the path our server answers.
    assert [s["serviceUrl"] for s in steps] == [
        f"http://{name}-predictor.{NAMESPACE}.svc.cluster.local/v1/models/stroke:predict"
        for name in ("stroke-ab", "stroke-ab-challenger")
    ]
    assert container.readiness_probe.http_get.path == "/readyz"
    assert container.readiness_probe.http_get.port == 8080
    assert not container.env  # no "propagate" headers in KServe's shipped router config
    service = CoreV1Api(api).read_namespaced_service("stroke-ab-split", NAMESPACE)
    assert [(p.port, p.target_port) for p in service.spec.ports] == [(80, 8080)]


def test_a_graph_whose_weights_do_not_sum_to_100_is_refused_live(
    applied_overlays: dict[str, str], api: Any
) -> None:
    from stroke_mlops.deploy.live_apply import ApplyRefusedError, server_side_apply
    from stroke_mlops.deploy.traffic_split import build_inference_graph

    graph = build_inference_graph("stroke-ab", "stroke-ab-challenger", 30, name="stroke-bad")
    graph["spec"]["nodes"]["root"]["steps"][1]["weight"] = 40
    with pytest.raises(ApplyRefusedError) as refused:
        server_side_apply([graph], api_client=api)
    assert "the sum of traffic weights for all routing targets should be 100" in str(refused.value)
    assert "inferencegraph.kserve-webhook-server.validator" in str(refused.value)
