"""Each input's values checked against its signature entry: numbers in range, allowed integers,
known categories; every bad value becomes one message naming the instance and the field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from stroke_mlops.serving.protocol.errors import describe
from stroke_mlops.serving.protocol.inputs import InputSpec


def _number_values(spec: InputSpec, values: Sequence[Any], errors: list[str]) -> list[Any]:
    """Numbers in range as floats, null as None; errors for anything else."""
    lo, hi = spec.minimum, spec.maximum
    assert lo is not None and hi is not None
    out: list[Any] = []
    for index, value in enumerate(values):
        kind = type(value)
        if (kind is float or kind is int) and lo <= value <= hi:
            out.append(float(value))
        elif value is None and spec.nullable:
            out.append(None)
        elif isinstance(value, int | float) and not isinstance(value, bool) and lo <= value <= hi:
            out.append(float(value))  # numpy scalars, int/float subclasses
        else:
            errors.append(value_error(index, spec, value))
            out.append(None)
    return out


def _integer_values(spec: InputSpec, values: Sequence[Any], errors: list[str]) -> list[Any]:
    """Allowed integers as floats (1.0 counts as 1, as in JSON Schema); errors otherwise."""
    allowed = spec.allowed
    out: list[Any] = []
    for index, value in enumerate(values):
        kind = type(value)
        if kind is int or (kind is float and value.is_integer()):
            if not allowed or int(value) in allowed:
                out.append(float(value))
                continue
        elif value is None and spec.nullable:
            out.append(None)
            continue
        elif isinstance(value, np.integer) and (not allowed or int(value) in allowed):
            out.append(float(value))
            continue
        errors.append(value_error(index, spec, value))
        out.append(None)
    return out


def _string_values(spec: InputSpec, values: Sequence[Any], errors: list[str]) -> list[Any]:
    """Known categories as themselves; errors for anything else."""
    categories = spec.categories
    out: list[Any] = []
    for index, value in enumerate(values):
        if type(value) is str and value in categories:
            out.append(value)
        elif value is None and spec.nullable:
            out.append(None)
        elif isinstance(value, bytes) and value.decode("utf-8", "replace") in categories:
            out.append(value.decode("utf-8"))  # V2 BYTES from the binary tensor extension
        else:
            errors.append(value_error(index, spec, value))
            out.append(None)
    return out


VALUE_READERS: dict[str, Callable[[InputSpec, Sequence[Any], list[str]], list[Any]]] = {
    "number": _number_values,
    "integer": _integer_values,
    "string": _string_values,
}


def value_error(index: int, spec: InputSpec, value: Any) -> str:
    expected, got = spec.expectation(), describe(value)
    return f'instance {index}: field "{spec.name}": expected {expected}; got {got}'
