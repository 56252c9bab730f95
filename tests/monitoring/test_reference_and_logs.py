"""The reference set travels in the model directory like every other file; logs from S3."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stroke_mlops.data import schema
from stroke_mlops.monitoring import reference
from stroke_mlops.monitoring.monitor import run_monitor
from stroke_mlops.registry.model_dir import ModelDirError, verify_model_dir
from stroke_mlops.registry.store import LocalModelStore, StoreError
from tests.monitoring.conftest import VERSION, MonitoredStore, ServeRows
from tests.s3_server import S3Bucket


def test_the_reference_set_is_listed_with_its_sha256_and_verified(
    monitored_store: MonitoredStore, tmp_path: Path
) -> None:
    verified = verify_model_dir(monitored_store.version_dir)
    assert reference.REFERENCE_FILE in verified.metadata["files"]
    back = reference.read_reference(monitored_store.version_dir / reference.REFERENCE_FILE)
    pd.testing.assert_frame_equal(back, monitored_store.reference, check_dtype=False)
    assert back["bmi"].isna().any()  # missing bmi survives as missing

    tampered = tmp_path / "tampered"
    shutil.copytree(monitored_store.version_dir, tampered)
    with (tampered / reference.REFERENCE_FILE).open("a") as handle:
        handle.write(",".join(["0"] * len(reference.REFERENCE_COLUMNS)) + "\n")
    with pytest.raises(ModelDirError, match=r"reference.csv: sha256 .* does not match"):
        verify_model_dir(tampered)
    store = LocalModelStore(tmp_path / "store")
    with pytest.raises(StoreError, match=r"reference\.csv"):
        store.publish_version(tampered, VERSION)


def test_request_logs_are_read_from_the_s3_server(
    monitored_store: MonitoredStore, serve_rows: ServeRows, s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    window = monitored_store.window_pool.sample(250, random_state=5)
    serve_rows(window, s3_bucket.uri("monitoring/requests"))
    assert len(s3_bucket.keys("monitoring/requests/")) == 3  # batches of 100

    summary = run_monitor(
        str(monitored_store.root), s3_bucket.uri("monitoring/requests"), tmp_path / "out"
    )

    assert summary.rows == 250
    assert summary.data_quality.objects_read == 3
    assert summary.recommendation == "none"
    ages = np.array(window["age"])
    age = next(f for f in summary.features if f.name == "age")
    assert age.distribution is not None
    assert sum(age.distribution.window) == pytest.approx(1.0)
    assert summary.data_quality.missing_rate["bmi"] == pytest.approx(window["bmi"].isna().mean())
    assert len(ages) == summary.rows and schema.TARGET_COLUMN not in summary.to_dict()
