"""Raw patient data: reading the CSV as distributed, cleaning, the hash split, fingerprints.

Cleaning rules (applied after the data contract has passed, so values are known to be valid):

1. ``id`` is never a feature (its uniqueness is checked by the contract). It is dropped, or kept
   with ``keep_id=True`` as the row's identity for the split and the training-rows record.
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


def clean_patients(raw: pd.DataFrame, *, keep_id: bool = False) -> pd.DataFrame:
    """Apply the cleaning rules in this module's docstring; returns features + target.

    With ``keep_id`` the ``id`` column comes first (as int64); the raw frame must have it.
    """
    identity = [schema.ID_COLUMN] if keep_id else []
    frame = raw.loc[:, [*identity, *schema.FEATURE_COLUMNS, schema.TARGET_COLUMN]].copy()
    if keep_id:
        frame[schema.ID_COLUMN] = frame[schema.ID_COLUMN].astype("int64")
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


HASH_BUCKETS = 10_000  # split shares are multiples of 1/HASH_BUCKETS
MAX_PREVALENCE_Z = 4.0  # a test share this far from the overall stroke rate is refused


@dataclass(frozen=True)
class SplitRule:
    """Which rows are test, validation or train: a pure function of (``salt``, patient ``id``).

    ``bucket(id) = sha256("<salt>:<id>") mod HASH_BUCKETS``; buckets below ``test_buckets`` are
    test, the next ``validation_buckets`` are validation, the rest train. Appending rows never
    moves an existing row, so a retrain on old + new rows keeps every old test row in test.
    """

    salt: int
    test_buckets: int
    validation_buckets: int

    @classmethod
    def from_fractions(cls, salt: int, fractions: SplitFractions) -> SplitRule:
        return cls(
            salt=salt,
            test_buckets=round(fractions.test * HASH_BUCKETS),
            validation_buckets=round(fractions.validation * HASH_BUCKETS),
        )

    @classmethod
    def from_dict(cls, document: dict[str, object]) -> SplitRule:
        """Parse ``as_dict()``; raises ValueError naming the field that is wrong."""
        if document.get("scheme") != SPLIT_SCHEME:
            raise ValueError(f"split rule scheme {document.get('scheme')!r} is not {SPLIT_SCHEME}")
        values = {}
        for name in ("salt", "test_buckets", "validation_buckets"):
            value = document.get(name)
            if not isinstance(value, int):
                raise ValueError(f"split rule field {name!r} must be an integer; got {value!r}")
            values[name] = value
        return cls(**values)

    def as_dict(self) -> dict[str, object]:
        return {
            "scheme": SPLIT_SCHEME,
            "salt": self.salt,
            "test_buckets": self.test_buckets,
            "validation_buckets": self.validation_buckets,
        }

    def buckets(self, ids: pd.Series | np.ndarray) -> np.ndarray:
        """Each id's bucket in [0, HASH_BUCKETS)."""
        return np.array(
            [
                int.from_bytes(hashlib.sha256(f"{self.salt}:{int(i)}".encode()).digest()[:8])
                % HASH_BUCKETS
                for i in np.asarray(ids)
            ],
            dtype=np.int64,
        )

    def is_test(self, ids: pd.Series | np.ndarray) -> np.ndarray:
        return self.buckets(ids) < self.test_buckets

    def is_development(self, ids: pd.Series | np.ndarray) -> np.ndarray:
        """Rows a model split by this rule may have trained on (train or validation)."""
        return ~self.is_test(ids)


SPLIT_SCHEME = "sha256(salt:id) mod 10000"


@dataclass(frozen=True)
class PatientSplit:
    """A train / validation / test split of cleaned patients (with their ``id``)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    rule: SplitRule

    @property
    def development(self) -> pd.DataFrame:
        """Train + validation: the rows the model is searched, fitted and thresholded on."""
        return pd.concat([self.train, self.validation], ignore_index=True)

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
    """Split by a stable hash of the patient ``id`` salted with ``seed`` (see SplitRule).

    Hashing is not stratified, so the test part's stroke count is checked against the overall
    rate: more than MAX_PREVALENCE_Z standard errors away raises ValueError (pick another seed).
    """
    if schema.ID_COLUMN not in patients:
        raise ValueError(
            f"the split needs the patient {schema.ID_COLUMN!r} column (clean with keep_id=True)"
        )
    ids = patients[schema.ID_COLUMN]
    if ids.duplicated().any():
        duplicated = ids[ids.duplicated()].iloc[0]
        raise ValueError(f"patient id {duplicated} appears more than once; ids must be unique")
    rule = SplitRule.from_fractions(seed, fractions or SplitFractions())
    buckets = rule.buckets(ids)
    is_test = buckets < rule.test_buckets
    is_validation = ~is_test & (buckets < rule.test_buckets + rule.validation_buckets)
    is_train = ~is_test & ~is_validation
    _check_prevalence(patients[schema.TARGET_COLUMN].to_numpy(), is_test, seed=seed)
    return PatientSplit(
        train=patients[is_train].reset_index(drop=True),
        validation=patients[is_validation].reset_index(drop=True),
        test=patients[is_test].reset_index(drop=True),
        rule=rule,
    )


def _check_prevalence(target: np.ndarray, is_test: np.ndarray, *, seed: int) -> None:
    rows, chosen = len(target), int(is_test.sum())
    if chosen == 0 or chosen == rows:
        raise ValueError(f"split seed {seed}: the test part has {chosen} of {rows} rows")
    rate = float(target.mean())
    expected = chosen * rate
    # Hypergeometric standard error of the test part's stroke count.
    spread = float(np.sqrt(expected * (1 - rate) * (rows - chosen) / max(rows - 1, 1)))
    found = int(target[is_test].sum())
    if spread > 0 and abs(found - expected) > MAX_PREVALENCE_Z * spread:
        raise ValueError(
            f"split seed {seed}: the test part has {found} strokes where {expected:.1f} "
            f"± {spread:.1f} were expected; choose another seed"
        )


def training_rows_record(split: PatientSplit) -> dict[str, object]:
    """What a model trained on ``split.development`` was trained on, for later overlap checks."""
    ids = np.sort(split.development[schema.ID_COLUMN].to_numpy(dtype=np.int64))
    return {
        "split_rule": split.rule.as_dict(),
        "rows": len(ids),
        "ids_sha256": hashlib.sha256(ids.astype("<i8").tobytes()).hexdigest(),
    }


def rows_champion_may_have_trained_on(
    record: dict[str, object] | None, ids: pd.Series | np.ndarray
) -> int:
    """How many of ``ids`` the model described by ``record`` may have trained on.

    Without a split rule in the record (a model from before hash splits), every row counts.
    """
    rule_document = record.get("split_rule") if isinstance(record, dict) else None
    if not isinstance(rule_document, dict):
        return len(ids)
    rule = SplitRule.from_dict(rule_document)
    return int(rule.is_development(ids).sum())


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
        "split_rule": split.rule.as_dict(),
        "training_rows": training_rows_record(split),
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
