"""The fast scoring path of the model server: the fitted pipeline compiled to numpy.

A request's columns (see :mod:`stroke_mlops.serving.protocol`) are checked against the model's
``signature.json`` and encoded straight from the JSON lists into the classifier's input matrix,
without pandas or the ColumnTransformer in the hot path: at load, :func:`compile_model` turns the
fitted ``preprocess`` step into plain numbers (imputation values, scaler mean/scale, one-hot
column offsets, the output column order) and the classifier into a direct scorer
(LogisticRegression: dot product + sigmoid; XGBoost: ``inplace_predict``).

The compiled model must give the fitted pipeline's probabilities: a pipeline shape the compiler
does not know is refused (:class:`UnsupportedPipelineError`), and :func:`compile_model` compares
both on probe rows covering every category, both range bounds and a missing ``bmi`` before it
returns, so a compiled model never silently diverges.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from stroke_mlops.data import schema
from stroke_mlops.serving.protocol.columns import Columns, columns_from_v1
from stroke_mlops.serving.protocol.errors import InvalidRequestError, raise_if_any
from stroke_mlops.serving.protocol.inputs import InputSpec, input_specs
from stroke_mlops.serving.protocol.values import VALUE_READERS

PARITY_TOLERANCE = 1e-9  # compiled vs. sklearn probability on the probe rows at load


class UnsupportedPipelineError(ValueError):
    """The fitted pipeline has a shape the compiler does not know, or its output would differ."""


# --------------------------------------------------------------------------------------------
# Encoding values


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
        self._score = score
        self._plan = tuple((spec, VALUE_READERS[spec.kind], slots[spec.name]) for spec in specs)

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
            raise_if_any(errors)
        return np.array(rows, dtype=np.float64)

    def score(self, encoded: np.ndarray) -> np.ndarray:
        """P(stroke) of encoded rows (float64, shape (N,))."""
        return self._score(encoded)

    def predict(self, columns: Columns, count: int) -> Predictions:
        """Validate, encode and score request columns."""
        probabilities = self._score(self.encode(columns, count))
        decisions = (probabilities >= self.threshold).astype(np.int64)
        return Predictions(probabilities, decisions, self.version)

    def input_columns(self) -> dict[str, tuple[int, ...]]:
        """The encoded columns each input fills (a number: one; a category: one per value)."""
        return {
            spec.name: tuple(
                column
                for slot in slots
                for column in (
                    (slot.column,) if isinstance(slot, _AffineSlot) else slot.columns.values()
                )
            )
            for spec, _read, slots in self._plan
        }

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
    if _groups_infrequent(encoder):
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


def _groups_infrequent(encoder: Any) -> bool:
    """Whether a OneHotEncoder maps rare categories to one column: its documented parameters
    ``max_categories`` (>= 1) or ``min_frequency`` turn that on."""
    max_categories = getattr(encoder, "max_categories", None)
    return (max_categories is not None and max_categories >= 1) or (
        getattr(encoder, "min_frequency", None) is not None
    )


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
        from stroke_mlops.compat.xgboost import DensePredictor

        score_trees = DensePredictor(booster, iteration_range, classifier.missing)

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
