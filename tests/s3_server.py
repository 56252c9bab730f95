"""A real S3 endpoint for tests: moto's server on 127.0.0.1, and a proxy that injects faults.

Register with ``pytest_plugins = ["tests.s3_server"]`` in the root conftest. Fixtures:

* ``moto_endpoint`` (session): ``http://127.0.0.1:<port>`` of a ``ThreadedMotoServer``.
* ``s3_bucket``: a fresh, empty bucket, with ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION`` (and KServe's ``S3_USE_HTTPS=0``) set for the test.
* ``fault_proxy``: a :class:`FaultProxy` in front of moto; ``AWS_ENDPOINT_URL`` points at it, so
  code under test talks real HTTP through it and a test decides which requests fail.

The credentials are fake, labelled test values: moto accepts any keys.
"""

from __future__ import annotations

import http.client
import io
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from minio import Minio

TEST_ACCESS_KEY = "test-access-key-not-a-secret"
TEST_SECRET_KEY = "test-secret-key-not-a-secret"
TEST_REGION = "us-east-1"
# Not forwarded by a proxy (RFC 9110 §7.6.1); Content-Length is recomputed.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """An S3 API on 127.0.0.1 (moto's threaded server on a free port) for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def minio_for(endpoint_url: str) -> Minio:
    """A plain minio client for ``endpoint_url`` with the test credentials."""
    parts = urllib.parse.urlsplit(endpoint_url)
    return Minio(
        parts.netloc,
        access_key=TEST_ACCESS_KEY,
        secret_key=TEST_SECRET_KEY,
        secure=parts.scheme == "https",
        region=TEST_REGION,
    )


@dataclass
class S3Bucket:
    """A bucket created for one test, and a client that talks to moto directly."""

    name: str
    endpoint_url: str
    client: Minio

    def uri(self, key: str = "") -> str:
        return f"s3://{self.name}/{key}" if key else f"s3://{self.name}"

    def put(self, key: str, content: bytes) -> str:
        """Upload ``content`` as ``key``; returns its s3:// URI."""
        self.client.put_object(self.name, key, io.BytesIO(content), len(content))
        return self.uri(key)

    def keys(self, prefix: str = "") -> list[str]:
        objects = self.client.list_objects(self.name, prefix=prefix, recursive=True)
        return sorted(str(o.object_name) for o in objects)

    def read(self, key: str) -> bytes:
        response = self.client.get_object(self.name, key)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    def snapshot(self, prefix: str = "") -> dict[str, bytes]:
        """Every object under ``prefix`` with its bytes, to compare before/after a failure."""
        return {key: self.read(key) for key in self.keys(prefix)}


@pytest.fixture
def s3_bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    """A fresh bucket, and the AWS_* environment pointing at moto with test credentials."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    client = minio_for(moto_endpoint)
    client.make_bucket(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", TEST_REGION)
    monkeypatch.setenv("S3_USE_HTTPS", "0")  # KServe's storage initializer reads this
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return S3Bucket(name=name, endpoint_url=moto_endpoint, client=client)


@dataclass
class FaultRule:
    """Answer matching requests with ``status`` instead of forwarding them.

    A request matches when its method is ``method`` and its path ends with ``path_suffix``; with
    ``nth`` set, the rule arms on the nth matching request and from then on fails every request
    to that same path (so the client's retries of that request fail too).
    """

    method: str
    path_suffix: str = ""
    status: int = 500
    code: str = "InternalError"
    nth: int | None = None
    seen: int = 0
    armed_path: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if method != self.method or not path.endswith(self.path_suffix):
            return False
        if self.nth is None:
            return True
        if self.armed_path is None:
            self.seen += 1
            if self.seen == self.nth:
                self.armed_path = path
        return path == self.armed_path


@dataclass
class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 that forwards to an S3 endpoint unless told to fail."""

    upstream: str
    rules: list[FaultRule] = field(default_factory=list)
    log: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the proxy first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail(self, method: str, path_suffix: str, *, status: int = 500) -> FaultRule:
        """Fail every ``method`` request whose path ends with ``path_suffix``."""
        return self._add(FaultRule(method=method, path_suffix=path_suffix, status=status))

    def fail_nth(self, method: str, nth: int, *, status: int = 500) -> FaultRule:
        """Fail the nth ``method`` request, and every retry of it."""
        return self._add(FaultRule(method=method, nth=nth, status=status))

    def _add(self, rule: FaultRule) -> FaultRule:
        rule.code = {403: "AccessDenied", 503: "SlowDown"}.get(rule.status, "InternalError")
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def requests(self, method: str | None = None) -> list[str]:
        """Paths of the requests seen (optionally one method), in order."""
        with self._lock:
            return [path for m, path, _ in self.log if method is None or m == method]

    def failed(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(m, path) for m, path, status in self.log if status >= 400]

    def _fault_for(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    return rule
        return None

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.log.append((method, path, status))

    def start(self) -> FaultProxy:
        proxy = self
        target = urllib.parse.urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the minio client expects

            def log_message(self, format: str, *args: object) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    self._send(501, {"Content-Type": "text/plain"}, b"chunked bodies unsupported")
                    return
                body = self.rfile.read(length) if length else b""
                path = urllib.parse.urlsplit(self.path).path
                rule = proxy._fault_for(self.command, path)
                if rule is not None:
                    proxy._record(self.command, path, rule.status)
                    error = (
                        '<?xml version="1.0" encoding="UTF-8"?>\n'
                        f"<Error><Code>{rule.code}</Code><Message>injected by the test proxy"
                        f"</Message><Resource>{path}</Resource><RequestId>fault</RequestId>"
                        "</Error>"
                    ).encode()
                    self._send(rule.status, {"Content-Type": "application/xml"}, error)
                    return
                upstream = http.client.HTTPConnection(target.netloc, timeout=30)
                try:
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP
                    }
                    upstream.request(self.command, self.path, body=body or None, headers=headers)
                    response = upstream.getresponse()
                    content = response.read()
                    reply = {
                        k: v
                        for k, v in response.getheaders()
                        if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"
                    }
                    if self.command == "HEAD":  # no body, but the object's length
                        reply["Content-Length"] = response.getheader("Content-Length") or "0"
                        content = b""
                    proxy._record(self.command, path, response.status)
                    self._send(response.status, reply, content)
                finally:
                    upstream.close()

            def _send(self, status: int, headers: dict[str, str], content: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if content:
                    self.wfile.write(content)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def fault_proxy(s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of moto; ``AWS_ENDPOINT_URL`` points at the proxy."""
    proxy = FaultProxy(upstream=s3_bucket.endpoint_url).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    yield proxy
    proxy.stop()
