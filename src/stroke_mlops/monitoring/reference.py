"""The reference set published with each model version, and its profile for the monitor.

``reference.csv`` holds rows the model did not train on (the held-out test split): the raw-schema
feature columns, the final model's score for each row, and the label. The monitor compares a
window of served requests with it; the same rows give the reference score distribution and
positive-decision rate at the version's threshold.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stroke_mlops.data import schema
from stroke_mlops.monitoring import stats

REFERENCE_FILE = "reference.csv"
SCORE_COLUMN = "score"
REFERENCE_COLUMNS: tuple[str, ...] = (*schema.FEATURE_COLUMNS, SCORE_COLUMN, schema.TARGET_COLUMN)
PERCENTILE_BINS = 100


class ReferenceError(ValueError):
    """The reference set is missing or not in the expected shape (one line naming what)."""


def build_reference_set(model: Any, held_out: pd.DataFrame) -> pd.DataFrame:
    """Held-out cleaned rows with the model's P(stroke) for each, in ``REFERENCE_COLUMNS`` order."""
    features = held_out.loc[:, list(schema.FEATURE_COLUMNS)]
    scores = np.asarray(model.predict_proba(features)[:, 1], dtype=np.float64)
    frame = features.copy()
    frame[SCORE_COLUMN] = scores
    frame[schema.TARGET_COLUMN] = held_out[schema.TARGET_COLUMN].to_numpy(dtype=np.int64)
    return frame.reset_index(drop=True)


def reference_csv_bytes(reference: pd.DataFrame) -> bytes:
    """The CSV bytes publish writes (missing bmi as an empty field; scores at full precision)."""
    return (
        reference.loc[:, list(REFERENCE_COLUMNS)].to_csv(index=False, float_format="%.17g").encode()
    )


def read_reference(content: bytes | Path, *, source: str = REFERENCE_FILE) -> pd.DataFrame:
    """Parse ``reference.csv`` back into typed columns; raise ReferenceError naming the problem."""
    raw = content.read_bytes() if isinstance(content, Path) else content
    try:
        frame = pd.read_csv(io.BytesIO(raw), keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as error:
        raise ReferenceError(f"{source}: not a readable CSV ({error})") from error
    missing = [c for c in REFERENCE_COLUMNS if c not in frame.columns]
    if missing:
        raise ReferenceError(f"{source}: missing column(s) {', '.join(missing)}")
    if frame.empty:
        raise ReferenceError(f"{source}: has no rows")
    for column in (*schema.NUMERIC_COLUMNS, SCORE_COLUMN):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in (*schema.BINARY_COLUMNS, schema.TARGET_COLUMN):
        frame[column] = frame[column].astype("int64")
    for column in schema.CATEGORICAL_COLUMNS:
        frame[column] = frame[column].astype(str)
    return frame.loc[:, list(REFERENCE_COLUMNS)]


@dataclass(frozen=True)
class NumericProfile:
    """A numeric column of the reference: percentile bin edges, counts in them, missing count."""

    edges: np.ndarray
    counts: np.ndarray
    missing: int
    rows: int


@dataclass(frozen=True)
class ReferenceProfile:
    """What the monitor needs of the reference set, computed once per run."""

    rows: int
    threshold: float
    numeric: dict[str, NumericProfile]  # the numeric features and the score
    categorical: dict[str, dict[str, int]]  # categorical and binary features: level → count
    positive_decisions: int
    labels: np.ndarray  # the reference's own labels (its realised recall at the threshold)
    scores: np.ndarray


def level_name(value: Any) -> str:
    """How a categorical or 0/1 value is counted: as text (1 and 1.0 are both "1")."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def profile_reference(reference: pd.DataFrame, *, threshold: float) -> ReferenceProfile:
    """Bin edges and counts of every monitored column of the reference set."""
    numeric: dict[str, NumericProfile] = {}
    for column in (*schema.NUMERIC_COLUMNS, SCORE_COLUMN):
        values = reference[column].to_numpy(dtype=np.float64)
        edges = stats.percentile_edges(values, PERCENTILE_BINS)
        numeric[column] = NumericProfile(
            edges=edges,
            counts=stats.bin_counts(values, edges),
            missing=int(np.isnan(values).sum()),
            rows=len(values),
        )
    categorical = {
        column: {level_name(k): int(v) for k, v in reference[column].value_counts().items()}
        for column in (*schema.BINARY_COLUMNS, *schema.CATEGORICAL_COLUMNS)
    }
    scores = reference[SCORE_COLUMN].to_numpy(dtype=np.float64)
    return ReferenceProfile(
        rows=len(reference),
        threshold=threshold,
        numeric=numeric,
        categorical=categorical,
        positive_decisions=int((scores >= threshold).sum()),
        labels=reference[schema.TARGET_COLUMN].to_numpy(dtype=np.int64),
        scores=scores,
    )
