"""Patient data stays out of the logs, over real HTTP: stdout carries metadata only, every refused
request reaches the request-log store with a bounded reason, echoed values and client request ids
are bounded, and the Prometheus metrics on /metrics move with the traffic."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stroke_mlops.serving.infra_validation import ServerProcess, v1_body, v2_body
from tests.s3_server import S3Bucket

pytestmark = pytest.mark.integration

V1 = "/v1/models/stroke:predict"
V2 = "/v2/models/stroke/infer"
WAIT_S = 30.0  # bound for the sink's 1 s flush; never asserted as a speed


def send(
    server: ServerProcess,
    path: str,
    body: bytes,
    *,
    request_id: str | None = None,
    content_type: str = "application/json",
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        headers = {"content-type": content_type}
        if request_id is not None:
            headers["x-request-id"] = request_id
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def sink_records(log_dir: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(log_dir.rglob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def stdout_records(server: ServerProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.stdout_path.read_text().splitlines()]


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the request records did not arrive")
        time.sleep(0.1)


def records_by_id(log_dir: Path, ids: set[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def all_there() -> bool:
        found.clear()
        found.update({r["request_id"]: r for r in sink_records(log_dir) if r["request_id"] in ids})
        return set(found) == ids

    wait_for(all_there)
    return found


def with_value(signature_doc: dict[str, Any], **change: Any) -> bytes:
    instance = {**signature_doc["examples"][0], **change}
    return v1_body([instance])


def v2_with(signature_doc: dict[str, Any], name: str, **change: Any) -> bytes:
    body = json.loads(v2_body(signature_doc["examples"], signature_doc))
    for tensor in body["inputs"]:
        if tensor["name"] == name:
            tensor.update(change)
    return json.dumps(body).encode()


def test_features_go_to_the_private_store_and_never_to_stdout_or_stderr(
    lr_server: ServerProcess, request_log_dir: Path, signature_doc: dict[str, Any]
) -> None:
    ok_id, bad_id = f"ok-{uuid.uuid4().hex}", f"bad-{uuid.uuid4().hex}"
    status, _ = send(
        lr_server,
        V1,
        with_value(signature_doc, avg_glucose_level=123.4567, bmi=27.3456),
        request_id=ok_id,
    )
    assert status == 200
    status, _ = send(
        lr_server, V1, with_value(signature_doc, gender="PATIENTGENDERXYZ"), request_id=bad_id
    )
    assert status == 400

    stored = records_by_id(request_log_dir, {ok_id, bad_id})
    assert stored[ok_id]["inputs"]["avg_glucose_level"] == [123.4567]  # the store has them
    assert "PATIENTGENDERXYZ" in stored[bad_id]["error"]
    logs = lr_server.stdout_path.read_text() + lr_server.stderr_path.read_text()
    for value in ("123.4567", "27.3456", "PATIENTGENDERXYZ"):
        assert value not in logs
    shown = {r["request_id"]: r for r in stdout_records(lr_server)}
    assert shown[ok_id]["status"] == "ok" and shown[ok_id]["instances"] == 1
    assert (shown[bad_id]["status"], shown[bad_id]["reason"]) == ("invalid", "invalid_value")

    store_files = [p for p in request_log_dir.rglob("*") if p.is_file()]
    assert store_files and {p.stat().st_mode & 0o777 for p in store_files} == {0o600}
    folders = [p for p in request_log_dir.rglob("*") if p.is_dir()]
    assert {p.stat().st_mode & 0o777 for p in folders} == {0o700}


REFUSALS: list[tuple[str, str, Any, str, int, str]] = [
    # name, path, body, content type, expected status, expected reason
    ("v1-not-json", V1, b'{"instances": [', "application/json", 400, "malformed_json"),
    ("v1-nan-literal", V1, b'{"instances": [{"age": NaN}]}', "application/json", 400,
     "missing_field"),  # NaN parses; the instance lacks the other nine fields
    ("v1-not-json-as-text", V1, b"instances=1", "text/plain", 400, "malformed_json"),
    ("v1-no-instances", V1, b'{"rows": []}', "application/json", 400, "malformed_body"),
    ("v1-empty", V1, b'{"instances": []}', "application/json", 400, "no_instances"),
    ("v1-missing-field", V1, b'{"instances": [{"age": 50}]}', "application/json", 400,
     "missing_field"),
    ("v1-unknown-field", V1, lambda sig: with_value(sig, sex="Male"), "application/json", 400,
     "unknown_field"),
    ("v1-bad-value", V1, lambda sig: with_value(sig, age=500), "application/json", 400,
     "invalid_value"),
    ("v2-not-json", V2, b"{inputs", "application/json", 400, "malformed_json"),
    ("v2-no-shape", V2, b'{"inputs": [{"name": "age", "datatype": "FP64", "data": [1]}]}',
     "application/json", 400, "invalid_tensor"),
    ("v2-datatype", V2, lambda sig: v2_with(sig, "age", datatype="FP32"), "application/json",
     400, "invalid_tensor"),
    ("v2-shape", V2, lambda sig: v2_with(sig, "bmi", shape=[2]), "application/json", 400,
     "invalid_tensor"),
    ("v1-unknown-model", "/v1/models/other:predict", b'{"instances": []}', "application/json",
     404, "unknown_model"),
    ("v2-unknown-model", "/v2/models/other/infer", b'{"inputs": []}', "application/json", 404,
     "unknown_model"),
]  # fmt: skip


def test_every_refused_request_is_recorded_with_a_bounded_reason(
    lr_server: ServerProcess, request_log_dir: Path, signature_doc: dict[str, Any]
) -> None:
    ids: dict[str, str] = {}
    answered: dict[str, int] = {}
    for name, path, body, content_type, _, _ in REFUSALS:
        ids[name] = f"{name}-{uuid.uuid4().hex}"
        raw = body(signature_doc) if callable(body) else body
        answered[name], _ = send(
            lr_server, path, raw, request_id=ids[name], content_type=content_type
        )

    stored = records_by_id(request_log_dir, set(ids.values()))
    found = {
        name: (answered[name], stored[ids[name]]["http_status"], stored[ids[name]]["reason"])
        for name in ids
    }
    assert found == {name: (status, status, reason) for name, *_, status, reason in REFUSALS}
    assert all(stored[i]["status"] == "invalid" and stored[i]["error"] for i in ids.values())
    shown = {r["request_id"]: r for r in stdout_records(lr_server)}
    assert {name: shown[ids[name]]["reason"] for name in ids} == {
        name: reason for name, *_, reason in REFUSALS
    }
    assert not any("error" in shown[i] for i in ids.values())


def test_echoed_values_are_capped(
    lr_server: ServerProcess, request_log_dir: Path, signature_doc: dict[str, Any]
) -> None:
    long_value = "Z" * 200_000  # a V2 datatype is quoted back; before the cap, in full
    request_id = f"long-{uuid.uuid4().hex}"
    status, answer = send(
        lr_server, V2, v2_with(signature_doc, "age", datatype=long_value), request_id=request_id
    )
    assert status == 400 and len(json.loads(answer)["error"]) < 1_500

    huge = int("9" * 100)
    # as text/plain the body reaches predict() unparsed, and Python's json keeps the integer
    status, answer = send(
        lr_server, V1, with_value(signature_doc, age=huge), content_type="text/plain"
    )
    assert status == 400
    assert "an integer of about 100 digits" in json.loads(answer)["error"]
    assert "9" * 30 not in answer.decode()

    stored = records_by_id(request_log_dir, {request_id})
    assert len(stored[request_id]["error"]) < 1_500


def test_client_request_ids_are_bounded_and_replacements_are_logged(
    lr_server: ServerProcess, signature_doc: dict[str, Any]
) -> None:
    good = f"client-{uuid.uuid4().hex}"
    too_long = "L" * 300
    odd = 'id with spaces <and> quotes"'
    for request_id in (good, too_long, odd):
        status, _ = send(lr_server, V1, v1_body(signature_doc["examples"]), request_id=request_id)
        assert status == 200

    lines = lr_server.stdout_path.read_text()
    assert "L" * 129 not in lines and "<and>" not in lines
    shown = stdout_records(lr_server)
    assert any(r["request_id"] == good and "request_id_replaced" not in r for r in shown)
    replaced = [r for r in shown if "request_id_replaced" in r]
    whys = [r["request_id_replaced"] for r in replaced[-2:]]
    assert whys == ["longer than 128 characters (300)", "characters outside A-Za-z0-9._:@/+=-"]
    assert all(len(r["request_id"]) == 32 for r in replaced[-2:])


# --------------------------------------------------------------------------------------------
# Prometheus metrics on KServe's /metrics


def scrape(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = server.request("GET", "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_appear_on_the_metrics_endpoint_and_move(
    lr_server: ServerProcess, signature_doc: dict[str, Any]
) -> None:
    examples = signature_doc["examples"]
    missing_bmi = sum(e["bmi"] is None for e in examples)
    assert missing_bmi >= 1
    before = scrape(lr_server)

    status, answer = send(lr_server, V1, v1_body(examples))
    assert status == 200
    positives = sum(p["decision"] for p in json.loads(answer)["predictions"])
    assert send(lr_server, V2, v2_body(examples, signature_doc))[0] == 200
    assert send(lr_server, V1, with_value(signature_doc, age=500))[0] == 400
    assert send(lr_server, V1, b'{"instances": [')[0] == 400
    wait_for(lambda: value(scrape(lr_server), "stroke_request_log_written_records_total") > 0)
    after = scrape(lr_server)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    version = "test-1"
    assert moved("stroke_accepted_requests_total", model_version=version) == 2
    assert moved("stroke_predictions_total", model_version=version, decision="1") == 2 * positives
    assert moved("stroke_predictions_total", model_version=version, decision="0") == 2 * (
        len(examples) - positives
    )
    assert moved("stroke_prediction_score_count", model_version=version) == 2 * len(examples)
    assert moved("stroke_prediction_score_bucket", model_version=version, le="+Inf") == 2 * len(
        examples
    )
    assert moved("stroke_refused_requests_total", reason="invalid_value") == 1
    assert moved("stroke_refused_requests_total", reason="malformed_json") == 1
    assert moved("stroke_missing_values_total", feature="bmi") == 2 * missing_bmi
    assert ("stroke_missing_values_total", (("feature", "age"),)) in after
    for cause in ("queue_full", "closed", "write_failed"):
        assert ("stroke_request_log_dropped_records_total", (("cause", cause),)) in after
    assert value(after, "stroke_request_log_write_failures_total") == 0


def test_request_log_write_failures_show_on_metrics(
    lr_model_dir: Path, s3_bucket: S3Bucket, signature_doc: dict[str, Any]
) -> None:
    missing_bucket = f"s3://{s3_bucket.name}-does-not-exist/requests"
    with ServerProcess(
        str(lr_model_dir), extra_args=["--request-log-uri", missing_bucket]
    ) as server:
        ready, why = server.wait_ready(90)
        assert ready, f"{why}\n{server.log_tail()}"
        assert send(server, V1, v1_body(signature_doc["examples"]))[0] == 200
        wait_for(lambda: value(scrape(server), "stroke_request_log_write_failures_total") >= 1)
        samples = scrape(server)
        assert value(samples, "stroke_request_log_dropped_records_total", cause="write_failed") == 1
        assert value(samples, "stroke_request_log_written_records_total") == 0


def test_a_body_refused_by_the_size_limit_is_recorded_too(
    lr_server: ServerProcess, request_log_dir: Path
) -> None:
    import socket

    request_id = f"huge-{uuid.uuid4().hex}"
    with socket.create_connection((lr_server.host, lr_server.port), timeout=10) as connection:
        connection.sendall(
            f"POST {V1} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"x-request-id: {request_id}\r\nContent-Length: 999999999999\r\n\r\n".encode()
        )
        answer = connection.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413")

    stored = records_by_id(request_log_dir, {request_id})[request_id]
    assert (stored["http_status"], stored["reason"], stored["status"]) == (
        413,
        "body_too_large",
        "invalid",
    )
