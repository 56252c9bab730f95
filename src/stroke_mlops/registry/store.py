"""The model store: immutable model versions and one production pointer, in a folder or S3/MinIO.

Layout under the store root (a folder, ``file://…`` or ``s3://bucket/prefix``)::

    stroke/versions/<version>/   model.skops, signature.json, model_card.md, metadata.json,
                                 model.sig
    stroke/production.json       {"version", "path", "promoted_at", "previous"}

``path`` is relative to ``stroke/`` (``versions/<version>/``), so a store copied or mounted
elsewhere still points at its own version; a pointer written before this (with an absolute
``uri``) is still read, and its ``uri`` ignored in favour of the version in this store.

What the store guarantees:

* **Complete means metadata.json.** ``publish_version`` writes every other file first, reads each
  back and checks its sha256 against the model directory's ``metadata.json``, and only then
  writes ``metadata.json`` (and reads it back). A version without ``metadata.json`` is an
  interrupted publish: it is not listed, cannot be promoted or downloaded, and publishing the
  same version again replaces it. In a folder store an interrupted publish leaves nothing at all
  (files go to ``versions/.<version>.publishing-*`` and one ``os.rename`` puts them in place).
* **Versions are immutable.** Publishing a version that is already complete is refused.
* **Promotion is one small write, last, and a compare-and-swap.** ``promote`` checks the version
  is complete and every file matches its checksum, then replaces ``production.json`` only if it
  is still what was read (and, when ``expected`` is given, still names that version — the
  champion the gate judged against). Folder: an exclusive ``flock`` on ``stroke/.production.lock``
  around re-read + temp file + ``os.replace`` (the lock dies with its process, so none goes
  stale). S3/MinIO: a conditional PUT, ``If-Match: <ETag read>`` or ``If-None-Match: *`` when no
  pointer existed; the server refuses it if another promotion landed in between. A refused or
  failed promotion raises and leaves the pointer and every version's files as they were.
* **Version URIs end with "/".** KServe's storage initializer lists ``storageUri`` as a plain key
  prefix, so ``s3://b/stroke/versions/v1`` would also fetch ``stroke/versions/v10/…``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stroke_mlops.registry.model_dir import METADATA_FILE
from stroke_mlops.registry.s3_store import S3ModelStore
from stroke_mlops.registry.store_base import (
    LOCK_FILE,
    POINTER_FILE,
    ROOT_DIR,
    UNCHECKED,
    VERSION_PATTERN,
    VERSIONS_DIR,
    ModelStore,
    ProductionPointer,
    PromotionConflictError,
    PublishedVersion,
    StoreError,
    _check_verified_version,
    _fsync_directory,
    _read_source_model_dir,
    _sha256,
    _write_file,
    check_version_name,
)
from stroke_mlops.registry.uris import (
    StorageError,
    file_uri_to_path,
    minio_client_from_env,
    parse_s3_uri,
    read_uri_bytes,
)

__all__ = [
    "POINTER_FILE",
    "ROOT_DIR",
    "UNCHECKED",
    "VERSIONS_DIR",
    "LocalModelStore",
    "ModelStore",
    "ProductionPointer",
    "PromotionConflictError",
    "PublishedVersion",
    "S3ModelStore",
    "StoreError",
    "check_version_name",
    "open_store",
    "read_uri_bytes",
]

log = logging.getLogger(__name__)


class LocalModelStore(ModelStore):
    """A store in a local folder (or a mounted volume)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().absolute()

    def __repr__(self) -> str:
        return f"LocalModelStore({str(self.root)!r})"

    @property
    def uri(self) -> str:
        return self.root.as_uri()

    @property
    def versions_dir(self) -> Path:
        return self.root / ROOT_DIR / VERSIONS_DIR

    @property
    def pointer_path(self) -> Path:
        return self.root / ROOT_DIR / POINTER_FILE

    def version_dir(self, version: str) -> Path:
        return self.versions_dir / check_version_name(version)

    def version_uri(self, version: str) -> str:
        return self.version_dir(version).as_uri() + "/"

    def clear_stale_scratch(self, older_than_s: float) -> list[str]:
        if not self.versions_dir.is_dir():
            return []
        cutoff = time.time() - older_than_s
        stale = [
            p
            for p in self.versions_dir.glob(".*.publishing-*")
            if p.is_dir() and p.stat().st_mtime < cutoff
        ]
        for folder in stale:
            shutil.rmtree(folder, ignore_errors=True)
            log.info("removed %s, left by an interrupted publish", folder)
        return [str(p) for p in stale]

    def list_versions(self) -> list[str]:
        if not self.versions_dir.is_dir():
            return []
        return sorted(
            p.name
            for p in self.versions_dir.iterdir()
            if VERSION_PATTERN.fullmatch(p.name) and (p / METADATA_FILE).is_file()
        )

    def publish_version(self, model_dir: Path, version: str) -> PublishedVersion:
        final = self.version_dir(version)
        source = _read_source_model_dir(model_dir, version)
        if final.exists():
            raise StoreError(
                f"{self.version_uri(version)}: version {version} already exists; versions are "
                "immutable, publish under a new version"
            )
        where = self.version_uri(version)
        try:
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            scratch = Path(
                tempfile.mkdtemp(prefix=f".{version}.publishing-", dir=self.versions_dir)
            )
        except OSError as error:
            raise StoreError(f"{where}: cannot create the version folder ({error})") from error
        try:
            for name in sorted(source.files):
                _write_file(scratch / name, source.files[name])
                if _sha256((scratch / name).read_bytes()) != source.checksums[name]:
                    raise StoreError(f"{where}{name}: the copy does not match its sha256")
            _write_file(scratch / METADATA_FILE, source.metadata_bytes)  # last
            if (scratch / METADATA_FILE).read_bytes() != source.metadata_bytes:
                raise StoreError(f"{where}{METADATA_FILE}: the copy differs from the original")
            _fsync_directory(scratch)
            scratch.rename(final)  # refused by the OS if a version appeared meanwhile
            _fsync_directory(self.versions_dir)
        except OSError as error:
            if final.exists():
                raise StoreError(
                    f"{where}: version {version} already exists (published concurrently)"
                ) from error
            raise StoreError(f"{where}: publishing failed ({error})") from error
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        log.info("published %s to %s", version, where)
        return PublishedVersion(
            version=version,
            uri=where,
            files={**source.checksums, METADATA_FILE: _sha256(source.metadata_bytes)},
        )

    def verify_version(self, version: str) -> dict[str, Any]:
        directory = self.version_dir(version)
        if not (directory / METADATA_FILE).is_file():
            raise self._not_found(version)
        try:
            return _check_verified_version(directory, version, where=self.version_uri(version))
        except OSError as error:
            raise StoreError(f"{self.version_uri(version)}: cannot be read ({error})") from error

    def download_version(self, version: str, dest: Path) -> Path:
        source = self.version_dir(version)
        if not (source / METADATA_FILE).is_file():
            raise self._not_found(version)

        def copy_files(scratch: Path) -> None:
            for path in source.rglob("*"):
                if path.is_file():
                    target = scratch / path.relative_to(source)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)

        return self._materialize(version, dest, copy_files)

    def _read_pointer(self) -> tuple[bytes | None, str | None]:
        try:
            return self.pointer_path.read_bytes(), None
        except FileNotFoundError:
            return None, None
        except OSError as error:
            raise StoreError(f"{self.pointer_uri}: cannot be read ({error})") from error

    @contextlib.contextmanager
    def _pointer_lock(self) -> Iterator[None]:
        """An exclusive ``flock`` on ``stroke/.production.lock`` (released if the process dies)."""
        import fcntl

        lock_path = self.pointer_path.parent / LOCK_FILE
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise StoreError(f"{lock_path}: cannot open the promotion lock ({error})") from error
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    def _swap_pointer(self, content: bytes, *, revision: str | None, existed: bool) -> None:
        # Under the lock nobody else writes the pointer, so what was read is still current.
        directory = self.pointer_path.parent
        temporary: Path | None = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            descriptor, name = tempfile.mkstemp(prefix=f".{POINTER_FILE}.", dir=directory)
            temporary = Path(name)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(self.pointer_path)
            temporary = None
            _fsync_directory(directory)
        except OSError as error:
            raise StoreError(
                f"{self.pointer_uri}: writing the pointer failed ({error}); production is unchanged"
            ) from error
        finally:
            if temporary is not None:
                temporary.unlink(missing_ok=True)


def open_store(uri: str) -> ModelStore:
    """The store at ``uri``: a folder path, ``file:///path`` or ``s3://bucket[/prefix]``.

    S3 credentials and endpoint come from the environment (see :mod:`stroke_mlops.registry.uris`).
    """
    if not uri or not uri.strip():
        raise StoreError(
            "no store URI given; expected a folder path, file:// or s3://bucket/prefix"
        )
    uri = uri.strip()
    scheme = urllib.parse.urlsplit(uri).scheme.lower()
    if scheme == "s3":
        try:
            bucket, prefix = parse_s3_uri(uri)
            client = minio_client_from_env()
        except StorageError as error:
            raise StoreError(f"cannot open the store {uri}: {error}") from error
        return S3ModelStore(client, bucket, prefix)
    if scheme == "file":
        return LocalModelStore(file_uri_to_path(uri))
    if scheme and len(scheme) > 1:
        raise StoreError(
            f"{uri}: unsupported store scheme {scheme!r}; expected a folder path, file:// or s3://"
        )
    return LocalModelStore(Path(uri))
