"""The web app: the patient page and the operations view (FastAPI + Jinja, no JavaScript).

``create_app(predictor_url, store_uri, reports)`` builds it; ``stroke-mlops app`` serves it with
uvicorn on 127.0.0.1 unless told otherwise. The patient page asks the predictor's V1 ``:explain``
over HTTP (:mod:`stroke_mlops.app.predictor_client`); its form comes from the production
version's ``signature.json`` (:mod:`stroke_mlops.app.patient`). Patient values travel only in
POST bodies (never in a URL, so never in an access log) and are not logged by the app.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from stroke_mlops.app.chart import contribution_chart
from stroke_mlops.app.operations import read_operations
from stroke_mlops.app.patient import (
    field_of_message,
    form_fields,
    label_of,
    read_patient,
    without_instance_prefix,
)
from stroke_mlops.app.predictor_client import PredictorClient, PredictorError, PredictorRefusedError
from stroke_mlops.registry.model_dir import verify_model_dir
from stroke_mlops.registry.store import ModelStore, open_store

MAX_FORM_BYTES = 16 * 1024
SECURITY_HEADERS = {
    # nothing is loaded from anywhere: inline styles, no scripts, forms post back here only
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class ProductionContract:
    """The production version's ``signature.json``, read again when production changes."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._version: str | None = None
        self._signature: dict[str, Any] | None = None

    def get(self) -> tuple[str, dict[str, Any]]:
        pointer = self.store.production()
        if pointer is None:
            raise LookupError(f"{self.store.uri} has no production model yet")
        with self._lock:
            if pointer.version != self._version or self._signature is None:
                with tempfile.TemporaryDirectory(prefix="stroke-app-") as scratch:
                    local = self.store.download_version(pointer.version, Path(scratch) / "v")
                    self._signature = verify_model_dir(local).signature
                self._version = pointer.version
            return pointer.version, self._signature


def create_app(predictor_url: str, store_uri: str, reports: Path | None = None) -> FastAPI:
    store = open_store(store_uri)
    contract = ProductionContract(store)
    client = PredictorClient(predictor_url)
    templates = Environment(
        loader=PackageLoader("stroke_mlops.app", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    app = FastAPI(title="stroke-mlops", docs_url=None, redoc_url=None, openapi_url=None)

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = templates.get_template(name).render(predictor_url=client.url, **context)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def patient_page(
        status: int = 200, values: Mapping[str, str] | None = None, **context: Any
    ) -> HTMLResponse:
        try:
            version, signature = contract.get()
        except (LookupError, OSError, ValueError) as error:
            return page("unavailable.html", 503, problem=str(error))
        return page(
            "patient.html",
            status,
            fields=form_fields(signature),
            values=dict(values or {}),
            contract_version=version,
            **context,
        )

    @app.get("/", response_class=HTMLResponse)
    def patient_form() -> HTMLResponse:
        return patient_page()

    @app.post("/", response_class=HTMLResponse)
    async def assess_patient(request: Request) -> Response:
        body = await _bounded_body(request)
        if body is None:
            return PlainTextResponse(f"form larger than {MAX_FORM_BYTES} bytes", status_code=413)
        values = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        try:
            _, signature = contract.get()
        except (LookupError, OSError, ValueError) as error:
            return page("unavailable.html", 503, problem=str(error))
        instance, errors = read_patient(signature, values)
        if errors:
            return patient_page(400, values, errors=errors)
        request_id = f"app-{uuid.uuid4().hex}"
        try:
            explanation = client.explain(instance, request_id)
        except PredictorRefusedError as refusal:
            message = without_instance_prefix(refusal.message)
            field = field_of_message(message, list(instance))
            if field is None:
                errors = {"_form": message}
            else:  # 'field "age": expected ...' shown on the age box as 'Age (years): expected ...'
                errors = {field: f"{label_of(field)}: {message.split(': ', 1)[-1]}"}
            return patient_page(400, values, errors=errors)
        except PredictorError as error:
            return patient_page(502, values, problem=str(error))
        labels = {name: label_of(name) for name in explanation.contributions}
        return patient_page(
            200,
            values,
            result=explanation,
            chart=contribution_chart(explanation.contributions, labels),
        )

    @app.get("/operations", response_class=HTMLResponse)
    def operations() -> HTMLResponse:
        try:
            facts = read_operations(store, reports)
        except (OSError, ValueError) as error:
            return page("unavailable.html", 503, problem=str(error))
        return page("operations.html", operations=facts)

    @app.get("/operations/monitor-report", response_class=HTMLResponse)
    def monitor_report() -> Response:
        facts = read_operations(store, reports)
        if facts.monitor is None or facts.monitor.report is None:
            return PlainTextResponse("no monitor report", status_code=404)
        return HTMLResponse(facts.monitor.report.read_text(), headers=SECURITY_HEADERS)

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    return app


async def _bounded_body(request: Request) -> bytes | None:
    """The request body, or None once it passes MAX_FORM_BYTES (the rest is not read)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
