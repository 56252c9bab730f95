"""The data contract: the raw CSV's Great Expectations suite, run, reported and drafted.

The suite is reviewed JSON (``gx/expectations/stroke_raw.json``) in GX Core 1.x's own format: a
``name``, suite ``meta`` and a list of ``{"type", "kwargs", "meta": {"notes"}}`` expectations.
It checks the RAW frame as ``dataset.read_raw_patients`` returns it (types inferred, ``N/A`` read as
missing), before any cleaning.

``validate_patients`` runs every expectation on an ephemeral GX context (nothing written to disk)
and turns GX's results into a ``ContractReport`` a person can act on: each failure names the
column, what was expected and a few offending values with their CSV line numbers (the header is
line 1, so the first data row is line 2). Structural problems that make column checks meaningless
(missing or renamed columns, no data rows) are reported as failures, never raised.

``draft_suite`` is our "SchemaGen": GX 1.x has no profiler, so it drafts a suite from a reference
file for a person to review and commit.

``great_expectations`` takes seconds to import, so it is imported only inside the functions that
run it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import math
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from stroke_mlops.data import dataset, schema

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import (
        ExpectationValidationResult,
    )

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_SUITE_PATH = REPO_ROOT / "gx" / "expectations" / "stroke_raw.json"
# An installed wheel has no gx/ folder: it ships the same suite beside this module.
PACKAGED_SUITE_PATH = Path(__file__).resolve().with_name("stroke_raw.json")
SUITE_PATH_ENV = "STROKE_MLOPS_SUITE"
DATA_DOCS_DIR = REPO_ROOT / "gx" / "uncommitted" / "data_docs" / "local_site"

FIRST_DATA_LINE = 2  # line numbers are CSV file lines: the header is line 1
SHOWN_VALUES = 5  # distinct offending values quoted per failure
SHOWN_LINES = 3  # line numbers quoted per offending value
GX_PARTIAL_UNEXPECTED = 50  # offending values GX returns per expectation (SUMMARY format)
MAX_DRAFT_CATEGORIES = 50  # text columns with more distinct values get no value-set draft

Status = Literal["passed", "failed", "not run"]
JsonDict = dict[str, Any]


class SuiteError(ValueError):
    """The expectation suite file is missing or malformed (the message names the file)."""


@dataclasses.dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's result, in words: what was expected and what the data holds."""

    expectation: str
    column: str | None
    status: Status
    expected: str
    observed: str
    notes: str


@dataclasses.dataclass(frozen=True)
class ContractFailure:
    """An expectation the data did not meet, or could not be checked against."""

    column: str | None
    expectation: str
    expected: str
    observed: str
    notes: str = ""
    checked: bool = True  # False: not run, because of a structural problem (see observed)

    def to_text(self) -> str:
        """One line: column, what was expected, what was found."""
        where = self.column if self.column is not None else "table"
        found = self.observed if self.observed.startswith("not ") else f"found {self.observed}"
        return f"{where}: expected {self.expected}; {found}"


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


@dataclasses.dataclass(frozen=True)
class ContractReport:
    """The outcome of running the whole suite on one frame."""

    source: str
    suite_name: str
    success: bool
    failures: list[ContractFailure]
    outcomes: list[ExpectationOutcome]
    evaluated: int
    statistics: dict[str, int | float]
    columns: list[ColumnSummary]

    def to_text(self) -> str:
        """A message listing every failure, one per line (a single line when the data passed)."""
        rows = int(self.statistics["rows"])
        total = len(self.outcomes)
        if self.success:
            return (
                f"{self.source}: data contract {self.suite_name!r} passed: "
                f"{total} expectations met on {rows:,} rows"
            )
        checked = [f for f in self.failures if f.checked]
        lines = [
            f"{self.source}: data contract {self.suite_name!r} failed: "
            f"{len(checked)} of {total} expectations not met on {rows:,} rows"
        ]
        lines += [f"  - {failure.to_text()}" for failure in checked]
        for reason, columns in _group_unchecked(self.failures).items():
            lines.append(f"  - not checked ({reason}): {', '.join(columns)}")
        return "\n".join(lines)

    def to_html(self) -> str:
        """A self-contained HTML page (inline CSS, no scripts or external assets)."""
        return _render_html(self)


# --------------------------------------------------------------------------- the suite file


def resolve_suite_path(suite_path: Path | None = None) -> Path:
    """The suite to use: ``suite_path``, else $STROKE_MLOPS_SUITE, else the repository's
    ``gx/expectations/stroke_raw.json``, else the copy packaged with an installed wheel."""
    if suite_path is not None:
        return Path(suite_path)
    if from_env := os.environ.get(SUITE_PATH_ENV):
        return Path(from_env)
    if not DEFAULT_SUITE_PATH.is_file() and PACKAGED_SUITE_PATH.is_file():
        return PACKAGED_SUITE_PATH
    return DEFAULT_SUITE_PATH


def load_suite(suite_path: Path | None = None) -> JsonDict:
    """Read and check the suite JSON (SuiteError naming the file and the bad entry)."""
    path = resolve_suite_path(suite_path)
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise SuiteError(
            f"{path}: expectation suite not found (pass suite_path or set {SUITE_PATH_ENV})"
        ) from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SuiteError(f"{path}: not a readable JSON expectation suite: {error}") from error
    if not isinstance(suite, dict) or not isinstance(suite.get("name"), str):
        raise SuiteError(f"{path}: expected a JSON object with a 'name' string")
    expectations = suite.get("expectations")
    if not isinstance(expectations, list) or not expectations:
        raise SuiteError(f"{path}: expected a non-empty 'expectations' list")
    for number, expectation in enumerate(expectations, start=1):
        if not (
            isinstance(expectation, dict)
            and isinstance(expectation.get("type"), str)
            and isinstance(expectation.get("kwargs"), dict)
        ):
            raise SuiteError(
                f"{path}: expectation {number} must be an object with 'type' and 'kwargs'"
            )
    return suite


def write_suite(suite: Mapping[str, Any], path: Path) -> Path:
    """Write a suite as pretty JSON with a stable key order, so that diffs review well."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_ordered_suite(suite), indent=2, ensure_ascii=False, default=_json_scalar)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _ordered_suite(suite: Mapping[str, Any]) -> JsonDict:
    ordered: JsonDict = {key: suite[key] for key in ("name", "meta") if key in suite}
    ordered["expectations"] = [
        _ordered_expectation(expectation) for expectation in suite.get("expectations", [])
    ]
    for key in sorted(set(suite) - set(ordered)):
        ordered[key] = suite[key]
    return ordered


_KWARGS_ORDER = (
    "column",
    "column_list",
    "type_list",
    "value_set",
    "min_value",
    "max_value",
    "mostly",
)


def _ordered_expectation(expectation: Mapping[str, Any]) -> JsonDict:
    kwargs = dict(expectation.get("kwargs", {}))
    ordered_kwargs = {key: kwargs[key] for key in _KWARGS_ORDER if key in kwargs}
    ordered_kwargs |= {key: kwargs[key] for key in sorted(kwargs) if key not in _KWARGS_ORDER}
    ordered: JsonDict = {"type": expectation["type"], "kwargs": ordered_kwargs}
    if "meta" in expectation:
        ordered["meta"] = dict(sorted(expectation["meta"].items()))
    for key in sorted(set(expectation) - {"type", "kwargs", "meta"}):
        ordered[key] = expectation[key]
    return ordered


def _json_scalar(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serializable: {value!r}")


# --------------------------------------------------------------------------- validation


def validate_csv_bytes(
    raw: bytes, source: str, *, suite_path: Path | None = None
) -> ContractReport:
    """Read raw CSV bytes (``dataset.RawDataError`` propagates) and validate them."""
    frame = dataset.read_raw_patients(raw, source=source)
    return validate_patients(frame, suite_path, source=source)


def validate_patients(
    frame: pd.DataFrame, suite_path: Path | None = None, *, source: str = "input"
) -> ContractReport:
    """Run every expectation of the suite on the raw frame; never stops at the first failure.

    Expectations on a column the frame lacks (or holds twice), and column expectations on a
    frame without rows, are reported as not run; the structural expectations say why.
    """
    started = time.perf_counter()
    suite = load_suite(suite_path)
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1).reset_index(drop=True)
    expectations: list[JsonDict] = suite["expectations"]

    counts = pd.Series(frame.columns).value_counts()
    duplicated = set(counts[counts > 1].index)
    skip_reasons: dict[int, str] = {}
    for position, expectation in enumerate(expectations):
        column = expectation["kwargs"].get("column")
        if column is None:
            continue
        if column not in frame.columns:
            skip_reasons[position] = "column missing"
        elif column in duplicated:
            skip_reasons[position] = "column appears more than once"
        elif len(frame) == 0:
            skip_reasons[position] = "no data rows"

    runnable = [e for i, e in enumerate(expectations) if i not in skip_reasons]
    results = iter(_run_gx(frame, suite["name"], runnable, resolve_suite_path(suite_path)))

    outcomes: list[ExpectationOutcome] = []
    failures: list[ContractFailure] = []
    for position, expectation in enumerate(expectations):
        expected = describe_expected(expectation)
        notes = str(expectation.get("meta", {}).get("notes", ""))
        column = expectation["kwargs"].get("column")
        if position in skip_reasons:
            status: Status = "not run"
            observed = skip_reasons[position]
        else:
            result = next(results)
            status = "passed" if result.success else "failed"
            observed = _describe_observed(expectation, result, frame)
        outcomes.append(
            ExpectationOutcome(expectation["type"], column, status, expected, observed, notes)
        )
        if status != "passed":
            failures.append(
                ContractFailure(
                    column, expectation["type"], expected, observed, notes, status == "failed"
                )
            )

    statistics: dict[str, int | float] = {
        "rows": len(frame),
        "columns": frame.shape[1],
        "missing_values": int(frame.isna().sum().sum()),
        "expectations": len(outcomes),
        "passed": sum(o.status == "passed" for o in outcomes),
        "failed": sum(o.status == "failed" for o in outcomes),
        "not_run": sum(o.status == "not run" for o in outcomes),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return ContractReport(
        source=source,
        suite_name=suite["name"],
        success=not failures,
        failures=failures,
        outcomes=outcomes,
        evaluated=len(runnable),
        statistics=statistics,
        columns=summarize_columns(frame),
    )


def _run_gx(
    frame: pd.DataFrame, suite_name: str, expectations: Sequence[JsonDict], suite_path: Path
) -> list[ExpectationValidationResult]:
    """Validate on an ephemeral GX context; results come back in the suite's order."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    configurations = []
    for expectation in expectations:
        configuration = {
            "type": expectation["type"],
            "kwargs": expectation["kwargs"],
            "meta": expectation.get("meta", {}),
            "id": str(uuid.uuid4()),
        }
        try:  # GX drops an invalid expectation with only a log line: refuse it instead
            ExpectationConfiguration(**configuration).to_domain_obj()
        except Exception as error:
            raise SuiteError(
                f"{suite_path}: expectation {expectation['type']} "
                f"on {expectation['kwargs'].get('column', 'the table')} is not valid: {error}"
            ) from error
        configurations.append(configuration)
    if not configurations:
        return []

    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            progress_bars=ProgressBarsConfig(globally=False),
        ),
    )
    batch = (
        context.data_sources.add_pandas("raw_patients")
        .add_dataframe_asset("patients")
        .add_batch_definition_whole_dataframe("whole_frame")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    suite = gx.ExpectationSuite(name=suite_name, expectations=configurations)
    validation = batch.validate(
        suite,
        result_format={
            "result_format": "SUMMARY",
            "partial_unexpected_count": GX_PARTIAL_UNEXPECTED,
            "return_unexpected_index_query": False,
        },
    )
    by_id = {
        result.expectation_config.id: result
        for result in validation.results
        if result.expectation_config is not None
    }
    return [by_id[configuration["id"]] for configuration in configurations]


# --------------------------------------------------------------------------- words


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
        return "one of " + ", ".join(_format_value(v, quote=False) for v in kwargs["value_set"])
    if kind == "expect_column_values_to_be_between":
        return f"values {_bounds(low, high)}"
    if kind == "expect_column_values_to_be_unique":
        return "unique values"
    if kind == "expect_column_mean_to_be_between":
        return f"a mean {_bounds(low, high)}"
    details = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "column")
    return f"{kind} ({details})"


def _bounds(low: Any, high: Any, *, thousands: bool = False) -> str:
    def number(value: Any) -> str:
        return f"{value:,}" if thousands else _format_value(value)

    if low is not None and high is not None:
        return f"between {number(low)} and {number(high)}"
    if low is not None:
        return f"at least {number(low)}"
    if high is not None:
        return f"at most {number(high)}"
    return "of any size"


def _describe_observed(
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
        return f"not evaluated: {error}"
    if kind == "expect_table_columns_to_match_ordered_list":
        return _describe_columns(kwargs["column_list"], list(frame.columns))
    if kind == "expect_table_row_count_to_be_between":
        rows = int(details.get("observed_value", len(frame)))
        return f"{rows:,} data rows" + (" (header only)" if rows == 0 else "")
    if kind == "expect_column_values_to_be_in_type_list" and series is not None:
        return _describe_type(series, kwargs["type_list"], passed=bool(result.success))
    if kind == "expect_column_mean_to_be_between":
        mean = details.get("observed_value")
        return "no values" if mean is None else f"mean {_format_value(mean)}"
    if "unexpected_count" in details:
        return _describe_unexpected(kind, details)
    observed = details.get("observed_value")
    return "as expected" if observed is None else _format_value(observed)


def _describe_columns(expected: Sequence[str], found: Sequence[str]) -> str:
    missing = [c for c in expected if c not in found]
    unexpected = [c for c in found if c not in expected]
    repeated = sorted({c for c in found if list(found).count(c) > 1})
    problems = []
    if missing:
        problems.append("missing columns: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected columns: " + ", ".join(unexpected))
    if repeated:
        problems.append("repeated columns: " + ", ".join(repeated))
    if problems:
        return "; ".join(problems)
    if list(found) != list(expected):
        return "the same columns in another order: " + ", ".join(found)
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
        grouped.setdefault(_format_value(value), []).append(_line(index))
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


def _format_value(value: Any, *, quote: bool = True) -> str:
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
    text = str(value)
    return repr(text) if quote else text


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


def _group_unchecked(failures: Iterable[ContractFailure]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for failure in failures:
        if not failure.checked:
            columns = grouped.setdefault(failure.observed, [])
            if failure.column is not None and failure.column not in columns:
                columns.append(failure.column)
    return grouped


# --------------------------------------------------------------------------- statistics


def summarize_columns(frame: pd.DataFrame) -> list[ColumnSummary]:
    """Per-column dtype, counts, numeric min/mean/max or the most frequent values."""
    summaries = []
    for position, name in enumerate(frame.columns):
        series = frame.iloc[:, position]
        present = int(series.notna().sum())
        summary = ColumnSummary(
            name=str(name),
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
                summary, top_values=tuple((str(v), int(n)) for v, n in top.items())
            )
        summaries.append(summary)
    return summaries


# --------------------------------------------------------------------------- the draft suite


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
                f"observed {_format_value(low)} to {_format_value(high)}, "
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


# --------------------------------------------------------------------------- GX Data Docs


def build_data_docs(
    frame: pd.DataFrame,
    suite_path: Path | None = None,
    *,
    docs_dir: Path = DATA_DOCS_DIR,
) -> Path:
    """Build GX's own Data Docs site for one validation run; returns the site's index.html.

    Uses an ephemeral context whose only Data Docs site is a local folder (``gx/uncommitted``
    by default), so nothing else is written and the committed suite is left untouched.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    suite = load_suite(suite_path)
    docs_dir = Path(docs_dir).resolve()
    site = {
        "class_name": "SiteBuilder",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs_dir),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            progress_bars=ProgressBarsConfig(globally=False),
            data_docs_sites={"local_site": site},
        ),
    )
    batch_definition = (
        context.data_sources.add_pandas("raw_patients")
        .add_dataframe_asset("patients")
        .add_batch_definition_whole_dataframe("whole_frame")
    )
    expectation_suite = context.suites.add(
        gx.ExpectationSuite(
            name=suite["name"],
            expectations=[
                {"type": e["type"], "kwargs": e["kwargs"], "meta": e.get("meta", {})}
                for e in suite["expectations"]
            ],
        )
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="raw_patients", data=batch_definition, suite=expectation_suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="raw_patients",
            validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
            result_format={"result_format": "SUMMARY"},
        )
    )
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1).reset_index(drop=True)
    checkpoint.run(batch_parameters={"dataframe": frame})
    return docs_dir / "index.html"


# --------------------------------------------------------------------------- HTML


_CSS = """
*{box-sizing:border-box}
body{margin:0;padding:24px;font:14px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,
Helvetica,Arial,sans-serif;color:#1f2328;background:#f6f8fa}
main{max-width:1200px;margin:0 auto}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.sub{color:#59636e;margin:0 0 16px}
.banner{border-radius:8px;padding:14px 18px;margin:0 0 16px;font-size:16px;font-weight:600;
border:1px solid}
.banner.pass{background:#dafbe1;border-color:#4ac26b;color:#116329}
.banner.fail{background:#ffebe9;border-color:#ff8182;color:#a40e26}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 8px}
.card{background:#fff;border:1px solid #d1d9e0;border-radius:8px;padding:10px 16px;min-width:130px}
.card b{display:block;font-size:20px}.card span{color:#59636e;font-size:12px}
ul.problems{background:#fff;border:1px solid #ff8182;border-radius:8px;padding:10px 10px 10px 30px;
margin:0}
ul.problems li{margin:4px 0}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d1d9e0;
border-radius:8px;overflow:hidden}
th,td{text-align:left;vertical-align:top;padding:7px 10px;border-bottom:1px solid #eaeef2}
th{background:#f0f3f6;font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:#59636e}
tr.failed td{background:#fff5f5}tr.notrun td{background:#fffbea}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:#59636e}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600;
white-space:nowrap}
.badge.passed{background:#dafbe1;color:#116329}.badge.failed{background:#ffebe9;color:#a40e26}
.badge.notrun{background:#fff8c5;color:#7d4e00}
.notes{color:#59636e;font-size:13px}
footer{color:#59636e;font-size:12px;margin-top:24px}
"""


def _render_html(report: ContractReport) -> str:
    e = html.escape
    stats = report.statistics
    verdict = "passed" if report.success else "failed"
    headline = (
        f"Data contract passed: all {stats['expectations']} expectations met"
        if report.success
        else f"Data contract failed: {stats['failed']} of {stats['expectations']} expectations "
        f"not met" + (f", {stats['not_run']} not run" if stats["not_run"] else "")
    )
    cards = [
        (f"{int(stats['rows']):,}", "rows"),
        (str(stats["columns"]), "columns"),
        (f"{int(stats['missing_values']):,}", "missing values"),
        (str(stats["passed"]), "expectations met"),
        (str(stats["failed"]), "not met"),
        (str(stats["not_run"]), "not run"),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Data contract {e(verdict)}: {e(report.source)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>Data contract <code>{e(report.suite_name)}</code></h1>",
        f'<p class="sub">Source: {e(report.source)}</p>',
        f'<div class="banner {"pass" if report.success else "fail"}">{e(headline)}</div>',
        '<div class="cards">',
        *(f'<div class="card"><b>{e(v)}</b><span>{e(k)}</span></div>' for v, k in cards),
        "</div>",
    ]
    if not report.success:
        problems = report.to_text().splitlines()[1:]
        parts += [
            "<h2>What to fix</h2>",
            '<ul class="problems">',
            *(f"<li>{e(p.removeprefix('  - '))}</li>" for p in problems),
            "</ul>",
        ]
    parts += [
        "<h2>Expectations</h2>",
        "<table><thead><tr><th>Status</th><th>Column</th><th>Expected</th><th>Observed</th>"
        "<th>Why</th></tr></thead><tbody>",
    ]
    for outcome in sorted(report.outcomes, key=lambda o: o.status == "passed"):
        css = outcome.status.replace(" ", "")
        parts.append(
            f'<tr class="{css}"><td><span class="badge {css}">{e(outcome.status)}</span></td>'
            f"<td>{e(outcome.column or '(table)')}<br><code>{e(outcome.expectation)}</code></td>"
            f"<td>{e(outcome.expected)}</td><td>{e(outcome.observed)}</td>"
            f'<td class="notes">{e(outcome.notes)}</td></tr>'
        )
    parts += [
        "</tbody></table>",
        "<h2>Columns</h2>",
        "<table><thead><tr><th>Column</th><th>dtype</th><th>Present</th><th>Missing</th>"
        "<th>Distinct</th><th>Min</th><th>Mean</th><th>Max</th><th>Most frequent</th></tr>"
        "</thead><tbody>",
    ]
    for column in report.columns:
        top = ", ".join(f"{value} ({count:,})" for value, count in column.top_values)
        numbers = (
            "".join(
                f'<td class="num">{e(_format_stat(v))}</td>'
                for v in (column.minimum, column.mean, column.maximum)
            )
            if column.mean is not None
            else '<td class="num"></td>' * 3
        )
        parts.append(
            f"<tr><td>{e(column.name)}</td><td><code>{e(column.dtype)}</code></td>"
            f'<td class="num">{column.present:,}</td><td class="num">{column.missing:,}</td>'
            f'<td class="num">{column.distinct:,}</td>{numbers}<td>{e(top)}</td></tr>'
        )
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts += [
        "</tbody></table>",
        f"<footer>{report.evaluated} expectations evaluated by Great Expectations in "
        f"{stats['seconds']} s; line numbers count the CSV header as line 1. "
        f"Generated {e(generated)}.</footer>",
        "</main></body></html>",
    ]
    return "\n".join(parts)


def _format_stat(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.2f}" if abs(value) < 1e6 else f"{value:.4g}"
