"""Reading the raw file as distributed, cleaning, the split and fingerprints."""

from __future__ import annotations

import pandas as pd
import pytest

from stroke_mlops.data import dataset, schema

HEADER = ",".join(schema.RAW_COLUMNS)
ROW_A = "1001,Male,70,0,1,Yes,Private,Urban,201.5,31.2,formerly smoked,1"
ROW_B = "1002,Female,58,0,0,Yes,Self-employed,Rural,95.3,N/A,never smoked,0"


def test_reads_bom_crlf_and_na_as_distributed() -> None:
    raw = ("\ufeff" + HEADER + "\r\n" + ROW_A + "\r\n" + ROW_B).encode()  # no final newline
    frame = dataset.read_raw_patients(raw)
    assert list(frame.columns) == list(schema.RAW_COLUMNS)  # BOM not glued to "id"
    assert len(frame) == 2
    assert frame["bmi"].isna().tolist() == [False, True]  # N/A -> NaN
    assert frame.loc[0, "smoking_status"] == "formerly smoked"  # no stray \r


def test_real_file_reads_exactly(real_csv_bytes: bytes) -> None:
    frame = dataset.read_raw_patients(real_csv_bytes)
    assert frame.shape == (5110, 12)
    assert int(frame["bmi"].isna().sum()) == 201
    assert int(frame["stroke"].sum()) == 249
    assert dataset.sha256_bytes(real_csv_bytes).startswith("e35d3bacd7c3")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", "empty"),
        (b"   \r\n", "empty"),
        (bytes(range(256)) * 4, "not UTF-8"),
        (HEADER.replace(",", ";").encode() + b"\n1;Male", "';'-separated"),
        (b"\x00\x01id,gender\n", "NUL"),
    ],
)
def test_unreadable_input_gets_one_line_reason(raw: bytes, expected: str) -> None:
    with pytest.raises(dataset.RawDataError, match=expected) as caught:
        dataset.read_raw_patients(raw, source="upload.csv")
    assert "upload.csv" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_clean_drops_id_and_keeps_missing_bmi(real_patients: pd.DataFrame) -> None:
    assert list(real_patients.columns) == [*schema.FEATURE_COLUMNS, schema.TARGET_COLUMN]
    assert real_patients["bmi"].isna().sum() == 201
    assert real_patients["hypertension"].dtype == "int64"
    assert len(real_patients) == 5110


def test_split_is_disjoint_reproducible_and_keeps_the_stroke_rate(
    patients_with_ids: pd.DataFrame,
) -> None:
    first = dataset.split_patients(patients_with_ids, seed=7)
    again = dataset.split_patients(patients_with_ids, seed=7)
    other = dataset.split_patients(patients_with_ids, seed=8)
    for part in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(getattr(first, part), getattr(again, part))
    assert dataset.sha256_frame(first.test) != dataset.sha256_frame(other.test)
    sizes = {name: p["rows"] for name, p in first.summary().items()}
    assert sizes["test"] == pytest.approx(1022, abs=80)  # a hash share, not an exact count
    for counts in first.summary().values():
        assert counts["positive_rate"] == pytest.approx(249 / 5110, abs=0.012)
    total = pd.concat([first.train, first.validation, first.test])
    assert sorted(total["id"]) == sorted(patients_with_ids["id"])
    assert int(total["stroke"].sum()) == 249


def test_appending_rows_keeps_every_old_test_row_in_test(patients_with_ids: pd.DataFrame) -> None:
    old = patients_with_ids.iloc[:4000]
    grown = patients_with_ids  # the same 4000 rows plus 1110 that arrived later
    before = dataset.split_patients(old, seed=42)
    after = dataset.split_patients(grown, seed=42)
    old_test, new_test = set(before.test["id"]), set(after.test["id"])
    assert old_test < new_test
    assert set(before.development["id"]) <= set(after.development["id"])
    # So the old model never trained on any of the new test rows.
    record = dataset.training_rows_record(before)
    assert dataset.rows_champion_may_have_trained_on(record, after.test["id"]) == 0


def test_a_different_split_rule_counts_as_overlap(patients_with_ids: pd.DataFrame) -> None:
    champion_split = dataset.split_patients(patients_with_ids, seed=1)
    challenger_split = dataset.split_patients(patients_with_ids, seed=2)
    record = dataset.training_rows_record(champion_split)
    overlap = dataset.rows_champion_may_have_trained_on(record, challenger_split.test["id"])
    expected = len(set(challenger_split.test["id"]) & set(champion_split.development["id"]))
    assert overlap == expected > 0
    # A model from before hash splits recorded no rule: every row may have been seen.
    assert dataset.rows_champion_may_have_trained_on({}, challenger_split.test["id"]) == len(
        challenger_split.test
    )


def test_a_test_share_far_from_the_stroke_rate_is_refused() -> None:
    rows = 400
    frame = pd.DataFrame({"id": range(rows), "stroke": [0] * rows})
    rule = dataset.SplitRule.from_fractions(5, dataset.SplitFractions())
    frame.loc[rule.is_test(frame["id"]), "stroke"] = 1  # every stroke lands in test
    with pytest.raises(ValueError, match="choose another seed"):
        dataset._check_prevalence(frame["stroke"].to_numpy(), rule.is_test(frame["id"]), seed=5)


def test_the_split_needs_ids(real_patients: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="needs the patient 'id' column"):
        dataset.split_patients(real_patients, seed=1)


def test_fingerprint_names_raw_bytes_split_and_training_rows(
    real_csv_bytes: bytes, patients_with_ids: pd.DataFrame
) -> None:
    split = dataset.split_patients(patients_with_ids, seed=1)
    fingerprint = dataset.fingerprint_split(real_csv_bytes, split, seed=1)
    assert fingerprint["raw_sha256"] == dataset.sha256_bytes(real_csv_bytes)
    assert fingerprint["seed"] == 1
    assert fingerprint["test_sha256"] == dataset.sha256_frame(split.test)
    assert fingerprint["train_sha256"] != fingerprint["test_sha256"]
    rows = fingerprint["training_rows"]
    assert isinstance(rows, dict) and rows["rows"] == len(split.development)
    assert rows["split_rule"] == split.rule.as_dict()


def test_split_fractions_must_leave_training_rows() -> None:
    with pytest.raises(ValueError, match="leave rows for training"):
        dataset.SplitFractions(validation=0.5, test=0.5)
