"""The model store's shared parts: names, errors, the production pointer, the checks on a
version's files and the :class:`ModelStore` base (the guarantees are in :mod:`.store`)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from stroke_mlops.registry.model_dir import METADATA_FILE, verify_model_dir
from stroke_mlops.registry.signing import SIGNING_BUNDLE_FILE
from stroke_mlops.registry.uris import StorageError

log = logging.getLogger("stroke_mlops.registry.store")

ROOT_DIR = "stroke"
VERSIONS_DIR = "versions"
POINTER_FILE = "production.json"
LOCK_FILE = ".production.lock"
MAX_POINTER_BYTES = 64 * 1024  # a pointer is about 150 bytes
# Starts with a letter or digit (so ".<name>.publishing-*" scratch folders never look like one).
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


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
        if len(text) > MAX_POINTER_BYTES:
            raise StoreError(f"{source}: over {MAX_POINTER_BYTES} bytes; the pointer is damaged")
        try:
            document = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise StoreError(
                f"{source}: not valid JSON ({error}); the pointer is damaged"
            ) from error
        except RecursionError as error:
            raise StoreError(f"{source}: nested too deeply; the pointer is damaged") from error
        if not isinstance(document, dict):
            raise StoreError(f"{source}: expected a JSON object, found {type(document).__name__}")
        location = "path" if "path" in document else "uri"  # "uri": written before "path"
        for key in ("version", location, "promoted_at"):
            if not isinstance(document.get(key), str) or not document[key]:
                raise StoreError(f"{source}: field {key!r} must be a non-empty string")
        previous = document.get("previous")
        if previous is not None and (
            not isinstance(previous, str) or not VERSION_PATTERN.fullmatch(previous)
        ):
            raise StoreError(f"{source}: field 'previous' must be a version name or null")
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

    def production_state(self) -> tuple[ProductionPointer | None, str | None]:
        """(pointer, None) when the pointer is sound or absent; (None, why) when it is broken:
        unreadable, damaged, or naming a version that is not complete in this store."""
        try:
            pointer = self.production()
        except StoreError as error:
            return None, str(error)
        if pointer is not None and pointer.version not in self.list_versions():
            return None, (
                f"{self.pointer_uri}: names version {pointer.version}, which is not a complete "
                "version of this store"
            )
        return pointer, None

    def repair_pointer(
        self, version: str, check: Callable[[Path], object] | None = None
    ) -> ProductionPointer:
        """Rewrite a broken pointer (see :meth:`production_state`) to name ``version``.

        ``version`` is downloaded and verified first (checksums, then ``check`` on the copy:
        the signature); a sound pointer is refused (promote or roll back instead). The write is
        the same compare-and-swap as ``promote``; ``previous`` is left empty.
        """
        check_version_name(version)
        _, broken = self.production_state()
        if broken is None:
            raise StoreError(
                f"{self.pointer_uri}: the pointer is sound; use promote or rollback, not a repair"
            )
        with tempfile.TemporaryDirectory(prefix="stroke-repair-") as scratch:
            local = self.download_version(version, Path(scratch) / version)
            if check is not None:
                check(local)
        with self._pointer_lock():
            content, revision = self._read_pointer()
            pointer = ProductionPointer(
                version=version,
                uri=self.version_uri(version),
                promoted_at=_now_iso(),
                previous=None,
            )
            self._swap_pointer(
                pointer.to_json().encode(), revision=revision, existed=content is not None
            )
        log.warning(
            "repaired %s: production is %s (was broken: %s)", self.pointer_uri, version, broken
        )
        return pointer

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
