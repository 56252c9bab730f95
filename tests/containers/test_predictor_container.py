"""The predictor as KServe runs it: the image's default command over a read-only /mnt/models."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from stroke_mlops.data import schema
from stroke_mlops.data.dataset import features_and_target
from stroke_mlops.registry import signature, signing
from stroke_mlops.registry.model_dir import write_model_dir
from stroke_mlops.serving.infra_validation import free_port
from stroke_mlops.training.train import build_model_pipeline
from tests.containers.docker_cli import Container

pytestmark = pytest.mark.containers

TRAIN_ROWS = 500
MODEL_VERSION = "ctest-1"
READY_TIMEOUT_S = 120
MODEL_URL = "http://127.0.0.1:{port}/v1/models/" + schema.MODEL_NAME
PUBLIC_KEY_IN_CONTAINER = "/etc/stroke-mlops/signing/public-key.pem"  # as the ServingRuntime


def _http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _wait_until_ready(container: Container, port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not container.is_running():
            pytest.fail(f"the predictor container exited:\n{container.logs()}", pytrace=False)
        try:
            status, body = _http("GET", MODEL_URL.format(port=port))
            if status == 200 and body.get("ready"):
                return
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            pass  # not listening yet
        time.sleep(0.5)
    pytest.fail(f"not ready after {READY_TIMEOUT_S}s:\n{container.logs()}", pytrace=False)


def _serve(
    start_container: Callable[..., Container],
    image_config: dict[str, Any],
    model_dir: Path,
    *docker_args: str,
) -> int:
    """Run the image's own CMD on a free port (host networking shares the host's ports) over
    ``model_dir`` mounted read-only at /mnt/models; return the port once the model is ready."""
    command = list(image_config["Cmd"])
    port = free_port()
    command[command.index("--port") + 1] = str(port)
    public_key = Path(os.environ[signing.PUBLIC_KEY_ENV])
    container = start_container(
        command,
        docker_args=[
            "--volume",
            f"{model_dir}:/mnt/models:ro",
            "--volume",
            f"{public_key}:{PUBLIC_KEY_IN_CONTAINER}:ro",
            "--env",
            f"{signing.PUBLIC_KEY_ENV}={PUBLIC_KEY_IN_CONTAINER}",
            *docker_args,
        ],
    )
    _wait_until_ready(container, port)
    return port


@pytest.fixture(scope="module")
def fitted(real_patients: pd.DataFrame) -> tuple[Pipeline, pd.DataFrame]:
    """A LogisticRegression pipeline fitted on the first rows; the rest are held out."""
    train, held_out = real_patients.iloc[:TRAIN_ROWS], real_patients.iloc[TRAIN_ROWS:]
    features, target = features_and_target(train)
    return build_model_pipeline(LogisticRegression(max_iter=1000)).fit(features, target), held_out


@pytest.fixture(scope="module")
def model_dir(
    fitted: tuple[Pipeline, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    pipeline, held_out = fitted
    directory = tmp_path_factory.mktemp("container-model") / "model"
    write_model_dir(
        directory,
        model=pipeline,
        signature=signature.build_signature(signature.example_instances(held_out)),
        model_card="# Container test model\n\nFitted by tests/containers.\n",
        metadata={"version": MODEL_VERSION, "threshold": 0.5},
        signing_key=signing.private_key_from_env(),
    )
    # The container runs as uid 1000: the folder it mounts must be readable by others.
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)
    return directory


def test_default_command_serves_v1_predictions_equal_to_in_process(
    image_config_doc: dict[str, Any],
    start_container: Callable[..., Container],
    model_dir: Path,
    fitted: tuple[Pipeline, pd.DataFrame],
) -> None:
    pipeline, held_out = fitted
    # As Kubernetes may run it: a read-only root filesystem, an emptyDir-like /tmp.
    port = _serve(start_container, image_config_doc, model_dir, "--read-only", "--tmpfs", "/tmp")

    instances = signature.example_instances(held_out, count=5)
    assert any(instance["bmi"] is None for instance in instances)  # a missing value, too
    status, body = _http("POST", MODEL_URL.format(port=port) + ":predict", {"instances": instances})

    assert status == 200, body
    assert body["model_version"] == MODEL_VERSION
    served = np.array([prediction["probability"] for prediction in body["predictions"]])
    in_process = pipeline.predict_proba(
        pd.DataFrame(instances, columns=list(schema.FEATURE_COLUMNS))
    )[:, 1]
    np.testing.assert_allclose(served, in_process, rtol=0, atol=1e-6)


def test_bad_instance_is_a_400_naming_the_field(
    image_config_doc: dict[str, Any],
    start_container: Callable[..., Container],
    model_dir: Path,
    fitted: tuple[Pipeline, pd.DataFrame],
) -> None:
    _, held_out = fitted
    port = _serve(start_container, image_config_doc, model_dir)

    instance = signature.example_instances(held_out, count=1)[0] | {"age": "old"}
    status, body = _http(
        "POST", MODEL_URL.format(port=port) + ":predict", {"instances": [instance]}
    )

    assert status == 400, body
    assert "age" in json.dumps(body)
    status, body = _http("GET", MODEL_URL.format(port=port))
    assert (status, body.get("ready")) == (200, True)  # still serving
