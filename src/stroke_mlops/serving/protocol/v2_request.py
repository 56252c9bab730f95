"""Strict decoding of Open Inference Protocol (V2) REST bodies: JSON, or JSON + binary tensors.

The server reads V2 bodies itself rather than through KServe's pydantic model, which coerces
``"shape": ["1"]`` to ``[1]``, keeps the last of two equal JSON keys, and answers 500 to a bad
``inference-header-content-length``, truncated binary tensors or a BYTES length past the data.
:func:`decode_v2_request` refuses each of those with an :class:`InvalidRequestError` naming the
input and what was expected, and returns KServe's ``InferRequest`` for everything else.

Binary tensor extension: the header ``inference-header-content-length: J`` says the first J
bytes are the JSON part; the bytes after it are the inputs' data, in input order, each input
taking ``parameters.binary_data_size`` bytes (FP64 and INT64 little-endian, 8 bytes a value;
BYTES as a 4-byte little-endian length then the bytes, per element). Sizes must add up to the
binary part exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput

from stroke_mlops.serving.protocol.errors import InvalidRequestError, quote
from stroke_mlops.serving.protocol.strict_json import parse_json_body

INFERENCE_HEADER = "inference-header-content-length"
_FIXED_WIDTH = {"FP64": np.dtype("<f8"), "INT64": np.dtype("<i8")}
_EXPECTED_BODY = '{"inputs": [{"name", "datatype", "shape", "data"}, ...]}'


@dataclass(frozen=True)
class RawV2Request:
    """A V2 body as received, decoded inside ``predict`` so refusals reach the request log."""

    body: bytes
    json_length: str | None = None  # the inference-header-content-length header, as sent


def decode_v2_request(raw: RawV2Request, model_name: str) -> InferRequest:
    """The InferRequest of a V2 body; InvalidRequestError naming what is wrong otherwise."""
    json_part, binary = _split_body(raw)
    document = parse_json_body(json_part)
    if not isinstance(document, dict):
        raise InvalidRequestError(f"expected a JSON object {_EXPECTED_BODY}")
    tensors = document.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise InvalidRequestError(f'"inputs" must be a non-empty array: expected {_EXPECTED_BODY}')
    inputs: list[InferInput] = []
    offset = 0
    for index, tensor in enumerate(tensors):
        infer_input, used = _decode_input(index, tensor, binary, offset)
        inputs.append(infer_input)
        offset += used
    if offset != len(binary):
        raise InvalidRequestError(
            f"{len(binary) - offset} bytes of binary data follow the JSON part but no input's "
            "binary_data_size accounts for them"
        )
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidRequestError('"id" must be a string')
    return InferRequest(
        model_name=model_name,
        infer_inputs=inputs,
        request_id=request_id,
        parameters=_parameters(document, '"parameters"'),
        request_outputs=_requested_outputs(document.get("outputs")),
    )


def _split_body(raw: RawV2Request) -> tuple[bytes, bytes]:
    if raw.json_length is None:
        return raw.body, b""
    text = raw.json_length.strip()
    if not text.isdigit() or len(text) > 18:
        raise InvalidRequestError(
            f'header "{INFERENCE_HEADER}" must be the JSON part\'s length in bytes; '
            f"got {quote(raw.json_length)}"
        )
    length = int(text)
    if length > len(raw.body):
        raise InvalidRequestError(
            f'header "{INFERENCE_HEADER}" says the JSON part has {length} bytes but the body '
            f"has {len(raw.body)}"
        )
    return raw.body[:length], raw.body[length:]


def _decode_input(index: int, tensor: Any, binary: bytes, offset: int) -> tuple[InferInput, int]:
    """One input tensor and how many binary bytes it took."""
    if not isinstance(tensor, dict):
        raise InvalidRequestError(
            f"inputs[{index}] must be an object {{name, datatype, shape, data}}"
        )
    name = tensor.get("name")
    if not isinstance(name, str):
        raise InvalidRequestError(f'inputs[{index}]: "name" must be a string')
    where = f"input {quote(name)}"
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str):
        raise InvalidRequestError(f'{where}: "datatype" must be a string such as "FP64"')
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(type(size) is int and size >= 0 for size in shape):
        raise InvalidRequestError(
            f'{where}: "shape" must be an array of non-negative integers such as [3]'
        )
    parameters = _parameters(tensor, f'{where}: "parameters"')
    size = (parameters or {}).get("binary_data_size")
    if "data" in tensor:
        if size is not None:
            raise InvalidRequestError(f'{where}: has both "data" and binary_data_size')
        if not isinstance(tensor["data"], list):
            raise InvalidRequestError(f'{where}: "data" must be an array')
        return InferInput(name, shape, datatype, data=tensor["data"], parameters=parameters), 0
    if size is None:
        raise InvalidRequestError(f'{where}: has neither "data" nor parameters.binary_data_size')
    if type(size) is not int or size < 0:
        raise InvalidRequestError(f"{where}: binary_data_size must be a non-negative integer")
    if offset + size > len(binary):
        raise InvalidRequestError(
            f"{where}: binary_data_size is {size} but only {len(binary) - offset} bytes of "
            "binary data are left"
        )
    data = _decode_binary(where, datatype.upper(), shape, binary[offset : offset + size])
    return InferInput(name, shape, datatype, data=data, parameters=parameters), size


def _decode_binary(where: str, datatype: str, shape: list[int], chunk: bytes) -> list[Any]:
    count = math.prod(shape)
    dtype = _FIXED_WIDTH.get(datatype)
    if dtype is not None:
        if len(chunk) != count * dtype.itemsize:
            raise InvalidRequestError(
                f"{where}: {datatype} of shape {shape} takes {count * dtype.itemsize} bytes; "
                f"binary_data_size is {len(chunk)}"
            )
        return list(np.frombuffer(chunk, dtype=dtype).tolist())
    if datatype != "BYTES":
        raise InvalidRequestError(
            f"{where}: binary data of datatype {quote(datatype)} is not accepted "
            "(FP64, INT64, BYTES)"
        )
    elements: list[bytes] = []
    position = 0
    while position < len(chunk):
        if position + 4 > len(chunk):
            raise InvalidRequestError(
                f"{where}: BYTES element {len(elements)} has a truncated 4-byte length"
            )
        length = int.from_bytes(chunk[position : position + 4], "little")
        position += 4
        if position + length > len(chunk):
            raise InvalidRequestError(
                f"{where}: BYTES element {len(elements)} says {length} bytes but only "
                f"{len(chunk) - position} are left"
            )
        elements.append(chunk[position : position + length])
        position += length
    if len(elements) != count:
        raise InvalidRequestError(
            f"{where}: shape {shape} needs {count} BYTES elements; the binary data has "
            f"{len(elements)}"
        )
    return elements


def _parameters(container: dict[str, Any], where: str) -> dict[str, Any] | None:
    parameters = container.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidRequestError(f"{where} must be an object")
    return parameters


def _requested_outputs(outputs: Any) -> list[RequestedOutput] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list):
        raise InvalidRequestError('"outputs" must be an array of {"name": ...} objects')
    requested: list[RequestedOutput] = []
    for index, output in enumerate(outputs):
        if not isinstance(output, dict) or not isinstance(output.get("name"), str):
            raise InvalidRequestError(f'outputs[{index}] must be an object with a string "name"')
        parameters = _parameters(output, f'outputs[{index}]: "parameters"')
        requested.append(RequestedOutput(output["name"], parameters))
    return requested
