"""``POST /v1/models/stroke:explain`` on the real server: KServe's explain verb with predict's
validation, limits and private request record."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from stroke_mlops.serving.http_limits import limits_for
from stroke_mlops.serving.infra_validation import ServerProcess, v1_body
from stroke_mlops.serving.request_log import stdout_summary

pytestmark = pytest.mark.integration

EXPLAIN = "/v1/models/stroke:explain"
PREDICT = "/v1/models/stroke:predict"


def post(server: ServerProcess, path: str, body: bytes, request_id: str | None = None) -> Any:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        headers = {"content-type": "application/json"}
        if request_id:
            headers["x-request-id"] = request_id
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_explain_answers_with_the_predictions_and_contributions_that_add_up(
    lr_server: ServerProcess, real_instances: list[dict[str, Any]]
) -> None:
    rows = real_instances[:200]
    status, explained = post(lr_server, EXPLAIN, v1_body(rows))
    assert status == 200, explained
    status, predicted = post(lr_server, PREDICT, v1_body(rows))
    assert status == 200

    assert explained["model_version"] == predicted["model_version"]
    for explanation, prediction in zip(
        explained["explanations"], predicted["predictions"], strict=True
    ):
        assert explanation["probability"] == prediction["probability"]
        assert explanation["decision"] == prediction["decision"]
        assert explanation["output"] == "probability"
        assert len(explanation["contributions"]) == 10
        total = explanation["base_value"] + sum(explanation["contributions"].values())
        assert total == pytest.approx(explanation["probability"], abs=1e-6)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (lambda e: v1_body([{**e[0], "age": 300}]), 'instance 0: field "age": expected a number'),
        (lambda e: b'{"instances": [], "instances": []}', "appears twice"),
        (lambda e: v1_body([{**e[0], "colour": "red"}]), "colour"),
    ],
    ids=["out of range", "duplicate key (strict JSON)", "unknown field"],
)
def test_explain_refuses_bad_input_as_predict_does(
    lr_server: ServerProcess, signature_doc: dict[str, Any], body: Any, message: str
) -> None:
    raw = body(signature_doc["examples"])
    explain_status, explain_answer = post(lr_server, EXPLAIN, raw)
    predict_status, predict_answer = post(lr_server, PREDICT, raw)
    assert (explain_status, predict_status) == (400, 400)
    assert message in explain_answer["error"]
    assert explain_answer == predict_answer


def test_explain_has_predicts_row_and_body_limits(
    lr_server: ServerProcess, signature_doc: dict[str, Any]
) -> None:
    limits = limits_for()
    too_many = v1_body([signature_doc["examples"][0]] * (limits.max_instances + 1))
    status, answer = post(lr_server, EXPLAIN, too_many)
    assert status == 400 and str(limits.max_instances) in answer["error"]
    connection = http.client.HTTPConnection(lr_server.host, lr_server.port, timeout=30)
    try:  # announce a body one byte too large: refused before it is sent
        connection.putrequest("POST", EXPLAIN)
        connection.putheader("content-type", "application/json")
        connection.putheader("content-length", str(limits.max_body_bytes + 1))
        connection.endheaders()
        assert connection.getresponse().status == 413
    finally:
        connection.close()


def test_explanations_go_to_the_private_store_and_only_metadata_to_stdout(
    lr_server: ServerProcess, request_log_dir: Path, signature_doc: dict[str, Any]
) -> None:
    request_id = f"explain-{uuid.uuid4().hex}"
    status, answer = post(lr_server, EXPLAIN, v1_body(signature_doc["examples"]), request_id)
    assert status == 200

    def find(text: str) -> dict[str, Any] | None:
        for line in text.splitlines():
            record = json.loads(line)
            if record.get("request_id") == request_id:
                return dict(record)
        return None

    deadline = time.monotonic() + 30
    stdout_record = sink_record = None
    while (stdout_record is None or sink_record is None) and time.monotonic() < deadline:
        stdout_record = find(lr_server.stdout_path.read_text())
        sink_record = find("".join(p.read_text() for p in sorted(request_log_dir.rglob("*.jsonl"))))
        time.sleep(0.1)
    assert stdout_record is not None and sink_record is not None
    assert stdout_record == stdout_summary(sink_record)
    assert stdout_record["verb"] == "explain"
    assert "inputs" not in stdout_record and "outputs" not in stdout_record
    assert sink_record["status"] == "ok" and sink_record["verb"] == "explain"
    assert sink_record["inputs"]["age"] == [e["age"] for e in signature_doc["examples"]]
    first = answer["explanations"][0]
    assert sink_record["outputs"]["probability"][0] == first["probability"]
    assert sink_record["outputs"]["contributions"]["age"][0] == first["contributions"]["age"]
