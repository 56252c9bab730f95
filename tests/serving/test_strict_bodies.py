"""Strict body decoding without a server: JSON that Python or KServe would mis-read, and V2
bodies (JSON and binary tensors) that KServe answered with a 500 or silently coerced."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest

from stroke_mlops.serving.protocol import InvalidRequestError, parse_json_body
from stroke_mlops.serving.protocol.v2_request import RawV2Request, decode_v2_request


def refusal(body: bytes, json_length: str | None = None) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        decode_v2_request(RawV2Request(body, json_length), "stroke")
    return str(caught.value)


def json_refusal(body: bytes) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        parse_json_body(body)
    return str(caught.value)


# --- JSON ----------------------------------------------------------------------------------


def test_a_repeated_key_is_refused_by_name() -> None:
    body = b'{"instances": [{"age": 50, "bmi": 20, "age": 51}]}'
    assert json_refusal(body) == (
        'the body is not accepted JSON: the key "age" appears twice in one object'
    )


def test_deep_nesting_is_a_client_error() -> None:
    assert json_refusal(b"[" * 100_000) == "the body's JSON is nested too deeply"
    assert json_refusal(b'{"a":' * 50_000 + b"1" + b"}" * 50_000).endswith("nested too deeply")


def test_an_integer_of_5000_digits_is_a_client_error() -> None:
    message = json_refusal(b'{"instances": [{"age": ' + b"9" * 5000 + b"}]}")
    assert message == "the body is not accepted JSON: an integer has more than 4300 digits"


def test_bytes_that_are_not_utf8_are_named() -> None:
    assert (
        json_refusal(b'{"a": "\xff"}') == "the body is not UTF-8 text (byte 7 is not valid UTF-8)"
    )


def test_strict_json_still_reads_what_clients_send() -> None:
    assert parse_json_body(b'{"a": [1, 2.5, null, "x"], "b": {"c": NaN}}')["a"] == [
        1,
        2.5,
        None,
        "x",
    ]


# --- V2 ------------------------------------------------------------------------------------


def v2_json(inputs: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps({"inputs": inputs, **extra}).encode()


AGE = {"name": "age", "datatype": "FP64", "shape": [2], "data": [50.0, 60.0]}


def test_a_valid_json_body_decodes() -> None:
    request = decode_v2_request(
        RawV2Request(v2_json([AGE], id="r1", outputs=[{"name": "decision"}])), "stroke"
    )
    (tensor,) = request.inputs
    assert (tensor.name, tensor.datatype, tensor.shape, tensor.data) == (
        "age",
        "FP64",
        [2],
        [50.0, 60.0],
    )
    assert request.id == "r1"
    assert [output.name for output in request.request_outputs or []] == ["decision"]


@pytest.mark.parametrize("shape", [["1"], [1.0], [True], [-1], "2", None])
def test_shape_must_be_integers(shape: Any) -> None:
    message = refusal(v2_json([{**AGE, "shape": shape}]))
    assert message == 'input "age": "shape" must be an array of non-negative integers such as [3]'


def test_a_repeated_key_in_a_v2_body_is_refused_by_name() -> None:
    body = b'{"inputs": [{"name": "age", "datatype": "FP64", "shape": [1], "shape": [1]}]}'
    assert refusal(body).endswith('the key "shape" appears twice in one object')


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "expected a JSON object"),
        (b'{"inputs": []}', '"inputs" must be a non-empty array'),
        (b'{"inputs": [1]}', "inputs[0] must be an object"),
        (b'{"inputs": [{"name": 3}]}', 'inputs[0]: "name" must be a string'),
        (v2_json([{**AGE, "datatype": 8}]), 'input "age": "datatype" must be a string'),
        (v2_json([{**AGE, "data": "50"}]), 'input "age": "data" must be an array'),
        (v2_json([{k: v for k, v in AGE.items() if k != "data"}]), 'neither "data" nor'),
        (v2_json([AGE], id=7), '"id" must be a string'),
        (v2_json([AGE], parameters=[1]), '"parameters" must be an object'),
        (
            v2_json([AGE], outputs=[{"name": 1}]),
            'outputs[0] must be an object with a string "name"',
        ),
    ],
)
def test_malformed_v2_bodies_are_named(body: bytes, message: str) -> None:
    assert message in refusal(body)


# Binary tensor extension: JSON part, then each input's bytes.


def binary_body(inputs: list[tuple[dict[str, Any], bytes]]) -> tuple[bytes, str]:
    header = v2_json(
        [{**spec, "parameters": {"binary_data_size": len(raw)}} for spec, raw in inputs]
    )
    return header + b"".join(raw for _, raw in inputs), str(len(header))


def bytes_tensor(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


AGE_SPEC = {"name": "age", "datatype": "FP64", "shape": [2]}
GENDER_SPEC = {"name": "gender", "datatype": "BYTES", "shape": [2]}


def test_binary_tensors_decode() -> None:
    body, length = binary_body(
        [
            (AGE_SPEC, np.array([50.0, 60.5], "<f8").tobytes()),
            (GENDER_SPEC, bytes_tensor(b"Male", b"Female")),
            (
                {"name": "hypertension", "datatype": "INT64", "shape": [2]},
                np.array([0, 1], "<i8").tobytes(),
            ),
        ]
    )
    request = decode_v2_request(RawV2Request(body, length), "stroke")
    assert [t.data for t in request.inputs] == [[50.0, 60.5], [b"Male", b"Female"], [0, 1]]


@pytest.mark.parametrize("header", ["abc", "-5", "1e3", "", " 12x", "9" * 40])
def test_a_bad_json_length_header_is_refused(header: str) -> None:
    body, _ = binary_body([(AGE_SPEC, np.zeros(2, "<f8").tobytes())])
    message = refusal(body, header)
    assert message.startswith('header "inference-header-content-length" must be the JSON part')


def test_a_json_length_past_the_body_is_refused() -> None:
    body, _ = binary_body([(AGE_SPEC, np.zeros(2, "<f8").tobytes())])
    assert "says the JSON part has 100000 bytes but the body has" in refusal(body, "100000")


def test_truncated_binary_data_is_refused() -> None:
    body, length = binary_body([(AGE_SPEC, np.zeros(2, "<f8").tobytes())])
    assert refusal(body[:-3], length) == (
        'input "age": binary_data_size is 16 but only 13 bytes of binary data are left'
    )


def test_binary_data_size_must_fit_the_shape() -> None:
    body, length = binary_body([(AGE_SPEC, np.zeros(3, "<f8").tobytes())])
    assert refusal(body, length) == (
        'input "age": FP64 of shape [2] takes 16 bytes; binary_data_size is 24'
    )


def test_binary_bytes_no_input_claims_are_refused() -> None:
    body, length = binary_body([(AGE_SPEC, np.zeros(2, "<f8").tobytes())])
    assert refusal(body + b"\x00" * 8, length).startswith(
        "8 bytes of binary data follow the JSON part but no input's binary_data_size"
    )


def test_a_bytes_length_past_the_data_is_refused() -> None:
    raw = struct.pack("<I", 4) + b"Male" + struct.pack("<I", 1_000_000) + b"Fe"
    body, length = binary_body([(GENDER_SPEC, raw)])
    assert refusal(body, length) == (
        'input "gender": BYTES element 1 says 1000000 bytes but only 2 are left'
    )


def test_a_truncated_bytes_length_prefix_is_refused() -> None:
    body, length = binary_body([(GENDER_SPEC, bytes_tensor(b"Male") + b"\x01\x00")])
    assert refusal(body, length) == 'input "gender": BYTES element 1 has a truncated 4-byte length'


def test_the_bytes_element_count_must_fit_the_shape() -> None:
    body, length = binary_body([(GENDER_SPEC, bytes_tensor(b"Male"))])
    assert refusal(body, length) == (
        'input "gender": shape [2] needs 2 BYTES elements; the binary data has 1'
    )


@pytest.mark.parametrize("size", [-1, "16", 1.5, None])
def test_binary_data_size_must_be_a_count(size: Any) -> None:
    header = v2_json([{**AGE_SPEC, "parameters": {"binary_data_size": size}}])
    message = refusal(header + b"\x00" * 16, str(len(header)))
    expected = "neither" if size is None else "binary_data_size must be a non-negative integer"
    assert expected in message


def test_data_and_binary_data_size_together_are_refused() -> None:
    body = v2_json([{**AGE, "parameters": {"binary_data_size": 16}}])
    assert refusal(body, str(len(body))) == 'input "age": has both "data" and binary_data_size'


def test_binary_data_of_another_datatype_is_refused() -> None:
    body, length = binary_body([({**AGE_SPEC, "datatype": "FP32"}, b"\x00" * 8)])
    assert refusal(body, length) == (
        'input "age": binary data of datatype "FP32" is not accepted (FP64, INT64, BYTES)'
    )
