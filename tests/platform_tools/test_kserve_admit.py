"""KServe v0.20.0's own code (tools/platform/bin/kserve-admit, built by make platform-tools) admits
every KServe object we emit and refuses known mistakes in its own words; our transcription
(tools/kserve_admission.py) agrees with it on a shared set of cases."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from stroke_mlops.deploy import kserve_objects
from tests.platform_tools.platform_bin import (
    KSERVE_ADMIT,
    REPO_ROOT,
    kserve_admit,
    require_kserve_admit,
)
from tools.kserve_admission import check_objects
from tools.validate_k8s import render_kustomize

require_kserve_admit()

URI = "s3://stroke-mlops/models/stroke/versions/20260101-abc/"
KSERVE_KINDS = {"InferenceService", "ServingRuntime", "ClusterServingRuntime", "InferenceGraph"}


def _isvc(name: str = "stroke") -> dict[str, Any]:
    return kserve_objects.to_manifest(kserve_objects.build_inference_service(URI, name=name))


def _runtime() -> dict[str, Any]:
    return kserve_objects.to_manifest(kserve_objects.build_serving_runtime("stroke-mlops:1"))


@pytest.mark.parametrize("overlay", ["kind", "minikube"])
def test_every_kserve_object_of_each_overlay_is_admitted(overlay: str) -> None:
    objects = render_kustomize(
        REPO_ROOT / "manifests" / "overlays" / overlay, env_examples="always"
    )
    ours = [o for o in objects if o["kind"] in KSERVE_KINDS]
    assert ours, "the overlay emits no KServe object"
    verdict = kserve_admit(objects)
    assert verdict.returncode == 0, verdict.output
    assert len(verdict.admitted) == len(ours)


DEPLOY_VARIANTS = [
    [],
    ["--model-version", "20260101-abc"],
    ["--name", "stroke-staging", "--namespace", "models"],
    ["--image", "registry.example:5000/stroke-mlops:1.2.3"],
]
# Every scheme our deploy accepts must be one KServe's controller accepts too.
DEPLOY_URIS = [
    f"{scheme}://{'stroke-mlops/m/v1/' if scheme != 'file' else '/mnt/m/v1/'}"
    for scheme in kserve_objects.STORAGE_URI_SCHEMES
]


def _dry_run(*args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from stroke_mlops.cli import main; sys.exit(main())",
         "deploy", "--dry-run", *args],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return [o for o in yaml.safe_load_all(done.stdout) if o]


@pytest.mark.parametrize(
    ("uri", "extra"),
    [(URI, variant) for variant in DEPLOY_VARIANTS] + [(uri, []) for uri in DEPLOY_URIS],
    ids=[f"variant{i}" for i in range(len(DEPLOY_VARIANTS))]
    + [uri.split(":")[0] for uri in DEPLOY_URIS],
)
def test_every_deploy_dry_run_variant_is_admitted(uri: str, extra: list[str]) -> None:
    objects = _dry_run("--model-uri", uri, *extra)
    assert [o["kind"] for o in objects] == ["ServingRuntime", "InferenceService"]
    verdict = kserve_admit(objects)
    assert verdict.returncode == 0, verdict.output
    assert len(verdict.admitted) == 2


def test_the_pipeline_deploy_steps_manifest_is_admitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stroke_mlops.steps import deploy_version

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # write the YAML, apply nothing
    manifest = tmp_path / "kserve.yaml"
    deploy_version(URI, version="20260101-abc", manifest_path=manifest)
    objects = [o for o in yaml.safe_load_all(manifest.read_text()) if o]
    verdict = kserve_admit(objects)
    assert verdict.returncode == 0, verdict.output
    assert len(verdict.admitted) == 2


def test_defaulted_objects_are_written_with_o(tmp_path: Path) -> None:
    verdict = kserve_admit([_runtime(), _isvc()], "-o", str(tmp_path))
    assert verdict.returncode == 0, verdict.output
    written = yaml.safe_load((tmp_path / "stroke-mlops-inferenceservice-stroke.yaml").read_text())
    # KServe's defaulter (M5) records the model format as a bare annotation.
    assert written["metadata"]["annotations"]["modelFormat"] == kserve_objects.MODEL_FORMAT


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = obj
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return mutate


def _canary(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(isvc: dict[str, Any]) -> None:
        predictor = copy.deepcopy(isvc["spec"]["predictor"])
        predictor.update({"name": "candidate", **fields})
        predictor["model"]["name"] = "kserve-container"
        isvc["spec"]["canary"] = [{"trafficPercent": 10, "predictor": predictor}]

    return mutate


def _runtime_env(env: list[dict[str, str]]) -> Callable[[dict[str, Any]], None]:
    def mutate(runtime: dict[str, Any]) -> None:
        runtime["spec"]["containers"][0]["env"] = env

    return mutate


def _extra_priority(runtime: dict[str, Any]) -> None:
    runtime["spec"]["supportedModelFormats"].append(
        {"name": kserve_objects.MODEL_FORMAT, "autoSelect": True, "priority": 2}
    )


# (id, which object to break, how, KServe's message or None when KServe admits it). Both tools
# judge each case; the transcription must agree (tests below).
SHARED_CASES: list[tuple[str, str, Callable[[dict[str, Any]], Any], str | None]] = [
    ("as-emitted", "isvc", lambda o: None, None),
    ("bad-name", "isvc", _set("metadata.name", "stroke.v1"),
     'the InferenceService "stroke.v1" is invalid: a InferenceService name must consist of lower '
     "case alphanumeric characters or '-', and must start with alphabetical character."),
    ("kpa-autoscaler", "isvc", lambda o: o["metadata"]["annotations"].update(
        {"serving.kserve.io/autoscalerClass": "kpa"}),
     "[kpa] is not a supported autoscaler class type"),
    ("pythonpath", "isvc",
     _set("spec.predictor.model.env", [{"name": "PYTHONPATH", "value": "/x"}]),
     'setting PYTHONPATH in container "" is not allowed for security reasons'),
    ("ftp-storage-uri", "isvc", _set("spec.predictor.model.storageUri", "ftp://host/m/"),
     "StorageURI not supported: storageUri, must be one of: [gs://, s3://, pvc://, file://, "
     "https://, http://, hdfs://, webhdfs://, oci://, oci+native://, hf://]"),
    ("model-name", "isvc", _set("spec.predictor.model.name", "kserve-container"),
     "the 'name' field is not allowed in standard predictor"),
    ("min-over-max", "isvc", lambda o: o["spec"]["predictor"].update(minReplicas=3, maxReplicas=2),
     "'MinReplicas' cannot be greater than MaxReplicas"),
    ("two-frameworks", "isvc", lambda o: o["spec"]["predictor"].update(
        sklearn={"storageUri": URI}, xgboost={"storageUri": URI}),
     "exactly one of [Name, SKLearn, XGBoost, Tensorflow, PyTorch, Triton, ONNX, HuggingFace, "
     "PMML, LightGBM, Paddle, Model, StorageUris, StorageContainerName, WorkerSpec, PodSpec] must "
     "be specified in PredictorSpec"),
    # The defaulter rewrites sklearn into `model` (overwriting it), so the webhooks admit this
    # (alone: beside our runtime, the controller then finds no runtime for sklearn).
    ("sklearn-beside-model", "isvc-alone", _set("spec.predictor.sklearn", {"storageUri": URI}),
     None),
    # An unknown mode is admitted; the controller falls back to the configured default.
    ("unknown-mode", "isvc",
     _set("metadata.annotations", {"serving.kserve.io/deploymentMode": "Raw"}), None),
    ("hpa-concurrency", "isvc", lambda o: (
        o["metadata"]["annotations"].update({"serving.kserve.io/autoscalerClass": "hpa"}),
        o["spec"]["predictor"].update(scaleMetric="concurrency")),
     "[concurrency] is not a supported metric"),
    ("canary", "isvc", _canary(), None),
    ("canary-max-replicas", "isvc", _canary(maxReplicas=3),
     'canary "candidate" must not set maxReplicas (canary uses fixed replicas)'),
    ("canary-knative", "isvc", lambda o: (
        o["metadata"]["annotations"].update({"serving.kserve.io/deploymentMode": "Knative"}),
        _canary()(o)),
     "canary is only supported in Standard deployment mode"),
    ("format-version", "isvc", _set("spec.predictor.model.modelFormat.version", "2"),
     "specified runtime stroke-mlops-runtime does not support specified framework/version"),
    ("runtime-pythonpath", "runtime", _runtime_env([{"name": "PYTHONPATH", "value": "/x"}]),
     'the ServingRuntime "stroke-mlops-runtime" is invalid: setting PYTHONPATH in container '
     '"kserve-container" is not allowed for security reasons'),
    ("runtime-priorities", "runtime", _extra_priority,
     "different priorities assigned for the model format stroke-mlops under the servingruntime "
     "stroke-mlops-runtime"),
    ("runtime-container-name", "runtime",
     _set("spec.containers", [{"name": "server", "image": "x"}]),
     "failed to find kserve-container in ServingRuntime containers"),
]  # fmt: skip
KNOWN_BAD = [case for case in SHARED_CASES if case[3] is not None]


def _case_objects(target: str, mutate: Callable[[dict[str, Any]], Any]) -> list[dict[str, Any]]:
    runtime, isvc = _runtime(), _isvc()
    mutate(runtime if target == "runtime" else isvc)
    return [isvc] if target == "isvc-alone" else [runtime, isvc]


def test_at_least_five_known_bad_kserve_objects() -> None:
    assert len(KNOWN_BAD) >= 5


@pytest.mark.parametrize(
    ("target", "mutate", "message"), [c[1:] for c in SHARED_CASES], ids=[c[0] for c in SHARED_CASES]
)
def test_kserve_judges_each_case_in_its_own_words(
    target: str, mutate: Callable[[dict[str, Any]], Any], message: str | None
) -> None:
    verdict = kserve_admit(_case_objects(target, mutate))
    if message is None:
        assert verdict.returncode == 0, verdict.output
        assert len(verdict.admitted) == (1 if target == "isvc-alone" else 2)
    else:
        assert verdict.returncode == 1, verdict.output
        assert len(verdict.refused) == 1, verdict.output
        assert message in next(iter(verdict.refused.values()))


@pytest.mark.parametrize(
    ("target", "mutate", "message"), [c[1:] for c in SHARED_CASES], ids=[c[0] for c in SHARED_CASES]
)
def test_the_transcription_agrees_with_kserve(
    target: str, mutate: Callable[[dict[str, Any]], Any], message: str | None
) -> None:
    objects = _case_objects(target, mutate)
    verdict = kserve_admit(objects)
    problems = check_objects(objects)
    assert (verdict.returncode == 0) == (problems == []), (verdict.output, problems)
    for problem in problems:  # same words as KServe (the transcription may name another object)
        assert any(problem.message in refused for refused in verdict.refused.values()), (
            problem,
            verdict.output,
        )


def test_unknown_fields_are_refused_like_the_api_server_strict_decoding() -> None:
    isvc = _isvc()
    isvc["spec"]["predictor"]["model"]["storageURI"] = URI  # wrong case
    verdict = kserve_admit([_runtime(), isvc])
    assert verdict.returncode == 1
    assert 'strict decoding error: unknown field "spec.predictor.model.storageURI"' in (
        verdict.output
    )


def test_unreadable_input_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: [unclosed\n")
    for path in (broken, tmp_path / "missing.yaml"):
        done = subprocess.run([str(KSERVE_ADMIT), str(path)], capture_output=True, text=True)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "unreadable input" in done.stderr


def _graph(weights: tuple[int, int]) -> dict[str, Any]:
    steps = [
        {"serviceName": "stroke", "weight": weights[0]},
        {"serviceName": "stroke-candidate", "weight": weights[1]},
    ]
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": "stroke-split", "namespace": "stroke-mlops"},
        "spec": {"nodes": {"root": {"routerType": "Splitter", "steps": steps}}},
    }


def test_inference_graph_validator_and_the_transcription_agree() -> None:
    assert kserve_admit([_graph((90, 10))]).returncode == 0
    assert check_objects([_graph((90, 10))]) == []
    verdict = kserve_admit([_graph((90, 20))])
    message = (
        "InferenceGraph[stroke-split] Node[root] splitter node: the sum of traffic weights for "
        "all routing targets should be 100"
    )
    assert verdict.returncode == 1 and message in verdict.output, verdict.output
    assert [p.message for p in check_objects([_graph((90, 20))])] == [message]


def _split(*extra: str) -> list[dict[str, Any]]:
    return _dry_run("--model-uri", URI, "--challenger-uri", URI.replace("abc", "def"),
                    "--challenger-percent", "30", *extra)  # fmt: skip


def test_the_split_is_admitted_and_both_steps_resolve_to_the_path_our_server_answers() -> None:
    objects = _split("--model-version", "v1", "--challenger-version", "v2")
    kinds = [o["kind"] for o in objects]
    assert kinds == ["ServingRuntime", "InferenceService", "InferenceService", "InferenceGraph"]
    verdict = kserve_admit(objects)
    assert verdict.returncode == 0, verdict.output
    assert len(verdict.admitted) == 4
    # KServe's controller takes the model name for the URL from --model_name, else from the
    # service's name: without the argument the challenger would get .../stroke-challenger:predict.
    resolved = [line for line in verdict.output.splitlines() if line.startswith("resolved ")]
    assert [line.rsplit(" -> serviceUrl ", 1)[1] for line in resolved] == [
        "http://address-of-stroke/v1/models/stroke:predict",
        "http://address-of-stroke-challenger/v1/models/stroke:predict",
    ]
    assert check_objects(objects) == []


def _split_graph(mutate: Callable[[dict[str, Any]], Any]) -> list[dict[str, Any]]:
    objects = _split()
    mutate(objects[-1])
    return objects


def _steps(graph: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = graph["spec"]["nodes"]["root"]["steps"]
    return steps


# (id, how to break the emitted graph, KServe's message, whether our transcription covers it)
BAD_GRAPHS: list[tuple[str, Callable[[dict[str, Any]], Any], str, bool]] = [
    ("weights-sum-110", lambda g: _steps(g)[1].update(weight=40),
     "InferenceGraph[stroke-split] Node[root] splitter node: the sum of traffic weights for all "
     "routing targets should be 100", True),
    ("weight-missing", lambda g: _steps(g)[1].pop("weight"),
     "InferenceGraph[stroke-split] Node[root] Route[stroke-challenger] missing the 'Weight'", True),
    ("no-root", lambda g: g["spec"].update(nodes={"split": g["spec"]["nodes"]["root"]}),
     "root node not found, InferenceGraph needs a node with name 'root' as the root node of the "
     "graph", True),
    ("same-step-names", lambda g: _steps(g)[1].update(name="champion"),
     'Node "root" of InferenceGraph "stroke-split" contains more than one step with name '
     '"champion"', True),
    ("two-targets", lambda g: _steps(g)[1].update(serviceUrl="http://x/v1/models/stroke:predict"),
     'Step 1 ("challenger") in node "root" of InferenceGraph "stroke-split" specifies more than '
     "one of nodeName, serviceName, serviceUrl", True),
    ("no-target", lambda g: _steps(g)[1].pop("serviceName"),
     'Step 1 ("challenger") in node "root" of InferenceGraph "stroke-split" does not specify an '
     "inference target", True),
    ("bad-name", lambda g: g["metadata"].update(name="stroke.split"),
     'The InferenceGraph "stroke.split" is invalid', True),
    ("unknown-field", lambda g: _steps(g)[1].update(percent=30),
     'strict decoding error: unknown field "spec.nodes.root.steps[1].percent"', False),
    ("unknown-service", lambda g: _steps(g)[1].update(serviceName="stroke-candidate"),
     "controller: Failed to find graph service stroke-candidate", False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "message", "covered"), [c[1:] for c in BAD_GRAPHS], ids=[c[0] for c in BAD_GRAPHS]
)
def test_known_bad_graphs_are_refused_in_kserves_words(
    mutate: Callable[[dict[str, Any]], Any], message: str, covered: bool
) -> None:
    objects = _split_graph(mutate)
    verdict = kserve_admit(objects)
    assert verdict.returncode == 1, verdict.output
    assert list(verdict.refused) == ["InferenceGraph stroke-mlops/stroke-split"] or (
        list(verdict.refused) == ["InferenceGraph stroke-mlops/stroke.split"]
    ), verdict.output
    assert message in next(iter(verdict.refused.values())), verdict.output
    problems = [p.message for p in check_objects(objects)]
    if covered:  # the transcription says the same
        assert len(problems) == 1 and problems[0] in next(iter(verdict.refused.values()))
    else:  # strict decoding and the controller's lookup are KServe's alone
        assert problems == []


def test_kserve_admits_negative_weights_that_sum_to_100_and_our_deploy_refuses_them() -> None:
    objects = _split_graph(lambda g: (_steps(g)[0].update(weight=110), _steps(g)[1].update(
        weight=-10)))  # fmt: skip
    assert kserve_admit(objects).returncode == 0  # no minimum in KServe's CRD or validator
    for percent in ("-10", "0", "100", "110"):
        done = subprocess.run(
            [sys.executable, "-m", "stroke_mlops.cli", "deploy", "--dry-run", "--model-uri", URI,
             "--challenger-uri", URI, "--challenger-percent", percent],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 2, done.stdout
        assert "must be a whole number from 1 to 99" in done.stderr
