"""The HTTP layer around the model: middleware, error handlers, strict inference routes, logging.

Requests refused before ``predict()`` (an oversized body, an unknown model) are recorded by
:class:`RefusalRecorder`, an ASGI middleware, helped by our handlers for ``InvalidInput`` and
``RequestValidationError``, which replace KServe's. :mod:`stroke_mlops.serving.metrics` counts
both kinds on ``/metrics``. The HTTP layer's limits (body size, header and body deadlines,
connections) are :mod:`stroke_mlops.serving.http_limits`.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.responses import ORJSONResponse
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady

from stroke_mlops.serving.metrics import refusal_reason
from stroke_mlops.serving.model import RequestContext, StrokeModel, cap_message, current_request
from stroke_mlops.serving.protocol.v2_request import INFERENCE_HEADER, RawV2Request

log = logging.getLogger(__name__)

INFERENCE_PATH_ENDINGS = (":predict", ":explain", "/infer")


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
        token = current_request.set(context)
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
            current_request.reset(token)


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


def install_refusal_handlers(app: Any) -> None:
    """Our 400 handlers in place of KServe's: one response shape, the message kept for the record.

    KServe answers ``InvalidInput`` with 400 and an ``error:`` traceback; FastAPI answers a V2
    body that does not parse with 422. Both become ``400 {"error": message}`` here, the message
    capped, and the request is recorded by RefusalRecorder; stderr gets one line with its reason.
    """
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    def refuse(message: str) -> JSONResponse:
        message = cap_message(message)
        context = current_request.get()
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
    """Serve V1 ``:predict``/``:explain`` and V2 ``/infer`` from the raw body, ahead of KServe's.

    KServe's handlers parse the body before the model sees it (orjson for V1, keeping the last
    of two equal keys; pydantic for V2, coercing ``"shape": ["1"]``, answering 500 to broken
    binary tensors); these pass the bytes to ``StrokeModel.predict``, which decodes them
    strictly. Everything after decoding (readiness, ``DataPlane.infer`` and ``encode``) is
    KServe's. Starlette matches routes in order, so these, added first, take these paths.
    ``:explain`` goes through ``DataPlane.explain``, i.e. KServe's ``Model.explain`` hook.
    (FastAPI reads the handlers' annotations from this module's globals: keep Request and
    Response imported at module level.)
    """

    async def answer(
        model_name: str, request: Request, payload: bytes | RawV2Request, explain: bool = False
    ) -> Response:
        if not await dataplane.model_ready(model_name, True):
            raise ModelNotReady(model_name)
        headers = dict(request.headers.items())
        run = dataplane.explain if explain else dataplane.infer  # explain: Model.explain()
        response, response_headers = await run(
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

    async def explain_v1(model_name: str, request: Request) -> Response:
        return await answer(model_name, request, await request.body(), explain=True)

    async def infer_v2(model_name: str, request: Request) -> Response:
        raw = RawV2Request(await request.body(), request.headers.get(INFERENCE_HEADER))
        return await answer(model_name, request, raw)

    app.add_api_route(
        "/v1/models/{model_name}:predict", predict_v1, methods=["POST"], response_model=None
    )
    app.add_api_route(
        "/v1/models/{model_name}:explain", explain_v1, methods=["POST"], response_model=None
    )
    app.add_api_route(
        "/v2/models/{model_name}/infer", infer_v2, methods=["POST"], response_model=None
    )
