"""Objects under a folder or an ``s3://bucket/prefix``: list, read, write (atomically).

The monitor streams request-log objects and the feedback store appends label files through this
one small interface, so both work the same on a local folder and on MinIO/S3. Every failure is a
:class:`~stroke_mlops.registry.uris.StorageError` whose one-line message names the URI.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from stroke_mlops.registry.uris import (
    StorageError,
    describe_s3_failure,
    endpoint_of,
    file_uri_to_path,
    minio_client_from_env,
    parse_s3_uri,
    s3_errors,
)

if TYPE_CHECKING:
    from minio import Minio


DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024  # a logged batch of 1,000 rows is about 0.6 MB
_CHUNK_BYTES = 1024 * 1024


def iter_lines(read: Callable[[int], bytes], max_line_bytes: int) -> Iterator[bytes | None]:
    """The lines ``read(n)`` returns, without their newline; None for each line longer than
    ``max_line_bytes`` (skipped without being held: memory stays under two chunks and a line)."""
    buffer = b""
    skipping = False  # inside a line already reported as too long
    while True:
        chunk = read(_CHUNK_BYTES)
        if not chunk:
            break
        lines = (buffer + chunk).split(b"\n")
        buffer = lines.pop()  # the line still open at the chunk's end
        if lines and skipping:  # the end of the line too long to hold
            skipping = False
            del lines[0]
        if lines and max(map(len, lines)) > max_line_bytes:
            yield from [line if len(line) <= max_line_bytes else None for line in lines]
        else:
            yield from lines
        if len(buffer) > max_line_bytes:
            if not skipping:
                yield None
            skipping, buffer = True, b""
    if buffer and not skipping:
        yield buffer


class ObjectFolder(Protocol):
    """A flat namespace of objects under one root (a folder or an S3 prefix)."""

    @property
    def uri(self) -> str: ...

    def exists(self) -> bool:
        """Whether the root exists (an S3 bucket always "exists" once it is reachable)."""
        ...

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys (relative to the root, "/"-separated) under ``prefix``, sorted."""
        ...

    def read(self, key: str) -> bytes: ...

    def read_lines(
        self, key: str, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    ) -> Iterator[bytes | None]:
        """Stream an object's lines (:func:`iter_lines`); only regular files are read."""
        ...

    def write(self, key: str, content: bytes) -> None:
        """Write one object so that a reader sees all of it or nothing."""
        ...

    def write_stream(self, key: str, source: BinaryIO, length: int) -> None:
        """:meth:`write` from an open file of ``length`` bytes (not held in memory)."""
        ...


class LocalFolder:
    """Objects as files under a local folder; writes go to a temp file then ``os.replace``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().absolute()

    @property
    def uri(self) -> str:
        return self.root.as_uri()

    def exists(self) -> bool:
        return self.root.is_dir()

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return
        keys = []
        for directory, _, names in os.walk(base):
            for name in names:
                if name.startswith(".") or name.endswith(".partial"):
                    continue  # a writer's temporary file, not a finished object
                keys.append((Path(directory) / name).relative_to(self.root).as_posix())
        yield from sorted(keys)

    def read(self, key: str) -> bytes:
        path = self.root / key
        try:
            return path.read_bytes()
        except OSError as error:
            raise StorageError(f"{path.as_uri()}: cannot be read ({error.strerror})") from error

    def read_lines(
        self, key: str, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    ) -> Iterator[bytes | None]:
        path = self.root / key
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
            descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as error:
            raise StorageError(f"{path.as_uri()}: cannot be read ({error.strerror})") from error
        with os.fdopen(descriptor, "rb", buffering=0) as handle:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise StorageError(f"{path.as_uri()}: not a regular file; not read")
            try:
                yield from iter_lines(handle.read, max_line_bytes)
            except OSError as error:
                raise StorageError(f"{path.as_uri()}: reading failed ({error.strerror})") from error

    def write(self, key: str, content: bytes) -> None:
        self.write_stream(key, io.BytesIO(content), len(content))

    def write_stream(self, key: str, source: BinaryIO, length: int) -> None:
        path = self.root / key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            with os.fdopen(descriptor, "wb") as handle:
                shutil.copyfileobj(source, handle)
                handle.flush()
                os.fsync(handle.fileno())
            Path(name).replace(path)
        except OSError as error:
            raise StorageError(f"{path.as_uri()}: writing failed ({error.strerror})") from error


class S3Folder:
    """Objects under ``s3://bucket/prefix`` through the minio client (one PUT is atomic)."""

    def __init__(self, client: Minio, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint_of(client)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, key: str, error: BaseException) -> StorageError:
        reason = describe_s3_failure(error, endpoint=self.endpoint)
        return StorageError(f"s3://{self.bucket}/{self._name(key)}: {reason}")

    def exists(self) -> bool:
        try:
            return bool(self.client.bucket_exists(self.bucket))
        except s3_errors() as error:
            raise self._fail("", error) from error

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        start = self._name(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")
        strip = f"{self.prefix}/" if self.prefix else ""
        try:
            names = [
                str(o.object_name)
                for o in self.client.list_objects(self.bucket, prefix=start, recursive=True)
                if o.object_name and not str(o.object_name).endswith("/")
            ]
        except s3_errors() as error:
            raise self._fail(prefix, error) from error
        yield from sorted(name.removeprefix(strip) for name in names)

    def read(self, key: str) -> bytes:
        try:
            response = self.client.get_object(self.bucket, self._name(key))
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()
        except s3_errors() as error:
            raise self._fail(key, error) from error

    def read_lines(
        self, key: str, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    ) -> Iterator[bytes | None]:
        try:
            response = self.client.get_object(self.bucket, self._name(key))
        except s3_errors() as error:
            raise self._fail(key, error) from error
        try:
            yield from iter_lines(response.read, max_line_bytes)
        except s3_errors() as error:
            raise self._fail(key, error) from error
        finally:
            response.close()
            response.release_conn()

    def write(self, key: str, content: bytes) -> None:
        self.write_stream(key, io.BytesIO(content), len(content))

    def write_stream(self, key: str, source: BinaryIO, length: int) -> None:
        try:
            self.client.put_object(self.bucket, self._name(key), source, length)
        except s3_errors() as error:
            raise self._fail(key, error) from error


def open_folder(uri: str) -> ObjectFolder:
    """The objects under ``uri``: a folder path, ``file://`` or ``s3://bucket[/prefix]``."""
    if not uri or not uri.strip():
        raise StorageError("no URI given; expected a folder path, file:// or s3://bucket/prefix")
    uri = uri.strip()
    scheme = urllib.parse.urlsplit(uri).scheme.lower()
    if scheme == "s3":
        bucket, prefix = parse_s3_uri(uri)
        return S3Folder(minio_client_from_env(), bucket, prefix)
    if scheme == "file":
        return LocalFolder(file_uri_to_path(uri))
    if scheme and len(scheme) > 1:
        raise StorageError(
            f"{uri}: unsupported scheme {scheme!r}; expected a folder path, file:// or s3://"
        )
    return LocalFolder(Path(uri))
