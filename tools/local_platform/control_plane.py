"""Bring the local control plane up and down: etcd, kube-apiserver, kube-controller-manager and
KServe v0.20.0's controller manager, all built from their Go modules (tools/platform/).

``up`` is bounded in time and names the component that did not come up; ``down`` stops exactly
the processes it started. Data, certificates, logs and the kubeconfig live in one directory
(``local_outputs/platform`` for ``make platform-up``, a temporary one for the tests); a second
``up`` over the same directory is a warm start (etcd data and certificates are reused).
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tools.local_platform import processes
from tools.local_platform.pki import SERVICE_CLUSTER_IP_RANGE, Pki, ensure_pki

REPO_ROOT = Path(__file__).resolve().parents[2]
PLATFORM_DIR = REPO_ROOT / "tools" / "platform"
BIN_DIR = PLATFORM_DIR / "bin"
KSERVE_MANAGER_MODULE = PLATFORM_DIR / "kserve-manager"
DEFAULT_DATA_DIR = REPO_ROOT / "local_outputs" / "platform"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kserve-manager")
KSERVE_MODULE = "github.com/kserve/kserve"
KSERVE_NAMESPACE = "kserve"
# What KServe's own kustomize install puts in (config/crd/full/kustomization.yaml).
KSERVE_CRD_FILES = (
    "config/crd/full/serving.kserve.io_inferenceservices.yaml",
    "config/crd/full/serving.kserve.io_trainedmodels.yaml",
    "config/crd/full/serving.kserve.io_clusterservingruntimes.yaml",
    "config/crd/full/serving.kserve.io_servingruntimes.yaml",
    "config/crd/full/serving.kserve.io_inferencegraphs.yaml",
    "config/crd/full/clusterstoragecontainer/serving.kserve.io_clusterstoragecontainers.yaml",
)
KSERVE_CONFIGMAP_FILE = "config/configmap/inferenceservice.yaml"
# KServe's Helm chart (what mk/cluster.mk installs) also creates this ClusterStorageContainer; the
# pod mutator takes the storage initializer from it for s3:// URIs.
KSERVE_STORAGE_CONTAINER_FILE = "charts/kserve-resources/files/common/storagecontainer.yaml"
KSERVE_HELM_VALUES_FILE = "charts/kserve-resources/values.yaml"
KSERVE_WEBHOOKS_FILE = "config/webhook/manifests.yaml"
# manifests/monitoring's ServiceMonitor, PodMonitor and PrometheusRule need prometheus-operator's
# CRDs; `make cluster-platform` installs the same release's (tools/crds/prometheus-operator/README).
PROMETHEUS_OPERATOR_CRD_DIR = REPO_ROOT / "tools" / "crds" / "prometheus-operator"
FIELD_MANAGER = "stroke-mlops-platform"
PORT_NAMES = ("etcd_client", "etcd_peer", "apiserver", "controller_manager", "kserve_webhook",
              "kserve_metrics", "kserve_probe")  # fmt: skip


class PlatformError(RuntimeError):
    """The platform cannot be brought up (missing binaries, a component not ready...)."""


@dataclass(frozen=True)
class Layout:
    """Where one platform keeps its state."""

    directory: Path

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def ports_file(self) -> Path:
        return self.directory / "ports.json"


def missing_binaries(bin_dir: Path = BIN_DIR) -> list[str]:
    return [name for name in BINARIES if not (bin_dir / name).is_file()]


def kserve_module_dir() -> Path:
    """The KServe v0.20.0 module source the manager is built from (Go's module cache, checked
    against tools/platform/kserve-manager/go.sum): CRDs, webhooks and the ConfigMap come from it."""
    command = ["go", "mod", "download", "-json", KSERVE_MODULE]
    try:
        out = subprocess.run(
            command, cwd=KSERVE_MANAGER_MODULE, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise PlatformError(f"cannot locate the KServe module source ({error})") from error
    return Path(json.loads(out)["Dir"])


def _ports(layout: Layout) -> dict[str, int]:
    """The ports used last time when they are still free (a warm start keeps its kubeconfig),
    otherwise new free ones."""
    previous: dict[str, int] = {}
    if layout.ports_file.is_file():
        previous = json.loads(layout.ports_file.read_text())
    ports: dict[str, int] = {}
    for name in PORT_NAMES:
        port = previous.get(name)
        while port is None or port in ports.values() or not processes.port_is_free(port):
            port = processes.free_port()
        ports[name] = port
    layout.ports_file.write_text(json.dumps(ports, indent=2))
    return ports


def _kubeconfig(path: Path, server: str, ca: Path, cert: Path, key: Path, user: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "stroke-mlops-local",
                "cluster": {"server": server, "certificate-authority": str(ca)},
            }
        ],
        "users": [
            {"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}
        ],
        "contexts": [
            {
                "name": "stroke-mlops-local",
                "context": {"cluster": "stroke-mlops-local", "user": user},
            }
        ],
        "current-context": "stroke-mlops-local",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


def _https_ok(url: str, pki: Pki) -> bool:
    context = ssl.create_default_context(cafile=str(pki.ca.cert))
    context.load_cert_chain(str(pki.admin.cert), str(pki.admin.key))
    with urllib.request.urlopen(url, context=context, timeout=2) as response:
        return bool(response.status == 200)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def inference_service_config(module_dir: Path) -> dict[str, Any]:
    """KServe's shipped ConfigMap, switched to Standard mode without ingress creation: the same
    two settings mk/cluster.mk passes to KServe's Helm chart."""
    configmap = yaml.safe_load((module_dir / KSERVE_CONFIGMAP_FILE).read_text())
    data = configmap["data"]
    data["deploy"] = json.dumps({"defaultDeploymentMode": "Standard"})
    ingress = json.loads(data["ingress"])
    ingress["disableIngressCreation"] = True
    data["ingress"] = json.dumps(ingress)
    configmap["metadata"]["namespace"] = KSERVE_NAMESPACE
    return dict(configmap)


def default_storage_container(module_dir: Path) -> dict[str, Any]:
    """KServe's ClusterStorageContainer ``default`` as its Helm chart renders it with default
    values (files/common/storagecontainer-patch.yaml): the image tagged with the chart's KServe
    version and the chart's container securityContext."""
    storage_container = yaml.safe_load((module_dir / KSERVE_STORAGE_CONTAINER_FILE).read_text())
    values = yaml.safe_load((module_dir / KSERVE_HELM_VALUES_FILE).read_text())["kserve"]
    storage = values["storage"]
    container = storage_container["spec"]["container"]
    container["image"] = f"{storage['image']}:{storage['tag'] or values['version']}"
    container["resources"] = storage["resources"]
    container["securityContext"] = storage["containerSecurityContext"]
    return dict(storage_container)


def webhook_configurations(module_dir: Path, port: int, ca_bundle: bytes) -> list[dict[str, Any]]:
    """KServe's webhook configurations with each Service reference turned into a URL on
    127.0.0.1 (the manager runs as a local process) and our CA as caBundle."""
    documents = [
        d for d in yaml.safe_load_all((module_dir / KSERVE_WEBHOOKS_FILE).read_text()) if d
    ]
    for document in documents:
        document["metadata"].pop("creationTimestamp", None)
        for webhook in document["webhooks"]:
            path = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = {
                "url": f"https://127.0.0.1:{port}{path}",
                "caBundle": base64.b64encode(ca_bundle).decode(),
            }
    return documents


def _server_side_apply(api_client: Any, manifests: list[dict[str, Any]]) -> None:
    from stroke_mlops.deploy.live_apply import server_side_apply

    server_side_apply(manifests, api_client=api_client, field_manager=FIELD_MANAGER)


def _wait_crds_established(api_client: Any, names: list[str], deadline: float) -> None:
    from kubernetes.client import ApiextensionsV1Api

    api = ApiextensionsV1Api(api_client)
    pending = set(names)
    while pending:
        for name in sorted(pending):
            crd = api.read_custom_resource_definition(name)
            conditions = (crd.status and crd.status.conditions) or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                pending.discard(name)
        if pending and time.monotonic() > deadline:
            raise PlatformError(f"CRDs not Established in time: {', '.join(sorted(pending))}")
        if pending:
            time.sleep(0.2)


def _probe_webhooks(api_client: Any, entry: processes.Started, deadline: float) -> None:
    """Ready when KServe's validating webhook refuses a dry-run InferenceService with a dot in
    its name (a name the API server itself accepts): the defaulter ran and the validator
    answered, over the registered URL and CA."""
    from stroke_mlops.deploy.live_apply import ApplyRefusedError, server_side_apply

    probe = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "webhook.probe", "namespace": KSERVE_NAMESPACE},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                          "storageUri": "s3://probe/model/"}}},
    }  # fmt: skip

    def refused_by_kserve() -> bool:
        try:
            server_side_apply([probe], api_client=api_client, dry_run=True)
        except ApplyRefusedError as refusal:
            if "inferenceservice.kserve-webhook-server.validator" in str(refusal):
                return True
            raise
        raise PlatformError("a dry-run InferenceService named 'webhook.probe' was admitted")

    processes.wait_until(entry, "its webhooks answering the API server", refused_by_kserve,
                         deadline=deadline)  # fmt: skip


def up(layout: Layout, *, timeout: float = 180.0, log: Any = print) -> float:
    """Start every component (or report that they already run); return the seconds it took."""
    started_at = time.monotonic()
    missing = missing_binaries()
    if missing:
        raise PlatformError(
            f"missing binaries in {BIN_DIR}: {', '.join(missing)}; build them with "
            "`make platform-bins` (Go modules from the module proxy, ~15 min cold)"
        )
    layout.directory.mkdir(parents=True, exist_ok=True)
    alive = processes.running(layout.directory)
    if alive:
        if {entry.name for entry in alive} == set(BINARIES):
            log(f"platform: already running ({layout.kubeconfig})")
            return 0.0
        processes.stop_all(layout.directory)  # a half-started platform: start again cleanly
    deadline = started_at + timeout
    try:
        _start_all(layout, deadline, log)
    except BaseException:
        processes.stop_all(layout.directory)
        raise
    return time.monotonic() - started_at


def _start_all(layout: Layout, deadline: float, log: Any) -> None:
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config import new_client_from_config

    directory = layout.directory
    pki = ensure_pki(directory / "pki")
    ports = _ports(layout)
    module_dir = kserve_module_dir()
    server = f"https://127.0.0.1:{ports['apiserver']}"
    _kubeconfig(layout.kubeconfig, server, pki.ca.cert, pki.admin.cert, pki.admin.key,
                "stroke-mlops-admin")  # fmt: skip
    kcm_kubeconfig = directory / "kube-controller-manager.kubeconfig"
    _kubeconfig(kcm_kubeconfig, server, pki.ca.cert, pki.controller_manager.cert,
                pki.controller_manager.key, "system:kube-controller-manager")  # fmt: skip

    etcd_client = f"http://127.0.0.1:{ports['etcd_client']}"
    etcd_peer = f"http://127.0.0.1:{ports['etcd_peer']}"
    etcd = processes.start(directory, "etcd", [
        str(BIN_DIR / "etcd"), "--name", "local", "--data-dir", str(directory / "etcd"),
        "--listen-client-urls", etcd_client, "--advertise-client-urls", etcd_client,
        "--listen-peer-urls", etcd_peer, "--initial-advertise-peer-urls", etcd_peer,
        "--initial-cluster", f"local={etcd_peer}", "--log-level", "warn",
    ])  # fmt: skip
    processes.wait_until(etcd, f"{etcd_client}/health", lambda: _http_ok(f"{etcd_client}/health"),
                         deadline=deadline)  # fmt: skip
    log(f"platform: etcd ready on {etcd_client}")

    apiserver = processes.start(directory, "kube-apiserver", [
        str(BIN_DIR / "kube-apiserver"), "--etcd-servers", etcd_client,
        "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
        "--secure-port", str(ports["apiserver"]), "--cert-dir", str(directory / "apiserver-certs"),
        "--tls-cert-file", str(pki.apiserver.cert),
        "--tls-private-key-file", str(pki.apiserver.key),
        "--client-ca-file", str(pki.ca.cert),
        "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
        "--service-account-key-file", str(pki.service_account_pub),
        "--service-account-signing-key-file", str(pki.service_account_key),
        "--service-cluster-ip-range", SERVICE_CLUSTER_IP_RANGE,
        "--authorization-mode", "Node,RBAC", "--allow-privileged=true",
        "--endpoint-reconciler-type", "none", "--profiling=false",
    ])  # fmt: skip
    processes.wait_until(apiserver, f"{server}/readyz", lambda: _https_ok(f"{server}/readyz", pki),
                         deadline=deadline)  # fmt: skip
    log(f"platform: kube-apiserver ready on {server}")

    api_client = new_client_from_config(config_file=str(layout.kubeconfig))
    try:
        crds = [yaml.safe_load((module_dir / f).read_text()) for f in KSERVE_CRD_FILES]
        crds += [yaml.safe_load(f.read_text())
                 for f in sorted(PROMETHEUS_OPERATOR_CRD_DIR.glob("*.yaml"))]  # fmt: skip
        namespace = {"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": KSERVE_NAMESPACE}}  # fmt: skip
        _server_side_apply(api_client, [namespace, *crds, inference_service_config(module_dir)])
        _wait_crds_established(api_client, [crd["metadata"]["name"] for crd in crds], deadline)
        _server_side_apply(api_client, [default_storage_container(module_dir)])
        log(
            "platform: KServe v0.20.0 and prometheus-operator CRDs, inferenceservice-config, "
            "storage container installed"
        )

        kcm = processes.start(directory, "kube-controller-manager", [
            str(BIN_DIR / "kube-controller-manager"), "--kubeconfig", str(kcm_kubeconfig),
            "--authentication-kubeconfig", str(kcm_kubeconfig),
            "--authorization-kubeconfig", str(kcm_kubeconfig),
            "--bind-address", "127.0.0.1", "--secure-port", str(ports["controller_manager"]),
            "--cert-dir", str(directory / "kcm-certs"),
            "--service-account-private-key-file", str(pki.service_account_key),
            "--root-ca-file", str(pki.ca.cert), "--use-service-account-credentials=true",
            "--service-cluster-ip-range", SERVICE_CLUSTER_IP_RANGE, "--leader-elect=false",
        ])  # fmt: skip
        core = CoreV1Api(api_client)

        def default_service_account() -> bool:
            try:
                core.read_namespaced_service_account("default", "default", _request_timeout=2)
            except ApiException as error:
                if error.status == 404:
                    return False
                raise
            return True

        processes.wait_until(kcm, "its service-account controller creating default/default",
                             default_service_account, deadline=deadline)  # fmt: skip
        log("platform: kube-controller-manager ready")

        tmp = directory / "kserve-tmp"
        certs = tmp / "k8s-webhook-server" / "serving-certs"  # controller-runtime's default
        certs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pki.webhook.cert, certs / "tls.crt")
        shutil.copyfile(pki.webhook.key, certs / "tls.key")
        kserve = processes.start(directory, "kserve-manager", [
            str(BIN_DIR / "kserve-manager"), "--webhook-port", str(ports["kserve_webhook"]),
            "--metrics-addr", f"127.0.0.1:{ports['kserve_metrics']}",
            "--health-probe-addr", f"127.0.0.1:{ports['kserve_probe']}",
        ], env={"KUBECONFIG": str(layout.kubeconfig), "POD_NAMESPACE": KSERVE_NAMESPACE,
                "TMPDIR": str(tmp)})  # fmt: skip
        probe = f"http://127.0.0.1:{ports['kserve_probe']}/readyz"
        processes.wait_until(kserve, probe, lambda: _http_ok(probe), deadline=deadline)
        _server_side_apply(
            api_client,
            webhook_configurations(module_dir, ports["kserve_webhook"], pki.ca.cert.read_bytes()),
        )
        _probe_webhooks(api_client, kserve, deadline)
        webhook_port = ports["kserve_webhook"]
        log(f"platform: KServe controller manager ready, webhooks on 127.0.0.1:{webhook_port}")
    finally:
        api_client.close()


def down(layout: Layout) -> list[str]:
    return processes.stop_all(layout.directory) if layout.directory.is_dir() else []
