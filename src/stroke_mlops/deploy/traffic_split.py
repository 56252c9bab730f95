"""Two model versions side by side: KServe's native traffic split for Standard mode.

KServe v0.20 Standard (raw Deployment) mode does not split traffic by ``canary.trafficPercent``
(it only sizes the canary's replicas). Its native split is an **InferenceGraph**
(``serving.kserve.io/v1alpha1``) whose ``root`` node is a ``Splitter`` over one InferenceService
per version. KServe's graph controller resolves each ``serviceName`` to that service's predictor
URL (``GetPredictorEndpoint``: the service address plus the predict path of the runtime's first
protocol, V1 for our runtime) and runs KServe's router (``cmd/router``) with the graph as
``--graph-json``; per request the router draws a number in [0, 100) and takes the first step
whose running weight sum exceeds it.

The predict path carries the *model name*, which KServe's controller takes from the predictor's
``--model_name`` argument or, without one, from the InferenceService's name. Our server answers
``/v1/models/stroke:predict`` whatever the service is called, so both services pass
``--model_name stroke`` (appended to the runtime's arguments by KServe).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stroke_mlops.data import schema
from stroke_mlops.deploy.kserve_objects import (
    KSERVE_GROUP,
    NAMESPACE,
    PART_OF_LABEL,
    DeployConfigError,
    _check_dns_label,
    build_inference_service,
)

INFERENCE_GRAPH_API_VERSION = f"{KSERVE_GROUP}/v1alpha1"
ROOT_NODE = "root"  # KServe's GraphRootNodeName: the router starts there
CHALLENGER_SUFFIX = "-challenger"
GRAPH_SUFFIX = "-split"
# KServe's ArgumentModelName; read by its controller (GetModelName) and by our server.
MODEL_NAME_ARGS = ("--model_name", schema.MODEL_NAME)
# The step names: also how the router's log names the branch it took.
CHAMPION_STEP = "champion"
CHALLENGER_STEP = "challenger"


def check_challenger_percent(percent: Any) -> int:
    """``percent`` as the challenger's Splitter weight (1..99), or DeployConfigError."""
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 99:
        raise DeployConfigError(
            f"challenger percent {percent!r} must be a whole number from 1 to 99 (0 or 100 is "
            "no split: deploy one version with --model-uri alone)"
        )
    return percent


def build_inference_graph(
    champion_service: str,
    challenger_service: str,
    challenger_percent: int,
    *,
    name: str,
    namespace: str = NAMESPACE,
) -> dict[str, Any]:
    """The InferenceGraph: a Splitter sending ``challenger_percent`` % to the challenger."""
    percent = check_challenger_percent(challenger_percent)
    for value, what in (
        (name, "InferenceGraph name"),
        (namespace, "namespace"),
        (champion_service, "champion InferenceService name"),
        (challenger_service, "challenger InferenceService name"),
    ):
        _check_dns_label(value, what)
    if champion_service == challenger_service:
        raise DeployConfigError("the champion and the challenger need different service names")
    steps = [
        {"name": CHAMPION_STEP, "serviceName": champion_service, "weight": 100 - percent},
        {"name": CHALLENGER_STEP, "serviceName": challenger_service, "weight": percent},
    ]
    return {
        "apiVersion": INFERENCE_GRAPH_API_VERSION,
        "kind": "InferenceGraph",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(PART_OF_LABEL)},
        "spec": {"nodes": {ROOT_NODE: {"routerType": "Splitter", "steps": steps}}},
    }


def build_split(
    champion_uri: str,
    challenger_uri: str,
    challenger_percent: int,
    *,
    name: str = "stroke",
    namespace: str = NAMESPACE,
    champion_version: str | None = None,
    challenger_version: str | None = None,
) -> list[Any]:
    """The two InferenceServices (``name`` and ``name-challenger``) and the InferenceGraph
    ``name-split`` in front of them; apply the services first (the graph waits for them)."""
    challenger_name = name + CHALLENGER_SUFFIX
    services = []
    for service_name, uri, version in (
        (name, champion_uri, champion_version),
        (challenger_name, challenger_uri, challenger_version),
    ):
        service = build_inference_service(
            uri, name=service_name, namespace=namespace, model_version=version
        )
        service.spec.predictor.model.args = list(MODEL_NAME_ARGS)
        services.append(service)
    graph = build_inference_graph(
        name, challenger_name, challenger_percent, name=name + GRAPH_SUFFIX, namespace=namespace
    )
    return [*services, graph]


def resolve_service_urls(
    graph: Mapping[str, Any], service_urls: Mapping[str, str]
) -> dict[str, Any]:
    """The graph spec as KServe's controller hands it to the router (``--graph-json``): each
    step's ``serviceUrl`` filled in from ``service_urls[serviceName]`` where it has none.

    KServe's controller takes the URL from the service's status (its address plus the predict
    path); locally the caller knows where each predictor listens.
    """
    spec: dict[str, Any] = {"nodes": {}}
    for node_name, node in graph["spec"]["nodes"].items():
        steps = []
        for step in node["steps"]:
            step = dict(step)
            service = step.get("serviceName")
            if service and not step.get("serviceUrl"):
                if service not in service_urls:
                    raise DeployConfigError(f"no URL for InferenceService {service!r}")
                step["serviceUrl"] = service_urls[service]
            steps.append(step)
        spec["nodes"][node_name] = {**node, "steps": steps}
    return spec
