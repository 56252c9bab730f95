"""Limits of the model server's HTTP layer: what a hostile or broken client can hold, and how long.

One :class:`ServingLimits` configures everything, from the largest batch the model accepts:

* **Body size.** A body larger than :attr:`ServingLimits.max_body_bytes` (sized from
  ``max_instances`` rows, see :data:`BYTES_PER_INSTANCE`) is refused with 413 *before it is read*
  when its ``Content-Length`` says so, and as soon as the count passes the limit for a chunked
  body; either way the connection is closed, so the rest is never read. All bodies being read
  at once share :attr:`ServingLimits.max_buffered_body_bytes`; past it a request gets 503.
* **Time.** A connection must deliver complete request headers within
  :attr:`ServingLimits.header_timeout_s` of opening (or of its previous response), and the whole
  body within :attr:`ServingLimits.body_timeout_s` of its headers; otherwise it is closed (a
  late body gets 408 first). Headers larger than :attr:`ServingLimits.max_header_bytes` get 431.
* **Connections.** Beyond :attr:`ServingLimits.max_connections` open connections, a request is
  answered 503 (uvicorn's ``limit_concurrency``), until the timeouts above free the slots.

:class:`BodyLimitMiddleware` (ASGI) enforces size and body time, and reads the body whole before
the application sees it, so a client that disconnects mid-body costs one debug line, never a
traceback. :func:`guarded_protocol_class` makes the uvicorn HTTP protocol that enforces the
header deadline and size, which no uvicorn setting does (its ``timeout_keep_alive`` only starts
after a first response, and stops counting at the first byte of the next request).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from stroke_mlops.serving.defaults import MAX_INSTANCES

log = logging.getLogger("stroke_mlops.serving.http_limits")

# The largest valid instance, pretty-printed with 4-space indentation and 17-digit floats, is
# about 400 bytes (tests/serving/test_http_limits.py builds it); 1 KiB leaves room for any
# formatting a client may use.
BYTES_PER_INSTANCE = 1024
BODY_OVERHEAD_BYTES = 64 * 1024  # the envelope: top-level fields, V2 input headers, an id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class ServingLimits:
    """Every limit of the HTTP layer; the defaults are the deployed ones."""

    max_instances: int = MAX_INSTANCES
    header_timeout_s: float = 5.0
    body_timeout_s: float = 15.0
    max_header_bytes: int = 64 * 1024
    max_connections: int = 1000
    max_buffered_body_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_instances < 1:
            raise ValueError(f"max_instances must be at least 1; got {self.max_instances}")
        for name in ("header_timeout_s", "body_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive; got {getattr(self, name)}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1; got {self.max_connections}")
        if self.max_buffered_body_bytes < self.max_body_bytes:
            raise ValueError(
                f"max_buffered_body_bytes ({self.max_buffered_body_bytes}) must hold at least "
                f"one largest body ({self.max_body_bytes} bytes)"
            )

    @property
    def max_body_bytes(self) -> int:
        """The largest body accepted: ``max_instances`` rows of any valid formatting."""
        return self.max_instances * BYTES_PER_INSTANCE + BODY_OVERHEAD_BYTES


def limits_for(max_instances: int = MAX_INSTANCES, **overrides: Any) -> ServingLimits:
    """The default limits for a row limit (the shared body budget grows to fit if needed)."""
    body = max_instances * BYTES_PER_INSTANCE + BODY_OVERHEAD_BYTES
    budget = max(ServingLimits.max_buffered_body_bytes, body)
    return ServingLimits(
        **{"max_instances": max_instances, "max_buffered_body_bytes": budget, **overrides}
    )


# --------------------------------------------------------------------------------------------
# Body size and time (ASGI middleware)


class BodyLimitMiddleware:
    """Reads each request body under the limits, then hands it whole to the application."""

    def __init__(self, app: ASGIApp, limits: ServingLimits) -> None:
        self.app = app
        self.limits = limits
        self.buffered_bytes = 0  # bodies being read or served right now, all requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.max_body_bytes
        declared = _declared_length(scope)
        if declared == -1:
            await _refuse(send, 400, "Content-Length is not a non-negative integer")
            return
        if declared is not None and declared > limit:
            refusal = _too_large(f"{declared} bytes", limit, self.limits.max_instances)
            await _refuse(send, 413, refusal)
            return
        held = [0]  # bytes of this request counted in buffered_bytes
        try:
            body = await self._read_body(receive, send, held)
            if body is not None:
                await self.app(scope, _replay(body, receive), send)
        finally:
            self.buffered_bytes -= held[0]

    async def _read_body(self, receive: Receive, send: Send, held: list[int]) -> bytes | None:
        """The whole body, or None once the request has been answered (or the client left)."""
        limit = self.limits.max_body_bytes
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(self.limits.body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        log.debug("client disconnected before sending the whole body")
                        return None
                    chunk = message.get("body", b"")
                    if held[0] + len(chunk) > limit:
                        size = f"more than {limit} bytes"
                        await _refuse(send, 413, _too_large(size, limit, self.limits.max_instances))
                        return None
                    if self.buffered_bytes + len(chunk) > self.limits.max_buffered_body_bytes:
                        await _refuse(send, 503, "too many large requests at once; retry later")
                        return None
                    self.buffered_bytes += len(chunk)
                    held[0] += len(chunk)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        except TimeoutError:
            late = f"the body did not arrive within {self.limits.body_timeout_s:g} s"
            await _refuse(send, 408, f"{late} ({held[0]} bytes read)")
            return None


def _declared_length(scope: Scope) -> int | None:
    """Content-Length as an int; None when absent; -1 when it is not a valid length."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = bytes(value).strip()
            return int(text) if text.isdigit() and len(text) <= 18 else -1
    return None


def _too_large(size: str, limit: int, max_instances: int) -> str:
    return (
        f"the body has {size}; at most {limit} are accepted ({max_instances} instances per request)"
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that gives the buffered body once, then waits for the client to go."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(send: Send, status: int, message: str) -> None:
    """A JSON error and ``connection: close`` (whatever of the body is unread is never read);
    one warning line."""
    log.warning("refused request (%d): %s", status, message)
    payload = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload, "more_body": False})


# --------------------------------------------------------------------------------------------
# Header deadline and size (a uvicorn protocol: stroke_mlops.compat.uvicorn)


def guarded_protocol_class(limits: ServingLimits) -> type[asyncio.Protocol]:
    """The uvicorn HTTP protocol class enforcing ``limits``' header deadline and size."""
    from stroke_mlops.compat.uvicorn import header_guarded_protocol

    return header_guarded_protocol(limits.header_timeout_s, limits.max_header_bytes)


def apply_to_uvicorn(config: Any, limits: ServingLimits) -> None:
    """Set ``limits`` on a not-yet-loaded ``uvicorn.Config``: protocol, keep-alive, concurrency."""
    config.http = guarded_protocol_class(limits)
    config.timeout_keep_alive = limits.header_timeout_s
    config.limit_concurrency = limits.max_connections
