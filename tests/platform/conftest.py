"""The live control plane for the platform tier (pytest -m platform; make test-platform).

One platform per test session, in a temporary directory on free ports: etcd, kube-apiserver,
kube-controller-manager and KServe v0.20.0's controller manager, built by `make platform-bins`.
What KFP would install and `make cluster-app` would add (the kubeflow namespace with the
pipeline-runner account, the signing public key) is created here, then both overlays are applied
with `kubectl apply --server-side`, as a user would on kind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from stroke_mlops.deploy import kserve_objects
from stroke_mlops.deploy.live_apply import server_side_apply
from stroke_mlops.registry import signing
from tests.store.conftest import small_model, small_patients  # noqa: F401  (fixtures)
from tools.local_platform import control_plane, processes
from tools.validate_k8s import render_kustomize

REPO_ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("kind", "minikube")
PIPELINE_RUNNER = "system:serviceaccount:kubeflow:pipeline-runner"


@dataclass(frozen=True)
class LivePlatform:
    layout: control_plane.Layout
    bring_up_seconds: float

    @property
    def kubeconfig(self) -> Path:
        return self.layout.kubeconfig


def kubectl(platform: LivePlatform, *args: str, stdin: str | None = None) -> str:
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.fail("kubectl is not installed (Debian: apt-get install kubernetes-client)")
    result = subprocess.run(
        [binary, "--kubeconfig", str(platform.kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}{result.stdout}")
    return result.stdout


@pytest.fixture(scope="session")
def live_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePlatform]:
    missing = control_plane.missing_binaries()
    if missing:
        pytest.fail(
            f"the platform tier needs {', '.join(missing)} in {control_plane.BIN_DIR}: "
            "run `make platform-bins` (or `make test-platform`, which builds them)"
        )
    layout = control_plane.Layout(tmp_path_factory.mktemp("platform"))
    try:
        seconds = control_plane.up(layout, timeout=300, log=lambda _line: None)
        yield LivePlatform(layout, seconds)
    finally:
        control_plane.down(layout)
        left = processes.running(layout.directory)
        assert not left, f"platform processes still running after down: {left}"


@pytest.fixture(scope="session")
def api(live_platform: LivePlatform) -> Iterator[Any]:
    from kubernetes.config import new_client_from_config

    client = new_client_from_config(config_file=str(live_platform.kubeconfig))
    yield client
    client.close()


@pytest.fixture(scope="session")
def impersonating_pipeline_runner(live_platform: LivePlatform) -> Iterator[Any]:
    """An API client that acts as KFP's pipeline-runner service account (impersonation)."""
    from kubernetes.config import new_client_from_config

    client = new_client_from_config(config_file=str(live_platform.kubeconfig))
    # RBAC matches a ServiceAccount subject on the user name alone; no groups are needed.
    client.set_default_header("Impersonate-User", PIPELINE_RUNNER)
    yield client
    client.close()


@pytest.fixture(scope="session")
def applied_overlays(
    live_platform: LivePlatform, api: Any, signing_keys: signing.KeyPair
) -> dict[str, str]:
    """Both overlays applied server-side with kubectl; returns kubectl's output per overlay."""
    stand_ins = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kubeflow"}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "pipeline-runner", "namespace": "kubeflow"}},
    ]  # fmt: skip
    server_side_apply(stand_ins, api_client=api)
    outputs = {}
    for overlay in OVERLAYS:
        objects = render_kustomize(REPO_ROOT / "manifests" / "overlays" / overlay,
                                   env_examples="always")  # fmt: skip
        outputs[overlay] = kubectl(live_platform, "apply", "--server-side", "-f", "-",
                                   stdin=yaml.safe_dump_all(objects))  # fmt: skip
    public_key = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": kserve_objects.SIGNING_PUBLIC_KEY_CONFIG_MAP,
                     "namespace": kserve_objects.NAMESPACE},
        "data": {kserve_objects.SIGNING_PUBLIC_KEY_FILE: signing_keys.public_key.read_text()},
    }  # fmt: skip
    server_side_apply([public_key], api_client=api)
    return outputs


@pytest.fixture
def cli_env(live_platform: LivePlatform) -> dict[str, str]:
    """The environment for running `stroke-mlops` against the live platform (not in a pod)."""
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    env["KUBECONFIG"] = str(live_platform.kubeconfig)
    return env


def stroke_mlops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).with_name("stroke-mlops")
    return subprocess.run(
        [str(executable), *args], env=env, capture_output=True, text=True, timeout=300
    )


def dump(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False)


@dataclass(frozen=True)
class RollbackStore:
    uri: str
    older: str
    newer: str
    version_uris: dict[str, str]
    env: dict[str, str]  # the AWS_* variables that reach the S3 stand-in


@pytest.fixture
def rollback_store(
    s3_bucket: Any,
    tmp_path: Path,
    small_model: Any,  # noqa: F811
    small_patients: Any,  # noqa: F811
) -> RollbackStore:
    """An S3 store (moto on 127.0.0.1) with two signed versions, the newer in production."""
    from stroke_mlops.data import schema
    from stroke_mlops.registry import signature
    from stroke_mlops.registry.model_dir import write_model_dir
    from stroke_mlops.registry.store import open_store

    uri = s3_bucket.uri("models")
    store = open_store(uri)
    versions = ("20260101T000000Z-aaaa1111", "20260201T000000Z-bbbb2222")
    version_uris = {}
    for version in versions:
        directory = tmp_path / "built" / version
        write_model_dir(
            directory,
            model=small_model,
            signature=signature.build_signature(signature.example_instances(small_patients)),
            model_card=f"# stroke {version}\n",
            metadata={"version": version, "threshold": 0.5, "model_name": schema.MODEL_NAME},
            signing_key=signing.private_key_from_env(),
        )
        version_uris[version] = store.publish_version(directory, version).uri
        store.promote(version)
    env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "S3_"))}
    return RollbackStore(uri, versions[0], versions[1], version_uris, env)
