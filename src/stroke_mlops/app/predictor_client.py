"""Asking the predictor for one patient's explanation, over HTTP, as any client would."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from stroke_mlops.data.schema import MODEL_NAME

TIMEOUT_S = 10.0
MAX_ANSWER_BYTES = 1_000_000


class PredictorError(RuntimeError):
    """The predictor could not be reached, or did not answer with an explanation."""


class PredictorRefusedError(PredictorError):
    """The predictor refused the patient (HTTP 4xx) with a message naming the field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Explanation:
    """One patient's answer from ``:explain``."""

    probability: float
    decision: int
    threshold: float
    base_value: float
    contributions: dict[str, float]
    model_version: str
    prediction_id: str  # issued by the predictor: what `stroke-mlops feedback` labels join on


class PredictorClient:
    """``POST {url}/v1/models/stroke:explain`` for one instance."""

    def __init__(self, url: str, *, timeout_s: float = TIMEOUT_S) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"predictor URL must be http(s)://host[:port]; got {url!r}")
        self.url = url.rstrip("/")
        self._parts = parts
        self.timeout_s = timeout_s

    def explain(self, instance: dict[str, Any], request_id: str | None = None) -> Explanation:
        path = f"{self._parts.path.rstrip('/')}/v1/models/{MODEL_NAME}:explain"
        connection_type = (
            http.client.HTTPSConnection
            if self._parts.scheme == "https"
            else http.client.HTTPConnection
        )
        connection = connection_type(
            self._parts.hostname or "", self._parts.port, timeout=self.timeout_s
        )
        headers = {"content-type": "application/json"}
        if request_id:
            headers["x-request-id"] = request_id
        try:
            connection.request(
                "POST", path, body=json.dumps({"instances": [instance]}), headers=headers
            )
            response = connection.getresponse()
            status, body = response.status, response.read(MAX_ANSWER_BYTES)
        except (OSError, http.client.HTTPException) as error:
            raise PredictorError(
                f"the predictor at {self.url} is not reachable ({error})"
            ) from error
        finally:
            connection.close()
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if 400 <= status < 500:
            message = answer.get("error") if isinstance(answer, dict) else None
            raise PredictorRefusedError(status, str(message or f"HTTP {status}"))
        if status != 200 or not isinstance(answer, dict):
            raise PredictorError(f"the predictor at {self.url} answered HTTP {status}")
        try:
            (first,) = answer["explanations"]
            return Explanation(
                probability=float(first["probability"]),
                decision=int(first["decision"]),
                threshold=float(first["threshold"]),
                base_value=float(first["base_value"]),
                contributions={str(k): float(v) for k, v in first["contributions"].items()},
                model_version=str(answer.get("model_version", "")),
                prediction_id=str(answer["prediction_id"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise PredictorError(
                f"the predictor at {self.url} answered without an explanation"
            ) from error
