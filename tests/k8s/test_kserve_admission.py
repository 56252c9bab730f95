"""The offline KServe admission checker refuses what KServe v0.20.0's webhooks refuse, in their
words, and passes every object we emit. Each case breaks one rule of an object we really build."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from stroke_mlops.deploy import kserve_objects
from tools.kserve_admission import (
    check_inference_graph,
    check_inference_service,
    check_inference_service_update,
    check_objects,
    check_serving_runtime,
)

URI = "s3://stroke-mlops/models/stroke/versions/v1/"


def _isvc() -> dict[str, Any]:
    return kserve_objects.to_manifest(kserve_objects.build_inference_service(URI))


def _runtime() -> dict[str, Any]:
    return kserve_objects.to_manifest(kserve_objects.build_serving_runtime("stroke-mlops:1"))


def _with_canary(isvc: dict[str, Any], **canary_fields: Any) -> dict[str, Any]:
    predictor = copy.deepcopy(isvc["spec"]["predictor"])
    predictor["name"] = "candidate"
    predictor["model"]["name"] = "kserve-container"
    predictor.update(canary_fields)
    isvc["spec"]["canary"] = [{"trafficPercent": 10, "predictor": predictor}]
    return isvc


def test_what_we_emit_is_admitted() -> None:
    assert check_objects([_runtime(), _isvc()]) == []


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = obj
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return mutate


ISVC_CASES: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("V6", _set("spec.predictor.model.name", "kserve-container"),
     "the 'name' field is not allowed in standard predictor"),
    ("V1", _set("metadata.name", "stroke.v1"),
     'the InferenceService "stroke.v1" is invalid: a InferenceService name must consist of'),
    ("V2", _set("metadata.annotations", {"serving.kserve.io/autoscalerClass": "kpa"}),
     "[kpa] is not a supported autoscaler class type"),
    ("V3", _set("spec.predictor.model.env", [{"name": "PYTHONPATH", "value": "/x"}]),
     "setting PYTHONPATH in container"),
    ("V10", lambda o: o["spec"]["predictor"].update(
        {"sklearn": {"storageUri": URI}, "xgboost": {"storageUri": URI}}),
     "exactly one of [Name, SKLearn"),
    ("V12", lambda o: o["spec"]["predictor"].update({"minReplicas": 3, "maxReplicas": 2}),
     "'MinReplicas' cannot be greater than MaxReplicas"),
    ("U1", _set("spec.predictor.model.storageUri", "ftp://host/m/"), "StorageURI not supported"),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "mutate", "message"), ISVC_CASES, ids=[c[0] for c in ISVC_CASES])
def test_each_inference_service_rule_refuses_in_kserves_words(
    rule: str, mutate: Callable[[dict[str, Any]], Any], message: str
) -> None:
    isvc = _isvc()
    mutate(isvc)
    problems = check_inference_service(isvc)
    assert [p.rule for p in problems] == [rule], problems
    assert problems[0].message.startswith(message) or message in problems[0].message


def test_hpa_metric_rules_apply_only_with_the_hpa_class_written() -> None:
    isvc = _isvc()
    isvc["spec"]["predictor"]["scaleMetric"] = "concurrency"
    assert check_inference_service(isvc) == []  # no class annotation: no autoscaling validation
    isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] = "hpa"
    assert [p.message for p in check_inference_service(isvc)] == [
        "[concurrency] is not a supported metric"
    ]


@pytest.mark.parametrize(
    ("mutate", "rule", "message"),
    [
        (lambda o: _with_canary(o), None, None),
        (lambda o: _with_canary(o, name="") , "C3", "canary[0] predictor.name is required"),
        (lambda o: _with_canary(o, maxReplicas=3), "C10",
         'canary "candidate" must not set maxReplicas (canary uses fixed replicas)'),
        (lambda o: _with_canary(o, minReplicas=2), "C11",
         'canary "candidate" minReplicas (2) must not exceed stable predictor minReplicas (1)'),
        (lambda o: o["metadata"]["annotations"].update(
            {"serving.kserve.io/deploymentMode": "Knative"}) or _with_canary(o),
         "C1", "canary is only supported in Standard deployment mode"),
    ],
    ids=["valid", "C3", "C10", "C11", "C1"],
)  # fmt: skip
def test_canary_rules(
    mutate: Callable[[dict[str, Any]], Any], rule: str | None, message: str | None
) -> None:
    isvc = _isvc()
    mutate(isvc)
    problems = check_inference_service(isvc)
    if rule is None:
        assert problems == []
    else:
        assert [(p.rule, p.message) for p in problems] == [(rule, message)]


def test_legacy_raw_deployment_counts_as_standard_for_a_canary() -> None:
    isvc = _with_canary(_isvc())
    isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "RawDeployment"
    assert check_inference_service(isvc) == []


def test_renaming_the_predictor_needs_a_new_storage_uri() -> None:
    old = _isvc()
    new = _isvc()
    new["spec"]["predictor"]["name"] = "v2"
    assert [p.rule for p in check_inference_service_update(old, new)] == ["V-U2"]
    new["spec"]["predictor"]["model"]["storageUri"] = "s3://stroke-mlops/models/stroke/versions/v2/"
    assert check_inference_service_update(old, new) == []


def test_serving_runtime_rules() -> None:
    runtime = _runtime()
    runtime["spec"]["containers"][0]["env"] = [{"name": "PYTHONPATH", "value": "/x"}]
    runtime["spec"]["containers"][0]["name"] = "server"
    runtime["spec"]["supportedModelFormats"].append(
        {"name": "stroke-mlops", "autoSelect": True, "priority": 2}
    )
    assert [p.rule for p in check_serving_runtime(runtime)] == ["S2", "S6", "R7"]
    runtime["spec"]["disabled"] = True
    assert check_serving_runtime(runtime) == []  # S1: a disabled runtime is not checked


def test_the_runtime_must_offer_the_model_format_version_we_ask_for() -> None:
    runtime, isvc = _runtime(), _isvc()
    isvc["spec"]["predictor"]["model"]["modelFormat"]["version"] = "2"
    assert [p.message for p in check_objects([runtime, isvc])] == [
        "specified runtime stroke-mlops-runtime does not support specified framework/version"
    ]
    isvc["spec"]["predictor"]["model"]["runtime"] = "other"
    assert [p.rule for p in check_objects([runtime, isvc])] == ["R1"]


def test_inference_graph_splitter_weights_must_sum_to_100() -> None:
    graph: dict[str, Any] = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": "stroke-split"},
        "spec": {
            "nodes": {
                "root": {
                    "routerType": "Splitter",
                    "steps": [
                        {"serviceName": "stroke", "weight": 90},
                        {"serviceName": "stroke-candidate", "weight": 20},
                    ],
                }
            }
        },
    }
    assert [p.message for p in check_inference_graph(graph)] == [
        "InferenceGraph[stroke-split] Node[root] splitter node: the sum of traffic weights for "
        "all routing targets should be 100"
    ]
    graph["spec"]["nodes"]["root"]["steps"][1]["weight"] = 10
    assert check_inference_graph(graph) == []
    graph["spec"]["nodes"]["main"] = graph["spec"]["nodes"].pop("root")
    assert [p.rule for p in check_inference_graph(graph)] == ["IG-root"]
