"""KServe objects for the stroke model and an in-cluster apply that never crashes a run.

``build_serving_runtime`` and ``build_inference_service`` return the kserve SDK's typed models;
``render_yaml`` turns them into the manifests a user can read, commit or ``kubectl apply``;
``apply_objects`` creates or replaces them through the Kubernetes API only when it runs inside a
cluster, and otherwise says why it did not ("emitted, not applied: ..."). Inside a cluster a
failure is a failure ("not applied: <what the API server or KServe's webhook said>",
``in_cluster=True``), so the deploy step can fail the run with it.

The kserve SDK takes about a second to import, so it is imported where it is used: importing this
module stays cheap for the CLI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from stroke_mlops import settings
from stroke_mlops.registry.signing import PUBLIC_KEY_ENV
from stroke_mlops.registry.uris import (
    ACCESS_KEY_VARIABLE,
    ENDPOINT_VARIABLE,
    REGION_VARIABLE,
    SECRET_KEY_VARIABLE,
)
from stroke_mlops.serving.defaults import POD_HOST

if TYPE_CHECKING:
    from kserve.models.v1alpha1_serving_runtime import V1alpha1ServingRuntime
    from kserve.models.v1beta1_inference_service import V1beta1InferenceService
    from kubernetes.client import ApiClient, CustomObjectsApi

# Names shared with manifests/, the pipeline and the docs: change them together.
NAMESPACE = settings.NAMESPACE
INFERENCE_SERVICE_NAME = "stroke"
SERVING_RUNTIME_NAME = "stroke-mlops-runtime"
PREDICTOR_SERVICE_ACCOUNT = "stroke-predictor"
MODEL_FORMAT = "stroke-mlops"
MODEL_FORMAT_VERSION = "1"
MODEL_MOUNT_PATH = settings.MODEL_MOUNT_PATH
HTTP_PORT = settings.HTTP_PORT
PREDICTOR_CONTAINER_NAME = "kserve-container"
# The pod listens on every interface (the Service and the probes reach the pod IP); the row
# limit, and the body limit derived from it, keep the defaults every serve command shares.
SERVE_ARGS = (
    "stroke-mlops",
    "serve",
    "--model-uri",
    MODEL_MOUNT_PATH,
    "--port",
    str(HTTP_PORT),
    "--host",
    POD_HOST,
)
# The image's numeric USER (Dockerfile), stated again so Kubernetes enforces it.
PREDICTOR_UID = 1000
# The public key model signatures are verified with: a ConfigMap mounted read-only into the
# predictor (make cluster-app creates it; the private key never leaves the publish step).
SIGNING_PUBLIC_KEY_CONFIG_MAP = "stroke-mlops-signing-public-key"
SIGNING_PUBLIC_KEY_FILE = "public-key.pem"
SIGNING_PUBLIC_KEY_DIR = "/etc/stroke-mlops/signing"
# Where the predictor writes every request record (the serve command reads the env var): the
# URI the scheduled monitor_and_retrain reads (REQUESTS_URI in mk/monitoring.mk). The endpoint
# and region match the pipeline's ClusterConfig; the keys come from the Secret the overlays
# make in this namespace (keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
REQUEST_LOG_URI_ENV = "STROKE_REQUEST_LOG_URI"
CLUSTER_REQUEST_LOG_URI = settings.CLUSTER_REQUEST_LOG_URI
S3_CREDENTIALS_SECRET = settings.S3_CREDENTIALS_SECRET
CLUSTER_S3_ENDPOINT = settings.CLUSTER_S3_ENDPOINT
CLUSTER_S3_REGION = settings.CLUSTER_S3_REGION

KSERVE_GROUP = "serving.kserve.io"
INFERENCE_SERVICE_API_VERSION = f"{KSERVE_GROUP}/v1beta1"
SERVING_RUNTIME_API_VERSION = f"{KSERVE_GROUP}/v1alpha1"
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
DEPLOYMENT_MODE = "Standard"  # plain Deployment + Service: no Knative, no Istio
MODEL_VERSION_ANNOTATION = "stroke-mlops/model-version"
PART_OF_LABEL = {"app.kubernetes.io/part-of": "stroke-mlops"}

# Schemes KServe's storage initializer can download from.
STORAGE_URI_SCHEMES = ("s3", "gs", "pvc", "file", "https", "http", "hdfs", "webhdfs", "oci", "hf")

# Custom resources apply_objects knows how to address (group, kind) -> plural.
_PLURALS = {
    (KSERVE_GROUP, "InferenceService"): "inferenceservices",
    (KSERVE_GROUP, "ServingRuntime"): "servingruntimes",
    (KSERVE_GROUP, "InferenceGraph"): "inferencegraphs",
}
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_REQUEST_TIMEOUT_SECONDS = 30


class DeployConfigError(ValueError):
    """A deploy setting (name, URI, percentage, resources) is not usable; the message says why."""


@dataclass(frozen=True)
class Resources:
    """CPU and memory for one predictor container, as Kubernetes quantities."""

    cpu_request: str = "100m"
    memory_request: str = "512Mi"
    cpu_limit: str = "1"
    memory_limit: str = "1Gi"


# Sized for a laptop kind/minikube cluster: the model and the server fit in well under 512 MiB.
KIND_RESOURCES = Resources()


@dataclass(frozen=True)
class ApplyResult:
    """What ``apply_objects`` did.

    ``applied`` is True only when every object was created or replaced. ``in_cluster`` is True
    when there was an API server to apply to (inside a pod, or ``api_client`` given): then
    ``applied=False`` is a real failure, not a local run. ``message`` is one line for logs and
    the KFP UI; ``actions`` lists what happened per object (e.g. "created InferenceService
    stroke-mlops/stroke"), including those done before a failure.
    """

    applied: bool
    message: str
    actions: tuple[str, ...] = ()
    in_cluster: bool = False


def validate_storage_uri(storage_uri: str) -> str:
    """``storage_uri`` as KServe should get it (bucket URIs end in "/"), or DeployConfigError.

    ``storageUri`` names a model directory (``s3://stroke-mlops/models/stroke/versions/<v>/``).
    """
    allowed = ", ".join(f"{scheme}://" for scheme in STORAGE_URI_SCHEMES)
    if not isinstance(storage_uri, str) or not storage_uri.strip():
        raise DeployConfigError(f"storage URI is empty; expected a URI starting with {allowed}")
    if storage_uri != storage_uri.strip() or any(ch.isspace() for ch in storage_uri):
        raise DeployConfigError(f"storage URI {storage_uri!r} contains whitespace")
    parts = urlsplit(storage_uri)
    if not parts.scheme or "://" not in storage_uri:
        raise DeployConfigError(
            f"storage URI {storage_uri!r} has no scheme; expected one of {allowed}"
        )
    if parts.scheme not in STORAGE_URI_SCHEMES:
        raise DeployConfigError(
            f"storage URI {storage_uri!r} uses unsupported scheme {parts.scheme + '://'!r}; "
            f"expected one of {allowed}"
        )
    if parts.scheme == "file":
        if not parts.path.strip("/"):
            raise DeployConfigError(f"storage URI {storage_uri!r} names no directory")
    elif not parts.netloc:
        what = {"s3": "bucket", "gs": "bucket", "pvc": "PersistentVolumeClaim"}.get(
            parts.scheme, "host"
        )
        raise DeployConfigError(f"storage URI {storage_uri!r} names no {what}")
    if parts.scheme in ("s3", "gs") and not storage_uri.endswith("/"):
        # The storage initializer matches objects by plain key prefix: without the slash,
        # .../versions/1 would also download .../versions/10/.
        storage_uri += "/"
    return storage_uri


def _check_dns_label(value: str, what: str) -> str:
    if not isinstance(value, str) or not _DNS_LABEL.match(value):
        raise DeployConfigError(
            f"{what} {value!r} is not a valid Kubernetes name: expected at most 63 lowercase "
            "letters, digits or '-', starting with a letter and ending with a letter or digit"
        )
    return value


def _resource_requirements(resources: Resources) -> Any:
    from kubernetes.client import V1ResourceRequirements

    return V1ResourceRequirements(
        requests={"cpu": resources.cpu_request, "memory": resources.memory_request},
        limits={"cpu": resources.cpu_limit, "memory": resources.memory_limit},
    )


def build_serving_runtime(
    image: str,
    *,
    name: str = SERVING_RUNTIME_NAME,
    namespace: str = NAMESPACE,
    resources: Resources = KIND_RESOURCES,
    image_pull_policy: str = "IfNotPresent",
) -> V1alpha1ServingRuntime:
    """The namespaced ServingRuntime that serves model format ``stroke-mlops`` v1 from our image.

    The runtime runs ``stroke-mlops serve`` from the same image as the pipeline (no version skew
    between training and serving); KServe's storage initializer downloads ``storageUri`` to
    ``/mnt/models`` first. ``IfNotPresent`` suits images loaded into kind/minikube. The server
    logs every request to ``s3://stroke-mlops/request-logs`` in the in-cluster MinIO, with the
    keys from the Secret ``stroke-mlops-s3``.
    """
    from kserve.models.v1alpha1_serving_runtime import V1alpha1ServingRuntime
    from kserve.models.v1alpha1_serving_runtime_spec import V1alpha1ServingRuntimeSpec
    from kserve.models.v1alpha1_supported_model_format import V1alpha1SupportedModelFormat
    from kubernetes.client import (
        V1Capabilities,
        V1ConfigMapVolumeSource,
        V1Container,
        V1ContainerPort,
        V1EmptyDirVolumeSource,
        V1EnvVar,
        V1EnvVarSource,
        V1ObjectMeta,
        V1SeccompProfile,
        V1SecretKeySelector,
        V1SecurityContext,
        V1Volume,
        V1VolumeMount,
    )

    if not isinstance(image, str) or not image.strip() or any(ch.isspace() for ch in image):
        raise DeployConfigError(f"image {image!r} is not a container image reference")
    if image_pull_policy not in ("Always", "IfNotPresent", "Never"):
        raise DeployConfigError(
            f"image_pull_policy {image_pull_policy!r} must be Always, IfNotPresent or Never"
        )
    container = V1Container(
        name=PREDICTOR_CONTAINER_NAME,
        image=image,
        image_pull_policy=image_pull_policy,
        args=list(SERVE_ARGS),
        ports=[V1ContainerPort(container_port=HTTP_PORT, protocol="TCP")],
        resources=_resource_requirements(resources),
        env=[
            V1EnvVar(
                name=PUBLIC_KEY_ENV,
                value=f"{SIGNING_PUBLIC_KEY_DIR}/{SIGNING_PUBLIC_KEY_FILE}",
            ),
            V1EnvVar(name=REQUEST_LOG_URI_ENV, value=CLUSTER_REQUEST_LOG_URI),
            V1EnvVar(name=ENDPOINT_VARIABLE, value=CLUSTER_S3_ENDPOINT),
            V1EnvVar(name=REGION_VARIABLE, value=CLUSTER_S3_REGION),
            *(
                V1EnvVar(
                    name=key,
                    value_from=V1EnvVarSource(
                        secret_key_ref=V1SecretKeySelector(name=S3_CREDENTIALS_SECRET, key=key)
                    ),
                )
                for key in (ACCESS_KEY_VARIABLE, SECRET_KEY_VARIABLE)
            ),
        ],
        volume_mounts=[
            V1VolumeMount(
                name="signing-public-key", mount_path=SIGNING_PUBLIC_KEY_DIR, read_only=True
            ),
            V1VolumeMount(name="tmp", mount_path="/tmp"),  # the only writable path
        ],
        # The image runs as uid 1000 (numeric USER), so runAsNonRoot can be checked.
        security_context=V1SecurityContext(
            run_as_non_root=True,
            run_as_user=PREDICTOR_UID,
            run_as_group=PREDICTOR_UID,
            read_only_root_filesystem=True,
            allow_privilege_escalation=False,
            capabilities=V1Capabilities(drop=["ALL"]),
            seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
        ),
    )
    return V1alpha1ServingRuntime(
        api_version=SERVING_RUNTIME_API_VERSION,
        kind="ServingRuntime",
        metadata=V1ObjectMeta(
            name=_check_dns_label(name, "ServingRuntime name"),
            namespace=_check_dns_label(namespace, "namespace"),
            labels=dict(PART_OF_LABEL),
        ),
        spec=V1alpha1ServingRuntimeSpec(
            supported_model_formats=[
                V1alpha1SupportedModelFormat(
                    name=MODEL_FORMAT, version=MODEL_FORMAT_VERSION, auto_select=True, priority=1
                )
            ],
            protocol_versions=["v1", "v2"],
            containers=[container],
            # KServe merges these into the predictor pod (MergePodSpec in v0.20's utils.go).
            volumes=[
                V1Volume(
                    name="signing-public-key",
                    config_map=V1ConfigMapVolumeSource(name=SIGNING_PUBLIC_KEY_CONFIG_MAP),
                ),
                V1Volume(name="tmp", empty_dir=V1EmptyDirVolumeSource(size_limit="64Mi")),
            ],
        ),
    )


def _predictor(
    storage_uri: str, *, runtime: str, resources: Resources, service_account: str | None
) -> Any:
    from kserve.models.v1beta1_model_format import V1beta1ModelFormat
    from kserve.models.v1beta1_model_spec import V1beta1ModelSpec
    from kserve.models.v1beta1_predictor_spec import V1beta1PredictorSpec

    return V1beta1PredictorSpec(
        service_account_name=service_account,
        # The server never calls the Kubernetes API; the storage initializer reads S3
        # credentials from env vars, not from the account's token.
        automount_service_account_token=False,
        # No model.name: KServe >= 0.16 refuses it on a standard predictor ("the 'name' field
        # is not allowed in standard predictor"); the runtime names its container.
        model=V1beta1ModelSpec(
            name=None,  # the SDK's default is "", which it would write out
            model_format=V1beta1ModelFormat(name=MODEL_FORMAT, version=MODEL_FORMAT_VERSION),
            runtime=runtime,
            storage_uri=validate_storage_uri(storage_uri),
            resources=_resource_requirements(resources),
        ),
    )


def build_inference_service(
    storage_uri: str,
    *,
    name: str = INFERENCE_SERVICE_NAME,
    namespace: str = NAMESPACE,
    service_account: str = PREDICTOR_SERVICE_ACCOUNT,
    runtime: str = SERVING_RUNTIME_NAME,
    resources: Resources = KIND_RESOURCES,
    model_version: str | None = None,
) -> V1beta1InferenceService:
    """The Standard-mode InferenceService serving the model directory at ``storage_uri``.

    ``model_version`` is recorded as the ``stroke-mlops/model-version`` annotation. There is no
    canary option: in KServe v0.20 Standard mode ``spec.canary[].trafficPercent`` only sizes the
    canary's replicas and the stable Service keeps all traffic (see docs/kind.md).
    """
    from kserve.models.v1beta1_inference_service import V1beta1InferenceService
    from kserve.models.v1beta1_inference_service_spec import V1beta1InferenceServiceSpec
    from kubernetes.client import V1ObjectMeta

    _check_dns_label(name, "InferenceService name")
    _check_dns_label(namespace, "namespace")
    _check_dns_label(runtime, "ServingRuntime name")
    _check_dns_label(service_account, "service account")

    annotations = {DEPLOYMENT_MODE_ANNOTATION: DEPLOYMENT_MODE}
    if model_version is not None:
        if not isinstance(model_version, str) or not model_version.strip():
            raise DeployConfigError(
                f"model_version must be a non-empty string, got {model_version!r}"
            )
        annotations[MODEL_VERSION_ANNOTATION] = model_version
    predictor = _predictor(
        storage_uri, runtime=runtime, resources=resources, service_account=service_account
    )
    return V1beta1InferenceService(
        api_version=INFERENCE_SERVICE_API_VERSION,
        kind="InferenceService",
        metadata=V1ObjectMeta(
            name=name, namespace=namespace, labels=dict(PART_OF_LABEL), annotations=annotations
        ),
        spec=V1beta1InferenceServiceSpec(predictor=predictor),
    )


def to_manifest(obj: Any) -> dict[str, Any]:
    """A Kubernetes object (kserve/kubernetes model or dict) as a plain dict with camelCase keys."""
    from kubernetes.client import ApiClient

    manifest = ApiClient().sanitize_for_serialization(obj)
    if not isinstance(manifest, dict) or not manifest.get("apiVersion") or not manifest.get("kind"):
        raise TypeError(f"not a Kubernetes object (needs apiVersion and kind): {obj!r:.200}")
    return manifest


def render_yaml(objects: Iterable[Any]) -> str:
    """Multi-document YAML (``---`` before each object) ready for ``kubectl apply -f -``."""
    return yaml.safe_dump_all(
        [to_manifest(obj) for obj in objects],
        explicit_start=True,
        sort_keys=False,
        default_flow_style=False,
    )


SERVING_RUNTIME_MANIFEST_HEADER = (
    "# Generated from stroke_mlops.deploy.kserve_objects.build_serving_runtime:"
    " do not edit by hand.\n"
    "# Regenerate with `make serving-runtime-manifest`; tests/k8s checks they agree.\n"
)


def render_serving_runtime_manifest(image: str | None = None) -> str:
    """The committed ``manifests/base/serving-runtime.yaml``: header + ``render_yaml``.

    The default image is ``stroke-mlops:<package version>`` (not ``$STROKE_MLOPS_IMAGE``): an
    overlay retags it with kustomize ``images:`` when the image lives in a registry.
    """
    from stroke_mlops import __version__
    from stroke_mlops.image import IMAGE_REPOSITORY

    runtime = build_serving_runtime(image or f"{IMAGE_REPOSITORY}:{__version__}")
    return SERVING_RUNTIME_MANIFEST_HEADER + render_yaml([runtime])


def _in_cluster_api_client() -> ApiClient | str:
    """An API client from the pod's service account, or the reason there is none."""
    if not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "not running inside a Kubernetes cluster (KUBERNETES_SERVICE_HOST is not set)"
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException as e:
        return f"in-cluster configuration did not load ({e})"
    return client.ApiClient(configuration)


def _status_message(error: Any) -> str:
    """The API server's own explanation from an ApiException body (a JSON Status)."""
    import json

    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or error.reason or "no message")


class _ApiCallError(Exception):
    def __init__(self, verb: str, error: Any) -> None:
        super().__init__(verb)
        self.verb = verb
        self.error = error


def _call(verb: str, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    from kubernetes.client.exceptions import ApiException

    try:
        return fn(*args, _request_timeout=_REQUEST_TIMEOUT_SECONDS, **kwargs)
    except ApiException as e:
        raise _ApiCallError(verb, e) from e


def _create_or_replace(api: CustomObjectsApi, manifest: dict[str, Any]) -> str:
    group, version = manifest["apiVersion"].split("/", 1)
    plural = _PLURALS[(group, manifest["kind"])]
    namespace = manifest["metadata"]["namespace"]
    name = manifest["metadata"]["name"]
    where = dict(group=group, version=version, namespace=namespace, plural=plural)
    label = f"{manifest['kind']} {namespace}/{name}"
    for _attempt in range(2):  # a second try when someone else updated it in between (409)
        try:
            existing = _call("get", api.get_namespaced_custom_object, name=name, **where)
        except _ApiCallError as e:
            if e.error.status != 404:
                raise
            _call("create", api.create_namespaced_custom_object, body=manifest, **where)
            return f"created {label}"
        body = dict(manifest)
        old_meta = existing.get("metadata", {})
        body["metadata"] = {
            **manifest["metadata"],
            "resourceVersion": old_meta.get("resourceVersion"),
            "labels": {**old_meta.get("labels", {}), **manifest["metadata"].get("labels", {})},
            "annotations": {
                **old_meta.get("annotations", {}),
                **manifest["metadata"].get("annotations", {}),
            },
        }
        try:
            _call("update", api.replace_namespaced_custom_object, name=name, body=body, **where)
        except _ApiCallError as e:
            if e.error.status == 409:
                continue
            raise
        return f"replaced {label}"
    return f"not replaced {label}: it kept changing while we updated it (HTTP 409 twice)"


def apply_objects(
    objects: Sequence[Any],
    *,
    namespace: str = NAMESPACE,
    api_client: ApiClient | None = None,
) -> ApplyResult:
    """Create or replace KServe objects when running inside a cluster; never raises for that.

    Outside a cluster it returns ``applied=False`` with "emitted, not applied: <reason>". Inside
    one (``$KUBERNETES_SERVICE_HOST`` set, or ``api_client`` given) every failure, including a
    missing service-account token and KServe's admission webhook refusing an object, returns
    ``applied=False, in_cluster=True`` with "not applied: <reason>". Permission problems (HTTP
    403) name the RBAC verb and resource the service account lacks. Pass ``api_client`` to talk to a
    specific API server instead of the in-cluster one. Objects without a namespace get
    ``namespace``; objects in another namespace are refused.
    """
    manifests = []
    for obj in objects:
        manifest = to_manifest(obj)
        group = manifest["apiVersion"].split("/", 1)[0]
        kind = manifest["kind"]
        if (group, kind) not in _PLURALS:
            supported = ", ".join(sorted(k for _, k in _PLURALS))
            return ApplyResult(
                False,
                f"emitted, not applied: {kind} ({manifest['apiVersion']}) is not one of "
                f"the kinds this step applies ({supported})",
            )
        metadata = manifest.setdefault("metadata", {})
        metadata.setdefault("namespace", namespace)
        if metadata["namespace"] != namespace:
            return ApplyResult(
                False,
                f"emitted, not applied: {kind} {metadata.get('name')!r} is in namespace "
                f"{metadata['namespace']!r}, expected {namespace!r}",
            )
        manifests.append(manifest)

    owns_client = api_client is None
    if api_client is None:
        client_or_reason = _in_cluster_api_client()
        if isinstance(client_or_reason, str):
            if os.environ.get("KUBERNETES_SERVICE_HOST"):
                return ApplyResult(False, f"not applied: {client_or_reason}", in_cluster=True)
            return ApplyResult(False, f"emitted, not applied: {client_or_reason}")
        api_client = client_or_reason

    from kubernetes.client import CustomObjectsApi
    from urllib3.exceptions import HTTPError

    api = CustomObjectsApi(api_client)
    actions: list[str] = []
    try:
        for manifest in manifests:
            actions.append(_create_or_replace(api, manifest))
    except _ApiCallError as e:
        kind, meta = manifest["kind"], manifest["metadata"]
        resource = f"{_PLURALS[(manifest['apiVersion'].split('/', 1)[0], kind)]}.{KSERVE_GROUP}"
        if e.error.status == 403:
            reason = (
                f"forbidden: the service account lacks RBAC verb {e.verb!r} on {resource} in "
                f"namespace {meta['namespace']!r} (grant it with a Role like "
                f"manifests/base/pipeline-runner-rbac.yaml). API server said: "
                f"{_status_message(e.error)}"
            )
        else:
            reason = (
                f"{e.verb} {kind} {meta['namespace']}/{meta['name']} failed with HTTP "
                f"{e.error.status}: {_status_message(e.error)}"
            )
        return ApplyResult(False, f"not applied: {reason}", tuple(actions), in_cluster=True)
    except (HTTPError, OSError) as e:
        return ApplyResult(
            False,
            f"not applied: cannot reach the Kubernetes API server ({e})",
            tuple(actions),
            in_cluster=True,
        )
    finally:
        if owns_client:
            api_client.close()
    applied = all(not action.startswith("not ") for action in actions)
    prefix = "applied" if applied else "not applied"
    return ApplyResult(applied, f"{prefix}: " + "; ".join(actions), tuple(actions), in_cluster=True)
