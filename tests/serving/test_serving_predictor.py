"""The kserve.Model subclass without a server: load checks, one path for V1 and V2, logging."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferInput, InferRequest, InferResponse, RequestedOutput
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline

from stroke_mlops.registry.model_dir import MODEL_FILE
from stroke_mlops.serving.loading import ModelLoadError
from stroke_mlops.serving.model import StrokeModel
from stroke_mlops.serving.request_log import RequestLogger
from stroke_mlops.serving.scoring import instances_to_frame
from tests.serving.model_dirs import (
    TEST_THRESHOLD,
    TEST_VERSION,
    copy_model_dir,
    fit_pipeline,
    write_test_model_dir,
)


class RecordSink:
    """Stands in for the RequestLogSink: keeps every full record it is given."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def submit(self, line: bytes) -> bool:
        self.lines.append(line)
        return True

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def log_stream() -> io.StringIO:
    return io.StringIO()


@pytest.fixture(scope="module")
def log_sink() -> RecordSink:
    return RecordSink()


@pytest.fixture(scope="module")
def model(lr_model_dir: Path, log_stream: io.StringIO, log_sink: RecordSink) -> StrokeModel:
    logger = RequestLogger(stream=log_stream, sink=log_sink)  # type: ignore[arg-type]
    loaded = StrokeModel(str(lr_model_dir), request_logger=logger)
    assert loaded.load() is True
    return loaded


def last_record(sink: RecordSink) -> dict[str, Any]:
    return dict(json.loads(sink.lines[-1]))


def last_stdout_line(stream: io.StringIO) -> dict[str, Any]:
    return dict(json.loads(stream.getvalue().splitlines()[-1]))


def v2_request(instances: list[dict[str, Any]], signature_doc: dict[str, Any]) -> InferRequest:
    inputs = [
        InferInput(
            spec["name"], [len(instances)], spec["datatype"], [i[spec["name"]] for i in instances]
        )
        for spec in signature_doc["inputs"]
    ]
    return InferRequest(model_name="stroke", infer_inputs=inputs, request_id="v2-req")


def test_load_verifies_compiles_and_sets_ready(model: StrokeModel) -> None:
    assert model.ready is True
    assert model.name == "stroke"
    assert model.compiled is not None and model.compiled.version == TEST_VERSION
    assert [t["name"] for t in model.get_output_types()] == ["probability", "decision"]
    assert {t["datatype"] for t in model.get_input_types()} == {"FP64", "INT64", "BYTES"}


def test_v1_and_v2_go_through_one_path_to_the_same_answer(
    model: StrokeModel,
    lr_pipeline: Pipeline,
    signature_doc: dict[str, Any],
    log_sink: RecordSink,
) -> None:
    examples = signature_doc["examples"]
    expected = lr_pipeline.predict_proba(instances_to_frame(examples))[:, 1]

    v1 = model.predict({"instances": examples}, headers={"x-request-id": "req-1"})
    assert isinstance(v1, dict) and v1["model_version"] == TEST_VERSION
    v1_record = last_record(log_sink)
    v2 = model.predict(v2_request(examples, signature_doc))
    assert isinstance(v2, InferResponse)
    v2_body, _ = v2.to_rest()

    np.testing.assert_allclose([p["probability"] for p in v1["predictions"]], expected, atol=1e-9)
    outputs = {o["name"]: o for o in v2_body["outputs"]}
    assert outputs["probability"]["datatype"] == "FP64"
    assert outputs["decision"]["datatype"] == "INT64"
    assert outputs["probability"]["shape"] == [len(examples)]
    assert outputs["probability"]["data"] == [p["probability"] for p in v1["predictions"]]
    assert outputs["decision"]["data"] == [int(p >= TEST_THRESHOLD) for p in expected]
    assert v2_body["model_version"] == TEST_VERSION and v2_body["id"] == "v2-req"

    assert v1_record["request_id"] == "req-1" and v1_record["status"] == "ok"
    assert v1_record["protocol"] == "v1" and v1_record["instances"] == len(examples)
    assert v1_record["inputs"]["age"] == [e["age"] for e in examples]
    assert v1_record["outputs"]["probability"] == [p["probability"] for p in v1["predictions"]]
    assert v1_record["latency_ms"] >= 0
    v2_record = last_record(log_sink)
    assert v2_record["protocol"] == "v2" and v2_record["request_id"] == "v2-req"


def test_bad_input_raises_invalid_input_and_is_logged(
    model: StrokeModel,
    signature_doc: dict[str, Any],
    log_stream: io.StringIO,
    log_sink: RecordSink,
) -> None:
    bad = {**signature_doc["examples"][0], "gender": "F"}
    with pytest.raises(InvalidInput) as caught:
        model.predict({"instances": [signature_doc["examples"][0], bad]})
    assert str(caught.value) == (
        'instance 1: field "gender": expected one of Female, Male, Other; got "F"'
    )
    record = last_record(log_sink)
    assert record["status"] == "invalid" and record["error"] == str(caught.value)
    assert (record["http_status"], record["reason"]) == (400, "invalid_value")
    assert "inputs" not in record
    shown = last_stdout_line(log_stream)  # stdout: the reason, never the message quoting "F"
    assert (shown["request_id"], shown["reason"]) == (record["request_id"], "invalid_value")
    assert "error" not in shown and '"F"' not in log_stream.getvalue()
    # the model keeps answering
    assert model.predict({"instances": signature_doc["examples"][:1]})["predictions"]


def test_a_raw_body_is_parsed_or_refused(model: StrokeModel, signature_doc: dict[str, Any]) -> None:
    raw = json.dumps({"instances": signature_doc["examples"][:1]}).encode()
    assert len(model.predict(raw)["predictions"]) == 1
    with pytest.raises(InvalidInput, match="the body is not valid JSON"):
        model.predict(b"instances=1")


def test_v2_unknown_requested_output_is_refused(
    model: StrokeModel, signature_doc: dict[str, Any]
) -> None:
    request = v2_request(signature_doc["examples"], signature_doc)
    request.request_outputs = [RequestedOutput("score")]
    with pytest.raises(InvalidInput, match='output "score" is not an output of this model'):
        model.predict(request)


def test_start_does_not_make_an_unloaded_model_ready(lr_model_dir: Path) -> None:
    unloaded = StrokeModel(str(lr_model_dir), request_logger=RequestLogger(stream=None))
    unloaded.start()
    assert unloaded.ready is False


def test_a_tampered_model_file_is_refused_before_deserializing(
    lr_model_dir: Path, tmp_path: Path
) -> None:
    tampered = copy_model_dir(lr_model_dir, tmp_path / "tampered")
    with (tampered / MODEL_FILE).open("ab") as handle:
        handle.write(b"\0")
    model = StrokeModel(str(tampered), request_logger=RequestLogger(stream=None))
    with pytest.raises(
        ModelLoadError,
        match=r"signature check failed: changed since signing: model\.skops; refusing to load",
    ):
        model.load()
    assert model.ready is False and model.compiled is None


def test_a_second_model_file_is_refused(lr_model_dir: Path, tmp_path: Path) -> None:
    doubled = copy_model_dir(lr_model_dir, tmp_path / "doubled")
    (doubled / "other.pkl").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match=r"signature check failed: not signed: other\.pkl"):
        StrokeModel(str(doubled), request_logger=RequestLogger(stream=None)).load()


def test_an_unknown_pipeline_shape_is_refused(
    real_patients: Any, signature_doc: dict[str, Any], tmp_path: Path
) -> None:
    naive_bayes = fit_pipeline(real_patients, GaussianNB())
    directory = write_test_model_dir(tmp_path / "naive-bayes", naive_bayes, signature_doc)
    with pytest.raises(ModelLoadError, match="cannot compile classifier GaussianNB"):
        StrokeModel(str(directory), request_logger=RequestLogger(stream=None)).load()


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such model directory"):
        StrokeModel(str(tmp_path / "nowhere"), request_logger=RequestLogger(stream=None)).load()


def test_a_grpc_shaped_request_goes_through_the_same_path(
    model: StrokeModel, signature_doc: dict[str, Any], log_sink: RecordSink
) -> None:
    from kserve.protocol.grpc.grpc_predict_v2_pb2 import ModelInferRequest

    examples = [e for e in signature_doc["examples"] if e["bmi"] is not None]
    message = ModelInferRequest(model_name="stroke", id="grpc-1")
    for spec in signature_doc["inputs"]:
        tensor = message.inputs.add(name=spec["name"], datatype=spec["datatype"])
        tensor.shape.append(len(examples))
        values = [e[spec["name"]] for e in examples]
        if spec["datatype"] == "FP64":
            tensor.contents.fp64_contents.extend(values)
        elif spec["datatype"] == "INT64":
            tensor.contents.int64_contents.extend(values)
        else:
            tensor.contents.bytes_contents.extend(v.encode() for v in values)

    response = model.predict(InferRequest.from_grpc(message))
    v1 = model.predict({"instances": examples})

    assert isinstance(response, InferResponse)
    probability = response.get_output_by_name("probability")
    assert probability is not None
    assert list(probability.data) == [p["probability"] for p in v1["predictions"]]
    record = json.loads(log_sink.lines[-2])
    assert record["request_id"] == "grpc-1"
    assert record["inputs"]["gender"] == [e["gender"] for e in examples]  # bytes logged as text


def test_kserve_runs_a_request_through_preprocess_predict_and_postprocess(
    model: StrokeModel, signature_doc: dict[str, Any], log_sink: RecordSink
) -> None:
    """Decoding and the shape of the columns in preprocess(), values and scores in predict(),
    the response and its record in postprocess(): KServe's own steps, run by Model.__call__."""
    import asyncio

    examples = signature_doc["examples"]
    body = json.dumps({"instances": examples}).encode()
    scoring = model.preprocess(body, {"x-request-id": "steps-1"})
    assert scoring.count == len(examples) and scoring.predictions is None
    assert list(scoring.columns) == [spec["name"] for spec in signature_doc["inputs"]]
    assert model.predict(scoring) is scoring and scoring.predictions is not None
    bad = {**examples[0], "age": 500}
    refused = model.preprocess(json.dumps({"instances": [bad]}).encode())  # shape is fine
    with pytest.raises(InvalidInput, match='field "age"'):
        model.predict(refused)
    response, _ = asyncio.run(model(body, headers={"x-request-id": "steps-2"}))
    direct = model.postprocess(scoring)
    # the same answer, each with its own prediction id (issued per answered request)
    assert response.pop("prediction_id") != direct.pop("prediction_id")
    assert response == direct
    assert last_record(log_sink)["request_id"] == "steps-1"
