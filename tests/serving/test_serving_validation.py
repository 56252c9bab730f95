"""Request validation without a server: V1/V2 parsing and the precise error messages."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kserve.protocol.infer_type import InferInput
from sklearn.pipeline import Pipeline

from stroke_mlops.serving import protocol
from stroke_mlops.serving.protocol import InvalidRequestError
from stroke_mlops.serving.scoring import CompiledModel, compile_model, instances_to_frame
from tests.serving.model_dirs import TEST_THRESHOLD, TEST_VERSION


@pytest.fixture(scope="module")
def compiled(lr_pipeline: Pipeline, signature_doc: dict[str, Any]) -> CompiledModel:
    return compile_model(lr_pipeline, signature_doc, threshold=TEST_THRESHOLD, version=TEST_VERSION)


@pytest.fixture
def examples(signature_doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(e) for e in signature_doc["examples"]]


def v1_error(compiled: CompiledModel, body: Any) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        columns, count = protocol.columns_from_v1(body, compiled.specs)
        compiled.predict(columns, count)
    return str(caught.value)


def v2_tensors(instances: list[dict[str, Any]], signature_doc: dict[str, Any]) -> list[InferInput]:
    return [
        InferInput(
            name=spec["name"],
            shape=[len(instances)],
            datatype=spec["datatype"],
            data=[i[spec["name"]] for i in instances],
        )
        for spec in signature_doc["inputs"]
    ]


def v2_error(compiled: CompiledModel, tensors: list[InferInput]) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        columns, count = protocol.columns_from_v2(tensors, compiled.specs)
        compiled.predict(columns, count)
    return str(caught.value)


def test_v1_instances_get_probability_decision_and_version(
    compiled: CompiledModel, lr_pipeline: Pipeline, examples: list[dict[str, Any]]
) -> None:
    predictions = compiled.predict_instances(examples)
    expected = lr_pipeline.predict_proba(instances_to_frame(examples))[:, 1]

    np.testing.assert_allclose(predictions.probabilities, expected, rtol=0, atol=1e-9)
    assert predictions.decisions.tolist() == [int(p >= TEST_THRESHOLD) for p in expected]
    body = predictions.v1_body()
    assert body["model_version"] == TEST_VERSION
    assert [set(p) for p in body["predictions"]] == [{"probability", "decision"}] * len(examples)


def test_null_bmi_is_imputed_like_the_pipeline(
    compiled: CompiledModel, lr_pipeline: Pipeline, examples: list[dict[str, Any]]
) -> None:
    instance = {**examples[0], "bmi": None}
    ours = compiled.predict_instances([instance]).probabilities[0]
    theirs = lr_pipeline.predict_proba(instances_to_frame([instance]))[0, 1]
    assert math.isnan(instances_to_frame([instance])["bmi"][0])
    assert ours == pytest.approx(theirs, abs=1e-9)


def test_integral_float_counts_as_an_integer(
    compiled: CompiledModel, examples: list[dict[str, Any]]
) -> None:
    as_int = compiled.predict_instances([{**examples[0], "hypertension": 1}])
    as_float = compiled.predict_instances([{**examples[0], "hypertension": 1.0}])
    assert as_int.probabilities[0] == as_float.probabilities[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"gender": "F"},
            'instance 3: field "gender": expected one of Female, Male, Other; got "F"',
        ),
        ({"age": "67"}, 'instance 3: field "age": expected a number in [0, 120]; got "67"'),
        (
            {"age": True},
            'instance 3: field "age": expected a number in [0, 120]; got true (a boolean)',
        ),
        ({"age": 150}, 'instance 3: field "age": expected a number in [0, 120]; got 150'),
        ({"age": -1.5}, 'instance 3: field "age": expected a number in [0, 120]; got -1.5'),
        ({"age": None}, 'instance 3: field "age": expected a number in [0, 120]; got null'),
        ({"age": float("nan")}, 'instance 3: field "age": expected a number in [0, 120]; got NaN'),
        (
            {"avg_glucose_level": float("inf")},
            'instance 3: field "avg_glucose_level": expected a number in [20, 500]; got Infinity',
        ),
        ({"bmi": 2}, 'instance 3: field "bmi": expected a number in [5, 120] or null; got 2'),
        ({"hypertension": 1.5}, 'instance 3: field "hypertension": expected 0 or 1; got 1.5'),
        ({"hypertension": 2}, 'instance 3: field "hypertension": expected 0 or 1; got 2'),
        ({"heart_disease": False}, 'instance 3: field "heart_disease": expected 0 or 1; got false'),
        ({"heart_disease": "1"}, 'instance 3: field "heart_disease": expected 0 or 1; got "1"'),
        ({"smoking_status": None}, 'instance 3: field "smoking_status": expected one of Unknown'),
        ({"work_type": ["Private"]}, 'instance 3: field "work_type": expected one of Govt_job'),
        (
            {"Residence_type": "urban"},
            'field "Residence_type": expected one of Rural, Urban; got "urban"',
        ),
        (
            {"sex": "Male"},
            'instance 3: field "sex" is not an input of this model (inputs: gender, age',
        ),
    ],
)
def test_each_bad_value_is_named_with_instance_field_and_expectation(
    compiled: CompiledModel, examples: list[dict[str, Any]], change: dict[str, Any], message: str
) -> None:
    instances = [examples[0], examples[1], examples[2], {**examples[0], **change}]
    assert message in v1_error(compiled, {"instances": instances})


def test_missing_field_is_named(compiled: CompiledModel, examples: list[dict[str, Any]]) -> None:
    instance = dict(examples[0])
    del instance["bmi"]
    error = v1_error(compiled, {"instances": [examples[1], instance]})
    assert error == 'instance 1: field "bmi" is missing (expected a number in [5, 120] or null)'


def test_every_bad_value_is_reported_at_once_in_instance_order(
    compiled: CompiledModel, examples: list[dict[str, Any]]
) -> None:
    instances = [{**examples[0], "smoking_status": "sometimes"}, {**examples[0], "age": "old"}]
    error = v1_error(compiled, {"instances": instances})
    assert error.index("instance 0:") < error.index("instance 1:")
    assert 'field "smoking_status"' in error and 'field "age"' in error


def test_a_flood_of_errors_is_capped(
    compiled: CompiledModel, examples: list[dict[str, Any]]
) -> None:
    instances = [{**examples[0], "gender": "?"} for _ in range(25)]
    error = v1_error(compiled, {"instances": instances})
    assert error.count("expected one of Female") == protocol.MAX_REPORTED_ERRORS
    assert error.endswith(f"and {25 - protocol.MAX_REPORTED_ERRORS} more")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], 'expected a JSON object {"instances": [{feature: value, ...}, ...]}; got an array'),
        ("instances", "expected a JSON object"),
        ({}, 'missing "instances"'),
        ({"inputs": []}, "this looks like a V2 request: POST it to /v2/models/<model>/infer"),
        ({"instances": {}}, '"instances" must be an array of objects; got an object'),
        ({"instances": []}, "no instances: expected at least one"),
        ({"instances": [[1, 2]]}, "instance 0: expected an object of feature values; got an array"),
        ({"instances": [{}], "extra": 1}, 'unknown top-level field "extra"'),
    ],
)
def test_malformed_v1_bodies(compiled: CompiledModel, body: Any, message: str) -> None:
    assert message in v1_error(compiled, body)


def test_too_many_instances_are_refused(
    compiled: CompiledModel, examples: list[dict[str, Any]]
) -> None:
    error = v1_error(compiled, {"instances": examples[:1] * (protocol.MAX_INSTANCES + 1)})
    assert f"at most {protocol.MAX_INSTANCES}" in error


def test_body_that_is_not_json() -> None:
    with pytest.raises(InvalidRequestError, match="the body is not valid JSON"):
        protocol.parse_json_body(b'{"instances": [')


def test_v2_inputs_score_like_v1(
    compiled: CompiledModel, examples: list[dict[str, Any]], signature_doc: dict[str, Any]
) -> None:
    columns, count = protocol.columns_from_v2(v2_tensors(examples, signature_doc), compiled.specs)
    v2 = compiled.predict(columns, count)
    v1 = compiled.predict_instances(examples)
    assert count == len(examples)
    assert v2.probabilities.tolist() == v1.probabilities.tolist()
    assert v2.decisions.tolist() == v1.decisions.tolist()


def test_v2_wrong_datatype(
    compiled: CompiledModel, examples: list[dict[str, Any]], signature_doc: dict[str, Any]
) -> None:
    tensors = v2_tensors(examples, signature_doc)
    tensors[1] = InferInput("age", [len(examples)], "INT64", [int(e["age"]) for e in examples])
    assert v2_error(compiled, tensors) == (
        'input "age": datatype must be FP64 (a number in [0, 120]); got INT64'
    )


def test_v2_shape_must_be_one_value_per_instance(
    compiled: CompiledModel, examples: list[dict[str, Any]], signature_doc: dict[str, Any]
) -> None:
    tensors = v2_tensors(examples, signature_doc)
    tensors[1] = InferInput("age", [len(examples), 1], "FP64", [e["age"] for e in examples])
    assert 'input "age": shape must be [N], one value per instance; got [3, 1]' in v2_error(
        compiled, tensors
    )


def test_v2_shapes_must_agree_between_inputs(
    compiled: CompiledModel, examples: list[dict[str, Any]], signature_doc: dict[str, Any]
) -> None:
    tensors = v2_tensors(examples, signature_doc)
    tensors[4] = InferInput("ever_married", [2], "BYTES", ["Yes", "No"])
    assert 'input "ever_married": shape [2] differs from [3] of input "gender"' in v2_error(
        compiled, tensors
    )


def test_v2_data_must_match_its_shape(
    compiled: CompiledModel, examples: list[dict[str, Any]], signature_doc: dict[str, Any]
) -> None:
    tensors = v2_tensors(examples, signature_doc)
    tensors[8] = InferInput("bmi", [3], "FP64", [20.0, 21.0])
    assert 'input "bmi": shape is [3] but data has 2 values' in v2_error(compiled, tensors)


def test_v2_missing_unknown_and_repeated_inputs(
    compiled: CompiledModel, examples: list[dict[str, Any]], signature_doc: dict[str, Any]
) -> None:
    tensors = v2_tensors(examples, signature_doc)
    del tensors[0]
    tensors.append(InferInput("sex", [3], "BYTES", ["Male"] * 3))
    tensors.append(tensors[0])
    error = v2_error(compiled, tensors)
    assert 'input "sex" is not an input of this model' in error
    assert 'input "age" is given more than once' in error
    assert 'input "gender" is missing (expected datatype BYTES, shape [N]' in error


def test_v2_values_are_checked_per_instance(
    compiled: CompiledModel, examples: list[dict[str, Any]], signature_doc: dict[str, Any]
) -> None:
    bad = [examples[0], {**examples[1], "gender": "F"}, {**examples[2], "hypertension": 0.5}]
    error = v2_error(compiled, v2_tensors(bad, signature_doc))
    assert error == (
        'instance 1: field "gender": expected one of Female, Male, Other; got "F"; '
        'instance 2: field "hypertension": expected 0 or 1; got 0.5'
    )


def test_v2_nan_and_empty(
    compiled: CompiledModel, examples: list[dict[str, Any]], signature_doc: dict[str, Any]
) -> None:
    tensors = v2_tensors(examples, signature_doc)
    tensors[7] = InferInput("avg_glucose_level", [3], "FP64", [100.0, float("nan"), 90.0])
    assert 'instance 1: field "avg_glucose_level": expected a number in [20, 500]; got NaN' in (
        v2_error(compiled, tensors)
    )
    empty = v2_tensors([], signature_doc)
    assert v2_error(compiled, empty) == "no instances: expected at least one"


def test_malformed_signature_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown type"):
        protocol.input_specs({"inputs": [{"name": "x", "type": "date", "datatype": "BYTES"}]})
    with pytest.raises(ValueError, match="no inputs"):
        protocol.input_specs({"inputs": []})


EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "kserve" / "examples"


def test_the_documented_example_requests_are_valid(
    compiled: CompiledModel, lr_pipeline: Pipeline
) -> None:
    v1 = json.loads((EXAMPLES_DIR / "v1-predict.json").read_text())
    columns, count = protocol.columns_from_v1(v1, compiled.specs)
    from_v1 = compiled.predict(columns, count)
    v2 = json.loads((EXAMPLES_DIR / "v2-infer.json").read_text())
    tensors = [InferInput(t["name"], t["shape"], t["datatype"], t["data"]) for t in v2["inputs"]]
    columns, count = protocol.columns_from_v2(tensors, compiled.specs)
    from_v2 = compiled.predict(columns, count)

    expected = lr_pipeline.predict_proba(instances_to_frame(v1["instances"]))[:, 1]
    np.testing.assert_allclose(from_v1.probabilities, expected, rtol=0, atol=1e-9)
    assert from_v2.probabilities.tolist() == from_v1.probabilities.tolist()
    assert any(i["bmi"] is None for i in v1["instances"])


def test_the_documented_invalid_request_names_both_problems(compiled: CompiledModel) -> None:
    body = json.loads((EXAMPLES_DIR / "v1-invalid.json").read_text())
    assert v1_error(compiled, body) == (
        'instance 1: field "gender": expected one of Female, Male, Other; got "F"; '
        'instance 1: field "age": expected a number in [0, 120]; got "67"'
    )
