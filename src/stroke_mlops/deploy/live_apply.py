"""Apply objects to a real cluster with server-side apply, then wait for KServe to reconcile.

``stroke-mlops deploy --apply`` uses this against the current kubeconfig (``$KUBECONFIG`` or
``~/.kube/config``), or the pod's service account inside a cluster. Refusals are never hidden:
``ApplyRefusedError`` carries the API server's own message, which for an admission webhook reads
``admission webhook "inferenceservice.kserve-webhook-server.validator" denied the request: ...``.

"Reconciled" means KServe's controller has turned the InferenceService we applied into a
predictor Deployment whose pod template carries our ``storageUri`` (KServe's annotation
``internal.serving.kserve.io/storage-initializer-sourceuri``). Whether its pods become Ready is
the cluster's business (images, nodes) and is reported, not waited for.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

FIELD_MANAGER = "stroke-mlops"
STORAGE_URI_ANNOTATION = "internal.serving.kserve.io/storage-initializer-sourceuri"
INFERENCE_SERVICE_LABEL = "serving.kserve.io/inferenceservice"
INFERENCE_GRAPH_LABEL = "serving.kserve.io/inferencegraph"  # KServe's InferenceGraphLabel
REQUEST_TIMEOUT_SECONDS = 30
DEFAULT_RECONCILE_TIMEOUT_SECONDS = 120.0
T = TypeVar("T")


class ClusterUnavailableError(RuntimeError):
    """No usable kubeconfig or in-cluster service account; the message says which."""


class ApplyRefusedError(RuntimeError):
    """The API server (or an admission webhook through it) refused an object."""


class ReconcileFailedError(RuntimeError):
    """KServe did not produce the predictor Deployment in time; the message carries its status."""


@dataclass(frozen=True)
class Reconciled:
    deployment: str
    ready: bool
    detail: str


def api_client_from_environment(kubeconfig: str | None = None) -> ApiClient:
    """An API client for ``kubeconfig``, else ``$KUBECONFIG``/``~/.kube/config``, else the pod's
    service account when running inside a cluster."""
    from kubernetes import client, config

    path = kubeconfig or os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
    if kubeconfig or Path(path.split(os.pathsep)[0]).is_file():
        try:
            return config.new_client_from_config(config_file=path)
        except (config.ConfigException, OSError, ValueError) as error:
            raise ClusterUnavailableError(f"kubeconfig {path} is not usable: {error}") from error
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException as error:
            raise ClusterUnavailableError(
                f"in-cluster configuration did not load ({error})"
            ) from error
        return client.ApiClient(configuration)
    raise ClusterUnavailableError(
        f"no kubeconfig at {path} and not inside a cluster: set KUBECONFIG (for the local "
        "control plane: local_outputs/platform/kubeconfig after `make platform-up`)"
    )


def _describe(manifest: dict[str, Any]) -> str:
    meta = manifest.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{manifest.get('kind')} {where}{meta.get('name')}"


def _error_message(error: Any) -> str:
    summary = error.summary() if hasattr(error, "summary") else None
    return str(summary or error)


def server_side_apply(
    manifests: Iterable[dict[str, Any]],
    *,
    api_client: ApiClient,
    field_manager: str = FIELD_MANAGER,
    dry_run: bool = False,
) -> list[str]:
    """Server-side apply each manifest in order (conflicts forced: we own these fields).

    Returns one line per object ("applied InferenceService stroke-mlops/stroke"); raises
    ApplyRefusedError with the API server's message at the first refusal.
    """
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
    from urllib3.exceptions import HTTPError

    try:
        dynamic = DynamicClient(api_client)
    except (DynamicApiError, HTTPError, OSError) as error:
        raise ApplyRefusedError(f"cannot reach the API server: {error}") from error
    done = []
    for manifest in manifests:
        label = _describe(manifest)
        try:
            resource = dynamic.resources.get(
                api_version=manifest["apiVersion"], kind=manifest["kind"]
            )
            dynamic.server_side_apply(
                resource,
                body=manifest,
                namespace=manifest.get("metadata", {}).get("namespace"),
                field_manager=field_manager,
                force_conflicts=True,
                dry_run="All" if dry_run else None,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except ResourceNotFoundError as error:
            raise ApplyRefusedError(
                f"{label}: the cluster does not serve {manifest['apiVersion']} "
                f"{manifest['kind']} (are KServe's CRDs installed?)"
            ) from error
        except DynamicApiError as error:
            raise ApplyRefusedError(
                f"{label} refused (HTTP {error.status}): {_error_message(error)}"
            ) from error
        except (HTTPError, OSError) as error:
            raise ApplyRefusedError(f"{label}: cannot reach the API server ({error})") from error
        done.append(f"{'checked (dry run)' if dry_run else 'applied'} {label}")
    return done


def _isvc_status(api_client: ApiClient, namespace: str, name: str) -> tuple[str, bool]:
    from kubernetes.client import CustomObjectsApi

    isvc = CustomObjectsApi(api_client).get_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", namespace, "inferenceservices", name,
        _request_timeout=REQUEST_TIMEOUT_SECONDS,
    )  # fmt: skip
    conditions = isvc.get("status", {}).get("conditions", [])
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    not_true = [
        f"{c.get('type')}={c.get('status')}"
        + (f" ({c.get('reason')}: {c.get('message')})" if c.get("message") else "")
        for c in conditions
        if c.get("status") != "True"
    ]
    return "; ".join(not_true) or ("Ready" if ready else "no status yet"), ready


def _warning_events(api_client: ApiClient, namespace: str, name: str) -> list[str]:
    from kubernetes.client import CoreV1Api

    events = CoreV1Api(api_client).list_namespaced_event(
        namespace,
        field_selector=f"involvedObject.name={name},involvedObject.kind=InferenceService,"
        "type=Warning",
        _request_timeout=REQUEST_TIMEOUT_SECONDS,
    )
    return [f"{e.reason}: {e.message}" for e in events.items[-3:]]


def _poll_deployments(
    api_client: ApiClient,
    *,
    namespace: str,
    label_selector: str,
    found: Callable[[Any], T | None],
    on_timeout: Callable[[], Exception],
    timeout: float,
    poll: float,
) -> T:
    """List the Deployments matching ``label_selector`` every ``poll`` seconds until ``found``
    returns something for one of them; raise ``on_timeout()`` after ``timeout`` seconds."""
    from kubernetes.client import AppsV1Api

    apps = AppsV1Api(api_client)
    deadline = time.monotonic() + timeout
    while True:
        deployments = apps.list_namespaced_deployment(
            namespace, label_selector=label_selector, _request_timeout=REQUEST_TIMEOUT_SECONDS
        ).items
        for deployment in deployments:
            result = found(deployment)
            if result is not None:
                return result
        if time.monotonic() > deadline:
            raise on_timeout()
        time.sleep(poll)


def wait_for_reconcile(
    api_client: ApiClient,
    *,
    namespace: str,
    name: str,
    storage_uri: str,
    timeout: float = DEFAULT_RECONCILE_TIMEOUT_SECONDS,
    poll: float = 0.5,
) -> Reconciled:
    """Wait until KServe's predictor Deployment for ``name`` serves ``storage_uri``."""

    def serving_the_uri(deployment: Any) -> Reconciled | None:
        annotations = deployment.spec.template.metadata.annotations or {}
        if annotations.get(STORAGE_URI_ANNOTATION) != storage_uri:
            return None
        detail, ready = _isvc_status(api_client, namespace, name)
        return Reconciled(deployment.metadata.name, ready, detail)

    def not_reconciled() -> Exception:
        detail, _ = _isvc_status(api_client, namespace, name)
        events = _warning_events(api_client, namespace, name)
        return ReconcileFailedError(
            f"InferenceService {namespace}/{name} was not reconciled into a Deployment "
            f"serving {storage_uri} within {timeout:.0f}s; status: {detail}"
            + (f"; KServe said: {' | '.join(events)}" if events else "")
        )

    return _poll_deployments(
        api_client,
        namespace=namespace,
        label_selector=f"{INFERENCE_SERVICE_LABEL}={name}",
        found=serving_the_uri,
        on_timeout=not_reconciled,
        timeout=timeout,
        poll=poll,
    )


def wait_for_graph(
    api_client: ApiClient,
    *,
    namespace: str,
    name: str,
    timeout: float = DEFAULT_RECONCILE_TIMEOUT_SECONDS,
    poll: float = 0.5,
) -> dict[str, str]:
    """Wait until KServe's graph controller has made the router Deployment of InferenceGraph
    ``name``; returns each step's ``serviceUrl`` from the router's ``--graph-json``
    (``node/step`` -> URL), as the controller resolved them from the InferenceServices' status.

    In Standard mode the controller first looks up every ``serviceName`` and resolves its
    predictor URL; it requeues while a service is missing or has no address yet, and only then
    creates the router Deployment (named like the graph).
    """

    def step_urls(deployment: Any) -> dict[str, str] | None:
        args = deployment.spec.template.spec.containers[0].args or []
        if "--graph-json" not in args[:-1]:
            return None
        spec = json.loads(args[args.index("--graph-json") + 1])
        return {
            f"{node_name}/{step.get('name', index)}": step.get("serviceUrl", "")
            for node_name, node in spec.get("nodes", {}).items()
            for index, step in enumerate(node.get("steps", []))
        }

    def no_router() -> Exception:
        return ReconcileFailedError(
            f"InferenceGraph {namespace}/{name} was not reconciled into a router Deployment "
            f"within {timeout:.0f}s (KServe's controller waits for every serviceName to "
            "exist and have an address)"
        )

    return _poll_deployments(
        api_client,
        namespace=namespace,
        label_selector=f"{INFERENCE_GRAPH_LABEL}={name}",
        found=step_urls,
        on_timeout=no_router,
        timeout=timeout,
        poll=poll,
    )


def apply_and_wait(
    manifests: Sequence[dict[str, Any]],
    *,
    api_client: ApiClient,
    timeout: float = DEFAULT_RECONCILE_TIMEOUT_SECONDS,
) -> list[str]:
    """Apply ``manifests`` server-side, then wait for every InferenceService and InferenceGraph
    among them to be reconciled. Returns readable lines; raises ApplyRefusedError or
    ReconcileFailedError."""
    lines = server_side_apply(manifests, api_client=api_client)
    for manifest in manifests:
        if manifest.get("kind") == "InferenceGraph":
            meta = manifest["metadata"]
            urls = wait_for_graph(api_client, namespace=meta["namespace"], name=meta["name"],
                                  timeout=timeout)  # fmt: skip
            routes = ", ".join(f"{step} -> {url}" for step, url in urls.items())
            lines.append(
                f"reconciled {_describe(manifest)} into router Deployment {meta['name']}: {routes}"
            )
            continue
        if manifest.get("kind") != "InferenceService":
            continue
        meta = manifest["metadata"]
        storage_uri = manifest["spec"]["predictor"]["model"]["storageUri"]
        result = wait_for_reconcile(
            api_client,
            namespace=meta["namespace"],
            name=meta["name"],
            storage_uri=storage_uri,
            timeout=timeout,
        )
        readiness = "Ready" if result.ready else f"not Ready yet ({result.detail})"
        lines.append(
            f"reconciled {_describe(manifest)} into Deployment {result.deployment} serving "
            f"{storage_uri}; {readiness}"
        )
    return lines


def apply_from_cli(
    objects: Sequence[Any], *, timeout: float = DEFAULT_RECONCILE_TIMEOUT_SECONDS
) -> int:
    """``--apply`` for the CLI: print what was done, or the refusal on stderr; exit status 0/1."""
    import sys

    from stroke_mlops.deploy.kserve_objects import to_manifest

    try:
        api_client = api_client_from_environment()
    except ClusterUnavailableError as error:
        print(f"not applied: {error}", file=sys.stderr)
        return 1
    try:
        lines = apply_and_wait([to_manifest(o) for o in objects], api_client=api_client,
                               timeout=timeout)  # fmt: skip
    except (ApplyRefusedError, ReconcileFailedError) as error:
        print(f"not applied: {error}", file=sys.stderr)
        return 1
    finally:
        api_client.close()
    print("\n".join(lines))
    return 0
