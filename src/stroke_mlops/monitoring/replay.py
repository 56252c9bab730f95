"""Replay patient rows through the real model server, with request logging on: production traffic
for the loop's demo and tests.

:func:`replay_through_server` starts ``python -m stroke_mlops.serving.predictor`` on the store's
production version with ``--request-log-uri`` (a folder or ``s3://``), sends one V1 request per
row with its own ``x-request-id`` (keeping the ``prediction_id`` each answer carries), then stops
the server, which flushes the last log batch.
Feature values never reach stdout (the server runs with ``--no-stdout-request-log``).
"""

from __future__ import annotations

import http.client
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from stroke_mlops.data import schema
from stroke_mlops.registry.store import open_store
from stroke_mlops.serving.demo import local_model_uri
from stroke_mlops.serving.infra_validation import ServerProcess

__all__ = ["ReplayError", "ReplayedWindow", "as_instances", "replay_through_server", "sample_rows"]

READY_TIMEOUT_S = 90.0


class ReplayError(RuntimeError):
    """The rows could not be replayed (no production model, the server did not start)."""


@dataclass(frozen=True)
class ReplayedWindow:
    model_version: str
    request_ids: list[str]  # the prediction ids the server issued (what feedback joins on)
    started: datetime  # UTC, before the first request
    finished: datetime  # UTC, after the server stopped (every batch written)
    positive_decisions: int


def as_instances(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as V1 instances: JSON-ready (missing bmi → null, indicators as ints)."""
    instances = []
    for record in rows.loc[:, list(schema.FEATURE_COLUMNS)].to_dict("records"):
        instance: dict[str, Any] = {}
        for name, value in record.items():
            if isinstance(value, float) and math.isnan(value):
                instance[str(name)] = None
            elif name in schema.BINARY_COLUMNS:
                instance[str(name)] = int(value)
            elif isinstance(value, np.generic):
                instance[str(name)] = value.item()
            else:
                instance[str(name)] = value
        instances.append(instance)
    return instances


def sample_rows(patients: pd.DataFrame, rows: int, *, seed: int) -> pd.DataFrame:
    """``rows`` patients drawn without replacement (cleaned frame: features + stroke)."""
    if rows > len(patients):
        raise ReplayError(f"asked for {rows} rows; the data has {len(patients)}")
    return patients.sample(n=rows, random_state=seed).reset_index(drop=True)


def replay_through_server(
    store_uri: str, rows: pd.DataFrame, request_log_uri: str, *, request_prefix: str
) -> ReplayedWindow:
    """Serve the production version for real and send it each row; returns the request ids."""
    pointer = open_store(store_uri).production()
    if pointer is None:
        raise ReplayError(f"{store_uri} has no production model to serve")
    started = datetime.now(UTC)
    ids: list[str] = []
    positives = 0
    server = ServerProcess(
        local_model_uri(pointer.uri),
        extra_args=["--request-log-uri", request_log_uri, "--no-stdout-request-log"],
    )
    with server:
        ready, why = server.wait_ready(READY_TIMEOUT_S)
        if not ready:
            raise ReplayError(f"the model server did not start: {why}\n{server.log_tail(5)}")
        connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
        try:
            path = f"/v1/models/{schema.MODEL_NAME}:predict"
            for index, instance in enumerate(as_instances(rows)):
                request_id = f"{request_prefix}-{index:05d}"
                connection.request(
                    "POST",
                    path,
                    body=json.dumps({"instances": [instance]}).encode(),
                    headers={"content-type": "application/json", "x-request-id": request_id},
                )
                response = connection.getresponse()
                body = response.read()
                if response.status != 200:
                    raise ReplayError(
                        f"request {request_id}: the server answered {response.status}"
                    )
                answer = json.loads(body)
                positives += int(answer["predictions"][0]["decision"])
                ids.append(str(answer["prediction_id"]))
        finally:
            connection.close()
    # Leaving the block stopped the server (SIGTERM): its request-log sink wrote its last batch.
    return ReplayedWindow(
        model_version=pointer.version,
        request_ids=ids,
        started=started,
        finished=datetime.now(UTC),
        positive_decisions=positives,
    )
