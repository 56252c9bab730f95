"""The real model server over HTTP on 127.0.0.1: V1/V2 answers, precise 400s, load refusals,
request records, loading from s3:// through kserve-storage, and a clean stop."""

from __future__ import annotations

import http.client
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from stroke_mlops.registry.model_dir import MODEL_FILE
from stroke_mlops.serving.infra_validation import ServerProcess, v1_body, v2_body
from stroke_mlops.serving.request_log import stdout_summary
from stroke_mlops.serving.scoring import instances_to_frame
from tests.s3_server import S3Bucket
from tests.serving.model_dirs import (
    TEST_THRESHOLD,
    TEST_VERSION,
    copy_model_dir,
    write_test_model_dir,
)

pytestmark = pytest.mark.integration

V1 = "/v1/models/stroke:predict"
V2 = "/v2/models/stroke/infer"


def post(server: ServerProcess, path: str, body: bytes | dict[str, Any]) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, answer = server.request("POST", path, raw)
    return status, json.loads(answer)


@pytest.fixture(scope="module")
def sample(real_instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """200 real patients, including some with a missing bmi."""
    picked = real_instances[:190] + [i for i in real_instances if i["bmi"] is None][:10]
    assert sum(i["bmi"] is None for i in picked) >= 10
    return picked


def test_health_ready_and_metadata(lr_server: ServerProcess) -> None:
    assert lr_server.request("GET", "/v1/models/stroke") == (200, b'{"name":"stroke","ready":true}')
    assert lr_server.request("GET", "/v2/health/live")[0] == 200
    status, ready = lr_server.request("GET", "/v2/models/stroke/ready")
    assert (status, json.loads(ready)["ready"]) == (200, True)
    status, metadata = lr_server.request("GET", "/v2/models/stroke")
    inputs = {i["name"]: i["datatype"] for i in json.loads(metadata)["inputs"]}
    assert status == 200 and inputs["age"] == "FP64" and inputs["gender"] == "BYTES"
    assert lr_server.request("GET", "/v1/models/other")[0] == 404


def test_v1_answers_equal_the_pipeline(
    lr_server: ServerProcess, lr_pipeline: Pipeline, sample: list[dict[str, Any]]
) -> None:
    expected = lr_pipeline.predict_proba(instances_to_frame(sample))[:, 1]
    status, answer = post(lr_server, V1, v1_body(sample))

    assert status == 200
    assert answer["model_version"] == TEST_VERSION and answer["model_name"] == "stroke"
    probabilities = np.array([p["probability"] for p in answer["predictions"]])
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-6)
    assert [p["decision"] for p in answer["predictions"]] == (
        (expected >= TEST_THRESHOLD).astype(int).tolist()
    )


def test_v2_answers_equal_the_pipeline(
    lr_server: ServerProcess,
    lr_pipeline: Pipeline,
    sample: list[dict[str, Any]],
    signature_doc: dict[str, Any],
) -> None:
    expected = lr_pipeline.predict_proba(instances_to_frame(sample))[:, 1]
    status, answer = post(lr_server, V2, v2_body(sample, signature_doc))

    assert status == 200 and answer["model_version"] == TEST_VERSION
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert (outputs["probability"]["datatype"], outputs["probability"]["shape"]) == (
        "FP64",
        [len(sample)],
    )
    assert (outputs["decision"]["datatype"], outputs["decision"]["shape"]) == (
        "INT64",
        [len(sample)],
    )
    np.testing.assert_allclose(outputs["probability"]["data"], expected, rtol=0, atol=1e-6)
    assert outputs["decision"]["data"] == (expected >= TEST_THRESHOLD).astype(int).tolist()


def _v1_with(examples: list[dict[str, Any]], index: int, **change: Any) -> bytes:
    instances = [dict(examples[i % len(examples)]) for i in range(4)]
    instances[index].update(change)
    return v1_body(instances)


def _v2_with(signature_doc: dict[str, Any], name: str, **change: Any) -> bytes:
    body = json.loads(v2_body(signature_doc["examples"], signature_doc))
    for tensor in body["inputs"]:
        if tensor["name"] == name:
            tensor.update(change)
    return json.dumps(body).encode()


BAD_BODIES: list[tuple[str, str, Any, str]] = [
    ("v1-not-json", V1, b'{"instances": [', "the body is not valid JSON"),
    (
        "v1-nan-literal",
        V1,
        b'{"instances": [{"age": NaN}]}',
        'instance 0: field "gender" is missing',
    ),
    ("v1-no-instances", V1, b'{"rows": []}', 'missing "instances"'),
    ("v1-instances-object", V1, b'{"instances": {}}', '"instances" must be an array of objects'),
    ("v1-empty", V1, b'{"instances": []}', "no instances: expected at least one"),
    (
        "v1-string-age",
        V1,
        lambda ex, sig: _v1_with(ex, 2, age="67"),
        'instance 2: field "age": expected a number in [0, 120]; got "67"',
    ),
    (
        "v1-unknown-category",
        V1,
        lambda ex, sig: _v1_with(ex, 3, gender="F"),
        'instance 3: field "gender": expected one of Female, Male, Other; got "F"',
    ),
    (
        "v1-float-indicator",
        V1,
        lambda ex, sig: _v1_with(ex, 1, hypertension=1.5),
        'instance 1: field "hypertension": expected 0 or 1; got 1.5',
    ),
    (
        "v1-bool",
        V1,
        lambda ex, sig: _v1_with(ex, 0, heart_disease=True),
        'instance 0: field "heart_disease": expected 0 or 1; got true',
    ),
    (
        "v1-out-of-range",
        V1,
        lambda ex, sig: _v1_with(ex, 0, avg_glucose_level=5000),
        'instance 0: field "avg_glucose_level": expected a number in [20, 500]; got 5000',
    ),
    (
        "v1-unknown-field",
        V1,
        lambda ex, sig: _v1_with(ex, 0, sex="Male"),
        'instance 0: field "sex" is not an input of this model',
    ),
    ("v2-not-json", V2, b"{inputs", "the body is not valid JSON"),
    (
        "v2-no-shape",
        V2,
        b'{"inputs": [{"name": "age", "datatype": "FP64", "data": [1]}]}',
        'input "age": "shape" must be an array of non-negative integers',
    ),
    (
        "v2-wrong-datatype",
        V2,
        lambda ex, sig: _v2_with(sig, "age", datatype="FP32"),
        'input "age": datatype must be FP64',
    ),
    (
        "v2-shape",
        V2,
        lambda ex, sig: _v2_with(sig, "bmi", shape=[2]),
        'input "bmi": shape is [2] but data has 3 values',
    ),
    (
        "v2-nan",
        V2,
        lambda ex, sig: _v2_with(sig, "age", data=[float("nan"), 50.0, 60.0]),
        'instance 0: field "age": expected a number in [0, 120]; got NaN',
    ),
    (
        "v2-category",
        V2,
        lambda ex, sig: _v2_with(sig, "smoking_status", data=["x", "smokes", "smokes"]),
        'instance 0: field "smoking_status": expected one of Unknown, formerly smoked',
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "message"), [case[1:] for case in BAD_BODIES], ids=[c[0] for c in BAD_BODIES]
)
def test_a_bad_body_gets_a_precise_400_and_the_next_request_succeeds(
    lr_server: ServerProcess, signature_doc: dict[str, Any], path: str, body: Any, message: str
) -> None:
    examples = signature_doc["examples"]
    raw = body(examples, signature_doc) if callable(body) else body
    status, answer = lr_server.request("POST", path, raw)

    assert status == 400, answer
    assert message in json.loads(answer)["error"]
    assert post(lr_server, V1, v1_body(examples))[0] == 200
    assert post(lr_server, V2, v2_body(examples, signature_doc))[0] == 200


def test_a_persistent_connection_survives_bad_requests(
    lr_server: ServerProcess, signature_doc: dict[str, Any]
) -> None:
    connection = http.client.HTTPConnection(lr_server.host, lr_server.port, timeout=10)
    good = v1_body(signature_doc["examples"])
    statuses = []
    for body in (good, b"[]", good, b'{"instances": [{}]}', good):
        connection.request("POST", V1, body=body, headers={"content-type": "application/json"})
        response = connection.getresponse()
        response.read()
        statuses.append(response.status)
    connection.close()
    assert statuses == [200, 400, 200, 400, 200]


def test_each_request_goes_in_full_to_the_sink_and_as_metadata_to_stdout(
    lr_server: ServerProcess, request_log_dir: Path, signature_doc: dict[str, Any]
) -> None:
    request_id = f"test-{uuid.uuid4().hex}"
    connection = http.client.HTTPConnection(lr_server.host, lr_server.port, timeout=10)
    connection.request(
        "POST",
        V1,
        body=v1_body(signature_doc["examples"]),
        headers={"content-type": "application/json", "x-request-id": request_id},
    )
    response = connection.getresponse()
    answer = json.loads(response.read())
    prediction_header = response.getheader("x-prediction-id")
    connection.request(
        "POST",
        V2,
        body=v2_body(signature_doc["examples"], signature_doc),
        headers={"content-type": "application/json", "x-request-id": request_id},
    )
    v2_response = connection.getresponse()
    v2_response.read()
    connection.close()

    def find(text: str) -> dict[str, Any] | None:
        for line in text.splitlines():
            record = json.loads(line)  # every stdout line is a JSON record
            if record.get("request_id") == request_id:
                return dict(record)
        return None

    deadline = time.monotonic() + 30
    stdout_record = sink_record = None
    while (stdout_record is None or sink_record is None) and time.monotonic() < deadline:
        stdout_record = find(lr_server.stdout_path.read_text())
        sink_files = sorted(request_log_dir.rglob("*.jsonl"))
        sink_record = find("".join(p.read_text() for p in sink_files))
        time.sleep(0.1)

    assert stdout_record is not None and sink_record is not None
    assert stdout_record == stdout_summary(sink_record)  # stdout: metadata only
    assert "inputs" not in stdout_record and "outputs" not in stdout_record
    assert stdout_record["positives"] == sum(p["decision"] for p in answer["predictions"])
    assert sink_record["status"] == "ok" and sink_record["model_version"] == TEST_VERSION
    probabilities = [p["probability"] for p in answer["predictions"]]
    assert sink_record["outputs"]["probability"] == probabilities
    assert sink_record["inputs"]["gender"] == [e["gender"] for e in signature_doc["examples"]]
    assert isinstance(sink_record["latency_ms"], float)
    # the predictor's own id for this prediction: answered, logged, never the client's
    assert re.fullmatch(r"[0-9a-f]{32}", answer["prediction_id"])
    assert prediction_header == answer["prediction_id"] == sink_record["prediction_id"]
    assert stdout_record["prediction_id"] == answer["prediction_id"]
    assert sink_record["request_id"] == request_id  # the client's, kept for correlation
    v2_id = v2_response.getheader("x-prediction-id")
    assert v2_id is not None and re.fullmatch(r"[0-9a-f]{32}", v2_id) and v2_id != prediction_header


def test_a_tampered_model_is_refused_at_load(lr_model_dir: Path, tmp_path: Path) -> None:
    tampered = copy_model_dir(lr_model_dir, tmp_path / "tampered")
    data = bytearray((tampered / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tampered / MODEL_FILE).write_bytes(bytes(data))

    with ServerProcess(str(tampered)) as server:
        ready, why = server.wait_ready(60)
        assert not ready
        assert "exited with status 1" in why
        assert "signature check failed: changed since signing: model.skops" in server.log_tail()
        assert server.stdout_path.read_text() == ""


def test_loads_from_s3_through_kserve_storage_and_stops_cleanly(
    s3_bucket: S3Bucket,
    lr_pipeline: Pipeline,
    xgb_model_dir: Path,
    signature_doc: dict[str, Any],
    tmp_path: Path,
    real_patients: pd.DataFrame,
) -> None:
    wanted = write_test_model_dir(tmp_path / "v1", lr_pipeline, signature_doc, version="s3-1")
    for directory, prefix in (
        (wanted, "stroke/versions/1/"),
        (xgb_model_dir, "stroke/versions/10/"),
    ):
        for path in directory.iterdir():  # a version "10" beside "1" must not leak into it
            s3_bucket.client.fput_object(s3_bucket.name, prefix + path.name, str(path))

    server = ServerProcess(s3_bucket.uri("stroke/versions/1"))
    try:
        server.start()
        ready, why = server.wait_ready(90)
        assert ready, f"{why}\n{server.log_tail()}"
        status, answer = post(server, V1, v1_body(signature_doc["examples"]))
        expected = lr_pipeline.predict_proba(instances_to_frame(signature_doc["examples"]))[:, 1]
        assert status == 200 and answer["model_version"] == "s3-1"
        np.testing.assert_allclose(
            [p["probability"] for p in answer["predictions"]], expected, rtol=0, atol=1e-6
        )
        assert server.stop() == 0  # SIGTERM: a clean exit, as Kubernetes expects
    finally:
        server.cleanup()


def test_a_missing_s3_model_is_refused(s3_bucket: S3Bucket) -> None:
    with ServerProcess(s3_bucket.uri("stroke/versions/404")) as server:
        ready, why = server.wait_ready(90)
        assert not ready and "exited with status 1" in why
        assert "cannot load the model" in server.log_tail()
