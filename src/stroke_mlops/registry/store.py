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
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import time
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

from stroke_mlops.registry.model_dir import METADATA_FILE, verify_model_dir
from stroke_mlops.registry.signing import SIGNING_BUNDLE_FILE
from stroke_mlops.registry.uris import (
    StorageError,
    describe_s3_failure,
    endpoint_of,
    file_uri_to_path,
    minio_client_from_env,
    parse_s3_uri,
    read_uri_bytes,
    s3_errors,
)

if TYPE_CHECKING:
    from minio import Minio

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

ROOT_DIR = "stroke"
VERSIONS_DIR = "versions"
POINTER_FILE = "production.json"
LOCK_FILE = ".production.lock"
# Starts with a letter or digit (so ".<name>.publishing-*" scratch folders never look like one).
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

_T = TypeVar("_T")


class StoreError(StorageError):
    """A store operation was refused or failed; the message is one line naming what and why."""


class PromotionConflictError(StoreError):
    """Production is no longer what the promotion was decided against; the pointer is unchanged."""


class _Unchecked:
    def __repr__(self) -> str:
        return "UNCHECKED"


UNCHECKED = _Unchecked()  # promote(expected=UNCHECKED): no expectation about the current version


@dataclass(frozen=True)
class PublishedVersion:
    """A complete, verified version in the store."""

    version: str
    uri: str  # the version folder, ending in "/": what an InferenceService's storageUri names
    files: dict[str, str]  # file name -> sha256, metadata.json included


@dataclass(frozen=True)
class ProductionPointer:
    """The content of ``stroke/production.json``; ``uri`` is resolved by the store reading it."""

    version: str
    uri: str
    promoted_at: str  # ISO-8601 UTC
    previous: str | None

    @property
    def path(self) -> str:
        """The version folder relative to ``stroke/``: what the file records."""
        return f"{VERSIONS_DIR}/{self.version}/"

    def to_json(self) -> str:
        document = {
            "version": self.version,
            "path": self.path,
            "promoted_at": self.promoted_at,
            "previous": self.previous,
        }
        return json.dumps(document, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str) -> ProductionPointer:
        """Parse a pointer; raise StoreError naming ``source`` and the bad field."""
        try:
            document = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise StoreError(
                f"{source}: not valid JSON ({error}); the pointer is damaged"
            ) from error
        if not isinstance(document, dict):
            raise StoreError(f"{source}: expected a JSON object, found {type(document).__name__}")
        location = "path" if "path" in document else "uri"  # "uri": written before "path"
        for key in ("version", location, "promoted_at"):
            if not isinstance(document.get(key), str) or not document[key]:
                raise StoreError(f"{source}: field {key!r} must be a non-empty string")
        previous = document.get("previous")
        if previous is not None and not isinstance(previous, str):
            raise StoreError(f"{source}: field 'previous' must be a string or null")
        pointer = cls(
            version=check_version_name(document["version"]),
            uri="",
            promoted_at=document["promoted_at"],
            previous=previous,
        )
        if location == "path" and document["path"] != pointer.path:
            raise StoreError(
                f"{source}: field 'path' is {document['path']!r}; expected {pointer.path!r} "
                f"for version {pointer.version}"
            )
        return pointer


def check_version_name(version: str) -> str:
    """Return ``version`` if it is a valid version name (letters, digits, ``._-``); else raise."""
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        raise StoreError(
            f"invalid version name {version!r}: expected 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return version


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _check_file_name(name: str, *, where: str) -> str:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name or name.endswith("/"):
        raise StoreError(f"{where}: file name {name!r} is not a plain relative path")
    return name


def _check_file_set(found: Iterable[str], listed: Iterable[str], *, where: str) -> None:
    """The files present must be exactly the ones metadata.json lists, plus metadata.json and
    the signature bundle (written after metadata.json, so it cannot list them)."""
    found_set, listed_set = set(found), {*listed, METADATA_FILE, SIGNING_BUNDLE_FILE}
    if missing := sorted(listed_set - found_set):
        raise StoreError(f"{where}: {', '.join(missing)} listed in {METADATA_FILE} but missing")
    if extra := sorted(found_set - listed_set):
        raise StoreError(f"{where}: {', '.join(extra)} not listed in {METADATA_FILE}")


@dataclass(frozen=True)
class _SourceModelDir:
    """A model directory checked and read into memory, ready to publish."""

    metadata_bytes: bytes
    files: dict[str, bytes]  # every file except metadata.json
    checksums: dict[str, str]  # from metadata.json, plus the signature bundle's


def _read_source_model_dir(model_dir: Path, version: str) -> _SourceModelDir:
    """Verify a model directory made by ``write_model_dir`` and read it for publishing."""
    model_dir = Path(model_dir)
    try:
        verified = verify_model_dir(model_dir)
        checksums = {str(k): str(v) for k, v in verified.metadata["files"].items()}
        for name in checksums:
            _check_file_name(name, where=str(model_dir / METADATA_FILE))
        present = [p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file()]
        metadata_bytes = (model_dir / METADATA_FILE).read_bytes()
        files = {name: (model_dir / name).read_bytes() for name in checksums}
        if not (model_dir / SIGNING_BUNDLE_FILE).is_file():
            raise StoreError(f"cannot publish {model_dir}: no {SIGNING_BUNDLE_FILE}; sign it first")
        files[SIGNING_BUNDLE_FILE] = (model_dir / SIGNING_BUNDLE_FILE).read_bytes()
        checksums[SIGNING_BUNDLE_FILE] = _sha256(files[SIGNING_BUNDLE_FILE])
    except ValueError as error:  # ModelDirError, or a damaged JSON file
        raise StoreError(f"cannot publish {model_dir}: {error}") from error
    except OSError as error:
        raise StoreError(f"cannot publish {model_dir}: reading failed ({error})") from error
    if verified.version != version:
        raise StoreError(
            f"cannot publish {model_dir} as {version!r}: its {METADATA_FILE} says version "
            f"{verified.version!r}"
        )
    _check_file_set(present, checksums, where=f"cannot publish {model_dir}")
    for name, content in files.items():  # the bytes about to be written, not just the file
        if _sha256(content) != checksums[name]:
            raise StoreError(f"cannot publish {model_dir}: {name} changed while being read")
    return _SourceModelDir(metadata_bytes=metadata_bytes, files=files, checksums=checksums)


def _check_verified_version(directory: Path, version: str, *, where: str) -> dict[str, Any]:
    """verify_model_dir plus the store's own rules: right version, exactly the listed files."""
    try:
        verified = verify_model_dir(directory)
    except ValueError as error:  # ModelDirError, or a damaged JSON file
        raise StoreError(f"{where}: does not verify: {error}") from error
    if verified.version != version:
        raise StoreError(
            f"{where}: {METADATA_FILE} says version {verified.version!r}, expected {version!r}"
        )
    present = [p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()]
    _check_file_set(present, verified.metadata["files"], where=where)
    return verified.metadata


def _fsync_directory(directory: Path) -> None:
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _write_file(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ModelStore(ABC):
    """Versions under ``stroke/versions/<version>/`` and the pointer ``stroke/production.json``."""

    @property
    @abstractmethod
    def uri(self) -> str:
        """The store root as a URI (``file:///…`` or ``s3://bucket[/prefix]``)."""

    @abstractmethod
    def version_uri(self, version: str) -> str:
        """The URI of a version folder, ending in "/"."""

    @abstractmethod
    def list_versions(self) -> list[str]:
        """Complete versions (those with metadata.json), sorted by name."""

    @abstractmethod
    def publish_version(self, model_dir: Path, version: str) -> PublishedVersion:
        """Copy a model directory to ``versions/<version>/``, metadata.json last, and verify it."""

    @abstractmethod
    def download_version(self, version: str, dest: Path) -> Path:
        """Fetch a complete version into ``dest`` (new or empty), verify it, return ``dest``."""

    @abstractmethod
    def _read_pointer(self) -> tuple[bytes | None, str | None]:
        """The pointer's bytes and its revision token (S3 ETag), or (None, None) if absent."""

    @abstractmethod
    def _swap_pointer(self, content: bytes, *, revision: str | None, existed: bool) -> None:
        """Replace the pointer only if it is still at ``revision`` (or still absent when not
        ``existed``); raise PromotionConflictError otherwise. Called inside ``_pointer_lock``."""

    @contextlib.contextmanager
    def _pointer_lock(self) -> Iterator[None]:
        """Held around read + swap where the store has no conditional write of its own."""
        yield

    @property
    def pointer_uri(self) -> str:
        return f"{self.uri}/{ROOT_DIR}/{POINTER_FILE}"

    def clear_stale_scratch(self, older_than_s: float) -> list[str]:
        """Remove what killed publishes left behind, once older than ``older_than_s``."""
        return []  # only the folder store stages files (``.<version>.publishing-*``)

    def verify_version(self, version: str) -> dict[str, Any]:
        """Check a version is complete and every file matches; returns its metadata."""
        check_version_name(version)
        with tempfile.TemporaryDirectory(prefix="stroke-verify-") as scratch:
            downloaded = self.download_version(version, Path(scratch) / version)
            return _check_verified_version(downloaded, version, where=self.version_uri(version))

    def _parse_pointer(self, content: bytes | None) -> ProductionPointer | None:
        if content is None:
            return None
        pointer = ProductionPointer.from_json(content, source=self.pointer_uri)
        return replace(pointer, uri=self.version_uri(pointer.version))

    def production(self) -> ProductionPointer | None:
        """The current production pointer, or None when nothing was promoted yet."""
        return self._parse_pointer(self._read_pointer()[0])

    def promote(
        self, version: str, *, expected: str | _Unchecked | None = UNCHECKED
    ) -> ProductionPointer:
        """Point production at a complete, verified version; the pointer is the only write.

        ``expected`` is the version production must still be on (None: nothing promoted yet),
        typically the champion the gate judged ``version`` against; otherwise PromotionConflictError
        is raised and nothing changes. Either way the write is a compare-and-swap against the
        pointer just read, so a concurrent promotion is never silently overwritten. Promoting
        the version already in production changes nothing and returns its pointer.
        """
        check_version_name(version)
        self.verify_version(version)
        with self._pointer_lock():
            content, revision = self._read_pointer()
            current = self._parse_pointer(content)
            current_version = current.version if current else None
            if not isinstance(expected, _Unchecked) and current_version != expected:
                raise PromotionConflictError(
                    f"{self.pointer_uri}: production is {current_version or 'empty'}, not "
                    f"{expected or 'empty'} as when {version} was gated; not promoting "
                    "(production unchanged; run the pipeline again to gate against it)"
                )
            if current is not None and current.version == version:
                log.info("%s is already in production (since %s)", version, current.promoted_at)
                return current
            pointer = ProductionPointer(
                version=version,
                uri=self.version_uri(version),
                promoted_at=_now_iso(),
                previous=current_version,
            )
            self._swap_pointer(
                pointer.to_json().encode(), revision=revision, existed=content is not None
            )
        log.info("promoted %s (previous: %s) in %s", version, pointer.previous, self.uri)
        return pointer

    def _not_found(self, version: str, *, incomplete: bool = False) -> StoreError:
        if incomplete:
            return StoreError(
                f"{self.version_uri(version)}: version {version} is incomplete (no "
                f"{METADATA_FILE}: an interrupted publish); publish it again"
            )
        available = self.list_versions()
        listing = ", ".join(available[-5:]) if available else "none"
        return StoreError(
            f"{self.version_uri(version)}: no version {version} in the store "
            f"(latest versions: {listing})"
        )

    def _materialize(self, version: str, dest: Path, fill: Callable[[Path], None]) -> Path:
        """Fill a scratch folder beside ``dest``, verify it, then rename it to ``dest``."""
        dest = Path(dest)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise StoreError(f"{dest}: exists and is not an empty directory; pick a new one")
        failed = f"{self.version_uri(version)}: download to {dest} failed"
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=f".{dest.name}.download-", dir=dest.parent))
        except OSError as error:
            raise StoreError(f"{failed} ({error})") from error
        try:
            fill(scratch)
            _check_verified_version(scratch, version, where=self.version_uri(version))
            if dest.exists():
                dest.rmdir()
            scratch.rename(dest)
        except OSError as error:
            raise StoreError(f"{failed} ({error})") from error
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return dest


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
