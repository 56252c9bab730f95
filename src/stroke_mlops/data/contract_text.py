"""The contract in words: what an expectation asks for and what the data holds.

Offending values are quoted with their CSV line numbers (the header is line 1, so the first data
row is line 2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from stroke_mlops.data import dataset

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import (
        ExpectationValidationResult,
    )

FIRST_DATA_LINE = 2  # line numbers are CSV file lines: the header is line 1
SHOWN_VALUES = 5  # distinct offending values quoted per failure
SHOWN_LINES = 3  # line numbers quoted per offending value
SHOWN_COLUMNS = 12  # column names listed per structural problem


_TYPE_WORDS = {
    frozenset({"int64"}): "integers",
    frozenset({"float64"}): "numbers",
    frozenset({"float64", "int64"}): "numbers",
    frozenset({"str"}): "text",
}


def describe_expected(expectation: Mapping[str, Any]) -> str:
    """What an expectation asks for, in plain English."""
    kind = expectation["type"]
    kwargs = expectation["kwargs"]
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if kind == "expect_table_columns_to_match_ordered_list":
        columns = kwargs["column_list"]
        return f"the {len(columns)} columns {', '.join(columns)} in this order"
    if kind == "expect_table_row_count_to_be_between":
        return f"{_bounds(low, high, thousands=True)} data rows"
    if kind == "expect_column_values_to_be_in_type_list":
        types = kwargs["type_list"]
        words = _TYPE_WORDS.get(frozenset(types), "values")
        return f"{words} (dtype {' or '.join(types)})"
    if kind == "expect_column_values_to_not_be_null":
        mostly = kwargs.get("mostly")
        if mostly is None or mostly >= 1:
            return "no missing values"
        return f"at least {mostly:.0%} of values present"
    if kind == "expect_column_values_to_be_in_set":
        return "one of " + ", ".join(format_value(v, quote=False) for v in kwargs["value_set"])
    if kind == "expect_column_values_to_be_between":
        return f"values {_bounds(low, high)}"
    if kind == "expect_column_values_to_be_unique":
        return "unique values"
    if kind == "expect_compound_columns_to_be_unique":
        columns = kwargs["column_list"]
        mostly = kwargs.get("mostly")
        bound = "" if mostly is None or mostly >= 1 else f" in at least {mostly:.0%} of rows"
        return f"no row repeating another row's {len(columns)} values ({', '.join(columns)}){bound}"
    if kind == "expect_column_mean_to_be_between":
        return f"a mean {_bounds(low, high)}"
    details = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "column")
    return f"{kind} ({details})"


def _bounds(low: Any, high: Any, *, thousands: bool = False) -> str:
    def number(value: Any) -> str:
        return f"{value:,}" if thousands else format_value(value)

    if low is not None and high is not None:
        return f"between {number(low)} and {number(high)}"
    if low is not None:
        return f"at least {number(low)}"
    if high is not None:
        return f"at most {number(high)}"
    return "of any size"


def describe_observed(
    expectation: Mapping[str, Any], result: ExpectationValidationResult, frame: pd.DataFrame
) -> str:
    """What the data holds, with offending values and their CSV line numbers."""
    kind = expectation["type"]
    kwargs = expectation["kwargs"]
    details: Mapping[str, Any] = result.result or {}
    error = _exception_message(result.exception_info)
    column = kwargs.get("column")
    series = frame[column] if column is not None else None

    if error is not None:
        if series is not None and series.dtype == object:
            return "not evaluated: the column holds text, not numbers (see its type check)"
        return f"not evaluated: {dataset.abbreviate(error, limit=200)}"
    if kind == "expect_table_columns_to_match_ordered_list":
        return _describe_columns(kwargs["column_list"], list(frame.columns))
    if kind == "expect_table_row_count_to_be_between":
        rows = int(details.get("observed_value", len(frame)))
        return f"{rows:,} data rows" + (" (header only)" if rows == 0 else "")
    if kind == "expect_column_values_to_be_in_type_list" and series is not None:
        return _describe_type(series, kwargs["type_list"], passed=bool(result.success))
    if kind == "expect_column_mean_to_be_between":
        mean = details.get("observed_value")
        return "no values" if mean is None else f"mean {format_value(mean)}"
    if "unexpected_count" in details:
        return _describe_unexpected(kind, details)
    observed = details.get("observed_value")
    return "as expected" if observed is None else format_value(observed)


def _describe_columns(expected: Sequence[str], found: Sequence[str]) -> str:
    missing = [c for c in expected if c not in found]
    unexpected = [c for c in found if c not in expected]
    repeated = sorted({c for c in found if list(found).count(c) > 1})
    problems = []
    if missing:
        problems.append("missing columns: " + _names(missing))
    if unexpected:
        problems.append("unexpected columns: " + _names(unexpected))
    if repeated:
        problems.append("repeated columns: " + _names(repeated))
    if problems:
        return "; ".join(problems)
    if list(found) != list(expected):
        return "the same columns in another order: " + _names(found)
    return f"the {len(found)} expected columns"


def _describe_type(series: pd.Series, type_list: Sequence[str], *, passed: bool) -> str:
    dtype = str(series.dtype)
    wants_numbers = bool(set(type_list) & {"int64", "float64"})
    if passed:
        return f"dtype {dtype}"
    if wants_numbers and series.dtype == object:
        present = series.dropna()
        text = present[pd.to_numeric(present, errors="coerce").isna()]
        if text.empty:
            return f"dtype {dtype}: numbers stored as text"
        return f"text in {len(text):,} of {len(series):,} rows: " + _quote_with_lines(
            zip(text.tolist(), text.index.tolist(), strict=True), len(text)
        )
    if "int64" in type_list and dtype.startswith("float"):
        present = series.dropna()
        fractional = present[present != present.round()]
        if len(fractional):
            return f"dtype {dtype}, fractions: " + _quote_with_lines(
                zip(fractional.tolist(), fractional.index.tolist(), strict=True),
                len(fractional),
            )
        missing = int(series.isna().sum())
        return f"dtype {dtype} because {_plural(missing, 'value is', 'values are')} missing"
    return f"dtype {dtype}"


_UNEXPECTED_WORDS = {
    "expect_column_values_to_be_in_set": "values outside the set",
    "expect_column_values_to_be_between": "values out of range",
    "expect_column_values_to_be_unique": "rows share a value",
    "expect_compound_columns_to_be_unique": "rows repeat another row's content",
}


def _describe_unexpected(kind: str, details: Mapping[str, Any]) -> str:
    count = int(details["unexpected_count"])
    total = int(details.get("element_count", 0))
    values = details.get("partial_unexpected_list") or []
    indices = details.get("partial_unexpected_index_list") or []
    if kind == "expect_column_values_to_not_be_null":
        share = f" ({_percent(count / total)})" if total else ""
        if count == 0:
            return "no missing values"
        return f"{count:,} of {total:,} values missing{share}: " + _lines_text(
            [_line(i) for i in indices], count
        )
    if count == 0:
        return "all values as expected"
    what = _UNEXPECTED_WORDS.get(kind, "unexpected values")
    if kind == "expect_compound_columns_to_be_unique":  # whole patient rows: lines, not values
        return f"{count:,} of {total:,} {what}: " + _lines_text([_line(i) for i in indices], count)
    return f"{count:,} of {total:,} {what}: " + _quote_with_lines(
        zip(values, indices, strict=False), count
    )


def _plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def _percent(share: float) -> str:
    return "<0.1%" if 0 < share < 0.001 else f"{share:.1%}"


def _quote_with_lines(pairs: Iterable[tuple[Any, Any]], count: int) -> str:
    """``'F' (line 7), 2 (lines 9, 12)``: a few distinct values with where they are."""
    grouped: dict[str, list[int]] = {}
    for value, index in pairs:
        grouped.setdefault(format_value(value), []).append(_line(index))
    shown = list(grouped.items())[:SHOWN_VALUES]
    parts = []
    for value, lines in shown:
        label = "line" if len(lines) == 1 else "lines"
        more = ", ..." if len(lines) > SHOWN_LINES else ""
        parts.append(f"{value} ({label} {', '.join(map(str, lines[:SHOWN_LINES]))}{more})")
    listed = sum(len(lines) for _, lines in shown)
    return ", ".join(parts) + (", ..." if count > listed else "")


def _lines_text(lines: Sequence[int], count: int) -> str:
    shown = lines[: SHOWN_VALUES * SHOWN_LINES]
    label = "line" if count == 1 else "lines"
    return f"{label} {', '.join(map(str, shown))}" + (", ..." if count > len(shown) else "")


def _line(index: Any) -> int:
    return int(index) + FIRST_DATA_LINE


def format_value(value: Any, *, quote: bool = True) -> str:
    if hasattr(value, "item"):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.6g}"
    if isinstance(value, int):
        return str(value)
    text = dataset.abbreviate(str(value))
    return repr(text) if quote else text


def _names(columns: Sequence[str]) -> str:
    """Column names as listed in a report: each abbreviated, at most SHOWN_COLUMNS of them."""
    shown = ", ".join(dataset.abbreviate(str(c)) for c in columns[:SHOWN_COLUMNS])
    more = len(columns) - SHOWN_COLUMNS
    return shown + (f", and {more:,} more" if more > 0 else "")


def _exception_message(info: Mapping[str, Any] | None) -> str | None:
    """GX reports an exception either flat or keyed by the metric that raised it."""
    if not info:
        return None
    if "raised_exception" in info:
        return str(info.get("exception_message")) if info["raised_exception"] else None
    for nested in info.values():
        if isinstance(nested, Mapping) and nested.get("raised_exception"):
            return str(nested.get("exception_message"))
    return None
