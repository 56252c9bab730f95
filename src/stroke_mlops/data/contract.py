"""The data contract: the raw CSV's Great Expectations suite, run and reported.

It checks the RAW frame as ``dataset.read_raw_patients`` returns it (types inferred, ``N/A`` read as
missing), before any cleaning.

``validate_patients`` runs every expectation on an ephemeral GX context (nothing written to disk)
and turns GX's results into a ``ContractReport`` a person can act on: each failure names the
column, what was expected and a few offending values with their CSV line numbers (the header is
line 1, so the first data row is line 2). Structural problems that make column checks meaningless
(missing or renamed columns, no data rows) are reported as failures, never raised.

Beside it: ``suite_file`` (reading and writing the suite), ``contract_text`` (the words),
``column_summary``, ``contract_html`` (the report page), ``suite_draft`` (drafting a suite) and
``data_docs`` (GX's own site).

``great_expectations`` takes seconds to import, so it is imported only inside the functions that
run it.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from stroke_mlops.data import dataset
from stroke_mlops.data.column_summary import ColumnSummary, summarize_columns
from stroke_mlops.data.contract_html import render_html
from stroke_mlops.data.contract_text import describe_expected, describe_observed
from stroke_mlops.data.suite_file import JsonDict, SuiteError, load_suite, resolve_suite_path

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import (
        ExpectationValidationResult,
    )

GX_PARTIAL_UNEXPECTED = 50  # offending values GX returns per expectation (SUMMARY format)

Status = Literal["passed", "failed", "not run"]


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
        return render_html(self)


def _group_unchecked(failures: Iterable[ContractFailure]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for failure in failures:
        if not failure.checked:
            columns = grouped.setdefault(failure.observed, [])
            name = failure.column if failure.column is not None else "duplicate rows"
            if name not in columns:
                columns.append(name)
    return grouped


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
        columns = _columns_checked(expectation)
        if not columns:
            continue
        if any(column not in frame.columns for column in columns):
            skip_reasons[position] = "column missing"
        elif any(column in duplicated for column in columns):
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
            observed = describe_observed(expectation, result, frame)
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


def _columns_checked(expectation: JsonDict) -> list[str]:
    """The columns whose values an expectation reads (none for table-level ones)."""
    kwargs = expectation["kwargs"]
    if "column" in kwargs:
        return [str(kwargs["column"])]
    if expectation["type"].startswith("expect_table_"):
        return []
    return [str(c) for c in kwargs.get("column_list", [])]


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
