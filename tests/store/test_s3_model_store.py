"""The S3 store over real HTTP (moto on 127.0.0.1, the real minio client), faults via a proxy."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from stroke_mlops.registry.model_dir import (
    METADATA_FILE,
    MODEL_CARD_FILE,
    MODEL_FILE,
    sha256_file,
    verify_model_dir,
)
from stroke_mlops.registry.signing import SIGNING_BUNDLE_FILE
from stroke_mlops.registry.store import S3ModelStore, StoreError, open_store
from tests.s3_server import FaultProxy, S3Bucket
from tests.store.conftest import MakeModelDir

PREFIX = "team/models"
FILES = sorted([MODEL_FILE, "signature.json", MODEL_CARD_FILE, METADATA_FILE, SIGNING_BUNDLE_FILE])


def s3_store(bucket: S3Bucket) -> S3ModelStore:
    opened = open_store(bucket.uri(PREFIX))  # endpoint and keys from the environment
    assert isinstance(opened, S3ModelStore)
    return opened


def version_keys(version: str) -> list[str]:
    return [f"{PREFIX}/stroke/versions/{version}/{name}" for name in FILES]


def test_publish_promote_download_round_trip(
    s3_bucket: S3Bucket, make_model_dir: MakeModelDir, tmp_path: Path
) -> None:
    store = s3_store(s3_bucket)
    built = make_model_dir("v1")
    assert store.production() is None and store.list_versions() == []

    published = store.publish_version(built, "v1")

    assert published.uri == f"s3://{s3_bucket.name}/{PREFIX}/stroke/versions/v1/"
    assert s3_bucket.keys() == version_keys("v1")
    for name in FILES:
        stored = s3_bucket.read(f"{PREFIX}/stroke/versions/v1/{name}")
        assert stored == (built / name).read_bytes()
        assert published.files[name] == sha256_file(built / name)
    assert store.list_versions() == ["v1"]

    pointer = store.promote("v1")

    assert (pointer.version, pointer.uri, pointer.previous) == ("v1", published.uri, None)
    assert json.loads(s3_bucket.read(f"{PREFIX}/stroke/production.json")) == {
        "version": "v1",
        "path": "versions/v1/",  # relative to stroke/: the store can move
        "promoted_at": pointer.promoted_at,
        "previous": None,
    }
    assert store.production() == pointer
    downloaded = store.download_version("v1", tmp_path / "champion")
    assert verify_model_dir(downloaded).version == "v1"
    assert sorted(p.name for p in downloaded.iterdir()) == FILES


def test_versions_are_immutable_and_promotion_keeps_history(
    s3_bucket: S3Bucket, make_model_dir: MakeModelDir
) -> None:
    store = s3_store(s3_bucket)
    store.publish_version(make_model_dir("v1"), "v1")
    store.publish_version(make_model_dir("v2"), "v2")
    before = s3_bucket.snapshot()

    with pytest.raises(StoreError, match="version v1 already exists; versions are immutable"):
        store.publish_version(make_model_dir("v1"), "v1")
    assert s3_bucket.snapshot() == before

    store.promote("v1")
    assert store.promote("v2").previous == "v1"
    assert store.promote("v1").previous == "v2"  # a rollback is a promotion


def test_promote_refuses_missing_and_modified_versions(
    s3_bucket: S3Bucket, make_model_dir: MakeModelDir
) -> None:
    store = s3_store(s3_bucket)
    store.publish_version(make_model_dir("v1"), "v1")
    store.publish_version(make_model_dir("v2"), "v2")
    store.promote("v1")
    pointer_key = f"{PREFIX}/stroke/production.json"
    pointer_bytes = s3_bucket.read(pointer_key)
    edited = b"# edited in the bucket\n"
    s3_bucket.client.put_object(
        s3_bucket.name,
        f"{PREFIX}/stroke/versions/v2/{MODEL_CARD_FILE}",
        io.BytesIO(edited),
        len(edited),
    )

    with pytest.raises(StoreError, match=r"no version v3 in the store \(latest versions: v1, v2\)"):
        store.promote("v3")
    with pytest.raises(StoreError, match=r"versions/v2/: does not verify: .*model_card\.md"):
        store.promote("v2")

    assert s3_bucket.read(pointer_key) == pointer_bytes


@pytest.mark.integration
def test_version_uris_are_not_prefixes_of_each_other_for_kserve(
    s3_bucket: S3Bucket, make_model_dir: MakeModelDir, tmp_path: Path
) -> None:
    """KServe's storage initializer lists storageUri as a key prefix: v1 must not pull in v10."""
    from kserve_storage import Storage

    store = s3_store(s3_bucket)
    uri = store.publish_version(make_model_dir("v1"), "v1").uri
    store.publish_version(make_model_dir("v10"), "v10")

    fetched = Path(Storage.download(uri, str(tmp_path / "kserve")))

    assert sorted(p.relative_to(fetched).as_posix() for p in fetched.rglob("*")) == FILES
    assert verify_model_dir(fetched).version == "v1"
    assert store.list_versions() == ["v1", "v10"]


def test_a_failed_upload_mid_publish_changes_nothing_that_is_pointed_to(
    s3_bucket: S3Bucket, make_model_dir: MakeModelDir, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    store = s3_store(s3_bucket)  # talks to moto through the proxy
    store.publish_version(make_model_dir("v1"), "v1")
    store.promote("v1")
    before = s3_bucket.snapshot()
    built = make_model_dir("v2")
    fault_proxy.fail("PUT", f"/stroke/versions/v2/{MODEL_CARD_FILE}")

    with pytest.raises(StoreError, match=r"versions/v2/model_card\.md: .*HTTP 500 InternalError"):
        store.publish_version(built, "v2")

    puts = fault_proxy.requests("PUT")
    assert not any(path.endswith(f"v2/{METADATA_FILE}") for path in puts)  # never written
    after = s3_bucket.snapshot()
    assert {k: v for k, v in after.items() if "/v2/" not in k} == before  # v1 + pointer as were
    assert f"{PREFIX}/stroke/versions/v2/{METADATA_FILE}" not in after  # recognisably incomplete
    assert store.list_versions() == ["v1"]
    with pytest.raises(StoreError, match=r"version v2 is incomplete \(no metadata\.json"):
        store.promote("v2")
    current = store.production()
    assert current is not None and current.version == "v1"

    fault_proxy.clear()
    store.publish_version(built, "v2")  # publishing again replaces the interrupted attempt
    assert store.promote("v2").previous == "v1"
    assert verify_model_dir(store.download_version("v2", tmp_path / "v2")).version == "v2"


def test_the_nth_put_failing_stops_publish_before_metadata(
    s3_bucket: S3Bucket, make_model_dir: MakeModelDir, fault_proxy: FaultProxy
) -> None:
    store = s3_store(s3_bucket)
    fault_proxy.fail_nth("PUT", 2)  # the second file of three; every retry of it fails too

    with pytest.raises(StoreError, match="HTTP 500 InternalError"):
        store.publish_version(make_model_dir("v1"), "v1")

    failed = fault_proxy.failed()
    assert len(failed) > 1 and len({path for _, path in failed}) == 1  # retried, same object
    keys = s3_bucket.keys()
    assert len(keys) == 1 and not keys[0].endswith(METADATA_FILE)
    assert store.list_versions() == [] and store.production() is None


def test_a_failed_metadata_upload_leaves_the_version_incomplete(
    s3_bucket: S3Bucket, make_model_dir: MakeModelDir, fault_proxy: FaultProxy
) -> None:
    store = s3_store(s3_bucket)
    fault_proxy.fail("PUT", f"/v1/{METADATA_FILE}")

    with pytest.raises(StoreError, match=r"metadata\.json: .*HTTP 500"):
        store.publish_version(make_model_dir("v1"), "v1")

    assert s3_bucket.keys() == [k for k in version_keys("v1") if not k.endswith(METADATA_FILE)]
    assert store.list_versions() == []


def test_a_failed_pointer_write_leaves_production_as_it_was(
    s3_bucket: S3Bucket, make_model_dir: MakeModelDir, fault_proxy: FaultProxy
) -> None:
    store = s3_store(s3_bucket)
    store.publish_version(make_model_dir("v1"), "v1")
    store.publish_version(make_model_dir("v2"), "v2")
    pointer = store.promote("v1")
    before = s3_bucket.snapshot()
    fault_proxy.fail("PUT", "/stroke/production.json", status=503)

    with pytest.raises(StoreError, match=r"production\.json: .*HTTP 503.*production is unchanged"):
        store.promote("v2")

    assert s3_bucket.snapshot() == before
    assert store.production() == pointer


def test_s3_errors_are_one_line_and_name_the_cause(
    s3_bucket: S3Bucket, make_model_dir: MakeModelDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing_bucket = open_store("s3://no-such-bucket-here/models")
    with pytest.raises(StoreError) as caught:
        missing_bucket.production()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("s3://no-such-bucket-here/models/stroke/production.json: ")
    assert "bucket no-such-bucket-here does not exist at http://127.0.0.1:" in message

    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StoreError, match="AWS_SECRET_ACCESS_KEY is not set"):
        open_store(s3_bucket.uri(PREFIX))
