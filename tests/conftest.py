"""Shared fixtures: the real dataset, small in-memory frames."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from stroke_mlops.data import dataset

pytest_plugins = ["tests.s3_server"]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT / "data" / "raw" / "healthcare-dataset-stroke-data.csv"


@pytest.fixture(scope="session")
def real_csv_path() -> Path:
    """The real Kaggle file (``make data`` puts it in data/raw/; $STROKE_DATA overrides)."""
    path = Path(os.environ.get("STROKE_DATA", DEFAULT_DATA))
    if not path.is_file():
        pytest.fail(f"the dataset is missing at {path}: run `make data` (see README)")
    return path


@pytest.fixture(scope="session")
def real_csv_bytes(real_csv_path: Path) -> bytes:
    return real_csv_path.read_bytes()


@pytest.fixture(scope="session")
def real_patients(real_csv_bytes: bytes) -> pd.DataFrame:
    """The real file, read and cleaned (features + target)."""
    return dataset.clean_patients(dataset.read_raw_patients(real_csv_bytes))


@pytest.fixture(scope="session")
def patients_with_ids(real_csv_bytes: bytes) -> pd.DataFrame:
    """The real file, cleaned, with the patient ``id`` the split hashes."""
    return dataset.clean_patients(dataset.read_raw_patients(real_csv_bytes), keep_id=True)
