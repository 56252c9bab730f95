"""read_uri_bytes for ingest (path, file://, s3://, http://) and the S3 settings from the env."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from stroke_mlops.registry.uris import (
    StorageError,
    minio_client_from_env,
    read_uri_bytes,
    s3_settings_from_env,
)
from tests.s3_server import TEST_SECRET_KEY, FaultProxy, S3Bucket

CSV_NAME = "healthcare-dataset-stroke-data.csv"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain http.server on 127.0.0.1 serving a temporary folder: (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    host, port = server.server_address[:2]
    yield f"http://{host!s}:{port}", root
    server.shutdown()
    server.server_close()


def test_local_paths_and_file_uris(real_csv_path: Path, real_csv_bytes: bytes) -> None:
    assert read_uri_bytes(str(real_csv_path)) == real_csv_bytes
    assert read_uri_bytes(real_csv_path.as_uri()) == real_csv_bytes
    assert read_uri_bytes(f"  {real_csv_path}\n") == real_csv_bytes


def test_local_failures_name_the_uri(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    with pytest.raises(StorageError, match=rf"^{missing}: not found \(no such file\)$"):
        read_uri_bytes(str(missing))
    with pytest.raises(StorageError, match=rf"^{tmp_path.as_uri()}: is a directory"):
        read_uri_bytes(tmp_path.as_uri())
    with pytest.raises(StorageError, match="must name a local path"):
        read_uri_bytes("file://otherhost/data.csv")
    with pytest.raises(StorageError, match="unsupported scheme 'ftp'"):
        read_uri_bytes("ftp://example.org/data.csv")
    with pytest.raises(StorageError, match="no data URI given"):
        read_uri_bytes("")


def test_a_size_limit_guards_memory(tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * 101)
    assert read_uri_bytes(str(big), max_bytes=101) == b"x" * 101
    with pytest.raises(StorageError, match="larger than the 100-byte limit"):
        read_uri_bytes(str(big), max_bytes=100)


def test_s3_objects_are_read_with_the_minio_client(
    s3_bucket: S3Bucket, real_csv_bytes: bytes
) -> None:
    key = f"raw/{CSV_NAME}"
    s3_bucket.client.put_object(
        s3_bucket.name, key, io.BytesIO(real_csv_bytes), len(real_csv_bytes)
    )

    assert read_uri_bytes(s3_bucket.uri(key)) == real_csv_bytes


def test_s3_failures_name_the_uri_and_cause(s3_bucket: S3Bucket) -> None:
    missing_key = s3_bucket.uri("raw/missing.csv")
    with pytest.raises(StorageError, match=rf"^{missing_key}: not found \(no such object\)$"):
        read_uri_bytes(missing_key)
    with pytest.raises(StorageError, match="bucket no-such-bucket-x does not exist at http://"):
        read_uri_bytes("s3://no-such-bucket-x/raw/data.csv")
    with pytest.raises(StorageError, match="names a bucket or folder"):
        read_uri_bytes(s3_bucket.uri("raw/"))


def test_s3_access_denied(
    s3_bucket: S3Bucket, fault_proxy: FaultProxy, real_csv_bytes: bytes
) -> None:
    key = f"raw/{CSV_NAME}"
    s3_bucket.client.put_object(s3_bucket.name, key, io.BytesIO(b"a,b\n1,2\n"), 8)
    fault_proxy.fail("GET", f"/{key}", status=403)

    with pytest.raises(StorageError) as caught:
        read_uri_bytes(s3_bucket.uri(key))

    message = str(caught.value)
    assert message.startswith(f"{s3_bucket.uri(key)}: access denied by {fault_proxy.url}")
    assert "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY" in message
    assert TEST_SECRET_KEY not in message


def test_s3_endpoint_unreachable(s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")

    with pytest.raises(StorageError) as caught:
        read_uri_bytes(s3_bucket.uri("raw/data.csv"))

    assert str(caught.value) == (
        f"{s3_bucket.uri('raw/data.csv')}: endpoint http://127.0.0.1:{port} unreachable "
        "(connection refused)"
    )


def test_http_downloads(http_root: tuple[str, Path], real_csv_bytes: bytes) -> None:
    base_url, root = http_root
    (root / CSV_NAME).write_bytes(real_csv_bytes)

    assert read_uri_bytes(f"{base_url}/{CSV_NAME}") == real_csv_bytes
    with pytest.raises(StorageError, match=rf"^{base_url}/nope\.csv: not found \(HTTP 404\)$"):
        read_uri_bytes(f"{base_url}/nope.csv")


def test_http_endpoint_unreachable() -> None:
    uri = f"http://127.0.0.1:{closed_port()}/data.csv"
    with pytest.raises(
        StorageError, match=rf"^{uri}: endpoint unreachable \(connection refused\)$"
    ):
        read_uri_bytes(uri)


@pytest.mark.parametrize(
    "variable", ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
)
def test_a_missing_variable_is_named(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.delenv(variable)

    with pytest.raises(StorageError, match=rf"^{variable} is not set; S3/MinIO access needs"):
        minio_client_from_env()
    with pytest.raises(StorageError, match=rf"{variable} is not set"):
        read_uri_bytes(s3_bucket.uri("raw/data.csv"))


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("127.0.0.1:9000", "is not a URL; expected http://host:port"),
        ("http://minio:9000/bucket", "has a path"),
    ],
)
def test_a_malformed_endpoint_is_refused(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch, endpoint: str, message: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    with pytest.raises(StorageError, match=message):
        s3_settings_from_env()


def test_settings_defaults_and_secrecy(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://minio.example.org")

    settings = s3_settings_from_env()

    assert (settings.endpoint, settings.secure, settings.region) == (
        "minio.example.org",
        True,
        "us-east-1",
    )
    assert TEST_SECRET_KEY not in repr(settings)
