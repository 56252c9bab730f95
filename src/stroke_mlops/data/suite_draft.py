"""Our "SchemaGen": GX 1.x has no profiler, so this drafts a suite from a reference file for a
person to review and commit (``stroke-mlops draft-suite``)."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd

from stroke_mlops.data import schema
from stroke_mlops.data.contract_text import format_value
from stroke_mlops.data.suite_file import JsonDict

MAX_DRAFT_CATEGORIES = 50  # text columns with more distinct values get no value-set draft


def draft_suite(
    reference: pd.DataFrame,
    *,
    margin: float = 0.1,
    source: str = "a reference file",
    today: dt.date | None = None,
) -> JsonDict:
    """Draft a suite from a reference raw frame, in the committed suite's JSON format.

    Columns and their order as observed; per column the inferred type, missing values (none, or
    a bound on their share widened by ``margin``), categories as observed for text, ranges
    widened by ``margin`` of the observed span (clipped at 0 when the observed minimum is >= 0),
    0/1 sets for binary columns, uniqueness for integer identifiers; row count and the target's
    positive rate within ``margin`` of what was observed. A person reviews it before committing.
    """
    if not 0 <= margin <= 1:
        raise ValueError(f"margin must be between 0 and 1; got {margin}")
    if reference.empty:
        raise ValueError(f"{source}: no data rows to draft a suite from")
    frame = reference.set_axis([str(c) for c in reference.columns], axis=1)
    drafted = f"drafted from {source} on {(today or dt.date.today()).isoformat()}"
    review = f"{drafted}; review before committing"
    rows = len(frame)
    row_bounds = {
        "min_value": math.floor(rows * (1 - margin)),
        "max_value": math.ceil(rows * (1 + margin)),
    }
    expectations: list[JsonDict] = [
        _draft(
            "expect_table_columns_to_match_ordered_list",
            {"column_list": list(frame.columns)},
            f"observed columns; {review}",
        ),
        _draft(
            "expect_table_row_count_to_be_between", row_bounds, f"observed {rows:,} rows; {review}"
        ),
    ]
    for column in frame.columns:
        expectations += _draft_column(column, frame[column], margin=margin, review=review)
    return {"name": "stroke_raw_draft", "meta": {"notes": review}, "expectations": expectations}


def _draft(kind: str, kwargs: JsonDict, notes: str) -> JsonDict:
    return {"type": kind, "kwargs": kwargs, "meta": {"notes": notes}}


def _draft_column(column: str, series: pd.Series, *, margin: float, review: str) -> list[JsonDict]:
    drafts: list[JsonDict] = []
    present = series.dropna()
    missing_share = 1 - len(present) / len(series)
    is_integer = pd.api.types.is_integer_dtype(series)
    is_number = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if is_integer:
        type_list = ["int64"]
    elif is_number:
        type_list = ["float64", "int64"]
    elif series.dtype == object:
        type_list = ["str"]  # GX checks each value of an object column: str means text
    else:
        type_list = [str(series.dtype)]
    drafts.append(
        _draft(
            "expect_column_values_to_be_in_type_list",
            {"column": column, "type_list": type_list},
            f"observed dtype {series.dtype}; {review}",
        )
    )
    if missing_share == 0:
        drafts.append(
            _draft(
                "expect_column_values_to_not_be_null",
                {"column": column},
                f"no missing values observed; {review}",
            )
        )
    else:
        mostly = max(0.0, math.floor((1 - missing_share * (1 + margin)) * 1000) / 1000)
        drafts.append(
            _draft(
                "expect_column_values_to_not_be_null",
                {"column": column, "mostly": mostly},
                f"observed {missing_share:.1%} missing; {review}",
            )
        )
    if present.empty:
        return drafts
    values = set(present.unique().tolist())
    if is_number and values <= {0, 1}:
        drafts.append(
            _draft(
                "expect_column_values_to_be_in_set",
                {"column": column, "value_set": [0, 1]},
                f"observed only 0 and 1; {review}",
            )
        )
        if column == schema.TARGET_COLUMN:
            rate = float(present.mean())
            drafts.append(
                _draft(
                    "expect_column_mean_to_be_between",
                    {
                        "column": column,
                        "min_value": _round_down(rate * (1 - margin), 4),
                        "max_value": _round_up(rate * (1 + margin), 4),
                    },
                    f"observed positive rate {rate:.2%}; {review}",
                )
            )
    elif is_integer and present.is_unique:
        drafts.append(
            _draft(
                "expect_column_values_to_be_unique",
                {"column": column},
                f"every value distinct: an identifier; {review}",
            )
        )
    elif is_number:
        low, high = float(present.min()), float(present.max())
        span = high - low
        floor = _round_down(low - margin * span, 2)
        drafts.append(
            _draft(
                "expect_column_values_to_be_between",
                {
                    "column": column,
                    "min_value": max(0.0, floor) if low >= 0 else floor,
                    "max_value": _round_up(high + margin * span, 2),
                },
                f"observed {format_value(low)} to {format_value(high)}, "
                f"widened by {margin:.0%} of the span; {review}",
            )
        )
    elif len(values) <= MAX_DRAFT_CATEGORIES:
        drafts.append(
            _draft(
                "expect_column_values_to_be_in_set",
                {"column": column, "value_set": sorted(values, key=str)},
                f"categories as observed; {review}",
            )
        )
    return drafts


def _round_down(value: float, digits: int) -> float:
    scale = 10**digits
    return math.floor(value * scale) / scale


def _round_up(value: float, digits: int) -> float:
    scale = 10**digits
    return math.ceil(value * scale) / scale
