"""Basic per-column statistics of a validated frame, for the contract report."""

from __future__ import annotations

import dataclasses

import pandas as pd

from stroke_mlops.data import dataset


@dataclasses.dataclass(frozen=True)
class ColumnSummary:
    """Basic statistics of one column of the validated frame."""

    name: str
    dtype: str
    present: int
    missing: int
    distinct: int
    minimum: float | None = None
    mean: float | None = None
    maximum: float | None = None
    top_values: tuple[tuple[str, int], ...] = ()


def summarize_columns(frame: pd.DataFrame) -> list[ColumnSummary]:
    """Per-column dtype, counts, numeric min/mean/max or the most frequent values."""
    summaries = []
    for position, name in enumerate(frame.columns):
        series = frame.iloc[:, position]
        present = int(series.notna().sum())
        summary = ColumnSummary(
            name=dataset.abbreviate(str(name)),
            dtype=str(series.dtype),
            present=present,
            missing=len(series) - present,
            distinct=int(series.nunique(dropna=True)),
        )
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            if present:
                summary = dataclasses.replace(
                    summary,
                    minimum=float(series.min()),
                    mean=float(series.mean()),
                    maximum=float(series.max()),
                )
        else:
            top = series.astype("string").value_counts(dropna=True).head(3)
            summary = dataclasses.replace(
                summary,
                top_values=tuple((dataset.abbreviate(str(v)), int(n)) for v, n in top.items()),
            )
        summaries.append(summary)
    return summaries
