"""The model store in an S3-compatible bucket (MinIO, AWS S3, …), through the ``minio`` client."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, TypeVar

from stroke_mlops.registry.model_dir import METADATA_FILE
from stroke_mlops.registry.store_base import (
    POINTER_FILE,
    ROOT_DIR,
    VERSION_PATTERN,
    VERSIONS_DIR,
    ModelStore,
    PromotionConflictError,
    PublishedVersion,
    StoreError,
    _check_file_name,
    _check_file_set,
    _read_source_model_dir,
    _sha256,
    _write_file,
    check_version_name,
)
from stroke_mlops.registry.uris import describe_s3_failure, endpoint_of, s3_errors

if TYPE_CHECKING:
    from minio import Minio

log = logging.getLogger("stroke_mlops.registry.store")

_T = TypeVar("_T")


class S3ModelStore(ModelStore):
    """A store in an S3-compatible bucket (MinIO, AWS S3, …), through the ``minio`` client."""

    def __init__(self, client: Minio, bucket: str, prefix: str = "") -> None:
        if not bucket:
            raise StoreError("an S3 store needs a bucket name")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint_of(client)

    def __repr__(self) -> str:
        return f"S3ModelStore({self.uri!r} at {self.endpoint})"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, *parts: str) -> str:
        return "/".join(part for part in (self.prefix, ROOT_DIR, *parts) if part)

    def _version_prefix(self, version: str) -> str:
        return self._key(VERSIONS_DIR, check_version_name(version)) + "/"

    def version_uri(self, version: str) -> str:
        return f"s3://{self.bucket}/{self._version_prefix(version)}"

    def _call(self, what: str, action: Callable[[], _T]) -> _T:
        try:
            return action()
        except s3_errors() as error:
            reason = describe_s3_failure(error, endpoint=self.endpoint)
            raise StoreError(f"{what}: {reason}") from error

    def _object_uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _get(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        from minio.error import S3Error

        def get() -> bytes | None:
            try:
                response = self.client.get_object(self.bucket, key)
            except S3Error as error:
                if error.code in ("NoSuchKey", "NoSuchObject"):
                    return None
                raise
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        return self._call(self._object_uri(key), get)

    def _put(self, key: str, content: bytes, content_type: str) -> None:
        self._call(
            self._object_uri(key),
            lambda: self.client.put_object(
                self.bucket, key, io.BytesIO(content), len(content), content_type=content_type
            ),
        )

    def _remove(self, key: str) -> None:
        self._call(self._object_uri(key), lambda: self.client.remove_object(self.bucket, key))

    def _list(self, prefix: str) -> list[str]:
        """Every object key under ``prefix`` (which ends in "/")."""

        def list_keys() -> list[str]:
            objects = self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
            return [str(o.object_name) for o in objects if o.object_name]

        return self._call(self._object_uri(prefix), list_keys)

    def _version_files(self, version: str) -> list[str]:
        prefix = self._version_prefix(version)
        return [key.removeprefix(prefix) for key in self._list(prefix)]

    def list_versions(self) -> list[str]:
        prefix = self._key(VERSIONS_DIR) + "/"
        versions = set()
        for key in self._list(prefix):
            version, _, name = key.removeprefix(prefix).partition("/")
            if name == METADATA_FILE and VERSION_PATTERN.fullmatch(version):
                versions.add(version)
        return sorted(versions)

    def publish_version(self, model_dir: Path, version: str) -> PublishedVersion:
        prefix = self._version_prefix(version)
        where = self.version_uri(version)
        source = _read_source_model_dir(model_dir, version)
        leftovers = self._version_files(version)
        if METADATA_FILE in leftovers:
            raise StoreError(
                f"{where}: version {version} already exists; versions are immutable, publish "
                "under a new version"
            )
        for name in leftovers:  # an interrupted publish of this same version
            log.warning("removing %s%s left by an interrupted publish", where, name)
            self._remove(prefix + name)
        for name in sorted(source.files):
            self._put(prefix + name, source.files[name], _content_type(name))
        for name in sorted(source.files):  # read back before metadata.json makes it complete
            stored = self._get(prefix + name)
            if stored is None or _sha256(stored) != source.checksums[name]:
                state = "vanished" if stored is None else "does not match its sha256"
                raise StoreError(f"{where}{name}: read back after upload, it {state}")
        try:
            self._put(prefix + METADATA_FILE, source.metadata_bytes, "application/json")  # last
            if self._get(prefix + METADATA_FILE) != source.metadata_bytes:
                raise StoreError(f"{where}{METADATA_FILE}: read back, it differs from the upload")
            _check_file_set(self._version_files(version), source.checksums, where=where)
        except StoreError:
            # The PUT may have landed even though it failed: leave the version incomplete.
            self._try_remove(prefix + METADATA_FILE)
            raise
        log.info("published %s to %s", version, where)
        return PublishedVersion(
            version=version,
            uri=where,
            files={**source.checksums, METADATA_FILE: _sha256(source.metadata_bytes)},
        )

    def _try_remove(self, key: str) -> None:
        try:
            self._remove(key)
        except StoreError as error:
            log.error("could not remove %s: %s", self._object_uri(key), error)

    def download_version(self, version: str, dest: Path) -> Path:
        prefix = self._version_prefix(version)
        names = self._version_files(version)
        if METADATA_FILE not in names:
            raise self._not_found(version, incomplete=bool(names))

        def fetch_files(scratch: Path) -> None:
            for name in names:
                _check_file_name(name, where=self.version_uri(version))
                content = self._get(prefix + name)
                if content is None:
                    raise StoreError(f"{self.version_uri(version)}{name}: vanished while reading")
                _write_file(scratch / name, content)

        return self._materialize(version, dest, fetch_files)

    def _read_pointer(self) -> tuple[bytes | None, str | None]:
        from minio.error import S3Error

        key = self._key(POINTER_FILE)

        def get() -> tuple[bytes | None, str | None]:
            try:
                response = self.client.get_object(self.bucket, key)
            except S3Error as error:
                if error.code in ("NoSuchKey", "NoSuchObject"):
                    return None, None
                raise
            try:
                return bytes(response.read()), str(response.headers.get("ETag", ""))
            finally:
                response.close()
                response.release_conn()

        return self._call(self._object_uri(key), get)

    def _swap_pointer(self, content: bytes, *, revision: str | None, existed: bool) -> None:
        """A conditional PUT: ``If-Match`` the ETag read, or ``If-None-Match: *`` if none was."""
        from minio.error import S3Error

        key = self._key(POINTER_FILE)
        condition = {"If-Match": revision or ""} if existed else {"If-None-Match": "*"}
        headers: dict[str, str | list[str] | tuple[str]] = {
            "Content-Type": "application/json",
            **condition,
        }
        from stroke_mlops.compat.minio import put_object_with_headers

        try:
            # minio's public put_object would turn the condition into x-amz-meta-* metadata
            put_object_with_headers(self.client, self.bucket, key, content, headers)
        except S3Error as error:
            if error.code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise PromotionConflictError(
                    f"{self.pointer_uri}: another promotion changed production while this one "
                    f"was writing ({error.code}); not promoting, production unchanged"
                ) from error
            reason = describe_s3_failure(error, endpoint=self.endpoint)
            raise StoreError(f"{self.pointer_uri}: {reason}; production is unchanged") from error
        except s3_errors() as error:
            reason = describe_s3_failure(error, endpoint=self.endpoint)
            raise StoreError(f"{self.pointer_uri}: {reason}; production is unchanged") from error


def _content_type(name: str) -> str:
    suffix = PurePosixPath(name).suffix
    return {".json": "application/json", ".md": "text/markdown; charset=utf-8"}.get(
        suffix, "application/octet-stream"
    )
