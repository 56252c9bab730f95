"""Promotion is a compare-and-swap: concurrent runs never overwrite each other's production.

Both stores: the folder store (flock around re-read + replace) and the S3 store over real HTTP
(moto on 127.0.0.1 with the real minio client: a conditional PUT, If-Match / If-None-Match).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from stroke_mlops.registry.store import (
    LocalModelStore,
    ModelStore,
    PromotionConflictError,
    S3ModelStore,
    open_store,
)
from tests.s3_server import S3Bucket
from tests.store.conftest import MakeModelDir


@pytest.fixture(params=["folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ModelStore:
    if request.param == "folder":
        return LocalModelStore(tmp_path / "store")
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    opened = open_store(bucket.uri("cas"))
    assert isinstance(opened, S3ModelStore)
    return opened


def _slow_reads(store: ModelStore, seconds: float) -> None:
    """Each pointer read takes ``seconds`` after reading: two runs both see the old pointer."""
    read = store._read_pointer

    def slow() -> tuple[bytes | None, str | None]:
        content = read()
        time.sleep(seconds)
        return content

    store._read_pointer = slow  # type: ignore[method-assign]


def _promote_concurrently(
    store: ModelStore, versions: list[str], expected: str | None
) -> dict[str, BaseException | None]:
    outcome: dict[str, BaseException | None] = {}
    start = threading.Barrier(len(versions))

    def run(version: str) -> None:
        start.wait()
        try:
            store.promote(version, expected=expected)
            outcome[version] = None
        except BaseException as error:
            outcome[version] = error

    threads = [threading.Thread(target=run, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcome


@pytest.mark.parametrize("champion", [None, "v1"])
def test_two_concurrent_promotions_one_wins_the_other_is_refused(
    store: ModelStore, make_model_dir: MakeModelDir, champion: str | None
) -> None:
    for version in ("v1", "v2", "v3"):
        store.publish_version(make_model_dir(version), version)
    if champion:
        store.promote(champion)
    _slow_reads(store, 0.5)

    # Two pipeline runs gated v2 and v3 against the same production (empty or v1).
    outcome = _promote_concurrently(store, ["v2", "v3"], expected=champion)

    winners = [v for v, error in outcome.items() if error is None]
    refused = [error for error in outcome.values() if error is not None]
    assert len(winners) == 1 and len(refused) == 1, outcome
    assert isinstance(refused[0], PromotionConflictError)
    assert "production unchanged" in str(refused[0])
    production = store.production()
    # The production model was gated against its real predecessor.
    assert production is not None and production.version == winners[0]
    assert production.previous == champion


def test_promotion_is_refused_when_production_moved_since_the_gate(
    store: ModelStore, make_model_dir: MakeModelDir
) -> None:
    for version in ("v1", "v2", "v3"):
        store.publish_version(make_model_dir(version), version)
    store.promote("v1")
    store.promote("v2")  # another run promoted after v3 was gated against v1

    with pytest.raises(PromotionConflictError, match=r"production is v2, not v1 as when v3"):
        store.promote("v3", expected="v1")
    production = store.production()
    assert production is not None and (production.version, production.previous) == ("v2", "v1")
    assert store.promote("v3", expected="v2").previous == "v2"


def test_an_old_pointer_with_an_absolute_uri_is_read_relative_to_the_store(
    tmp_path: Path, make_model_dir: MakeModelDir
) -> None:
    store = LocalModelStore(tmp_path / "moved")
    store.publish_version(make_model_dir("v1"), "v1")
    store.pointer_path.write_text(
        json.dumps(
            {
                "version": "v1",
                "uri": "file:///somewhere/else/stroke/versions/v1/",
                "promoted_at": "2026-01-01T00:00:00Z",
                "previous": None,
            }
        )
    )
    pointer = store.production()
    assert pointer is not None and pointer.uri == store.version_uri("v1")
    store.publish_version(make_model_dir("v2"), "v2")
    assert store.promote("v2", expected="v1").previous == "v1"
    assert json.loads(store.pointer_path.read_text())["path"] == "versions/v2/"
