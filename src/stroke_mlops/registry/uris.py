"""Reading data by URI, and the S3/MinIO connection settings every component shares.

A URI is a local path, ``file://``, ``s3://bucket/key`` or ``http(s)://``. S3 settings come from
the environment under the AWS names, so one Kubernetes Secret serves our components and KServe's
storage initializer alike:

    AWS_ENDPOINT_URL        e.g. http://minio.stroke-mlops:9000 (the scheme decides TLS)
    AWS_ACCESS_KEY_ID       required
    AWS_SECRET_ACCESS_KEY   required
    AWS_REGION              optional, default us-east-1
    AWS_SESSION_TOKEN       optional (temporary credentials)

Every failure is a :class:`StorageError` whose message is one line naming the URI and the cause.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # minio costs ~0.25 s to import; only S3 paths need it
    from minio import Minio

DEFAULT_REGION = "us-east-1"
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_BYTES = 1 << 30  # an ingest input larger than 1 GiB is a mistake for this dataset
# One S3 call (every attempt and the pauses between them) gives up within S3_TIMEOUT_SECONDS;
# the environment can change both (a stalled endpoint must not hold an unattended loop).
S3_TIMEOUT_SECONDS = 30.0
S3_RETRIES = 2  # connection errors, timeouts and 5xx; the client raises after the last one
S3_TIMEOUT_VARIABLE = "STROKE_S3_TIMEOUT_S"
S3_RETRIES_VARIABLE = "STROKE_S3_RETRIES"
_S3_BACKOFF_FACTOR = 0.2

ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"
ACCESS_KEY_VARIABLE = "AWS_ACCESS_KEY_ID"
SECRET_KEY_VARIABLE = "AWS_SECRET_ACCESS_KEY"
REGION_VARIABLE = "AWS_REGION"
SESSION_TOKEN_VARIABLE = "AWS_SESSION_TOKEN"


class StorageError(RuntimeError):
    """A URI could not be read, or the storage settings are missing or invalid (one line)."""


@dataclass(frozen=True)
class S3Settings:
    """Where the S3-compatible endpoint is and how to sign requests to it."""

    endpoint_url: str
    access_key: str
    secret_key: str = field(repr=False)  # never printed
    region: str = DEFAULT_REGION
    session_token: str | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        """``host:port`` as the minio client wants it."""
        return urllib.parse.urlsplit(self.endpoint_url).netloc

    @property
    def secure(self) -> bool:
        return urllib.parse.urlsplit(self.endpoint_url).scheme == "https"


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise StorageError(
            f"{name} is not set; S3/MinIO access needs {ENDPOINT_VARIABLE}, "
            f"{ACCESS_KEY_VARIABLE} and {SECRET_KEY_VARIABLE} (see the store Secret)"
        )
    return value


def check_endpoint_url(endpoint_url: str) -> str:
    """Return the endpoint URL if it is ``http(s)://host[:port]`` with no path; else raise."""
    parts = urllib.parse.urlsplit(endpoint_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StorageError(
            f"{ENDPOINT_VARIABLE}={endpoint_url!r} is not a URL; expected "
            "http://host:port or https://host[:port]"
        )
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise StorageError(
            f"{ENDPOINT_VARIABLE}={endpoint_url!r} has a path; expected only "
            "scheme://host[:port] (the bucket goes in the s3:// URI)"
        )
    return endpoint_url


def s3_settings_from_env() -> S3Settings:
    """Read the S3 settings from the environment; a missing variable is named in the error."""
    endpoint_url = check_endpoint_url(_required(ENDPOINT_VARIABLE))
    return S3Settings(
        endpoint_url=endpoint_url,
        access_key=_required(ACCESS_KEY_VARIABLE),
        secret_key=_required(SECRET_KEY_VARIABLE),
        region=os.environ.get(REGION_VARIABLE, "").strip() or DEFAULT_REGION,
        session_token=os.environ.get(SESSION_TOKEN_VARIABLE) or None,
    )


@dataclass(frozen=True)
class S3Bounds:
    """How long one S3 call may take in all (``total_s``) and how many times it is retried."""

    total_s: float = S3_TIMEOUT_SECONDS
    retries: int = S3_RETRIES

    @property
    def attempt_s(self) -> float:
        """Each attempt's connect and read timeout: the attempts plus the back-off pauses
        (0, 0.4, 0.8 … s) fit in ``total_s``."""
        pauses = sum(_S3_BACKOFF_FACTOR * 2**n for n in range(1, self.retries))
        return max((self.total_s - pauses) / (self.retries + 1), 0.1)


def s3_bounds_from_env() -> S3Bounds:
    """:class:`S3Bounds` from STROKE_S3_TIMEOUT_S (seconds, > 0) and STROKE_S3_RETRIES (0-10)."""
    total_text = os.environ.get(S3_TIMEOUT_VARIABLE, "").strip()
    retries_text = os.environ.get(S3_RETRIES_VARIABLE, "").strip()
    try:
        total = float(total_text) if total_text else S3_TIMEOUT_SECONDS
        retries = int(retries_text) if retries_text else S3_RETRIES
    except ValueError as error:
        raise StorageError(
            f"{S3_TIMEOUT_VARIABLE}/{S3_RETRIES_VARIABLE}: expected seconds and a count ({error})"
        ) from error
    if not (0 < total <= 3600 and total == total) or not 0 <= retries <= 10:
        raise StorageError(
            f"{S3_TIMEOUT_VARIABLE} must be in (0, 3600] seconds and {S3_RETRIES_VARIABLE} in "
            f"0-10; got {total_text or total} and {retries_text or retries}"
        )
    return S3Bounds(total, retries)


def minio_client(settings: S3Settings, bounds: S3Bounds | None = None) -> Minio:
    """A minio client whose every call fails within ``bounds.total_s`` (default 30 s).

    The client's own default waits 5 minutes to connect and 15 to read; ours retries
    connection errors, timeouts and 5xx ``bounds.retries`` times, each attempt limited so the
    whole call stays within the bound, and hands the last 5xx to the caller as an ``S3Error``.
    """
    import certifi
    import urllib3
    from minio import Minio

    bounds = bounds or s3_bounds_from_env()
    attempt = bounds.attempt_s
    http_client = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=attempt, read=attempt),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(
            total=bounds.retries,
            backoff_factor=_S3_BACKOFF_FACTOR,
            status_forcelist=(500, 502, 503, 504),
            raise_on_status=False,
        ),
    )
    return Minio(
        settings.endpoint,
        access_key=settings.access_key,
        secret_key=settings.secret_key,
        session_token=settings.session_token,
        secure=settings.secure,
        region=settings.region,
        http_client=http_client,
    )


def minio_client_from_env() -> Minio:
    """The minio client for the endpoint and credentials in the environment (see module doc)."""
    return minio_client(s3_settings_from_env())


def endpoint_of(client: Minio) -> str:
    """The client's endpoint as a URL, for error messages."""
    from stroke_mlops.compat.minio import endpoint_url

    return endpoint_url(client) or "the S3 endpoint"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` → ``("bucket", "some/key")``; the key may be empty."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise StorageError(f"{uri}: not an s3:// URI; expected s3://bucket/key")
    if parts.query or parts.fragment:
        raise StorageError(f"{uri}: an s3:// URI takes no ?query or #fragment")
    return parts.netloc, parts.path.lstrip("/")


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def describe_s3_failure(error: BaseException, *, endpoint: str) -> str:
    """A short, one-line reason for a failed S3 call (no traceback, no credentials)."""
    from minio.error import InvalidResponseError, S3Error, ServerError
    from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError, ResponseError

    if isinstance(error, S3Error):
        code = error.code or "error"
        if code in ("NoSuchKey", "NoSuchObject"):
            return "not found (no such object)"
        if code == "NoSuchBucket":
            return f"bucket {error.bucket_name or '(unnamed)'} does not exist at {endpoint}"
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return (
                f"access denied by {endpoint} ({code}); check {ACCESS_KEY_VARIABLE}/"
                f"{SECRET_KEY_VARIABLE} and the bucket policy"
            )
        status = getattr(error.response, "status", None)
        return f"{endpoint} answered HTTP {status} {code}: {_one_line(error.message)}"
    if isinstance(error, ServerError):
        return f"{endpoint} answered HTTP {error.status_code}"
    if isinstance(error, InvalidResponseError):
        return f"{endpoint} sent a non-S3 response: {_one_line(error)[:200]}"
    if isinstance(error, MaxRetryError):
        reason = error.reason
        if isinstance(reason, ResponseError):
            return f"{endpoint} kept failing: {_one_line(reason)}"
        if isinstance(reason, NewConnectionError | ProtocolError | OSError):
            return f"endpoint {endpoint} unreachable ({_connection_reason(reason)})"
        return f"endpoint {endpoint} unreachable ({_one_line(reason)})"
    if isinstance(error, OSError):
        return f"endpoint {endpoint} unreachable ({_connection_reason(error)})"
    return f"{type(error).__name__}: {_one_line(error)}"


def _connection_reason(error: BaseException | str) -> str:
    text = _one_line(error)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "timed out",
        "No route to host",
        "Temporary failure in name resolution",
    ):
        if marker.lower() in text.lower():
            return marker.lower()
    return text[:160]


def s3_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a minio call raises for a failed request (for ``except`` clauses)."""
    from minio.error import MinioException
    from urllib3.exceptions import HTTPError

    return (MinioException, HTTPError, OSError)


def read_uri_bytes(
    uri: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """The bytes at ``uri``: a local path, ``file://``, ``s3://bucket/key`` or ``http(s)://``.

    Raises :class:`StorageError` with a one-line message naming the URI when it is not found,
    access is denied, the endpoint is unreachable, or the content exceeds ``max_bytes``.
    """
    if not uri or not uri.strip():
        raise StorageError("no data URI given; expected a path, file://, s3:// or http(s):// URI")
    uri = uri.strip()
    scheme = urllib.parse.urlsplit(uri).scheme.lower()
    if scheme == "s3":
        return _read_s3(uri, max_bytes=max_bytes)
    if scheme in ("http", "https"):
        return _read_http(uri, timeout=timeout, max_bytes=max_bytes)
    if scheme == "file":
        return _read_local(file_uri_to_path(uri), uri=uri, max_bytes=max_bytes)
    if scheme and len(scheme) > 1:  # a one-letter "scheme" is a Windows drive (C:\...)
        raise StorageError(
            f"{uri}: unsupported scheme {scheme!r}; expected a local path, file://, s3:// "
            "or http(s)://"
        )
    return _read_local(Path(uri).expanduser(), uri=uri, max_bytes=max_bytes)


def file_uri_to_path(uri: str) -> Path:
    """``file:///abs/path`` (or ``file://localhost/abs/path``) → ``Path("/abs/path")``."""
    parts = urllib.parse.urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise StorageError(f"{uri}: a file:// URI must name a local path (host {parts.netloc!r})")
    if not parts.path:
        raise StorageError(f"{uri}: the file:// URI has no path")
    return Path(urllib.request.url2pathname(parts.path))


def _too_large(uri: str, max_bytes: int) -> StorageError:
    return StorageError(f"{uri}: larger than the {max_bytes}-byte limit; refusing to read it")


def _read_local(path: Path, *, uri: str, max_bytes: int) -> bytes:
    try:
        if path.is_dir():
            raise StorageError(f"{uri}: is a directory; expected a file")
        with path.open("rb") as handle:
            content = handle.read(max_bytes + 1)
    except FileNotFoundError as error:
        raise StorageError(f"{uri}: not found (no such file)") from error
    except PermissionError as error:
        raise StorageError(f"{uri}: access denied (permission denied reading the file)") from error
    except OSError as error:
        raise StorageError(f"{uri}: cannot be read ({error.strerror or error})") from error
    if len(content) > max_bytes:
        raise _too_large(uri, max_bytes)
    return content


def _read_s3(uri: str, *, max_bytes: int) -> bytes:
    bucket, key = parse_s3_uri(uri)
    if not key or key.endswith("/"):
        raise StorageError(f"{uri}: names a bucket or folder; expected s3://bucket/key of a file")
    client = minio_client_from_env()
    try:
        response = client.get_object(bucket, key)
        try:
            content = response.read(max_bytes + 1)
        finally:
            response.close()
            response.release_conn()
    except s3_errors() as error:
        reason = describe_s3_failure(error, endpoint=endpoint_of(client))
        raise StorageError(f"{uri}: {reason}") from error
    if len(content) > max_bytes:
        raise _too_large(uri, max_bytes)
    return content


def _read_http(uri: str, *, timeout: float, max_bytes: int) -> bytes:
    from stroke_mlops import __version__

    request = urllib.request.Request(uri, headers={"User-Agent": f"stroke-mlops/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            content: bytes = response.read(max_bytes + 1)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            reason = "not found (HTTP 404)"
        elif error.code in (401, 403):
            reason = f"access denied (HTTP {error.code})"
        else:
            reason = f"HTTP {error.code} {_one_line(error.reason)}"
        raise StorageError(f"{uri}: {reason}") from error
    except urllib.error.URLError as error:
        raise StorageError(
            f"{uri}: endpoint unreachable ({_connection_reason(error.reason)})"
        ) from error
    except TimeoutError as error:
        raise StorageError(f"{uri}: no answer within {timeout:g} s (timed out)") from error
    except OSError as error:
        raise StorageError(f"{uri}: the download failed ({_connection_reason(error)})") from error
    if len(content) > max_bytes:
        raise _too_large(uri, max_bytes)
    return content
