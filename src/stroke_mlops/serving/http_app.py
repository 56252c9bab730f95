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

import orjson
from fastapi import Request
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


class InferenceEndpoints:
    """ASGI: V1 ``POST /v1/models/<m>:predict`` and ``:explain`` and V2 ``POST
    /v2/models/<m>/infer`` served from the raw body, ahead of KServe's routes; every other
    request goes on to KServe's app.

    KServe's handlers parse the body before the model sees it (orjson for V1, keeping the last
    of two equal keys; pydantic for V2, coercing ``"shape": ["1"]``, answering 500 to broken
    binary tensors); these pass the bytes to ``StrokeModel.preprocess``, which decodes them
    strictly. Everything after that is KServe's: readiness, ``DataPlane.infer`` (the model's
    preprocess, predict and postprocess) or, for ``:explain``, ``DataPlane.explain`` (KServe's
    ``Model.explain`` hook in place of predict) and ``DataPlane.encode``; errors are answered by the
    app's own exception handlers. Served here, an inference request skips the framework's
    routing and per-request objects, most of what a one-row request costs besides scoring.
    """

    def __init__(self, app: ASGIApp, dataplane: Any, handlers: Any) -> None:
        self.app = app
        self.dataplane = dataplane
        self.handlers = handlers  # the FastAPI app, whose exception handlers answer errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        model_name, verb = _inference_model(scope)
        if model_name is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        try:
            if scope["path"].startswith("/v2/"):
                payload: bytes | RawV2Request = RawV2Request(body, headers.get(INFERENCE_HEADER))
            else:
                payload = body
            if not await self.dataplane.model_ready(model_name, True):
                raise ModelNotReady(model_name)
            run = self.dataplane.explain if verb == "explain" else self.dataplane.infer
            response, response_headers = await run(
                model_name=model_name, request=payload, headers=headers
            )
            response, encoding_headers = self.dataplane.encode(
                model_name=model_name, response=response, headers=headers, req_attributes={}
            )
        except Exception as error:
            await self._answer_error(scope, receive, send, error)
            return
        response_headers.update(encoding_headers)
        response_headers.pop("content-length", None)
        if isinstance(response, bytes):  # V2 with binary outputs
            content, media_type = response, None
        else:
            content = orjson.dumps(
                response, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
            )
            media_type = b"application/json"
        raw_headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in response_headers.items()
        ]
        raw_headers.append((b"content-length", str(len(content)).encode()))
        if media_type is not None and "content-type" not in response_headers:
            raw_headers.append((b"content-type", media_type))
        await send({"type": "http.response.start", "status": 200, "headers": raw_headers})
        await send({"type": "http.response.body", "body": content})

    async def _answer_error(
        self, scope: Scope, receive: Receive, send: Send, error: Exception
    ) -> None:
        for kind in type(error).__mro__:
            handler = self.handlers.exception_handlers.get(kind)
            if handler is not None:
                response = await handler(Request(scope, receive), error)
                await response(scope, receive, send)
                if kind is Exception:  # as Starlette does: the server logs it
                    raise error
                return
        raise error


_INFERENCE_PATHS = (
    ("/v1/models/", ":predict", "predict"),
    ("/v1/models/", ":explain", "explain"),
    ("/v2/models/", "/infer", "predict"),
)


def _inference_model(scope: Scope) -> tuple[str | None, str]:
    """The model name and verb of a V1 predict/explain or V2 infer POST; (None, "") otherwise."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None, ""
    path = str(scope["path"])
    for prefix, suffix, verb in _INFERENCE_PATHS:
        if path.startswith(prefix) and path.endswith(suffix):
            name = path[len(prefix) : len(path) - len(suffix)]
            if name and "/" not in name:
                return name, verb
    return None, ""


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
