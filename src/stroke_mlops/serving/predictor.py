"""The KServe predictor: a strict ``kserve.Model`` over the compiled pipeline, and its server.

``StrokeModel.load()`` gets the model directory the KServe way (a folder such as
``/mnt/models``, where the storage initializer put ``storageUri``; or an ``s3://`` URI fetched
with ``kserve-storage``), verifies its signature with the public key
(``--public-key`` or ``$STROKE_MLOPS_SIGNING_PUBLIC_KEY``) and every file's sha256 *before*
deserializing (skops, allow-listed types only; see registry/model_dir.py), compiles the fast
path (:mod:`stroke_mlops.serving.scoring`) and only then sets ``ready``. ``predict()`` serves both
protocols through one code path:

* V1 ``POST /v1/models/stroke:predict`` ``{"instances": [{feature: value, ...}, ...]}`` returns
  ``{"predictions": [{"probability": p, "decision": 0|1}, ...], "model_name": "stroke",
  "model_version": "<metadata version>"}``.
* V2 ``POST /v2/models/stroke/infer`` with one input per feature (FP64 / INT64 / BYTES, shape
  ``[N]``) returns outputs ``probability`` (FP64) and ``decision`` (INT64), ``model_version`` set.

Both inference routes hand the raw body to ``predict()``, which decodes it strictly (V1: strict
JSON; V2: :mod:`stroke_mlops.serving.v2_request`, JSON or binary tensors). Any bad input is a
``kserve.errors.InvalidInput`` (HTTP 400) naming the instance, the field and what was expected.
Every request, good or bad, gives one record (see :mod:`stroke_mlops.serving.request_log`): the
full record, features included, to the private request-log store, and its metadata only as one
JSON line on stdout. Requests refused before ``predict()`` (an oversized body, an unknown model)
are recorded by :class:`RefusalRecorder`, an ASGI middleware, helped by our handlers for
``InvalidInput`` and ``RequestValidationError``, which replace KServe's.
:mod:`stroke_mlops.serving.metrics` counts both kinds on ``/metrics``. The HTTP layer's limits
(body size, header and body deadlines, connections) are :mod:`stroke_mlops.serving.http_limits`.

Run it with ``python -m stroke_mlops.serving.predictor --model-uri DIR_OR_S3_URI [--port 8080]
[--host 127.0.0.1]``.
"""

from __future__ import annotations

import argparse
import contextvars
import copy
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import ORJSONResponse
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
from kserve.model import Model
from kserve.model_server import ModelServer
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from stroke_mlops.data import schema
from stroke_mlops.registry.signing import PUBLIC_KEY_ENV, SignatureError, public_key_from_env
from stroke_mlops.serving.defaults import DEFAULT_HOST, MAX_INSTANCES
from stroke_mlops.serving.http_limits import (
    BodyLimitMiddleware,
    ServingLimits,
    apply_to_uvicorn,
    limits_for,
)
from stroke_mlops.serving.metrics import ServingMetrics, count_missing, refusal_reason
from stroke_mlops.serving.request_log import (
    RequestLogger,
    RequestLogSink,
    bounded_request_id,
    utc_timestamp,
    writer_for,
)
from stroke_mlops.serving.scoring import (
    CompiledModel,
    InvalidRequestError,
    columns_from_v1,
    columns_from_v2,
    load_compiled_model,
    parse_json_body,
)
from stroke_mlops.serving.v2_request import INFERENCE_HEADER, RawV2Request, decode_v2_request

log = logging.getLogger(
    "stroke_mlops.serving.predictor"
)  # not __name__: "__main__" under python -m

DEFAULT_MODEL_URI = "/mnt/models"  # where KServe's storage initializer puts storageUri
DEFAULT_HTTP_PORT = 8080
OUTPUT_NAMES = ("probability", "decision")
MAX_ERROR_CHARS = 1000  # refusal messages (to the client and the store) are cut here
INFERENCE_PATH_ENDINGS = (":predict", ":explain", "/infer")


@dataclass
class RequestContext:
    """One inference request as the middleware saw it, shared with predict() and the handlers."""

    client_id: str | None  # the x-request-id header as sent
    started: float
    protocol: str
    request_id: str | None = None  # bounded; set by predict() or when a refusal is recorded
    request_id_replaced: str | None = None  # why the client's id was not kept
    recorded: bool = False
    error: str | None = None


_current_request: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "stroke_request", default=None
)


def cap_message(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``message`` cut to ``limit`` characters (with a note saying how much was left out)."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}… ({len(message) - limit} more characters not shown)"


class ModelLoadError(RuntimeError):
    """The model could not be fetched, verified or compiled; the server must not start."""


def fetch_model_dir(model_uri: str, download_dir: Path | None = None) -> Path:
    """The local model directory for ``model_uri``: a folder as is, anything else downloaded.

    Remote URIs (``s3://bucket/prefix``, ``gs://``, ...) go through ``kserve-storage``, the
    library behind KServe's storage initializer, which reads the S3 settings from the
    environment: AWS_ENDPOINT_URL (its http:// or https:// decides TLS), AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY, optionally AWS_DEFAULT_REGION and S3_VERIFY_SSL=0. The URI is
    treated as a folder (a trailing ``/`` is added),
    so ``.../versions/1`` never also picks up ``.../versions/10/``.
    """
    if model_uri.startswith("file://"):
        model_uri = model_uri.removeprefix("file://")
    if "://" not in model_uri:
        path = Path(model_uri)
        if not path.is_dir():
            raise ModelLoadError(f"{model_uri}: no such model directory")
        return path
    from kserve_storage import Storage

    target = download_dir or Path(tempfile.mkdtemp(prefix="stroke-model-"))
    folder_uri = model_uri if model_uri.endswith("/") else model_uri + "/"
    try:
        Storage.download(folder_uri, str(target))
    except Exception as error:  # kserve-storage raises bare Exception/RuntimeError subclasses
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ModelLoadError(f"{model_uri}: download failed: {reason}") from error
    return target


class StrokeModel(Model):
    """The stroke-risk predictor (see the module docstring for the protocols)."""

    def __init__(
        self,
        model_uri: str,
        *,
        name: str = schema.MODEL_NAME,
        request_logger: RequestLogger | None = None,
        metrics: ServingMetrics | None = None,
        download_dir: Path | None = None,
        max_instances: int = MAX_INSTANCES,
        public_key: Path | None = None,
    ) -> None:
        super().__init__(name)
        self.model_uri = model_uri
        self.max_instances = max_instances
        self.public_key = public_key  # None: $STROKE_MLOPS_SIGNING_PUBLIC_KEY at load()
        self.compiled: CompiledModel | None = None
        self.request_logger = request_logger or RequestLogger()
        self.metrics = metrics or ServingMetrics(registry=None)
        self._nullable: tuple[str, ...] = ()
        self._download_dir = download_dir

    def load(self) -> bool:
        """Fetch, verify (signature, then sha256, before deserializing), compile; then, and
        only then, ready."""
        self.ready = False
        try:
            public_key = self.public_key or public_key_from_env()
        except SignatureError as error:
            raise ModelLoadError(str(error)) from error
        try:
            model_dir = fetch_model_dir(self.model_uri, self._download_dir)
            self.compiled = load_compiled_model(model_dir, public_key)
        except ModelLoadError:
            raise
        except Exception as error:  # checksum, unpickling, unsupported shape: all refuse
            reason = str(error) or repr(error)
            where = "" if self.model_uri in reason else f"{self.model_uri}: "
            raise ModelLoadError(f"{where}{reason}") from error
        self._nullable = tuple(spec.name for spec in self.compiled.specs if spec.nullable)
        self.metrics.add_features(spec.name for spec in self.compiled.specs)
        log.info(
            "loaded model %s version %s (%s, threshold %.4f) from %s",
            self.name,
            self.compiled.version,
            self.compiled.classifier,
            self.compiled.threshold,
            self.model_uri,
        )
        self.ready = True
        return True

    def start(self) -> None:
        """Keep ``ready`` as load() left it (kserve's default start() would force it True)."""

    def stop(self) -> None:
        self.ready = False
        self.request_logger.close()

    def validate(self, payload: Any) -> Any:
        """Everything is validated in predict(), against the signature, with precise errors."""
        return payload

    def get_input_types(self) -> list[dict[str, Any]]:
        specs = self._model().specs
        return [{"name": s.name, "datatype": s.datatype, "shape": [-1]} for s in specs]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [
            {"name": "probability", "datatype": "FP64", "shape": [-1]},
            {"name": "decision", "datatype": "INT64", "shape": [-1]},
        ]

    def predict(
        self,
        payload: dict[str, Any] | InferRequest | RawV2Request | bytes,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        """Validate, encode and score a V1 body or a V2 request (one code path).

        Raw bodies (V1 bytes, :class:`RawV2Request`) are decoded here, strictly, so a body that
        does not decode is refused and recorded like any other invalid request.
        """
        started = time.perf_counter()
        context = _current_request.get()
        compiled = self._model()
        is_v2 = isinstance(payload, InferRequest | RawV2Request)
        v2_id = payload.id if isinstance(payload, InferRequest) else None
        request_id, replaced = bounded_request_id((headers or {}).get("x-request-id") or v2_id)
        if context is not None:
            context.request_id, context.request_id_replaced = request_id, replaced
            context.recorded = True  # this method records the request, good or bad
        record: dict[str, Any] = {
            "ts": utc_timestamp(),
            "request_id": request_id,
            "model_name": self.name,
            "model_version": compiled.version,
            "protocol": "v2" if is_v2 else "v1",
        }
        if replaced is not None:
            record["request_id_replaced"] = replaced
        try:
            if isinstance(payload, RawV2Request):
                payload = decode_v2_request(payload, self.name)
            if isinstance(payload, InferRequest):
                if payload.id and not (headers or {}).get("x-request-id"):
                    _use_request_id(record, context, payload.id)  # known once decoded
                columns, count = columns_from_v2(payload.inputs, compiled.specs, self.max_instances)
                _check_requested_outputs(payload)
            else:
                body = parse_json_body(payload) if isinstance(payload, bytes | str) else payload
                columns, count = columns_from_v1(body, compiled.specs, self.max_instances)
            predictions = compiled.predict(columns, count)
        except InvalidRequestError as error:
            message = cap_message(str(error))
            reason = refusal_reason(400, message)
            record.update(
                status="invalid",
                http_status=400,
                reason=reason,
                error=message,
                latency_ms=round((time.perf_counter() - started) * 1000, 3),
            )
            self.request_logger.log(record)
            self.metrics.observe_refusal(reason)
            raise InvalidInput(message) from error
        response: dict[str, Any] | InferResponse
        if isinstance(payload, InferRequest):
            response = InferResponse(
                response_id=payload.id or record["request_id"],
                model_name=self.name,
                model_version=compiled.version,
                infer_outputs=[
                    InferOutput("probability", [count], "FP64", data=predictions.probabilities),
                    InferOutput("decision", [count], "INT64", data=predictions.decisions),
                ],
                requested_outputs=payload.request_outputs,
                use_binary_outputs=payload.use_binary_outputs,
            )
        else:
            response = predictions.v1_body(self.name)
        record.update(
            status="ok",
            instances=count,
            inputs=columns,
            outputs={
                "probability": predictions.probabilities,
                "decision": predictions.decisions,
            },
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        self.request_logger.log(record)
        self.metrics.observe_predictions(
            compiled.version,
            predictions.probabilities,
            predictions.decisions,
            count_missing(columns, self._nullable),
        )
        return response

    def record_refusal(self, context: RequestContext, status: int, message: str) -> None:
        """Record a request refused before predict() (no inputs: they may not even parse)."""
        if context.recorded:
            return
        context.recorded = True
        if context.request_id is None:
            context.request_id, context.request_id_replaced = bounded_request_id(context.client_id)
        message = cap_message(message)
        reason = refusal_reason(status, message)
        record: dict[str, Any] = {
            "ts": utc_timestamp(),
            "request_id": context.request_id,
            "model_name": self.name,
            "model_version": self.compiled.version if self.compiled else None,
            "protocol": context.protocol,
            "status": "invalid",
            "http_status": status,
            "reason": reason,
            "error": message,
            "latency_ms": round((time.perf_counter() - context.started) * 1000, 3),
        }
        if context.request_id_replaced is not None:
            record["request_id_replaced"] = context.request_id_replaced
        self.request_logger.log(record)
        self.metrics.observe_refusal(reason)

    def _model(self) -> CompiledModel:
        if self.compiled is None:
            raise ModelNotReady(self.name, "the model is not loaded")
        return self.compiled


def _use_request_id(record: dict[str, Any], context: RequestContext | None, candidate: str) -> None:
    """Take a V2 body's ``id`` as the request id, bounded like a header's."""
    request_id, replaced = bounded_request_id(candidate)
    record["request_id"] = request_id
    record.pop("request_id_replaced", None)
    if replaced is not None:
        record["request_id_replaced"] = replaced
    if context is not None:
        context.request_id, context.request_id_replaced = request_id, replaced


def _check_requested_outputs(request: InferRequest) -> None:
    for output in request.request_outputs or ():
        if output.name not in OUTPUT_NAMES:
            raise InvalidRequestError(
                f'output "{output.name}" is not an output of this model '
                f"(outputs: {', '.join(OUTPUT_NAMES)})"
            )


# --------------------------------------------------------------------------------------------
# The server


# KServe logs every error it answers with a traceback; for these, one warning line is the story.
_CLIENT_ERRORS: tuple[tuple[type[Exception], int], ...] = (
    (InvalidInput, 400),
    (ModelNotFound, 404),
    (ModelNotReady, 503),
    (NotImplementedError, 501),  # KServe's answer to /v2/models/<m>/versions/<v>/... paths
)


class _OneLineInvalidInput(logging.Filter):
    """Client mistakes (and a not-ready model) as one warning line, never a traceback, and
    never the message (it can quote submitted values; the request-log store has it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        for kind, status in _CLIENT_ERRORS:
            if isinstance(error, kind):
                reason = refusal_reason(status, str(error))
                record.msg, record.args = f"refused request ({status}, %s)", (reason,)
                record.exc_info, record.exc_text = None, None
                record.levelno, record.levelname = logging.WARNING, "WARNING"
                break
        return True


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RefusalRecorder:
    """ASGI middleware: every inference request answered with a 4xx is recorded once.

    It shares a :class:`RequestContext` (the client's ``x-request-id``, the arrival time) with
    predict() and the error handlers through a context variable, and when the response status is
    4xx and predict() did not record the request itself (KServe refused it first), records it
    with the handler's message or, failing that, its status, under a bounded request id (see
    request_log.bounded_request_id).
    """

    def __init__(self, app: ASGIApp, model: StrokeModel) -> None:
        self.app = app
        self.model = model

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.endswith(INFERENCE_PATH_ENDINGS):
            await self.app(scope, receive, send)
            return
        client_id = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                client_id = value.decode("latin-1")
                break
        context = RequestContext(
            client_id=client_id,
            started=time.perf_counter(),
            protocol="v2" if path.startswith("/v2/") else "v1",
        )
        token = _current_request.set(context)
        status = 0

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if 400 <= status < 500 and not context.recorded:
                    self.model.record_refusal(
                        context, status, context.error or f"HTTP {status} before the model"
                    )
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            _current_request.reset(token)


def configure_server_logging() -> None:
    """KServe's log format on stderr; stdout carries only the JSON request records."""
    from kserve.logging import KSERVE_LOG_CONFIG, configure_logging

    config = copy.deepcopy(KSERVE_LOG_CONFIG)
    config["handlers"]["uvicorn_access"]["stream"] = "ext://sys.stderr"
    config["loggers"]["uvicorn.access"]["level"] = "WARNING"  # the request log replaces it
    config["loggers"]["kserve.trace"]["level"] = "WARNING"  # per-request timing lines
    config["loggers"]["stroke_mlops"] = {
        "handlers": ["kserve"],
        "level": "INFO",
        "propagate": False,
    }
    configure_logging(config)
    logging.getLogger("kserve").addFilter(_OneLineInvalidInput())
    # kserve 0.21 still answers with ORJSONResponse, which FastAPI now flags on every route.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")


def _install_refusal_handlers(app: Any) -> None:
    """Our 400 handlers in place of KServe's: one response shape, the message kept for the record.

    KServe answers ``InvalidInput`` with 400 and an ``error:`` traceback; FastAPI answers a V2
    body that does not parse with 422. Both become ``400 {"error": message}`` here, the message
    capped, and the request is recorded by RefusalRecorder; stderr gets one line with its reason.
    """
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    def refuse(message: str) -> JSONResponse:
        message = cap_message(message)
        context = _current_request.get()
        if context is not None:
            context.error = message
        request_id = context.request_id if context is not None else None
        # one line, and never the message: it can quote what the client sent
        log.warning("refused request %s (400, %s)", request_id or "-", refusal_reason(400, message))
        return JSONResponse(status_code=400, content={"error": message})

    async def invalid_input(_: Request, error: Exception) -> JSONResponse:
        return refuse(str(error))

    async def bad_body(_: Request, error: Exception) -> JSONResponse:
        problems = error.errors() if isinstance(error, RequestValidationError) else []
        return refuse(f"malformed V2 inference request: {describe_body_errors(problems) or error}")

    app.add_exception_handler(InvalidInput, invalid_input)
    app.add_exception_handler(RequestValidationError, bad_body)


def describe_body_errors(problems: Sequence[Any]) -> str:
    """FastAPI/pydantic body errors as one line, e.g. ``inputs.0.shape: Field required``."""
    parts: list[str] = []
    for problem in problems:
        location = [str(p) for p in problem.get("loc", ())]
        if problem.get("type") == "json_invalid":
            position = location[1] if len(location) > 1 else "?"
            reason = (problem.get("ctx") or {}).get("error", "JSON decode error")
            return f"the body is not valid JSON ({reason} at character {position})"
        if len(location) > 1 and location[1] == "bytes":
            continue  # the endpoint also accepts raw bytes; that alternative is noise here
        if location[:2] == ["body", "InferenceRequest"]:
            location = location[2:]
        elif location[:1] == ["body"]:
            location = location[1:]
        where = ".".join(part[:40] for part in location[:8]) or "body"  # keys are client data
        parts.append(f"{where}: {str(problem.get('msg', 'invalid'))[:200]}")
    shown = parts[:5]
    more = f"; and {len(parts) - len(shown)} more" if len(parts) > len(shown) else ""
    return "; ".join(shown) + more


def install_inference_routes(app: Any, dataplane: Any) -> None:
    """Serve V1 ``:predict`` and V2 ``/infer`` from the raw body, ahead of KServe's own routes.

    KServe's handlers parse the body before the model sees it (orjson for V1, keeping the last
    of two equal keys; pydantic for V2, coercing ``"shape": ["1"]``, answering 500 to broken
    binary tensors); these pass the bytes to ``StrokeModel.predict``, which decodes them
    strictly. Everything after decoding (readiness, ``DataPlane.infer`` and ``encode``) is
    KServe's. Starlette matches routes in order, so these, added first, take the two paths.
    (FastAPI reads the handlers' annotations from this module's globals: keep Request and
    Response imported at module level.)
    """

    async def answer(model_name: str, request: Request, payload: bytes | RawV2Request) -> Response:
        if not await dataplane.model_ready(model_name, True):
            raise ModelNotReady(model_name)
        headers = dict(request.headers.items())
        response, response_headers = await dataplane.infer(
            model_name=model_name, request=payload, headers=headers
        )
        response, encoding_headers = dataplane.encode(
            model_name=model_name, response=response, headers=headers, req_attributes={}
        )
        response_headers.update(encoding_headers)
        response_headers.pop("content-length", None)
        if isinstance(response, bytes):  # V2 with binary outputs
            return Response(content=response, headers=response_headers)
        return ORJSONResponse(content=response, headers=response_headers)

    async def predict_v1(model_name: str, request: Request) -> Response:
        return await answer(model_name, request, await request.body())

    async def infer_v2(model_name: str, request: Request) -> Response:
        raw = RawV2Request(await request.body(), request.headers.get(INFERENCE_HEADER))
        return await answer(model_name, request, raw)

    app.add_api_route(
        "/v1/models/{model_name}:predict", predict_v1, methods=["POST"], response_model=None
    )
    app.add_api_route(
        "/v2/models/{model_name}/infer", infer_v2, methods=["POST"], response_model=None
    )


class _ModelServer(ModelServer):
    """kserve.ModelServer with our bind address, HTTP limits and strict inference routes."""

    def __init__(
        self,
        *,
        host: str,
        limits: ServingLimits,
        recorded_model: StrokeModel | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._host = host
        self._recorded_model = recorded_model
        self._limits = limits

    def start(self, models: list[Any]) -> None:
        from kserve.model_server import app  # the FastAPI app every kserve.ModelServer serves

        install_inference_routes(app, self.dataplane)
        app.add_middleware(BodyLimitMiddleware, limits=self._limits)
        if self._recorded_model is not None:  # outermost: it also sees the limits' 413 and 408
            app.add_middleware(RefusalRecorder, model=self._recorded_model)
        super().start(models)

    def setup_event_loop(self) -> None:
        # start() has built the REST server but not started it; its uvicorn config loads later.
        if self._rest_server is not None:
            self._rest_server.config.host = self._host
            apply_to_uvicorn(self._rest_server.config, self._limits)
            rest_server = self._rest_server
            create_application = rest_server.create_application

            def create_application_with_our_handlers() -> None:
                create_application()  # registers KServe's handlers, which ours then replace
                from kserve.model_server import app

                _install_refusal_handlers(app)

            rest_server.create_application = create_application_with_our_handlers
        super().setup_event_loop()


def serve(
    model_uri: str,
    *,
    port: int = DEFAULT_HTTP_PORT,
    host: str = DEFAULT_HOST,
    grpc_port: int | None = None,
    request_log_sink: RequestLogSink | None = None,
    log_requests_to_stdout: bool = True,
    limits: ServingLimits | None = None,
    public_key: Path | None = None,
) -> None:
    """Load the model at ``model_uri`` and serve it until SIGTERM/SIGINT (blocks).

    Raises ModelLoadError (one-line reason) before listening if the model cannot be served.
    gRPC is off unless ``grpc_port`` is given. ``request_log_sink`` sends the full request
    records to an object store (see request_log.RequestLogSink); stdout gets metadata only.
    Metrics go to prometheus_client's default registry, which KServe serves on ``/metrics``.
    ``limits`` bounds what clients can send and hold (see http_limits; the defaults are the
    deployed ones).
    """
    limits = limits or ServingLimits()
    configure_server_logging()
    logger = RequestLogger(
        stream=sys.stdout if log_requests_to_stdout else None, sink=request_log_sink
    )
    model = StrokeModel(
        model_uri,
        request_logger=logger,
        max_instances=limits.max_instances,
        metrics=ServingMetrics(),
        public_key=public_key,
    )
    try:
        model.load()
    except ModelLoadError:
        logger.close()
        raise
    model.metrics.watch_request_log(request_log_sink)
    server = _ModelServer(
        host=host,
        limits=limits,
        recorded_model=model,
        http_port=port,
        grpc_port=grpc_port or 8081,
        enable_grpc=grpc_port is not None,
        enable_latency_logging=False,
    )
    try:
        server.start([model])
    finally:
        logger.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stroke_mlops.serving.predictor",
        description="Serve the stroke model over KServe's V1 and V2 REST protocols.",
    )
    parser.add_argument(
        "--model-uri",
        default=os.environ.get("STROKE_MODEL_URI", DEFAULT_MODEL_URI),
        help="model directory: a local folder or s3://bucket/prefix "
        "(default $STROKE_MODEL_URI or /mnt/models)",
    )
    parser.add_argument(
        "--public-key",
        type=Path,
        default=os.environ.get(PUBLIC_KEY_ENV) or None,
        help="PEM public key the model directory's signature must verify with "
        f"(default ${PUBLIC_KEY_ENV}); without one the server refuses to load",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_HTTP_PORT, help="HTTP port")
    add_server_arguments(parser)
    parser.add_argument("--grpc-port", type=int, default=None, help="also serve gRPC V2 here")
    parser.add_argument(
        "--request-log-uri",
        "--request-log-dir",
        dest="request_log_uri",
        default=os.environ.get("STROKE_REQUEST_LOG_URI"),
        help="write full request records (features included), batched as private JSON-lines "
        "objects, to this folder or s3://bucket/prefix (monitoring); default "
        "$STROKE_REQUEST_LOG_URI",
    )
    parser.add_argument(
        "--request-log-retention-days",
        type=_positive_int,
        default=os.environ.get("STROKE_REQUEST_LOG_RETENTION_DAYS"),  # argparse applies type
        help="delete request-log day partitions older than this many days (at start and daily); "
        "default $STROKE_REQUEST_LOG_RETENTION_DAYS, or keep everything",
    )
    defaults = ServingLimits()
    parser.add_argument(
        "--header-timeout-s",
        type=float,
        default=defaults.header_timeout_s,
        help="close a connection whose request headers are not complete this long after it "
        f"opened or after its last response (default {defaults.header_timeout_s:g})",
    )
    parser.add_argument(
        "--body-timeout-s",
        type=float,
        default=defaults.body_timeout_s,
        help=f"answer 408 when the body takes longer (default {defaults.body_timeout_s:g})",
    )
    parser.add_argument(
        "--no-stdout-request-log",
        action="store_true",
        help="do not print a metadata line (id, version, status, latency) per request on stdout",
    )
    return parser


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """--host and --max-instances, shared by this module's parser and ``stroke-mlops serve``."""
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to bind (default {DEFAULT_HOST}; 0.0.0.0 to listen on every interface)",
    )
    parser.add_argument(
        "--max-instances",
        type=int,
        default=MAX_INSTANCES,
        help=f"most instances in one request (default {MAX_INSTANCES}); the body size limit "
        "is derived from it",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of days >= 1; got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m stroke_mlops.serving.predictor``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.request_log_retention_days is not None and not args.request_log_uri:
        parser.error("--request-log-retention-days needs --request-log-uri")
    sink = (
        RequestLogSink(
            writer_for(args.request_log_uri),
            flush_interval_s=1.0,
            retention_days=args.request_log_retention_days,
        )
        if args.request_log_uri
        else None
    )
    try:
        limits = limits_for(
            args.max_instances,
            header_timeout_s=args.header_timeout_s,
            body_timeout_s=args.body_timeout_s,
        )
    except ValueError as error:
        print(f"stroke-mlops serve: {error}", file=sys.stderr)
        return 2
    try:
        serve(
            args.model_uri,
            limits=limits,
            port=args.port,
            host=args.host,
            grpc_port=args.grpc_port,
            request_log_sink=sink,
            log_requests_to_stdout=not args.no_stdout_request_log,
            public_key=args.public_key,
        )
    except ModelLoadError as error:
        print(f"stroke-mlops serve: cannot load the model: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
