"""The whole pipeline in the project image (kfp.local.DockerRunner, host network) against the
S3 stand-in, then the predictor container serving the promoted model fetched from S3."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines.local_runner import run_locally
from stroke_mlops.registry import model_dir, signing
from stroke_mlops.registry.store import open_store
from tests.s3_server import TEST_ACCESS_KEY, TEST_REGION, TEST_SECRET_KEY, S3Bucket

pytestmark = pytest.mark.containers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_pipeline_in_containers_then_predictor_container_from_s3(
    image: str,
    s3_bucket: S3Bucket,
    real_csv_bytes: bytes,
    tmp_path: Path,
    start_container: Callable[..., Any],
) -> None:
    data_uri = s3_bucket.put("data/healthcare-dataset-stroke-data.csv", real_csv_bytes)
    store_uri = s3_bucket.uri("models")
    summary = run_locally(
        data_uri=data_uri,
        store_uri=store_uri,
        runner="docker",
        pipeline_root=str(tmp_path / "outputs"),
    )
    assert summary.succeeded, summary.render()
    assert all(step.status == "SUCCESS" for step in summary.steps)
    store = open_store(store_uri)
    pointer = store.production()
    assert pointer is not None and pointer.version == summary.outputs["published"]

    # The predictor container downloads the promoted version from S3 itself (kserve-storage).
    local = model_dir.open_signed_model_dir(
        store.download_version(pointer.version, tmp_path / "m"),
        signing.public_key_from_env(),
    )
    example = local.signature["examples"][0]
    expected = float(local.load_model().predict_proba(pd.DataFrame([example]))[0, 1])
    port = _free_port()
    env = {
        "AWS_ENDPOINT_URL": s3_bucket.endpoint_url,
        "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
        "AWS_REGION": TEST_REGION,
        "S3_USE_HTTPS": "0",
    }
    # As in the ServingRuntime: the public key mounted read-only, its path in the environment.
    public_key_in_container = "/etc/stroke-mlops/signing/public-key.pem"
    env[signing.PUBLIC_KEY_ENV] = public_key_in_container
    start_container(
        ["stroke-mlops", "serve", "--model-uri", pointer.uri, "--port", str(port)],
        docker_args=[
            "--volume",
            f"{signing.public_key_from_env()}:{public_key_in_container}:ro",
            *(arg for key, value in env.items() for arg in ("-e", f"{key}={value}")),
        ],
    )
    url = f"http://127.0.0.1:{port}/v1/models/stroke:predict"
    deadline = time.monotonic() + 90
    while True:
        try:
            status, body = _post(url, {"instances": [example]})
            if status == 200:
                break
        except (urllib.error.URLError, ConnectionError):
            pass
        assert time.monotonic() < deadline, "the predictor container never answered"
        time.sleep(1)
    prediction = body["predictions"][0]
    assert prediction["probability"] == pytest.approx(expected, abs=1e-6)
    assert body.get("model_version", prediction.get("model_version")) == pointer.version
