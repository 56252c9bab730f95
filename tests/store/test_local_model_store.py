"""The folder store: publish, verify, promote, download; immutability; failures change nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from stroke_mlops.data import schema
from stroke_mlops.registry import signing, store
from stroke_mlops.registry.model_dir import (
    METADATA_FILE,
    MODEL_CARD_FILE,
    open_signed_model_dir,
    sha256_file,
    verify_model_dir,
)
from stroke_mlops.registry.store import LocalModelStore, StoreError, open_store
from tests.store.conftest import MakeModelDir


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones included) with its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def local_store(tmp_path: Path) -> LocalModelStore:
    return LocalModelStore(tmp_path / "store")


def test_publish_promote_download_round_trip(
    local_store: LocalModelStore,
    make_model_dir: MakeModelDir,
    small_model: Pipeline,
    small_patients: pd.DataFrame,
    tmp_path: Path,
    signing_keys: signing.KeyPair,
) -> None:
    built = make_model_dir("v1")
    assert local_store.production() is None

    published = local_store.publish_version(built, "v1")

    version_dir = local_store.root / "stroke" / "versions" / "v1"
    assert published.version == "v1"
    assert published.uri == version_dir.as_uri() + "/"
    assert published.files == {p.name: sha256_file(p) for p in built.iterdir()}
    assert tree(version_dir) == tree(built)
    assert local_store.list_versions() == ["v1"]
    assert local_store.verify_version("v1")["version"] == "v1"

    pointer = local_store.promote("v1")

    assert (pointer.version, pointer.uri, pointer.previous) == ("v1", published.uri, None)
    promoted_at = datetime.fromisoformat(pointer.promoted_at)
    assert promoted_at.tzinfo is not None and promoted_at.utcoffset() == UTC.utcoffset(None)
    on_disk = json.loads((local_store.root / "stroke" / "production.json").read_text())
    assert on_disk == {
        "version": "v1",
        "path": "versions/v1/",  # relative to stroke/: the store can move
        "promoted_at": pointer.promoted_at,
        "previous": None,
    }
    assert local_store.production() == pointer

    downloaded = local_store.download_version("v1", tmp_path / "downloaded")
    verified = open_signed_model_dir(downloaded, signing_keys.public_key)
    rows = small_patients[list(schema.FEATURE_COLUMNS)].head(20)
    np.testing.assert_allclose(
        verified.load_model().predict_proba(rows), small_model.predict_proba(rows)
    )


def test_promotion_records_the_previous_version_and_rolls_back(
    local_store: LocalModelStore, make_model_dir: MakeModelDir
) -> None:
    for version in ("v1", "v2"):
        local_store.publish_version(make_model_dir(version), version)

    assert local_store.promote("v1").previous is None
    assert local_store.promote("v2").previous == "v1"
    rolled_back = local_store.promote("v1")

    assert (rolled_back.version, rolled_back.previous) == ("v1", "v2")
    assert local_store.production() == rolled_back
    assert local_store.promote("v1") == rolled_back  # already in production: nothing written


def test_versions_are_immutable(local_store: LocalModelStore, make_model_dir: MakeModelDir) -> None:
    local_store.publish_version(make_model_dir("v1"), "v1")
    before = tree(local_store.root)
    other = make_model_dir("v1")
    (other / MODEL_CARD_FILE).write_text("# a different card\n")  # then fix its checksum:
    metadata = json.loads((other / METADATA_FILE).read_text())
    metadata["files"][MODEL_CARD_FILE] = sha256_file(other / MODEL_CARD_FILE)
    (other / METADATA_FILE).write_text(json.dumps(metadata))

    with pytest.raises(StoreError, match="version v1 already exists; versions are immutable"):
        local_store.publish_version(other, "v1")

    assert tree(local_store.root) == before


def test_promote_refuses_a_missing_version(
    local_store: LocalModelStore, make_model_dir: MakeModelDir
) -> None:
    local_store.publish_version(make_model_dir("v1"), "v1")
    pointer = local_store.promote("v1")

    with pytest.raises(StoreError, match=r"no version v9 in the store \(latest versions: v1\)"):
        local_store.promote("v9")

    assert local_store.production() == pointer


def test_promote_refuses_a_version_whose_files_changed(
    local_store: LocalModelStore, make_model_dir: MakeModelDir
) -> None:
    for version in ("v1", "v2"):
        local_store.publish_version(make_model_dir(version), version)
    pointer = local_store.promote("v1")
    pointer_bytes = (local_store.root / "stroke" / "production.json").read_bytes()
    card = local_store.root / "stroke" / "versions" / "v2" / MODEL_CARD_FILE
    card.write_text(card.read_text() + "edited after publishing\n")

    with pytest.raises(StoreError, match=r"v2/: does not verify: .*model_card\.md: sha256"):
        local_store.promote("v2")

    assert local_store.production() == pointer
    assert (local_store.root / "stroke" / "production.json").read_bytes() == pointer_bytes


def test_a_version_without_metadata_is_incomplete(
    local_store: LocalModelStore, make_model_dir: MakeModelDir
) -> None:
    local_store.publish_version(make_model_dir("v1"), "v1")
    (local_store.root / "stroke" / "versions" / "v1" / METADATA_FILE).unlink()

    assert local_store.list_versions() == []
    with pytest.raises(StoreError, match="no version v1"):
        local_store.promote("v1")
    assert local_store.production() is None


def test_a_failure_mid_publish_leaves_production_and_old_versions_untouched(
    local_store: LocalModelStore, make_model_dir: MakeModelDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_store.publish_version(make_model_dir("v1"), "v1")
    local_store.promote("v1")
    before = tree(local_store.root)
    built = make_model_dir("v2")
    real_write = store._write_file
    written: list[str] = []

    def write_then_fail_on_the_third_file(path: Path, content: bytes) -> None:
        written.append(path.name)
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        real_write(path, content)

    monkeypatch.setattr(store, "_write_file", write_then_fail_on_the_third_file)

    with pytest.raises(StoreError, match=r"v2/: publishing failed \(.*No space left on device"):
        local_store.publish_version(built, "v2")

    assert len(written) == 3 and METADATA_FILE not in written
    assert tree(local_store.root) == before  # no v2, no scratch folder, same pointer
    assert local_store.list_versions() == ["v1"]
    monkeypatch.setattr(store, "_write_file", real_write)
    assert local_store.publish_version(built, "v2").version == "v2"  # nothing left in the way


def test_an_unreadable_source_file_fails_before_anything_is_written(
    local_store: LocalModelStore, make_model_dir: MakeModelDir
) -> None:
    local_store.publish_version(make_model_dir("v1"), "v1")
    local_store.promote("v1")
    before = tree(local_store.root)
    built = make_model_dir("v2")
    (built / MODEL_CARD_FILE).unlink()
    (built / MODEL_CARD_FILE).mkdir()  # a folder where a file should be: cannot be read

    with pytest.raises(StoreError, match=r"cannot publish .*v2"):
        local_store.publish_version(built, "v2")

    assert tree(local_store.root) == before


def test_a_failed_pointer_write_leaves_the_pointer(
    local_store: LocalModelStore, make_model_dir: MakeModelDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ("v1", "v2"):
        local_store.publish_version(make_model_dir(version), version)
    local_store.promote("v1")
    before = tree(local_store.root)

    def refuse(self: Path, target: Path) -> Path:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(Path, "replace", refuse)

    with pytest.raises(StoreError, match=r"writing the pointer failed .* production is unchanged"):
        local_store.promote("v2")

    assert tree(local_store.root) == before  # same pointer, temp file removed


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("wrong_version", r"as 'v2': its metadata\.json says version 'v1'"),
        ("extra_file", r"notes\.txt not listed in metadata\.json"),
        ("changed_file", r"model_card\.md: sha256 .* does not match"),
        ("no_metadata", r"no metadata\.json; not a published model directory"),
    ],
)
def test_publish_refuses_a_model_dir_that_does_not_verify(
    local_store: LocalModelStore, make_model_dir: MakeModelDir, damage: str, message: str
) -> None:
    built = make_model_dir("v1")
    if damage == "extra_file":
        (built / "notes.txt").write_text("not listed\n")
    elif damage == "changed_file":
        (built / MODEL_CARD_FILE).write_text("# edited\n")
    elif damage == "no_metadata":
        (built / METADATA_FILE).unlink()

    with pytest.raises(StoreError, match=message):
        local_store.publish_version(built, "v2" if damage == "wrong_version" else "v1")

    assert local_store.list_versions() == []
    assert not (local_store.root / "stroke" / "versions").exists() or not any(
        (local_store.root / "stroke" / "versions").iterdir()
    )


def test_download_refuses_a_non_empty_destination(
    local_store: LocalModelStore, make_model_dir: MakeModelDir, tmp_path: Path
) -> None:
    local_store.publish_version(make_model_dir("v1"), "v1")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine\n")
    empty = tmp_path / "empty"
    empty.mkdir()

    with pytest.raises(StoreError, match="exists and is not an empty directory"):
        local_store.download_version("v1", occupied)
    assert [p.name for p in occupied.iterdir()] == ["keep.txt"]
    assert verify_model_dir(local_store.download_version("v1", empty)).version == "v1"
    with pytest.raises(StoreError, match="no version v2"):
        local_store.download_version("v2", tmp_path / "new")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("bad", ["", "../v1", "v1/x", ".hidden", "v 1", "x" * 129])
def test_bad_version_names_are_refused(
    local_store: LocalModelStore, make_model_dir: MakeModelDir, bad: str
) -> None:
    with pytest.raises(StoreError, match="invalid version name"):
        local_store.publish_version(make_model_dir("v1"), bad)


def test_a_damaged_pointer_is_reported(local_store: LocalModelStore) -> None:
    pointer = local_store.root / "stroke" / "production.json"
    pointer.parent.mkdir(parents=True)
    pointer.write_text('{"version": "v1"}')

    with pytest.raises(StoreError, match=r"production\.json: field 'uri' must be"):
        local_store.production()


def test_open_store_understands_paths_and_file_uris(tmp_path: Path) -> None:
    by_path = open_store(str(tmp_path / "store"))
    by_uri = open_store((tmp_path / "store").as_uri())

    assert isinstance(by_path, LocalModelStore) and isinstance(by_uri, LocalModelStore)
    assert by_path.root == by_uri.root == tmp_path / "store"
    assert by_path.uri == (tmp_path / "store").as_uri()
    with pytest.raises(StoreError, match="unsupported store scheme 'gs'"):
        open_store("gs://bucket/models")
    with pytest.raises(StoreError, match="no store URI given"):
        open_store(" ")
