"""KServe v0.20.0 admission rules beyond the CRD schema, as an offline checker (test tooling).

A schema-valid object can still be refused by KServe's validating webhooks (or fail in its
controller). This module encodes the rules that apply to the kinds this project emits
(InferenceService, ServingRuntime, InferenceGraph), with KServe's own error text, so tests and
``make validate-manifests`` catch such objects before a cluster does.

Sources: ``/work/shared/reference/kserve-v0.20-admission-rules.md`` ("REF §n, ID"), which cites
KServe at tag ``v0.20.0`` (commit ``1fb781055dd1``); the InferenceGraph rules cite that tag's
``pkg/apis/serving/v1alpha1/inference_graph_validation.go`` ("IGV:line") directly.

Not modelled: rules for features we never emit (multi-node ``workerSpec``, KEDA, Knative mode,
confidential serving, ``storageUris``), which are listed in the reference. For InferenceGraphs
only the validating webhook is transcribed (reporting every problem, where KServe stops at the
first); strict decoding and the graph controller's lookup of each ``serviceName`` and its
predictor URL are KServe's alone (``tools/platform/bin/kserve-admit``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GROUP = "serving.kserve.io"
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
AUTOSCALER_CLASS_ANNOTATION = "serving.kserve.io/autoscalerClass"
# REF §2 D1 (CONST:559-587): accepted values; the defaulter maps the legacy names (D2, DEF:164-176).
_MODE_ALIASES = {
    "Standard": "Standard",
    "RawDeployment": "Standard",
    "Knative": "Knative",
    "Serverless": "Knative",
    "ModelMesh": "ModelMesh",
}
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # REF V1 (VAL:44-56); IGV:53
_FRAMEWORKS = (
    "sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface", "pmml",
    "lightgbm", "paddle",
)  # fmt: skip
# REF §7 U1 (CU:47-54, 411-442): schemes the controller accepts for storageUri.
_STORAGE_SCHEMES = (
    "gs://", "s3://", "pvc://", "file://", "https://", "http://", "hdfs://", "webhdfs://",
    "oci://", "oci+native://", "hf://",
)  # fmt: skip
_NAME_ERROR = (
    "a {kind} name must consist of lower case alphanumeric characters or '-', and must start "
    'with alphabetical character. (e.g. "my-name" or "abc-123", regex used for validation '
    "is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


@dataclass(frozen=True)
class AdmissionProblem:
    """One reason KServe would refuse (or fail to reconcile) an object, in KServe's words."""

    kind: str
    name: str
    rule: str  # the rule's ID in the reference, e.g. "V6"
    message: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}: [{self.rule}] {self.message}"


def _env_names(container: Mapping[str, Any]) -> list[str]:
    return [str(env.get("name")) for env in container.get("env") or []]


def _containers(component: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    for key in ("containers", "initContainers"):
        for container in component.get(key) or []:
            yield str(container.get("name", "")), container


def _storage_uri(predictor: Mapping[str, Any]) -> str | None:
    for field in ("model", *_FRAMEWORKS):
        spec = predictor.get(field)
        if isinstance(spec, Mapping) and spec.get("storageUri"):
            return str(spec["storageUri"])
    return None


# DEF:231-262: the defaulter's switch order; the first framework set replaces ``model``.
_REWRITE_ORDER = (
    "sklearn", "tensorflow", "xgboost", "pytorch", "triton", "onnx", "huggingface", "pmml",
    "lightgbm", "paddle",
)  # fmt: skip


def _implementations(predictor: Mapping[str, Any]) -> list[str]:
    # REF V10 (PRED:168-201): framework fields + model + a custom container implementation,
    # counted after M3: the first framework field set (in DEF's switch order) is rewritten to
    # ``model``, overwriting any ``model`` already there, so sklearn + model is admitted.
    found = [f for f in (*_FRAMEWORKS, "model") if predictor.get(f) is not None]
    rewritten = next((f for f in _REWRITE_ORDER if predictor.get(f) is not None), None)
    if rewritten is not None and "model" in found:
        found.remove(rewritten)
    containers = predictor.get("containers") or []
    if containers and (not found or any(c.get("name") == "kserve-container" for c in containers)):
        found.append("containers")
    return found


def _extension_problems(component: Mapping[str, Any]) -> list[str]:
    """REF §4.5 (CMP:341-413): ComponentExtensionSpec.Validate, in its order."""
    problems = []
    concurrency = component.get("containerConcurrency")
    if concurrency is not None and concurrency < 0:
        problems.append("parallelism cannot be less than 0")  # CMP:390-398
    min_replicas = component.get("minReplicas")
    max_replicas = component.get("maxReplicas")
    if min_replicas is not None and min_replicas < 0:
        problems.append("'MinReplicas' cannot be less than 0")  # CMP:374-380
    if max_replicas is not None and max_replicas < 0:
        problems.append("'MaxReplicas' cannot be less than 0")  # CMP:381-383
    if (
        max_replicas  # CMP:384-386: only while maxReplicas != 0; unset min counts as 1
        and (1 if min_replicas is None else min_replicas) > max_replicas
    ):
        problems.append("'MinReplicas' cannot be greater than MaxReplicas")
    logger = component.get("logger")
    if isinstance(logger, Mapping):
        if logger.get("mode") not in ("all", "request", "response"):
            problems.append("invalid logger type")  # CMP:400-404
        storage = logger.get("storage")
        if storage is not None and not (
            storage.get("path") and storage.get("parameters") and storage.get("key")
        ):
            problems.append("invalid logger storage configuration")  # CMP:405-409
    return problems


def check_inference_service(isvc: Mapping[str, Any]) -> list[AdmissionProblem]:
    """What KServe v0.20.0's defaulting + validating webhooks (and controller) refuse, on CREATE."""
    metadata = isvc.get("metadata") or {}
    name = str(metadata.get("name", "?"))
    annotations = metadata.get("annotations") or {}
    spec = isvc.get("spec") or {}
    predictor = spec.get("predictor") or {}
    problems: list[AdmissionProblem] = []

    def refuse(rule: str, message: str) -> None:
        problems.append(AdmissionProblem("InferenceService", name, rule, message))

    # REF D1-D3 (DEF:164-186): legacy names are mapped; an absent annotation gets the configured
    # default (Standard, as we install KServe). An unknown value is not refused: KServe's webhooks
    # admit it and the controller falls back to the configured default (CU:224-248), as
    # tools/platform/bin/kserve-admit (KServe's own code) shows.
    raw_mode = annotations.get(DEPLOYMENT_MODE_ANNOTATION)
    mode = _MODE_ALIASES.get(raw_mode, raw_mode) if raw_mode is not None else "Standard"
    # V1 (VAL:44-56, 469-474)
    if not _NAME.match(name):
        refuse(
            "V1",
            f'the InferenceService "{name}" is invalid: '
            + _NAME_ERROR.format(kind="InferenceService"),
        )
    # V2 (VAL:477-491): kpa is Knative only and refused here.
    autoscaler = annotations.get(AUTOSCALER_CLASS_ANNOTATION)
    if autoscaler is not None and autoscaler not in ("hpa", "external", "keda", "none"):
        refuse("V2", f"[{autoscaler}] is not a supported autoscaler class type")
    # V3 (VAL:302-354; ENV:25-43): PYTHONPATH anywhere in predictor/transformer/explainer.
    for component_name in ("predictor", "transformer", "explainer"):
        component = spec.get(component_name) or {}
        containers = list(_containers(component))
        for field in ("model", *_FRAMEWORKS):
            if isinstance(component.get(field), Mapping):
                containers.append((str(component[field].get("name", "")), component[field]))
        for container_name, container in containers:
            if "PYTHONPATH" in _env_names(container):
                refuse(
                    "V3",
                    f'the InferenceService "{name}" is invalid: setting PYTHONPATH in container '
                    f'"{container_name}" is not allowed for security reasons',
                )
            # V5 (VAL:671-683)
            if container_name == "transformer-container" and "STORAGE_URI" in _env_names(container):
                refuse("V5", "storage uri should not be specified in transformer container")
    # V6 (VAL:268-300; the model case at VAL:296-297): no container name on a standard predictor.
    for field in ("model", *_FRAMEWORKS):
        impl = predictor.get(field)
        if isinstance(impl, Mapping) and impl.get("name"):
            refuse("V6", "the 'name' field is not allowed in standard predictor")
    # V7 (VAL:806-852)
    if _storage_uri(predictor) and predictor.get("storageUris"):
        refuse("V7", "Setting both StorageURI and StorageURIs is not supported.")
    # V10 (VAL:157-165; CMP:415-451): exactly one implementation.
    if len(_implementations(predictor)) != 1:
        refuse(
            "V10",
            "exactly one of [Name, SKLearn, XGBoost, Tensorflow, PyTorch, Triton, ONNX, "
            "HuggingFace, PMML, LightGBM, Paddle, Model, StorageUris, StorageContainerName, "
            "WorkerSpec, PodSpec] must be specified in PredictorSpec",
        )
    # V12 (VAL:167; CMP:341-413)
    for component_name in ("predictor", "transformer", "explainer"):
        if spec.get(component_name):
            for message in _extension_problems(spec[component_name]):
                refuse("V12", message)
    # V13, §4.3 (VAL:527-565): HPA rules apply only with autoscalerClass hpa written explicitly.
    if mode == "Standard" and autoscaler == "hpa":
        metric = predictor.get("scaleMetric") or "cpu"
        if metric not in ("cpu", "memory"):
            refuse("V13", f"[{metric}] is not a supported metric")  # VAL:533-536
        target = predictor.get("scaleTarget")
        if target is not None and ((metric == "cpu" and target < 1) or target > 100):
            refuse("V13", "the target utilization percentage should be a [1-100] integer")
    # §4.4 canary rules (VAL:183-266), only when spec.canary is non-empty.
    canaries = spec.get("canary") or []
    if canaries:
        problems.extend(_canary_problems(name, mode, predictor, canaries))
    # U1 (CU:47-54, 411-442; controller, after admission): the storageUri scheme.
    uri = _storage_uri(predictor)
    if uri and "://" in uri and not uri.startswith(_STORAGE_SCHEMES):
        refuse(
            "U1",
            "StorageURI not supported: storageUri, must be one of: [gs://, s3://, pvc://, "
            "file://, https://, http://, hdfs://, webhdfs://, oci://, oci+native://, hf://] or "
            "match https://{}.blob.core.windows.net/{}/{} or be an absolute or relative local "
            f"path. StorageUri [{uri}] is not supported",
        )
    return problems


def _canary_problems(
    name: str, mode: str | None, stable: Mapping[str, Any], canaries: Sequence[Any]
) -> list[AdmissionProblem]:
    problems: list[AdmissionProblem] = []

    def refuse(rule: str, message: str) -> None:
        problems.append(AdmissionProblem("InferenceService", name, rule, message))

    if mode != "Standard":  # C1 (VAL:188-191): the annotation after the defaulter's mapping.
        refuse("C1", "canary is only supported in Standard deployment mode")
        return problems
    if not (_storage_uri(stable) or stable.get("model")):  # C2 (VAL:193-195)
        refuse(
            "C2",
            "canary requires a stable predictor with a model (multi-model serving is not "
            "supported with canary)",
        )
        return problems
    seen: set[str] = set()
    total = 0
    stable_min = stable.get("minReplicas")
    for index, canary in enumerate(canaries):
        predictor = canary.get("predictor") or {}
        canary_name = predictor.get("name") or ""
        if not canary_name:  # C3 (VAL:203-205)
            refuse("C3", f"canary[{index}] predictor.name is required")
            continue
        if canary_name in seen:  # C4 (VAL:207-210)
            refuse("C4", f'canary predictor.name "{canary_name}" is duplicated')
        seen.add(canary_name)
        if canary_name == (stable.get("name") or ""):  # C5 (VAL:212-214)
            refuse(
                "C5", f'canary predictor.name "{canary_name}" conflicts with stable predictor name'
            )
        percent = canary.get("trafficPercent", 0)
        if not 0 <= percent <= 100:  # C6 (VAL:216-218)
            refuse(
                "C6",
                f'canary "{canary_name}" trafficPercent must be between 0 and 100, got {percent}',
            )
        total += percent
        if len(_implementations(predictor)) != 1:  # C7 (VAL:221-223)
            refuse(
                "C7",
                f'canary "{canary_name}" predictor: exactly one of [...] must be specified in '
                "PredictorSpec",
            )
        for message in _extension_problems(predictor):  # C8 (VAL:224-229)
            refuse("C8", f'canary "{canary_name}" predictor: {message}')
        if predictor.get("workerSpec") is not None:  # C9 (VAL:231-233)
            refuse(
                "C9",
                f'canary "{canary_name}" must not set workerSpec (multi-node is not yet '
                "supported for canary)",
            )
        for field in ("maxReplicas", "scaleTarget", "scaleMetric", "autoScaling"):  # C10
            value = predictor.get(field)
            if (field == "maxReplicas" and value and value > 0) or (
                field != "maxReplicas" and value is not None
            ):
                refuse(
                    "C10",
                    f'canary "{canary_name}" must not set {field} (canary uses fixed replicas)',
                )
        canary_min = predictor.get("minReplicas")
        stable_floor = 1 if stable_min is None else stable_min
        if canary_min is not None and canary_min > stable_floor:  # C11 (VAL:249-258)
            refuse(
                "C11",
                f'canary "{canary_name}" minReplicas ({canary_min}) must not exceed stable '
                f"predictor minReplicas ({stable_floor})",
            )
        model = predictor.get("model")
        if isinstance(model, Mapping) and not (model.get("modelFormat") and model.get("name")):
            # CRD:5292-5294 (schema, listed here too because the canary needs what V6 forbids)
            refuse("CRD", f'canary "{canary_name}" predictor.model requires modelFormat and name')
    if total > 100:  # C12 (VAL:261-263)
        refuse("C12", f"sum of canary trafficPercent values ({total}) must be <= 100")
    return problems


def check_inference_service_update(
    old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[AdmissionProblem]:
    """The update-only rules (REF §4.1), then the common ones, for replacing ``old`` by ``new``."""
    problems: list[AdmissionProblem] = []
    name = str((new.get("metadata") or {}).get("name", "?"))
    old_predictor = (old.get("spec") or {}).get("predictor") or {}
    new_predictor = (new.get("spec") or {}).get("predictor") or {}
    status_mode = (old.get("status") or {}).get("deploymentMode")
    annotation = ((new.get("metadata") or {}).get("annotations") or {}).get(
        DEPLOYMENT_MODE_ANNOTATION
    )
    # V-U1 (VAL:691-701)
    if status_mode and annotation and _MODE_ALIASES.get(annotation, annotation) != status_mode:
        problems.append(
            AdmissionProblem(
                "InferenceService",
                name,
                "V-U1",
                f"update rejected: deploymentMode cannot be changed from '{status_mode}' to "
                f"'{annotation}'",
            )
        )
    # V-U2 (VAL:703-725)
    if (old_predictor.get("name") or "") != (new_predictor.get("name") or "") and _storage_uri(
        old_predictor
    ) == _storage_uri(new_predictor):
        problems.append(
            AdmissionProblem(
                "InferenceService",
                name,
                "V-U2",
                "predictor.name change requires a model change (e.g. storageUri)",
            )
        )
    return problems + check_inference_service(new)


def check_serving_runtime(runtime: Mapping[str, Any]) -> list[AdmissionProblem]:
    """REF §5 (SRW) plus the controller's container requirement (R7) for one ServingRuntime."""
    kind = str(runtime.get("kind", "ServingRuntime"))
    name = str((runtime.get("metadata") or {}).get("name", "?"))
    spec = runtime.get("spec") or {}
    problems: list[AdmissionProblem] = []

    def refuse(rule: str, message: str) -> None:
        problems.append(AdmissionProblem(kind, name, rule, message))

    if spec.get("disabled"):  # S1 (SRW:84-87): allowed without further checks
        return problems
    # S2 (SRW:162-180): same format, both autoSelect with a priority, different priorities.
    priorities: dict[str, set[int]] = {}
    for model_format in spec.get("supportedModelFormats") or []:
        if model_format.get("autoSelect") and model_format.get("priority") is not None:
            priorities.setdefault(model_format["name"], set()).add(model_format["priority"])
    for model_format, values in priorities.items():
        if len(values) > 1:
            refuse(
                "S2",
                f"different priorities assigned for the model format {model_format} under the "
                f"{kind.lower()} {name}",
            )
    # S5 (SRW:211-268), the part that applies without GPUs: one worker container at most.
    worker = spec.get("workerSpec")
    if isinstance(worker, Mapping) and len(worker.get("containers") or []) > 1:
        refuse(
            "S5",
            f"the {kind} {name} is invalid: setting multiple containers in workerSpec is not "
            "allowed",
        )
    # S6 (SRW:270-282; ENV:25-43): PYTHONPATH in containers (not initContainers).
    containers = list(spec.get("containers") or [])
    worker_containers = list((worker or {}).get("containers") or [])
    for container in containers + worker_containers:
        if "PYTHONPATH" in _env_names(container):
            refuse(
                "S6",
                f'the {kind} "{name}" is invalid: setting PYTHONPATH in container '
                f'"{container.get("name")}" is not allowed for security reasons',
            )
    # R7 (CP:419-496; controller): a container named kserve-container must exist.
    if not containers:
        refuse("R7", "no container configuration found in selected serving runtime")
    elif not any(c.get("name") == "kserve-container" for c in containers):
        refuse("R7", "failed to find kserve-container in ServingRuntime containers")
    return problems


def check_runtime_match(
    isvc: Mapping[str, Any], runtimes: Sequence[Mapping[str, Any]]
) -> list[AdmissionProblem]:
    """REF §6 R1, R3, R4 (controller): the runtime ``isvc`` names exists and supports its model."""
    name = str((isvc.get("metadata") or {}).get("name", "?"))
    model = ((isvc.get("spec") or {}).get("predictor") or {}).get("model") or {}
    runtime_name = model.get("runtime")
    if not runtime_name:
        return []
    by_name = {r["metadata"]["name"]: r for r in runtimes}
    runtime = by_name.get(runtime_name)
    if runtime is None:  # R1 (CU:304-321)
        return [
            AdmissionProblem(
                "InferenceService",
                name,
                "R1",
                f"No ServingRuntimes or ClusterServingRuntimes with the name: {runtime_name}",
            )
        ]
    spec = runtime.get("spec") or {}
    problems = []
    if spec.get("disabled"):  # R2 (CP:341-347)
        problems.append(
            AdmissionProblem(
                "InferenceService", name, "R2", f"specified runtime {runtime_name} is disabled"
            )
        )
    protocol = model.get("protocolVersion")
    protocols = spec.get("protocolVersions") or []
    if protocol and protocols and protocol not in protocols:  # R3 (CP:349-356)
        problems.append(
            AdmissionProblem(
                "InferenceService",
                name,
                "R3",
                f"specified runtime {runtime_name} does not support specified protocol version",
            )
        )
    # R4 (PM:133-163): with an explicit runtime every format counts; versions compare exactly.
    model_format = model.get("modelFormat") or {}
    wanted = f"mt:{model_format.get('name')}" + (
        f":{model_format['version']}" if model_format.get("version") else ""
    )
    offered = set()
    for supported in spec.get("supportedModelFormats") or []:
        offered.add(f"mt:{supported['name']}")
        if supported.get("version"):
            offered.add(f"mt:{supported['name']}:{supported['version']}")
    if wanted not in offered:
        problems.append(
            AdmissionProblem(
                "InferenceService",
                name,
                "R4",
                f"specified runtime {runtime_name} does not support specified framework/version",
            )
        )
    return problems


def check_inference_graph(graph: Mapping[str, Any]) -> list[AdmissionProblem]:
    """The InferenceGraph validating webhook at v0.20.0 (IGV:112-215), in its order."""
    name = str((graph.get("metadata") or {}).get("name", "?"))
    nodes = (graph.get("spec") or {}).get("nodes") or {}
    problems: list[AdmissionProblem] = []

    def refuse(rule: str, message: str) -> None:
        problems.append(AdmissionProblem("InferenceGraph", name, rule, message))

    if not _NAME.match(name):  # IGV:181-186
        refuse(
            "IG-name",
            f'The InferenceGraph "{name}" is invalid: ' + _NAME_ERROR.format(kind="InferenceGraph"),
        )
    if "root" not in nodes:  # IGV:189-196
        refuse(
            "IG-root",
            "root node not found, InferenceGraph needs a node with name 'root' as the root node "
            "of the graph",
        )
    for node_name, node in nodes.items():
        steps = node.get("steps") or []
        step_names = [s.get("name") for s in steps if s.get("name")]
        for step_name in sorted({n for n in step_names if step_names.count(n) > 1}):
            refuse(  # IGV:136-152
                "IG-step-name",
                f'Node "{node_name}" of InferenceGraph "{name}" contains more than one step with '
                f'name "{step_name}"',
            )
        for index, step in enumerate(steps):  # IGV:154-179
            targets = sum(bool(step.get(t)) for t in ("nodeName", "serviceName", "serviceUrl"))
            if targets == 0:
                refuse(
                    "IG-target",
                    f'Step {index} ("{step.get("name", "")}") in node "{node_name}" of '
                    f'InferenceGraph "{name}" does not specify an inference target',
                )
            elif targets > 1:
                refuse(
                    "IG-target",
                    f'Step {index} ("{step.get("name", "")}") in node "{node_name}" of '
                    f'InferenceGraph "{name}" specifies more than one of nodeName, serviceName, '
                    "serviceUrl",
                )
        if node.get("routerType") == "Splitter":  # IGV:200-215
            if any(step.get("weight") is None for step in steps):
                missing = next(s for s in steps if s.get("weight") is None)
                route = missing.get("serviceName", "")
                refuse(
                    "IG-weight",
                    f"InferenceGraph[{name}] Node[{node_name}] Route[{route}] missing the 'Weight'",
                )
            elif sum(int(step["weight"]) for step in steps) != 100:
                refuse(
                    "IG-weight",
                    f"InferenceGraph[{name}] Node[{node_name}] splitter node: the sum of traffic "
                    "weights for all routing targets should be 100",
                )
    return problems


def check_objects(objects: Sequence[Mapping[str, Any]]) -> list[AdmissionProblem]:
    """Every admission problem of every KServe object in ``objects`` (other kinds are skipped).

    InferenceServices are also matched against the ServingRuntimes among ``objects`` (R1-R4)
    when there is at least one.
    """
    runtimes = [
        o
        for o in objects
        if o.get("kind") == "ServingRuntime" and str(o.get("apiVersion", "")).startswith(GROUP)
    ]
    problems: list[AdmissionProblem] = []
    for obj in objects:
        if not str(obj.get("apiVersion", "")).startswith(GROUP + "/"):
            continue
        kind = obj.get("kind")
        if kind == "InferenceService":
            problems += check_inference_service(obj)
            if runtimes:
                problems += check_runtime_match(obj, runtimes)
        elif kind in ("ServingRuntime", "ClusterServingRuntime"):
            problems += check_serving_runtime(obj)
        elif kind == "InferenceGraph":
            problems += check_inference_graph(obj)
    return problems
