"""The typed KServe builders: every variant passes the CRD schema *and* KServe v0.20's admission
rules (tools/kserve_admission.py); bad input is refused naming the field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from stroke_mlops.deploy import kserve_objects
from stroke_mlops.deploy.kserve_objects import DeployConfigError
from stroke_mlops.registry import signing
from tools.kserve_admission import check_objects
from tools.validate_k8s import validate_objects

NEW = "s3://stroke-mlops/models/stroke/versions/20260101-abc/"


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for value in node.values() for k in _keys(value)}
    if isinstance(node, list):
        return {k for item in node for k in _keys(item)}
    return set()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"model_version": "20260101-abc"},
        {"name": "stroke-staging", "namespace": "models", "service_account": "reader"},
        {"resources": kserve_objects.Resources("250m", "1Gi", "2", "2Gi")},
    ],
    ids=["plain", "versioned", "renamed", "resources"],
)
def test_every_inference_service_variant_passes_schema_and_admission(kwargs: dict) -> None:
    isvc = kserve_objects.to_manifest(kserve_objects.build_inference_service(NEW, **kwargs))
    runtime = kserve_objects.to_manifest(kserve_objects.build_serving_runtime("stroke-mlops:1"))
    runtime["metadata"]["namespace"] = isvc["metadata"]["namespace"]
    problems = validate_objects([isvc, runtime])
    assert problems == [], "\n".join(map(str, problems))
    refused = check_objects([isvc, runtime])
    assert refused == [], "\n".join(map(str, refused))
    # Defect 1 of issue 11: the webhook refuses a container name on a standard predictor.
    assert "name" not in isvc["spec"]["predictor"]["model"]


def test_serving_runtime_validates_and_runs_our_serve_command() -> None:
    runtime = kserve_objects.to_manifest(
        kserve_objects.build_serving_runtime("registry.local/stroke-mlops:1.2.3")
    )
    assert validate_objects([runtime]) == []
    assert check_objects([runtime]) == []
    assert runtime["metadata"]["name"] == "stroke-mlops-runtime"
    assert runtime["metadata"]["namespace"] == "stroke-mlops"
    spec = runtime["spec"]
    assert spec["supportedModelFormats"] == [
        {"autoSelect": True, "name": "stroke-mlops", "priority": 1, "version": "1"}
    ]
    assert spec["protocolVersions"] == ["v1", "v2"]
    (container,) = spec["containers"]
    assert container["name"] == "kserve-container"
    assert container["image"] == "registry.local/stroke-mlops:1.2.3"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["args"] == [
        "stroke-mlops", "serve", "--model-uri", "/mnt/models", "--port", "8080",
        "--host", "0.0.0.0",
    ]  # fmt: skip
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def test_serving_runtime_gives_the_server_the_public_key_and_a_writable_tmp_only() -> None:
    spec = kserve_objects.to_manifest(kserve_objects.build_serving_runtime("stroke-mlops:1"))[
        "spec"
    ]
    (container,) = spec["containers"]
    assert container["env"][0] == {
        "name": signing.PUBLIC_KEY_ENV,
        "value": "/etc/stroke-mlops/signing/public-key.pem",
    }
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["signing-public-key"] == {
        "name": "signing-public-key",
        "mountPath": "/etc/stroke-mlops/signing",
        "readOnly": True,
    }
    assert mounts["tmp"]["mountPath"] == "/tmp"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert set(volumes) == set(mounts)
    assert volumes["signing-public-key"]["configMap"] == {"name": "stroke-mlops-signing-public-key"}
    assert "emptyDir" in volumes["tmp"]


def test_serving_runtime_logs_every_request_to_minio_with_the_s3_secret() -> None:
    (container,) = kserve_objects.to_manifest(
        kserve_objects.build_serving_runtime("stroke-mlops:1")
    )["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert set(env) == {
        signing.PUBLIC_KEY_ENV,
        "STROKE_REQUEST_LOG_URI",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    }
    assert env["STROKE_REQUEST_LOG_URI"]["value"] == "s3://stroke-mlops/request-logs"
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio.stroke-mlops.svc.cluster.local:9000"
    assert env["AWS_REGION"]["value"] == "us-east-1"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key] == {
            "name": key,
            "valueFrom": {"secretKeyRef": {"name": "stroke-mlops-s3", "key": key}},
        }
    # The URI is passed through the environment, not the args KServe concatenates with the ISVC's.
    assert container["args"] == list(kserve_objects.SERVE_ARGS)


def test_predictors_get_no_service_account_token() -> None:
    isvc = kserve_objects.to_manifest(kserve_objects.build_inference_service(NEW))
    assert isvc["spec"]["predictor"]["automountServiceAccountToken"] is False


def test_plain_inference_service_serves_the_uri_with_our_runtime() -> None:
    isvc = kserve_objects.to_manifest(
        kserve_objects.build_inference_service(NEW, model_version="20260101-abc")
    )
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["metadata"]["name"] == "stroke"
    assert isvc["metadata"]["namespace"] == "stroke-mlops"
    assert isvc["metadata"]["annotations"] == {
        "serving.kserve.io/deploymentMode": "Standard",
        "stroke-mlops/model-version": "20260101-abc",
    }
    assert set(isvc["spec"]) == {"predictor"}
    predictor = isvc["spec"]["predictor"]
    assert predictor["serviceAccountName"] == "stroke-predictor"
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "stroke-mlops", "version": "1"}
    assert model["runtime"] == "stroke-mlops-runtime"
    assert model["storageUri"] == NEW
    assert model["resources"] == {
        "requests": {"cpu": "100m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }


def test_there_is_no_canary_option() -> None:
    # KServe v0.20 Standard mode: spec.canary[].trafficPercent only sizes replicas, the stable
    # Service keeps all traffic, so the builder offers no traffic split it cannot deliver.
    with pytest.raises(TypeError):
        kserve_objects.build_inference_service(NEW, canary_traffic_percent=10)  # type: ignore[call-arg]
    isvc = kserve_objects.to_manifest(kserve_objects.build_inference_service(NEW))
    assert "canary" not in isvc["spec"]
    assert "canaryTrafficPercent" not in isvc["spec"]["predictor"]


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("", "storage URI is empty"),
        ("models/stroke", "has no scheme"),
        ("ftp://host/models", "unsupported scheme 'ftp://'"),
        ("s3://", "names no bucket"),
        ("s3:///models/stroke", "names no bucket"),
        ("gs://", "names no bucket"),
        ("pvc:///models", "names no PersistentVolumeClaim"),
        ("file://", "names no directory"),
        (" s3://b/m/", "contains whitespace"),
        ("s3://b/my models/", "contains whitespace"),
    ],
)
def test_unusable_storage_uris_are_refused_with_the_reason(uri: str, reason: str) -> None:
    with pytest.raises(DeployConfigError) as error:
        kserve_objects.build_inference_service(uri)
    assert reason in str(error.value)
    if uri.strip():
        assert repr(uri) in str(error.value)
    if "scheme" in reason:
        assert "s3://, gs://, pvc://, file://" in str(error.value)


@pytest.mark.parametrize(
    "uri",
    [NEW, "gs://bucket/model/", "pvc://models-claim/stroke/v1", "file:///mnt/models",
     "https://example.org/model/", "hf://org/model"],
)  # fmt: skip
def test_supported_storage_uris_are_accepted(uri: str) -> None:
    assert kserve_objects.validate_storage_uri(uri) == uri
    isvc = kserve_objects.to_manifest(kserve_objects.build_inference_service(uri))
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == uri


@pytest.mark.parametrize("uri", ["s3://b/models/stroke/versions/1", "gs://b/model"])
def test_bucket_uris_get_a_trailing_slash(uri: str) -> None:
    # KServe's storage initializer lists by plain prefix: .../versions/1 would fetch .../10/ too.
    assert kserve_objects.validate_storage_uri(uri) == uri + "/"
    isvc = kserve_objects.to_manifest(kserve_objects.build_inference_service(uri))
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == uri + "/"


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"name": "Stroke"}, "InferenceService name"),
        ({"name": "1stroke"}, "InferenceService name"),
        ({"namespace": "stroke_mlops"}, "namespace"),
        ({"service_account": ""}, "service account"),
        ({"model_version": " "}, "model_version"),
    ],
)
def test_bad_names_are_refused_naming_the_field(kwargs: dict, what: str) -> None:
    with pytest.raises(DeployConfigError, match=what):
        kserve_objects.build_inference_service(NEW, **kwargs)


def test_bad_runtime_settings_are_refused() -> None:
    with pytest.raises(DeployConfigError, match="is not a container image reference"):
        kserve_objects.build_serving_runtime("stroke mlops:1")
    with pytest.raises(DeployConfigError, match="image_pull_policy 'Sometimes'"):
        kserve_objects.build_serving_runtime("stroke-mlops:1", image_pull_policy="Sometimes")


def test_render_yaml_is_multi_document_camel_case_yaml() -> None:
    text = kserve_objects.render_yaml(
        [
            kserve_objects.build_serving_runtime("stroke-mlops:1"),
            kserve_objects.build_inference_service(NEW),
        ]
    )
    assert text.startswith("---\n")
    runtime, isvc = yaml.safe_load_all(text)
    assert (runtime["kind"], isvc["kind"]) == ("ServingRuntime", "InferenceService")
    keys = _keys(runtime) | _keys(isvc)
    assert {"supportedModelFormats", "autoSelect", "storageUri", "modelFormat"} <= keys
    assert not [k for k in keys if "_" in k], "snake_case keys leaked into the YAML"
    assert validate_objects([runtime, isvc]) == []


def test_render_yaml_refuses_something_that_is_not_a_kubernetes_object() -> None:
    with pytest.raises(TypeError, match="not a Kubernetes object"):
        kserve_objects.render_yaml([{"spec": {}}])
