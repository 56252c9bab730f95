"""The model's input signature (``signature.json``): what a server validates requests against.

Built from the schema, so it states exactly what training accepted, plus a few real example
patients from the training data that infra-validation and the docs send as requests.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from stroke_mlops.data import schema

SIGNATURE_VERSION = 1
# Open Inference Protocol (V2) datatypes of each kind of input.
V2_DATATYPES = {"number": "FP64", "integer": "INT64", "string": "BYTES"}


def _input_spec(feature: schema.Feature) -> dict[str, Any]:
    if isinstance(feature, schema.NumericFeature):
        return {
            "name": feature.name,
            "type": "number",
            "minimum": feature.minimum,
            "maximum": feature.maximum,
            "nullable": feature.nullable,
            "datatype": V2_DATATYPES["number"],
        }
    if isinstance(feature, schema.BinaryFeature):
        return {
            "name": feature.name,
            "type": "integer",
            "allowed": [0, 1],
            "nullable": False,
            "datatype": V2_DATATYPES["integer"],
        }
    return {
        "name": feature.name,
        "type": "string",
        "categories": list(feature.categories),
        "nullable": False,
        "datatype": V2_DATATYPES["string"],
    }


def example_instances(
    frame: pd.DataFrame, *, count: int = 3, seed: int = 0
) -> list[dict[str, Any]]:
    """A few rows as request instances: a stroke, a non-stroke, and one with a missing bmi."""
    picks: list[pd.Series] = []
    if schema.TARGET_COLUMN in frame:
        for label in (1, 0):
            rows = frame[frame[schema.TARGET_COLUMN] == label]
            if len(rows):
                picks.append(rows.sample(1, random_state=seed).iloc[0])
    missing_bmi = frame[frame["bmi"].isna()]
    if len(missing_bmi):
        picks.append(missing_bmi.sample(1, random_state=seed).iloc[0])
    while len(picks) < count and len(frame) > len(picks):
        picks.append(frame.iloc[len(picks)])
    return [_instance(row) for row in picks[:count]]


def _instance(row: pd.Series) -> dict[str, Any]:
    instance: dict[str, Any] = {}
    for feature in schema.FEATURES:
        value = row[feature.name]
        if isinstance(feature, schema.NumericFeature):
            number = float(value)
            instance[feature.name] = None if math.isnan(number) else number
        elif isinstance(feature, schema.BinaryFeature):
            instance[feature.name] = int(value)
        else:
            instance[feature.name] = str(value)
    return {name: instance[name] for name in schema.FEATURE_COLUMNS}


def build_signature(examples: list[dict[str, Any]]) -> dict[str, Any]:
    """The signature document written as ``signature.json``."""
    specs = {f.name: _input_spec(f) for f in schema.FEATURES}
    return {
        "signature_version": SIGNATURE_VERSION,
        "model_name": schema.MODEL_NAME,
        "inputs": [specs[name] for name in schema.FEATURE_COLUMNS],
        "outputs": [
            {
                "name": "probability",
                "type": "number",
                "datatype": "FP64",
                "description": "P(stroke) from the fitted pipeline",
            },
            {
                "name": "decision",
                "type": "integer",
                "datatype": "INT64",
                "description": "1 when probability >= the tuned threshold",
            },
        ],
        "examples": examples,
    }
