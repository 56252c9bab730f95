"""The data contract on the real file and on broken copies of it, made here from its bytes."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from stroke_mlops.data import contract, dataset, schema, suite_file

Edit = Callable[[bytes], bytes]


# --------------------------------------------------------------------------- broken copies


def _lines(raw: bytes) -> list[str]:
    return raw.decode("utf-8-sig").split("\r\n")


def _encode(lines: list[str]) -> bytes:
    """As distributed: UTF-8 with BOM, CRLF, no final newline."""
    return ("\ufeff" + "\r\n".join(lines)).encode("utf-8")


def _set_cells(raw: bytes, column: str, values: dict[int, str]) -> bytes:
    """Copy with the given cells replaced; keys are file line numbers (header = line 1)."""
    lines = _lines(raw)
    position = lines[0].split(",").index(column)
    for line, value in values.items():
        fields = lines[line - 1].split(",")
        fields[position] = value
        lines[line - 1] = ",".join(fields)
    return _encode(lines)


def _cell(raw: bytes, line: int, column: str) -> str:
    lines = _lines(raw)
    return lines[line - 1].split(",")[lines[0].split(",").index(column)]


def _without_column(raw: bytes, column: str) -> bytes:
    lines = _lines(raw)
    position = lines[0].split(",").index(column)
    return _encode(
        [",".join(f for i, f in enumerate(line.split(",")) if i != position) for line in lines]
    )


def _renamed(raw: bytes, old: str, new: str) -> bytes:
    lines = _lines(raw)
    lines[0] = ",".join(new if name == old else name for name in lines[0].split(","))
    return _encode(lines)


def _first_rows(raw: bytes, rows: int) -> bytes:
    return _encode(_lines(raw)[: rows + 1])


def _every_tenth_row(raw: bytes) -> bytes:
    """A tenth of the rows with the file's positive rate (its strokes come first)."""
    lines = _lines(raw)
    return _encode([lines[0], *lines[1::10]])


def _checked_failures(report: contract.ContractReport) -> set[tuple[str | None, str]]:
    return {(f.column, f.expectation) for f in report.failures if f.checked}


@pytest.fixture(scope="module")
def real_report(real_csv_bytes: bytes) -> contract.ContractReport:
    return contract.validate_csv_bytes(real_csv_bytes, "healthcare-dataset-stroke-data.csv")


# --------------------------------------------------------------------------- the real file


def test_real_file_meets_every_expectation(real_report: contract.ContractReport) -> None:
    suite = suite_file.load_suite()
    assert real_report.success, real_report.to_text()
    assert real_report.failures == []
    assert real_report.evaluated == len(suite["expectations"]) == len(real_report.outcomes)
    assert {o.status for o in real_report.outcomes} == {"passed"}
    assert real_report.statistics["rows"] == 5110
    assert real_report.statistics["missing_values"] == 201  # the N/A bmi values
    assert real_report.to_text() == (
        "healthcare-dataset-stroke-data.csv: data contract 'stroke_raw' passed: "
        f"{len(suite['expectations'])} expectations met on 5,110 rows"
    )


def test_real_file_outcomes_describe_what_was_observed(
    real_report: contract.ContractReport,
) -> None:
    observed = {(o.column, o.expectation): o.observed for o in real_report.outcomes}
    assert observed[("bmi", "expect_column_values_to_not_be_null")].startswith(
        "201 of 5,110 values missing (3.9%): lines "
    )
    assert observed[("stroke", "expect_column_mean_to_be_between")] == "mean 0.048728"
    assert observed[(None, "expect_table_row_count_to_be_between")] == "5,110 data rows"


# --------------------------------------------------------------------------- broken copies


def _duplicate_id(raw: bytes) -> bytes:
    return _set_cells(raw, "id", {10: _cell(raw, 2, "id")})


BROKEN_COPIES: list[tuple[str, Edit, set[tuple[str | None, str]], list[str]]] = [
    (
        "missing column",
        lambda raw: _without_column(raw, "age"),
        {(None, "expect_table_columns_to_match_ordered_list")},
        ["found missing columns: age", "not checked (column missing): age"],
    ),
    (
        "renamed column",
        lambda raw: _renamed(raw, "age", "agee"),
        {(None, "expect_table_columns_to_match_ordered_list")},
        ["found missing columns: age; unexpected columns: agee"],
    ),
    (
        "text in age",
        lambda raw: _set_cells(raw, "age", {5: "abc"}),
        {
            ("age", "expect_column_values_to_be_in_type_list"),
            ("age", "expect_column_values_to_be_between"),
        },
        [
            "age: expected numbers (dtype float64 or int64); "
            "found text in 1 of 5,110 rows: 'abc' (line 5)",
            "age: expected values between 0 and 120; not evaluated: the column holds text",
        ],
    ),
    (
        "unknown gender code",
        lambda raw: _set_cells(raw, "gender", {7: "F", 12: "F", 30: "M"}),
        {("gender", "expect_column_values_to_be_in_set")},
        [
            "gender: expected one of Female, Male, Other; "
            "found 3 of 5,110 values outside the set: 'F' (lines 7, 12), 'M' (line 30)"
        ],
    ),
    (
        "target outside 0/1",
        lambda raw: _set_cells(raw, "stroke", {9: "2"}),
        {("stroke", "expect_column_values_to_be_in_set")},
        ["stroke: expected one of 0, 1; found 1 of 5,110 values outside the set: 2 (line 9)"],
    ),
    (
        "duplicate id",
        _duplicate_id,
        {("id", "expect_column_values_to_be_unique")},
        ["id: expected unique values; found 2 of 5,110 rows share a value: 9046 (lines 2, 10)"],
    ),
    (
        "bmi out of range",
        lambda raw: _set_cells(raw, "bmi", {4: "250", 6: "2.5"}),
        {("bmi", "expect_column_values_to_be_between")},
        [
            "bmi: expected values between 5 and 120; "
            "found 2 of 5,110 values out of range: 250 (line 4), 2.5 (line 6)"
        ],
    ),
    (
        "too many bmi missing",
        lambda raw: _set_cells(raw, "bmi", dict.fromkeys(range(2, 602), "N/A")),
        {("bmi", "expect_column_values_to_not_be_null")},
        ["bmi: expected at least 90% of values present; found 7"],
    ),
    (
        "indicator with a fraction",
        lambda raw: _set_cells(raw, "hypertension", {4: "0.5"}),
        {
            ("hypertension", "expect_column_values_to_be_in_type_list"),
            ("hypertension", "expect_column_values_to_be_in_set"),
        },
        ["hypertension: expected integers (dtype int64); found dtype float64, fractions: 0.5"],
    ),
    (
        "positive rate too high",
        # The 249 strokes are the first rows: lines 2-1001 as strokes make 1,000 of 5,110.
        lambda raw: _set_cells(raw, "stroke", dict.fromkeys(range(2, 1002), "1")),
        {("stroke", "expect_column_mean_to_be_between")},
        ["stroke: expected a mean between 0.01 and 0.15; found mean 0.195695"],
    ),
    (
        "too few rows",
        _every_tenth_row,
        {(None, "expect_table_row_count_to_be_between")},
        ["table: expected between 1,000 and 1,000,000 data rows; found 511 data rows"],
    ),
    (
        "header only",
        lambda raw: _first_rows(raw, 0),
        {(None, "expect_table_row_count_to_be_between")},
        [
            "table: expected between 1,000 and 1,000,000 data rows; "
            "found 0 data rows (header only)",
            "not checked (no data rows): id, gender, age,",
        ],
    ),
]


@pytest.mark.parametrize(
    ("edit", "failing", "wording"),
    [
        pytest.param(edit, failing, wording, id=name)
        for name, edit, failing, wording in BROKEN_COPIES
    ],
)
def test_broken_copy_is_refused_naming_the_problem(
    real_csv_bytes: bytes, edit: Edit, failing: set[tuple[str | None, str]], wording: list[str]
) -> None:
    report = contract.validate_csv_bytes(edit(real_csv_bytes), "broken.csv")
    text = report.to_text()
    assert not report.success
    assert _checked_failures(report) == failing, text
    assert text.startswith("broken.csv: data contract 'stroke_raw' failed")
    for words in wording:
        assert words in text


def _ten_copies_with_fresh_ids(raw: bytes) -> bytes:
    """The file concatenated with itself ten times, every row given a new, unique id."""
    lines = _lines(raw)
    rows = [line.split(",") for line in lines[1:] if line]
    copies = [[str(n), *fields[1:]] for n, fields in enumerate(rows * 10, start=1)]
    return _encode([lines[0], *(",".join(fields) for fields in copies)])


def test_a_duplicated_file_with_fresh_ids_is_refused(real_csv_bytes: bytes) -> None:
    report = contract.validate_csv_bytes(_ten_copies_with_fresh_ids(real_csv_bytes), "10x.csv")
    text = report.to_text()

    assert not report.success
    assert _checked_failures(report) == {(None, "expect_compound_columns_to_be_unique")}, text
    assert "found 51,100 of 51,100 rows repeat another row's content: lines 2, 3, 4," in text
    assert "'Male'" not in text and "228.69" not in text  # lines only, no patient values


def test_a_huge_field_or_column_name_is_never_echoed_in_full(real_csv_bytes: bytes) -> None:
    huge = "x" * 2_000_000
    for broken in (
        _set_cells(real_csv_bytes, "gender", {5: huge}),
        _renamed(real_csv_bytes, "work_type", huge),
    ):
        report = contract.validate_csv_bytes(broken, "huge.csv")
        text = report.to_text()
        assert not report.success
        assert "… (2,000,000 characters)" in text
        assert len(text) < 5_000
        assert len(report.to_html()) < 100_000


def test_random_bytes_are_not_a_csv(real_csv_bytes: bytes) -> None:
    noise = random.Random(0).randbytes(4096)
    with pytest.raises(dataset.RawDataError, match=r"^noise\.bin: not UTF-8 text"):
        contract.validate_csv_bytes(noise, "noise.bin")


def test_semicolon_separated_file_is_refused_naming_the_separator(real_csv_bytes: bytes) -> None:
    semicolons = real_csv_bytes.replace(b",", b";")
    with pytest.raises(dataset.RawDataError, match="looks ';'-separated"):
        contract.validate_csv_bytes(semicolons, "export.csv")


def test_columns_in_another_order_are_refused(real_csv_bytes: bytes) -> None:
    frame = dataset.read_raw_patients(real_csv_bytes)
    report = contract.validate_patients(frame[list(reversed(frame.columns))])
    assert _checked_failures(report) == {(None, "expect_table_columns_to_match_ordered_list")}
    assert "found the same columns in another order: stroke, smoking_status," in report.to_text()


def test_repeated_column_is_refused_not_raised(real_csv_bytes: bytes) -> None:
    frame = dataset.read_raw_patients(real_csv_bytes)
    doubled = frame.join(frame[["age"]], rsuffix="_copy").rename(columns={"age_copy": "age"})
    report = contract.validate_patients(doubled)
    assert not report.success
    assert "found repeated columns: age" in report.to_text()
    assert "not checked (column appears more than once): age" in report.to_text()


def test_numbers_stored_as_text_are_named(real_csv_bytes: bytes) -> None:
    frame = dataset.read_raw_patients(real_csv_bytes)
    frame["avg_glucose_level"] = frame["avg_glucose_level"].astype(str)
    report = contract.validate_patients(frame, source="frame")
    assert (
        "avg_glucose_level: expected numbers (dtype float64 or int64); "
        "found dtype object: numbers stored as text"
    ) in report.to_text()


# --------------------------------------------------------------------------- reports


@pytest.fixture(scope="module")
def several_broken(real_csv_bytes: bytes) -> contract.ContractReport:
    broken = _set_cells(real_csv_bytes, "age", {5: "abc"})
    broken = _set_cells(broken, "gender", {7: "F"})
    broken = _set_cells(broken, "stroke", {9: "2"})
    broken = _set_cells(broken, "bmi", {4: "250"})
    broken = _duplicate_id(broken)
    return contract.validate_csv_bytes(broken, "several.csv")


def test_to_text_lists_every_failure_one_per_line(several_broken: contract.ContractReport) -> None:
    lines = several_broken.to_text().splitlines()
    assert lines[0] == (
        "several.csv: data contract 'stroke_raw' failed: "
        f"6 of {len(several_broken.outcomes)} expectations not met on 5,110 rows"
    )
    assert len(lines) == 1 + len(several_broken.failures) == 7
    for column, found in [
        ("age", "'abc' (line 5)"),
        ("gender", "'F' (line 7)"),
        ("stroke", "2 (line 9)"),
        ("bmi", "250 (line 4)"),
        ("id", "9046 (lines 2, 10)"),
    ]:
        assert any(line.startswith(f"  - {column}: ") and found in line for line in lines), column


def test_to_html_is_one_self_contained_page(several_broken: contract.ContractReport) -> None:
    page = several_broken.to_html()
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    assert page.count("<html") == page.count("<body") == 1
    assert not re.search(r"<script|<link|<iframe|<img|@import|url\(", page, re.IGNORECASE)
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", page, re.IGNORECASE)
    assert "Data contract failed: 6 of" in page
    assert page.count('class="badge ') == len(several_broken.outcomes)
    # Every failure is shown, escaped, and every column has a statistics row.
    assert "&#x27;abc&#x27; (line 5)" in page
    assert "9046 (lines 2, 10)" in page
    for column in schema.RAW_COLUMNS:
        assert f"<tr><td>{column}</td>" in page


def test_to_html_of_a_passing_report_shows_a_pass_banner(
    real_report: contract.ContractReport,
) -> None:
    page = real_report.to_html()
    assert '<div class="banner pass">Data contract passed: all' in page
    assert "What to fix" not in page


# --------------------------------------------------------------------------- the suite file


def test_committed_suite_agrees_with_the_schema() -> None:
    suite = suite_file.load_suite()
    by_key = {(e["kwargs"].get("column"), e["type"]): e["kwargs"] for e in suite["expectations"]}
    assert by_key[(None, "expect_table_columns_to_match_ordered_list")]["column_list"] == list(
        schema.RAW_COLUMNS
    )
    for feature in schema.CATEGORICAL_FEATURES:
        kwargs = by_key[(feature.name, "expect_column_values_to_be_in_set")]
        assert kwargs["value_set"] == list(feature.categories)
    for numeric in schema.NUMERIC_FEATURES:
        kwargs = by_key[(numeric.name, "expect_column_values_to_be_between")]
        assert (kwargs["min_value"], kwargs["max_value"]) == (numeric.minimum, numeric.maximum)
    for column in (*schema.BINARY_COLUMNS, schema.TARGET_COLUMN):
        assert by_key[(column, "expect_column_values_to_be_in_set")]["value_set"] == [0, 1]
    for column in schema.RAW_COLUMNS:
        assert (column, "expect_column_values_to_be_in_type_list") in by_key
        not_null = by_key[(column, "expect_column_values_to_not_be_null")]
        assert ("mostly" in not_null) == (column == "bmi")
    assert all(e["meta"]["notes"].strip() for e in suite["expectations"])


def test_committed_suite_is_in_the_written_format(tmp_path: Path) -> None:
    rewritten = suite_file.write_suite(suite_file.load_suite(), tmp_path / "suite.json")
    assert rewritten.read_bytes() == suite_file.resolve_suite_path().read_bytes()


def test_unknown_expectation_is_refused_not_dropped(real_csv_bytes: bytes, tmp_path: Path) -> None:
    suite = suite_file.load_suite()
    suite["expectations"].append(
        {"type": "expect_column_values_to_be_purple", "kwargs": {"column": "age"}}
    )
    path = suite_file.write_suite(suite, tmp_path / "suite.json")
    with pytest.raises(suite_file.SuiteError, match="expect_column_values_to_be_purple on age"):
        contract.validate_csv_bytes(real_csv_bytes, "input", suite_path=path)


def test_missing_suite_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(suite_file.SuiteError, match="expectation suite not found"):
        suite_file.load_suite(tmp_path / "nowhere.json")


def test_suite_path_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = suite_file.write_suite(suite_file.load_suite(), tmp_path / "elsewhere.json")
    monkeypatch.setenv(suite_file.SUITE_PATH_ENV, str(path))
    assert suite_file.resolve_suite_path() == path


def test_an_installed_wheel_falls_back_to_its_packaged_suite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packaged = suite_file.write_suite(suite_file.load_suite(), tmp_path / "stroke_raw.json")
    monkeypatch.delenv(suite_file.SUITE_PATH_ENV, raising=False)
    monkeypatch.setattr(suite_file, "DEFAULT_SUITE_PATH", tmp_path / "no-repo" / "stroke_raw.json")
    monkeypatch.setattr(suite_file, "PACKAGED_SUITE_PATH", packaged)
    assert suite_file.resolve_suite_path() == packaged
