"""V1 bodies and V2 requests turned into the same columns: one sequence of values per input.

Only the body's shape and its field names are checked here; values are checked (and encoded)
by :meth:`stroke_mlops.serving.scoring.CompiledModel.predict`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from stroke_mlops.serving.protocol.errors import (
    InvalidRequestError,
    describe,
    quote,
    raise_if_any,
)
from stroke_mlops.serving.protocol.inputs import MAX_INSTANCES, InputSpec

Columns = Mapping[str, Sequence[Any]]


class V2Tensor(Protocol):
    """What :func:`columns_from_v2` reads of an Open Inference Protocol input tensor."""

    @property
    def name(self) -> str: ...
    @property
    def datatype(self) -> str: ...
    @property
    def shape(self) -> list[int]: ...
    @property
    def data(self) -> Any: ...


def columns_from_v1(
    body: Any, specs: Sequence[InputSpec], max_instances: int = MAX_INSTANCES
) -> tuple[Columns, int]:
    """Columns of a V1 body ``{"instances": [{feature: value, ...}, ...]}``; also returns N.

    Checks the body's shape and each instance's field names; values are checked by
    :meth:`CompiledModel.predict`.
    """
    expected_body = '{"instances": [{feature: value, ...}, ...]}'
    if not isinstance(body, dict):
        raise InvalidRequestError(f"expected a JSON object {expected_body}; got {describe(body)}")
    if "instances" not in body:
        hint = (
            "; this looks like a V2 request: POST it to /v2/models/<model>/infer"
            if "inputs" in body
            else ""
        )
        raise InvalidRequestError(f'missing "instances": expected {expected_body}{hint}')
    extra = sorted(set(body) - {"instances"})
    if extra:
        raise InvalidRequestError(
            f"unknown top-level field {quote(extra[0])}: expected {expected_body}"
        )
    instances = body["instances"]
    if not isinstance(instances, list):
        raise InvalidRequestError(
            f'"instances" must be an array of objects; got {describe(instances)}'
        )
    count = _check_count(len(instances), max_instances)
    names = [spec.name for spec in specs]
    known = set(names)
    errors: list[str] = []
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            errors.append(
                f"instance {index}: expected an object of feature values; got {describe(instance)}"
            )
            continue
        if len(instance) != len(names) or not known.issuperset(instance):
            for spec in specs:
                if spec.name not in instance:
                    errors.append(
                        f'instance {index}: field "{spec.name}" is missing '
                        f"(expected {spec.expectation()})"
                    )
            for field in instance:
                if field not in known:
                    errors.append(
                        f"instance {index}: field {quote(field)} is not an input of this model "
                        f"(inputs: {', '.join(names)})"
                    )
    raise_if_any(errors)
    return {name: [instance[name] for instance in instances] for name in names}, count


def columns_from_v2(
    inputs: Sequence[V2Tensor], specs: Sequence[InputSpec], max_instances: int = MAX_INSTANCES
) -> tuple[Columns, int]:
    """Columns of a V2 request: one input per feature, datatype per signature, shape ``[N]``."""
    by_name = {spec.name: spec for spec in specs}
    names = ", ".join(by_name)
    errors: list[str] = []
    columns: dict[str, Sequence[Any]] = {}
    count: int | None = None
    first: str | None = None
    for tensor in inputs:
        name = tensor.name
        spec = by_name.get(name)
        if spec is None:
            errors.append(f"input {quote(name)} is not an input of this model (inputs: {names})")
            continue
        if name in columns:
            errors.append(f'input "{name}" is given more than once')
            continue
        datatype = str(tensor.datatype).upper()
        if datatype != spec.datatype:
            errors.append(
                f'input "{name}": datatype must be {spec.datatype} ({spec.expectation()}); '
                f"got {datatype}"
            )
            continue
        shape = list(tensor.shape)
        if len(shape) != 1:
            errors.append(f'input "{name}": shape must be [N], one value per instance; got {shape}')
            continue
        data = tensor.data
        if not isinstance(data, list):
            data = _as_list(data)
        if len(data) != shape[0]:
            errors.append(f'input "{name}": shape is {shape} but data has {len(data)} values')
            continue
        if count is None:
            count, first = shape[0], name
        elif shape[0] != count:
            errors.append(
                f'input "{name}": shape {shape} differs from [{count}] of input "{first}"; '
                "every input needs one value per instance"
            )
            continue
        columns[name] = data
    for spec in specs:
        if spec.name not in columns and not any(t.name == spec.name for t in inputs):
            errors.append(
                f'input "{spec.name}" is missing (expected datatype {spec.datatype}, '
                f"shape [N]: {spec.expectation()})"
            )
    raise_if_any(errors)
    assert count is not None  # there is at least one spec, and every one was found
    return columns, _check_count(count, max_instances)


def _as_list(data: Any) -> list[Any]:
    if isinstance(data, np.ndarray):
        return list(data.reshape(-1).tolist())
    try:
        return list(data)
    except TypeError as error:
        raise InvalidRequestError(f"input data must be an array; got {describe(data)}") from error


def _check_count(count: int, max_instances: int) -> int:
    if count == 0:
        raise InvalidRequestError("no instances: expected at least one")
    if count > max_instances:
        raise InvalidRequestError(
            f"{count} instances in one request; at most {max_instances} are accepted"
        )
    return count
