"""Our objects on the real platform code: KServe v0.20.0's webhooks and controller, and
kube-controller-manager turning the predictor Deployment into a Pod that KServe's pod mutator
rewrote. What we rely on in that Pod is checked field by field."""

from __future__ import annotations

import time
from typing import Any

import pytest

from stroke_mlops.deploy import kserve_objects
from stroke_mlops.deploy.live_apply import (
    ApplyRefusedError,
    server_side_apply,
    wait_for_reconcile,
)
from stroke_mlops.registry.signing import PUBLIC_KEY_ENV
from tests.platform.conftest import LivePlatform, RollbackStore, dump, kubectl, stroke_mlops

pytestmark = pytest.mark.platform

NAMESPACE = kserve_objects.NAMESPACE
MODEL_URI = "s3://stroke-mlops/models/stroke/versions/20260101T000000Z-aaaa1111/"
ISVC_LABEL = "serving.kserve.io/inferenceservice"


def wait_for_pod(api: Any, name: str, storage_uri: str, timeout: float = 90) -> Any:
    """The predictor Pod of ``name`` whose storage initializer fetches ``storage_uri``."""
    from kubernetes.client import CoreV1Api

    core = CoreV1Api(api)
    deadline = time.monotonic() + timeout
    while True:
        for pod in core.list_namespaced_pod(NAMESPACE, label_selector=f"{ISVC_LABEL}={name}").items:
            for init in pod.spec.init_containers or []:
                if init.name == "storage-initializer" and init.args and init.args[0] == storage_uri:
                    return pod
        if time.monotonic() > deadline:
            pytest.fail(f"no predictor Pod for {name} with storageUri {storage_uri} in {timeout}s")
        time.sleep(0.5)


def env_of(container: Any) -> dict[str, Any]:
    return {e.name: e for e in container.env or []}


def test_both_overlays_apply_server_side_and_the_runtime_is_admitted(
    applied_overlays: dict[str, str], api: Any
) -> None:
    from kubernetes.client import CustomObjectsApi

    for overlay, output in applied_overlays.items():
        assert (
            "servingruntime.serving.kserve.io/stroke-mlops-runtime serverside-applied" in output
        ), overlay
    runtime = CustomObjectsApi(api).get_namespaced_custom_object(
        "serving.kserve.io", "v1alpha1", NAMESPACE, "servingruntimes",
        kserve_objects.SERVING_RUNTIME_NAME,
    )  # fmt: skip
    assert runtime["spec"]["containers"][0]["name"] == "kserve-container"


def test_deploy_apply_is_reconciled_into_a_deployment_service_and_mutated_pod(
    applied_overlays: dict[str, str], api: Any, cli_env: dict[str, str]
) -> None:
    from kubernetes.client import AppsV1Api, CoreV1Api

    result = stroke_mlops(cli_env, "deploy", "--model-uri", MODEL_URI, "--model-version",
                          "20260101T000000Z-aaaa1111", "--apply")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "applied InferenceService stroke-mlops/stroke" in result.stdout
    assert "reconciled InferenceService stroke-mlops/stroke into Deployment stroke-predictor" in (
        result.stdout
    )

    deployment = AppsV1Api(api).read_namespaced_deployment("stroke-predictor", NAMESPACE)
    service = CoreV1Api(api).read_namespaced_service("stroke-predictor", NAMESPACE)
    assert service.spec.selector == {"app": "isvc.stroke-predictor"}
    assert [(p.port, p.target_port) for p in service.spec.ports] == [(80, 8080)]
    assert deployment.spec.template.metadata.labels["app"] == "isvc.stroke-predictor"

    pod = wait_for_pod(api, "stroke", MODEL_URI)
    spec = pod.spec
    context = dump(api.sanitize_for_serialization(pod))
    assert spec.service_account_name == kserve_objects.PREDICTOR_SERVICE_ACCOUNT, context
    assert spec.automount_service_account_token is False, context

    (server,) = [c for c in spec.containers if c.name == "kserve-container"]
    assert server.image == "stroke-mlops:0.1.0"  # the committed runtime's image tag
    assert server.args == list(kserve_objects.SERVE_ARGS)
    assert [(p.container_port, p.protocol) for p in server.ports] == [(8080, "TCP")]
    # KServe's default readiness probe on the first port (no probe in our runtime).
    assert server.readiness_probe.tcp_socket.port == 8080, context
    security = server.security_context
    assert (security.run_as_non_root, security.run_as_user, security.read_only_root_filesystem,
            security.allow_privilege_escalation, security.capabilities.drop) == (
        True, 1000, True, False, ["ALL"])  # fmt: skip
    assert server.resources.requests == {"cpu": "100m", "memory": "512Mi"}
    assert server.resources.limits == {"cpu": "1", "memory": "1Gi"}
    mounts = {m.mount_path: m for m in server.volume_mounts}
    assert mounts[kserve_objects.SIGNING_PUBLIC_KEY_DIR].read_only is True
    assert mounts["/mnt/models"].read_only is True  # the storage initializer's download
    env = env_of(server)
    assert env[PUBLIC_KEY_ENV].value.startswith(kserve_objects.SIGNING_PUBLIC_KEY_DIR)
    assert env["AWS_SECRET_ACCESS_KEY"].value_from.secret_key_ref.name == "stroke-mlops-s3"
    volumes = {v.name: v for v in spec.volumes}
    assert volumes["signing-public-key"].config_map.name == (
        kserve_objects.SIGNING_PUBLIC_KEY_CONFIG_MAP
    )

    (init,) = [c for c in spec.init_containers if c.name == "storage-initializer"]
    assert init.args == [MODEL_URI, "/mnt/models"]
    # From KServe's ClusterStorageContainer "default", as its Helm chart installs it.
    assert init.image == "kserve/storage-initializer:v0.20.0"
    assert (init.security_context.run_as_non_root, init.security_context.capabilities.drop) == (
        True,
        ["ALL"],
    )
    init_env = env_of(init)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        ref = init_env[key].value_from.secret_key_ref
        assert (ref.name, ref.key) == ("stroke-mlops-s3", key), context
    # From the Secret's annotations (manifests/overlays/*/kustomization.yaml), per KServe's rules.
    assert init_env["S3_ENDPOINT"].value == "minio.stroke-mlops.svc.cluster.local:9000"
    assert init_env["S3_USE_HTTPS"].value == "0"
    assert init_env["AWS_DEFAULT_REGION"].value == "us-east-1"


def test_a_bad_inference_service_is_refused_live_with_kserves_message(
    applied_overlays: dict[str, str], api: Any
) -> None:
    bad = kserve_objects.to_manifest(kserve_objects.build_inference_service(MODEL_URI, name="bad"))
    bad["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] = "kpa"  # Knative's
    with pytest.raises(ApplyRefusedError) as refusal:
        server_side_apply([bad], api_client=api)
    assert (
        'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the '
        "request: [kpa] is not a supported autoscaler class type"
    ) in str(refusal.value)


def test_the_deploy_step_fails_the_run_with_the_webhooks_message(
    applied_overlays: dict[str, str], api: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from stroke_mlops import steps

    real_builder = kserve_objects.build_inference_service

    def with_pythonpath(*args: Any, **kwargs: Any) -> Any:
        service = real_builder(*args, **kwargs)
        from kubernetes.client import V1EnvVar

        service.spec.predictor.model.env = [V1EnvVar(name="PYTHONPATH", value="/mnt/models")]
        return service

    monkeypatch.setattr(kserve_objects, "build_inference_service", with_pythonpath)
    with pytest.raises(steps.DeployError) as failure:
        steps.deploy_version(MODEL_URI, version="v-bad", manifest_path=tmp_path / "isvc.yaml",
                             api_client=api)  # fmt: skip
    assert 'admission webhook "inferenceservice.kserve-webhook-server.validator" denied' in str(
        failure.value
    )
    assert "setting PYTHONPATH in container" in str(failure.value)


def test_deploy_apply_exits_non_zero_with_kserves_status_when_it_cannot_reconcile(
    applied_overlays: dict[str, str], api: Any, cli_env: dict[str, str]
) -> None:
    """In a namespace without our ServingRuntime the webhooks admit the object, and KServe's
    controller cannot find the runtime: the command fails with what KServe reported."""
    server_side_apply(
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "no-runtime"}}],
        api_client=api,
    )
    result = stroke_mlops(cli_env, "deploy", "--model-uri", MODEL_URI, "--namespace",
                          "no-runtime", "--apply", "--timeout", "20")  # fmt: skip
    assert result.returncode == 1, result.stdout
    assert "not applied: InferenceService no-runtime/stroke was not reconciled" in result.stderr
    assert "stroke-mlops-runtime" in result.stderr  # KServe names the runtime it lacks


def test_pipeline_runner_rbac_is_enough_to_deploy_and_no_more(
    applied_overlays: dict[str, str], impersonating_pipeline_runner: Any, api: Any, tmp_path: Any
) -> None:
    from kubernetes.client import AppsV1Api, CoreV1Api, CustomObjectsApi
    from kubernetes.client.exceptions import ApiException

    from stroke_mlops import steps

    uri = "s3://stroke-mlops/models/stroke/versions/20260102T000000Z-rbac0000/"
    result = steps.deploy_version(uri, version="20260102T000000Z-rbac0000",
                                  manifest_path=tmp_path / "isvc.yaml",
                                  api_client=impersonating_pipeline_runner)  # fmt: skip
    assert result["applied"], result
    wait_for_reconcile(api, namespace=NAMESPACE, name="stroke", storage_uri=uri, timeout=60)

    forbidden = [
        lambda: CustomObjectsApi(impersonating_pipeline_runner).delete_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", NAMESPACE, "inferenceservices", "stroke"
        ),
        lambda: CoreV1Api(impersonating_pipeline_runner).read_namespaced_secret(
            "stroke-mlops-s3", NAMESPACE
        ),
        lambda: AppsV1Api(impersonating_pipeline_runner).delete_namespaced_deployment(
            "stroke-predictor", NAMESPACE
        ),
    ]
    for call in forbidden:
        with pytest.raises(ApiException) as refused:
            call()
        assert refused.value.status == 403
        assert "pipeline-runner" in (refused.value.body or "")


def test_rollback_redeploys_the_previous_version_and_the_deployment_follows(
    applied_overlays: dict[str, str],
    api: Any,
    cli_env: dict[str, str],
    rollback_store: RollbackStore,
) -> None:
    store = rollback_store
    env = {**cli_env, **store.env}
    newer_uri, older_uri = store.version_uris[store.newer], store.version_uris[store.older]
    deployed = stroke_mlops(env, "deploy", "--model-uri", newer_uri, "--apply")
    assert deployed.returncode == 0, deployed.stderr
    wait_for_pod(api, "stroke", newer_uri)

    result = stroke_mlops(env, "models", "rollback", store.older, "--store", store.uri, "--apply")
    assert result.returncode == 0, result.stderr
    assert f"production: {store.newer} -> {store.older}" in result.stdout
    assert f"Deployment stroke-predictor serving {older_uri}" in result.stdout
    wait_for_pod(api, "stroke", older_uri)  # a new ReplicaSet rolled out the older model


def test_kubectl_reads_what_kserve_wrote(live_platform: LivePlatform) -> None:
    """The kubeconfig platform-up writes works for kubectl too (the user's view)."""
    out = kubectl(live_platform, "get", "crd", "inferenceservices.serving.kserve.io", "-o", "name")
    assert (
        out.strip()
        == "customresourcedefinition.apiextensions.k8s.io/inferenceservices.serving.kserve.io"
    )
