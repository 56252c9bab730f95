"""uvicorn internals the model server relies on (uvicorn 0.54).

No uvicorn setting bounds the time or size of a request's headers (``timeout_keep_alive`` starts
only after a first response and stops at the first byte of the next request, and there is no
header size limit with httptools). ``uvicorn.Config(http=...)`` accepts a protocol class, so
:func:`header_guarded_protocol` subclasses ``HttpToolsProtocol``
(``uvicorn.protocols.http.httptools_impl``) and relies on its internals: the httptools parser
callbacks (``on_message_begin``, ``on_url``, ``on_header``, ``on_headers_complete``,
``on_body``, ``on_message_complete``), ``on_response_complete``, and its ``transport``, ``loop``
and ``pipeline`` attributes.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from stroke_mlops.compat import require_tested

TESTED = ("0.54",)
VERSION = require_tested("uvicorn", TESTED, __name__)

log = logging.getLogger("stroke_mlops.serving.http_limits")


class _HeaderGuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose request headers are late or huge.

    The deadline runs from the connection's start, and again from each response (when no
    request is queued), until a request's headers are complete.
    """

    header_timeout_s: float = 5.0
    max_header_bytes: int = 64 * 1024
    _reading_headers: bool
    _headers_refused: bool
    _header_bytes: int
    _parsed_header_bytes: int

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._start_headers()
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._reading_headers:  # headers still incomplete: count what they took so far
            self._header_bytes += len(data)
        if self._headers_refused or self._header_bytes > self.max_header_bytes:
            log.warning("refused request (431): headers over %d bytes", self.max_header_bytes)
            self._send_and_close(b"431 Request Header Fields Too Large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_headers()

    def on_url(self, url: bytes) -> None:
        self._parsed_header_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parsed_header_bytes += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._cancel_header_deadline()
        if self._parsed_header_bytes > self.max_header_bytes:
            self._headers_refused = True  # data_received answers 431; the app never sees it
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._headers_refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._headers_refused:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        queued = bool(self.pipeline)
        super().on_response_complete()
        if not queued and not self.transport.is_closing():
            self._start_headers()
            self._arm_header_deadline()

    def _start_headers(self) -> None:
        self._reading_headers = True
        self._headers_refused = False
        self._header_bytes = 0  # bytes received while headers were incomplete
        self._parsed_header_bytes = 0  # request line and header fields, as parsed

    def _arm_header_deadline(self) -> None:
        self._cancel_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _cancel_header_deadline(self) -> None:
        deadline = getattr(self, "_header_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self._reading_headers and not self.transport.is_closing():
            log.debug(
                "closing a connection without complete headers after %gs", self.header_timeout_s
            )
            self.transport.close()

    def _send_and_close(self, status: bytes) -> None:
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        self.transport.close()
        self._cancel_header_deadline()


def header_guarded_protocol(
    header_timeout_s: float, max_header_bytes: int
) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol closing connections whose request headers take longer than
    ``header_timeout_s`` or exceed ``max_header_bytes`` (431)."""
    return type(
        "GuardedHttpToolsProtocol",
        (_HeaderGuardedProtocol,),
        {"header_timeout_s": header_timeout_s, "max_header_bytes": max_header_bytes},
    )
