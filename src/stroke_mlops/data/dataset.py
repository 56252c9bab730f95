"""Raw patient data: reading the CSV as distributed, cleaning, the stratified split, fingerprints.

Cleaning rules (applied after the data contract has passed, so values are known to be valid):

1. ``id`` is dropped: an identifier, not a feature (its uniqueness is checked by the contract).
2. Missing ``bmi`` (``N/A`` in the raw file) stays missing; the model pipeline imputes it with
   the training median, so serving imputes the same way.
3. Binary indicators and the target are cast to integers; categorical values are kept as
   spelled in the raw file (the contract restricts them to known categories).
4. No row is dropped or changed otherwise: the split sees the data as users will send it.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stroke_mlops.data import schema

MISSING_MARKERS = ("N/A", "")


class RawDataError(ValueError):
    """The input is not a readable CSV file (one-line reason in the message)."""


ECHO_LIMIT = 60  # characters of a submitted value, column name or parser message echoed back


def abbreviate(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` as echoed in reports and error messages: at most ``limit`` characters, and
    the length of what was cut (a 2 MB field is never repeated in full)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def read_raw_patients(raw: bytes, *, source: str = "input") -> pd.DataFrame:
    """Parse the raw CSV bytes as distributed (UTF-8 with BOM, CRLF, ``N/A`` for missing).

    Types are inferred, not forced: a column with text where numbers belong stays text so that
    the data contract can report the offending values. Raises RawDataError when the bytes are
    not a readable CSV table.
    """
    if not raw.strip():
        raise RawDataError(f"{source}: the file is empty")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise RawDataError(
            f"{source}: not UTF-8 text (byte {error.start} is 0x{raw[error.start]:02x}); "
            "expected the stroke CSV file"
        ) from error
    if "\x00" in text:
        raise RawDataError(f"{source}: contains NUL bytes; expected a text CSV file")
    header = text.splitlines()[0]
    if "," not in header:
        delimiter = _guess_delimiter(header)
        hint = f" (it looks {delimiter!r}-separated)" if delimiter else ""
        raise RawDataError(
            f"{source}: the header has no comma{hint}; expected comma-separated columns"
        )
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            na_values=list(MISSING_MARKERS),
            keep_default_na=False,
            skipinitialspace=False,
        )
    except (pd.errors.ParserError, ValueError) as error:
        reason = abbreviate(str(error).strip().splitlines()[-1], limit=200)
        raise RawDataError(f"{source}: not a readable CSV table: {reason}") from error
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _guess_delimiter(header: str) -> str | None:
    try:
        return csv.Sniffer().sniff(header, delimiters=";\t|").delimiter
    except csv.Error:
        return None


def read_raw_patients_file(path: str | Path) -> pd.DataFrame:
    """Read a raw CSV file from disk (see read_raw_patients)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise RawDataError(f"{path}: cannot read the file ({error.strerror})") from error
    return read_raw_patients(raw, source=str(path))


def clean_patients(raw: pd.DataFrame) -> pd.DataFrame:
    """Apply the cleaning rules in this module's docstring; returns features + target."""
    frame = raw.loc[:, [*schema.FEATURE_COLUMNS, schema.TARGET_COLUMN]].copy()
    for column in schema.NUMERIC_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="raise").astype("float64")
    for column in (*schema.BINARY_COLUMNS, schema.TARGET_COLUMN):
        frame[column] = frame[column].astype("int64")
    for column in schema.CATEGORICAL_COLUMNS:
        frame[column] = frame[column].astype(str)
    return frame.reset_index(drop=True)


@dataclass(frozen=True)
class SplitFractions:
    """Shares of the rows for validation and test; training gets the rest."""

    validation: float = 0.2
    test: float = 0.2

    def __post_init__(self) -> None:
        if not (0 < self.validation < 1 and 0 < self.test < 1 and self.validation + self.test < 1):
            raise ValueError(
                "split fractions must be in (0, 1) and leave rows for training; "
                f"got validation={self.validation}, test={self.test}"
            )


@dataclass(frozen=True)
class PatientSplit:
    """A stratified train / validation / test split of cleaned patients."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame

    def summary(self) -> dict[str, dict[str, float]]:
        """Rows, positives and positive rate of each part."""
        return {
            name: {
                "rows": len(part),
                "positives": int(part[schema.TARGET_COLUMN].sum()),
                "positive_rate": round(float(part[schema.TARGET_COLUMN].mean()), 5),
            }
            for name, part in (
                ("train", self.train),
                ("validation", self.validation),
                ("test", self.test),
            )
        }


def split_patients(
    patients: pd.DataFrame, *, seed: int, fractions: SplitFractions | None = None
) -> PatientSplit:
    """Split into train / validation / test, stratified on the target, reproducible from seed."""
    from sklearn.model_selection import train_test_split

    fractions = fractions or SplitFractions()
    target = patients[schema.TARGET_COLUMN]
    rest, test = train_test_split(
        patients, test_size=fractions.test, stratify=target, random_state=seed
    )
    validation_share = fractions.validation / (1 - fractions.test)
    train, validation = train_test_split(
        rest,
        test_size=validation_share,
        stratify=rest[schema.TARGET_COLUMN],
        random_state=seed + 1,
    )
    return PatientSplit(
        train=train.reset_index(drop=True),
        validation=validation.reset_index(drop=True),
        test=test.reset_index(drop=True),
    )


def sha256_bytes(raw: bytes) -> str:
    """Hex sha256 of some bytes."""
    return hashlib.sha256(raw).hexdigest()


def sha256_frame(frame: pd.DataFrame) -> str:
    """Order-sensitive sha256 of a frame's content (columns, values and row order)."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    digest.update(hashed.tobytes())
    return digest.hexdigest()


def fingerprint_split(raw: bytes, split: PatientSplit, *, seed: int) -> dict[str, object]:
    """What identifies the data a model was trained on: raw bytes, split content and seed."""
    return {
        "raw_sha256": sha256_bytes(raw),
        "seed": seed,
        "train_sha256": sha256_frame(split.train),
        "validation_sha256": sha256_frame(split.validation),
        "test_sha256": sha256_frame(split.test),
        "parts": split.summary(),
    }


def features_and_target(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Split a cleaned frame into the feature frame (schema order) and the 0/1 target array."""
    return (
        frame.loc[:, list(schema.FEATURE_COLUMNS)],
        frame[schema.TARGET_COLUMN].to_numpy(dtype=np.int64),
    )
