"""Request validation and the fast scoring path of the model server.

A request is checked against the model's ``signature.json`` and encoded straight from the JSON
lists into the classifier's input matrix, without pandas or the ColumnTransformer in the hot path:
at load, :func:`compile_model` turns the fitted ``preprocess`` step into plain numbers (imputation
values, scaler mean/scale, one-hot column offsets, the output column order) and the classifier
into a direct scorer (LogisticRegression: dot product + sigmoid; XGBoost: ``inplace_predict``).

The compiled model must give the fitted pipeline's probabilities: a pipeline shape the compiler
does not know is refused (:class:`UnsupportedPipelineError`), and :func:`compile_model` compares
both on probe rows covering every category, both range bounds and a missing ``bmi`` before it
returns, so a compiled model never silently diverges.

Both protocols share one path: a V1 body (``{"instances": [{...}, ...]}``) and a V2 request (one
named input per feature) are first turned into the same columns (:func:`columns_from_v1`,
:func:`columns_from_v2`), then validated, encoded and scored by :meth:`CompiledModel.predict`.
Bad input raises :class:`InvalidRequestError` whose message names the instance, the field and
what was expected, e.g.
``instance 3: field "gender": expected one of Female, Male, Other; got "F"``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from stroke_mlops.data import schema
from stroke_mlops.registry.model_dir import open_signed_model_dir
from stroke_mlops.serving.defaults import MAX_INSTANCES as MAX_INSTANCES  # the row limit

MAX_REPORTED_ERRORS = 10  # a request with more bad values reports the first ones and a count
PARITY_TOLERANCE = 1e-9  # compiled vs. sklearn probability on the probe rows at load

Columns = Mapping[str, Sequence[Any]]


class InvalidRequestError(ValueError):
    """A request the signature refuses; the message names the instance, field and expectation."""


class UnsupportedPipelineError(ValueError):
    """The fitted pipeline has a shape the compiler does not know, or its output would differ."""


# --------------------------------------------------------------------------------------------
# The signature's inputs


@dataclass(frozen=True)
class InputSpec:
    """One input of ``signature.json``: its kind and the values it accepts."""

    name: str
    kind: str  # "number" | "integer" | "string"
    datatype: str  # Open Inference Protocol datatype: FP64 | INT64 | BYTES
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[int, ...] = ()
    categories: tuple[str, ...] = ()

    def expectation(self) -> str:
        """What a valid value looks like, as the error messages say it."""
        if self.kind == "number":
            text = f"a number in [{self.minimum:g}, {self.maximum:g}]"
        elif self.kind == "integer":
            text = " or ".join(str(v) for v in self.allowed) if self.allowed else "an integer"
        else:
            text = "one of " + ", ".join(self.categories)
        return f"{text} or null" if self.nullable else text


def input_specs(signature: Mapping[str, Any]) -> tuple[InputSpec, ...]:
    """The signature's inputs, in signature order (raises ValueError on a malformed signature)."""
    specs: list[InputSpec] = []
    try:
        for raw in signature["inputs"]:
            kind = raw["type"]
            if kind == "number":
                spec = InputSpec(
                    name=raw["name"],
                    kind=kind,
                    datatype=raw["datatype"],
                    nullable=bool(raw.get("nullable", False)),
                    minimum=float(raw["minimum"]),
                    maximum=float(raw["maximum"]),
                )
            elif kind == "integer":
                spec = InputSpec(
                    name=raw["name"],
                    kind=kind,
                    datatype=raw["datatype"],
                    nullable=bool(raw.get("nullable", False)),
                    allowed=tuple(int(v) for v in raw.get("allowed", ())),
                )
            elif kind == "string":
                spec = InputSpec(
                    name=raw["name"],
                    kind=kind,
                    datatype=raw["datatype"],
                    nullable=bool(raw.get("nullable", False)),
                    categories=tuple(str(c) for c in raw["categories"]),
                )
            else:
                raise ValueError(f"input {raw.get('name')!r} has unknown type {kind!r}")
            specs.append(spec)
    except (KeyError, TypeError) as error:
        raise ValueError(f"signature.json: malformed inputs ({error!r})") from error
    if not specs:
        raise ValueError("signature.json: no inputs")
    return tuple(specs)


# --------------------------------------------------------------------------------------------
# Turning request bodies into columns


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


def parse_json_body(body: bytes | str) -> Any:
    """Decode a raw request body as strict JSON; InvalidRequestError says what is wrong and where.

    Refused: invalid JSON (with its position), a key repeated in one object (named), integers of
    more than 4,300 digits, and nesting deeper than Python's recursion limit.
    """
    try:
        return _STRICT_JSON.decode(body if isinstance(body, str) else body.decode("utf-8"))
    except json.JSONDecodeError as error:
        raise InvalidRequestError(f"the body is not valid JSON: {error}") from error
    except UnicodeDecodeError as error:
        raise InvalidRequestError(
            f"the body is not UTF-8 text (byte {error.start} is not valid UTF-8)"
        ) from error
    except RecursionError as error:
        raise InvalidRequestError("the body's JSON is nested too deeply") from error
    except ValueError as error:  # an integer beyond int()'s digit limit, a duplicate key
        reason = str(error)
        if "integer string conversion" in reason:
            reason = f"an integer has more than {sys.get_int_max_str_digits()} digits"
        raise InvalidRequestError(f"the body is not accepted JSON: {reason}") from error


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the key {_quote(key)} appears twice in one object")
            seen.add(key)
    return obj


# NaN and Infinity (which Python's json.dumps writes) parse, so that the value check can name
# the field they were sent for.
_STRICT_JSON = json.JSONDecoder(object_pairs_hook=_object_without_duplicates)


def columns_from_v1(
    body: Any, specs: Sequence[InputSpec], max_instances: int = MAX_INSTANCES
) -> tuple[Columns, int]:
    """Columns of a V1 body ``{"instances": [{feature: value, ...}, ...]}``; also returns N.

    Checks the body's shape and each instance's field names; values are checked by
    :meth:`CompiledModel.predict`.
    """
    expected_body = '{"instances": [{feature: value, ...}, ...]}'
    if not isinstance(body, dict):
        raise InvalidRequestError(f"expected a JSON object {expected_body}; got {_describe(body)}")
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
            f"unknown top-level field {_quote(extra[0])}: expected {expected_body}"
        )
    instances = body["instances"]
    if not isinstance(instances, list):
        raise InvalidRequestError(
            f'"instances" must be an array of objects; got {_describe(instances)}'
        )
    count = _check_count(len(instances), max_instances)
    names = [spec.name for spec in specs]
    known = set(names)
    errors: list[str] = []
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            errors.append(
                f"instance {index}: expected an object of feature values; got {_describe(instance)}"
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
                        f"instance {index}: field {_quote(field)} is not an input of this model "
                        f"(inputs: {', '.join(names)})"
                    )
    _raise_if_any(errors)
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
            errors.append(f"input {_quote(name)} is not an input of this model (inputs: {names})")
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
    _raise_if_any(errors)
    assert count is not None  # there is at least one spec, and every one was found
    return columns, _check_count(count, max_instances)


def _as_list(data: Any) -> list[Any]:
    if isinstance(data, np.ndarray):
        return list(data.reshape(-1).tolist())
    try:
        return list(data)
    except TypeError as error:
        raise InvalidRequestError(f"input data must be an array; got {_describe(data)}") from error


def _check_count(count: int, max_instances: int) -> int:
    if count == 0:
        raise InvalidRequestError("no instances: expected at least one")
    if count > max_instances:
        raise InvalidRequestError(
            f"{count} instances in one request; at most {max_instances} are accepted"
        )
    return count


def _raise_if_any(errors: list[str]) -> None:
    if not errors:
        return
    shown = errors[:MAX_REPORTED_ERRORS]
    more = len(errors) - len(shown)
    message = "; ".join(shown) + (f"; and {more} more" if more else "")
    raise InvalidRequestError(message)


def _quote(text: object) -> str:
    return json.dumps(str(text)[:60])


def _describe(value: Any) -> str:
    """A short, JSON-flavoured rendering of a bad value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 64:  # never echo (or even convert) a huge integer in full
            return f"an integer of about {round(value.bit_length() * 0.30103)} digits"
        return str(value)
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, bytes):
        return f"{_quote(value.decode('utf-8', 'replace'))} (bytes)"
    return f"a {type(value).__name__}"


# --------------------------------------------------------------------------------------------
# Validating and encoding values


@dataclass(frozen=True)
class _AffineSlot:
    """Output column ``column`` = (value, or ``fill`` when null, - mean) / scale."""

    column: int
    fill: float | None
    mean: float
    scale: float


@dataclass(frozen=True)
class _OneHotSlot:
    """Output column offset of each category; the others stay 0."""

    columns: dict[str, int]


_Slot = _AffineSlot | _OneHotSlot


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
            errors.append(_value_error(index, spec, value))
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
        errors.append(_value_error(index, spec, value))
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
            errors.append(_value_error(index, spec, value))
            out.append(None)
    return out


_VALUE_READERS: dict[str, Callable[[InputSpec, Sequence[Any], list[str]], list[Any]]] = {
    "number": _number_values,
    "integer": _integer_values,
    "string": _string_values,
}


def _value_error(index: int, spec: InputSpec, value: Any) -> str:
    expected, got = spec.expectation(), _describe(value)
    return f'instance {index}: field "{spec.name}": expected {expected}; got {got}'


# --------------------------------------------------------------------------------------------
# The compiled model


@dataclass(frozen=True)
class Predictions:
    """P(stroke) and the decision at the model's threshold, one per instance."""

    probabilities: np.ndarray  # float64, shape (N,)
    decisions: np.ndarray  # int64 0/1, shape (N,)
    model_version: str

    def v1_body(self, model_name: str = schema.MODEL_NAME) -> dict[str, Any]:
        """The V1 response: one ``{"probability", "decision"}`` per instance + model version."""
        return {
            "predictions": [
                {"probability": p, "decision": d}
                for p, d in zip(self.probabilities.tolist(), self.decisions.tolist(), strict=True)
            ],
            "model_name": model_name,
            "model_version": self.model_version,
        }


class CompiledModel:
    """A fitted pipeline compiled to numpy: validates, encodes and scores request columns."""

    def __init__(
        self,
        *,
        specs: tuple[InputSpec, ...],
        slots: dict[str, tuple[_Slot, ...]],
        width: int,
        score: Callable[[np.ndarray], np.ndarray],
        threshold: float,
        version: str,
        classifier: str,
    ) -> None:
        self.specs = specs
        self.width = width
        self.threshold = threshold
        self.version = version
        self.classifier = classifier
        self._slots = slots
        self._score = score
        self._plan = tuple((spec, _VALUE_READERS[spec.kind], slots[spec.name]) for spec in specs)

    def encode(self, columns: Columns, count: int) -> np.ndarray:
        """Validate every value and build the classifier's (N, width) float64 input matrix.

        ``columns`` holds one sequence of ``count`` values per input (see columns_from_v1/v2).
        Raises InvalidRequestError listing the bad values (instance, field, expected, got).
        """
        rows = [[0.0] * self.width for _ in range(count)]
        errors: list[str] = []
        for spec, read, slots in self._plan:
            values = read(spec, columns[spec.name], errors)
            if errors:
                continue  # keep validating the other fields; encoding is moot now
            for slot in slots:
                if isinstance(slot, _AffineSlot):
                    column, mean, scale = slot.column, slot.mean, slot.scale
                    fill = math.nan if slot.fill is None else slot.fill  # compile_model: never used
                    for row, value in zip(rows, values, strict=True):
                        row[column] = ((fill if value is None else value) - mean) / scale
                else:
                    offsets = slot.columns
                    for row, value in zip(rows, values, strict=True):
                        row[offsets[value]] = 1.0
        if errors:
            errors.sort(key=_instance_index)
            _raise_if_any(errors)
        return np.array(rows, dtype=np.float64)

    def score(self, encoded: np.ndarray) -> np.ndarray:
        """P(stroke) of encoded rows (float64, shape (N,))."""
        return self._score(encoded)

    def predict(self, columns: Columns, count: int) -> Predictions:
        """Validate, encode and score request columns."""
        probabilities = self._score(self.encode(columns, count))
        decisions = (probabilities >= self.threshold).astype(np.int64)
        return Predictions(probabilities, decisions, self.version)

    def predict_instances(self, instances: list[dict[str, Any]]) -> Predictions:
        """Score V1-style instances (the in-process equivalent of a V1 request)."""
        columns, count = columns_from_v1({"instances": instances}, self.specs)
        return self.predict(columns, count)


def _instance_index(message: str) -> int:
    head = message.split(":", 1)[0]
    return int(head.removeprefix("instance ")) if head.startswith("instance ") else -1


def compile_model(
    pipeline: Pipeline,
    signature: Mapping[str, Any],
    *,
    threshold: float,
    version: str,
    check_parity: bool = True,
) -> CompiledModel:
    """Compile ``Pipeline([ColumnTransformer, classifier])`` to numpy; the classifier is a
    LogisticRegression, an XGBClassifier or a soft VotingClassifier of them.

    Raises UnsupportedPipelineError for any other shape, and (with ``check_parity``) when the
    compiled probabilities differ from ``pipeline.predict_proba`` by more than
    PARITY_TOLERANCE on probe rows that cover every category, the range bounds and nulls.
    """
    specs = input_specs(signature)
    steps = list(getattr(pipeline, "steps", ()))
    if not isinstance(pipeline, Pipeline) or len(steps) != 2:
        shape = ", ".join(f"{n}={type(s).__name__}" for n, s in steps) or type(pipeline).__name__
        raise UnsupportedPipelineError(
            "the server compiles Pipeline([ColumnTransformer, LogisticRegression | "
            f"XGBClassifier]); got {shape}"
        )
    (_, preprocess), (_, classifier) = steps
    slots, width = _compile_preprocess(preprocess, specs)
    score, classifier_name = _compile_classifier(classifier, width)
    compiled = CompiledModel(
        specs=specs,
        slots=slots,
        width=width,
        score=score,
        threshold=float(threshold),
        version=str(version),
        classifier=classifier_name,
    )
    if check_parity:
        _check_parity(compiled, pipeline, list(signature.get("examples") or []))
    return compiled


def _compile_preprocess(
    preprocess: Any, specs: tuple[InputSpec, ...]
) -> tuple[dict[str, tuple[_Slot, ...]], int]:
    from sklearn.compose import ColumnTransformer

    if not isinstance(preprocess, ColumnTransformer) or not hasattr(preprocess, "transformers_"):
        raise UnsupportedPipelineError(
            f"the first step must be a fitted ColumnTransformer; got {type(preprocess).__name__}"
        )
    if getattr(preprocess, "sparse_output_", False):
        raise UnsupportedPipelineError("the ColumnTransformer produces sparse output")
    fitted_columns = [str(c) for c in getattr(preprocess, "feature_names_in_", [])]
    spec_by_name = {spec.name: spec for spec in specs}
    if set(fitted_columns) != set(spec_by_name):
        missing = sorted(set(fitted_columns) - set(spec_by_name))
        extra = sorted(set(spec_by_name) - set(fitted_columns))
        raise UnsupportedPipelineError(
            "the signature's inputs differ from the columns the pipeline was fitted on "
            f"(not in signature: {missing or 'none'}; not in pipeline: {extra or 'none'})"
        )
    width = len(preprocess.get_feature_names_out())
    slots: dict[str, list[_Slot]] = {name: [] for name in spec_by_name}
    covered: list[int] = []
    for name, transformer, selection in preprocess.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        columns = _selected_columns(selection, fitted_columns, name)
        output = preprocess.output_indices_[name]
        start = int(output.start)
        if _is_passthrough(transformer):
            new: list[tuple[str, _Slot]] = [
                (col, _AffineSlot(start + k, None, 0.0, 1.0)) for k, col in enumerate(columns)
            ]
        elif type(transformer).__name__ == "OneHotEncoder":
            new = _compile_one_hot(transformer, columns, start, spec_by_name, name)
        else:
            new = _compile_numeric(transformer, columns, start, spec_by_name, name)
        produced: list[int] = []
        for column, slot in new:
            spec = spec_by_name[column]
            if isinstance(slot, _AffineSlot) and spec.kind == "string":
                raise UnsupportedPipelineError(
                    f"transformer {name!r} treats string input {column!r} as a number"
                )
            if isinstance(slot, _AffineSlot) and spec.nullable and slot.fill is None:
                raise UnsupportedPipelineError(
                    f"input {column!r} may be null but transformer {name!r} does not impute it"
                )
            slots[column].append(slot)
            produced.extend(
                [slot.column] if isinstance(slot, _AffineSlot) else slot.columns.values()
            )
        if sorted(produced) != list(range(start, int(output.stop))):
            raise UnsupportedPipelineError(
                f"transformer {name!r} output columns are not the ones the compiler derived"
            )
        covered.extend(produced)
    if sorted(covered) != list(range(width)):
        raise UnsupportedPipelineError(
            "the compiled columns do not cover the ColumnTransformer's output exactly"
        )
    return {name: tuple(found) for name, found in slots.items()}, width


def _is_passthrough(transformer: Any) -> bool:
    """``"passthrough"``, kept by a fitted ColumnTransformer as an identity FunctionTransformer."""
    if isinstance(transformer, str):
        return transformer == "passthrough"
    return type(transformer).__name__ == "FunctionTransformer" and transformer.func is None


def _selected_columns(selection: Any, fitted_columns: list[str], name: str) -> list[str]:
    items = [selection] if isinstance(selection, str | int) else list(selection)
    columns: list[str] = []
    for item in items:
        if isinstance(item, str) and item in fitted_columns:
            columns.append(item)
        elif isinstance(item, int | np.integer) and not isinstance(item, bool):
            columns.append(fitted_columns[int(item)])
        else:
            raise UnsupportedPipelineError(
                f"transformer {name!r} selects columns by {item!r}; expected column names"
            )
    return columns


def _compile_one_hot(
    encoder: Any,
    columns: list[str],
    start: int,
    spec_by_name: dict[str, InputSpec],
    name: str,
) -> list[tuple[str, _Slot]]:
    if getattr(encoder, "drop_idx_", None) is not None:
        raise UnsupportedPipelineError(f"one-hot encoder {name!r} drops categories")
    if getattr(encoder, "_infrequent_enabled", False):
        raise UnsupportedPipelineError(f"one-hot encoder {name!r} groups infrequent categories")
    new: list[tuple[str, _Slot]] = []
    offset = start
    for column, categories in zip(columns, encoder.categories_, strict=True):
        spec = spec_by_name[column]
        if spec.kind != "string":
            raise UnsupportedPipelineError(
                f"one-hot encoder {name!r} encodes {column!r}, a {spec.kind} input"
            )
        known = [str(c) for c in categories]
        unseen = [c for c in spec.categories if c not in known]
        if unseen:
            raise UnsupportedPipelineError(
                f"the signature allows {column!r} = {unseen} but the encoder has no column for it"
            )
        new.append((column, _OneHotSlot({c: offset + k for k, c in enumerate(known)})))
        offset += len(known)
    return new


def _compile_numeric(
    transformer: Any,
    columns: list[str],
    start: int,
    spec_by_name: dict[str, InputSpec],
    name: str,
) -> list[tuple[str, _Slot]]:
    """SimpleImputer then StandardScaler (each optional), alone or in a Pipeline."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    steps = (
        [s for _, s in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]
    )
    imputer = scaler = None
    for step in steps:
        if isinstance(step, SimpleImputer) and imputer is None and scaler is None:
            missing = step.missing_values
            if step.add_indicator or not (isinstance(missing, float) and math.isnan(missing)):
                raise UnsupportedPipelineError(
                    f"imputer in {name!r} must replace NaN without a missing indicator"
                )
            imputer = step
        elif isinstance(step, StandardScaler) and scaler is None:
            scaler = step
        else:
            raise UnsupportedPipelineError(
                f"cannot compile transformer {name!r}: {type(step).__name__} is not supported "
                "(expected SimpleImputer then StandardScaler, OneHotEncoder, or passthrough)"
            )
    new: list[tuple[str, _Slot]] = []
    for k, column in enumerate(columns):
        fill = None if imputer is None else float(imputer.statistics_[k])
        if fill is not None and not math.isfinite(fill):
            raise UnsupportedPipelineError(f"imputer in {name!r} has no value for {column!r}")
        mean = float(scaler.mean_[k]) if scaler is not None and scaler.with_mean else 0.0
        scale = float(scaler.scale_[k]) if scaler is not None and scaler.with_std else 1.0
        new.append((column, _AffineSlot(start + k, fill, mean, scale)))
    return new


def _compile_classifier(
    classifier: Any, width: int
) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    from sklearn.linear_model import LogisticRegression

    classes = [int(c) for c in getattr(classifier, "classes_", [])]
    if classes != [0, 1]:
        raise UnsupportedPipelineError(
            f"the classifier must be fitted on the classes [0, 1]; got {classes}"
        )
    if isinstance(classifier, LogisticRegression):
        from scipy.special import expit

        weights = np.asarray(classifier.coef_, dtype=np.float64)
        if weights.shape != (1, width):
            raise UnsupportedPipelineError(
                f"logistic regression has coefficients of shape {weights.shape}; "
                f"expected (1, {width})"
            )
        coef = weights[0].copy()
        intercept = float(classifier.intercept_[0])

        def score_linear(encoded: np.ndarray) -> np.ndarray:
            return np.asarray(expit(encoded @ coef + intercept), dtype=np.float64)

        return score_linear, "LogisticRegression"
    if type(classifier).__name__ == "XGBClassifier":
        objective = classifier.get_params().get("objective")
        if objective != "binary:logistic":
            raise UnsupportedPipelineError(
                f"XGBClassifier objective must be binary:logistic; got {objective}"
            )
        # A private copy scoring on one thread: a request is a few rows, and thread hand-offs
        # cost more than they save (and stall badly when the CPU is shared).
        booster = classifier.get_booster().copy()
        booster.set_param({"nthread": 1})
        if booster.num_features() != width:
            raise UnsupportedPipelineError(
                f"the booster expects {booster.num_features()} features; the "
                f"preprocessing makes {width}"
            )
        try:  # as XGBModel.predict does: use the best iteration when early stopping set one
            iteration_range = (0, int(classifier.best_iteration) + 1)
        except AttributeError:
            iteration_range = (0, 0)
        missing = classifier.missing

        def score_trees(encoded: np.ndarray) -> np.ndarray:
            values = booster.inplace_predict(
                encoded,
                iteration_range=iteration_range,
                predict_type="value",
                missing=missing,
                validate_features=False,
            )
            return np.asarray(values, dtype=np.float64).reshape(-1)

        return score_trees, "XGBClassifier"
    if type(classifier).__name__ == "VotingClassifier":
        return _compile_soft_vote(classifier, width)
    raise UnsupportedPipelineError(
        f"cannot compile classifier {type(classifier).__name__}: supported are "
        "LogisticRegression, XGBClassifier (binary) and a soft VotingClassifier of them"
    )


def _compile_soft_vote(
    classifier: Any, width: int
) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """A soft VotingClassifier: the (weighted) mean of its compiled members' probabilities."""
    if classifier.voting != "soft":
        raise UnsupportedPipelineError(
            f"VotingClassifier must vote 'soft' (average probabilities); got {classifier.voting!r}"
        )
    members = [_compile_classifier(estimator, width) for estimator in classifier.estimators_]
    raw_weights = classifier.weights if classifier.weights is not None else [1.0] * len(members)
    weights = np.asarray(raw_weights, dtype=np.float64)
    if weights.shape != (len(members),) or weights.sum() <= 0:
        raise UnsupportedPipelineError(f"VotingClassifier has unusable weights {raw_weights}")
    weights = weights / weights.sum()  # as np.average in VotingClassifier.predict_proba

    def score_vote(encoded: np.ndarray) -> np.ndarray:
        total = np.zeros(encoded.shape[0], dtype=np.float64)
        for weight, (score, _) in zip(weights, members, strict=True):
            total += weight * score(encoded)
        return total

    return score_vote, "VotingClassifier(" + ", ".join(name for _, name in members) + ")"


def probe_instances(
    specs: Sequence[InputSpec], examples: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Rows that exercise every category, both range bounds and nulls (plus ``examples``)."""
    spread = (0.0, 1.0, 0.5, 0.25, 0.75)
    count = max([len(spec.categories) for spec in specs] + [len(spread)]) + 1  # + a null row
    probes: list[dict[str, Any]] = [dict(example) for example in examples]
    for k in range(count):
        row: dict[str, Any] = {}
        for spec in specs:
            if spec.kind == "number":
                assert spec.minimum is not None and spec.maximum is not None
                fraction = spread[k % len(spread)]
                if spec.nullable and k == count - 1:
                    row[spec.name] = None
                else:
                    row[spec.name] = spec.minimum + (spec.maximum - spec.minimum) * fraction
            elif spec.kind == "integer":
                options = spec.allowed or (0, 1)
                row[spec.name] = options[k % len(options)]
            else:
                row[spec.name] = spec.categories[k % len(spec.categories)]
        probes.append(row)
    return probes


def instances_to_frame(
    instances: Sequence[Mapping[str, Any]], specs: Sequence[InputSpec] | None = None
) -> pd.DataFrame:
    """Instances as the DataFrame the sklearn pipeline takes (null numbers become NaN)."""
    specs = specs or input_specs({"inputs": _schema_inputs()})
    frame = pd.DataFrame.from_records(
        [dict(i) for i in instances], columns=[spec.name for spec in specs]
    )
    for spec in specs:
        if spec.kind == "number":
            frame[spec.name] = pd.to_numeric(frame[spec.name]).astype("float64")
        elif spec.kind == "integer":
            frame[spec.name] = frame[spec.name].astype("int64")
    return frame


def _schema_inputs() -> list[dict[str, Any]]:
    from stroke_mlops.registry.signature import build_signature

    return list(build_signature([])["inputs"])


def _check_parity(
    compiled: CompiledModel, pipeline: Pipeline, examples: list[dict[str, Any]]
) -> None:
    probes = probe_instances(compiled.specs, examples)
    try:
        ours = compiled.predict_instances(probes).probabilities
    except InvalidRequestError as error:
        raise UnsupportedPipelineError(
            f"the signature's examples do not pass its own validation: {error}"
        ) from error
    reference = pipeline.predict_proba(instances_to_frame(probes, compiled.specs))[:, 1]
    gap = np.abs(ours - reference)
    worst = int(np.argmax(gap))
    if not gap[worst] <= PARITY_TOLERANCE:
        raise UnsupportedPipelineError(
            f"the compiled model differs from the pipeline by {gap[worst]:.3g} on probe row "
            f"{worst} ({probes[worst]}); refusing to serve a model that would diverge"
        )


def load_compiled_model(model_dir: Path, public_key: Path) -> CompiledModel:
    """Verify a model directory (signature with ``public_key``, then checksums), deserialize
    the pipeline (skops, allow-listed types only) and compile it.

    Raises model_dir.ModelDirError or UnsupportedPipelineError with a one-line reason.
    """
    verified = open_signed_model_dir(model_dir, public_key)
    return compile_model(
        verified.load_model(),
        verified.signature,
        threshold=verified.threshold,
        version=verified.version,
    )
