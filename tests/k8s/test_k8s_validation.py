"""The offline validator rejects what a strict API server would, and says where."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from stroke_mlops.deploy import kserve_objects
from tests.k8s.k8s_objects import MANIFESTS, find
from tools.validate_k8s import (
    CRD_DIR_ENV,
    KustomizeError,
    ValidationProblem,
    default_crd_dir,
    main,
    render_kustomize,
    strict_crd_schema,
    validate_objects,
)


def _messages(problems: list[ValidationProblem]) -> list[str]:
    return [str(p) for p in problems]


def _inference_service() -> dict[str, Any]:
    return kserve_objects.to_manifest(
        kserve_objects.build_inference_service("s3://stroke-mlops/models/x/")
    )


def test_unknown_field_in_a_deployment_spec_is_rejected(kind_objects: list[dict]) -> None:
    minio = find(kind_objects, "Deployment", "minio")
    minio["spec"]["replica"] = 2  # typo of replicas
    problems = validate_objects([minio])
    assert _messages(problems) == [
        "Deployment/minio: spec: Additional properties are not allowed ('replica' was unexpected)"
    ]


def test_unknown_field_in_a_container_is_rejected(kind_objects: list[dict]) -> None:
    minio = find(kind_objects, "Deployment", "minio")
    minio["spec"]["template"]["spec"]["containers"][0]["imagePolicy"] = "Always"
    (problem,) = validate_objects([minio])
    assert problem.path == "spec.template.spec.containers[0]"
    assert "'imagePolicy' was unexpected" in problem.message


def test_unknown_field_in_an_inferenceservice_predictor_is_rejected() -> None:
    isvc = _inference_service()
    isvc["spec"]["predictor"]["model"]["storageURI"] = "s3://typo/"
    isvc["spec"]["predictor"]["replicas"] = 2
    problems = validate_objects([isvc])
    assert [(p.path, p.message) for p in problems] == [
        ("spec.predictor", "Additional properties are not allowed ('replicas' was unexpected)"),
        (
            "spec.predictor.model",
            "Additional properties are not allowed ('storageURI' was unexpected)",
        ),
    ]


def test_unknown_field_in_custom_resource_metadata_is_rejected() -> None:
    isvc = _inference_service()
    isvc["metadata"]["label"] = {"a": "b"}
    (problem,) = validate_objects([isvc])
    assert problem.path == "metadata"
    assert "'label' was unexpected" in problem.message


def test_wrong_types_and_ranges_are_rejected_everywhere(kind_objects: list[dict]) -> None:
    minio = find(kind_objects, "Deployment", "minio")
    minio["spec"]["replicas"] = "1"
    isvc = kserve_objects.to_manifest(kserve_objects.build_inference_service("s3://b/new/"))
    canary_predictor = copy.deepcopy(isvc["spec"]["predictor"])
    canary_predictor["name"] = "candidate"
    canary_predictor["model"]["name"] = "kserve-container"  # the CRD requires it in a canary
    isvc["spec"]["canary"] = [{"trafficPercent": 101, "predictor": canary_predictor}]
    isvc["spec"]["predictor"]["minReplicas"] = "one"
    problems = validate_objects([minio, isvc])
    assert [(p.kind, p.path) for p in problems] == [
        ("Deployment", "spec.replicas"),
        ("InferenceService", "spec.canary[0].trafficPercent"),
        ("InferenceService", "spec.predictor.minReplicas"),
    ]
    assert "is not of type 'integer'" in problems[0].message
    assert "101 is greater than the maximum of 100" in problems[1].message


def test_every_problem_of_an_object_is_reported_at_once() -> None:
    isvc = _inference_service()
    del isvc["metadata"]["name"]
    isvc["spec"]["predictor"]["model"]["runtime"] = 7
    isvc["spec"]["transformer"] = {"bogus": True}
    problems = validate_objects([isvc])
    assert {p.path for p in problems} == {
        "metadata.name",
        "spec.predictor.model.runtime",
        "spec.transformer",
    }


def test_an_api_version_the_crd_does_not_serve_is_rejected() -> None:
    isvc = _inference_service()
    isvc["apiVersion"] = "serving.kserve.io/v1alpha1"
    assert _messages(validate_objects([isvc])) == [
        "InferenceService/stroke: apiVersion: serving.kserve.io/v1alpha1 is not served; "
        "use serving.kserve.io/v1beta1"
    ]


def test_kinds_without_a_schema_are_problems_not_passes() -> None:
    objects = [
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
        {"apiVersion": "apps/v1beta1", "kind": "Deployment", "metadata": {"name": "old"}},
        {
            "apiVersion": "serving.kserve.io/v1alpha1",
            "kind": "TrainedModel",
            "metadata": {"name": "t"},
        },
    ]
    problems = validate_objects(objects)
    assert len(problems) == 3
    assert all("no schema" in p.message for p in problems)
    assert "apps/v1beta1 Deployment does not exist in Kubernetes" in problems[1].message


def test_non_objects_and_objects_without_kind_are_problems() -> None:
    problems = validate_objects(["not a manifest", {"metadata": {"name": "x"}}])
    assert [p.message for p in problems] == [
        "not a mapping but str",
        "apiVersion and kind are required",
    ]


def test_strict_crd_schema_keeps_preserved_and_map_fields_open() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "properties": {
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "nested": {"type": "object", "properties": {"a": {"type": "string"}}},
                },
            },
        },
    }
    strict = strict_crd_schema(schema)
    spec = strict["properties"]["spec"]
    assert strict["additionalProperties"] is False
    assert spec["additionalProperties"] is False
    assert "additionalProperties" not in spec["properties"]["free"]
    assert spec["properties"]["labels"]["additionalProperties"] == {"type": "string"}
    assert spec["properties"]["nested"]["additionalProperties"] is False
    assert strict["properties"]["metadata"]["$ref"].endswith("meta.v1.ObjectMeta")
    assert "additionalProperties" not in schema["properties"]["spec"]  # input left untouched


def test_crd_dir_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_runtimes = tmp_path / "crds"
    only_runtimes.mkdir()
    shutil.copy(default_crd_dir() / "serving.kserve.io_servingruntimes.yaml", only_runtimes)
    monkeypatch.setenv(CRD_DIR_ENV, str(only_runtimes))
    assert default_crd_dir() == only_runtimes
    runtime = kserve_objects.to_manifest(kserve_objects.build_serving_runtime("stroke-mlops:1.0.0"))
    problems = validate_objects([runtime, _inference_service()])
    assert len(problems) == 1
    assert problems[0].kind == "InferenceService"
    assert "no schema: no CustomResourceDefinition for InferenceService" in problems[0].message
    assert str(only_runtimes) in problems[0].message

    monkeypatch.setenv(CRD_DIR_ENV, str(tmp_path / "missing"))
    (problem,) = validate_objects([runtime])
    assert f"not found; set {CRD_DIR_ENV}" in problem.message


def test_render_kustomize_uses_the_example_without_touching_the_tree(tmp_path: Path) -> None:
    copy = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy, ignore=shutil.ignore_patterns("*.env"))
    overlay = copy / "overlays" / "kind"
    objects = render_kustomize(overlay)
    assert not (overlay / "credentials.env").exists()
    secret = find(objects, "Secret", "stroke-mlops-s3", "kubeflow")
    assert set(secret["data"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}

    (overlay / "credentials.env").write_text(
        "AWS_ACCESS_KEY_ID=local-user\nAWS_SECRET_ACCESS_KEY=local-password\n"
    )
    local = find(render_kustomize(overlay), "Secret", "stroke-mlops-s3", "kubeflow")
    committed = find(
        render_kustomize(overlay, env_examples="always"), "Secret", "stroke-mlops-s3", "kubeflow"
    )
    assert local["data"] != committed["data"] == secret["data"]
    with pytest.raises(KustomizeError, match="kustomize failed"):
        (overlay / "credentials.env").unlink()
        render_kustomize(overlay, env_examples="never")


def test_render_kustomize_reports_a_folder_without_kustomization(tmp_path: Path) -> None:
    with pytest.raises(KustomizeError, match=r"not a folder with a kustomization\.yaml"):
        render_kustomize(tmp_path)


def test_cli_exit_codes_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = _inference_service()
    broken["spec"]["predictor"]["model"]["storageUrl"] = "s3://x/"
    broken_file = tmp_path / "broken.yaml"
    broken_file.write_text(yaml.safe_dump(broken))
    assert main([str(broken_file)]) == 1
    out = capsys.readouterr().out
    assert "InferenceService/stroke: spec.predictor.model: Additional properties" in out
    assert f"{broken_file}: 1 objects, 1 problems" in out

    assert main([str(MANIFESTS / "overlays" / "kind")]) == 0
    assert "0 problems" in capsys.readouterr().out

    assert main([str(tmp_path / "nowhere.yaml")]) == 2
    assert "error:" in capsys.readouterr().err
