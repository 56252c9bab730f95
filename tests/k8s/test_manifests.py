"""The committed kustomize overlays: they render, validate strictly, and say what we promise."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from stroke_mlops.deploy import kserve_objects
from tests.k8s.k8s_objects import MANIFESTS, REPO_ROOT, find
from tools.validate_k8s import KUBERNETES_VERSION, admission_problems, validate_objects

Rendered = tuple[str, list[dict[str, Any]]]
S3_SECRET = "stroke-mlops-s3"
S3_KEYS = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
APP = "stroke-mlops-app"


def test_overlay_validates_strictly_with_zero_problems(overlay: Rendered) -> None:
    name, objects = overlay
    problems = validate_objects(objects) + admission_problems(objects)
    assert problems == [], f"{name}:\n" + "\n".join(map(str, problems))


def test_overlay_holds_exactly_the_expected_objects(overlay: Rendered) -> None:
    _, objects = overlay
    found = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects}
    assert found == {
        ("Namespace", None, "stroke-mlops"),
        ("PersistentVolumeClaim", "stroke-mlops", "minio-data"),
        ("Deployment", "stroke-mlops", "minio"),
        ("Service", "stroke-mlops", "minio"),
        ("NetworkPolicy", "stroke-mlops", "minio-ingress"),
        ("NetworkPolicy", "stroke-mlops", "predictor-ingress"),
        ("NetworkPolicy", "stroke-mlops", "app-ingress"),
        ("Job", "stroke-mlops", "create-bucket"),
        ("ServiceAccount", "stroke-mlops", "stroke-predictor"),
        ("Secret", "stroke-mlops", S3_SECRET),
        ("Secret", "kubeflow", S3_SECRET),
        ("ServingRuntime", "stroke-mlops", "stroke-mlops-runtime"),
        ("Deployment", "stroke-mlops", APP),
        ("Service", "stroke-mlops", APP),
        ("Role", "stroke-mlops", "inferenceservice-deployer"),
        ("RoleBinding", "stroke-mlops", "pipeline-runner-inferenceservice-deployer"),
        # manifests/monitoring (a kustomize Component both overlays include)
        ("Deployment", "stroke-mlops", "pushgateway"),
        ("Service", "stroke-mlops", "pushgateway"),
        ("NetworkPolicy", "stroke-mlops", "pushgateway-ingress"),
        ("PodMonitor", "stroke-mlops", "stroke-mlops-predictors"),
        ("ServiceMonitor", "stroke-mlops", "stroke-mlops-pushgateway"),
        ("PrometheusRule", "stroke-mlops", "stroke-mlops-predictor"),
    }


def test_s3_secret_is_in_both_namespaces_and_annotated_for_kserve(overlay: Rendered) -> None:
    _, objects = overlay
    for namespace in ("stroke-mlops", "kubeflow"):
        secret = find(objects, "Secret", S3_SECRET, namespace)  # no name-suffix hash
        assert set(secret["data"]) == S3_KEYS, namespace
    annotations = find(objects, "Secret", S3_SECRET, "stroke-mlops")["metadata"]["annotations"]
    assert annotations == {
        "serving.kserve.io/s3-endpoint": "minio.stroke-mlops.svc.cluster.local:9000",
        "serving.kserve.io/s3-usehttps": "0",
        "serving.kserve.io/s3-region": "us-east-1",
    }
    account = find(
        objects, "ServiceAccount", kserve_objects.PREDICTOR_SERVICE_ACCOUNT, "stroke-mlops"
    )
    assert account["secrets"] == [{"name": S3_SECRET}]


def test_minio_and_bucket_job_read_the_same_secret(overlay: Rendered) -> None:
    _, objects = overlay
    minio = find(objects, "Deployment", "minio")["spec"]["template"]["spec"]["containers"][0]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in minio["env"] if "valueFrom" in e}
    assert refs == {
        "MINIO_ROOT_USER": {"name": S3_SECRET, "key": "AWS_ACCESS_KEY_ID"},
        "MINIO_ROOT_PASSWORD": {"name": S3_SECRET, "key": "AWS_SECRET_ACCESS_KEY"},
    }
    job = find(objects, "Job", "create-bucket")["spec"]["template"]["spec"]["containers"][0]
    assert job["envFrom"] == [{"secretRef": {"name": S3_SECRET}}]
    assert "mc mb --ignore-existing store/stroke-mlops" in job["args"][0]
    service = find(objects, "Service", "minio", "stroke-mlops")
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert ports == {"api": 9000, "console": 9001}


def test_workloads_are_pinned_non_root_and_bounded(overlay: Rendered) -> None:
    _, objects = overlay
    for kind, name in (("Deployment", "minio"), ("Job", "create-bucket")):
        pod = find(objects, kind, name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            image = container["image"]
            assert re.search(r":RELEASE\.\d{4}-\d{2}-\d{2}T", image), f"{name}: unpinned {image}"
            assert set(container["resources"]) == {"requests", "limits"}, name
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
    minio = find(objects, "Deployment", "minio")["spec"]["template"]["spec"]["containers"][0]
    assert minio["readinessProbe"]["httpGet"]["path"] == "/minio/health/ready"
    assert minio["livenessProbe"]["httpGet"]["path"] == "/minio/health/live"


def test_rbac_grants_pipeline_runner_exactly_the_inferenceservice_verbs(overlay: Rendered) -> None:
    _, objects = overlay
    rbac = [o for o in objects if o["apiVersion"].startswith("rbac.authorization.k8s.io/")]
    assert sorted(o["kind"] for o in rbac) == ["Role", "RoleBinding"]  # nothing cluster-wide
    role = find(objects, "Role", "inferenceservice-deployer", "stroke-mlops")
    assert len(role["rules"]) == 1
    (rule,) = role["rules"]
    assert set(rule) == {"apiGroups", "resources", "verbs"}  # no resourceNames, no nonResourceURLs
    assert rule["apiGroups"] == ["serving.kserve.io"]
    assert rule["resources"] == ["inferenceservices"]
    assert sorted(rule["verbs"]) == sorted(["get", "list", "watch", "create", "patch", "update"])
    binding = find(objects, "RoleBinding", "pipeline-runner-inferenceservice-deployer")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "inferenceservice-deployer",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": "kubeflow"}
    ]


def test_the_app_pod_is_hardened_like_the_predictor(overlay: Rendered) -> None:
    _, objects = overlay
    runtime = find(objects, "ServingRuntime", kserve_objects.SERVING_RUNTIME_NAME, "stroke-mlops")
    (predictor,) = runtime["spec"]["containers"]
    pod = find(objects, "Deployment", APP, "stroke-mlops")["spec"]["template"]["spec"]
    (app,) = pod["containers"]
    assert app["securityContext"] == predictor["securityContext"]
    assert app["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert set(app["resources"]) == {"requests", "limits"}
    assert app["image"] == predictor["image"] and app["imagePullPolicy"] == "IfNotPresent"
    (tmp,) = [v for v in pod["volumes"] if v["name"] == "tmp"]
    assert (
        tmp["emptyDir"]["sizeLimit"] and {"name": "tmp", "mountPath": "/tmp"} in app["volumeMounts"]
    )
    assert app["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_the_app_reaches_the_predictors_service_and_the_store(overlay: Rendered) -> None:
    _, objects = overlay
    (app,) = find(objects, "Deployment", APP, "stroke-mlops")["spec"]["template"]["spec"][
        "containers"
    ]
    args = app["args"]
    assert args[:2] == ["stroke-mlops", "app"]
    option = dict(zip(args[2::2], args[3::2], strict=True))
    # KServe Standard mode: the predictor's Service is <isvc>-predictor, port 80 -> 8080
    service = f"{kserve_objects.INFERENCE_SERVICE_NAME}-predictor.stroke-mlops.svc.cluster.local"
    assert option["--predictor-url"] == f"http://{service}"
    assert option["--store"] == "s3://stroke-mlops/models"
    assert option["--host"] == "0.0.0.0"
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in app["env"] if "valueFrom" in e}
    assert {ref["name"] for ref in refs.values()} == {S3_SECRET} and set(refs) == S3_KEYS
    # the predictor's and MinIO's policies admit pods of this namespace, so the app's
    for name in ("predictor-ingress", "minio-ingress"):
        rules = find(objects, "NetworkPolicy", name, "stroke-mlops")["spec"]["ingress"]
        assert any({"podSelector": {}} in rule["from"] for rule in rules), name
    app_service = find(objects, "Service", APP, "stroke-mlops")["spec"]
    labels = find(objects, "Deployment", APP)["spec"]["template"]["metadata"]["labels"]
    assert app_service["selector"].items() <= labels.items()
    (port,) = app_service["ports"]
    (container_port,) = app["ports"]
    assert (
        port["targetPort"] == container_port["name"]
        and int(option["--port"]) == container_port["containerPort"]
    )


def test_minio_accepts_s3_traffic_only_from_its_namespace_and_kubeflow(overlay: Rendered) -> None:
    _, objects = overlay
    policy = find(objects, "NetworkPolicy", "minio-ingress", "stroke-mlops")["spec"]
    minio_labels = find(objects, "Deployment", "minio")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= minio_labels.items()
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert rule["from"] == [
        {"podSelector": {}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kubeflow"}}},
    ]
    assert rule["ports"] == [{"protocol": "TCP", "port": 9000}]


def test_no_pod_reaches_the_app_over_the_pod_network(overlay: Rendered) -> None:
    """The app takes patient features and nothing in the cluster calls it: its policy selects its
    pods and admits no ingress (port-forward and the kubelet's probes do not cross it)."""
    _, objects = overlay
    policy = find(objects, "NetworkPolicy", "app-ingress", "stroke-mlops")["spec"]
    labels = find(objects, "Deployment", APP)["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["policyTypes"] == ["Ingress"]
    assert policy.get("ingress", []) == []


def test_predictor_pods_accept_inference_only_from_their_namespace_and_prometheus(
    overlay: Rendered,
) -> None:
    _, objects = overlay
    policy = find(objects, "NetworkPolicy", "predictor-ingress", "stroke-mlops")["spec"]
    # The label KServe v0.20 puts on every predictor pod (constants.InferenceServicePodLabelKey).
    assert policy["podSelector"] == {
        "matchExpressions": [{"key": "serving.kserve.io/inferenceservice", "operator": "Exists"}]
    }
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert rule["from"] == [
        {"podSelector": {}},
        # Prometheus' scrapes (manifests/monitoring): a NetworkPolicy cannot limit them to /metrics
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
    ]
    assert rule["ports"] == [{"protocol": "TCP", "port": kserve_objects.HTTP_PORT}]


def test_predictor_logs_requests_where_the_schedule_reads_them(overlay: Rendered) -> None:
    """The rendered runtime gives the server the URI `make schedule` monitors (REQUESTS_URI), the
    MinIO endpoint the Secret's KServe annotation names and the keys that Secret holds in the
    predictor's namespace; MinIO's policy admits pods of that namespace, the predictor's does not
    restrict egress."""
    _, objects = overlay
    runtime = find(objects, "ServingRuntime", kserve_objects.SERVING_RUNTIME_NAME, "stroke-mlops")
    (container,) = runtime["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    monitoring_mk = (REPO_ROOT / "mk" / "monitoring.mk").read_text()
    requests_uri = re.search(r"^REQUESTS_URI \?= (\S+)$", monitoring_mk, re.MULTILINE)
    assert requests_uri is not None
    assert env["STROKE_REQUEST_LOG_URI"]["value"] == requests_uri.group(1)
    secret = find(objects, "Secret", S3_SECRET, "stroke-mlops")
    endpoint = secret["metadata"]["annotations"]["serving.kserve.io/s3-endpoint"]
    assert env["AWS_ENDPOINT_URL"]["value"] == f"http://{endpoint}"
    assert (
        env["AWS_REGION"]["value"]
        == secret["metadata"]["annotations"]["serving.kserve.io/s3-region"]
    )
    refs = {name: e["valueFrom"]["secretKeyRef"] for name, e in env.items() if "valueFrom" in e}
    assert refs == {key: {"name": S3_SECRET, "key": key} for key in S3_KEYS}
    assert set(refs) <= set(secret["data"])
    port = int(endpoint.rsplit(":", 1)[1])
    minio_policy = find(objects, "NetworkPolicy", "minio-ingress", "stroke-mlops")["spec"]
    assert any(
        {"podSelector": {}} in rule["from"] and {"protocol": "TCP", "port": port} in rule["ports"]
        for rule in minio_policy["ingress"]
    )
    egress_policies = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy" and "Egress" in o["spec"].get("policyTypes", [])
    ]
    assert egress_policies == []


def test_committed_serving_runtime_is_what_the_builder_renders(overlay: Rendered) -> None:
    committed = (MANIFESTS / "base" / "serving-runtime.yaml").read_text()
    assert committed == kserve_objects.render_serving_runtime_manifest(), (
        "manifests/base/serving-runtime.yaml is out of date: run `make serving-runtime-manifest`"
    )
    _, objects = overlay
    rendered = find(objects, "ServingRuntime", kserve_objects.SERVING_RUNTIME_NAME, "stroke-mlops")
    (built,) = yaml.safe_load_all(kserve_objects.render_serving_runtime_manifest())
    assert rendered["spec"] == built["spec"]
    container = rendered["spec"]["containers"][0]
    assert container["args"] == list(kserve_objects.SERVE_ARGS)
    assert (
        " ".join(kserve_objects.SERVE_ARGS)
        == "stroke-mlops serve --model-uri /mnt/models --port 8080 --host 0.0.0.0"
    )
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_the_image_command_is_the_serving_runtime_command() -> None:
    """The pod binds 0.0.0.0 both ways (under KServe and as a bare container); local
    `stroke-mlops serve` keeps its 127.0.0.1 default."""
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    (command,) = [line for line in dockerfile.splitlines() if line.startswith("CMD ")]
    assert json.loads(command.removeprefix("CMD ")) == list(kserve_objects.SERVE_ARGS)
    assert kserve_objects.SERVE_ARGS[-2:] == ("--host", "0.0.0.0")


def test_rendered_secrets_hold_only_labelled_dev_placeholders(overlay: Rendered) -> None:
    _, objects = overlay
    secrets = [o for o in objects if o["kind"] == "Secret"]
    assert secrets
    for secret in secrets:
        for key, value in secret.get("data", {}).items():
            assert "dev-only" in base64.b64decode(value).decode(), f"{key} is not a placeholder"
        assert "stringData" not in secret


AWS_ACCESS_KEY = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
AWS_SECRET_KEY = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")


def test_no_committed_manifest_carries_a_real_looking_credential() -> None:
    files = [p for p in MANIFESTS.rglob("*") if p.is_file() and p.suffix != ".env"]
    assert files
    for path in files:
        text = path.read_text()
        assert not AWS_ACCESS_KEY.search(text), f"{path}: looks like an AWS access key"
        assert not AWS_SECRET_KEY.search(text), f"{path}: looks like an AWS secret key"
    for example in MANIFESTS.rglob("*.env.example"):
        pairs = [line for line in example.read_text().splitlines() if "=" in line]
        assert {line.split("=", 1)[0] for line in pairs} == S3_KEYS
        for line in pairs:
            assert "dev-only" in line.split("=", 1)[1], f"{example}: {line}"


def test_real_credentials_files_are_gitignored() -> None:
    for overlay_dir in (MANIFESTS / "overlays").iterdir():
        env = overlay_dir / "credentials.env"
        ignored = subprocess.run(
            ["git", "check-ignore", "--quiet", "--no-index", str(env.relative_to(REPO_ROOT))],
            cwd=REPO_ROOT,
            check=False,
        )
        assert ignored.returncode == 0, f"{env} would not be ignored by git"


def test_signing_key_folders_are_gitignored() -> None:
    for folder in (
        ".local-dev-keys",  # make demo
        *(f"manifests/overlays/{o.name}/signing-keys" for o in (MANIFESTS / "overlays").iterdir()),
    ):
        ignored = subprocess.run(
            ["git", "check-ignore", "--quiet", "--no-index", f"{folder}/key.pem"],
            cwd=REPO_ROOT,
            check=False,
        )
        assert ignored.returncode == 0, f"{folder} would not be ignored by git"


def test_kind_node_image_is_the_kubernetes_version_the_validator_uses() -> None:
    config = yaml.safe_load((MANIFESTS / "kind" / "cluster.yaml").read_text())
    assert config["kind"] == "Cluster"
    (node,) = config["nodes"]
    match = re.fullmatch(r"kindest/node:v(\d+\.\d+)\.\d+@sha256:[0-9a-f]{64}", node["image"])
    assert match, f"node image must be pinned by tag and digest: {node['image']}"
    assert match.group(1) == KUBERNETES_VERSION


def _render_with_image(tmp_path: Path, image: str) -> subprocess.CompletedProcess[str]:
    """scripts/render-overlay.sh on a copy of manifests/ holding the example credentials."""
    copy = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy)
    overlay = copy / "overlays" / "kind"
    shutil.copyfile(overlay / "credentials.env.example", overlay / "credentials.env")
    return subprocess.run(
        [str(REPO_ROOT / "scripts" / "render-overlay.sh"), str(overlay), image],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_image_variable_reaches_the_serving_runtime(tmp_path: Path) -> None:
    result = _render_with_image(tmp_path, "registry.example:5000/team/stroke-mlops:dev-1")
    assert result.returncode == 0, result.stderr
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    runtime = find(objects, "ServingRuntime", "stroke-mlops-runtime")
    (container,) = runtime["spec"]["containers"]
    assert container["image"] == "registry.example:5000/team/stroke-mlops:dev-1"
    (app,) = find(objects, "Deployment", APP)["spec"]["template"]["spec"]["containers"]
    assert app["image"] == "registry.example:5000/team/stroke-mlops:dev-1"
    assert validate_objects(objects) + admission_problems(objects) == []


def test_an_image_without_a_tag_is_refused(tmp_path: Path) -> None:
    result = _render_with_image(tmp_path, "registry.example:5000/stroke-mlops")
    assert result.returncode == 1
    assert "has no tag: expected [registry/]name:tag" in result.stderr
