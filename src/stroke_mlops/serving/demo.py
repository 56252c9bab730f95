"""The end of ``make demo``: serve the production model locally and ask it about a patient."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from stroke_mlops.data.schema import MODEL_NAME
from stroke_mlops.serving.infra_validation import ServerProcess, v1_body

READY_TIMEOUT_S = 90.0


class DemoError(RuntimeError):
    """The demo prediction could not be made (no production model, server did not start)."""


@dataclass(frozen=True)
class DemoPrediction:
    version: str
    url: str
    request: dict[str, Any]
    response: dict[str, Any]

    def render(self) -> str:
        body = json.dumps(self.request)
        return (
            f"Serving production model {self.version} at {self.url}\n"
            f"$ curl -s {self.url} -H 'Content-Type: application/json' -d '{body}'\n"
            f"{json.dumps(self.response, indent=2)}"
        )


def local_model_uri(version_uri: str) -> str:
    """What the model server's --model-uri takes: a folder for file:// URIs, else the URI."""
    parts = urlsplit(version_uri)
    return unquote(parts.path) if parts.scheme == "file" else version_uri


def predict_with_production_model(store_uri: str) -> DemoPrediction:
    """Start the real model server on the promoted version and send it an example patient."""
    from stroke_mlops.registry.store import open_store

    pointer = open_store(store_uri).production()
    if pointer is None:
        raise DemoError(f"{store_uri} has no production model yet (did the gate bless one?)")
    with ServerProcess(local_model_uri(pointer.uri)) as server:
        ready, why = server.wait_ready(READY_TIMEOUT_S)
        if not ready:
            raise DemoError(f"the model server did not start: {why}\n{server.log_tail(5)}")
        example = _example_patient(store_uri, pointer.version)
        path = f"/v1/models/{MODEL_NAME}:predict"
        status, body = server.request("POST", path, v1_body([example]))
        if status != 200:
            raise DemoError(f"the model server answered {status}: {body[:300]!r}")
        return DemoPrediction(
            version=pointer.version,
            url=f"http://{server.host}:{server.port}{path}",
            request={"instances": [example]},
            response=json.loads(body),
        )


def _example_patient(store_uri: str, version: str) -> dict[str, Any]:
    """The signature's first example (a real stroke patient from the training split)."""
    import tempfile
    from pathlib import Path

    from stroke_mlops.registry.model_dir import verify_model_dir
    from stroke_mlops.registry.store import open_store

    with tempfile.TemporaryDirectory(prefix="demo-") as scratch:
        local = open_store(store_uri).download_version(version, Path(scratch) / "model")
        examples: list[dict[str, Any]] = verify_model_dir(local).signature["examples"]
    return examples[0]
