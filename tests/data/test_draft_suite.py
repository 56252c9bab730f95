"""Drafting a suite from a reference file (our SchemaGen), and GX's own Data Docs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from stroke_mlops.data import contract, data_docs, dataset, suite_draft, suite_file

TODAY = dt.date(2025, 1, 31)


@pytest.fixture(scope="module")
def real_raw(real_csv_bytes: bytes) -> pd.DataFrame:
    return dataset.read_raw_patients(real_csv_bytes)


@pytest.fixture(scope="module")
def drafted(real_raw: pd.DataFrame) -> dict[str, Any]:
    return suite_draft.draft_suite(real_raw, source="stroke.csv", today=TODAY)


def _kwargs(suite: dict[str, Any], column: str | None, kind: str) -> dict[str, Any]:
    (kwargs,) = [
        e["kwargs"]
        for e in suite["expectations"]
        if e["type"] == kind and e["kwargs"].get("column") == column
    ]
    return kwargs


def test_draft_accepts_its_reference_and_refuses_an_age_beyond_the_drafted_range(
    drafted: dict[str, Any], real_csv_bytes: bytes, tmp_path: Path
) -> None:
    path = suite_file.write_suite(drafted, tmp_path / "draft.json")
    passed = contract.validate_csv_bytes(real_csv_bytes, "stroke.csv", suite_path=path)
    assert passed.success, passed.to_text()

    lines = real_csv_bytes.decode("utf-8-sig").split("\r\n")
    fields = lines[4].split(",")
    fields[2] = "95"  # within the committed 0-120, beyond the drafted 82 + 10% of the span
    lines[4] = ",".join(fields)
    older = ("\ufeff" + "\r\n".join(lines)).encode()
    refused = contract.validate_csv_bytes(older, "older.csv", suite_path=path)
    assert not refused.success
    assert [(f.column, f.expectation) for f in refused.failures] == [
        ("age", "expect_column_values_to_be_between")
    ]
    assert "age: expected values between 0 and 90.2; found 1 of 5,110 values out of range: " in (
        refused.to_text()
    )
    assert "95 (line 5)" in refused.to_text()


def test_draft_records_what_the_reference_holds(drafted: dict[str, Any]) -> None:
    assert _kwargs(drafted, None, "expect_table_columns_to_match_ordered_list")["column_list"][
        :3
    ] == ["id", "gender", "age"]
    assert _kwargs(drafted, "gender", "expect_column_values_to_be_in_set")["value_set"] == [
        "Female",
        "Male",
        "Other",
    ]
    assert _kwargs(drafted, "gender", "expect_column_values_to_be_in_type_list") == {
        "column": "gender",
        "type_list": ["str"],
    }
    assert _kwargs(drafted, "stroke", "expect_column_values_to_be_in_set")["value_set"] == [0, 1]
    assert "column" in _kwargs(drafted, "id", "expect_column_values_to_be_unique")
    # Observed age 0.08-82: widened by 8.19 each side, clipped at 0 because ages are >= 0.
    age = _kwargs(drafted, "age", "expect_column_values_to_be_between")
    assert (age["min_value"], age["max_value"]) == (0.0, 90.2)
    # bmi: 201 of 5,110 missing (3.93%), allowed up to 3.93% * 1.1 missing.
    assert _kwargs(drafted, "bmi", "expect_column_values_to_not_be_null")["mostly"] == 0.956
    rate = _kwargs(drafted, "stroke", "expect_column_mean_to_be_between")
    assert rate["min_value"] < 249 / 5110 < rate["max_value"]
    assert (rate["min_value"], rate["max_value"]) == (0.0438, 0.0537)
    rows = _kwargs(drafted, None, "expect_table_row_count_to_be_between")
    assert (rows["min_value"], rows["max_value"]) == (4599, 5621)


def test_every_drafted_expectation_says_where_it_came_from(drafted: dict[str, Any]) -> None:
    stamp = "drafted from stroke.csv on 2025-01-31; review before committing"
    assert drafted["meta"]["notes"] == stamp
    assert all(e["meta"]["notes"].endswith(stamp) for e in drafted["expectations"])


def test_ranges_are_widened_by_the_margin_and_clipped_only_for_non_negative_columns() -> None:
    frame = pd.DataFrame({"level": [10.0, 15.0, 20.0], "change": [-5.0, 0.0, 5.0]})
    suite = suite_draft.draft_suite(frame, margin=0.2, today=TODAY)
    level = _kwargs(suite, "level", "expect_column_values_to_be_between")
    change = _kwargs(suite, "change", "expect_column_values_to_be_between")
    assert (level["min_value"], level["max_value"]) == (8.0, 22.0)
    assert (change["min_value"], change["max_value"]) == (-7.0, 7.0)
    near_zero = suite_draft.draft_suite(pd.DataFrame({"dose": [1.0, 101.0]}), today=TODAY)
    assert _kwargs(near_zero, "dose", "expect_column_values_to_be_between")["min_value"] == 0.0


def test_draft_refuses_an_empty_reference_and_a_bad_margin(real_raw: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no data rows"):
        suite_draft.draft_suite(real_raw.iloc[:0])
    with pytest.raises(ValueError, match="margin must be between 0 and 1"):
        suite_draft.draft_suite(real_raw, margin=-0.1)


def test_written_suite_is_stable_and_round_trips(drafted: dict[str, Any], tmp_path: Path) -> None:
    first = suite_file.write_suite(drafted, tmp_path / "a.json")
    second = suite_file.write_suite(suite_file.load_suite(first), tmp_path / "b.json")
    assert first.read_bytes() == second.read_bytes()
    assert json.loads(first.read_text()) == drafted
    expectation = json.loads(first.read_text())["expectations"][1]
    assert list(expectation) == ["type", "kwargs", "meta"]
    assert list(expectation["kwargs"]) == ["min_value", "max_value"]


def test_gx_data_docs_are_built_into_the_given_folder(
    real_raw: pd.DataFrame, tmp_path: Path
) -> None:
    index = data_docs.build_data_docs(real_raw, docs_dir=tmp_path / "site")
    assert index == tmp_path / "site" / "index.html"
    assert index.is_file()
    pages = list((tmp_path / "site" / "validations").rglob("*.html"))
    assert len(pages) == 1
    assert "stroke_raw" in pages[0].read_text(encoding="utf-8")
