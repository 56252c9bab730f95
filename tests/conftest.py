"""Shared fixtures: the real dataset, small in-memory frames, the tests' signing keys."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from stroke_mlops.data import dataset
from stroke_mlops.registry import signing

pytest_plugins = ["tests.s3_server"]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT / "data" / "raw" / "healthcare-dataset-stroke-data.csv"


@pytest.fixture(scope="session", autouse=True)
def signing_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[signing.KeyPair]:
    """A key pair made for this test session; both key variables name it (servers and
    pipeline steps started by the tests inherit them). No test uses a committed key."""
    pair = signing.generate_key_pair(tmp_path_factory.mktemp("signing-keys"))
    saved = {
        name: os.environ.get(name) for name in (signing.PRIVATE_KEY_ENV, signing.PUBLIC_KEY_ENV)
    }
    os.environ[signing.PRIVATE_KEY_ENV] = str(pair.private_key)
    os.environ[signing.PUBLIC_KEY_ENV] = str(pair.public_key)
    yield pair
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


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
