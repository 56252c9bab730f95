"""Monitoring fixtures: a store whose production version carries a reference set, and a way to
have the real predictor (in process) serve rows and write its request-log objects.

The model is fitted on the train split only; the reference set is the test split; windows are
drawn from the validation split, so no window row was trained on or is a reference row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from stroke_mlops.data import dataset, schema
from stroke_mlops.monitoring import reference
from stroke_mlops.monitoring.replay import as_instances
from stroke_mlops.registry import signature
from stroke_mlops.registry.model_dir import write_model_dir
from stroke_mlops.registry.signing import private_key_from_env
from stroke_mlops.registry.store import LocalModelStore
from stroke_mlops.serving.model import StrokeModel
from stroke_mlops.serving.request_log import RequestLogger, RequestLogSink, writer_for
from tests.s3_server import moto_endpoint, s3_bucket  # noqa: F401
from tests.serving.model_dirs import fit_pipeline

VERSION = "v1-monitored"
THRESHOLD = 0.5


@dataclass(frozen=True)
class MonitoredStore:
    root: Path  # the store folder (production = VERSION)
    version_dir: Path
    window_pool: pd.DataFrame  # validation rows: neither trained on nor in the reference
    reference: pd.DataFrame


@pytest.fixture(scope="session")
def monitored_store(
    tmp_path_factory: pytest.TempPathFactory, patients_with_ids: pd.DataFrame
) -> MonitoredStore:
    split = dataset.split_patients(patients_with_ids, seed=42)
    model = fit_pipeline(split.train, LogisticRegression(class_weight="balanced", max_iter=2000))
    reference_set = reference.build_reference_set(model, split.test)
    built = tmp_path_factory.mktemp("built") / VERSION
    write_model_dir(
        built,
        model=model,
        signature=signature.build_signature(signature.example_instances(split.train)),
        model_card="# Monitoring test model\n",
        metadata={"version": VERSION, "threshold": THRESHOLD, "model_name": schema.MODEL_NAME},
        extra_files={reference.REFERENCE_FILE: reference.reference_csv_bytes(reference_set)},
        signing_key=private_key_from_env(),
    )
    root = tmp_path_factory.mktemp("store")
    store = LocalModelStore(root)
    store.publish_version(built, VERSION)
    store.promote(VERSION)
    return MonitoredStore(
        root=root,
        version_dir=store.version_dir(VERSION),
        window_pool=split.validation,
        reference=reference_set,
    )


class ServeRows(Protocol):
    def __call__(self, rows: pd.DataFrame, log_uri: str, prefix: str = "r") -> list[str]: ...


@pytest.fixture(scope="session")
def served_model(monitored_store: MonitoredStore) -> StrokeModel:
    model = StrokeModel(str(monitored_store.version_dir), request_logger=RequestLogger(stream=None))
    model.load()
    return model


@pytest.fixture
def serve_rows(served_model: StrokeModel) -> ServeRows:
    """``serve_rows(rows, log_uri)``: one V1 request per row through the real predictor, logged
    to ``log_uri`` by the real request-log sink; returns the prediction ids it issued."""

    def serve(rows: pd.DataFrame, log_uri: str, prefix: str = "r") -> list[str]:
        sink = RequestLogSink(writer_for(log_uri), batch_size=100, flush_interval_s=60)
        served_model.request_logger = RequestLogger(stream=None, sink=sink)
        ids = []
        try:
            for index, instance in enumerate(as_instances(rows)):
                response = served_model.predict(
                    {"instances": [instance]}, headers={"x-request-id": f"{prefix}{index}"}
                )
                assert isinstance(response, dict)
                ids.append(response["prediction_id"])
        finally:
            served_model.request_logger.close()
            served_model.request_logger = RequestLogger(stream=None)
        assert sink.dropped == 0
        return ids

    return serve
